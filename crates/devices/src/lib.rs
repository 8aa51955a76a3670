//! oxide86's emulated devices, one module each. A device sees port accesses
//! (as offsets from its base), ticks of virtual time, and drives interrupt
//! lines; it never sees the CPU. This crate depends on no sibling, so a
//! device test needs only this crate.

#![forbid(unsafe_code)]

pub mod acpi_pm;
pub mod debug_exit;
pub mod debugcon;
pub mod fw_cfg;
pub mod i8042;
pub mod ioapic;
pub mod lapic;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod port92;
pub mod post;
pub mod rtc;
pub mod test_irq;
pub mod uart;

/// Port I/O as a device sees it: `offset` counts from the device's base port.
pub trait PortIo {
    /// An `IN` of one byte at `offset`.
    fn read(&mut self, offset: u16) -> u8;
    /// An `OUT` of one byte at `offset`.
    fn write(&mut self, offset: u16, value: u8);
}

/// One level-sensitive interrupt wire; the machine decides where it is routed.
pub trait IrqLine {
    /// Drives the wire high (asserted) or low.
    fn set_level(&mut self, high: bool);
}

/// An interrupt wire that goes nowhere (for devices whose line is unused).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoIrq;

impl IrqLine for NoIrq {
    fn set_level(&mut self, _high: bool) {}
}

/// Virtual time in the device's input-clock ticks; devices never read the
/// host clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Ticks(pub u64);
