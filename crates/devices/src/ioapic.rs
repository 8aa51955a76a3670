//! The Intel 82093AA I/O APIC, memory-mapped at 0xFEC00000, with 24
//! interrupt input pins.
//!
//! Sections named below are those of the Intel 82093AA I/O Advanced
//! Programmable Interrupt Controller datasheet (order number 290566):
//! "Register Description" (IOREGSEL at offset 0x00 and IOWIN at 0x10 select
//! and reach the indirect registers IOAPICID, IOAPICVER, IOAPICARB and the
//! redirection table at 0x10-0x3F) and "IOREDTBL[23:0]" (vector, delivery
//! mode, destination mode, delivery status, pin polarity, remote IRR,
//! trigger mode, mask and destination of each entry).
//!
//! Pins are driven with [`IoApic::set_irq`]. An edge-triggered entry sends
//! its interrupt on the rising edge of the (polarity-corrected) input; an
//! edge that arrives while the entry is masked is lost. A level-triggered
//! entry sends while the input is asserted and remote IRR is clear, and sets
//! remote IRR; [`IoApic::end_of_interrupt`] (the local APIC's EOI for that
//! vector, forwarded by the machine) clears it and sends again if the input
//! is still asserted. Messages queue up for the machine to hand to the local
//! APIC ([`IoApic::take_interrupts`]); delivery is immediate, so delivery
//! status always reads idle.
//!
//! ```
//! use oxide86_devices::ioapic::{IoApic, OFF_IOREGSEL, OFF_IOWIN};
//!
//! let mut io = IoApic::new(0);
//! io.write(OFF_IOREGSEL, 0x10 + 2 * 4); // entry 4, low dword
//! io.write(OFF_IOWIN, 0x34); // vector 0x34, fixed, edge, active high, unmasked
//! io.set_irq(4, true);
//! let sent = io.take_interrupts();
//! assert_eq!(sent.len(), 1);
//! assert_eq!(sent[0].vector, 0x34);
//! ```

/// The physical address of the register window at reset.
pub const IOAPIC_BASE: u32 = 0xFEC0_0000;

/// Offset of IOREGSEL, the index of the register IOWIN reaches.
pub const OFF_IOREGSEL: u32 = 0x00;
/// Offset of IOWIN, the data window.
pub const OFF_IOWIN: u32 = 0x10;

/// Index of IOAPICID (ID in bits 24-27).
pub const REG_ID: u8 = 0x00;
/// Index of IOAPICVER (read only).
pub const REG_VERSION: u8 = 0x01;
/// Index of IOAPICARB (read only: arbitration ID in bits 24-27).
pub const REG_ARB: u8 = 0x02;
/// Index of redirection entry 0's low dword; entry n's is 0x10 + 2n, its high dword the next.
pub const REG_REDTBL: u8 = 0x10;

/// The number of input pins and redirection entries.
pub const PINS: usize = 24;
/// IOAPICVER: version 0x11, maximum redirection entry 23.
const VERSION: u32 = 0x0017_0011;
/// The ID and arbitration ID fields (bits 24-27).
const ID_MASK: u32 = 0x0F00_0000;

/// Entry bits 8-10: delivery mode.
const RTE_DELIVERY_MODE: u64 = 7 << 8;
/// Entry bit 11: logical destination mode.
const RTE_LOGICAL: u64 = 1 << 11;
/// Entry bit 13: the input is active low.
const RTE_ACTIVE_LOW: u64 = 1 << 13;
/// Entry bit 14: remote IRR (read only), set while a level interrupt is in service.
const RTE_REMOTE_IRR: u64 = 1 << 14;
/// Entry bit 15: level-triggered.
const RTE_LEVEL: u64 = 1 << 15;
/// Entry bit 16: masked.
const RTE_MASKED: u64 = 1 << 16;
/// The bits the guest can write: vector, delivery mode, destination mode,
/// polarity, trigger mode, mask and the destination (bits 56-63).
const RTE_WRITABLE: u64 = 0xFF00_0000_0001_AFFF;

/// One interrupt message for the local APIC(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApicInterrupt {
    /// The vector.
    pub vector: u8,
    /// Whether the entry is level-triggered (the local APIC sets its TMR bit and broadcasts the EOI).
    pub level_triggered: bool,
    /// The destination field (an APIC ID, or a logical set when `logical`).
    pub destination: u8,
    /// Logical (rather than physical) destination mode.
    pub logical: bool,
    /// The delivery mode (0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT).
    pub delivery_mode: u8,
}

/// Everything a snapshot needs: plain data, no handles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoApicState {
    /// IOAPICID (bits 24-27).
    pub id: u32,
    /// IOREGSEL.
    pub regsel: u8,
    /// The redirection table.
    pub redirection: [u64; PINS],
    /// The raw level of each input pin (bit n: pin n), before polarity.
    pub pins: u32,
    /// Messages sent and not yet taken by the machine.
    pub pending: Vec<IoApicInterrupt>,
}

impl IoApicState {
    /// The state after RESET: every entry masked.
    pub fn reset(id: u8) -> Self {
        Self {
            id: (u32::from(id) << 24) & ID_MASK,
            regsel: 0,
            redirection: [RTE_MASKED; PINS],
            pins: 0,
            pending: Vec::new(),
        }
    }
}

impl Default for IoApicState {
    fn default() -> Self {
        Self::reset(0)
    }
}

/// The 82093AA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoApic {
    state: IoApicState,
}

impl IoApic {
    /// An I/O APIC with ID `id` (0-15) after RESET.
    pub fn new(id: u8) -> Self {
        Self::from_state(IoApicState::reset(id))
    }

    /// Builds the I/O APIC from a snapshot.
    pub fn from_state(mut state: IoApicState) -> Self {
        state.id &= ID_MASK;
        state.pins &= (1 << PINS) - 1;
        for entry in &mut state.redirection {
            *entry &= RTE_WRITABLE | RTE_REMOTE_IRR;
        }
        Self { state }
    }

    /// The snapshot state.
    pub fn state(&self) -> &IoApicState {
        &self.state
    }

    /// The raw entry for `pin` (for debuggers), or `None` past pin 23.
    pub fn redirection_entry(&self, pin: u8) -> Option<u64> {
        self.state.redirection.get(usize::from(pin)).copied()
    }

    /// Whether `pin`'s input is asserted, taking the entry's polarity into account.
    fn asserted(&self, pin: usize) -> bool {
        let level = self.state.pins & (1 << pin) != 0;
        level != (self.state.redirection[pin] & RTE_ACTIVE_LOW != 0)
    }

    /// Sends `pin`'s interrupt message.
    fn send(&mut self, pin: usize) {
        let entry = self.state.redirection[pin];
        let level_triggered = entry & RTE_LEVEL != 0;
        if level_triggered {
            self.state.redirection[pin] |= RTE_REMOTE_IRR;
        }
        // Bounded: a machine that never drains the queue cannot make it grow forever.
        if self.state.pending.len() >= 1024 {
            self.state.pending.remove(0);
        }
        self.state.pending.push(IoApicInterrupt {
            vector: entry as u8,
            level_triggered,
            destination: (entry >> 56) as u8,
            logical: entry & RTE_LOGICAL != 0,
            delivery_mode: ((entry & RTE_DELIVERY_MODE) >> 8) as u8,
        });
    }

    /// Sends a level-triggered pin's message if it is asserted, unmasked and not in service.
    fn service_level(&mut self, pin: usize) {
        let entry = self.state.redirection[pin];
        if entry & RTE_LEVEL != 0
            && entry & (RTE_MASKED | RTE_REMOTE_IRR) == 0
            && self.asserted(pin)
        {
            self.send(pin);
        }
    }

    /// Drives input `pin` (0-23) to `level` (the wire's electrical level;
    /// the entry's polarity says which level is asserted). Pins past 23 are ignored.
    pub fn set_irq(&mut self, pin: u8, level: bool) {
        let pin = usize::from(pin);
        if pin >= PINS {
            return;
        }
        let was = self.asserted(pin);
        if level {
            self.state.pins |= 1 << pin;
        } else {
            self.state.pins &= !(1 << pin);
        }
        let entry = self.state.redirection[pin];
        if entry & RTE_LEVEL != 0 {
            self.service_level(pin);
        } else if !was && self.asserted(pin) && entry & RTE_MASKED == 0 {
            self.send(pin);
        }
    }

    /// The EOI message for `vector` (the local APIC's EOI of a
    /// level-triggered vector): clears remote IRR in every level-triggered
    /// entry with that vector, sending again from any still asserted.
    pub fn end_of_interrupt(&mut self, vector: u8) {
        for pin in 0..PINS {
            let entry = self.state.redirection[pin];
            if entry & RTE_LEVEL != 0 && entry as u8 == vector && entry & RTE_REMOTE_IRR != 0 {
                self.state.redirection[pin] &= !RTE_REMOTE_IRR;
                self.service_level(pin);
            }
        }
    }

    /// The messages sent since the last call, oldest first.
    pub fn take_interrupts(&mut self) -> Vec<IoApicInterrupt> {
        std::mem::take(&mut self.state.pending)
    }

    fn read_register(&self, index: u8) -> u32 {
        match index {
            REG_ID => self.state.id,
            REG_VERSION => VERSION,
            REG_ARB => self.state.id, // the arbitration ID is loaded from the ID
            0x10..=0x3F => {
                let entry = self.state.redirection[usize::from((index - REG_REDTBL) / 2)];
                if index & 1 == 0 {
                    entry as u32
                } else {
                    (entry >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_register(&mut self, index: u8, value: u32) {
        match index {
            REG_ID => self.state.id = value & ID_MASK,
            0x10..=0x3F => {
                let pin = usize::from((index - REG_REDTBL) / 2);
                let old = self.state.redirection[pin];
                let (half, shift) = if index & 1 == 0 {
                    (0xFFFF_FFFFu64, 0)
                } else {
                    (0xFFFF_FFFF_0000_0000, 32)
                };
                let written = (u64::from(value) << shift) & half & RTE_WRITABLE;
                let mut entry = (old & !(half & RTE_WRITABLE)) | written;
                if entry & RTE_LEVEL == 0 {
                    entry &= !RTE_REMOTE_IRR; // remote IRR is undefined for edge entries
                }
                self.state.redirection[pin] = entry;
                // Unmasking (or switching to level) an asserted level input sends it.
                self.service_level(pin);
            }
            _ => {} // version, arbitration and unmapped registers are read only
        }
    }

    /// A 32-bit read at `offset` from the base.
    pub fn read(&mut self, offset: u32) -> u32 {
        match offset {
            OFF_IOREGSEL => u32::from(self.state.regsel),
            OFF_IOWIN => self.read_register(self.state.regsel),
            _ => 0,
        }
    }

    /// A 32-bit write of `value` at `offset` from the base.
    pub fn write(&mut self, offset: u32, value: u32) {
        match offset {
            OFF_IOREGSEL => self.state.regsel = value as u8,
            OFF_IOWIN => self.write_register(self.state.regsel, value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_reg(io: &mut IoApic, index: u8, value: u32) {
        io.write(OFF_IOREGSEL, u32::from(index));
        io.write(OFF_IOWIN, value);
    }

    fn read_reg(io: &mut IoApic, index: u8) -> u32 {
        io.write(OFF_IOREGSEL, u32::from(index));
        io.read(OFF_IOWIN)
    }

    /// Linux's `ioapic_write_entry`: high dword first, then low.
    fn program(io: &mut IoApic, pin: u8, low: u32, dest: u8) {
        write_reg(io, REG_REDTBL + 2 * pin + 1, u32::from(dest) << 24);
        write_reg(io, REG_REDTBL + 2 * pin, low);
    }

    const LEVEL: u32 = RTE_LEVEL as u32;
    const ACTIVE_LOW: u32 = RTE_ACTIVE_LOW as u32;
    const MASKED: u32 = RTE_MASKED as u32;
    const REMOTE_IRR: u32 = RTE_REMOTE_IRR as u32;

    #[test]
    fn identification_registers() {
        let mut io = IoApic::new(2);
        assert_eq!(read_reg(&mut io, REG_ID), 2 << 24);
        assert_eq!(read_reg(&mut io, REG_VERSION), 0x0017_0011);
        assert_eq!((read_reg(&mut io, REG_VERSION) >> 16) & 0xFF, 23);
        assert_eq!(read_reg(&mut io, REG_ARB), 2 << 24);
        write_reg(&mut io, REG_ID, 0xFFFF_FFFF);
        assert_eq!(read_reg(&mut io, REG_ID), 0x0F00_0000);
        write_reg(&mut io, REG_VERSION, 0);
        assert_eq!(read_reg(&mut io, REG_VERSION), 0x0017_0011);
        assert_eq!(io.read(OFF_IOREGSEL), u32::from(REG_VERSION));
        assert_eq!(read_reg(&mut io, 0x40), 0);
        for pin in 0..24 {
            assert_eq!(read_reg(&mut io, REG_REDTBL + 2 * pin), MASKED);
        }
    }

    #[test]
    fn linux_redirection_programming() {
        let mut io = IoApic::new(0);
        // Mask everything first, as clear_IO_APIC does.
        for pin in 0..24 {
            write_reg(&mut io, REG_REDTBL + 2 * pin, MASKED);
        }
        io.set_irq(9, true); // the SCI wire idles high (active low)
        program(&mut io, 2, 0x30, 0); // the timer behind IRQ0, edge, active high
        program(&mut io, 9, 0x39 | LEVEL | ACTIVE_LOW | (1 << 11), 1); // SCI, logical
        assert_eq!(read_reg(&mut io, REG_REDTBL + 4), 0x30);
        assert_eq!(read_reg(&mut io, REG_REDTBL + 19), 1 << 24);
        assert_eq!(
            read_reg(&mut io, REG_REDTBL + 18),
            0x39 | LEVEL | ACTIVE_LOW | (1 << 11)
        );
        // Read-only bits are not writable.
        write_reg(&mut io, REG_REDTBL + 6, 0xFFFF_FFFF);
        assert_eq!(read_reg(&mut io, REG_REDTBL + 6), 0x0001_AFFF);
        assert_eq!(io.redirection_entry(3), Some(0x0001_AFFF));
        assert_eq!(io.redirection_entry(24), None);
        // The level input idles high (active low): nothing sent.
        assert!(io.take_interrupts().is_empty());
        io.set_irq(9, false);
        let sent = io.take_interrupts();
        assert_eq!(
            sent,
            vec![IoApicInterrupt {
                vector: 0x39,
                level_triggered: true,
                destination: 1,
                logical: true,
                delivery_mode: 0
            }]
        );
    }

    #[test]
    fn edge_pin_rising_edges_only() {
        let mut io = IoApic::new(0);
        program(&mut io, 4, 0x34, 0);
        io.set_irq(4, true);
        io.set_irq(4, true); // no new edge
        assert_eq!(io.take_interrupts().len(), 1);
        io.set_irq(4, false);
        assert!(io.take_interrupts().is_empty());
        io.set_irq(4, true);
        let sent = io.take_interrupts();
        assert_eq!(sent.len(), 1);
        assert!(!sent[0].level_triggered);
        // Edge entries never set remote IRR, and EOI does nothing.
        assert_eq!(read_reg(&mut io, REG_REDTBL + 8) & REMOTE_IRR, 0);
        io.end_of_interrupt(0x34);
        assert!(io.take_interrupts().is_empty());
    }

    #[test]
    fn active_low_edge() {
        let mut io = IoApic::new(0);
        io.set_irq(5, true); // idle high
        program(&mut io, 5, 0x35 | ACTIVE_LOW, 0);
        assert!(io.take_interrupts().is_empty());
        io.set_irq(5, false); // falling wire = asserted
        assert_eq!(io.take_interrupts().len(), 1);
    }

    #[test]
    fn level_pin_remote_irr_and_eoi() {
        let mut io = IoApic::new(0);
        program(&mut io, 10, 0x3A | LEVEL, 0);
        io.set_irq(10, true);
        assert_eq!(io.take_interrupts().len(), 1);
        assert_ne!(read_reg(&mut io, REG_REDTBL + 20) & REMOTE_IRR, 0);
        // Still asserted but in service: nothing more.
        io.set_irq(10, true);
        assert!(io.take_interrupts().is_empty());
        // EOI while still asserted: delivered again.
        io.end_of_interrupt(0x3A);
        let sent = io.take_interrupts();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].level_triggered);
        // Deassert, then EOI: remote IRR clears, nothing sent.
        io.set_irq(10, false);
        io.end_of_interrupt(0x3A);
        assert!(io.take_interrupts().is_empty());
        assert_eq!(read_reg(&mut io, REG_REDTBL + 20) & REMOTE_IRR, 0);
        // Another vector's EOI does not touch it.
        io.set_irq(10, true);
        assert_eq!(io.take_interrupts().len(), 1);
        io.end_of_interrupt(0x3B);
        assert_ne!(read_reg(&mut io, REG_REDTBL + 20) & REMOTE_IRR, 0);
        // Remote IRR is read only: writing the entry keeps it.
        write_reg(&mut io, REG_REDTBL + 20, 0x3A | LEVEL);
        assert_ne!(read_reg(&mut io, REG_REDTBL + 20) & REMOTE_IRR, 0);
    }

    #[test]
    fn masked_pins() {
        let mut io = IoApic::new(0);
        program(&mut io, 1, 0x31 | MASKED, 0);
        program(&mut io, 11, 0x3B | LEVEL | MASKED, 0);
        io.set_irq(1, true);
        io.set_irq(11, true);
        assert!(io.take_interrupts().is_empty());
        // Unmasking: the lost edge stays lost; the asserted level is sent.
        write_reg(&mut io, REG_REDTBL + 2, 0x31);
        write_reg(&mut io, REG_REDTBL + 22, 0x3B | LEVEL);
        let sent = io.take_interrupts();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].vector, 0x3B);
        // Out-of-range pins are ignored.
        io.set_irq(24, true);
        io.set_irq(255, true);
        assert!(io.take_interrupts().is_empty());
    }

    #[test]
    fn snapshot_round_trips() {
        let mut io = IoApic::new(1);
        program(&mut io, 10, 0x3A | LEVEL, 3);
        io.set_irq(10, true);
        io.set_irq(7, true);
        let mut b = IoApic::from_state(io.state().clone());
        assert_eq!(b, io);
        b.end_of_interrupt(0x3A);
        io.end_of_interrupt(0x3A);
        assert_eq!(b, io);
    }

    /// A tiny deterministic generator (xorshift64*), so the fuzz test is repeatable.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn fuzz_never_panics_and_keeps_invariants() {
        for seed in 1..=64u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut io = IoApic::new(seed as u8);
            for _ in 0..3000 {
                let r = rng.next();
                let value = (r >> 32) as u32;
                match r % 8 {
                    0 => io.write(OFF_IOREGSEL, (r >> 8) as u32 & 0x3F),
                    1 | 2 => io.write(OFF_IOWIN, value),
                    3 => io.write((r >> 8) as u32 & 0xFF, value),
                    4 => {
                        io.read((r >> 8) as u32 & 0xFF);
                    }
                    5 => io.set_irq((r >> 8) as u8 % 30, r & (1 << 50) != 0),
                    6 => io.end_of_interrupt((r >> 8) as u8),
                    _ => {
                        for m in io.take_interrupts() {
                            assert!(m.delivery_mode < 8);
                        }
                    }
                }
                let s = io.state();
                assert!(s.pending.len() <= 1024);
                for e in s.redirection {
                    assert_eq!(e & !(RTE_WRITABLE | RTE_REMOTE_IRR), 0);
                    assert!(e & RTE_REMOTE_IRR == 0 || e & RTE_LEVEL != 0);
                }
            }
            assert_eq!(IoApic::from_state(io.state().clone()), io);
        }
    }
}
