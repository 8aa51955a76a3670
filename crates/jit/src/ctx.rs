//! The run-time context a translated block receives: raw pointers to the
//! shared [`CpuState`] and guest RAM, plus the instruction budget (the
//! soft TLB's entries are a constant in the code: `translate::Bases`).
//! `#[repr(C)]` so generated code addresses the fields with `offset_of!`.

use oxide86_cpu::{Cpu, CpuState};

use crate::translate::Mode;

/// Block exit status: state is in memory; continue at EIP (look it up).
pub const EXIT_NEXT: u32 = 0;
/// Block exit status: state is in memory; the instruction at EIP needs the
/// interpreter (a slow memory path, an untranslated instruction, or a
/// fault the interpreter must raise).
pub const EXIT_INTERP: u32 = 1;
/// Block exit status: an interpreter helper ran an instruction inside the
/// block and asked to stop (fault delivered, pending interrupt, halt,
/// self-modifying write); [`JitCtx::outcome`] says how the step ended.
pub const EXIT_STOP: u32 = 2;

/// A chaining slot: one per block exit that may continue straight into
/// another block with a constant or same-page target. The dispatcher
/// fills it the first time the exit is taken and the successor is
/// translated; the exit then tail-calls `entry` itself when the EIP it
/// leaves with is `eip`. A slot of an exit to the block's own page is
/// never cleared: its successor is keyed by the same mode and the same
/// physical page as the block holding the slot, so both are invalidated
/// together. A slot linked to a successor on another page (a constant
/// target there, or a RET's target; the exit hands it to the dispatcher
/// with the low bit of its address set) is cleared when that successor is
/// invalidated (`Engine::far_links`), and with paging on the exit checks
/// first that the soft TLB still maps the target's page to `page` with
/// the fetch right (see `docs/jit.md`, "Chaining").
#[repr(C, align(8))]
#[derive(Debug, Default)]
pub struct ChainSlot {
    /// The successor's entry (a `CallConv::Tail` function), or 0.
    pub entry: usize,
    /// The EIP the successor starts at.
    pub eip: u32,
    /// The successor's physical page base (far slots).
    pub page: u32,
}

/// The low bit of a far [`ChainSlot`]'s address as generated code passes
/// it to its exit and to the dispatcher (`JitCtx::link_slot`).
pub const FAR_SLOT: usize = 1;

/// [`JitCtx::budget_stop`] when no region stopped for want of budget.
pub const NO_BUDGET_STOP: u64 = u64::MAX;

/// What a block sees; built by the dispatcher for each entry.
#[repr(C)]
#[derive(Debug)]
pub struct JitCtx {
    /// The CPU's architectural state.
    pub state: *mut CpuState,
    /// Guest RAM (the bus's `ram()` slice), or null if the bus has none.
    /// Generated code reaches it only through soft-TLB entries, which map
    /// whole pages inside the slice.
    pub ram: *mut u8,
    /// Steps the block and the blocks chained after it may still retire.
    /// Every block checks on entry that one pass of its body fits, and
    /// every exit subtracts what it retired.
    pub budget: u64,
    /// The whole CPU, for interpreter helpers.
    pub cpu: *mut Cpu,
    /// The bus (a `*mut B` of the dispatcher's bus type), for helpers.
    pub bus: *mut u8,
    /// `StepOutcome` of a helper that stopped the block (0 continue, 1 halted, 2 shutdown, 3 paused).
    pub outcome: u32,
    /// 1 when a helper's step ended the block without retiring its
    /// instruction (a fault was delivered): a step the count misses.
    pub unretired: u32,
    /// Set by an exit that could have chained but found its slot empty
    /// or holding another EIP: the dispatcher links it to the block it
    /// looks up next. A far slot's address has [`FAR_SLOT`] set.
    pub link_slot: *mut ChainSlot,
    /// Chained block entries (tail calls) since the dispatcher entered.
    pub chained: u64,
    /// Instructions the interpreter helper ran inside blocks since the
    /// dispatcher entered.
    pub helper_runs: u64,
    /// The engine's jump cache entries (`JumpCache::as_ptr`), read by
    /// `jump_cache::lookup`.
    pub jump_cache: *const u8,
    /// The mode of the block the dispatcher entered, which is the mode of
    /// every block it chains to: no instruction a block runs (inline or
    /// through the helper, see `translate::helper_safe`) changes the mode.
    pub mode: Mode,
    /// Lookups generated code made through `jump_cache::lookup` since the
    /// dispatcher entered, and those that found a block.
    pub lookups: u64,
    pub lookup_hits: u64,
    /// Where the budget ran out: the region (`(paddr << 32) | eip` of its
    /// entry, in this context's mode) that stopped before a block for
    /// want of budget, or [`NO_BUDGET_STOP`]. The run's end is a point
    /// in guest time no block chooses, so this samples where chained
    /// code spends its time (`engine/optimize.rs`).
    pub budget_stop: u64,
    /// Verify mode: the verifier's journal of what the block overwrites
    /// (a `*mut verify::Journal`), read by the verify-mode helpers only;
    /// null otherwise.
    pub journal: *mut u8,
}
