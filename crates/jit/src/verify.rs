//! Verify mode (`--jit-verify`): every translated block run is checked
//! against the interpreter, the reference semantics.
//!
//! How one block run (a dispatcher entry, with every block it chains to)
//! is checked:
//!
//! 1. Before it, [`Verifier::before`] copies the CPU into a twin `Cpu`
//!    ([`Cpu::mirror`]: the architectural state, the soft TLB with any
//!    stale entries, the PAE PDPTEs, ...; everything but the decode cache).
//! 2. The block runs on the real machine exactly as without verification,
//!    except that it journals what it overwrites ([`journal`]): blocks
//!    compiled in verify mode call [`journal::note_store`] before each
//!    inline store, and their interpreter helper runs on a
//!    [`journal::JournalBus`]. So the real machine ends up where it would
//!    have without verification.
//! 3. If the run touched anything but plain RAM (MMIO or ROM through a
//!    helper's slow path; blocks never do port I/O), it is counted as
//!    unverifiable and nothing is run twice. (So is a run whose twin
//!    needed a device: it is refused, the twin's run is incomplete.)
//! 4. Otherwise the twin borrows the real decode cache (so it decodes
//!    exactly what the block was translated from) and `Cpu::step`s as many
//!    steps as the block run retired, on a [`shadow::ShadowBus`]: RAM as it
//!    was before the block (the journal undone), its own writes kept
//!    aside, no device reachable.
//! 5. The two states are compared field by field ([`report::FIELDS`]:
//!    EFLAGS materialized, not the lazy record), then every RAM byte
//!    either side wrote, then the step outcome. On a difference the
//!    interpreter replays the steps one at a time from the state the run
//!    started in, recording each instruction and noting which differing
//!    field each step changes, so the report names the instruction that
//!    last wrote each differing field.
//!
//! Lines of decoded code the twin re-decoded from pre-block memory, where
//! either side wrote, are invalidated afterwards, so the borrowed decode
//! cache never keeps a decoding of bytes that are no longer there.

pub mod journal;
pub mod report;
pub mod shadow;

use oxide86_cpu::{Bus, Cpu, CpuModel, CpuState, SegReg, StepOutcome};

use journal::{Journal, Undo};
use report::{disassemble, Field, FieldDiff, Mismatch, TraceStep, FIELDS, MEMORY_DIFFS};
use shadow::{ShadowBus, ShadowWrite};

/// What the dispatcher tells the verifier about a block run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockRun {
    /// Steps it ran (retired instructions and a delivered fault).
    pub steps: u64,
    /// How its last step ended.
    pub outcome: StepOutcome,
    /// Chained block entries after the first.
    pub chained: u64,
}

/// The verifier's judgement of one block run.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The interpreter leaves the same state and memory.
    Same,
    /// The run touched a device: not run again, not compared.
    Unverifiable,
    /// The interpreter disagrees.
    Differs(Box<Mismatch>),
}

/// The verifier's twin and scratch space (one per engine).
pub(crate) struct Verifier {
    /// The architectural state the block run started from.
    pre: CpuState,
    /// The CPU the interpreter runs on: a copy of the real one as the
    /// block run found it.
    twin: Cpu,
    /// What the block run overwrote.
    pub journal: Journal,
    /// The journal folded: the value before the run of each byte it wrote.
    undo: Undo,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier (its twin allocates its own, unused, decode cache).
    pub fn new() -> Self {
        Self {
            pre: CpuState::new(CpuModel::P6),
            twin: Cpu::new(CpuModel::P6),
            journal: Journal::default(),
            undo: Undo::default(),
        }
    }

    /// Remembers the CPU a block run starts from and empties the journal.
    pub fn before(&mut self, cpu: &Cpu) {
        self.twin.mirror(cpu);
        self.pre.clone_from(&cpu.state);
        self.journal.clear();
    }

    /// Checks the block run that just left `cpu` and `bus` where they are.
    pub fn after<B: Bus>(&mut self, cpu: &mut Cpu, bus: &mut B, run: BlockRun) -> Verdict {
        if self.journal.device.is_some() {
            return Verdict::Unverifiable;
        }
        self.undo.rebuild(&self.journal);
        // The twin borrows the real decode cache (its counters restored after).
        std::mem::swap(&mut cpu.icache, &mut self.twin.icache);
        let decode_stats = self.twin.icache.stats;
        let verdict = self.compare(cpu, bus, run);
        self.twin.icache.stats = decode_stats;
        std::mem::swap(&mut cpu.icache, &mut self.twin.icache);
        verdict
    }

    /// Runs the twin and compares (the twin holds the real decode cache).
    fn compare<B: Bus>(&mut self, cpu: &mut Cpu, bus: &mut B, run: BlockRun) -> Verdict {
        let (outcome, writes, device) = {
            let mut shadow = ShadowBus::new(bus, &self.undo);
            let mut outcome = StepOutcome::Continue;
            for step in 0..run.steps {
                shadow.step = step as usize;
                outcome = self.twin.step(&mut shadow);
            }
            (outcome, std::mem::take(&mut shadow.writes), shadow.device)
        };
        self.forget_rewritten_code(&writes);
        if device.is_some() {
            // The twin needed something that is not plain RAM where the
            // block did not (say, to decode an instruction again from ROM):
            // its run is incomplete, so nothing can be compared.
            return Verdict::Unverifiable;
        }
        let mut diffs = state_diffs(&cpu.state, &self.twin.state);
        diffs.extend(self.memory_diffs(bus, &writes));
        if outcome != run.outcome {
            diffs.push(FieldDiff {
                name: "step outcome".into(),
                jit: format!("{:?}", run.outcome),
                interp: format!("{outcome:?}"),
                step: None,
            });
        }
        if diffs.is_empty() {
            return Verdict::Same;
        }
        Verdict::Differs(Box::new(self.explain(bus, run, diffs)))
    }

    /// Drops decoded instructions the twin may have decoded from bytes that
    /// were overwritten (by the block's helpers or by the twin itself).
    fn forget_rewritten_code(&mut self, writes: &std::collections::BTreeMap<usize, ShadowWrite>) {
        let icache = &mut self.twin.icache;
        for &(paddr, size) in &self.journal.helper_writes {
            if icache.is_code(paddr, size) {
                icache.invalidate(paddr, size);
            }
        }
        for w in writes.values() {
            if icache.is_code(w.paddr, 1) {
                icache.invalidate(w.paddr, 1);
            }
        }
    }

    /// The RAM bytes the block and the twin left different, as runs of
    /// consecutive bytes written by the same interpreter step.
    fn memory_diffs<B: Bus>(
        &self,
        bus: &mut B,
        writes: &std::collections::BTreeMap<usize, ShadowWrite>,
    ) -> Vec<FieldDiff> {
        if self.undo.is_empty() && writes.is_empty() {
            return Vec::new();
        }
        let Some(ram) = bus.ram() else {
            return Vec::new();
        };
        let mut offsets: Vec<usize> = self.undo.offsets().collect();
        offsets.extend(writes.keys().copied());
        offsets.sort_unstable();
        offsets.dedup();
        let mut runs: Vec<ByteRun> = Vec::new();
        for off in offsets {
            let jit = ram.get(off).copied().unwrap_or(0xFF);
            let w = writes.get(&off);
            let interp = w
                .map(|w| w.value)
                .or_else(|| self.undo.get(off))
                .unwrap_or(jit);
            if jit == interp {
                continue;
            }
            let step = w.map(|w| w.step);
            match runs.last_mut() {
                Some(r) if r.offset + r.jit.len() == off && r.step == step && r.jit.len() < 16 => {
                    r.jit.push(jit);
                    r.interp.push(interp);
                }
                _ => runs.push(ByteRun {
                    offset: off,
                    paddr: w.map(|w| w.paddr),
                    step,
                    jit: vec![jit],
                    interp: vec![interp],
                }),
            }
        }
        let mut diffs: Vec<FieldDiff> = runs.iter().take(MEMORY_DIFFS).map(ByteRun::diff).collect();
        if runs.len() > MEMORY_DIFFS {
            diffs.push(FieldDiff {
                name: "memory".into(),
                jit: format!("{} more differing runs of bytes", runs.len() - MEMORY_DIFFS),
                interp: "-".into(),
                step: None,
            });
        }
        diffs
    }

    /// Replays the run one step at a time from the state it started in,
    /// recording each instruction, and attributes each differing register
    /// to the step that last changed it. (The replay starts with the soft
    /// TLB the first run left: it explains the differences found, and a
    /// TLB fill replaces at most an entry the same walk would fill again.)
    fn explain<B: Bus>(
        &mut self,
        bus: &mut B,
        run: BlockRun,
        mut diffs: Vec<FieldDiff>,
    ) -> Mismatch {
        self.twin.state.clone_from(&self.pre);
        // The compared fields that differ; each step that changes one
        // becomes its culprit (the last such step wins).
        let fields: Vec<Option<&Field>> = diffs
            .iter()
            .map(|d| FIELDS.iter().find(|f| f.name == d.name))
            .collect();
        let mut before = self.twin.state.clone();
        let mut trace = Vec::new();
        {
            let mut shadow = ShadowBus::new(bus, &self.undo);
            for step in 0..run.steps {
                shadow.step = step as usize;
                let eip = self.twin.state.eip;
                let text = match self.twin.fetch_for_translation(&mut shadow, eip) {
                    Ok(Some(f)) => disassemble(&f.decoded, eip),
                    Ok(None) => "(crosses a page: not shown)".into(),
                    Err(e) => format!("(fetch faults: {e:?})"),
                };
                trace.push(TraceStep { eip, text });
                self.twin.step(&mut shadow);
                for (d, f) in diffs.iter_mut().zip(&fields) {
                    if f.is_some_and(|f| !(f.same)(&before, &self.twin.state)) {
                        d.step = Some(step as usize);
                    }
                }
                before.clone_from(&self.twin.state);
            }
            let writes = std::mem::take(&mut shadow.writes);
            drop(shadow);
            self.forget_rewritten_code(&writes);
        }
        let s = &self.pre;
        let cs = s.seg[SegReg::Cs as usize];
        Mismatch {
            cs: cs.selector,
            start_eip: s.eip,
            start_linear: cs.base.wrapping_add(s.eip),
            steps: run.steps,
            chained: run.chained,
            diffs,
            trace,
        }
    }
}

/// The fields in which two states differ (`a` the block's, `b` the interpreter's).
fn state_diffs(jit: &CpuState, interp: &CpuState) -> Vec<FieldDiff> {
    FIELDS
        .iter()
        .filter(|f| !(f.same)(jit, interp))
        .map(|f| FieldDiff {
            name: f.name.into(),
            jit: (f.show)(jit),
            interp: (f.show)(interp),
            step: None,
        })
        .collect()
}

/// Consecutive differing RAM bytes that one interpreter step wrote (or
/// that the interpreter did not write).
struct ByteRun {
    /// RAM offset of the first.
    offset: usize,
    /// Its physical address, when the interpreter wrote it.
    paddr: Option<u32>,
    /// The step that wrote them.
    step: Option<usize>,
    /// The block's bytes.
    jit: Vec<u8>,
    /// The interpreter's bytes.
    interp: Vec<u8>,
}

impl ByteRun {
    fn diff(&self) -> FieldDiff {
        let hex = |b: &[u8]| {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        FieldDiff {
            name: match self.paddr {
                Some(p) => format!("memory {p:#010x}"),
                None => format!("RAM offset {:#x}", self.offset),
            },
            jit: hex(&self.jit),
            interp: hex(&self.interp),
            step: self.step,
        }
    }
}
