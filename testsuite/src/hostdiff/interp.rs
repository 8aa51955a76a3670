//! The interpreter side: the same bytes on `oxide86_cpu::Cpu` in flat
//! 32-bit protected mode at CPL 3, over a bus that maps the helper's data
//! window and code region at the same addresses (ES and FS based at the
//! data window, as the helper loads them).

use oxide86_cpu::state::{cr0, eflags};
use oxide86_cpu::{Bus, Cpu, CpuModel, Exception, Flags, SegReg, SegmentCache, StepOutcome};
use oxide86_machine::pc::{Engine, EngineKind};

use super::compare::{Fault, Outcome};
use super::generate::Case;
use super::layout::{CODE_BASE, CODE_MAX, DATA_BASE, DATA_SIZE};

/// Instructions a sequence may retire (forward branches only, so far more
/// than any sequence needs).
const STEP_LIMIT: u32 = 100_000;

/// The code region and the data window; other addresses read as 0 and
/// mark the run as having strayed (a generator bug).
#[derive(Debug)]
struct WindowBus {
    code: Vec<u8>,
    data: Vec<u8>,
    stray: bool,
}

impl WindowBus {
    fn slot(&mut self, addr: u32) -> Option<&mut u8> {
        if let Some(off) = addr.checked_sub(DATA_BASE).filter(|&o| o < DATA_SIZE) {
            return self.data.get_mut(off as usize);
        }
        if let Some(off) = addr.checked_sub(CODE_BASE).filter(|&o| o < CODE_MAX) {
            // Instruction fetch reads up to 15 bytes ahead: the region is
            // mapped (zero-filled) to CODE_MAX, as in the helper.
            return self.code.get_mut(off as usize);
        }
        self.stray = true;
        None
    }
}

impl Bus for WindowBus {
    fn read_u8(&mut self, addr: u32) -> u8 {
        self.slot(addr).map_or(0, |b| *b)
    }
    fn write_u8(&mut self, addr: u32, value: u8) {
        if let Some(b) = self.slot(addr) {
            *b = value;
        }
    }
}

/// A CPU in flat 32-bit protected mode at CPL 3, like a Linux process.
fn flat_cpu(case: &Case) -> Cpu {
    let mut cpu = Cpu::new(CpuModel::P6);
    let s = &mut cpu.state;
    s.cr0 |= cr0::PE;
    let data = SegmentCache::flat(0x2B, false, 3);
    s.seg = [data; 6];
    s.seg[SegReg::Cs as usize] = SegmentCache::flat(0x23, true, 3);
    let window = SegmentCache {
        base: DATA_BASE,
        selector: 0x63,
        ..data
    };
    s.seg[SegReg::Es as usize] = window;
    s.seg[SegReg::Fs as usize] = window;
    s.idtr.limit = 0;
    s.gpr = case.regs;
    s.eflags = case.eflags;
    s.eip = CODE_BASE;
    cpu
}

/// Runs `case` on `engine` to the end of its code or its first fault.
pub fn run(case: &Case, engine: &mut Engine) -> Outcome {
    let mut cpu = flat_cpu(case);
    let mut code = case.code.clone();
    code.push(0xF4); // HLT where the helper jumps back
    code.resize(CODE_MAX as usize, 0);
    let end = CODE_BASE + case.code.len() as u32;
    let mut bus = WindowBus {
        code,
        data: case.data.clone(),
        stray: false,
    };
    let fault = if engine.kind() == EngineKind::Interp {
        run_interp(&mut cpu, &mut bus, end)
    } else {
        run_engine(&mut cpu, &mut bus, engine, end)
    };
    cpu.state.commit_flags();
    Outcome {
        fault,
        regs: cpu.state.gpr,
        eip: cpu.state.eip,
        eflags: cpu.state.eflags,
        data: bus.data,
        stray: bus.stray,
    }
}

/// Steps the interpreter to `end` or the first fault; returns the fault.
fn run_interp(cpu: &mut Cpu, bus: &mut WindowBus, end: u32) -> Option<Fault> {
    for _ in 0..STEP_LIMIT {
        if cpu.state.eip == end {
            break;
        }
        cpu.last_exception = None;
        let outcome = cpu.step(bus);
        if let Some(e) = cpu.last_exception {
            return Some(Fault {
                vector: e.vector(),
                signal: 0,
            });
        }
        if outcome != StepOutcome::Continue {
            break;
        }
    }
    None
}

/// Runs on a translating engine: the HLT at `end` raises #GP at CPL 3
/// (delivery then fails, as every fault does here), which marks the end
/// of the code; undoes the only trace that fault leaves (EFLAGS.RF) so the
/// state is the interpreter's at `end`. Returns the sequence's own fault.
fn run_engine(cpu: &mut Cpu, bus: &mut WindowBus, engine: &mut Engine, end: u32) -> Option<Fault> {
    engine.invalidate_all();
    cpu.last_exception = None;
    let mut steps = 0;
    while steps < u64::from(STEP_LIMIT) {
        let (outcome, n) = engine.run(cpu, bus, u64::from(STEP_LIMIT) - steps, |_, _| false);
        steps += n;
        if outcome != StepOutcome::Continue
            || cpu.last_exception.is_some()
            || engine.mismatch().is_some()
        {
            break;
        }
    }
    match cpu.last_exception {
        Some(Exception::GeneralProtection(0)) if cpu.state.eip == end => {
            cpu.state.eflags &= !eflags::RF;
            None
        }
        Some(e) => Some(Fault {
            vector: e.vector(),
            signal: 0,
        }),
        None => None,
    }
}
