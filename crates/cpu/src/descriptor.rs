//! Segment selectors and descriptors (Intel SDM Vol. 3A, 3.4.2 "Segment
//! Selectors", 3.4.5 "Segment Descriptors", 3.5 "System Descriptor Types",
//! 5.8.3 "Call Gates", 6.11 "IDT Descriptors") and reading them from the
//! GDT, LDT and IDT.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::state::{seg_flags, SegmentCache};

/// A segment selector: index, table indicator and requested privilege level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selector(pub u16);

impl Selector {
    /// Requested privilege level (bits 0-1).
    pub fn rpl(self) -> u8 {
        (self.0 & 3) as u8
    }
    /// Table indicator: the LDT rather than the GDT.
    pub fn is_ldt(self) -> bool {
        self.0 & 4 != 0
    }
    /// A null selector (index 0 in the GDT, any RPL).
    pub fn is_null(self) -> bool {
        self.0 & 0xFFFC == 0
    }
    /// The error code a fault on this selector pushes (RPL bits cleared).
    pub fn error_code(self) -> u16 {
        self.0 & 0xFFFC
    }
}

/// System-descriptor types (the 4-bit type field with S = 0).
pub mod system_type {
    /// Available 16-bit TSS.
    pub const TSS16_AVAILABLE: u8 = 1;
    /// LDT.
    pub const LDT: u8 = 2;
    /// Busy 16-bit TSS.
    pub const TSS16_BUSY: u8 = 3;
    /// 16-bit call gate.
    pub const CALL_GATE16: u8 = 4;
    /// Task gate.
    pub const TASK_GATE: u8 = 5;
    /// 16-bit interrupt gate.
    pub const INTERRUPT_GATE16: u8 = 6;
    /// 16-bit trap gate.
    pub const TRAP_GATE16: u8 = 7;
    /// Available 32-bit TSS.
    pub const TSS32_AVAILABLE: u8 = 9;
    /// Busy 32-bit TSS.
    pub const TSS32_BUSY: u8 = 11;
    /// 32-bit call gate.
    pub const CALL_GATE32: u8 = 12;
    /// 32-bit interrupt gate.
    pub const INTERRUPT_GATE32: u8 = 14;
    /// 32-bit trap gate.
    pub const TRAP_GATE32: u8 = 15;
}

/// An 8-byte descriptor as it sits in a descriptor table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor(pub u64);

impl Descriptor {
    /// Segment base (bits 16-39 and 56-63).
    pub fn base(self) -> u32 {
        (((self.0 >> 16) & 0xFF_FFFF) | ((self.0 >> 32) & 0xFF00_0000)) as u32
    }
    /// The limit in bytes (scaled by G).
    pub fn limit(self) -> u32 {
        let raw = ((self.0 & 0xFFFF) | ((self.0 >> 32) & 0xF_0000)) as u32;
        if self.granular() {
            (raw << 12) | 0xFFF
        } else {
            raw
        }
    }
    /// The access byte (type, S, DPL, P).
    pub fn access(self) -> u8 {
        (self.0 >> 40) as u8
    }
    /// The 4-bit type field.
    pub fn typ(self) -> u8 {
        self.access() & 0xF
    }
    /// Code or data (S = 1) rather than system.
    pub fn is_code_or_data(self) -> bool {
        self.access() & 0x10 != 0
    }
    /// A code segment (S = 1 and type bit 3).
    pub fn is_code(self) -> bool {
        self.is_code_or_data() && self.typ() & 8 != 0
    }
    /// A data segment.
    pub fn is_data(self) -> bool {
        self.is_code_or_data() && self.typ() & 8 == 0
    }
    /// Code: conforming. Data: expand-down.
    pub fn conforming_or_expand_down(self) -> bool {
        self.typ() & 4 != 0
    }
    /// Code: readable. Data: writable.
    pub fn readable_or_writable(self) -> bool {
        self.typ() & 2 != 0
    }
    /// Descriptor privilege level.
    pub fn dpl(self) -> u8 {
        (self.access() >> 5) & 3
    }
    /// Present.
    pub fn present(self) -> bool {
        self.access() & 0x80 != 0
    }
    /// D/B: 32-bit.
    pub fn big(self) -> bool {
        self.0 & (1 << 54) != 0
    }
    /// G: limit in 4 KiB units.
    pub fn granular(self) -> bool {
        self.0 & (1 << 55) != 0
    }
    /// The descriptor with its accessed bit set.
    pub fn with_accessed(self) -> Self {
        Descriptor(self.0 | (1 << 40))
    }
    /// Gate: the target code-segment selector.
    pub fn gate_selector(self) -> Selector {
        Selector((self.0 >> 16) as u16)
    }
    /// Gate: the entry offset (16-bit gates use only the low word).
    pub fn gate_offset(self) -> u32 {
        let low = (self.0 & 0xFFFF) as u32;
        if self.typ() & 8 != 0 {
            low | ((self.0 >> 32) as u32 & 0xFFFF_0000)
        } else {
            low
        }
    }
    /// Call gate: the number of stack parameters to copy (0-31).
    pub fn gate_param_count(self) -> u32 {
        ((self.0 >> 32) & 0x1F) as u32
    }
    /// The hidden-cache contents a load of this descriptor produces.
    pub fn to_cache(self, selector: u16) -> SegmentCache {
        let hi = (self.0 >> 32) as u32;
        let flags = ((hi >> 8) & 0xFF) as u16 | (((hi >> 20) & 0xF) as u16) << 12;
        SegmentCache {
            base: self.base(),
            limit: self.limit(),
            selector,
            flags,
        }
    }
}

impl Cpu {
    /// The linear address of `selector`'s descriptor, after checking it lies
    /// within the GDT or LDT limit (#GP(selector) otherwise, as
    /// `fault` builds it).
    pub fn descriptor_address(
        &self,
        selector: Selector,
        fault: fn(u16) -> Exception,
    ) -> Result<u32, Exception> {
        let index = u32::from(selector.0 & 0xFFF8);
        let (base, limit) = if selector.is_ldt() {
            let l = &self.state.ldtr;
            if l.selector & 0xFFFC == 0 || l.flags & seg_flags::PRESENT == 0 {
                return Err(fault(selector.error_code()));
            }
            (l.base, l.limit)
        } else {
            (self.state.gdtr.base, u32::from(self.state.gdtr.limit))
        };
        if index + 7 > limit {
            return Err(fault(selector.error_code()));
        }
        Ok(base.wrapping_add(index))
    }

    /// Reads the descriptor `selector` names (supervisor access).
    pub fn read_descriptor<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        selector: Selector,
        fault: fn(u16) -> Exception,
    ) -> Result<Descriptor, Exception> {
        let addr = self.descriptor_address(selector, fault)?;
        let lo = self.read_linear_system(bus, addr, 4)?;
        let hi = self.read_linear_system(bus, addr.wrapping_add(4), 4)?;
        Ok(Descriptor(u64::from(lo) | (u64::from(hi) << 32)))
    }

    /// Sets the accessed bit of `selector`'s descriptor in memory, as a
    /// segment load does (SDM Vol. 3A, 3.4.5.1, type bit 0).
    pub fn set_descriptor_accessed<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        selector: Selector,
        d: Descriptor,
    ) -> Result<(), Exception> {
        if d.access() & 1 != 0 {
            return Ok(());
        }
        let addr = self.descriptor_address(selector, Exception::GeneralProtection)?;
        self.write_linear_system(bus, addr.wrapping_add(5), 1, u32::from(d.access() | 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_code_descriptor_fields() {
        // 0x00CF9A000000FFFF: base 0, limit 4 GiB, 32-bit, ring-0 code, readable.
        let d = Descriptor(0x00CF_9A00_0000_FFFF);
        assert_eq!((d.base(), d.limit()), (0, 0xFFFF_FFFF));
        assert!(d.is_code() && d.readable_or_writable() && d.big() && d.present());
        assert_eq!(d.dpl(), 0);
        let c = d.to_cache(8);
        assert!(c.is_32bit());
        assert_ne!(c.flags & seg_flags::CODE, 0);
    }

    #[test]
    fn gate_fields() {
        // 32-bit interrupt gate to 0008:12345678, DPL 3.
        let d = Descriptor(0x1234_EE00_0008_5678);
        assert_eq!(d.typ(), system_type::INTERRUPT_GATE32);
        assert_eq!(
            (d.gate_selector().0, d.gate_offset(), d.dpl()),
            (8, 0x1234_5678, 3)
        );
    }
}
