//! Control transfer: JMP Jcc JCXZ/JECXZ LOOP/LOOPE/LOOPNE CALL RET RETF
//! INT n/INT3/INTO/INT1 IRET BOUND (Intel SDM Vol. 2A-2B).
//!
//! Branch targets are checked against the CS limit (#GP(0)) before anything
//! is pushed. Far transfers and IRET here are the real-mode and
//! virtual-8086 forms; protected-mode gates and privilege changes belong to
//! the system ISA.

use super::condition_nibble;
use super::operand::op_width;
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::Flags;
use crate::interrupt::Source;
use crate::model::CpuModel;
use crate::state::{eflags, SegReg};
use iced_x86::{Instruction, MemorySize, Mnemonic, OpKind};

impl Cpu {
    /// Sets the next EIP to `target` after checking it against CS's limit.
    #[inline]
    pub fn branch_to(&mut self, target: u32) -> Result<(), Exception> {
        if self.state.model != CpuModel::I8086 && target > self.state.seg[SegReg::Cs as usize].limit
        {
            return Err(Exception::GeneralProtection(0));
        }
        self.ctx.next_eip = target;
        Ok(())
    }

    /// The target of a relative branch: iced decoded at IP 0, so its target
    /// is relative to the instruction's start and wrapped to the operand size.
    #[inline]
    pub fn relative_target(&self, insn: &Instruction) -> u32 {
        let t = self
            .ctx
            .start_eip
            .wrapping_add(insn.near_branch_target() as u32);
        match insn.op_kind(0) {
            OpKind::NearBranch16 => t & 0xFFFF,
            _ => t,
        }
    }

    /// A far JMP or CALL to `selector:offset`.
    fn far_transfer<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        selector: u16,
        offset: u32,
        width: u32,
        call: bool,
    ) -> Result<(), Exception> {
        if self.state.protected_mode() {
            return self.far_transfer_protected(bus, selector, offset, width, call);
        }
        if self.state.model != CpuModel::I8086 && offset > 0xFFFF {
            return Err(Exception::GeneralProtection(0));
        }
        if call {
            let cs = u32::from(self.state.seg[SegReg::Cs as usize].selector);
            let esp = self.state.gpr[4];
            let ret = self.ctx.next_eip;
            if let Err(e) = self
                .push(bus, cs, width)
                .and_then(|_| self.push(bus, ret, width))
            {
                self.state.gpr[4] = esp;
                return Err(e);
            }
        }
        self.load_segment(bus, SegReg::Cs, selector)?;
        self.ctx.next_eip = offset;
        Ok(())
    }
}

/// Reads a far pointer operand (ptr16:16/32 immediate or m16:16/32).
fn far_pointer<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(u16, u32, u32), Exception> {
    match insn.op_kind(0) {
        OpKind::FarBranch16 => Ok((
            insn.far_branch_selector(),
            u32::from(insn.far_branch16()),
            2,
        )),
        OpKind::FarBranch32 => Ok((insn.far_branch_selector(), insn.far_branch32(), 4)),
        _ => {
            let w = if insn.memory_size() == MemorySize::SegPtr32 {
                4
            } else {
                2
            };
            let off = cpu.read_mem_operand(insn, 0, w, bus)?;
            let sel = cpu.read_mem_operand(insn, w, 2, bus)? as u16;
            Ok((sel, off, w))
        }
    }
}

fn is_far(insn: &Instruction) -> bool {
    matches!(insn.op_kind(0), OpKind::FarBranch16 | OpKind::FarBranch32)
        || (insn.op_kind(0) == OpKind::Memory
            && matches!(
                insn.memory_size(),
                MemorySize::SegPtr16 | MemorySize::SegPtr32
            ))
}

/// `JMP rel | r/m | ptr16:16/32 | m16:16/32`.
pub fn jmp<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    if is_far(insn) {
        let (sel, off, w) = far_pointer(cpu, insn, bus)?;
        return cpu.far_transfer(bus, sel, off, w, false);
    }
    let target = match insn.op_kind(0) {
        OpKind::NearBranch16 | OpKind::NearBranch32 => cpu.relative_target(insn),
        _ => cpu.read_op(insn, 0, bus)?,
    };
    cpu.branch_to(target)
}

/// `Jcc rel`.
pub fn jcc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    if cpu.state.condition(condition_nibble(insn)) {
        let t = cpu.relative_target(insn);
        cpu.branch_to(t)?;
    }
    Ok(())
}

/// `JCXZ`/`JECXZ rel8`.
pub fn jcxz<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let count = if insn.mnemonic() == Mnemonic::Jecxz {
        cpu.state.gpr[1]
    } else {
        cpu.state.gpr[1] & 0xFFFF
    };
    if count == 0 {
        let t = cpu.relative_target(insn);
        cpu.branch_to(t)?;
    }
    Ok(())
}

/// `LOOP`/`LOOPE`/`LOOPNE rel8`: decrement CX or ECX (by address size)
/// without touching flags, then branch while non-zero (and ZF agrees).
pub fn loop_<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let mask = cpu.addr_mask();
    let ecx = cpu.state.gpr[1];
    let count = ecx.wrapping_sub(1) & mask;
    let take = count != 0
        && match insn.mnemonic() {
            Mnemonic::Loope => cpu.state.zf(),
            Mnemonic::Loopne => !cpu.state.zf(),
            _ => true,
        };
    if take {
        let t = cpu.relative_target(insn);
        cpu.branch_to(t)?;
    }
    cpu.state.gpr[1] = (ecx & !mask) | count;
    Ok(())
}

/// `CALL rel | r/m | ptr16:16/32 | m16:16/32`.
pub fn call<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    if is_far(insn) {
        let (sel, off, w) = far_pointer(cpu, insn, bus)?;
        return cpu.far_transfer(bus, sel, off, w, true);
    }
    let (target, w) = match insn.op_kind(0) {
        OpKind::NearBranch16 => (cpu.relative_target(insn), 2),
        OpKind::NearBranch32 => (cpu.relative_target(insn), 4),
        _ => (cpu.read_op(insn, 0, bus)?, op_width(insn, 0)),
    };
    let ret = cpu.ctx.next_eip;
    if cpu.state.model != CpuModel::I8086 && target > cpu.state.seg[SegReg::Cs as usize].limit {
        return Err(Exception::GeneralProtection(0));
    }
    cpu.push(bus, ret, w)?;
    cpu.ctx.next_eip = target;
    Ok(())
}

/// `RET [imm16]`: pop EIP, then release imm16 bytes of parameters.
pub fn ret<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = cpu.op_size();
    let target = cpu.peek_stack(bus, 0, w)?;
    cpu.branch_to(target)?;
    let release = if insn.op_count() > 0 {
        u32::from(insn.immediate16())
    } else {
        0
    };
    let mask = cpu.stack_mask();
    let esp = cpu.state.gpr[4];
    cpu.state.gpr[4] = (esp & !mask) | (esp.wrapping_add(w).wrapping_add(release) & mask);
    Ok(())
}

/// `RETF [imm16]`: pop EIP and CS (protected mode: with the privilege checks).
pub fn retf<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = cpu.op_size();
    if cpu.state.protected_mode() {
        let release = if insn.op_count() > 0 {
            u32::from(insn.immediate16())
        } else {
            0
        };
        return cpu.far_return_protected(bus, w, release);
    }
    let offset = cpu.peek_stack(bus, 0, w)?;
    let selector = cpu.peek_stack(bus, w, 2)? as u16;
    if cpu.state.model != CpuModel::I8086 && offset > 0xFFFF {
        return Err(Exception::GeneralProtection(0));
    }
    cpu.load_segment(bus, SegReg::Cs, selector)?;
    cpu.ctx.next_eip = offset;
    let release = if insn.op_count() > 0 {
        u32::from(insn.immediate16())
    } else {
        0
    };
    let mask = cpu.stack_mask();
    let esp = cpu.state.gpr[4];
    cpu.state.gpr[4] = (esp & !mask) | (esp.wrapping_add(2 * w).wrapping_add(release) & mask);
    Ok(())
}

/// Delivers a software interrupt whose saved EIP is the next instruction.
fn software_interrupt<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    bus: &mut B,
    vector: u8,
) -> Result<(), Exception> {
    let ret = cpu.ctx.next_eip;
    cpu.enter_interrupt(bus, vector, ret, Source::Software)?;
    cpu.ctx.next_eip = cpu.state.eip;
    Ok(())
}

/// `INT imm8` (virtual-8086 mode needs IOPL 3, else #GP(0)).
pub fn int<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let vector = insn.immediate8();
    if cpu.v86() {
        // CR4.VME: a clear bit in the TSS redirection bitmap sends INT n to
        // the V86 task's own vector table (SDM Vol. 3A, 20.3.3).
        if cpu.state.cr4 & crate::paging::cr4::VME != 0 && cpu.int_redirected(bus, vector)? {
            let ret = cpu.ctx.next_eip;
            return cpu.v86_redirect_interrupt(bus, vector, ret);
        }
        if cpu.iopl() != 3 {
            return Err(Exception::GeneralProtection(0));
        }
    }
    software_interrupt(cpu, bus, vector)
}

/// `INT3`.
pub fn int3<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    software_interrupt(cpu, bus, 3)
}

/// `INT1` (ICEBP, F1): delivered like #DB, without the gate DPL check.
pub fn int1<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let ret = cpu.ctx.next_eip;
    cpu.enter_interrupt(bus, 1, ret, Source::Icebp)?;
    cpu.ctx.next_eip = cpu.state.eip;
    Ok(())
}

/// `INTO`: interrupt 4 when OF is set.
pub fn into<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    if cpu.state.of() {
        software_interrupt(cpu, bus, 4)?;
    }
    Ok(())
}

/// `IRET`/`IRETD`: pop EIP, CS and FLAGS. Virtual-8086 mode needs IOPL 3
/// (#GP(0) otherwise); protected mode goes through the descriptor checks.
pub fn iret<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = cpu.op_size();
    cpu.state.nmi_blocked = false; // IRET ends NMI blocking (SDM Vol. 3A, 6.7.1)
    if cpu.state.protected_mode() {
        return cpu.iret_protected(bus, w);
    }
    let target = cpu.v86_flags_target(w)?;
    let offset = cpu.peek_stack(bus, 0, w)?;
    let selector = cpu.peek_stack(bus, w, 2)? as u16;
    let flags = cpu.peek_stack(bus, 2 * w, w)?;
    if target == crate::v86::InterruptFlag::Virtual {
        // VME: check the image before anything changes (SDM Vol. 2A, IRET).
        let vip = cpu.state.eflags & eflags::VIP != 0;
        if flags & eflags::TF != 0 || (flags & eflags::IF != 0 && vip) {
            return Err(Exception::GeneralProtection(0));
        }
    }
    if cpu.state.model != CpuModel::I8086 && offset > 0xFFFF {
        return Err(Exception::GeneralProtection(0));
    }
    cpu.load_segment(bus, SegReg::Cs, selector)?;
    cpu.ctx.next_eip = offset;
    let mask = cpu.stack_mask();
    let esp = cpu.state.gpr[4];
    cpu.state.gpr[4] = (esp & !mask) | (esp.wrapping_add(3 * w) & mask);
    match target {
        crate::v86::InterruptFlag::Real => cpu.load_flags(flags, w),
        crate::v86::InterruptFlag::Virtual => cpu.load_virtual_flags(flags)?,
    }
    Ok(())
}

/// `BOUND r, m`: #BR unless lower <= index <= upper (signed).
pub fn bound<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = op_width(insn, 0);
    let sext = |v: u32| {
        if w == 2 {
            i32::from(v as u16 as i16)
        } else {
            v as i32
        }
    };
    let index = sext(cpu.read_op(insn, 0, bus)?);
    let lower = sext(cpu.read_mem_operand(insn, 0, w, bus)?);
    let upper = sext(cpu.read_mem_operand(insn, w, w, bus)?);
    if index < lower || index > upper {
        return Err(Exception::BoundRange);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testutil::{run16, run32};
    use crate::{Bus, CpuModel};
    use iced_x86::code_asm::*;

    #[test]
    fn call_and_ret_round_trip() {
        let s = run32(
            |a| {
                let mut f = a.create_label();
                let mut done = a.create_label();
                a.call(f)?;
                a.jmp(done)?;
                a.set_label(&mut f)?;
                a.mov(eax, 42)?;
                a.ret()?;
                a.set_label(&mut done)?;
                Ok(())
            },
            |_| {},
        );
        assert_eq!(s.gpr[0], 42);
        assert_eq!(s.gpr[4], 0x8000);
    }

    #[test]
    fn loop_counts_cx() {
        let s = run32(
            |a| {
                let mut top = a.create_label();
                a.set_label(&mut top)?;
                a.inc(eax)?;
                a.loop_(top)
            },
            |s| s.gpr[1] = 5,
        );
        assert_eq!((s.gpr[0], s.gpr[1]), (5, 0));
    }

    #[test]
    fn int_pushes_flags_cs_ip_and_iret_returns() {
        let (s, mut ram) = run16(
            CpuModel::P6,
            |a| {
                a.int(0x21)?;
                a.mov(bx, 7)
            },
            |_, ram| {
                // Vector 0x21 -> 0000:2000, which does `mov ax, 5; iret`.
                ram.load(0x21 * 4, &[0x00, 0x20, 0x00, 0x00]);
                ram.load(0x2000, &[0xB8, 0x05, 0x00, 0xCF]);
            },
        );
        assert_eq!((s.gpr[0] & 0xFFFF, s.gpr[3] & 0xFFFF), (5, 7));
        assert_eq!(s.gpr[4] & 0xFFFF, 0x8000);
        assert_eq!(ram.read_u16(0x7FFA), 0x1002); // saved IP = next instruction
    }

    #[test]
    fn bound_out_of_range_faults() {
        let (s, _) = run16(
            CpuModel::P6,
            |a| a.bound(ax, dword_ptr(0x3000)),
            |s, ram| {
                ram.load(0x3000, &[0x00, 0x00, 0x10, 0x00]); // 0..=16
                ram.load(5 * 4, &[0x00, 0x20, 0x00, 0x00]);
                ram.load(0x2000, &[0xF4]);
                s.gpr[0] = 17;
            },
        );
        assert_eq!(s.eip, 0x2001);
    }
}
