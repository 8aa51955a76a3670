//! `oxide86 run` end to end: the built-in demo guest boots, passes its
//! self-tests on COM1 and powers off; bad input files give clear errors.

use std::process::{Command, Stdio};

fn oxide86(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oxide86"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("oxide86 runs")
}

#[test]
fn demo_guest_boots_self_tests_and_powers_off() {
    let out = oxide86(&["run", "--stats"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("CPU vendor: GenuineIntel"), "{stdout}");
    assert!(stdout.contains("memory:     128 MiB"), "{stdout}");
    for test in ["integer loop", "string copy", "x87 sqrt"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(test))
            .unwrap_or_default();
        assert!(line.trim_end().ends_with("ok"), "{test}: {line}");
    }
    assert!(stderr.contains("instructions retired"), "{stderr}");
}

#[test]
fn memory_option_reaches_the_guest_and_runs_repeat() {
    let a = oxide86(&["run", "--memory", "64"]);
    let b = oxide86(&["run", "--memory", "64"]);
    assert!(String::from_utf8_lossy(&a.stdout).contains("memory:     64 MiB"));
    assert_eq!(
        a.stdout, b.stdout,
        "virtual time: byte-identical serial output"
    );
}

#[test]
fn missing_and_malformed_kernels_are_clear_errors() {
    let out = oxide86(&["run", "--kernel", "/nonexistent/bzImage"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read kernel /nonexistent/bzImage"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!("oxide86-run-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, vec![0x55u8; 4096]).unwrap();
    let out = oxide86(&["run", "--kernel", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("neither a Linux bzImage"), "{err}");
    let out = oxide86(&[
        "run",
        "--bios",
        junk.to_str().unwrap(),
        "--max-instructions",
        "1000",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "a ROM of 0x55 bytes runs until the limit"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_options_are_rejected() {
    assert_eq!(
        oxide86(&["run", "--serial", "tcp:1"]).status.code(),
        Some(2)
    );
    assert_eq!(
        oxide86(&["run", "--rtc-base", "2001-13-01"]).status.code(),
        Some(2)
    );
    assert_ne!(oxide86(&["run", "--memory", "0"]).status.code(), Some(0));
    // Nothing to verify under the interpreter.
    assert_eq!(
        oxide86(&["run", "--engine", "interp", "--jit-verify"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn demo_guest_verifies_under_the_jit() {
    let plain = oxide86(&["run"]);
    let out = oxide86(&["run", "--engine", "jit", "--jit-verify", "--stats"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(out.stdout, plain.stdout, "the interpreter's serial output");
    let line = stderr
        .lines()
        .find(|l| l.contains("jit verify"))
        .unwrap_or_default();
    let verified: u64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(verified > 1000, "{stderr}");
    assert!(line.contains(" 0 unverifiable"), "{line}");
}
