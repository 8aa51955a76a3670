//! Bit test and scan: BT BTS BTR BTC BSF BSR (Intel SDM Vol. 2A).
//!
//! With a register bit offset and a memory operand, the offset is a signed
//! bit index from the operand's address (it may reach outside it); with an
//! immediate, or with a register destination, it is taken modulo the
//! operand width. BT* set CF to the old bit and leave the other flags.
//! BSF/BSR with a zero source set ZF and leave the destination unchanged.

use super::width_and_mask;
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::Flags;
use crate::state::eflags::{CF, ZF};
use iced_x86::{Instruction, OpKind};

/// What BTS/BTR/BTC do to the bit after testing it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    Test,
    Set,
    Reset,
    Complement,
}

fn bit_op<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    op: BitOp,
) -> Result<(), Exception> {
    let (w, _) = width_and_mask(insn, 0);
    let bits = w * 8;
    let raw = cpu.read_op(insn, 1, bus)?;
    let (old, bit, mem) = if insn.op_kind(0) == OpKind::Memory {
        let seg = cpu.memory_segment(insn);
        let base = cpu.effective_offset(insn);
        let disp = if insn.op_kind(1) == OpKind::Register {
            // Signed bit offset: whole operands of `w` bytes.
            let signed = if w == 2 {
                i64::from(raw as u16 as i16)
            } else {
                i64::from(raw as i32)
            };
            (signed >> (if w == 2 { 4 } else { 5 })) * i64::from(w)
        } else {
            0
        };
        let off = base.wrapping_add(disp as u32) & cpu.addr_mask();
        let v = cpu.read_mem(bus, seg, off, w)?;
        (v, raw & (bits - 1), Some((seg, off)))
    } else {
        (cpu.read_op(insn, 0, bus)?, raw & (bits - 1), None)
    };
    let cf = (old >> bit) & 1 != 0;
    let new = match op {
        BitOp::Test => old,
        BitOp::Set => old | (1 << bit),
        BitOp::Reset => old & !(1 << bit),
        BitOp::Complement => old ^ (1 << bit),
    };
    if op != BitOp::Test {
        match mem {
            Some((seg, off)) => cpu.write_mem(bus, seg, off, w, new)?,
            None => cpu.write_op(insn, 0, new, bus)?,
        }
    }
    cpu.state.set_status(CF, crate::flags::flag_if(cf, CF));
    Ok(())
}

/// `BT base, offset`.
pub fn bt<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    bit_op(cpu, insn, bus, BitOp::Test)
}

/// `BTS base, offset`.
pub fn bts<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    bit_op(cpu, insn, bus, BitOp::Set)
}

/// `BTR base, offset`.
pub fn btr<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    bit_op(cpu, insn, bus, BitOp::Reset)
}

/// `BTC base, offset`.
pub fn btc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    bit_op(cpu, insn, bus, BitOp::Complement)
}

fn scan<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    find: impl Fn(u32) -> u32,
) -> Result<(), Exception> {
    let src = cpu.read_op(insn, 1, bus)?;
    if src == 0 {
        cpu.state.set_status(ZF, ZF);
        return Ok(());
    }
    cpu.write_op(insn, 0, find(src), bus)?;
    cpu.state.set_status(ZF, 0);
    Ok(())
}

/// `BSF dst, src`: index of the lowest set bit.
pub fn bsf<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    scan(cpu, insn, bus, |v| v.trailing_zeros())
}

/// `BSR dst, src`: index of the highest set bit.
pub fn bsr<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    scan(cpu, insn, bus, |v| 31 - v.leading_zeros())
}

#[cfg(test)]
mod tests {
    use crate::state::eflags;
    use crate::testutil::run32;
    use iced_x86::code_asm::*;

    #[test]
    fn bts_memory_with_negative_offset() {
        let s = run32(
            |a| {
                a.bts(dword_ptr(ebx), ecx)?;
                a.mov(eax, dword_ptr(ebx - 4))
            },
            |s| {
                s.gpr[3] = 0x2000;
                s.gpr[1] = (-1i32) as u32; // bit 31 of the dword below
            },
        );
        assert_eq!(s.gpr[0], 0x8000_0000);
        assert_eq!(s.eflags & eflags::CF, 0);
    }

    #[test]
    fn bsf_zero_keeps_destination() {
        let s = run32(
            |a| a.bsf(eax, ebx),
            |s| {
                s.gpr[0] = 77;
                s.gpr[3] = 0;
            },
        );
        assert_eq!(s.gpr[0], 77);
        assert_ne!(s.eflags & eflags::ZF, 0);
        let s = run32(|a| a.bsr(eax, ebx), |s| s.gpr[3] = 0x0001_0100);
        assert_eq!(s.gpr[0], 16);
    }

    /// Linux uses `rep bsf` (TZCNT's encoding) and relies on BSF behaviour
    /// on CPUs without BMI1: a zero source leaves the destination alone.
    #[test]
    fn tzcnt_and_lzcnt_encodings_run_as_bsf_and_bsr() {
        let s = run32(
            |a| a.tzcnt(eax, ebx),
            |s| {
                s.gpr[0] = 77;
                s.gpr[3] = 0;
            },
        );
        assert_eq!(s.gpr[0], 77);
        assert_ne!(s.eflags & eflags::ZF, 0);
        let s = run32(|a| a.tzcnt(eax, ebx), |s| s.gpr[3] = 0x0001_0100);
        assert_eq!(s.gpr[0], 8);
        let s = run32(|a| a.lzcnt(eax, ebx), |s| s.gpr[3] = 0x0001_0100);
        assert_eq!(s.gpr[0], 16, "BSR's bit index, not LZCNT's count");
    }
}
