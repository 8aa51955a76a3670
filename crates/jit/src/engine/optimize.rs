//! Optimised recompilation (the translating engines' second tier): a
//! block where much of the guest's time goes is compiled again through
//! Cranelift's optimiser (`opt_level=speed`) and replaces its first
//! compilation. Under `jit`, whose first compilations are single blocks,
//! the second is a region (`Engine::region_blocks`) grown over the blocks
//! that ran, so hot loops run as fast as under `tiered`.
//!
//! First compilations skip the optimiser: most translated code runs a
//! few thousand times, and the optimiser's third more compile time does
//! not pay for itself there (the Linux boot is slower with it). A hot
//! loop is another matter: GVN, constant folding and redundant-load
//! elimination over a region's SSA values make recursive calls and
//! register-heavy loops a fifth faster (`docs/performance.md`). Where the
//! time goes is sampled at almost no cost to generated code: a call of
//! `Engine::run` ends where the instruction budget runs out (the next
//! device event), a point in guest time no block chooses, and the region
//! that stopped there for want of budget records its entry in the context
//! (`JitCtx::budget_stop`, written on the budget-stop paths only). That
//! region is credited with the instructions block runs retired in the
//! call (else, when no block stopped, the block the dispatcher entered
//! last). Crediting only the dispatcher's entry missed regions entered by
//! chaining: a slice starts again at the block where the last one
//! stopped, usually a colder region of its own, and `branches` spent
//! 44% of its time in first compilations. Once a block's credit reaches
//! [`Engine::optimize_after`] it is compiled again, in the background
//! when translation is, synchronously otherwise (verify mode then checks
//! the optimised code like any other).
//!
//! The new block takes the old one's place in the table; the old one is
//! retired (its code stays valid until the generation is flushed) and
//! unlinked: its jump-cache entry and every chaining slot that leads to
//! it are cleared, so the next entry, from the dispatcher or a chained
//! exit, reaches the new code.

use std::time::Instant;

use oxide86_cpu::{Bus, Cpu};

use super::{interpreter_only, Engine, EngineKind, Entry, Key};
use crate::cache::CompiledBlock;
use crate::translate::Mode;

/// The default [`Engine::optimize_after`]: about a millisecond of guest
/// time at the speed of first compilations, against a few milliseconds of
/// the compile thread for an optimised region, which the worker takes only
/// when it has nothing else to do. At 10 M, the benchmarks ran a tenth of
/// their time in first compilations of their loops (integer-mix, whose
/// loop four regions hold, 14%); at 1 M they run 6-12% faster and the
/// Linux boot optimises 100 regions instead of 44 with the compile
/// thread's time unchanged (3.77 s against 3.70 s; prompt medians of 4
/// interleaved boots 7.55 s against 8.56 s, on a noisy host).
pub const OPTIMIZE_AFTER: u64 = 1_000_000;

impl Engine {
    /// At the end of `Engine::run`: credits the region that ran out of
    /// budget (else the block the dispatcher entered last) with the steps
    /// block runs retired, and compiles it
    /// again once it has earned it (rescanned in the CPU's mode, so only
    /// while that and the page's mapping are still the block's).
    pub(super) fn credit<B: Bus>(&mut self, cpu: &mut Cpu, bus: &mut B) {
        let steps = std::mem::take(&mut self.block_steps);
        let entered = self.last_entry.take();
        let Some(key) = self.budget_stop.take().or(entered) else {
            return;
        };
        if self.kind == EngineKind::Interp || self.optimize_after == 0 || steps == 0 {
            return;
        }
        // First compilations come first: the worker takes an optimised
        // one only when it has nothing else to do.
        let worker_busy = self.backgrounded() && self.bg_in_flight() > 0;
        let Some(Entry::Block(b)) = self.map.get_mut(&key) else {
            return;
        };
        if b.optimized {
            return;
        }
        b.credit = b.credit.saturating_add(steps);
        if b.credit < self.optimize_after || worker_busy || interpreter_only(cpu) {
            return;
        }
        if Key::at(cpu, None::<&mut B>, key.eip, Mode::of(cpu)) != Some(key) {
            return;
        }
        // Earned again from nothing if this attempt comes to nothing.
        b.credit = 0;
        self.reoptimize(cpu, bus, key);
    }

    /// Compiles the translated block at `key` (valid in the CPU's current
    /// mode and mapping) again through the optimiser.
    fn reoptimize<B: Bus>(&mut self, cpu: &mut Cpu, bus: &mut B, key: Key) {
        if self.in_flight(&key) || self.generation_blocks() >= self.generation_limit {
            return;
        }
        let start = Instant::now();
        let (scanned, hooks) = self.scan::<B>(cpu, bus, key, self.region_blocks);
        let Some(region) = scanned else {
            return;
        };
        let region = if self.backgrounded() {
            match self.submit(key, region, hooks, true) {
                Ok(()) => {
                    self.stats.translate_ns += start.elapsed().as_nanos() as u64;
                    return;
                }
                Err(region) => region,
            }
        } else {
            region
        };
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        if let Ok(b) = cache.compiler.compile(&region, key.mode, hooks, true) {
            self.stats.blocks_translated += 1;
            self.stats.regions += u64::from(region.blocks.len() > 1);
            self.stats.selects += b.selects;
            self.stats.optimized += 1;
            self.install(key, b);
        }
        self.stats.code_bytes = self.generation_code_bytes() as u64;
        self.stats.translate_ns += start.elapsed().as_nanos() as u64;
    }

    /// Puts `block` in the table at `key`. A block it replaces is retired
    /// and unlinked (see the module docs).
    pub(super) fn install(&mut self, key: Key, block: CompiledBlock) {
        // The cold filter may be skipping lookups there (while the block
        // waited for its translation): its next entry looks it up.
        self.cold.take(key.mode.cs_base.wrapping_add(key.eip));
        let Some(Entry::Block(old)) = self.map.insert(key, Entry::Block(Box::new(block))) else {
            return;
        };
        self.jump_cache.remove(&key);
        self.unlink_far(old.entry);
        // A near slot links to a block on its own block's page (see
        // `ChainSlot`): only the blocks translated from this page can
        // hold one to `old`.
        for k in self.pages.keys_of(key.paddr >> 12).to_vec() {
            if let Some(Entry::Block(b)) = self.map.get_mut(&k) {
                b.unlink_from(old.entry);
            }
        }
        for b in &mut self.retired {
            b.unlink_from(old.entry);
        }
        self.retired.push(*old);
    }
}
