//! Verify mode: the interpreter reproduces every block run of correct
//! programs (and verification leaves the machine exactly where it would
//! have been), and a deliberately miscompiled instruction is caught and
//! named.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::translate::Miscompile;
use oxide86_jit::{Engine, EngineKind};

/// Inline ALU, memory and stack code, helper instructions (ADC, REP STOSD,
/// a shift by CL), calls and a loop: many blocks, chained.
fn mixed_program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut skip = a.create_label();
        let mut func = a.create_label();
        a.mov(ecx, 200u32)?;
        a.mov(esi, 0x10000u32)?;
        a.mov(ebx, 1u32)?;
        a.set_label(&mut top)?;
        a.add(eax, ebx)?;
        a.imul_3(ebx, ebx, 3)?;
        a.xor(edx, eax)?;
        a.mov(dword_ptr(esi + ecx * 4), eax)?;
        a.mov(edi, dword_ptr(esi + ecx * 4 - 4))?;
        a.add(eax, edi)?;
        a.cmp(eax, 0x8000)?;
        a.jb(skip)?;
        a.sub(eax, 0x4000)?;
        a.set_label(&mut skip)?;
        a.call(func)?;
        a.adc(edx, 3)?;
        a.push(ecx)?;
        a.and(ecx, 7)?;
        a.rol(edx, cl)?;
        a.pop(ecx)?;
        a.inc(byte_ptr(esi))?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.mov(edi, 0x20000u32)?;
        a.mov(ecx, 64u32)?;
        a.rep().stosd()?;
        a.hlt()?;
        a.set_label(&mut func)?;
        a.push(ebx)?;
        a.pop(edx)?;
        a.ret()
    })
}

fn verifying(kind: EngineKind) -> Engine {
    let mut e = Engine::new(kind);
    e.threshold = 3;
    e.set_verify(true);
    e
}

#[test]
fn correct_blocks_verify_and_leave_the_interpreters_state() {
    let code = mixed_program();
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let (a, ra, _) = run(EngineKind::Interp, &code, 100_000, 1000, |_, _| {});
        let (b, rb, e) = run_on(verifying(kind), &code, 100_000, 1000, |_, _| {});
        assert!(e.mismatch().is_none(), "{}", e.mismatch().unwrap());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "state under {kind:?}");
        assert!(ra.bytes == rb.bytes, "RAM under {kind:?}");
        // Tiered runs the hot loop as one region: few, long block runs.
        let least = if kind == EngineKind::Jit { 100 } else { 5 };
        assert!(e.stats.blocks_verified > least, "{:?}", e.stats);
        assert_eq!(e.stats.blocks_unverifiable, 0);
    }
}

#[test]
fn odd_budgets_verify_too() {
    let code = mixed_program();
    for slice in [1, 7, 13] {
        let (a, _, _) = run(EngineKind::Interp, &code, 3001, slice, |_, _| {});
        let (b, _, e) = run_on(verifying(EngineKind::Jit), &code, 3001, slice, |_, _| {});
        assert!(e.mismatch().is_none(), "{}", e.mismatch().unwrap());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "slice {slice}");
    }
}

/// A fault in a helper instruction (a #PF-free #DE from DIV) is delivered
/// inside the block run; the interpreter must deliver it the same way.
#[test]
fn faults_delivered_by_helpers_verify() {
    let code = assemble(|a| {
        a.mov(eax, 5u32)?;
        a.xor(ecx, ecx)?;
        a.add(eax, 1)?;
        a.div(ecx)?; // #DE: the IDT at 0 sends it to 0x3000
        a.hlt()
    });
    let setup = |cpu: &mut oxide86_cpu::Cpu, ram: &mut oxide86_cpu::FlatRam| {
        // An interrupt gate for vector 0 to 0x3000 (selector 8), IDT at 0x6000.
        cpu.state.idtr.base = 0x6000;
        cpu.state.idtr.limit = 0xFF;
        ram.load(0x6000, &[0x00, 0x30, 0x08, 0x00, 0x00, 0x8E, 0x00, 0x00]);
        ram.load(0x3000, &[0xF4]); // hlt
                                   // A GDT with a flat code segment at 8.
        cpu.state.gdtr.base = 0x7000;
        cpu.state.gdtr.limit = 0x17;
        ram.load(0x7008, &[0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9A, 0xCF, 0x00]);
    };
    let (a, ra, _) = run(EngineKind::Interp, &code, 1000, 1000, setup);
    let (b, rb, e) = run_on(verifying(EngineKind::Jit), &code, 1000, 1000, setup);
    assert!(e.mismatch().is_none(), "{}", e.mismatch().unwrap());
    assert_eq!(a.eip, 0x3001, "the #DE handler ran");
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert!(ra.bytes == rb.bytes);
    assert!(e.stats.blocks_verified > 0);
}

#[test]
fn a_miscompiled_add_is_caught_and_named() {
    let code = assemble(|a| {
        a.mov(eax, 7u32)?;
        a.mov(ebx, 2u32)?;
        a.mov(ecx, 0x10000u32)?;
        a.add(eax, ebx)?; // miscompiled: EAX becomes 5, not 9
        a.mov(dword_ptr(ecx), ebx)?;
        a.lea(edx, dword_ptr(ebx + 1))?;
        a.hlt()
    });
    let mut e = verifying(EngineKind::Jit);
    e.inject_miscompile(Some(Miscompile::AddAsSub));
    let (state, _, e) = run_on(e, &code, 1000, 1000, |_, _| {});
    let m = e
        .mismatch()
        .expect("the verifier must catch the miscompiled ADD");
    let text = m.to_string();
    assert_eq!(m.start_eip, CODE, "{text}");
    assert_eq!(m.diffs[0].name, "EAX", "{text}");
    assert_eq!(m.diffs[0].jit, "0x00000005", "{text}");
    assert_eq!(m.diffs[0].interp, "0x00000009", "{text}");
    let (step, culprit) = m.culprit().expect("a culprit step");
    assert_eq!(step, 3, "{text}");
    assert_eq!(culprit.eip, CODE + 15, "{text}");
    assert_eq!(culprit.text, "add eax,ebx", "{text}");
    assert!(text.contains("last written by step 3"), "{text}");
    // The run stopped at the mismatch, with the block's (wrong) result.
    assert_eq!(state.gpr[0], 5);
}

/// A wrong value stored to memory is reported with its address and the
/// instruction that wrote it.
#[test]
fn a_wrong_store_is_caught_with_its_address() {
    let code = assemble(|a| {
        a.mov(eax, 7u32)?;
        a.mov(ebx, 0x10000u32)?;
        // The first write to the page takes the interpreter (soft-TLB
        // miss; reads with paging off need no TLB entry) and ends the
        // block; the next block starts at the ADD.
        a.mov(dword_ptr(ebx), ecx)?;
        a.add(dword_ptr(ebx), eax)?; // miscompiled: memory gets 0 - 7
        a.mov(eax, 1u32)?;
        a.hlt()
    });
    let mut e = verifying(EngineKind::Jit);
    e.inject_miscompile(Some(Miscompile::AddAsSub));
    let (_, _, e) = run_on(e, &code, 1000, 1000, |_, _| {});
    let m = e.mismatch().expect("caught");
    let text = m.to_string();
    let mem: Vec<_> = m
        .diffs
        .iter()
        .filter(|d| d.name.starts_with("memory"))
        .collect();
    assert_eq!(mem[0].name, "memory 0x00010000", "{text}");
    assert_eq!(mem[0].jit, "f9 ff ff ff", "{text}");
    assert_eq!(mem[0].interp, "07 00 00 00", "{text}");
    assert_eq!(mem[0].step, Some(0), "{text}");
    assert_eq!(m.start_eip, CODE + 12, "{text}");
    assert!(text.contains("add [ebx],eax"), "{text}");
}

#[test]
fn without_verify_the_miscompile_goes_unnoticed() {
    // The control for the tests above: the injected error is real.
    let code = assemble(|a| {
        a.mov(eax, 7u32)?;
        a.add(eax, 2)?;
        a.hlt()
    });
    let mut e = Engine::new(EngineKind::Jit);
    e.inject_miscompile(Some(Miscompile::AddAsSub));
    let (s, _, e) = run_on(e, &code, 1000, 1000, |_, _| {});
    assert_eq!(s.gpr[0], 5);
    assert!(e.mismatch().is_none());
}
