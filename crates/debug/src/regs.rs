//! Register listings for the monitor's `info registers`: general
//! registers, EFLAGS decoded, segment registers with their hidden
//! descriptor caches, LDTR/TR/GDTR/IDTR, control and debug registers, EFER
//! (Intel SDM Vol. 3A, 2.4 "Memory-Management Registers", 2.5 "Control
//! Registers").

use std::fmt::Write;

use oxide86_cpu::state::eflags;
use oxide86_cpu::{CpuState, Flags, SegmentCache};

/// EFLAGS bits by name, lowest first.
const FLAG_NAMES: [(u32, &str); 15] = [
    (eflags::CF, "CF"),
    (eflags::PF, "PF"),
    (eflags::AF, "AF"),
    (eflags::ZF, "ZF"),
    (eflags::SF, "SF"),
    (eflags::TF, "TF"),
    (eflags::IF, "IF"),
    (eflags::DF, "DF"),
    (eflags::OF, "OF"),
    (eflags::NT, "NT"),
    (eflags::RF, "RF"),
    (eflags::VM, "VM"),
    (eflags::AC, "AC"),
    (eflags::VIF, "VIF"),
    (eflags::VIP, "VIP"),
];

/// The names of the set flags in `f`, e.g. `[ ZF IF ]`, with IOPL.
pub fn flag_names(f: u32) -> String {
    let mut s = String::from("[");
    for (bit, name) in FLAG_NAMES {
        if f & bit != 0 {
            s.push(' ');
            s.push_str(name);
        }
    }
    let _ = write!(s, " IOPL={} ]", (f & eflags::IOPL) >> 12);
    s
}

fn cache_line(out: &mut String, name: &str, c: &SegmentCache) {
    let _ = writeln!(
        out,
        "{name:<4} {:04x} base={:08x} limit={:08x} flags={:04x}{}",
        c.selector,
        c.base,
        c.limit,
        c.flags,
        if c.flags & oxide86_cpu::state::seg_flags::PRESENT == 0 {
            " (not present)"
        } else if c.is_32bit() {
            " 32-bit"
        } else {
            " 16-bit"
        }
    );
}

/// The full listing of `info registers`.
pub fn info_registers(s: &CpuState) -> String {
    let mut out = String::new();
    let g = &s.gpr;
    let f = s.flags();
    let _ = writeln!(
        out,
        "EAX={:08x} EBX={:08x} ECX={:08x} EDX={:08x}",
        g[0], g[3], g[1], g[2]
    );
    let _ = writeln!(
        out,
        "ESI={:08x} EDI={:08x} EBP={:08x} ESP={:08x}",
        g[6], g[7], g[5], g[4]
    );
    let _ = writeln!(
        out,
        "EIP={:08x} EFL={:08x} {} CPL={} {}",
        s.eip,
        f,
        flag_names(f),
        s.cpl(),
        mode_name(s)
    );
    for (i, name) in ["ES", "CS", "SS", "DS", "FS", "GS"].iter().enumerate() {
        cache_line(&mut out, name, &s.seg[i]);
    }
    cache_line(&mut out, "LDT", &s.ldtr);
    cache_line(&mut out, "TR", &s.tr);
    let _ = writeln!(
        out,
        "GDT       base={:08x} limit={:04x}",
        s.gdtr.base, s.gdtr.limit
    );
    let _ = writeln!(
        out,
        "IDT       base={:08x} limit={:04x}",
        s.idtr.base, s.idtr.limit
    );
    let _ = writeln!(
        out,
        "CR0={:08x} CR2={:08x} CR3={:08x} CR4={:08x}",
        s.cr0, s.cr2, s.cr3, s.cr4
    );
    let _ = writeln!(
        out,
        "DR0={:08x} DR1={:08x} DR2={:08x} DR3={:08x}",
        s.dr[0], s.dr[1], s.dr[2], s.dr[3]
    );
    let _ = writeln!(out, "DR6={:08x} DR7={:08x}", s.dr[6], s.dr[7]);
    let _ = writeln!(
        out,
        "EFER={:016x} FCW={:04x} FSW={:04x} FTW={:04x} MXCSR={:08x}",
        s.msr.efer, s.fpu.control, s.fpu.status, s.fpu.tag, s.fpu.mxcsr
    );
    let _ = writeln!(
        out,
        "halted={} interrupt-shadow={} nmi-blocked={} instructions={}",
        s.halted, s.interrupt_shadow, s.nmi_blocked, s.icount
    );
    out
}

/// The processor mode: real, protected (16/32-bit code), virtual-8086,
/// with paging noted.
pub fn mode_name(s: &CpuState) -> &'static str {
    use oxide86_cpu::state::cr0;
    let paging = s.cr0 & cr0::PG != 0;
    if s.cr0 & cr0::PE == 0 {
        "real"
    } else if s.eflags & eflags::VM != 0 {
        if paging {
            "v86+paging"
        } else {
            "v86"
        }
    } else {
        match (s.code32(), paging) {
            (true, true) => "prot32+paging",
            (true, false) => "prot32",
            (false, true) => "prot16+paging",
            (false, false) => "prot16",
        }
    }
}
