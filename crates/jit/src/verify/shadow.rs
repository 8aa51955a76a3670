//! The bus the verifier's interpreter twin runs on: guest memory as it was
//! when the block started, and no devices.
//!
//! Reads of plain RAM see the real RAM with the block's writes undone
//! (from the [`super::journal::Journal`]), overlaid with the twin's own
//! writes, which are kept here and never reach the machine. Any access to
//! something else (MMIO, ROM, an I/O port, the interrupt controller) is
//! refused and noted: it reads as all ones and the write is dropped, so
//! the twin can never disturb a device. No interrupt is ever pending: a
//! block is entered only when none is deliverable, and nothing inside a
//! block that stays away from devices can change that.

use std::collections::{BTreeMap, HashMap};

use oxide86_cpu::Bus;

/// A byte the interpreter twin wrote.
#[derive(Clone, Copy, Debug)]
pub struct ShadowWrite {
    /// The value.
    pub value: u8,
    /// Its physical address.
    pub paddr: u32,
    /// The step (0-based) that wrote it last.
    pub step: usize,
}

/// See the module docs.
pub(crate) struct ShadowBus<'a, B: Bus> {
    /// The machine's bus, used only for its RAM and memory map.
    pub real: &'a mut B,
    /// RAM offset -> the value before the block ran, for bytes it wrote.
    pub undo: &'a HashMap<usize, u8>,
    /// The twin's writes, by RAM offset.
    pub writes: BTreeMap<usize, ShadowWrite>,
    /// The step being run (stamped on writes).
    pub step: usize,
    /// The first access to anything but plain RAM: `(what, address)`.
    pub device: Option<(&'static str, u32)>,
}

impl<'a, B: Bus> ShadowBus<'a, B> {
    /// A fresh view over `real` with the block's writes in `undo` undone.
    pub fn new(real: &'a mut B, undo: &'a HashMap<usize, u8>) -> Self {
        Self {
            real,
            undo,
            writes: BTreeMap::new(),
            step: 0,
            device: None,
        }
    }

    fn ram_offset(&mut self, addr: u32) -> Option<usize> {
        let base = self.real.ram_page_offset(addr)?;
        Some(base + (addr & 0xFFF) as usize)
    }

    fn refuse(&mut self, what: &'static str, addr: u32) {
        self.device.get_or_insert((what, addr));
    }
}

impl<B: Bus> Bus for ShadowBus<'_, B> {
    fn read_u8(&mut self, addr: u32) -> u8 {
        let Some(off) = self.ram_offset(addr) else {
            self.refuse("memory read", addr);
            return 0xFF;
        };
        if let Some(w) = self.writes.get(&off) {
            return w.value;
        }
        if let Some(&old) = self.undo.get(&off) {
            return old;
        }
        self.real
            .ram()
            .and_then(|r| r.get(off).copied())
            .unwrap_or(0xFF)
    }
    fn write_u8(&mut self, addr: u32, value: u8) {
        let Some(off) = self.ram_offset(addr) else {
            self.refuse("memory write", addr);
            return;
        };
        let step = self.step;
        self.writes.insert(
            off,
            ShadowWrite {
                value,
                paddr: addr,
                step,
            },
        );
    }
    fn ram(&mut self) -> Option<&mut [u8]> {
        None
    }
    fn ram_page_offset(&mut self, paddr: u32) -> Option<usize> {
        self.real.ram_page_offset(paddr)
    }
    fn memory_map_generation(&self) -> u64 {
        self.real.memory_map_generation()
    }
    fn io_read(&mut self, port: u16, _size: u8) -> u32 {
        self.refuse("port read", u32::from(port));
        u32::MAX
    }
    fn io_write(&mut self, port: u16, _size: u8, _value: u32) {
        self.refuse("port write", u32::from(port));
    }
    fn interrupt_ack(&mut self) -> Option<u8> {
        self.refuse("interrupt acknowledge", 0);
        None
    }
    fn apic_base_changed(&mut self, value: u64) {
        self.refuse("APIC base write", value as u32);
    }
    fn fpu_error(&mut self, asserted: bool) {
        self.refuse("FERR#", u32::from(asserted));
    }
}
