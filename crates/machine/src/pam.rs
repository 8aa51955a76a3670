//! The 440FX's Programmable Attribute Map applied to the board's memory
//! map (82441FX datasheet 290549, 3.2.18 "PAM[6:0]—Programmable Attribute
//! Map Registers"): the host bridge keeps PAM0-PAM6 in its configuration
//! space (0x59-0x5F); after every configuration write the board hands them
//! to [`crate::memory_map::PhysMemory::set_pam`], which routes reads and
//! writes of 0xC0000-0xFFFFF to DRAM or to the PCI side.

use crate::memory_map::PAM_REGISTERS;
use crate::pc_board::PcBoard;

/// PAM0-PAM6 as firmware leaves them at boot, for machines that start a
/// kernel directly: 0xC0000-0xEFFFF read/write DRAM (0x33: RE and WE in
/// both nibbles) and the 0xF0000 BIOS segment read-only DRAM (0x10), as
/// SeaBIOS's `make_bios_readonly` does for its own segment.
pub const PAM_AFTER_FIRMWARE: [u8; PAM_REGISTERS] = [0x10, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33];

/// PAM0-PAM6 at reset: everything to the PCI side (datasheet 3.2.18,
/// default value 00h).
pub const PAM_RESET: [u8; PAM_REGISTERS] = [0; PAM_REGISTERS];

impl PcBoard {
    /// An `OUT` to the PCI configuration ports (offset from 0xCF8); the
    /// memory map then follows the PAM registers, which the write may have
    /// changed.
    pub(crate) fn pci_config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.pci.io_write(offset, size, value);
        self.apply_pam();
    }

    /// Makes the memory map follow the host bridge's PAM registers (the
    /// map's generation moves only if the attributes changed).
    pub fn apply_pam(&mut self) {
        self.memory.set_pam(self.pci.pam_registers());
    }

    /// Programs PAM0-PAM6 in the host bridge's configuration space, as a
    /// configuration write would (reserved bits stay clear), and applies
    /// them.
    pub fn set_pam(&mut self, pam: [u8; PAM_REGISTERS]) {
        self.pci.set_pam_registers(pam);
        self.apply_pam();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_map::{PhysMemory, Region};
    use crate::ram::GuestRam;
    use oxide86_cpu::Bus;
    use oxide86_devices::rtc::DateTime;

    /// A board with 2 MiB of RAM and a 128 KiB ROM whose bytes are their
    /// offset's low byte plus one.
    fn board() -> PcBoard {
        let rom = (0..128 * 1024u32)
            .map(|i| (i as u8).wrapping_add(1))
            .collect();
        PcBoard::new(
            PhysMemory::new(GuestRam::new(2 << 20).unwrap(), rom),
            DateTime::from_unix(0),
        )
    }

    /// A byte write to host bridge register `reg` through mechanism #1.
    fn pam_write(b: &mut PcBoard, reg: u8, value: u8) {
        b.io_write(0xCF8, 4, 0x8000_0000 | u32::from(reg & 0xFC));
        b.io_write(0xCFC + u16::from(reg & 3), 1, value.into());
    }

    fn pam_read(b: &mut PcBoard, reg: u8) -> u8 {
        b.io_write(0xCF8, 4, 0x8000_0000 | u32::from(reg & 0xFC));
        b.io_read(0xCFC + u16::from(reg & 3), 1) as u8
    }

    #[test]
    fn pci_config_writes_shape_the_memory_map() {
        let mut b = board();
        let rom_at = |a: u32| Region::Rom((a - 0xE_0000) as usize);
        assert_eq!(b.memory.pam(), PAM_RESET);
        assert_eq!(b.read_u8(0xF_0000), 1, "the ROM alias at reset");
        assert_eq!(b.read_u8(0xC_0000), 0xFF, "nothing behind 0xC0000");
        b.write_u8(0xC_0000, 0x42);
        assert_eq!(b.memory.ram().as_slice()[0xC_0000], 0, "dropped");
        // Every register and nibble, each of RE, WE and both.
        for reg in 0x59u8..=0x5F {
            for nibble in 0..2u32 {
                if reg == 0x59 && nibble == 0 {
                    continue; // PAM0's low nibble is reserved
                }
                let start = if reg == 0x59 {
                    0xF_0000
                } else {
                    0xC_0000 + u32::from(reg - 0x5A) * 0x8000 + nibble * 0x4000
                };
                for attr in 1..4u8 {
                    let g = b.memory_map_generation();
                    pam_write(&mut b, reg, attr << (4 * nibble));
                    assert_eq!(pam_read(&mut b, reg), attr << (4 * nibble));
                    assert!(b.memory_map_generation() > g, "{reg:#x} {attr}");
                    let dram = Region::Ram(start as usize + 0x100);
                    let pci = if start >= 0xE_0000 {
                        rom_at(start + 0x100)
                    } else {
                        Region::Unmapped
                    };
                    let m = &b.memory;
                    let (re, we) = (attr & 1 != 0, attr & 2 != 0);
                    assert_eq!(m.read_region(start + 0x100), if re { dram } else { pci });
                    assert_eq!(m.write_region(start + 0x100), if we { dram } else { pci });
                    assert_eq!(
                        b.ram_page_offset(start),
                        (re && we).then_some(start as usize)
                    );
                }
                pam_write(&mut b, reg, 0);
                assert_eq!(b.memory.pam(), PAM_RESET);
            }
        }
    }

    #[test]
    fn a_dword_write_and_unrelated_writes() {
        let mut b = board();
        // SeaBIOS's make_bios_writable as dwords: 0x58-0x5B and 0x5C-0x5F.
        b.io_write(0xCF8, 4, 0x8000_0058);
        b.io_write(0xCFC, 4, 0x3333_3000);
        b.io_write(0xCF8, 4, 0x8000_005C);
        b.io_write(0xCFC, 4, 0x3333_3333);
        assert_eq!(b.memory.pam(), [0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
        b.write_u8(0xF_FFF0, 0xEA);
        assert_eq!(b.read_u8(0xF_FFF0), 0xEA);
        let g = b.memory_map_generation();
        // A write elsewhere in configuration space leaves the map alone.
        b.io_write(0xCF8, 4, 0x8000_0800 | 0x60);
        b.io_write(0xCFC, 1, 0x0B);
        assert_eq!(b.memory_map_generation(), g);
        // Another function's 0x59 is not the host bridge's PAM0.
        b.io_write(0xCF8, 4, 0x8000_0800 | 0x58);
        b.io_write(0xCFD, 1, 0x00);
        assert_eq!(b.memory_map_generation(), g);
        assert_eq!(b.read_u8(0xF_FFF0), 0xEA);
    }

    #[test]
    fn set_pam_keeps_config_space_and_map_in_step() {
        let mut b = board();
        b.set_pam(PAM_AFTER_FIRMWARE);
        assert_eq!(b.memory.pam(), PAM_AFTER_FIRMWARE);
        assert_eq!(pam_read(&mut b, 0x59), 0x10);
        assert_eq!(pam_read(&mut b, 0x5F), 0x33);
        assert_eq!(b.ram_page_offset(0xE_0000), Some(0xE_0000));
        assert_eq!(b.ram_page_offset(0xF_0000), None, "read-only");
        b.write_u8(0xF_0000, 9);
        assert_eq!(b.read_u8(0xF_0000), 0, "RAM, write-protected");
        b.set_pam(PAM_RESET);
        assert_eq!(b.read_u8(0xF_0000), 1);
    }
}
