//! One PCI function's 256-byte configuration space (PCI Local Bus
//! Specification 3.0, 6.1 "Configuration Space Organization" and 6.2.2-6.2.5
//! for the command, status and base address registers).
//!
//! A [`PciConfigSpace`] holds the bytes plus two masks per byte: the bits a
//! configuration write may change and the bits it clears by writing one
//! (status registers). Everything not in either mask is read-only, so the
//! vendor, device, class and header-type fields need no special code.
//! [`PciFunction`] is the seam later devices (IDE, VGA) plug into the bus
//! through; a function with side effects overrides its write hook.

use std::fmt::Debug;

/// Size of one function's configuration space in bytes.
pub const CONFIG_SPACE_SIZE: usize = 256;

/// Vendor ID (word, read-only).
pub const REG_VENDOR_ID: u8 = 0x00;
/// Device ID (word, read-only).
pub const REG_DEVICE_ID: u8 = 0x02;
/// Command register (word): which bits are writable is per function.
pub const REG_COMMAND: u8 = 0x04;
/// Status register (word): error bits are write-one-to-clear.
pub const REG_STATUS: u8 = 0x06;
/// Revision ID (byte, read-only).
pub const REG_REVISION: u8 = 0x08;
/// Programming interface, sub-class and base class (bytes 0x09-0x0B).
pub const REG_CLASS: u8 = 0x09;
/// Latency timer (byte).
pub const REG_LATENCY_TIMER: u8 = 0x0D;
/// Header type (byte, read-only); bit 7 marks a multi-function device.
pub const REG_HEADER_TYPE: u8 = 0x0E;
/// First base address register of a type 0 header (six dwords).
pub const REG_BAR0: u8 = 0x10;
/// Interrupt line (byte): scratch for the BIOS, always writable.
pub const REG_INTERRUPT_LINE: u8 = 0x3C;
/// Interrupt pin (byte, read-only): 0 none, 1-4 INTA#-INTD#.
pub const REG_INTERRUPT_PIN: u8 = 0x3D;

/// Header type bit 7: the device implements functions other than 0.
pub const HEADER_MULTI_FUNCTION: u8 = 0x80;
/// Status bits defined as write-one-to-clear by PCI 3.0, 6.2.3: data parity
/// error detected (8), signaled target abort (11), received target abort
/// (12), received master abort (13), signaled system error (14) and
/// detected parity error (15).
pub const STATUS_W1C: u16 = 0xF900;

const BAR_IO: u32 = 1 << 0; // bit 0 of a BAR: 1 = I/O space, 0 = memory space
const BAR_IO_FLAGS: u32 = 0x3; // low bits of an I/O BAR that are not address
const BAR_MEM_FLAGS: u32 = 0xF; // low bits of a memory BAR that are not address

/// A function's configuration bytes and the masks that govern writes.
#[derive(Clone, PartialEq, Eq)]
pub struct PciConfigSpace {
    bytes: [u8; CONFIG_SPACE_SIZE],
    write_mask: [u8; CONFIG_SPACE_SIZE],
    w1c_mask: [u8; CONFIG_SPACE_SIZE],
}

impl Debug for PciConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciConfigSpace")
            .field(
                "vendor",
                &format_args!("{:04x}", self.read_u16(REG_VENDOR_ID)),
            )
            .field(
                "device",
                &format_args!("{:04x}", self.read_u16(REG_DEVICE_ID)),
            )
            .finish_non_exhaustive()
    }
}

impl PciConfigSpace {
    /// A type 0 header with the given identity; every other byte is zero and
    /// read-only except the interrupt line and latency timer, until the
    /// caller opens more bits with [`Self::set_writable`].
    pub fn new(vendor: u16, device: u16, revision: u8, class: [u8; 3]) -> Self {
        let mut c = Self {
            bytes: [0; CONFIG_SPACE_SIZE],
            write_mask: [0; CONFIG_SPACE_SIZE],
            w1c_mask: [0; CONFIG_SPACE_SIZE],
        };
        c.init_u16(REG_VENDOR_ID, vendor);
        c.init_u16(REG_DEVICE_ID, device);
        c.bytes[usize::from(REG_REVISION)] = revision;
        let [base, sub, prog_if] = class;
        c.bytes[usize::from(REG_CLASS)] = prog_if;
        c.bytes[usize::from(REG_CLASS) + 1] = sub;
        c.bytes[usize::from(REG_CLASS) + 2] = base;
        c.write_mask[usize::from(REG_INTERRUPT_LINE)] = 0xFF;
        c.write_mask[usize::from(REG_LATENCY_TIMER)] = 0xF8;
        c.set_w1c_u16(REG_STATUS, STATUS_W1C);
        c
    }

    /// Sets a byte's reset value without regard to the masks.
    pub fn init_u8(&mut self, reg: u8, value: u8) {
        self.bytes[usize::from(reg)] = value;
    }
    /// Sets a little-endian word's reset value (wraps at the end of space).
    pub fn init_u16(&mut self, reg: u8, value: u16) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            self.bytes[usize::from(reg.wrapping_add(i as u8))] = b;
        }
    }
    /// Sets a little-endian dword's reset value (wraps at the end of space).
    pub fn init_u32(&mut self, reg: u8, value: u32) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            self.bytes[usize::from(reg.wrapping_add(i as u8))] = b;
        }
    }
    /// Makes the bits of `mask` in bytes `reg..reg+len` writable (the mask
    /// repeats for each byte; use several calls for uneven masks).
    pub fn set_writable(&mut self, reg: u8, len: usize, mask: u8) {
        for i in 0..len {
            if let Some(m) = self.write_mask.get_mut(usize::from(reg) + i) {
                *m = mask;
            }
        }
    }
    /// Sets the writable bits of a little-endian word.
    pub fn set_writable_u16(&mut self, reg: u8, mask: u16) {
        for (i, m) in mask.to_le_bytes().into_iter().enumerate() {
            self.set_writable(reg.wrapping_add(i as u8), 1, m);
        }
    }
    /// Sets the writable bits of a little-endian dword.
    pub fn set_writable_u32(&mut self, reg: u8, mask: u32) {
        for (i, m) in mask.to_le_bytes().into_iter().enumerate() {
            self.set_writable(reg.wrapping_add(i as u8), 1, m);
        }
    }
    /// Sets the write-one-to-clear bits of a little-endian word.
    pub fn set_w1c_u16(&mut self, reg: u8, mask: u16) {
        for (i, m) in mask.to_le_bytes().into_iter().enumerate() {
            self.w1c_mask[usize::from(reg.wrapping_add(i as u8))] = m;
        }
    }
    /// Makes `bar` (0-5) an I/O BAR decoding `size` bytes (rounded up to a
    /// power of two, at least 4): software sizes it by writing all ones.
    /// Out-of-range `bar` is ignored.
    pub fn set_io_bar(&mut self, bar: u8, size: u32) {
        let size = size.max(4).checked_next_power_of_two().unwrap_or(1 << 31);
        self.set_bar(bar, BAR_IO, !(size - 1) & !BAR_IO_FLAGS);
    }
    /// Makes `bar` (0-5) a 32-bit memory BAR decoding `size` bytes (rounded
    /// up to a power of two, at least 16). Out-of-range `bar` is ignored.
    pub fn set_mem_bar(&mut self, bar: u8, size: u32, prefetchable: bool) {
        let size = size.max(16).checked_next_power_of_two().unwrap_or(1 << 31);
        let flags = if prefetchable { 1 << 3 } else { 0 };
        self.set_bar(bar, flags, !(size - 1) & !BAR_MEM_FLAGS);
    }
    fn set_bar(&mut self, bar: u8, flags: u32, mask: u32) {
        if bar < 6 {
            let reg = REG_BAR0 + 4 * bar;
            self.init_u32(reg, flags);
            self.set_writable_u32(reg, mask);
        }
    }
    /// The address a BAR (0-5) decodes: `None` if it is not implemented or
    /// still zero.
    pub fn bar_address(&self, bar: u8) -> Option<u32> {
        if bar >= 6 {
            return None;
        }
        let reg = REG_BAR0 + 4 * bar;
        let raw = self.read_u32(reg);
        let flags = if raw & BAR_IO != 0 {
            BAR_IO_FLAGS
        } else {
            BAR_MEM_FLAGS
        };
        let mask = self.read_mask_u32(reg);
        let addr = raw & !flags & mask;
        (mask != 0 && addr != 0).then_some(addr)
    }
    fn read_mask_u32(&self, reg: u8) -> u32 {
        u32::from_le_bytes(std::array::from_fn(|i| {
            self.write_mask[usize::from(reg.wrapping_add(i as u8))]
        }))
    }

    /// One byte as the guest reads it.
    pub fn read_u8(&self, reg: u8) -> u8 {
        self.bytes[usize::from(reg)]
    }
    /// A little-endian word (wraps at the end of space).
    pub fn read_u16(&self, reg: u8) -> u16 {
        u16::from_le_bytes([self.read_u8(reg), self.read_u8(reg.wrapping_add(1))])
    }
    /// A little-endian dword (wraps at the end of space).
    pub fn read_u32(&self, reg: u8) -> u32 {
        u32::from_le_bytes(std::array::from_fn(|i| {
            self.read_u8(reg.wrapping_add(i as u8))
        }))
    }
    /// One byte of a guest configuration write, through the masks: writable
    /// bits take the value, write-one-to-clear bits clear where it has ones,
    /// everything else is kept.
    pub fn write_u8(&mut self, reg: u8, value: u8) {
        let i = usize::from(reg);
        let (w, c) = (self.write_mask[i], self.w1c_mask[i]);
        self.bytes[i] = ((self.bytes[i] & !w) | (value & w)) & !(value & c);
    }
    /// Sets status bits from the device side (an error it detected).
    pub fn set_status(&mut self, bits: u16) {
        let status = self.read_u16(REG_STATUS) | bits;
        self.init_u16(REG_STATUS, status);
    }

    /// The raw bytes, for snapshots.
    pub fn bytes(&self) -> &[u8; CONFIG_SPACE_SIZE] {
        &self.bytes
    }
    /// Restores the raw bytes from a snapshot; a slice of the wrong length
    /// is ignored (returns `false`).
    pub fn restore_bytes(&mut self, bytes: &[u8]) -> bool {
        match <[u8; CONFIG_SPACE_SIZE]>::try_from(bytes) {
            Ok(b) => {
                self.bytes = b;
                true
            }
            Err(_) => false,
        }
    }
}

/// A function on the PCI bus as the configuration mechanism sees it.
pub trait PciFunction: Debug {
    /// The function's configuration space.
    fn config(&self) -> &PciConfigSpace;
    /// The same, mutable (snapshot restore; device-side status updates).
    fn config_mut(&mut self) -> &mut PciConfigSpace;
    /// A configuration read of one byte.
    fn read_config(&mut self, reg: u8) -> u8 {
        self.config().read_u8(reg)
    }
    /// A configuration write of one byte; override for side effects or for
    /// bits whose writability depends on other bits.
    fn write_config(&mut self, reg: u8, value: u8) {
        self.config_mut().write_u8(reg, value);
    }
}

impl PciFunction for PciConfigSpace {
    fn config(&self) -> &PciConfigSpace {
        self
    }
    fn config_mut(&mut self) -> &mut PciConfigSpace {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_u32(c: &mut PciConfigSpace, reg: u8, value: u32) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            c.write_u8(reg + i as u8, b);
        }
    }

    #[test]
    fn identity_is_read_only() {
        let mut c = PciConfigSpace::new(0x1234, 0x5678, 7, [0x01, 0x01, 0x80]);
        for reg in 0..=0x0Bu8 {
            c.write_u8(reg, 0xFF);
        }
        assert_eq!(c.read_u32(0), 0x5678_1234);
        assert_eq!(c.read_u32(REG_REVISION), 0x0101_8007);
    }

    #[test]
    fn status_is_write_one_to_clear() {
        let mut c = PciConfigSpace::new(1, 2, 0, [0, 0, 0]);
        c.init_u16(REG_STATUS, 0x0280);
        c.set_status(0x2000 | 0x0100);
        c.write_u8(REG_STATUS + 1, 0x00);
        assert_eq!(c.read_u16(REG_STATUS), 0x2380);
        c.write_u8(REG_STATUS + 1, 0x20 | 0x02); // 0x0200 is read-only
        assert_eq!(c.read_u16(REG_STATUS), 0x0380);
        c.write_u8(REG_STATUS + 1, 0xFF);
        assert_eq!(c.read_u16(REG_STATUS), 0x0280);
    }

    #[test]
    fn bar_sizing_and_decoding() {
        let mut c = PciConfigSpace::new(1, 2, 0, [0, 0, 0]);
        c.set_io_bar(0, 16);
        c.set_mem_bar(1, 0x1000, true);
        write_u32(&mut c, REG_BAR0, u32::MAX);
        write_u32(&mut c, REG_BAR0 + 4, u32::MAX);
        assert_eq!(c.read_u32(REG_BAR0), 0xFFFF_FFF1);
        assert_eq!(c.read_u32(REG_BAR0 + 4), 0xFFFF_F008);
        write_u32(&mut c, REG_BAR0, 0xC000);
        write_u32(&mut c, REG_BAR0 + 4, 0xFEB0_1234);
        assert_eq!(c.bar_address(0), Some(0xC000));
        assert_eq!(c.bar_address(1), Some(0xFEB0_1000));
        assert_eq!(c.bar_address(2), None);
        assert_eq!(c.bar_address(9), None);
        c.set_io_bar(7, 4); // ignored, no panic
    }

    #[test]
    fn restore_rejects_wrong_length() {
        let mut c = PciConfigSpace::new(1, 2, 0, [0, 0, 0]);
        assert!(!c.restore_bytes(&[0; 10]));
        assert_eq!(c.read_u16(0), 1);
        assert!(c.restore_bytes(&[0xAB; CONFIG_SPACE_SIZE]));
        assert_eq!(c.read_u8(0xFF), 0xAB);
    }
}
