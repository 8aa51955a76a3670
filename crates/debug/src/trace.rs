//! Tracing: `--trace FILE` writes one line per executed instruction
//! (instruction count, CS:EIP, linear address, bytes, iced-x86 Intel
//! disassembly, then the registers it changed), optionally only inside a
//! linear address range and an instruction-count window; `--trace-events
//! FILE` writes interrupts, exceptions, mode switches and I/O port
//! accesses. Both depend on guest state only, so with the virtual clock
//! two runs give byte-identical files.
//!
//! A line of `--trace`:
//! ```text
//!        42 0008:00100013 00100013 b8 2a 00 00 00       mov eax,2Ah  EAX=0000002a
//! ```
//! A step that retired nothing (an exception or interrupt delivery) is
//! marked `->` with what it delivered.

use std::fmt::Write as _;
use std::io::Write;
use std::ops::Range;

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use oxide86_cpu::{Cpu, CpuState, Flags, StepOutcome};
use oxide86_machine::board_events::BoardEvent;
use oxide86_machine::inspect;
use oxide86_machine::pc_board::PcBoard;
use oxide86_machine::stop::StepObserver;

use crate::regs::{flag_names, mode_name};

/// Which instructions `--trace` logs.
#[derive(Clone, Debug, Default)]
pub struct TraceFilter {
    /// Only instructions whose linear address is in this range.
    pub addresses: Option<Range<u32>>,
    /// Only instructions whose number (machine instruction count before
    /// the step, from 0) is in this window.
    pub window: Option<Range<u64>>,
}

/// The registers a trace line compares.
#[derive(Clone, PartialEq, Eq)]
struct Snapshot {
    gpr: [u32; 8],
    eflags: u32,
    seg: [u16; 6],
    cr: [u32; 4],
}

impl Snapshot {
    fn of(s: &CpuState) -> Self {
        Self {
            gpr: s.gpr,
            eflags: s.flags(),
            seg: std::array::from_fn(|i| s.seg[i].selector),
            cr: [s.cr0, s.cr2, s.cr3, s.cr4],
        }
    }

    /// ` NAME=value` for each register that differs from `before`.
    fn changes(&self, before: &Snapshot, out: &mut String) {
        const GPR: [&str; 8] = ["EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI"];
        const SEG: [&str; 6] = ["ES", "CS", "SS", "DS", "FS", "GS"];
        const CR: [&str; 4] = ["CR0", "CR2", "CR3", "CR4"];
        for ((name, now), was) in GPR.iter().zip(self.gpr).zip(before.gpr) {
            if now != was {
                let _ = write!(out, " {name}={now:08x}");
            }
        }
        if self.eflags != before.eflags {
            let _ = write!(out, " EFL={:08x}", self.eflags);
        }
        for ((name, now), was) in SEG.iter().zip(self.seg).zip(before.seg) {
            if now != was {
                let _ = write!(out, " {name}={now:04x}");
            }
        }
        for ((name, now), was) in CR.iter().zip(self.cr).zip(before.cr) {
            if now != was {
                let _ = write!(out, " {name}={now:08x}");
            }
        }
    }
}

/// The instruction at CS:EIP as the CPU is about to run it.
struct Pending {
    count: u64,
    cs: u16,
    eip: u32,
    linear: u32,
    bytes: Vec<u8>,
    text: String,
    regs: Snapshot,
}

/// Reads up to 15 instruction bytes at `linear` without side effects.
fn fetch(cpu: &Cpu, board: &PcBoard, linear: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(15);
    for i in 0..15u32 {
        match inspect::translate(cpu, &board.memory, linear.wrapping_add(i)) {
            Some(p) => bytes.push(board.memory.read_u8(p)),
            None => break,
        }
    }
    bytes
}

/// The `--trace` writer.
pub struct InstructionTrace {
    out: Box<dyn Write + Send>,
    filter: TraceFilter,
    pending: Option<Pending>,
}

impl std::fmt::Debug for InstructionTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstructionTrace")
            .field("filter", &self.filter)
            .finish()
    }
}

impl InstructionTrace {
    /// A trace writing to `out`.
    pub fn new(out: Box<dyn Write + Send>, filter: TraceFilter) -> Self {
        Self {
            out,
            filter,
            pending: None,
        }
    }

    fn before(&mut self, cpu: &Cpu, board: &mut PcBoard, count: u64) {
        self.pending = None;
        if self
            .filter
            .window
            .as_ref()
            .is_some_and(|w| !w.contains(&count))
        {
            return;
        }
        let s = &cpu.state;
        let cs = s.segment(oxide86_cpu::SegReg::Cs);
        let linear = cs.base.wrapping_add(s.eip);
        if self
            .filter
            .addresses
            .as_ref()
            .is_some_and(|r| !r.contains(&linear))
        {
            return;
        }
        let fetched = fetch(cpu, board, linear);
        let bitness = if s.code32() { 32 } else { 16 };
        let mut d = Decoder::with_ip(bitness, &fetched, u64::from(s.eip), DecoderOptions::NONE);
        let insn = d.decode();
        let mut text = String::new();
        let len = if insn.is_invalid() {
            text.push_str("(bad)");
            fetched.len().min(1)
        } else {
            // The formatter is not Send, so it cannot live in the observer.
            IntelFormatter::new().format(&insn, &mut text);
            insn.len()
        };
        self.pending = Some(Pending {
            count,
            cs: cs.selector,
            eip: s.eip,
            linear,
            bytes: fetched[..len].to_vec(),
            text,
            regs: Snapshot::of(s),
        });
    }

    fn after(&mut self, cpu: &Cpu, board: &mut PcBoard, outcome: StepOutcome, count: u64) {
        let Some(p) = self.pending.take() else {
            return;
        };
        if outcome == StepOutcome::Halted {
            return; // HLT waiting: nothing ran.
        }
        let hex: String = p.bytes.iter().map(|b| format!("{b:02x} ")).collect();
        let mut line = format!(
            "{:>10} {:04x}:{:08x} {:08x} {hex:<30} ",
            p.count, p.cs, p.eip, p.linear
        );
        if count == p.count {
            line.push_str("->");
            match (cpu.last_exception, board.events.last_ack) {
                (Some(e), _) => {
                    let _ = write!(line, " exception {e} ({})", p.text);
                }
                (None, Some(v)) => {
                    let _ = write!(line, " interrupt {v:#04x}");
                }
                (None, None) => line.push_str(" nmi or shutdown"),
            }
        } else {
            line.push_str(&p.text);
            line.push(' ');
        }
        Snapshot::of(&cpu.state).changes(&p.regs, &mut line);
        line.push('\n');
        let _ = self.out.write_all(line.as_bytes());
    }
}

/// The `--trace-events` writer.
pub struct EventTrace {
    out: Box<dyn Write + Send>,
    mode: &'static str,
    first: bool,
    software_int: Option<u8>,
}

impl std::fmt::Debug for EventTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventTrace")
            .field("mode", &self.mode)
            .finish()
    }
}

impl EventTrace {
    /// An event log writing to `out` (the board's event recorder is
    /// switched on when it is attached).
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            mode: "",
            first: true,
            software_int: None,
        }
    }

    fn before(&mut self, cpu: &Cpu, board: &mut PcBoard, count: u64) {
        board.events.enabled = true;
        let s = &cpu.state;
        if self.first {
            self.first = false;
            self.mode = mode_name(s);
            let _ = writeln!(self.out, "{count:>10} start mode {}", self.mode);
        }
        // INT n / INT3 / INTO (without prefixes) retire like instructions:
        // note them from their opcode.
        let linear = s.segment(oxide86_cpu::SegReg::Cs).base.wrapping_add(s.eip);
        let b = fetch(cpu, board, linear);
        self.software_int = match b.as_slice() {
            [0xCD, n, ..] => Some(*n),
            [0xCC, ..] => Some(3),
            [0xCE, ..] => Some(4),
            _ => None,
        };
    }

    fn after(
        &mut self,
        cpu: &Cpu,
        board: &mut PcBoard,
        outcome: StepOutcome,
        before: u64,
        count: u64,
    ) {
        let mut text = String::new();
        for e in board.events.take() {
            let _ = match e {
                BoardEvent::PortRead { port, size, value } => {
                    writeln!(
                        text,
                        "{before:>10} in  port {port:#06x} size {size} -> {value:#x}"
                    )
                }
                BoardEvent::PortWrite { port, size, value } => {
                    writeln!(
                        text,
                        "{before:>10} out port {port:#06x} size {size} <- {value:#x}"
                    )
                }
                BoardEvent::InterruptAck { vector } => {
                    writeln!(text, "{before:>10} interrupt {vector:#04x} (external)")
                }
            };
        }
        if let Some(e) = cpu.last_exception {
            let s = &cpu.state;
            let _ = writeln!(
                text,
                "{before:>10} exception {e} -> {:04x}:{:08x}",
                s.segment(oxide86_cpu::SegReg::Cs).selector,
                s.eip
            );
        } else if let (Some(n), true) = (self.software_int, count > before) {
            if outcome == StepOutcome::Continue {
                let _ = writeln!(text, "{before:>10} software interrupt {n:#04x}");
            }
        }
        let mode = mode_name(&cpu.state);
        if mode != self.mode {
            let _ = writeln!(
                text,
                "{before:>10} mode {} -> {mode} {}",
                self.mode,
                flag_names(cpu.state.flags())
            );
            self.mode = mode;
        }
        if outcome == StepOutcome::Shutdown {
            let _ = writeln!(text, "{before:>10} shutdown");
        }
        let _ = self.out.write_all(text.as_bytes());
    }
}

/// The tracers attached to a machine, as one [`StepObserver`].
#[derive(Debug, Default)]
pub struct Tracers {
    /// `--trace`.
    pub instructions: Option<InstructionTrace>,
    /// `--trace-events`.
    pub events: Option<EventTrace>,
    before: u64,
}

impl StepObserver for Tracers {
    fn before(&mut self, cpu: &Cpu, board: &mut PcBoard, instructions: u64) {
        self.before = instructions;
        if let Some(t) = self.instructions.as_mut() {
            t.before(cpu, board, instructions);
        }
        if let Some(t) = self.events.as_mut() {
            t.before(cpu, board, instructions);
        }
    }

    fn after(&mut self, cpu: &Cpu, board: &mut PcBoard, outcome: StepOutcome, instructions: u64) {
        if let Some(t) = self.instructions.as_mut() {
            t.after(cpu, board, outcome, instructions);
        }
        if let Some(t) = self.events.as_mut() {
            t.after(cpu, board, outcome, self.before, instructions);
        }
    }
}

impl Drop for Tracers {
    fn drop(&mut self) {
        if let Some(t) = self.instructions.as_mut() {
            let _ = t.out.flush();
        }
        if let Some(t) = self.events.as_mut() {
            let _ = t.out.flush();
        }
    }
}

/// Parses `START..END` or `START-END` (hex addresses, END exclusive).
pub fn parse_address_range(s: &str) -> Option<Range<u32>> {
    let (a, b) = s.split_once("..").or_else(|| s.split_once('-'))?;
    let (a, b) = (crate::addr::parse_number(a)?, crate::addr::parse_number(b)?);
    (a < b).then_some(a..b)
}

/// Parses `FROM..TO` (decimal instruction counts, TO exclusive; either may be empty).
pub fn parse_window(s: &str) -> Option<Range<u64>> {
    let (a, b) = s.split_once("..")?;
    let a = if a.is_empty() { 0 } else { a.parse().ok()? };
    let b = if b.is_empty() {
        u64::MAX
    } else {
        b.parse().ok()?
    };
    (a < b).then_some(a..b)
}
