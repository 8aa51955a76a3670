//! Shifts and rotates: SHL/SAL SHR SAR ROL ROR RCL RCR SHLD SHRD
//! (Intel SDM Vol. 2B, "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD").
//!
//! The 286 and later mask the count to 5 bits; the 8086 shifts by the whole
//! CL. A (masked) count of 0 changes nothing, flags included. OF is defined
//! for a count of 1; for larger counts it is computed the same way (as from
//! the last single-bit step), which is what the processors modelled do.
//! AF is undefined after shifts and left unchanged.

use super::width_and_mask;
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::{flag_if, sign_bit, szp, Flags};
use crate::model::CpuModel;
use crate::state::eflags::{AF, CF, OF, PF, SF, ZF};
use iced_x86::{Instruction, OpKind};

/// The shift count of operand 1 (CL, 1 or imm8), masked as the model does.
#[inline]
fn count<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    n: u32,
    bus: &mut B,
) -> Result<u32, Exception> {
    let c = cpu.read_op(insn, n, bus)? & 0xFF;
    Ok(if cpu.state.model == CpuModel::I8086 {
        c
    } else {
        c & 0x1F
    })
}

/// A masked count of 0 changes nothing, but a memory destination is still
/// checked for writing (the access is read-modify-write whatever the
/// count): a read-only segment raises #GP(0), as hardware does.
#[inline]
fn zero_count<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    if insn.op0_kind() == OpKind::Memory {
        let (seg, off) = (cpu.memory_segment(insn), cpu.effective_offset(insn));
        cpu.check_write(bus, seg, off, insn.memory_size().size() as u32)?;
    }
    Ok(())
}

/// Writes a shift result and its flags: `cf_of` (CF and OF bits), and
/// SF/ZF/PF from `r` when `szp_too` (shifts) or only CF/OF (rotates).
#[inline]
fn finish<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    w: u32,
    r: u32,
    cf_of: u32,
    szp_too: bool,
) -> Result<(), Exception> {
    cpu.write_op(insn, 0, r, bus)?;
    let mut f = cf_of;
    let mut mask = CF | OF;
    if szp_too {
        f |= szp(r, w);
        mask |= SF | ZF | PF;
    }
    cpu.state.set_status(mask, f);
    Ok(())
}

/// `SHL`/`SAL dst, count`.
pub fn shl<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let c = count(cpu, insn, 1, bus)?;
    if c == 0 {
        return zero_count(cpu, insn, bus);
    }
    let wide = if c < 64 { u64::from(a) << c } else { 0 };
    let r = wide as u32 & mask;
    let cf = c <= w * 8 && (wide >> (w * 8)) & 1 != 0;
    let of = (r & sign_bit(w) != 0) != cf;
    let af_model = cpu.state.model != CpuModel::P6;
    finish(
        cpu,
        insn,
        bus,
        w,
        r,
        flag_if(cf, CF) | flag_if(of, OF),
        true,
    )?;
    if af_model {
        // The 8086/286 leave AF set after shifts (the vectors record it).
        cpu.state.set_status(AF, AF);
    }
    Ok(())
}

/// 8086 `SETMO`/`SETMOC` (undocumented D0-D3 /6): with a non-zero count
/// the destination becomes all ones, with the flags of `OR dst, -1`.
pub fn setmo<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    if cpu.read_op(insn, 1, bus)? & 0xFF == 0 {
        return Ok(());
    }
    finish(cpu, insn, bus, w, mask, 0, true)?;
    cpu.state.set_status(AF, 0);
    Ok(())
}

/// `SHR dst, count`.
pub fn shr<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, _) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let c = count(cpu, insn, 1, bus)?;
    if c == 0 {
        return zero_count(cpu, insn, bus);
    }
    let r = if c < 32 { a >> c } else { 0 };
    let cf = c <= 32 && (u64::from(a) >> (c - 1)) & 1 != 0;
    let of = c == 1 && a & sign_bit(w) != 0;
    let af_model = cpu.state.model != CpuModel::P6;
    finish(
        cpu,
        insn,
        bus,
        w,
        r,
        flag_if(cf, CF) | flag_if(of, OF),
        true,
    )?;
    if af_model {
        cpu.state.set_status(AF, AF);
    }
    Ok(())
}

/// `SAR dst, count`: arithmetic shift, OF cleared.
pub fn sar<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let c = count(cpu, insn, 1, bus)?;
    if c == 0 {
        return zero_count(cpu, insn, bus);
    }
    let shift = 32 - w * 8;
    let signed = i64::from(((a << shift) as i32) >> shift);
    let c = c.min(63);
    let r = (signed >> c) as u32 & mask;
    let cf = (signed >> (c - 1)) & 1 != 0;
    let af_model = cpu.state.model != CpuModel::P6;
    finish(cpu, insn, bus, w, r, flag_if(cf, CF), true)?;
    if af_model {
        cpu.state.set_status(AF, AF);
    }
    Ok(())
}

/// `ROL dst, count`: CF = the bit rotated into bit 0.
pub fn rol<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let c = count(cpu, insn, 1, bus)?;
    if c == 0 {
        return zero_count(cpu, insn, bus);
    }
    let bits = w * 8;
    let k = c % bits;
    let r = if k == 0 {
        a
    } else {
        ((a << k) | (a >> (bits - k))) & mask
    };
    let cf = r & 1 != 0;
    let of = (r & sign_bit(w) != 0) != cf;
    finish(
        cpu,
        insn,
        bus,
        w,
        r,
        flag_if(cf, CF) | flag_if(of, OF),
        false,
    )
}

/// `ROR dst, count`: CF = the bit rotated into the top.
pub fn ror<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let c = count(cpu, insn, 1, bus)?;
    if c == 0 {
        return zero_count(cpu, insn, bus);
    }
    let bits = w * 8;
    let k = c % bits;
    let r = if k == 0 {
        a
    } else {
        ((a >> k) | (a << (bits - k))) & mask
    };
    let top = r & sign_bit(w) != 0;
    let next = r & (sign_bit(w) >> 1) != 0;
    finish(
        cpu,
        insn,
        bus,
        w,
        r,
        flag_if(top, CF) | flag_if(top != next, OF),
        false,
    )
}

/// `RCL dst, count`: rotate left through CF (a w*8+1 bit rotation).
pub fn rcl<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, _) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let c = count(cpu, insn, 1, bus)?;
    let bits = w * 8;
    let k = c % (bits + 1);
    if c == 0 {
        return zero_count(cpu, insn, bus);
    }
    let cf_in = u64::from(cpu.state.cf());
    let full_mask = (1u64 << (bits + 1)) - 1;
    let v = (cf_in << bits) | u64::from(a); // CF:dst
    let rot = if k == 0 {
        v
    } else {
        ((v << k) | (v >> (bits + 1 - k))) & full_mask
    };
    let r = rot as u32 & crate::flags::width_mask(w);
    let cf = (rot >> bits) & 1 != 0;
    let of = (r & sign_bit(w) != 0) != cf;
    finish(
        cpu,
        insn,
        bus,
        w,
        r,
        flag_if(cf, CF) | flag_if(of, OF),
        false,
    )
}

/// `RCR dst, count`: rotate right through CF.
pub fn rcr<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, _) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let c = count(cpu, insn, 1, bus)?;
    let bits = w * 8;
    let k = c % (bits + 1);
    if c == 0 {
        return zero_count(cpu, insn, bus);
    }
    let cf_in = u64::from(cpu.state.cf());
    let full_mask = (1u64 << (bits + 1)) - 1;
    let v = (cf_in << bits) | u64::from(a);
    let rot = if k == 0 {
        v
    } else {
        ((v >> k) | (v << (bits + 1 - k))) & full_mask
    };
    let r = rot as u32 & crate::flags::width_mask(w);
    let cf = (rot >> bits) & 1 != 0;
    let top = r & sign_bit(w) != 0;
    let next = r & (sign_bit(w) >> 1) != 0;
    finish(
        cpu,
        insn,
        bus,
        w,
        r,
        flag_if(cf, CF) | flag_if(top != next, OF),
        false,
    )
}

/// `SHLD dst, src, count`: dst shifted left, filled from the top of src.
/// A 16-bit count above 16 shifts through the 48-bit dst:src:dst value.
pub fn shld<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let b = cpu.read_op(insn, 1, bus)?;
    let c = cpu.read_op(insn, 2, bus)? & 0x1F;
    if c == 0 {
        return zero_count(cpu, insn, bus);
    }
    let (a64, b64) = (u64::from(a), u64::from(b));
    let (r, cf) = if w == 4 {
        let v = (a64 << 32) | b64;
        (((v << c) >> 32) as u32, (v >> (64 - c)) & 1 != 0)
    } else {
        let v = (a64 << 32) | (b64 << 16) | a64; // 48 bits
        (((v << c) >> 32) as u32 & mask, (v >> (48 - c)) & 1 != 0)
    };
    let of = (r ^ a) & sign_bit(w) != 0;
    finish(
        cpu,
        insn,
        bus,
        w,
        r,
        flag_if(cf, CF) | flag_if(of, OF),
        true,
    )
}

/// `SHRD dst, src, count`: dst shifted right, filled from the bottom of src.
pub fn shrd<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let (w, mask) = width_and_mask(insn, 0);
    let a = cpu.read_op(insn, 0, bus)?;
    let b = cpu.read_op(insn, 1, bus)?;
    let c = cpu.read_op(insn, 2, bus)? & 0x1F;
    if c == 0 {
        return zero_count(cpu, insn, bus);
    }
    let (a64, b64) = (u64::from(a), u64::from(b));
    let (r, cf) = if w == 4 {
        let v = (b64 << 32) | a64;
        ((v >> c) as u32, (v >> (c - 1)) & 1 != 0)
    } else {
        let v = (a64 << 32) | (b64 << 16) | a64;
        ((v >> c) as u32 & mask, (v >> (c - 1)) & 1 != 0)
    };
    let of = (r ^ a) & sign_bit(w) != 0;
    finish(
        cpu,
        insn,
        bus,
        w,
        r,
        flag_if(cf, CF) | flag_if(of, OF),
        true,
    )
}

#[cfg(test)]
mod tests {
    use crate::state::eflags;
    use crate::testutil::{run16, run32};
    use crate::CpuModel;
    use iced_x86::code_asm::*;

    #[test]
    fn count_zero_changes_no_flag() {
        let s = run32(
            |a| {
                a.stc()?;
                a.shl(eax, cl)
            },
            |s| {
                s.gpr[0] = 0x8000_0000;
                s.gpr[1] = 32; // masked to 0
            },
        );
        assert_eq!(s.gpr[0], 0x8000_0000);
        assert_ne!(s.eflags & eflags::CF, 0);
    }

    #[test]
    fn count_zero_still_checks_that_memory_is_writable() {
        use crate::testutil::{assemble, flat32_cpu, CODE};
        use crate::{Exception, FlatRam};
        let code = assemble(32, |a| {
            a.rol(dword_ptr(0x100).cs(), 0)?;
            a.shrd(dword_ptr(0x100).cs(), eax, cl)
        });
        for steps in [1, 2] {
            let mut cpu = flat32_cpu();
            let mut ram = FlatRam::new(1 << 20);
            ram.load(CODE, &code);
            cpu.state.gpr[1] = 32; // masked to 0
            for _ in 0..steps - 1 {
                cpu.state.eip += assemble(32, |a| a.rol(dword_ptr(0x100).cs(), 0)).len() as u32 - 1;
            }
            cpu.step(&mut ram);
            assert_eq!(
                cpu.last_exception,
                Some(Exception::GeneralProtection(0)),
                "instruction {steps}"
            );
        }
    }

    #[test]
    fn i8086_does_not_mask_the_count() {
        let (s, _) = run16(
            CpuModel::I8086,
            |a| a.shl(ax, cl),
            |s, _| {
                s.gpr[0] = 1;
                s.gpr[1] = 32;
            },
        );
        assert_eq!(s.gpr[0] & 0xFFFF, 0);
        let (s, _) = run16(
            CpuModel::P6,
            |a| a.shl(ax, cl),
            |s, _| {
                s.gpr[0] = 1;
                s.gpr[1] = 32;
            },
        );
        assert_eq!(s.gpr[0] & 0xFFFF, 1);
    }

    #[test]
    fn rcl_byte_rotates_through_carry_mod_9() {
        let s = run32(
            |a| {
                a.stc()?;
                a.rcl(al, 9)
            },
            |s| s.gpr[0] = 0x55,
        );
        assert_eq!(s.gpr[0] & 0xFF, 0x55);
        assert_ne!(s.eflags & eflags::CF, 0);
    }

    #[test]
    fn ror_sets_carry_from_top_bit() {
        let s = run32(|a| a.ror(eax, 1), |s| s.gpr[0] = 1);
        assert_eq!(s.gpr[0], 0x8000_0000);
        assert_eq!(
            s.eflags & (eflags::CF | eflags::OF),
            eflags::CF | eflags::OF
        );
    }

    #[test]
    fn shld_and_shrd() {
        let s = run32(
            |a| a.shld(eax, ebx, 8),
            |s| {
                s.gpr[0] = 0x1122_3344;
                s.gpr[3] = 0xAABB_CCDD;
            },
        );
        assert_eq!(s.gpr[0], 0x2233_44AA);
        let s = run32(
            |a| a.shrd(eax, ebx, 8),
            |s| {
                s.gpr[0] = 0x1122_3344;
                s.gpr[3] = 0xAABB_CCDD;
            },
        );
        assert_eq!(s.gpr[0], 0xDD11_2233);
    }

    #[test]
    fn sar_fills_with_sign() {
        let s = run32(|a| a.sar(ax, 4), |s| s.gpr[0] = 0x8000);
        assert_eq!(s.gpr[0] & 0xFFFF, 0xF800);
    }
}
