//! x87 register-stack and constant instructions (Intel SDM Vol. 1, 8.3.3
//! "Data Transfer Instructions" (FXCH, FCMOVcc), 8.3.4 "Load Constant
//! Instructions", 8.3.10 / 8.3.11 stack management; Vol. 2A FLD1/FLDZ/
//! FLDPI/FLDL2E/FLDL2T/FLDLG2/FLDLN2, FXCH, FFREE, FDECSTP, FINCSTP,
//! FCMOVcc).
//!
//! The constants are kept to 128 bits and rounded by RC, as the 387 and
//! later do (the 8087/287 always truncated).

use super::f80::{self, Ctx};
use super::{push_checked, raise, sti, sw, underflow, F80};
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::Flags;
use iced_x86::{Instruction, Mnemonic as M};

/// A constant: unbiased exponent of bit 127 and 128 significand bits (all
/// these constants are irrational, so the bits beyond are never all zero).
#[derive(Clone, Copy, Debug)]
pub struct Constant {
    /// Exponent of the leading bit.
    pub exp: i32,
    /// The first 128 bits.
    pub sig: u128,
}

/// pi.
pub const PI: Constant = Constant {
    exp: 1,
    sig: 0xc90fdaa22168c234c4c6628b80dc1cd1,
};
/// log2(e).
pub const L2E: Constant = Constant {
    exp: 0,
    sig: 0xb8aa3b295c17f0bbbe87fed0691d3e88,
};
/// log2(10).
pub const L2T: Constant = Constant {
    exp: 1,
    sig: 0xd49a784bcd1b8afe492bf6ff4dafdb4c,
};
/// log10(2).
pub const LG2: Constant = Constant {
    exp: -2,
    sig: 0x9a209a84fbcff7988f8959ac0b7c9178,
};
/// ln(2).
pub const LN2: Constant = Constant {
    exp: -1,
    sig: 0xb17217f7d1cf79abc9e3b39803f2f6af,
};

/// A constant rounded to 64 bits by `ctx`'s RC.
pub fn constant(ctx: &mut Ctx, c: Constant) -> F80 {
    // The sticky bit stands for the infinite tail.
    ctx.round_ext64(false, c.exp, c.sig | 1)
}

/// FLD1 FLDZ FLDPI FLDL2E FLDL2T FLDLG2 FLDLN2 (no exception but stack
/// overflow; PE is not raised).
pub fn load_constant(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Exception> {
    let fpu = &mut cpu.state.fpu;
    let mut ctx = Ctx::from_control(fpu.control);
    let v = match insn.mnemonic() {
        M::Fld1 => F80::ONE,
        M::Fldz => F80::zero(false),
        M::Fldpi => constant(&mut ctx, PI),
        M::Fldl2e => constant(&mut ctx, L2E),
        M::Fldl2t => constant(&mut ctx, L2T),
        M::Fldlg2 => constant(&mut ctx, LG2),
        _ => constant(&mut ctx, LN2),
    };
    push_checked(fpu, v, false);
    Ok(())
}

/// `FXCH ST(i)`: an empty operand is replaced by the real indefinite
/// (masked stack underflow).
pub fn fxch(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Exception> {
    let i = if insn.op_count() == 0 {
        1
    } else {
        sti(insn, insn.op_count() - 1)
    };
    let fpu = &mut cpu.state.fpu;
    let (e0, ei) = (fpu.is_empty(0), fpu.is_empty(i));
    if e0 || ei {
        if !underflow(fpu) {
            return Ok(());
        }
    } else {
        raise(fpu, 0, false);
    }
    let a = if e0 { f80::INDEFINITE } else { fpu.st(0) };
    let b = if ei { f80::INDEFINITE } else { fpu.st(i) };
    fpu.set_st(0, b);
    fpu.set_st(i, a);
    Ok(())
}

/// `FFREE ST(i)` (tag empty) and `FFREEP ST(i)` (also pops).
pub fn ffree(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Exception> {
    let i = sti(insn, 0);
    let fpu = &mut cpu.state.fpu;
    let p = fpu.phys(i);
    fpu.set_tag(p, super::tag::EMPTY);
    if insn.mnemonic() == M::Ffreep {
        fpu.set_top(fpu.top() + 1);
    }
    Ok(())
}

/// `FDECSTP` / `FINCSTP`: move TOP without touching tags; C1 cleared.
pub fn step_top(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Exception> {
    let fpu = &mut cpu.state.fpu;
    let t = if insn.mnemonic() == M::Fdecstp {
        fpu.top().wrapping_sub(1)
    } else {
        fpu.top() + 1
    };
    fpu.set_top(t);
    fpu.status &= !sw::C1;
    Ok(())
}

/// `FCMOVcc ST(0), ST(i)`: the conditions read CF, ZF and PF.
pub fn fcmov(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Exception> {
    let s = &cpu.state;
    let cond = match insn.mnemonic() {
        M::Fcmovb => s.cf(),
        M::Fcmovnb => !s.cf(),
        M::Fcmove => s.zf(),
        M::Fcmovne => !s.zf(),
        M::Fcmovbe => s.cf() || s.zf(),
        M::Fcmovnbe => !(s.cf() || s.zf()),
        M::Fcmovu => s.pf(),
        _ => !s.pf(),
    };
    let i = sti(insn, 1);
    let fpu = &mut cpu.state.fpu;
    if fpu.is_empty(0) || fpu.is_empty(i) {
        if underflow(fpu) && cond {
            fpu.set_st(0, f80::INDEFINITE);
        }
        return Ok(());
    }
    raise(fpu, 0, false);
    if cond {
        let v = fpu.st(i);
        fpu.set_st(0, v);
    }
    Ok(())
}
