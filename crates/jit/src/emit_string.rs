//! LODS and SCAS without a REP prefix, inline (SDM Vol. 2A "LODS", Vol.
//! 2B "SCAS"; `interp/string.rs`): one element at seg:ESI (LODS, DS or
//! an override) or ES:EDI (SCAS), the index register stepped by the
//! element size, down when DF is set, within the address size.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder};
use iced_x86::{Mnemonic as M, Register};
use oxide86_cpu::flags::LazyOp;
use oxide86_cpu::state::eflags;

use crate::emit_mem::width_mask;
use crate::translate::{off, Emitter, GuestInsn};

/// Whether `insn` is a LODS or SCAS this module lowers (no REP prefix).
pub(crate) fn inline_form(insn: &iced_x86::Instruction) -> bool {
    matches!(
        insn.mnemonic(),
        M::Lodsb | M::Lodsw | M::Lodsd | M::Scasb | M::Scasw | M::Scasd
    ) && !insn.has_rep_prefix()
        && !insn.has_repne_prefix()
}

/// LODS or SCAS: reads the element before anything is written.
pub(crate) fn lods_scas(e: &mut Emitter<'_>, g: &GuestInsn) {
    let insn = g.d.insn;
    let (size, acc) = match insn.mnemonic() {
        M::Lodsb | M::Scasb => (1, Register::AL),
        M::Lodsw | M::Scasw => (2, Register::AX),
        _ => (4, Register::EAX),
    };
    let lods = matches!(insn.mnemonic(), M::Lodsb | M::Lodsw | M::Lodsd);
    let idx = if lods { 6 } else { 7 };
    let amask = if g.d.addr32 { u32::MAX } else { 0xFFFF };
    let seg = Emitter::memory_segment(g);
    let r = e.b.use_var(e.regs[idx]);
    let offset = e.mask(r, i64::from(amask));
    let addr = e.host_addr(g, seg, offset, size, false);
    let v = e.load_guest(addr, size);
    let ef = e.load_st(types::I32, off::EFLAGS);
    let df = e.b.ins().band_imm_u(ef, i64::from(eflags::DF));
    let df = e.b.ins().icmp_imm_u(IntCC::NotEqual, df, 0);
    let up = e.b.ins().iconst(types::I32, i64::from(size));
    let down = e.b.ins().iconst(types::I32, -i64::from(size));
    let step = e.b.ins().select(df, down, up);
    let moved = e.b.ins().iadd(r, step);
    let moved = if amask == u32::MAX {
        moved
    } else {
        let keep = e.b.ins().band_imm_u(r, i64::from(!amask));
        let low = e.b.ins().band_imm_u(moved, i64::from(amask));
        e.b.ins().bor(keep, low)
    };
    if lods {
        e.write_reg(acc, v);
    } else {
        let a = e.read_reg(acc);
        let res = e.b.ins().isub(a, v);
        let res = e.mask(res, i64::from(width_mask(size)));
        e.record_flags(LazyOp::Sub, size, a, v, res);
    }
    e.set_reg(idx, moved);
}
