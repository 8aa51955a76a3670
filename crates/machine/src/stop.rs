//! Stopping and resuming the run loop for debuggers, tracers and embedders:
//! breakpoints on linear addresses, host watchpoints (recorded by the CPU's
//! memory path, see [`oxide86_cpu::host_watch`]), single steps, instruction
//! counts, breaking on exceptions and interrupts, an asynchronous interrupt
//! flag (Ctrl-C, a monitor command arriving) and a host-time deadline.
//!
//! Every check happens between two guest instructions, so it works the same
//! under every execution engine as long as the engine steps one
//! instruction at a time while [`DebugControl::per_step`] is true.
//! Breakpoints never touch guest memory and are invisible to the guest's
//! own DR0-DR7.
//!
//! A stop mid-slice ends the slice early, so a session that stops (not one
//! that merely has breakpoints armed) may see device updates at different
//! instruction boundaries than an undisturbed run.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use oxide86_cpu::host_watch::WatchHit;
use oxide86_cpu::{Cpu, SegReg, StepOutcome};

use crate::pc::{Pc, PcExit};
use crate::pc_board::PcBoard;

/// Why [`Pc::resume`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The run is over (power-off, debug exit, reset with no-reboot, ...).
    Exit(PcExit),
    /// CS.base + EIP reached a breakpoint; the instruction there has not run.
    Breakpoint {
        /// The breakpoint's linear address.
        linear: u32,
    },
    /// The last instruction touched a watched range.
    Watchpoint(WatchHit),
    /// The requested number of steps ran.
    Stepped,
    /// The instruction count asked for by [`DebugControl::stop_at_instruction`] was reached.
    InstructionCount,
    /// Someone raised the interrupt flag ([`DebugControl::interrupt_handle`]).
    Interrupted,
    /// The host-time deadline passed.
    Deadline,
    /// The last step raised an exception that [`DebugControl::break_on_exceptions`] selects
    /// (it has been delivered: the CPU is at the handler).
    Exception {
        /// The vector (0-31).
        vector: u8,
    },
    /// The last step delivered an external interrupt (or NMI, vector 2)
    /// and [`DebugControl::break_on_interrupts`] is set.
    Interrupt {
        /// The vector.
        vector: u8,
    },
}

/// Something that watches every instruction (a tracer). Before each step
/// `cpu.last_exception` and `board.events.last_ack` are cleared, so after
/// it they tell what the step raised or acknowledged.
pub trait StepObserver: Send {
    /// Called before the CPU steps.
    fn before(&mut self, cpu: &Cpu, board: &mut PcBoard, instructions: u64);
    /// Called after the step with its outcome.
    fn after(&mut self, cpu: &Cpu, board: &mut PcBoard, outcome: StepOutcome, instructions: u64);
}

/// The debugger's side of the run loop, owned by [`Pc::debug`].
#[derive(Default)]
pub struct DebugControl {
    /// Breakpoints: linear addresses of instructions (CS.base + EIP).
    pub breakpoints: BTreeSet<u32>,
    /// Exception vectors (bit n = vector n) to stop after.
    pub break_on_exceptions: u32,
    /// Stop after every external interrupt or NMI delivery.
    pub break_on_interrupts: bool,
    /// Watches every instruction (for `--trace`).
    pub observer: Option<Box<dyn StepObserver>>,
    steps: Option<u64>,
    stop_at: Option<u64>,
    deadline: Option<Instant>,
    interrupt: Arc<AtomicBool>,
    /// The linear address the last resume started at: its breakpoint is
    /// stepped over once (the user continues from it).
    resume_from: Option<u32>,
}

impl std::fmt::Debug for DebugControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugControl")
            .field("breakpoints", &self.breakpoints)
            .field("break_on_exceptions", &self.break_on_exceptions)
            .field("break_on_interrupts", &self.break_on_interrupts)
            .field("observer", &self.observer.is_some())
            .field("steps", &self.steps)
            .field("stop_at", &self.stop_at)
            .finish()
    }
}

impl DebugControl {
    /// Whether the run loop must check between every two instructions.
    pub fn per_step(&self, cpu: &Cpu) -> bool {
        !self.breakpoints.is_empty()
            || self.break_on_exceptions != 0
            || self.break_on_interrupts
            || self.observer.is_some()
            || self.steps.is_some()
            || self.stop_at.is_some()
            || cpu.host_watch.armed()
    }

    /// Stop after `n` more steps (an instruction retired, or an exception
    /// or interrupt delivered); `None` clears it.
    pub fn step_count(&mut self, n: Option<u64>) {
        self.steps = n;
    }

    /// Stop once the machine's total instruction count reaches `n`.
    pub fn stop_at_instruction(&mut self, n: Option<u64>) {
        self.stop_at = n;
    }

    /// Stop once the host clock passes `t` (checked every slice).
    pub fn deadline(&mut self, t: Option<Instant>) {
        self.deadline = t;
    }

    /// A flag another thread sets to stop the run at the next slice
    /// boundary (within about a thousand instructions).
    pub fn interrupt_handle(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    /// The stop due at a slice boundary, if any.
    pub(crate) fn poll_slice(&mut self) -> Option<Stop> {
        if self.interrupt.swap(false, Ordering::Relaxed) {
            return Some(Stop::Interrupted);
        }
        match self.deadline {
            Some(t) if Instant::now() >= t => {
                self.deadline = None;
                Some(Stop::Deadline)
            }
            _ => None,
        }
    }
}

impl Pc {
    /// Whether a debugger needs the engine to step one instruction at a
    /// time (breakpoints, watchpoints, steps, tracing are armed).
    pub fn debug_active(&self) -> bool {
        self.debug.per_step(&self.cpu)
    }

    /// Runs until something in [`Pc::debug`] stops it or the run ends.
    /// A breakpoint at the current instruction is stepped over.
    pub fn resume(&mut self) -> Stop {
        let cs = self.cpu.state.segment(SegReg::Cs).base;
        self.debug.resume_from = Some(cs.wrapping_add(self.cpu.state.eip));
        let start = Instant::now();
        let stop = self.run_inner();
        self.stats.seconds += start.elapsed().as_secs_f64();
        self.stats.instructions = self.total_instructions();
        self.debug.resume_from = None;
        self.debug.steps = None;
        stop
    }

    /// Runs exactly one step (one instruction retired, or one exception or
    /// interrupt delivered; a halted CPU waits for its interrupt), unless
    /// the run ends or a watchpoint fires first.
    pub fn step(&mut self) -> Stop {
        self.debug.step_count(Some(1));
        self.resume()
    }

    /// One CPU step with every per-instruction check; returns a stop that
    /// is due (the step may not have happened, for a breakpoint).
    pub(crate) fn step_checked(&mut self) -> (StepOutcome, Option<Stop>) {
        let linear = self
            .cpu
            .state
            .segment(SegReg::Cs)
            .base
            .wrapping_add(self.cpu.state.eip);
        let resuming = self.debug.resume_from.take() == Some(linear);
        if !resuming && !self.cpu.state.halted && self.debug.breakpoints.contains(&linear) {
            return (StepOutcome::Continue, Some(Stop::Breakpoint { linear }));
        }
        let watch_delivery = self.debug.break_on_exceptions != 0 || self.debug.break_on_interrupts;
        if watch_delivery || self.debug.observer.is_some() {
            // Cleared so that what this step raises or acknowledges shows.
            self.cpu.last_exception = None;
            self.board.events.last_ack = None;
        }
        let before = self.total_instructions();
        if let Some(o) = self.debug.observer.as_mut() {
            o.before(&self.cpu, &mut self.board, before);
        }
        let nmi_before = self.cpu.state.nmi_blocked;
        let outcome = self.cpu.step(&mut self.board);
        let after = self.total_instructions();
        if let Some(o) = self.debug.observer.as_mut() {
            o.after(&self.cpu, &mut self.board, outcome, after);
        }
        // A PAUSE is a step like any other here (the run loop lets its
        // time pass afterwards).
        let retired = matches!(outcome, StepOutcome::Continue | StepOutcome::Paused);
        let mut stop = None;
        if self.cpu.host_watch.armed() {
            if let Some(hit) = self.cpu.host_watch.take_hits().first() {
                stop = Some(Stop::Watchpoint(*hit));
            }
        }
        if watch_delivery && stop.is_none() && retired {
            if let Some(e) = self.cpu.last_exception {
                let v = e.vector();
                if v < 32 && self.debug.break_on_exceptions & (1 << v) != 0 {
                    stop = Some(Stop::Exception { vector: v });
                }
            } else if self.debug.break_on_interrupts && after == before {
                if let Some(vector) = self.board.events.last_ack {
                    stop = Some(Stop::Interrupt { vector });
                } else if !nmi_before && self.cpu.state.nmi_blocked {
                    stop = Some(Stop::Interrupt { vector: 2 });
                }
            }
        }
        if retired {
            if let Some(n) = self.debug.steps.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.debug.steps = None;
                    stop = stop.or(Some(Stop::Stepped));
                }
            }
        }
        if let Some(n) = self.debug.stop_at {
            if after >= n {
                self.debug.stop_at = None;
                stop = stop.or(Some(Stop::InstructionCount));
            }
        }
        (outcome, stop)
    }
}
