//! The PC board: physical memory plus the devices on the I/O bus, as the
//! CPU sees them through [`oxide86_cpu::Bus`]. Port decoding is one `match`
//! on port ranges, so the path from an `IN`/`OUT` to a device is a jump.

use oxide86_cpu::Bus;
use oxide86_devices::acpi_pm::{AcpiPm, ACPI_PM_BASE, ACPI_PM_LEN};
use oxide86_devices::debug_exit::{DebugExit, DEBUG_EXIT_PORT};
use oxide86_devices::debugcon::{DebugCon, DEBUGCON_PORT};
use oxide86_devices::port92::{Port92, PORT92};
use oxide86_devices::PortIo;

use crate::memory_map::PhysMemory;

/// Where the bytes of the debug console go.
pub trait ConsoleSink: std::fmt::Debug {
    /// Called with each byte the guest writes to port 0xE9.
    fn byte(&mut self, b: u8);
}

/// Memory and devices.
#[derive(Debug)]
pub struct PcBoard {
    /// RAM, ROM and the A20 gate.
    pub memory: PhysMemory,
    /// Port 0xE9.
    pub debugcon: DebugCon,
    /// Where port-0xE9 bytes go besides `debugcon.output` (if anywhere).
    pub debugcon_sink: Option<Box<dyn ConsoleSink>>,
    /// Port 0xF4.
    pub debug_exit: DebugExit,
    /// Port 0x92 (fast A20 and reset).
    pub port92: Port92,
    /// The PIIX4 power-management block (poweroff).
    pub acpi_pm: AcpiPm,
}

impl PcBoard {
    /// A board around `memory` with every device in its power-on state.
    pub fn new(memory: PhysMemory) -> Self {
        Self {
            memory,
            debugcon: DebugCon::default(),
            debugcon_sink: None,
            debug_exit: DebugExit::default(),
            port92: Port92::default(),
            acpi_pm: AcpiPm::default(),
        }
    }

    fn port_read(&mut self, port: u16) -> u8 {
        match port {
            DEBUGCON_PORT => self.debugcon.read(0),
            DEBUG_EXIT_PORT => self.debug_exit.read(0),
            PORT92 => self.port92.read(0),
            p if (ACPI_PM_BASE..ACPI_PM_BASE + ACPI_PM_LEN).contains(&p) => {
                self.acpi_pm.read(p - ACPI_PM_BASE)
            }
            _ => 0xFF,
        }
    }

    fn port_write(&mut self, port: u16, value: u8) {
        match port {
            DEBUGCON_PORT => {
                if let Some(s) = self.debugcon_sink.as_mut() {
                    s.byte(value);
                } else {
                    self.debugcon.write(0, value);
                }
            }
            DEBUG_EXIT_PORT => self.debug_exit.write(0, value),
            PORT92 => {
                self.port92.write(0, value);
                self.memory.set_a20(self.port92.a20());
            }
            p if (ACPI_PM_BASE..ACPI_PM_BASE + ACPI_PM_LEN).contains(&p) => {
                self.acpi_pm.write(p - ACPI_PM_BASE, value)
            }
            _ => {}
        }
    }
}

impl Bus for PcBoard {
    #[inline]
    fn read_u8(&mut self, addr: u32) -> u8 {
        self.memory.read_u8(addr)
    }
    #[inline]
    fn write_u8(&mut self, addr: u32, value: u8) {
        self.memory.write_u8(addr, value)
    }
    #[inline]
    fn read_u32(&mut self, addr: u32) -> u32 {
        self.memory.read_u32(addr)
    }
    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        let mut v = 0;
        for i in 0..u16::from(size) {
            v |= u32::from(self.port_read(port.wrapping_add(i))) << (8 * i);
        }
        v
    }
    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        for i in 0..u16::from(size) {
            self.port_write(port.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }
}
