//! `oxide86 run`: build a PC, boot the guest (the built-in demo unless a
//! kernel or firmware is given) and run it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use oxide86_cpu::CpuModel;
use oxide86_machine::boot::multiboot::{self, Module};
use oxide86_machine::clock::ClockMode;
use oxide86_machine::pc::{BootSource, HostInput, Pc, PcConfig, PcExit, DEFAULT_RTC_BASE};
use oxide86_machine::pc_board::ConsoleSink;

use crate::console::{ConsoleEvent, EscapeParser, RawTerminal, HELP};

/// Options of `oxide86 run`.
///
/// Exit status: the guest's power-off (ACPI S5) and a reset with
/// --no-reboot exit 0; a write of V to the debug-exit port 0xF4 exits
/// (V << 1) | 1; a CPU halted with interrupts off and nothing to wake it
/// exits 3; --max-instructions running out exits 4; a --jit-verify
/// mismatch exits 6; errors (bad options, missing or malformed files) exit 2.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Guest RAM in MiB.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=3584))]
    memory: u32,
    /// A kernel to boot directly: a Linux bzImage or a Multiboot (v1) ELF
    /// or a.out-kludge image. Without --kernel or --bios, the built-in demo
    /// guest runs.
    #[arg(long, conflicts_with = "bios")]
    kernel: Option<PathBuf>,
    /// An initrd for a Linux kernel (for a Multiboot kernel: its first module).
    #[arg(long, requires = "kernel")]
    initrd: Option<PathBuf>,
    /// The kernel command line.
    #[arg(long, default_value = "", requires = "kernel")]
    append: String,
    /// A raw firmware ROM image, mapped to end at 4 GiB with its last
    /// 128 KiB also below 1 MiB; the CPU starts at the reset vector.
    #[arg(long)]
    bios: Option<PathBuf>,
    /// Execution engine: `tiered` (interpret, translate blocks that ran
    /// --jit-threshold times, hot loops as regions), `jit` (translate every
    /// block with Cranelift at first execution) or `interp` (the reference
    /// interpreter).
    #[arg(long, default_value = "tiered", value_parser = ["interp", "jit", "tiered"])]
    engine: String,
    /// Tiered engine: executions of a block before it is translated.
    #[arg(long, default_value_t = oxide86_machine::pc::DEFAULT_JIT_THRESHOLD)]
    jit_threshold: u32,
    /// Tiered engine: guest instructions run from a translated block
    /// before it is compiled again with Cranelift's optimiser (hot loops
    /// and recursions; 0: never).
    #[arg(long, default_value_t = oxide86_machine::pc::DEFAULT_JIT_OPTIMIZE_AFTER)]
    jit_optimize_after: u64,
    /// Tiered engine: compile hot blocks on a second thread while the
    /// guest goes on in the interpreter (`on`), or on the emulation
    /// thread, which waits for each (`off`).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    jit_background: String,
    /// Check every translated block against the interpreter (jit and
    /// tiered engines; 3 to 8 times the interpreter's CPU time): the
    /// interpreter reruns each
    /// block run on a copy of the state it started from, and the first
    /// difference is reported on stderr with the guest instructions and
    /// ends the run with exit status 6. Block runs that touched MMIO or ROM
    /// are not rerun (counted as unverifiable in --stats).
    #[arg(long)]
    jit_verify: bool,
    /// Time base: `virtual` (from retired instructions, repeatable) or
    /// `realtime` (the host clock).
    #[arg(long, default_value = "virtual", value_parser = ["virtual", "realtime"])]
    clock: String,
    /// Where COM1 goes: stdio (input from stdin; in a terminal, raw mode
    /// with Ctrl-A x to quit and Ctrl-A h for help), none, or file:PATH
    /// (output only).
    #[arg(long, default_value = "stdio")]
    serial: String,
    /// The RTC's date at power-on: now, seconds since 1970, or
    /// YYYY-MM-DD[THH:MM:SS] (UTC). Default: 2000-01-01 with the virtual
    /// clock (repeatable runs), the host's time with the realtime clock.
    #[arg(long)]
    rtc_base: Option<String>,
    /// Where the port-0xE9 debug console goes: stdio, none or file:PATH.
    #[arg(long, default_value = "none")]
    debugcon: String,
    /// A reset (triple fault, reset port) ends the emulator with status 0
    /// instead of rebooting.
    #[arg(long)]
    no_reboot: bool,
    /// CPU model: 8086, 286 or p6 (a Pentium II-class family-6 CPU).
    #[arg(long, default_value = "p6", value_parser = crate::parse_model)]
    cpu: CpuModel,
    /// Stop after this many instructions (exit status 4); with the virtual
    /// clock, time spent halted counts too, one instruction per nanosecond.
    #[arg(long)]
    max_instructions: Option<u64>,
    /// Print figures at exit on stderr: instructions, MIPS, the last POST
    /// code, soft-TLB and decode-cache counters.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    debug: crate::debug_args::DebugArgs,
}

/// A console sink writing to a host stream.
struct WriterSink(Box<dyn Write + Send>);

impl std::fmt::Debug for WriterSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterSink")
    }
}

impl ConsoleSink for WriterSink {
    fn byte(&mut self, b: u8) {
        // The console is best effort: a closed pipe must not stop the guest.
        let _ = self.0.write_all(&[b]);
        if b == b'\n' {
            let _ = self.0.flush();
        }
    }
}

fn console_sink(spec: &str) -> Result<Option<Box<dyn ConsoleSink>>> {
    Ok(match spec {
        "none" => None,
        "stdio" => Some(Box::new(WriterSink(Box::new(std::io::stdout())))),
        _ => match spec.strip_prefix("file:") {
            Some(path) => {
                let f = File::create(path)
                    .with_context(|| format!("cannot create console file {path}"))?;
                Some(Box::new(WriterSink(Box::new(f))))
            }
            None => bail!("invalid console '{spec}': expected stdio, none or file:PATH"),
        },
    })
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn boot_source(args: &RunArgs) -> Result<BootSource> {
    if let Some(bios) = &args.bios {
        let rom = read_file("firmware", bios)?;
        if rom.is_empty() || rom.len() > 16 << 20 || rom.len() % 1024 != 0 {
            bail!(
                "firmware {}: {} bytes; expected a non-empty multiple of 1 KiB up to 16 MiB",
                bios.display(),
                rom.len()
            );
        }
        return Ok(BootSource::Firmware(rom));
    }
    let Some(kernel_path) = &args.kernel else {
        let kernel = crate::demo::image().context("assembling the built-in demo guest")?;
        return Ok(BootSource::Multiboot {
            kernel,
            cmdline: String::new(),
            modules: Vec::new(),
        });
    };
    let kernel = read_file("kernel", kernel_path)?;
    let initrd = args
        .initrd
        .as_ref()
        .map(|p| read_file("initrd", p))
        .transpose()?;
    if kernel.get(0x202..0x206) == Some(b"HdrS") {
        return Ok(BootSource::Linux {
            kernel,
            initrd,
            cmdline: args.append.clone(),
        });
    }
    if multiboot::find_header(&kernel).is_some() {
        let modules = initrd
            .map(|data| {
                vec![Module {
                    data,
                    cmdline: "initrd".into(),
                }]
            })
            .unwrap_or_default();
        return Ok(BootSource::Multiboot {
            kernel,
            cmdline: args.append.clone(),
            modules,
        });
    }
    bail!("kernel {}: neither a Linux bzImage (no HdrS header) nor a Multiboot image (no header in the first 8 KiB)", kernel_path.display())
}

/// Parses --rtc-base.
fn rtc_base(spec: Option<&str>, clock: ClockMode) -> Result<i64> {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    };
    let Some(spec) = spec else {
        return Ok(if clock == ClockMode::Virtual {
            DEFAULT_RTC_BASE
        } else {
            now()
        });
    };
    if spec == "now" {
        return Ok(now());
    }
    if let Ok(secs) = spec.parse::<i64>() {
        return Ok(secs);
    }
    let bad = || {
        anyhow::anyhow!("invalid --rtc-base '{spec}': expected now, seconds since 1970, or YYYY-MM-DD[THH:MM:SS]")
    };
    let (date, time) = spec.split_once('T').unwrap_or((spec, "00:00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let (&[y, m, day], &[hh, mm, ss]) = (d.as_slice(), t.as_slice()) else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 59 || y < 0
    {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Connects COM1 as --serial says; returns the raw-terminal guard to keep.
fn connect_serial(pc: &mut Pc, spec: &str) -> Result<Option<RawTerminal>> {
    use std::io::IsTerminal;
    match spec {
        "none" => Ok(None),
        "stdio" => {
            pc.board.com[0].output_mut().0 = Some(Box::new(std::io::stdout()));
            if !std::io::stdin().is_terminal() {
                pc.input = HostInput::Stream(Box::new(std::io::stdin()));
                return Ok(None);
            }
            let guard = RawTerminal::enter().context("cannot put the terminal in raw mode")?;
            let (tx, rx) = std::sync::mpsc::channel();
            let quit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let quit_flag = quit.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut parser = EscapeParser::default();
                let mut byte = [0u8; 1];
                while let Ok(1) = std::io::stdin().read(&mut byte) {
                    match parser.feed(byte[0]) {
                        ConsoleEvent::Input(b) => {
                            if tx.send(b).is_err() {
                                return;
                            }
                        }
                        ConsoleEvent::Quit => {
                            quit_flag.store(true, std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                        ConsoleEvent::Help => eprint!("{HELP}"),
                        ConsoleEvent::None => {}
                    }
                }
            });
            pc.input = HostInput::Interactive { bytes: rx, quit };
            Ok(Some(guard))
        }
        _ => match spec.strip_prefix("file:") {
            Some(path) => {
                let f = File::create(path)
                    .with_context(|| format!("cannot create serial output file {path}"))?;
                pc.board.com[0].output_mut().0 = Some(Box::new(f));
                Ok(None)
            }
            None => bail!("invalid --serial '{spec}': expected stdio, none or file:PATH"),
        },
    }
}

/// Runs `oxide86 run`.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let clock = if args.clock == "realtime" {
        ClockMode::Realtime
    } else {
        ClockMode::Virtual
    };
    if args.jit_verify && args.engine == "interp" {
        bail!("--jit-verify checks translated code: use it with --engine jit or tiered");
    }
    let config = PcConfig {
        rtc_base: rtc_base(args.rtc_base.as_deref(), clock)?,
        ram_bytes: args.memory as usize * 1024 * 1024,
        model: args.cpu,
        clock: if args.clock == "realtime" {
            ClockMode::Realtime
        } else {
            ClockMode::Virtual
        },
        no_reboot: args.no_reboot,
        max_instructions: args.max_instructions,
        engine: args.engine.parse().map_err(anyhow::Error::msg)?,
        jit_threshold: args.jit_threshold,
        jit_optimize_after: args.jit_optimize_after,
        jit_background: args.jit_background == "on",
        jit_verify: args.jit_verify,
    };
    let boot = boot_source(&args)?;
    let mut pc = Pc::new(config, boot).context("building the machine")?;
    pc.board.debugcon_sink = console_sink(&args.debugcon)?;
    let terminal = connect_serial(&mut pc, &args.serial)?;
    let (pc, exit) = crate::debug_args::run(pc, &args.debug)?;
    drop(terminal); // the terminal is restored before anything else is printed
    if args.stats {
        print_stats(&pc, &exit);
    }
    if let PcExit::Reset(why) = &exit {
        eprintln!("oxide86: guest reset ({why}); --no-reboot ends the run");
    }
    if let Some(m) = pc.engine.mismatch() {
        eprint!("oxide86: {m}");
    }
    Ok(ExitCode::from(exit.status() as u8))
}

fn print_stats(pc: &Pc, exit: &PcExit) {
    let s = &pc.stats;
    let mips = if s.seconds > 0.0 {
        s.instructions as f64 / s.seconds / 1e6
    } else {
        0.0
    };
    let tlb = &pc.cpu.tlb.stats;
    let dc = &pc.cpu.icache.stats;
    eprintln!("oxide86 stats: exit {exit:?}");
    eprintln!("  instructions retired  {}", s.instructions);
    let st = &pc.cpu.state;
    let g = &st.gpr;
    eprintln!(
        "  cpu state             CS:EIP={:04x}:{:08x} EAX={:08x} EBX={:08x} ECX={:08x} EDX={:08x} ESI={:08x} EDI={:08x} EBP={:08x} ESP={:08x} EFLAGS={:08x}",
        st.seg[oxide86_cpu::SegReg::Cs as usize].selector,
        st.eip,
        g[0],
        g[3],
        g[1],
        g[2],
        g[6],
        g[7],
        g[5],
        g[4],
        st.lazy.status(st.eflags)
    );
    eprintln!(
        "  host time             {:.3} s ({mips:.1} MIPS)",
        s.seconds
    );
    eprintln!("  resets                {}", s.resets);
    match pc.board.post.last_code() {
        Some(code) => eprintln!("  last POST code        {code:#04x}"),
        None => eprintln!("  last POST code        none"),
    }
    eprintln!(
        "  soft TLB              {} hits, {} misses, {} flushes, {} invlpg",
        tlb.hits, tlb.misses, tlb.flushes, tlb.invlpg
    );
    eprintln!(
        "  decode cache          {} hits, {} misses, {} invalidations",
        dc.hits, dc.misses, dc.invalidations
    );
    let j = &pc.engine.stats;
    if pc.engine.kind() != oxide86_machine::pc::EngineKind::Interp {
        let share = |n: u64| 100.0 * n as f64 / s.instructions.max(1) as f64;
        eprintln!(
            "  jit ({:?}){}{} translations ({} regions, {} optimised again, {} branches as selects) in {:.3} s ({:.3} s of it on the compile thread, {} discarded), {} B of code",
            pc.engine.kind(),
            " ".repeat(17usize.saturating_sub(format!("{:?}", pc.engine.kind()).len())),
            j.blocks_translated,
            j.regions,
            j.optimized,
            j.selects,
            j.translate_ns as f64 / 1e9,
            j.background_ns as f64 / 1e9,
            j.discarded,
            j.code_bytes
        );
        eprintln!(
            "  jit cache             {} lookups, {} hits, {} block runs ({} chained exits, {} links), {} invalidations, {} flushes, {} untranslatable",
            j.lookups,
            j.hits,
            j.block_runs,
            j.chained,
            j.links,
            j.invalidations,
            j.flushes,
            j.untranslatable
        );
        eprintln!(
            "  jit instructions      {:.1}% inline, {:.1}% through helpers in blocks, {:.1}% interpreted",
            share(j.block_insns - j.helper_insns.min(j.block_insns)),
            share(j.helper_insns),
            share(s.instructions.saturating_sub(j.block_insns))
        );
        if pc.engine.verifying() {
            eprintln!(
                "  jit verify            {} block runs verified, {} unverifiable (touched MMIO or ROM)",
                j.blocks_verified, j.blocks_unverifiable
            );
        }
    }
}
