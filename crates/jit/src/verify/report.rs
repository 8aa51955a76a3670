//! What verify mode compares after a block, and the report it gives when
//! the block and the interpreter disagree.
//!
//! The architectural state is compared field by field: the general
//! registers, EIP, EFLAGS as the architecture defines it (the lazy record
//! materialized with `Flags::flags`, so two representations of the same
//! flags agree), the segment, descriptor-table and control registers, the
//! instruction count, the halt/shadow/NMI latches, the x87 state and the
//! MSRs; then every RAM byte either side wrote.

use std::collections::BTreeSet;
use std::fmt;

use iced_x86::{Formatter, IntelFormatter, OpKind};
use oxide86_cpu::decode::Decoded;
use oxide86_cpu::flags::Flags;
use oxide86_cpu::CpuState;

/// One compared part of the state.
pub(crate) struct Field {
    /// Its name in reports.
    pub name: &'static str,
    /// Whether two states agree on it.
    pub same: fn(&CpuState, &CpuState) -> bool,
    /// Its value, for the report.
    pub show: fn(&CpuState) -> String,
}

macro_rules! hex {
    ($name:literal, $s:ident => $e:expr) => {
        Field {
            name: $name,
            same: |a, b| {
                let $s = a;
                let x = $e;
                let $s = b;
                x == $e
            },
            show: |$s| format!("{:#010x}", $e),
        }
    };
}

macro_rules! debug {
    ($name:literal, $s:ident => $e:expr) => {
        Field {
            name: $name,
            same: |a, b| {
                let $s = a;
                let x = $e;
                let $s = b;
                x == $e
            },
            show: |$s| format!("{:?}", $e),
        }
    };
}

/// Everything compared, in report order.
pub(crate) const FIELDS: &[Field] = &[
    hex!("EAX", s => s.gpr[0]),
    hex!("ECX", s => s.gpr[1]),
    hex!("EDX", s => s.gpr[2]),
    hex!("EBX", s => s.gpr[3]),
    hex!("ESP", s => s.gpr[4]),
    hex!("EBP", s => s.gpr[5]),
    hex!("ESI", s => s.gpr[6]),
    hex!("EDI", s => s.gpr[7]),
    hex!("EIP", s => s.eip),
    hex!("EFLAGS", s => s.flags()),
    debug!("ES", s => s.seg[0]),
    debug!("CS", s => s.seg[1]),
    debug!("SS", s => s.seg[2]),
    debug!("DS", s => s.seg[3]),
    debug!("FS", s => s.seg[4]),
    debug!("GS", s => s.seg[5]),
    debug!("LDTR", s => s.ldtr),
    debug!("TR", s => s.tr),
    debug!("GDTR", s => s.gdtr),
    debug!("IDTR", s => s.idtr),
    hex!("CR0", s => s.cr0),
    hex!("CR2", s => s.cr2),
    hex!("CR3", s => s.cr3),
    hex!("CR4", s => s.cr4),
    debug!("DR0-DR7", s => s.dr),
    debug!("instruction count", s => s.icount),
    debug!("halted", s => s.halted),
    debug!("interrupt shadow", s => s.interrupt_shadow),
    debug!("NMI blocked", s => s.nmi_blocked),
    debug!("x87", s => s.fpu),
    debug!("MSRs", s => s.msr),
];

/// One disagreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDiff {
    /// What differs: a register name, `memory` or `outcome`, ...
    pub name: String,
    /// The translated block's value.
    pub jit: String,
    /// The interpreter's value.
    pub interp: String,
    /// The interpreter step (0-based) that last changed it, if the
    /// interpreter changed it at all.
    pub step: Option<usize>,
}

/// One instruction the interpreter ran in the replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceStep {
    /// Its EIP.
    pub eip: u32,
    /// Its disassembly (Intel syntax), or why there is none.
    pub text: String,
}

/// A verify-mode failure: a translated block (and whatever it chained to)
/// left a state the interpreter does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// CS selector and EIP where the block was entered.
    pub cs: u16,
    /// EIP where the block was entered.
    pub start_eip: u32,
    /// Linear address of the entry.
    pub start_linear: u32,
    /// Steps the block run retired (the interpreter ran as many).
    pub steps: u64,
    /// Blocks entered by chaining after the first.
    pub chained: u64,
    /// The differences, registers first, then memory.
    pub diffs: Vec<FieldDiff>,
    /// The interpreter's run of the same steps, one line per step.
    pub trace: Vec<TraceStep>,
}

impl Mismatch {
    /// The step that last changed the first differing field (the likely
    /// culprit), with its trace line.
    pub fn culprit(&self) -> Option<(usize, &TraceStep)> {
        let step = self.diffs.iter().find_map(|d| d.step)?;
        self.trace.get(step).map(|t| (step, t))
    }
}

/// At most this many trace lines are printed (those around the steps that
/// wrote a differing field, and the last ones).
const TRACE_LINES: usize = 64;
/// At most this many runs of differing memory bytes are listed.
pub(crate) const MEMORY_DIFFS: usize = 16;

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "JIT verify: a translated block differs from the interpreter"
        )?;
        writeln!(
            f,
            "  block entered at {:04x}:{:08x} (linear {:#x}); {} steps, {} chained block entries",
            self.cs, self.start_eip, self.start_linear, self.steps, self.chained
        )?;
        writeln!(f, "  differences (translated code vs interpreter):")?;
        for d in &self.diffs {
            write!(f, "    {:<18} jit {}  interp {}", d.name, d.jit, d.interp)?;
            match d.step.and_then(|s| self.trace.get(s).map(|t| (s, t))) {
                Some((s, t)) => {
                    writeln!(f, "  (last written by step {s}: {:08x} {})", t.eip, t.text)?
                }
                None => writeln!(f, "  (not changed by the interpreter)")?,
            }
        }
        writeln!(f, "  the interpreter's run of the same steps:")?;
        let culprits: BTreeSet<usize> = self.diffs.iter().filter_map(|d| d.step).collect();
        let shown = shown_steps(self.trace.len(), &culprits);
        let mut last = None;
        for &i in &shown {
            if last.is_some_and(|l: usize| i > l + 1) || (last.is_none() && i > 0) {
                writeln!(f, "    ...")?;
            }
            let t = &self.trace[i];
            let mark = if culprits.contains(&i) { "  <--" } else { "" };
            writeln!(f, "    step {i:>4}  {:08x}  {}{mark}", t.eip, t.text)?;
            last = Some(i);
        }
        if last.is_some_and(|l| l + 1 < self.trace.len()) {
            writeln!(f, "    ...")?;
        }
        Ok(())
    }
}

/// Which trace lines to print: all when few, else the steps before each
/// culprit and the last steps.
fn shown_steps(len: usize, culprits: &BTreeSet<usize>) -> BTreeSet<usize> {
    if len <= TRACE_LINES {
        return (0..len).collect();
    }
    let mut shown = BTreeSet::new();
    for &c in culprits {
        shown.extend(c.saturating_sub(6)..=c.min(len - 1));
    }
    shown.extend(len.saturating_sub(8)..len);
    shown.into_iter().take(TRACE_LINES).collect()
}

/// Intel-syntax disassembly of an instruction decoded at IP 0 that sits at
/// `eip` (relative branch targets made absolute).
pub(crate) fn disassemble(d: &Decoded, eip: u32) -> String {
    let mut insn = d.insn;
    let target = eip.wrapping_add(insn.near_branch_target() as u32);
    match insn.op_kind(0) {
        OpKind::NearBranch16 => insn.set_near_branch16(target as u16),
        OpKind::NearBranch32 => insn.set_near_branch32(target),
        _ => {}
    }
    insn.set_ip32(eip);
    let mut text = String::new();
    IntelFormatter::new().format(&insn, &mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxide86_cpu::CpuModel;

    #[test]
    fn flags_compare_materialized() {
        let mut a = CpuState::new(CpuModel::P6);
        let mut b = a.clone();
        // 1 - 1 recorded lazily on one side, committed on the other.
        a.set_lazy(oxide86_cpu::flags::LazyOp::Sub, 4, 1, 1, 0);
        b.set_lazy(oxide86_cpu::flags::LazyOp::Sub, 4, 1, 1, 0);
        b.commit_flags();
        let eflags = FIELDS.iter().find(|f| f.name == "EFLAGS").unwrap();
        assert!((eflags.same)(&a, &b));
        b.eflags ^= oxide86_cpu::state::eflags::CF;
        assert!(!(eflags.same)(&a, &b));
        assert_eq!((eflags.show)(&a), "0x00000046"); // ZF PF and bit 1
    }

    #[test]
    fn long_traces_keep_the_culprit_and_the_end() {
        let culprits = BTreeSet::from([100]);
        let shown = shown_steps(1000, &culprits);
        assert!(shown.contains(&100) && shown.contains(&94) && shown.contains(&999));
        assert!(!shown.contains(&500));
    }
}
