//! Differential testing against the host CPU: random instruction sequences
//! (encoded with iced-x86 over every integer instruction group) run
//! natively in a 32-bit process on an x86 host and in the interpreter from
//! the same registers and memory; registers, defined flags, the data window
//! and any fault (vector and faulting instruction) must agree.
//!
//! `oxide86 conformance hostdiff --seed S --count N` runs any count; the
//! test `tests/hostdiff.rs` runs a fixed seed. On a non-x86 host, or where
//! `gcc -m32` was missing at build time, the run is skipped with a message
//! (missing gcc on x86 is an error when `CI=true`).

pub mod compare;
pub mod flags;
pub mod forms;
pub mod generate;
pub mod interp;
pub mod layout;
pub mod native;
pub mod rng;

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Result};
use oxide86_machine::pc::{Engine, EngineKind};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The generator seed.
    pub seed: u64,
    /// How many sequences.
    pub count: u64,
    /// The first sequence index (to rerun one sequence alone).
    pub start: u64,
    /// How many mismatch reports to print (all are counted).
    pub max_diffs: usize,
    /// The engine that runs the sequences on the emulator side.
    pub engine: EngineKind,
    /// Check every translated block against the interpreter
    /// (`--jit-verify`); a difference fails the sequence.
    pub verify: bool,
}

/// Totals of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Sequences whose results agreed.
    pub passed: u64,
    /// Sequences that differed.
    pub failed: u64,
    /// Sequences not run (the host cannot run them).
    pub skipped: u64,
    /// Sequences that ended in a fault on the host (agreeing or not).
    pub faulted: u64,
}

/// Runs the sequences and prints mismatches and the closing
/// `N passed, M failed` line to `out`.
pub fn run(opts: &Options, out: &mut dyn Write) -> Result<Summary> {
    if let Some(why) = native::unavailable() {
        let x86 = cfg!(any(target_arch = "x86", target_arch = "x86_64"));
        if !x86 {
            writeln!(out, "hostdiff: skipped: not an x86 host")?;
        } else if std::env::var("CI").is_ok_and(|v| v == "true") {
            bail!("hostdiff: the native helper is unavailable on this x86 CI host: {why}");
        } else {
            writeln!(
                out,
                "hostdiff: skipped: {why}; run `apt-get install gcc-multilib` and rebuild"
            )?;
        }
        writeln!(out, "0 passed, 0 failed, {} skipped", opts.count)?;
        return Ok(Summary {
            skipped: opts.count,
            ..Summary::default()
        });
    }
    let started = Instant::now();
    let generator = generate::Generator::new();
    let mut helper = native::Helper::spawn()?;
    let mut summary = Summary::default();
    let mut printed = 0;
    let mut engine = Engine::new(opts.engine);
    engine.set_verify(opts.verify);
    for index in opts.start..opts.start + opts.count {
        let case = generator.case(opts.seed, index);
        let host = helper.run(&case)?;
        let emu = interp::run(&case, &mut engine);
        if host.fault.is_some() {
            summary.faulted += 1;
        }
        let diffs = compare::diff(&case, &host, &emu);
        if let Some(m) = engine.take_mismatch() {
            summary.failed += 1;
            if printed < opts.max_diffs {
                printed += 1;
                writeln!(out, "seed {} sequence {index}: {m}", opts.seed)?;
            }
        } else if diffs.is_empty() {
            summary.passed += 1;
        } else {
            summary.failed += 1;
            if printed < opts.max_diffs {
                printed += 1;
                write!(out, "{}", compare::report(opts.seed, index, &case, &diffs))?;
            }
        }
    }
    writeln!(
        out,
        "hostdiff: seed {} sequences {}..{} ({} forms, {} ended in a fault) under {:?} in {:.1} s",
        opts.seed,
        opts.start,
        opts.start + opts.count,
        generator.form_count(),
        summary.faulted,
        opts.engine,
        started.elapsed().as_secs_f64()
    )?;
    writeln!(out, "{} passed, {} failed", summary.passed, summary.failed)?;
    Ok(summary)
}
