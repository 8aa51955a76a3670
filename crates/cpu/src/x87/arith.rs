//! x87 basic arithmetic (Intel SDM Vol. 1, 8.3.5 "Basic Arithmetic
//! Instructions", 8.3.6 FPREM/FPREM1, 8.1.5.2 precision control; Vol. 2A
//! FADD/FADDP/FIADD, FSUB/FSUBP/FISUB, FSUBR/FSUBRP/FISUBR, FMUL/FMULP/
//! FIMUL, FDIV/FDIVP/FIDIV, FDIVR/FDIVRP/FIDIVR, FSQRT, FABS, FCHS,
//! FRNDINT, FSCALE, FXTRACT, FPREM, FPREM1).

use super::convert::read_mem_value;
use super::f80::{self, exc, Class, Ctx, Rc};
use super::{overflow, raise, sti, sw, underflow, F80};
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// The two-operand operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// dst + src
    Add,
    /// dst - src
    Sub,
    /// src - dst
    Subr,
    /// dst * src
    Mul,
    /// dst / src
    Div,
    /// src / dst
    Divr,
}

/// Computes `dst op src` in `ctx`.
pub fn compute(ctx: &mut Ctx, op: Op, dst: F80, src: F80) -> F80 {
    match op {
        Op::Add => f80::add(ctx, dst, src),
        Op::Sub => sub(ctx, dst, src),
        Op::Subr => sub(ctx, src, dst),
        Op::Mul => f80::mul(ctx, dst, src),
        Op::Div => f80::div(ctx, dst, src),
        Op::Divr => f80::div(ctx, src, dst),
    }
}

/// a - b: the sign of a NaN b must survive, so only flip numbers.
fn sub(ctx: &mut Ctx, a: F80, b: F80) -> F80 {
    if b.is_nan() || b.class() == Class::Unsupported {
        return f80::add(ctx, a, b);
    }
    f80::add(ctx, a, b.negate())
}

/// Every encoding of FADD FSUB FSUBR FMUL FDIV FDIVR, their popping forms
/// and the integer-operand FIxxx forms.
pub fn binary<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    op: Op,
) -> Result<(), Exception> {
    let pop = matches!(
        insn.mnemonic(),
        M::Faddp | M::Fsubp | M::Fsubrp | M::Fmulp | M::Fdivp | M::Fdivrp
    );
    let (dst_i, src, src_empty, mem_denormal) =
        if insn.op_count() == 1 && insn.op_kind(0) == OpKind::Memory {
            let (v, d) = read_mem_value(cpu, insn, bus)?;
            (0, v, false, d)
        } else if insn.op_count() >= 2 {
            let (d, s) = (sti(insn, 0), sti(insn, 1));
            let fpu = &cpu.state.fpu;
            (d, fpu.st(s), fpu.is_empty(s), false)
        } else {
            // DE C1 etc. without operands: ST(1) op ST(0), pop.
            let fpu = &cpu.state.fpu;
            (1, fpu.st(0), fpu.is_empty(0), false)
        };
    let fpu = &mut cpu.state.fpu;
    if src_empty || fpu.is_empty(dst_i) {
        if underflow(fpu) {
            fpu.set_st(dst_i, f80::INDEFINITE);
            if pop {
                fpu.pop();
            }
        }
        return Ok(());
    }
    let dst = fpu.st(dst_i);
    let mut ctx = Ctx::from_control(fpu.control);
    ctx.src_denormal = mem_denormal;
    let r = compute(&mut ctx, op, dst, src);
    if raise(fpu, ctx.flags, ctx.c1) {
        fpu.set_st(dst_i, r);
        if pop {
            fpu.pop();
        }
    }
    Ok(())
}

/// The one-operand operations on ST(0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// FSQRT
    Sqrt,
    /// FABS
    Abs,
    /// FCHS
    Chs,
    /// FRNDINT
    Rndint,
}

/// FRNDINT's core: ST(0) rounded to an integer by RC (precision control
/// does not apply).
pub fn rndint(ctx: &mut Ctx, a: F80) -> F80 {
    if let Some(r) = f80::prologue1(ctx, a) {
        return r;
    }
    match a.class() {
        Class::Zero | Class::Inf => return a,
        _ => f80::denormal_check(ctx, &[a]),
    }
    let u = a.unpack();
    if u.exp >= 63 {
        return a;
    }
    let (m, _) = f80::round_to_int(ctx, u);
    let m = m.unwrap_or(0);
    f80::from_int(u.sign, m)
}

/// FSQRT, FABS, FCHS, FRNDINT on ST(0).
pub fn unary(cpu: &mut Cpu, op: Unary) -> Result<(), Exception> {
    let fpu = &mut cpu.state.fpu;
    if fpu.is_empty(0) {
        if underflow(fpu) {
            fpu.set_st(0, f80::INDEFINITE);
        }
        return Ok(());
    }
    let a = fpu.st(0);
    let mut ctx = Ctx::from_control(fpu.control);
    let r = match op {
        Unary::Sqrt => f80::sqrt(&mut ctx, a),
        Unary::Abs => a.abs(),
        Unary::Chs => a.negate(),
        Unary::Rndint => rndint(&mut ctx, a),
    };
    if raise(fpu, ctx.flags, ctx.c1) {
        fpu.set_st(0, r);
    }
    Ok(())
}

/// FSCALE's core: a * 2^trunc(b).
pub fn scale(ctx: &mut Ctx, a: F80, b: F80) -> F80 {
    if let Some(r) = f80::prologue2(ctx, a, b) {
        return r;
    }
    let (ca, cb) = (a.class(), b.class());
    match (ca, cb) {
        (Class::Zero, Class::Inf) if !b.sign() => return f80::invalid(ctx),
        (Class::Inf, Class::Inf) if b.sign() => return f80::invalid(ctx),
        _ => f80::denormal_check(ctx, &[a, b]),
    }
    match (ca, cb) {
        (Class::Zero, _) | (Class::Inf, _) => return a,
        (_, Class::Inf) => {
            return if b.sign() {
                F80::zero(a.sign())
            } else {
                F80::inf(a.sign())
            }
        }
        _ => {}
    }
    let n: i64 = if cb == Class::Zero {
        0
    } else {
        let ub = b.unpack();
        if ub.exp < 0 {
            0
        } else if ub.exp > 30 {
            if ub.sign {
                -(1 << 31)
            } else {
                1 << 31
            }
        } else {
            let m = i64::try_from(ub.sig >> (63 - ub.exp)).unwrap_or(i64::MAX);
            if ub.sign {
                -m
            } else {
                m
            }
        }
    };
    let ua = a.unpack();
    let e = (i64::from(ua.exp) + n).clamp(-(1 << 20), 1 << 20) as i32;
    ctx.round_ext64(ua.sign, e, u128::from(ua.sig) << 64)
}

/// `FSCALE`: ST(0) = ST(0) * 2^trunc(ST(1)).
pub fn fscale(cpu: &mut Cpu) -> Result<(), Exception> {
    let fpu = &mut cpu.state.fpu;
    if fpu.is_empty(0) || fpu.is_empty(1) {
        if underflow(fpu) {
            fpu.set_st(0, f80::INDEFINITE);
        }
        return Ok(());
    }
    let mut ctx = Ctx::from_control(fpu.control);
    let r = scale(&mut ctx, fpu.st(0), fpu.st(1));
    if raise(fpu, ctx.flags, ctx.c1) {
        fpu.set_st(0, r);
    }
    Ok(())
}

/// FXTRACT's core: (exponent, significand) of `a`.
pub fn xtract(ctx: &mut Ctx, a: F80) -> (F80, F80) {
    if let Some(r) = f80::prologue1(ctx, a) {
        return (r, r);
    }
    match a.class() {
        Class::Zero => {
            ctx.flags |= exc::ZE;
            (F80::inf(true), a)
        }
        Class::Inf => (F80::inf(false), a),
        _ => {
            f80::denormal_check(ctx, &[a]);
            let u = a.unpack();
            let e = super::convert::int_to_f80(i64::from(u.exp));
            (e, F80::new(u.sign, 0x3FFF, u.sig))
        }
    }
}

/// `FXTRACT`: ST(0) becomes the exponent, then the significand is pushed.
pub fn fxtract(cpu: &mut Cpu) -> Result<(), Exception> {
    let fpu = &mut cpu.state.fpu;
    if fpu.is_empty(0) {
        if underflow(fpu) {
            fpu.set_st(0, f80::INDEFINITE);
            if fpu.is_empty(7) {
                fpu.push(f80::INDEFINITE);
            }
        }
        return Ok(());
    }
    if !fpu.is_empty(7) {
        if overflow(fpu) {
            fpu.set_st(0, f80::INDEFINITE);
            fpu.push(f80::INDEFINITE);
        }
        return Ok(());
    }
    let mut ctx = Ctx::from_control(fpu.control);
    let (e, s) = xtract(&mut ctx, fpu.st(0));
    if raise(fpu, ctx.flags, ctx.c1) {
        fpu.set_st(0, e);
        fpu.push(s);
    }
    Ok(())
}

/// The outcome of a partial remainder: the value and the condition codes
/// (C0, C3, C1 = quotient bits 2, 1, 0; C2 = incomplete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rem {
    /// The (partial) remainder.
    pub value: F80,
    /// C0 C1 C2 C3 in their status-word positions.
    pub cc: u16,
}

/// FPREM (`ieee` false: truncating quotient) and FPREM1 (`ieee` true:
/// quotient rounded to nearest even) of a by b.
pub fn prem(ctx: &mut Ctx, a: F80, b: F80, ieee: bool) -> Rem {
    if let Some(r) = f80::prologue2(ctx, a, b) {
        return Rem { value: r, cc: 0 };
    }
    match (a.class(), b.class()) {
        (Class::Inf, _) | (_, Class::Zero) => {
            return Rem {
                value: f80::invalid(ctx),
                cc: 0,
            }
        }
        _ => f80::denormal_check(ctx, &[a, b]),
    }
    match (a.class(), b.class()) {
        (Class::Zero, _) => return Rem { value: a, cc: 0 },
        (_, Class::Inf) => {
            // The remainder is a itself; a denormal is normalized on the way.
            let u = a.unpack();
            return Rem {
                value: ctx.round_ext64(u.sign, u.exp, u128::from(u.sig) << 64),
                cc: 0,
            };
        }
        _ => {}
    }
    let (x, y) = (a.unpack(), b.unpack());
    let d = x.exp - y.exp;
    if d < 0 && !(ieee && d == -1) {
        return Rem {
            value: ctx.round_ext64(x.sign, x.exp, u128::from(x.sig) << 64),
            cc: 0,
        };
    }
    // Reduce by 2^(d - n) * b when the exponents are 64 or more apart.
    let (shift, partial) = if d >= 64 {
        (d - ((d & 31) | 32), true)
    } else {
        (0, false)
    };
    let dd = d - shift; // -1 ..= 63
    let big_a = u128::from(x.sig) << (dd + 1);
    let big_b = u128::from(y.sig) << 1;
    let mut q = big_a / big_b;
    let mut r = big_a % big_b;
    let mut sign = x.sign;
    if ieee && !partial && (2 * r > big_b || (2 * r == big_b && q & 1 == 1)) {
        q += 1;
        r = big_b - r;
        sign = !sign;
    }
    // r's bit 0 weighs 2^(y.exp - 64 + shift).
    let value = if r == 0 {
        F80::zero(x.sign)
    } else {
        ctx.round_ext64(sign, y.exp + shift - 64 + 127, r)
    };
    let cc = if partial {
        sw::C2
    } else {
        (if q & 4 != 0 { sw::C0 } else { 0 })
            | (if q & 2 != 0 { sw::C3 } else { 0 })
            | (if q & 1 != 0 { sw::C1 } else { 0 })
    };
    Rem { value, cc }
}

/// `FPREM` / `FPREM1`: ST(0) = remainder of ST(0) / ST(1).
pub fn fprem(cpu: &mut Cpu, ieee: bool) -> Result<(), Exception> {
    let fpu = &mut cpu.state.fpu;
    if fpu.is_empty(0) || fpu.is_empty(1) {
        if underflow(fpu) {
            fpu.set_st(0, f80::INDEFINITE);
        }
        return Ok(());
    }
    let mut ctx = Ctx::from_control(fpu.control);
    ctx.rc = Rc::Nearest;
    let rem = prem(&mut ctx, fpu.st(0), fpu.st(1), ieee);
    if raise(fpu, ctx.flags, rem.cc & sw::C1 != 0) {
        fpu.status = (fpu.status & !(sw::C0 | sw::C2 | sw::C3)) | (rem.cc & !sw::C1);
        fpu.set_st(0, rem.value);
    }
    Ok(())
}
