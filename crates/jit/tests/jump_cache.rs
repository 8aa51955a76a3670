//! Exits to other pages: a constant target (a call or jump to another
//! page) chains through a far slot, checked against the soft TLB with
//! paging on and cleared when its successor is invalidated; a return to
//! another page continues through the jump cache from generated code
//! (`jump_cache::lookup`). The run stops at the same instruction as the
//! interpreter for every budget, a remapped or rewritten page runs the
//! code it holds now, and the dispatcher is left out of most block
//! entries.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_cpu::FlatRam;
use oxide86_jit::{EngineKind, JitStats};

/// Page tables: the first 256 KiB identity-mapped.
const PD: u32 = 0x2_0000;
const PT: u32 = 0x2_1000;

fn paging_on(cpu: &mut oxide86_cpu::Cpu, ram: &mut FlatRam) {
    put32(ram, PD, PT | 7);
    for i in 0..64u32 {
        put32(ram, PT + 4 * i, (i << 12) | 7);
    }
    cpu.state.cr3 = PD;
    cpu.state.cr0 |= 0x8000_0000;
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

/// `code` at `CODE` with each of `pages` at its physical address.
fn with_pages(code: Vec<u8>, pages: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut all = code;
    for (addr, p) in pages {
        let at = (addr - CODE) as usize;
        all.resize(at, 0x90);
        all.extend_from_slice(p);
    }
    all
}

/// Runs `code` under jit and tiered, with paging off and on (the first
/// 256 KiB identity-mapped), each against the interpreter
/// ([`same_as_interp`]), and asserts `expect` of each run's statistics.
fn under_both_engines_with_and_without_paging(code: &[u8], expect: impl Fn(&JitStats) -> bool) {
    for paging in [false, true] {
        for kind in [EngineKind::Jit, EngineKind::Tiered] {
            let e = same_as_interp(kind, code, 100_000, |cpu, ram| {
                if paging {
                    paging_on(cpu, ram);
                }
            });
            assert!(expect(&e.stats), "{kind:?}, paging {paging}: {:?}", e.stats);
        }
    }
}

/// A loop on page 1 calling a function on page 2 that calls one on page 3.
fn cross_page_calls() -> Vec<u8> {
    let main = assemble(|a| {
        let mut top = a.create_label();
        a.mov(ecx, 200u32)?;
        a.set_label(&mut top)?;
        a.add(eax, ecx)?;
        a.call(0x2000u64)?;
        a.xor(edx, eax)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    });
    let f = assemble_at(0x2000, |a| {
        a.lea(ebx, dword_ptr(eax + ebx * 2 + 1))?;
        a.call(0x3000u64)?;
        a.ret()
    });
    let g = assemble_at(0x3000, |a| {
        a.rol(ebx, 3)?;
        a.mov(dword_ptr(0x9000), ebx)?;
        a.ret()
    });
    with_pages(main, &[(0x2000, f), (0x3000, g)])
}

#[test]
fn cross_page_exits_stop_at_the_same_instruction_for_every_budget() {
    same_at_budgets(
        &[EngineKind::Jit, EngineKind::Tiered],
        &cross_page_calls(),
        (1..=30).map(|slice| (slice, 1_500 + slice * 41)),
        |_, _| {},
    );
}

#[test]
fn cross_page_exits_continue_without_the_dispatcher() {
    let code = cross_page_calls();
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 100_000, paging_on);
        let from_dispatcher = e.stats.block_runs - e.stats.chained;
        assert!(
            e.stats.block_runs > 500 && from_dispatcher * 10 < e.stats.block_runs,
            "{kind:?}: {:?}",
            e.stats
        );
    }
}

/// With paging off and on, the calls to other pages and the returns
/// from them chain through far slots: no jump-cache lookups (four a trip
/// without far slots, two with them for calls only).
#[test]
fn calls_to_other_pages_and_returns_chain_without_a_lookup() {
    under_both_engines_with_and_without_paging(&cross_page_calls(), |s| {
        s.lookups < 50 && s.chained > 4 * 150
    });
}

/// A loop of 300 trips that writes ECX to the dword at `patch` every 7
/// trips, then calls 0x3000 and runs `after_call`.
fn patching_loop(
    patch: u32,
    after_call: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
) -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut keep = a.create_label();
        a.mov(ecx, 300u32)?;
        a.set_label(&mut top)?;
        a.mov(eax, ecx)?;
        a.xor(edx, edx)?;
        a.mov(esi, 7u32)?;
        a.div(esi)?;
        a.test(edx, edx)?;
        a.jnz(keep)?;
        a.mov(dword_ptr(u64::from(patch)), ecx)?;
        a.set_label(&mut keep)?;
        a.call(0x3000u64)?;
        after_call(a)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    })
}

/// A function on another page, called from a loop through a far slot,
/// is rewritten every 7 trips (its immediate): the slot must be cleared
/// with the old translation, so that each call runs the bytes there now.
#[test]
fn a_rewritten_callee_on_another_page_is_not_entered_through_its_old_link() {
    let main = patching_loop(0x3001, |a| a.add(ebx, eax));
    let callee = assemble_at(0x3000, |a| {
        a.mov(eax, 1u32)?;
        a.ret()
    });
    let code = with_pages(main, &[(0x3000, callee)]);
    under_both_engines_with_and_without_paging(&code, |s| s.invalidations > 10 && s.links > 10);
}

/// The same for a return: a function on another page returns through a
/// far slot to an ADD after its call site, whose immediate the loop
/// rewrites every 7 trips: the slot must be cleared with the ADD's old
/// translation.
#[test]
fn a_rewritten_return_site_on_another_page_is_not_entered_through_its_old_link() {
    let main = |imm_at| patching_loop(imm_at, |a| a.add(ebx, 0x1234_5678));
    // The ADD's imm32 (81 C3 imm32): found in a first assembly, whose
    // length the address does not change.
    let draft = main(0);
    let add = draft
        .windows(6)
        .position(|w| w == [0x81, 0xC3, 0x78, 0x56, 0x34, 0x12])
        .expect("the ADD");
    let callee = assemble_at(0x3000, |a| {
        a.lea(eax, dword_ptr(eax + 1))?;
        a.ret()
    });
    let code = with_pages(main(CODE + add as u32 + 2), &[(0x3000, callee)]);
    under_both_engines_with_and_without_paging(&code, |s| s.invalidations > 10 && s.links > 10);
}

#[test]
fn a_remapped_page_runs_the_code_it_maps_now() {
    // Linear page 5 maps physical page 5 (its identity), 0xA, 0xB or 0xC
    // in turn (a PTE write and INVLPG); the loop calls into it directly
    // each time, and each page adds its own amount to EBX.
    const PTES: u32 = 0x9100;
    let main = assemble(|a| {
        let mut top = a.create_label();
        a.mov(ecx, 80u32)?;
        a.set_label(&mut top)?;
        a.mov(eax, ecx)?;
        a.and(eax, 3)?;
        a.mov(eax, dword_ptr(eax * 4 + PTES))?;
        a.mov(dword_ptr(PT + 4 * 5), eax)?;
        a.invlpg(byte_ptr(0x5000))?;
        a.call(0x5000u64)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    });
    let adds = |n: i32| {
        assemble_at(0x5000, |a| {
            a.add(ebx, n)?;
            a.ret()
        })
    };
    let code = with_pages(
        main,
        &[
            (0x5000, adds(1)),
            (0xA000, adds(10)),
            (0xB000, adds(100)),
            (0xC000, adds(1000)),
        ],
    );
    let setup = |cpu: &mut oxide86_cpu::Cpu, ram: &mut FlatRam| {
        paging_on(cpu, ram);
        for (i, page) in [5u32, 0xA, 0xB, 0xC].into_iter().enumerate() {
            put32(ram, PTES + 4 * i as u32, page << 12 | 7);
        }
    };
    let (a, _, _) = run(EngineKind::Interp, &code, 10_000, 1000, setup);
    assert_eq!(a.gpr[3], 20 * 1111, "the interpreter's EBX");
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let (b, _, e) = run(kind, &code, 10_000, 1000, setup);
        assert_eq!(architectural(&a), architectural(&b), "{kind:?}");
        assert!(e.stats.blocks_translated > 0);
    }
}

/// A RET to several call sites on its own page: its chaining slot keeps
/// the first link, and the other sites come through the jump cache, not
/// through the dispatcher relinking the slot at every return.
#[test]
fn a_return_to_several_sites_keeps_its_link() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        let mut func = a.create_label();
        a.mov(ecx, 300u32)?;
        a.set_label(&mut top)?;
        a.call(func)?;
        a.add(ebx, eax)?;
        a.call(func)?;
        a.xor(edx, ebx)?;
        a.call(func)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()?;
        a.set_label(&mut func)?;
        a.lea(eax, dword_ptr(eax + ecx + 1))?;
        a.ret()
    });
    let e = same_as_interp(EngineKind::Jit, &code, 100_000, |_, _| {});
    let from_dispatcher = e.stats.block_runs - e.stats.chained;
    assert!(e.stats.links < 20, "{:?}", e.stats);
    assert!(
        e.stats.block_runs > 2000 && from_dispatcher * 10 < e.stats.block_runs,
        "{:?}",
        e.stats
    );
}
