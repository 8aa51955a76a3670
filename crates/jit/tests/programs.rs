//! Whole guest programs under the JIT engines give the interpreter's state.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::EngineKind;

fn loop_program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut skip = a.create_label();
        let mut func = a.create_label();
        a.mov(ecx, 500u32)?;
        a.mov(esi, 0x10000u32)?;
        a.mov(ebx, 1u32)?;
        a.set_label(&mut top)?;
        a.add(eax, ebx)?;
        a.imul_3(ebx, ebx, 3)?;
        a.xor(edx, eax)?;
        a.shl(edx, 1)?;
        a.mov(dword_ptr(esi + ecx * 4), eax)?;
        a.mov(edi, dword_ptr(esi + ecx * 4 - 4))?;
        a.add(eax, edi)?;
        a.and(eax, 0xFFFF)?;
        a.cmp(eax, 0x8000)?;
        a.jb(skip)?;
        a.sub(eax, 0x4000)?;
        a.set_label(&mut skip)?;
        a.call(func)?;
        a.movzx(edi, al)?;
        a.movsx(ebp, ax)?;
        a.lea(edi, dword_ptr(edi + ebp * 2 + 7))?;
        a.setl(dl)?;
        a.cmovg(edi, ebx)?;
        a.inc(byte_ptr(esi))?;
        a.dec(word_ptr(esi + 2))?;
        a.neg(bp)?;
        a.not(ah)?;
        a.sub(ax, word_ptr(esi + 4))?;
        a.adc(edx, 3)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.mov(edi, 0x20000u32)?;
        a.mov(ecx, 64u32)?;
        a.rep().stosd()?;
        a.hlt()?;
        a.set_label(&mut func)?;
        a.push(ebx)?;
        a.push(0x1234)?;
        a.pop(edx)?;
        a.pop(ebx)?;
        a.ret()
    })
}

#[test]
fn loop_program_matches_interp_under_jit_and_tiered() {
    let code = loop_program();
    let e = same_as_interp(EngineKind::Jit, &code, 200_000, |_, _| {});
    assert!(e.stats.blocks_translated > 0);
    assert!(e.stats.block_insns > 1000, "{:?}", e.stats);
    same_as_interp(EngineKind::Tiered, &code, 200_000, |_, _| {});
}

#[test]
fn odd_slices_stop_at_the_same_instruction() {
    // Tiered compiles regions, where a block entered only from another
    // (the callee after the CALL) is checked with it (`budget.rs`).
    same_at_budgets(
        &[EngineKind::Jit, EngineKind::Tiered],
        &loop_program(),
        odd_budgets(&[1, 7, 13, 100], &[1234, 5001, 7777]),
        |_, _| {},
    );
}

/// IMUL and shifts by immediates (inline) followed by flag readers: the
/// flags they write, including AF kept from the committed producer.
fn shift_imul_program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        a.mov(ecx, 300u32)?;
        a.mov(eax, 0x1234_5678u32)?;
        a.mov(ebx, 0x9ABC_DEF1u32)?;
        a.set_label(&mut top)?;
        a.add(eax, ecx)?;
        a.shl(eax, 3)?;
        a.pushfd()?;
        a.pop(ebp)?;
        a.add(edi, ebp)?;
        a.sub(ebx, eax)?;
        a.sar(bx, 5)?;
        a.setc(dl)?;
        a.seto(dh)?;
        a.add(edi, edx)?;
        a.shr(dl, 1)?;
        a.pushfd()?;
        a.pop(ebp)?;
        a.xor(edi, ebp)?;
        a.imul_3(esi, eax, -7)?;
        a.setc(dl)?;
        a.add(edi, edx)?;
        a.imul_2(si, bx)?;
        a.pushfd()?;
        a.pop(ebp)?;
        a.add(edi, ebp)?;
        a.and(eax, ecx)?;
        a.shr(eax, 1)?;
        a.pushfd()?;
        a.pop(ebp)?;
        a.add(edi, ebp)?;
        a.sal(ah, 2)?;
        a.sar(esi, 31)?;
        a.inc(esi)?;
        a.pushfd()?;
        a.pop(ebp)?;
        a.add(edi, ebp)?;
        a.imul_2(ebx, dword_ptr(0x10000))?;
        a.mov(dword_ptr(0x10000), edi)?;
        a.jo(top)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    })
}

#[test]
fn shifts_and_imul_inline_match_interp() {
    let code = shift_imul_program();
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 100_000, |_, _| {});
        assert!(e.stats.block_insns > 1000, "{:?}", e.stats);
    }
}

/// IMUL and shifts whose flags the next instruction replaces (ADD, SUB,
/// TEST, CMP, NEG on registers): the JIT skips computing them, and what
/// the program can see (flag readers after the replacing instruction,
/// PUSHFD, the final EFLAGS) stays the interpreter's. The shift before
/// an ADD with a memory operand keeps its flags (the ADD may leave the
/// block before it runs).
fn dead_flags_program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        a.mov(dword_ptr(0x10008), 500u32)?;
        a.mov(eax, 0x1234_5678u32)?;
        a.mov(ebx, 0x9ABC_DEF1u32)?;
        a.mov(esi, 0x8000_0003u32)?;
        a.set_label(&mut top)?;
        a.imul_3(eax, ebx, 7)?;
        a.add(ecx, eax)?;
        a.shl(edx, 3)?;
        a.sub(edx, ecx)?;
        a.sar(esi, 2)?;
        a.test(esi, esi)?;
        a.setz(bl)?;
        a.imul_2(edi, edx)?;
        a.cmp(edi, ecx)?;
        a.setb(bh)?;
        a.shr(eax, 5)?;
        a.add(eax, dword_ptr(0x10000))?;
        a.pushfd()?;
        a.pop(ebp)?;
        a.add(dword_ptr(0x10004), ebp)?;
        a.shl(ecx, 1)?;
        a.neg(ecx)?;
        a.pushfd()?;
        a.pop(ebp)?;
        a.xor(dword_ptr(0x10004), ebp)?;
        a.or(esi, 0x4000_0001)?;
        a.imul_3(ebp, esi, 3)?;
        a.and(ebp, ebx)?;
        a.dec(dword_ptr(0x10008))?;
        a.jnz(top)?;
        a.shl(eax, 4)?;
        a.add(eax, ebx)?;
        a.hlt()
    })
}

#[test]
fn flags_an_instruction_replaces_are_skipped_without_a_trace() {
    let code = dead_flags_program();
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 100_000, |_, _| {});
        assert!(e.stats.block_insns > 1000, "{:?}", e.stats);
    }
}

/// INC and DEC at the head of a region's block (a join point: the flag
/// producer before them is not known at translation time) keep the CF
/// of whatever ran before: ADD, ADC, SUB, SBB, a logic op, or committed
/// flags.
fn inc_dec_at_joins_program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut j = [(); 6].map(|_| a.create_label());
        a.mov(ecx, 300u32)?;
        a.mov(eax, 0x1357_9BDFu32)?;
        a.set_label(&mut top)?;
        a.add(eax, 0x7000_0000)?;
        a.jmp(j[0])?;
        a.set_label(&mut j[0])?;
        a.inc(ebx)?;
        a.setc(dl)?;
        a.add(edi, edx)?;
        a.sub(esi, eax)?;
        a.jmp(j[1])?;
        a.set_label(&mut j[1])?;
        a.dec(ebx)?;
        a.adc(edi, 0)?;
        a.cmp(eax, ecx)?;
        a.sbb(ebp, ebp)?;
        a.jmp(j[2])?;
        a.set_label(&mut j[2])?;
        a.inc(ebp)?;
        a.rcl(edx, 1)?;
        a.adc(eax, eax)?;
        a.jmp(j[3])?;
        a.set_label(&mut j[3])?;
        a.inc(esi)?;
        a.setc(dl)?;
        a.add(edi, edx)?;
        a.test(eax, 0x0100_0000)?;
        a.jmp(j[4])?;
        a.set_label(&mut j[4])?;
        a.dec(edi)?;
        a.setc(dh)?;
        a.add(edi, edx)?;
        a.shl(esi, 1)?;
        a.jmp(j[5])?;
        a.set_label(&mut j[5])?;
        a.inc(bl)?;
        a.rcr(edi, 1)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    })
}

#[test]
fn inc_and_dec_at_join_points_keep_the_carry_of_any_producer() {
    let code = inc_dec_at_joins_program();
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 100_000, |_, _| {});
        assert!(e.stats.block_insns > 1000, "{:?}", e.stats);
    }
}

/// EFLAGS.RF is cleared by every instruction (SDM Vol. 3A, 17.3.1.1): a
/// block entered with RF set (after an IRET that loaded it) must leave it
/// clear, as the interpreter does, even when it runs no helper.
#[test]
fn a_block_entered_with_rf_set_clears_it() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.mov(eax, 1u32)?;
        a.add(eax, 2)?;
        a.mov(ebx, eax)?;
        a.jmp(top)
    });
    let rf = |cpu: &mut oxide86_cpu::Cpu, _: &mut oxide86_cpu::FlatRam| {
        cpu.state.eflags |= oxide86_cpu::state::eflags::RF;
    };
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        for max in [4, 8, 21] {
            let (a, _, _) = run(EngineKind::Interp, &code, max, max, rf);
            let (b, _, _) = run(kind, &code, max, max, rf);
            assert_eq!(a.eflags & oxide86_cpu::state::eflags::RF, 0);
            assert_eq!(
                format!("{a:?}"),
                format!("{b:?}"),
                "{kind:?} after {max} steps"
            );
        }
    }
}

/// Flags of a shift that a later ADD of the same guest block replaces are
/// deferred, so the side exit between them must write them: here the
/// store between faults (#PF on its tenth run), and the fault pushes
/// EFLAGS, which must hold the shift's CF and SF, not the ADD's before.
#[test]
fn deferred_flags_are_written_at_a_side_exit_that_faults() {
    const PD: u32 = 0x2_0000;
    const PT: u32 = 0x2_1000;
    let code = assemble(|a| {
        let mut top = a.create_label();
        let mut store = a.create_label();
        a.mov(ecx, 10u32)?;
        a.set_label(&mut top)?;
        a.mov(esi, 0x10000u32)?;
        a.cmp(ecx, 1)?;
        a.jne(store)?;
        a.mov(esi, 0x30000u32)?;
        a.set_label(&mut store)?;
        a.mov(eax, 0xC000_0001u32)?;
        a.add(ebx, 1)?;
        a.shl(eax, 1)?;
        a.mov(dword_ptr(esi), edx)?;
        a.add(edx, esi)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    });
    let setup = |cpu: &mut oxide86_cpu::Cpu, ram: &mut oxide86_cpu::FlatRam| {
        // #PF (vector 14) through an interrupt gate to a HLT at 0x3000.
        cpu.state.idtr.base = 0x6000;
        cpu.state.idtr.limit = 0xFF;
        ram.load(
            0x6000 + 14 * 8,
            &[0x00, 0x30, 0x08, 0x00, 0x00, 0x8E, 0x00, 0x00],
        );
        ram.load(0x3000, &[0xF4]);
        cpu.state.gdtr.base = 0x7000;
        cpu.state.gdtr.limit = 0x17;
        ram.load(0x7008, &[0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9A, 0xCF, 0x00]);
        // Paging: the first 256 KiB identity-mapped but page 0x30.
        ram.load(PD, &(PT | 7).to_le_bytes());
        for i in 0..64u32 {
            let pte = if i == 0x30 { 0 } else { (i << 12) | 7 };
            ram.load(PT + 4 * i, &pte.to_le_bytes());
        }
        cpu.state.cr3 = PD;
        cpu.state.cr0 |= 0x8000_0000;
    };
    let (a, ra, _) = run(EngineKind::Interp, &code, 1000, 1000, setup);
    assert_eq!((a.eip, a.cr2), (0x3001, 0x30000), "the #PF handler ran");
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let (b, rb, e) = run(kind, &code, 1000, 1000, setup);
        assert_eq!(architectural(&a), architectural(&b), "{kind:?}");
        assert!(ra.bytes == rb.bytes, "{kind:?}: RAM (the pushed EFLAGS)");
        assert!(e.stats.block_insns > 20, "{kind:?}: {:?}", e.stats);
    }
}

/// INC and DEC keep CF (their lazy record reads it from EFLAGS). Here a
/// store to the code page (a side exit: the interpreter runs it and the
/// next block starts at the ADC) comes between a DEC and the ADC that
/// reads the CF of the ADD before the DEC; a second DEC in a row keeps
/// the same CF; a SETC reads it in line. (Written for a held-back carry
/// that was measured, found no faster once correct, and reverted.)
#[test]
fn the_carry_inc_and_dec_keep_reaches_exits_and_readers() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        a.mov(ecx, 200u32)?;
        a.mov(eax, 0x9000_0000u32)?;
        a.set_label(&mut top)?;
        a.add(eax, 0x7000_0001)?;
        a.dec(esi)?;
        a.mov(dword_ptr(CODE + 0x800), edx)?;
        a.adc(edx, 0)?;
        a.add(ebx, eax)?;
        a.inc(edi)?;
        a.dec(edi)?;
        a.setc(al)?;
        a.add(ebp, eax)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    });
    let (a, _, _) = run(EngineKind::Interp, &code, 100_000, 1000, |_, _| {});
    assert!(
        a.gpr[2] > 50,
        "the interpreter's EDX counts carries: {}",
        a.gpr[2]
    );
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 100_000, |_, _| {});
        assert!(e.stats.block_insns > 1000, "{kind:?}: {:?}", e.stats);
    }
}

/// The carry a DEC keeps must reach both arms of the JE after it (a
/// held-back carry, since reverted, reached only the first arm emitted,
/// booting Linux under `--jit-verify`): the fall-through continues in
/// the region, the taken arm goes to an ADC that reads the carry of the
/// CMP before the DEC.
#[test]
fn the_held_carry_reaches_both_arms_of_a_jcc() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        let mut head = a.create_label();
        let mut out = a.create_label();
        a.mov(ecx, 60u32)?;
        a.mov(edx, 3u32)?;
        a.mov(esi, 0x40u32)?;
        a.set_label(&mut top)?;
        a.cmp(edi, esi)?;
        a.jne(head)?;
        a.set_label(&mut head)?;
        a.mov(ebx, edi)?;
        a.dec(edx)?;
        a.je(out)?;
        a.add(edi, 7)?;
        a.jmp(top)?;
        a.set_label(&mut out)?;
        a.adc(ebp, 0)?;
        a.mov(edx, 3u32)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    });
    let (a, _, _) = run(EngineKind::Interp, &code, 100_000, 1000, |_, _| {});
    assert!(
        a.gpr[5] > 3,
        "the interpreter's EBP counts carries: {}",
        a.gpr[5]
    );
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        same_as_interp(kind, &code, 100_000, |_, _| {});
    }
}

/// CLI at CPL 0 runs inline (it only clears IF there) and leaves the
/// interpreter's state, IF included (set before the loop).
#[test]
fn cli_at_cpl_0_runs_inline() {
    let code = lcg_loop(3000, |a| {
        a.add(edx, ebx)?;
        a.cli()?;
        a.xor(edx, 0x55u32)
    });
    let setup = |cpu: &mut oxide86_cpu::Cpu, _: &mut oxide86_cpu::FlatRam| {
        cpu.state.eflags |= oxide86_cpu::state::eflags::IF;
    };
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 100_000, setup);
        assert!(e.stats.block_insns > 20_000, "{:?}", e.stats);
        assert_eq!(e.stats.helper_insns, 0, "{:?}", e.stats);
    }
}
