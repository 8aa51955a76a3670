//! ADC and SBB inline (SDM Vol. 2A "ADC", Vol. 2B "SBB"): the result
//! takes the incoming CF, and the lazy record is the interpreter's
//! (`interp/arith.rs`): `Adc`/`Sbb` when the carry in was 1, `Add`/`Sub`
//! when it was 0, so the op is chosen at run time and the record's op is
//! no longer known at translation time.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use iced_x86::{Mnemonic as M, OpKind};
use oxide86_cpu::flags::LazyOp;

use crate::emit_insn::{mem_operand, read_op, width};
use crate::emit_mem::width_mask;
use crate::translate::{Emitter, GuestInsn};

impl Emitter<'_> {
    /// The current CF as an I8 0/1, from whatever record the lazy
    /// Variables hold.
    pub fn carry_in(&mut self) -> Value {
        self.flag_cf()
    }

    /// Records a flag-setting operation whose op is a run-time value
    /// (`opv`, an I32 `LazyOp`) and whose CF is `cf`.
    pub fn record_flags_dynamic(
        &mut self,
        opv: Value,
        cf: Value,
        w: u32,
        dst: Value,
        src: Value,
        res: Value,
    ) {
        let wv = self.b.ins().iconst(types::I32, i64::from(w));
        self.deferred = None;
        self.b.def_var(self.cf, cf);
        self.b.def_var(self.lz[0], opv);
        self.b.def_var(self.lz[1], wv);
        self.b.def_var(self.lz[2], dst);
        self.b.def_var(self.lz[3], src);
        self.b.def_var(self.lz[4], res);
        self.op_pending = false;
        self.lazy_dirty = true;
        self.lazy_synced = false;
        self.known = None;
    }
}

/// ADC and SBB with a register or memory destination and a register,
/// memory or immediate source (`arith::adc`, `arith::sbb`).
pub(crate) fn adc_sbb(e: &mut Emitter<'_>, g: &GuestInsn) {
    let insn = g.d.insn;
    let w = width(&insn, 0);
    let mask = i64::from(width_mask(w));
    let mem_dst = insn.op_kind(0) == OpKind::Memory;
    let mem = mem_operand(e, g, w, mem_dst);
    let a = read_op(e, g, 0, mem, w);
    let b = read_op(e, g, 1, mem, w);
    let b = e.mask(b, mask);
    let c = e.carry_in();
    let c32 = e.b.ins().uextend(types::I32, c);
    let adc = insn.mnemonic() == M::Adc;
    let r = if adc {
        let t = e.b.ins().iadd(a, b);
        e.b.ins().iadd(t, c32)
    } else {
        let t = e.b.ins().isub(a, b);
        e.b.ins().isub(t, c32)
    };
    let r = if w == 4 {
        r
    } else {
        e.b.ins().band_imm_u(r, mask)
    };
    match mem {
        Some(addr) if mem_dst => e.store_guest(addr, r, w),
        _ => e.write_reg(insn.op0_register(), r),
    }
    let (with, without) = if adc {
        (LazyOp::Adc, LazyOp::Add)
    } else {
        (LazyOp::Sbb, LazyOp::Sub)
    };
    let with = e.b.ins().iconst(types::I32, with as i64);
    let without = e.b.ins().iconst(types::I32, without as i64);
    let opv = e.b.ins().select(c, with, without);
    // CF of that op (`Flags::cf`): ADC r <(=) dst, SBB dst <(=) src,
    // "or equal" with a carry in.
    let (x, y) = if adc { (r, a) } else { (a, b) };
    let am = e.mask(x, mask);
    let bm = e.mask(y, mask);
    let lt = e.b.ins().icmp(IntCC::UnsignedLessThan, am, bm);
    let le = e.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, am, bm);
    let cf = e.b.ins().select(c, le, lt);
    e.record_flags_dynamic(opv, cf, w, a, b, r);
}
