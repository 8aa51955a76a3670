//! Flag control: CLC STC CMC CLD STD CLI STI (Intel SDM Vol. 2A-2B).
//!
//! CLI/STI need CPL <= IOPL in protected mode, or act on VIF under
//! CR4.VME/PVI (see [`crate::v86`]). STI enables interrupts only after
//! the next instruction.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::Flags;
use crate::state::eflags::{CF, DF, IF, VIF, VIP};
use crate::v86::InterruptFlag;
use iced_x86::Instruction;

/// `CLC`.
pub fn clc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    cpu.state.set_status(CF, 0);
    Ok(())
}

/// `STC`.
pub fn stc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    cpu.state.set_status(CF, CF);
    Ok(())
}

/// `CMC`.
pub fn cmc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let cf = cpu.state.cf();
    cpu.state.set_status(CF, if cf { 0 } else { CF });
    Ok(())
}

/// `CLD`.
pub fn cld<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    cpu.state.eflags &= !DF;
    Ok(())
}

/// `STD`.
pub fn std<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    cpu.state.eflags |= DF;
    Ok(())
}

/// `CLI`: clears IF, or VIF under VME/PVI when IOPL is below CPL
/// (SDM Vol. 2A "CLI"); #GP(0) otherwise.
pub fn cli<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    match cpu.cli_sti_target()? {
        InterruptFlag::Real => cpu.state.eflags &= !IF,
        InterruptFlag::Virtual => cpu.state.eflags &= !VIF,
    }
    Ok(())
}

/// `STI`: sets IF; a maskable interrupt is recognised only after the next
/// instruction. Under VME/PVI with IOPL below CPL it sets VIF instead, or
/// raises #GP(0) while VIP is set (SDM Vol. 2B "STI").
pub fn sti<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    match cpu.cli_sti_target()? {
        InterruptFlag::Real => {
            if cpu.state.eflags & IF == 0 {
                cpu.state.interrupt_shadow = true;
            }
            cpu.state.eflags |= IF;
        }
        InterruptFlag::Virtual => {
            if cpu.state.eflags & VIP != 0 {
                return Err(Exception::GeneralProtection(0));
            }
            cpu.state.eflags |= VIF;
        }
    }
    Ok(())
}
