//! The GDB remote stub: a [`gdbstub`] target over a [`Pc`], with GDB's
//! i386 register layout (`gdbstub_arch::x86::X86_SSE`).
//!
//! - Registers: EAX-EDI, EIP, EFLAGS (lazy flags evaluated), the six
//!   segment selectors, ST0-ST7 and the x87 control registers, MXCSR.
//!   Writing a selector reloads its cache as the CPU would (a paragraph in
//!   real and virtual-8086 mode, the GDT/LDT descriptor in protected mode).
//! - Memory: linear addresses through the current page tables, read
//!   without side effects (no accessed/dirty bits, no #PF).
//! - Software and hardware breakpoints are the same thing: a linear
//!   address checked before each instruction; guest memory is never
//!   patched. Watchpoints (write, read, access) are host watchpoints on
//!   the CPU's memory path, reported after the accessing instruction.
//! - `stepi` runs exactly one instruction (or one exception/interrupt
//!   delivery); Ctrl-C stops within about 10 ms of host time.
//! - `monitor CMD` runs [`crate::monitor`] commands.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind as GdbWatchKind,
};
use gdbstub::target::ext::monitor_cmd::{outputln, ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::reg::X86CoreRegs;
use gdbstub_arch::x86::X86_SSE;
use oxide86_cpu::host_watch::{HostWatchpoint, WatchKind};
use oxide86_cpu::{Flags, SegReg};
use oxide86_machine::pc::{Pc, PcExit};
use oxide86_machine::stop::Stop;

use crate::monitor::{self, Action};

/// How long the machine runs before the stub looks for a Ctrl-C from GDB.
const POLL: Duration = Duration::from_millis(10);

/// What the next resume does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Continue,
    Step,
}

/// A machine being debugged over GDB.
#[derive(Debug)]
pub struct GdbTarget {
    /// The machine.
    pub pc: Pc,
    mode: Mode,
    sw: BTreeSet<u32>,
    hw: BTreeSet<u32>,
    /// Set by `monitor quit`: the emulator should end after the session.
    pub quit: bool,
    /// How the run ended, if it did.
    pub exit: Option<PcExit>,
}

/// Why [`serve`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// GDB detached: the machine runs on.
    Detached,
    /// GDB killed the target (or `monitor quit`): the emulator ends.
    Killed,
    /// The guest's run ended while GDB watched.
    Exited(PcExit),
    /// The connection failed or closed.
    ConnectionLost(String),
}

impl GdbTarget {
    /// Wraps `pc` for a session.
    pub fn new(pc: Pc) -> Self {
        Self {
            pc,
            mode: Mode::Continue,
            sw: BTreeSet::new(),
            hw: BTreeSet::new(),
            quit: false,
            exit: None,
        }
    }

    fn sync_breakpoints(&mut self) {
        self.pc.debug.breakpoints = self.sw.union(&self.hw).copied().collect();
    }

    /// Removes everything this session set (on detach).
    pub fn clear_debug_state(&mut self) {
        self.sw.clear();
        self.hw.clear();
        self.sync_breakpoints();
        for w in self.pc.cpu.host_watch.points().to_vec() {
            self.pc.cpu.remove_host_watchpoint(w);
        }
    }

    /// Runs the machine as GDB asked until something stops it, `poll`
    /// returns true (checked every [`POLL`] of host time), or the run ends.
    fn run(&mut self, mut poll: impl FnMut() -> bool) -> Option<SingleThreadStopReason<u32>> {
        if self.quit {
            return Some(SingleThreadStopReason::Exited(0));
        }
        if let Some(e) = &self.exit {
            return Some(SingleThreadStopReason::Exited(e.status() as u8));
        }
        loop {
            self.pc.debug.deadline(Some(Instant::now() + POLL));
            let stop = match self.mode {
                Mode::Step => self.pc.step(),
                Mode::Continue => self.pc.resume(),
            };
            self.pc.debug.deadline(None);
            let reason = match stop {
                Stop::Deadline => {
                    if poll() {
                        return None;
                    }
                    continue;
                }
                Stop::Exit(e) => {
                    let status = e.status() as u8;
                    self.exit = Some(e);
                    SingleThreadStopReason::Exited(status)
                }
                Stop::Breakpoint { linear } if self.sw.contains(&linear) => {
                    SingleThreadStopReason::SwBreak(())
                }
                Stop::Breakpoint { .. } => SingleThreadStopReason::HwBreak(()),
                Stop::Watchpoint(hit) => SingleThreadStopReason::Watch {
                    tid: (),
                    kind: match hit.watchpoint.kind {
                        WatchKind::Write => GdbWatchKind::Write,
                        WatchKind::Read => GdbWatchKind::Read,
                        WatchKind::Access => GdbWatchKind::ReadWrite,
                    },
                    addr: hit.watchpoint.addr,
                },
                Stop::Stepped | Stop::InstructionCount => SingleThreadStopReason::DoneStep,
                Stop::Interrupted => SingleThreadStopReason::Signal(Signal::SIGINT),
                Stop::Exception { vector } => SingleThreadStopReason::Signal(match vector {
                    0 | 16 | 19 => Signal::SIGFPE,
                    6 => Signal::SIGILL,
                    10..=14 => Signal::SIGSEGV,
                    _ => Signal::SIGTRAP,
                }),
                Stop::Interrupt { .. } => SingleThreadStopReason::Signal(Signal::SIGTRAP),
            };
            return Some(reason);
        }
    }

    /// Loads segment register `seg` with `selector` as a debugger edit.
    fn load_selector(&mut self, seg: SegReg, selector: u16) {
        let s = &self.pc.cpu.state;
        if s.segment(seg).selector == selector {
            return;
        }
        let v86 = s.eflags & oxide86_cpu::state::eflags::VM != 0;
        if !s.protected_mode() || v86 {
            self.pc.cpu.state.set_real_mode_segment(seg, selector);
            return;
        }
        match crate::addr::descriptor(&self.pc, selector) {
            Some(cache) => self.pc.cpu.state.seg[seg as usize] = cache,
            None => self.pc.cpu.state.seg[seg as usize].selector = selector,
        }
    }
}

impl Target for GdbTarget {
    type Arch = X86_SSE;
    type Error = &'static str;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    // Breakpoints are kept outside guest memory: GDB must not fall back
    // to writing INT3 itself.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }
}

impl SingleThreadBase for GdbTarget {
    fn read_registers(&mut self, regs: &mut X86CoreRegs) -> TargetResult<(), Self> {
        let s = &self.pc.cpu.state;
        let g = &s.gpr;
        (regs.eax, regs.ecx, regs.edx, regs.ebx) = (g[0], g[1], g[2], g[3]);
        (regs.esp, regs.ebp, regs.esi, regs.edi) = (g[4], g[5], g[6], g[7]);
        regs.eip = s.eip;
        regs.eflags = s.flags();
        let sel = |r: SegReg| u32::from(s.segment(r).selector);
        regs.segments.cs = sel(SegReg::Cs);
        regs.segments.ss = sel(SegReg::Ss);
        regs.segments.ds = sel(SegReg::Ds);
        regs.segments.es = sel(SegReg::Es);
        regs.segments.fs = sel(SegReg::Fs);
        regs.segments.gs = sel(SegReg::Gs);
        let f = &s.fpu;
        let top = usize::from((f.status >> 11) & 7);
        for (i, st) in regs.st.iter_mut().enumerate() {
            let r = f.regs[(top + i) & 7];
            st[..8].copy_from_slice(&r.signif.to_le_bytes());
            st[8..].copy_from_slice(&r.sign_exp.to_le_bytes());
        }
        regs.fpu.fctrl = u32::from(f.control);
        regs.fpu.fstat = u32::from(f.status);
        regs.fpu.ftag = u32::from(f.tag);
        regs.fpu.fiseg = u32::from(f.last_cs);
        regs.fpu.fioff = f.last_ip;
        regs.fpu.foseg = u32::from(f.last_ds);
        regs.fpu.fooff = f.last_dp;
        regs.fpu.fop = u32::from(f.last_opcode);
        regs.mxcsr = f.mxcsr;
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86CoreRegs) -> TargetResult<(), Self> {
        {
            let s = &mut self.pc.cpu.state;
            s.gpr = [
                regs.eax, regs.ecx, regs.edx, regs.ebx, regs.esp, regs.ebp, regs.esi, regs.edi,
            ];
            s.eip = regs.eip;
            s.commit_flags();
            s.eflags = regs.eflags | oxide86_cpu::state::eflags::RESERVED1;
            let f = &mut s.fpu;
            let top = usize::from((f.status >> 11) & 7);
            for (i, st) in regs.st.iter().enumerate() {
                let r = &mut f.regs[(top + i) & 7];
                let mut signif = [0u8; 8];
                signif.copy_from_slice(&st[..8]);
                r.signif = u64::from_le_bytes(signif);
                r.sign_exp = u16::from_le_bytes([st[8], st[9]]);
            }
            f.control = regs.fpu.fctrl as u16;
            f.status = regs.fpu.fstat as u16;
            f.tag = regs.fpu.ftag as u16;
            f.mxcsr = regs.mxcsr;
        }
        let sg = &regs.segments;
        for (seg, v) in [
            (SegReg::Cs, sg.cs),
            (SegReg::Ss, sg.ss),
            (SegReg::Ds, sg.ds),
            (SegReg::Es, sg.es),
            (SegReg::Fs, sg.fs),
            (SegReg::Gs, sg.gs),
        ] {
            self.load_selector(seg, v as u16);
        }
        Ok(())
    }

    fn read_addrs(&mut self, start_addr: u32, data: &mut [u8]) -> TargetResult<usize, Self> {
        match self.pc.read_linear(start_addr, data) {
            0 if !data.is_empty() => Err(TargetError::NonFatal),
            n => Ok(n),
        }
    }

    fn write_addrs(&mut self, start_addr: u32, data: &[u8]) -> TargetResult<(), Self> {
        if self.pc.write_linear(start_addr, data) == data.len() {
            Ok(())
        } else {
            Err(TargetError::NonFatal)
        }
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for GdbTarget {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.mode = Mode::Continue;
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for GdbTarget {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.mode = Mode::Step;
        Ok(())
    }
}

impl Breakpoints for GdbTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for GdbTarget {
    fn add_sw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        self.sw.insert(addr);
        self.sync_breakpoints();
        Ok(true)
    }
    fn remove_sw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        let had = self.sw.remove(&addr);
        self.sync_breakpoints();
        Ok(had)
    }
}

impl HwBreakpoint for GdbTarget {
    fn add_hw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        self.hw.insert(addr);
        self.sync_breakpoints();
        Ok(true)
    }
    fn remove_hw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        let had = self.hw.remove(&addr);
        self.sync_breakpoints();
        Ok(had)
    }
}

fn watchpoint(addr: u32, len: u32, kind: GdbWatchKind) -> HostWatchpoint {
    HostWatchpoint {
        addr,
        len: len.max(1),
        kind: match kind {
            GdbWatchKind::Write => WatchKind::Write,
            GdbWatchKind::Read => WatchKind::Read,
            GdbWatchKind::ReadWrite => WatchKind::Access,
        },
    }
}

impl HwWatchpoint for GdbTarget {
    fn add_hw_watchpoint(
        &mut self,
        addr: u32,
        len: u32,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        self.pc.cpu.add_host_watchpoint(watchpoint(addr, len, kind));
        Ok(true)
    }
    fn remove_hw_watchpoint(
        &mut self,
        addr: u32,
        len: u32,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        Ok(self
            .pc
            .cpu
            .remove_host_watchpoint(watchpoint(addr, len, kind)))
    }
}

impl MonitorCmd for GdbTarget {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        let line = String::from_utf8_lossy(cmd);
        let mut text = String::new();
        if monitor::execute(&mut self.pc, &line, &mut text) == Action::Quit {
            self.quit = true;
            text.push_str("quitting: the emulator ends when the debugger resumes or detaches\n");
        }
        for l in text.lines() {
            outputln!(out, "{l}");
        }
        Ok(())
    }
}

/// The blocking event loop over connection `C`.
#[derive(Debug)]
pub struct EventLoop<C>(std::marker::PhantomData<C>);

impl<C: ConnectionExt> BlockingEventLoop for EventLoop<C> {
    type Target = GdbTarget;
    type Connection = C;
    type StopReason = SingleThreadStopReason<u32>;

    fn wait_for_stop_reason(
        target: &mut GdbTarget,
        conn: &mut C,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<&'static str, C::Error>> {
        let mut pending = false;
        let stop = target.run(|| {
            // A read error counts as data: the read below reports it.
            pending = !matches!(conn.peek(), Ok(None));
            pending
        });
        match stop {
            Some(reason) => Ok(Event::TargetStopped(reason)),
            None => {
                let byte = conn.read().map_err(WaitForStopReasonError::Connection)?;
                Ok(Event::IncomingData(byte))
            }
        }
    }

    fn on_interrupt(_target: &mut GdbTarget) -> Result<Option<Self::StopReason>, &'static str> {
        Ok(Some(SingleThreadStopReason::Signal(Signal::SIGINT)))
    }
}

/// A borrowed connection, so a session can outlive one protocol state
/// machine (see [`serve`]).
struct Borrowed<'a, C>(&'a mut C);

impl<C: Connection> Connection for Borrowed<'_, C> {
    type Error = C::Error;
    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        self.0.write(byte)
    }
    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush()
    }
    fn on_session_start(&mut self) -> Result<(), Self::Error> {
        self.0.on_session_start()
    }
}

impl<C: ConnectionExt> ConnectionExt for Borrowed<'_, C> {
    fn read(&mut self) -> Result<u8, Self::Error> {
        self.0.read()
    }
    fn peek(&mut self) -> Result<Option<u8>, Self::Error> {
        self.0.peek()
    }
}

/// The reply to a packet the protocol layer could not parse: `E01`.
const ERROR_REPLY: &[u8] = b"$E01#a6";

/// Runs one GDB session on `conn` until GDB detaches or kills, the run
/// ends, or the connection drops. Breakpoints and watchpoints the
/// session set are cleared on detach.
///
/// gdbstub ends its state machine on a packet it cannot parse; such a
/// packet gets an `E01` reply here and the session goes on with a fresh
/// state machine (the machine and its breakpoints are kept).
pub fn serve<C>(target: &mut GdbTarget, mut conn: C) -> SessionEnd
where
    C: ConnectionExt<Error = std::io::Error>,
{
    let end = loop {
        let stub = GdbStub::<GdbTarget, Borrowed<'_, C>>::new(Borrowed(&mut conn));
        let result = stub.run_blocking::<EventLoop<Borrowed<'_, C>>>(target);
        break match result {
            Ok(DisconnectReason::Disconnect) if target.quit => SessionEnd::Killed,
            Ok(DisconnectReason::Disconnect) => SessionEnd::Detached,
            Ok(DisconnectReason::Kill) => SessionEnd::Killed,
            Ok(DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_)) => {
                match target.exit.clone() {
                    Some(e) => SessionEnd::Exited(e),
                    None => SessionEnd::Killed,
                }
            }
            Err(_) if target.quit => SessionEnd::Killed,
            Err(e) if !e.is_connection_error() && !e.is_target_error() => {
                // A malformed packet: answer it and carry on.
                if conn
                    .write_all(ERROR_REPLY)
                    .and_then(|()| conn.flush())
                    .is_err()
                {
                    SessionEnd::ConnectionLost(e.to_string())
                } else {
                    continue;
                }
            }
            Err(e) => match target.exit.clone() {
                Some(exit) => SessionEnd::Exited(exit),
                None => SessionEnd::ConnectionLost(e.to_string()),
            },
        };
    };
    target.clear_debug_state();
    end
}
