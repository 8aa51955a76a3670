//! The APIC side of the PC's interrupt fabric: one processor's local APIC
//! and the I/O APIC, wired as on a 440FX board with a PIIX (Intel SDM Vol.
//! 3A, 10.1 "Local and I/O APIC Overview"; 82093AA datasheet).
//!
//! - The sixteen ISA lines reach I/O APIC pins 0-15, except that the PIT's
//!   IRQ0 arrives on pin 2 (the MADT reports that override, as every PC
//!   firmware does).
//! - I/O APIC messages go to the local APIC (there is one processor, so
//!   every fixed or lowest-priority message is for it).
//! - The 8259A's INTR reaches the CPU through LINT0 while LINT0 is unmasked
//!   (ExtINT, "virtual wire mode", SDM Vol. 3A, 10.5.1), or directly while
//!   IA32_APIC_BASE's global enable bit is clear.
//! - A guest EOI of a level-triggered vector is forwarded to the I/O APIC.
//! - The local APIC timer counts a 1 GHz bus clock (one tick per
//!   nanosecond of machine time).

use oxide86_devices::ioapic::{IoApic, IOAPIC_BASE};
use oxide86_devices::lapic::{Lapic, LAPIC_BASE, OFF_LVT_LINT0, OFF_LVT_LINT1, OFF_SVR};
use oxide86_devices::Ticks;

use crate::clock::TickConverter;

/// The local APIC timer's input clock.
pub const APIC_BUS_HZ: u64 = 1_000_000_000;

/// The I/O APIC's register window is one 4 KiB page (only 0x00 and 0x10
/// decode).
const IOAPIC_PAGE: u32 = IOAPIC_BASE;

/// Delivery modes an I/O APIC entry may carry.
const DELIVERY_FIXED: u8 = 0;
const DELIVERY_LOWEST: u8 = 1;
const DELIVERY_NMI: u8 = 4;

/// The local APIC and I/O APIC with the wiring between them.
#[derive(Debug)]
pub struct Apics {
    /// The processor's local APIC.
    pub lapic: Lapic,
    /// The I/O APIC (ID 1).
    pub ioapic: IoApic,
    /// IA32_APIC_BASE bits 12-31: where the local APIC's page is.
    lapic_page: u32,
    /// IA32_APIC_BASE bit 11: the local APIC is on at all.
    enabled: bool,
    /// An NMI message arrived from the I/O APIC.
    nmi: bool,
    clock: TickConverter,
}

impl Default for Apics {
    fn default() -> Self {
        Self::new()
    }
}

/// The I/O APIC pin an ISA line reaches.
fn isa_pin(line: u8) -> u8 {
    if line == 0 {
        2
    } else {
        line
    }
}

impl Apics {
    /// Both APICs in their RESET state, the local one enabled at 0xFEE00000.
    pub fn new() -> Self {
        Self {
            lapic: Lapic::new(0),
            ioapic: IoApic::new(1),
            lapic_page: LAPIC_BASE,
            enabled: true,
            nmi: false,
            clock: TickConverter::new(APIC_BUS_HZ),
        }
    }

    /// Back to RESET (machine time keeps running: the timer's clock is kept).
    pub fn reset(&mut self) {
        let clock = self.clock;
        *self = Self::new();
        self.clock = clock;
    }

    /// The state firmware leaves for an OS loaded directly (as SeaBIOS
    /// does): the local APIC software-enabled with spurious vector 0xFF,
    /// LINT0 in ExtINT mode so the 8259A's interrupts pass through, LINT1
    /// as NMI (MP specification 1.4, 3.6.2.2 "Virtual Wire Mode").
    pub fn virtual_wire_mode(&mut self) {
        self.lapic.write(OFF_SVR, 0x1FF);
        self.lapic.write(OFF_LVT_LINT0, 0x700);
        self.lapic.write(OFF_LVT_LINT1, 0x400);
    }

    /// The CPU wrote IA32_APIC_BASE.
    pub fn set_base_msr(&mut self, value: u64) {
        self.lapic_page = (value as u32) & 0xFFFF_F000;
        let enabled = value & (1 << 11) != 0;
        if self.enabled && !enabled {
            // Clearing the global enable resets the APIC's state (SDM Vol.
            // 3A, 10.4.3).
            self.lapic = Lapic::new(0);
        }
        self.enabled = enabled;
    }

    /// Whether `addr` falls in a register page this fabric decodes.
    #[inline]
    pub fn claims(&self, addr: u32) -> bool {
        let page = addr & 0xFFFF_F000;
        (self.enabled && page == self.lapic_page) || page == IOAPIC_PAGE
    }

    /// A 32-bit MMIO read (the address is dword aligned).
    pub fn mmio_read(&mut self, addr: u32) -> u32 {
        let page = addr & 0xFFFF_F000;
        if self.enabled && page == self.lapic_page {
            self.lapic.read(addr & 0xFF0)
        } else {
            self.ioapic.read(addr & 0xFF0)
        }
    }

    /// A 32-bit MMIO write (the address is dword aligned).
    pub fn mmio_write(&mut self, addr: u32, value: u32) {
        let page = addr & 0xFFFF_F000;
        if self.enabled && page == self.lapic_page {
            self.lapic.write(addr & 0xFF0, value);
            while let Some(vector) = self.lapic.eoi_broadcast() {
                self.ioapic.end_of_interrupt(vector);
            }
        } else {
            self.ioapic.write(addr & 0xFF0, value);
        }
        self.route_ioapic_messages();
    }

    /// An ISA interrupt line changed level.
    pub fn isa_line(&mut self, line: u8, high: bool) {
        self.ioapic.set_irq(isa_pin(line), high);
        self.route_ioapic_messages();
    }

    /// Hands the I/O APIC's messages to the local APIC.
    fn route_ioapic_messages(&mut self) {
        for m in self.ioapic.take_interrupts() {
            match m.delivery_mode {
                DELIVERY_FIXED | DELIVERY_LOWEST if self.enabled => {
                    self.lapic.accept_interrupt(m.vector, m.level_triggered)
                }
                DELIVERY_NMI => self.nmi = true,
                // SMI, INIT, ExtINT and reserved modes reach nothing here.
                _ => {}
            }
        }
    }

    /// Takes an NMI the I/O APIC sent.
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.nmi)
    }

    /// Whether the 8259A's INTR reaches the CPU.
    #[inline]
    pub fn passes_pic(&self) -> bool {
        !self.enabled || self.lapic.lint0_extint()
    }

    /// Whether the local APIC asks for an interrupt.
    #[inline]
    pub fn interrupt_output(&self) -> bool {
        self.enabled && self.lapic.interrupt_output()
    }

    /// Advances the local APIC timer to `now_ns`.
    pub fn advance_to(&mut self, now_ns: u64) {
        let ticks = self.clock.advance_to(now_ns);
        if ticks > 0 && self.enabled {
            self.lapic.tick(Ticks(ticks));
        }
    }

    /// Nanoseconds until the local APIC timer next fires.
    pub fn ns_until_next_event(&self) -> Option<u64> {
        if !self.enabled {
            return None;
        }
        self.lapic
            .ticks_until_next_irq()
            .map(|t| self.clock.ns_for_ticks(t.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxide86_devices::ioapic::{OFF_IOREGSEL, OFF_IOWIN};
    use oxide86_devices::lapic::OFF_EOI;

    #[test]
    fn isa_irq0_arrives_on_pin_2_and_level_eoi_reaches_the_ioapic() {
        let mut a = Apics::new();
        a.virtual_wire_mode();
        // Pin 2: vector 0x30, edge. Pin 9: vector 0x39, level, active high.
        a.mmio_write(IOAPIC_BASE + OFF_IOREGSEL, 0x10 + 2 * 2);
        a.mmio_write(IOAPIC_BASE + OFF_IOWIN, 0x30);
        a.mmio_write(IOAPIC_BASE + OFF_IOREGSEL, 0x10 + 2 * 9);
        a.mmio_write(IOAPIC_BASE + OFF_IOWIN, 0x8039);
        a.isa_line(0, true);
        assert!(a.interrupt_output());
        assert_eq!(a.lapic.acknowledge(), 0x30);
        a.mmio_write(LAPIC_BASE + OFF_EOI, 0);
        assert!(!a.interrupt_output());
        a.isa_line(9, true);
        assert_eq!(a.lapic.acknowledge(), 0x39);
        // Still asserted at EOI: the I/O APIC sends it again.
        a.mmio_write(LAPIC_BASE + OFF_EOI, 0);
        assert!(a.interrupt_output());
    }

    #[test]
    fn the_pic_passes_through_lint0_or_a_disabled_apic() {
        let mut a = Apics::new();
        assert!(!a.passes_pic(), "LINT0 is masked at RESET");
        a.virtual_wire_mode();
        assert!(a.passes_pic());
        a.set_base_msr(0xFEE0_0000 | (1 << 8)); // global enable clear
        assert!(a.passes_pic());
        assert!(!a.claims(LAPIC_BASE));
        assert!(a.claims(IOAPIC_BASE));
    }
}
