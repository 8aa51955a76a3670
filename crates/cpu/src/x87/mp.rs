//! A small multiple-precision float (128-bit significand, unbounded
//! exponent) for the x87 transcendental instructions (Intel SDM Vol. 1,
//! 8.3.9 "Trigonometric Instructions", 8.3.10 "Logarithmic, Exponential
//! and Scale", 8.3.8 "Pi"; the SDM promises results within 1 ulp, so they
//! are computed here with about 120 correct bits and rounded once).
//!
//! Every operation truncates to 128 bits, so each loses at most a couple of
//! units in the 127th bit; the series below take a few dozen steps, which
//! leaves well over 100 correct bits. Argument reduction for the
//! trigonometric functions multiplies by 2/pi kept to 384 bits
//! (Payne-Hanek style), which is exact enough for every |x| < 2^63.

use super::f80::{shr_jam, Unpacked};

/// sign * m * 2^(exp - 127); `m` has bit 127 set unless the value is zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q {
    /// Negative.
    pub neg: bool,
    /// Exponent of bit 127 of `m`.
    pub exp: i32,
    /// Significand.
    pub m: u128,
}

/// The full 256-bit product of two u128 as (high, low).
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
    let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & u128::from(u64::MAX)) + (p10 & u128::from(u64::MAX));
    let lo = (p00 & u128::from(u64::MAX)) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

impl Q {
    /// Zero.
    pub const ZERO: Q = Q {
        neg: false,
        exp: 0,
        m: 0,
    };
    /// One.
    pub const ONE: Q = Q {
        neg: false,
        exp: 0,
        m: 1 << 127,
    };
    /// pi/2 (the 128 leading bits of pi).
    pub const PIO2: Q = Q {
        neg: false,
        exp: 0,
        m: 0xc90fdaa22168c234c4c6628b80dc1cd1,
    };
    /// pi.
    pub const PI: Q = Q {
        neg: false,
        exp: 1,
        m: 0xc90fdaa22168c234c4c6628b80dc1cd1,
    };
    /// ln 2.
    pub const LN2: Q = Q {
        neg: false,
        exp: -1,
        m: 0xb17217f7d1cf79abc9e3b39803f2f6af,
    };

    /// Normalizes `m` (moving its top bit to bit 127).
    pub fn new(neg: bool, exp: i32, m: u128) -> Q {
        if m == 0 {
            return Q::ZERO;
        }
        let lz = m.leading_zeros();
        Q {
            neg,
            exp: exp - lz as i32,
            m: m << lz,
        }
    }
    /// An exact copy of a finite non-zero 80-bit value.
    pub fn from_unpacked(u: Unpacked) -> Q {
        Q {
            neg: u.sign,
            exp: u.exp,
            m: u128::from(u.sig) << 64,
        }
    }
    /// A small integer.
    pub fn from_int(v: i64) -> Q {
        Q::new(v < 0, 127, u128::from(v.unsigned_abs()))
    }
    /// Whether the value is zero.
    pub fn is_zero(self) -> bool {
        self.m == 0
    }
    /// -self.
    pub fn negate(self) -> Q {
        Q {
            neg: !self.neg && self.m != 0,
            ..self
        }
    }
    /// |self|.
    pub fn abs(self) -> Q {
        Q { neg: false, ..self }
    }
    /// self * 2^n.
    pub fn ldexp(self, n: i32) -> Q {
        if self.m == 0 {
            self
        } else {
            Q {
                exp: self.exp + n,
                ..self
            }
        }
    }
    /// self + b.
    pub fn plus(self, b: Q) -> Q {
        if self.m == 0 {
            return b;
        }
        if b.m == 0 {
            return self;
        }
        let (x, y) = if (self.exp, self.m) >= (b.exp, b.m) {
            (self, b)
        } else {
            (b, self)
        };
        let d = (x.exp - y.exp) as u32;
        // Jam what is shifted out into bit 0 so a tiny addend still moves
        // the result in the right direction for the final rounding.
        let xm = (x.m >> 1) | (x.m & 1);
        let ym = shr_jam((y.m >> 1) | (y.m & 1), d);
        if x.neg == y.neg {
            Q::new(x.neg, x.exp + 1, xm + ym)
        } else {
            Q::new(x.neg, x.exp + 1, xm - ym)
        }
    }
    /// self - b.
    pub fn minus(self, b: Q) -> Q {
        self.plus(b.negate())
    }
    /// self * b.
    pub fn times(self, b: Q) -> Q {
        if self.m == 0 || b.m == 0 {
            return Q::ZERO;
        }
        let (hi, lo) = mul_wide(self.m, b.m);
        Q::new(
            self.neg != b.neg,
            self.exp + b.exp + 1,
            hi | u128::from(lo != 0),
        )
    }
    /// self / b (b non-zero).
    pub fn over(self, b: Q) -> Q {
        if self.m == 0 || b.m == 0 {
            return Q::ZERO;
        }
        let (mut r, d) = (self.m >> 1, b.m >> 1);
        let mut q: u128 = 0;
        for _ in 0..128 {
            q <<= 1;
            if r >= d {
                r -= d;
                q |= 1;
            }
            r <<= 1;
        }
        // q = floor(self.m / b.m * 2^127), with a sticky bit for the rest.
        Q::new(self.neg != b.neg, self.exp - b.exp, q | u128::from(r != 0))
    }
    /// self / k for a small positive integer k.
    pub fn div_int(self, k: u64) -> Q {
        self.over(Q::from_int(k as i64))
    }
    /// The square root of |self|, by Newton's method from an f64 guess.
    pub fn sqrt(self) -> Q {
        if self.m == 0 {
            return Q::ZERO;
        }
        let e2 = self.exp & !1; // even, rounded down
        let t = Q {
            neg: false,
            exp: self.exp - e2,
            m: self.m,
        }; // in [1, 4)
        let tf = (t.m >> 64) as f64 / (1u128 << 63) as f64 * f64::from(1 << t.exp);
        let mut x = Q::new(false, 65, (tf.sqrt() * (1u64 << 62) as f64) as u128);
        for _ in 0..4 {
            x = x.plus(t.over(x)).ldexp(-1);
        }
        x.ldexp(e2 / 2)
    }
    /// Compares magnitudes.
    pub fn abs_ge(self, b: Q) -> bool {
        if b.m == 0 {
            return true;
        }
        if self.m == 0 {
            return false;
        }
        (self.exp, self.m) >= (b.exp, b.m)
    }
}

/// sin(r) and cos(r) for |r| <= pi/4 by their Taylor series.
pub fn sin_cos_small(r: Q) -> (Q, Q) {
    let r2 = r.times(r);
    let mut term = r; // r^(2n+1)/(2n+1)!
    let mut sin = r;
    let mut n = 1u64;
    while !term.is_zero() && term.exp > sin.exp - 130 {
        term = term.times(r2).div_int((2 * n) * (2 * n + 1)).negate();
        sin = sin.plus(term);
        n += 1;
    }
    let mut term = Q::ONE;
    let mut cos = Q::ONE;
    let mut n = 1u64;
    while !term.is_zero() && term.exp > -130 {
        term = term.times(r2).div_int((2 * n - 1) * (2 * n)).negate();
        cos = cos.plus(term);
        n += 1;
    }
    (sin, cos)
}

/// floor(2/pi * 2^384), little-endian 64-bit words.
const TWO_OVER_PI: [u64; 6] = [
    0x06492eea09d1921c,
    0xb7246e3a424dd2e0,
    0xfe5163abdebbc561,
    0xdb6295993c439041,
    0xfc2757d1f534ddc0,
    0xa2f9836e4e441529,
];

/// Reduces x (|x| < 2^63) to r in [-pi/4, pi/4] and the quadrant k mod 4
/// with x = k * pi/2 + r.
pub fn reduce_pio2(x: Unpacked) -> (Q, u32) {
    let xq = Q::from_unpacked(x);
    if x.exp < -1 || (x.exp == -1 && x.sig < 0xC90F_DAA2_2168_C234) {
        return (xq, 0); // already within pi/4
    }
    // P = sig * T: 448 bits, binary point F = 447 - exp bits up.
    let mut p = [0u64; 7];
    let mut carry: u128 = 0;
    for i in 0..6 {
        let v = u128::from(x.sig) * u128::from(TWO_OVER_PI[i]) + carry;
        p[i] = v as u64;
        carry = v >> 64;
    }
    p[6] = carry as u64;
    let f = (447 - x.exp) as usize; // 385 ..= 448
    let bit = |p: &[u64; 7], i: usize| -> u64 { (p[i / 64] >> (i % 64)) & 1 };
    // Integer part mod 4 and the first fraction bit.
    let mut k = 0u32;
    for j in 0..2 {
        if f + j < 448 {
            k |= (bit(&p, f + j) as u32) << j;
        }
    }
    let mut neg = false;
    let half = bit(&p, f - 1) == 1;
    // The fraction as a 448-bit number below the point (clear the integer part).
    let mut frac = p;
    for (i, w) in frac.iter_mut().enumerate() {
        let lo = i * 64;
        if lo >= f {
            *w = 0;
        } else if lo + 64 > f {
            *w &= (1u64 << (f - lo)) - 1;
        }
    }
    if half {
        // frac := 2^F - frac, and round the quotient up.
        k = (k + 1) & 3;
        neg = true;
        let mut borrow = 0u128;
        let mut out = [0u64; 7];
        for i in 0..7 {
            let v = (0u128)
                .wrapping_sub(u128::from(frac[i]))
                .wrapping_sub(borrow);
            out[i] = v as u64;
            borrow = u128::from(v >> 64 != 0);
        }
        for (i, w) in out.iter_mut().enumerate() {
            let lo = i * 64;
            if lo >= f {
                *w = 0;
            } else if lo + 64 > f {
                *w &= (1u64 << (f - lo)) - 1;
            }
        }
        frac = out;
    }
    // The top 128 bits of frac.
    let top = (0..7).rev().find(|&i| frac[i] != 0);
    let Some(ti) = top else { return (Q::ZERO, k) };
    let h = ti * 64 + 63 - frac[ti].leading_zeros() as usize; // highest set bit
    let mut m: u128 = 0;
    for j in 0..128 {
        let pos = h as isize - j as isize;
        if pos < 0 {
            break;
        }
        m |= u128::from(bit(&frac, pos as usize)) << (127 - j);
    }
    let fq = Q {
        neg,
        exp: h as i32 - f as i32,
        m,
    };
    let r = fq.times(Q::PIO2);
    let r = if x.sign { r.negate() } else { r };
    let k = if x.sign { (4 - k) & 3 } else { k };
    (r, k)
}

/// e^y - 1 by its Taylor series (|y| <= 1).
pub fn expm1_small(y: Q) -> Q {
    let mut term = y;
    let mut sum = y;
    let mut n = 2u64;
    while !term.is_zero() && term.exp > sum.exp - 130 {
        term = term.times(y).div_int(n);
        sum = sum.plus(term);
        n += 1;
    }
    sum
}

/// atanh(s) = s + s^3/3 + s^5/5 + ... (|s| <= 0.2).
pub fn atanh_small(s: Q) -> Q {
    let s2 = s.times(s);
    let mut pow = s;
    let mut sum = s;
    let mut n = 3u64;
    loop {
        pow = pow.times(s2);
        let term = pow.div_int(n);
        if term.is_zero() || term.exp < sum.exp - 130 {
            break;
        }
        sum = sum.plus(term);
        n += 2;
    }
    sum
}

/// ln(x) for x > 0.
pub fn ln(x: Q) -> Q {
    // x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
    let mut e = x.exp;
    let mut m = Q { exp: 0, ..x };
    if m.m > 0xB504_F333_F9DE_6484_597D_89B3_754A_BE9F {
        m = m.ldexp(-1);
        e += 1;
    }
    let s = m.minus(Q::ONE).over(m.plus(Q::ONE));
    atanh_small(s)
        .ldexp(1)
        .plus(Q::LN2.times(Q::from_int(i64::from(e))))
}

/// ln(1 + x) for x > -1, accurate for small x.
pub fn ln1p(x: Q) -> Q {
    let s = x.over(x.plus(Q::ONE.ldexp(1)));
    if s.exp < -3 {
        atanh_small(s).ldexp(1)
    } else {
        ln(x.plus(Q::ONE))
    }
}

/// atan(t) = t - t^3/3 + ... (|t| <= 0.21).
fn atan_series(t: Q) -> Q {
    let t2 = t.times(t);
    let mut pow = t;
    let mut sum = t;
    let mut n = 3u64;
    let mut neg = true;
    loop {
        pow = pow.times(t2);
        let term = pow.div_int(n);
        if term.is_zero() || term.exp < sum.exp - 130 {
            break;
        }
        sum = if neg { sum.minus(term) } else { sum.plus(term) };
        neg = !neg;
        n += 2;
    }
    sum
}

/// atan(z) for 0 <= z <= 1.
pub fn atan_unit(z: Q) -> Q {
    // atan(z) = 2 atan(z / (1 + sqrt(1 + z^2))), twice.
    let mut t = z;
    for _ in 0..2 {
        t = t.over(Q::ONE.plus(Q::ONE.plus(t.times(t)).sqrt()));
    }
    atan_series(t).ldexp(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_f64(q: Q) -> f64 {
        let v = (q.m >> 64) as f64 / (1u128 << 63) as f64 * 2f64.powi(q.exp);
        if q.neg {
            -v
        } else {
            v
        }
    }

    #[test]
    fn basic_ops() {
        let three = Q::from_int(3);
        assert!((to_f64(Q::ONE.over(three)) - 1.0 / 3.0).abs() < 1e-16);
        assert!((to_f64(Q::from_int(2).sqrt()) - 2f64.sqrt()).abs() < 1e-16);
        assert!((to_f64(Q::from_int(3).sqrt()) - 3f64.sqrt()).abs() < 1e-16);
        let (s, c) = sin_cos_small(Q::ONE.ldexp(-1));
        assert!((to_f64(s) - 0.5f64.sin()).abs() < 1e-16);
        assert!((to_f64(c) - 0.5f64.cos()).abs() < 1e-16);
        assert!((to_f64(ln(Q::from_int(10))) - 10f64.ln()).abs() < 1e-15);
        assert!((to_f64(atan_unit(Q::ONE)) - core::f64::consts::FRAC_PI_4).abs() < 1e-16);
        assert!((to_f64(expm1_small(Q::ONE)) - (1f64.exp() - 1.0)).abs() < 1e-15);
    }
}
