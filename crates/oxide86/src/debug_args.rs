//! The debugging options of `oxide86 run` (`--gdb`, `--paused`,
//! `--monitor`, `--trace`, `--trace-events` and the trace filters) and
//! how a run with them is driven (`oxide86_debug::session`).

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use oxide86_debug::session::{MonitorSpec, SessionOptions};
use oxide86_debug::trace::{EventTrace, InstructionTrace, TraceFilter, Tracers};
use oxide86_machine::pc::{Pc, PcExit};

/// Debugging options.
#[derive(Debug, Args)]
pub struct DebugArgs {
    /// Listen for GDB's remote protocol on HOST:PORT (e.g. 127.0.0.1:1234;
    /// a bare PORT means 127.0.0.1:PORT). Addresses GDB uses are linear.
    #[arg(long, value_parser = parse_gdb_addr)]
    gdb: Option<SocketAddr>,
    /// Hold the guest at its first instruction until GDB connects and
    /// continues (like qemu -s -S).
    #[arg(long, requires = "gdb")]
    paused: bool,
    /// A monitor console: stdio or tcp:HOST:PORT (see `help` in it).
    #[arg(long, value_parser = |s: &str| s.parse::<MonitorSpec>())]
    monitor: Option<MonitorSpec>,
    /// Log every executed instruction to FILE (address, bytes,
    /// disassembly, registers changed).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Only trace instructions at linear addresses START..END (hex, END
    /// exclusive).
    #[arg(long, requires = "trace", value_parser = |s: &str| oxide86_debug::trace::parse_address_range(s).ok_or("expected START..END in hex"))]
    trace_range: Option<Range<u32>>,
    /// Only trace instructions number FROM..TO (decimal, TO exclusive,
    /// counted from 0; either end may be left out).
    #[arg(long, requires = "trace", value_parser = |s: &str| oxide86_debug::trace::parse_window(s).ok_or("expected FROM..TO"))]
    trace_window: Option<Range<u64>>,
    /// Log interrupts, exceptions, mode switches and I/O port accesses to FILE.
    #[arg(long)]
    trace_events: Option<PathBuf>,
}

fn parse_gdb_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("invalid --gdb '{s}': expected HOST:PORT or PORT"))
}

fn create(path: &PathBuf, what: &str) -> Result<Box<dyn std::io::Write + Send>> {
    let f =
        File::create(path).with_context(|| format!("cannot create {what} {}", path.display()))?;
    Ok(Box::new(BufWriter::new(f)))
}

/// Runs `pc` as the options ask: plain, traced, or with debuggers attached.
pub fn run(mut pc: Pc, args: &DebugArgs) -> Result<(Pc, PcExit)> {
    if args.trace.is_some() || args.trace_events.is_some() {
        let mut tracers = Tracers::default();
        if let Some(path) = &args.trace {
            let filter = TraceFilter {
                addresses: args.trace_range.clone(),
                window: args.trace_window.clone(),
            };
            tracers.instructions = Some(InstructionTrace::new(create(path, "trace file")?, filter));
        }
        if let Some(path) = &args.trace_events {
            tracers.events = Some(EventTrace::new(create(path, "event trace file")?));
        }
        pc.debug.observer = Some(Box::new(tracers));
    }
    let result = if args.gdb.is_some() || args.monitor.is_some() {
        let opts = SessionOptions {
            gdb: args.gdb,
            paused: args.paused,
            monitor: args.monitor.clone(),
        };
        oxide86_debug::session::run(pc, &opts)?
    } else {
        let exit = pc.run();
        (pc, exit)
    };
    let (mut pc, exit) = result;
    pc.debug.observer = None; // flushes the trace files
    Ok((pc, exit))
}
