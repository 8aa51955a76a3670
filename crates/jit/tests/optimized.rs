//! Optimised recompilation: hot blocks compiled again through Cranelift's
//! optimiser (under `jit`, as regions where they were single blocks) must
//! still give the interpreter's results, take the old blocks' place
//! (chained callers included) and be invalidated by writes to their code
//! like any other.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::{Engine, EngineKind};

/// Recompiles every block a slice ends in at once.
fn eager(e: &mut Engine) {
    e.optimize_after = 1;
}

/// Runs `code` under the interpreter and under `kind` with [`eager`]
/// recompilation, in slices of each size in `slices`; asserts equal state
/// and RAM, and that something was recompiled in the first slicing (under
/// `jit`, into a region). With `verify`, the translating run also checks
/// every block run against the interpreter.
fn agree_under(kind: EngineKind, code: &[u8], slices: &[u64], verify: bool) {
    for (i, &slice) in slices.iter().enumerate() {
        let (a, ra, _) = run(EngineKind::Interp, code, 2_000_000, slice, |_, _| {});
        let (b, rb, e) = run_configured(
            kind,
            code,
            2_000_000,
            slice,
            |_, _| {},
            |e| {
                eager(e);
                e.set_verify(verify);
            },
        );
        assert!(e.mismatch().is_none(), "{:?}", e.mismatch());
        assert_eq!(architectural(&a), architectural(&b), "slice {slice}");
        assert!(ra.bytes == rb.bytes, "RAM differs, slice {slice}");
        assert!(
            i > 0 || e.stats.optimized > 0,
            "nothing recompiled, slice {slice}: {:?}",
            e.stats
        );
        assert!(
            i > 0 || kind != EngineKind::Jit || e.stats.regions > 0,
            "no region under jit, slice {slice}: {:?}",
            e.stats
        );
    }
}

/// [`agree_under`] both translating engines.
fn agree(code: &[u8], slices: &[u64], verify: bool) {
    agree_under(EngineKind::Tiered, code, slices, verify);
    agree_under(EngineKind::Jit, code, slices, verify);
}

/// Recursive Fibonacci (the `calls` benchmark's kernel): CALL, RET,
/// PUSH, POP and stack loads in one region.
fn fib_program() -> Vec<u8> {
    assemble(|a| {
        let mut again = a.create_label();
        let mut fib = a.create_label();
        let mut leaf = a.create_label();
        a.mov(ebp, 20u32)?;
        a.set_label(&mut again)?;
        a.mov(ecx, 12u32)?;
        a.call(fib)?;
        a.add(edi, eax)?;
        a.dec(ebp)?;
        a.jnz(again)?;
        a.hlt()?;
        a.set_label(&mut fib)?;
        a.cmp(ecx, 2)?;
        a.jb(leaf)?;
        a.push(ecx)?;
        a.dec(ecx)?;
        a.call(fib)?;
        a.push(eax)?;
        a.mov(ecx, dword_ptr(esp + 4))?;
        a.sub(ecx, 2)?;
        a.call(fib)?;
        a.pop(edx)?;
        a.add(eax, edx)?;
        a.pop(ecx)?;
        a.ret()?;
        a.set_label(&mut leaf)?;
        a.mov(eax, ecx)?;
        a.ret()
    })
}

#[test]
fn recursive_calls_agree_after_recompilation() {
    let code = fib_program();
    agree(&code, &[1000, 4999, 100_000], false);
    let (s, _, _) = run_configured(EngineKind::Tiered, &code, 2_000_000, 1000, |_, _| {}, eager);
    assert_eq!(s.gpr[7], 20 * 144, "EDI: twenty times fib(12)");
}

/// A loop of loads, stores, carries, shifts, rotates, conditions and
/// INC/DEC over pseudo-random values.
fn mixed_program() -> Vec<u8> {
    lcg_loop(3000, |a| {
        let mut skip = a.create_label();
        a.mov(eax, ebx)?;
        a.shr(eax, 7)?;
        a.adc(edx, eax)?;
        a.rol(edx, 5)?;
        a.mov(dword_ptr(esi + 8), edx)?;
        a.add(dword_ptr(esi + 12), ebx)?;
        a.mov(edi, dword_ptr(esi + 12))?;
        a.cmp(edi, edx)?;
        a.setl(al)?;
        a.cmovb(ebp, edi)?;
        a.sbb(ebp, 3)?;
        a.inc(ebp)?;
        a.jo(skip)?;
        a.xor(ebp, ebx)?;
        a.set_label(&mut skip)?;
        a.movzx(eax, al)?;
        a.add(dword_ptr(esi + 16), eax)
    })
}

#[test]
fn a_mixed_loop_agrees_after_recompilation() {
    agree(&mixed_program(), &[777, 1, 5000, 100_000], false);
}

#[test]
fn verify_mode_checks_recompiled_blocks() {
    agree(&fib_program(), &[1000], true);
    agree(&mixed_program(), &[5000], true);
}

/// The hot routine at 0x3000 (`mov eax, imm32; ret`) is called from a
/// chained loop that rewrites its immediate every 50 trips: the routine's
/// recompiled block must be invalidated like its first compilation, and
/// the calls must reach whichever block is current.
#[test]
fn recompiled_blocks_are_invalidated_by_writes_and_reached_by_chained_callers() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        let mut keep = a.create_label();
        a.mov(byte_ptr(0x3000u64), 0xB8u32)?;
        a.mov(dword_ptr(0x3001u64), 1u32)?;
        a.mov(byte_ptr(0x3005u64), 0xC3u32)?;
        a.mov(ecx, 2000u32)?;
        a.set_label(&mut top)?;
        a.mov(eax, ecx)?;
        a.xor(edx, edx)?;
        a.mov(ebp, 50u32)?;
        a.div(ebp)?;
        a.test(edx, edx)?;
        a.jnz(keep)?;
        a.mov(dword_ptr(0x3001u64), ecx)?;
        a.set_label(&mut keep)?;
        a.call(0x3000u64)?;
        a.add(ebx, eax)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    });
    agree(&code, &[100, 1000, 100_000], false);
    for kind in [EngineKind::Tiered, EngineKind::Jit] {
        let (_, _, e) = run_configured(kind, &code, 2_000_000, 1000, |_, _| {}, eager);
        assert!(e.stats.invalidations > 0, "{kind:?}: {:?}", e.stats);
    }
}

/// The routine at 0x3000 (another page) holds the program's hot inner
/// loop and is entered only by chaining: the caller's CALL and the
/// routine's RET chain through far slots, and each slice starts again
/// where the last one ran out of budget (the inner loop's head, a region
/// of its own). The optimiser must still find the routine: it credits
/// the region that ran out of budget, not the one the dispatcher entered.
/// (Under `jit` the routine's first block runs once a call and the loop
/// is a block of its own, so the routine's entry is not hot there.)
#[test]
fn a_hot_region_entered_only_by_chaining_is_recompiled() {
    const ROUTINE: u32 = 0x3000;
    let routine = {
        let mut a = CodeAssembler::new(32).unwrap();
        let mut inner = a.create_label();
        a.mov(edx, 200u32).unwrap();
        a.set_label(&mut inner).unwrap();
        a.add(eax, edx).unwrap();
        a.dec(edx).unwrap();
        a.jnz(inner).unwrap();
        a.ret().unwrap();
        a.assemble(u64::from(ROUTINE)).unwrap()
    };
    let code = assemble(|a| {
        let mut top = a.create_label();
        a.mov(ecx, 3000u32)?;
        a.set_label(&mut top)?;
        a.call(u64::from(ROUTINE))?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    });
    let (s, _, e) = run_configured(
        EngineKind::Tiered,
        &code,
        5_000_000,
        50_000,
        |_, ram| ram.load(ROUTINE, &routine),
        |e| e.optimize_after = 500_000,
    );
    assert_eq!(s.gpr[0], 3000 * (200 * 201 / 2), "EAX");
    let optimized = e.optimized_eips();
    assert!(
        optimized.contains(&ROUTINE),
        "the routine was not recompiled (recompiled: {optimized:x?}, {:?})",
        e.stats
    );
}
