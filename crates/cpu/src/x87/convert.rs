//! x87 loads and stores of every memory format (Intel SDM Vol. 1, 4.2
//! "Data Types", 4.7 "BCD and Packed BCD Integers", 8.2 "x87 FPU Data
//! Types", 8.3.3 "Data Transfer Instructions", 4.8.3.7 "Indefinite"; Vol.
//! 2A FBLD, FBSTP, FILD, FIST/FISTP, FLD, FST/FSTP).
//!
//! m32fp and m64fp load exactly (a denormal source raises DE, an SNaN stays
//! signalling until an operation uses it) and store rounded by RC with the
//! format's own exponent range; m80fp moves bits unchanged; integers and
//! packed BCD round by RC, and anything out of range stores the integer or
//! BCD indefinite.

use super::f80::{self, exc, Class, Ctx, Fmt, DOUBLE, SINGLE};
use super::{push_checked, raise, sti, underflow, F80};
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use iced_x86::{Instruction, MemorySize, Mnemonic as M, OpKind};

/// Reads `N` bytes of the memory operand, starting `extra` bytes in.
pub(crate) fn read_bytes<B: Bus + ?Sized, const N: usize>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    extra: u32,
) -> Result<[u8; N], Exception> {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        if N - i >= 4 {
            let v = cpu.read_mem_operand(insn, extra + i as u32, 4, bus)?;
            out[i..i + 4].copy_from_slice(&v.to_le_bytes());
            i += 4;
        } else {
            out[i] = cpu.read_mem_operand(insn, extra + i as u32, 1, bus)? as u8;
            i += 1;
        }
    }
    Ok(out)
}

/// Writes `bytes` at the memory operand plus `extra`, after checking that
/// the whole range is writable (so a fault stores nothing).
pub(crate) fn write_bytes<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    extra: u32,
    bytes: &[u8],
) -> Result<(), Exception> {
    let seg = cpu.memory_segment(insn);
    let mask = cpu.addr_mask();
    let off = cpu.effective_offset(insn).wrapping_add(extra) & mask;
    let len = bytes.len() as u32;
    if off.wrapping_add(len - 1) & mask >= off {
        cpu.check_write(bus, seg, off, len)?;
    }
    for (i, b) in bytes.iter().enumerate() {
        cpu.write_mem(
            bus,
            seg,
            off.wrapping_add(i as u32) & mask,
            1,
            u32::from(*b),
        )?;
    }
    Ok(())
}

/// An m32fp bit pattern as an 80-bit value (exact; SNaNs stay signalling)
/// and whether it was a denormal.
pub fn f32_to_f80(bits: u32) -> (F80, bool) {
    ieee_to_f80(u64::from(bits), SINGLE)
}

/// An m64fp bit pattern as an 80-bit value and whether it was a denormal.
pub fn f64_to_f80(bits: u64) -> (F80, bool) {
    ieee_to_f80(bits, DOUBLE)
}

fn ieee_to_f80(bits: u64, fmt: Fmt) -> (F80, bool) {
    let frac_bits = fmt.prec - 1;
    let exp_bits = if fmt.prec == 24 { 8 } else { 11 };
    let sign = (bits >> (frac_bits + exp_bits)) & 1 != 0;
    let e = ((bits >> frac_bits) & ((1 << exp_bits) - 1)) as i32;
    let frac = bits & ((1 << frac_bits) - 1);
    let emax_field = (1 << exp_bits) - 1;
    if e == emax_field {
        return (
            F80::new(sign, 0x7FFF, (1 << 63) | (frac << (64 - fmt.prec))),
            false,
        );
    }
    if e == 0 {
        if frac == 0 {
            return (F80::zero(sign), false);
        }
        let lz = frac.leading_zeros() as i32;
        let sig = frac << lz;
        // frac's bit 0 has weight 2^(emin - frac_bits).
        let exp = fmt.emin - frac_bits as i32 + (63 - lz);
        return (F80::new(sign, (exp + 16383) as u16, sig), true);
    }
    let exp = e - (fmt.emax) + 16383;
    (
        F80::new(sign, exp as u16, (1 << 63) | (frac << (64 - fmt.prec))),
        false,
    )
}

/// Converts a register value to m32fp/m64fp bits, rounding by `ctx`.
/// Unmasked IE, OE or UE mean nothing is stored (the caller checks).
pub fn f80_to_ieee(ctx: &mut Ctx, v: F80, fmt: Fmt) -> u64 {
    let exp_bits = if fmt.prec == 24 { 8 } else { 11 };
    let frac_bits = fmt.prec - 1;
    let sign_bit = 1u64 << (frac_bits + exp_bits);
    let exp_all = ((1u64 << exp_bits) - 1) << frac_bits;
    let quiet = 1u64 << (frac_bits - 1);
    match v.class() {
        Class::Unsupported => {
            ctx.flags |= exc::IE;
            sign_bit | exp_all | quiet
        }
        Class::QNaN | Class::SNaN => {
            let q = f80::nan1(ctx, v);
            let frac = (q.signif << 1) >> (65 - fmt.prec);
            (if q.sign() { sign_bit } else { 0 }) | exp_all | frac | quiet
        }
        Class::Inf => (if v.sign() { sign_bit } else { 0 }) | exp_all,
        Class::Zero => {
            if v.sign() {
                sign_bit
            } else {
                0
            }
        }
        Class::Normal | Class::Denormal => {
            let u = v.unpack();
            ctx.round(u.sign, u.exp, u128::from(u.sig) << 64, fmt, false)
                .to_ieee(fmt)
        }
    }
}

/// Converts a register value to a signed integer of `bits` (16, 32, 64),
/// rounding by RC; invalid or out-of-range values give the integer
/// indefinite (the most negative value) with IE.
pub fn f80_to_int(ctx: &mut Ctx, v: F80, bits: u32) -> i64 {
    let indefinite = i64::MIN >> (64 - bits);
    match v.class() {
        Class::Unsupported | Class::QNaN | Class::SNaN | Class::Inf => {
            ctx.flags |= exc::IE;
            indefinite
        }
        Class::Zero => 0,
        Class::Normal | Class::Denormal => {
            let u = v.unpack();
            let saved = (ctx.flags, ctx.c1);
            let (mag, _) = f80::round_to_int(ctx, u);
            let limit = 1u128 << (bits - 1);
            match mag {
                Some(m) if m < limit || (u.sign && m == limit) => {
                    let m = m as i64;
                    if u.sign {
                        m.wrapping_neg()
                    } else {
                        m
                    }
                }
                _ => {
                    ctx.flags = saved.0 | exc::IE;
                    ctx.c1 = saved.1;
                    indefinite
                }
            }
        }
    }
}

/// Packed BCD (10 bytes, 18 digits and a sign byte) to the register format.
/// Invalid digits are taken at face value (the result is undefined).
pub fn bcd_to_f80(b: [u8; 10]) -> F80 {
    let mut mag: u128 = 0;
    for i in (0..9).rev() {
        mag = mag * 100 + u128::from(b[i] >> 4) * 10 + u128::from(b[i] & 15);
    }
    f80::from_int(b[9] & 0x80 != 0, mag)
}

/// The register value as packed BCD, rounded by RC; out of range (18
/// digits) or invalid gives the BCD indefinite with IE.
pub fn f80_to_bcd(ctx: &mut Ctx, v: F80) -> [u8; 10] {
    const INDEF: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF];
    let mag = match v.class() {
        Class::Unsupported | Class::QNaN | Class::SNaN | Class::Inf => {
            ctx.flags |= exc::IE;
            return INDEF;
        }
        Class::Zero => 0,
        Class::Normal | Class::Denormal => {
            let saved = (ctx.flags, ctx.c1);
            match f80::round_to_int(ctx, v.unpack()).0 {
                Some(m) if m < 1_000_000_000_000_000_000 => m,
                _ => {
                    ctx.flags = saved.0 | exc::IE;
                    ctx.c1 = saved.1;
                    return INDEF;
                }
            }
        }
    };
    let mut out = [0u8; 10];
    let mut m = mag;
    for byte in out.iter_mut().take(9) {
        let lo = (m % 10) as u8;
        m /= 10;
        let hi = (m % 10) as u8;
        m /= 10;
        *byte = (hi << 4) | lo;
    }
    out[9] = if v.sign() { 0x80 } else { 0 };
    out
}

/// Reads a floating-point or integer memory source as an 80-bit value and
/// whether it was an IEEE denormal (m32fp/m64fp only).
pub(crate) fn read_mem_value<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(F80, bool), Exception> {
    Ok(match insn.memory_size() {
        MemorySize::Float32 => f32_to_f80(cpu.read_mem_operand(insn, 0, 4, bus)?),
        MemorySize::Float64 => {
            let lo = cpu.read_mem_operand(insn, 0, 4, bus)?;
            let hi = cpu.read_mem_operand(insn, 4, 4, bus)?;
            f64_to_f80(u64::from(lo) | (u64::from(hi) << 32))
        }
        MemorySize::Float80 => {
            let b: [u8; 10] = read_bytes(cpu, insn, bus, 0)?;
            (
                F80 {
                    signif: u64::from_le_bytes(b[..8].try_into().unwrap_or_default()),
                    sign_exp: u16::from_le_bytes([b[8], b[9]]),
                },
                false,
            )
        }
        MemorySize::Int16 => (
            int_to_f80(i64::from(
                cpu.read_mem_operand(insn, 0, 2, bus)? as u16 as i16
            )),
            false,
        ),
        MemorySize::Int32 => (
            int_to_f80(i64::from(cpu.read_mem_operand(insn, 0, 4, bus)? as i32)),
            false,
        ),
        MemorySize::Int64 => {
            let lo = cpu.read_mem_operand(insn, 0, 4, bus)?;
            let hi = cpu.read_mem_operand(insn, 4, 4, bus)?;
            (
                int_to_f80((u64::from(lo) | (u64::from(hi) << 32)) as i64),
                false,
            )
        }
        MemorySize::Bcd => (bcd_to_f80(read_bytes(cpu, insn, bus, 0)?), false),
        _ => return Err(Exception::InvalidOpcode),
    })
}

/// A signed integer in the register format (always exact).
pub fn int_to_f80(v: i64) -> F80 {
    f80::from_int(v < 0, u128::from(v.unsigned_abs()))
}

/// `FLD m32fp/m64fp/m80fp` and `FLD ST(i)`.
pub fn fld<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    if insn.op_kind(0) == OpKind::Register {
        let i = sti(insn, 0);
        let fpu = &mut cpu.state.fpu;
        if fpu.is_empty(i) {
            if !underflow(fpu) {
                return Ok(());
            }
            push_checked(fpu, f80::INDEFINITE, false);
            return Ok(());
        }
        let v = fpu.st(i);
        push_checked(fpu, v, false);
        return Ok(());
    }
    let (v, denormal) = read_mem_value(cpu, insn, bus)?;
    let fpu = &mut cpu.state.fpu;
    if insn.memory_size() == MemorySize::Float80 {
        push_checked(fpu, v, false);
        return Ok(());
    }
    if !fpu.is_empty(7) {
        push_checked(fpu, v, false);
        return Ok(());
    }
    let mut flags = if denormal { exc::DE } else { 0 };
    let mut v = v;
    if v.class() == Class::SNaN {
        flags |= exc::IE;
        v = v.quiet();
    }
    // An unmasked DE still loads the value (P6 behaviour); an unmasked IE does not.
    if raise(fpu, flags, false) || flags & exc::IE == 0 {
        fpu.push(v);
    }
    Ok(())
}

/// `FILD m16int/m32int/m64int`.
pub fn fild<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (v, _) = read_mem_value(cpu, insn, bus)?;
    push_checked(&mut cpu.state.fpu, v, false);
    Ok(())
}

/// `FBLD m80bcd`.
pub fn fbld<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    fild(cpu, insn, bus)
}

/// `FST`/`FSTP` to m32fp/m64fp/m80fp or ST(i).
pub fn fst<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let pop = insn.mnemonic() != M::Fst;
    let empty = cpu.state.fpu.is_empty(0);
    let v = if empty {
        f80::INDEFINITE
    } else {
        cpu.state.fpu.st(0)
    };
    if insn.op_kind(0) == OpKind::Register {
        let i = sti(insn, 0);
        let fpu = &mut cpu.state.fpu;
        if empty && !underflow(fpu) {
            return Ok(());
        }
        if !empty {
            raise(fpu, 0, false);
        }
        fpu.set_st(i, v);
        if pop {
            fpu.pop();
        }
        return Ok(());
    }
    let mut ctx = Ctx::from_control(cpu.state.fpu.control);
    if empty {
        ctx.flags |= exc::IE | exc::SF;
    }
    let bytes: Vec<u8> = match insn.memory_size() {
        MemorySize::Float32 => (f80_to_ieee(&mut ctx, v, SINGLE) as u32)
            .to_le_bytes()
            .to_vec(),
        MemorySize::Float64 => f80_to_ieee(&mut ctx, v, DOUBLE).to_le_bytes().to_vec(),
        MemorySize::Float80 => {
            let mut b = v.signif.to_le_bytes().to_vec();
            b.extend_from_slice(&v.sign_exp.to_le_bytes());
            b
        }
        _ => return Err(Exception::InvalidOpcode),
    };
    store_and_commit(cpu, insn, bus, ctx, &bytes, pop)
}

/// Stores `bytes` unless an unmasked exception suppresses the store, then
/// folds the flags into the status word and pops if asked. The memory
/// write happens first so a fault leaves the FPU unchanged.
fn store_and_commit<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    ctx: Ctx,
    bytes: &[u8],
    pop: bool,
) -> Result<(), Exception> {
    let unmasked = ctx.flags & 0x3F & !cpu.state.fpu.control;
    let store = unmasked & (exc::IE | exc::DE | exc::OE | exc::UE) == 0;
    if store {
        write_bytes(cpu, insn, bus, 0, bytes)?;
    }
    let fpu = &mut cpu.state.fpu;
    raise(fpu, ctx.flags, ctx.c1 && ctx.flags & exc::SF == 0);
    if pop && store {
        fpu.pop();
    }
    Ok(())
}

/// `FIST m16int/m32int`, `FISTP m16int/m32int/m64int`.
pub fn fist<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let pop = insn.mnemonic() == M::Fistp;
    let empty = cpu.state.fpu.is_empty(0);
    let mut ctx = Ctx::from_control(cpu.state.fpu.control);
    let bits = match insn.memory_size() {
        MemorySize::Int16 => 16,
        MemorySize::Int32 => 32,
        MemorySize::Int64 => 64,
        _ => return Err(Exception::InvalidOpcode),
    };
    let value = if empty {
        ctx.flags |= exc::IE | exc::SF;
        i64::MIN >> (64 - bits)
    } else {
        f80_to_int(&mut ctx, cpu.state.fpu.st(0), bits)
    };
    let bytes = value.to_le_bytes();
    store_and_commit(cpu, insn, bus, ctx, &bytes[..(bits / 8) as usize], pop)
}

/// `FBSTP m80bcd`.
pub fn fbstp<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let mut ctx = Ctx::from_control(cpu.state.fpu.control);
    let bytes = if cpu.state.fpu.is_empty(0) {
        ctx.flags |= exc::IE | exc::SF;
        [0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF]
    } else {
        f80_to_bcd(&mut ctx, cpu.state.fpu.st(0))
    };
    store_and_commit(cpu, insn, bus, ctx, &bytes, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_round_trip() {
        for bits in [
            0x3F80_0000u32,
            0x0000_0001,
            0x807F_FFFF,
            0x7F7F_FFFF,
            0x7FA0_0000,
            0xFF80_0000,
        ] {
            let (v, _) = f32_to_f80(bits);
            let mut ctx = Ctx::from_control(0x037F);
            let back = f80_to_ieee(&mut ctx, v, SINGLE) as u32;
            let expect = if bits == 0x7FA0_0000 {
                0x7FE0_0000
            } else {
                bits
            };
            assert_eq!(back, expect, "{bits:#x}");
        }
    }

    #[test]
    fn bcd_round_trip() {
        let b = [0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0, 0x99, 0x80];
        let v = bcd_to_f80(b);
        let mut ctx = Ctx::from_control(0x037F);
        assert_eq!(f80_to_bcd(&mut ctx, v), b);
    }

    #[test]
    fn int_out_of_range_is_indefinite() {
        let mut ctx = Ctx::from_control(0x037F);
        assert_eq!(f80_to_int(&mut ctx, int_to_f80(40000), 16), -32768);
        assert_eq!(ctx.flags, exc::IE);
        let mut ctx = Ctx::from_control(0x037F);
        assert_eq!(f80_to_int(&mut ctx, int_to_f80(-32768), 16), -32768);
        assert_eq!(ctx.flags, 0);
    }
}
