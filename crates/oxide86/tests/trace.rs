//! `--trace` and `--trace-events` on the built-in demo guest: the files
//! hold what they promise, the filters filter, and two runs are
//! byte-identical (virtual clock).

use std::process::{Command, Stdio};

fn traced_run(dir: &std::path::Path, tag: &str, extra: &[&str]) -> (String, String) {
    let trace = dir.join(format!("trace-{tag}.txt"));
    let events = dir.join(format!("events-{tag}.txt"));
    let status = Command::new(env!("CARGO_BIN_EXE_oxide86"))
        .args(["run", "--serial", "none", "--trace"])
        .arg(&trace)
        .arg("--trace-events")
        .arg(&events)
        .args(extra)
        .stdin(Stdio::null())
        .status()
        .expect("oxide86 runs");
    assert_eq!(status.code(), Some(0));
    (
        std::fs::read_to_string(&trace).unwrap(),
        std::fs::read_to_string(&events).unwrap(),
    )
}

#[test]
fn traces_are_deterministic_and_filtered() {
    let dir = std::env::temp_dir().join(format!("oxide86-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let window = ["--trace-window", "0..2000"];
    let (t1, e1) = traced_run(&dir, "a", &window);
    let (t2, e2) = traced_run(&dir, "b", &window);
    assert_eq!(t1, t2, "instruction traces differ between two runs");
    assert_eq!(e1, e2, "event traces differ between two runs");
    assert_eq!(t1.lines().count(), 2000);
    // The demo's entry: mov esp, 0x90000 at 0x100040.
    let first = t1.lines().next().unwrap();
    assert!(
        first.contains("0008:00100040 00100040 bc 00 00 09 00"),
        "{first}"
    );
    assert!(
        first.contains("mov esp,90000h") && first.ends_with("ESP=00090000"),
        "{first}"
    );
    assert!(e1.starts_with("         0 start mode prot32"), "{e1}");
    assert!(
        e1.contains("out port 0x03f8 size 1 <- 0x6f"),
        "COM1 output 'o': {e1}"
    );
    // The power-off write to the PIIX4 PM1a control register.
    assert!(e1.contains("out port 0x0604"), "{e1}");
    // An address range keeps only instructions inside it.
    let (t3, _) = traced_run(&dir, "c", &["--trace-range", "0x100040..0x100050"]);
    assert!(!t3.is_empty());
    for line in t3.lines() {
        let linear = u32::from_str_radix(line.split_whitespace().nth(2).unwrap(), 16).unwrap();
        assert!((0x100040..0x100050).contains(&linear), "{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tracing watches every instruction, under every engine: the JIT and the
/// tiered engine give the interpreter's trace byte for byte.
#[test]
fn traces_are_identical_under_every_engine() {
    let dir = std::env::temp_dir().join(format!("oxide86-trace-engines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (t_interp, e_interp) = traced_run(&dir, "interp", &["--engine", "interp"]);
    assert!(
        t_interp.lines().count() > 5_000,
        "a whole demo run is traced"
    );
    for engine in ["jit", "tiered"] {
        let (t, e) = traced_run(&dir, engine, &["--engine", engine]);
        assert!(
            t == t_interp,
            "--engine {engine}: the instruction trace differs"
        );
        assert!(e == e_interp, "--engine {engine}: the event trace differs");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
