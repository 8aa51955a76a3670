//! IMUL with two or three operands and SHL/SAL/SHR/SAR/ROL/ROR of a
//! register by a non-zero immediate count or by CL, inline. They write the
//! status flags directly, as the interpreter's `set_status` does (SDM
//! Vol. 2A "IMUL", Vol. 2B "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR"): the lazy
//! record is committed (its op becomes `None`), the flags the instruction
//! defines are replaced, and the rest keep their committed values (AF
//! after a shift, on the P6 model the JIT runs; SF, ZF, AF and PF after a
//! rotate, which defines only CF and OF). The formulas are those of
//! `interp/muldiv.rs` and `interp/shift.rs`.

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
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror => {
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
/// replaces (all six, all but AF, or CF and OF).
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
        if mask == eflags::CF | eflags::OF {
            // A rotate keeps the other flags: a pending producer's first.
            self.materialize_deferred();
        }
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
        let cf = self.flag_bit(d.cf, eflags::CF);
        let of = self.flag_bit(d.of, eflags::OF);
        let mut f = self.b.ins().bor(cf, of);
        if d.mask & eflags::ZF != 0 {
            let szp = self.szp_bits(d.r, d.w);
            f = self.b.ins().bor(f, szp);
        }
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
    /// status bits in `mask` with `f`. `mask` is all six status flags,
    /// all but AF, or CF and OF.
    fn set_status(&mut self, mask: u32, f: Value) {
        if mask == eflags::CF | eflags::OF {
            self.commit_status();
        }
        let ef = self.load_st(types::I32, off::EFLAGS);
        let kept = if mask == eflags::CF | eflags::OF {
            !mask
        } else {
            !eflags::STATUS
        };
        let keep = self.b.ins().band_imm_u(ef, i64::from(kept));
        let mut v = self.b.ins().bor(keep, f);
        if mask == eflags::STATUS & !eflags::AF {
            let af = self.committed_af(ef);
            v = self.b.ins().bor(v, af);
        }
        self.store_st(v, off::EFLAGS);
        let cf = self.b.ins().band_imm_u(v, i64::from(eflags::CF));
        let cf = self.b.ins().icmp_imm_u(IntCC::NotEqual, cf, 0);
        self.b.def_var(self.cf, cf);
        self.settle_lazy_op();
        let none = self.b.ins().iconst(types::I32, LazyOp::None as i64);
        self.b.def_var(self.lz[0], none);
        self.op_pending = false;
        self.lazy_dirty = true;
        self.lazy_synced = false;
        self.known = None;
    }
}

impl Emitter<'_> {
    /// Makes the state's EFLAGS hold every status flag of the lazy record
    /// (`Flags::commit_flags`): computed inline from the Variables when
    /// the producer is known at translation time, else by a helper on
    /// the stored record. The op Variable then holds `None`.
    fn commit_status(&mut self) {
        match self.known {
            Some((op, _)) if op != LazyOp::None => {
                let bits = [
                    (self.flag_cf(), eflags::CF),
                    (self.flag_pf(), eflags::PF),
                    (self.flag_zf(), eflags::ZF),
                    (self.flag_sf(), eflags::SF),
                    (self.flag_of(), eflags::OF),
                ];
                let ef = self.load_st(types::I32, off::EFLAGS);
                let mut f = if op == LazyOp::Logic {
                    self.b.ins().iconst(types::I32, 0)
                } else {
                    let d = self.b.use_var(self.lz[2]);
                    let s = self.b.use_var(self.lz[3]);
                    let r = self.b.use_var(self.lz[4]);
                    let x = self.b.ins().bxor(d, s);
                    let x = self.b.ins().bxor(x, r);
                    self.b.ins().band_imm_u(x, i64::from(eflags::AF))
                };
                for (bit, flag) in bits {
                    let v = self.flag_bit(bit, flag);
                    f = self.b.ins().bor(f, v);
                }
                let keep = self.b.ins().band_imm_u(ef, i64::from(!eflags::STATUS));
                let v = self.b.ins().bor(keep, f);
                self.store_st(v, off::EFLAGS);
            }
            Some(_) => {}
            None => {
                self.store_lazy();
                let st = self.st;
                self.call_helper(
                    crate::helpers::jit_commit_flags as *const () as usize,
                    &[self.ptr],
                    None,
                    &[st],
                );
            }
        }
    }
}

/// The result, CF and OF of ROL or ROR of `a` (width `w`) by `k`, an I32
/// count already reduced modulo the width (`shift::rol`, `shift::ror`).
fn rotate(e: &mut Emitter<'_>, left: bool, a: Value, k: Value, w: u32) -> (Value, Value, Value) {
    let bits = 8 * w;
    let r = if w == 4 {
        if left {
            e.b.ins().rotl(a, k)
        } else {
            e.b.ins().rotr(a, k)
        }
    } else {
        // `a` holds `bits` bits: a count of 0 shifts the other part out.
        let am = e.mask(a, i64::from(width_mask(w)));
        let width = e.b.ins().iconst(types::I32, i64::from(bits));
        let back = e.b.ins().isub(width, k);
        let (x, y) = if left {
            (e.b.ins().ishl(am, k), e.b.ins().ushr(am, back))
        } else {
            (e.b.ins().ushr(am, k), e.b.ins().ishl(am, back))
        };
        let r = e.b.ins().bor(x, y);
        e.mask(r, i64::from(width_mask(w)))
    };
    let top = e.b.ins().band_imm_u(r, i64::from(sign_bit(w)));
    let top = e.b.ins().icmp_imm_u(IntCC::NotEqual, top, 0);
    if left {
        let low = e.b.ins().band_imm_u(r, 1);
        let cf = e.b.ins().icmp_imm_u(IntCC::NotEqual, low, 0);
        let of = e.b.ins().bxor(top, cf);
        (r, cf, of)
    } else {
        let next = e.b.ins().band_imm_u(r, i64::from(sign_bit(w) >> 1));
        let next = e.b.ins().icmp_imm_u(IntCC::NotEqual, next, 0);
        let of = e.b.ins().bxor(top, next);
        (r, top, of)
    }
}

/// SHL/SAL/SHR/SAR/ROL/ROR r, CL: the count masked to 5 bits is known only at
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
    let mut flags = eflags::STATUS & !eflags::AF;
    let (r, cf, of) = match insn.mnemonic() {
        m @ (M::Rol | M::Ror) => {
            flags = eflags::CF | eflags::OF;
            // The count modulo the width (`c` < 32).
            let k = e.b.ins().band_imm_u(c, i64::from(8 * w - 1));
            rotate(e, m == M::Rol, a, k, w)
        }
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
            mask: flags,
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

/// SHL/SAL/SHR/SAR/ROL/ROR r, imm8 with a non-zero masked count
/// (`shift::shl`, `shr`, `sar`, `rol`, `ror` and `finish`).
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
    if let m @ (M::Rol | M::Ror) = insn.mnemonic() {
        let k = e.b.ins().iconst(types::I32, i64::from(c % bits));
        let (r, cf, of) = rotate(e, m == M::Rol, a, k, w);
        e.write_reg(insn.op0_register(), r);
        e.eager_flags(r, cf, of, w, eflags::CF | eflags::OF);
        return;
    }
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
