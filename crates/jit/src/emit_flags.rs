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
use cranelift_codegen::ir::{types, InstBuilder, JumpTableData, Value};
use oxide86_cpu::flags::{sign_bit, LazyOp};
use oxide86_cpu::state::eflags;

use crate::emit_mem::width_mask;
use crate::translate::{off, Emitter};

impl Emitter<'_> {
    /// Records a flag-setting operation, as `Flags::set_lazy` does: INC
    /// and DEC first make the stored CF current.
    pub fn record_flags(&mut self, op: LazyOp, w: u32, dst: Value, src: Value, res: Value) {
        if matches!(op, LazyOp::Inc | LazyOp::Dec) {
            self.materialize_deferred();
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
        // Every status flag is replaced (INC and DEC keep CF, made
        // current above).
        self.deferred = None;
        self.op_pending = true;
        self.b.def_var(self.lz[2], dst);
        self.b.def_var(self.lz[3], src);
        self.b.def_var(self.lz[4], res);
        self.lazy_dirty = true;
        self.lazy_synced = false;
        self.known = Some((op, w));
    }

    /// CF (as an I8 0/1) of whatever operation the lazy Variables hold,
    /// the formulas of `Flags::cf` chosen at run time by the op Variable
    /// through a jump table (one arm runs, not all of them).
    pub(crate) fn dynamic_cf(&mut self) -> Value {
        self.materialize_deferred();
        self.settle_lazy_op();
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
        let done = self.b.create_block();
        self.b.append_block_param(done, types::I8);
        let arm = |e: &mut Self| e.b.create_block();
        let (add, adc, sub, sbb, logic, stored) = (
            arm(self),
            arm(self),
            arm(self),
            arm(self),
            arm(self),
            arm(self),
        );
        let mut table = [stored; 8];
        table[LazyOp::Add as usize] = add;
        table[LazyOp::Adc as usize] = adc;
        table[LazyOp::Sub as usize] = sub;
        table[LazyOp::Sbb as usize] = sbb;
        table[LazyOp::Logic as usize] = logic;
        let dfg = &mut self.b.func.dfg;
        let calls: Vec<_> = table.iter().map(|&t| dfg.block_call(t, &[])).collect();
        let default = dfg.block_call(stored, &[]);
        let jt = self
            .b
            .create_jump_table(JumpTableData::new(default, &calls));
        self.b.ins().br_table(op, jt);
        for (block, cc, x, y) in [
            (add, IntCC::UnsignedLessThan, r, d),
            (adc, IntCC::UnsignedLessThanOrEqual, r, d),
            (sub, IntCC::UnsignedLessThan, d, s),
            (sbb, IntCC::UnsignedLessThanOrEqual, d, s),
        ] {
            self.b.switch_to_block(block);
            let xm = self.b.ins().band(x, m);
            let ym = self.b.ins().band(y, m);
            let c = self.b.ins().icmp(cc, xm, ym);
            self.b.ins().jump(done, &[c.into()]);
        }
        self.b.switch_to_block(logic);
        let zero = self.zero_i8();
        self.b.ins().jump(done, &[zero.into()]);
        self.b.switch_to_block(stored);
        let ef = self.load_st(types::I32, off::EFLAGS);
        let c = self.b.ins().band_imm_u(ef, i64::from(eflags::CF));
        let c = self.b.ins().icmp_imm_u(IntCC::NotEqual, c, 0);
        self.b.ins().jump(done, &[c.into()]);
        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
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
        self.lazy_synced = true;
    }

    /// Whether condition `cc` (0 = O ... 15 = G) holds, as an I8 0/1.
    pub fn condition(&mut self, cc: u8) -> Value {
        self.materialize_deferred();
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
