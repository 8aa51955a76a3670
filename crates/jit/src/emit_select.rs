//! If-conversion: a Jcc whose two paths rejoin after a few register-only
//! instructions runs both paths and keeps one with selects (CMOV on the
//! host), so a branch the host cannot predict costs no misprediction.
//!
//! Shapes (each arm a run of at most [`MAX_ARM_INSNS`] instructions that
//! only read and write registers and the lazy flags, found by
//! [`plan`] in the blocks of a region):
//!
//! - a triangle: `jcc J; arm; J:` (either arm empty), the arm falling
//!   through into J or ending with `jmp J`;
//! - a diamond: `jcc T; arm F...; jmp J; T: arm T...; J:`, either arm
//!   reaching J by falling through or by a `jmp J`.
//!
//! Both arms then run on the state after the Jcc, each from the same
//! Variables; the registers, the lazy-flags record and CF the two leave
//! are merged with selects on the Jcc's condition, and control goes to J
//! through [`Emitter::transfer`] (its budget check as for any block of the
//! region). The instructions an arm retires, its JMP included, are
//! selected the same way, so the count is the interpreter's. An arm holds
//! nothing that can leave the block or write memory or the state (no
//! memory operand, no eager-flags producer, no helper), so running the
//! arm not taken is invisible. The block's budget check (`budget.rs`)
//! counts the longer arm, so a block whose Jcc runs as selects needs that
//! many more instructions in the budget before it starts.

use cranelift_codegen::ir::{types, InstBuilder, Value};
use iced_x86::{Mnemonic as M, OpKind};

use crate::emit_insn::{cc_of, inline_kind, is_rel_branch, rel_target};
use crate::translate::{Emitter, GuestInsn, Lower, Region, Scanned};

/// The most instructions in one arm (a final JMP not counted).
pub const MAX_ARM_INSNS: usize = 6;

/// A Jcc the region runs as selects.
#[derive(Clone, Debug)]
pub(crate) struct Arms {
    /// EIP of the Jcc.
    pub jcc: u32,
    /// The instructions from the branch target up to the join (a final
    /// JMP to it included).
    pub taken: Vec<GuestInsn>,
    /// The instructions from the fall-through up to the join.
    pub fall: Vec<GuestInsn>,
    /// Where both paths continue (a block of the region).
    pub join: u32,
}

/// Whether `g` may run in an arm: inline, within its page, and touching
/// only registers and the lazy flags (SDM Vol. 2: MOV, MOVZX, MOVSX,
/// LEA, XCHG between registers; ADD, SUB, CMP, AND, OR, XOR, TEST, INC,
/// DEC, NEG, NOT of registers and immediates; NOP).
fn pure(g: &GuestInsn) -> bool {
    let insn = &g.d.insn;
    let no_memory = (0..insn.op_count()).all(|n| insn.op_kind(n) != OpKind::Memory);
    g.lower == Lower::Inline
        && g.crossing.is_none()
        && inline_kind(&g.d) == Some(false)
        && match insn.mnemonic() {
            M::Lea | M::Nop => true,
            M::Mov
            | M::Movzx
            | M::Movsx
            | M::Xchg
            | M::Add
            | M::Sub
            | M::Cmp
            | M::And
            | M::Or
            | M::Xor
            | M::Test
            | M::Inc
            | M::Dec
            | M::Neg
            | M::Not => no_memory,
            _ => false,
        }
}

/// The instructions of `block` from its start up to `join`: those before
/// the one at `join` (none when the block starts there), or up to and
/// including a JMP to `join`; `None` when something else comes first.
fn arm_to(block: &Scanned, join: u32) -> Option<Vec<GuestInsn>> {
    let mut arm = Vec::new();
    for g in &block.insns {
        if g.eip == join {
            return Some(arm);
        }
        if arm.len() == MAX_ARM_INSNS {
            return None;
        }
        let insn = &g.d.insn;
        if g.lower == Lower::Inline
            && insn.mnemonic() == M::Jmp
            && inline_kind(&g.d) == Some(true)
            && is_rel_branch(insn)
            && rel_target(insn, g.eip) == join
        {
            arm.push(*g);
            return Some(arm);
        }
        if !pure(g) {
            return None;
        }
        arm.push(*g);
    }
    None
}

/// Where the block's pure prefix ends with a JMP: its target.
fn jmp_after_prefix(block: &Scanned) -> Option<u32> {
    let g = block
        .insns
        .iter()
        .take(MAX_ARM_INSNS + 1)
        .find(|g| !pure(g))?;
    let insn = &g.d.insn;
    let rel_jmp = insn.mnemonic() == M::Jmp && is_rel_branch(insn);
    (g.lower == Lower::Inline && rel_jmp && inline_kind(&g.d) == Some(true))
        .then(|| rel_target(insn, g.eip))
}

/// The Jccs of `region` that run as selects: both successors and the join
/// are blocks of the region (so both paths ran while it was being
/// counted), and both arms are short and pure.
pub(crate) fn plan(region: &Region) -> Vec<Arms> {
    let block_at = |eip: u32| region.blocks.iter().find(|b| b.start_eip == eip);
    let mut plans = Vec::new();
    for block in &region.blocks {
        let Some(last) = block.insns.last() else {
            continue;
        };
        let insn = &last.d.insn;
        if last.lower != Lower::Inline
            || !insn.is_jcc_short_or_near()
            || inline_kind(&last.d) != Some(true)
        {
            continue;
        }
        let (t, f) = (rel_target(insn, last.eip), last.next);
        let (Some(tb), Some(fb)) = (block_at(t), block_at(f)) else {
            continue;
        };
        let joins = [Some(t), Some(f), jmp_after_prefix(tb), jmp_after_prefix(fb)];
        let found = joins.into_iter().flatten().find_map(|j| {
            block_at(j)?;
            Some((j, arm_to(tb, j)?, arm_to(fb, j)?))
        });
        if let Some((join, taken, fall)) = found {
            plans.push(Arms {
                jcc: last.eip,
                taken,
                fall,
                join,
            });
        }
    }
    plans
}

/// The Variables an arm may assign: registers, lazy record, CF.
fn snapshot(e: &mut Emitter<'_>) -> [Value; 14] {
    std::array::from_fn(|i| match i {
        0..=7 => e.b.use_var(e.regs[i]),
        8..=12 => e.b.use_var(e.lz[i - 8]),
        _ => e.b.use_var(e.cf),
    })
}

/// Emits one arm from the current Variables, leaving the lazy record in
/// them (not deferred).
fn emit_arm(e: &mut Emitter<'_>, arm: &[GuestInsn]) {
    for g in arm {
        if g.d.insn.mnemonic() != M::Jmp {
            crate::emit_insn::emit(e, g);
        }
    }
    e.settle_lazy_op();
}

/// Emits the Jcc `g` as the selects `arms` describe (see the module doc).
/// `e.k` counts the instructions of the guest block before `g`.
pub(crate) fn emit(e: &mut Emitter<'_>, g: &GuestInsn, arms: &Arms) {
    let insn = g.d.insn;
    let c = e.condition(cc_of(&insn));
    e.materialize_deferred();
    e.settle_lazy_op();
    let k = e.k;
    let bu = e.b.use_var(e.budget);
    let bu = e.b.ins().iadd_imm_s(bu, -(k + 1));
    e.b.def_var(e.budget, bu);
    // The block's need (`budget.rs`) counted the longer arm: the budget
    // holds it here.
    let (nt, nf) = (arms.taken.len() as i64, arms.fall.len() as i64);
    e.k = 0;

    let (flags_dead, replaced) = (e.flags_dead, e.flags_replaced_later);
    (e.flags_dead, e.flags_replaced_later) = (false, false);
    let before = snapshot(e);
    let record = (e.known, e.op_pending);
    e.in_arm = true;
    emit_arm(e, &arms.taken);
    let taken = snapshot(e);
    for i in 0..before.len() {
        if taken[i] != before[i] {
            define(e, i, before[i]);
        }
    }
    (e.known, e.op_pending) = record;
    emit_arm(e, &arms.fall);
    let fall = snapshot(e);
    e.in_arm = false;
    for i in 0..taken.len() {
        if taken[i] != fall[i] {
            let v = e.b.ins().select(c, taken[i], fall[i]);
            define(e, i, v);
        }
    }
    e.known = None;
    e.op_pending = false;
    e.synced = [e.write_through; 8];
    e.lazy_synced = false;
    (e.flags_dead, e.flags_replaced_later) = (flags_dead, replaced);

    let ntv = e.b.ins().iconst(types::I64, nt);
    let nfv = e.b.ins().iconst(types::I64, nf);
    let n = e.b.ins().select(c, ntv, nfv);
    let bu = e.b.ins().isub(bu, n);
    e.b.def_var(e.budget, bu);
    e.transfer(arms.join);
    e.k = k;
}

/// Assigns Variable `i` of [`snapshot`]'s order.
fn define(e: &mut Emitter<'_>, i: usize, v: Value) {
    match i {
        0..=7 => e.set_reg(i, v),
        8..=12 => {
            e.b.def_var(e.lz[i - 8], v);
            e.lazy_dirty = true;
        }
        _ => e.b.def_var(e.cf, v),
    }
}
