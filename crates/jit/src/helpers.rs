//! Rust functions that generated code calls (at fixed addresses, through
//! `call_indirect`, so blocks carry no relocations): flag evaluation on
//! the state, and the interpreter for one instruction inside a block.

use cranelift_codegen::ir::{types, InstBuilder};
use oxide86_cpu::decode::Decoded;
use oxide86_cpu::flags::Flags;
use oxide86_cpu::state::eflags;
use oxide86_cpu::{Bus, CpuState, StepOutcome};

use crate::ctx::{JitCtx, EXIT_STOP};
use crate::translate::{off, Emitter, GuestInsn};

/// Whether condition `cc` holds for the state's (lazy) flags.
///
/// # Safety
/// `st` points to the live `CpuState` of the block's CPU.
pub(crate) unsafe extern "C" fn jit_condition(st: *const CpuState, cc: u32) -> u32 {
    // SAFETY: the block passes the state pointer of its JitCtx, valid and
    // not otherwise borrowed while the block runs.
    let s = unsafe { &*st };
    u32::from(s.condition(cc as u8))
}

/// Evaluates the state's lazy flags into EFLAGS (`Flags::commit_flags`).
///
/// # Safety
/// `st` points to the live `CpuState` of the block's CPU.
pub(crate) unsafe extern "C" fn jit_commit_flags(st: *mut CpuState) {
    // SAFETY: as for `jit_condition`.
    let s = unsafe { &mut *st };
    s.commit_flags();
}

/// Runs the instruction `d` at the state's EIP in the interpreter.
/// Returns 0 to continue the block, or 1 when the block must stop (a
/// fault was delivered, the instruction did not complete (REP string
/// instructions may stop early), the CPU halted, an interrupt became
/// deliverable, or the instruction wrote to code).
///
/// # Safety
/// `ctx` is the block's context: `cpu` and `bus` point to the live CPU and
/// the dispatcher's bus of type `B`, neither otherwise borrowed while the
/// block runs; `d` points into the block's own instruction list.
pub(crate) unsafe extern "C" fn interp_one<B: Bus>(
    ctx: *mut JitCtx,
    d: *const Decoded,
    next: u32,
) -> u32 {
    // SAFETY: see the function's contract; the dispatcher holds the only
    // references and does not use them while the block runs.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: as above.
    let bus = unsafe { &mut *(ctx.bus as *mut B) };
    // SAFETY: as above.
    unsafe { interp_one_on(ctx, d, next, bus) }
}

/// [`interp_one`] on a given bus (the dispatcher's, or verify mode's
/// journaling wrapper around it).
///
/// # Safety
/// `ctx.cpu` points to the live CPU, not otherwise borrowed while the block
/// runs; `d` points into the block's own instruction list.
pub(crate) unsafe fn interp_one_on<B: Bus + ?Sized>(
    ctx: &mut JitCtx,
    d: *const Decoded,
    next: u32,
    bus: &mut B,
) -> u32 {
    // SAFETY: see the function's contract.
    let (cpu, d) = unsafe { (&mut *ctx.cpu, &*d) };
    let before = cpu.state.icount;
    ctx.helper_runs += 1;
    let outcome = cpu.execute_decoded(bus, d);
    ctx.outcome = match outcome {
        StepOutcome::Continue => 0,
        StepOutcome::Halted => 1,
        StepOutcome::Shutdown => 2,
        StepOutcome::Paused => 3,
    };
    let retired = cpu.state.icount != before;
    ctx.unretired = u32::from(!retired);
    let stop = outcome != StepOutcome::Continue
        || !retired
        || cpu.state.eip != next
        || cpu.state.interrupt_shadow
        || crate::translate::ends_block_after_helper(d)
        || cpu.state.eflags & eflags::TF != 0
        || cpu
            .icache
            .code_write_log
            .as_ref()
            .is_some_and(|l| !l.is_empty())
        || (cpu.state.eflags & eflags::IF != 0 && bus.interrupt_pending());
    u32::from(stop)
}

/// Emits a call of the interpreter for `g` inside the block: the
/// Variables are written to the state first and read back after.
pub(crate) fn emit_helper_call(e: &mut Emitter<'_>, g: &GuestInsn) {
    e.flush_vars();
    let eip = e.b.ins().iconst(types::I32, i64::from(g.eip as i32));
    e.store_st(eip, off::EIP);
    let boxed = Box::new(g.d);
    let dp = e.b.ins().iconst(e.ptr, &*boxed as *const Decoded as i64);
    e.helper_insns.push(boxed);
    let next = e.b.ins().iconst(types::I32, i64::from(g.next as i32));
    let ctx = e.ctx;
    let ptr = e.ptr;
    let r = e
        .call_helper(
            e.hooks.interp_helper,
            &[ptr, ptr, types::I32],
            Some(types::I32),
            &[ctx, dp, next],
        )
        .unwrap_or(next);
    let stop = e.b.create_block();
    let cont = e.b.create_block();
    e.b.set_cold_block(stop);
    e.b.ins().brif(r, stop, &[], cont, &[]);
    e.b.switch_to_block(stop);
    let s = e.b.ins().iconst(types::I32, i64::from(EXIT_STOP));
    e.b.ins().return_(&[s]);
    e.b.switch_to_block(cont);
    e.reload_vars();
}
