//! REP MOVS and REP STOS inline (`emit_string.rs`) give the interpreter's
//! state and memory: all element sizes, counts from 0 up, runs that stay
//! in their page and runs that leave it, DF clear and set, copies whose
//! destination overlaps the source below and above it (where the element
//! loop replicates), and a REP STOS that patches the instructions after
//! it.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::EngineKind;

const TRIPS: u32 = 400;
/// Scratch data: two pages, so runs near the end of the first leave it.
const DATA: u32 = 0x10000;
/// Where the checksums go.
const SUMS: u32 = 0x13000;

/// Folds ECX, ESI and EDI into the checksums.
fn fold(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.add(dword_ptr(u64::from(SUMS)), ecx)?;
    a.add(dword_ptr(u64::from(SUMS + 4)), esi)?;
    a.add(dword_ptr(u64::from(SUMS + 8)), edi)
}

/// EBP counts the trips; EBX is a pseudo-random value renewed each trip
/// from which each REP takes its count, offsets, direction and overlap.
fn program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut up = a.create_label();
        let mut go = a.create_label();
        a.mov(ebp, TRIPS)?;
        a.mov(ebx, 0x9E37_79B9u32)?;
        a.set_label(&mut top)?;
        a.imul_3(ebx, ebx, 0x0100_0193)?;
        a.add(ebx, ebp)?;
        // DF set on one trip in eight.
        a.test(ebx, 0x7000_0000)?;
        a.jnz(up)?;
        a.std()?;
        a.jmp(go)?;
        a.set_label(&mut up)?;
        a.cld()?;
        a.set_label(&mut go)?;
        a.mov(eax, ebx)?;
        // Count 0..63 and the first element anywhere in the first page;
        // for MOVS the destination from 8 bytes below the source to 7
        // above it.
        for form in [
            &[0xF3u8, 0xAA][..], // REP STOSB
            &[0x66, 0xF3, 0xAB], // REP STOSW
            &[0xF3, 0xAB],       // REP STOSD
            &[0xF3, 0xA4],       // REP MOVSB
            &[0x66, 0xF3, 0xA5], // REP MOVSW
            &[0xF3, 0xA5],       // REP MOVSD
        ] {
            let movs = matches!(form.last(), Some(0xA4 | 0xA5));
            let first = if movs { esi } else { edi };
            a.mov(ecx, ebx)?;
            a.and(ecx, 0x3F)?;
            a.mov(first, ebx)?;
            a.shr(first, 8)?;
            a.and(first, 0xFFF)?;
            a.add(first, DATA)?;
            if movs {
                a.mov(edi, ebx)?;
                a.shr(edi, 20)?;
                a.and(edi, 0xF)?;
                a.sub(edi, 8)?;
                a.add(edi, esi)?;
            }
            a.db(form)?;
            fold(a)?;
            a.rol(ebx, 5)?;
        }
        a.dec(ebp)?;
        a.jnz(top)?;
        a.cld()?;
        a.hlt()
    })
}

#[test]
fn rep_movs_and_stos_inline_match_interp() {
    // CLD and STD go through the helper: one a trip, and the last CLD.
    inline_same_as_interp(&program(), u64::from(TRIPS) + 1);
}

#[test]
fn rep_movs_and_stos_stop_where_the_interpreter_does() {
    same_at_budgets(
        &[EngineKind::Jit, EngineKind::Tiered],
        &program(),
        odd_budgets(&[1, 7, 13, 100], &[1234, 5001, 7777]),
        |_, _| {},
    );
}

/// A REP STOSB that writes NOPs over the two instructions after it, in
/// the same block, on every trip after the first: the translation must
/// see the new bytes, as the interpreter does.
#[test]
fn rep_stos_patching_the_next_instructions() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        let mut patch = a.create_label();
        a.mov(ebp, 50u32)?;
        a.set_label(&mut top)?;
        a.mov(edi, 0u32)?; // the address of `patch`, fixed below
        a.mov(ecx, 2u32)?;
        a.mov(eax, 0x90u32)?;
        a.rep().stosb()?;
        a.set_label(&mut patch)?;
        a.inc(ebx)?; // 43 (one byte)
        a.inc(esi)?; // 46
        a.add(edx, 3)?;
        a.dec(ebp)?;
        a.jnz(top)?;
        a.hlt()
    });
    let mut code = code;
    // `mov edi, imm32` is BF imm32 at the top; `inc ebx; inc esi` is 43 46.
    let at = code.windows(2).position(|w| w == [0x43, 0x46]).unwrap();
    let mov = code.iter().position(|&b| b == 0xBF).unwrap();
    code[mov + 1..mov + 5].copy_from_slice(&(CODE + at as u32).to_le_bytes());
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        same_as_interp(kind, &code, 100_000, |_, _| {});
    }
    let (s, _, _) = run(EngineKind::Jit, &code, 100_000, 1000, |_, _| {});
    assert_eq!((s.gpr[3], s.gpr[6], s.gpr[2]), (0, 0, 150));
}

/// Verify mode journals the whole run a REP writes (so that the
/// interpreter's second run starts from the same memory) and finds no
/// difference.
#[test]
fn verify_mode_checks_inline_reps() {
    let code = program();
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let mut engine = oxide86_jit::Engine::new(kind);
        engine.threshold = 3;
        engine.set_verify(true);
        let (a, ra, _) = run(EngineKind::Interp, &code, 100_000, 1000, |_, _| {});
        let (b, rb, e) = run_on(engine, &code, 100_000, 1000, |_, _| {});
        assert!(e.mismatch().is_none(), "{}", e.mismatch().unwrap());
        assert_eq!(architectural(&a), architectural(&b), "state under {kind:?}");
        assert!(ra.bytes == rb.bytes, "RAM under {kind:?}");
        assert!(e.stats.blocks_verified > 5, "{:?}", e.stats);
    }
}
