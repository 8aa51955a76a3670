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

use std::collections::BTreeMap;

use oxide86_cpu::Bus;

use super::journal::Undo;

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
    pub undo: &'a Undo,
    /// The twin's writes, by RAM offset.
    pub writes: BTreeMap<usize, ShadowWrite>,
    /// The step being run (stamped on writes).
    pub step: usize,
    /// The first access to anything but plain RAM: `(what, address)`.
    pub device: Option<(&'static str, u32)>,
}

impl<'a, B: Bus> ShadowBus<'a, B> {
    /// A fresh view over `real` with the block's writes in `undo` undone.
    pub fn new(real: &'a mut B, undo: &'a Undo) -> Self {
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

impl<B: Bus> ShadowBus<'_, B> {
    /// Reads `N` bytes at `addr` (within one page, as the CPU issues them).
    fn read<const N: usize>(&mut self, addr: u32) -> [u8; N] {
        let Some(off) = self.ram_offset(addr) else {
            self.refuse("memory read", addr);
            return [0xFF; N];
        };
        let mut out = [0xFF; N];
        if let Some(bytes) = self.real.ram().and_then(|r| r.get(off..off + N)) {
            out.copy_from_slice(bytes);
        }
        self.undo.apply(off, &mut out);
        for (&o, w) in self.writes.range(off..off + N) {
            out[o - off] = w.value;
        }
        out
    }

    /// Keeps a write of `bytes` at `addr` aside.
    fn write(&mut self, addr: u32, bytes: &[u8]) {
        let Some(off) = self.ram_offset(addr) else {
            self.refuse("memory write", addr);
            return;
        };
        let step = self.step;
        for (i, &value) in bytes.iter().enumerate() {
            let w = ShadowWrite {
                value,
                paddr: addr.wrapping_add(i as u32),
                step,
            };
            self.writes.insert(off + i, w);
        }
    }
}

impl<B: Bus> Bus for ShadowBus<'_, B> {
    fn read_u8(&mut self, addr: u32) -> u8 {
        self.read::<1>(addr)[0]
    }
    fn read_u16(&mut self, addr: u32) -> u16 {
        u16::from_le_bytes(self.read(addr))
    }
    fn read_u32(&mut self, addr: u32) -> u32 {
        u32::from_le_bytes(self.read(addr))
    }
    fn write_u8(&mut self, addr: u32, value: u8) {
        self.write(addr, &[value]);
    }
    fn write_u16(&mut self, addr: u32, value: u16) {
        self.write(addr, &value.to_le_bytes());
    }
    fn write_u32(&mut self, addr: u32, value: u32) {
        self.write(addr, &value.to_le_bytes());
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
