//! Flag control: CLC STC CMC CLD STD CLI STI (Intel SDM Vol. 2A-2B).
//!
//! CLI/STI need CPL <= IOPL in protected mode (virtual-interrupt
//! extensions come with the system ISA). STI enables interrupts only after
//! the next instruction.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::Flags;
use crate::state::eflags::{CF, DF, IF, IOPL};
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

/// #GP(0) unless the current privilege may change IF.
fn check_iopl(cpu: &Cpu) -> Result<(), Exception> {
    let s = &cpu.state;
    if s.cr0 & crate::state::cr0::PE != 0 && u32::from(s.cpl()) > (s.eflags & IOPL) >> 12 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(())
}

/// `CLI`.
pub fn cli<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    check_iopl(cpu)?;
    cpu.state.eflags &= !IF;
    Ok(())
}

/// `STI`: sets IF; a maskable interrupt is recognised only after the next
/// instruction.
pub fn sti<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    check_iopl(cpu)?;
    if cpu.state.eflags & IF == 0 {
        cpu.state.interrupt_shadow = true;
    }
    cpu.state.eflags |= IF;
    Ok(())
}
