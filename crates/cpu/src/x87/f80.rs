//! The 80-bit double-extended soft-float core of the x87 (Intel SDM Vol. 1,
//! 4.2.2 "Floating-Point Data Types", 4.8 "Real Numbers and Floating-Point
//! Formats", 4.8.3.x special values, 4.9 "Overview of Floating-Point
//! Exceptions", 8.1.5.2 "Precision Control Field", 8.1.5.3 "Rounding Control
//! Field", 8.3.7 / 8.5 masked responses).
//!
//! Values are unpacked to a sign, an unbounded exponent and a 128-bit
//! significand; every operation computes an exact (or exactly-sticky) result
//! and [`Ctx::round`] rounds it once, to the precision, exponent range and
//! rounding mode of the destination, recording the exception flags and the
//! C1 "rounded up" bit exactly as the hardware does.

use super::F80;

/// Exception flag bits, in their status-word positions (SDM Vol. 1, 8.1.3).
pub mod exc {
    /// Invalid operation.
    pub const IE: u16 = 1 << 0;
    /// Denormal operand.
    pub const DE: u16 = 1 << 1;
    /// Zero divide.
    pub const ZE: u16 = 1 << 2;
    /// Overflow.
    pub const OE: u16 = 1 << 3;
    /// Underflow.
    pub const UE: u16 = 1 << 4;
    /// Precision (inexact).
    pub const PE: u16 = 1 << 5;
    /// Stack fault (with IE; C1 tells overflow from underflow).
    pub const SF: u16 = 1 << 6;
}

/// Rounding control (SDM Vol. 1, table 4-8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rc {
    /// Round to nearest, ties to even.
    Nearest,
    /// Toward minus infinity.
    Down,
    /// Toward plus infinity.
    Up,
    /// Toward zero (truncate).
    Zero,
}

impl Rc {
    /// The RC field (bits 10-11) of a control word.
    pub fn from_control(cw: u16) -> Rc {
        match (cw >> 10) & 3 {
            0 => Rc::Nearest,
            1 => Rc::Down,
            2 => Rc::Up,
            _ => Rc::Zero,
        }
    }
}

/// A destination format: significand precision and normal exponent range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmt {
    /// Significand bits including the integer bit.
    pub prec: u32,
    /// Smallest normal unbiased exponent.
    pub emin: i32,
    /// Largest finite unbiased exponent.
    pub emax: i32,
}

/// Double-extended (the register format).
pub const EXT: Fmt = Fmt {
    prec: 64,
    emin: -16382,
    emax: 16383,
};
/// Double precision (m64fp).
pub const DOUBLE: Fmt = Fmt {
    prec: 53,
    emin: -1022,
    emax: 1023,
};
/// Single precision (m32fp).
pub const SINGLE: Fmt = Fmt {
    prec: 24,
    emin: -126,
    emax: 127,
};

/// The class of an 80-bit value (SDM Vol. 1, table 8-3 and 8.2.2
/// "Unsupported Double Extended-Precision Floating-Point Encodings").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// +0 or -0.
    Zero,
    /// Exponent 0, significand non-zero (pseudo-denormals included).
    Denormal,
    /// Exponent 1..0x7FFE with the integer bit set.
    Normal,
    /// Infinity.
    Inf,
    /// Quiet NaN.
    QNaN,
    /// Signalling NaN.
    SNaN,
    /// Unnormal, pseudo-NaN or pseudo-infinity: an invalid operand on 387+.
    Unsupported,
}

/// The QNaN "real indefinite" (SDM Vol. 1, table 4-3).
pub const INDEFINITE: F80 = F80 {
    signif: 0xC000_0000_0000_0000,
    sign_exp: 0xFFFF,
};

impl F80 {
    /// Builds a value from its sign, biased exponent and significand.
    pub const fn new(sign: bool, exp: u16, signif: u64) -> F80 {
        F80 {
            signif,
            sign_exp: ((sign as u16) << 15) | (exp & 0x7FFF),
        }
    }
    /// Positive or negative zero.
    pub const fn zero(sign: bool) -> F80 {
        F80::new(sign, 0, 0)
    }
    /// Positive or negative infinity.
    pub const fn inf(sign: bool) -> F80 {
        F80::new(sign, 0x7FFF, 1 << 63)
    }
    /// +1.0.
    pub const ONE: F80 = F80::new(false, 0x3FFF, 1 << 63);
    /// The sign bit.
    pub fn sign(self) -> bool {
        self.sign_exp & 0x8000 != 0
    }
    /// The biased exponent field.
    pub fn exp(self) -> u16 {
        self.sign_exp & 0x7FFF
    }
    /// The same value with the sign flipped.
    pub fn negate(self) -> F80 {
        F80 {
            signif: self.signif,
            sign_exp: self.sign_exp ^ 0x8000,
        }
    }
    /// The same value with the sign cleared.
    pub fn abs(self) -> F80 {
        F80 {
            signif: self.signif,
            sign_exp: self.sign_exp & 0x7FFF,
        }
    }
    /// Classifies the encoding.
    pub fn class(self) -> Class {
        let (e, s) = (self.exp(), self.signif);
        match e {
            0 if s == 0 => Class::Zero,
            0 => Class::Denormal,
            0x7FFF if s >> 63 == 0 => Class::Unsupported,
            0x7FFF if s << 1 == 0 => Class::Inf,
            0x7FFF if s & (1 << 62) != 0 => Class::QNaN,
            0x7FFF => Class::SNaN,
            _ if s >> 63 == 0 => Class::Unsupported,
            _ => Class::Normal,
        }
    }
    /// NaN of either kind.
    pub fn is_nan(self) -> bool {
        matches!(self.class(), Class::QNaN | Class::SNaN)
    }
    /// The value with the quiet bit set.
    pub fn quiet(self) -> F80 {
        F80 {
            signif: self.signif | (1 << 62),
            sign_exp: self.sign_exp,
        }
    }
    /// Unpacks a finite non-zero value (normal, denormal or pseudo-denormal)
    /// to its normalized significand and the unbiased exponent of bit 63.
    pub fn unpack(self) -> Unpacked {
        let e = self.exp();
        let sign = self.sign();
        if e == 0 {
            let lz = self.signif.leading_zeros() as i32;
            Unpacked {
                sign,
                exp: -16382 - lz,
                sig: self.signif << lz,
            }
        } else {
            Unpacked {
                sign,
                exp: i32::from(e) - 16383,
                sig: self.signif,
            }
        }
    }
}

/// A finite non-zero value: `sig` has bit 63 set, value = sig * 2^(exp - 63).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unpacked {
    /// Sign.
    pub sign: bool,
    /// Unbiased exponent of bit 63.
    pub exp: i32,
    /// Normalized significand.
    pub sig: u64,
}

/// A rounded result before encoding: zero, finite (bit 63 of `sig` set for
/// a normal; clear for a denormal at `emin`) or infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packed {
    /// Signed zero.
    Zero(bool),
    /// Finite: sign, unbiased exponent of bit 63, significand.
    Finite(bool, i32, u64),
    /// Signed infinity.
    Inf(bool),
}

impl Packed {
    /// Encodes in the 80-bit format (exponent assumed in range).
    pub fn to_f80(self) -> F80 {
        match self {
            Packed::Zero(s) => F80::zero(s),
            Packed::Inf(s) => F80::inf(s),
            Packed::Finite(s, e, sig) => {
                if sig >> 63 == 0 {
                    F80::new(s, 0, sig)
                } else {
                    F80::new(s, (e + 16383).clamp(0, 0x7FFF) as u16, sig)
                }
            }
        }
    }
    /// Encodes as IEEE single or double bits for `fmt` (SINGLE or DOUBLE).
    pub fn to_ieee(self, fmt: Fmt) -> u64 {
        let frac_bits = fmt.prec - 1;
        let exp_bits = if fmt.prec == 24 { 8 } else { 11 };
        let sign_shift = frac_bits + exp_bits;
        let emax_field = (1u64 << exp_bits) - 1;
        match self {
            Packed::Zero(s) => u64::from(s) << sign_shift,
            Packed::Inf(s) => (u64::from(s) << sign_shift) | (emax_field << frac_bits),
            Packed::Finite(s, e, sig) => {
                let frac = (sig >> (64 - fmt.prec)) & ((1 << frac_bits) - 1);
                let field = if sig >> 63 == 0 {
                    0
                } else {
                    (e - fmt.emin + 1) as u64
                };
                (u64::from(s) << sign_shift) | (field << frac_bits) | frac
            }
        }
    }
}

/// Shifts right, OR-ing every bit shifted out into bit 0 ("jamming").
#[inline]
pub fn shr_jam(x: u128, n: u32) -> u128 {
    if n == 0 {
        x
    } else if n >= 128 {
        u128::from(x != 0)
    } else {
        (x >> n) | u128::from(x << (128 - n) != 0)
    }
}

/// The rounding environment of one operation and the flags it raised.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Rounding mode.
    pub rc: Rc,
    /// Precision-control bits for arithmetic results (24, 53 or 64).
    pub prec: u32,
    /// Underflow masked (UM).
    pub um: bool,
    /// Overflow masked (OM).
    pub om: bool,
    /// Exception flags raised so far (status-word positions).
    pub flags: u16,
    /// C1: the last rounding went up in magnitude.
    pub c1: bool,
    /// A memory source was an m32fp/m64fp denormal (normal once widened):
    /// DE is raised where a denormal register operand would raise it.
    pub src_denormal: bool,
}

impl Ctx {
    /// The context of control word `cw`.
    pub fn from_control(cw: u16) -> Ctx {
        let prec = match (cw >> 8) & 3 {
            0 => 24,
            2 => 53,
            _ => 64,
        };
        Ctx {
            rc: Rc::from_control(cw),
            prec,
            um: cw & exc::UE != 0,
            om: cw & exc::OE != 0,
            flags: 0,
            c1: false,
            src_denormal: false,
        }
    }

    /// The register format at the current precision control.
    pub fn ext_pc(&self) -> Fmt {
        Fmt {
            prec: self.prec,
            ..EXT
        }
    }

    /// Rounds `sig` (bits 127..0) to the top `prec` bits; returns the rounded
    /// value (`None` on carry out of bit 127) and whether it was inexact.
    fn round_bits(&self, sign: bool, sig: u128, prec: u32) -> (Option<u128>, bool, bool) {
        let lsb = 1u128 << (128 - prec);
        let rem = sig & (lsb - 1);
        let trunc = sig & !(lsb - 1);
        let half = lsb >> 1;
        let up = match self.rc {
            Rc::Nearest => rem > half || (rem == half && trunc & lsb != 0),
            Rc::Zero => false,
            Rc::Down => sign && rem != 0,
            Rc::Up => !sign && rem != 0,
        };
        if up {
            (trunc.checked_add(lsb), rem != 0, true)
        } else {
            (Some(trunc), rem != 0, false)
        }
    }

    /// Rounds sign * sig * 2^(exp - 127) to `fmt`. `wrap` says the
    /// destination is a register, where unmasked overflow and underflow
    /// deliver the result with its exponent biased by -/+24576 (SDM Vol. 1,
    /// 8.5.4 and 8.5.5). For a memory destination the caller stores nothing
    /// when such an exception is unmasked.
    pub fn round(&mut self, sign: bool, exp: i32, sig: u128, fmt: Fmt, wrap: bool) -> Packed {
        if sig == 0 {
            return Packed::Zero(sign);
        }
        let lz = sig.leading_zeros();
        let sig = sig << lz;
        let mut exp = exp - lz as i32;
        if exp < fmt.emin {
            let (r, inexact, up) = self.round_bits(sign, sig, fmt.prec);
            let tiny = !(exp == fmt.emin - 1 && r.is_none());
            // Unmasked on a register: deliver biased by 24576; when even that
            // is out of range (a huge FSCALE) the result is a signed zero.
            if tiny && !self.um && !wrap {
                // Unmasked on a memory store: nothing is stored, only UE.
                self.flags |= exc::UE;
                self.c1 = false;
                return Packed::Zero(sign);
            }
            if tiny && !self.um && wrap && exp + 24576 < fmt.emin {
                self.flags |= exc::UE | exc::PE;
                self.c1 = false;
                return Packed::Zero(sign);
            }
            if tiny && !self.um && wrap {
                self.flags |= exc::UE;
                if inexact {
                    self.flags |= exc::PE;
                    self.c1 = up;
                }
                let (e, s) = match r {
                    Some(s) => (exp, s),
                    None => (exp + 1, 1 << 127),
                };
                return Packed::Finite(sign, e + 24576, (s >> 64) as u64);
            }
            let d = shr_jam(sig, (fmt.emin - exp) as u32);
            let (r, inexact, up) = self.round_bits(sign, d, fmt.prec);
            let r = r.unwrap_or(1 << 127); // cannot carry out: d < 2^127
            if inexact {
                self.flags |= exc::PE;
                self.c1 = up;
            }
            if tiny && (inexact || !self.um) {
                self.flags |= exc::UE;
            }
            if r == 0 {
                return Packed::Zero(sign);
            }
            return Packed::Finite(sign, fmt.emin, (r >> 64) as u64);
        }
        let (r, inexact, up) = self.round_bits(sign, sig, fmt.prec);
        let r = match r {
            Some(r) => r,
            None => {
                exp += 1;
                1 << 127
            }
        };
        if exp > fmt.emax {
            self.flags |= exc::OE;
            if !self.om && !wrap {
                // Unmasked on a memory store: nothing is stored, only OE.
                self.c1 = false;
                return Packed::Inf(sign);
            }
            if !self.om && wrap && exp - 24576 > fmt.emax {
                // Out of range even biased: infinity, whatever the rounding.
                self.flags |= exc::PE;
                self.c1 = true;
                return Packed::Inf(sign);
            }
            if !self.om && wrap {
                if inexact {
                    self.flags |= exc::PE;
                    self.c1 = up;
                }
                return Packed::Finite(sign, exp - 24576, (r >> 64) as u64);
            }
            self.flags |= exc::PE;
            let to_inf = match self.rc {
                Rc::Nearest => true,
                Rc::Zero => false,
                Rc::Down => sign,
                Rc::Up => !sign,
            };
            self.c1 = to_inf;
            if to_inf {
                return Packed::Inf(sign);
            }
            let max = !0u64 << (64 - fmt.prec);
            return Packed::Finite(sign, fmt.emax, max);
        }
        if inexact {
            self.flags |= exc::PE;
            self.c1 = up;
        }
        Packed::Finite(sign, exp, (r >> 64) as u64)
    }

    /// Rounds to the register format at the current precision control.
    pub fn round_ext(&mut self, sign: bool, exp: i32, sig: u128) -> F80 {
        let fmt = self.ext_pc();
        self.round(sign, exp, sig, fmt, true).to_f80()
    }

    /// Rounds to the full 64-bit register format (precision control ignored).
    pub fn round_ext64(&mut self, sign: bool, exp: i32, sig: u128) -> F80 {
        self.round(sign, exp, sig, EXT, true).to_f80()
    }
}

/// The x87 rule for a NaN result from two operands, at least one a NaN
/// (SDM Vol. 1, table 4-7): an SNaN raises IE; a QNaN beats an SNaN; of two
/// NaNs of the same kind the larger significand wins (then the positive one).
pub fn propagate_nan(ctx: &mut Ctx, a: F80, b: F80) -> F80 {
    let (ca, cb) = (a.class(), b.class());
    let (sa, sb) = (ca == Class::SNaN, cb == Class::SNaN);
    let (na, nb) = (a.is_nan(), b.is_nan());
    if sa || sb {
        ctx.flags |= exc::IE;
    }
    let pick_a = if !nb {
        true
    } else if !na {
        false
    } else if sa != sb {
        sb // the quiet one wins
    } else if a.signif != b.signif {
        (a.signif | (3 << 62)) > (b.signif | (3 << 62))
            || ((a.signif | (3 << 62)) == (b.signif | (3 << 62)) && a.sign_exp <= b.sign_exp)
    } else {
        a.sign_exp <= b.sign_exp
    };
    if pick_a {
        a.quiet()
    } else {
        b.quiet()
    }
}

/// A one-operand NaN result: IE for an SNaN, and the NaN quieted.
pub fn nan1(ctx: &mut Ctx, a: F80) -> F80 {
    if a.class() == Class::SNaN {
        ctx.flags |= exc::IE;
    }
    a.quiet()
}

/// The masked response to an invalid operation.
pub fn invalid(ctx: &mut Ctx) -> F80 {
    ctx.flags |= exc::IE;
    INDEFINITE
}

/// Checks operands for the cases every arithmetic instruction shares:
/// unsupported encodings and NaNs give the result outright. Denormal
/// operands raise DE only once the operation goes on to compute with them
/// (invalid, zero-divide and infinity cases do not), see [`denormal_check`].
pub fn prologue2(ctx: &mut Ctx, a: F80, b: F80) -> Option<F80> {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Unsupported || cb == Class::Unsupported {
        return Some(invalid(ctx));
    }
    if a.is_nan() || b.is_nan() {
        return Some(propagate_nan(ctx, a, b));
    }
    None
}

/// Raises DE if any of `vals` is a denormal.
pub fn denormal_check(ctx: &mut Ctx, vals: &[F80]) {
    if ctx.src_denormal || vals.iter().any(|v| v.class() == Class::Denormal) {
        ctx.flags |= exc::DE;
    }
}

/// The one-operand form of [`prologue2`].
pub fn prologue1(ctx: &mut Ctx, a: F80) -> Option<F80> {
    match a.class() {
        Class::Unsupported => Some(invalid(ctx)),
        Class::QNaN | Class::SNaN => Some(nan1(ctx, a)),
        _ => None,
    }
}

/// a + b (b's sign already flipped for a subtraction), rounded per `ctx`.
pub fn add(ctx: &mut Ctx, a: F80, b: F80) -> F80 {
    if let Some(r) = prologue2(ctx, a, b) {
        return r;
    }
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Inf && cb == Class::Inf && a.sign() != b.sign() {
        return invalid(ctx);
    }
    denormal_check(ctx, &[a, b]);
    match (ca, cb) {
        (Class::Inf, _) => return a,
        (_, Class::Inf) => return b,
        _ => {}
    }
    match (ca, cb) {
        (Class::Zero, Class::Zero) => {
            let s = if a.sign() == b.sign() {
                a.sign()
            } else {
                ctx.rc == Rc::Down
            };
            return F80::zero(s);
        }
        (Class::Zero, _) => {
            let u = b.unpack();
            return ctx.round_ext(u.sign, u.exp, u128::from(u.sig) << 64);
        }
        (_, Class::Zero) => {
            let u = a.unpack();
            return ctx.round_ext(u.sign, u.exp, u128::from(u.sig) << 64);
        }
        _ => {}
    }
    let (mut x, mut y) = (a.unpack(), b.unpack());
    if x.exp < y.exp {
        core::mem::swap(&mut x, &mut y);
    }
    let d = (x.exp - y.exp) as u32;
    let xs = u128::from(x.sig) << 62;
    let ys = shr_jam(u128::from(y.sig) << 62, d);
    let (sign, r) = if x.sign == y.sign {
        (x.sign, xs + ys)
    } else if xs >= ys {
        (x.sign, xs - ys)
    } else {
        (y.sign, ys - xs)
    };
    if r == 0 {
        return F80::zero(ctx.rc == Rc::Down);
    }
    // Bit 125 of xs carries x's exponent, so bit 127 carries exp + 2.
    ctx.round_ext(sign, x.exp + 2, r)
}

/// a * b, rounded per `ctx`.
pub fn mul(ctx: &mut Ctx, a: F80, b: F80) -> F80 {
    if let Some(r) = prologue2(ctx, a, b) {
        return r;
    }
    let sign = a.sign() != b.sign();
    match (a.class(), b.class()) {
        (Class::Inf, Class::Zero) | (Class::Zero, Class::Inf) => return invalid(ctx),
        _ => denormal_check(ctx, &[a, b]),
    }
    match (a.class(), b.class()) {
        (Class::Inf, _) | (_, Class::Inf) => return F80::inf(sign),
        (Class::Zero, _) | (_, Class::Zero) => return F80::zero(sign),
        _ => {}
    }
    let (x, y) = (a.unpack(), b.unpack());
    let p = u128::from(x.sig) * u128::from(y.sig);
    // Bit 126 of the product carries exponent x.exp + y.exp.
    ctx.round_ext(sign, x.exp + y.exp + 1, p)
}

/// The 128-bit quotient of two normalized significands with a sticky bit,
/// and the exponent of its bit 127 relative to `ea - eb`.
fn div_sig(a: u64, b: u64) -> (u128, i32) {
    let n = u128::from(a) << 64;
    let b = u128::from(b);
    let (q1, r1) = (n / b, n % b);
    let n2 = r1 << 64;
    let (q2, r2) = (n2 / b, n2 % b);
    let sticky = u128::from(r2 != 0);
    if q1 >> 64 != 0 {
        // q1 has 65 bits: a >= b.
        ((q1 << 63) | (q2 >> 1) | (q2 & 1) | sticky, 0)
    } else {
        ((q1 << 64) | q2 | sticky, -1)
    }
}

/// a / b, rounded per `ctx`.
pub fn div(ctx: &mut Ctx, a: F80, b: F80) -> F80 {
    if let Some(r) = prologue2(ctx, a, b) {
        return r;
    }
    let sign = a.sign() != b.sign();
    match (a.class(), b.class()) {
        (Class::Inf, Class::Inf) | (Class::Zero, Class::Zero) => return invalid(ctx),
        (Class::Inf, _) => {}
        (_, Class::Zero) => {
            ctx.flags |= exc::ZE;
            return F80::inf(sign);
        }
        _ => {}
    }
    denormal_check(ctx, &[a, b]);
    match (a.class(), b.class()) {
        (Class::Inf, _) => return F80::inf(sign),
        (_, Class::Inf) => return F80::zero(sign),
        (Class::Zero, _) => return F80::zero(sign),
        _ => {}
    }
    let (x, y) = (a.unpack(), b.unpack());
    let (q, e) = div_sig(x.sig, y.sig);
    ctx.round_ext(sign, x.exp - y.exp + e, q)
}

/// Integer square root of a u128 and whether it is exact.
pub fn isqrt(n: u128) -> (u128, u128) {
    if n == 0 {
        return (0, 0);
    }
    let mut rem = n;
    let mut res: u128 = 0;
    let mut bit: u128 = 1 << ((127 - n.leading_zeros()) & !1);
    while bit != 0 {
        if rem >= res + bit {
            rem -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    (res, rem)
}

/// The square root, rounded per `ctx`.
pub fn sqrt(ctx: &mut Ctx, a: F80) -> F80 {
    if let Some(r) = prologue1(ctx, a) {
        return r;
    }
    match a.class() {
        Class::Zero => return a,
        Class::Inf if !a.sign() => return a,
        _ if a.sign() => return invalid(ctx),
        _ => denormal_check(ctx, &[a]),
    }
    let u = a.unpack();
    // value = sig * 2^(exp - 63); make the power of two even.
    let e = u.exp - 63;
    let (n, half) = if e & 1 == 0 {
        (u128::from(u.sig) << 64, e / 2 - 32)
    } else {
        (u128::from(u.sig) << 63, (e + 1) / 2 - 32)
    };
    let (r, rem) = isqrt(n);
    // r has 64 bits; the next bit is set iff rem > r, and then the rest is non-zero.
    let extra: u128 = if rem > r {
        3 << 62
    } else {
        u128::from(rem != 0)
    };
    let sig = (r << 64) | extra;
    // r's bit 63 has weight 2^(63 + half), so bit 127 of sig carries 63 + half.
    ctx.round_ext(false, 63 + half, sig)
}

/// Rounds to an integral value in the register format (FRNDINT's core,
/// also used by FIST and FBSTP): returns the rounded magnitude as an
/// integer when it fits in a u128 (`None` for huge values, already integral).
pub fn round_to_int(ctx: &mut Ctx, u: Unpacked) -> (Option<u128>, bool) {
    if u.exp >= 63 {
        // Already an integer: sig * 2^(exp - 63).
        let sh = u.exp - 63;
        if sh < 64 {
            return (Some(u128::from(u.sig) << sh), false);
        }
        return (None, false);
    }
    let frac_bits = 63 - u.exp; // >= 1
    let full = u128::from(u.sig) << 64;
    let (int, rem, half) = if frac_bits >= 128 {
        (0u128, 1u128, u128::MAX) // tiny: rem "less than half", non-zero
    } else {
        let x = shr_jam(full, frac_bits as u32);
        let frac_mask_bits = frac_bits as u32;
        let int = x >> 64;
        let _ = frac_mask_bits;
        let rem = x & ((1u128 << 64) - 1);
        (int, rem, 1u128 << 63)
    };
    if rem == 0 {
        return (Some(int), false);
    }
    let up = match ctx.rc {
        Rc::Nearest => rem > half || (rem == half && int & 1 == 1),
        Rc::Zero => false,
        Rc::Down => u.sign,
        Rc::Up => !u.sign,
    };
    ctx.flags |= exc::PE;
    ctx.c1 = up;
    (Some(int + u128::from(up)), true)
}

/// Converts an integer magnitude with a sign to the register format (exact
/// for anything up to 64 bits).
pub fn from_int(sign: bool, mag: u128) -> F80 {
    if mag == 0 {
        return F80::zero(sign);
    }
    let lz = mag.leading_zeros();
    let sig = mag << lz;
    let exp = 127 - lz as i32;
    let mut ctx = Ctx::from_control(0x037F);
    ctx.round_ext64(sign, exp, sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx::from_control(0x037F)
    }

    #[test]
    fn one_plus_one_is_two() {
        let r = add(&mut ctx(), F80::ONE, F80::ONE);
        assert_eq!(r, F80::new(false, 0x4000, 1 << 63));
    }

    #[test]
    fn sqrt_of_four_and_two() {
        let four = F80::new(false, 0x4001, 1 << 63);
        assert_eq!(sqrt(&mut ctx(), four), F80::new(false, 0x4000, 1 << 63));
        let mut c = ctx();
        let r = sqrt(&mut c, F80::new(false, 0x4000, 1 << 63));
        assert_eq!(r, F80::new(false, 0x3FFF, 0xB504_F333_F9DE_6484));
        assert!(c.flags & exc::PE != 0);
    }

    #[test]
    fn divide_by_zero_and_invalid() {
        let mut c = ctx();
        assert_eq!(div(&mut c, F80::ONE, F80::zero(true)), F80::inf(true));
        assert_eq!(c.flags, exc::ZE);
        let mut c = ctx();
        assert_eq!(div(&mut c, F80::zero(false), F80::zero(true)), INDEFINITE);
        assert_eq!(c.flags, exc::IE);
    }

    #[test]
    fn isqrt_small() {
        assert_eq!(isqrt(17), (4, 1));
        assert_eq!(isqrt(u128::MAX).0, u128::from(u64::MAX));
    }
}
