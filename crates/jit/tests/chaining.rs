//! Block chaining: chained blocks stop exactly where the interpreter
//! would at every step budget, and a code page mapped at two linear
//! addresses runs blocks that know their own EIPs.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_cpu::FlatRam;
use oxide86_jit::EngineKind;

/// A loop of five blocks on one page (a conditional skip, a call, a
/// helper instruction, a return), each reached through a chaining slot.
fn chain_program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut skip = a.create_label();
        let mut func = a.create_label();
        a.mov(ecx, 300u32)?;
        a.mov(esi, 0x10000u32)?;
        a.set_label(&mut top)?;
        a.add(eax, ecx)?;
        a.xor(edx, eax)?;
        a.lea(ebx, dword_ptr(eax + edx * 2 + 3))?;
        a.mov(dword_ptr(esi + 8), ebx)?;
        a.and(ebx, 0xFF)?;
        a.cmp(ebx, 0x80)?;
        a.jb(skip)?;
        a.inc(edi)?;
        a.set_label(&mut skip)?;
        a.call(func)?;
        a.shl(edx, 3)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()?;
        a.set_label(&mut func)?;
        a.push(ebx)?;
        a.pop(ebp)?;
        a.ret()
    })
}

/// One guest block per function, so that blocks chain.
fn blocks_only(e: &mut oxide86_jit::Engine) {
    e.region_blocks = 1;
}

#[test]
fn chained_blocks_and_regions_stop_at_the_same_instruction_for_every_budget() {
    let code = chain_program();
    for slice in 1..=40 {
        let max = 2_000 + slice * 37;
        let (a, ra, _) = run(EngineKind::Interp, &code, max, slice, |_, _| {});
        for kind in [EngineKind::Jit, EngineKind::Tiered] {
            for regions in [1, 2, oxide86_jit::translate::MAX_REGION_BLOCKS] {
                let (b, rb, _) = run_configured(
                    kind,
                    &code,
                    max,
                    slice,
                    |_, _| {},
                    |e| e.region_blocks = regions,
                );
                assert_eq!(
                    architectural(&a),
                    architectural(&b),
                    "{kind:?} regions of {regions} slice {slice} max {max}"
                );
                assert!(ra.bytes == rb.bytes, "{kind:?} slice {slice}");
            }
        }
    }
}

#[test]
fn blocks_chain_and_agree_with_the_interpreter() {
    let code = chain_program();
    let (a, ra, _) = run(EngineKind::Interp, &code, 100_000, 1000, |_, _| {});
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let (b, rb, e) = run_configured(kind, &code, 100_000, 1000, |_, _| {}, blocks_only);
        assert_eq!(architectural(&a), architectural(&b), "{kind:?}");
        assert!(ra.bytes == rb.bytes, "{kind:?}");
        assert!(e.stats.chained > 1000, "{:?}", e.stats);
        assert!(
            kind == EngineKind::Tiered || e.stats.links > 0,
            "{:?}",
            e.stats
        );
    }
}

/// Once hot, the whole loop (its blocks, the call and the return)
/// becomes one function: it runs without leaving generated code between
/// budgets.
#[test]
fn a_loop_with_a_call_runs_as_one_region() {
    let code = chain_program();
    let e = same_as_interp(EngineKind::Tiered, &code, 100_000, |_, _| {});
    assert!(
        e.stats.block_runs < 200,
        "the loop left its region: {:?}",
        e.stats
    );
}

/// Assembles 32-bit code with `f` at `addr`.
fn assemble_at(
    addr: u32,
    f: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    f(&mut a).unwrap();
    a.assemble(u64::from(addr)).unwrap()
}

/// Paging on, identity map of the first 256 KiB except linear page 5,
/// which maps physical page 1 (the code) a second time.
fn alias_code_page(cpu: &mut oxide86_cpu::Cpu, ram: &mut FlatRam) {
    const PD: u32 = 0x2_0000;
    const PT: u32 = 0x2_1000;
    put32(ram, PD, PT | 7);
    for i in 0..64u32 {
        put32(ram, PT + 4 * i, (i << 12) | 7);
    }
    put32(ram, PT + 4 * 5, 0x1000 | 7);
    cpu.state.cr3 = PD;
    cpu.state.cr0 |= 0x8000_0000;
}

#[test]
fn a_code_page_mapped_twice_runs_blocks_with_their_own_eips() {
    // `sub` pushes its own return address (`call $+5; pop edx`): run from
    // linear 0x1100 and then through the alias at 0x5100, EDX must differ.
    let code = assemble(|a| {
        let mut again = a.create_label();
        a.mov(ecx, 5u32)?;
        a.set_label(&mut again)?;
        a.mov(eax, 0x1100u32)?;
        a.call(eax)?;
        a.mov(ebx, edx)?;
        a.dec(ecx)?;
        a.jnz(again)?;
        a.mov(eax, 0x5100u32)?;
        a.call(eax)?;
        a.hlt()
    });
    let mut code = code;
    code.resize(0x100, 0x90);
    // sub at CODE + 0x100: call next; next: pop edx; ret
    let sub = assemble_at(0x1100, |a| {
        let mut next = a.create_label();
        a.call(next)?;
        a.set_label(&mut next)?;
        a.pop(edx)?;
        a.ret()
    });
    code.extend_from_slice(&sub);
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let (a, _, _) = run(EngineKind::Interp, &code, 10_000, 1000, alias_code_page);
        let (b, _, e) = run(kind, &code, 10_000, 1000, alias_code_page);
        assert_eq!(a.gpr[2], 0x5105, "the interpreter's EDX");
        assert_eq!(a.gpr[3], 0x1105, "the interpreter's EBX");
        assert_eq!(architectural(&a), architectural(&b), "{kind:?}");
        assert!(e.stats.blocks_translated > 0);
    }
}

/// Full generations flush the cache while the dispatcher holds a chaining
/// slot to fill: the slot died with its generation and must not be
/// written (it was, corrupting the heap, booting Linux under `jit`).
#[test]
fn generation_flushes_between_linked_blocks_agree_with_the_interpreter() {
    let code = chain_program();
    let (a, ra, _) = run(EngineKind::Interp, &code, 100_000, 1000, |_, _| {});
    for limit in [1, 2, 3, 5] {
        let mut cpu = flat32();
        let mut ram = FlatRam::new(RAM);
        ram.load(CODE, &code);
        let mut engine = oxide86_jit::Engine::new(EngineKind::Jit);
        engine.generation_limit = limit;
        blocks_only(&mut engine);
        let mut steps = 0;
        while steps < 100_000 {
            let (o, n) = engine.run(&mut cpu, &mut ram, 1000, |_, _| false);
            steps += n;
            if o != oxide86_cpu::StepOutcome::Continue {
                break;
            }
        }
        assert_eq!(
            architectural(&a),
            architectural(&cpu.state),
            "limit {limit}"
        );
        assert!(ra.bytes == ram.bytes, "limit {limit}");
        assert!(engine.stats.flushes >= 3, "{:?}", engine.stats);
        // With one block per generation, every link is dropped.
        assert!(limit == 1 || engine.stats.links > 0, "{:?}", engine.stats);
    }
}
