//! Multiply and divide: MUL IMUL DIV IDIV (Intel SDM Vol. 2A-2B).
//!
//! MUL/IMUL set CF and OF when the upper half of the product is
//! significant; SF, ZF, PF and AF are undefined and are set from the low
//! half of the result (SF/ZF/PF) with AF cleared. DIV/IDIV raise #DE for a
//! zero divisor or a quotient that does not fit; their flags are undefined
//! and left unchanged.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::{szp, width_mask, Flags};
use crate::model::CpuModel;
use crate::state::eflags::{AF, CF, OF, PF, SF, ZF};
use crate::state::Reg;
use iced_x86::Instruction;

use super::operand::op_width;

/// Sign-extends the low `w` bytes of `v`.
#[inline]
fn sext(v: u32, w: u32) -> i64 {
    let shift = 32 - w * 8;
    i64::from(((v << shift) as i32) >> shift)
}

/// Writes a double-width product to AX, DX:AX or EDX:EAX.
#[inline]
fn store_wide(cpu: &mut Cpu, w: u32, product: u64) {
    match w {
        1 => cpu.state.set_reg(Reg::Eax, 2, product as u32),
        2 => {
            cpu.state.set_reg(Reg::Eax, 2, product as u32);
            cpu.state.set_reg(Reg::Edx, 2, (product >> 16) as u32);
        }
        _ => {
            cpu.state.gpr[Reg::Eax as usize] = product as u32;
            cpu.state.gpr[Reg::Edx as usize] = (product >> 32) as u32;
        }
    }
}

/// Flags after a multiply: CF = OF = `overflow`, SF/ZF/PF from the low half.
#[inline]
fn mul_flags(cpu: &mut Cpu, w: u32, low: u32, overflow: bool) {
    let f = szp(low, w) | if overflow { CF | OF } else { 0 };
    cpu.state.set_status(CF | OF | SF | ZF | PF | AF, f);
}

/// `MUL src`: unsigned AL/AX/EAX times src.
pub fn mul<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = op_width(insn, 0);
    let src = u64::from(cpu.read_op(insn, 0, bus)?);
    let acc = u64::from(cpu.state.reg(Reg::Eax, w));
    let p = acc * src;
    store_wide(cpu, w, p);
    let hi = p >> (w * 8);
    mul_flags(cpu, w, p as u32, hi != 0);
    if cpu.state.model == CpuModel::I8086 {
        // The 8086 computes ZF from the high half (as the vectors record).
        let z = if hi as u32 & width_mask(w) == 0 {
            ZF
        } else {
            0
        };
        cpu.state.set_status(ZF, z);
    }
    Ok(())
}

/// `IMUL`: one operand (accumulator, double width), two (dst *= src) or
/// three (dst = src * imm) operands.
pub fn imul<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    match insn.op_count() {
        1 => {
            let w = op_width(insn, 0);
            let src = sext(cpu.read_op(insn, 0, bus)?, w);
            let acc = sext(cpu.state.reg(Reg::Eax, w), w);
            let p = acc * src;
            store_wide(cpu, w, p as u64);
            let fits = sext(p as u32 & width_mask(w), w) == p;
            mul_flags(cpu, w, p as u32, !fits);
            Ok(())
        }
        n => {
            let w = op_width(insn, 0);
            let (a, b) = if n == 2 {
                (cpu.read_op(insn, 0, bus)?, cpu.read_op(insn, 1, bus)?)
            } else {
                (cpu.read_op(insn, 1, bus)?, cpu.read_op(insn, 2, bus)?)
            };
            let p = sext(a, w) * sext(b & width_mask(w), w);
            let r = p as u32 & width_mask(w);
            cpu.write_op(insn, 0, r, bus)?;
            mul_flags(cpu, w, r, sext(r, w) != p);
            Ok(())
        }
    }
}

/// The dividend: AX, DX:AX or EDX:EAX.
#[inline]
fn dividend(cpu: &Cpu, w: u32) -> u64 {
    match w {
        1 => u64::from(cpu.state.reg(Reg::Eax, 2)),
        2 => u64::from(cpu.state.reg(Reg::Eax, 2)) | (u64::from(cpu.state.reg(Reg::Edx, 2)) << 16),
        _ => u64::from(cpu.state.gpr[0]) | (u64::from(cpu.state.gpr[2]) << 32),
    }
}

/// Stores quotient and remainder: AL/AH, AX/DX or EAX/EDX.
#[inline]
fn store_qr(cpu: &mut Cpu, w: u32, q: u32, r: u32) {
    if w == 1 {
        cpu.state
            .set_reg(Reg::Eax, 2, (q & 0xFF) | ((r & 0xFF) << 8));
    } else {
        cpu.state.set_reg(Reg::Eax, w, q);
        cpu.state.set_reg(Reg::Edx, w, r);
    }
}

/// `DIV src`: unsigned divide of the double-width accumulator.
pub fn div<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = op_width(insn, 0);
    let d = u64::from(cpu.read_op(insn, 0, bus)?);
    if d == 0 {
        return Err(Exception::DivideError);
    }
    let n = dividend(cpu, w);
    let q = n / d;
    if q > u64::from(width_mask(w)) {
        return Err(Exception::DivideError);
    }
    store_qr(cpu, w, q as u32, (n % d) as u32);
    Ok(())
}

/// `IDIV src`: signed divide; the quotient truncates toward zero and the
/// remainder takes the dividend's sign. The 8086 also faults on the most
/// negative quotient.
pub fn idiv<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = op_width(insn, 0);
    let d = sext(cpu.read_op(insn, 0, bus)?, w) as i128;
    if d == 0 {
        return Err(Exception::DivideError);
    }
    let raw = dividend(cpu, w);
    let n = match w {
        1 => i128::from(raw as u16 as i16),
        2 => i128::from(raw as u32 as i32),
        _ => i128::from(raw as i64),
    };
    let q = n / d;
    let r = n % d;
    let max = (1i128 << (w * 8 - 1)) - 1;
    let min = if cpu.state.model == CpuModel::I8086 {
        -max
    } else {
        -max - 1
    };
    if q > max || q < min {
        return Err(Exception::DivideError);
    }
    // The 8086 microcode negates the quotient when a REP prefix is present.
    let q = if cpu.state.model == CpuModel::I8086
        && (insn.has_rep_prefix() || insn.has_repne_prefix())
    {
        -q
    } else {
        q
    };
    store_qr(cpu, w, q as u32, r as u32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::state::eflags;
    use crate::testutil::run32;
    use iced_x86::code_asm::*;

    #[test]
    fn mul_sets_carry_when_high_half_used() {
        let s = run32(
            |a| a.mul(ebx),
            |s| {
                s.gpr[0] = 0x8000_0000;
                s.gpr[3] = 4;
            },
        );
        assert_eq!((s.gpr[2], s.gpr[0]), (2, 0));
        assert_eq!(
            s.eflags & (eflags::CF | eflags::OF),
            eflags::CF | eflags::OF
        );
    }

    #[test]
    fn imul_three_operand_truncates() {
        let s = run32(|a| a.imul_3(ecx, ebx, -3), |s| s.gpr[3] = 5);
        assert_eq!(s.gpr[1] as i32, -15);
        assert_eq!(s.eflags & eflags::CF, 0);
    }

    #[test]
    fn idiv_rounds_toward_zero() {
        let s = run32(
            |a| a.idiv(bl),
            |s| {
                s.gpr[0] = (-7i16) as u16 as u32;
                s.gpr[3] = 2;
            },
        );
        assert_eq!(s.gpr[0] & 0xFF, (-3i8) as u8 as u32);
        assert_eq!((s.gpr[0] >> 8) & 0xFF, (-1i8) as u8 as u32);
    }
}
