//! Addresses as a user types them in monitor commands, all numbers in
//! hexadecimal with or without `0x`: linear (`0x1000`), `seg:off` (a
//! segment register name, `ds:0x10`, using its cached base; or a number,
//! `0x10:0x2000`, a selector looked up in the GDT/LDT in protected mode
//! and a paragraph in real and virtual-8086 mode) and physical (`p:ADDR`).
//!
//! GDB itself has no segments: every address GDB sends is linear
//! (segment base + offset, before paging), translated through the
//! guest's current page tables.

use oxide86_cpu::{SegReg, SegmentCache};
use oxide86_machine::pc::Pc;

/// An address and the space it is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addr {
    /// Linear (translated through the current page tables).
    Linear(u32),
    /// Physical (the bus address).
    Physical(u32),
}

/// Parses a number: hexadecimal, with or without `0x` (as QEMU's monitor
/// and debuggers show addresses); a `0d` prefix makes it decimal.
pub fn parse_number(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(d) = s.strip_prefix("0d") {
        return d.parse().ok();
    }
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.is_empty() {
        return None;
    }
    u32::from_str_radix(h, 16).ok()
}

/// The segment register called `name` (es, cs, ss, ds, fs, gs).
fn seg_reg(name: &str) -> Option<SegReg> {
    let n = ["es", "cs", "ss", "ds", "fs", "gs"]
        .iter()
        .position(|r| r.eq_ignore_ascii_case(name))?;
    SegReg::from_index(n)
}

/// The base a selector (protected mode) or segment number (real and
/// virtual-8086 mode) stands for, read from the GDT or LDT without
/// changing anything.
pub fn segment_base(pc: &Pc, selector: u16) -> Option<u32> {
    let s = &pc.cpu.state;
    if !s.protected_mode() || s.eflags & oxide86_cpu::state::eflags::VM != 0 {
        return Some(u32::from(selector) << 4);
    }
    descriptor(pc, selector).map(|d| d.base)
}

/// The descriptor `selector` names, decoded into a segment cache (the
/// selector field set), or `None` for a null or out-of-limit selector.
pub fn descriptor(pc: &Pc, selector: u16) -> Option<SegmentCache> {
    let s = &pc.cpu.state;
    let index = u32::from(selector & !7);
    let (base, limit) = if selector & 4 != 0 {
        (s.ldtr.base, s.ldtr.limit)
    } else {
        if index == 0 {
            return None;
        }
        (s.gdtr.base, u32::from(s.gdtr.limit))
    };
    if index + 7 > limit {
        return None;
    }
    let mut raw = [0u8; 8];
    if pc.read_linear(base.wrapping_add(index), &mut raw) != 8 {
        return None;
    }
    let d = u64::from_le_bytes(raw);
    let base = ((d >> 16) & 0xFF_FFFF) as u32 | (((d >> 56) as u32) << 24);
    let mut limit = (d & 0xFFFF) as u32 | ((((d >> 48) & 0xF) as u32) << 16);
    let flags = (((d >> 40) & 0xFF) as u16) | ((((d >> 52) & 0xF) as u16) << 12);
    if flags & oxide86_cpu::state::seg_flags::G != 0 {
        limit = (limit << 12) | 0xFFF;
    }
    Some(SegmentCache {
        base,
        limit,
        selector,
        flags,
    })
}

/// Parses `ADDR`, `seg:off` or `p:ADDR` against the machine's state.
pub fn parse(pc: &Pc, s: &str) -> Result<Addr, String> {
    let s = s.trim();
    let bad = || format!("bad address '{s}': expected ADDR, SEG:OFF or p:ADDR (hex)");
    let Some((left, right)) = s.split_once(':') else {
        return parse_number(s).map(Addr::Linear).ok_or_else(bad);
    };
    let off = parse_number(right).ok_or_else(bad)?;
    if left.eq_ignore_ascii_case("p") {
        return Ok(Addr::Physical(off));
    }
    let base = match seg_reg(left) {
        Some(r) => pc.cpu.state.segment(r).base,
        None => {
            let sel = parse_number(left)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(bad)?;
            segment_base(pc, sel).ok_or_else(|| format!("selector {sel:#x}: no such descriptor"))?
        }
    };
    Ok(Addr::Linear(base.wrapping_add(off)))
}

/// Reads bytes at `addr`; returns how many were readable.
pub fn read(pc: &Pc, addr: Addr, buf: &mut [u8]) -> usize {
    match addr {
        Addr::Linear(a) => pc.read_linear(a, buf),
        Addr::Physical(a) => {
            pc.read_physical(a, buf);
            buf.len()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxide86_machine::embed::Machine;

    #[test]
    fn linear_segmented_and_physical_forms() {
        let m = Machine::builder().memory_mib(1).build().unwrap();
        assert_eq!(parse(&m, "0x1000"), Ok(Addr::Linear(0x1000)));
        assert_eq!(parse(&m, "B800"), Ok(Addr::Linear(0xB800)));
        assert_eq!(parse(&m, "p:0xFFFF0"), Ok(Addr::Physical(0xFFFF0)));
        // Real mode after reset: CS base 0xFFFF0000, numbers are paragraphs.
        assert_eq!(parse(&m, "cs:0xfff0"), Ok(Addr::Linear(0xFFFF_FFF0)));
        assert_eq!(parse(&m, "0x1234:0x10"), Ok(Addr::Linear(0x12350)));
        assert!(parse(&m, "zz").is_err());
        assert!(parse(&m, "xs:1").is_err());
        assert!(parse(&m, "").is_err());
    }
}
