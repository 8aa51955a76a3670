//! Instructions lowered inline: MOV MOVZX MOVSX LEA XCHG, ADD SUB CMP AND
//! OR XOR TEST INC DEC NEG NOT (ADC SBB in `emit_carry.rs`), PUSH POP LEAVE,
//! SETcc CMOVcc, NOP, RDTSC, LODS SCAS (`emit_string.rs`), and the near
//! control transfers Jcc JMP CALL RET, JMP and CALL through a register or
//! memory included (Intel SDM Vol. 2A-2B). Each one
//! reads its operands, may leave the block before itself (a slow memory
//! path), and only then writes registers and flags, like the interpreter's
//! handlers, so an exit leaves the state exactly as before the instruction.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use iced_x86::{Mnemonic as M, OpKind};
use oxide86_cpu::decode::Decoded;
use oxide86_cpu::flags::LazyOp;
use oxide86_cpu::interp::operand::gpr_slot;

use crate::ctx::EXIT_INTERP;
use crate::emit_mem::width_mask;
use crate::translate::{off, Emitter, GuestInsn, Miscompile};

fn is_gpr(insn: &iced_x86::Instruction, n: u32) -> bool {
    insn.op_kind(n) == OpKind::Register && gpr_slot(insn.op_register(n)).is_some()
}

fn is_gpr_or_mem(insn: &iced_x86::Instruction, n: u32) -> bool {
    is_gpr(insn, n) || insn.op_kind(n) == OpKind::Memory
}

fn is_imm(insn: &iced_x86::Instruction, n: u32) -> bool {
    matches!(
        insn.op_kind(n),
        OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
    )
}

/// The condition nibble of a Jcc/SETcc/CMOVcc (as the interpreter's).
pub(crate) fn cc_of(insn: &iced_x86::Instruction) -> u8 {
    (insn.condition_code() as u8).wrapping_sub(1) & 0xF
}

/// The target of a relative branch at `eip`.
pub(crate) fn rel_target(insn: &iced_x86::Instruction, eip: u32) -> u32 {
    let t = eip.wrapping_add(insn.near_branch_target() as u32);
    match insn.op_kind(0) {
        OpKind::NearBranch16 => t & 0xFFFF,
        _ => t,
    }
}

/// Whether `insn` is a JMP or CALL to a relative target (its target is
/// known when the block is translated).
pub(crate) fn is_rel_branch(insn: &iced_x86::Instruction) -> bool {
    insn.op_count() == 1 && matches!(insn.op_kind(0), OpKind::NearBranch16 | OpKind::NearBranch32)
}

/// Whether `insn` is a near JMP or CALL through a general register or
/// memory (SDM Vol. 2A, "CALL", "JMP": the target is the operand).
pub(crate) fn is_indirect_branch(insn: &iced_x86::Instruction) -> bool {
    (insn.is_jmp_near_indirect() || insn.is_call_near_indirect()) && is_gpr_or_mem(insn, 0)
}

/// Whether `d` is lowered inline in `mode`: `Some(true)` for an inline
/// control transfer (it ends the block), `Some(false)` for straight-line
/// code, `None` if it is not lowered inline.
pub(crate) fn inline_kind(d: &Decoded) -> Option<bool> {
    let insn = &d.insn;
    if d.pop_cs || insn.has_lock_prefix() {
        return None;
    }
    let n = insn.op_count();
    let straight = match insn.mnemonic() {
        // PAUSE is left to the interpreter: it may end the step
        // (`Cpu::pause_exits`) so that the machine lets time pass.
        // CLI only where it cannot fault (see `translate::cli_inline`).
        M::Nop | M::Rdtsc | M::Cli => n == 0,
        M::Mov => {
            n == 2
                && ((is_gpr(insn, 0) && (is_gpr_or_mem(insn, 1) || is_imm(insn, 1)))
                    || (insn.op_kind(0) == OpKind::Memory && (is_gpr(insn, 1) || is_imm(insn, 1))))
        }
        M::Movzx | M::Movsx => n == 2 && is_gpr(insn, 0) && is_gpr_or_mem(insn, 1),
        M::Lea => n == 2 && is_gpr(insn, 0) && insn.op_kind(1) == OpKind::Memory,
        M::Xchg => n == 2 && is_gpr(insn, 0) && is_gpr(insn, 1),
        M::Add | M::Sub | M::Cmp | M::And | M::Or | M::Xor | M::Test | M::Adc | M::Sbb => {
            n == 2
                && is_gpr_or_mem(insn, 0)
                && (is_gpr(insn, 1)
                    || is_imm(insn, 1)
                    || (insn.op_kind(1) == OpKind::Memory && is_gpr(insn, 0)))
        }
        M::Inc | M::Dec | M::Neg | M::Not => n == 1 && is_gpr_or_mem(insn, 0),
        M::Imul | M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror => {
            crate::emit_muls::inline_form(insn, |i| is_gpr(insn, i), |i| is_gpr_or_mem(insn, i))
        }
        M::Push => n == 1 && (is_gpr_or_mem(insn, 0) || is_imm(insn, 0)),
        M::Leave => n == 0,
        M::Lodsb | M::Lodsw | M::Lodsd | M::Scasb | M::Scasw | M::Scasd => {
            crate::emit_string::inline_form(insn)
        }
        M::Pop => n == 1 && is_gpr(insn, 0),
        M::Cmove
        | M::Cmovne
        | M::Cmovb
        | M::Cmovae
        | M::Cmovbe
        | M::Cmova
        | M::Cmovs
        | M::Cmovns
        | M::Cmovp
        | M::Cmovnp
        | M::Cmovl
        | M::Cmovge
        | M::Cmovle
        | M::Cmovg
        | M::Cmovo
        | M::Cmovno => n == 2 && is_gpr(insn, 0) && is_gpr_or_mem(insn, 1),
        M::Sete
        | M::Setne
        | M::Setb
        | M::Setae
        | M::Setbe
        | M::Seta
        | M::Sets
        | M::Setns
        | M::Setp
        | M::Setnp
        | M::Setl
        | M::Setge
        | M::Setle
        | M::Setg
        | M::Seto
        | M::Setno => n == 1 && is_gpr(insn, 0),
        _ => false,
    };
    if straight {
        return Some(false);
    }
    let near_rel = is_rel_branch(insn);
    let transfer = match insn.mnemonic() {
        M::Jmp | M::Call if near_rel || is_indirect_branch(insn) => true,
        _ if near_rel && insn.is_jcc_short_or_near() => true,
        M::Ret => true,
        _ => false,
    };
    // Branch targets beyond the CS limit are left to the interpreter at
    // run time (see `branch`).
    transfer.then_some(true)
}

/// Reads operand `n` (register, immediate or the memory operand at
/// `addr`), as the interpreter's `read_op`.
pub(crate) fn read_op(
    e: &mut Emitter<'_>,
    g: &GuestInsn,
    n: u32,
    mem: Option<Value>,
    w: u32,
) -> Value {
    let insn = &g.d.insn;
    match insn.op_kind(n) {
        OpKind::Register => e.read_reg(insn.op_register(n)),
        OpKind::Memory => match mem {
            Some(a) => e.load_guest(a, w),
            None => e.b.ins().iconst(types::I32, 0),
        },
        OpKind::Immediate8to16 => {
            e.b.ins()
                .iconst(types::I32, i64::from(insn.immediate8to16() as u16))
        }
        _ => {
            e.b.ins()
                .iconst(types::I32, i64::from(insn.immediate(n) as u32))
        }
    }
}

/// The width in bytes of operand `n`.
pub(crate) fn width(insn: &iced_x86::Instruction, n: u32) -> u32 {
    oxide86_cpu::interp::operand::op_width(insn, n)
}

/// The checked host address of the instruction's memory operand
/// (`size` bytes), if it has one.
pub(crate) fn mem_operand(
    e: &mut Emitter<'_>,
    g: &GuestInsn,
    size: u32,
    write: bool,
) -> Option<Value> {
    let insn = &g.d.insn;
    if !(0..insn.op_count()).any(|i| insn.op_kind(i) == OpKind::Memory) {
        return None;
    }
    let seg = Emitter::memory_segment(g);
    let off = e.effective_offset(g);
    Some(e.host_addr(g, seg, off, size, write))
}

/// CLI (SDM Vol. 2A, "CLI") where it clears IF and nothing else: in real
/// mode, or at CPL 0 outside virtual-8086 mode (IOPL >= CPL always
/// holds there). An interrupt that the dispatcher would now hold back
/// could only be taken at a block boundary anyway.
fn cli(e: &mut Emitter<'_>) {
    let ef = e.load_st(types::I32, off::EFLAGS);
    let ef =
        e.b.ins()
            .band_imm_u(ef, i64::from(!oxide86_cpu::state::eflags::IF));
    e.store_st(ef, off::EFLAGS);
}

/// Emits one inline instruction.
pub(crate) fn emit(e: &mut Emitter<'_>, g: &GuestInsn) {
    let insn = g.d.insn;
    match insn.mnemonic() {
        M::Nop => {}
        M::Rdtsc => rdtsc(e, g),
        M::Cli => cli(e),
        M::Adc | M::Sbb => crate::emit_carry::adc_sbb(e, g),
        // Only the REP forms `emit_string::rep_inline` accepted get here.
        M::Movsb | M::Movsw | M::Movsd | M::Stosb | M::Stosw | M::Stosd => {
            crate::emit_string::rep_movs_stos(e, g)
        }
        M::Mov => {
            let w = width(&insn, 0);
            let to_mem = insn.op_kind(0) == OpKind::Memory;
            let mem = mem_operand(e, g, w, to_mem);
            let v = read_op(e, g, 1, mem, w);
            if to_mem {
                if let Some(a) = mem {
                    e.store_guest(a, v, w);
                }
            } else {
                e.write_reg(insn.op0_register(), v);
            }
        }
        M::Movzx | M::Movsx => {
            let ws = width(&insn, 1);
            let mem = mem_operand(e, g, ws, false);
            let v = read_op(e, g, 1, mem, ws);
            let v = if insn.mnemonic() == M::Movsx && ws < 4 {
                let shift = i64::from(32 - 8 * ws);
                let t = e.b.ins().ishl_imm_u(v, shift);
                e.b.ins().sshr_imm_u(t, shift)
            } else {
                v
            };
            e.write_reg(insn.op0_register(), v);
        }
        M::Lea => {
            let off = e.effective_offset(g);
            e.write_reg(insn.op0_register(), off);
        }
        M::Xchg => {
            let a = e.read_reg(insn.op0_register());
            let b = e.read_reg(insn.op1_register());
            e.write_reg(insn.op0_register(), b);
            e.write_reg(insn.op1_register(), a);
        }
        M::Add | M::Sub | M::Cmp | M::And | M::Or | M::Xor | M::Test => binary(e, g),
        M::Inc | M::Dec | M::Neg | M::Not => unary(e, g),
        M::Imul => crate::emit_muls::imul(e, g),
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror => crate::emit_muls::shift(e, g),
        M::Leave => e.leave(g),
        M::Lodsb | M::Lodsw | M::Lodsd | M::Scasb | M::Scasw | M::Scasd => {
            crate::emit_string::lods_scas(e, g)
        }
        M::Push => {
            let w = width(&insn, 0);
            // The operand's address uses ESP before the push.
            let mem = mem_operand(e, g, w, false);
            let v = read_op(e, g, 0, mem, w);
            let v = e.mask(v, i64::from(width_mask(w)));
            e.push(g, v, w);
        }
        M::Pop => {
            let w = width(&insn, 0);
            let v = e.peek_stack(g, 0, w);
            e.release_stack(w);
            e.write_reg(insn.op0_register(), v);
        }
        M::Sete
        | M::Setne
        | M::Setb
        | M::Setae
        | M::Setbe
        | M::Seta
        | M::Sets
        | M::Setns
        | M::Setp
        | M::Setnp
        | M::Setl
        | M::Setge
        | M::Setle
        | M::Setg
        | M::Seto
        | M::Setno => {
            let c = e.condition(cc_of(&insn));
            let v = e.b.ins().uextend(types::I32, c);
            e.write_reg(insn.op0_register(), v);
        }
        M::Jmp | M::Call if is_indirect_branch(&insn) => indirect_branch(e, g),
        M::Jmp | M::Call => {
            let target = rel_target(&insn, g.eip);
            if insn.mnemonic() == M::Call {
                let w = if insn.op_kind(0) == OpKind::NearBranch16 {
                    2
                } else {
                    4
                };
                if target > e.mode.cs_limit {
                    e.exit_const(g.eip, EXIT_INTERP);
                    return;
                }
                let ret = e.b.ins().iconst(types::I32, i64::from(g.next as i32));
                e.push(g, ret, w);
            }
            branch(e, g, target);
        }
        M::Ret => {
            let w = if g.d.op32 { 4 } else { 2 };
            let target = e.peek_stack(g, 0, w);
            let out = e.b.ins().icmp_imm_u(
                IntCC::UnsignedGreaterThan,
                target,
                i64::from(e.mode.cs_limit),
            );
            e.side_exit_if(out, g.eip);
            let release = if insn.op_count() > 0 {
                u32::from(insn.immediate16())
            } else {
                0
            };
            e.release_stack(w + release);
            e.k += 1;
            e.transfer_dynamic(target);
            e.k -= 1;
        }
        _ if insn.is_jcc_short_or_near() => {
            if let Some(arms) = e.arms.iter().find(|a| a.jcc == g.eip).cloned() {
                crate::emit_select::emit(e, g, &arms);
                return;
            }
            let target = rel_target(&insn, g.eip);
            let c = e.condition(cc_of(&insn));
            let taken = e.b.create_block();
            let fall = e.b.create_block();
            e.b.ins().brif(c, taken, &[], fall, &[]);
            e.b.switch_to_block(fall);
            e.k += 1;
            e.transfer(g.next);
            e.k -= 1;
            e.b.switch_to_block(taken);
            branch(e, g, target);
        }
        M::Cmove
        | M::Cmovne
        | M::Cmovb
        | M::Cmovae
        | M::Cmovbe
        | M::Cmova
        | M::Cmovs
        | M::Cmovns
        | M::Cmovp
        | M::Cmovnp
        | M::Cmovl
        | M::Cmovge
        | M::Cmovle
        | M::Cmovg
        | M::Cmovo
        | M::Cmovno => {
            let w = width(&insn, 0);
            let mem = mem_operand(e, g, w, false);
            let v = read_op(e, g, 1, mem, w);
            let c = e.condition(cc_of(&insn));
            let old = e.read_reg(insn.op0_register());
            // A false condition leaves the register as it was.
            let v = e.b.ins().select(c, v, old);
            e.write_reg(insn.op0_register(), v);
        }
        _ => e.exit_const(g.eip, EXIT_INTERP),
    }
}

/// RDTSC: EDX:EAX = the instructions retired before it plus the TSC
/// offset (`misc::rdtsc`). With CR4.TSD set the interpreter runs it (it
/// may fault).
fn rdtsc(e: &mut Emitter<'_>, g: &GuestInsn) {
    const CR4_TSD: i64 = 1 << 2;
    let cr4 = e.load_st(types::I32, off::CR4);
    let tsd = e.b.ins().band_imm_u(cr4, CR4_TSD);
    let tsd = e.b.ins().icmp_imm_u(IntCC::NotEqual, tsd, 0);
    e.side_exit_if(tsd, g.eip);
    let ic = e.icount_now();
    let tsc_off = e.load_st(types::I64, off::TSC_OFFSET);
    let tsc = e.b.ins().iadd(ic, tsc_off);
    let lo = e.b.ins().ireduce(types::I32, tsc);
    let hi = e.b.ins().ushr_imm_u(tsc, 32);
    let hi = e.b.ins().ireduce(types::I32, hi);
    e.write_reg(iced_x86::Register::EAX, lo);
    e.write_reg(iced_x86::Register::EDX, hi);
}

/// JMP or CALL through a register or memory (SDM Vol. 2A, "CALL",
/// "JMP", near forms): the target is read first (with ESP as it was), a
/// target beyond the CS limit leaves the block before the instruction
/// (the interpreter raises #GP(0)), then CALL pushes the return address,
/// and the block leaves for the target as a RET does.
fn indirect_branch(e: &mut Emitter<'_>, g: &GuestInsn) {
    let insn = g.d.insn;
    let w = width(&insn, 0);
    let mem = mem_operand(e, g, w, false);
    let target = read_op(e, g, 0, mem, w);
    let out = e.b.ins().icmp_imm_u(
        IntCC::UnsignedGreaterThan,
        target,
        i64::from(e.mode.cs_limit),
    );
    e.side_exit_if(out, g.eip);
    if insn.mnemonic() == M::Call {
        let ret = e.b.ins().iconst(types::I32, i64::from(g.next as i32));
        e.push(g, ret, w);
    }
    e.k += 1;
    e.transfer_dynamic(target);
    e.k -= 1;
}

/// A taken branch to `target` (within the region, or out).
fn branch(e: &mut Emitter<'_>, g: &GuestInsn, target: u32) {
    if target > e.mode.cs_limit {
        // The interpreter raises #GP(0) with EIP at the branch.
        e.exit_const(g.eip, EXIT_INTERP);
        return;
    }
    e.k += 1;
    e.transfer(target);
    e.k -= 1;
}

/// ADD SUB CMP AND OR XOR TEST.
fn binary(e: &mut Emitter<'_>, g: &GuestInsn) {
    let insn = g.d.insn;
    let w = width(&insn, 0);
    let mask = i64::from(width_mask(w));
    let m = insn.mnemonic();
    let writes = !matches!(m, M::Cmp | M::Test);
    let mem_dst = insn.op_kind(0) == OpKind::Memory;
    let mem = mem_operand(e, g, w, writes && mem_dst);
    let a = read_op(e, g, 0, mem, w);
    let b = read_op(e, g, 1, mem, w);
    let b = if matches!(m, M::Add | M::Sub | M::Cmp) {
        e.mask(b, mask)
    } else {
        b
    };
    let (r, op) = match m {
        M::Add if e.hooks.miscompile == Some(Miscompile::AddAsSub) => {
            (e.b.ins().isub(a, b), LazyOp::Add)
        }
        M::Add => (e.b.ins().iadd(a, b), LazyOp::Add),
        M::Sub | M::Cmp => (e.b.ins().isub(a, b), LazyOp::Sub),
        M::And | M::Test => (e.b.ins().band(a, b), LazyOp::Logic),
        M::Or => (e.b.ins().bor(a, b), LazyOp::Logic),
        _ => (e.b.ins().bxor(a, b), LazyOp::Logic),
    };
    let r = if w == 4 {
        r
    } else {
        e.b.ins().band_imm_u(r, mask)
    };
    if writes {
        match mem {
            Some(addr) if mem_dst => e.store_guest(addr, r, w),
            _ => e.write_reg(insn.op0_register(), r),
        }
    }
    e.record_flags(op, w, a, b, r);
}

/// INC DEC NEG NOT.
fn unary(e: &mut Emitter<'_>, g: &GuestInsn) {
    let insn = g.d.insn;
    let w = width(&insn, 0);
    let mask = i64::from(width_mask(w));
    let mem = mem_operand(e, g, w, true);
    let a = read_op(e, g, 0, mem, w);
    let (r, flags) = match insn.mnemonic() {
        M::Inc => {
            let r = e.b.ins().iadd_imm_u(a, 1);
            (r, Some(LazyOp::Inc))
        }
        M::Dec => {
            let r = e.b.ins().iadd_imm_s(a, -1);
            (r, Some(LazyOp::Dec))
        }
        M::Neg => {
            let z = e.b.ins().iconst(types::I32, 0);
            (e.b.ins().isub(z, a), Some(LazyOp::Sub))
        }
        _ => (e.b.ins().bnot(a), None),
    };
    let r = if w == 4 {
        r
    } else {
        e.b.ins().band_imm_u(r, mask)
    };
    match mem {
        Some(addr) => e.store_guest(addr, r, w),
        None => e.write_reg(insn.op0_register(), r),
    }
    match flags {
        Some(LazyOp::Sub) => {
            let z = e.b.ins().iconst(types::I32, 0);
            e.record_flags(LazyOp::Sub, w, z, a, r);
        }
        Some(op) => {
            let one = e.b.ins().iconst(types::I32, 1);
            e.record_flags(op, w, a, one, r);
        }
        None => {}
    }
}
