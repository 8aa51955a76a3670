//! The PC/AT's pair of Intel 8259A programmable interrupt controllers, with
//! the PIIX edge/level control registers (ELCR).
//!
//! The master answers at ports 0x20/0x21 and takes IRQ0-7; the slave answers
//! at 0xA0/0xA1, takes IRQ8-15 and drives the master's IR2 with its INT pin.
//! Section names below are those of the Intel 8259A datasheet (order number
//! 231468): "Interrupt Sequence", "Programming the 8259A" (ICW1-ICW4 and
//! OCW1-OCW3, figures 6 and 7), "Fully Nested Mode", "End of Interrupt",
//! "Automatic Rotation", "Specific Rotation", "Special Mask Mode", "Poll
//! Command", "Reading the 8259A Status", "Edge and Level Triggered Modes",
//! "The Special Fully Nest Mode" and "Cascade Mode". The ELCR is defined in
//! the Intel 82371AB (PIIX4) datasheet, "ELCR1/ELCR2 - Edge/Level Control
//! Registers": one bit per IRQ, 1 = level triggered; IRQ0-2, 8 and 13 are
//! always edge triggered.
//!
//! The CPU side is three calls: [`Pic::set_irq`] for the device wires,
//! [`Pic::interrupt_output`] for the INTR pin and [`Pic::acknowledge`] for the
//! INTA cycle, which returns the vector and does the cascade internally.
//!
//! One deliberate deviation: the datasheet asks that an edge-triggered IR
//! input stay high until the first INTA, and a chip whose input has fallen
//! answers with the default IR7. We keep a rising edge latched in the IRR
//! until it is acknowledged (as QEMU's and crosvm's models do), so a
//! device ticked in coarse steps of virtual time cannot lose an edge. The
//! default IR7 ("spurious interrupt") still answers whenever no request is
//! left at the acknowledge: a level-triggered input that fell, or a request
//! masked in between.
//!
//! Port offsets: the pair is one device with a six-byte window; the machine
//! maps each PC port to an offset with [`port_offset`].
//!
//! ```
//! use oxide86_devices::pic::{port_offset, Pic};
//! use oxide86_devices::PortIo;
//!
//! let mut pic = Pic::new();
//! let mut out = |pic: &mut Pic, port, value| pic.write(port_offset(port).unwrap(), value);
//! // The BIOS's ICW sequence: vectors 0x08 and 0x70, slave on IR2.
//! for (base, icw2, icw3) in [(0x20, 0x08, 0x04), (0xA0, 0x70, 0x02)] {
//!     out(&mut pic, base, 0x11);
//!     out(&mut pic, base + 1, icw2);
//!     out(&mut pic, base + 1, icw3);
//!     out(&mut pic, base + 1, 0x01);
//!     out(&mut pic, base + 1, 0x00); // OCW1: nothing masked
//! }
//! pic.set_irq(14, true);
//! assert!(pic.interrupt_output());
//! assert_eq!(pic.acknowledge(), Some(0x76));
//! ```

use crate::PortIo;

/// The master's command port (ICW1, OCW2, OCW3; IRR/ISR/poll reads).
pub const PIC_MASTER_PORT: u16 = 0x20;
/// The slave's command port.
pub const PIC_SLAVE_PORT: u16 = 0xA0;
/// ELCR1 (IRQ0-7); ELCR2 (IRQ8-15) follows at 0x4D1.
pub const ELCR_PORT: u16 = 0x4D0;

/// Offset of the master's command port (A0 = 0).
pub const OFF_MASTER_COMMAND: u16 = 0;
/// Offset of the master's data port (A0 = 1: ICW2-4, OCW1).
pub const OFF_MASTER_DATA: u16 = 1;
/// Offset of the slave's command port.
pub const OFF_SLAVE_COMMAND: u16 = 2;
/// Offset of the slave's data port.
pub const OFF_SLAVE_DATA: u16 = 3;
/// Offset of ELCR1, the trigger modes of IRQ0-7.
pub const OFF_ELCR_MASTER: u16 = 4;
/// Offset of ELCR2, the trigger modes of IRQ8-15.
pub const OFF_ELCR_SLAVE: u16 = 5;

/// Maps a PC port to this device's offset, or `None` if the pair does not
/// answer there.
pub fn port_offset(port: u16) -> Option<u16> {
    match port {
        0x20 | 0x21 => Some(port - PIC_MASTER_PORT),
        0xA0 | 0xA1 => Some(port - PIC_SLAVE_PORT + OFF_SLAVE_COMMAND),
        0x4D0 | 0x4D1 => Some(port - ELCR_PORT + OFF_ELCR_MASTER),
        _ => None,
    }
}

/// ICW1: ICW4 will follow.
const ICW1_IC4: u8 = 1 << 0;
/// ICW1: single chip, no ICW3.
const ICW1_SNGL: u8 = 1 << 1;
/// ICW1: level-triggered mode for every input of the chip.
const ICW1_LTIM: u8 = 1 << 3;
/// Command-port bit 4 set: this byte is ICW1 (start of initialization).
const CMD_ICW1: u8 = 1 << 4;
/// Command-port bit 3 set (bit 4 clear): this byte is OCW3, else OCW2.
const CMD_OCW3: u8 = 1 << 3;

/// ICW2: the vector base; the low three bits come from the IR level.
const ICW2_VECTOR_MASK: u8 = 0xF8;

/// ICW4: automatic end of interrupt.
const ICW4_AEOI: u8 = 1 << 1;
/// ICW4: special fully nested mode.
const ICW4_SFNM: u8 = 1 << 4;

/// OCW2 R/SL/EOI (bits 7-5) = 001: non-specific EOI.
const OCW2_EOI: u8 = 0b001;
/// 011: specific EOI of the level in L2-L0.
const OCW2_SPECIFIC_EOI: u8 = 0b011;
/// 101: rotate on non-specific EOI.
const OCW2_ROTATE_EOI: u8 = 0b101;
/// 100: set rotate in automatic EOI mode.
const OCW2_SET_ROTATE_AEOI: u8 = 0b100;
/// 000: clear rotate in automatic EOI mode.
const OCW2_CLEAR_ROTATE_AEOI: u8 = 0b000;
/// 111: rotate on specific EOI.
const OCW2_ROTATE_SPECIFIC_EOI: u8 = 0b111;
/// 110: set priority (L2-L0 becomes the lowest).
const OCW2_SET_PRIORITY: u8 = 0b110;
/// The level field of OCW2.
const OCW2_LEVEL: u8 = 0x07;

/// OCW3: read the ISR (with RR) instead of the IRR.
const OCW3_RIS: u8 = 1 << 0;
/// OCW3: the RIS bit is valid.
const OCW3_RR: u8 = 1 << 1;
/// OCW3: poll command.
const OCW3_POLL: u8 = 1 << 2;
/// OCW3: special mask mode on (with ESMM).
const OCW3_SMM: u8 = 1 << 5;
/// OCW3: the SMM bit is valid.
const OCW3_ESMM: u8 = 1 << 6;

/// Poll byte: bit 7 says an interrupt was pending, bits 2-0 name it.
const POLL_INTERRUPT: u8 = 0x80;

/// ELCR1 bits that exist: IRQ0, 1 and 2 are always edge triggered.
const ELCR_MASTER_MASK: u8 = 0xF8;
/// ELCR2 bits that exist: IRQ8 (RTC) and IRQ13 (FPU) are always edge triggered.
const ELCR_SLAVE_MASK: u8 = 0xDE;

/// The master input the slave's INT drives on a PC/AT.
const CASCADE_IR: u8 = 2;
/// The IR level whose vector answers a spurious acknowledge.
const SPURIOUS_IR: u8 = 7;

/// Initialization-sequence position: ready for OCWs.
const INIT_READY: u8 = 0;
/// Initialization-sequence position: the next data byte is ICW2.
const INIT_ICW2: u8 = 2;
/// Initialization-sequence position: the next data byte is ICW3.
const INIT_ICW3: u8 = 3;
/// Initialization-sequence position: the next data byte is ICW4.
const INIT_ICW4: u8 = 4;

/// One 8259A's registers and modes: everything a snapshot needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PicChipState {
    /// The levels of the eight IR inputs as last driven.
    pub line: u8,
    /// Interrupt request register.
    pub irr: u8,
    /// Interrupt mask register (OCW1).
    pub imr: u8,
    /// In-service register.
    pub isr: u8,
    /// The IR level that currently has the highest priority (rotation).
    pub highest_priority: u8,
    /// ICW2 with the low three bits cleared.
    pub vector_base: u8,
    /// Which ICW the data port expects next (0 when initialized).
    pub init_step: u8,
    /// The last ICW1 (LTIM, SNGL, IC4).
    pub icw1: u8,
    /// The last ICW3 (master: inputs with a slave; slave: its ID).
    pub icw3: u8,
    /// The last ICW4 (AEOI, SFNM, buffered mode, 8086 mode), 0 if none.
    pub icw4: u8,
    /// OCW3 RIS: the command port reads the ISR instead of the IRR.
    pub read_isr: bool,
    /// An OCW3 poll command waits for the next read.
    pub poll: bool,
    /// Special mask mode (OCW3 SMM).
    pub special_mask: bool,
    /// Rotate in automatic EOI mode (OCW2).
    pub rotate_on_aeoi: bool,
    /// The ELCR byte for this chip's inputs (1 = level triggered).
    pub elcr: u8,
    /// An initialization sequence has completed since power-on.
    pub initialized: bool,
}

impl Default for PicChipState {
    fn default() -> Self {
        Self {
            line: 0,
            irr: 0,
            imr: 0xFF,
            isr: 0,
            highest_priority: 0,
            vector_base: 0,
            init_step: INIT_READY,
            icw1: 0,
            icw3: 0,
            icw4: 0,
            read_isr: false,
            poll: false,
            special_mask: false,
            rotate_on_aeoi: false,
            elcr: 0,
            initialized: false,
        }
    }
}

impl PicChipState {
    /// Inputs sensed by level: every input under ICW1 LTIM, else per ELCR.
    fn level_mask(&self) -> u8 {
        if self.icw1 & ICW1_LTIM != 0 {
            0xFF
        } else {
            self.elcr
        }
    }

    fn auto_eoi(&self) -> bool {
        self.icw4 & ICW4_AEOI != 0
    }

    /// Drives IR input `ir` (0-7): a level input's IRR bit follows the line,
    /// an edge input latches on a rising edge ("Edge and Level Triggered
    /// Modes").
    fn set_line(&mut self, ir: u8, high: bool) {
        let m = 1u8 << (ir & 7);
        if self.level_mask() & m != 0 {
            if high {
                self.irr |= m;
            } else {
                self.irr &= !m;
            }
        } else if high && self.line & m == 0 {
            self.irr |= m;
        }
        if high {
            self.line |= m;
        } else {
            self.line &= !m;
        }
    }

    /// Re-senses the inputs after a trigger mode changed: level inputs follow
    /// their lines; edge inputs keep what they latched.
    fn resense(&mut self) {
        let level = self.level_mask();
        self.irr = (self.irr & !level) | (self.line & level);
    }

    /// 0 for the highest priority, 7 for the lowest.
    fn priority_of(&self, ir: u8) -> u8 {
        ir.wrapping_sub(self.highest_priority) & 7
    }

    /// The highest-priority level set in `mask`.
    fn highest(&self, mask: u8) -> Option<u8> {
        (0..8)
            .map(|p: u8| p.wrapping_add(self.highest_priority) & 7)
            .find(|&ir| mask & (1 << ir) != 0)
    }

    /// The level this chip would present on INT: the highest-priority
    /// unmasked request that the in-service levels do not block ("Fully
    /// Nested Mode", "Special Mask Mode", "The Special Fully Nest Mode").
    /// `cascade` is the set of inputs that carry a slave.
    fn pending(&self, cascade: u8) -> Option<u8> {
        if !self.initialized || self.init_step != INIT_READY {
            return None;
        }
        let requests = self.irr & !self.imr;
        if self.special_mask {
            // Every unmasked level not itself in service may interrupt.
            return self.highest(requests & !self.isr);
        }
        let candidate = self.highest(requests)?;
        match self.highest(self.isr) {
            None => Some(candidate),
            Some(current) => {
                let (p, q) = (self.priority_of(candidate), self.priority_of(current));
                let sfnm = self.icw4 & ICW4_SFNM != 0 && cascade & (1 << candidate) != 0;
                (p < q || (p == q && sfnm)).then_some(candidate)
            }
        }
    }

    /// The acknowledge of `ir` (second INTA pulse or a poll read): an edge
    /// latch is consumed, and the ISR bit is set unless in automatic EOI mode.
    fn intack(&mut self, ir: u8) {
        let m = 1u8 << ir;
        if self.level_mask() & m == 0 {
            self.irr &= !m;
        }
        if self.auto_eoi() {
            if self.rotate_on_aeoi {
                self.highest_priority = (ir + 1) & 7;
            }
        } else {
            self.isr |= m;
        }
    }

    /// ICW1: starts initialization and resets the chip ("Initialization
    /// Command Words": edge sense reset, IMR cleared, IR7 lowest priority,
    /// special mask mode off, status read set to IRR, ICW4 functions zero if
    /// IC4 = 0).
    fn write_icw1(&mut self, value: u8) {
        self.icw1 = value;
        self.init_step = INIT_ICW2;
        self.imr = 0;
        self.isr = 0;
        self.irr = self.line & self.level_mask();
        self.highest_priority = 0;
        self.read_isr = false;
        self.poll = false;
        self.special_mask = false;
        self.rotate_on_aeoi = false;
        if value & ICW1_IC4 == 0 {
            self.icw4 = 0;
        }
    }

    /// A data-port write: the next ICW of an initialization, else OCW1.
    fn write_data(&mut self, value: u8) {
        let needs_icw4 = self.icw1 & ICW1_IC4 != 0;
        let after_icw3 = if needs_icw4 { INIT_ICW4 } else { INIT_READY };
        match self.init_step {
            INIT_ICW2 => {
                self.vector_base = value & ICW2_VECTOR_MASK;
                self.init_step = if self.icw1 & ICW1_SNGL != 0 {
                    after_icw3
                } else {
                    INIT_ICW3
                };
            }
            INIT_ICW3 => {
                self.icw3 = value;
                self.init_step = after_icw3;
            }
            INIT_ICW4 => {
                self.icw4 = value;
                self.init_step = INIT_READY;
            }
            _ => self.imr = value,
        }
        if self.init_step == INIT_READY {
            self.initialized = true;
        }
    }

    /// OCW2: the EOI and rotation commands ("End of Interrupt", "Automatic
    /// Rotation", "Specific Rotation").
    fn write_ocw2(&mut self, value: u8) {
        let level = value & OCW2_LEVEL;
        match value >> 5 {
            OCW2_EOI => {
                if let Some(ir) = self.highest(self.isr) {
                    self.isr &= !(1 << ir);
                }
            }
            OCW2_SPECIFIC_EOI => self.isr &= !(1 << level),
            OCW2_ROTATE_EOI => {
                if let Some(ir) = self.highest(self.isr) {
                    self.isr &= !(1 << ir);
                    self.highest_priority = (ir + 1) & 7;
                }
            }
            OCW2_ROTATE_SPECIFIC_EOI => {
                self.isr &= !(1 << level);
                self.highest_priority = (level + 1) & 7;
            }
            OCW2_SET_PRIORITY => self.highest_priority = (level + 1) & 7,
            OCW2_SET_ROTATE_AEOI => self.rotate_on_aeoi = true,
            OCW2_CLEAR_ROTATE_AEOI => self.rotate_on_aeoi = false,
            _ => {} // 010: no operation
        }
    }

    /// OCW3: register select, poll and special mask mode.
    fn write_ocw3(&mut self, value: u8) {
        if value & OCW3_RR != 0 {
            self.read_isr = value & OCW3_RIS != 0;
        }
        if value & OCW3_POLL != 0 {
            self.poll = true;
        }
        if value & OCW3_ESMM != 0 {
            self.special_mask = value & OCW3_SMM != 0;
        }
    }

    /// A command-port write.
    fn write_command(&mut self, value: u8) {
        if value & CMD_ICW1 != 0 {
            self.write_icw1(value);
        } else if value & CMD_OCW3 != 0 {
            self.write_ocw3(value);
        } else {
            self.write_ocw2(value);
        }
    }
}

/// The pair's snapshot state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PicState {
    /// The master (IRQ0-7, ports 0x20/0x21).
    pub master: PicChipState,
    /// The slave (IRQ8-15, ports 0xA0/0xA1).
    pub slave: PicChipState,
}

impl Default for PicState {
    fn default() -> Self {
        let master = PicChipState {
            icw3: 1 << CASCADE_IR, // the AT board's wiring
            ..PicChipState::default()
        };
        let slave = PicChipState {
            icw3: CASCADE_IR,
            ..PicChipState::default()
        };
        Self { master, slave }
    }
}

/// The master/slave 8259A pair with its ELCR.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pic {
    state: PicState,
}

impl Pic {
    /// A pair at power-on: not initialized, so it asserts nothing until the
    /// firmware or OS writes the ICW sequence.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the pair from a snapshot.
    pub fn from_state(mut state: PicState) -> Self {
        state.master.highest_priority &= 7;
        state.slave.highest_priority &= 7;
        let mut pic = Self { state };
        pic.update_cascade();
        pic
    }

    /// The snapshot state.
    pub fn state(&self) -> &PicState {
        &self.state
    }

    /// Drives interrupt request `irq` (0-15) to `level`. IRQ2 is the master's
    /// cascade input, driven by the slave, so a device cannot drive it (on
    /// the AT the bus's IRQ2 pin is wired to IRQ9); out-of-range numbers are
    /// ignored.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            0..=7 if irq != CASCADE_IR => self.state.master.set_line(irq, level),
            8..=15 => {
                self.state.slave.set_line(irq - 8, level);
                self.update_cascade();
            }
            _ => {}
        }
    }

    /// The master's INT pin, wired to the CPU's INTR.
    pub fn interrupt_output(&self) -> bool {
        self.state.master.pending(self.cascade_inputs()).is_some()
    }

    /// The INTA cycle: the vector the pair puts on the bus, updating the IRR
    /// and ISR ("Interrupt Sequence"). When no request is left, the answer is
    /// the default IR7 with no ISR bit set; a cascaded request that vanished
    /// from the slave sets the master's IR2 in service and answers with the
    /// slave's IR7. `None` only while the master has never completed its
    /// initialization (it has no vector base to give).
    pub fn acknowledge(&mut self) -> Option<u8> {
        let cascade = self.cascade_inputs();
        let master = &mut self.state.master;
        if !master.initialized || master.init_step != INIT_READY {
            return None;
        }
        let Some(ir) = master.pending(cascade) else {
            return Some(master.vector_base | SPURIOUS_IR);
        };
        master.intack(ir);
        if cascade & (1 << ir) == 0 {
            return Some(master.vector_base | ir);
        }
        let slave = &mut self.state.slave;
        let vector = match slave.pending(0) {
            Some(sir) => {
                slave.intack(sir);
                slave.vector_base | sir
            }
            None => slave.vector_base | SPURIOUS_IR,
        };
        // The slave's INT falls during the INTA sequence; another request
        // still pending on it raises a fresh edge at the master.
        self.state.master.set_line(CASCADE_IR, false);
        self.update_cascade();
        Some(vector)
    }

    /// The master inputs that carry a slave (ICW3), none in single mode.
    fn cascade_inputs(&self) -> u8 {
        let m = &self.state.master;
        if m.icw1 & ICW1_SNGL != 0 {
            0
        } else {
            m.icw3 & (1 << CASCADE_IR)
        }
    }

    /// Drives the master's IR2 from the slave's INT pin.
    fn update_cascade(&mut self) {
        let int = self.state.slave.pending(0).is_some();
        self.state.master.set_line(CASCADE_IR, int);
    }

    /// A read of a command or data port while a poll is armed ("Poll
    /// Command"): the read is the acknowledge, and returns the level.
    fn poll_read(&mut self, slave: bool) -> u8 {
        let cascade = self.cascade_inputs();
        let chip = if slave {
            &mut self.state.slave
        } else {
            &mut self.state.master
        };
        chip.poll = false;
        let found = chip.pending(if slave { 0 } else { cascade });
        let byte = match found {
            Some(ir) => {
                chip.intack(ir);
                POLL_INTERRUPT | ir
            }
            None => 0,
        };
        // No INTA here, so the slave's INT does not fall: polling the master
        // consumes the cascade edge and the slave is polled next.
        self.update_cascade();
        byte
    }

    fn read_chip(&mut self, slave: bool, data: bool) -> u8 {
        let chip = if slave {
            &self.state.slave
        } else {
            &self.state.master
        };
        if chip.poll {
            self.poll_read(slave)
        } else if data {
            chip.imr
        } else if chip.read_isr {
            chip.isr
        } else {
            chip.irr
        }
    }
}

impl PortIo for Pic {
    fn read(&mut self, offset: u16) -> u8 {
        match offset {
            OFF_MASTER_COMMAND => self.read_chip(false, false),
            OFF_MASTER_DATA => self.read_chip(false, true),
            OFF_SLAVE_COMMAND => self.read_chip(true, false),
            OFF_SLAVE_DATA => self.read_chip(true, true),
            OFF_ELCR_MASTER => self.state.master.elcr,
            OFF_ELCR_SLAVE => self.state.slave.elcr,
            _ => 0xFF,
        }
    }

    fn write(&mut self, offset: u16, value: u8) {
        match offset {
            OFF_MASTER_COMMAND => self.state.master.write_command(value),
            OFF_MASTER_DATA => self.state.master.write_data(value),
            OFF_SLAVE_COMMAND => self.state.slave.write_command(value),
            OFF_SLAVE_DATA => self.state.slave.write_data(value),
            OFF_ELCR_MASTER => {
                self.state.master.elcr = value & ELCR_MASTER_MASK;
                self.state.master.resense();
            }
            OFF_ELCR_SLAVE => {
                self.state.slave.elcr = value & ELCR_SLAVE_MASK;
                self.state.slave.resense();
            }
            _ => return,
        }
        self.update_cascade();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M_CMD: u16 = OFF_MASTER_COMMAND;
    const M_DATA: u16 = OFF_MASTER_DATA;
    const S_CMD: u16 = OFF_SLAVE_COMMAND;
    const S_DATA: u16 = OFF_SLAVE_DATA;

    /// Linux's `init_8259A` (arch/x86/kernel/i8259.c), all masked at the end
    /// as Linux leaves it, then the masks given.
    fn linux_pic(master_mask: u8, slave_mask: u8) -> Pic {
        let mut p = Pic::new();
        p.write(M_DATA, 0xFF);
        p.write(S_DATA, 0xFF);
        p.write(M_CMD, 0x11); // ICW1: edge, cascade, ICW4
        p.write(M_DATA, 0x30); // ICW2: vectors 0x30-0x37 (ISA_IRQ_VECTOR(0))
        p.write(M_DATA, 1 << CASCADE_IR); // ICW3: slave on IR2
        p.write(M_DATA, 0x01); // ICW4: 8086, normal EOI
        p.write(S_CMD, 0x11);
        p.write(S_DATA, 0x38);
        p.write(S_DATA, CASCADE_IR); // ICW3: slave ID 2
        p.write(S_DATA, 0x01);
        p.write(M_DATA, master_mask);
        p.write(S_DATA, slave_mask);
        p
    }

    /// The PC BIOS's programming: vectors 0x08 and 0x70, everything unmasked.
    fn bios_pic() -> Pic {
        let mut p = Pic::new();
        for (cmd, data, base, icw3) in [(M_CMD, M_DATA, 0x08, 0x04), (S_CMD, S_DATA, 0x70, 0x02)] {
            p.write(cmd, 0x11);
            p.write(data, base);
            p.write(data, icw3);
            p.write(data, 0x01);
            p.write(data, 0x00);
        }
        p
    }

    fn pulse(p: &mut Pic, irq: u8) {
        p.set_irq(irq, true);
        p.set_irq(irq, false);
    }

    fn eoi_master(p: &mut Pic) {
        p.write(M_CMD, 0x20);
    }

    fn eoi_slave(p: &mut Pic) {
        p.write(S_CMD, 0x20);
        p.write(M_CMD, 0x20);
    }

    fn read_isr(p: &mut Pic, slave: bool) -> u8 {
        let cmd = if slave { S_CMD } else { M_CMD };
        p.write(cmd, 0x0B);
        let v = p.read(cmd);
        p.write(cmd, 0x0A);
        v
    }

    #[test]
    fn port_map() {
        assert_eq!(port_offset(0x20), Some(OFF_MASTER_COMMAND));
        assert_eq!(port_offset(0x21), Some(OFF_MASTER_DATA));
        assert_eq!(port_offset(0xA0), Some(OFF_SLAVE_COMMAND));
        assert_eq!(port_offset(0xA1), Some(OFF_SLAVE_DATA));
        assert_eq!(port_offset(0x4D0), Some(OFF_ELCR_MASTER));
        assert_eq!(port_offset(0x4D1), Some(OFF_ELCR_SLAVE));
        assert_eq!(port_offset(0x22), None);
        assert_eq!(port_offset(0x4D2), None);
    }

    #[test]
    fn uninitialized_pair_asserts_nothing() {
        let mut p = Pic::new();
        p.set_irq(0, true);
        assert!(!p.interrupt_output());
        assert_eq!(p.acknowledge(), None);
    }

    #[test]
    fn linux_init_sequence_sets_bases_and_masks() {
        let mut p = linux_pic(0xFB, 0xFF);
        let s = p.state().clone();
        assert_eq!(s.master.vector_base, 0x30);
        assert_eq!(s.slave.vector_base, 0x38);
        assert_eq!(s.master.icw3, 0x04);
        assert_eq!(s.slave.icw3, 0x02);
        assert_eq!(p.read(M_DATA), 0xFB);
        assert_eq!(p.read(S_DATA), 0xFF);
        p.set_irq(0, true);
        assert!(!p.interrupt_output(), "IRQ0 masked");
        p.write(M_DATA, 0xFA);
        assert!(p.interrupt_output(), "unmasking shows the latched edge");
        assert_eq!(p.acknowledge(), Some(0x30));
    }

    #[test]
    fn linux_init_with_vectors_0x20_0x28() {
        let mut p = Pic::new();
        for (cmd, data, icw2, icw3) in [(M_CMD, M_DATA, 0x20, 4), (S_CMD, S_DATA, 0x28, 2)] {
            p.write(cmd, 0x11);
            p.write(data, icw2);
            p.write(data, icw3);
            p.write(data, 0x01);
            p.write(data, 0x00);
        }
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), Some(0x21));
        eoi_master(&mut p);
        pulse(&mut p, 12);
        assert_eq!(p.acknowledge(), Some(0x2C));
    }

    #[test]
    fn bios_vectors_and_cascade() {
        let mut p = bios_pic();
        pulse(&mut p, 0);
        assert!(p.interrupt_output());
        assert_eq!(p.acknowledge(), Some(0x08));
        assert!(!p.interrupt_output());
        eoi_master(&mut p);
        pulse(&mut p, 8);
        assert!(p.interrupt_output());
        assert_eq!(p.acknowledge(), Some(0x70));
        assert_eq!(read_isr(&mut p, false), 0x04, "master IR2 in service");
        assert_eq!(read_isr(&mut p, true), 0x01, "slave IR0 in service");
        eoi_slave(&mut p);
        assert_eq!(read_isr(&mut p, false), 0);
        assert_eq!(read_isr(&mut p, true), 0);
        pulse(&mut p, 15);
        assert_eq!(p.acknowledge(), Some(0x77));
    }

    #[test]
    fn icw2_low_bits_are_ignored_in_8086_mode() {
        let mut p = Pic::new();
        p.write(M_CMD, 0x13); // single, ICW4
        p.write(M_DATA, 0x0F);
        p.write(M_DATA, 0x01); // ICW4 directly: no ICW3 in single mode
        p.write(M_DATA, 0x00); // OCW1
        assert_eq!(p.state().master.vector_base, 0x08);
        assert_eq!(p.state().master.init_step, INIT_READY);
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), Some(0x0B));
    }

    #[test]
    fn single_mode_without_icw4() {
        let mut p = Pic::new();
        p.write(M_CMD, 0x12); // single, no ICW4
        p.write(M_DATA, 0x40);
        assert!(p.state().master.initialized);
        p.write(M_DATA, 0x00); // OCW1
        pulse(&mut p, 5);
        assert_eq!(p.acknowledge(), Some(0x45));
        assert_eq!(read_isr(&mut p, false), 0x20);
    }

    #[test]
    fn icw1_resets_masks_isr_priority_and_read_select() {
        let mut p = bios_pic();
        pulse(&mut p, 3);
        p.acknowledge();
        p.write(M_CMD, 0xC4); // set priority: IR4 lowest
        p.write(M_CMD, 0x0B); // read ISR
        p.write(M_CMD, 0x68); // special mask mode
        p.write(M_DATA, 0x55);
        p.write(M_CMD, 0x11);
        let m = &p.state().master;
        assert_eq!((m.imr, m.isr, m.highest_priority), (0, 0, 0));
        assert!(!m.read_isr && !m.special_mask && m.init_step == INIT_ICW2);
        assert!(!p.interrupt_output(), "mid-initialization");
        assert_eq!(p.acknowledge(), None);
    }

    #[test]
    fn icw1_resets_the_edge_sense_latch() {
        let mut p = bios_pic();
        p.set_irq(4, true); // latched
        p.write(M_CMD, 0x11);
        p.write(M_DATA, 0x08);
        p.write(M_DATA, 0x04);
        p.write(M_DATA, 0x01);
        assert!(
            !p.interrupt_output(),
            "the line must go low then high again"
        );
        p.set_irq(4, false);
        p.set_irq(4, true);
        assert_eq!(p.acknowledge(), Some(0x0C));
    }

    #[test]
    fn icw4_skipped_clears_its_functions() {
        let mut p = Pic::new();
        p.write(M_CMD, 0x11);
        p.write(M_DATA, 0x08);
        p.write(M_DATA, 0x04);
        p.write(M_DATA, 0x03); // AEOI
        assert!(p.state().master.auto_eoi());
        p.write(M_CMD, 0x10); // no ICW4 this time
        p.write(M_DATA, 0x08);
        p.write(M_DATA, 0x04);
        assert!(p.state().master.initialized);
        assert_eq!(p.state().master.icw4, 0);
    }

    #[test]
    fn fixed_priority_and_nesting() {
        let mut p = bios_pic();
        pulse(&mut p, 5);
        pulse(&mut p, 3);
        pulse(&mut p, 6);
        assert_eq!(p.read(M_CMD), 0b0110_1000, "IRR");
        assert_eq!(p.acknowledge(), Some(0x0B), "IR3 first");
        assert!(!p.interrupt_output(), "lower levels wait for the EOI");
        pulse(&mut p, 1);
        assert!(p.interrupt_output(), "a higher level nests");
        assert_eq!(p.acknowledge(), Some(0x09));
        assert_eq!(read_isr(&mut p, false), 0b0000_1010);
        eoi_master(&mut p); // clears IR1, the highest in service
        assert_eq!(read_isr(&mut p, false), 0b0000_1000);
        assert!(!p.interrupt_output(), "IR3 still in service");
        eoi_master(&mut p);
        assert_eq!(p.acknowledge(), Some(0x0D));
        eoi_master(&mut p);
        assert_eq!(p.acknowledge(), Some(0x0E));
        eoi_master(&mut p);
        assert!(!p.interrupt_output());
        assert_eq!(p.read(M_CMD), 0, "IRR empty");
    }

    #[test]
    fn same_level_does_not_nest() {
        let mut p = bios_pic();
        pulse(&mut p, 4);
        assert_eq!(p.acknowledge(), Some(0x0C));
        pulse(&mut p, 4);
        assert!(!p.interrupt_output());
        eoi_master(&mut p);
        assert_eq!(p.acknowledge(), Some(0x0C));
    }

    #[test]
    fn an_edge_input_held_high_interrupts_once() {
        let mut p = bios_pic();
        p.set_irq(1, true);
        assert_eq!(p.acknowledge(), Some(0x09));
        eoi_master(&mut p);
        p.set_irq(1, true); // still high: no new edge
        assert!(!p.interrupt_output());
        p.set_irq(1, false);
        p.set_irq(1, true);
        assert_eq!(p.acknowledge(), Some(0x09));
    }

    #[test]
    fn linux_mask_and_ack_with_specific_eois() {
        // arch/x86/kernel/i8259.c mask_and_ack_8259A for a slave IRQ: mask,
        // specific EOI to the slave, then to the master's cascade level.
        let mut p = linux_pic(0x00, 0x00);
        pulse(&mut p, 14);
        assert_eq!(p.acknowledge(), Some(0x3E));
        p.write(S_DATA, 1 << 6);
        p.write(S_CMD, 0x60 + 6);
        p.write(M_CMD, 0x60 + CASCADE_IR);
        assert_eq!(read_isr(&mut p, false), 0);
        assert_eq!(read_isr(&mut p, true), 0);
        pulse(&mut p, 14);
        assert!(!p.interrupt_output(), "masked until the handler unmasks");
        p.write(S_DATA, 0);
        assert_eq!(p.acknowledge(), Some(0x3E));
    }

    #[test]
    fn specific_eoi_clears_only_its_level() {
        let mut p = bios_pic();
        pulse(&mut p, 4);
        p.acknowledge();
        pulse(&mut p, 2 + 1);
        p.acknowledge();
        assert_eq!(read_isr(&mut p, false), 0b0001_1000);
        p.write(M_CMD, 0x60 | 4); // specific EOI for IR4, not the highest
        assert_eq!(read_isr(&mut p, false), 0b0000_1000);
        p.write(M_CMD, 0x60 | 7); // specific EOI of a level not in service
        assert_eq!(read_isr(&mut p, false), 0b0000_1000);
        p.write(M_CMD, 0x40); // OCW2 no-op
        assert_eq!(read_isr(&mut p, false), 0b0000_1000);
    }

    #[test]
    fn rotate_on_non_specific_eoi() {
        let mut p = bios_pic();
        pulse(&mut p, 2 + 2); // IR4
        assert_eq!(p.acknowledge(), Some(0x0C));
        p.write(M_CMD, 0xA0); // rotate on non-specific EOI: IR4 becomes lowest
        assert_eq!(p.state().master.highest_priority, 5);
        assert_eq!(read_isr(&mut p, false), 0);
        pulse(&mut p, 4);
        pulse(&mut p, 6);
        pulse(&mut p, 0);
        assert_eq!(
            p.acknowledge(),
            Some(0x0E),
            "IR5 > IR6 > ... > IR0 > ... > IR4"
        );
        p.write(M_CMD, 0xA0);
        assert_eq!(
            p.acknowledge(),
            Some(0x08),
            "after IR6 rotates, IR7 then IR0"
        );
        p.write(M_CMD, 0xA0);
        assert_eq!(p.acknowledge(), Some(0x0C));
    }

    #[test]
    fn specific_rotation_and_set_priority() {
        let mut p = bios_pic();
        p.write(M_CMD, 0xC0 | 5); // set priority: IR5 lowest, IR6 highest
        pulse(&mut p, 5);
        pulse(&mut p, 7);
        pulse(&mut p, 0);
        pulse(&mut p, 6);
        assert_eq!(p.acknowledge(), Some(0x0E));
        p.write(M_CMD, 0xE0 | 6); // rotate on specific EOI of IR6: IR6 lowest
        assert_eq!(read_isr(&mut p, false), 0);
        assert_eq!(p.state().master.highest_priority, 7);
        assert_eq!(p.acknowledge(), Some(0x0F));
        p.write(M_CMD, 0x60 | 7);
        assert_eq!(p.acknowledge(), Some(0x08));
        p.write(M_CMD, 0x60);
        assert_eq!(p.acknowledge(), Some(0x0D));
    }

    #[test]
    fn auto_eoi_and_rotation_in_auto_eoi() {
        let mut p = Pic::new();
        p.write(M_CMD, 0x11);
        p.write(M_DATA, 0x08);
        p.write(M_DATA, 0x04);
        p.write(M_DATA, 0x03); // 8086, AEOI
        p.write(M_DATA, 0x00);
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), Some(0x0B));
        assert_eq!(read_isr(&mut p, false), 0, "AEOI never sets ISR");
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), Some(0x0B), "no EOI needed");
        p.write(M_CMD, 0x80); // set rotate in AEOI
        pulse(&mut p, 3);
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), Some(0x09));
        assert_eq!(p.state().master.highest_priority, 2);
        assert_eq!(p.acknowledge(), Some(0x0B));
        assert_eq!(p.state().master.highest_priority, 4);
        p.write(M_CMD, 0x00); // clear rotate in AEOI
        pulse(&mut p, 0);
        p.acknowledge();
        assert_eq!(p.state().master.highest_priority, 4);
    }

    #[test]
    fn mask_hides_and_keeps_requests() {
        let mut p = bios_pic();
        p.write(M_DATA, 0x08);
        pulse(&mut p, 3);
        assert!(!p.interrupt_output());
        assert_eq!(p.read(M_CMD), 0x08, "IRR keeps the masked request");
        p.write(M_DATA, 0x00);
        assert_eq!(p.acknowledge(), Some(0x0B));
    }

    #[test]
    fn level_triggered_via_elcr_follows_the_line() {
        let mut p = linux_pic(0x00, 0x00);
        p.write(OFF_ELCR_MASTER, 0xFF);
        p.write(OFF_ELCR_SLAVE, 0xFF);
        assert_eq!(p.read(OFF_ELCR_MASTER), 0xF8, "IRQ0-2 are edge only");
        assert_eq!(p.read(OFF_ELCR_SLAVE), 0xDE, "IRQ8 and IRQ13 are edge only");
        p.set_irq(11, true);
        assert_eq!(p.acknowledge(), Some(0x3B));
        eoi_slave(&mut p);
        assert!(
            p.interrupt_output(),
            "a held level line asks again after EOI"
        );
        assert_eq!(p.acknowledge(), Some(0x3B));
        p.set_irq(11, false);
        eoi_slave(&mut p);
        assert!(!p.interrupt_output());
        // An edge input stays latched after its line falls.
        p.set_irq(3, true);
        p.set_irq(3, false);
        assert!(!p.interrupt_output(), "IR3 is level (ELCR bit 3) and fell");
        p.write(OFF_ELCR_MASTER, 0x00);
        pulse(&mut p, 3);
        assert!(p.interrupt_output());
    }

    #[test]
    fn elcr_change_resenses_level_inputs() {
        let mut p = bios_pic();
        p.set_irq(5, true);
        p.acknowledge();
        eoi_master(&mut p);
        assert!(!p.interrupt_output(), "edge consumed, line still high");
        p.write(OFF_ELCR_MASTER, 1 << 5);
        assert!(p.interrupt_output(), "level sensing sees the high line");
    }

    #[test]
    fn ltim_makes_every_input_level_triggered() {
        let mut p = Pic::new();
        p.write(M_CMD, 0x19); // LTIM, cascade, ICW4
        p.write(M_DATA, 0x08);
        p.write(M_DATA, 0x04);
        p.write(M_DATA, 0x01);
        p.write(M_DATA, 0x00);
        p.set_irq(1, true);
        assert_eq!(p.acknowledge(), Some(0x09));
        eoi_master(&mut p);
        assert_eq!(p.acknowledge(), Some(0x09));
        eoi_master(&mut p);
        p.set_irq(1, false);
        assert!(!p.interrupt_output());
    }

    #[test]
    fn spurious_irq7_when_a_level_request_vanishes() {
        let mut p = bios_pic();
        p.write(OFF_ELCR_MASTER, 1 << 5);
        p.set_irq(5, true);
        assert!(p.interrupt_output());
        p.set_irq(5, false); // gone before the INTA cycle
        assert_eq!(p.acknowledge(), Some(0x0F));
        assert_eq!(
            read_isr(&mut p, false),
            0,
            "a spurious IR7 is not put in service"
        );
    }

    #[test]
    fn spurious_irq7_when_masked_before_acknowledge() {
        let mut p = bios_pic();
        pulse(&mut p, 6);
        assert!(p.interrupt_output());
        p.write(M_DATA, 0x40);
        assert_eq!(p.acknowledge(), Some(0x0F));
        assert_eq!(read_isr(&mut p, false), 0);
        assert_eq!(p.read(M_CMD), 0x40, "the masked request is still latched");
    }

    #[test]
    fn spurious_irq15_sets_master_ir2_in_service() {
        let mut p = linux_pic(0x00, 0x00);
        p.write(OFF_ELCR_SLAVE, 1 << 2); // IRQ10 level
        p.set_irq(10, true);
        assert!(p.interrupt_output());
        p.set_irq(10, false);
        // The master latched the slave's rising INT; the slave has nothing.
        assert!(p.interrupt_output());
        assert_eq!(p.acknowledge(), Some(0x3F));
        assert_eq!(read_isr(&mut p, false), 0x04, "master IR2 in service");
        assert_eq!(read_isr(&mut p, true), 0x00, "slave IR7 not in service");
        eoi_master(&mut p);
        assert!(!p.interrupt_output());
    }

    #[test]
    fn real_irq7_is_put_in_service() {
        let mut p = bios_pic();
        pulse(&mut p, 7);
        assert_eq!(p.acknowledge(), Some(0x0F));
        assert_eq!(read_isr(&mut p, false), 0x80);
    }

    #[test]
    fn slave_requests_nest_by_slave_priority_after_master_eoi() {
        let mut p = bios_pic();
        pulse(&mut p, 12);
        pulse(&mut p, 9);
        assert_eq!(p.acknowledge(), Some(0x71));
        assert!(
            !p.interrupt_output(),
            "master IR2 in service blocks the slave"
        );
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), Some(0x09), "IR1 outranks IR2");
        eoi_master(&mut p);
        eoi_slave(&mut p);
        assert_eq!(p.acknowledge(), Some(0x74));
        eoi_slave(&mut p);
        assert!(!p.interrupt_output());
        assert_eq!(read_isr(&mut p, false), 0);
        assert_eq!(read_isr(&mut p, true), 0);
    }

    #[test]
    fn master_ir3_waits_for_the_cascade_eoi() {
        let mut p = bios_pic();
        pulse(&mut p, 8);
        assert_eq!(p.acknowledge(), Some(0x70));
        pulse(&mut p, 3);
        assert!(!p.interrupt_output(), "IR2 in service outranks IR3");
        eoi_slave(&mut p);
        assert_eq!(p.acknowledge(), Some(0x0B));
    }

    #[test]
    fn special_fully_nested_mode_lets_a_higher_slave_request_through() {
        let mut p = Pic::new();
        p.write(M_CMD, 0x11);
        p.write(M_DATA, 0x08);
        p.write(M_DATA, 0x04);
        p.write(M_DATA, 0x11); // SFNM, 8086
        p.write(M_DATA, 0x00);
        p.write(S_CMD, 0x11);
        p.write(S_DATA, 0x70);
        p.write(S_DATA, 0x02);
        p.write(S_DATA, 0x01);
        p.write(S_DATA, 0x00);
        pulse(&mut p, 12);
        assert_eq!(p.acknowledge(), Some(0x74));
        pulse(&mut p, 14);
        assert!(
            !p.interrupt_output(),
            "lower slave level still blocked by the slave"
        );
        pulse(&mut p, 9);
        assert!(
            p.interrupt_output(),
            "SFNM: a higher slave level reaches the CPU"
        );
        assert_eq!(p.acknowledge(), Some(0x71));
        pulse(&mut p, 3);
        p.write(S_CMD, 0x20);
        p.write(S_CMD, 0x20);
        assert_eq!(
            p.acknowledge(),
            Some(0x76),
            "the waiting slave level, via SFNM"
        );
        p.write(S_CMD, 0x20);
        assert!(!p.interrupt_output(), "IR3 is below IR2 even in SFNM");
        p.write(M_CMD, 0x20); // the slave's ISR is empty: now the master's EOI
        assert_eq!(p.acknowledge(), Some(0x0B));
    }

    #[test]
    fn special_mask_mode_enables_lower_levels() {
        let mut p = bios_pic();
        pulse(&mut p, 2 + 1);
        assert_eq!(p.acknowledge(), Some(0x0B));
        pulse(&mut p, 5);
        assert!(!p.interrupt_output());
        p.write(M_DATA, 0x08); // mask the level in service
        p.write(M_CMD, 0x68); // ESMM | SMM
        assert!(p.state().master.special_mask);
        assert!(
            p.interrupt_output(),
            "lower level enabled in special mask mode"
        );
        assert_eq!(p.acknowledge(), Some(0x0D));
        pulse(&mut p, 5);
        assert!(
            !p.interrupt_output(),
            "a level in service still blocks itself"
        );
        p.write(M_CMD, 0x60 | 5);
        assert!(p.interrupt_output());
        p.write(M_CMD, 0x48); // ESMM without SMM: leave special mask mode
        assert!(!p.state().master.special_mask);
        assert!(!p.interrupt_output(), "IR3 in service blocks again");
        p.write(M_CMD, 0x08); // OCW3 without ESMM keeps the mode
        assert!(!p.state().master.special_mask);
    }

    #[test]
    fn poll_mode_reads_and_acknowledges() {
        let mut p = bios_pic();
        p.write(M_DATA, 0xFF); // polled systems mask everything
        p.write(M_CMD, 0x0C);
        assert_eq!(p.read(M_CMD), 0x00, "nothing pending");
        p.write(M_DATA, 0x00);
        pulse(&mut p, 6);
        pulse(&mut p, 4);
        p.write(M_CMD, 0x0C);
        assert_eq!(p.read(M_CMD), 0x84);
        assert_eq!(read_isr(&mut p, false), 0x10, "poll read acknowledged IR4");
        assert_eq!(p.read(M_CMD), 0x40, "poll is one-shot: reads IRR again");
        eoi_master(&mut p);
        p.write(M_CMD, 0x0C);
        assert_eq!(p.read(M_DATA), 0x86, "either port answers a poll");
        eoi_master(&mut p);
        p.write(M_CMD, 0x0C);
        assert_eq!(p.read(M_CMD), 0x00);
    }

    #[test]
    fn poll_through_the_cascade() {
        let mut p = bios_pic();
        pulse(&mut p, 13);
        p.write(M_CMD, 0x0C);
        assert_eq!(p.read(M_CMD), 0x82);
        p.write(S_CMD, 0x0C);
        assert_eq!(p.read(S_CMD), 0x85);
        assert_eq!(read_isr(&mut p, true), 0x20);
        eoi_slave(&mut p);
        assert!(!p.interrupt_output());
    }

    #[test]
    fn read_irr_and_isr_select_is_sticky() {
        let mut p = bios_pic();
        pulse(&mut p, 1);
        pulse(&mut p, 2 + 3);
        assert_eq!(p.read(M_CMD), 0x22, "IRR by default");
        p.acknowledge();
        p.write(M_CMD, 0x0B);
        assert_eq!(p.read(M_CMD), 0x02);
        assert_eq!(p.read(M_CMD), 0x02, "still ISR");
        p.write(M_CMD, 0x08); // RR = 0 keeps the selection
        assert_eq!(p.read(M_CMD), 0x02);
        p.write(M_CMD, 0x0A);
        assert_eq!(p.read(M_CMD), 0x20);
        assert_eq!(p.read(M_DATA), 0x00, "data port reads IMR");
    }

    #[test]
    fn irq2_cannot_be_driven_and_bad_numbers_are_ignored() {
        let mut p = bios_pic();
        p.set_irq(2, true);
        p.set_irq(16, true);
        p.set_irq(255, true);
        assert!(!p.interrupt_output());
    }

    #[test]
    fn unmapped_offsets_float() {
        let mut p = bios_pic();
        let before = p.clone();
        p.write(6, 0x11);
        p.write(0xFFFF, 0x11);
        assert_eq!(p, before);
        assert_eq!(p.read(6), 0xFF);
    }

    #[test]
    fn snapshot_round_trips_with_a_pending_slave_request() {
        let mut p = bios_pic();
        pulse(&mut p, 10);
        pulse(&mut p, 4);
        let q = Pic::from_state(p.state().clone());
        assert_eq!(q, p);
        let mut q = q;
        assert_eq!(q.acknowledge(), Some(0x72));
        assert_eq!(p.acknowledge(), Some(0x72));
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
            let mut p = if seed % 2 == 0 {
                bios_pic()
            } else {
                Pic::new()
            };
            for _ in 0..2000 {
                let r = rng.next();
                let value = (r >> 8) as u8;
                match r % 8 {
                    0 | 1 => p.write((r >> 16) as u16 % 7, value),
                    2 => {
                        p.read((r >> 16) as u16 % 7);
                    }
                    3 | 4 => p.set_irq(value % 18, r & (1 << 40) != 0),
                    5 => {
                        if let Some(v) = p.acknowledge() {
                            let s = p.state();
                            let base = v & 0xF8;
                            assert!(
                                base == s.master.vector_base || base == s.slave.vector_base,
                                "vector {v:#x} from a programmed base"
                            );
                        }
                    }
                    6 => {
                        let _ = p.interrupt_output();
                    }
                    _ => p.write(if r & 1 == 0 { M_CMD } else { S_CMD }, 0x20),
                }
                let s = p.state();
                assert!(s.master.highest_priority < 8 && s.slave.highest_priority < 8);
                assert_eq!(s.master.elcr & !ELCR_MASTER_MASK, 0);
                assert_eq!(s.slave.elcr & !ELCR_SLAVE_MASK, 0);
            }
        }
    }
}
