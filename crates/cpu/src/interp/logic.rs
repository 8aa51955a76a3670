//! Bitwise logic: AND OR XOR TEST NOT (Intel SDM Vol. 2A-2B).
//! AND/OR/XOR/TEST clear CF and OF and set SF, ZF, PF from the result;
//! AF is undefined and left clear, as current processors do.

use super::width_and_mask;
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::{Flags, LazyOp};
use iced_x86::Instruction;

#[inline]
fn logic<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    write: bool,
    f: impl Fn(u32, u32) -> u32,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let b = cpu.read_op(insn, 1, bus)?;
    let r = f(a, b) & mask;
    if write {
        cpu.write_op(insn, 0, r, bus)?;
    }
    cpu.state.set_lazy(LazyOp::Logic, w, a, b, r);
    Ok(())
}

/// `AND dst, src`.
pub fn and<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    logic(cpu, insn, bus, true, |a, b| a & b)
}

/// `OR dst, src`.
pub fn or<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    logic(cpu, insn, bus, true, |a, b| a | b)
}

/// `XOR dst, src`.
pub fn xor<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    logic(cpu, insn, bus, true, |a, b| a ^ b)
}

/// `TEST a, b`: AND without the write.
pub fn test<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    logic(cpu, insn, bus, false, |a, b| a & b)
}

/// `NOT dst`: no flags.
pub fn not<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (_, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    cpu.write_op(insn, 0, !a & mask, bus)
}

#[cfg(test)]
mod tests {
    use crate::state::eflags;
    use crate::testutil::run32;
    use iced_x86::code_asm::*;

    #[test]
    fn xor_self_zeroes_and_clears_carry() {
        let s = run32(
            |a| {
                a.stc()?;
                a.xor(eax, eax)
            },
            |s| s.gpr[0] = 0x1234,
        );
        assert_eq!(s.gpr[0], 0);
        assert_eq!(
            s.eflags & (eflags::CF | eflags::ZF | eflags::PF),
            eflags::ZF | eflags::PF
        );
    }

    #[test]
    fn not_leaves_flags() {
        let s = run32(
            |a| {
                a.stc()?;
                a.not(bx)
            },
            |s| s.gpr[3] = 0xFFFF_00F0,
        );
        assert_eq!(s.gpr[3], 0xFFFF_FF0F);
        assert_ne!(s.eflags & eflags::CF, 0);
    }
}
