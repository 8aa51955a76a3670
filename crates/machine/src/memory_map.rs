//! The PC's physical memory map: conventional memory, the VGA window and
//! the ROM area below 1 MiB, extended memory, the PCI hole below 4 GiB, and
//! the BIOS ROM at the top of 4 GiB with its last 128 KiB aliased below
//! 1 MiB; plus the A20 gate (IBM PC/AT Technical Reference; Intel 440FX
//! datasheet, 3.1 "Memory Address Map").

use crate::ram::GuestRam;

/// End of conventional memory.
pub const CONVENTIONAL_END: u32 = 0xA_0000;
/// The VGA frame-buffer window (MMIO; open bus until a VGA device exists).
pub const VGA_WINDOW: std::ops::Range<u32> = 0xA_0000..0xC_0000;
/// Start of extended memory.
pub const EXTENDED_START: u32 = 0x10_0000;
/// Where RAM above 1 MiB stops below 4 GiB: the PCI hole begins here.
pub const PCI_HOLE_START: u32 = 0xE000_0000;
/// How much of the BIOS ROM is also visible just below 1 MiB.
pub const LOW_ROM_ALIAS: u32 = 128 * 1024;

/// What a physical address reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// Guest RAM at this offset.
    Ram(usize),
    /// The BIOS ROM at this offset (read-only).
    Rom(usize),
    /// Nothing (reads float to 0xFF, writes are dropped).
    Unmapped,
}

/// RAM, ROM and the A20 gate.
#[derive(Debug)]
pub struct PhysMemory {
    ram: GuestRam,
    rom: Vec<u8>,
    /// A20 enabled: address line 20 passes through.
    a20: bool,
    /// RAM bytes below 4 GiB above 1 MiB end at this address.
    high_end: u32,
    /// Bumped whenever the map changes (A20), so cached RAM offsets go.
    generation: u64,
}

impl PhysMemory {
    /// A memory map for `ram` (below the PCI hole) and an optional ROM image.
    pub fn new(ram: GuestRam, rom: Vec<u8>) -> Self {
        let high_end = (ram.len().min(PCI_HOLE_START as usize)) as u32;
        Self {
            ram,
            rom,
            a20: true,
            high_end,
            generation: 0,
        }
    }

    /// The RAM.
    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    /// The RAM, mutably (loaders).
    pub fn ram_mut(&mut self) -> &mut GuestRam {
        &mut self.ram
    }

    /// Sets the A20 gate (port 0x92 bit 1, or the keyboard controller's output port).
    pub fn set_a20(&mut self, enabled: bool) {
        if self.a20 != enabled {
            self.a20 = enabled;
            self.generation += 1;
        }
    }

    /// Changes whenever the map does (see [`oxide86_cpu::Bus::memory_map_generation`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The RAM offset of the 4 KiB page holding `addr`, if the whole page is
    /// plain RAM.
    pub fn ram_page_offset(&self, addr: u32) -> Option<usize> {
        match (self.region(addr & !0xFFF), self.region(addr | 0xFFF)) {
            (Region::Ram(a), Region::Ram(b)) if b == a + 0xFFF => Some(a),
            _ => None,
        }
    }

    /// Whether A20 is enabled.
    pub fn a20(&self) -> bool {
        self.a20
    }

    /// Which thing `addr` reaches after the A20 gate.
    #[inline]
    pub fn region(&self, addr: u32) -> Region {
        let addr = if self.a20 { addr } else { addr & !(1 << 20) };
        if addr < CONVENTIONAL_END {
            return if (addr as usize) < self.ram.len() {
                Region::Ram(addr as usize)
            } else {
                Region::Unmapped
            };
        }
        if addr >= EXTENDED_START {
            if addr < self.high_end {
                return Region::Ram(addr as usize);
            }
            let rom_len = self.rom.len() as u32;
            if rom_len > 0 && addr >= 0u32.wrapping_sub(rom_len) {
                return Region::Rom((addr - 0u32.wrapping_sub(rom_len)) as usize);
            }
            return Region::Unmapped;
        }
        if VGA_WINDOW.contains(&addr) {
            return Region::Unmapped;
        }
        // 0xC0000-0xFFFFF: the last part of the ROM, else shadow RAM.
        let alias = (self.rom.len() as u32).min(LOW_ROM_ALIAS);
        if alias > 0 && addr >= EXTENDED_START - alias {
            return Region::Rom(self.rom.len() - (EXTENDED_START - addr) as usize);
        }
        if (addr as usize) < self.ram.len() {
            Region::Ram(addr as usize)
        } else {
            Region::Unmapped
        }
    }

    /// Reads one byte.
    #[inline]
    pub fn read_u8(&self, addr: u32) -> u8 {
        match self.region(addr) {
            Region::Ram(o) => self.ram.as_slice()[o],
            Region::Rom(o) => self.rom[o],
            Region::Unmapped => 0xFF,
        }
    }

    /// Writes one byte (ROM and unmapped addresses ignore it).
    #[inline]
    pub fn write_u8(&mut self, addr: u32, value: u8) {
        if let Region::Ram(o) = self.region(addr) {
            self.ram.as_mut_slice()[o] = value;
        }
    }

    /// Reads a little-endian dword that lies within one region.
    #[inline]
    pub fn read_u32(&self, addr: u32) -> u32 {
        if let Region::Ram(o) = self.region(addr) {
            if let Some(b) = self.ram.as_slice().get(o..o + 4) {
                if matches!(self.region(addr.wrapping_add(3)), Region::Ram(e) if e == o + 3) {
                    return u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
        }
        u32::from_le_bytes([
            self.read_u8(addr),
            self.read_u8(addr.wrapping_add(1)),
            self.read_u8(addr.wrapping_add(2)),
            self.read_u8(addr.wrapping_add(3)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(ram: usize, rom: usize) -> PhysMemory {
        let mut r = vec![0u8; rom];
        for (i, b) in r.iter_mut().enumerate() {
            *b = i as u8;
        }
        PhysMemory::new(GuestRam::new(ram).unwrap(), r)
    }

    #[test]
    fn rom_at_top_of_4g_and_below_1m() {
        let m = map(2 << 20, 256 * 1024);
        assert_eq!(m.region(0xFFFF_FFF0), Region::Rom(256 * 1024 - 16));
        // Only the last 128 KiB alias below 1 MiB.
        assert_eq!(m.region(0xF_FFF0), Region::Rom(256 * 1024 - 16));
        assert_eq!(m.region(0xE_0000), Region::Rom(128 * 1024));
        assert_eq!(m.region(0xD_0000), Region::Ram(0xD_0000));
        assert_eq!(m.region(0xA_0000), Region::Unmapped);
        assert_eq!(m.region(0x10_0000), Region::Ram(0x10_0000));
        assert_eq!(m.region(0x20_0000), Region::Unmapped);
    }

    #[test]
    fn a20_off_wraps_at_1m() {
        let mut m = map(4 << 20, 0);
        m.write_u8(0x1234, 0x5A);
        m.set_a20(false);
        assert_eq!(m.read_u8(0x10_1234), 0x5A);
        m.set_a20(true);
        assert_eq!(m.read_u8(0x10_1234), 0);
    }

    #[test]
    fn writes_to_rom_are_dropped() {
        let mut m = map(1 << 20, 4096);
        let before = m.read_u8(0xFFFF_F000);
        m.write_u8(0xFFFF_F000, before.wrapping_add(1));
        assert_eq!(m.read_u8(0xFFFF_F000), before);
    }
}
