//! Specialised handlers for the most frequent forms of the most frequent
//! instructions: 32-bit register-register and register-immediate MOV and
//! ALU operations, INC, DEC, PUSH and POP of a 32-bit register, and the
//! relative JMP, Jcc and CALL. [`specialise`] picks
//! one when an instruction is decoded and records its operands in the
//! [`Decoded`] entry, so executing it reads no iced operand description.
//!
//! Each handler does exactly what the general handler of its mnemonic does
//! for that form (same result, same lazy-flags record); the general ones
//! stay the reference and serve every other form.

use super::dispatch::Op;
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::decode::Decoded;
use crate::exception::Exception;
use crate::flags::{Flags, LazyOp};
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};

/// The `gpr` index of a 32-bit general register.
fn gpr32(r: Register) -> Option<u8> {
    let v = (r as u32).wrapping_sub(Register::EAX as u32);
    (v < 8).then_some(v as u8)
}

/// Switches `d` to a specialised handler if its instruction has one of
/// the forms here, recording the operands the handler reads.
pub fn specialise(d: &mut Decoded) {
    if let Some((op, r0, r1, imm)) = specialise_registers(&d.insn) {
        (d.op, d.r0, d.r1, d.imm) = (op, r0, r1, imm);
    } else if d.addr32 {
        specialise_memory(d);
    }
    // The specialised forms that never write `ctx.next_eip`.
    d.falls_through = matches!(
        d.op,
        Op::MovR32R32
            | Op::MovR32Imm
            | Op::AddR32R32
            | Op::SubR32R32
            | Op::AndR32R32
            | Op::OrR32R32
            | Op::XorR32R32
            | Op::CmpR32R32
            | Op::TestR32R32
            | Op::AddR32Imm
            | Op::SubR32Imm
            | Op::AndR32Imm
            | Op::OrR32Imm
            | Op::XorR32Imm
            | Op::CmpR32Imm
            | Op::TestR32Imm
            | Op::IncR32
            | Op::DecR32
            | Op::PushR32
            | Op::PopR32
            | Op::MovR32Mem
            | Op::MovMemR32
            | Op::ImulR32R32Imm
            | Op::ShlR32Imm
    );
}

/// `MOV r32, m32` and `MOV m32, r32` with 32-bit addressing: the address
/// parts go to `base`, `index`, `scale`, `imm` (displacement) and `seg`.
fn specialise_memory(d: &mut Decoded) {
    let insn = &d.insn;
    if insn.has_lock_prefix() || insn.op_count() != 2 || insn.mnemonic() != M::Mov {
        return;
    }
    let (op, reg) = match (insn.op0_kind(), insn.op1_kind()) {
        (OpKind::Register, OpKind::Memory) => (Op::MovR32Mem, insn.op0_register()),
        (OpKind::Memory, OpKind::Register) => (Op::MovMemR32, insn.op1_register()),
        _ => return,
    };
    if insn.memory_size().size() != 4 {
        return;
    }
    let Some(r0) = gpr32(reg) else { return };
    let base = match insn.memory_base() {
        Register::None => 8,
        r => match gpr32(r) {
            Some(i) => i,
            None => return,
        },
    };
    let index = match insn.memory_index() {
        Register::None => 8,
        r => match gpr32(r) {
            Some(i) => i,
            None => return,
        },
    };
    let Some(seg) = super::operand::seg_reg(insn.memory_segment()) else {
        return;
    };
    d.scale = insn.memory_index_scale().trailing_zeros() as u8;
    d.imm = insn.memory_displacement32();
    (d.op, d.r0, d.base, d.index, d.seg) = (op, r0, base, index, seg);
}

/// The offset of a specialised memory operand (32-bit addressing).
#[inline(always)]
fn offset(cpu: &Cpu, d: &Decoded) -> u32 {
    let g = &cpu.state.gpr;
    let mut a = d.imm;
    if d.base < 8 {
        a = a.wrapping_add(g[usize::from(d.base)]);
    }
    if d.index < 8 {
        a = a.wrapping_add(g[usize::from(d.index)] << d.scale);
    }
    a
}

/// `MOV r32, m32`.
pub fn mov_r32_mem<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    bus: &mut B,
) -> Result<(), Exception> {
    let off = offset(cpu, d);
    let v = cpu.read_mem(bus, d.seg, off, 4)?;
    cpu.state.gpr[usize::from(d.r0 & 7)] = v;
    Ok(())
}

/// `MOV m32, r32`.
pub fn mov_mem_r32<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    bus: &mut B,
) -> Result<(), Exception> {
    let off = offset(cpu, d);
    let v = cpu.state.gpr[usize::from(d.r0 & 7)];
    cpu.write_mem(bus, d.seg, off, 4, v)
}

/// The specialised handler for a register or immediate form, with the
/// `gpr` indices of its register operands and its immediate (sign-extended
/// to 32 bits) or relative branch target.
fn specialise_registers(insn: &Instruction) -> Option<(Op, u8, u8, u32)> {
    if insn.has_lock_prefix() {
        return None;
    }
    let m = insn.mnemonic();
    if insn.op_count() == 1
        && matches!(insn.op0_kind(), OpKind::NearBranch16 | OpKind::NearBranch32)
    {
        // Relative branches: the target relative to the instruction's
        // start (decoded at IP 0), r1 = 1 for a 16-bit operand size.
        let target = insn.near_branch_target() as u32;
        let short = u8::from(insn.op0_kind() == OpKind::NearBranch16);
        let cc = super::condition_nibble(insn);
        return match m {
            M::Jmp => Some((Op::JmpRel, 0, short, target)),
            M::Call => Some((Op::CallRel, 0, short, target)),
            _ if is_jcc(m) => Some((JCC[usize::from(cc & 0xF)], cc, short, target)),
            _ => None,
        };
    }
    if insn.op_count() == 1 && insn.op0_kind() == OpKind::Register {
        let r0 = gpr32(insn.op0_register())?;
        let op = match m {
            M::Inc => Op::IncR32,
            M::Dec => Op::DecR32,
            M::Push => Op::PushR32,
            M::Pop => Op::PopR32,
            _ => return None,
        };
        return Some((op, r0, 0, 0));
    }
    if insn.op_count() == 3
        && m == M::Imul
        && insn.op1_kind() == OpKind::Register
        && matches!(
            insn.op2_kind(),
            OpKind::Immediate32 | OpKind::Immediate8to32
        )
    {
        let r0 = gpr32(insn.op0_register())?;
        let r1 = gpr32(insn.op1_register())?;
        return Some((Op::ImulR32R32Imm, r0, r1, insn.immediate(2) as u32));
    }
    if insn.op_count() != 2 || insn.op0_kind() != OpKind::Register {
        return None;
    }
    let r0 = gpr32(insn.op0_register())?;
    if matches!(m, M::Shl | M::Sal) && insn.op1_kind() == OpKind::Immediate8 {
        return Some((Op::ShlR32Imm, r0, 0, u32::from(insn.immediate8())));
    }
    match insn.op1_kind() {
        OpKind::Register => {
            let r1 = gpr32(insn.op1_register())?;
            let op = match m {
                M::Mov => Op::MovR32R32,
                M::Add => Op::AddR32R32,
                M::Sub => Op::SubR32R32,
                M::And => Op::AndR32R32,
                M::Or => Op::OrR32R32,
                M::Xor => Op::XorR32R32,
                M::Cmp => Op::CmpR32R32,
                M::Test => Op::TestR32R32,
                _ => return None,
            };
            Some((op, r0, r1, 0))
        }
        OpKind::Immediate32 | OpKind::Immediate8to32 => {
            let imm = insn.immediate(1) as u32;
            let op = match m {
                M::Mov => Op::MovR32Imm,
                M::Add => Op::AddR32Imm,
                M::Sub => Op::SubR32Imm,
                M::And => Op::AndR32Imm,
                M::Or => Op::OrR32Imm,
                M::Xor => Op::XorR32Imm,
                M::Cmp => Op::CmpR32Imm,
                M::Test => Op::TestR32Imm,
                _ => return None,
            };
            Some((op, r0, 0, imm))
        }
        _ => None,
    }
}

/// `MOV r32, r32`.
pub fn mov_r32_r32<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    _: &mut B,
) -> Result<(), Exception> {
    let g = &mut cpu.state.gpr;
    g[usize::from(d.r0 & 7)] = g[usize::from(d.r1 & 7)];
    Ok(())
}

/// `MOV r32, imm32`.
pub fn mov_r32_imm<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    _: &mut B,
) -> Result<(), Exception> {
    cpu.state.gpr[usize::from(d.r0 & 7)] = d.imm;
    Ok(())
}

/// Defines a 32-bit ALU handler for a register source and one for an
/// immediate source: `$f(a, b)` is the result, `$lazy` the flags record,
/// `$write` whether the result is stored.
macro_rules! alu {
    ($rr:ident, $ri:ident, $doc:literal, $lazy:expr, $write:literal, $f:expr) => {
        #[doc = concat!("`", $doc, " r32, r32`.")]
        pub fn $rr<B: Bus + ?Sized>(
            cpu: &mut Cpu,
            d: &Decoded,
            _: &mut B,
        ) -> Result<(), Exception> {
            let s = &mut cpu.state;
            let b = s.gpr[usize::from(d.r1 & 7)];
            alu_apply(s, d.r0, b, $lazy, $write, $f);
            Ok(())
        }

        #[doc = concat!("`", $doc, " r32, imm`.")]
        pub fn $ri<B: Bus + ?Sized>(
            cpu: &mut Cpu,
            d: &Decoded,
            _: &mut B,
        ) -> Result<(), Exception> {
            alu_apply(&mut cpu.state, d.r0, d.imm, $lazy, $write, $f);
            Ok(())
        }
    };
}

/// `dst op= b` on a 32-bit register, recording the flags.
#[inline(always)]
fn alu_apply(
    s: &mut crate::state::CpuState,
    dst: u8,
    b: u32,
    lazy: LazyOp,
    write: bool,
    f: impl Fn(u32, u32) -> u32,
) {
    let slot = usize::from(dst & 7);
    let a = s.gpr[slot];
    let r = f(a, b);
    if write {
        s.gpr[slot] = r;
    }
    s.set_lazy(lazy, 4, a, b, r);
}

alu!(
    add_r32_r32,
    add_r32_imm,
    "ADD",
    LazyOp::Add,
    true,
    u32::wrapping_add
);
alu!(
    sub_r32_r32,
    sub_r32_imm,
    "SUB",
    LazyOp::Sub,
    true,
    u32::wrapping_sub
);
alu!(
    cmp_r32_r32,
    cmp_r32_imm,
    "CMP",
    LazyOp::Sub,
    false,
    u32::wrapping_sub
);
alu!(
    and_r32_r32,
    and_r32_imm,
    "AND",
    LazyOp::Logic,
    true,
    |a, b| a & b
);
alu!(or_r32_r32, or_r32_imm, "OR", LazyOp::Logic, true, |a, b| a
    | b);
alu!(
    xor_r32_r32,
    xor_r32_imm,
    "XOR",
    LazyOp::Logic,
    true,
    |a, b| a ^ b
);
alu!(
    test_r32_r32,
    test_r32_imm,
    "TEST",
    LazyOp::Logic,
    false,
    |a, b| a & b
);

/// `INC r32` (CF kept).
pub fn inc_r32<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, _: &mut B) -> Result<(), Exception> {
    alu_apply(
        &mut cpu.state,
        d.r0,
        1,
        LazyOp::Inc,
        true,
        u32::wrapping_add,
    );
    Ok(())
}

/// `DEC r32` (CF kept).
pub fn dec_r32<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, _: &mut B) -> Result<(), Exception> {
    alu_apply(
        &mut cpu.state,
        d.r0,
        1,
        LazyOp::Dec,
        true,
        u32::wrapping_sub,
    );
    Ok(())
}

/// Whether `m` is one of the sixteen Jcc mnemonics.
fn is_jcc(m: M) -> bool {
    matches!(
        m,
        M::Jo
            | M::Jno
            | M::Jb
            | M::Jae
            | M::Je
            | M::Jne
            | M::Jbe
            | M::Ja
            | M::Js
            | M::Jns
            | M::Jp
            | M::Jnp
            | M::Jl
            | M::Jge
            | M::Jle
            | M::Jg
    )
}

/// The target of a relative branch (see [`Cpu::relative_target`]).
#[inline(always)]
fn relative(cpu: &Cpu, d: &Decoded) -> u32 {
    let t = cpu.ctx.start_eip.wrapping_add(d.imm);
    if d.r1 != 0 {
        t & 0xFFFF
    } else {
        t
    }
}

/// The `Jcc rel` ops by condition nibble.
const JCC: [Op; 16] = [
    Op::JoRel,
    Op::JnoRel,
    Op::JbRel,
    Op::JaeRel,
    Op::JeRel,
    Op::JneRel,
    Op::JbeRel,
    Op::JaRel,
    Op::JsRel,
    Op::JnsRel,
    Op::JpRel,
    Op::JnpRel,
    Op::JlRel,
    Op::JgeRel,
    Op::JleRel,
    Op::JgRel,
];

/// `Jcc rel` for condition nibble `CC` (a constant, so only the flags
/// that condition reads are evaluated).
pub fn jcc_rel<const CC: u8, B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    _: &mut B,
) -> Result<(), Exception> {
    if cpu.state.condition(CC) {
        let t = relative(cpu, d);
        cpu.branch_to(t)?;
    }
    Ok(())
}

/// `JMP rel`.
pub fn jmp_rel<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, _: &mut B) -> Result<(), Exception> {
    let t = relative(cpu, d);
    cpu.branch_to(t)
}

/// `CALL rel`: the general `CALL` for a relative target.
pub fn call_rel<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, bus: &mut B) -> Result<(), Exception> {
    let target = relative(cpu, d);
    let w = if d.r1 != 0 { 2 } else { 4 };
    let ret = cpu.ctx.next_eip;
    if cpu.state.model != crate::model::CpuModel::I8086
        && target > cpu.state.seg[crate::state::SegReg::Cs as usize].limit
    {
        return Err(Exception::GeneralProtection(0));
    }
    cpu.push(bus, ret, w)?;
    cpu.ctx.next_eip = target;
    Ok(())
}

/// `PUSH r32`.
pub fn push_r32<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, bus: &mut B) -> Result<(), Exception> {
    let v = cpu.state.gpr[usize::from(d.r0 & 7)];
    cpu.push(bus, v, 4)
}

/// `POP r32` (POP ESP loads the popped value after the increment).
pub fn pop_r32<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, bus: &mut B) -> Result<(), Exception> {
    let v = cpu.pop(bus, 4)?;
    cpu.state.gpr[usize::from(d.r0 & 7)] = v;
    Ok(())
}

/// `IMUL r32, r32, imm`: the general IMUL's result and flags (CF = OF =
/// the product overflowed; SF, ZF, PF from the result; AF cleared).
pub fn imul_r32_r32_imm<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    _: &mut B,
) -> Result<(), Exception> {
    use crate::state::eflags::{AF, CF, OF, PF, SF, ZF};
    let a = cpu.state.gpr[usize::from(d.r1 & 7)];
    let p = i64::from(a as i32) * i64::from(d.imm as i32);
    let r = p as u32;
    cpu.state.gpr[usize::from(d.r0 & 7)] = r;
    let overflow = i64::from(r as i32) != p;
    let f = crate::flags::szp(r, 4) | if overflow { CF | OF } else { 0 };
    cpu.state.set_status(CF | OF | SF | ZF | PF | AF, f);
    Ok(())
}

/// `SHL r32, imm8` (and `SHL r32, 1`) on the family-6 model: the general
/// SHL's result and flags (count masked to 5 bits; a count of 0 changes
/// nothing; AF kept). Other models take the general handler.
pub fn shl_r32_imm<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    bus: &mut B,
) -> Result<(), Exception> {
    use crate::state::eflags::{CF, OF, PF, SF, ZF};
    if cpu.state.model != crate::model::CpuModel::P6 {
        return super::dispatch::resolve(&d.insn).handler()(cpu, d, bus);
    }
    let c = d.imm & 0x1F;
    if c == 0 {
        return Ok(());
    }
    let slot = usize::from(d.r0 & 7);
    let wide = u64::from(cpu.state.gpr[slot]) << c;
    let r = wide as u32;
    let cf = (wide >> 32) & 1 != 0;
    let of = (r >> 31 != 0) != cf;
    cpu.state.gpr[slot] = r;
    let f = crate::flags::szp(r, 4) | if cf { CF } else { 0 } | if of { OF } else { 0 };
    cpu.state.set_status(CF | OF | SF | ZF | PF, f);
    Ok(())
}
