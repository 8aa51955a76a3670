//! The host-differential tester at CI size: seed 1, 100,000 sequences, no
//! mismatch allowed. Skipped with a message on non-x86 hosts (and where
//! `gcc -m32` is missing, unless `CI=true`, which makes that an error).
//! Any count: `cargo run --release -p oxide86 -- conformance hostdiff --count N`.

use oxide86_machine::pc::EngineKind;
use oxide86_testsuite::hostdiff::{run, Options};

#[test]
fn hostdiff_seed1_100k_sequences_match_the_host() {
    let opts = Options {
        seed: 1,
        count: 100_000,
        start: 0,
        max_diffs: 20,
        engine: EngineKind::Interp,
        verify: false,
    };
    let mut out = Vec::new();
    let summary = run(&opts, &mut out).expect("hostdiff run");
    let text = String::from_utf8_lossy(&out);
    println!("{text}");
    assert_eq!(summary.failed, 0, "host/interpreter mismatches:\n{text}");
    assert!(summary.passed + summary.skipped == opts.count, "{text}");
}

/// The same sequences on the translating engines (a reduced count: every
/// sequence is translated afresh under `jit`): no mismatch, and the same
/// totals as the interpreter.
#[test]
fn hostdiff_seed1_20k_sequences_match_under_jit_and_tiered() {
    let mut totals = Vec::new();
    for engine in [EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered] {
        let opts = Options {
            seed: 1,
            count: 20_000,
            start: 0,
            max_diffs: 20,
            engine,
            verify: false,
        };
        let mut out = Vec::new();
        let summary = run(&opts, &mut out).expect("hostdiff run");
        let text = String::from_utf8_lossy(&out);
        println!("{text}");
        assert_eq!(summary.failed, 0, "host/{engine:?} mismatches:\n{text}");
        totals.push(summary);
    }
    assert_eq!(
        totals[0], totals[1],
        "jit totals differ from the interpreter's"
    );
    assert_eq!(
        totals[0], totals[2],
        "tiered totals differ from the interpreter's"
    );
}
