//! The x87 environment and control instructions (Intel SDM Vol. 1, 8.1.10
//! "Saving the x87 FPU's State with FSTENV/FNSTENV and FSAVE/FNSAVE",
//! figures 8-9 to 8-12 (the 32- and 16-bit, protected- and real-mode
//! layouts), 8.3.12 "x87 FPU Control Instructions", 10.5.1 / table 10-2
//! "FXSAVE Area"; Vol. 2A FINIT/FNINIT, FCLEX/FNCLEX, FLDCW, FSTCW/FNSTCW,
//! FSTSW/FNSTSW, FLDENV, FSTENV/FNSTENV, FSAVE/FNSAVE, FRSTOR, FXSAVE,
//! FXRSTOR).

use super::convert::{read_bytes, write_bytes};
use super::{sw, tag, F80};
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::interp::operand::write_gpr;
use iced_x86::{Instruction, OpKind};

/// Which of the four FSTENV layouts the current mode and operand size use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Real16,
    Prot16,
    Real32,
    Prot32,
}

impl Layout {
    fn current(cpu: &Cpu) -> Layout {
        match (cpu.ctx.op32, cpu.state.protected_mode()) {
            (false, false) => Layout::Real16,
            (false, true) => Layout::Prot16,
            (true, false) => Layout::Real32,
            (true, true) => Layout::Prot32,
        }
    }
    fn size(self) -> u32 {
        match self {
            Layout::Real16 | Layout::Prot16 => 14,
            _ => 28,
        }
    }
}

/// `FNINIT` / `FINIT`.
pub fn finit<B: Bus + ?Sized>(cpu: &mut Cpu, bus: &mut B) -> Result<(), Exception> {
    cpu.state.fpu.init();
    bus.fpu_error(false);
    Ok(())
}

/// `FNCLEX` / `FCLEX`: clears the exception flags, SF, ES and B.
pub fn fclex<B: Bus + ?Sized>(cpu: &mut Cpu, bus: &mut B) -> Result<(), Exception> {
    cpu.state.fpu.status &= !(0x7F | sw::ES | sw::B);
    bus.fpu_error(false);
    Ok(())
}

/// `FLDCW m16`: a pending exception it unmasks becomes an error (ES set).
pub fn fldcw<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let v = cpu.read_mem_operand(insn, 0, 2, bus)? as u16;
    set_control(cpu, v, bus);
    Ok(())
}

fn set_control<B: Bus + ?Sized>(cpu: &mut Cpu, v: u16, bus: &mut B) {
    let fpu = &mut cpu.state.fpu;
    // Bit 6 reads as one; bits 13-15 are reserved and read as zero.
    fpu.control = (v & 0x1F3F) | 0x0040;
    fpu.update_summary();
    if fpu.status & sw::ES == 0 {
        bus.fpu_error(false);
    }
}

/// `FNSTCW m16` / `FSTCW m16`.
pub fn fstcw<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let v = cpu.state.fpu.control;
    write_bytes(cpu, insn, bus, 0, &v.to_le_bytes())
}

/// `FNSTSW m16` / `FNSTSW AX` (and the waiting forms).
pub fn fstsw<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let v = cpu.state.fpu.status;
    if insn.op_kind(0) == OpKind::Register {
        write_gpr(&mut cpu.state, insn.op0_register(), u32::from(v));
        return Ok(());
    }
    write_bytes(cpu, insn, bus, 0, &v.to_le_bytes())
}

/// The environment image in `layout`.
fn env_image(cpu: &Cpu, layout: Layout) -> Vec<u8> {
    let f = &cpu.state.fpu;
    let tw = f.full_tag();
    let op = f.last_opcode & 0x7FF;
    let mut out = Vec::with_capacity(28);
    let mut put16 = |v: u16| out.extend_from_slice(&v.to_le_bytes());
    match layout {
        Layout::Prot16 => {
            for v in [
                f.control,
                f.status,
                tw,
                f.last_ip as u16,
                f.last_cs,
                f.last_dp as u16,
                f.last_ds,
            ] {
                put16(v);
            }
        }
        Layout::Real16 => {
            let ip = (u32::from(f.last_cs) << 4).wrapping_add(f.last_ip);
            let dp = (u32::from(f.last_ds) << 4).wrapping_add(f.last_dp);
            for v in [
                f.control,
                f.status,
                tw,
                ip as u16,
                (((ip >> 16) & 0xF) << 12) as u16 | op,
                dp as u16,
                (((dp >> 16) & 0xF) << 12) as u16,
            ] {
                put16(v);
            }
        }
        Layout::Prot32 => {
            let words = [
                0xFFFF_0000 | u32::from(f.control),
                0xFFFF_0000 | u32::from(f.status),
                0xFFFF_0000 | u32::from(tw),
                f.last_ip,
                u32::from(f.last_cs) | (u32::from(op) << 16),
                f.last_dp,
                0xFFFF_0000 | u32::from(f.last_ds),
            ];
            for w in words {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        Layout::Real32 => {
            let ip = (u32::from(f.last_cs) << 4).wrapping_add(f.last_ip);
            let dp = (u32::from(f.last_ds) << 4).wrapping_add(f.last_dp);
            let words = [
                0xFFFF_0000 | u32::from(f.control),
                0xFFFF_0000 | u32::from(f.status),
                0xFFFF_0000 | u32::from(tw),
                0xFFFF_0000 | (ip & 0xFFFF),
                ((ip >> 16) << 12) | u32::from(op),
                0xFFFF_0000 | (dp & 0xFFFF),
                (dp >> 16) << 12,
            ];
            for w in words {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
    }
    out
}

/// Loads an environment image (14 or 28 bytes) in `layout`.
fn load_env<B: Bus + ?Sized>(cpu: &mut Cpu, b: &[u8], layout: Layout, bus: &mut B) {
    let w16 = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let w32 = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (cw, swd, tw) = match layout {
        Layout::Real16 | Layout::Prot16 => (w16(0), w16(2), w16(4)),
        _ => (w16(0), w16(4), w16(8)),
    };
    let f = &mut cpu.state.fpu;
    match layout {
        Layout::Prot16 => {
            f.last_ip = u32::from(w16(6));
            f.last_cs = w16(8);
            f.last_dp = u32::from(w16(10));
            f.last_ds = w16(12);
        }
        Layout::Real16 => {
            f.last_ip = u32::from(w16(6)) | (u32::from(w16(8) >> 12) << 16);
            f.last_opcode = w16(8) & 0x7FF;
            f.last_cs = 0;
            f.last_dp = u32::from(w16(10)) | (u32::from(w16(12) >> 12) << 16);
            f.last_ds = 0;
        }
        Layout::Prot32 => {
            f.last_ip = w32(12);
            f.last_cs = w16(16);
            f.last_opcode = w16(18) & 0x7FF;
            f.last_dp = w32(20);
            f.last_ds = w16(24);
        }
        Layout::Real32 => {
            f.last_ip = (w32(12) & 0xFFFF) | ((w32(16) >> 12) << 16);
            f.last_opcode = w16(16) & 0x7FF;
            f.last_cs = 0;
            f.last_dp = (w32(20) & 0xFFFF) | ((w32(24) >> 12) << 16);
            f.last_ds = 0;
        }
    }
    f.status = swd;
    f.tag = tw;
    set_control(cpu, cw, bus);
}

/// `FLDENV m14/28byte`.
pub fn fldenv<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let layout = Layout::current(cpu);
    let b: [u8; 28] = read_env(cpu, insn, bus, layout)?;
    load_env(cpu, &b, layout, bus);
    Ok(())
}

fn read_env<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    layout: Layout,
) -> Result<[u8; 28], Exception> {
    let mut b = [0u8; 28];
    if layout.size() == 14 {
        let s: [u8; 14] = read_bytes(cpu, insn, bus, 0)?;
        b[..14].copy_from_slice(&s);
    } else {
        b = read_bytes(cpu, insn, bus, 0)?;
    }
    Ok(b)
}

/// `FNSTENV` / `FSTENV`: stores the environment, then masks every exception.
pub fn fstenv<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let img = env_image(cpu, Layout::current(cpu));
    write_bytes(cpu, insn, bus, 0, &img)?;
    cpu.state.fpu.control |= 0x3F;
    Ok(())
}

/// `FNSAVE` / `FSAVE`: environment plus ST(0)..ST(7), then FNINIT.
pub fn fsave<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let mut img = env_image(cpu, Layout::current(cpu));
    for i in 0..8 {
        let v = cpu.state.fpu.st(i);
        img.extend_from_slice(&v.signif.to_le_bytes());
        img.extend_from_slice(&v.sign_exp.to_le_bytes());
    }
    write_bytes(cpu, insn, bus, 0, &img)?;
    cpu.state.fpu.init();
    bus.fpu_error(false);
    Ok(())
}

/// `FRSTOR`: environment plus ST(0)..ST(7).
pub fn frstor<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let layout = Layout::current(cpu);
    let env = read_env(cpu, insn, bus, layout)?;
    let regs: [u8; 80] = read_bytes(cpu, insn, bus, layout.size())?;
    load_env(cpu, &env, layout, bus);
    let f = &mut cpu.state.fpu;
    for i in 0..8 {
        let r = &regs[i * 10..i * 10 + 10];
        let mut sig = [0u8; 8];
        sig.copy_from_slice(&r[..8]);
        let p = f.phys(i);
        f.regs[p] = F80 {
            signif: u64::from_le_bytes(sig),
            sign_exp: u16::from_le_bytes([r[8], r[9]]),
        };
    }
    Ok(())
}

/// Checks FXSAVE/FXRSTOR's 16-byte alignment (#GP(0) otherwise).
fn fx_aligned(cpu: &Cpu, insn: &Instruction) -> Result<(), Exception> {
    let seg = cpu.memory_segment(insn);
    let lin = cpu.state.seg[seg as usize]
        .base
        .wrapping_add(cpu.effective_offset(insn));
    if lin & 15 != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(())
}

/// MXCSR bits this processor implements (MXCSR_MASK as FXSAVE reports it).
const MXCSR_MASK: u32 = 0xFFBF;

/// `FXSAVE m512byte`: the legacy image (abridged tag word, FOP, 32-bit
/// pointers, MXCSR, ST(0)..ST(7) in 16-byte slots). The XMM area is
/// written as zeros when CR4.OSFXSR is set (this CPU has no XMM state).
pub fn fxsave<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    fx_aligned(cpu, insn)?;
    let f = cpu.state.fpu;
    let mut img = vec![0u8; 160];
    let mut abridged = 0u8;
    for p in 0..8 {
        if f.tag_of(p) != tag::EMPTY {
            abridged |= 1 << p;
        }
    }
    img[0..2].copy_from_slice(&f.control.to_le_bytes());
    img[2..4].copy_from_slice(&f.status.to_le_bytes());
    img[4] = abridged;
    img[6..8].copy_from_slice(&(f.last_opcode & 0x7FF).to_le_bytes());
    img[8..12].copy_from_slice(&f.last_ip.to_le_bytes());
    img[12..14].copy_from_slice(&f.last_cs.to_le_bytes());
    img[16..20].copy_from_slice(&f.last_dp.to_le_bytes());
    img[20..22].copy_from_slice(&f.last_ds.to_le_bytes());
    img[24..28].copy_from_slice(&f.mxcsr.to_le_bytes());
    img[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
    for i in 0..8 {
        let v = f.st(i);
        let o = 32 + 16 * i;
        img[o..o + 8].copy_from_slice(&v.signif.to_le_bytes());
        img[o + 8..o + 10].copy_from_slice(&v.sign_exp.to_le_bytes());
    }
    if cpu.state.cr4 & (1 << 9) != 0 {
        img.resize(288, 0);
    }
    write_bytes(cpu, insn, bus, 0, &img)
}

/// `FXRSTOR m512byte`: #GP(0) for reserved MXCSR bits.
pub fn fxrstor<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    fx_aligned(cpu, insn)?;
    let b: [u8; 160] = read_bytes(cpu, insn, bus, 0)?;
    let w16 = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let w32 = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mxcsr = w32(24);
    if mxcsr & !MXCSR_MASK != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let f = &mut cpu.state.fpu;
    f.status = w16(2);
    f.last_opcode = w16(6) & 0x7FF;
    f.last_ip = w32(8);
    f.last_cs = w16(12);
    f.last_dp = w32(16);
    f.last_ds = w16(20);
    f.mxcsr = mxcsr;
    let mut t = 0u16;
    for p in 0..8 {
        let v = if b[4] & (1 << p) != 0 {
            tag::VALID
        } else {
            tag::EMPTY
        };
        t |= v << (2 * p);
    }
    f.tag = t;
    for i in 0..8 {
        let o = 32 + 16 * i;
        let mut sig = [0u8; 8];
        sig.copy_from_slice(&b[o..o + 8]);
        let p = f.phys(i);
        f.regs[p] = F80 {
            signif: u64::from_le_bytes(sig),
            sign_exp: w16(o + 8),
        };
    }
    set_control(cpu, w16(0), bus);
    Ok(())
}
