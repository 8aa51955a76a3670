//! String instructions inline (`interp/string.rs` is the reference).
//!
//! LODS and SCAS without a REP prefix (SDM Vol. 2A "LODS", Vol. 2B
//! "SCAS"): one element at seg:ESI (LODS, DS or an override) or ES:EDI
//! (SCAS), the index register stepped by the element size, down when DF
//! is set, within the address size.
//!
//! REP MOVS and REP STOS with 32-bit addresses and flat segments (SDM
//! Vol. 2B "REP/REPE/REPZ/REPNE/REPNZ", "MOVS", "STOS"), when the whole
//! repetition is one run within one page for each operand: with DF clear
//! and ECX elements that end in the page where EDI's (and ESI's) first
//! element is, the soft TLB's fast path checked for that element covers
//! them all; the fill or copy is one call of a Rust function on host RAM,
//! and EDI, ESI and ECX take their final values. A copy whose destination
//! starts inside the source above it (where the element loop replicates
//! bytes), DF set, a run longer than the page, or anything the fast path
//! refuses leaves the block before the instruction, and the interpreter
//! runs it (its own bulk path, `string_bulk.rs`, faults, restarts).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use iced_x86::{Code, Mnemonic as M, Register};
use oxide86_cpu::decode::Decoded;
use oxide86_cpu::flags::LazyOp;
use oxide86_cpu::state::eflags;
use oxide86_cpu::SegReg;

use crate::emit_mem::width_mask;
use crate::translate::{off, Emitter, GuestInsn, Mode};

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

/// The REP MOVS or REP STOS forms: (is MOVS, element size).
fn rep_form(insn: &iced_x86::Instruction) -> Option<(bool, u32)> {
    let form = match insn.code() {
        Code::Movsb_m8_m8 => (true, 1),
        Code::Movsw_m16_m16 => (true, 2),
        Code::Movsd_m32_m32 => (true, 4),
        Code::Stosb_m8_AL => (false, 1),
        Code::Stosw_m16_AX => (false, 2),
        Code::Stosd_m32_EAX => (false, 4),
        _ => return None,
    };
    (insn.has_rep_prefix() && !insn.has_repne_prefix()).then_some(form)
}

/// Whether `d` is a REP MOVS or REP STOS lowered inline in `mode` (see
/// the module doc): 32-bit addresses, ES flat, and for MOVS the source
/// segment flat.
pub(crate) fn rep_inline(d: &Decoded, mode: &Mode) -> bool {
    let Some((movs, _)) = rep_form(&d.insn) else {
        return false;
    };
    let flat = |s: SegReg| mode.flat & (1 << s as u8) != 0;
    let src = oxide86_cpu::interp::operand::seg_reg(d.insn.memory_segment()).unwrap_or(SegReg::Ds);
    d.addr32 && flat(SegReg::Es) && (!movs || flat(src))
}

/// Fills `n` elements of `size` bytes at `dst` with the low bytes of `value`.
///
/// # Safety
/// `dst .. dst + n * size` lies in guest RAM (generated code checked it
/// through the soft TLB: one page of plain RAM).
unsafe extern "C" fn jit_rep_fill(dst: *mut u8, value: u32, n: u32, size: u32) {
    // SAFETY: see the function's contract.
    let span = unsafe { std::slice::from_raw_parts_mut(dst, n as usize * size as usize) };
    oxide86_cpu::interp::fill_elements(span, value, size);
}

/// Copies `len` bytes from `src` to `dst` as a forward element loop does
/// when the destination does not start inside the source above it.
///
/// # Safety
/// Both ranges lie in guest RAM (checked as for [`jit_rep_fill`]).
unsafe extern "C" fn jit_rep_copy(dst: *mut u8, src: *const u8, len: u32) {
    // SAFETY: see the function's contract; `copy` allows overlap.
    unsafe { std::ptr::copy(src, dst, len as usize) };
}

/// REP MOVS or REP STOS inline (see the module doc), for an instruction
/// [`rep_inline`] accepted.
pub(crate) fn rep_movs_stos(e: &mut Emitter<'_>, g: &GuestInsn) {
    let Some((movs, size)) = rep_form(&g.d.insn) else {
        e.exit_const(g.eip, crate::ctx::EXIT_INTERP);
        return;
    };
    let ef = e.load_st(types::I32, off::EFLAGS);
    let df = e.b.ins().band_imm_u(ef, i64::from(eflags::DF));
    e.side_exit_if(df, g.eip);
    // The run's length in bytes, and that it stays in the page of the
    // first element of each operand.
    let ecx = e.b.use_var(e.regs[1]);
    let n = e.b.ins().uextend(types::I64, ecx);
    let len = e.b.ins().imul_imm_u(n, i64::from(size));
    let edi = e.b.use_var(e.regs[7]);
    let mut out = page_overrun(e, edi, len);
    let esi = e.b.use_var(e.regs[6]);
    if movs {
        let more = page_overrun(e, esi, len);
        out = e.b.ins().bor(out, more);
    }
    e.side_exit_if(out, g.eip);
    let dst = e.host_addr(g, SegReg::Es, edi, size, true);
    let len32 = e.b.ins().ireduce(types::I32, len);
    if e.hooks.note_store != 0 {
        let (ctx, ptr) = (e.ctx, e.ptr);
        e.call_helper(
            e.hooks.note_store,
            &[ptr, ptr, types::I32],
            None,
            &[ctx, dst, len32],
        );
    }
    let ptr = e.ptr;
    if movs {
        let seg = Emitter::memory_segment(g);
        let src = e.host_addr(g, seg, esi, size, false);
        // The element loop replicates when the destination starts inside
        // the source, above it: the interpreter does that.
        let ahead = e.b.ins().isub(dst, src);
        let len_p = e.b.ins().uextend(ptr, len32);
        let zero = e.b.ins().icmp_imm_u(IntCC::Equal, ahead, 0);
        let inside = e.b.ins().icmp(IntCC::UnsignedLessThan, ahead, len_p);
        let nonzero = e.b.ins().bxor_imm_u(zero, 1);
        let replicates = e.b.ins().band(inside, nonzero);
        e.side_exit_if(replicates, g.eip);
        e.call_helper(
            jit_rep_copy as *const () as usize,
            &[ptr, ptr, types::I32],
            None,
            &[dst, src, len32],
        );
        let moved = e.b.ins().iadd(esi, len32);
        e.set_reg(6, moved);
    } else {
        let eax = e.b.use_var(e.regs[0]);
        let sz = e.b.ins().iconst(types::I32, i64::from(size));
        e.call_helper(
            jit_rep_fill as *const () as usize,
            &[ptr, types::I32, types::I32, types::I32],
            None,
            &[dst, eax, ecx, sz],
        );
    }
    let moved = e.b.ins().iadd(edi, len32);
    e.set_reg(7, moved);
    let zero = e.b.ins().iconst(types::I32, 0);
    e.set_reg(1, zero);
}

/// Whether `len` bytes (an I64) from the 32-bit offset `at` pass the end
/// of `at`'s page (an I8 0/1).
fn page_overrun(e: &mut Emitter<'_>, at: Value, len: Value) -> Value {
    let in_page = e.b.ins().band_imm_u(at, 0xFFF);
    let in_page = e.b.ins().uextend(types::I64, in_page);
    let end = e.b.ins().iadd(in_page, len);
    e.b.ins().icmp_imm_u(IntCC::UnsignedGreaterThan, end, 4096)
}
