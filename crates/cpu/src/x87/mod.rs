//! The x87 floating-point unit (Intel SDM Vol. 1, chapter 8 "Programming
//! with the x87 FPU").

/// An 80-bit double-extended value as stored in an x87 register
/// (SDM Vol. 1, 4.2.2): explicit integer bit in `signif`, 15-bit biased
/// exponent and the sign in `sign_exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct F80 {
    /// Significand, bit 63 is the explicit integer bit.
    pub signif: u64,
    /// Bit 15 sign, bits 0-14 biased exponent.
    pub sign_exp: u16,
}

/// The x87 register file and environment (SDM Vol. 1, 8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FpuState {
    /// Physical registers R0-R7 (ST(i) is R[(TOP + i) mod 8]).
    pub regs: [F80; 8],
    /// Control word (FCW).
    pub control: u16,
    /// Status word (FSW) with TOP in bits 11-13.
    pub status: u16,
    /// Full tag word, two bits per physical register (11 = empty).
    pub tag: u16,
    /// Opcode of the last non-control instruction (11 bits).
    pub last_opcode: u16,
    /// FPU instruction pointer offset.
    pub last_ip: u32,
    /// FPU instruction pointer selector.
    pub last_cs: u16,
    /// FPU data pointer selector.
    pub last_ds: u16,
    /// FPU data pointer offset.
    pub last_dp: u32,
    /// MXCSR as FXSAVE stores it.
    pub mxcsr: u32,
}

impl Default for FpuState {
    /// The state after FNINIT (SDM Vol. 1, 8.1.10, table 8-1? see FINIT).
    fn default() -> Self {
        Self {
            regs: [F80::default(); 8],
            control: 0x037F,
            status: 0,
            tag: 0xFFFF,
            last_opcode: 0,
            last_ip: 0,
            last_cs: 0,
            last_ds: 0,
            last_dp: 0,
            mxcsr: 0x1F80,
        }
    }
}

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use iced_x86::Instruction;

/// Executes an x87 instruction; anything else is #UD.
pub fn execute<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let _ = bus;
    Err(cpu.note_unimplemented(insn))
}
