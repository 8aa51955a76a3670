//! The minimal test machine for bare-metal conformance programs: flat RAM,
//! the debug console (port 0xE9), the debug-exit device (port 0xF4) and the
//! test interrupt source (ports 0xE0-0xE2). A program is loaded at
//! [`LOAD_ADDRESS`] and starts there in real mode (CS = 0).

use oxide86_cpu::{Bus, Cpu, CpuModel, SegReg, StepOutcome};
use oxide86_devices::debug_exit::{DebugExit, DEBUG_EXIT_PORT};
use oxide86_devices::debugcon::{DebugCon, DEBUGCON_PORT};
use oxide86_devices::test_irq::{TestIrq, TEST_IRQ_PORT};
use oxide86_devices::{PortIo, Ticks};

/// Where programs are loaded and start (CS:IP = 0000:8000).
pub const LOAD_ADDRESS: u32 = 0x8000;

/// Everything on the test machine's bus.
#[derive(Debug)]
pub struct TestBoard {
    /// Guest RAM from physical address 0; beyond it the bus floats (0xFF).
    pub ram: Vec<u8>,
    /// Port 0xE9.
    pub debugcon: DebugCon,
    /// Port 0xF4.
    pub exit: DebugExit,
    /// Ports 0xE0-0xE2.
    pub irq: TestIrq,
}

impl Bus for TestBoard {
    fn ram(&mut self) -> Option<&mut [u8]> {
        Some(&mut self.ram)
    }
    fn ram_page_offset(&mut self, paddr: u32) -> Option<usize> {
        let o = (paddr & !0xFFF) as usize;
        (o + 0x1000 <= self.ram.len()).then_some(o)
    }
    fn read_u8(&mut self, addr: u32) -> u8 {
        self.ram.get(addr as usize).copied().unwrap_or(0xFF)
    }
    fn write_u8(&mut self, addr: u32, value: u8) {
        if let Some(b) = self.ram.get_mut(addr as usize) {
            *b = value;
        }
    }
    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        let mut v = 0;
        for i in 0..u16::from(size) {
            let p = port.wrapping_add(i);
            let b = match p {
                DEBUGCON_PORT => self.debugcon.read(0),
                DEBUG_EXIT_PORT => self.exit.read(0),
                _ if (TEST_IRQ_PORT..TEST_IRQ_PORT + 3).contains(&p) => {
                    self.irq.read(p - TEST_IRQ_PORT)
                }
                _ => 0xFF,
            };
            v |= u32::from(b) << (8 * i);
        }
        v
    }
    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        for i in 0..u16::from(size) {
            let p = port.wrapping_add(i);
            let b = (value >> (8 * i)) as u8;
            match p {
                DEBUGCON_PORT => self.debugcon.write(0, b),
                DEBUG_EXIT_PORT => self.exit.write(0, b),
                _ if (TEST_IRQ_PORT..TEST_IRQ_PORT + 3).contains(&p) => {
                    self.irq.write(p - TEST_IRQ_PORT, b)
                }
                _ => {}
            }
        }
    }
    fn take_nmi(&mut self) -> bool {
        self.irq.take_nmi()
    }
    fn interrupt_pending(&mut self) -> bool {
        self.irq.intr()
    }
    fn interrupt_ack(&mut self) -> Option<u8> {
        self.irq.acknowledge()
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// The program wrote this value to the debug-exit port.
    Exit(u8),
    /// A triple fault (or an undeliverable fault), with the CPU's reason.
    Shutdown(String),
    /// HLT with interrupts disabled and nothing to wake the CPU.
    Halted,
    /// The instruction cap was reached.
    InstructionLimit,
    /// Verify mode found a translated block that disagrees with the
    /// interpreter: the report.
    JitMismatch(String),
}

/// A CPU on a [`TestBoard`].
#[derive(Debug)]
pub struct TestMachine {
    /// The processor.
    pub cpu: Cpu,
    /// Memory and devices.
    pub board: TestBoard,
    /// The engine that runs the CPU (the interpreter unless changed).
    pub engine: oxide86_jit::Engine,
}

impl TestMachine {
    /// A machine with `ram_bytes` of RAM holding `program` at [`LOAD_ADDRESS`],
    /// with the CPU in real mode at 0000:8000.
    pub fn new(model: CpuModel, ram_bytes: usize, program: &[u8]) -> Result<Self, String> {
        let end = LOAD_ADDRESS as usize + program.len();
        if end > ram_bytes {
            return Err(format!(
                "program of {} bytes does not fit in {} bytes of RAM at {:#x}",
                program.len(),
                ram_bytes,
                LOAD_ADDRESS
            ));
        }
        let mut ram = vec![0; ram_bytes];
        ram[LOAD_ADDRESS as usize..end].copy_from_slice(program);
        let mut cpu = Cpu::new(model);
        for s in SegReg::ALL {
            cpu.state.set_real_mode_segment(s, 0);
        }
        cpu.state.eip = LOAD_ADDRESS;
        cpu.state.gpr[4] = LOAD_ADDRESS;
        let board = TestBoard {
            ram,
            debugcon: DebugCon::default(),
            exit: DebugExit::default(),
            irq: TestIrq::default(),
        };
        Ok(Self {
            cpu,
            board,
            engine: oxide86_jit::Engine::new(oxide86_jit::EngineKind::Interp),
        })
    }

    /// Runs until the program exits, the CPU shuts down or halts for good,
    /// or `max_instructions` have been executed.
    pub fn run(&mut self, max_instructions: u64) -> RunEnd {
        let mut steps = 0u64;
        while steps < max_instructions {
            // The test device ticks once per step; a countdown that is
            // running bounds how far the engine may go before it fires,
            // and a change of it (a port write) stops the engine.
            let countdown = self.board.irq.countdown();
            let budget = (max_instructions - steps).min(countdown.unwrap_or(u64::MAX).max(1));
            let mut expect = countdown;
            let (outcome, n) = self
                .engine
                .run(&mut self.cpu, &mut self.board, budget, |b, n| {
                    let rearmed = b.irq.countdown() != expect;
                    b.irq.tick(Ticks(n));
                    expect = b.irq.countdown();
                    b.exit.requested.is_some() || rearmed
                });
            steps += n;
            if let Some(m) = self.engine.mismatch() {
                return RunEnd::JitMismatch(m.to_string());
            }
            if let Some(v) = self.board.exit.requested {
                return RunEnd::Exit(v);
            }
            match outcome {
                // This machine keeps PAUSE a NOP (`Cpu::pause_exits` off).
                StepOutcome::Continue | StepOutcome::Paused => {}
                StepOutcome::Shutdown => {
                    return RunEnd::Shutdown(
                        self.cpu
                            .shutdown_reason
                            .clone()
                            .unwrap_or_else(|| "triple fault".into()),
                    )
                }
                StepOutcome::Halted => {
                    let wakes = self.board.irq.intr()
                        && self.cpu.state.eflags & oxide86_cpu::state::eflags::IF != 0;
                    if !wakes && !self.board.irq.armed() {
                        return RunEnd::Halted;
                    }
                }
            }
        }
        RunEnd::InstructionLimit
    }
}
