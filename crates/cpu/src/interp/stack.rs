//! Stack instructions: PUSH POP PUSHA/PUSHAD POPA/POPAD PUSHF/PUSHFD
//! POPF/POPFD ENTER LEAVE (Intel SDM Vol. 2A-2B).
//!
//! A fault part-way through a multi-push instruction restores ESP, so the
//! instruction can be restarted.

use super::operand::{op_width, seg_reg};
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::model::CpuModel;
use crate::state::{eflags, SegReg};
use crate::v86::InterruptFlag;
use iced_x86::{Instruction, OpKind};

/// Runs `f`, restoring ESP and EBP if it faults.
fn restartable<B: Bus + ?Sized, T>(
    cpu: &mut Cpu,
    bus: &mut B,
    f: impl FnOnce(&mut Cpu, &mut B) -> Result<T, Exception>,
) -> Result<T, Exception> {
    let (esp, ebp) = (cpu.state.gpr[4], cpu.state.gpr[5]);
    f(cpu, bus).inspect_err(|_| {
        cpu.state.gpr[4] = esp;
        cpu.state.gpr[5] = ebp;
    })
}

/// `PUSH r/m | imm | Sreg`.
pub fn push<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    if insn.op_kind(0) == OpKind::Register {
        if let Some(seg) = seg_reg(insn.op0_register()) {
            // A 32-bit push of a segment register moves ESP by 4 but writes
            // only the selector's 16 bits.
            let w = cpu.op_size();
            let sel = u32::from(cpu.state.seg[seg as usize].selector);
            let mask = cpu.stack_mask();
            let esp = cpu.state.gpr[4];
            let new_sp = esp.wrapping_sub(w) & mask;
            cpu.write_mem(bus, SegReg::Ss, new_sp, 2, sel)?;
            cpu.state.gpr[4] = (esp & !mask) | new_sp;
            return Ok(());
        }
    }
    let w = op_width(insn, 0);
    let mut v = cpu.read_op(insn, 0, bus)?;
    if cpu.state.model == CpuModel::I8086
        && insn.op_kind(0) == OpKind::Register
        && insn.op0_register() == iced_x86::Register::SP
    {
        v = v.wrapping_sub(2) & 0xFFFF; // the 8086 pushes the decremented SP
    }
    cpu.push(bus, v, w)
}

/// `POP r/m | Sreg` (8086: also POP CS). With ESP as a memory operand's
/// base, the address is computed after ESP is incremented.
pub fn pop<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    if insn.op_kind(0) == OpKind::Register {
        if let Some(mut seg) = seg_reg(insn.op0_register()) {
            if cpu.ctx.pop_cs {
                seg = SegReg::Cs;
            }
            let w = cpu.op_size();
            return restartable(cpu, bus, |cpu, bus| {
                let sel = cpu.pop(bus, w)? as u16;
                cpu.load_segment(bus, seg, sel)?;
                if seg == SegReg::Ss {
                    cpu.state.interrupt_shadow = true;
                }
                Ok(())
            });
        }
    }
    let w = op_width(insn, 0);
    restartable(cpu, bus, |cpu, bus| {
        let v = cpu.pop(bus, w)?;
        cpu.write_op(insn, 0, v, bus)
    })
}

/// `PUSHA`/`PUSHAD`: AX CX DX BX (original) SP BP SI DI.
pub fn pusha<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = cpu.op_size();
    let regs = cpu.state.gpr;
    restartable(cpu, bus, |cpu, bus| {
        for v in regs {
            cpu.push(bus, v, w)?;
        }
        Ok(())
    })
}

/// `POPA`/`POPAD`: DI SI BP (SP skipped) BX DX CX AX.
pub fn popa<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = cpu.op_size();
    let mut vals = [0u32; 8];
    restartable(cpu, bus, |cpu, bus| {
        for i in (0..8).rev() {
            vals[i] = cpu.pop(bus, w)?;
        }
        Ok(())
    })?;
    for (i, v) in vals.iter().enumerate() {
        if i != 4 {
            cpu.state.set_reg(crate::interp::stack::reg(i), w, *v);
        }
    }
    Ok(())
}

/// The general register with encoding `i`.
pub(crate) fn reg(i: usize) -> crate::state::Reg {
    use crate::state::Reg::*;
    [Eax, Ecx, Edx, Ebx, Esp, Ebp, Esi, Edi][i & 7]
}

/// `PUSHF`/`PUSHFD` (VM and RF read as 0 in the pushed image). In V86
/// mode with IOPL < 3: #GP(0), or with CR4.VME and a 16-bit operand the
/// image with IOPL 3 and IF = VIF (SDM Vol. 3A, 20.4).
pub fn pushf<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = cpu.op_size();
    let f = match cpu.v86_flags_target(w)? {
        InterruptFlag::Real => cpu.flags_image() & !(eflags::VM | eflags::RF),
        InterruptFlag::Virtual => cpu.virtual_flags_image(),
    };
    cpu.push(bus, f, w)
}

/// `POPF`/`POPFD`. In V86 mode with IOPL < 3: #GP(0), or with CR4.VME and
/// a 16-bit operand IF goes to VIF (#GP(0) if TF is set or IF with VIP).
pub fn popf<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = cpu.op_size();
    let target = cpu.v86_flags_target(w)?;
    let v = cpu.peek_stack(bus, 0, w)?;
    match target {
        InterruptFlag::Real => cpu.load_flags(v, w),
        InterruptFlag::Virtual => cpu.load_virtual_flags(v)?,
    }
    cpu.pop(bus, w)?;
    Ok(())
}

/// `ENTER imm16, imm8`: make a stack frame with `imm8 mod 32` nesting levels.
pub fn enter<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let alloc = u32::from(insn.immediate16());
    let level = u32::from(insn.immediate8_2nd()) % 32;
    let w = cpu.op_size();
    let smask = cpu.stack_mask();
    restartable(cpu, bus, |cpu, bus| {
        let ebp = cpu.state.gpr[5];
        cpu.push(bus, ebp, w)?;
        let frame = cpu.state.gpr[4] & smask;
        if level > 0 {
            let mut bp = ebp;
            for _ in 1..level {
                bp = (bp & !smask) | (bp.wrapping_sub(w) & smask);
                let v = cpu.read_mem(bus, SegReg::Ss, bp & smask, w)?;
                cpu.push(bus, v, w)?;
            }
            cpu.push(bus, frame, w)?;
        }
        let esp = cpu.state.gpr[4];
        let new_sp = esp.wrapping_sub(alloc) & smask;
        // The final ESP must be writable (the 386+ check the new frame).
        if cpu.state.model != CpuModel::I8086 && alloc > 0 {
            cpu.check_write(bus, SegReg::Ss, new_sp, 1)?;
        }
        cpu.state.set_reg(crate::state::Reg::Ebp, w, frame);
        cpu.state.gpr[4] = (esp & !smask) | new_sp;
        Ok(())
    })
}

/// `LEAVE`: ESP = EBP, then pop EBP.
pub fn leave<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = cpu.op_size();
    let smask = cpu.stack_mask();
    restartable(cpu, bus, |cpu, bus| {
        let ebp = cpu.state.gpr[5];
        cpu.state.gpr[4] = (cpu.state.gpr[4] & !smask) | (ebp & smask);
        let v = cpu.pop(bus, w)?;
        cpu.state.set_reg(crate::state::Reg::Ebp, w, v);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use crate::testutil::{run16, run32};
    use crate::{Bus, CpuModel};
    use iced_x86::code_asm::*;

    #[test]
    fn push_sp_differs_on_8086() {
        let (s, mut ram) = run16(CpuModel::I8086, |a| a.push(sp), |_, _| {});
        assert_eq!(s.gpr[4] & 0xFFFF, 0x7FFE);
        assert_eq!(ram.read_u16(0x7FFE), 0x7FFE);
        let (_, mut ram) = run16(CpuModel::I286, |a| a.push(sp), |_, _| {});
        assert_eq!(ram.read_u16(0x7FFE), 0x8000);
    }

    #[test]
    fn pusha_popa_round_trip() {
        let s = run32(
            |a| {
                a.pushad()?;
                a.xor(eax, eax)?;
                a.xor(edi, edi)?;
                a.popad()
            },
            |s| {
                s.gpr[0] = 1;
                s.gpr[7] = 7;
            },
        );
        assert_eq!((s.gpr[0], s.gpr[7], s.gpr[4]), (1, 7, 0x8000));
    }

    #[test]
    fn enter_leave_nested() {
        let s = run32(
            |a| {
                a.enter(16, 2)?;
                a.mov(ecx, esp)?;
                a.mov(edx, ebp)?;
                a.leave()
            },
            |s| s.gpr[5] = 0x9000,
        );
        // push ebp (0x7FFC), copy one level (0x7FF8), push frame (0x7FF4), alloc 16.
        assert_eq!(s.gpr[2], 0x7FFC);
        assert_eq!(s.gpr[1], 0x7FF4 - 16);
        assert_eq!((s.gpr[4], s.gpr[5]), (0x8000, 0x9000));
    }
}
