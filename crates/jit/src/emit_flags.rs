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
    /// Records a flag-setting operation, as `Flags::set_lazy` does: INC
    /// and DEC first make the stored CF current.
    pub fn record_flags(&mut self, op: LazyOp, w: u32, dst: Value, src: Value, res: Value) {
        if matches!(op, LazyOp::Inc | LazyOp::Dec) {
            match self.known {
                Some((LazyOp::Inc | LazyOp::Dec | LazyOp::None, _)) => {}
                Some(_) => {
                    let cf = self.flag_cf();
                    let cf = self.b.ins().uextend(types::I32, cf);
                    let ef = self.load_st(types::I32, off::EFLAGS);
                    let ef = self.b.ins().band_imm_u(ef, i64::from(!eflags::CF));
                    let ef = self.b.ins().bor(ef, cf);
                    self.store_st(ef, off::EFLAGS);
                }
                None => {
                    // The producer is not known at translation time:
                    // select its CF from the lazy Variables.
                    let cf = self.dynamic_cf();
                    let cf = self.b.ins().uextend(types::I32, cf);
                    let ef = self.load_st(types::I32, off::EFLAGS);
                    let ef = self.b.ins().band_imm_u(ef, i64::from(!eflags::CF));
                    let ef = self.b.ins().bor(ef, cf);
                    self.store_st(ef, off::EFLAGS);
                }
            }
        }
        self.op_pending = true;
        self.b.def_var(self.lz[2], dst);
        self.b.def_var(self.lz[3], src);
        self.b.def_var(self.lz[4], res);
        self.lazy_dirty = true;
        self.lazy_synced = false;
        self.known = Some((op, w));
    }

    /// CF (as an I8 0/1) of whatever operation the lazy Variables hold,
    /// the formulas of `Flags::cf` chosen at run time by the op Variable.
    fn dynamic_cf(&mut self) -> Value {
        self.settle_lazy_op();
        let op = self.b.use_var(self.lz[0]);
        let w = self.b.use_var(self.lz[1]);
        let d = self.b.use_var(self.lz[2]);
        let s = self.b.use_var(self.lz[3]);
        let r = self.b.use_var(self.lz[4]);
        let m8 = self.b.ins().iconst(types::I32, 0xFF);
        let m16 = self.b.ins().iconst(types::I32, 0xFFFF);
        let m32 = self.b.ins().iconst(types::I32, -1);
        let is8 = self.b.ins().icmp_imm_u(IntCC::Equal, w, 1);
        let is16 = self.b.ins().icmp_imm_u(IntCC::Equal, w, 2);
        let m = self.b.ins().select(is16, m16, m32);
        let m = self.b.ins().select(is8, m8, m);
        let dm = self.b.ins().band(d, m);
        let sm = self.b.ins().band(s, m);
        let add = self.b.ins().icmp(IntCC::UnsignedLessThan, r, dm);
        let adc = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, r, dm);
        let sub = self.b.ins().icmp(IntCC::UnsignedLessThan, dm, sm);
        let sbb = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, dm, sm);
        let ef = self.load_st(types::I32, off::EFLAGS);
        let c = self.b.ins().band_imm_u(ef, i64::from(eflags::CF));
        let mut v = self.b.ins().icmp_imm_u(IntCC::NotEqual, c, 0);
        for (o, x) in [
            (LazyOp::Add, add),
            (LazyOp::Adc, adc),
            (LazyOp::Sub, sub),
            (LazyOp::Sbb, sbb),
            (LazyOp::Logic, self.zero_i8()),
        ] {
            let is = self.b.ins().icmp_imm_u(IntCC::Equal, op, o as i64);
            v = self.b.ins().select(is, x, v);
        }
        v
    }

    /// Stores the lazy Variables to the state (before a helper reads them).
    /// Skipped when they still equal the state's record.
    pub fn store_lazy(&mut self) {
        if self.lazy_synced {
            return;
        }
        self.settle_lazy_op();
        for i in 0..5 {
            let v = self.b.use_var(self.lz[i]);
            self.store_st(v, off::lazy(i));
        }
        self.lazy_synced = true;
    }

    /// Whether condition `cc` (0 = O ... 15 = G) holds, as an I8 0/1.
    pub fn condition(&mut self, cc: u8) -> Value {
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
            self.b.ins().bxor_imm_u(v, 1)
        } else {
            v
        }
    }

    fn lazy_vals(&mut self) -> (LazyOp, u32, Value, Value, Value) {
        let (op, w) = self.known.unwrap_or((LazyOp::None, 4));
        let d = self.b.use_var(self.lz[2]);
        let s = self.b.use_var(self.lz[3]);
        let r = self.b.use_var(self.lz[4]);
        (op, w, d, s, r)
    }

    fn zero_i8(&mut self) -> Value {
        self.b.ins().iconst(types::I8, 0)
    }

    /// CF of the known operation.
    pub fn flag_cf(&mut self) -> Value {
        let (op, w, d, s, r) = self.lazy_vals();
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
            LazyOp::None | LazyOp::Inc | LazyOp::Dec => {
                let ef = self.load_st(types::I32, off::EFLAGS);
                let c = self.b.ins().band_imm_u(ef, i64::from(eflags::CF));
                self.b.ins().icmp_imm_u(IntCC::NotEqual, c, 0)
            }
        }
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
