//! The PC's physical memory map: conventional memory, the VGA window and
//! the ROM area below 1 MiB, extended memory, the PCI hole below 4 GiB, and
//! the BIOS ROM at the top of 4 GiB with its last 128 KiB aliased below
//! 1 MiB; plus the A20 gate (IBM PC/AT Technical Reference; Intel 440FX
//! datasheet, 3.1 "Memory Address Map").
//!
//! 0xC0000-0xFFFFF is shaped by the host bridge's Programmable Attribute
//! Map (82441FX datasheet 290549, 3.2.18 "PAM[6:0]—Programmable Attribute
//! Map Registers"): per segment, reads and writes each go either to DRAM or
//! to the PCI side, where the BIOS ROM's low alias answers (or nothing:
//! open bus). Reads and writes are therefore routed separately
//! ([`PhysMemory::read_region`], [`PhysMemory::write_region`]), which is
//! how firmware shadows itself: copy the ROM to RAM with the segment
//! write-only, then make it read-only.

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
/// The first address under PAM control (PAM1's low nibble).
pub const PAM_START: u32 = 0xC_0000;
/// The 64 KiB BIOS segment governed by PAM0's high nibble.
pub const PAM_BIOS_SEGMENT: u32 = 0xF_0000;
/// Number of PAM registers (PAM0-PAM6, host bridge config 0x59-0x5F).
pub const PAM_REGISTERS: usize = 7;

/// PAM attribute bit RE: reads of the segment go to DRAM (datasheet 3.2.18).
const PAM_RE: u8 = 1 << 0;
/// PAM attribute bit WE: writes of the segment go to DRAM.
const PAM_WE: u8 = 1 << 1;
/// 16 KiB blocks of 0xC0000-0xFFFFF: bit `n` of a block mask is
/// 0xC0000 + n * 16 KiB (the F segment is blocks 12-15).
const PAM_BLOCK_SHIFT: u32 = 14;

/// Decodes PAM0-PAM6 (datasheet 3.2.18) into per-16-KiB-block masks of
/// (reads to DRAM, writes to DRAM). PAM0 bits 5:4 cover 0xF0000-0xFFFFF
/// (its low nibble is reserved); PAMn (n = 1..6) bits 1:0 cover
/// 0xC0000 + (n - 1) * 32 KiB and bits 5:4 the 16 KiB after it. Reserved
/// bits are ignored.
fn decode_pam(pam: [u8; PAM_REGISTERS]) -> (u16, u16) {
    let (mut read, mut write) = (0u16, 0u16);
    let mut set = |block: u32, attr: u8| {
        if attr & PAM_RE != 0 {
            read |= 1 << block;
        }
        if attr & PAM_WE != 0 {
            write |= 1 << block;
        }
    };
    for n in 1..PAM_REGISTERS as u32 {
        let reg = pam[n as usize];
        set(2 * (n - 1), reg & 0x0F);
        set(2 * (n - 1) + 1, reg >> 4);
    }
    for block in 12..16 {
        set(block, pam[0] >> 4);
    }
    (read, write)
}

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

/// RAM, ROM, the A20 gate and the PAM attributes of 0xC0000-0xFFFFF.
#[derive(Debug)]
pub struct PhysMemory {
    ram: GuestRam,
    rom: Vec<u8>,
    /// A20 enabled: address line 20 passes through.
    a20: bool,
    /// RAM bytes below 4 GiB above 1 MiB end at this address.
    high_end: u32,
    /// Bumped whenever the map changes (A20, PAM), so cached RAM offsets go.
    generation: u64,
    /// PAM0-PAM6 as last applied.
    pam: [u8; PAM_REGISTERS],
    /// 16 KiB blocks of 0xC0000-0xFFFFF whose reads go to DRAM.
    pam_read: u16,
    /// 16 KiB blocks of 0xC0000-0xFFFFF whose writes go to DRAM.
    pam_write: u16,
}

impl PhysMemory {
    /// A memory map for `ram` (below the PCI hole) and an optional ROM
    /// image, with the PAM registers at their reset value 0: all of
    /// 0xC0000-0xFFFFF goes to the PCI side (datasheet 3.2.18).
    pub fn new(ram: GuestRam, rom: Vec<u8>) -> Self {
        let high_end = (ram.len().min(PCI_HOLE_START as usize)) as u32;
        Self {
            ram,
            rom,
            a20: true,
            high_end,
            generation: 0,
            pam: [0; PAM_REGISTERS],
            pam_read: 0,
            pam_write: 0,
        }
    }

    /// Applies the host bridge's PAM0-PAM6 (config 0x59-0x5F; datasheet
    /// 3.2.18); the map's generation moves when the attributes change.
    pub fn set_pam(&mut self, pam: [u8; PAM_REGISTERS]) {
        let (read, write) = decode_pam(pam);
        self.pam = pam;
        if (read, write) != (self.pam_read, self.pam_write) {
            self.pam_read = read;
            self.pam_write = write;
            self.generation += 1;
        }
    }

    /// PAM0-PAM6 as last applied with [`Self::set_pam`].
    pub fn pam(&self) -> [u8; PAM_REGISTERS] {
        self.pam
    }

    /// Copies `data` into RAM at physical `addr`, whatever the PAM
    /// attributes and the A20 gate say (the machine filling in what
    /// firmware would have left). False, with nothing written, when it
    /// does not fit in RAM.
    pub fn write_ram(&mut self, addr: u32, data: &[u8]) -> bool {
        self.ram.load(addr as usize, data)
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
    /// plain RAM for reads and writes alike (a PAM segment that sends
    /// either direction to the PCI side has none: the CPU's fast path uses
    /// one offset for both).
    pub fn ram_page_offset(&self, addr: u32) -> Option<usize> {
        let (first, last) = (addr & !0xFFF, addr | 0xFFF);
        match (self.read_region(first), self.read_region(last)) {
            (Region::Ram(a), Region::Ram(b)) if b == a + 0xFFF => {
                let w = (self.write_region(first), self.write_region(last));
                (w == (Region::Ram(a), Region::Ram(b))).then_some(a)
            }
            _ => None,
        }
    }

    /// Whether A20 is enabled.
    pub fn a20(&self) -> bool {
        self.a20
    }

    /// Which thing a read of `addr` reaches after the A20 gate.
    #[inline]
    pub fn read_region(&self, addr: u32) -> Region {
        self.region(addr, self.pam_read)
    }

    /// Which thing a write of `addr` reaches after the A20 gate (a write
    /// that reaches the ROM or nothing is dropped).
    #[inline]
    pub fn write_region(&self, addr: u32) -> Region {
        self.region(addr, self.pam_write)
    }

    /// The region of `addr`, with `to_dram` the PAM blocks of
    /// 0xC0000-0xFFFFF that this direction of access sends to DRAM.
    #[inline]
    fn region(&self, addr: u32, to_dram: u16) -> Region {
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
        // 0xC0000-0xFFFFF: DRAM if the PAM attribute says so, else the PCI
        // side, where the last part of the ROM answers (or nothing does).
        if to_dram & (1 << ((addr - PAM_START) >> PAM_BLOCK_SHIFT)) != 0 {
            return if (addr as usize) < self.ram.len() {
                Region::Ram(addr as usize)
            } else {
                Region::Unmapped
            };
        }
        let alias = (self.rom.len() as u32).min(LOW_ROM_ALIAS);
        if alias > 0 && addr >= EXTENDED_START - alias {
            return Region::Rom(self.rom.len() - (EXTENDED_START - addr) as usize);
        }
        Region::Unmapped
    }

    /// Reads one byte.
    #[inline]
    pub fn read_u8(&self, addr: u32) -> u8 {
        match self.read_region(addr) {
            Region::Ram(o) => self.ram.as_slice()[o],
            Region::Rom(o) => self.rom[o],
            Region::Unmapped => 0xFF,
        }
    }

    /// Writes one byte (ROM and unmapped addresses ignore it).
    #[inline]
    pub fn write_u8(&mut self, addr: u32, value: u8) {
        if let Region::Ram(o) = self.write_region(addr) {
            self.ram.as_mut_slice()[o] = value;
        }
    }

    /// Reads a little-endian dword that lies within one region.
    #[inline]
    pub fn read_u32(&self, addr: u32) -> u32 {
        if let Region::Ram(o) = self.read_region(addr) {
            if let Some(b) = self.ram.as_slice().get(o..o + 4) {
                if matches!(self.read_region(addr.wrapping_add(3)), Region::Ram(e) if e == o + 3) {
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
        assert_eq!(m.read_region(0xFFFF_FFF0), Region::Rom(256 * 1024 - 16));
        // Only the last 128 KiB alias below 1 MiB.
        assert_eq!(m.read_region(0xF_FFF0), Region::Rom(256 * 1024 - 16));
        assert_eq!(m.read_region(0xE_0000), Region::Rom(128 * 1024));
        // Below the alias, the PCI side of a PAM segment is open bus.
        assert_eq!(m.read_region(0xD_0000), Region::Unmapped);
        assert_eq!(m.read_region(0xA_0000), Region::Unmapped);
        assert_eq!(m.read_region(0x10_0000), Region::Ram(0x10_0000));
        assert_eq!(m.read_region(0x20_0000), Region::Unmapped);
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

    /// PAM register and nibble shift governing each segment start, and the
    /// segment's size (datasheet 3.2.18).
    fn segments() -> Vec<(u32, usize, u32, u32)> {
        let mut v: Vec<_> = (0..12u32)
            .map(|i| {
                (
                    PAM_START + i * 0x4000,
                    1 + (i / 2) as usize,
                    4 * (i % 2),
                    0x4000,
                )
            })
            .collect();
        v.push((PAM_BIOS_SEGMENT, 0, 4, 0x1_0000));
        v
    }

    #[test]
    fn every_segment_takes_all_four_pam_combinations() {
        for (start, reg, shift, size) in segments() {
            for attr in 0..4u8 {
                // 256 KiB ROM: the alias covers 0xE0000-0xFFFFF.
                let mut m = map(2 << 20, 256 * 1024);
                m.ram_mut().as_mut_slice()[start as usize..(start + size) as usize].fill(0xAA);
                let mut pam = [0u8; PAM_REGISTERS];
                pam[reg] = attr << shift;
                m.set_pam(pam);
                let (re, we) = (attr & 1 != 0, attr & 2 != 0);
                let pci = |a: u32| {
                    if a >= 0xE_0000 {
                        Region::Rom(256 * 1024 - (0x10_0000 - a) as usize)
                    } else {
                        Region::Unmapped
                    }
                };
                for a in [start, start + size / 2, start + size - 1] {
                    let dram = Region::Ram(a as usize);
                    let read = if re { dram } else { pci(a) };
                    let write = if we { dram } else { pci(a) };
                    assert_eq!(m.read_region(a), read, "{a:#x} attr {attr}");
                    assert_eq!(m.write_region(a), write, "{a:#x} attr {attr}");
                    let before = m.ram().as_slice()[a as usize];
                    let shown = m.read_u8(a);
                    m.write_u8(a, 0x55);
                    let now = m.ram().as_slice()[a as usize];
                    assert_eq!(now, if we { 0x55 } else { before }, "{a:#x} attr {attr}");
                    let expect_read = match read {
                        Region::Ram(_) => before,
                        Region::Rom(o) => o as u8,
                        Region::Unmapped => 0xFF,
                    };
                    assert_eq!(shown, expect_read, "{a:#x} attr {attr}");
                    assert_eq!(
                        m.ram_page_offset(a),
                        (re && we).then_some(a as usize & !0xFFF),
                        "{a:#x} attr {attr}"
                    );
                }
                // The neighbouring segments keep the reset attributes.
                for a in [start.wrapping_sub(1), start + size] {
                    if (PAM_START..EXTENDED_START).contains(&a) {
                        assert_eq!(m.read_region(a), pci(a), "{a:#x} next to {start:#x}");
                        assert_eq!(m.write_region(a), pci(a), "{a:#x} next to {start:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn shadowing_copies_the_rom_then_locks_it() {
        let mut m = map(2 << 20, 64 * 1024);
        let rom: Vec<u8> = (0..0x1_0000u32).map(|a| m.read_u8(0xF_0000 + a)).collect();
        assert_eq!(rom[0x1234], 0x34);
        // Write-only: reads still come from the ROM, writes land in RAM.
        m.set_pam([0x20, 0, 0, 0, 0, 0, 0]);
        for (i, b) in rom.iter().enumerate() {
            let a = 0xF_0000 + i as u32;
            m.write_u8(a, m.read_u8(a));
            assert_eq!(m.read_u8(a), *b);
        }
        m.write_u8(0xF_1234, 0x99);
        assert_eq!(m.read_u8(0xF_1234), 0x34, "reads still reach the ROM");
        m.write_u8(0xF_1234, 0x34);
        assert_eq!(m.ram_page_offset(0xF_0000), None);
        // Read-only: the RAM copy answers, writes are dropped.
        m.set_pam([0x10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(m.read_u8(0xF_1234), 0x34);
        assert_eq!(m.read_u32(0xF_1234), 0x3736_3534);
        m.write_u8(0xF_1234, 0x99);
        assert_eq!(m.read_u8(0xF_1234), 0x34, "the shadow is write-protected");
        assert_eq!(m.ram().as_slice()[0xF_1234], 0x34);
        assert_eq!(m.ram_page_offset(0xF_1000), None);
        // The ROM itself is unchanged at the top of 4 GiB.
        assert_eq!(m.read_u8(0xFFFF_1234), 0x34);
        // Read/write: plain RAM again.
        m.set_pam([0x30, 0, 0, 0, 0, 0, 0]);
        m.write_u8(0xF_1234, 0x99);
        assert_eq!(m.read_u8(0xF_1234), 0x99);
        assert_eq!(m.ram_page_offset(0xF_1234), Some(0xF_1000));
        assert_eq!(m.read_u8(0xFFFF_1234), 0x34);
    }

    #[test]
    fn pam_changes_bump_the_generation() {
        let mut m = map(2 << 20, 0);
        let g0 = m.generation();
        m.set_pam([0; PAM_REGISTERS]);
        assert_eq!(m.generation(), g0, "no change, no bump");
        m.set_pam([0x10, 0, 0, 0, 0, 0, 0]);
        let g1 = m.generation();
        assert!(g1 > g0);
        m.set_pam([0x1F, 0xCC, 0, 0, 0, 0, 0]);
        assert_eq!(m.generation(), g1, "reserved bits change nothing");
        assert_eq!(m.pam(), [0x1F, 0xCC, 0, 0, 0, 0, 0]);
        m.set_pam([0x10, 0, 0, 0, 0, 0, 0x02]);
        assert!(m.generation() > g1);
    }

    #[test]
    fn without_a_rom_the_pci_side_is_open_bus() {
        let mut m = map(2 << 20, 0);
        m.ram_mut().as_mut_slice()[0xC_0000..0x10_0000].fill(0x11);
        for a in (0xC_0000..0x10_0000).step_by(0x1000) {
            assert_eq!(m.read_u8(a), 0xFF, "{a:#x}");
            assert_eq!(m.read_u32(a), 0xFFFF_FFFF, "{a:#x}");
            assert_eq!(m.ram_page_offset(a), None);
        }
        m.write_u8(0xC_0000, 0x22);
        assert_eq!(m.ram().as_slice()[0xC_0000], 0x11, "writes dropped");
        m.set_pam([0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
        for a in (0xC_0000..0x10_0000).step_by(0x1000) {
            assert_eq!(m.read_u8(a), 0x11, "{a:#x}");
            assert_eq!(m.ram_page_offset(a), Some(a as usize));
        }
        // RAM smaller than 1 MiB: DRAM-side accesses past its end float.
        let mut small = map(0xD_0000, 0);
        small.set_pam([0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
        assert_eq!(small.read_region(0xC_FFFF), Region::Ram(0xC_FFFF));
        assert_eq!(small.read_region(0xD_0000), Region::Unmapped);
        assert_eq!(small.ram_page_offset(0xD_0000), None);
    }

    #[test]
    fn a_small_rom_aliases_only_what_it_covers() {
        let mut m = map(2 << 20, 4096);
        assert_eq!(m.read_region(0xF_F000), Region::Rom(0));
        assert_eq!(m.read_region(0xF_EFFF), Region::Unmapped);
        assert_eq!(m.read_u8(0xF_EFFF), 0xFF);
        // Write-only F segment: reads split between the ROM and open bus.
        m.set_pam([0x20, 0, 0, 0, 0, 0, 0]);
        m.write_u8(0xF_EFFF, 7);
        assert_eq!(m.read_u8(0xF_EFFF), 0xFF);
        assert_eq!(m.ram().as_slice()[0xF_EFFF], 7);
    }

    #[test]
    fn a20_off_applies_before_pam() {
        let mut m = map(4 << 20, 0);
        m.set_pam([0x30, 0, 0, 0, 0, 0, 0]);
        m.write_u8(0xF_0010, 0x5A);
        m.set_a20(false);
        assert_eq!(m.read_u8(0x1F_0010), 0x5A);
        m.set_pam([0x00, 0, 0, 0, 0, 0, 0]);
        assert_eq!(m.read_u8(0x1F_0010), 0xFF);
    }

    #[test]
    fn write_ram_ignores_pam() {
        let mut m = map(2 << 20, 0);
        assert!(m.write_ram(0xE_0000, b"RSD PTR "));
        assert_eq!(&m.ram().as_slice()[0xE_0000..0xE_0008], b"RSD PTR ");
        assert!(!m.write_ram((2 << 20) - 2, b"abc"));
    }
}
