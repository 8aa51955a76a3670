//! The National Semiconductor PC16550D UART with 16-byte FIFOs (datasheet:
//! "PC16550D Universal Asynchronous Receiver/Transmitter with FIFOs").
//!
//! The machine places it (COM1 0x3F8/IRQ4, COM2 0x2F8/IRQ3, COM3 0x3E8/IRQ4,
//! COM4 0x2E8/IRQ3); the device sees offsets 0-7: RBR/THR (DLL with DLAB),
//! IER (DLM with DLAB), IIR/FCR, LCR, MCR, LSR, MSR, SCR.
//!
//! Transmission is instantaneous: a THR write goes straight to the injected
//! [`SerialOutput`] (or, in loopback, to the receiver), so THRE and TEMT stay
//! set and only the THR-empty interrupt shows that a byte went out. Bytes from
//! the host enter the receive FIFO through [`Uart::enqueue_input`]; the
//! character-timeout interrupt (four character times with no FIFO activity)
//! runs on [`Uart::tick`] in periods of the 1.8432 MHz UART clock, or at once
//! when the machine calls [`Uart::input_idle`]. As on PCs, the interrupt
//! reaches the line only while MCR OUT2 is set.
//!
//! Not modelled: parity/framing errors from the host (the host link is
//! error-free; [`Uart::receive_break`] gives BI), DMA mode signalling, the
//! per-character error positions in the FIFO (LSR bit 7 tracks the break).
//!
//! ```
//! use oxide86_devices::uart::{Uart, LSR_DR, REG_DATA, REG_LSR};
//! use oxide86_devices::{NoIrq, PortIo};
//!
//! let mut com1 = Uart::new(NoIrq, Vec::new()); // transmitted bytes collect in a Vec
//! com1.write(REG_DATA, b'A');
//! assert_eq!(com1.output(), b"A");
//! com1.enqueue_input(b"x");
//! assert_eq!(com1.read(REG_LSR) & LSR_DR, LSR_DR);
//! assert_eq!(com1.read(REG_DATA), b'x');
//! ```

use std::collections::VecDeque;

use crate::{IrqLine, PortIo, Ticks};

/// The UART's input clock: ticks of [`Uart::tick`] per second.
pub const UART_CLOCK_HZ: u64 = 1_843_200;
/// The PC's serial ports COM1-COM4: base port and IRQ of each.
pub const COM_PORTS: [(u16, u8); 4] = [(0x3F8, 4), (0x2F8, 3), (0x3E8, 4), (0x2E8, 3)];
/// Receive and transmit FIFO depth.
pub const FIFO_SIZE: usize = 16;

/// Receiver buffer (read) / transmitter holding register (write); DLL with DLAB.
pub const REG_DATA: u16 = 0;
/// Interrupt enable register; DLM with DLAB.
pub const REG_IER: u16 = 1;
/// Interrupt identification (read) / FIFO control (write).
pub const REG_IIR_FCR: u16 = 2;
/// Line control register.
pub const REG_LCR: u16 = 3;
/// Modem control register.
pub const REG_MCR: u16 = 4;
/// Line status register.
pub const REG_LSR: u16 = 5;
/// Modem status register.
pub const REG_MSR: u16 = 6;
/// Scratch register.
pub const REG_SCR: u16 = 7;

/// IER: received data available (and character timeout).
pub const IER_RDA: u8 = 1 << 0;
/// IER: transmitter holding register empty.
pub const IER_THRE: u8 = 1 << 1;
/// IER: receiver line status.
pub const IER_RLS: u8 = 1 << 2;
/// IER: modem status.
pub const IER_MS: u8 = 1 << 3;

/// IIR: no interrupt pending.
pub const IIR_NONE: u8 = 0x01;
/// IIR: receiver line status (highest priority).
pub const IIR_RLS: u8 = 0x06;
/// IIR: received data available.
pub const IIR_RDA: u8 = 0x04;
/// IIR: character timeout (FIFO mode).
pub const IIR_TIMEOUT: u8 = 0x0C;
/// IIR: transmitter holding register empty.
pub const IIR_THRE: u8 = 0x02;
/// IIR: modem status (lowest priority).
pub const IIR_MS: u8 = 0x00;
/// IIR: both FIFO-enabled bits (bits 6-7), set while FCR bit 0 is.
pub const IIR_FIFO_ENABLED: u8 = 0xC0;

/// FCR: enable both FIFOs.
pub const FCR_ENABLE: u8 = 1 << 0;
/// FCR: clear the receive FIFO (self-clearing).
pub const FCR_CLEAR_RX: u8 = 1 << 1;
/// FCR: clear the transmit FIFO (self-clearing).
pub const FCR_CLEAR_TX: u8 = 1 << 2;
/// FCR: DMA mode select (stored only).
pub const FCR_DMA: u8 = 1 << 3;
/// FCR: receive trigger level (bits 6-7: 1, 4, 8 or 14 bytes).
pub const FCR_TRIGGER_MASK: u8 = 0xC0;

/// LCR: word length select (bits 0-1: 5 to 8 bits).
pub const LCR_WORD_MASK: u8 = 0x03;
/// LCR: two stop bits (1.5 with 5-bit words).
pub const LCR_STOP: u8 = 1 << 2;
/// LCR: parity enable.
pub const LCR_PARITY: u8 = 1 << 3;
/// LCR: set break (stored only).
pub const LCR_BREAK: u8 = 1 << 6;
/// LCR: divisor latch access bit.
pub const LCR_DLAB: u8 = 1 << 7;

/// MCR: data terminal ready.
pub const MCR_DTR: u8 = 1 << 0;
/// MCR: request to send.
pub const MCR_RTS: u8 = 1 << 1;
/// MCR: OUT1 (unused on PCs; RI in loopback).
pub const MCR_OUT1: u8 = 1 << 2;
/// MCR: OUT2, which gates the interrupt onto the bus on PCs (DCD in loopback).
pub const MCR_OUT2: u8 = 1 << 3;
/// MCR: local loopback.
pub const MCR_LOOP: u8 = 1 << 4;

/// LSR: data ready.
pub const LSR_DR: u8 = 1 << 0;
/// LSR: overrun error.
pub const LSR_OE: u8 = 1 << 1;
/// LSR: parity error.
pub const LSR_PE: u8 = 1 << 2;
/// LSR: framing error.
pub const LSR_FE: u8 = 1 << 3;
/// LSR: break interrupt.
pub const LSR_BI: u8 = 1 << 4;
/// LSR: transmitter holding register (or TX FIFO) empty.
pub const LSR_THRE: u8 = 1 << 5;
/// LSR: transmitter empty (holding and shift registers).
pub const LSR_TEMT: u8 = 1 << 6;
/// LSR: error in the receive FIFO (FIFO mode).
pub const LSR_FIFO_ERROR: u8 = 1 << 7;
const LSR_ERRORS: u8 = LSR_OE | LSR_PE | LSR_FE | LSR_BI; // cleared by reading LSR

/// MSR: delta clear to send.
pub const MSR_DCTS: u8 = 1 << 0;
/// MSR: delta data set ready.
pub const MSR_DDSR: u8 = 1 << 1;
/// MSR: trailing edge ring indicator.
pub const MSR_TERI: u8 = 1 << 2;
/// MSR: delta data carrier detect.
pub const MSR_DDCD: u8 = 1 << 3;
/// MSR: clear to send.
pub const MSR_CTS: u8 = 1 << 4;
/// MSR: data set ready.
pub const MSR_DSR: u8 = 1 << 5;
/// MSR: ring indicator.
pub const MSR_RI: u8 = 1 << 6;
/// MSR: data carrier detect.
pub const MSR_DCD: u8 = 1 << 7;
const MSR_DELTAS: u8 = MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD;

/// Where transmitted bytes go (a terminal, a file, a test buffer).
pub trait SerialOutput {
    /// One byte the guest transmitted; by default it is dropped.
    fn write_byte(&mut self, _byte: u8) {}
}

/// An output that drops every byte.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOutput;

impl SerialOutput for NoOutput {}

impl SerialOutput for Vec<u8> {
    fn write_byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

/// Adapts any [`std::io::Write`] (stdout, a file, a socket) as the output.
/// A host write error loses the byte, as a disconnected line would; wrap
/// the writer in a `LineWriter` or `BufWriter` to choose its flushing.
#[derive(Debug, Default)]
pub struct WriteOutput<W: std::io::Write>(pub W);

impl<W: std::io::Write> SerialOutput for WriteOutput<W> {
    fn write_byte(&mut self, byte: u8) {
        let _ = self.0.write_all(&[byte]);
    }
}

/// Snapshot state of the UART: plain data, no handles, no host time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UartState {
    /// The divisor latch (DLM:DLL); 0 counts as 65536.
    pub divisor: u16,
    /// Interrupt enable register (low four bits).
    pub ier: u8,
    /// FIFO control as last written (enable, DMA and trigger bits).
    pub fcr: u8,
    /// Line control register.
    pub lcr: u8,
    /// Modem control register (low five bits).
    pub mcr: u8,
    /// The LSR's latched error bits (OE, PE, FE, BI, FIFO error).
    pub lsr_errors: u8,
    /// Modem status: line states (high nibble) and deltas (low nibble).
    pub msr: u8,
    /// The host's modem lines (CTS, DSR, RI, DCD in MSR bit positions),
    /// which show in the MSR outside loopback.
    pub host_lines: u8,
    /// Scratch register.
    pub scr: u8,
    /// The receive FIFO (one byte deep with FIFOs off).
    pub rx: VecDeque<u8>,
    /// A THR-empty interrupt is pending.
    pub thre_pending: bool,
    /// A character-timeout interrupt is pending.
    pub timeout_pending: bool,
    /// Ticks since the receive FIFO last took or gave a byte.
    pub rx_idle: u64,
}

impl Default for UartState {
    /// The state after a hardware reset (MR), with the host's modem lines
    /// (CTS, DSR, DCD) asserted as by a connected terminal.
    fn default() -> Self {
        let host_lines = MSR_CTS | MSR_DSR | MSR_DCD;
        Self {
            divisor: 12, // 9600 baud, what PC BIOSes program first
            ier: 0,
            fcr: 0,
            lcr: 0x03,
            mcr: 0,
            lsr_errors: 0,
            msr: host_lines,
            host_lines,
            scr: 0,
            rx: VecDeque::new(),
            thre_pending: false,
            timeout_pending: false,
            rx_idle: 0,
        }
    }
}

/// The 16550A UART, driving its IRQ line through `L` and transmitting
/// through `O`.
#[derive(Debug)]
pub struct Uart<L: IrqLine, O: SerialOutput> {
    state: UartState,
    irq: L,
    output: O,
}

impl<L: IrqLine, O: SerialOutput> Uart<L, O> {
    /// A UART after reset.
    pub fn new(irq: L, output: O) -> Self {
        Self::from_state(UartState::default(), irq, output)
    }

    /// Builds the device from a snapshot, restoring the IRQ wire's level.
    pub fn from_state(mut state: UartState, irq: L, output: O) -> Self {
        let cap = if state.fcr & FCR_ENABLE != 0 {
            FIFO_SIZE
        } else {
            1
        };
        state.rx.truncate(cap);
        let mut uart = Self { state, irq, output };
        uart.update_irq();
        uart
    }

    /// The snapshot state.
    pub fn state(&self) -> &UartState {
        &self.state
    }

    /// The IRQ wire.
    pub fn irq(&self) -> &L {
        &self.irq
    }

    /// The output sink.
    pub fn output(&self) -> &O {
        &self.output
    }

    /// The output sink, mutably (to drain a buffer).
    pub fn output_mut(&mut self) -> &mut O {
        &mut self.output
    }

    fn fifo_enabled(&self) -> bool {
        self.state.fcr & FCR_ENABLE != 0
    }

    fn loopback(&self) -> bool {
        self.state.mcr & MCR_LOOP != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled() {
            FIFO_SIZE
        } else {
            1
        }
    }

    fn trigger_level(&self) -> usize {
        if !self.fifo_enabled() {
            return 1;
        }
        match self.state.fcr >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    /// Ticks in four character times at the current divisor and format.
    fn timeout_ticks(&self) -> u64 {
        let lcr = self.state.lcr;
        let data_bits = 5 + u64::from(lcr & LCR_WORD_MASK);
        let parity = u64::from(lcr & LCR_PARITY != 0);
        // Stop bits in halves: 1, or 2 (1.5 with a 5-bit word).
        let stop_halves = match (lcr & LCR_STOP != 0, data_bits) {
            (false, _) => 2,
            (true, 5) => 3,
            (true, _) => 4,
        };
        let half_bits = 2 * (1 + data_bits + parity) + stop_halves;
        let divisor = if self.state.divisor == 0 {
            65_536
        } else {
            u64::from(self.state.divisor)
        };
        // 16 clocks per bit; four characters.
        4 * divisor * 16 * half_bits / 2
    }

    /// The LSR as the guest reads it (before the read clears anything).
    fn lsr(&self) -> u8 {
        let dr = if self.state.rx.is_empty() { 0 } else { LSR_DR };
        self.state.lsr_errors | dr | LSR_THRE | LSR_TEMT
    }

    /// The highest-priority pending and enabled interrupt, as IIR bits 0-3.
    fn pending(&self) -> u8 {
        let (s, ier) = (&self.state, self.state.ier);
        if ier & IER_RLS != 0 && s.lsr_errors & LSR_ERRORS != 0 {
            IIR_RLS
        } else if ier & IER_RDA != 0 && s.rx.len() >= self.trigger_level() {
            IIR_RDA
        } else if ier & IER_RDA != 0 && s.timeout_pending {
            IIR_TIMEOUT
        } else if ier & IER_THRE != 0 && s.thre_pending {
            IIR_THRE
        } else if ier & IER_MS != 0 && s.msr & MSR_DELTAS != 0 {
            IIR_MS
        } else {
            IIR_NONE
        }
    }

    fn update_irq(&mut self) {
        let level = self.pending() != IIR_NONE && self.state.mcr & MCR_OUT2 != 0;
        self.irq.set_level(level);
    }

    /// Puts one received byte in the FIFO, or records an overrun.
    fn receive(&mut self, byte: u8) -> bool {
        let accepted = if self.state.rx.len() < self.rx_capacity() {
            self.state.rx.push_back(byte);
            true
        } else {
            if !self.fifo_enabled() {
                // The 16450 holding register is overwritten.
                self.state.rx.clear();
                self.state.rx.push_back(byte);
            }
            self.state.lsr_errors |= LSR_OE;
            false
        };
        self.state.rx_idle = 0;
        self.state.timeout_pending = false;
        accepted
    }

    /// How many bytes the receive FIFO can take now without an overrun (0 in
    /// loopback, where the receiver is cut off from the line).
    pub fn input_space(&self) -> usize {
        if self.loopback() {
            0
        } else {
            self.rx_capacity() - self.state.rx.len().min(self.rx_capacity())
        }
    }

    /// Bytes from the host's end of the line. Those beyond
    /// [`Self::input_space`] overrun (OE is set and, with FIFOs on, they are
    /// lost; without, each replaces the held byte). Returns how many were
    /// stored without overrun. Ignored in loopback.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        if self.loopback() || bytes.is_empty() {
            return 0;
        }
        let accepted = bytes.iter().filter(|b| self.receive(**b)).count();
        self.update_irq();
        accepted
    }

    /// A break condition from the host: a zero byte with BI (and, in FIFO
    /// mode, the FIFO error bit).
    pub fn receive_break(&mut self) {
        if self.loopback() {
            return;
        }
        self.receive(0);
        self.state.lsr_errors |= LSR_BI
            | if self.fifo_enabled() {
                LSR_FIFO_ERROR
            } else {
                0
            };
        self.update_irq();
    }

    /// Sets the host's modem lines (CTS, DSR, RI, DCD); changes set the MSR
    /// delta bits (RI only on its trailing edge) outside loopback.
    pub fn set_modem_lines(&mut self, cts: bool, dsr: bool, ri: bool, dcd: bool) {
        let lines = (u8::from(cts) * MSR_CTS)
            | (u8::from(dsr) * MSR_DSR)
            | (u8::from(ri) * MSR_RI)
            | (u8::from(dcd) * MSR_DCD);
        self.state.host_lines = lines;
        if !self.loopback() {
            self.set_msr_lines(lines);
        }
    }

    /// Moves the MSR's line bits to `lines`, latching the deltas.
    fn set_msr_lines(&mut self, lines: u8) {
        let old = self.state.msr;
        let changed = (old ^ lines) & 0xF0;
        let mut deltas = 0;
        if changed & MSR_CTS != 0 {
            deltas |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            deltas |= MSR_DDSR;
        }
        if changed & MSR_RI != 0 && old & MSR_RI != 0 {
            deltas |= MSR_TERI;
        }
        if changed & MSR_DCD != 0 {
            deltas |= MSR_DDCD;
        }
        self.state.msr = lines | (old & MSR_DELTAS) | deltas;
        self.update_irq();
    }

    /// The modem lines the MCR drives back in loopback.
    fn loopback_lines(mcr: u8) -> u8 {
        let bit = |m: u8, s: u8| if mcr & m != 0 { s } else { 0 };
        bit(MCR_RTS, MSR_CTS)
            | bit(MCR_DTR, MSR_DSR)
            | bit(MCR_OUT1, MSR_RI)
            | bit(MCR_OUT2, MSR_DCD)
    }

    /// Advances virtual time by `ticks` periods of the 1.8432 MHz clock;
    /// raises the character timeout once the FIFO has held data untouched
    /// for four character times.
    pub fn tick(&mut self, ticks: Ticks) {
        self.state.rx_idle = self.state.rx_idle.saturating_add(ticks.0);
        if !self.state.timeout_pending
            && self.fifo_enabled()
            && !self.state.rx.is_empty()
            && self.state.rx_idle >= self.timeout_ticks()
        {
            self.state.timeout_pending = true;
            self.update_irq();
        }
    }

    /// Ticks until the UART raises an interrupt on its own (the character
    /// timeout), if it will; everything else follows port accesses or host
    /// input.
    pub fn ticks_until_next_irq(&self) -> Option<Ticks> {
        let armed = !self.state.timeout_pending && self.fifo_enabled() && !self.state.rx.is_empty();
        armed.then(|| Ticks(self.timeout_ticks().saturating_sub(self.state.rx_idle)))
    }

    /// The machine says no more input is coming for now: raises the
    /// character timeout at once if the FIFO holds data (FIFO mode).
    pub fn input_idle(&mut self) {
        let idle = self.timeout_ticks();
        if self.state.rx_idle < idle {
            self.tick(Ticks(idle - self.state.rx_idle));
        }
    }

    fn transmit(&mut self, byte: u8) {
        if self.loopback() {
            self.receive(byte);
        } else {
            self.output.write_byte(byte);
        }
        // The holding register empties again at once.
        self.state.thre_pending = true;
    }

    fn write_fcr(&mut self, value: u8) {
        let was = self.fifo_enabled();
        let enable = value & FCR_ENABLE != 0;
        if enable != was || value & FCR_CLEAR_RX != 0 {
            // Changing the enable bit clears both FIFOs.
            self.state.rx.clear();
            self.state.timeout_pending = false;
            self.state.rx_idle = 0;
            self.state.lsr_errors &= !LSR_FIFO_ERROR;
        }
        self.state.fcr = value & (FCR_ENABLE | FCR_DMA | FCR_TRIGGER_MASK);
        if !enable {
            self.state.lsr_errors &= !LSR_FIFO_ERROR;
        }
    }
}

impl<L: IrqLine, O: SerialOutput> PortIo for Uart<L, O> {
    fn read(&mut self, offset: u16) -> u8 {
        let dlab = self.state.lcr & LCR_DLAB != 0;
        let value = match offset {
            REG_DATA if dlab => self.state.divisor as u8,
            REG_DATA => {
                let byte = self.state.rx.pop_front().unwrap_or(0);
                self.state.rx_idle = 0;
                self.state.timeout_pending = false;
                if self.state.rx.is_empty() {
                    self.state.lsr_errors &= !LSR_FIFO_ERROR;
                }
                byte
            }
            REG_IER if dlab => (self.state.divisor >> 8) as u8,
            REG_IER => self.state.ier,
            REG_IIR_FCR => {
                let id = self.pending();
                if id == IIR_THRE {
                    // Reading IIR with THRE as the source clears it.
                    self.state.thre_pending = false;
                }
                id | if self.fifo_enabled() {
                    IIR_FIFO_ENABLED
                } else {
                    0
                }
            }
            REG_LCR => self.state.lcr,
            REG_MCR => self.state.mcr,
            REG_LSR => {
                let lsr = self.lsr();
                self.state.lsr_errors &= !LSR_ERRORS;
                lsr
            }
            REG_MSR => {
                let msr = self.state.msr;
                self.state.msr &= !MSR_DELTAS;
                msr
            }
            REG_SCR => self.state.scr,
            _ => 0xFF,
        };
        self.update_irq();
        value
    }

    fn write(&mut self, offset: u16, value: u8) {
        let dlab = self.state.lcr & LCR_DLAB != 0;
        match offset {
            REG_DATA if dlab => {
                self.state.divisor = (self.state.divisor & 0xFF00) | u16::from(value)
            }
            REG_DATA => self.transmit(value),
            REG_IER if dlab => {
                self.state.divisor = (self.state.divisor & 0x00FF) | (u16::from(value) << 8)
            }
            REG_IER => {
                let old = self.state.ier;
                self.state.ier = value & 0x0F;
                // Enabling the THRE interrupt while the holding register is
                // empty (it always is here) raises it; disabling drops it.
                if old & IER_THRE == 0 && value & IER_THRE != 0 {
                    self.state.thre_pending = true;
                } else if value & IER_THRE == 0 {
                    self.state.thre_pending = false;
                }
            }
            REG_IIR_FCR => self.write_fcr(value),
            REG_LCR => self.state.lcr = value,
            REG_MCR => {
                let value = value & 0x1F;
                let was_loop = self.loopback();
                self.state.mcr = value;
                if value & MCR_LOOP != 0 {
                    self.set_msr_lines(Self::loopback_lines(value));
                } else if was_loop {
                    self.set_msr_lines(self.state.host_lines);
                }
            }
            REG_SCR => self.state.scr = value,
            _ => {} // LSR and MSR are read only (factory test writes ignored)
        }
        self.update_irq();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test double for the IRQ wire: level and rising edges.
    #[derive(Debug, Default)]
    struct Probe {
        high: bool,
        rises: u32,
    }
    impl IrqLine for Probe {
        fn set_level(&mut self, high: bool) {
            self.rises += u32::from(high && !self.high);
            self.high = high;
        }
    }

    type TestUart = Uart<Probe, Vec<u8>>;

    fn uart() -> TestUart {
        Uart::new(Probe::default(), Vec::new())
    }

    /// A UART programmed as Linux's 8250 driver leaves it: 8N1, FIFOs with a
    /// given trigger, OUT2 on, the given interrupts enabled.
    fn programmed(fcr: u8, ier: u8) -> TestUart {
        let mut u = uart();
        u.write(REG_LCR, LCR_DLAB | 0x03);
        u.write(REG_DATA, 1); // 115200 baud
        u.write(REG_IER, 0);
        u.write(REG_LCR, 0x03);
        u.write(REG_IIR_FCR, fcr);
        u.write(REG_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
        u.write(REG_IER, ier);
        u
    }

    #[test]
    fn reset_values() {
        let mut u = uart();
        assert_eq!(u.read(REG_IER), 0);
        assert_eq!(u.read(REG_IIR_FCR), IIR_NONE);
        assert_eq!(u.read(REG_LCR), 0x03);
        assert_eq!(u.read(REG_MCR), 0);
        assert_eq!(u.read(REG_LSR), LSR_THRE | LSR_TEMT);
        assert_eq!(u.read(REG_MSR), MSR_CTS | MSR_DSR | MSR_DCD);
        assert_eq!(u.read(REG_SCR), 0);
        assert_eq!(u.read(8), 0xFF);
        assert!(!u.irq().high);
    }

    #[test]
    fn divisor_latch_and_scratch() {
        let mut u = uart();
        u.write(REG_LCR, LCR_DLAB | 0x03);
        u.write(REG_DATA, 0x34);
        u.write(REG_IER, 0x12);
        assert_eq!(u.read(REG_DATA), 0x34);
        assert_eq!(u.read(REG_IER), 0x12);
        assert_eq!(u.state().divisor, 0x1234);
        u.write(REG_LCR, 0x03);
        assert_eq!(u.read(REG_IER), 0, "IER untouched by the DLM write");
        assert!(u.output().is_empty(), "DLL write did not transmit");
        u.write(REG_SCR, 0xA5);
        assert_eq!(u.read(REG_SCR), 0xA5);
    }

    #[test]
    fn transmit_goes_to_the_sink() {
        let mut u = uart();
        for b in b"hello" {
            u.write(REG_DATA, *b);
        }
        assert_eq!(u.output(), b"hello");
        assert_eq!(u.read(REG_LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
        u.output_mut().clear();
        assert!(u.output().is_empty());
    }

    #[test]
    fn write_output_adapts_io_write() {
        let mut u = Uart::new(
            Probe::default(),
            WriteOutput(std::io::Cursor::new(Vec::new())),
        );
        u.write(REG_DATA, b'o');
        u.write(REG_DATA, b'k');
        assert_eq!(u.output().0.get_ref(), b"ok");
    }

    #[test]
    fn no_output_sink_drops_bytes() {
        let mut u = Uart::new(Probe::default(), NoOutput);
        u.write(REG_DATA, b'x');
        assert_eq!(u.read(REG_LSR) & LSR_THRE, LSR_THRE);
    }

    #[test]
    fn thre_interrupt_arms_on_ier_write_and_clears_on_iir_read() {
        let mut u = programmed(0, 0);
        assert!(!u.irq().high);
        u.write(REG_IER, IER_THRE);
        assert!(u.irq().high);
        assert_eq!(u.read(REG_IIR_FCR), IIR_THRE);
        assert!(!u.irq().high);
        assert_eq!(u.read(REG_IIR_FCR), IIR_NONE);
        // Re-writing with THRE still set does not re-arm; toggling does.
        u.write(REG_IER, IER_THRE);
        assert_eq!(u.read(REG_IIR_FCR), IIR_NONE);
        u.write(REG_IER, 0);
        u.write(REG_IER, IER_THRE);
        assert_eq!(u.read(REG_IIR_FCR), IIR_THRE);
        // A THR write raises it again; a second THR write keeps it.
        u.write(REG_DATA, b'a');
        assert!(u.irq().high);
        u.write(REG_DATA, b'b');
        assert_eq!(u.read(REG_IIR_FCR), IIR_THRE);
        assert_eq!(u.output(), b"ab");
        // Disabling THRE drops the pending interrupt.
        u.write(REG_DATA, b'c');
        u.write(REG_IER, 0);
        assert!(!u.irq().high);
        u.write(REG_IER, IER_THRE);
        assert!(u.irq().high);
    }

    #[test]
    fn out2_gates_the_line() {
        let mut u = programmed(0, IER_THRE);
        assert!(u.irq().high);
        u.write(REG_MCR, MCR_DTR | MCR_RTS);
        assert!(!u.irq().high);
        assert_eq!(
            u.read(REG_IIR_FCR) & 0x0F,
            IIR_THRE,
            "still pending inside the chip"
        );
        u.write(REG_IER, 0);
        u.write(REG_IER, IER_THRE);
        u.write(REG_MCR, MCR_OUT2);
        assert!(u.irq().high);
    }

    #[test]
    fn receive_without_fifo() {
        let mut u = programmed(0, IER_RDA);
        assert_eq!(u.input_space(), 1);
        assert_eq!(u.enqueue_input(b"x"), 1);
        assert!(u.irq().high);
        assert_eq!(u.read(REG_IIR_FCR), IIR_RDA);
        assert_eq!(u.read(REG_LSR) & LSR_DR, LSR_DR);
        assert_eq!(u.input_space(), 0);
        assert_eq!(u.read(REG_DATA), b'x');
        assert!(!u.irq().high);
        assert_eq!(u.read(REG_LSR) & LSR_DR, 0);
        // Overrun replaces the held byte.
        assert_eq!(u.enqueue_input(b"12"), 1);
        assert_eq!(u.read(REG_LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
        assert_eq!(u.read(REG_LSR) & LSR_OE, 0, "LSR read clears OE");
        assert_eq!(u.read(REG_DATA), b'2');
        assert_eq!(u.read(REG_DATA), 0, "empty reads 0");
    }

    #[test]
    fn fifo_trigger_levels() {
        for (bits, level) in [(0x00, 1), (0x40, 4), (0x80, 8), (0xC0, 14)] {
            let mut u = programmed(FCR_ENABLE | bits, IER_RDA);
            assert_eq!(u.read(REG_IIR_FCR), IIR_FIFO_ENABLED | IIR_NONE);
            u.enqueue_input(&vec![b'z'; level - 1]);
            assert!(!u.irq().high, "below trigger {level}");
            u.enqueue_input(b"!");
            assert!(u.irq().high, "at trigger {level}");
            assert_eq!(u.read(REG_IIR_FCR), IIR_FIFO_ENABLED | IIR_RDA);
            u.read(REG_DATA);
            assert!(!u.irq().high, "below trigger again");
        }
    }

    #[test]
    fn fifo_overrun_keeps_the_fifo() {
        let mut u = programmed(FCR_ENABLE, IER_RLS);
        let data: Vec<u8> = (0..20).collect();
        assert_eq!(u.input_space(), 16);
        assert_eq!(u.enqueue_input(&data), 16);
        assert_eq!(u.input_space(), 0);
        assert!(u.irq().high);
        assert_eq!(u.read(REG_IIR_FCR) & 0x0F, IIR_RLS);
        assert_eq!(u.read(REG_LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
        assert!(!u.irq().high);
        let got: Vec<u8> = (0..16).map(|_| u.read(REG_DATA)).collect();
        assert_eq!(got, (0..16).collect::<Vec<u8>>());
        assert_eq!(u.read(REG_LSR) & LSR_DR, 0);
    }

    #[test]
    fn fcr_clears_and_toggling_fifo_mode_flushes() {
        let mut u = programmed(FCR_ENABLE, 0);
        u.enqueue_input(b"abc");
        u.write(REG_IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
        assert_eq!(u.read(REG_LSR) & LSR_DR, 0);
        u.enqueue_input(b"abc");
        u.write(REG_IIR_FCR, FCR_ENABLE | 0x80); // trigger change only
        assert_eq!(u.state().rx.len(), 3);
        u.write(REG_IIR_FCR, 0);
        assert_eq!(u.state().rx.len(), 0);
        assert_eq!(u.read(REG_IIR_FCR) & IIR_FIFO_ENABLED, 0);
    }

    #[test]
    fn character_timeout_after_four_character_times() {
        let mut u = programmed(FCR_ENABLE | 0xC0, IER_RDA);
        // 8N1 at divisor 1: 10 bits * 16 clocks * 4 characters.
        let timeout = 4 * 16 * 10;
        u.enqueue_input(b"hi");
        assert_eq!(u.ticks_until_next_irq(), Some(Ticks(timeout)));
        u.tick(Ticks(timeout - 1));
        assert!(!u.irq().high);
        u.tick(Ticks(1));
        assert!(u.irq().high);
        assert_eq!(u.read(REG_IIR_FCR), IIR_FIFO_ENABLED | IIR_TIMEOUT);
        assert_eq!(u.read(REG_DATA), b'h');
        assert!(!u.irq().high, "reading RBR clears the timeout");
        u.tick(Ticks(timeout));
        assert!(u.irq().high, "and restarts it");
        assert_eq!(u.read(REG_DATA), b'i');
        assert!(!u.irq().high);
        u.tick(Ticks(10 * timeout));
        assert!(!u.irq().high, "no timeout on an empty FIFO");
        assert_eq!(u.ticks_until_next_irq(), None);
    }

    #[test]
    fn timeout_length_follows_format_and_divisor() {
        let mut u = uart();
        u.write(REG_IIR_FCR, FCR_ENABLE);
        u.write(REG_LCR, LCR_DLAB);
        u.write(REG_DATA, 12);
        u.write(REG_LCR, LCR_STOP | LCR_PARITY | 0x03); // 8E2: 12 bits
        u.enqueue_input(b"x");
        assert_eq!(u.ticks_until_next_irq(), Some(Ticks(4 * 12 * 16 * 12)));
        u.write(REG_LCR, LCR_STOP); // 5 data bits, 1.5 stop: 7.5 bits
        assert_eq!(u.ticks_until_next_irq(), Some(Ticks(4 * 12 * 16 * 15 / 2)));
        u.write(REG_LCR, LCR_DLAB);
        u.write(REG_DATA, 0);
        u.write(REG_IER, 0); // divisor 0 counts as 65536
        u.write(REG_LCR, 0x03);
        assert_eq!(u.ticks_until_next_irq(), Some(Ticks(4 * 65_536 * 16 * 10)));
    }

    #[test]
    fn input_idle_raises_the_timeout_at_once() {
        let mut u = programmed(FCR_ENABLE | 0xC0, IER_RDA);
        u.input_idle();
        assert!(!u.irq().high, "nothing buffered");
        u.enqueue_input(b"abc");
        u.input_idle();
        assert!(u.irq().high);
        assert_eq!(u.read(REG_IIR_FCR), IIR_FIFO_ENABLED | IIR_TIMEOUT);
    }

    #[test]
    fn interrupt_priorities() {
        let mut u = programmed(FCR_ENABLE, IER_RDA | IER_THRE | IER_RLS | IER_MS);
        u.set_modem_lines(false, true, false, true);
        u.enqueue_input(&[0; 17]); // data plus overrun
        assert_eq!(u.read(REG_IIR_FCR) & 0x0F, IIR_RLS);
        u.read(REG_LSR);
        assert_eq!(u.read(REG_IIR_FCR) & 0x0F, IIR_RDA);
        while u.read(REG_LSR) & LSR_DR != 0 {
            u.read(REG_DATA);
        }
        assert_eq!(u.read(REG_IIR_FCR) & 0x0F, IIR_THRE);
        assert_eq!(u.read(REG_IIR_FCR) & 0x0F, IIR_MS);
        assert_eq!(u.read(REG_MSR), MSR_DSR | MSR_DCD | MSR_DCTS);
        assert_eq!(u.read(REG_IIR_FCR) & 0x0F, IIR_NONE);
        assert!(!u.irq().high);
    }

    #[test]
    fn modem_status_deltas() {
        let mut u = programmed(0, IER_MS);
        assert!(!u.irq().high);
        u.set_modem_lines(true, true, true, true);
        assert_eq!(u.read(REG_MSR), MSR_CTS | MSR_DSR | MSR_RI | MSR_DCD);
        assert!(!u.irq().high, "RI rising edge is no TERI");
        u.set_modem_lines(true, true, false, false);
        assert!(u.irq().high);
        assert_eq!(u.read(REG_MSR), MSR_CTS | MSR_DSR | MSR_TERI | MSR_DDCD);
        assert!(!u.irq().high);
        assert_eq!(u.read(REG_MSR), MSR_CTS | MSR_DSR);
    }

    #[test]
    fn loopback_echoes_and_drives_the_modem_lines() {
        let mut u = programmed(FCR_ENABLE, IER_RDA);
        u.write(REG_MCR, MCR_LOOP | MCR_OUT2);
        assert_eq!(u.read(REG_MSR) & 0xF0, MSR_DCD);
        u.write(REG_MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS | MCR_DTR | MCR_OUT1);
        assert_eq!(u.read(REG_MSR), 0xF0 | MSR_DCTS | MSR_DDSR);
        u.write(REG_DATA, 0x55);
        assert!(u.output().is_empty());
        assert_eq!(u.read(REG_IIR_FCR), IIR_FIFO_ENABLED | IIR_RDA);
        assert_eq!(u.read(REG_DATA), 0x55);
        assert_eq!(u.input_space(), 0);
        assert_eq!(u.enqueue_input(b"x"), 0);
        u.receive_break();
        assert_eq!(
            u.read(REG_LSR) & LSR_DR,
            0,
            "host input cut off in loopback"
        );
        u.write(REG_MCR, MCR_OUT2);
        assert_eq!(
            u.read(REG_MSR) & 0xF0,
            MSR_CTS | MSR_DSR | MSR_DCD,
            "host lines back"
        );
        assert_eq!(u.input_space(), 16);
    }

    #[test]
    fn break_sets_bi_and_fifo_error() {
        let mut u = programmed(FCR_ENABLE, IER_RLS);
        u.receive_break();
        assert!(u.irq().high);
        assert_eq!(
            u.read(REG_LSR),
            LSR_FIFO_ERROR | LSR_BI | LSR_DR | LSR_THRE | LSR_TEMT
        );
        assert!(!u.irq().high);
        assert_eq!(u.read(REG_DATA), 0);
        assert_eq!(u.read(REG_LSR), LSR_THRE | LSR_TEMT);
    }

    /// The Linux 8250 probe: scratch test, IER test, loopback MSR test, FIFO
    /// size detection through the IIR (drivers/tty/serial/8250/8250_port.c).
    #[test]
    fn linux_autoconfig_sees_a_16550a() {
        let mut u = uart();
        u.write(REG_IER, 0);
        assert_eq!(u.read(REG_IER) & 0x0F, 0);
        u.write(REG_IER, 0x0F);
        assert_eq!(u.read(REG_IER) & 0x0F, 0x0F);
        u.write(REG_IER, 0);
        u.write(REG_MCR, MCR_LOOP | 0x0A);
        assert_eq!(u.read(REG_MSR) & 0xF0, 0x90);
        u.write(REG_MCR, 0);
        u.write(REG_IIR_FCR, FCR_ENABLE);
        assert_eq!(u.read(REG_IIR_FCR) >> 6, 3, "16550A: both FIFO bits");
        u.write(REG_IIR_FCR, 0);
        assert_eq!(u.read(REG_IIR_FCR) >> 6, 0);
    }

    #[test]
    fn snapshot_round_trip_restores_the_line() {
        let mut u = programmed(FCR_ENABLE, IER_RDA);
        u.enqueue_input(b"q");
        let state = u.state().clone();
        let restored = Uart::from_state(state.clone(), Probe::default(), Vec::new());
        assert!(restored.irq().high);
        assert_eq!(restored.state(), &state);
    }

    #[test]
    fn register_masks_and_unmapped_offsets() {
        let mut u = uart();
        u.write(REG_IER, 0xFF);
        assert_eq!(u.read(REG_IER), 0x0F);
        u.write(REG_MCR, 0xFF);
        assert_eq!(u.read(REG_MCR), 0x1F);
        u.write(REG_MCR, 0);
        u.write(REG_LCR, 0x5B);
        assert_eq!(u.read(REG_LCR), 0x5B);
        u.write(REG_LSR, 0x00); // read only
        u.write(REG_MSR, 0x0F);
        assert_eq!(u.read(REG_LSR), LSR_THRE | LSR_TEMT);
        // Leaving loopback (OUT1 drove RI) shows RI's trailing edge.
        assert_eq!(u.read(REG_MSR), MSR_CTS | MSR_DSR | MSR_DCD | MSR_TERI);
        assert_eq!(
            u.read(REG_MSR),
            MSR_CTS | MSR_DSR | MSR_DCD,
            "deltas cleared by the read"
        );
        u.write(9, 0x12);
        assert_eq!(u.read(9), 0xFF);
        assert_eq!(u.read(0xFFFF), 0xFF);
    }

    #[test]
    fn no_timeout_without_fifos() {
        let mut u = programmed(0, IER_RDA);
        u.enqueue_input(b"a");
        u.read(REG_DATA);
        u.enqueue_input(b"b");
        assert_eq!(u.ticks_until_next_irq(), None);
        u.tick(Ticks(u64::MAX));
        u.input_idle();
        assert_eq!(
            u.read(REG_IIR_FCR),
            IIR_RDA,
            "plain data available, no timeout id"
        );
    }

    #[test]
    fn loopback_modem_changes_raise_the_modem_interrupt() {
        let mut u = programmed(0, IER_MS);
        u.write(REG_MCR, MCR_LOOP | MCR_OUT2);
        u.read(REG_MSR);
        assert!(!u.irq().high);
        u.write(REG_MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);
        assert!(u.irq().high);
        assert_eq!(u.read(REG_IIR_FCR), IIR_MS);
        assert_eq!(u.read(REG_MSR), MSR_CTS | MSR_DCD | MSR_DCTS);
        assert!(!u.irq().high);
        // Host line changes are invisible in loopback.
        u.set_modem_lines(false, false, false, false);
        assert_eq!(u.read(REG_MSR), MSR_CTS | MSR_DCD);
    }

    #[test]
    fn enabling_rda_with_data_waiting_raises_the_line() {
        let mut u = programmed(FCR_ENABLE, 0);
        u.enqueue_input(b"x");
        assert!(!u.irq().high);
        u.write(REG_IER, IER_RDA);
        assert!(u.irq().high);
        u.write(REG_IER, 0);
        assert!(!u.irq().high);
    }

    #[test]
    fn hostile_snapshot_is_sanitised() {
        let state = UartState {
            divisor: 0,
            ier: 0xFF,
            fcr: 0xFF,
            lcr: 0xFF,
            mcr: 0xFF,
            lsr_errors: 0xFF,
            msr: 0xFF,
            host_lines: 0xFF,
            scr: 0xFF,
            rx: (0..100).collect(),
            thre_pending: true,
            timeout_pending: true,
            rx_idle: u64::MAX,
        };
        let mut u = Uart::from_state(state, Probe::default(), Vec::new());
        assert_eq!(u.state().rx.len(), FIFO_SIZE);
        u.tick(Ticks(u64::MAX));
        u.input_idle();
        for offset in 0..8 {
            u.read(offset);
        }
        assert_eq!(u.enqueue_input(&[1; 40]), 0, "loopback from the MCR");
    }

    #[test]
    fn fuzz_never_panics() {
        let mut u = uart();
        let mut seed = 0x0BAD_5EED_1234_5678u64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let (op, port, value) = (seed % 8, (seed >> 8) as u16 % 9, (seed >> 16) as u8);
            match op {
                0..=2 => u.write(port, value),
                3 | 4 => {
                    u.read(port);
                }
                5 => u.tick(Ticks(seed >> (20 + (seed >> 60)))),
                6 => {
                    u.enqueue_input(&[value; 5][..usize::from(value % 6)]);
                }
                _ => {
                    u.input_idle();
                    u.set_modem_lines(
                        value & 1 != 0,
                        value & 2 != 0,
                        value & 4 != 0,
                        value & 8 != 0,
                    );
                    if value & 16 != 0 {
                        u.receive_break();
                    }
                }
            }
            assert!(u.state().rx.len() <= FIFO_SIZE);
            if u.output().len() > 4096 {
                u.output_mut().clear();
            }
        }
    }
}
