//! The machine as a library: build a PC, run it to a stop condition, step
//! it, look at and change its registers and memory, set breakpoints and
//! watchpoints. `crates/machine/examples/embed.rs` is a complete program.
//!
//! Addresses of breakpoints and watchpoints are linear (segment base plus
//! offset, before paging), as GDB's are.
//!
//! ```
//! use oxide86_machine::embed::{Machine, Until};
//! use oxide86_machine::stop::Stop;
//! // A 64 KiB ROM whose reset vector runs `inc ax ; inc ax ; hlt` with
//! // interrupts off (the run ends in a dead halt).
//! let mut rom = vec![0xFFu8; 0x10000];
//! rom[0xFFF0..0xFFF4].copy_from_slice(&[0xFA, 0x40, 0x40, 0xF4]);
//! let mut m = Machine::builder().memory_mib(1).firmware(rom).build().unwrap();
//! assert_eq!(m.step(), Stop::Stepped); // cli
//! m.add_breakpoint(0xFFFF_FFF2);
//! assert_eq!(m.run_until(Until::Stop), Stop::Breakpoint { linear: 0xFFFF_FFF2 });
//! assert_eq!(m.cpu.state.gpr[0] & 0xFFFF, 1);
//! ```

use oxide86_cpu::host_watch::{HostWatchpoint, WatchKind};
use oxide86_cpu::CpuModel;

use crate::boot::multiboot::Module;
use crate::clock::ClockMode;
use crate::pc::{BootSource, Pc, PcConfig, PcError};
use crate::stop::Stop;

/// Builds a [`Machine`]: settings first, then what to boot.
#[derive(Clone, Debug, Default)]
pub struct MachineBuilder {
    config: PcConfig,
    boot: Option<BootSource>,
}

impl MachineBuilder {
    /// Guest RAM in MiB (default 128).
    pub fn memory_mib(mut self, mib: usize) -> Self {
        self.config.ram_bytes = mib << 20;
        self
    }
    /// The CPU model (default P6).
    pub fn cpu(mut self, model: CpuModel) -> Self {
        self.config.model = model;
        self
    }
    /// The time base (default virtual: repeatable runs).
    pub fn clock(mut self, clock: ClockMode) -> Self {
        self.config.clock = clock;
        self
    }
    /// Whether a reset ends the run instead of rebooting.
    pub fn no_reboot(mut self, yes: bool) -> Self {
        self.config.no_reboot = yes;
        self
    }
    /// Boot a firmware ROM from the reset vector.
    pub fn firmware(mut self, rom: Vec<u8>) -> Self {
        self.boot = Some(BootSource::Firmware(rom));
        self
    }
    /// Boot a Multiboot kernel.
    pub fn multiboot(mut self, kernel: Vec<u8>, cmdline: &str, modules: Vec<Module>) -> Self {
        self.boot = Some(BootSource::Multiboot {
            kernel,
            cmdline: cmdline.into(),
            modules,
        });
        self
    }
    /// Boot a Linux bzImage.
    pub fn linux(mut self, kernel: Vec<u8>, initrd: Option<Vec<u8>>, cmdline: &str) -> Self {
        self.boot = Some(BootSource::Linux {
            kernel,
            initrd,
            cmdline: cmdline.into(),
        });
        self
    }
    /// Builds and boots the machine (an empty ROM if nothing to boot was given).
    pub fn build(self) -> Result<Machine, PcError> {
        let boot = self.boot.unwrap_or(BootSource::Firmware(vec![0xF4; 4096]));
        Ok(Machine {
            pc: Pc::new(self.config, boot)?,
        })
    }
}

/// What [`Machine::run_until`] runs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Any stop: a breakpoint, a watchpoint, an exception or interrupt
    /// that [`crate::stop::DebugControl`] breaks on, or the end of the run.
    Stop,
    /// `n` more instructions retired (or an earlier stop).
    Instructions(u64),
    /// The instruction at this linear address is next (or an earlier stop).
    Address(u32),
    /// `n` more steps (instructions retired or deliveries), or an earlier stop.
    Steps(u64),
}

/// A PC to embed: a [`Pc`] (reachable through `Deref`) with a debugger's
/// conveniences.
#[derive(Debug)]
pub struct Machine {
    /// The machine itself.
    pub pc: Pc,
}

impl std::ops::Deref for Machine {
    type Target = Pc;
    fn deref(&self) -> &Pc {
        &self.pc
    }
}

impl std::ops::DerefMut for Machine {
    fn deref_mut(&mut self) -> &mut Pc {
        &mut self.pc
    }
}

impl Machine {
    /// A builder with the default settings.
    pub fn builder() -> MachineBuilder {
        MachineBuilder::default()
    }

    /// Runs one step: see [`Pc::step`].
    pub fn step(&mut self) -> Stop {
        self.pc.step()
    }

    /// Runs until `until` or an earlier stop.
    pub fn run_until(&mut self, until: Until) -> Stop {
        match until {
            Until::Stop => self.pc.resume(),
            Until::Instructions(n) => {
                let at = self.pc.total_instructions().saturating_add(n);
                self.pc.debug.stop_at_instruction(Some(at));
                let stop = self.pc.resume();
                self.pc.debug.stop_at_instruction(None);
                stop
            }
            Until::Steps(n) => {
                if n == 0 {
                    return Stop::Stepped;
                }
                self.pc.debug.step_count(Some(n));
                self.pc.resume()
            }
            Until::Address(linear) => {
                let added = self.pc.debug.breakpoints.insert(linear);
                let stop = self.pc.resume();
                if added {
                    self.pc.debug.breakpoints.remove(&linear);
                }
                stop
            }
        }
    }

    /// Sets a breakpoint at a linear address; false if already set.
    pub fn add_breakpoint(&mut self, linear: u32) -> bool {
        self.pc.debug.breakpoints.insert(linear)
    }

    /// Clears a breakpoint; false if it was not set.
    pub fn remove_breakpoint(&mut self, linear: u32) -> bool {
        self.pc.debug.breakpoints.remove(&linear)
    }

    /// Watches `len` bytes at a linear address; false if already watched so.
    pub fn add_watchpoint(&mut self, linear: u32, len: u32, kind: WatchKind) -> bool {
        self.pc.cpu.add_host_watchpoint(HostWatchpoint {
            addr: linear,
            len,
            kind,
        })
    }

    /// Stops watching; false if no such watchpoint.
    pub fn remove_watchpoint(&mut self, linear: u32, len: u32, kind: WatchKind) -> bool {
        self.pc.cpu.remove_host_watchpoint(HostWatchpoint {
            addr: linear,
            len,
            kind,
        })
    }
}
