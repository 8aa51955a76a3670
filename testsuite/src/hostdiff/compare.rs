//! Comparing the host's and the interpreter's results of one sequence, and
//! the mismatch report (seed and index, disassembly, initial state, the
//! differing registers, flags and bytes).

use std::fmt::Write as _;

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};

use super::generate::Case;
use super::layout::{CODE_BASE, DATA_BASE, FLAGS_COMPARED};

/// A fault that ended a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The exception vector (the host's trap number).
    pub vector: u8,
    /// The host signal (0 on the interpreter side).
    pub signal: u32,
}

/// Where a sequence ended and the state it left.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The fault that stopped it, if any.
    pub fault: Option<Fault>,
    /// EAX..EDI.
    pub regs: [u32; 8],
    /// The end of the code, or the faulting instruction.
    pub eip: u32,
    /// EFLAGS (only [`FLAGS_COMPARED`] bits are compared).
    pub eflags: u32,
    /// The data window.
    pub data: Vec<u8>,
    /// The interpreter touched memory outside the window (a generator bug).
    pub stray: bool,
}

const REG_NAMES: [&str; 8] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const FLAG_NAMES: [(u32, &str); 7] = [
    (0x1, "CF"),
    (0x4, "PF"),
    (0x10, "AF"),
    (0x40, "ZF"),
    (0x80, "SF"),
    (0x400, "DF"),
    (0x800, "OF"),
];

fn vector_name(v: u8) -> &'static str {
    match v {
        0 => "#DE",
        1 => "#DB",
        3 => "#BP",
        4 => "#OF",
        5 => "#BR",
        6 => "#UD",
        12 => "#SS",
        13 => "#GP",
        14 => "#PF",
        17 => "#AC",
        _ => "#?",
    }
}

fn fault_name(f: Option<Fault>) -> String {
    match f {
        None => "none".into(),
        Some(Fault { vector, signal: 0 }) => format!("{} (vector {vector})", vector_name(vector)),
        Some(Fault { vector, signal }) => {
            format!("{} (vector {vector}, signal {signal})", vector_name(vector))
        }
    }
}

/// The differences between the host (`want`) and the interpreter (`got`),
/// ignoring flags that are undefined where the sequence stopped.
pub fn diff(case: &Case, want: &Outcome, got: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    if got.stray {
        out.push("interpreter accessed memory outside the window (generator bug)".into());
    }
    if want.fault.map(|f| f.vector) != got.fault.map(|f| f.vector) {
        out.push(format!(
            "fault: host {}, interpreter {}",
            fault_name(want.fault),
            fault_name(got.fault)
        ));
    }
    if want.eip != got.eip {
        out.push(format!(
            "eip: host {:#010x}, interpreter {:#010x}",
            want.eip, got.eip
        ));
    }
    for (i, name) in REG_NAMES.iter().enumerate() {
        if want.regs[i] != got.regs[i] {
            out.push(format!(
                "{name}: host {:#010x}, interpreter {:#010x}",
                want.regs[i], got.regs[i]
            ));
        }
    }
    let undefined = case.undefined_at(want.eip.wrapping_sub(CODE_BASE));
    let mask = FLAGS_COMPARED & !undefined;
    if (want.eflags ^ got.eflags) & mask != 0 {
        let names: Vec<&str> = FLAG_NAMES
            .iter()
            .filter(|(b, _)| (want.eflags ^ got.eflags) & mask & b != 0)
            .map(|(_, n)| *n)
            .collect();
        out.push(format!(
            "eflags: host {:#06x}, interpreter {:#06x} (differ: {}; undefined here: {:#x})",
            want.eflags & FLAGS_COMPARED,
            got.eflags & FLAGS_COMPARED,
            names.join(" "),
            undefined
        ));
    }
    let mut bytes = 0;
    for (i, (w, g)) in want.data.iter().zip(&got.data).enumerate() {
        if w != g {
            bytes += 1;
            if bytes <= 16 {
                out.push(format!(
                    "mem[{:#010x}]: host {w:#04x}, interpreter {g:#04x}",
                    DATA_BASE + i as u32
                ));
            }
        }
    }
    if bytes > 16 {
        out.push(format!("... {} more differing bytes", bytes - 16));
    }
    out
}

/// The sequence disassembled (Intel syntax), one instruction a line.
pub fn disassemble(code: &[u8]) -> String {
    let mut decoder = Decoder::with_ip(32, code, u64::from(CODE_BASE), DecoderOptions::NONE);
    let mut fmt = IntelFormatter::new();
    let mut text = String::new();
    let mut line = String::new();
    while decoder.can_decode() {
        let insn = decoder.decode();
        line.clear();
        fmt.format(&insn, &mut line);
        let start = (insn.ip() - u64::from(CODE_BASE)) as usize;
        let bytes: String = code[start..start + insn.len()]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let _ = writeln!(text, "    {:08x}  {bytes:<30} {line}", insn.ip());
    }
    text
}

/// The full report of one mismatch.
pub fn report(seed: u64, index: u64, case: &Case, diffs: &[String]) -> String {
    let mut s = format!("MISMATCH seed {seed} sequence {index}\n");
    s.push_str(&disassemble(&case.code));
    let regs: Vec<String> = REG_NAMES
        .iter()
        .zip(case.regs)
        .map(|(n, v)| format!("{n}={v:08x}"))
        .collect();
    let _ = writeln!(
        s,
        "  initial: {} eflags={:08x}",
        regs.join(" "),
        case.eflags
    );
    for d in diffs {
        let _ = writeln!(s, "  {d}");
    }
    s
}
