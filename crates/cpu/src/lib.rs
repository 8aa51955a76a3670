//! The x86 CPU of oxide86 and nothing else: architectural state, decoding
//! (iced-x86) with a decoded-instruction cache, the reference interpreter,
//! lazy flags, real-mode segmentation, exception delivery and the x87 FPU.
//!
//! The CPU knows no device. Everything outside the processor (physical
//! memory, I/O ports, the interrupt controller) is reached through the
//! [`Bus`] trait, which the machine implements.
//!
//! ```
//! use oxide86_cpu::{Cpu, CpuModel, FlatRam, StepOutcome};
//! let mut ram = FlatRam::new(1 << 20);
//! // mov ax, 0x1234 ; add ax, ax ; hlt   at 0000:0100
//! ram.load(0x100, &[0xB8, 0x34, 0x12, 0x01, 0xC0, 0xF4]);
//! let mut cpu = Cpu::new(CpuModel::P6);
//! cpu.state.set_real_mode_segment(oxide86_cpu::SegReg::Cs, 0);
//! cpu.state.eip = 0x100;
//! while cpu.step(&mut ram) == StepOutcome::Continue {}
//! assert_eq!(cpu.state.gpr[0] & 0xFFFF, 0x2468);
//! ```

pub(crate) mod block;
pub mod bus;
pub mod cpu;
pub mod debug;
pub mod decode;
pub mod descriptor;
pub mod exception;
pub mod flags;
pub mod host_watch;
pub mod interp;
pub mod interrupt;
pub mod jit_abi;
pub mod memory;
pub mod model;
pub mod paging;
pub mod perfmon;
pub mod state;
pub mod task;
#[cfg(test)]
mod testutil;
pub mod tlb;
pub mod transfer;
pub mod v86;
pub mod x87;

pub use bus::{Bus, FlatRam};
pub use cpu::{Cpu, StepOutcome};
pub use exception::Exception;
pub use flags::{Flags, LazyFlags, LazyOp};
pub use model::CpuModel;
pub use state::{CpuState, Reg, SegReg, SegmentCache};
