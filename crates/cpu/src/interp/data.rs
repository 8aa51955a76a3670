//! Data movement: MOV MOVZX MOVSX LEA XCHG XLAT LAHF SAHF CBW/CWDE CWD/CDQ
//! BSWAP CMOVcc SETcc CMPXCHG CMPXCHG8B XADD SALC (Intel SDM Vol. 2A-2B).

use super::operand::{op_width, seg_reg};
use super::{condition_nibble, width_and_mask};
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::{Flags, LazyOp};
use crate::model::CpuModel;
use crate::state::eflags::{AF, CF, PF, SF, ZF};
use crate::state::{Reg, SegReg};
use iced_x86::{Instruction, OpKind};

/// `MOV dst, src`, including the segment-register and moffs forms.
pub fn mov<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    if insn.op_kind(0) == OpKind::Register {
        if let Some(seg) = seg_reg(insn.op0_register()) {
            return mov_to_segment(cpu, insn, seg, bus);
        }
    }
    if insn.op_kind(1) == OpKind::Register {
        if let Some(seg) = seg_reg(insn.op1_register()) {
            let seg = segment_operand(cpu, seg)?;
            let v = u32::from(cpu.state.seg[seg as usize].selector);
            return cpu.write_op(insn, 0, v, bus);
        }
    }
    let v = cpu.read_op(insn, 1, bus)?;
    cpu.write_op(insn, 0, v, bus)
}

/// The segment register a ModRM Sreg field names on this model: the 8086
/// decodes only two bits (4-7 alias 0-3); the 286 has no FS/GS (#UD).
fn segment_operand(cpu: &Cpu, seg: SegReg) -> Result<SegReg, Exception> {
    match (cpu.state.model, seg) {
        (CpuModel::I8086, SegReg::Fs) => Ok(SegReg::Es),
        (CpuModel::I8086, SegReg::Gs) => Ok(SegReg::Cs),
        (CpuModel::I286, SegReg::Fs | SegReg::Gs) => Err(Exception::InvalidOpcode),
        _ => Ok(seg),
    }
}

fn mov_to_segment<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    seg: SegReg,
    bus: &mut B,
) -> Result<(), Exception> {
    let seg = segment_operand(cpu, seg)?;
    if seg == SegReg::Cs && cpu.state.model != CpuModel::I8086 {
        return Err(Exception::InvalidOpcode);
    }
    let v = cpu.read_op(insn, 1, bus)? as u16;
    cpu.load_segment(bus, seg, v)?;
    if seg == SegReg::Ss {
        cpu.state.interrupt_shadow = true;
    }
    Ok(())
}

/// `MOVZX dst, src`.
pub fn movzx<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let v = cpu.read_op(insn, 1, bus)?;
    cpu.write_op(insn, 0, v, bus)
}

/// `MOVSX dst, src`.
pub fn movsx<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = op_width(insn, 1);
    let v = cpu.read_op(insn, 1, bus)?;
    let shift = 32 - 8 * w;
    cpu.write_op(insn, 0, (((v << shift) as i32) >> shift) as u32, bus)
}

/// `LEA dst, m`: the offset, truncated to the operand size.
pub fn lea<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let off = cpu.effective_offset(insn);
    cpu.write_op(insn, 0, off, bus)
}

/// `XCHG a, b` (with memory it is implicitly locked).
pub fn xchg<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let a = cpu.read_op(insn, 0, bus)?;
    let b = cpu.read_op(insn, 1, bus)?;
    if insn.op_kind(1) == OpKind::Memory {
        cpu.write_op(insn, 1, a, bus)?;
        cpu.write_op(insn, 0, b, bus)
    } else {
        cpu.write_op(insn, 0, b, bus)?;
        cpu.write_op(insn, 1, a, bus)
    }
}

/// `XLAT`: AL = [seg:BX+AL] (EBX with 32-bit addressing).
pub fn xlat<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let v = cpu.read_op(insn, 0, bus)?;
    cpu.state.set_reg(Reg::Eax, 1, v);
    Ok(())
}

/// `LAHF`: AH = SF:ZF:0:AF:0:PF:1:CF.
pub fn lahf<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let f = cpu.flags_image() & 0xFF;
    cpu.state.gpr[0] = (cpu.state.gpr[0] & !0xFF00) | (f << 8);
    Ok(())
}

/// `SAHF`: SF ZF AF PF CF = AH.
pub fn sahf<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let ah = (cpu.state.gpr[0] >> 8) & 0xFF;
    cpu.state.set_status(SF | ZF | AF | PF | CF, ah);
    Ok(())
}

/// `CBW`/`CWDE`: sign-extend AL into AX or AX into EAX.
pub fn cbw<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    if cpu.ctx.op32 {
        cpu.state.gpr[0] = cpu.state.gpr[0] as u16 as i16 as i32 as u32;
    } else {
        let v = cpu.state.gpr[0] as u8 as i8 as i16 as u16;
        cpu.state.set_reg(Reg::Eax, 2, u32::from(v));
    }
    Ok(())
}

/// `CWD`/`CDQ`: DX or EDX = sign of AX or EAX.
pub fn cwd<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let w = cpu.op_size();
    let sign = cpu.state.reg(Reg::Eax, w) & crate::flags::sign_bit(w) != 0;
    cpu.state
        .set_reg(Reg::Edx, w, if sign { 0xFFFF_FFFF } else { 0 });
    Ok(())
}

/// `BSWAP r32` (with a 16-bit operand the result is undefined; P6 gives 0).
pub fn bswap<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let v = cpu.read_op(insn, 0, bus)?;
    let r = if op_width(insn, 0) == 4 {
        v.swap_bytes()
    } else {
        0
    };
    cpu.write_op(insn, 0, r, bus)
}

/// `CMOVcc dst, src`: the source is read (and may fault) even when the
/// condition is false; a 32-bit destination is written either way in
/// 64-bit mode only, so here nothing changes when false.
pub fn cmovcc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let v = cpu.read_op(insn, 1, bus)?;
    if cpu.state.condition(condition_nibble(insn)) {
        cpu.write_op(insn, 0, v, bus)?;
    }
    Ok(())
}

/// `SETcc dst8`.
pub fn setcc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let v = u32::from(cpu.state.condition(condition_nibble(insn)));
    cpu.write_op(insn, 0, v, bus)
}

/// `SALC` (undocumented D6): AL = CF ? 0xFF : 0.
pub fn salc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let v = if cpu.state.cf() { 0xFF } else { 0 };
    cpu.state.set_reg(Reg::Eax, 1, v);
    Ok(())
}

/// `CMPXCHG dst, src`: compare the accumulator with dst; equal: dst = src,
/// else accumulator = dst. The destination is always written (the old value
/// when the compare fails), so a read-only page faults either way.
pub fn cmpxchg<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let dst = cpu.read_op(insn, 0, bus)?;
    let src = cpu.read_op(insn, 1, bus)?;
    let acc = cpu.state.reg(Reg::Eax, w);
    let equal = acc == dst;
    if equal {
        cpu.write_op(insn, 0, src, bus)?;
    } else {
        if insn.op_kind(0) == OpKind::Memory {
            cpu.write_op(insn, 0, dst, bus)?;
        }
        cpu.state.set_reg(Reg::Eax, w, dst);
    }
    cpu.state
        .set_lazy(LazyOp::Sub, w, acc, dst, acc.wrapping_sub(dst) & mask);
    Ok(())
}

/// `CMPXCHG8B m64`: compare EDX:EAX with m64; equal: m64 = ECX:EBX, ZF = 1;
/// else EDX:EAX = m64 (written back unchanged), ZF = 0.
pub fn cmpxchg8b<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let seg = cpu.memory_segment(insn);
    let off = cpu.effective_offset(insn);
    let mask = cpu.addr_mask();
    let lo = cpu.read_mem(bus, seg, off, 4)?;
    let hi = cpu.read_mem(bus, seg, off.wrapping_add(4) & mask, 4)?;
    let s = &cpu.state;
    let equal = lo == s.gpr[0] && hi == s.gpr[2];
    let (new_lo, new_hi) = if equal {
        (s.gpr[3], s.gpr[1])
    } else {
        (lo, hi)
    };
    cpu.check_write(bus, seg, off, 4)?;
    cpu.check_write(bus, seg, off.wrapping_add(4) & mask, 4)?;
    cpu.write_mem(bus, seg, off, 4, new_lo)?;
    cpu.write_mem(bus, seg, off.wrapping_add(4) & mask, 4, new_hi)?;
    if !equal {
        cpu.state.gpr[0] = lo;
        cpu.state.gpr[2] = hi;
    }
    cpu.state.set_status(ZF, crate::flags::flag_if(equal, ZF));
    Ok(())
}

/// `XADD dst, src`: src = old dst, dst = sum.
pub fn xadd<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let b = cpu.read_op(insn, 1, bus)?;
    let r = a.wrapping_add(b) & mask;
    if insn.op_kind(0) == OpKind::Memory {
        cpu.write_op(insn, 0, r, bus)?;
        cpu.write_op(insn, 1, a, bus)?;
    } else {
        cpu.write_op(insn, 1, a, bus)?;
        cpu.write_op(insn, 0, r, bus)?;
    }
    cpu.state.set_lazy(LazyOp::Add, w, a, b, r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::state::eflags;
    use crate::testutil::run32;
    use iced_x86::code_asm::*;

    #[test]
    fn cmpxchg_success_and_failure() {
        let s = run32(
            |a| a.cmpxchg(ebx, ecx),
            |s| {
                s.gpr[0] = 5;
                s.gpr[3] = 5;
                s.gpr[1] = 9;
            },
        );
        assert_eq!(s.gpr[3], 9);
        assert_ne!(s.eflags & eflags::ZF, 0);
        let s = run32(
            |a| a.cmpxchg(ebx, ecx),
            |s| {
                s.gpr[0] = 4;
                s.gpr[3] = 5;
            },
        );
        assert_eq!(s.gpr[0], 5);
        assert_eq!(s.eflags & eflags::ZF, 0);
    }

    #[test]
    fn xadd_swaps_and_adds() {
        let s = run32(
            |a| a.xadd(eax, ebx),
            |s| {
                s.gpr[0] = 2;
                s.gpr[3] = 3;
            },
        );
        assert_eq!((s.gpr[0], s.gpr[3]), (5, 2));
    }

    #[test]
    fn movsx_and_cwd() {
        let s = run32(
            |a| {
                a.movsx(eax, bl)?;
                a.cdq()
            },
            |s| s.gpr[3] = 0x80,
        );
        assert_eq!((s.gpr[0], s.gpr[2]), (0xFFFF_FF80, 0xFFFF_FFFF));
    }

    #[test]
    fn cmpxchg8b_memory() {
        let s = run32(
            |a| {
                a.mov(dword_ptr(0x3000), 7)?;
                a.mov(dword_ptr(0x3004), 8)?;
                a.cmpxchg8b(qword_ptr(0x3000))?;
                a.mov(esi, dword_ptr(0x3000))
            },
            |s| {
                s.gpr[0] = 7;
                s.gpr[2] = 8;
                s.gpr[3] = 0x11;
                s.gpr[1] = 0x22;
            },
        );
        assert_eq!(s.gpr[6], 0x11);
        assert_ne!(s.eflags & eflags::ZF, 0);
    }
}
