//! The `oxide86` command: `run` boots a guest on the emulated PC;
//! `conformance` runs the CPU conformance suites.

mod console;
mod debug_args;
mod demo;
mod run_cmd;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use oxide86_cpu::CpuModel;
use oxide86_testsuite::coverage::Scope;

/// oxide86: a full-system x86 PC emulator.
#[derive(Debug, Parser)]
#[command(name = "oxide86", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot a guest on the emulated PC (the built-in demo unless --kernel
    /// or --bios is given).
    Run(Box<run_cmd::RunArgs>),
    /// Run the CPU conformance suites.
    #[command(subcommand)]
    Conformance(Conformance),
}

#[derive(Debug, Subcommand)]
enum Conformance {
    /// Run a SingleStepTests vector set (a folder holding metadata.json and
    /// the gzipped JSON vector files), e.g. ../shared/testdata/singlestep/80286
    Singlestep {
        /// The set's folder (or its v1* subfolder).
        dir: std::path::PathBuf,
        /// Execution engine: interp, jit or tiered (the JIT runs on the p6
        /// model only; the others always interpret).
        #[arg(long, default_value = "interp", value_parser = parse_engine)]
        engine: oxide86_machine::pc::EngineKind,
        /// Check every translated block against the interpreter (see
        /// `oxide86 run --help`); a difference fails the vector.
        #[arg(long)]
        jit_verify: bool,
        /// CPU model: 8086, 286 or p6.
        #[arg(long, default_value = "p6", value_parser = parse_model)]
        cpu: CpuModel,
        /// Only run vector files whose name starts with this (e.g. "F6").
        #[arg(long)]
        only: Option<String>,
        /// Print at most this many failure diffs (all are counted).
        #[arg(long, default_value_t = 200)]
        max_diffs: usize,
    },
    /// Run the bare-metal system-ISA conformance programs
    /// (testsuite/system/*.asm, assembled with nasm), printing every check.
    System {
        /// Only programs whose name contains this (e.g. "paging").
        program: Option<String>,
        /// Execution engine: interp, jit or tiered.
        #[arg(long, default_value = "interp", value_parser = parse_engine)]
        engine: oxide86_machine::pc::EngineKind,
        /// Check every translated block against the interpreter (see
        /// `oxide86 run --help`); a difference fails the program.
        #[arg(long)]
        jit_verify: bool,
    },
    /// Differential test against the host CPU: random instruction sequences
    /// run natively (32-bit helper process, x86 Linux hosts only) and in the
    /// interpreter; registers, defined flags, memory and faults must agree.
    Hostdiff {
        /// Generator seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of sequences.
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// First sequence index (rerun one sequence with --start I --count 1).
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Print at most this many mismatch reports (all are counted).
        #[arg(long, default_value_t = 20)]
        max_diffs: usize,
        /// Execution engine on the emulator side: interp, jit or tiered.
        #[arg(long, default_value = "interp", value_parser = parse_engine)]
        engine: oxide86_machine::pc::EngineKind,
        /// Check every translated block against the interpreter (see
        /// `oxide86 run --help`); a difference fails the sequence.
        #[arg(long)]
        jit_verify: bool,
    },
    /// List the instruction encodings the CPU model must execute that the
    /// interpreter does not implement, then `N implemented, M missing`.
    Coverage {
        /// CPU model: 8086, 286 or p6.
        #[arg(long, default_value = "p6", value_parser = parse_model)]
        cpu: CpuModel,
        /// `user` leaves out the protected-mode system instructions; `all` counts everything.
        #[arg(long, default_value = "all", value_parser = parse_scope)]
        scope: Scope,
    },
}

fn parse_model(s: &str) -> Result<CpuModel, String> {
    CpuModel::from_name(s)
        .ok_or_else(|| format!("unknown CPU model '{s}' (expected 8086, 286 or p6)"))
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::from_name(s).ok_or_else(|| format!("unknown scope '{s}' (expected user or all)"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oxide86: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run_cmd::run(*args),
        Command::Conformance(Conformance::Singlestep {
            dir,
            engine,
            jit_verify,
            cpu,
            only,
            max_diffs,
        }) => {
            let opts = oxide86_testsuite::singlestep::Options {
                dir,
                model: cpu,
                only,
                max_diffs,
                engine,
                verify: jit_verify,
            };
            let summary = oxide86_testsuite::singlestep::run(&opts, &mut std::io::stdout().lock())?;
            Ok(if summary.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Conformance(Conformance::System {
            program,
            engine,
            jit_verify,
        }) => {
            let (_, failed) = oxide86_testsuite::system::run_with(
                program.as_deref(),
                &mut std::io::stdout().lock(),
                engine,
                jit_verify,
            )?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Conformance(Conformance::Hostdiff {
            seed,
            count,
            start,
            max_diffs,
            engine,
            jit_verify,
        }) => {
            let opts = oxide86_testsuite::hostdiff::Options {
                seed,
                count,
                start,
                max_diffs,
                engine,
                verify: jit_verify,
            };
            let summary = oxide86_testsuite::hostdiff::run(&opts, &mut std::io::stdout().lock())?;
            Ok(if summary.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Conformance(Conformance::Coverage { cpu, scope }) => {
            let opts = oxide86_testsuite::coverage::Options { model: cpu, scope };
            let summary = oxide86_testsuite::coverage::run(&opts, &mut std::io::stdout().lock())?;
            Ok(if summary.missing.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Parses `--engine` (interp, jit or tiered).
fn parse_engine(s: &str) -> Result<oxide86_machine::pc::EngineKind, String> {
    s.parse()
}
