//! Integer arithmetic: ADD ADC SUB SBB CMP INC DEC NEG (Intel SDM Vol. 2A-2B).
//! One function per mnemonic; every encoding of it (each iced `Code`) lands here.

use super::width_and_mask;
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::{Flags, LazyOp};
use iced_x86::Instruction;

/// Reads both operands, computes, writes back (unless `write` is false), and
/// only then records the flags, so a faulting write changes nothing.
#[inline]
fn binary<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    write: bool,
    compute: impl Fn(u32, u32, bool) -> (u32, LazyOp),
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let carry = cpu.state.cf();
    let a = cpu.read_op(insn, 0, bus)?;
    let b = cpu.read_op(insn, 1, bus)? & mask;
    let (r, op) = compute(a, b, carry);
    let r = r & mask;
    if write {
        cpu.write_op(insn, 0, r, bus)?;
    }
    cpu.state.set_lazy(op, w, a, b, r);
    Ok(())
}

/// `ADD dst, src`.
pub fn add<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    binary(cpu, insn, bus, true, |a, b, _| {
        (a.wrapping_add(b), LazyOp::Add)
    })
}

/// `ADC dst, src`: ADD plus the incoming CF.
pub fn adc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    binary(cpu, insn, bus, true, |a, b, c| {
        (
            a.wrapping_add(b).wrapping_add(u32::from(c)),
            if c { LazyOp::Adc } else { LazyOp::Add },
        )
    })
}

/// `SUB dst, src`.
pub fn sub<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    binary(cpu, insn, bus, true, |a, b, _| {
        (a.wrapping_sub(b), LazyOp::Sub)
    })
}

/// `SBB dst, src`: SUB minus the incoming CF.
pub fn sbb<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    binary(cpu, insn, bus, true, |a, b, c| {
        (
            a.wrapping_sub(b).wrapping_sub(u32::from(c)),
            if c { LazyOp::Sbb } else { LazyOp::Sub },
        )
    })
}

/// `CMP a, b`: SUB without the write.
pub fn cmp<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    binary(cpu, insn, bus, false, |a, b, _| {
        (a.wrapping_sub(b), LazyOp::Sub)
    })
}

/// `INC dst`: CF is kept.
pub fn inc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let r = a.wrapping_add(1) & mask;
    cpu.write_op(insn, 0, r, bus)?;
    cpu.state.set_lazy(LazyOp::Inc, w, a, 1, r);
    Ok(())
}

/// `DEC dst`: CF is kept.
pub fn dec<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let r = a.wrapping_sub(1) & mask;
    cpu.write_op(insn, 0, r, bus)?;
    cpu.state.set_lazy(LazyOp::Dec, w, a, 1, r);
    Ok(())
}

/// `NEG dst`: `0 - dst`, CF set unless dst was 0.
pub fn neg<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let r = 0u32.wrapping_sub(a) & mask;
    cpu.write_op(insn, 0, r, bus)?;
    cpu.state.set_lazy(LazyOp::Sub, w, 0, a, r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::state::eflags;
    use crate::testutil::run32;

    #[test]
    fn add_al_ff_sets_carry_and_zero() {
        let s = run32(|a| a.add(iced_x86::code_asm::al, 0xFF), |s| s.gpr[0] = 1);
        assert_eq!(s.gpr[0] & 0xFF, 0);
        assert_eq!(
            s.eflags & (eflags::CF | eflags::ZF),
            eflags::CF | eflags::ZF
        );
    }

    #[test]
    fn sbb_borrows_through_carry() {
        use iced_x86::code_asm::*;
        let s = run32(
            |a| {
                a.stc()?;
                a.sbb(eax, 0)
            },
            |s| s.gpr[0] = 0,
        );
        assert_eq!(s.gpr[0], 0xFFFF_FFFF);
        assert_ne!(s.eflags & eflags::CF, 0);
    }

    #[test]
    fn neg_of_zero_clears_carry_and_min_sets_overflow() {
        use iced_x86::code_asm::*;
        let s = run32(|a| a.neg(eax), |s| s.gpr[0] = 0x8000_0000);
        assert_eq!(s.gpr[0], 0x8000_0000);
        assert_eq!(
            s.eflags & (eflags::CF | eflags::OF),
            eflags::CF | eflags::OF
        );
        let s = run32(|a| a.neg(eax), |s| s.gpr[0] = 0);
        assert_eq!(s.eflags & eflags::CF, 0);
    }

    #[test]
    fn dec_keeps_carry() {
        use iced_x86::code_asm::*;
        let s = run32(
            |a| {
                a.stc()?;
                a.dec(cl)
            },
            |s| s.gpr[1] = 0x80,
        );
        assert_eq!(s.gpr[1], 0x7F);
        assert_eq!(
            s.eflags & (eflags::CF | eflags::OF),
            eflags::CF | eflags::OF
        );
    }
}
