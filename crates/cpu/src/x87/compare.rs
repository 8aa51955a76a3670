//! x87 comparison and classification (Intel SDM Vol. 1, 8.1.3.1 condition
//! codes, 8.3.7 "Comparison and Classification Instructions", table 8-6
//! and 8-7; Vol. 2A FCOM/FCOMP/FCOMPP, FUCOM/FUCOMP/FUCOMPP, FICOM/FICOMP,
//! FTST, FXAM, FCOMI/FCOMIP/FUCOMI/FUCOMIP).

use super::convert::read_mem_value;
use super::f80::{exc, Class, Ctx};
use super::{raise, sti, sw, underflow, F80};
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::Flags;
use crate::state::eflags;
use core::cmp::Ordering;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// The outcome of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// a < b
    Less,
    /// a == b
    Equal,
    /// a > b
    Greater,
    /// a NaN or an unsupported operand is involved.
    Unordered,
}

/// The magnitude order of two non-NaN, supported values.
fn cmp_mag(a: F80, b: F80) -> Ordering {
    let key = |v: F80| -> (u8, i32, u64) {
        match v.class() {
            Class::Zero => (0, 0, 0),
            Class::Inf => (2, 0, 0),
            _ => {
                let u = v.unpack();
                (1, u.exp, u.sig)
            }
        }
    };
    key(a).cmp(&key(b))
}

/// Compares a with b. `quiet` (FUCOM) raises IE only for SNaNs; the others
/// raise it for any NaN. Denormal operands raise DE.
pub fn compare(ctx: &mut Ctx, a: F80, b: F80, quiet: bool) -> Order {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Unsupported || cb == Class::Unsupported {
        ctx.flags |= exc::IE;
        return Order::Unordered;
    }
    if a.is_nan() || b.is_nan() {
        if !quiet || ca == Class::SNaN || cb == Class::SNaN {
            ctx.flags |= exc::IE;
        }
        return Order::Unordered;
    }
    if ca == Class::Denormal || cb == Class::Denormal {
        ctx.flags |= exc::DE;
    }
    let za = ca == Class::Zero;
    let zb = cb == Class::Zero;
    if za && zb {
        return Order::Equal;
    }
    let o = match (a.sign(), b.sign()) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => cmp_mag(a, b),
        (true, true) => cmp_mag(b, a),
    };
    match o {
        Ordering::Less => Order::Less,
        Ordering::Equal => Order::Equal,
        Ordering::Greater => Order::Greater,
    }
}

/// C3 C2 C0 for an order (C1 cleared).
fn cc_of(o: Order) -> u16 {
    match o {
        Order::Greater => 0,
        Order::Less => sw::C0,
        Order::Equal => sw::C3,
        Order::Unordered => sw::C0 | sw::C2 | sw::C3,
    }
}

fn set_cc(fpu: &mut super::FpuState, cc: u16) {
    fpu.status = (fpu.status & !sw::CC) | cc;
}

/// FCOM FCOMP FCOMPP FUCOM FUCOMP FUCOMPP FICOM FICOMP.
pub fn fcom<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let m = insn.mnemonic();
    let pops = match m {
        M::Fcompp | M::Fucompp => 2,
        M::Fcomp | M::Fucomp | M::Ficomp => 1,
        _ => 0,
    };
    let quiet = matches!(m, M::Fucom | M::Fucomp | M::Fucompp);
    let (b, b_empty, mem_denormal) =
        if insn.op_count() >= 1 && insn.op_kind(insn.op_count() - 1) == OpKind::Memory {
            let (v, d) = read_mem_value(cpu, insn, bus)?;
            (v, false, d)
        } else {
            let i = if insn.op_count() == 0 {
                1
            } else {
                sti(insn, insn.op_count() - 1)
            };
            (cpu.state.fpu.st(i), cpu.state.fpu.is_empty(i), false)
        };
    let fpu = &mut cpu.state.fpu;
    if b_empty || fpu.is_empty(0) {
        let ok = underflow(fpu);
        set_cc(fpu, sw::C0 | sw::C2 | sw::C3);
        if ok {
            for _ in 0..pops {
                fpu.pop();
            }
        }
        return Ok(());
    }
    let a = fpu.st(0);
    let mut ctx = Ctx::from_control(fpu.control);
    let o = compare(&mut ctx, a, b, quiet);
    if mem_denormal && o != Order::Unordered {
        ctx.flags |= exc::DE;
    }
    // The condition codes are set even when IE or DE is unmasked (as the
    // P6 does); only the pops are suppressed.
    let ok = raise(fpu, ctx.flags, false);
    set_cc(fpu, cc_of(o));
    if ok {
        for _ in 0..pops {
            fpu.pop();
        }
    }
    Ok(())
}

/// FCOMI FCOMIP FUCOMI FUCOMIP: the result goes to ZF, PF and CF; OF, SF
/// and AF are cleared.
pub fn fcomi(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Exception> {
    let m = insn.mnemonic();
    let pop = matches!(m, M::Fcomip | M::Fucomip);
    let quiet = matches!(m, M::Fucomi | M::Fucomip);
    let i = sti(insn, insn.op_count().saturating_sub(1));
    let fpu = &mut cpu.state.fpu;
    let (o, ok) = if fpu.is_empty(0) || fpu.is_empty(i) {
        (Order::Unordered, underflow(fpu))
    } else {
        let mut ctx = Ctx::from_control(fpu.control);
        let o = compare(&mut ctx, fpu.st(0), fpu.st(i), quiet);
        (o, raise(fpu, ctx.flags, false))
    };
    if ok && pop {
        fpu.pop();
    }
    let f = match o {
        Order::Greater => 0,
        Order::Less => eflags::CF,
        Order::Equal => eflags::ZF,
        Order::Unordered => eflags::ZF | eflags::PF | eflags::CF,
    };
    let mask = eflags::ZF | eflags::PF | eflags::CF | eflags::OF | eflags::SF | eflags::AF;
    cpu.state.set_status(mask, f);
    Ok(())
}

/// `FTST`: compare ST(0) with +0.0.
pub fn ftst(cpu: &mut Cpu) -> Result<(), Exception> {
    let fpu = &mut cpu.state.fpu;
    if fpu.is_empty(0) {
        underflow(fpu);
        set_cc(fpu, sw::C0 | sw::C2 | sw::C3);
        return Ok(());
    }
    let mut ctx = Ctx::from_control(fpu.control);
    let o = compare(&mut ctx, fpu.st(0), F80::zero(false), false);
    raise(fpu, ctx.flags, false);
    set_cc(fpu, cc_of(o));
    Ok(())
}

/// `FXAM`: classify ST(0) into C3 C2 C0, its sign into C1 (table 8-7 of
/// Vol. 2A FXAM).
pub fn fxam(cpu: &mut Cpu) -> Result<(), Exception> {
    let fpu = &mut cpu.state.fpu;
    let v = fpu.st(0);
    let cc = if fpu.is_empty(0) {
        sw::C3 | sw::C0
    } else {
        match v.class() {
            Class::Unsupported => 0,
            Class::QNaN | Class::SNaN => sw::C0,
            Class::Normal => sw::C2,
            Class::Inf => sw::C2 | sw::C0,
            Class::Zero => sw::C3,
            Class::Denormal => sw::C3 | sw::C2,
        }
    };
    set_cc(fpu, cc | if v.sign() { sw::C1 } else { 0 });
    Ok(())
}
