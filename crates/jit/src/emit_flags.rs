//! Status flags in generated code, in the interpreter's lazy
//! representation ([`oxide86_cpu::LazyFlags`]; SDM Vol. 1, 3.4.3.1 and
//! B.1 "Condition Codes").
//!
//! A flag-setting instruction only assigns the five lazy Variables (op,
//! width, dst, src, res); they reach the state at the block's exits.
//! A consumer (Jcc, SETcc, CMOVcc) whose producer is in the same block
//! computes just the bits it needs from the Variables, with the formulas
//! of `LazyFlags::status`; otherwise it calls a helper on the state.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use oxide86_cpu::flags::{sign_bit, LazyOp};
use oxide86_cpu::state::eflags;

use crate::emit_mem::width_mask;
use crate::translate::{off, Emitter};

impl Emitter<'_> {
    /// Records a flag-setting operation, as `Flags::set_lazy` does, and
    /// its CF in the `cf` Variable. INC and DEC keep CF: `cf` stays, and
    /// the state's EFLAGS.CF, which the interpreter reads under an INC or
    /// DEC record, is written only where the state is ([`Emitter::sync_cf`]).
    pub fn record_flags(&mut self, op: LazyOp, w: u32, dst: Value, src: Value, res: Value) {
        if matches!(op, LazyOp::Inc | LazyOp::Dec) {
            // CF is kept: a deferred producer's must be defined first.
            self.materialize_deferred();
        } else {
            // Every status flag is replaced.
            self.deferred = None;
            let cf = self.cf_of(op, w, dst, src, res);
            self.b.def_var(self.cf, cf);
        }
        self.op_pending = true;
        self.b.def_var(self.lz[2], dst);
        self.b.def_var(self.lz[3], src);
        self.b.def_var(self.lz[4], res);
        self.lazy_dirty = true;
        self.lazy_synced = false;
        self.known = Some((op, w));
    }

    /// CF (an I8 0/1) of the operation `op` known at translation time
    /// (`Flags::cf`'s formulas); `None`, INC and DEC take the `cf` Variable.
    fn cf_of(&mut self, op: LazyOp, w: u32, d: Value, s: Value, r: Value) -> Value {
        let mask = i64::from(width_mask(w));
        match op {
            LazyOp::Add | LazyOp::Adc => {
                let dm = self.mask(d, mask);
                let cc = if op == LazyOp::Add {
                    IntCC::UnsignedLessThan
                } else {
                    IntCC::UnsignedLessThanOrEqual
                };
                self.b.ins().icmp(cc, r, dm)
            }
            LazyOp::Sub | LazyOp::Sbb => {
                let dm = self.mask(d, mask);
                let sm = self.mask(s, mask);
                let cc = if op == LazyOp::Sub {
                    IntCC::UnsignedLessThan
                } else {
                    IntCC::UnsignedLessThanOrEqual
                };
                self.b.ins().icmp(cc, dm, sm)
            }
            LazyOp::Logic => self.zero_i8(),
            LazyOp::None | LazyOp::Inc | LazyOp::Dec => self.b.use_var(self.cf),
        }
    }

    /// Defines the `cf` Variable from the lazy Variables as they were
    /// loaded from the state (at entry and after a helper): the formulas of
    /// `Flags::cf` chosen by the run-time op with selects, branch-free, so
    /// that nothing is computed where no instruction reads it.
    pub(crate) fn load_cf(&mut self) {
        let op = self.b.use_var(self.lz[0]);
        let w = self.b.use_var(self.lz[1]);
        let d = self.b.use_var(self.lz[2]);
        let s = self.b.use_var(self.lz[3]);
        let r = self.b.use_var(self.lz[4]);
        // The width mask: u32::MAX >> (32 - 8 * width).
        let bits = self.b.ins().imul_imm_u(w, 8);
        let thirty_two = self.b.ins().iconst(types::I32, 32);
        let sh = self.b.ins().isub(thirty_two, bits);
        let ones = self.b.ins().iconst(types::I32, -1);
        let m = self.b.ins().ushr(ones, sh);
        let (dm, sm, rm) = (
            self.b.ins().band(d, m),
            self.b.ins().band(s, m),
            self.b.ins().band(r, m),
        );
        let ef = self.load_st(types::I32, off::EFLAGS);
        let stored = self.b.ins().band_imm_u(ef, i64::from(eflags::CF));
        let mut cf = self.b.ins().icmp_imm_u(IntCC::NotEqual, stored, 0);
        for (op_is, cc, x, y) in [
            (LazyOp::Logic, None, dm, dm),
            (LazyOp::Sbb, Some(IntCC::UnsignedLessThanOrEqual), dm, sm),
            (LazyOp::Sub, Some(IntCC::UnsignedLessThan), dm, sm),
            (LazyOp::Adc, Some(IntCC::UnsignedLessThanOrEqual), rm, dm),
            (LazyOp::Add, Some(IntCC::UnsignedLessThan), rm, dm),
        ] {
            let v = match cc {
                Some(cc) => self.b.ins().icmp(cc, x, y),
                None => self.zero_i8(),
            };
            let is = self.b.ins().icmp_imm_u(IntCC::Equal, op, op_is as i64);
            cf = self.b.ins().select(is, v, cf);
        }
        self.b.def_var(self.cf, cf);
    }

    /// Writes the `cf` Variable to the state's EFLAGS.CF, which is what
    /// the interpreter reads under an INC or DEC record (and harmless
    /// under any other: CF then comes from the record). Needed only in
    /// functions that record an INC or DEC.
    pub(crate) fn sync_cf(&mut self) {
        if !self.cf_sync {
            return;
        }
        let cf = self.b.use_var(self.cf);
        let cf = self.b.ins().uextend(types::I32, cf);
        let ef = self.load_st(types::I32, off::EFLAGS);
        let ef = self.b.ins().band_imm_u(ef, i64::from(!eflags::CF));
        let ef = self.b.ins().bor(ef, cf);
        self.store_st(ef, off::EFLAGS);
    }

    /// Stores the lazy Variables to the state (before a helper reads them).
    /// Skipped when they still equal the state's record.
    pub fn store_lazy(&mut self) {
        self.materialize_deferred();
        if self.lazy_synced {
            return;
        }
        self.settle_lazy_op();
        for i in 0..5 {
            let v = self.b.use_var(self.lz[i]);
            self.store_st(v, off::lazy(i));
        }
        self.sync_cf();
        self.lazy_synced = true;
    }

    /// Whether condition `cc` (0 = O ... 15 = G) holds, as an I8 0/1.
    pub fn condition(&mut self, cc: u8) -> Value {
        self.materialize_deferred();
        if self.known.is_none() && cc >> 1 == 1 {
            // B/AE read only CF, which the `cf` Variable holds anyway.
            let c = self.b.use_var(self.cf);
            let want = if cc & 1 != 0 { 0 } else { 1 };
            return self.b.ins().icmp_imm_u(IntCC::Equal, c, want);
        }
        if let Some(v) = self.direct_condition(cc) {
            return v;
        }
        let Some(_) = self.known else {
            self.store_lazy();
            let st = self.st;
            let c = self.b.ins().iconst(types::I32, i64::from(cc));
            let r = self
                .call_helper(
                    crate::helpers::jit_condition as *const () as usize,
                    &[self.ptr, types::I32],
                    Some(types::I32),
                    &[st, c],
                )
                .unwrap_or(c);
            return self.b.ins().icmp_imm_u(IntCC::NotEqual, r, 0);
        };
        let v = match cc >> 1 {
            0 => self.flag_of(),
            1 => self.flag_cf(),
            2 => self.flag_zf(),
            3 => {
                let c = self.flag_cf();
                let z = self.flag_zf();
                self.b.ins().bor(c, z)
            }
            4 => self.flag_sf(),
            5 => self.flag_pf(),
            6 => {
                let s = self.flag_sf();
                let o = self.flag_of();
                self.b.ins().bxor(s, o)
            }
            _ => {
                let s = self.flag_sf();
                let o = self.flag_of();
                let l = self.b.ins().bxor(s, o);
                let z = self.flag_zf();
                self.b.ins().bor(l, z)
            }
        };
        if cc & 1 != 0 {
            self.b.ins().icmp_imm_u(IntCC::Equal, v, 0)
        } else {
            v
        }
    }

    /// Condition `cc` as one comparison of the record's values, for the
    /// producers where a native compare gives it (SDM Vol. 1, B.1: after
    /// CMP/SUB, B is `dst < src` unsigned, L is `dst < src` signed, ...;
    /// Z and S of any known op come from the result), so that the branch
    /// that reads it lowers to a compare and a conditional jump.
    fn direct_condition(&mut self, cc: u8) -> Option<Value> {
        let (op, w) = self.known?;
        if op == LazyOp::None {
            return None;
        }
        let sub = op == LazyOp::Sub;
        // The comparison for the even code, its inverse for the odd one,
        // and whether it compares the result with 0 (else dst with src).
        use IntCC as C;
        let (yes, no, of_result) = match cc >> 1 {
            2 => (C::Equal, C::NotEqual, true),
            4 if w == 4 => (C::SignedLessThan, C::SignedGreaterThanOrEqual, true),
            1 if sub => (C::UnsignedLessThan, C::UnsignedGreaterThanOrEqual, false),
            3 if sub => (C::UnsignedLessThanOrEqual, C::UnsignedGreaterThan, false),
            6 if sub && w == 4 => (C::SignedLessThan, C::SignedGreaterThanOrEqual, false),
            7 if sub && w == 4 => (C::SignedLessThanOrEqual, C::SignedGreaterThan, false),
            _ => return None,
        };
        let c = if cc & 1 != 0 { no } else { yes };
        let mask = i64::from(width_mask(w));
        Some(if of_result {
            let r = self.b.use_var(self.lz[4]);
            let rm = self.mask(r, mask);
            self.b.ins().icmp_imm_u(c, rm, 0)
        } else {
            let d = self.b.use_var(self.lz[2]);
            let s = self.b.use_var(self.lz[3]);
            let (dm, sm) = (self.mask(d, mask), self.mask(s, mask));
            self.b.ins().icmp(c, dm, sm)
        })
    }

    fn lazy_vals(&mut self) -> (LazyOp, u32, Value, Value, Value) {
        self.materialize_deferred();
        let (op, w) = self.known.unwrap_or((LazyOp::None, 4));
        let d = self.b.use_var(self.lz[2]);
        let s = self.b.use_var(self.lz[3]);
        let r = self.b.use_var(self.lz[4]);
        (op, w, d, s, r)
    }

    fn zero_i8(&mut self) -> Value {
        self.b.ins().iconst(types::I8, 0)
    }

    /// CF of the current flags (the `cf` Variable, after any deferred
    /// producer is written).
    pub fn flag_cf(&mut self) -> Value {
        self.materialize_deferred();
        self.b.use_var(self.cf)
    }

    /// ZF: the (masked) result is zero.
    pub fn flag_zf(&mut self) -> Value {
        let (_, w, _, _, r) = self.lazy_vals();
        let rm = self.mask(r, i64::from(width_mask(w)));
        self.b.ins().icmp_imm_u(IntCC::Equal, rm, 0)
    }

    /// SF: the result's sign bit.
    pub fn flag_sf(&mut self) -> Value {
        let (_, w, _, _, r) = self.lazy_vals();
        let b = self.b.ins().band_imm_u(r, i64::from(sign_bit(w)));
        self.b.ins().icmp_imm_u(IntCC::NotEqual, b, 0)
    }

    /// PF: even parity of the result's low byte.
    pub fn flag_pf(&mut self) -> Value {
        let (_, _, _, _, r) = self.lazy_vals();
        let low = self.b.ins().band_imm_u(r, 0xFF);
        let n = self.b.ins().popcnt(low);
        let odd = self.b.ins().band_imm_u(n, 1);
        self.b.ins().icmp_imm_u(IntCC::Equal, odd, 0)
    }

    /// OF of the known operation.
    pub fn flag_of(&mut self) -> Value {
        let (op, w, d, s, r) = self.lazy_vals();
        let sign = i64::from(sign_bit(w));
        match op {
            LazyOp::Add | LazyOp::Adc => {
                let a = self.b.ins().bxor(d, r);
                let c = self.b.ins().bxor(s, r);
                let x = self.b.ins().band(a, c);
                let x = self.b.ins().band_imm_u(x, sign);
                self.b.ins().icmp_imm_u(IntCC::NotEqual, x, 0)
            }
            LazyOp::Sub | LazyOp::Sbb => {
                let a = self.b.ins().bxor(d, s);
                let c = self.b.ins().bxor(d, r);
                let x = self.b.ins().band(a, c);
                let x = self.b.ins().band_imm_u(x, sign);
                self.b.ins().icmp_imm_u(IntCC::NotEqual, x, 0)
            }
            LazyOp::Inc => self.b.ins().icmp_imm_u(IntCC::Equal, r, sign),
            LazyOp::Dec => self.b.ins().icmp_imm_u(IntCC::Equal, r, sign - 1),
            LazyOp::Logic | LazyOp::None => self.zero_i8(),
        }
    }
}
