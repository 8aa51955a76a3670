//! Runner for the project's bare-metal system conformance programs
//! (`testsuite/system/*.asm`, NASM source built at run time). Each program
//! reports its checks on the debug console as `ok NAME` / `FAIL NAME` and
//! exits through the debug-exit port with the number of failures; a triple
//! fault, a dead halt or the instruction cap is a failure of its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use oxide86_cpu::CpuModel;
use oxide86_machine::pc::EngineKind;
use oxide86_machine::test_machine::{RunEnd, TestMachine};

/// Instruction cap per program.
pub const MAX_INSTRUCTIONS: u64 = 50_000_000;
/// RAM of the test machine.
pub const RAM_BYTES: usize = 32 << 20;

/// Where the program sources live.
pub fn program_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("system")
}

/// The programs, sorted by name (every `.asm` except included files).
pub fn programs() -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(program_dir())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "asm"))
        .collect();
    v.sort();
    Ok(v)
}

/// Assembles `source` with NASM into a flat binary.
pub fn assemble(source: &Path) -> Result<Vec<u8>> {
    // One directory per call: tests in one process assemble concurrently.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out_dir =
        std::env::temp_dir().join(format!("oxide86-system-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&out_dir)?;
    let stem = source
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let out = out_dir.join(format!("{stem}.bin"));
    let mut include = program_dir().into_os_string();
    include.push("/");
    let status = Command::new("nasm")
        .arg("-f")
        .arg("bin")
        .arg("-I")
        .arg(&include)
        .arg("-o")
        .arg(&out)
        .arg(source)
        .status()
        .context("cannot run `nasm` (install it: apt-get install nasm)")?;
    if !status.success() {
        bail!("nasm failed on {}", source.display());
    }
    let bytes = std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_dir(&out_dir);
    Ok(bytes)
}

/// The result of one program.
#[derive(Clone, Debug, Default)]
pub struct ProgramResult {
    /// Checks reported `ok`.
    pub passed: usize,
    /// Checks reported `FAIL`, plus one for an abnormal end.
    pub failed: usize,
    /// The debug-console log.
    pub log: String,
}

/// Runs one assembled program in the interpreter.
pub fn run_program(name: &str, image: &[u8]) -> Result<ProgramResult> {
    run_program_with(name, image, EngineKind::Interp, false)
}

/// Runs one assembled program under `engine` (tiered with a threshold of
/// 2, so blocks get translated within these short programs), with every
/// translated block checked against the interpreter when `verify` is set.
pub fn run_program_with(
    name: &str,
    image: &[u8],
    engine: EngineKind,
    verify: bool,
) -> Result<ProgramResult> {
    let mut m = TestMachine::new(CpuModel::P6, RAM_BYTES, image).map_err(anyhow::Error::msg)?;
    m.engine = oxide86_machine::pc::Engine::new(engine);
    m.engine.threshold = 2;
    m.engine.set_verify(verify);
    let end = m.run(MAX_INSTRUCTIONS);
    let mut r = ProgramResult {
        log: String::from_utf8_lossy(&m.board.debugcon.output).into_owned(),
        ..Default::default()
    };
    for line in r.log.lines() {
        if line.starts_with("ok ") {
            r.passed += 1;
        } else if line.starts_with("FAIL ") {
            r.failed += 1;
        }
    }
    let abnormal = match end {
        RunEnd::Exit(0) if r.failed == 0 => None,
        RunEnd::Exit(v) if v as usize == r.failed => None,
        RunEnd::Exit(v) => Some(format!(
            "exit code {v} does not match {} failed checks",
            r.failed
        )),
        RunEnd::Shutdown(why) => Some(format!("shutdown: {why} (EIP {:#x})", m.cpu.state.eip)),
        RunEnd::Halted => Some(format!(
            "halted with interrupts off at EIP {:#x}",
            m.cpu.state.eip
        )),
        RunEnd::InstructionLimit => Some(format!(
            "no exit after {MAX_INSTRUCTIONS} instructions (EIP {:#x})",
            m.cpu.state.eip
        )),
        RunEnd::JitMismatch(report) => Some(report),
    };
    if let Some(msg) = abnormal {
        r.failed += 1;
        r.log.push_str(&format!("FAIL {name}: {msg}\n"));
    }
    Ok(r)
}

/// Runs every program (or those whose name contains `filter`), printing
/// each check and the closing `N passed, M failed` line.
pub fn run(filter: Option<&str>, out: &mut dyn Write) -> Result<(usize, usize)> {
    run_with(filter, out, EngineKind::Interp, false)
}

/// [`run`] under `engine`, optionally in verify mode (see [`run_program_with`]).
pub fn run_with(
    filter: Option<&str>,
    out: &mut dyn Write,
    engine: EngineKind,
    verify: bool,
) -> Result<(usize, usize)> {
    let (mut passed, mut failed) = (0, 0);
    for p in programs()? {
        let name = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let image = assemble(&p)?;
        let r = run_program_with(&name, &image, engine, verify)?;
        for line in r.log.lines() {
            writeln!(out, "{name}: {line}")?;
        }
        passed += r.passed;
        failed += r.failed;
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok((passed, failed))
}
