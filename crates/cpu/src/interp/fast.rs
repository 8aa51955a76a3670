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
use crate::model::CpuModel;
use crate::state::CpuState;
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

/// What [`run_in_block`] did with an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ran {
    /// A register form ran (without `prepare`).
    Register,
    /// The instruction retired.
    Retired,
    /// The instruction faulted; the exception is in [`Cpu::fault`].
    Faulted,
}

/// Runs the specialised `$op => $f` forms inline and anything else
/// through the handler table; the [`super::Handler`] status.
macro_rules! inlined_forms {
    ($cpu:ident, $d:ident, $bus:ident, $($op:ident => $f:expr,)*) => {
        match $d.op {
            $(Op::$op => {
                let r = $f($cpu, $d, $bus);
                super::dispatch::retired($cpu, r)
            })*
            _ => $d.op.handler()($cpu, $d, $bus),
        }
    };
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
#[inline(always)]
pub fn mov_r32_mem<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    bus: &mut B,
) -> Result<(), Exception> {
    let off = offset(cpu, d);
    let v = cpu.read_mem_windowed(bus, d.seg, off, 4)?;
    cpu.state.gpr[usize::from(d.r0 & 7)] = v;
    Ok(())
}

/// `MOV m32, r32`.
#[inline(always)]
pub fn mov_mem_r32<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    bus: &mut B,
) -> Result<(), Exception> {
    let off = offset(cpu, d);
    let v = cpu.state.gpr[usize::from(d.r0 & 7)];
    cpu.write_mem_windowed(bus, d.seg, off, 4, v)
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
    if m == M::Ret {
        let release = if insn.op_count() > 0 {
            u32::from(insn.immediate16())
        } else {
            0
        };
        return Some((Op::RetNear, 0, 0, release));
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

/// Defines the handler `$name` of a register form whose body
/// `$core(&mut CpuState, &Decoded)` reads and writes only registers and
/// flags, so it cannot fault; [`register_form`] runs the same bodies.
macro_rules! register_handler {
    ($name:ident, $core:ident, $doc:literal) => {
        #[doc = $doc]
        #[inline(always)]
        pub fn $name<B: Bus + ?Sized>(
            cpu: &mut Cpu,
            d: &Decoded,
            _: &mut B,
        ) -> Result<(), Exception> {
            $core(&mut cpu.state, d);
            Ok(())
        }
    };
}

/// The 32-bit ALU forms with a register or immediate source: the handler
/// names, their ops, the mnemonic, the flags record, whether the result is
/// stored, and `f(a, b)`, the result. Defines the handlers and
/// `alu_form`, which runs the body of any of them.
macro_rules! alu_forms {
    ($($rr:ident, $ri:ident, $oprr:ident, $opri:ident, $doc:literal, $lazy:expr, $write:literal, $f:expr;)*) => {
        $(
            #[doc = concat!("`", $doc, " r32, r32`.")]
            #[inline(always)]
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
            #[inline(always)]
            pub fn $ri<B: Bus + ?Sized>(
                cpu: &mut Cpu,
                d: &Decoded,
                _: &mut B,
            ) -> Result<(), Exception> {
                alu_apply(&mut cpu.state, d.r0, d.imm, $lazy, $write, $f);
                Ok(())
            }
        )*

        /// Runs `d` in the block loop of [`Cpu::run`], exactly as its
        /// [`super::Handler`] does, with the specialised forms' bodies
        /// inlined rather than called through the handler table (one
        /// dispatch on [`Decoded::op`]). A register form that cannot fault
        /// (MOV, the ALU forms, INC, DEC, IMUL r32, r32, imm, SHL r32, imm
        /// on the family-6 model) reads no [`crate::cpu::InsnContext`] and
        /// leaves EIP to the caller: it runs as is ([`Ran::Register`]).
        /// Anything else runs after `prepare(cpu)`, which sets up what a
        /// handler reads ([`Ran::Retired`] or [`Ran::Faulted`], the
        /// exception in [`Cpu::fault`]).
        #[inline(always)]
        pub(crate) fn run_in_block<B: Bus + ?Sized>(
            cpu: &mut Cpu,
            d: &Decoded,
            bus: &mut B,
            prepare: impl FnOnce(&mut Cpu),
        ) -> Ran {
            let s = &mut cpu.state;
            match d.op {
                $(
                    Op::$oprr => {
                        let b = s.gpr[usize::from(d.r1 & 7)];
                        alu_apply(s, d.r0, b, $lazy, $write, $f);
                        return Ran::Register;
                    }
                    Op::$opri => {
                        alu_apply(s, d.r0, d.imm, $lazy, $write, $f);
                        return Ran::Register;
                    }
                )*
                Op::MovR32R32 => {
                    mov_rr(s, d);
                    return Ran::Register;
                }
                Op::MovR32Imm => {
                    mov_ri(s, d);
                    return Ran::Register;
                }
                Op::IncR32 => {
                    inc(s, d);
                    return Ran::Register;
                }
                Op::DecR32 => {
                    dec(s, d);
                    return Ran::Register;
                }
                Op::ImulR32R32Imm => {
                    imul_rri(s, d);
                    return Ran::Register;
                }
                Op::ShlR32Imm if s.model == CpuModel::P6 => {
                    shl_ri_p6(s, d);
                    return Ran::Register;
                }
                _ => {}
            }
            prepare(cpu);
            let retired = inlined_forms!(cpu, d, bus,
                PushR32 => push_r32,
                PopR32 => pop_r32,
                JoRel => jcc_rel::<0, B>,
                JnoRel => jcc_rel::<1, B>,
                JbRel => jcc_rel::<2, B>,
                JaeRel => jcc_rel::<3, B>,
                JeRel => jcc_rel::<4, B>,
                JneRel => jcc_rel::<5, B>,
                JbeRel => jcc_rel::<6, B>,
                JaRel => jcc_rel::<7, B>,
                JsRel => jcc_rel::<8, B>,
                JnsRel => jcc_rel::<9, B>,
                JpRel => jcc_rel::<10, B>,
                JnpRel => jcc_rel::<11, B>,
                JlRel => jcc_rel::<12, B>,
                JgeRel => jcc_rel::<13, B>,
                JleRel => jcc_rel::<14, B>,
                JgRel => jcc_rel::<15, B>,
                JmpRel => jmp_rel,
                CallRel => call_rel,
                RetNear => ret_near,
                MovR32Mem => mov_r32_mem,
                MovMemR32 => mov_mem_r32,
            );
            if retired {
                Ran::Retired
            } else {
                Ran::Faulted
            }
        }
    };
}

/// `dst op= b` on a 32-bit register, recording the flags.
#[inline(always)]
fn alu_apply(
    s: &mut CpuState,
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

alu_forms! {
    add_r32_r32, add_r32_imm, AddR32R32, AddR32Imm, "ADD", LazyOp::Add, true, u32::wrapping_add;
    sub_r32_r32, sub_r32_imm, SubR32R32, SubR32Imm, "SUB", LazyOp::Sub, true, u32::wrapping_sub;
    cmp_r32_r32, cmp_r32_imm, CmpR32R32, CmpR32Imm, "CMP", LazyOp::Sub, false, u32::wrapping_sub;
    and_r32_r32, and_r32_imm, AndR32R32, AndR32Imm, "AND", LazyOp::Logic, true, |a, b| a & b;
    or_r32_r32, or_r32_imm, OrR32R32, OrR32Imm, "OR", LazyOp::Logic, true, |a, b| a | b;
    xor_r32_r32, xor_r32_imm, XorR32R32, XorR32Imm, "XOR", LazyOp::Logic, true, |a, b| a ^ b;
    test_r32_r32, test_r32_imm, TestR32R32, TestR32Imm, "TEST", LazyOp::Logic, false, |a, b| a & b;
}

/// `MOV r32, r32`.
#[inline(always)]
fn mov_rr(s: &mut CpuState, d: &Decoded) {
    s.gpr[usize::from(d.r0 & 7)] = s.gpr[usize::from(d.r1 & 7)];
}
register_handler!(mov_r32_r32, mov_rr, "`MOV r32, r32`.");

/// `MOV r32, imm32`.
#[inline(always)]
fn mov_ri(s: &mut CpuState, d: &Decoded) {
    s.gpr[usize::from(d.r0 & 7)] = d.imm;
}
register_handler!(mov_r32_imm, mov_ri, "`MOV r32, imm32`.");

/// `INC r32` (CF kept).
#[inline(always)]
fn inc(s: &mut CpuState, d: &Decoded) {
    alu_apply(s, d.r0, 1, LazyOp::Inc, true, u32::wrapping_add);
}
register_handler!(inc_r32, inc, "`INC r32` (CF kept).");

/// `DEC r32` (CF kept).
#[inline(always)]
fn dec(s: &mut CpuState, d: &Decoded) {
    alu_apply(s, d.r0, 1, LazyOp::Dec, true, u32::wrapping_sub);
}
register_handler!(dec_r32, dec, "`DEC r32` (CF kept).");

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
#[inline(always)]
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
#[inline(always)]
pub fn jmp_rel<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, _: &mut B) -> Result<(), Exception> {
    let t = relative(cpu, d);
    cpu.branch_to(t)
}

/// `CALL rel`: the general `CALL` for a relative target.
#[inline(always)]
pub fn call_rel<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, bus: &mut B) -> Result<(), Exception> {
    let target = relative(cpu, d);
    let w = if d.r1 != 0 { 2 } else { 4 };
    let ret = cpu.ctx.next_eip;
    if cpu.state.model != crate::model::CpuModel::I8086
        && target > cpu.state.seg[crate::state::SegReg::Cs as usize].limit
    {
        return Err(Exception::GeneralProtection(0));
    }
    cpu.push_windowed(bus, ret, w)?;
    cpu.ctx.next_eip = target;
    Ok(())
}

/// `RET [imm16]` (near): the general `RET` with the release count in `imm`.
#[inline(always)]
pub fn ret_near<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, bus: &mut B) -> Result<(), Exception> {
    let w = cpu.op_size();
    let mask = cpu.stack_mask();
    let sp = cpu.state.gpr[4] & mask;
    let target = cpu.read_mem_windowed(bus, crate::state::SegReg::Ss, sp, w)?;
    cpu.branch_to(target)?;
    let esp = cpu.state.gpr[4];
    cpu.state.gpr[4] = (esp & !mask) | (esp.wrapping_add(w).wrapping_add(d.imm) & mask);
    Ok(())
}

/// `PUSH r32`.
#[inline(always)]
pub fn push_r32<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, bus: &mut B) -> Result<(), Exception> {
    let v = cpu.state.gpr[usize::from(d.r0 & 7)];
    cpu.push_windowed(bus, v, 4)
}

/// `POP r32` (POP ESP loads the popped value after the increment).
#[inline(always)]
pub fn pop_r32<B: Bus + ?Sized>(cpu: &mut Cpu, d: &Decoded, bus: &mut B) -> Result<(), Exception> {
    let v = cpu.pop_windowed(bus, 4)?;
    cpu.state.gpr[usize::from(d.r0 & 7)] = v;
    Ok(())
}

/// `IMUL r32, r32, imm`: the general IMUL's result and flags (CF = OF =
/// the product overflowed; SF, ZF, PF from the result; AF cleared).
#[inline(always)]
fn imul_rri(s: &mut CpuState, d: &Decoded) {
    use crate::state::eflags::{AF, CF, OF, PF, SF, ZF};
    let a = s.gpr[usize::from(d.r1 & 7)];
    let p = i64::from(a as i32) * i64::from(d.imm as i32);
    let r = p as u32;
    s.gpr[usize::from(d.r0 & 7)] = r;
    let overflow = i64::from(r as i32) != p;
    let f = crate::flags::szp(r, 4) | if overflow { CF | OF } else { 0 };
    s.set_status(CF | OF | SF | ZF | PF | AF, f);
}
register_handler!(
    imul_r32_r32_imm,
    imul_rri,
    "`IMUL r32, r32, imm` (see `imul_rri`)."
);

/// `SHL r32, imm8` (and `SHL r32, 1`) on the family-6 model: the general
/// SHL's result and flags (count masked to 5 bits; a count of 0 changes
/// nothing; AF kept).
#[inline(always)]
fn shl_ri_p6(s: &mut CpuState, d: &Decoded) {
    use crate::state::eflags::{CF, OF, PF, SF, ZF};
    let c = d.imm & 0x1F;
    if c == 0 {
        return;
    }
    let slot = usize::from(d.r0 & 7);
    let wide = u64::from(s.gpr[slot]) << c;
    let r = wide as u32;
    let cf = (wide >> 32) & 1 != 0;
    let of = (r >> 31 != 0) != cf;
    s.gpr[slot] = r;
    let f = crate::flags::szp(r, 4) | if cf { CF } else { 0 } | if of { OF } else { 0 };
    s.set_status(CF | OF | SF | ZF | PF, f);
}

/// `SHL r32, imm8`: [`shl_ri_p6`] on the family-6 model, the general
/// handler on the others.
#[inline(always)]
pub fn shl_r32_imm<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    d: &Decoded,
    bus: &mut B,
) -> Result<(), Exception> {
    if cpu.state.model != CpuModel::P6 {
        return super::dispatch::resolve(&d.insn).execute(cpu, d, bus);
    }
    shl_ri_p6(&mut cpu.state, d);
    Ok(())
}
