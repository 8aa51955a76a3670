//! x87 transcendental instructions (Intel SDM Vol. 1, 8.3.9
//! "Trigonometric Instructions", 8.3.10 "Logarithmic, Exponential, and
//! Scale", 8.3.8 "Pi" on argument reduction; Vol. 2A F2XM1, FCOS, FPATAN,
//! FPTAN, FSIN, FSINCOS, FYL2X, FYL2XP1 with their special-value tables).
//!
//! Results are computed with the [`super::mp`] 128-bit float, with exact
//! argument reduction (2/pi to 384 bits), and rounded once to 64 bits by
//! RC; they are within 1 ulp of the exact value (correctly rounded except
//! in astronomically rare near-ties). Real Intel parts reduce with a 66-bit
//! pi, so for large arguments this is more exact than the hardware.
//! FSIN, FCOS, FSINCOS and FPTAN leave an operand with |x| >= 2^63 in place
//! and set C2.

use super::f80::{self, exc, Class, Ctx};
use super::mp::{self, Q};
use super::{overflow, raise, sw, underflow, F80};
use crate::cpu::Cpu;
use crate::exception::Exception;
use iced_x86::{Instruction, Mnemonic as M};

/// Which trigonometric function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trig {
    /// sine
    Sin,
    /// cosine
    Cos,
    /// tangent
    Tan,
}

/// Rounds an approximation (or an exact value) to the 64-bit register format.
fn finish(ctx: &mut Ctx, q: Q, exact: bool) -> F80 {
    if q.is_zero() {
        return F80::zero(q.neg);
    }
    ctx.round_ext64(q.neg, q.exp, q.m | u128::from(!exact))
}

/// sin, cos or tan of `x`; `None` when |x| >= 2^63 (C2 = 1, operand kept).
pub fn trig(ctx: &mut Ctx, x: F80, which: Trig) -> Option<F80> {
    if let Some(r) = f80::prologue1(ctx, x) {
        return Some(r);
    }
    match x.class() {
        Class::Inf => return Some(f80::invalid(ctx)),
        Class::Zero => return Some(if which == Trig::Cos { F80::ONE } else { x }),
        Class::Denormal => ctx.flags |= exc::DE,
        _ => {}
    }
    let u = x.unpack();
    if u.exp >= 63 {
        return None;
    }
    let (r, k) = mp::reduce_pio2(u);
    let (s, c) = mp::sin_cos_small(r);
    let q = match (which, k) {
        (Trig::Sin, 0) | (Trig::Cos, 3) => s,
        (Trig::Sin, 1) | (Trig::Cos, 0) => c,
        (Trig::Sin, 2) | (Trig::Cos, 1) => s.negate(),
        (Trig::Sin, _) | (Trig::Cos, _) => c.negate(),
        (Trig::Tan, k) if k & 1 == 0 => s.over(c),
        (Trig::Tan, _) => c.over(s).negate(),
    };
    Some(finish(ctx, q, false))
}

/// 2^x - 1.
pub fn f2xm1(ctx: &mut Ctx, x: F80) -> F80 {
    if let Some(r) = f80::prologue1(ctx, x) {
        return r;
    }
    match x.class() {
        Class::Inf => return if x.sign() { F80::ONE.negate() } else { x },
        Class::Zero => return x,
        Class::Denormal => ctx.flags |= exc::DE,
        _ => {}
    }
    let u = x.unpack();
    if u.exp == 0 && u.sig == 1 << 63 {
        // x = +-1: results 1 and -0.5, exact, yet the hardware reports PE.
        ctx.flags |= exc::PE;
        return if u.sign {
            F80::new(true, 0x3FFE, 1 << 63)
        } else {
            F80::ONE
        };
    }
    if u.exp < 0 {
        return finish(
            ctx,
            mp::expm1_small(Q::from_unpacked(u).times(Q::LN2)),
            false,
        );
    }
    // Outside the documented domain (|x| > 1) the result is undefined; the
    // P6-family parts measured leave the operand unchanged and raise PE.
    ctx.flags |= exc::PE;
    x
}

/// y * log2(x) (FYL2X), with the special cases of its table.
pub fn yl2x(ctx: &mut Ctx, x: F80, y: F80) -> F80 {
    if let Some(r) = f80::prologue2(ctx, x, y) {
        return r;
    }
    let (cx, cy) = (x.class(), y.class());
    if x.sign() && cx != Class::Zero {
        return f80::invalid(ctx);
    }
    f80::denormal_check(ctx, &[x, y]);
    let one = x == F80::ONE;
    match (cx, cy) {
        (Class::Zero, Class::Zero) => return f80::invalid(ctx),
        (Class::Zero, Class::Inf) => return F80::inf(!y.sign()),
        (Class::Zero, _) => {
            ctx.flags |= exc::ZE;
            return F80::inf(!y.sign());
        }
        (Class::Inf, Class::Zero) => return f80::invalid(ctx),
        (Class::Inf, _) => return F80::inf(y.sign()),
        (_, Class::Inf) if one => return f80::invalid(ctx),
        (_, Class::Inf) => return F80::inf(y.sign() != (x.exp() < 0x3FFF)),
        (_, Class::Zero) => return F80::zero(y.sign() != (x.exp() < 0x3FFF)),
        _ => {}
    }
    if one {
        return F80::zero(y.sign());
    }
    let u = x.unpack();
    let yq = Q::from_unpacked(y.unpack());
    if u.sig == 1 << 63 {
        // A power of two: y * e is exact in 128 bits (the hardware still
        // reports PE).
        let r = finish(ctx, yq.times(Q::from_int(i64::from(u.exp))), true);
        ctx.flags |= exc::PE;
        return r;
    }
    let l = mp::ln(Q::from_unpacked(u)).over(Q::LN2);
    finish(ctx, yq.times(l), false)
}

/// y * log2(x + 1) (FYL2XP1).
pub fn yl2xp1(ctx: &mut Ctx, x: F80, y: F80) -> F80 {
    if let Some(r) = f80::prologue2(ctx, x, y) {
        return r;
    }
    let (cx, cy) = (x.class(), y.class());
    if x.sign() && cx == Class::Inf {
        return f80::invalid(ctx);
    }
    f80::denormal_check(ctx, &[x, y]);
    match (cx, cy) {
        (Class::Zero, Class::Inf) | (Class::Inf, Class::Zero) => return f80::invalid(ctx),
        (Class::Zero, _) => return F80::zero(x.sign() != y.sign()),
        (Class::Inf, _) => return F80::inf(y.sign()),
        (_, Class::Inf) => return F80::inf(y.sign() != x.sign()),
        (_, Class::Zero) => return F80::zero(y.sign() != x.sign()),
        _ => {}
    }
    if x.sign() && x.unpack().exp >= 0 {
        // x <= -1 is outside the domain; the P6-family parts measured
        // return x itself (with PE).
        ctx.flags |= exc::PE;
        return x;
    }
    let xq = Q::from_unpacked(x.unpack());
    let yq = Q::from_unpacked(y.unpack());
    let l = mp::ln1p(xq).over(Q::LN2);
    finish(ctx, yq.times(l), false)
}

/// atan2(y, x) (FPATAN: ST(1) = arctan(ST(1) / ST(0))).
pub fn patan(ctx: &mut Ctx, x: F80, y: F80) -> F80 {
    if let Some(r) = f80::prologue2(ctx, x, y) {
        return r;
    }
    f80::denormal_check(ctx, &[x, y]);
    let (cx, cy) = (x.class(), y.class());
    let pi = |ctx: &mut Ctx, frac: i32, neg: bool| -> F80 {
        // pi * 2^-frac, or 3pi/4 for frac = -1.
        let q = if frac == -1 {
            Q::PI.plus(Q::PI.ldexp(1)).ldexp(-2)
        } else {
            Q::PI.ldexp(-frac)
        };
        finish(ctx, if neg { q.negate() } else { q }, false)
    };
    match (cx, cy) {
        (_, Class::Zero) => return if x.sign() { pi(ctx, 0, y.sign()) } else { y },
        (Class::Inf, Class::Inf) => {
            return if x.sign() {
                pi(ctx, -1, y.sign())
            } else {
                pi(ctx, 2, y.sign())
            }
        }
        (Class::Inf, _) => {
            return if x.sign() {
                pi(ctx, 0, y.sign())
            } else {
                F80::zero(y.sign())
            }
        }
        (_, Class::Inf) | (Class::Zero, _) => return pi(ctx, 1, y.sign()),
        _ => {}
    }
    let xq = Q::from_unpacked(x.unpack());
    let yq = Q::from_unpacked(y.unpack());
    let (ax, ay) = (xq.abs(), yq.abs());
    let mut a = if ay.abs_ge(ax) {
        Q::PIO2.minus(mp::atan_unit(ax.over(ay)))
    } else {
        mp::atan_unit(ay.over(ax))
    };
    if x.sign() {
        a = Q::PI.minus(a);
    }
    if y.sign() {
        a = a.negate();
    }
    finish(ctx, a, false)
}

/// FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1.
pub fn execute(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Exception> {
    let m = insn.mnemonic();
    let fpu = &mut cpu.state.fpu;
    let two = matches!(m, M::Fpatan | M::Fyl2x | M::Fyl2xp1);
    if fpu.is_empty(0) || (two && fpu.is_empty(1)) {
        if underflow(fpu) {
            let dst = usize::from(two);
            fpu.set_st(dst, f80::INDEFINITE);
            if two {
                fpu.pop();
            } else if matches!(m, M::Fsincos | M::Fptan) && fpu.is_empty(7) {
                fpu.push(f80::INDEFINITE);
            }
        }
        return Ok(());
    }
    let pushes = matches!(m, M::Fsincos | M::Fptan);
    if pushes && !fpu.is_empty(7) {
        if overflow(fpu) {
            fpu.set_st(0, f80::INDEFINITE);
            fpu.push(f80::INDEFINITE);
        }
        return Ok(());
    }
    let mut ctx = Ctx::from_control(fpu.control);
    let x = fpu.st(0);
    match m {
        M::Fsin | M::Fcos | M::Fptan | M::Fsincos => {
            let which = match m {
                M::Fsin => Trig::Sin,
                M::Fcos => Trig::Cos,
                M::Fptan => Trig::Tan,
                _ => Trig::Sin,
            };
            let Some(r) = trig(&mut ctx, x, which) else {
                fpu.status = (fpu.status & !(sw::C1 | sw::C2)) | sw::C2;
                return Ok(());
            };
            let second = match m {
                M::Fsincos if r.is_nan() => Some(r),
                M::Fsincos => trig(&mut ctx, x, Trig::Cos),
                M::Fptan if r.is_nan() => Some(r),
                M::Fptan => Some(F80::ONE),
                _ => None,
            };
            if raise(fpu, ctx.flags, ctx.c1) {
                fpu.status &= !sw::C2;
                fpu.set_st(0, r);
                if let Some(v) = second {
                    fpu.push(v);
                }
            }
        }
        M::F2xm1 => {
            let r = f2xm1(&mut ctx, x);
            if raise(fpu, ctx.flags, ctx.c1) {
                fpu.set_st(0, r);
            }
        }
        _ => {
            let y = fpu.st(1);
            let r = match m {
                M::Fpatan => patan(&mut ctx, x, y),
                M::Fyl2x => yl2x(&mut ctx, x, y),
                _ => yl2xp1(&mut ctx, x, y),
            };
            if raise(fpu, ctx.flags, ctx.c1) {
                fpu.set_st(1, r);
                fpu.pop();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::x87::transcend_vectors::VECTORS;

    /// A key where adjacent finite values differ by one.
    pub(crate) fn key(v: F80) -> i128 {
        let e = i128::from(v.exp());
        let mag = (e << 63) + i128::from(v.signif & !(1 << 63));
        if v.sign() {
            -mag
        } else {
            mag
        }
    }

    pub(crate) fn ulps(a: F80, b: F80) -> i128 {
        (key(a) - key(b)).abs()
    }

    fn eval(f: u8, x: F80, y: F80) -> F80 {
        let mut ctx = Ctx::from_control(0x037F);
        match f {
            0 => trig(&mut ctx, x, Trig::Sin).unwrap(),
            1 => trig(&mut ctx, x, Trig::Cos).unwrap(),
            2 => trig(&mut ctx, x, Trig::Tan).unwrap(),
            3 => f2xm1(&mut ctx, x),
            4 => yl2x(&mut ctx, x, y),
            5 => yl2xp1(&mut ctx, x, y),
            _ => patan(&mut ctx, x, y),
        }
    }

    #[test]
    fn x87_transcendentals_within_one_ulp_of_reference() {
        let mut exact = 0;
        for &(f, xs, xm, ys, ym, rs, rm) in VECTORS {
            let x = F80 {
                sign_exp: xs,
                signif: xm,
            };
            let y = F80 {
                sign_exp: ys,
                signif: ym,
            };
            let want = F80 {
                sign_exp: rs,
                signif: rm,
            };
            let got = eval(f, x, y);
            let d = ulps(got, want);
            assert!(d <= 1, "function {f} x={xs:04x}:{xm:016x} y={ys:04x}:{ym:016x}: got {got:x?}, want {want:x?}");
            exact += usize::from(d == 0);
        }
        // Correct rounding is expected everywhere but in near-ties.
        assert!(
            exact * 100 >= VECTORS.len() * 99,
            "{exact} of {} exact",
            VECTORS.len()
        );
    }

    #[test]
    fn x87_trig_large_operand_sets_c2_and_special_values() {
        let mut ctx = Ctx::from_control(0x037F);
        assert_eq!(
            trig(&mut ctx, F80::new(false, 0x3FFF + 63, 1 << 63), Trig::Sin),
            None
        );
        assert_eq!(
            trig(&mut ctx, F80::zero(true), Trig::Sin),
            Some(F80::zero(true))
        );
        assert_eq!(trig(&mut ctx, F80::zero(true), Trig::Cos), Some(F80::ONE));
        assert_eq!(ctx.flags, 0);
        assert_eq!(
            trig(&mut ctx, F80::inf(false), Trig::Cos),
            Some(f80::INDEFINITE)
        );
        assert_eq!(ctx.flags, exc::IE);
        let mut ctx = Ctx::from_control(0x037F);
        assert_eq!(
            f2xm1(&mut ctx, F80::ONE.negate()),
            F80::new(true, 0x3FFE, 1 << 63)
        );
        assert_eq!(
            yl2x(&mut ctx, F80::new(false, 0x4002, 1 << 63), F80::ONE),
            F80::new(false, 0x4000, 0xC000_0000_0000_0000)
        );
        assert_eq!(
            ctx.flags,
            exc::PE,
            "exact, but PE as the hardware reports it"
        );
        let mut ctx = Ctx::from_control(0x037F);
        assert_eq!(yl2x(&mut ctx, F80::zero(false), F80::ONE), F80::inf(true));
        assert_eq!(ctx.flags, exc::ZE);
    }
}
