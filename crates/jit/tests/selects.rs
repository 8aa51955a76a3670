//! Branches compiled as selects (`emit_select.rs`): a Jcc whose short,
//! register-only arms rejoin runs both arms and keeps one. The results,
//! the instruction counts and where a budget stops the guest must be the
//! interpreter's, whichever way each branch goes; arms that touch memory
//! or run too long stay branches.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::{Engine, EngineKind};

/// Runs `code` under tiered (every hot region translated at once) and
/// returns the engine, after checking state and RAM against the
/// interpreter's at several budgets.
fn agree(code: &[u8], verify: bool) -> Engine {
    for (slice, max) in odd_budgets(&[1, 7, 13, 1000], &[1234, 5001, 60_000]) {
        let (a, ra, _) = run(EngineKind::Interp, code, max, slice, |_, _| {});
        let (b, rb, e) = run_configured(
            EngineKind::Tiered,
            code,
            max,
            slice,
            |_, _| {},
            |e| e.set_verify(verify),
        );
        assert!(e.mismatch().is_none(), "{:?}", e.mismatch());
        assert_eq!(
            architectural(&a),
            architectural(&b),
            "slice {slice} max {max}"
        );
        assert!(ra.bytes == rb.bytes, "RAM differs, slice {slice} max {max}");
    }
    let (_, _, e) = run(EngineKind::Tiered, code, 60_000, 1000, |_, _| {});
    e
}

/// Triangles: a skipped SUB (the `integer-mix` kernel's), an arm that
/// jumps back, partial registers and INC (CF kept) in arms, flags an arm
/// leaves read at the join by ADC, SETcc and a Jcc.
fn triangles() -> Vec<u8> {
    lcg_loop(2000, |a| {
        let mut skip = a.create_label();
        let mut back = a.create_label();
        let mut arm = a.create_label();
        let mut over = a.create_label();
        let mut done = a.create_label();
        a.mov(eax, ebx)?;
        a.and(eax, 0xFFFF)?;
        a.cmp(eax, 0x8000)?;
        a.jb(skip)?;
        a.sub(eax, 0x4000)?;
        a.set_label(&mut skip)?;
        a.adc(edx, eax)?;
        a.test(ebx, 0x100)?;
        a.jnz(arm)?;
        a.set_label(&mut back)?;
        a.setc(al)?;
        a.add(ebp, eax)?;
        a.bt(ebx, 3)?;
        a.jc(over)?;
        a.mov(al, bh)?;
        a.add(dx, bx)?;
        a.inc(edi)?;
        a.xchg(eax, edx)?;
        a.set_label(&mut over)?;
        a.adc(edi, 0)?;
        a.jo(done)?;
        a.neg(ebp)?;
        a.set_label(&mut done)?;
        a.add(dword_ptr(esi), ebp)?;
        a.add(dword_ptr(esi + 4), edi)?;
        a.mov(dword_ptr(esi + 8), edx)?;
        let mut tail = a.create_label();
        a.jmp(tail)?;
        a.set_label(&mut arm)?;
        a.lea(ebp, ptr(ebp + ebx * 2 + 7))?;
        a.not(edx)?;
        a.jmp(back)?;
        a.set_label(&mut tail)
    })
}

/// Diamonds: the `branches` benchmark's if/else (the fall-through arm
/// ends with a JMP over the taken one), and one whose arms both end with
/// a JMP to the join; flags from either arm read after it.
fn diamonds() -> Vec<u8> {
    lcg_loop(2000, |a| {
        for bit in [3u32, 9, 17, 26] {
            let mut els = a.create_label();
            let mut end = a.create_label();
            a.test(ebx, 1 << bit)?;
            a.jz(els)?;
            a.add(edx, ebx)?;
            a.xor(edi, edx)?;
            a.jmp(end)?;
            a.set_label(&mut els)?;
            a.sub(edx, 3)?;
            a.xor(edi, ebx)?;
            a.add(ebp, edi)?;
            a.set_label(&mut end)?;
        }
        let mut t = a.create_label();
        let mut join = a.create_label();
        a.cmp(edx, ebx)?;
        a.jl(t)?;
        a.dec(dl)?;
        a.jmp(join)?;
        a.set_label(&mut t)?;
        a.sub(bp, dx)?;
        a.movzx(eax, bp)?;
        a.jmp(join)?;
        a.set_label(&mut join)?;
        a.sbb(eax, edx)?;
        a.sets(al)?;
        a.add(dword_ptr(esi), eax)?;
        a.add(dword_ptr(esi + 4), ebp)?;
        a.add(dword_ptr(esi + 8), edi)
    })
}

#[test]
fn triangles_agree_with_the_interpreter() {
    let e = agree(&triangles(), false);
    assert!(e.stats.selects >= 3, "{:?}", e.stats);
}

#[test]
fn diamonds_agree_with_the_interpreter() {
    let e = agree(&diamonds(), false);
    assert!(e.stats.selects >= 5, "{:?}", e.stats);
}

#[test]
fn verify_mode_checks_selected_branches() {
    agree(&triangles(), true);
    agree(&diamonds(), true);
}

#[test]
fn arms_with_memory_or_too_long_stay_branches() {
    let store = lcg_loop(2000, |a| {
        let mut skip = a.create_label();
        a.test(ebx, 0x40)?;
        a.jz(skip)?;
        a.mov(dword_ptr(esi), ebx)?;
        a.set_label(&mut skip)?;
        a.add(edx, ebx)
    });
    let long = lcg_loop(2000, |a| {
        let mut skip = a.create_label();
        a.test(ebx, 0x40)?;
        a.jz(skip)?;
        for _ in 0..7 {
            a.add(edx, ebx)?;
        }
        a.set_label(&mut skip)?;
        a.add(edx, ebx)
    });
    for code in [store, long] {
        let e = agree(&code, false);
        assert_eq!(e.stats.selects, 0, "{:?}", e.stats);
        assert!(e.stats.regions > 0, "{:?}", e.stats);
    }
}
