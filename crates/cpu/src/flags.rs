//! Lazy evaluation of the arithmetic status flags (CF PF AF ZF SF OF,
//! Intel SDM Vol. 1, 3.4.3.1 "Status Flags").
//!
//! Most instructions set flags that nothing reads. Instead of computing
//! six bits per instruction, the CPU records the last operation, its
//! operands, result and width in [`LazyFlags`]; a flag is computed only
//! when read. This is the one representation both engines use: the JIT
//! stores the same five fields at block exits.

use crate::state::{eflags, CpuState};

/// Which operation produced the status flags held lazily.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum LazyOp {
    /// The status bits in `eflags` are authoritative.
    #[default]
    None = 0,
    /// `res = dst + src` (ADD, and ADC with carry-in 0).
    Add,
    /// `res = dst + src + 1` (ADC with carry-in 1).
    Adc,
    /// `res = dst - src` (SUB, CMP, SBB with borrow-in 0, NEG with dst = 0).
    Sub,
    /// `res = dst - src - 1` (SBB with borrow-in 1).
    Sbb,
    /// AND/OR/XOR/TEST: CF = OF = AF = 0.
    Logic,
    /// INC: like ADD of 1 but CF comes from `eflags`.
    Inc,
    /// DEC: like SUB of 1 but CF comes from `eflags`.
    Dec,
}

/// The last flag-setting operation (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct LazyFlags {
    /// The operation; `None` means `eflags` holds the status bits.
    pub op: LazyOp,
    /// Operand width in bytes: 1, 2 or 4.
    pub width: u32,
    /// Destination (first) operand before the operation.
    pub dst: u32,
    /// Source (second) operand.
    pub src: u32,
    /// The result, masked to `width`.
    pub res: u32,
}

/// The value mask of an operand `width` bytes wide.
#[inline]
pub fn width_mask(width: u32) -> u32 {
    match width {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    }
}

/// The sign bit of an operand `width` bytes wide.
#[inline]
pub fn sign_bit(width: u32) -> u32 {
    1 << (width * 8 - 1)
}

/// PF: set when the low byte of `v` has an even number of ones.
#[inline]
pub fn parity(v: u32) -> bool {
    (v as u8).count_ones().is_multiple_of(2)
}

/// `flag` if `cond` holds, else 0: for building flag words.
#[inline]
pub fn flag_if(cond: bool, flag: u32) -> u32 {
    if cond {
        flag
    } else {
        0
    }
}

/// Status-flag bits for a result: ZF, SF and PF of `res` at `width`.
#[inline]
pub fn szp(res: u32, width: u32) -> u32 {
    let r = res & width_mask(width);
    let mut f = 0;
    if r == 0 {
        f |= eflags::ZF;
    }
    if r & sign_bit(width) != 0 {
        f |= eflags::SF;
    }
    if parity(r) {
        f |= eflags::PF;
    }
    f
}

impl LazyFlags {
    /// Computes the six status bits this operation defines.
    pub fn status(&self, stored: u32) -> u32 {
        let (d, s, r, w) = (self.dst, self.src, self.res, self.width);
        let sign = sign_bit(w);
        let mask = width_mask(w);
        let mut f = szp(r, w);
        let af = (d ^ s ^ r) & 0x10 != 0;
        let (cf, of) = match self.op {
            LazyOp::None => return stored & eflags::STATUS,
            LazyOp::Add => (r < (d & mask), (d ^ r) & (s ^ r) & sign != 0),
            LazyOp::Adc => (r <= (d & mask), (d ^ r) & (s ^ r) & sign != 0),
            LazyOp::Sub => ((d & mask) < (s & mask), (d ^ s) & (d ^ r) & sign != 0),
            LazyOp::Sbb => ((d & mask) <= (s & mask), (d ^ s) & (d ^ r) & sign != 0),
            LazyOp::Logic => (false, false),
            LazyOp::Inc => (stored & eflags::CF != 0, r == sign),
            LazyOp::Dec => (stored & eflags::CF != 0, r == sign - 1),
        };
        if cf {
            f |= eflags::CF;
        }
        if of {
            f |= eflags::OF;
        }
        if af && self.op != LazyOp::Logic {
            f |= eflags::AF;
        }
        f
    }
}

/// Flag access on the CPU state, resolving lazy flags as needed.
pub trait Flags {
    /// The full EFLAGS value with the status bits evaluated.
    fn flags(&self) -> u32;
    /// Evaluates the lazy status bits into `eflags` and drops the record.
    fn commit_flags(&mut self);
    /// Records a lazy flag-setting operation.
    fn set_lazy(&mut self, op: LazyOp, width: u32, dst: u32, src: u32, res: u32);
    /// Sets the status bits in `mask` to those of `values` (evaluating the rest first).
    fn set_status(&mut self, mask: u32, values: u32);
    /// Carry flag.
    fn cf(&self) -> bool;
    /// Zero flag.
    fn zf(&self) -> bool;
    /// Sign flag.
    fn sf(&self) -> bool;
    /// Overflow flag.
    fn of(&self) -> bool;
    /// Parity flag.
    fn pf(&self) -> bool;
    /// Direction flag.
    fn df(&self) -> bool;
    /// Whether condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc,
    /// SDM Vol. 1, B.1 "Condition Codes") holds.
    fn condition(&self, cc: u8) -> bool;
}

impl Flags for CpuState {
    #[inline]
    fn flags(&self) -> u32 {
        if self.lazy.op == LazyOp::None {
            self.eflags
        } else {
            (self.eflags & !eflags::STATUS) | self.lazy.status(self.eflags)
        }
    }
    #[inline]
    fn commit_flags(&mut self) {
        if self.lazy.op != LazyOp::None {
            self.eflags = self.flags();
            self.lazy.op = LazyOp::None;
        }
    }
    #[inline]
    fn set_lazy(&mut self, op: LazyOp, width: u32, dst: u32, src: u32, res: u32) {
        if matches!(op, LazyOp::Inc | LazyOp::Dec) && self.lazy.op != LazyOp::None {
            // INC/DEC keep CF: make the stored bit current first.
            let cf = self.cf();
            self.eflags = (self.eflags & !eflags::CF) | u32::from(cf);
        }
        self.lazy = LazyFlags {
            op,
            width,
            dst,
            src,
            res,
        };
    }
    #[inline]
    fn set_status(&mut self, mask: u32, values: u32) {
        // Evaluate only the lazy bits that survive: none when `mask` covers
        // every status bit, just AF when it covers the other five (shifts).
        let op = self.lazy.op;
        if op != LazyOp::None {
            let kept = eflags::STATUS & !mask;
            if kept == eflags::AF {
                let l = &self.lazy;
                let af = if op == LazyOp::Logic {
                    0
                } else {
                    (l.dst ^ l.src ^ l.res) & eflags::AF
                };
                self.eflags = (self.eflags & !eflags::AF) | af;
                self.lazy.op = LazyOp::None;
            } else if kept == 0 {
                self.lazy.op = LazyOp::None;
            } else {
                self.commit_flags();
            }
        }
        self.eflags = (self.eflags & !mask) | (values & mask);
    }
    #[inline]
    fn cf(&self) -> bool {
        let l = &self.lazy;
        match l.op {
            LazyOp::None | LazyOp::Inc | LazyOp::Dec => self.eflags & eflags::CF != 0,
            LazyOp::Add => l.res < (l.dst & width_mask(l.width)),
            LazyOp::Adc => l.res <= (l.dst & width_mask(l.width)),
            LazyOp::Sub => (l.dst & width_mask(l.width)) < (l.src & width_mask(l.width)),
            LazyOp::Sbb => (l.dst & width_mask(l.width)) <= (l.src & width_mask(l.width)),
            LazyOp::Logic => false,
        }
    }
    #[inline]
    fn zf(&self) -> bool {
        if self.lazy.op == LazyOp::None {
            self.eflags & eflags::ZF != 0
        } else {
            self.lazy.res & width_mask(self.lazy.width) == 0
        }
    }
    #[inline]
    fn sf(&self) -> bool {
        if self.lazy.op == LazyOp::None {
            self.eflags & eflags::SF != 0
        } else {
            self.lazy.res & sign_bit(self.lazy.width) != 0
        }
    }
    #[inline]
    fn of(&self) -> bool {
        self.flags() & eflags::OF != 0
    }
    #[inline]
    fn pf(&self) -> bool {
        if self.lazy.op == LazyOp::None {
            self.eflags & eflags::PF != 0
        } else {
            parity(self.lazy.res)
        }
    }
    #[inline]
    fn df(&self) -> bool {
        self.eflags & eflags::DF != 0
    }
    #[inline]
    fn condition(&self, cc: u8) -> bool {
        let r = match cc >> 1 {
            0 => self.of(),
            1 => self.cf(),
            2 => self.zf(),
            3 => self.cf() || self.zf(),
            4 => self.sf(),
            5 => self.pf(),
            6 => self.sf() != self.of(),
            _ => self.zf() || (self.sf() != self.of()),
        };
        r != (cc & 1 != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CpuModel;

    fn eval(op: LazyOp, width: u32, dst: u32, src: u32, res: u32) -> u32 {
        let mut s = CpuState::new(CpuModel::P6);
        s.set_lazy(op, width, dst, src, res);
        s.flags() & eflags::STATUS
    }

    #[test]
    fn add_byte_overflow_and_carry() {
        // 0x7F + 1 = 0x80: OF, SF, AF set; no carry.
        assert_eq!(
            eval(LazyOp::Add, 1, 0x7F, 1, 0x80),
            eflags::OF | eflags::SF | eflags::AF
        );
        // 0xFF + 1 = 0x00: CF, ZF, AF, PF.
        assert_eq!(
            eval(LazyOp::Add, 1, 0xFF, 1, 0),
            eflags::CF | eflags::ZF | eflags::AF | eflags::PF
        );
    }

    #[test]
    fn adc_with_all_ones_carries() {
        // 0x1234 + 0xFFFF + 1 = 0x1234 with carry out.
        assert_ne!(eval(LazyOp::Adc, 2, 0x1234, 0xFFFF, 0x1234) & eflags::CF, 0);
    }

    #[test]
    fn sub_borrow_and_sbb_equal_operands() {
        assert_ne!(eval(LazyOp::Sub, 4, 1, 2, 0xFFFF_FFFF) & eflags::CF, 0);
        assert_ne!(eval(LazyOp::Sbb, 2, 5, 5, 0xFFFF) & eflags::CF, 0);
        assert_eq!(eval(LazyOp::Sub, 2, 5, 5, 0) & eflags::CF, 0);
    }

    #[test]
    fn inc_keeps_carry() {
        let mut s = CpuState::new(CpuModel::P6);
        s.set_lazy(LazyOp::Sub, 1, 0, 1, 0xFF); // CF = 1
        s.set_lazy(LazyOp::Inc, 1, 0xFF, 1, 0);
        assert!(s.cf() && s.zf());
    }

    #[test]
    fn set_status_keeps_the_lazy_bits_outside_the_mask() {
        let status = eflags::STATUS;
        let ops = [
            LazyOp::Add,
            LazyOp::Adc,
            LazyOp::Sub,
            LazyOp::Sbb,
            LazyOp::Logic,
            LazyOp::Inc,
            LazyOp::Dec,
        ];
        let masks = [
            status,
            status & !eflags::AF,
            eflags::CF | eflags::OF,
            eflags::ZF,
        ];
        for op in ops {
            for (d, sv, r) in [(0x0F, 1, 0x10), (0x7F, 0x8F, 0xEE), (0, 0, 0)] {
                for mask in masks {
                    for values in [0, status] {
                        let mut a = CpuState::new(CpuModel::P6);
                        a.eflags |= eflags::CF;
                        a.set_lazy(op, 1, d, sv, r);
                        let mut b = a.clone();
                        a.commit_flags();
                        a.eflags = (a.eflags & !mask) | (values & mask);
                        b.set_status(mask, values);
                        assert_eq!(a.flags(), b.flags(), "{op:?} {mask:#x} {values:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn conditions_follow_flags() {
        let mut s = CpuState::new(CpuModel::P6);
        s.set_lazy(LazyOp::Sub, 4, 1, 2, 0xFFFF_FFFF); // 1 cmp 2
        assert!(s.condition(0x2)); // B
        assert!(s.condition(0xC)); // L
        assert!(!s.condition(0x4)); // E
        assert!(s.condition(0xE)); // LE
        assert!(!s.condition(0x7)); // A
    }
}
