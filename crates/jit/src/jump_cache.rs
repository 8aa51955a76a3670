//! The jump cache: a direct-mapped table of translated blocks in front of
//! the translation map, probed by the dispatcher at block boundaries and
//! by generated code at exits that cannot chain ([`lookup`]), as QEMU's
//! `lookup_and_goto_ptr` does: a RET, an indirect jump or a jump to
//! another page then continues into the next block without a round trip
//! through the dispatcher.

use oxide86_cpu::memory::Access;
use oxide86_cpu::{Cpu, SegReg};

use crate::cache::BlockFn;
use crate::ctx::JitCtx;
use crate::translate::Mode;

/// A translation-cache key: where the block's first instruction is
/// (physical address and EIP: a page mapped at two addresses holds two
/// blocks, whose code knows its own EIPs) and the mode it was translated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub paddr: u32,
    pub eip: u32,
    pub mode: Mode,
}

impl Key {
    /// The key of the block at the CPU's CS:`eip` in `mode` (the CPU's
    /// mode now), if the soft TLB already maps it for execution (`bus`
    /// `None`: nothing is walked) or the page walk through `bus` succeeds.
    #[inline]
    pub fn at<B: oxide86_cpu::Bus + ?Sized>(
        cpu: &mut Cpu,
        bus: Option<&mut B>,
        eip: u32,
        mode: Mode,
    ) -> Option<Key> {
        let lin = cpu.linear(SegReg::Cs, eip, 1, Access::Execute).ok()?;
        let user = cpu.user_access();
        let paddr = match bus {
            Some(bus) => cpu.translate(bus, lin, Access::Execute, user).ok()?,
            None => cpu.translate_cached(lin, Access::Execute, user)?,
        };
        Some(Key { paddr, eip, mode })
    }
}

/// Entries in the jump cache (a power of two).
const ENTRIES: usize = 4096;

/// One entry: a block's key, entry point and need (`CompiledBlock::need`).
type Entry = Option<(Key, BlockFn, u64)>;

/// The jump cache (see the module docs). Its entries are a separate heap
/// allocation that generated code reads through [`JitCtx::jump_cache`].
#[derive(Debug)]
pub(crate) struct JumpCache {
    entries: Box<[Entry]>,
}

#[inline]
fn slot(paddr: u32) -> usize {
    (paddr ^ (paddr >> 12)) as usize & (ENTRIES - 1)
}

/// The block `entries` hold for `key`: its entry and need.
#[inline]
fn probe(entries: &[Entry], key: &Key) -> Option<(BlockFn, u64)> {
    match entries[slot(key.paddr)] {
        Some((k, entry, need)) if k == *key => Some((entry, need)),
        _ => None,
    }
}

impl JumpCache {
    pub fn new() -> Self {
        Self {
            entries: vec![None; ENTRIES].into_boxed_slice(),
        }
    }

    /// The block cached for `key`: its entry and need.
    #[inline]
    pub fn get(&self, key: &Key) -> Option<(BlockFn, u64)> {
        probe(&self.entries, key)
    }

    pub fn insert(&mut self, key: Key, entry: BlockFn, need: u64) {
        self.entries[slot(key.paddr)] = Some((key, entry, need));
    }

    /// Drops `key`'s entry, if it holds one.
    pub fn remove(&mut self, key: &Key) {
        let e = &mut self.entries[slot(key.paddr)];
        if e.is_some_and(|(k, ..)| k == *key) {
            *e = None;
        }
    }

    pub fn clear(&mut self) {
        self.entries.iter_mut().for_each(|e| *e = None);
    }

    /// The entries, for [`JitCtx::jump_cache`].
    pub fn as_ptr(&self) -> *const u8 {
        self.entries.as_ptr() as *const u8
    }
}

/// Called by the lookup stub (`cache::compile_lookup_stub`), which
/// blocks tail-call at an exit with [`crate::ctx::EXIT_NEXT`] that could
/// not chain, after the state was written back: returns the entry of the
/// translated block to tail-call at the state's EIP, or 0 to return to
/// the dispatcher. It finds a block only where the dispatcher
/// would enter the same one without doing anything else first: no code
/// write waits to be applied, nothing forces the interpreter
/// ([`crate::engine::interpreter_only`]), and the soft TLB maps CS:EIP
/// (a miss is left to the dispatcher, whose page walk may write accessed
/// bits). The budget is checked by the block itself, and interrupts cannot
/// have become deliverable since the dispatcher last looked (see the
/// `engine` module docs). The mode is the one the dispatcher entered in
/// ([`JitCtx::mode`]): nothing a block runs changes it.
///
/// # Safety
/// `ctx` is the running block's context: `ctx.cpu` points to the live CPU
/// and `ctx.jump_cache` to the engine's jump cache, neither otherwise
/// borrowed while the block runs.
pub(crate) unsafe extern "C" fn lookup(ctx: *mut JitCtx) -> usize {
    // SAFETY: see the function's contract.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: as above; the entries are `ENTRIES` `Entry`s (`JumpCache::as_ptr`).
    let (cpu, entries) = unsafe {
        (
            &mut *ctx.cpu,
            std::slice::from_raw_parts(ctx.jump_cache as *const Entry, ENTRIES),
        )
    };
    ctx.lookups += 1;
    let eip = cpu.state.eip;
    if cpu
        .icache
        .code_write_log
        .as_ref()
        .is_some_and(|l| !l.is_empty())
        || crate::engine::interpreter_only(cpu)
    {
        return 0;
    }
    let Some(key) = Key::at::<dyn oxide86_cpu::Bus>(cpu, None, eip, ctx.mode) else {
        return 0;
    };
    match probe(entries, &key) {
        Some((entry, _)) => {
            ctx.lookup_hits += 1;
            entry.addr()
        }
        None => 0,
    }
}
