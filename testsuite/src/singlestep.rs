//! Runner for the SingleStepTests hardware-recorded vectors (8086 and
//! 80286 real mode). See `../shared/testdata/singlestep/README.md` for the
//! format; the rules applied here are the ones it gives for running each
//! set fairly:
//!
//! - 8086 set: load the registers and RAM, execute one instruction
//!   (interrupts and exceptions are delivered within that step), compare.
//!   The address bus wraps at 1 MiB.
//! - 80286 set: FLAGS bits 12-15 are masked off the initial value, the
//!   bus has 24 address lines with A20 enabled, and execution runs until
//!   the first HLT (the final IP is past it).
//! - Undefined flags (`metadata.json`, per opcode or per ModRM.reg) are
//!   masked out of the expected and actual FLAGS, and out of the FLAGS image
//!   an exception pushed at `flag_address`.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use oxide86_cpu::{Bus, Cpu, CpuModel, Flags, SegReg};
use oxide86_machine::pc::{Engine, EngineKind};
use serde_json::Value;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The set's folder (holding `metadata.json` directly or in a `v1*` folder).
    pub dir: PathBuf,
    /// The CPU model to run the vectors on.
    pub model: CpuModel,
    /// Only files whose name starts with this.
    pub only: Option<String>,
    /// How many failure diffs to print.
    pub max_diffs: usize,
    /// The engine that runs each vector (a translating engine must give
    /// the interpreter's counts; it runs only on the P6 model).
    pub engine: EngineKind,
    /// Check every translated block against the interpreter
    /// (`--jit-verify`); a difference fails the vector.
    pub verify: bool,
}

/// Totals of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tests whose final state matched.
    pub passed: usize,
    /// Tests that differed.
    pub failed: usize,
    /// Failures per vector file, for the known-failures list.
    pub failed_by_file: Vec<(String, usize)>,
}

/// Which recorded set a folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SetKind {
    I8086,
    I286,
}

/// A sparse memory for one test: only the bytes the test names exist;
/// everything else reads as zero. Writes are kept for comparison.
#[derive(Debug, Default)]
struct TestBus {
    mem: HashMap<u32, u8>,
    mask: u32,
}

impl Bus for TestBus {
    fn read_u8(&mut self, addr: u32) -> u8 {
        self.mem.get(&(addr & self.mask)).copied().unwrap_or(0)
    }
    fn write_u8(&mut self, addr: u32, value: u8) {
        self.mem.insert(addr & self.mask, value);
    }
}

/// Register names of the vectors, in the order they are reported.
const REGS: [&str; 14] = [
    "ax", "bx", "cx", "dx", "cs", "ss", "ds", "es", "sp", "bp", "si", "di", "ip", "flags",
];

fn find_vector_dir(dir: &Path) -> Result<PathBuf> {
    if dir.join("metadata.json").is_file() {
        return Ok(dir.to_path_buf());
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read vector folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("metadata.json").is_file())
        .collect();
    candidates.sort();
    candidates.into_iter().next().ok_or_else(|| {
        anyhow!(
            "{}: no metadata.json here or in a v1* subfolder",
            dir.display()
        )
    })
}

/// The FLAGS mask of undefined bits for a vector file such as `F6.6.json.gz`.
fn flags_mask(metadata: &Value, file_stem: &str) -> u16 {
    let mut parts = file_stem.split('.');
    let op = parts.next().unwrap_or_default();
    let reg = parts.next();
    let mut entry = &metadata["opcodes"][op];
    if let Some(r) = reg {
        entry = &entry["reg"][r];
    }
    entry["flags-mask"].as_u64().map_or(0xFFFF, |m| m as u16)
}

fn reg_value(regs: &Value, name: &str) -> Option<u16> {
    regs.get(name).and_then(Value::as_u64).map(|v| v as u16)
}

/// Loads a vector's register file into the CPU.
fn load_state(cpu: &mut Cpu, regs: &Value, kind: SetKind) -> Result<()> {
    let get =
        |n: &str| reg_value(regs, n).ok_or_else(|| anyhow!("initial state lacks register {n}"));
    let s = &mut cpu.state;
    for (i, n) in ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"]
        .iter()
        .enumerate()
    {
        s.gpr[i] = u32::from(get(n)?);
    }
    for (seg, n) in [
        (SegReg::Es, "es"),
        (SegReg::Cs, "cs"),
        (SegReg::Ss, "ss"),
        (SegReg::Ds, "ds"),
    ] {
        s.set_real_mode_segment(seg, get(n)?);
    }
    s.eip = u32::from(get("ip")?);
    let mut flags = get("flags")?;
    if kind == SetKind::I286 {
        flags &= 0x0FFF;
    }
    s.eflags = u32::from(flags) | 2;
    s.lazy = Default::default();
    Ok(())
}

/// Reads back the register named `name`.
fn read_reg(cpu: &Cpu, name: &str) -> u16 {
    let s = &cpu.state;
    let gpr = |i: usize| s.gpr[i] as u16;
    match name {
        "ax" => gpr(0),
        "cx" => gpr(1),
        "dx" => gpr(2),
        "bx" => gpr(3),
        "sp" => gpr(4),
        "bp" => gpr(5),
        "si" => gpr(6),
        "di" => gpr(7),
        "es" => s.segment(SegReg::Es).selector,
        "cs" => s.segment(SegReg::Cs).selector,
        "ss" => s.segment(SegReg::Ss).selector,
        "ds" => s.segment(SegReg::Ds).selector,
        "ip" => s.eip as u16,
        _ => cpu.flags_image() as u16,
    }
}

/// Runs one test; returns the differences (empty when it passed).
fn run_test(
    test: &Value,
    kind: SetKind,
    engine: &mut Engine,
    cpu: &mut Cpu,
    mask: u16,
) -> Result<Vec<String>> {
    let initial = &test["initial"];
    let fin = &test["final"];
    cpu.reset();
    cpu.state.idtr.limit = 0x3FF;
    load_state(cpu, &initial["regs"], kind)?;
    let mut bus = TestBus {
        mem: HashMap::new(),
        mask: if kind == SetKind::I8086 {
            0xF_FFFF
        } else {
            0xFF_FFFF
        },
    };
    for pair in initial["ram"]
        .as_array()
        .ok_or_else(|| anyhow!("initial.ram is not an array"))?
    {
        let (a, v) = (
            pair[0].as_u64().unwrap_or(0) as u32,
            pair[1].as_u64().unwrap_or(0) as u8,
        );
        bus.write_u8(a, v);
    }
    // The engine may translate what the vector wrote to memory: the reset
    // above flushed the decode cache, which drops every translation.
    let steps = match kind {
        SetKind::I8086 => 1,
        SetKind::I286 => 64,
    };
    let _ = engine.run(cpu, &mut bus, steps, |_, _| false);
    cpu.state.commit_flags();
    let mut diffs = Vec::new();
    if let Some(m) = engine.take_mismatch() {
        diffs.push(m.to_string());
    }
    for name in REGS {
        let expected = reg_value(&fin["regs"], name)
            .or_else(|| reg_value(&initial["regs"], name))
            .unwrap_or(0);
        let expected =
            if name == "flags" && kind == SetKind::I286 && fin["regs"].get("flags").is_none() {
                expected & 0x0FFF
            } else {
                expected
            };
        let actual = read_reg(cpu, name);
        let (e, a) = if name == "flags" {
            (expected & mask, actual & mask)
        } else {
            (expected, actual)
        };
        if e != a {
            diffs.push(format!("{name}: expected {e:#06x}, got {a:#06x}"));
        }
    }
    // The FLAGS image an interrupt pushed: `flag_address`, which in some 286
    // vectors points one byte below the pushed word (at SS:SP-2).
    let flag_address = test["exception"]["flag_address"].as_u64().map(|a| {
        let a = a as u32;
        let r = &initial["regs"];
        let ss = u32::from(reg_value(r, "ss").unwrap_or(0));
        let sp = u32::from(reg_value(r, "sp").unwrap_or(0));
        let pushed = ((ss << 4) + (sp.wrapping_sub(2) & 0xFFFF)) & 0xFF_FFFF;
        if pushed == a + 1 {
            pushed
        } else {
            a
        }
    });
    // The 8086 vectors carry no exception record: when an interrupt was taken
    // (SP down by 6 and CS:IP changed), FLAGS were pushed at the old SS:SP-2.
    let flag_address = flag_address.or_else(|| {
        let r = &initial["regs"];
        let sp0 = reg_value(r, "sp")?;
        let sp1 = reg_value(&fin["regs"], "sp")?;
        (kind == SetKind::I8086 && sp1 == sp0.wrapping_sub(6) && fin["regs"].get("cs").is_some())
            .then(|| {
                let ss = u32::from(reg_value(r, "ss").unwrap_or(0));
                ((ss << 4) + u32::from(sp0.wrapping_sub(2))) & 0xF_FFFF
            })
    });
    for pair in fin["ram"]
        .as_array()
        .ok_or_else(|| anyhow!("final.ram is not an array"))?
    {
        let (addr, v) = (
            pair[0].as_u64().unwrap_or(0) as u32,
            pair[1].as_u64().unwrap_or(0) as u8,
        );
        let mut byte_mask = 0xFF;
        if let Some(fa) = flag_address {
            if addr == fa {
                byte_mask = mask as u8;
            } else if addr == fa + 1 {
                byte_mask = (mask >> 8) as u8;
            }
        }
        let actual = bus.read_u8(addr);
        if v & byte_mask != actual & byte_mask {
            diffs.push(format!(
                "ram[{addr:#07x}]: expected {v:#04x}, got {actual:#04x}"
            ));
        }
    }
    Ok(diffs)
}

fn set_kind(metadata: &Value) -> SetKind {
    let cpu = metadata["cpu"].as_str().unwrap_or_default();
    if cpu.contains("286") {
        SetKind::I286
    } else {
        SetKind::I8086
    }
}

/// Runs every vector file of a set and prints failures and the closing
/// `N passed, M failed` line to `out`.
pub fn run(opts: &Options, out: &mut dyn Write) -> Result<Summary> {
    let dir = find_vector_dir(&opts.dir)?;
    let metadata: Value = serde_json::from_reader(BufReader::new(
        std::fs::File::open(dir.join("metadata.json"))
            .with_context(|| format!("{}", dir.display()))?,
    ))
    .with_context(|| format!("{}/metadata.json is not valid JSON", dir.display()))?;
    let kind = set_kind(&metadata);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            opts.only
                .as_ref()
                .is_none_or(|o| name.starts_with(o.as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no *.json.gz vector files", dir.display());
    }
    let mut cpu = Cpu::new(opts.model);
    let mut engine = Engine::new(opts.engine);
    engine.set_verify(opts.verify);
    let mut summary = Summary::default();
    let mut printed = 0;
    for file in &files {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let stem = name.trim_end_matches(".json.gz").to_string();
        let mask = flags_mask(&metadata, &stem);
        let reader = flate2::read::GzDecoder::new(std::fs::File::open(file)?);
        let tests: Vec<Value> = serde_json::from_reader(BufReader::new(reader))
            .with_context(|| format!("{}: not a JSON array", file.display()))?;
        let mut file_failed = 0;
        for (i, test) in tests.iter().enumerate() {
            let diffs = run_test(test, kind, &mut engine, &mut cpu, mask)
                .with_context(|| format!("{name} test {i}: malformed vector"))?;
            if diffs.is_empty() {
                summary.passed += 1;
            } else {
                summary.failed += 1;
                file_failed += 1;
                if printed < opts.max_diffs {
                    printed += 1;
                    let idx = test
                        .get("idx")
                        .or_else(|| test.get("test_num"))
                        .and_then(Value::as_u64)
                        .unwrap_or(i as u64);
                    let label = test["name"].as_str().unwrap_or("?");
                    writeln!(out, "FAIL {name} #{idx} `{label}`: {}", diffs.join("; "))?;
                }
            }
        }
        if file_failed > 0 {
            summary.failed_by_file.push((stem, file_failed));
        }
    }
    if summary.failed > 0 {
        let per_file: Vec<String> = summary
            .failed_by_file
            .iter()
            .map(|(f, n)| format!("{f}:{n}"))
            .collect();
        writeln!(out, "failures by file: {}", per_file.join(" "))?;
    }
    writeln!(out, "{} passed, {} failed", summary.passed, summary.failed)?;
    Ok(summary)
}
