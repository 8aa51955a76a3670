//! The Intel 8254 programmable interval timer at ports 0x40-0x43, clocked at
//! 1,193,182 Hz, and the PC/AT's system control port B at 0x61 that gates
//! counter 2 and reads its output.
//!
//! Sections named below are those of the Intel 82C54 datasheet (order number
//! 231244): "Control Word Format", "Write Operations", "Read Operations"
//! (the Counter Latch Command, the Read-Back Command and the Status Byte,
//! with its Null Count bit), "Mode Definitions" (modes 0-5 and their timing
//! figures) and "Operation Common to All Modes" (loading on the next CLK
//! pulse, GATE sampling, a count of 0 meaning 2^16 in binary or 10^4 in BCD).
//! Counters 0 and 1 have GATE tied high on a PC; counter 0's OUT is IRQ0.
//!
//! Time is explicit: [`Pit::tick`] advances all three counters by a number of
//! input-clock ticks in O(1), whatever the number, and
//! [`Pit::ticks_until_next_irq`] says how many ticks until OUT0's next rising
//! edge, so a halted machine can jump straight to it. A counter is modelled
//! as the count it runs with and the clocks elapsed since its counting
//! element (CE) was loaded; CE and OUT are functions of those, so reading
//! them at any time is exact.
//!
//! ```
//! use oxide86_devices::pit::{Pit, OFF_CONTROL, OFF_COUNTER0};
//! use oxide86_devices::{NoIrq, PortIo, Ticks};
//!
//! let mut pit = Pit::new(NoIrq);
//! pit.write(OFF_CONTROL, 0x34); // counter 0, LSB then MSB, mode 2
//! pit.write(OFF_COUNTER0, 0x9C);
//! pit.write(OFF_COUNTER0, 0x2E); // 11932: about 100 Hz
//! assert_eq!(pit.ticks_until_next_irq(), Some(Ticks(11_933)));
//! pit.tick(Ticks(1_000_000_000));
//! assert_eq!(pit.ticks_until_next_irq(), Some(Ticks(11_932 - (1_000_000_000 - 1) % 11_932)));
//! ```
//!
//! Where the datasheet leaves a behaviour undefined we pick a fixed one:
//! counts of 1 in modes 2 and 3 ("illegal") hold OUT low (mode 2) or high
//! (mode 3) with no edges; CE before the first load reads 0; BCD digits
//! above 9 count with their binary weight.

use crate::{IrqLine, PortIo, Ticks};

/// The first port (counter 0); counters 1 and 2 and the control word follow.
pub const PIT_PORT: u16 = 0x40;
/// System control port B.
pub const PORT61: u16 = 0x61;
/// The input clock on every counter, in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Offset of counter 0's count register.
pub const OFF_COUNTER0: u16 = 0;
/// Offset of counter 1's count register.
pub const OFF_COUNTER1: u16 = 1;
/// Offset of counter 2's count register.
pub const OFF_COUNTER2: u16 = 2;
/// Offset of the control word register (write only).
pub const OFF_CONTROL: u16 = 3;

/// Control word SC1-SC0 = 11: the read-back command.
const SC_READ_BACK: u8 = 3;
/// Control word RW1-RW0 = 00: the counter latch command.
const RW_LATCH: u8 = 0;
/// RW = 01: read/write the least significant byte only.
const RW_LSB: u8 = 1;
/// RW = 10: read/write the most significant byte only.
const RW_MSB: u8 = 2;
/// RW = 11: least significant byte, then most significant byte.
const RW_WORD: u8 = 3;
/// Control word bit 0: count in BCD (four decades).
const CW_BCD: u8 = 1 << 0;
/// The control word bits a status byte reports (RW, M2-M0, BCD).
const CW_STATUS_BITS: u8 = 0x3F;

/// Read-back bit 5 (active low): latch the count of the selected counters.
const RB_NO_COUNT: u8 = 1 << 5;
/// Read-back bit 4 (active low): latch the status of the selected counters.
const RB_NO_STATUS: u8 = 1 << 4;
/// Read-back bit 1: counter 0 selected (bits 2 and 3: counters 1 and 2).
const RB_CNT0: u8 = 1 << 1;

/// Status byte bit 7: the OUT pin.
const STATUS_OUT: u8 = 1 << 7;
/// Status byte bit 6: null count (the last count written is not yet in CE).
const STATUS_NULL_COUNT: u8 = 1 << 6;

/// Port 0x61 bit 0 (read/write): GATE of counter 2.
const P61_GATE2: u8 = 1 << 0;
/// Port 0x61 bit 1 (read/write): speaker data enable (ANDed with OUT2).
const P61_SPEAKER_DATA: u8 = 1 << 1;
/// Port 0x61 bits 0-3 read back as written (bits 2-3: parity/IOCHK enables).
const P61_WRITTEN_BITS: u8 = 0x0F;
/// Port 0x61 bit 4 (read): the refresh request toggle.
const P61_REFRESH: u8 = 1 << 4;
/// Port 0x61 bit 5 (read): counter 2's OUT.
const P61_OUT2: u8 = 1 << 5;
/// Input-clock ticks per refresh-toggle half period (15.085 us, counter 1's
/// customary count of 18 on the AT).
const REFRESH_TICKS: u64 = 18;

/// Where a counter is in its cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// A control word was written and no count yet (or, in mode 0, the first
    /// byte of a two-byte count): nothing counts.
    #[default]
    Idle,
    /// Modes 1 and 5: a count is written, waiting for a GATE trigger.
    Armed,
    /// The next CLK pulse loads CR into CE (and does not decrement).
    Loading,
    /// CE is counting (or held by a low GATE in modes 0, 2, 3 and 4).
    Running,
}

/// One counter's registers and timing: everything a snapshot needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterState {
    /// The last control word's bits 5-0 (RW1-RW0, M2-M0, BCD).
    pub control: u8,
    /// The count register CR, as written.
    pub cr: u16,
    /// The write flip-flop: the LSB of a two-byte count is written, the MSB
    /// is next.
    pub write_msb_next: bool,
    /// The LSB waiting for its MSB.
    pub pending_lsb: u8,
    /// The read flip-flop for two-byte reads of the live count.
    pub read_msb_next: bool,
    /// The output latch, when a count is latched.
    pub latched_count: u16,
    /// Which latched bytes are still to be read (an RW code; 0 = none).
    pub latch_pending: u8,
    /// A latched status byte waiting to be read.
    pub latched_status: Option<u8>,
    /// The Null Count status bit.
    pub null_count: bool,
    /// The GATE input.
    pub gate: bool,
    /// Where the counter is in its cycle.
    pub phase: Phase,
    /// The count CE runs with (1..=65536, or 1..=10000 in BCD).
    pub period: u32,
    /// CLK pulses counted since CE was loaded; for modes 2 and 3 the
    /// position within the period, otherwise exact up to `period + 1` and
    /// then kept modulo the counter's range.
    pub elapsed: u64,
    /// CE's value while not running (binary, before BCD encoding).
    pub held: u32,
    /// OUT while not running.
    pub out_held: bool,
}

impl CounterState {
    /// A counter at power-on (mode 0, binary, LSB then MSB, nothing loaded).
    fn new(gate: bool) -> Self {
        Self {
            control: RW_WORD << 4,
            cr: 0,
            write_msb_next: false,
            pending_lsb: 0,
            read_msb_next: false,
            latched_count: 0,
            latch_pending: 0,
            latched_status: None,
            null_count: false,
            gate,
            phase: Phase::Idle,
            period: 65_536,
            elapsed: 0,
            held: 0,
            out_held: false,
        }
    }

    /// The programmed mode; M2-M0 = 110 and 111 are modes 2 and 3.
    pub fn mode(&self) -> u8 {
        match (self.control >> 1) & 7 {
            6 => 2,
            7 => 3,
            m => m,
        }
    }

    fn bcd(&self) -> bool {
        self.control & CW_BCD != 0
    }

    fn access(&self) -> u8 {
        (self.control >> 4) & 3
    }

    /// How many distinct counts CE has: 2^16, or 10^4 in BCD.
    fn modulus(&self) -> u64 {
        if self.bcd() {
            10_000
        } else {
            65_536
        }
    }

    /// The count CR stands for: 0 is the largest count.
    fn cr_count(&self) -> u32 {
        let v = if self.bcd() {
            from_bcd(self.cr) % 10_000
        } else {
            u32::from(self.cr)
        };
        if v == 0 {
            self.modulus() as u32
        } else {
            v
        }
    }

    fn periodic(&self) -> bool {
        matches!(self.mode(), 2 | 3)
    }

    /// Whether a low GATE stops the count (modes 0, 2, 3 and 4).
    fn suspended(&self) -> bool {
        !self.gate && !matches!(self.mode(), 1 | 5)
    }

    /// OUT after `e` clocks of counting (timing figures of each mode).
    fn out_at(&self, e: u64) -> bool {
        let n = u64::from(self.period);
        match self.mode() {
            0 | 1 => e >= n,
            2 => !self.gate || (n >= 2 && e % n != n - 1),
            3 => !self.gate || e % n < n.div_ceil(2),
            _ => e != n,
        }
    }

    /// The OUT pin.
    pub fn out(&self) -> bool {
        match self.phase {
            Phase::Running => self.out_at(self.elapsed),
            _ => self.out_held,
        }
    }

    /// CE as a plain number (0 standing for the full range).
    fn ce(&self) -> u32 {
        match self.phase {
            Phase::Running => {}
            // Between the count write and the CLK pulse that loads it, the
            // chip's CE is in transition; it reads as the new count, as on
            // emulated PCs where a port read takes far less than the 838 ns
            // a real ISA access does (Linux's quick_pit_calibrate reads once
            // "to delay a microsecond" and expects the new count after).
            Phase::Loading => return self.cr_count() % self.modulus() as u32,
            _ => return self.held,
        }
        let n = u64::from(self.period);
        let m = self.modulus();
        let e = self.elapsed;
        let v = match self.mode() {
            2 => n - e % n,
            3 => {
                // Even: N, N-2, ..., 2 in each half. Odd: the high half
                // reads N, N-1, N-3, ..., 2 and the low half N, N-3,
                // ..., 2 ("decremented by one ... by three on the next CLK
                // pulse, then by two").
                let (q, h) = (e % n, n.div_ceil(2));
                match (n % 2 == 0, q < h) {
                    (true, true) => n - 2 * q,
                    (true, false) => n - 2 * (q - h),
                    (false, true) if q == 0 => n,
                    (false, true) => n + 1 - 2 * q,
                    (false, false) if q == h => n,
                    (false, false) => n - 1 - 2 * (q - h),
                }
            }
            _ => (n % m + m - e % m) % m,
        };
        (v % m) as u32
    }

    /// CE as the guest reads it (binary or BCD).
    fn read_value(&self) -> u16 {
        let v = self.ce();
        if self.bcd() {
            to_bcd(v % 10_000)
        } else {
            v as u16
        }
    }

    /// The status byte ("Status Byte").
    fn status(&self) -> u8 {
        let mut s = self.control & CW_STATUS_BITS;
        if self.out() {
            s |= STATUS_OUT;
        }
        if self.null_count {
            s |= STATUS_NULL_COUNT;
        }
        s
    }

    /// Freezes CE and OUT at their current values before leaving `Running`.
    fn hold(&mut self) {
        self.held = self.ce();
        self.out_held = self.out();
    }

    /// A control word that selects a mode ("Write Operations": the control
    /// logic resets, OUT goes to the mode's initial state, nothing counts
    /// until a count is written).
    fn write_control(&mut self, value: u8) {
        self.hold();
        self.control = value & CW_STATUS_BITS;
        self.phase = Phase::Idle;
        self.out_held = self.mode() != 0;
        self.null_count = true;
        self.write_msb_next = false;
        self.read_msb_next = false;
        self.latch_pending = 0;
        self.latched_status = None;
    }

    /// The counter latch command: ignored while an earlier latch is unread.
    fn latch_count(&mut self) {
        if self.latch_pending == 0 {
            self.latched_count = self.read_value();
            self.latch_pending = self.access();
        }
    }

    /// The read-back command's status latch: ignored while one is unread.
    fn latch_status(&mut self) {
        if self.latched_status.is_none() {
            self.latched_status = Some(self.status());
        }
    }

    /// A write to the counter's port, through the write flip-flop.
    fn write_byte(&mut self, value: u8) {
        match self.access() {
            RW_LSB => {
                self.cr = u16::from(value);
                self.count_written();
            }
            RW_MSB => {
                self.cr = u16::from(value) << 8;
                self.count_written();
            }
            _ if !self.write_msb_next => {
                self.pending_lsb = value;
                self.write_msb_next = true;
                if self.mode() == 0 {
                    // Mode 0: the first byte stops the count, OUT low at once.
                    self.hold();
                    self.out_held = false;
                    self.phase = Phase::Idle;
                }
            }
            _ => {
                self.cr = u16::from_le_bytes([self.pending_lsb, value]);
                self.write_msb_next = false;
                self.count_written();
            }
        }
    }

    /// A complete count reached CR: when CE takes it depends on the mode.
    fn count_written(&mut self) {
        self.null_count = true;
        match self.mode() {
            0 => {
                self.hold();
                self.out_held = false;
                self.phase = Phase::Loading;
            }
            4 => {
                self.hold();
                self.phase = Phase::Loading;
            }
            1 | 5 => {
                // Counting starts with a GATE trigger; a new count written
                // meanwhile waits for the next one.
                if self.phase == Phase::Idle {
                    self.phase = Phase::Armed;
                }
            }
            _ => {
                // Modes 2 and 3 load at once when idle; while counting, the
                // new count waits for the end of the period (half-cycle).
                if matches!(self.phase, Phase::Idle | Phase::Armed) {
                    self.hold();
                    self.phase = Phase::Loading;
                }
            }
        }
    }

    /// A change of the GATE input ("Gate" table of each mode).
    fn set_gate(&mut self, level: bool) {
        if level == self.gate {
            return;
        }
        if level {
            match self.mode() {
                1 | 5 if matches!(self.phase, Phase::Armed | Phase::Running) => {
                    self.hold();
                    self.phase = Phase::Loading;
                }
                2 | 3 if self.phase == Phase::Running => {
                    self.hold(); // OUT was forced high by the low gate
                    self.phase = Phase::Loading;
                }
                _ => {}
            }
        }
        self.gate = level;
    }

    /// The first clock in `1..=k` at which OUT rises, counting from the
    /// current position with a fixed count and an enabling gate.
    fn first_rise_running(&self, k: u64) -> Option<u64> {
        let n = u64::from(self.period);
        let e = self.elapsed;
        let c = match self.mode() {
            0 | 1 => (e < n).then(|| n - e),
            4 | 5 => (e <= n).then(|| n + 1 - e),
            _ => (n >= 2).then(|| n - e % n),
        }?;
        (c <= k).then_some(c)
    }

    /// Counts `k` clocks with a fixed count.
    fn advance_running(&mut self, k: u64) {
        let n = u64::from(self.period);
        if self.periodic() {
            self.elapsed = (self.elapsed % n + k % n) % n;
        } else {
            // Past n + 1 OUT no longer changes; only CE's position within
            // its range matters, so keep `elapsed` small and exact.
            let (m, base) = (self.modulus(), n + 2);
            self.elapsed = match self.elapsed.checked_add(k) {
                Some(t) if t < base => t,
                _ if self.elapsed >= base => base + ((self.elapsed - base) % m + k % m) % m,
                _ => base + (k - (base - self.elapsed)) % m,
            };
        }
    }

    /// Clocks until a count written during modes 2 and 3 takes over: the
    /// end of the period (mode 2) or of the current half-cycle (mode 3).
    fn clocks_to_switch(&self) -> u64 {
        let n = u64::from(self.period);
        let q = self.elapsed % n;
        let h = n.div_ceil(2);
        if self.mode() == 3 && q < h {
            h - q
        } else {
            n - q
        }
    }

    /// The reload with the new count at the end of a period or half-cycle.
    fn switch_count(&mut self) {
        let n = u64::from(self.period);
        let high_half = self.mode() == 3 && self.elapsed % n < n.div_ceil(2);
        self.period = self.cr_count();
        self.null_count = false;
        let new = u64::from(self.period);
        self.elapsed = if high_half { new.div_ceil(2) % new } else { 0 };
    }

    /// Runs `ticks` CLK pulses and returns the first at which OUT rose.
    /// Takes a bounded number of steps whatever `ticks` is.
    fn run(&mut self, ticks: u64) -> Option<u64> {
        let mut done = 0u64;
        let mut first = None;
        while done < ticks {
            match self.phase {
                Phase::Idle | Phase::Armed => break,
                Phase::Loading => {
                    let before = self.out();
                    self.phase = Phase::Running;
                    self.period = self.cr_count();
                    self.elapsed = 0;
                    self.null_count = false;
                    done += 1;
                    if first.is_none() && !before && self.out() {
                        first = Some(done);
                    }
                }
                Phase::Running => {
                    if self.suspended() {
                        break;
                    }
                    let left = ticks - done;
                    let to_switch = (self.periodic() && self.null_count)
                        .then(|| self.clocks_to_switch())
                        .filter(|&s| s <= left);
                    let span = to_switch.map_or(left, |s| s - 1);
                    if first.is_none() {
                        first = self.first_rise_running(span).map(|c| done + c);
                    }
                    self.advance_running(span);
                    done += span;
                    if to_switch.is_some() {
                        let before = self.out();
                        self.switch_count();
                        done += 1;
                        if first.is_none() && !before && self.out() {
                            first = Some(done);
                        }
                    }
                }
            }
        }
        first
    }

    /// A read of the counter's port: latched status, then a latched count,
    /// else the live count through the read flip-flop.
    fn read_byte(&mut self) -> u8 {
        if let Some(s) = self.latched_status.take() {
            return s;
        }
        let [lo, hi] = if self.latch_pending != 0 {
            self.latched_count.to_le_bytes()
        } else {
            self.read_value().to_le_bytes()
        };
        let msb = match std::mem::take(&mut self.latch_pending) {
            RW_LSB => false,
            RW_MSB => true,
            RW_WORD => {
                self.latch_pending = RW_MSB;
                false
            }
            _ => match self.access() {
                RW_LSB => false,
                RW_MSB => true,
                _ => {
                    self.read_msb_next = !self.read_msb_next;
                    !self.read_msb_next
                }
            },
        };
        if msb {
            hi
        } else {
            lo
        }
    }
}

/// Four BCD digits as a number (a digit above 9 counts with its weight).
fn from_bcd(v: u16) -> u32 {
    (0..4)
        .rev()
        .fold(0, |acc, i| acc * 10 + u32::from((v >> (4 * i)) & 0xF))
}

/// A number below 10,000 as four BCD digits.
fn to_bcd(v: u32) -> u16 {
    (0..4).fold(0u16, |acc, i| {
        acc | (((v / 10u32.pow(i)) % 10) as u16) << (4 * i)
    })
}

/// The timer's snapshot state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PitState {
    /// Counters 0, 1 and 2.
    pub counters: [CounterState; 3],
    /// The last byte written to port 0x61.
    pub port61: u8,
    /// The level last driven on the IRQ0 wire.
    pub irq_level: bool,
    /// Input-clock ticks since power-on (wrapping), for the refresh toggle.
    pub ticks: u64,
}

impl Default for PitState {
    fn default() -> Self {
        Self {
            counters: [
                CounterState::new(true),
                CounterState::new(true),
                CounterState::new(false),
            ],
            port61: 0,
            irq_level: false,
            ticks: 0,
        }
    }
}

/// The 8254 with port 0x61; counter 0's OUT drives `L` (IRQ0).
#[derive(Debug)]
pub struct Pit<L: IrqLine> {
    state: PitState,
    irq: L,
}

impl<L: IrqLine> Pit<L> {
    /// A timer at power-on.
    pub fn new(irq: L) -> Self {
        Self::from_state(PitState::default(), irq)
    }

    /// Builds the timer from a snapshot, restoring the IRQ0 wire's level.
    pub fn from_state(mut state: PitState, irq: L) -> Self {
        for c in &mut state.counters {
            c.period = c.period.clamp(1, 65_536); // a count of 0 does not exist
        }
        let mut pit = Self { state, irq };
        let level = pit.state.irq_level;
        pit.irq.set_level(level);
        pit.drive_irq(false);
        pit
    }

    /// The snapshot state.
    pub fn state(&self) -> &PitState {
        &self.state
    }

    /// The IRQ0 wire.
    pub fn irq(&self) -> &L {
        &self.irq
    }

    /// Advances every counter by `ticks` input-clock pulses, in O(1).
    pub fn tick(&mut self, ticks: Ticks) {
        self.state.ticks = self.state.ticks.wrapping_add(ticks.0);
        let [c0, c1, c2] = &mut self.state.counters;
        let rose = c0.run(ticks.0).is_some();
        c1.run(ticks.0);
        c2.run(ticks.0);
        self.drive_irq(rose);
    }

    /// How many ticks until OUT0's next rising edge (the next IRQ0): after
    /// `tick` of exactly that many, the edge has happened. `None` if OUT0
    /// will not rise without another port write or gate change.
    pub fn ticks_until_next_irq(&self) -> Option<Ticks> {
        self.state.counters[0].clone().run(u64::MAX).map(Ticks)
    }

    /// A counter's OUT pin (`false` for a counter that does not exist).
    pub fn out(&self, counter: usize) -> bool {
        self.state.counters.get(counter).is_some_and(|c| c.out())
    }

    /// Drives a counter's GATE input (on the PC only counter 2's is wired,
    /// to port 0x61 bit 0).
    pub fn set_gate(&mut self, counter: usize, level: bool) {
        if let Some(c) = self.state.counters.get_mut(counter) {
            c.set_gate(level);
        }
        self.drive_irq(false);
    }

    /// The speaker's input: OUT2 while speaker data is enabled.
    pub fn speaker_output(&self) -> bool {
        self.state.port61 & P61_SPEAKER_DATA != 0 && self.out(2)
    }

    /// A read of port 0x61: bits 0-3 as written, bit 4 the refresh toggle,
    /// bit 5 OUT2; bits 6-7 (parity and channel check) read 0.
    pub fn read_port61(&self) -> u8 {
        let refresh = (self.state.ticks / REFRESH_TICKS) & 1 != 0;
        let mut v = self.state.port61 & P61_WRITTEN_BITS;
        if refresh {
            v |= P61_REFRESH;
        }
        if self.out(2) {
            v |= P61_OUT2;
        }
        v
    }

    /// A write of port 0x61: bit 0 gates counter 2, the byte is kept.
    pub fn write_port61(&mut self, value: u8) {
        self.state.port61 = value;
        self.set_gate(2, value & P61_GATE2 != 0);
    }

    /// Follows OUT0 on the IRQ0 wire; `rose` forces an edge for a rise that
    /// happened inside the last tick even if OUT0 fell again since.
    fn drive_irq(&mut self, rose: bool) {
        let out = self.state.counters[0].out();
        if rose {
            if self.state.irq_level {
                self.irq.set_level(false);
            }
            self.irq.set_level(true);
            self.state.irq_level = true;
        }
        if out != self.state.irq_level {
            self.irq.set_level(out);
            self.state.irq_level = out;
        }
    }

    /// A control word: mode set, counter latch, or read-back.
    fn write_control(&mut self, value: u8) {
        let sc = value >> 6;
        if sc == SC_READ_BACK {
            for (i, c) in self.state.counters.iter_mut().enumerate() {
                if value & (RB_CNT0 << i) == 0 {
                    continue;
                }
                if value & RB_NO_COUNT == 0 {
                    c.latch_count();
                }
                if value & RB_NO_STATUS == 0 {
                    c.latch_status();
                }
            }
            return;
        }
        let c = &mut self.state.counters[usize::from(sc)];
        if (value >> 4) & 3 == RW_LATCH {
            c.latch_count();
        } else {
            c.write_control(value);
        }
    }
}

impl<L: IrqLine> PortIo for Pit<L> {
    fn read(&mut self, offset: u16) -> u8 {
        match offset {
            OFF_COUNTER0 | OFF_COUNTER1 | OFF_COUNTER2 => {
                self.state.counters[usize::from(offset)].read_byte()
            }
            _ => 0xFF, // the control word register cannot be read
        }
    }

    fn write(&mut self, offset: u16, value: u8) {
        match offset {
            OFF_COUNTER0 | OFF_COUNTER1 | OFF_COUNTER2 => {
                self.state.counters[usize::from(offset)].write_byte(value)
            }
            OFF_CONTROL => self.write_control(value),
            _ => return,
        }
        self.drive_irq(false);
    }
}

/// Port 0x61 as a one-byte device, for a bus that wants a `PortIo`.
#[derive(Debug)]
pub struct Port61<'a, L: IrqLine>(pub &'a mut Pit<L>);

impl<L: IrqLine> PortIo for Port61<'_, L> {
    fn read(&mut self, _offset: u16) -> u8 {
        self.0.read_port61()
    }

    fn write(&mut self, _offset: u16, value: u8) {
        self.0.write_port61(value);
    }
}

#[cfg(test)]
mod tests;
