//! Decimal adjust: AAA AAS DAA DAS AAM AAD (Intel SDM Vol. 2A).
//!
//! The 286 and later adjust AX as a whole in AAA/AAS (add/subtract 0x106);
//! the 8086 adjusts AL and AH separately. AAM with an immediate of 0
//! raises #DE; AAM and AAD take any base, not only 10.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::{flag_if, szp, Flags, LazyOp};
use crate::model::CpuModel;
use crate::state::eflags::{AF, CF, OF, PF, SF, ZF};
use crate::state::Reg;
use iced_x86::Instruction;

fn al(cpu: &Cpu) -> u32 {
    cpu.state.gpr[0] & 0xFF
}

fn af(cpu: &Cpu) -> bool {
    cpu.state.flags() & AF != 0
}

/// `AAA`: ASCII adjust after addition.
pub fn aaa<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let ax = cpu.state.reg(Reg::Eax, 2);
    let adjust = (ax & 0xF) > 9 || af(cpu);
    let new_ax = if !adjust {
        ax
    } else if cpu.state.model == CpuModel::I8086 {
        (((ax >> 8) + 1) << 8 & 0xFF00) | ((ax + 6) & 0xFF)
    } else {
        ax.wrapping_add(0x106)
    };
    let new_ax = new_ax & 0xFF0F;
    cpu.state.set_reg(Reg::Eax, 2, new_ax);
    // SF/ZF/PF/OF are undefined: computed from the adjusted AL before masking,
    // as the 8086/286 do.
    let raw_al = if adjust { (ax + 6) & 0xFF } else { ax & 0xFF };
    let mut f = szp(raw_al, 1) | if adjust { AF | CF } else { 0 };
    if adjust && (ax & 0xFF) < 0x80 && raw_al >= 0x80 {
        f |= OF;
    }
    cpu.state.set_status(AF | CF | SF | ZF | PF | OF, f);
    Ok(())
}

/// `AAS`: ASCII adjust after subtraction.
pub fn aas<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let ax = cpu.state.reg(Reg::Eax, 2);
    let adjust = (ax & 0xF) > 9 || af(cpu);
    let new_ax = if !adjust {
        ax
    } else if cpu.state.model == CpuModel::I8086 {
        (((ax >> 8).wrapping_sub(1)) << 8 & 0xFF00) | (ax.wrapping_sub(6) & 0xFF)
    } else {
        ax.wrapping_sub(6).wrapping_sub(0x100) & 0xFFFF
    };
    cpu.state.set_reg(Reg::Eax, 2, new_ax & 0xFF0F);
    let raw_al = if adjust {
        ax.wrapping_sub(6) & 0xFF
    } else {
        ax & 0xFF
    };
    let mut f = szp(raw_al, 1) | if adjust { AF | CF } else { 0 };
    if adjust && (ax & 0xFF) >= 0x80 && raw_al < 0x80 {
        f |= OF;
    }
    cpu.state.set_status(AF | CF | SF | ZF | PF | OF, f);
    Ok(())
}

/// `DAA`: decimal adjust AL after addition.
pub fn daa<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let old_al = al(cpu);
    let old_cf = cpu.state.cf();
    let mut a = old_al;
    let mut cf = false;
    let mut af_out = false;
    if (a & 0xF) > 9 || af(cpu) {
        a += 6;
        cf = old_cf || a > 0xFF;
        af_out = true;
    }
    let limit = if cpu.state.model == CpuModel::I8086 && af_out {
        0x9F
    } else {
        0x99
    };
    if old_al > limit || old_cf {
        a += 0x60;
        cf = true;
    }
    let a = a & 0xFF;
    cpu.state.set_reg(Reg::Eax, 1, a);
    let of = old_al & 0x80 == 0 && a & 0x80 != 0;
    let f = szp(a, 1) | flag_if(cf, CF) | flag_if(af_out, AF) | flag_if(of, OF);
    cpu.state.set_status(AF | CF | SF | ZF | PF | OF, f);
    Ok(())
}

/// `DAS`: decimal adjust AL after subtraction.
pub fn das<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let old_al = al(cpu);
    let old_cf = cpu.state.cf();
    let af_in = af(cpu);
    let mut a = old_al;
    let mut cf = false;
    let mut af_out = false;
    if (a & 0xF) > 9 || af_in {
        // The 8086 does not carry the borrow of this step into CF.
        cf = old_cf || (a < 6 && cpu.state.model != CpuModel::I8086);
        a = a.wrapping_sub(6) & 0xFF;
        af_out = true;
    }
    // The 8086 compares with 0x9F when AF came in set.
    let limit = if cpu.state.model == CpuModel::I8086 && af_in {
        0x9F
    } else {
        0x99
    };
    if old_al > limit || old_cf {
        a = a.wrapping_sub(0x60) & 0xFF;
        cf = true;
    }
    cpu.state.set_reg(Reg::Eax, 1, a);
    let of = old_al & 0x80 != 0 && a & 0x80 == 0;
    let f = szp(a, 1) | flag_if(cf, CF) | flag_if(af_out, AF) | flag_if(of, OF);
    cpu.state.set_status(AF | CF | SF | ZF | PF | OF, f);
    Ok(())
}

/// `AAM imm8`: AH = AL / imm8, AL = AL % imm8; #DE when imm8 is 0.
pub fn aam<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let base = insn.immediate8() as u32;
    if base == 0 {
        return Err(Exception::DivideError);
    }
    let a = al(cpu);
    let r = a % base;
    cpu.state.set_reg(Reg::Eax, 2, ((a / base) << 8) | r);
    // SF/ZF/PF from AL; the undefined OF/AF/CF are cleared.
    cpu.state.set_status(AF | CF | SF | ZF | PF | OF, szp(r, 1));
    Ok(())
}

/// `AAD imm8`: AL = AL + AH * imm8, AH = 0. Flags are those of the byte
/// addition the processor performs.
pub fn aad<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let base = insn.immediate8() as u32;
    let ax = cpu.state.reg(Reg::Eax, 2);
    let a = ax & 0xFF;
    let b = ((ax >> 8) * base) & 0xFF;
    let r = (a + b) & 0xFF;
    cpu.state.set_reg(Reg::Eax, 2, r);
    cpu.state.set_lazy(LazyOp::Add, 1, a, b, r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::state::eflags;
    use crate::testutil::run32;
    use iced_x86::code_asm::*;

    #[test]
    fn daa_after_bcd_add() {
        // 0x19 + 0x28 = 0x41, DAA -> 0x47
        let s = run32(
            |a| {
                a.add(al, 0x28)?;
                a.daa()
            },
            |s| s.gpr[0] = 0x19,
        );
        assert_eq!(s.gpr[0] & 0xFF, 0x47);
        assert_eq!(s.eflags & eflags::CF, 0);
    }

    #[test]
    fn aam_zero_is_divide_error() {
        let mut cpu = crate::testutil::flat32_cpu();
        let mut ram = crate::FlatRam::new(0x10000);
        ram.load(0x1000, &[0xD4, 0x00]);
        ram.load(0, &[0; 4]);
        let d = crate::decode::decode(&[0xD4, 0x00], true, crate::CpuModel::P6).unwrap();
        assert_eq!(
            super::aam(&mut cpu, &d.insn, &mut ram),
            Err(crate::Exception::DivideError)
        );
    }

    #[test]
    fn aaa_adjusts_ax_as_a_whole() {
        let s = run32(|a| a.aaa(), |s| s.gpr[0] = 0x00FF);
        assert_eq!(s.gpr[0] & 0xFFFF, 0x0205);
    }
}
