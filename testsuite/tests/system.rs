//! The bare-metal system-ISA conformance programs (testsuite/system/*.asm),
//! assembled with nasm (which `scripts/test-all.sh` installs) and run on the
//! minimal test machine. Every check of every program must pass.

#[test]
fn every_system_program_passes() {
    let mut out = Vec::new();
    let (passed, failed) =
        oxide86_testsuite::system::run(None, &mut out).expect("programs assemble and run");
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
