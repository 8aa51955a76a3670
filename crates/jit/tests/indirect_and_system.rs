//! Instructions the kernel ran through the dispatcher and the interpreter
//! tens of thousands of times a boot, now inside blocks: JMP and CALL
//! through a register or memory (inline, leaving for the target as a RET
//! does), CMPXCHG8B (the interpreter helper) and INVLPG (the helper, then
//! back to the dispatcher). Each runs under `jit` and `tiered` with the
//! interpreter's results.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_cpu::{Cpu, FlatRam, SegReg};
use oxide86_jit::EngineKind;

const ITERATIONS: u32 = 400;
/// A table of four routine addresses (dwords) and their low words.
const TABLE: u32 = 0x1_0000;
const TABLE16: u32 = 0x1_0010;
/// Where the routines add what they were given.
const SUM: u32 = 0x1_0100;

/// A loop that picks one of four routines from the LCG in EBX and
/// reaches it by `call reg`, `call [table + index]`, `call [esp + 4]`
/// (the operand is read with ESP as it was before the return address is
/// pushed), and `jmp [table + index]` and a 16-bit `jmp word [table16 +
/// index]` from trampolines that were called (the routine's RET then
/// returns past the call of the trampoline); and a 16-bit `call word
/// [TABLE16 + 8]` of a routine that returns with a 16-bit RET. The
/// routines add their number and EDI into SUM and return.
fn branch_program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut routines = [
            a.create_label(),
            a.create_label(),
            a.create_label(),
            a.create_label(),
            a.create_label(),
        ];
        let mut jmp32 = a.create_label();
        let mut jmp16 = a.create_label();
        let mut done = a.create_label();
        a.mov(ecx, ITERATIONS)?;
        a.mov(ebx, 0x9E37_79B9u32)?;
        a.set_label(&mut top)?;
        a.imul_3(ebx, ebx, 0x0100_0193)?;
        a.add(ebx, ecx)?;
        a.mov(edx, ebx)?;
        a.shr(edx, 7)?;
        a.and(edx, 3)?;
        // call through a register
        a.mov(eax, dword_ptr(edx * 4 + TABLE))?;
        a.mov(edi, 1u32)?;
        a.call(eax)?;
        // call through memory
        a.mov(edi, 2u32)?;
        a.call(dword_ptr(edx * 4 + TABLE))?;
        // call [esp + 4]: the operand is read with ESP before the push
        a.push(dword_ptr(edx * 4 + TABLE))?;
        a.push(ecx)?;
        a.mov(edi, 3u32)?;
        a.call(dword_ptr(esp + 4))?;
        a.add(esp, 8)?;
        // jumps through memory, 32- and 16-bit
        a.mov(edi, 4u32)?;
        a.call(jmp32)?;
        a.mov(edi, 5u32)?;
        a.call(jmp16)?;
        // a 16-bit call: a word is pushed, the routine's RET pops a word
        a.mov(edi, 6u32)?;
        a.db(&[0x66])?;
        a.call(dword_ptr(TABLE16 + 8))?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.jmp(done)?;
        a.set_label(&mut jmp32)?;
        a.jmp(dword_ptr(edx * 4 + TABLE))?;
        a.set_label(&mut jmp16)?;
        a.db(&[0x66])?;
        a.jmp(dword_ptr(edx * 2 + TABLE16))?;
        for (i, r) in routines.iter_mut().enumerate() {
            a.set_label(r)?;
            a.add(dword_ptr(SUM), edi)?;
            a.add(dword_ptr(SUM + 4), i as u32)?;
            a.xor(dword_ptr(SUM), ebx)?;
            if i == 4 {
                a.db(&[0x66, 0xC3])?; // o16 ret
            } else {
                a.ret()?;
            }
        }
        a.set_label(&mut done)?;
        a.hlt()
    })
}

/// Fills the tables of `branch_program`: the five routines are found by
/// their first instruction, `add dword [SUM], edi`; the fifth (16-bit
/// RET) is only in TABLE16's fifth word.
fn branch_tables(code: &[u8]) -> impl Fn(&mut Cpu, &mut FlatRam) + Copy {
    let pattern = [[0x01, 0x3D], SUM.to_le_bytes()[..2].try_into().unwrap()].concat();
    let starts: Vec<u32> = code
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == pattern.as_slice())
        .map(|(i, _)| CODE + i as u32)
        .collect();
    let starts: [u32; 5] = starts.try_into().expect("five routines");
    move |_cpu, ram| {
        for (i, s) in starts.iter().enumerate() {
            if i < 4 {
                put32(ram, TABLE + 4 * i as u32, *s);
            }
            ram.load(TABLE16 + 2 * i as u32, &(*s as u16).to_le_bytes());
        }
    }
}

#[test]
fn indirect_calls_and_jumps_run_inline_with_the_interpreters_results() {
    let code = branch_program();
    let setup = branch_tables(&code);
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 200_000, setup);
        // Nothing here needs the helper or the dispatcher's interpreter
        // after the first few trips (tiered counts three runs first).
        assert_eq!(e.stats.helper_insns, 0, "{kind:?}: {:?}", e.stats);
        let (a, _, _) = run(EngineKind::Interp, &code, 200_000, 1000, setup);
        let retired = a.icount;
        assert!(
            e.stats.block_insns + 300 >= retired,
            "{kind:?}: {} of {retired} in blocks",
            e.stats.block_insns
        );
    }
}

#[test]
fn indirect_branches_stop_exactly_at_any_budget() {
    let code = branch_program();
    let setup = branch_tables(&code);
    same_at_budgets(
        &[EngineKind::Jit, EngineKind::Tiered],
        &code,
        odd_budgets(&[1, 7, 13, 64], &[997, 5001]),
        setup,
    );
}

/// An indirect jump past the CS limit leaves the block before the
/// instruction: the interpreter raises #GP(0) there (no IDT here, so the
/// CPU shuts down with EIP still at the jump), under every engine alike.
#[test]
fn an_indirect_jump_past_the_cs_limit_faults_as_in_the_interpreter() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        a.mov(ecx, 50u32)?;
        a.mov(eax, CODE)?;
        a.set_label(&mut top)?;
        a.add(eax, 0x100)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        // EAX = CODE + 0x3200, past the limit set below.
        a.jmp(eax)?;
        a.hlt()
    });
    let limit_cs = |cpu: &mut Cpu, _: &mut FlatRam| {
        cpu.state.seg[SegReg::Cs as usize].limit = CODE + 0x3000;
    };
    let (a, _, _) = run(EngineKind::Interp, &code, 10_000, 1000, limit_cs);
    assert_ne!(a.eip, CODE + 0x3200, "the interpreter did not jump");
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let (b, _, _) = run(kind, &code, 10_000, 1000, limit_cs);
        assert_eq!(architectural(&a), architectural(&b), "{kind:?}");
    }
}

/// CMPXCHG8B on a qword that matches EDX:EAX every other trip: ZF, the
/// memory and EDX:EAX after both outcomes, read back by SETZ and ADDs.
#[test]
fn cmpxchg8b_runs_through_the_helper_inside_blocks() {
    let code = lcg_loop(ITERATIONS, |a| {
        let mut odd = a.create_label();
        let mut go = a.create_label();
        a.push(ecx)?;
        a.mov(eax, dword_ptr(esi))?;
        a.mov(edx, dword_ptr(esi + 4))?;
        a.test(ebx, 0x80)?;
        a.jz(go)?;
        a.set_label(&mut odd)?;
        a.xor(eax, ebx)?; // no match: EDX:EAX is loaded from memory
        a.set_label(&mut go)?;
        a.mov(ecx, ebx)?;
        a.ror(ecx, 5)?;
        a.cmpxchg8b(qword_ptr(esi))?;
        a.setz(cl)?;
        a.movzx(ecx, cl)?;
        a.add(dword_ptr(esi + 8), ecx)?;
        a.add(dword_ptr(esi + 12), eax)?;
        a.add(dword_ptr(esi + 12), edx)?;
        a.pop(ecx)?;
        Ok(())
    });
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 100_000, |_, _| {});
        assert!(e.stats.block_insns > 6_000, "{kind:?}: {:?}", e.stats);
        assert!(
            e.stats.helper_insns + 10 >= u64::from(ITERATIONS),
            "{kind:?}: CMPXCHG8B left the blocks: {:?}",
            e.stats
        );
    }
}

/// Paging on, identity map of the first 256 KiB, and a loop that points
/// linear page 0x30 at physical page 0x31 or 0x32 by turns, INVLPGs it
/// and reads through it: every read must see the new mapping, under
/// every engine (INVLPG runs through the helper and ends the block, so
/// the read after it is a new block's soft-TLB lookup).
#[test]
fn invlpg_inside_blocks_drops_the_old_mapping() {
    const PD: u32 = 0x2_0000;
    const PT: u32 = 0x2_1000;
    const WINDOW: u32 = 0x3_0000;
    let paging = |cpu: &mut Cpu, ram: &mut FlatRam| {
        put32(ram, PD, PT | 7);
        for i in 0..64u32 {
            put32(ram, PT + 4 * i, (i << 12) | 7);
        }
        put32(ram, 0x3_1000, 0x1111_1111);
        put32(ram, 0x3_2000, 0x2222_2222);
        cpu.state.cr3 = PD;
        cpu.state.cr0 |= 0x8000_0000;
    };
    let code = lcg_loop(ITERATIONS, |a| {
        a.mov(eax, ebx)?;
        a.and(eax, 0x1000)?;
        a.add(eax, 0x3_1007)?;
        a.mov(dword_ptr(PT + 4 * (WINDOW >> 12)), eax)?;
        a.invlpg(dword_ptr(WINDOW))?;
        a.mov(edx, dword_ptr(WINDOW))?;
        a.add(dword_ptr(esi), edx)?;
        a.xor(dword_ptr(esi), ebx)?;
        a.add(dword_ptr(WINDOW + 4), ecx)?;
        Ok(())
    });
    let (a, ra, _) = run(EngineKind::Interp, &code, 100_000, 1000, paging);
    assert_ne!(
        ra.bytes[0x3_1004..0x3_1008],
        ra.bytes[0x3_2004..0x3_2008],
        "both pages were written through the window"
    );
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let (b, rb, e) = run(kind, &code, 100_000, 1000, paging);
        assert_eq!(architectural(&a), architectural(&b), "{kind:?}");
        assert!(ra.bytes == rb.bytes, "RAM differs under {kind:?}");
        // The read after INVLPG and the first write through the new
        // mapping miss the soft TLB and leave for the interpreter.
        assert!(
            e.stats.block_insns * 4 >= a.icount * 3,
            "{kind:?}: {} of {} in blocks",
            e.stats.block_insns,
            a.icount
        );
        assert!(
            e.stats.helper_insns + 10 >= u64::from(ITERATIONS),
            "{kind:?}: INVLPG left the blocks: {:?}",
            e.stats
        );
    }
}
