//! ADC, SBB, PAUSE and RDTSC inline give the interpreter's state: every
//! width, register, memory and immediate operands, carry in 0 and 1 from
//! producers known and unknown at translation time (ADD, CMP, INC, a
//! shift's eager flags, the start of a block), and the flags read after
//! them (SETcc, Jcc, PUSHFD, INC, another ADC).

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::EngineKind;

const ITERATIONS: u32 = 400;

fn carry_program() -> Vec<u8> {
    lcg_loop(ITERATIONS, |a| {
        let mut skip = a.create_label();
        a.mov(eax, ebx)?;
        a.mov(edx, ebx)?;
        a.shr(edx, 7)?;
        a.mov(dword_ptr(esi), edx)?;
        a.mov(dword_ptr(esi + 4), eax)?;
        a.add(eax, edx)?;
        a.adc(eax, ebx)?;
        a.adc(dword_ptr(esi), eax)?;
        a.sbb(edx, dword_ptr(esi + 4))?;
        a.setc(al)?;
        a.sbb(ax, 0x1234)?;
        a.adc(al, bl)?;
        a.sbb(ah, byte_ptr(esi + 1))?;
        a.adc(word_ptr(esi + 2), -3)?;
        a.sbb(byte_ptr(esi + 5), 7)?;
        a.adc(word_ptr(esi + 6), dx)?;
        a.sbb(bx, word_ptr(esi + 6))?;
        a.pushfd()?;
        a.pop(ebp)?;
        a.add(edi, ebp)?;
        a.adc(edi, 0)?;
        a.sbb(eax, eax)?;
        a.add(edi, eax)?;
        a.cmp(ecx, 200)?;
        a.adc(edi, ecx)?;
        a.inc(edx)?;
        a.adc(edx, edx)?;
        a.setc(al)?;
        a.seto(ah)?;
        a.add(edi, eax)?;
        a.sbb(dl, 0x80)?;
        a.setz(al)?;
        a.sets(ah)?;
        a.add(edi, eax)?;
        a.setp(al)?;
        a.setl(ah)?;
        a.add(edi, eax)?;
        a.shl(eax, 3)?;
        a.adc(ebx, edx)?;
        a.sbb(dword_ptr(esi + 8), 0x7FFF_FFFF)?;
        a.jc(skip)?;
        a.sbb(edi, -1)?;
        a.set_label(&mut skip)?;
        a.adc(edi, ebx)?;
        a.pause()?;
        a.rdtsc()?;
        a.add(edi, eax)?;
        a.mov(dword_ptr(esi + 12), edx)?;
        a.add(edi, dword_ptr(esi))?;
        a.add(edi, dword_ptr(esi + 4))?;
        Ok(())
    })
}

#[test]
fn adc_sbb_pause_rdtsc_inline_match_interp() {
    // Only PUSHFD goes through the helper.
    inline_same_as_interp(&carry_program(), u64::from(ITERATIONS));
}

#[test]
fn rdtsc_counts_the_same_in_odd_slices() {
    same_at_budgets(
        &[EngineKind::Jit, EngineKind::Tiered],
        &carry_program(),
        odd_budgets(&[1, 7, 13, 100], &[1234, 5001, 7777]),
        |_, _| {},
    );
}

/// RDTSC with CR4.TSD set at CPL 0 runs in the interpreter (the JIT
/// leaves before it) and gives the same count.
#[test]
fn rdtsc_with_tsd_set_matches_interp() {
    let code = carry_program();
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        same_as_interp(kind, &code, 50_000, |cpu, _| {
            cpu.state.cr4 |= 1 << 2;
            cpu.state.msr.tsc_offset = 0xFFFF_FFF0_0000_0000;
        });
    }
}
