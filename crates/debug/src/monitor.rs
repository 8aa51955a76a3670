//! Monitor commands, the same from GDB (`monitor info registers`) and
//! from `--monitor stdio|tcp:ADDR`:
//!
//! | command | what it does |
//! |---|---|
//! | `info registers` | general, segment (with descriptor caches), LDTR/TR/GDTR/IDTR, control and debug registers |
//! | `info tlb` | the soft TLB's current entries |
//! | `info mem` | the guest page tables' present mappings, coalesced |
//! | `x/NFU ADDR` | examine memory: N units, F = x d u c i (hex, signed, unsigned, char, instructions), U = b h w g |
//! | `break-on exception N\|all\|none` | stop after exception N (or any) is raised |
//! | `break-on interrupt on\|off` | stop after each external interrupt or NMI |
//! | `stats` | instructions, resets, TLB and decode-cache counters |
//! | `reset` | warm reset: CPU reset, boot image reloaded |
//! | `quit` | end the emulator |
//!
//! ADDR is linear, `seg:off` or `p:PHYS` (see [`crate::addr`]). Every
//! command answers text; a malformed one answers an error line, never a
//! panic.

use std::fmt::Write;

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use oxide86_machine::inspect;
use oxide86_machine::pc::Pc;

use crate::addr::{self, Addr};

/// What the caller must do after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing more.
    None,
    /// End the emulator.
    Quit,
}

/// The help text.
pub const HELP: &str = "\
info registers        registers, segment caches, GDTR/IDTR/LDTR/TR, CR0-CR4, DR0-DR7
info tlb              soft TLB entries (linear page -> physical page, rights)
info mem              guest page-table mappings
x/NFU ADDR            examine memory; F: x d u c i, U: b h w g; ADDR: linear, seg:off or p:phys (hex)
break-on exception N|all|none
break-on interrupt on|off
stats                 counters
reset                 warm reset
quit                  end the emulator
";

/// Runs one command line against the machine, appending its answer to `out`.
pub fn execute(pc: &mut Pc, line: &str, out: &mut String) -> Action {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] => {}
        ["help"] | ["?"] => out.push_str(HELP),
        ["info", "registers"] | ["info", "reg"] | ["info", "r"] => {
            out.push_str(&crate::regs::info_registers(&pc.cpu.state))
        }
        ["info", "tlb"] => info_tlb(pc, out),
        ["info", "mem"] => info_mem(pc, out),
        [x, rest @ ..] if x.starts_with("x/") || *x == "x" => {
            if let Err(e) = examine(pc, x, &rest.join(" "), out) {
                let _ = writeln!(out, "error: {e}");
            }
        }
        ["break-on"] => {
            let _ = writeln!(
                out,
                "exceptions mask {:#010x}, interrupts {}",
                pc.debug.break_on_exceptions,
                if pc.debug.break_on_interrupts {
                    "on"
                } else {
                    "off"
                }
            );
        }
        ["break-on", "exception", what] => match *what {
            "all" => pc.debug.break_on_exceptions = u32::MAX,
            "none" | "off" => pc.debug.break_on_exceptions = 0,
            n => match n.parse::<u32>().ok().filter(|v| *v < 32) {
                Some(v) => pc.debug.break_on_exceptions |= 1 << v,
                None => {
                    let _ = writeln!(out, "error: exception vector 0-31 (decimal), all or none");
                }
            },
        },
        ["break-on", "interrupt", "on"] => pc.debug.break_on_interrupts = true,
        ["break-on", "interrupt", "off"] => pc.debug.break_on_interrupts = false,
        ["stats"] => stats(pc, out),
        ["reset"] => match pc.reset() {
            Ok(()) => out.push_str("reset\n"),
            Err(e) => {
                let _ = writeln!(out, "error: reset failed: {e}");
            }
        },
        ["quit"] | ["q"] => return Action::Quit,
        _ => {
            let _ = writeln!(out, "error: unknown command '{}' (try help)", line.trim());
        }
    }
    Action::None
}

fn info_tlb(pc: &Pc, out: &mut String) {
    use oxide86_cpu::tlb::rights as r;
    let mut n = 0;
    for (linear, e) in pc.cpu.tlb.entries() {
        let right = |bit: u8, c: char| if e.rights() & bit != 0 { c } else { '-' };
        let _ = writeln!(
            out,
            "{linear:08x} -> {:08x} sup:{}{}{} user:{}{}{}{}{}{}",
            e.phys(),
            right(r::SUP_READ, 'r'),
            right(r::SUP_WRITE, 'w'),
            right(r::SUP_EXEC, 'x'),
            right(r::USER_READ, 'r'),
            right(r::USER_WRITE, 'w'),
            right(r::USER_EXEC, 'x'),
            if e.rights() & r::GLOBAL != 0 {
                " global"
            } else {
                ""
            },
            if e.rights() & r::LARGE != 0 {
                " large"
            } else {
                ""
            },
            if e.host_offset().is_some() {
                " ram"
            } else {
                ""
            },
        );
        n += 1;
    }
    let _ = writeln!(out, "{n} entries");
}

fn info_mem(pc: &Pc, out: &mut String) {
    if pc.cpu.state.cr0 & oxide86_cpu::state::cr0::PG == 0 {
        out.push_str("paging is off: linear = physical\n");
        return;
    }
    for m in inspect::mappings(&pc.cpu, &pc.board.memory) {
        let _ = writeln!(
            out,
            "{:08x}-{:08x} -> {:08x} {:>8x} {} {}",
            m.linear,
            m.linear.wrapping_add(m.size.wrapping_sub(1)),
            m.phys,
            m.size,
            if m.writable { "rw" } else { "r-" },
            if m.user { "user" } else { "sup" }
        );
    }
}

fn stats(pc: &Pc, out: &mut String) {
    let t = &pc.cpu.tlb.stats;
    let d = &pc.cpu.icache.stats;
    let _ = writeln!(out, "instructions retired  {}", pc.total_instructions());
    let _ = writeln!(out, "resets                {}", pc.stats.resets);
    let _ = writeln!(out, "host seconds running  {:.3}", pc.stats.seconds);
    let _ = writeln!(
        out,
        "soft TLB              {} hits, {} misses, {} flushes, {} invlpg",
        t.hits, t.misses, t.flushes, t.invlpg
    );
    let _ = writeln!(
        out,
        "decode cache          {} hits, {} misses, {} invalidations",
        d.hits, d.misses, d.invalidations
    );
}

/// `x/NFU ADDR`.
fn examine(pc: &Pc, cmd: &str, addr: &str, out: &mut String) -> Result<(), String> {
    let spec = cmd.strip_prefix("x").unwrap_or("").trim_start_matches('/');
    let digits: String = spec.chars().take_while(char::is_ascii_digit).collect();
    let count: u32 = if digits.is_empty() {
        1
    } else {
        digits.parse().map_err(|_| "bad count".to_string())?
    };
    let count = count.clamp(1, 4096);
    let (mut format, mut unit) = ('x', 4u32);
    for c in spec[digits.len()..].chars() {
        match c {
            'x' | 'd' | 'u' | 'c' | 'i' => format = c,
            'b' => unit = 1,
            'h' => unit = 2,
            'w' => unit = 4,
            'g' => unit = 8,
            _ => return Err(format!("bad format '{c}': use x d u c i and b h w g")),
        }
    }
    if format == 'c' {
        unit = 1;
    }
    if addr.trim().is_empty() {
        return Err("x/NFU ADDR: missing address".into());
    }
    let at = addr::parse(pc, addr)?;
    if format == 'i' {
        return disassemble(pc, at, count, out);
    }
    let per_line = (16 / unit).max(1);
    for i in 0..count {
        let a = offset(at, i * unit);
        let mut b = [0u8; 8];
        if addr::read(pc, a, &mut b[..unit as usize]) != unit as usize {
            let _ = writeln!(out);
            return Err(format!("{}: not mapped", show(a)));
        }
        let v = u64::from_le_bytes(b);
        if i % per_line == 0 {
            if i != 0 {
                out.push('\n');
            }
            let _ = write!(out, "{}:", show(a));
        }
        let bits = unit * 8;
        let _ = match format {
            'd' => write!(out, " {}", ((v << (64 - bits)) as i64) >> (64 - bits)),
            'u' => write!(out, " {v}"),
            'c' => {
                let ch = v as u8;
                if ch.is_ascii_graphic() || ch == b' ' {
                    write!(out, " '{}'", ch as char)
                } else {
                    write!(out, " {ch:#04x}")
                }
            }
            _ => write!(out, " {v:0width$x}", width = unit as usize * 2),
        };
    }
    out.push('\n');
    Ok(())
}

fn offset(a: Addr, by: u32) -> Addr {
    match a {
        Addr::Linear(x) => Addr::Linear(x.wrapping_add(by)),
        Addr::Physical(x) => Addr::Physical(x.wrapping_add(by)),
    }
}

fn show(a: Addr) -> String {
    match a {
        Addr::Linear(x) => format!("{x:08x}"),
        Addr::Physical(x) => format!("p:{x:08x}"),
    }
}

fn disassemble(pc: &Pc, at: Addr, count: u32, out: &mut String) -> Result<(), String> {
    let bitness = if pc.cpu.state.code32() { 32 } else { 16 };
    let mut a = at;
    let mut fmt = IntelFormatter::new();
    for _ in 0..count.min(256) {
        let mut bytes = [0u8; 15];
        let n = addr::read(pc, a, &mut bytes);
        if n == 0 {
            return Err(format!("{}: not mapped", show(a)));
        }
        let ip = match a {
            Addr::Linear(x) | Addr::Physical(x) => x,
        };
        let mut d = Decoder::with_ip(bitness, &bytes[..n], u64::from(ip), DecoderOptions::NONE);
        let insn = d.decode();
        let mut text = String::new();
        if insn.is_invalid() {
            text.push_str("(bad)");
        } else {
            fmt.format(&insn, &mut text);
        }
        let len = insn.len().max(1);
        let hex: String = bytes[..len.min(n)]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let _ = writeln!(out, "{}: {hex:<30} {text}", show(a));
        a = offset(a, len as u32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxide86_machine::embed::Machine;

    fn run(m: &mut Machine, cmd: &str) -> (Action, String) {
        let mut out = String::new();
        let a = execute(m, cmd, &mut out);
        (a, out)
    }

    #[test]
    fn commands_answer_and_quit_is_an_action() {
        let mut rom = vec![0x90u8; 0x10000];
        rom[0xFFF0..0xFFF3].copy_from_slice(&[0xB8, 0x34, 0x12]); // mov ax, 0x1234
        let mut m = Machine::builder()
            .memory_mib(1)
            .firmware(rom)
            .build()
            .unwrap();
        let (_, regs) = run(&mut m, "info registers");
        assert!(regs.contains("EIP=0000fff0"), "{regs}");
        assert!(regs.contains("CS   f000 base=ffff0000"), "{regs}");
        assert!(regs.contains("GDT"), "{regs}");
        let (_, x) = run(&mut m, "x/3xb cs:0xfff0");
        assert_eq!(x.trim(), "fffffff0: b8 34 12");
        let (_, x) = run(&mut m, "x/1i p:0xffff0");
        assert!(x.contains("mov ax,1234h"), "{x}");
        let (_, x) = run(&mut m, "x/2xh 0xfffffff0");
        assert_eq!(x.trim(), "fffffff0: 34b8 9012");
        let (_, mem) = run(&mut m, "info mem");
        assert!(mem.contains("paging is off"));
        assert!(run(&mut m, "stats").1.contains("instructions retired"));
        assert!(run(&mut m, "bogus").1.starts_with("error"));
        assert!(run(&mut m, "x/4q 0").1.starts_with("error"));
        run(&mut m, "break-on exception 13");
        assert_eq!(m.debug.break_on_exceptions, 1 << 13);
        assert_eq!(run(&mut m, "quit").0, Action::Quit);
    }

    #[test]
    fn random_command_lines_never_panic() {
        let words = [
            "info",
            "registers",
            "tlb",
            "mem",
            "x",
            "x/",
            "x/4",
            "x/99999999999ib",
            "x/ci",
            "p:",
            "p:0",
            "cs:",
            ":",
            "0x",
            "ffffffff",
            "fffffffe",
            "break-on",
            "exception",
            "interrupt",
            "99",
            "all",
            "on",
            "stats",
            "help",
            "-1",
            "\u{1F980}",
            "x/gd",
            "ss:ffff",
        ];
        let mut m = Machine::builder().memory_mib(1).build().unwrap();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..5000 {
            let mut line = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for k in 0..(seed % 4) {
                line.push_str(words[((seed >> (8 * k + 8)) % words.len() as u64) as usize]);
                line.push(if (seed >> k) & 1 == 0 { ' ' } else { '/' });
            }
            let mut out = String::new();
            let _ = execute(&mut m, &line, &mut out);
        }
    }
}
