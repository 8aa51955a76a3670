//! SHL/SAL/SHR/SAR of a register by CL (counts 0, 1, up to 31, past the
//! width), LEAVE at both operand sizes and PUSH of a memory operand,
//! inline, give the interpreter's state; flags are read after the shifts
//! (PUSHFD, ADC, SETcc, Jcc), and a count of 0 keeps the flags before it.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::EngineKind;

const ITERATIONS: u32 = 300;

fn program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut func = a.create_label();
        let mut func16 = a.create_label();
        let mut skip = a.create_label();
        a.mov(ecx, ITERATIONS)?;
        a.mov(esi, 0x10000u32)?;
        a.mov(ebx, 0x9E37_79B9u32)?;
        a.set_label(&mut top)?;
        a.imul_3(ebx, ebx, 0x0100_0193)?;
        a.add(ebx, ecx)?;
        a.mov(dword_ptr(esi), ebx)?;
        a.push(ecx)?;
        a.mov(ecx, ebx)?;
        a.shr(ecx, 11)?;
        a.mov(eax, ebx)?;
        a.mov(edx, ebx)?;
        a.cmp(eax, 0x8000_0000u32)?;
        a.shl(eax, cl)?;
        a.pushfd()?;
        a.pop(edi)?;
        a.add(dword_ptr(esi + 16), edi)?;
        a.sar(edx, cl)?;
        a.adc(dword_ptr(esi + 16), edx)?;
        a.mov(edi, ebx)?;
        a.shr(edi, cl)?;
        a.seto(al)?;
        a.setc(ah)?;
        a.add(dword_ptr(esi + 16), edi)?;
        a.sal(ax, cl)?;
        a.setz(dl)?;
        a.shr(dh, cl)?;
        a.sets(dl)?;
        a.sar(bp, cl)?;
        a.setp(dl)?;
        a.shl(bl, cl)?;
        a.jc(skip)?;
        a.add(dword_ptr(esi + 16), eax)?;
        a.set_label(&mut skip)?;
        a.sar(ch, cl)?;
        a.shr(cl, cl)?;
        a.seto(dl)?;
        a.add(dword_ptr(esi + 16), edx)?;
        a.add(dword_ptr(esi + 16), ecx)?;
        a.add(dword_ptr(esi + 16), ebp)?;
        a.pop(ecx)?;
        a.call(func)?;
        a.call(func16)?;
        a.push(dword_ptr(esi))?;
        a.push(word_ptr(esi + 4))?;
        a.push(dword_ptr(esp + 2))?;
        a.pop(edx)?;
        a.pop(ax)?;
        a.pop(edi)?;
        a.add(dword_ptr(esi + 16), edx)?;
        a.add(dword_ptr(esi + 16), eax)?;
        a.add(dword_ptr(esi + 16), edi)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()?;
        a.set_label(&mut func)?;
        a.push(ebp)?;
        a.mov(ebp, esp)?;
        a.sub(esp, 16)?;
        a.mov(dword_ptr(ebp - 4), ebx)?;
        a.push(dword_ptr(ebp - 4))?;
        a.pop(eax)?;
        a.leave()?;
        a.ret()?;
        a.set_label(&mut func16)?;
        a.push(ebp)?;
        a.mov(ebp, esp)?;
        a.sub(esp, 8)?;
        a.db(&[0x66, 0xC9])?; // LEAVE with a 16-bit operand size
        a.add(esp, 2)?;
        a.ret()
    })
}

#[test]
fn shifts_by_cl_leave_and_push_mem_inline_match_interp() {
    // Only PUSHFD goes through the helper.
    inline_same_as_interp(&program(), u64::from(ITERATIONS));
}

#[test]
fn odd_slices_stop_at_the_same_instruction() {
    same_at_budgets(
        &[EngineKind::Jit],
        &program(),
        odd_budgets(&[1, 7, 13], &[1234, 5001]),
        |_, _| {},
    );
}
