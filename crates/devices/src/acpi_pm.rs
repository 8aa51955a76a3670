//! The PIIX4 power-management block's ACPI fixed registers (Intel 82371AB
//! datasheet, 7.2 "Power Management I/O Space"; ACPI 6.4, 4.8.3 "PM1
//! Event/Control Registers"): PM1 status, enable and control. A write of
//! SLP_EN with the sleep type of S5 asks the machine to power off.
//!
//! Offsets from the block's base: 0-1 PM1_STS, 2-3 PM1_EN, 4-5 PM1_CNT,
//! 8-11 PM_TMR (the 24-bit ACPI power-management timer at 3.579545 MHz,
//! ACPI 6.4, 4.8.3.3).

use crate::{PortIo, Ticks};

/// The I/O base QEMU's PIIX4 uses (the ACPI tables report it).
pub const ACPI_PM_BASE: u16 = 0x600;
/// Bytes of I/O space the block decodes here.
pub const ACPI_PM_LEN: u16 = 12;
/// The PM timer's input clock.
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// The SLP_TYP value our DSDT's `_S5` object gives.
pub const SLP_TYP_S5: u16 = 0;

const REG_PM1_STS: u16 = 0;
const REG_PM1_EN: u16 = 2;
const REG_PM1_CNT: u16 = 4;
const REG_PM_TMR: u16 = 8;
const SLP_EN: u16 = 1 << 13; // write-only: enter the sleep state
const SLP_TYP_SHIFT: u16 = 10;

/// The PM1 registers and the power-off request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AcpiPm {
    status: u16,
    enable: u16,
    control: u16,
    poweroff: bool,
    /// The free-running PM timer (24 bits used).
    timer: u32,
}

impl AcpiPm {
    /// Whether the guest asked for S5 (soft off).
    pub fn poweroff_requested(&self) -> bool {
        self.poweroff
    }

    fn reg(&mut self, offset: u16) -> Option<&mut u16> {
        match offset & !1 {
            REG_PM1_STS => Some(&mut self.status),
            REG_PM1_EN => Some(&mut self.enable),
            REG_PM1_CNT => Some(&mut self.control),
            _ => None,
        }
    }
}

impl PortIo for AcpiPm {
    fn read(&mut self, offset: u16) -> u8 {
        if (REG_PM_TMR..REG_PM_TMR + 4).contains(&offset) {
            return (self.timer >> (8 * (offset - REG_PM_TMR))) as u8;
        }
        let shift = 8 * (offset & 1);
        self.reg(offset).map_or(0xFF, |r| (*r >> shift) as u8)
    }
    fn write(&mut self, offset: u16, value: u8) {
        let shift = 8 * (offset & 1);
        let Some(r) = self.reg(offset) else { return };
        let mut v = (*r & !(0xFF << shift)) | (u16::from(value) << shift);
        match offset & !1 {
            // Status bits are write-one-to-clear.
            REG_PM1_STS => v = self.status & !(u16::from(value) << shift),
            REG_PM1_CNT => {
                if v & SLP_EN != 0 && (v >> SLP_TYP_SHIFT) & 7 == SLP_TYP_S5 {
                    self.poweroff = true;
                }
                v &= !SLP_EN;
            }
            _ => {}
        }
        if let Some(r) = self.reg(offset) {
            *r = v;
        }
    }
}

impl AcpiPm {
    /// Advances the PM timer by `ticks` of its 3.579545 MHz clock.
    pub fn tick(&mut self, ticks: Ticks) {
        self.timer = (u64::from(self.timer).wrapping_add(ticks.0) & 0xFF_FFFF) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s5_sleep_powers_off() {
        let mut pm = AcpiPm::default();
        // 16-bit write of SLP_TYP = 0, SLP_EN as two byte writes.
        pm.write(REG_PM1_CNT, 0x00);
        assert!(!pm.poweroff_requested());
        pm.write(REG_PM1_CNT + 1, (SLP_EN >> 8) as u8);
        assert!(pm.poweroff_requested());
    }

    #[test]
    fn pm_timer_counts_24_bits() {
        let mut pm = AcpiPm::default();
        pm.tick(Ticks(0xFF_FFFE));
        pm.tick(Ticks(3));
        let v = u32::from_le_bytes([pm.read(8), pm.read(9), pm.read(10), pm.read(11)]);
        assert_eq!(v, 1);
    }

    #[test]
    fn other_sleep_types_do_not() {
        let mut pm = AcpiPm::default();
        pm.write(
            REG_PM1_CNT + 1,
            ((SLP_EN | (5 << SLP_TYP_SHIFT)) >> 8) as u8,
        );
        assert!(!pm.poweroff_requested());
    }
}
