//! x87 transcendental instructions.

use crate::cpu::Cpu;
use crate::exception::Exception;
use iced_x86::Instruction;

/// FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1.
pub fn execute(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Exception> {
    Err(cpu.note_unimplemented(insn))
}
