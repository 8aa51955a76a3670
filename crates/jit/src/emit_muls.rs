//! IMUL with two or three operands and SHL/SAL/SHR/SAR of a register by a
//! non-zero immediate count or by CL, inline. They write the status flags
//! directly, as the interpreter's `set_status` does (SDM Vol. 2A "IMUL",
//! Vol. 2B "SAL/SAR/SHL/SHR"): the lazy record is committed (its op
//! becomes `None`), the flags the instruction defines are replaced, and
//! the rest keep their committed values (AF after a shift, on the P6
//! model the JIT runs). The formulas are those of `interp/muldiv.rs` and
//! `interp/shift.rs`.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use iced_x86::{Mnemonic as M, OpKind, Register};
use oxide86_cpu::flags::{sign_bit, LazyOp};
use oxide86_cpu::state::eflags;

use crate::emit_insn::{mem_operand, read_op, width};
use crate::emit_mem::width_mask;
use crate::translate::{off, Emitter, GuestInsn};

/// Whether `insn` is one of this module's forms (`gpr` tells whether an
/// operand is a general register, `gpr_or_mem` also allows memory).
pub(crate) fn inline_form(
    insn: &iced_x86::Instruction,
    gpr: impl Fn(u32) -> bool,
    gpr_or_mem: impl Fn(u32) -> bool,
) -> bool {
    let n = insn.op_count();
    let imm = |i: u32| {
        matches!(
            insn.op_kind(i),
            OpKind::Immediate8
                | OpKind::Immediate16
                | OpKind::Immediate32
                | OpKind::Immediate8to16
                | OpKind::Immediate8to32
        )
    };
    match insn.mnemonic() {
        M::Imul => gpr(0) && gpr_or_mem(1) && (n == 2 || (n == 3 && imm(2))),
        M::Shl | M::Sal | M::Shr | M::Sar => {
            n == 2
                && gpr(0)
                && ((insn.op_kind(1) == OpKind::Immediate8 && insn.immediate8() & 0x1F != 0)
                    || (insn.op_kind(1) == OpKind::Register && insn.op1_register() == Register::CL))
        }
        _ => false,
    }
}

/// Status flags an instruction computed eagerly but did not write yet
/// ([`Emitter::eager_flags`]): its result, CF and OF (I8 or I32 0/1
/// values of the current guest block), width and the status bits it
/// replaces (all six, or all but AF).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deferred {
    r: Value,
    cf: Value,
    of: Value,
    w: u32,
    mask: u32,
}

impl Emitter<'_> {
    /// The flags of an eager producer (IMUL, a shift) with result `r`,
    /// CF `cf` and OF `of`, replacing the status bits in `mask`: nothing
    /// when the next instruction replaces them all ([`Emitter::flags_dead`]);
    /// deferred when a later one of the guest block does before any
    /// reads them ([`Emitter::flags_replaced_later`]): every path that
    /// could see them first (an exit, a side exit, a helper, a flag
    /// reader, a transfer) writes them with
    /// [`Emitter::materialize_deferred`]; else written now.
    pub(crate) fn eager_flags(&mut self, r: Value, cf: Value, of: Value, w: u32, mask: u32) {
        // A pending producer is replaced: its AF, when this one keeps AF,
        // is the committed one it kept too.
        self.deferred = None;
        if self.flags_dead {
            return;
        }
        self.deferred = Some(Deferred { r, cf, of, w, mask });
        if !self.flags_replaced_later {
            self.materialize_deferred();
        }
    }

    /// Writes the deferred flags, if any (see [`Emitter::eager_flags`]).
    pub(crate) fn materialize_deferred(&mut self) {
        let Some(d) = self.deferred.take() else {
            return;
        };
        let szp = self.szp_bits(d.r, d.w);
        let cf = self.flag_bit(d.cf, eflags::CF);
        let of = self.flag_bit(d.of, eflags::OF);
        let f = self.b.ins().bor(szp, cf);
        let f = self.b.ins().bor(f, of);
        self.set_status(d.mask, f);
    }

    /// `v` (an I32 0/1 or I8 condition) as the EFLAGS bit `bit`.
    fn flag_bit(&mut self, cond: Value, bit: u32) -> Value {
        let v = if self.b.func.dfg.value_type(cond) == types::I32 {
            cond
        } else {
            self.b.ins().uextend(types::I32, cond)
        };
        self.b.ins().ishl_imm_u(v, i64::from(bit.trailing_zeros()))
    }

    /// ZF, SF and PF of result `r` (width `w`) as EFLAGS bits (`szp`).
    fn szp_bits(&mut self, r: Value, w: u32) -> Value {
        let rm = self.mask(r, i64::from(width_mask(w)));
        let z = self.b.ins().icmp_imm_u(IntCC::Equal, rm, 0);
        let s = self.b.ins().band_imm_u(rm, i64::from(sign_bit(w)));
        let s = self.b.ins().icmp_imm_u(IntCC::NotEqual, s, 0);
        let low = self.b.ins().band_imm_u(rm, 0xFF);
        let n = self.b.ins().popcnt(low);
        let odd = self.b.ins().band_imm_u(n, 1);
        let p = self.b.ins().icmp_imm_u(IntCC::Equal, odd, 0);
        let z = self.flag_bit(z, eflags::ZF);
        let s = self.flag_bit(s, eflags::SF);
        let p = self.flag_bit(p, eflags::PF);
        let zs = self.b.ins().bor(z, s);
        self.b.ins().bor(zs, p)
    }

    /// AF as `commit_flags` leaves it: the stored bit when the lazy op is
    /// `None`, 0 after a logic op, else bit 4 of `dst ^ src ^ res`.
    fn committed_af(&mut self, ef: Value) -> Value {
        self.settle_lazy_op();
        let op = self.b.use_var(self.lz[0]);
        let d = self.b.use_var(self.lz[2]);
        let s = self.b.use_var(self.lz[3]);
        let r = self.b.use_var(self.lz[4]);
        let x = self.b.ins().bxor(d, s);
        let x = self.b.ins().bxor(x, r);
        let lazy = self.b.ins().band_imm_u(x, i64::from(eflags::AF));
        let stored = self.b.ins().band_imm_u(ef, i64::from(eflags::AF));
        let zero = self.b.ins().iconst(types::I32, 0);
        let logic = self
            .b
            .ins()
            .icmp_imm_u(IntCC::Equal, op, LazyOp::Logic as i64);
        let v = self.b.ins().select(logic, zero, lazy);
        let none = self
            .b
            .ins()
            .icmp_imm_u(IntCC::Equal, op, LazyOp::None as i64);
        self.b.ins().select(none, stored, v)
    }

    /// `set_status(mask, f)`: commits the lazy record and replaces the
    /// status bits in `mask` with `f`. `mask` is all six status flags or
    /// all but AF.
    fn set_status(&mut self, mask: u32, f: Value) {
        let ef = self.load_st(types::I32, off::EFLAGS);
        let keep = self.b.ins().band_imm_u(ef, i64::from(!eflags::STATUS));
        let mut v = self.b.ins().bor(keep, f);
        if mask & eflags::AF == 0 {
            let af = self.committed_af(ef);
            v = self.b.ins().bor(v, af);
        }
        self.store_st(v, off::EFLAGS);
        self.settle_lazy_op();
        let none = self.b.ins().iconst(types::I32, LazyOp::None as i64);
        self.b.def_var(self.lz[0], none);
        self.op_pending = false;
        self.lazy_dirty = true;
        self.lazy_synced = false;
        self.known = None;
    }
}

/// SHL/SAL/SHR/SAR r, CL: the count masked to 5 bits is known only at
/// run time; a count of 0 changes nothing, flags included (`shift.rs`).
fn shift_cl(e: &mut Emitter<'_>, g: &GuestInsn) {
    let insn = g.d.insn;
    let w = width(&insn, 0);
    let bits = i64::from(8 * w);
    let mask = i64::from(width_mask(w));
    let sign = i64::from(sign_bit(w));
    let a = e.read_reg(insn.op0_register());
    let cl = e.read_reg(Register::CL);
    let c = e.b.ins().band_imm_u(cl, 0x1F);
    // The count-0 arm keeps the flags as they are.
    e.materialize_deferred();
    // Both arms leave the op Variable defined: the old record on the
    // count-0 path, `None` after `set_status` on the other.
    e.settle_lazy_op();
    let shift = e.b.create_block();
    let done = e.b.create_block();
    e.b.ins().brif(c, shift, &[], done, &[]);
    e.b.switch_to_block(shift);
    let c1 = e.b.ins().iadd_imm_s(c, -1);
    let (r, cf, of) = match insn.mnemonic() {
        M::Shl | M::Sal => {
            // The last bit shifted out is bit `bits` of the 64-bit
            // product (0 when the count passes the width: `a` has only
            // `bits` bits).
            let a64 = e.b.ins().uextend(types::I64, a);
            let c64 = e.b.ins().uextend(types::I64, c);
            let wide = e.b.ins().ishl(a64, c64);
            let low = e.b.ins().ireduce(types::I32, wide);
            let r = e.mask(low, mask);
            let t = e.b.ins().ushr_imm_u(wide, bits);
            let t = e.b.ins().band_imm_u(t, 1);
            let cf = e.b.ins().icmp_imm_u(IntCC::NotEqual, t, 0);
            let s = e.b.ins().band_imm_u(r, sign);
            let s = e.b.ins().icmp_imm_u(IntCC::NotEqual, s, 0);
            let of = e.b.ins().bxor(s, cf);
            (r, cf, of)
        }
        M::Shr => {
            let r = e.b.ins().ushr(a, c);
            let t = e.b.ins().ushr(a, c1);
            let t = e.b.ins().band_imm_u(t, 1);
            let cf = e.b.ins().icmp_imm_u(IntCC::NotEqual, t, 0);
            let one = e.b.ins().icmp_imm_u(IntCC::Equal, c, 1);
            let s = e.b.ins().band_imm_u(a, sign);
            let s = e.b.ins().icmp_imm_u(IntCC::NotEqual, s, 0);
            let of = e.b.ins().band(one, s);
            (r, cf, of)
        }
        _ => {
            let signed = sext64(e, a, w);
            let c64 = e.b.ins().uextend(types::I64, c);
            let sh = e.b.ins().sshr(signed, c64);
            let low = e.b.ins().ireduce(types::I32, sh);
            let r = e.mask(low, mask);
            let c164 = e.b.ins().uextend(types::I64, c1);
            let t = e.b.ins().sshr(signed, c164);
            let t = e.b.ins().band_imm_u(t, 1);
            let cf = e.b.ins().icmp_imm_u(IntCC::NotEqual, t, 0);
            let zero = e.b.ins().iconst(types::I8, 0);
            (r, cf, zero)
        }
    };
    e.write_reg(insn.op0_register(), r);
    if !e.flags_dead {
        // Written in this arm: the count-0 arm keeps the old flags.
        e.deferred = Some(Deferred {
            r,
            cf,
            of,
            w,
            mask: eflags::STATUS & !eflags::AF,
        });
        e.materialize_deferred();
    }
    e.b.ins().jump(done, &[]);
    e.b.switch_to_block(done);
}

/// Sign-extends the low `w` bytes of `v` (I32) to I64.
fn sext64(e: &mut Emitter<'_>, v: Value, w: u32) -> Value {
    let v = if w == 4 {
        v
    } else {
        let sh = i64::from(32 - 8 * w);
        let t = e.b.ins().ishl_imm_u(v, sh);
        e.b.ins().sshr_imm_u(t, sh)
    };
    e.b.ins().sextend(types::I64, v)
}

/// IMUL r, r/m and IMUL r, r/m, imm (`muldiv::imul`, `mul_flags`).
pub(crate) fn imul(e: &mut Emitter<'_>, g: &GuestInsn) {
    let insn = g.d.insn;
    let w = width(&insn, 0);
    let mask = i64::from(width_mask(w));
    let mem = mem_operand(e, g, w, false);
    let (a, b) = if insn.op_count() == 2 {
        (read_op(e, g, 0, mem, w), read_op(e, g, 1, mem, w))
    } else {
        (read_op(e, g, 1, mem, w), read_op(e, g, 2, mem, w))
    };
    let b = e.mask(b, mask);
    let a64 = sext64(e, a, w);
    let b64 = sext64(e, b, w);
    let p = e.b.ins().imul(a64, b64);
    let low = e.b.ins().ireduce(types::I32, p);
    let r = e.mask(low, mask);
    let back = sext64(e, r, w);
    let overflow = e.b.ins().icmp(IntCC::NotEqual, back, p);
    e.write_reg(insn.op0_register(), r);
    e.eager_flags(r, overflow, overflow, w, eflags::STATUS);
}

/// SHL/SAL/SHR/SAR r, imm8 with a non-zero masked count (`shift::shl`,
/// `shr`, `sar` and `finish`).
pub(crate) fn shift(e: &mut Emitter<'_>, g: &GuestInsn) {
    let insn = g.d.insn;
    if insn.op_kind(1) == OpKind::Register {
        shift_cl(e, g);
        return;
    }
    let w = width(&insn, 0);
    let bits = 8 * w;
    let mask = i64::from(width_mask(w));
    let sign = i64::from(sign_bit(w));
    let c = u32::from(insn.immediate8()) & 0x1F;
    let a = e.read_reg(insn.op0_register());
    let zero = e.b.ins().iconst(types::I8, 0);
    let (r, cf, of) = match insn.mnemonic() {
        M::Shl | M::Sal => {
            let a64 = e.b.ins().uextend(types::I64, a);
            let wide = e.b.ins().ishl_imm_u(a64, i64::from(c));
            let low = e.b.ins().ireduce(types::I32, wide);
            let r = e.mask(low, mask);
            let cf = if c <= bits {
                let t = e.b.ins().ushr_imm_u(wide, i64::from(bits));
                let t = e.b.ins().band_imm_u(t, 1);
                e.b.ins().icmp_imm_u(IntCC::NotEqual, t, 0)
            } else {
                zero
            };
            let s = e.b.ins().band_imm_u(r, sign);
            let s = e.b.ins().icmp_imm_u(IntCC::NotEqual, s, 0);
            let of = e.b.ins().bxor(s, cf);
            (r, cf, of)
        }
        M::Shr => {
            let r = e.b.ins().ushr_imm_u(a, i64::from(c));
            let t = e.b.ins().ushr_imm_u(a, i64::from(c - 1));
            let t = e.b.ins().band_imm_u(t, 1);
            let cf = e.b.ins().icmp_imm_u(IntCC::NotEqual, t, 0);
            let of = if c == 1 {
                let s = e.b.ins().band_imm_u(a, sign);
                e.b.ins().icmp_imm_u(IntCC::NotEqual, s, 0)
            } else {
                zero
            };
            (r, cf, of)
        }
        _ => {
            let signed = sext64(e, a, w);
            let sh = e.b.ins().sshr_imm_u(signed, i64::from(c));
            let low = e.b.ins().ireduce(types::I32, sh);
            let r = e.mask(low, mask);
            let t = e.b.ins().sshr_imm_u(signed, i64::from(c - 1));
            let t = e.b.ins().band_imm_u(t, 1);
            let cf = e.b.ins().icmp_imm_u(IntCC::NotEqual, t, 0);
            (r, cf, zero)
        }
    };
    e.write_reg(insn.op0_register(), r);
    e.eager_flags(r, cf, of, w, eflags::STATUS & !eflags::AF);
}
