//! The execution engine: the interpreter alone, or the dispatcher that
//! runs translated blocks and falls back to the interpreter (`--engine
//! interp|jit|tiered`).
//!
//! A block is entered only where `Cpu::step` would execute an instruction
//! without first taking an interrupt, trap or breakpoint, and only when
//! its whole pass fits in the caller's step budget, so under the virtual
//! clock every engine retires the same instructions between device
//! events. Inside a block nothing can make an interrupt deliverable: it
//! contains no I/O, no IF/TF change and no MMIO access (the slow path
//! leaves the block), and the interpreter helper stops the block if the
//! instruction it ran left an interrupt pending.
//!
//! Blocks chain: an exit to an EIP on the block's own page continues
//! straight into the block translated there (see `ctx::ChainSlot`), and
//! other exits (another page, a return) ask the jump cache through the
//! lookup stub (`jump_cache::lookup`), so the dispatcher runs only at
//! exits that need it (an untranslated target, a soft-TLB miss, the
//! interpreter, the budget). Each chained block re-checks the budget on
//! entry, so chains end exactly where a lone block would, and nothing in
//! a chain can make an interrupt deliverable.

mod background;
mod cold_filter;
mod optimize;
pub use optimize::OPTIMIZE_AFTER;

use std::time::Instant;

use rustc_hash::FxHashMap;

use oxide86_cpu::decode::FLUSHED_ALL;
use oxide86_cpu::interrupt::Source;
use oxide86_cpu::state::{cr0, eflags};
use oxide86_cpu::{Bus, Cpu, CpuModel, SegReg, StepOutcome};

use crate::cache::{BlockFn, CodeCache, CompiledBlock, GENERATION_LIMIT};
use crate::ctx::{ChainSlot, JitCtx, EXIT_INTERP, EXIT_NEXT, FAR_SLOT, NO_BUDGET_STOP};
use crate::jump_cache::{JumpCache, Key};
use crate::smc::CodePages;
use crate::translate::{scan_region_at, Bases, Hooks, Miscompile, Mode, Region, MAX_REGION_BLOCKS};
use crate::verify::report::Mismatch;
use crate::verify::{BlockRun, Verdict, Verifier};

/// Which engine runs guest code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineKind {
    /// The interpreter only.
    Interp,
    /// Translate every block at its first execution.
    Jit,
    /// Interpret until a block has run `threshold` times, then translate it.
    #[default]
    Tiered,
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "interp" => Ok(Self::Interp),
            "jit" => Ok(Self::Jit),
            "tiered" => Ok(Self::Tiered),
            _ => Err(format!("unknown engine `{s}` (interp, jit or tiered)")),
        }
    }
}

/// Counters for `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct JitStats {
    /// Blocks translated.
    pub blocks_translated: u64,
    /// Host time spent scanning and compiling, in nanoseconds (on
    /// either thread).
    pub translate_ns: u64,
    /// Of `translate_ns`, the time the background worker spent compiling.
    pub background_ns: u64,
    /// Regions handed to the background worker.
    pub background_jobs: u64,
    /// Background translations thrown away unrun: their page was written
    /// or the cache flushed while they were being compiled.
    pub discarded: u64,
    /// Machine-code bytes produced.
    pub code_bytes: u64,
    /// Translation-cache lookups.
    pub lookups: u64,
    /// Lookups that found a translated block.
    pub hits: u64,
    /// Block executions (entered by the dispatcher or chained).
    pub block_runs: u64,
    /// Block executions entered from another block without the dispatcher.
    pub chained: u64,
    /// Chaining slots filled in.
    pub links: u64,
    /// Instructions retired inside blocks.
    pub block_insns: u64,
    /// Of those, instructions the interpreter helper ran (the rest ran
    /// as inline code).
    pub helper_insns: u64,
    /// Translations holding more than one guest block (regions).
    pub regions: u64,
    /// Branches compiled as selects (both short arms run, one kept:
    /// `emit_select.rs`), over all translations.
    pub selects: u64,
    /// Of the translations, hot ones compiled again through Cranelift's
    /// optimiser (see [`Engine::optimize_after`]).
    pub optimized: u64,
    /// Blocks (and untranslatable markers) dropped because their code was written.
    pub invalidations: u64,
    /// Whole-cache flushes (generation full, or a reset).
    pub flushes: u64,
    /// Places where not even one instruction could be translated.
    pub untranslatable: u64,
    /// Verify mode: block executions (chained ones included) whose result
    /// the interpreter reproduced.
    pub blocks_verified: u64,
    /// Verify mode: block executions not checked because they touched a
    /// device (MMIO or ROM through the interpreter helper).
    pub blocks_unverifiable: u64,
}

/// What the cache holds for a key.
#[derive(Debug)]
enum Entry {
    /// Boxed: most entries of a boot are counts (tens of thousands of
    /// lukewarm block starts), and the dispatcher probes the map for them
    /// at every lookup; inline, a block made every slot 128 bytes.
    Block(Box<CompiledBlock>),
    /// The first instruction cannot be translated: interpret it.
    Interp,
    /// Tiered: not translated yet; the executions counted so far.
    Counting(u32),
}

/// The default number of executions before a block is translated.
pub const DEFAULT_THRESHOLD: u32 = 1000;

/// An engine (see the module docs). One per CPU.
#[derive(Debug)]
pub struct Engine {
    kind: EngineKind,
    /// Executions before translation (tiered).
    pub threshold: u32,
    /// Blocks a code generation holds before the whole cache is flushed
    /// (default [`GENERATION_LIMIT`]).
    pub generation_limit: usize,
    /// Guest instructions of the runs that end in a translated block
    /// before it is compiled again through Cranelift's optimiser, under
    /// `jit` as a region (0: never; default [`OPTIMIZE_AFTER`]; see
    /// `engine/optimize.rs`).
    pub optimize_after: u64,
    /// The most guest blocks compiled into one function (1: no regions).
    /// The `jit` engine translates single blocks at their first execution
    /// and regions only when it recompiles hot code (`engine/optimize.rs`).
    pub region_blocks: usize,
    /// Tiered engine: compile on a worker thread while the block goes on
    /// being interpreted, and install it at a later dispatcher entry (see
    /// `engine/background.rs`). Off by default, so translation counts are
    /// deterministic; verify mode always translates synchronously.
    pub background: bool,
    /// Background translation's state (empty until first used).
    bg: background::Background,
    cache: Option<CodeCache>,
    /// Every translation, untranslatable marker and (tiered) execution
    /// count by key, so the dispatcher finds any of them with one lookup.
    /// Fx hashing:
    /// the dispatcher looks keys up millions of times a second, and keys
    /// come from the guest's own addresses, not from an adversary who
    /// could profit from collisions (a collision costs time, never
    /// correctness).
    map: FxHashMap<Key, Entry>,
    pages: CodePages<Key>,
    /// Direct-mapped front of `map` for translated blocks (by physical address).
    jump_cache: JumpCache,
    /// Lukewarm block starts the dispatcher may interpret without a
    /// lookup (tiered; `engine/cold_filter.rs`).
    cold: cold_filter::ColdFilter,
    /// Blocks dropped from the tables but not yet freed: their code and
    /// chaining slots live until the generation is retired, so a slot
    /// address handed to the dispatcher stays valid.
    retired: Vec<CompiledBlock>,
    /// The address of a chaining slot to fill with the next block looked
    /// up (0 for none); see `JitCtx::link_slot`.
    pending_link: usize,
    /// Far chaining slots by the entry of the block they are linked to
    /// (slot addresses), to be cleared when that block is invalidated
    /// (`ChainSlot`; blocks on its own page die with the slot's).
    far_links: FxHashMap<usize, Vec<usize>>,
    /// Counts calls of [`Engine::flush`], which free chaining slots.
    generation: u64,
    /// Verify mode's twins and journal (`None`: not verifying).
    verifier: Option<Box<Verifier>>,
    /// The first difference verify mode found (the run stopped there).
    mismatch: Option<Box<Mismatch>>,
    /// Test only: see [`Engine::inject_miscompile`].
    miscompile: Option<Miscompile>,
    /// The block the dispatcher entered last in this call of
    /// [`Engine::run`], and the steps block runs retired in it (see
    /// `engine/optimize.rs`).
    last_entry: Option<Key>,
    block_steps: u64,
    /// The region where block runs last stopped for want of budget in
    /// this call of [`Engine::run`] (`JitCtx::budget_stop`).
    budget_stop: Option<Key>,
    /// Where the soft TLB and guest RAM were for the blocks of this
    /// generation, which address them as constants.
    bases: Bases,
    /// Counters.
    pub stats: JitStats,
}

impl Engine {
    /// An engine of `kind`. If Cranelift does not support the host, the
    /// JIT kinds fall back to the interpreter (see [`Engine::kind`]).
    pub fn new(kind: EngineKind) -> Self {
        let cache = match kind {
            EngineKind::Interp => None,
            _ => CodeCache::new().ok(),
        };
        let kind = if cache.is_none() {
            EngineKind::Interp
        } else {
            kind
        };
        Self {
            kind,
            threshold: DEFAULT_THRESHOLD,
            generation_limit: GENERATION_LIMIT,
            region_blocks: MAX_REGION_BLOCKS,
            optimize_after: OPTIMIZE_AFTER,
            background: false,
            bg: background::Background::default(),
            cache,
            map: FxHashMap::default(),
            pages: CodePages::default(),
            jump_cache: JumpCache::new(),
            cold: cold_filter::ColdFilter::default(),
            retired: Vec::new(),
            pending_link: 0,
            far_links: FxHashMap::default(),
            generation: 0,
            verifier: None,
            mismatch: None,
            miscompile: None,
            last_entry: None,
            block_steps: 0,
            budget_stop: None,
            bases: Bases::default(),
            stats: JitStats::default(),
        }
    }

    /// Turns verify mode (`--jit-verify`) on or off: every translated block
    /// run is then checked against the interpreter (see `verify.rs`), and
    /// the first difference stops [`Engine::run`] and is kept for
    /// [`Engine::mismatch`]. Blocks are compiled differently in verify mode
    /// (they journal their stores), so changing it drops every translation.
    /// No effect on the interpreter engine.
    pub fn set_verify(&mut self, on: bool) {
        if on == self.verifier.is_some() {
            return;
        }
        self.flush();
        self.verifier = on.then(|| Box::new(Verifier::new()));
    }

    /// Whether verify mode is on.
    pub fn verifying(&self) -> bool {
        self.verifier.is_some()
    }

    /// The difference verify mode found, if any (it stays until taken).
    pub fn mismatch(&self) -> Option<&Mismatch> {
        self.mismatch.as_deref()
    }

    /// Takes the difference verify mode found, so the run can go on.
    pub fn take_mismatch(&mut self) -> Option<Box<Mismatch>> {
        self.mismatch.take()
    }

    /// Test only: translate with a deliberate error (or none), to prove
    /// that verify mode catches one. Drops every translation.
    #[doc(hidden)]
    pub fn inject_miscompile(&mut self, m: Option<Miscompile>) {
        self.flush();
        self.miscompile = m;
    }

    /// Background translations handed to the worker whose results the
    /// dispatcher has not taken yet (they are taken at dispatcher entries
    /// in [`Engine::run`]).
    pub fn background_in_flight(&self) -> usize {
        self.bg_in_flight()
    }

    /// The EIPs of the translations compiled again through Cranelift's
    /// optimiser (`engine/optimize.rs`), in no particular order.
    pub fn optimized_eips(&self) -> Vec<u32> {
        self.map
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Block(b) if b.optimized))
            .map(|(k, _)| k.eip)
            .collect()
    }

    /// The engine actually in use.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Drops every translation (the code memory too).
    pub fn flush(&mut self) {
        self.invalidate_all();
        self.retired.clear();
        self.generation += 1;
        if self.generation_blocks() > 0 {
            self.stats.flushes += 1;
        }
        // No block of the old generation is referenced any more: both
        // compilers may free their code.
        self.flush_background();
        if let Some(c) = &mut self.cache {
            if c.compiler.blocks > 0 && c.compiler.flush().is_err() {
                self.cache = None;
                self.kind = EngineKind::Interp;
            }
        }
    }

    /// Blocks compiled (or being compiled) in the current generation.
    fn generation_blocks(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.compiler.blocks) + self.bg.jobs
    }

    /// Machine-code bytes of the current generation.
    fn generation_code_bytes(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.compiler.code_bytes) + self.bg.code_bytes
    }

    /// Drops every translation from the lookup tables (as a decode-cache
    /// flush does; call it before running another `Cpu` on this engine):
    /// the code stays allocated until the generation is retired.
    pub fn invalidate_all(&mut self) {
        self.jump_cache.clear();
        for (_, e) in self.map.drain() {
            if let Entry::Block(b) = e {
                self.retired.push(*b);
            }
        }
        self.pages.clear();
        self.forget_all_pending();
        self.pending_link = 0;
        // Every block is retired: none that runs from now on links to one.
        self.far_links.clear();
    }

    /// Links the chaining slot at `link` (from `JitCtx::link_slot`) to the
    /// block at `entry`, which starts at `eip` on physical address `paddr`.
    fn link(&mut self, link: usize, entry: BlockFn, eip: u32, paddr: u32) {
        let far = link & FAR_SLOT != 0;
        let slot = link & !FAR_SLOT;
        // SAFETY: `slot` is a slot of a block of the current generation
        // (live or in `retired`; a flush since it was taken zeroed `link`),
        // and no generated code runs now.
        unsafe {
            *(slot as *mut ChainSlot) = ChainSlot {
                entry: entry.addr(),
                eip,
                page: paddr & !0xFFF,
            };
        }
        if far {
            self.far_links.entry(entry.addr()).or_default().push(slot);
        }
        self.stats.links += 1;
    }

    /// Clears the far slots linked to `retired`'s entry (see
    /// [`Engine::far_links`]).
    fn unlink_far(&mut self, retired: BlockFn) {
        let Some(slots) = self.far_links.remove(&retired.addr()) else {
            return;
        };
        for slot in slots {
            // SAFETY: as in `link`: the slot's block is of the current
            // generation (far links are dropped at every flush).
            unsafe {
                let s = &mut *(slot as *mut ChainSlot);
                if s.entry == retired.addr() {
                    *s = ChainSlot::default();
                }
            }
        }
    }

    /// Runs at most `max_steps` steps (a step is what one `Cpu::step`
    /// does: retire an instruction, or deliver an interrupt or fault).
    /// `after(bus, n)` is called after every `n` steps run together (one
    /// interpreter step, or a block) and returns true to stop. Returns the
    /// last outcome and the steps run.
    pub fn run<B: Bus>(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut B,
        max_steps: u64,
        mut after: impl FnMut(&mut B, u64) -> bool,
    ) -> (StepOutcome, u64) {
        let mut steps = 0;
        let mut outcome = StepOutcome::Continue;
        if self.kind == EngineKind::Interp || cpu.state.model != CpuModel::P6 {
            while steps < max_steps {
                outcome = cpu.step(bus);
                steps += 1;
                if after(bus, 1) || outcome != StepOutcome::Continue {
                    break;
                }
            }
            return (outcome, steps);
        }
        if cpu.icache.code_write_log.is_none() {
            // Translations made before logging started cannot exist.
            cpu.icache.code_write_log = Some(Vec::new());
        }
        if !self.bases.still_hold(cpu, bus) {
            // Another TLB, RAM or memory map than the blocks were
            // compiled for.
            self.flush();
            self.bases = Bases::of(cpu, bus);
        }
        while steps < max_steps {
            self.drain_code_writes(cpu);
            // After the drain: a result whose page was just written is
            // discarded, not installed.
            self.poll_background();
            let link = std::mem::take(&mut self.pending_link);
            let generation = self.generation;
            let gate = self.block_entry(cpu, bus);
            let mut forced = false;
            let mut checked = true;
            // A flush while translating freed the slot `link` points to.
            let link = if self.generation == generation {
                link
            } else {
                0
            };
            if let (&Gate::Block(entry, _, _, paddr), true) = (&gate, link != 0) {
                self.link(link, entry, cpu.state.eip, paddr);
            }
            match gate {
                Gate::Interpret => {}
                Gate::Step => checked = false,
                Gate::Delivered(o) => {
                    steps += 1;
                    outcome = o;
                    if after(bus, 1) || o != StepOutcome::Continue {
                        break;
                    }
                    continue;
                }
                Gate::Block(entry, need, mode, _) if need <= max_steps - steps => {
                    let (status, n, o) = self.run_block(cpu, bus, entry, mode, max_steps - steps);
                    steps += n;
                    self.block_steps += n;
                    outcome = o;
                    if self.mismatch.is_some() {
                        break;
                    }
                    if (n > 0 && after(bus, n)) || o != StepOutcome::Continue {
                        break;
                    }
                    if status != EXIT_NEXT {
                        self.pending_link = 0;
                    }
                    if status != EXIT_INTERP {
                        continue;
                    }
                    // The block left this one instruction to the
                    // interpreter: the next may start a block again.
                    forced = true;
                }
                Gate::Block(..) => {}
            }
            if steps >= max_steps {
                break;
            }
            let limit = if forced { 1 } else { max_steps - steps };
            let (o, n, stop) = interpret(cpu, bus, limit, checked && !forced, &mut after);
            steps += n;
            outcome = o;
            if stop || outcome != StepOutcome::Continue {
                break;
            }
        }
        // Between calls the owner may change the CPU (a debugger, a
        // snapshot): link only within one call.
        self.pending_link = 0;
        self.credit(cpu, bus);
        (outcome, steps)
    }

    /// Applies logged writes to code: drops the blocks of those pages.
    fn drain_code_writes(&mut self, cpu: &mut Cpu) {
        let Some(log) = cpu.icache.code_write_log.as_mut() else {
            return;
        };
        if log.is_empty() {
            return;
        }
        let pages = std::mem::take(log);
        for page in pages {
            if page == FLUSHED_ALL {
                self.invalidate_all();
                continue;
            }
            for key in self.pages.take(page) {
                self.forget_pending(&key);
                self.jump_cache.remove(&key);
                match self.map.remove(&key) {
                    Some(Entry::Block(b)) => {
                        self.unlink_far(b.entry);
                        self.retired.push(*b);
                        self.stats.invalidations += 1;
                    }
                    Some(Entry::Interp) => self.stats.invalidations += 1,
                    // Queued for the worker (`translate` registered it).
                    Some(Entry::Counting(_)) | None => {}
                }
                if self.kind == EngineKind::Tiered {
                    // It was hot: translated again at its next execution.
                    let hot = self.threshold.saturating_sub(1);
                    self.map.insert(key, Entry::Counting(hot));
                }
            }
        }
    }

    /// Decides what happens at CS:EIP: a block, the interpreter, or an NMI
    /// delivered here (as `Cpu::step` would, before anything else).
    fn block_entry<B: Bus>(&mut self, cpu: &mut Cpu, bus: &mut B) -> Gate {
        if interpreter_only(cpu) {
            return Gate::Step;
        }
        if !cpu.state.nmi_blocked && bus.take_nmi() {
            cpu.state.nmi_blocked = true;
            let eip = cpu.state.eip;
            return Gate::Delivered(cpu.deliver(bus, 2, eip, Source::External));
        }
        if cpu.state.eflags & eflags::IF != 0 && bus.interrupt_pending() {
            return Gate::Step;
        }
        let eip = cpu.state.eip;
        let lin = cpu.state.segment(SegReg::Cs).base.wrapping_add(eip);
        let per = (self.threshold / 64).min(cold_filter::MAX_SKIPPED);
        if self.cold.skip(lin, per) {
            return Gate::Interpret;
        }
        let runs = self.cold.take(lin);
        let Some(key) = Key::at(cpu, Some(bus), eip, Mode::of(cpu)) else {
            return Gate::Interpret;
        };
        self.stats.lookups += 1;
        if let Some((entry, need)) = self.jump_cache.get(&key) {
            self.stats.hits += 1;
            self.last_entry = Some(key);
            return Gate::Block(entry, need, key.mode, key.paddr);
        }
        match self.map.get_mut(&key) {
            Some(Entry::Block(b)) => {
                self.stats.hits += 1;
                self.last_entry = Some(key);
                self.jump_cache.insert(key, b.entry, b.need);
                return Gate::Block(b.entry, b.need, key.mode, key.paddr);
            }
            Some(Entry::Interp) => {
                self.cold.remember(lin);
                return Gate::Interpret;
            }
            Some(Entry::Counting(c)) => {
                *c = c.saturating_add(runs);
                if *c < self.threshold {
                    self.cold.remember(lin);
                    return Gate::Interpret;
                }
            }
            None if self.kind == EngineKind::Tiered && self.threshold > 1 => {
                self.map.insert(key, Entry::Counting(runs));
                self.cold.remember(lin);
                return Gate::Interpret;
            }
            None => {}
        }
        if self.wanted_in_flight(&key, runs) {
            // Its translation is on its way: skip the next lookups here
            // as for lukewarm code (the installation ends the skipping).
            self.cold.remember(lin);
            return Gate::Interpret;
        }
        self.translate(cpu, bus, key)
    }

    /// Translates the block at `key` (the current CS:EIP).
    fn translate<B: Bus>(&mut self, cpu: &mut Cpu, bus: &mut B, key: Key) -> Gate {
        let start = Instant::now();
        if self.generation_blocks() >= self.generation_limit {
            self.flush();
        }
        if self.cache.is_none() {
            return Gate::Interpret;
        }
        let max_blocks = match self.kind {
            EngineKind::Tiered => self.region_blocks,
            _ => 1,
        };
        let (scanned, hooks) = self.scan::<B>(cpu, bus, key, max_blocks);
        if let (Some(region), EngineKind::Tiered) = (&scanned, self.kind) {
            self.warm_continuations::<B>(cpu, key.mode, region);
        }
        let scanned = match scanned {
            Some(region) if self.backgrounded() => match self.submit(key, region, hooks, false) {
                Ok(()) => {
                    // Interpreted until a later dispatcher entry installs it.
                    self.stats.translate_ns += start.elapsed().as_nanos() as u64;
                    self.pages.add(key.paddr >> 12, key);
                    return Gate::Interpret;
                }
                Err(region) => Some(region),
            },
            s => s,
        };
        let Some(cache) = self.cache.as_mut() else {
            return Gate::Interpret;
        };
        // Decoding may itself have logged writes (none expected); apply first.
        let blocks = scanned.as_ref().map_or(0, |r| r.blocks.len());
        let entry = match scanned {
            Some(s) => match cache.compiler.compile(&s, key.mode, hooks, false) {
                Ok(b) => {
                    self.stats.blocks_translated += 1;
                    self.stats.regions += u64::from(blocks > 1);
                    self.stats.selects += b.selects;
                    Entry::Block(Box::new(b))
                }
                Err(_) => Entry::Interp,
            },
            None => Entry::Interp,
        };
        if matches!(entry, Entry::Interp) {
            self.stats.untranslatable += 1;
        }
        self.stats.code_bytes = self.generation_code_bytes() as u64;
        self.stats.translate_ns += start.elapsed().as_nanos() as u64;
        self.pages.add(key.paddr >> 12, key);
        let gate = match &entry {
            Entry::Block(b) => Gate::Block(b.entry, b.need, key.mode, key.paddr),
            _ => Gate::Interpret,
        };
        self.map.insert(key, entry);
        gate
    }

    /// Tiered: marks the places where `region` runs on without a transfer
    /// out of it (a block cut by its length or a page boundary, the next
    /// instruction in no block of the region) as having reached the
    /// threshold, so that the next dispatcher entry there translates them.
    /// They run whenever the block before them does, but the interpreter
    /// never counted them: it stops only at transfers, and ran straight
    /// through. Without this, long straight-line code (the kernel's
    /// unrolled BLAKE2s, 13 KiB over four pages) was translated one
    /// region per thousand further calls, and two thirds of it ran in the
    /// interpreter. Only continuations the soft TLB already maps are
    /// marked (no page walk here).
    fn warm_continuations<B: Bus>(&mut self, cpu: &mut Cpu, mode: Mode, region: &Region) {
        for eip in region.straight_continuations() {
            let Some(key) = Key::at(cpu, None::<&mut B>, eip, mode) else {
                continue;
            };
            match self.map.get_mut(&key) {
                Some(Entry::Counting(c)) => *c = (*c).max(self.threshold),
                Some(_) => continue,
                None => {
                    self.map.insert(key, Entry::Counting(self.threshold));
                }
            }
            // Looked up at its next entry, not skipped as lukewarm.
            self.cold.take(mode.cs_base.wrapping_add(eip));
        }
    }

    /// Scans the code at `key` (in the CPU's current mode) for translation:
    /// a region of at most `max_blocks` blocks, and the helpers its code is
    /// to call.
    fn scan<B: Bus>(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut B,
        key: Key,
        max_blocks: usize,
    ) -> (Option<Region>, Hooks) {
        // Regions grow only over code that ran: block starts the tiered
        // engine's interpreter counted, or that are translated already.
        let map = &self.map;
        let hot = |paddr: u32, eip: u32| {
            map.contains_key(&Key {
                paddr,
                eip,
                mode: key.mode,
            })
        };
        let scanned = scan_region_at(cpu, bus, &key.mode, key.eip, max_blocks, &hot);
        if self.bases.map_generation != bus.memory_map_generation() {
            // The map changed inside this call of `run` (an OUT to the A20
            // gate or the PAM registers): the CPU flushed its decode cache,
            // and the drain of that flush dropped every block already.
            self.bases = Bases::of(cpu, bus);
        }
        let lookup = self.cache.as_ref().map_or(0, |c| c.lookup_stub);
        let hooks = match self.verifier {
            None => Hooks {
                interp_helper: crate::helpers::interp_one::<B> as *const () as usize,
                lookup,
                note_store: 0,
                miscompile: self.miscompile,
                bases: self.bases,
            },
            Some(_) => Hooks {
                interp_helper: crate::verify::journal::interp_one_journaled::<B> as *const ()
                    as usize,
                lookup,
                note_store: crate::verify::journal::note_store as *const () as usize,
                miscompile: self.miscompile,
                bases: self.bases,
            },
        };
        (scanned, hooks)
    }

    /// Runs one block (and what it chains to); returns its exit status,
    /// the steps it ran and the outcome. In verify mode the interpreter
    /// then checks the run (see `verify.rs`).
    fn run_block<B: Bus>(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut B,
        entry: BlockFn,
        mode: Mode,
        budget: u64,
    ) -> (u32, u64, StepOutcome) {
        let Some(mut v) = self.verifier.take() else {
            return self.enter_block(cpu, bus, entry, mode, budget, std::ptr::null_mut());
        };
        v.before(cpu);
        let chained = self.stats.chained;
        let journal = std::ptr::addr_of_mut!(v.journal) as *mut u8;
        let (status, n, o) = self.enter_block(cpu, bus, entry, mode, budget, journal);
        let run = BlockRun {
            steps: n,
            outcome: o,
            chained: self.stats.chained - chained,
        };
        match v.after(cpu, bus, run) {
            Verdict::Same => self.stats.blocks_verified += 1 + run.chained,
            Verdict::Unverifiable => self.stats.blocks_unverifiable += 1 + run.chained,
            Verdict::Differs(m) => {
                self.mismatch.get_or_insert(m);
            }
        }
        self.verifier = Some(v);
        (status, n, o)
    }

    /// Enters the block at `entry`, translated for `mode`, with `journal`
    /// (verify mode's, or null).
    fn enter_block<B: Bus>(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut B,
        entry: BlockFn,
        mode: Mode,
        budget: u64,
        journal: *mut u8,
    ) -> (u32, u64, StepOutcome) {
        let ram = bus.ram().map_or(std::ptr::null_mut(), |r| r.as_mut_ptr());
        // Every instruction clears EFLAGS.RF (SDM Vol. 3A, 17.3.1.1; the
        // interpreter does it as each step starts), and nothing in a block
        // sets it: clearing it once on entry is what the block's first
        // instruction does. It is put back below if that instruction left
        // through a side exit, so a block that ran nothing changed nothing.
        let rf = cpu.state.eflags & eflags::RF;
        cpu.state.eflags &= !eflags::RF;
        let before = cpu.state.icount;
        let mut ctx = JitCtx {
            state: &mut cpu.state,
            ram,
            budget,
            cpu: std::ptr::null_mut(),
            bus: bus as *mut B as *mut u8,
            outcome: 0,
            unretired: 0,
            link_slot: std::ptr::null_mut(),
            chained: 0,
            helper_runs: 0,
            mode,
            jump_cache: self.jump_cache.as_ptr(),
            lookups: 0,
            lookup_hits: 0,
            budget_stop: NO_BUDGET_STOP,
            journal,
        };
        ctx.cpu = cpu as *mut Cpu;
        ctx.state = std::ptr::addr_of_mut!(cpu.state);
        let Some(cache) = self.cache.as_ref() else {
            return (EXIT_INTERP, 0, StepOutcome::Continue);
        };
        // SAFETY: `entry` is a live block of the current generation (looked
        // up just now; flushes happen only in the dispatcher), and so is
        // every block its slots chain to. The context's pointers come from
        // exclusive borrows held across the call and not used meanwhile;
        // blocks touch guest RAM only inside the bus's RAM slice: through
        // soft-TLB entries that map whole pages inside the RAM slice (see
        // `Cpu::learn_host`), with accesses that stay in their page.
        let status = unsafe { cache.enter(&mut ctx, entry) };
        let retired = cpu.state.icount - before;
        self.pending_link = ctx.link_slot as usize;
        self.stats.block_runs += 1 + ctx.chained;
        self.stats.chained += ctx.chained;
        self.stats.block_insns += retired;
        self.stats.helper_insns += ctx.helper_runs;
        self.stats.lookups += ctx.lookups;
        self.stats.hits += ctx.lookup_hits;
        if ctx.budget_stop != NO_BUDGET_STOP {
            self.budget_stop = Some(Key {
                paddr: (ctx.budget_stop >> 32) as u32,
                eip: ctx.budget_stop as u32,
                mode,
            });
        }
        let outcome = match ctx.outcome {
            1 => StepOutcome::Halted,
            2 => StepOutcome::Shutdown,
            3 => StepOutcome::Paused,
            _ => StepOutcome::Continue,
        };
        let steps = retired + u64::from(ctx.unretired);
        if steps == 0 {
            cpu.state.eflags |= rf;
        }
        (status, steps, outcome)
    }
}

/// Interprets up to the next control transfer (where a block may start)
/// or `limit` steps, with the interpreter's own quiet-run fast path,
/// calling `after` for every step. Returns the outcome, the steps and
/// whether `after` asked to stop. Not inlined: the interpreter's loop
/// would crowd the dispatcher's own hot path out of inlining.
#[inline(never)]
fn interpret<B: Bus>(
    cpu: &mut Cpu,
    bus: &mut B,
    limit: u64,
    checked: bool,
    after: &mut impl FnMut(&mut B, u64) -> bool,
) -> (StepOutcome, u64, bool) {
    let (mut reported, mut stop) = (0, false);
    let report = |b: &mut B, k| {
        reported += k;
        stop = after(b, k);
        stop
    };
    let (o, n) = cpu.run_to_transfer_checked(bus, limit, checked, report);
    if !stop && n > reported {
        stop = after(bus, n - reported);
    }
    (o, n, stop)
}

/// Whether CS:EIP must run in the interpreter whatever is translated
/// there: it would take a trap or check first (interrupt shadow, halt,
/// single-step, a debugger watch, alignment checks armed).
pub(crate) fn interpreter_only(cpu: &Cpu) -> bool {
    let s = &cpu.state;
    s.interrupt_shadow
        || s.halted
        || s.eflags & eflags::TF != 0
        || cpu.debug_watch != 0
        || (s.cpl() == 3 && s.cr0 & cr0::AM != 0 && s.eflags & eflags::AC != 0)
}

/// What to do at a block boundary.
enum Gate {
    /// The interpreter, which begins with the checks `Cpu::step` makes
    /// before an instruction (the CPU is in a state only it handles, or an
    /// interrupt is pending).
    Step,
    /// The interpreter, after those checks found nothing to do (see
    /// `Cpu::run_to_transfer_checked`).
    Interpret,
    /// A translated block: its entry, need (`CompiledBlock::need`), mode
    /// and physical address.
    Block(BlockFn, u64, Mode, u32),
    Delivered(StepOutcome),
}
