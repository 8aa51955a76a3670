//! Tiered translation of long straight-line code: a region ends at its
//! block limit or a page boundary in the middle of it, and the code after
//! that point, which the interpreter ran through without a transfer (so
//! never counted), must be translated as soon as the region before it
//! exits there, not after another `threshold` runs.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::EngineKind;

/// 4,000 three-byte instructions (12 KB, over three page boundaries)
/// between a loop's head and its back edge.
fn unrolled_loop(trips: u32) -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        a.mov(ecx, trips)?;
        a.set_label(&mut top)?;
        for i in 0..4000u32 {
            match i % 3 {
                0 => a.add(eax, ebx)?,
                1 => a.rol(eax, 3)?,
                _ => a.xor(ebx, eax)?,
            }
        }
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    })
}

#[test]
fn straight_line_code_after_a_region_is_translated_at_once() {
    let trips = 1000;
    let code = unrolled_loop(trips);
    let (a, _, _) = run(EngineKind::Interp, &code, 10_000_000, 100_000, |_, _| {});
    let (b, _, e) = run_configured(
        EngineKind::Tiered,
        &code,
        10_000_000,
        100_000,
        |_, _| {},
        |e| e.threshold = 100,
    );
    assert_eq!(architectural(&a), architectural(&b));
    let total = b.icount;
    let share = e.stats.block_insns as f64 / total as f64;
    // Everything runs in blocks from about trip 100 on (the loop head
    // reaches the threshold there): about 90%. Counting each cut anew
    // took a hundred trips more per region, about 60%.
    assert!(
        share > 0.85,
        "{:.1}% of {total} instructions ran in blocks: {:?}",
        share * 100.0,
        e.stats
    );
}
