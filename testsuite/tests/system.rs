//! The bare-metal system-ISA conformance programs (testsuite/system/*.asm),
//! assembled with nasm (which `scripts/test-all.sh` installs) and run on the
//! minimal test machine. Every check of every program must pass.

use oxide86_machine::pc::EngineKind;

#[test]
fn every_system_program_passes() {
    check(EngineKind::Interp);
}

#[test]
fn every_system_program_passes_under_the_jit() {
    check(EngineKind::Jit);
}

#[test]
fn every_system_program_passes_tiered() {
    check(EngineKind::Tiered);
}

/// Under `--jit-verify`: the interpreter reproduces every block run
/// (paging, faults from helpers, descriptor tables, ...).
#[test]
fn every_system_program_passes_under_the_jit_verified() {
    check_with(EngineKind::Jit, true);
}

fn check(engine: EngineKind) {
    check_with(engine, false);
}

fn check_with(engine: EngineKind, verify: bool) {
    let mut out = Vec::new();
    let (passed, failed) = oxide86_testsuite::system::run_with(None, &mut out, engine, verify)
        .expect("programs assemble and run");
    let log = String::from_utf8_lossy(&out);
    print!("{log}");
    assert!(passed > 0, "no checks ran");
    assert_eq!(
        failed,
        0,
        "failing checks:\n{}",
        log.lines()
            .filter(|l| l.contains("FAIL"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
