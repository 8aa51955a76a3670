//! The CPU's window on the rest of the machine: physical memory, I/O ports
//! and the interrupt controller's acknowledge cycle.
//!
//! Addresses given to a [`Bus`] are physical: segmentation and paging have
//! already been applied by the CPU. The A20 gate and the width of the address
//! bus are the machine's business, so a bus masks addresses as its board does.

/// Everything the CPU can reach outside itself.
///
/// Multi-byte accesses are little-endian. The CPU never issues a multi-byte
/// access that crosses a 4 KiB page; the default wide methods split into
/// bytes so a minimal bus only implements `read_u8`/`write_u8`.
pub trait Bus {
    /// Reads one byte of physical memory (open bus reads as 0xFF).
    fn read_u8(&mut self, addr: u32) -> u8;
    /// Writes one byte of physical memory (writes to ROM or nothing are dropped).
    fn write_u8(&mut self, addr: u32, value: u8);

    /// Reads a little-endian word.
    fn read_u16(&mut self, addr: u32) -> u16 {
        u16::from_le_bytes([self.read_u8(addr), self.read_u8(addr.wrapping_add(1))])
    }
    /// Reads a little-endian doubleword.
    fn read_u32(&mut self, addr: u32) -> u32 {
        u32::from(self.read_u16(addr)) | (u32::from(self.read_u16(addr.wrapping_add(2))) << 16)
    }
    /// Writes a little-endian word.
    fn write_u16(&mut self, addr: u32, value: u16) {
        let [a, b] = value.to_le_bytes();
        self.write_u8(addr, a);
        self.write_u8(addr.wrapping_add(1), b);
    }
    /// Writes a little-endian doubleword.
    fn write_u32(&mut self, addr: u32, value: u32) {
        self.write_u16(addr, value as u16);
        self.write_u16(addr.wrapping_add(2), (value >> 16) as u16);
    }

    /// Guest RAM as one slice, if the board lets the CPU access plain RAM
    /// pages directly (the soft TLB caches offsets into it).
    fn ram(&mut self) -> Option<&mut [u8]> {
        None
    }
    /// The offset in [`Bus::ram`] of the 4 KiB page holding `paddr`, if that
    /// whole page is plain RAM (not ROM, MMIO or a hole).
    fn ram_page_offset(&mut self, paddr: u32) -> Option<usize> {
        let _ = paddr;
        None
    }
    /// Changes whenever an answer of [`Bus::ram_page_offset`] may have
    /// changed (the A20 gate, remapping); the CPU then drops what it cached.
    fn memory_map_generation(&self) -> u64 {
        0
    }

    /// Called before each port access and each access to memory that is
    /// not plain RAM (MMIO, ROM) with the CPU's count of retired
    /// instructions, so a board whose devices run on machine time can
    /// bring them up to this instruction first (a guest polling a timer
    /// sees it move between two reads).
    fn sync_time(&mut self, icount: u64) {
        let _ = icount;
    }

    /// `IN` from `port`, `size` bytes (1, 2 or 4). Unclaimed ports read all ones.
    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        let _ = port;
        match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => 0xFFFF_FFFF,
        }
    }
    /// `OUT` to `port`, `size` bytes (1, 2 or 4). Unclaimed ports ignore writes.
    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        let _ = (port, size, value);
    }

    /// Takes a pending non-maskable interrupt (an edge on the NMI pin).
    fn take_nmi(&mut self) -> bool {
        false
    }
    /// Whether a maskable interrupt request is pending (the INTR pin).
    fn interrupt_pending(&mut self) -> bool {
        false
    }
    /// The interrupt-acknowledge cycle: the vector of the pending maskable
    /// interrupt, or `None` if the request went away (a spurious interrupt).
    fn interrupt_ack(&mut self) -> Option<u8> {
        None
    }

    /// The CPU wrote IA32_APIC_BASE (SDM Vol. 3A, 10.4.4 "Local APIC
    /// Status and Location"): the board moves its local APIC's register
    /// page, or turns the APIC off when bit 11 is clear.
    fn apic_base_changed(&mut self, value: u64) {
        let _ = value;
    }

    /// The FERR# line of the x87 (SDM Vol. 1, 8.7 "Handling x87 FPU
    /// Exceptions in Software"), which the PC routes to IRQ13: asserted when
    /// an unmasked x87 exception is pending while CR0.NE=0, deasserted when
    /// FNCLEX/FNINIT/FLDENV/FRSTOR clear it. The CPU models IGNNE# as
    /// asserted, so it never freezes waiting for the handler.
    fn fpu_error(&mut self, asserted: bool) {
        let _ = asserted;
    }
}

/// A flat RAM with nothing else on the bus: for tests, examples and the
/// conformance runners. Addresses are masked to `mask` (so a 20-bit mask
/// gives the 8086's wrap at 1 MiB); bytes past the end read as 0xFF.
#[derive(Debug, Clone)]
pub struct FlatRam {
    /// The memory, indexed by physical address.
    pub bytes: Vec<u8>,
    /// Address-bus mask applied to every access.
    pub mask: u32,
}

impl FlatRam {
    /// A zeroed RAM of `size` bytes with a full 32-bit address bus.
    pub fn new(size: usize) -> Self {
        Self {
            bytes: vec![0; size],
            mask: u32::MAX,
        }
    }
    /// Copies `data` to physical address `addr` (ignoring bytes past the end).
    pub fn load(&mut self, addr: u32, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.write_u8(addr.wrapping_add(i as u32), *b);
        }
    }
}

impl Bus for FlatRam {
    fn ram(&mut self) -> Option<&mut [u8]> {
        Some(&mut self.bytes)
    }
    fn ram_page_offset(&mut self, paddr: u32) -> Option<usize> {
        let o = (paddr & self.mask & !0xFFF) as usize;
        (self.mask | 0xFFF == self.mask && o + 0x1000 <= self.bytes.len()).then_some(o)
    }
    fn memory_map_generation(&self) -> u64 {
        u64::from(self.mask)
    }
    fn read_u8(&mut self, addr: u32) -> u8 {
        self.bytes
            .get((addr & self.mask) as usize)
            .copied()
            .unwrap_or(0xFF)
    }
    fn write_u8(&mut self, addr: u32, value: u8) {
        if let Some(b) = self.bytes.get_mut((addr & self.mask) as usize) {
            *b = value;
        }
    }
    fn read_u16(&mut self, addr: u32) -> u16 {
        let a = (addr & self.mask) as usize;
        match self.bytes.get(a..a + 2) {
            Some(s) if (addr.wrapping_add(1) & self.mask) as usize == a + 1 => {
                u16::from_le_bytes([s[0], s[1]])
            }
            _ => u16::from_le_bytes([self.read_u8(addr), self.read_u8(addr.wrapping_add(1))]),
        }
    }
    fn read_u32(&mut self, addr: u32) -> u32 {
        let a = (addr & self.mask) as usize;
        match self.bytes.get(a..a + 4) {
            Some(s) if (addr.wrapping_add(3) & self.mask) as usize == a + 3 => {
                u32::from_le_bytes([s[0], s[1], s[2], s[3]])
            }
            _ => {
                u32::from(self.read_u16(addr))
                    | (u32::from(self.read_u16(addr.wrapping_add(2))) << 16)
            }
        }
    }
    fn write_u16(&mut self, addr: u32, value: u16) {
        let a = (addr & self.mask) as usize;
        let contiguous = (addr.wrapping_add(1) & self.mask) as usize == a + 1;
        match self.bytes.get_mut(a..a + 2) {
            Some(s) if contiguous => s.copy_from_slice(&value.to_le_bytes()),
            _ => {
                let [b0, b1] = value.to_le_bytes();
                self.write_u8(addr, b0);
                self.write_u8(addr.wrapping_add(1), b1);
            }
        }
    }
    fn write_u32(&mut self, addr: u32, value: u32) {
        let a = (addr & self.mask) as usize;
        let contiguous = (addr.wrapping_add(3) & self.mask) as usize == a + 3;
        match self.bytes.get_mut(a..a + 4) {
            Some(s) if contiguous => s.copy_from_slice(&value.to_le_bytes()),
            _ => {
                self.write_u16(addr, value as u16);
                self.write_u16(addr.wrapping_add(2), (value >> 16) as u16);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_writes_match_byte_writes_at_edges_and_wraps() {
        let mut ram = FlatRam::new(0x10_0000);
        ram.mask = 0xF_FFFF; // the 8086's 20-bit bus
        ram.write_u32(0x100, 0x1122_3344);
        assert_eq!(ram.bytes[0x100..0x104], [0x44, 0x33, 0x22, 0x11]);
        ram.write_u32(0xF_FFFE, 0xAABB_CCDD); // wraps to 0
        assert_eq!(ram.bytes[0xF_FFFE..], [0xDD, 0xCC]);
        assert_eq!(ram.bytes[0..2], [0xBB, 0xAA]);
        ram.write_u16(0xF_FFFF, 0x5566);
        assert_eq!((ram.bytes[0xF_FFFF], ram.bytes[0]), (0x66, 0x55));
        assert_eq!(ram.read_u32(0xF_FFFE), 0xAA55_66DD);
    }

    #[test]
    fn writes_past_the_end_are_dropped() {
        let mut ram = FlatRam::new(0x1000);
        ram.write_u32(0xFFE, 0x1122_3344); // two bytes in RAM, two past it
        assert_eq!(ram.bytes[0xFFE..], [0x44, 0x33]);
        assert_eq!(ram.read_u32(0xFFE), 0xFFFF_3344);
    }
}
