//! ROL and ROR of a register by an immediate or by CL (counts 0, 1, the
//! width, past it; 8-bit including AH-style registers, 16 and 32 bits),
//! inline, give the interpreter's state. A rotate defines only CF and OF:
//! the other flags keep what the instruction before left, whether that
//! producer is known in the block (ADD, INC, a logic op), comes from an
//! earlier block (the flags are committed by a helper), or the rotate's
//! own flags are replaced later in the block (deferred).

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::EngineKind;

const ITERATIONS: u32 = 300;

fn program() -> Vec<u8> {
    lcg_loop(ITERATIONS, |a| {
        let mut no_carry = a.create_label();
        let mut no_overflow = a.create_label();
        let mut unknown = a.create_label();
        a.push(ecx)?;
        // By immediates after a known ADD: its SF/ZF/AF/PF survive.
        a.mov(eax, ebx)?;
        a.add(eax, 0x7FFF_FFF0)?;
        a.rol(eax, 7)?;
        a.pushfd()?;
        a.pop(edi)?;
        a.add(dword_ptr(esi + 16), edi)?;
        a.add(dword_ptr(esi + 16), eax)?;
        a.mov(edx, ebx)?;
        a.inc(edx)?;
        a.ror(dx, 1)?;
        a.pushfd()?;
        a.pop(edi)?;
        a.add(dword_ptr(esi + 16), edi)?;
        a.add(dword_ptr(esi + 16), edx)?;
        a.mov(edx, ebx)?;
        a.xor(edx, 0x55)?;
        a.rol(dh, 8)?;
        a.seto(al)?;
        a.ror(dl, 3)?;
        a.setc(ah)?;
        a.sets(al)?;
        a.add(dword_ptr(esi + 16), edx)?;
        a.add(dword_ptr(esi + 16), eax)?;
        // By CL: counts 0 to 31, past every width.
        a.push(ecx)?;
        a.mov(ecx, ebx)?;
        a.shr(ecx, 13)?;
        a.mov(eax, ebx)?;
        a.sub(eax, 3)?;
        a.ror(eax, cl)?;
        a.pushfd()?;
        a.pop(edi)?;
        a.add(dword_ptr(esi + 16), edi)?;
        a.rol(bp, cl)?;
        a.jnc(no_carry)?;
        a.add(dword_ptr(esi + 16), ebp)?;
        a.set_label(&mut no_carry)?;
        a.ror(ch, cl)?;
        a.jno(no_overflow)?;
        a.add(dword_ptr(esi + 16), ecx)?;
        a.set_label(&mut no_overflow)?;
        a.and(cl, 0x18)?;
        a.rol(ebx, cl)?; // a count of 0 keeps the AND's flags
        a.setz(al)?;
        a.setp(ah)?;
        a.add(dword_ptr(esi + 16), eax)?;
        a.pop(ecx)?;
        // The rotate's flags are replaced later in the block (deferred).
        a.mov(edx, ebx)?;
        a.ror(edx, 12)?;
        a.mov(dword_ptr(esi + 8), edx)?;
        a.lea(edi, ptr(edx + edx * 2))?;
        a.add(edi, ebx)?;
        a.add(dword_ptr(esi + 16), edi)?;
        // A rotate first in its block: the producer is unknown there.
        a.cmp(ebx, 0x4000_0000)?;
        a.jmp(unknown)?;
        a.set_label(&mut unknown)?;
        a.rol(ebx, 1)?;
        a.pushfd()?;
        a.pop(edi)?;
        a.add(dword_ptr(esi + 16), edi)?;
        a.pop(ecx)?;
        Ok(())
    })
}

#[test]
fn rotates_inline_match_interp() {
    // Only the PUSHFDs go through the helper.
    inline_same_as_interp(&program(), 4 * u64::from(ITERATIONS));
}

#[test]
fn odd_slices_stop_at_the_same_instruction() {
    same_at_budgets(
        &[EngineKind::Jit, EngineKind::Tiered],
        &program(),
        odd_budgets(&[1, 7, 13], &[1234, 5001]),
        |_, _| {},
    );
}
