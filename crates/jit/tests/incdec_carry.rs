//! INC and DEC keep CF (SDM Vol. 2A "INC", "DEC"): the JIT keeps CF in a
//! Variable beside the lazy record and writes it to the state's EFLAGS
//! only where the state is written (exits, helpers). These programs put
//! INC/DEC after producers that differ on the paths into a join (ADD on
//! one, SUB or a logic op on the other), after a block's start (the
//! record comes from the state), after ADC/SBB (whose op is a run-time
//! value) and after a shift's eager flags; CF is then read by ADC, SBB,
//! JB/JAE, SETC, CMC's helper, PUSHFD and the interpreter after exits at
//! odd budgets. Every state must be the interpreter's.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::EngineKind;

const ITERATIONS: u32 = 300;

fn program() -> Vec<u8> {
    lcg_loop(ITERATIONS, |a| {
        let mut other = a.create_label();
        let mut join = a.create_label();
        let mut below = a.create_label();
        let mut next = a.create_label();
        let mut block = a.create_label();
        a.mov(eax, ebx)?;
        // A join after ADD (carry from its result) or SUB/XOR.
        a.test(ebx, 0x100)?;
        a.jz(other)?;
        a.add(eax, 0x8000_0000u32)?;
        a.jmp(join)?;
        a.set_label(&mut other)?;
        a.sub(eax, 0x4000_0000)?;
        a.test(ebx, 0x200)?;
        a.jz(join)?;
        a.xor(eax, ebx)?;
        a.set_label(&mut join)?;
        a.dec(edi)?;
        a.inc(edx)?;
        a.jb(below)?; // CF only, after an unknown producer
        a.adc(dword_ptr(esi + 16), 1)?;
        a.set_label(&mut below)?;
        a.setc(al)?;
        a.add(dword_ptr(esi + 16), eax)?;
        // INC after ADC (a run-time op), then SBB reads its CF.
        a.mov(edx, ebx)?;
        a.add(edx, edx)?;
        a.adc(edx, ebx)?;
        a.inc(edx)?;
        a.sbb(dword_ptr(esi + 20), edx)?;
        // DEC after a shift's eager flags; the helper (CMC) reads CF.
        a.mov(ebp, ebx)?;
        a.shl(ebp, 3)?;
        a.dec(ebp)?;
        a.cmc()?;
        a.pushfd()?;
        a.pop(eax)?;
        a.add(dword_ptr(esi + 24), eax)?;
        // DEC first in its block: the record is the state's.
        a.cmp(ebx, 0xC000_0000u32)?;
        a.jmp(block)?;
        a.set_label(&mut block)?;
        a.dec(ebx)?;
        a.jae(next)?;
        a.inc(dword_ptr(esi + 28))?;
        a.set_label(&mut next)?;
        a.pushfd()?;
        a.pop(eax)?;
        a.add(dword_ptr(esi + 24), eax)?;
        Ok(())
    })
}

#[test]
fn inc_dec_keep_carry_as_the_interpreter() {
    // CMC and the two PUSHFDs go through the helper.
    inline_same_as_interp(&program(), 3 * u64::from(ITERATIONS));
}

#[test]
fn exits_after_inc_dec_leave_the_interpreter_state() {
    same_at_budgets(
        &[EngineKind::Jit, EngineKind::Tiered],
        &program(),
        odd_budgets(&[1, 3, 7, 13, 100], &[1234, 5001, 7777]),
        |_, _| {},
    );
}
