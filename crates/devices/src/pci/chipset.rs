//! The chipset functions on bus 0: the Intel 82441FX host bridge (440FX PMC,
//! Intel 82441FX/82442FX datasheet 290549, 3.2 "PCI Configuration
//! Registers"), the 82371SB PIIX3 PCI-to-ISA bridge (datasheet 290550, 2.2
//! "PCI to ISA Bridge Configuration Registers") and the power-management
//! function of the 82371AB PIIX4 (datasheet 290562, 7.1 "Power Management
//! Configuration Registers"), as QEMU's `pc` machine also combines them.
//!
//! Each builder returns the reset configuration space with the writable
//! bits opened; the decoders read the registers the machine acts on.

use super::config::{
    PciConfigSpace, PciFunction, HEADER_MULTI_FUNCTION, REG_COMMAND, REG_HEADER_TYPE,
    REG_INTERRUPT_PIN, REG_STATUS,
};

/// Intel's PCI vendor ID.
pub const VENDOR_INTEL: u16 = 0x8086;
/// 82441FX PMC (440FX host bridge) device ID.
pub const DEVICE_I440FX: u16 = 0x1237;
/// 82371SB PIIX3 function 0 (ISA bridge) device ID.
pub const DEVICE_PIIX3_ISA: u16 = 0x7000;
/// 82371AB PIIX4 function 3 (power management) device ID.
pub const DEVICE_PIIX4_PM: u16 = 0x7113;

/// PAM0: attributes of 0xF0000-0xFFFFF in bits 5:4 (bits 3:0 reserved).
pub const REG_PAM0: u8 = 0x59;
/// PAM6, the last Programmable Attribute Map register.
pub const REG_PAM6: u8 = 0x5F;
/// SMRAM control register of the 440FX.
pub const REG_SMRAM: u8 = 0x72;
/// PIRQA# route control; PIRQB#-PIRQD# follow at 0x61-0x63.
pub const REG_PIRQRC: u8 = 0x60;
/// Top of memory register of the PIIX3 (plain storage here).
pub const REG_TOM: u8 = 0x69;
/// PMBA: PIIX4 power-management I/O base (dword; bits 15:6 address, bit 0 = 1).
pub const REG_PMBA: u8 = 0x40;
/// PMREGMISC: bit 0 (PMIOSE) enables the PMBA decode.
pub const REG_PMREGMISC: u8 = 0x80;
/// SMBBA: PIIX4 SMBus I/O base (dword; bits 15:4 address, bit 0 = 1).
pub const REG_SMBBA: u8 = 0x90;

const PAM_READ: u8 = 1 << 0; // RE: reads of the segment go to DRAM
const PAM_WRITE: u8 = 1 << 1; // WE: writes of the segment go to DRAM
const PAM_MASK: u8 = 0x33; // RE/WE of both nibbles; bits 7:6 and 3:2 reserved
const PAM_LOW: u32 = 0xC0000; // first address PAM1-PAM6 govern
const PAM_BIOS: u32 = 0xF0000; // the 64 KiB BIOS segment PAM0 governs
const PAM_END: u32 = 0x100000; // first address past PAM control
const PAM_SEGMENT: u32 = 0x4000; // 16 KiB per nibble of PAM1-PAM6

const SMRAM_D_OPEN: u8 = 1 << 6; // SMM space visible outside SMM
const SMRAM_D_CLS: u8 = 1 << 5; // data accesses to SMM space go to the bus
const SMRAM_D_LCK: u8 = 1 << 4; // locks D_OPEN and itself until reset
const SMRAM_G_SMRAME: u8 = 1 << 3; // SMRAM enable
const SMRAM_RESET: u8 = 0x02; // C_BASE_SEG = 010: SMRAM at 0xA0000 (read-only)

const PIRQ_DISABLE: u8 = 1 << 7; // IRQROUTEN: 1 = not routed
const PIRQ_IRQ_MASK: u8 = 0x0F; // IRQ number; 0-2, 8 and 13 are reserved
const PIRQ_COUNT: u8 = 4; // PIRQA#-PIRQD#

const PMBA_IO: u8 = 1 << 0; // resource type indicator: I/O space, read-only 1
const PMBA_ADDR_MASK: u16 = 0xFFC0; // a 64-byte aligned block
const PMIOSE: u8 = 1 << 0; // PMREGMISC bit 0

const CMD_IO: u16 = 1 << 0; // I/O space enable
const CMD_MEM: u16 = 1 << 1; // memory space enable
const CMD_MASTER: u16 = 1 << 2; // bus master enable
const CMD_SPECIAL: u16 = 1 << 3; // special cycle enable
const CMD_PARITY: u16 = 1 << 6; // parity error response
const CMD_SERR: u16 = 1 << 8; // SERR# enable
const STATUS_FAST_B2B: u16 = 1 << 7; // fast back-to-back capable
const STATUS_DEVSEL_MEDIUM: u16 = 1 << 9; // DEVSEL# timing: medium

/// The 82441FX host bridge at 00.0: its configuration space plus the
/// D_LCK rule of the SMRAM register (datasheet 3.2.23).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I440fx {
    config: PciConfigSpace,
}

impl Default for I440fx {
    fn default() -> Self {
        Self::new()
    }
}

impl I440fx {
    /// The bridge at reset: memory and bus master always on, PAM all
    /// "DRAM disabled" (the BIOS ROM answers), SMRAM at 0xA0000 closed.
    pub fn new() -> Self {
        let mut c = PciConfigSpace::new(VENDOR_INTEL, DEVICE_I440FX, 0x02, [0x06, 0x00, 0x00]);
        c.init_u16(REG_COMMAND, CMD_MEM | CMD_MASTER);
        c.set_writable_u16(REG_COMMAND, CMD_PARITY | CMD_SERR);
        c.init_u16(REG_STATUS, STATUS_FAST_B2B | STATUS_DEVSEL_MEDIUM);
        // 0x50-0x58: PMCCFG, DETURBO, DBC, AXC, DRAMR, DRAMC, DRAMT: storage.
        c.set_writable(0x50, 9, 0xFF);
        c.set_writable(REG_PAM0, 1, PAM_MASK & 0xF0);
        c.set_writable(REG_PAM0 + 1, usize::from(REG_PAM6 - REG_PAM0), PAM_MASK);
        // 0x60-0x67 DRB, 0x68 FDHC, 0x70 MTT, 0x71 CLT: storage.
        c.set_writable(0x60, 9, 0xFF);
        c.set_writable(0x70, 2, 0xFF);
        c.init_u8(REG_SMRAM, SMRAM_RESET);
        // 0x90-0x93 ERRCMD, ERRSTS, TRC: storage.
        c.set_writable(0x90, 4, 0xFF);
        Self { config: c }
    }
}

impl PciFunction for I440fx {
    fn config(&self) -> &PciConfigSpace {
        &self.config
    }
    fn config_mut(&mut self) -> &mut PciConfigSpace {
        &mut self.config
    }
    fn write_config(&mut self, reg: u8, value: u8) {
        if reg != REG_SMRAM {
            self.config.write_u8(reg, value);
            return;
        }
        let old = self.config.read_u8(REG_SMRAM);
        let mut writable = SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME;
        if old & SMRAM_D_LCK != 0 {
            // Locked: D_OPEN reads 0 and stays so; D_LCK clears only at reset.
            writable &= !(SMRAM_D_OPEN | SMRAM_D_LCK);
        }
        let mut new = (old & !writable) | (value & writable);
        if new & SMRAM_D_LCK != 0 && old & SMRAM_D_LCK == 0 {
            new &= !SMRAM_D_OPEN;
        }
        self.config.init_u8(REG_SMRAM, new);
    }
}

/// The PIIX3 ISA bridge at 01.0 (multi-function: the PM function sits at
/// 01.3).
pub fn piix3_isa() -> PciConfigSpace {
    let mut c = PciConfigSpace::new(VENDOR_INTEL, DEVICE_PIIX3_ISA, 0x00, [0x06, 0x01, 0x00]);
    c.init_u16(REG_COMMAND, CMD_IO | CMD_MEM | CMD_MASTER);
    c.set_writable_u16(REG_COMMAND, CMD_SPECIAL | CMD_SERR);
    c.init_u16(REG_STATUS, STATUS_DEVSEL_MEDIUM);
    c.init_u8(REG_HEADER_TYPE, HEADER_MULTI_FUNCTION);
    // 0x4C IORT .. 0xAF: device-specific registers kept as plain storage.
    c.set_writable(0x4C, 0xB0 - 0x4C, 0xFF);
    c.set_writable(
        REG_PIRQRC,
        usize::from(PIRQ_COUNT),
        PIRQ_DISABLE | PIRQ_IRQ_MASK,
    );
    for (reg, value) in [
        (0x4C, 0x4D),       // IORT
        (0x4E, 0x03),       // XBCS: RTC and keyboard controller decode
        (REG_PIRQRC, 0x80), // PIRQA# .. PIRQD#: not routed
        (REG_PIRQRC + 1, 0x80),
        (REG_PIRQRC + 2, 0x80),
        (REG_PIRQRC + 3, 0x80),
        (REG_TOM, 0x02), // TOM: 1 MiB
        (0x70, 0x80),    // MBIRQ0: not routed
        (0x71, 0x80),    // MBIRQ1
        (0x76, 0x0C),    // MBDMA0
        (0x77, 0x0C),    // MBDMA1
        (0x78, 0x02),    // PCSC
    ] {
        c.init_u8(reg, value);
    }
    c
}

/// The PIIX4 power-management function at 01.3.
pub fn piix4_pm() -> PciConfigSpace {
    let mut c = PciConfigSpace::new(VENDOR_INTEL, DEVICE_PIIX4_PM, 0x03, [0x06, 0x80, 0x00]);
    c.set_writable_u16(REG_COMMAND, CMD_IO);
    c.init_u16(REG_STATUS, STATUS_DEVSEL_MEDIUM);
    c.init_u8(REG_INTERRUPT_PIN, 0x01); // INTA#
    c.set_writable(0x44, 0x100 - 0x44, 0xFF);
    c.init_u32(REG_PMBA, u32::from(PMBA_IO));
    c.set_writable_u32(REG_PMBA, u32::from(PMBA_ADDR_MASK));
    c.set_writable(REG_PMREGMISC, 1, PMIOSE);
    c.init_u32(REG_SMBBA, 1);
    c.set_writable_u32(REG_SMBBA, 0xFFF0);
    c
}

/// Decodes the 440FX PAM registers (datasheet 3.2.18) for `addr`: whether
/// reads and writes there go to DRAM (`true`) or to the PCI bus, where the
/// BIOS ROM or an option ROM answers. Addresses outside 0xC0000-0xFFFFF are
/// not under PAM control and report `(true, true)`.
pub fn pam_attributes(host: &PciConfigSpace, addr: u32) -> (bool, bool) {
    let attr = if (PAM_BIOS..PAM_END).contains(&addr) {
        host.read_u8(REG_PAM0) >> 4
    } else if (PAM_LOW..PAM_BIOS).contains(&addr) {
        let segment = (addr - PAM_LOW) / PAM_SEGMENT; // 0..=11
        let reg = host.read_u8(REG_PAM0 + 1 + (segment / 2) as u8);
        if segment.is_multiple_of(2) {
            reg & 0x0F
        } else {
            reg >> 4
        }
    } else {
        return (true, true);
    };
    (attr & PAM_READ != 0, attr & PAM_WRITE != 0)
}

/// The IRQ that PIRQ `n` (0 = PIRQA# .. 3 = PIRQD#) is routed to by the
/// PIIX3 PIRQRC registers, or `None` when it is disabled, `n` is out of
/// range or the programmed IRQ is a reserved one (0-2, 8, 13).
pub fn pirq_route(isa: &PciConfigSpace, n: u8) -> Option<u8> {
    if n >= PIRQ_COUNT {
        return None;
    }
    let reg = isa.read_u8(REG_PIRQRC + n);
    let irq = reg & PIRQ_IRQ_MASK;
    let reserved = matches!(irq, 0..=2 | 8 | 13);
    (reg & PIRQ_DISABLE == 0 && !reserved).then_some(irq)
}

/// The PIIX4 power-management I/O base, when PMREGMISC.PMIOSE enables it.
pub fn pm_io_base(pm: &PciConfigSpace) -> Option<u16> {
    let base = pm.read_u16(REG_PMBA) & PMBA_ADDR_MASK;
    (pm.read_u8(REG_PMREGMISC) & PMIOSE != 0).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pam_decoding_covers_every_segment() {
        let mut host = I440fx::new();
        assert_eq!(pam_attributes(host.config(), 0xF0000), (false, false));
        assert_eq!(pam_attributes(host.config(), 0x9FFFF), (true, true));
        assert_eq!(pam_attributes(host.config(), 0x100000), (true, true));
        host.write_config(REG_PAM0, 0xFF); // reserved bits stay clear
        assert_eq!(host.config().read_u8(REG_PAM0), 0x30);
        assert_eq!(pam_attributes(host.config(), 0xFFFFF), (true, true));
        // Each 16 KiB segment of 0xC0000-0xEFFFF gets its own nibble.
        for seg in 0..12u32 {
            let mut h = I440fx::new();
            let reg = REG_PAM0 + 1 + (seg / 2) as u8;
            let value = if seg % 2 == 0 { 0x01 } else { 0x20 };
            h.write_config(reg, value);
            let addr = PAM_LOW + seg * PAM_SEGMENT;
            let expect = if seg % 2 == 0 {
                (true, false)
            } else {
                (false, true)
            };
            assert_eq!(pam_attributes(h.config(), addr), expect, "segment {seg}");
            assert_eq!(pam_attributes(h.config(), addr + PAM_SEGMENT - 1), expect);
            let other = if seg == 0 {
                addr + PAM_SEGMENT
            } else {
                addr - 1
            };
            assert_eq!(pam_attributes(h.config(), other), (false, false));
        }
    }

    #[test]
    fn smram_lock_freezes_open() {
        let mut host = I440fx::new();
        assert_eq!(host.config().read_u8(REG_SMRAM), 0x02);
        host.write_config(REG_SMRAM, !SMRAM_D_LCK);
        assert_eq!(host.config().read_u8(REG_SMRAM), 0x6A); // reserved 7 and C_BASE_SEG kept
        host.write_config(REG_SMRAM, SMRAM_D_LCK | SMRAM_D_OPEN | SMRAM_G_SMRAME);
        assert_eq!(host.config().read_u8(REG_SMRAM), 0x1A);
        host.write_config(REG_SMRAM, SMRAM_D_OPEN);
        assert_eq!(host.config().read_u8(REG_SMRAM), 0x12);
    }

    #[test]
    fn pirq_routes() {
        let mut isa = piix3_isa();
        assert!((0..5).all(|n| pirq_route(&isa, n).is_none()));
        isa.write_u8(REG_PIRQRC, 0x0B);
        isa.write_u8(REG_PIRQRC + 3, 0x7F); // bits 6:4 reserved: reads 0x0F
        isa.write_u8(REG_PIRQRC + 2, 0x08); // IRQ 8 is reserved
        assert_eq!(isa.read_u8(REG_PIRQRC + 3), 0x0F);
        assert_eq!(pirq_route(&isa, 0), Some(11));
        assert_eq!(pirq_route(&isa, 1), None);
        assert_eq!(pirq_route(&isa, 2), None);
        assert_eq!(pirq_route(&isa, 3), Some(15));
        assert_eq!(pirq_route(&isa, 200), None);
    }

    #[test]
    fn pm_base_needs_pmiose() {
        let mut pm = piix4_pm();
        assert_eq!(pm_io_base(&pm), None);
        for (i, b) in 0x0000_B03Fu32.to_le_bytes().into_iter().enumerate() {
            pm.write_u8(REG_PMBA + i as u8, b);
        }
        assert_eq!(pm.read_u32(REG_PMBA), 0xB001);
        assert_eq!(pm_io_base(&pm), None);
        pm.write_u8(REG_PMREGMISC, 0xFF);
        assert_eq!(pm.read_u8(REG_PMREGMISC), 0x01);
        assert_eq!(pm_io_base(&pm), Some(0xB000));
    }
}
