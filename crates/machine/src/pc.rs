//! The PC: a CPU on a [`PcBoard`], booted by one of the boot paths, and the
//! run loop that drives CPU and devices on the machine's clock.

use oxide86_cpu::decode::DecodeCache;
use oxide86_cpu::{Bus, Cpu, CpuModel, StepOutcome};
pub use oxide86_jit::engine::DEFAULT_THRESHOLD as DEFAULT_JIT_THRESHOLD;
pub use oxide86_jit::engine::OPTIMIZE_AFTER as DEFAULT_JIT_OPTIMIZE_AFTER;
pub use oxide86_jit::{Engine, EngineKind};

use crate::boot::{self, BootError};
use crate::clock::{Clock, ClockMode, NS_PER_INSTRUCTION};
use crate::memory_map::PhysMemory;
use crate::pc_board::PcBoard;
use crate::ram::{GuestRam, RamError};
use crate::stop::{DebugControl, Stop};

/// The most instructions run between two device updates (100 µs of
/// virtual time). Nothing a guest sees depends on it: a slice ends at the
/// next device event, and port and MMIO accesses bring the devices up to
/// their instruction first (`Bus::sync_time`). It bounds how late host
/// input (the serial console) is seen, and under the realtime clock how
/// late an interrupt is taken.
const SLICE: u64 = 100_000;

/// Decodings the CPU's decoded-instruction cache holds (64 bytes each:
/// 16 MiB, and twice as many tags, direct-mapped by physical address: 6
/// MiB). With the default 64 Ki a Linux boot's kernel code missed 1.6 M
/// times; here it misses about 0.55 M times.
pub const DECODE_CACHE_ENTRIES: usize = 1 << 18;

/// Virtual nanoseconds a PAUSE takes. The SDM leaves the delay to the
/// implementation (Vol. 2B, "PAUSE"; about 140 cycles on Skylake, per the
/// optimization manual); a microsecond lets kernel delay loops (`udelay`:
/// RDTSC, compare, PAUSE) reach their time in a few dozen instructions
/// per microsecond rather than a thousand, and is still short against
/// the shortest delays drivers ask for.
pub const PAUSE_NS: u64 = 1_000;

/// How far away the next timer event must be for an idle guest to count
/// as waiting for input: a guest that still has work due sooner (a
/// driver's transmit timer finishing a line of output) gets that time
/// first, so a reader that answers the guest's output is never waited on
/// while the output is still unfinished.
pub const STREAM_INPUT_QUIET_NS: u64 = 100_000_000;

/// The RTC's power-on date in virtual-clock runs unless told otherwise:
/// 2000-01-01 00:00:00 UTC, so runs are repeatable.
pub const DEFAULT_RTC_BASE: i64 = 946_684_800;

/// What to put in the machine and how to start it.
#[derive(Clone, Debug)]
pub enum BootSource {
    /// A firmware ROM image, mapped to end at 4 GiB (and its last 128 KiB
    /// below 1 MiB); the CPU starts at the reset vector.
    Firmware(Vec<u8>),
    /// A Multiboot kernel with its command line and modules.
    Multiboot {
        /// The kernel image (ELF or a.out kludge).
        kernel: Vec<u8>,
        /// Its command line.
        cmdline: String,
        /// Modules, e.g. an initrd.
        modules: Vec<boot::multiboot::Module>,
    },
    /// A Linux bzImage, optional initrd and command line.
    Linux {
        /// The bzImage.
        kernel: Vec<u8>,
        /// The initrd, if any.
        initrd: Option<Vec<u8>>,
        /// The command line.
        cmdline: String,
    },
}

/// Machine settings.
#[derive(Clone, Debug)]
pub struct PcConfig {
    /// Guest RAM in bytes.
    pub ram_bytes: usize,
    /// The processor model.
    pub model: CpuModel,
    /// The time base.
    pub clock: ClockMode,
    /// Reset (triple fault, reset port) ends the run instead of rebooting.
    pub no_reboot: bool,
    /// Stop after this many instructions.
    pub max_instructions: Option<u64>,
    /// The RTC's date and time at power-on (seconds since 1970).
    pub rtc_base: i64,
    /// Which engine runs guest code (`--engine`).
    pub engine: EngineKind,
    /// Tiered engine: executions of a block before it is translated.
    pub jit_threshold: u32,
    /// Tiered engine: guest instructions run from a translated block
    /// before it is compiled again through Cranelift's optimiser (0: never).
    pub jit_optimize_after: u64,
    /// Tiered engine: compile translations on a worker thread while the
    /// guest goes on in the interpreter (`--jit-background`, default on;
    /// verify mode translates synchronously regardless).
    pub jit_background: bool,
    /// Check every translated block run against the interpreter
    /// (`--jit-verify`); the first difference ends the run with
    /// [`PcExit::JitMismatch`].
    pub jit_verify: bool,
}

impl Default for PcConfig {
    fn default() -> Self {
        Self {
            ram_bytes: 128 << 20,
            model: CpuModel::P6,
            clock: ClockMode::Virtual,
            no_reboot: false,
            max_instructions: None,
            rtc_base: DEFAULT_RTC_BASE,
            engine: EngineKind::Interp,
            jit_threshold: oxide86_jit::engine::DEFAULT_THRESHOLD,
            jit_optimize_after: oxide86_jit::engine::OPTIMIZE_AFTER,
            jit_background: true,
            jit_verify: false,
        }
    }
}

/// Why the machine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PcError {
    /// RAM could not be mapped.
    #[error(transparent)]
    Ram(#[from] RamError),
    /// The boot image is unusable.
    #[error(transparent)]
    Boot(#[from] BootError),
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PcExit {
    /// ACPI S5 (the guest powered off).
    PowerOff,
    /// The debug-exit port was written with this value.
    DebugExit(u8),
    /// A reset was requested with `no_reboot` set.
    Reset(String),
    /// The CPU halted with interrupts disabled and nothing can wake it.
    Deadlock,
    /// The user asked the emulator to quit (Ctrl-A x).
    Quit,
    /// `max_instructions` ran out.
    InstructionLimit,
    /// Verify mode found a translated block that disagrees with the
    /// interpreter; [`Engine::mismatch`] holds the report.
    JitMismatch,
}

impl PcExit {
    /// The process exit status the front end uses: 0 for power-off and a
    /// no-reboot reset and a quit, `(value << 1) | 1` for the debug-exit port, 3 for a
    /// dead halt, 4 for the instruction limit and 6 for a JIT verify mismatch.
    pub fn status(&self) -> i32 {
        match self {
            PcExit::PowerOff | PcExit::Reset(_) | PcExit::Quit => 0,
            PcExit::DebugExit(v) => (i32::from(*v) << 1) | 1,
            PcExit::Deadlock => 3,
            PcExit::InstructionLimit => 4,
            PcExit::JitMismatch => 6,
        }
    }
}

/// Bytes from the host for COM1.
#[derive(Default)]
pub enum HostInput {
    /// No input.
    #[default]
    None,
    /// Typed interactively (a terminal): delivered as it arrives, with
    /// `quit` raised by the console's escape command.
    Interactive {
        /// Bytes from the reader thread.
        bytes: std::sync::mpsc::Receiver<u8>,
        /// Set when the user asked to quit.
        quit: std::sync::Arc<std::sync::atomic::AtomicBool>,
    },
    /// A pipe or file: read only when the guest idles in HLT with COM1's
    /// receive FIFO empty and its driver listening, or no timer due within
    /// [`STREAM_INPUT_QUIET_NS`] (`Pc::ready_for_stream_input`), so with
    /// the virtual clock input reaches the guest at the same
    /// instruction every run (the read blocks; guest time waits for it).
    Stream(Box<dyn std::io::Read + Send>),
}

impl std::fmt::Debug for HostInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostInput::None => "HostInput::None",
            HostInput::Interactive { .. } => "HostInput::Interactive",
            HostInput::Stream(_) => "HostInput::Stream",
        })
    }
}

/// Counters for `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PcStats {
    /// Instructions retired.
    pub instructions: u64,
    /// Host seconds spent running.
    pub seconds: f64,
    /// Resets (triple faults and reset requests) taken.
    pub resets: u64,
}

/// A PC.
#[derive(Debug)]
pub struct Pc {
    /// The processor.
    pub cpu: Cpu,
    /// The engine that runs it (interpreter, JIT or tiered).
    pub engine: Engine,
    /// Memory and devices.
    pub board: PcBoard,
    config: PcConfig,
    boot: BootSource,
    /// Counters.
    pub stats: PcStats,
    /// Where COM1's input comes from.
    pub input: HostInput,
    /// Machine time and instructions retired when the TSC was last brought
    /// up to machine time.
    tsc_sync: (u64, u64),
    /// Typed bytes COM1's FIFO had no room for yet.
    pending_input: std::collections::VecDeque<u8>,
    /// Breakpoints, steps and other stops (see [`crate::stop`]).
    pub debug: DebugControl,
}

impl Pc {
    /// Builds and boots a machine.
    pub fn new(config: PcConfig, boot: BootSource) -> Result<Self, PcError> {
        let ram = GuestRam::new(config.ram_bytes)?;
        let rom = match &boot {
            BootSource::Firmware(rom) => rom.clone(),
            _ => Vec::new(),
        };
        let mut board = PcBoard::new(
            PhysMemory::new(ram, rom),
            oxide86_devices::rtc::DateTime::from_unix(config.rtc_base),
        );
        board.clock = Clock::new(config.clock);
        let mut engine = Engine::new(config.engine);
        engine.threshold = config.jit_threshold;
        engine.optimize_after = config.jit_optimize_after;
        engine.background = config.jit_background;
        engine.set_verify(config.jit_verify);
        let mut pc = Self {
            cpu: Cpu::with_decode_cache(
                config.model,
                DecodeCache::with_entries(DECODE_CACHE_ENTRIES),
            ),
            engine,
            board,
            config,
            boot,
            stats: PcStats::default(),
            input: HostInput::None,
            tsc_sync: (0, 0),
            pending_input: std::collections::VecDeque::new(),
            debug: DebugControl::default(),
        };
        pc.power_on()?;
        Ok(pc)
    }

    /// Instructions retired since the machine was built, across resets.
    pub fn total_instructions(&self) -> u64 {
        self.board.icount_base + self.cpu.state.icount
    }

    /// A warm reset (the monitor's `reset`): the CPU restarts and the boot
    /// image is loaded again; devices keep their state.
    pub fn reset(&mut self) -> Result<(), PcError> {
        self.stats.resets += 1;
        self.power_on()
    }

    /// Resets the CPU and loads the boot image again (RAM keeps its contents
    /// except what the loader rewrites, as on a warm reset).
    fn power_on(&mut self) -> Result<(), PcError> {
        self.board.icount_base += self.cpu.state.icount;
        self.cpu.reset();
        self.cpu.local_apic = true;
        self.cpu.pause_exits = self.board.clock.mode() == ClockMode::Virtual;
        self.board.apics.reset();
        if matches!(self.boot, BootSource::Firmware(_)) {
            // The firmware shadows itself: PAM starts at its reset value.
            self.board.set_pam(crate::pam::PAM_RESET);
        } else {
            // No firmware runs: leave what it would have left, the APIC in
            // virtual wire mode, 0xC0000-0xFFFFF as shadow RAM (the BIOS
            // segment read-only) and the ACPI tables in the BIOS area,
            // written straight into RAM.
            self.board.apics.virtual_wire_mode();
            self.board.set_pam(crate::pam::PAM_AFTER_FIRMWARE);
            let layout = crate::acpi::AcpiLayout::default();
            let tables = crate::acpi::build(&layout);
            // RAM too small to hold them gets none, as before.
            let _ = self.board.memory.write_ram(layout.base, &tables);
        }
        let memory = &mut self.board.memory;
        memory.set_a20(true);
        match &self.boot {
            BootSource::Firmware(_) => {}
            BootSource::Multiboot {
                kernel,
                cmdline,
                modules,
            } => boot::multiboot::boot(&mut self.cpu, memory, kernel, cmdline, modules)?,
            BootSource::Linux {
                kernel,
                initrd,
                cmdline,
            } => boot::linux::boot(&mut self.cpu, memory, kernel, initrd.as_deref(), cmdline)?,
        }
        Ok(())
    }

    /// Runs until the guest powers off or exits, a reset with `no_reboot`,
    /// a dead halt, or the instruction limit.
    /// Debugger stops ([`Pc::debug`]) are passed over; use [`Pc::resume`]
    /// to see them.
    pub fn run(&mut self) -> PcExit {
        loop {
            if let Stop::Exit(exit) = self.resume() {
                return exit;
            }
        }
    }

    /// The run loop: runs until the run ends or [`Pc::debug`] asks for a stop.
    pub(crate) fn run_inner(&mut self) -> Stop {
        let limit = self.config.max_instructions.unwrap_or(u64::MAX);
        loop {
            if let Some(stop) = self.debug.poll_slice() {
                return stop;
            }
            // Devices catch up with machine time, then the CPU runs until the
            // next device event is due (so in virtual time an interrupt lands
            // on the same instruction every run), at most SLICE instructions.
            let now = self.board.clock.now_ns(self.total_instructions());
            self.board.advance_to(now);
            self.board.begin_slice();
            self.keep_tsc_with_machine_time(now);
            let until_event = self.board.ns_until_next_event().unwrap_or(u64::MAX);
            let slice = (until_event / NS_PER_INSTRUCTION).clamp(1, SLICE);
            let mut outcome = StepOutcome::Continue;
            let per_step = self.debug.per_step(&self.cpu);
            let mut stop = None;
            let mut done = 0;
            while done < slice {
                // In virtual time an idle HLT spends time too: the limit
                // counts it in instruction units, so a guest asleep forever
                // still stops. A step retires at most one instruction, so
                // running at most `left` steps never passes the limit.
                let now = self.board.clock.now_ns(self.total_instructions()) / NS_PER_INSTRUCTION;
                if now >= limit {
                    return Stop::Exit(PcExit::InstructionLimit);
                }
                if per_step {
                    // A debugger watches every instruction: one step at a time.
                    (outcome, stop) = self.step_checked();
                    done += 1;
                    if stop.is_some() {
                        break;
                    }
                    if outcome != StepOutcome::Continue || self.board.slice_must_end() {
                        break;
                    }
                    continue;
                }
                let left = (limit - now).min(slice - done);
                let (o, n) = if self.engine.kind() == oxide86_jit::EngineKind::Interp {
                    // The interpreter's own batched loop (quiet runs skip
                    // the per-instruction event checks).
                    self.cpu
                        .run_until(&mut self.board, left, |b| b.slice_must_end())
                } else {
                    self.engine
                        .run(&mut self.cpu, &mut self.board, left, |b, _| {
                            b.slice_must_end()
                        })
                };
                done += n;
                outcome = o;
                if self.engine.mismatch().is_some() {
                    return Stop::Exit(PcExit::JitMismatch);
                }
                if outcome != StepOutcome::Continue || self.board.slice_must_end() || n < left {
                    break;
                }
            }
            if let Some(v) = self.board.debug_exit.requested {
                return Stop::Exit(PcExit::DebugExit(v));
            }
            if self.poll_interactive_input() {
                return Stop::Exit(PcExit::Quit);
            }
            if self.board.acpi_pm.poweroff_requested() {
                return Stop::Exit(PcExit::PowerOff);
            }
            // Every reset line is taken, so none survives the reset it caused.
            let requested = self.board.take_reset_request();
            let reset = match outcome {
                StepOutcome::Shutdown => Some(
                    self.cpu
                        .shutdown_reason
                        .clone()
                        .unwrap_or_else(|| "triple fault".into()),
                ),
                _ => requested.map(String::from),
            };
            if let Some(why) = reset {
                self.stats.resets += 1;
                if self.config.no_reboot {
                    return Stop::Exit(PcExit::Reset(why));
                }
                if self.cpu.state.icount == 0 {
                    // Rebooting would fail the same way forever.
                    return Stop::Exit(PcExit::Reset(format!("{why} before the first instruction retired; not rebooting into a reset loop")));
                }
                if let Err(e) = self.power_on() {
                    return Stop::Exit(PcExit::Reset(format!("{why}; reboot failed: {e}")));
                }
                if let Some(stop) = stop {
                    return stop;
                }
                continue;
            }
            if let Some(stop) = stop {
                return stop;
            }
            if outcome == StepOutcome::Paused {
                self.spin_wait();
            }
            if outcome == StepOutcome::Halted {
                // The guest waits: what it printed (a prompt) must be seen.
                for com in &mut self.board.com {
                    com.output_mut().flush();
                }
                let can_wake = self.cpu.state.eflags & oxide86_cpu::state::eflags::IF != 0;
                if can_wake && self.ready_for_stream_input() && self.feed_stream_input() {
                    continue;
                }
                match self.board.ns_until_next_event() {
                    Some(ns) if can_wake => self.idle(ns),
                    _ if can_wake && self.board.interrupt_pending() => {}
                    // Interrupts off (or no timer armed): nothing can wake the CPU.
                    _ => return Stop::Exit(PcExit::Deadlock),
                }
            }
        }
    }

    /// Moves typed bytes into COM1; true when the user asked to quit.
    fn poll_interactive_input(&mut self) -> bool {
        let HostInput::Interactive { bytes, quit } = &self.input else {
            return false;
        };
        while let Ok(b) = bytes.try_recv() {
            self.pending_input.push_back(b);
        }
        while let Some(&b) = self.pending_input.front() {
            if self.board.serial_input(&[b]) == 0 {
                break;
            }
            self.pending_input.pop_front();
        }
        quit.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether an idle guest may be handed piped input now: COM1's driver
    /// listens (its received-data interrupt is on: the port is open, so
    /// what arrives is buffered, not flushed by the port's start-up), or
    /// no timer is due within [`STREAM_INPUT_QUIET_NS`] (a guest that
    /// polls). A guest with output still to come soon gets that time
    /// first, so a reader answering the output is not waited on.
    fn ready_for_stream_input(&self) -> bool {
        let listening = self.board.com[0].state().ier & oxide86_devices::uart::IER_RDA != 0;
        listening
            || self
                .board
                .ns_until_next_event()
                .is_none_or(|ns| ns >= STREAM_INPUT_QUIET_NS)
    }

    /// With stream input and an idle guest whose COM1 FIFO is empty, reads
    /// the next bytes (blocking: guest time does not pass meanwhile).
    /// Returns whether anything was delivered.
    fn feed_stream_input(&mut self) -> bool {
        let HostInput::Stream(reader) = &mut self.input else {
            return false;
        };
        let space = self.board.com[0].input_space();
        if space < 16 {
            return false;
        }
        let mut buf = [0u8; 16];
        match reader.read(&mut buf[..space.min(16)]) {
            Ok(0) | Err(_) => {
                self.input = HostInput::None; // end of input
                false
            }
            Ok(n) => self.board.serial_input(&buf[..n]) > 0,
        }
    }

    /// The CPU is halted with interrupts enabled: let `ns` pass (virtual:
    /// jump the clock; realtime: sleep, at most 10 ms at a time).
    /// The TSC counts retired instructions (one per nanosecond of machine
    /// time); time that passes without instructions (an idle HLT skipped
    /// in virtual time, or host time in realtime mode running ahead of
    /// the instructions) is added to it here, so the TSC keeps pace with
    /// the PIT and the PM timer as on hardware (SDM Vol. 3B, 17.17
    /// "Time-Stamp Counter": a constant rate).
    fn keep_tsc_with_machine_time(&mut self, now_ns: u64) {
        let icount = self.total_instructions();
        let (then_ns, then_icount) = self.tsc_sync;
        let elapsed = now_ns.saturating_sub(then_ns) / NS_PER_INSTRUCTION;
        let retired = icount.saturating_sub(then_icount);
        if elapsed > retired {
            let msr = &mut self.cpu.state.msr;
            msr.tsc_offset = msr.tsc_offset.wrapping_add(elapsed - retired);
        }
        self.tsc_sync = (now_ns, icount);
    }

    /// A PAUSE under the virtual clock (`Cpu::pause_exits`): the guest
    /// waits in a spin loop for a time or a device, so [`PAUSE_NS`] pass,
    /// or less if a device event comes sooner (it is then taken before the
    /// next instruction, as an interrupt ends a real PAUSE). The loop gets
    /// there with far fewer instructions than at one nanosecond each.
    fn spin_wait(&mut self) {
        let now = self.board.clock.now_ns(self.total_instructions());
        self.board.advance_to(now);
        let due = self.board.ns_until_next_event().unwrap_or(u64::MAX);
        self.board.clock.skip(PAUSE_NS.min(due));
    }

    fn idle(&mut self, ns: u64) {
        match self.board.clock.mode() {
            ClockMode::Virtual => self.board.clock.skip(ns.max(1)),
            ClockMode::Realtime => {
                std::thread::sleep(std::time::Duration::from_nanos(ns.clamp(1, 10_000_000)))
            }
        }
    }
}
