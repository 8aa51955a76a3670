//! The Motorola MC146818A real-time clock with 128 bytes of CMOS RAM, as on
//! the PC/AT (datasheet: Motorola MC146818A, "Real-Time Clock Plus RAM").
//!
//! Ports from its base (0x70 on a PC): 0 is the index register (write only;
//! bit 7 is the PC's NMI mask latch, not part of the chip), 1 the data port
//! of the byte the index selects. Bytes 0x00-0x09 are the clock and alarm,
//! 0x0A-0x0D the status registers A-D, the rest battery-backed RAM that the
//! BIOS uses for its configuration (the layout helpers below follow the IBM
//! PC/AT technical reference and what SeaBIOS reads). The century sits at
//! 0x32, as the ACPI FADT default and every PC BIOS have it.
//!
//! Time is explicit: the device is built with a start date-time and advanced
//! by [`Rtc::tick`] in periods of its 32.768 kHz time base; it never reads
//! the host clock. A tick of any length costs O(1), calendar rollover
//! (month, year, leap year, century) included.
//!
//! Modelling choices: the clock keeps binary fields and encodes them on each
//! read in the current data mode (register B DM and 24/12 bits), so changing
//! the mode converts the registers rather than reinterpreting their bits
//! (QEMU does the same). Values a guest writes are decoded and clamped to
//! their range (seconds 0-59, hours 0-23, day 1-31, ...); a day past the end
//! of the month rolls over at the next update. The update is instantaneous:
//! UIP reads 1 during the 244 us (8 ticks) before it. With DSE the clock
//! follows the chip's fixed daylight-saving rule: on the last Sunday in
//! April 1:59:59 AM is followed by 3:00:00 AM, on the last Sunday in October
//! the first 1:59:59 AM by 1:00:00 AM; "Sunday" is what the day-of-week
//! register says, as on the chip. SQWE is stored but drives no pin; the
//! divider's 4.194304 and 1.048576 MHz time bases count as 32.768 kHz.
//!
//! ```
//! use oxide86_devices::rtc::{DateTime, Rtc, PORT_DATA, PORT_INDEX, RTC_HZ};
//! use oxide86_devices::{NoIrq, PortIo, Ticks};
//!
//! let mut rtc = Rtc::new(DateTime::from_unix(946_684_799), NoIrq); // 1999-12-31 23:59:59
//! rtc.tick(Ticks(RTC_HZ)); // one second of virtual time
//! rtc.write(PORT_INDEX, 0x32); // the century, in BCD
//! assert_eq!(rtc.read(PORT_DATA), 0x20);
//! assert_eq!(rtc.date_time().year, 2000);
//! ```

use crate::{IrqLine, PortIo, Ticks};

/// Offset of the index (address) register: bits 0-6 select a byte, bit 7
/// masks NMI.
pub const PORT_INDEX: u16 = 0;
/// The PC/AT's base port (0x70 index, 0x71 data).
pub const RTC_BASE: u16 = 0x70;
/// The PC/AT's RTC interrupt.
pub const RTC_IRQ: u8 = 8;
/// Offset of the data register.
pub const PORT_DATA: u16 = 1;

/// The time base: ticks of [`Rtc::tick`] per second.
pub const RTC_HZ: u64 = 32_768;

const REG_SECONDS: u8 = 0x00;
const REG_SECONDS_ALARM: u8 = 0x01;
const REG_MINUTES: u8 = 0x02;
const REG_MINUTES_ALARM: u8 = 0x03;
const REG_HOURS: u8 = 0x04;
const REG_HOURS_ALARM: u8 = 0x05;
const REG_DAY_OF_WEEK: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
/// Status register A: UIP (read only), divider DV2-0, rate select RS3-0.
pub const REG_A: u8 = 0x0A;
/// Status register B: SET, PIE, AIE, UIE, SQWE, DM, 24/12, DSE.
pub const REG_B: u8 = 0x0B;
/// Status register C (read only, read clears): IRQF, PF, AF, UF.
pub const REG_C: u8 = 0x0C;
/// Status register D (read only): VRT.
pub const REG_D: u8 = 0x0D;
/// The century, in the data mode of the clock (a PC convention).
pub const REG_CENTURY: u8 = 0x32;

/// Floppy drive types: drive 0 in the high nibble, drive 1 in the low one.
pub const CMOS_FLOPPY_TYPES: u8 = 0x10;
/// Equipment byte (see the `EQUIP_*` bits).
pub const CMOS_EQUIPMENT: u8 = 0x14;
/// Base memory in KiB, low byte (high byte at 0x16).
pub const CMOS_BASE_MEM_LO: u8 = 0x15;
/// Extended memory above 1 MiB in KiB, low byte (high byte at 0x18).
pub const CMOS_EXT_MEM_LO: u8 = 0x17;
/// First byte of the range the standard checksum covers.
pub const CMOS_CHECKSUM_FIRST: u8 = 0x10;
/// Last byte of the range the standard checksum covers.
pub const CMOS_CHECKSUM_LAST: u8 = 0x2D;
/// The checksum, high byte (low byte at 0x2F): the sum of 0x10-0x2D.
pub const CMOS_CHECKSUM_HI: u8 = 0x2E;
/// Extended memory above 1 MiB in KiB as the POST found it, low byte (0x31 high).
pub const CMOS_EXT_MEM2_LO: u8 = 0x30;
/// Memory above 16 MiB (below 4 GiB) in 64 KiB units, low byte (0x35 high).
pub const CMOS_MEM_ABOVE_16M_LO: u8 = 0x34;
/// Memory above 4 GiB in 64 KiB units, three bytes from low to high (0x5B-0x5D).
pub const CMOS_MEM_ABOVE_4G: u8 = 0x5B;

/// Equipment byte: at least one floppy drive (bits 6-7 hold the count - 1).
pub const EQUIP_FLOPPY: u8 = 1 << 0;
/// Equipment byte: a math coprocessor is installed.
pub const EQUIP_FPU: u8 = 1 << 1;
/// Equipment byte: primary display is EGA/VGA (bits 4-5 = 00).
pub const EQUIP_VIDEO_EGA_VGA: u8 = 0b00 << 4;
/// Equipment byte: primary display is 80-column colour.
pub const EQUIP_VIDEO_CGA80: u8 = 0b10 << 4;
/// Equipment byte: primary display is monochrome.
pub const EQUIP_VIDEO_MDA: u8 = 0b11 << 4;

/// Update in progress (read only).
pub const A_UIP: u8 = 1 << 7;
/// Divider control.
pub const A_DV_MASK: u8 = 0b111 << 4;
/// DV2 and DV1 both set: divider chain in reset.
pub const A_DV_RESET: u8 = 0b110 << 4;
/// Rate select for the periodic interrupt.
pub const A_RS_MASK: u8 = 0x0F;
/// Halts updates so software can set the clock.
pub const B_SET: u8 = 1 << 7;
/// Periodic interrupt enable.
pub const B_PIE: u8 = 1 << 6;
/// Alarm interrupt enable.
pub const B_AIE: u8 = 1 << 5;
/// Update-ended interrupt enable.
pub const B_UIE: u8 = 1 << 4;
/// Square-wave output enable (pin unconnected on PCs).
pub const B_SQWE: u8 = 1 << 3;
/// Data mode: 1 binary, 0 BCD.
pub const B_DM_BINARY: u8 = 1 << 2;
/// Hours: 1 = 24-hour, 0 = 12-hour with PM in bit 7.
pub const B_24H: u8 = 1 << 1;
/// Daylight saving enable (stored only).
pub const B_DSE: u8 = 1 << 0;
/// PF&PIE | AF&AIE | UF&UIE.
pub const C_IRQF: u8 = 1 << 7;
/// Periodic flag.
pub const C_PF: u8 = 1 << 6;
/// Alarm flag.
pub const C_AF: u8 = 1 << 5;
/// Update-ended flag.
pub const C_UF: u8 = 1 << 4;
/// Valid RAM and time (the battery is fine).
pub const D_VRT: u8 = 1 << 7;
/// In 12-hour mode, the hours' PM bit.
pub const HOUR_PM: u8 = 1 << 7;
/// An alarm byte of 0xC0-0xFF matches any value.
pub const ALARM_DONT_CARE: u8 = 0xC0;
const UIP_TICKS: u32 = 8; // 244 us before the update

/// Default register A: 32.768 kHz divider (DV = 010), 1024 Hz rate (RS = 0110).
const A_DEFAULT: u8 = 0x26;
/// Default register B: 24-hour BCD, no interrupts (what PC BIOSes program).
const B_DEFAULT: u8 = B_24H;

const SECS_PER_DAY: i64 = 86_400;
const DAYS_PER_400Y: i64 = 146_097; // a whole number of weeks, too

/// A calendar date and time of day (proleptic Gregorian, no time zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DateTime {
    /// Full year, 0-9999.
    pub year: u16,
    /// 1-12.
    pub month: u8,
    /// 1-31.
    pub day: u8,
    /// 0-23.
    pub hour: u8,
    /// 0-59.
    pub minute: u8,
    /// 0-59.
    pub second: u8,
}

impl DateTime {
    /// The date-time `secs` seconds after 1970-01-01 00:00:00 (negative is
    /// before); years wrap modulo 10000, which keeps the calendar exact.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Self {
            year: year.rem_euclid(10_000) as u16,
            month,
            day,
            hour: (sod / 3600) as u8,
            minute: (sod / 60 % 60) as u8,
            second: (sod % 60) as u8,
        }
    }

    /// Seconds since 1970-01-01 00:00:00; out-of-range fields count on
    /// (day 31 of February is 3 March, or 2 March in a leap year).
    pub fn to_unix(&self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day) * SECS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The day of the week as the RTC counts it: 1 = Sunday ... 7 = Saturday.
    pub fn day_of_week(&self) -> u8 {
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        ((days + 4).rem_euclid(7) + 1) as u8 // 1970-01-01 was a Thursday
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm); linear in `day`, so an overlong day counts on into the next
/// month.
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let month = i64::from(month.clamp(1, 12));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * DAYS_PER_400Y + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(DAYS_PER_400Y);
    let doe = z.rem_euclid(DAYS_PER_400Y);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn to_bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

/// Decodes a BCD byte; `None` if a digit is above 9.
fn from_bcd(v: u8) -> Option<u8> {
    let (hi, lo) = (v >> 4, v & 0x0F);
    (hi <= 9 && lo <= 9).then_some(hi * 10 + lo)
}

/// Snapshot state of the RTC: plain data, no handles, no host time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtcState {
    /// The CMOS bytes. Clock bytes (0x00, 0x02, 0x04, 0x06-0x09, 0x32) and
    /// register C's IRQF/register D are derived; the alarms and A-C are here.
    pub cmos: [u8; 128],
    /// The clock, in binary.
    pub time: DateTime,
    /// The day-of-week register (1-7), which counts on its own as on the chip.
    pub day_of_week: u8,
    /// The index register's byte select (0-127).
    pub index: u8,
    /// The NMI mask latch (bit 7 of the last index write).
    pub nmi_masked: bool,
    /// Position of the divider chain within the current second, in ticks
    /// (0..32768); the update happens when it wraps.
    pub divider: u32,
    /// The year whose October daylight-saving fall-back already happened
    /// (so the repeated hour does not repeat again).
    pub dst_fallback_year: Option<u16>,
}

impl RtcState {
    /// Power-on state with the clock at `start`.
    pub fn new(start: DateTime) -> Self {
        let mut cmos = [0u8; 128];
        cmos[usize::from(REG_A)] = A_DEFAULT;
        cmos[usize::from(REG_B)] = B_DEFAULT;
        Self {
            cmos,
            time: start,
            day_of_week: start.day_of_week(),
            index: 0,
            nmi_masked: false,
            divider: 0,
            dst_fallback_year: None,
        }
    }
}

/// One alarm field: a value to match, any value, or one the clock never has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AlarmField {
    Any,
    Exact(u32),
    Never,
}

impl AlarmField {
    /// The smallest matching value in `from..limit`.
    fn first_at_least(self, from: u32, limit: u32) -> Option<u32> {
        match self {
            Self::Any => (from < limit).then_some(from),
            Self::Exact(v) => (v >= from && v < limit).then_some(v),
            Self::Never => None,
        }
    }
    fn matches(self, v: u32) -> bool {
        self.first_at_least(v, v + 1).is_some()
    }
}

/// Seconds (1..=86400) from second-of-day `now` to the next second-of-day
/// matching the alarm, or `None` if it can never match.
fn seconds_to_alarm(now: u32, h: AlarmField, m: AlarmField, s: AlarmField) -> Option<u32> {
    let (ch, cm, cs) = (now / 3600, now / 60 % 60, now % 60);
    let min_s = s.first_at_least(0, 60)?;
    let min_m = m.first_at_least(0, 60)?;
    let min_h = h.first_at_least(0, 24)?;
    let sod = |h: u32, m: u32, s: u32| h * 3600 + m * 60 + s;
    if h.matches(ch) && m.matches(cm) {
        if let Some(s) = s.first_at_least(cs + 1, 60) {
            return Some(sod(ch, cm, s) - now);
        }
    }
    if h.matches(ch) {
        if let Some(m) = m.first_at_least(cm + 1, 60) {
            return Some(sod(ch, m, min_s) - now);
        }
    }
    if let Some(h) = h.first_at_least(ch + 1, 24) {
        return Some(sod(h, min_m, min_s) - now);
    }
    Some(sod(min_h, min_m, min_s) + 86_400 - now)
}

/// The MC146818A RTC/CMOS, driving its IRQ (IRQ8 on a PC) through `L`.
#[derive(Debug)]
pub struct Rtc<L: IrqLine> {
    state: RtcState,
    irq: L,
}

impl<L: IrqLine> Rtc<L> {
    /// A powered-on RTC whose clock reads `start`.
    pub fn new(start: DateTime, irq: L) -> Self {
        Self::from_state(RtcState::new(start), irq)
    }

    /// Builds the device from a snapshot, restoring the IRQ wire's level.
    pub fn from_state(mut state: RtcState, irq: L) -> Self {
        state.index &= 0x7F;
        state.divider %= RTC_HZ as u32;
        state.day_of_week = state.day_of_week.clamp(1, 7);
        let t = &mut state.time;
        t.year %= 10_000;
        t.month = t.month.clamp(1, 12);
        t.day = t.day.clamp(1, 31);
        t.hour = t.hour.min(23);
        t.minute = t.minute.min(59);
        t.second = t.second.min(59);
        state.dst_fallback_year = state.dst_fallback_year.map(|y| y % 10_000);
        let mut rtc = Self { state, irq };
        rtc.update_irq();
        rtc
    }

    /// The snapshot state.
    pub fn state(&self) -> &RtcState {
        &self.state
    }

    /// The IRQ wire (for tests and the machine's inspection).
    pub fn irq(&self) -> &L {
        &self.irq
    }

    /// Whether the guest has masked NMI (bit 7 of the last index write).
    pub fn nmi_masked(&self) -> bool {
        self.state.nmi_masked
    }

    /// The clock as it stands (binary, full year).
    pub fn date_time(&self) -> DateTime {
        self.state.time
    }

    /// Sets the clock (as the machine would from a host or snapshot),
    /// with the matching day of week; the divider phase is kept.
    pub fn set_date_time(&mut self, time: DateTime) {
        let t = DateTime::from_unix(time.to_unix()); // normalised
        self.state.time = t;
        self.state.day_of_week = t.day_of_week();
        self.state.dst_fallback_year = None;
    }

    /// A raw CMOS byte, as the data port would read it.
    pub fn cmos(&self, index: u8) -> u8 {
        self.peek(index & 0x7F)
    }

    /// Stores a raw CMOS RAM byte (for the machine filling in configuration);
    /// clock and status registers go through the same path as a guest write.
    pub fn set_cmos(&mut self, index: u8, value: u8) {
        self.poke(index & 0x7F, value);
    }

    fn reg(&self, r: u8) -> u8 {
        self.state.cmos[usize::from(r)]
    }

    fn binary(&self) -> bool {
        self.reg(REG_B) & B_DM_BINARY != 0
    }

    fn running(&self) -> bool {
        self.reg(REG_A) & A_DV_RESET != A_DV_RESET
    }

    fn frozen(&self) -> bool {
        self.reg(REG_B) & B_SET != 0
    }

    fn encode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            to_bcd(v % 100)
        }
    }

    fn decode(&self, v: u8) -> Option<u8> {
        if self.binary() {
            Some(v)
        } else {
            from_bcd(v)
        }
    }

    /// Decodes and clamps a written value; undecodable BCD keeps `old`.
    fn decode_clamped(&self, v: u8, lo: u8, hi: u8, old: u8) -> u8 {
        self.decode(v).map_or(old, |v| v.clamp(lo, hi))
    }

    fn encode_hour(&self, hour: u8) -> u8 {
        if self.reg(REG_B) & B_24H != 0 {
            return self.encode(hour);
        }
        let pm = if hour >= 12 { HOUR_PM } else { 0 };
        let h12 = match hour % 12 {
            0 => 12,
            h => h,
        };
        self.encode(h12) | pm
    }

    /// Decodes an hours byte to 0-23; `None` if it is no valid encoding.
    fn decode_hour(&self, v: u8) -> Option<u8> {
        if self.reg(REG_B) & B_24H != 0 {
            return self.decode(v).filter(|h| *h <= 23);
        }
        let h12 = self.decode(v & !HOUR_PM).filter(|h| (1..=12).contains(h))?;
        Some(h12 % 12 + if v & HOUR_PM != 0 { 12 } else { 0 })
    }

    fn alarm_field(&self, reg: u8, limit: u8) -> AlarmField {
        let v = self.reg(reg);
        if v & ALARM_DONT_CARE == ALARM_DONT_CARE {
            return AlarmField::Any;
        }
        let decoded = if reg == REG_HOURS_ALARM {
            self.decode_hour(v)
        } else {
            self.decode(v).filter(|x| *x < limit)
        };
        // Only a byte the clock itself could show ever matches.
        let shown = |d: u8| {
            if reg == REG_HOURS_ALARM {
                self.encode_hour(d)
            } else {
                self.encode(d)
            }
        };
        match decoded {
            Some(d) if shown(d) == v => AlarmField::Exact(u32::from(d)),
            _ => AlarmField::Never,
        }
    }

    fn second_of_day(&self) -> u32 {
        let t = &self.state.time;
        u32::from(t.hour) * 3600 + u32::from(t.minute) * 60 + u32::from(t.second)
    }

    /// Seconds from now to the next update at which the alarm matches.
    fn seconds_to_alarm(&self) -> Option<u32> {
        seconds_to_alarm(
            self.second_of_day(),
            self.alarm_field(REG_HOURS_ALARM, 24),
            self.alarm_field(REG_MINUTES_ALARM, 60),
            self.alarm_field(REG_SECONDS_ALARM, 60),
        )
    }

    /// The periodic interrupt's period in ticks, or `None` if RS = 0.
    fn periodic_period(&self) -> Option<u32> {
        match self.reg(REG_A) & A_RS_MASK {
            0 => None,
            rs @ 1..=2 => Some(1 << (rs + 6)), // as RS 8 and 9 with a 32.768 kHz base
            rs => Some(1 << (rs - 1)),
        }
    }

    fn peek(&self, index: u8) -> u8 {
        let t = &self.state.time;
        match index {
            REG_SECONDS => self.encode(t.second),
            REG_MINUTES => self.encode(t.minute),
            REG_HOURS => self.encode_hour(t.hour),
            REG_DAY_OF_WEEK => self.encode(self.state.day_of_week),
            REG_DAY => self.encode(t.day),
            REG_MONTH => self.encode(t.month),
            REG_YEAR => self.encode((t.year % 100) as u8),
            REG_CENTURY => self.encode((t.year / 100 % 100) as u8),
            REG_A => {
                let uip = self.running()
                    && !self.frozen()
                    && self.state.divider >= RTC_HZ as u32 - UIP_TICKS;
                self.reg(REG_A) | if uip { A_UIP } else { 0 }
            }
            REG_D => D_VRT,
            _ => self.state.cmos[usize::from(index & 0x7F)],
        }
    }

    fn poke(&mut self, index: u8, value: u8) {
        let t = self.state.time;
        match index {
            REG_SECONDS => self.state.time.second = self.decode_clamped(value, 0, 59, t.second),
            REG_MINUTES => self.state.time.minute = self.decode_clamped(value, 0, 59, t.minute),
            REG_HOURS => {
                let hour = if self.reg(REG_B) & B_24H != 0 {
                    self.decode(value).map(|h| h.min(23))
                } else {
                    let pm = if value & HOUR_PM != 0 { 12 } else { 0 };
                    self.decode(value & !HOUR_PM)
                        .map(|h| h.clamp(1, 12) % 12 + pm)
                };
                if let Some(h) = hour {
                    self.state.time.hour = h;
                }
            }
            REG_DAY_OF_WEEK => {
                self.state.day_of_week = self.decode_clamped(value, 1, 7, self.state.day_of_week)
            }
            REG_DAY => self.state.time.day = self.decode_clamped(value, 1, 31, t.day),
            REG_MONTH => self.state.time.month = self.decode_clamped(value, 1, 12, t.month),
            REG_YEAR => {
                let yy = self.decode_clamped(value, 0, 99, (t.year % 100) as u8);
                self.state.time.year = t.year / 100 * 100 + u16::from(yy);
            }
            REG_CENTURY => {
                let cc = self.decode_clamped(value, 0, 99, (t.year / 100 % 100) as u8);
                self.state.time.year = u16::from(cc) * 100 + t.year % 100;
            }
            REG_A => {
                let was_running = self.running();
                self.state.cmos[usize::from(REG_A)] = value & !A_UIP;
                if !self.running() {
                    self.state.divider = 0;
                } else if !was_running {
                    // Leaving reset: the first update comes 500 ms later.
                    self.state.divider = RTC_HZ as u32 / 2;
                }
            }
            REG_B => {
                // Setting SET clears UIE (datasheet, register B bit 4).
                let value = if value & B_SET != 0 {
                    value & !B_UIE
                } else {
                    value
                };
                self.state.cmos[usize::from(REG_B)] = value;
                self.update_irq();
            }
            REG_C | REG_D => {} // read only
            _ => self.state.cmos[usize::from(index & 0x7F)] = value,
        }
    }

    fn update_irq(&mut self) {
        let b = self.reg(REG_B);
        let c = self.reg(REG_C) & (C_PF | C_AF | C_UF);
        let irqf = (c & C_PF != 0 && b & B_PIE != 0)
            || (c & C_AF != 0 && b & B_AIE != 0)
            || (c & C_UF != 0 && b & B_UIE != 0);
        self.state.cmos[usize::from(REG_C)] = c | if irqf { C_IRQF } else { 0 };
        self.irq.set_level(irqf);
    }

    /// Advances the clock by `seconds` whole seconds (the update cycles).
    fn advance_seconds(&mut self, seconds: u64) {
        let t = self.state.time;
        let old_days = days_from_civil(i64::from(t.year), t.month, t.day);
        let cycle = (DAYS_PER_400Y * SECS_PER_DAY) as u64;
        // 400 Gregorian years are a whole number of weeks, so whole cycles
        // only move the year.
        let cycles = seconds / cycle;
        let rest = (seconds % cycle) as i64;
        let total = old_days * SECS_PER_DAY + i64::from(self.second_of_day()) + rest;
        let mut new = DateTime::from_unix(total);
        let years = (u64::from(new.year) + 400 * (cycles % 25)) % 10_000;
        new.year = years as u16;
        let new_days = total.div_euclid(SECS_PER_DAY);
        let dow = i64::from(self.state.day_of_week) - 1 + (new_days - old_days);
        self.state.day_of_week = (dow.rem_euclid(7) + 1) as u8;
        self.state.time = new;
    }

    fn alarm_within(&self, seconds: u64) -> bool {
        self.seconds_to_alarm()
            .is_some_and(|d| u64::from(d) <= seconds)
    }

    fn alarm_matches_now(&self) -> bool {
        let t = self.state.time;
        self.alarm_field(REG_HOURS_ALARM, 24)
            .matches(u32::from(t.hour))
            && self
                .alarm_field(REG_MINUTES_ALARM, 60)
                .matches(u32::from(t.minute))
            && self
                .alarm_field(REG_SECONDS_ALARM, 60)
                .matches(u32::from(t.second))
    }

    /// Seconds (at least 1) until the update that would show 2:00:00 AM on a
    /// daylight-saving day, and whether that day springs forward (April)
    /// rather than falls back (October).
    fn seconds_to_dst_transition(&self) -> (u64, bool) {
        let t = self.state.time;
        let today = days_from_civil(i64::from(t.year), t.month, t.day);
        // The chip finds "the last Sunday" from its own day-of-week register.
        let shift =
            (i64::from(self.state.day_of_week) - 1 - (today + 4).rem_euclid(7)).rem_euclid(7);
        let weekday = |days: i64| (days + 4 + shift).rem_euclid(7); // 0 = Sunday
        let now = today * SECS_PER_DAY + i64::from(self.second_of_day());
        let mut best: Option<(i64, bool)> = None;
        for year in [i64::from(t.year), i64::from(t.year) + 1] {
            for (month, spring) in [(4u8, true), (10u8, false)] {
                if !spring && self.state.dst_fallback_year.map(i64::from) == Some(year) {
                    continue;
                }
                let last_day = days_from_civil(year, month + 1, 1) - 1;
                let at = (last_day - weekday(last_day)) * SECS_PER_DAY + 2 * 3600;
                if at > now && best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, spring));
                }
            }
        }
        // Next year's April always lies ahead, so `best` is set.
        best.map_or((1, false), |(at, spring)| ((at - now) as u64, spring))
    }

    /// Runs `seconds` update cycles; returns whether one matched the alarm.
    fn run_updates(&mut self, mut seconds: u64) -> bool {
        if self.reg(REG_B) & B_DSE == 0 {
            let hit = self.alarm_within(seconds);
            self.advance_seconds(seconds);
            return hit;
        }
        let mut hit = false;
        let cycle = (DAYS_PER_400Y * SECS_PER_DAY) as u64;
        if seconds >= cycle {
            // A 400-year cycle holds as many spring as fall transitions and
            // repeats the calendar, so whole cycles only move the year.
            hit = self.seconds_to_alarm().is_some();
            let whole = seconds / cycle * cycle;
            self.advance_seconds(whole);
            let years = (whole / cycle % 25 * 400) as u16;
            self.state.dst_fallback_year =
                self.state.dst_fallback_year.map(|y| (y + years) % 10_000);
            seconds -= whole;
        }
        while seconds > 0 {
            let (d, spring) = self.seconds_to_dst_transition();
            if seconds < d {
                hit |= self.alarm_within(seconds);
                self.advance_seconds(seconds);
                break;
            }
            hit |= self.alarm_within(d - 1);
            self.advance_seconds(d); // the clock would read 2:00:00 AM
            if spring {
                self.state.time.hour = 3;
            } else {
                self.state.time.hour = 1;
                self.state.dst_fallback_year = Some(self.state.time.year);
            }
            hit |= self.alarm_matches_now();
            seconds -= d;
        }
        hit
    }

    /// Advances virtual time by `ticks` periods of the 32.768 kHz time base:
    /// periodic flags at the rate select's period, one update (with its
    /// update-ended and alarm checks) each time a second completes.
    pub fn tick(&mut self, ticks: Ticks) {
        if !self.running() || ticks.0 == 0 {
            return;
        }
        let pos = u128::from(self.state.divider);
        let end = pos + u128::from(ticks.0);
        let mut flags = 0;
        if let Some(p) = self.periodic_period() {
            let p = u128::from(p);
            if end / p > pos / p {
                flags |= C_PF;
            }
        }
        let updates = (end / u128::from(RTC_HZ)) as u64;
        self.state.divider = (end % u128::from(RTC_HZ)) as u32;
        if updates > 0 && !self.frozen() {
            flags |= C_UF;
            if self.run_updates(updates) {
                flags |= C_AF;
            }
        }
        if flags != 0 {
            self.state.cmos[usize::from(REG_C)] |= flags;
            self.update_irq();
        }
    }

    /// Ticks until the next event whose interrupt is enabled (periodic,
    /// update-ended or alarm), whether or not the line is already high;
    /// `None` if no enabled interrupt can occur. With DSE and AIE it may
    /// answer a daylight-saving transition before the alarm: ask again then.
    pub fn ticks_until_next_irq(&self) -> Option<Ticks> {
        if !self.running() {
            return None;
        }
        let b = self.reg(REG_B);
        let pos = u64::from(self.state.divider);
        let to_update = RTC_HZ - pos;
        let mut best: Option<u64> = None;
        let mut consider = |t: u64| best = Some(best.map_or(t, |b| b.min(t)));
        if b & B_PIE != 0 {
            if let Some(p) = self.periodic_period() {
                let p = u64::from(p);
                consider(p - pos % p);
            }
        }
        if !self.frozen() {
            if b & B_UIE != 0 {
                consider(to_update);
            }
            if b & B_AIE != 0 {
                if let Some(d) = self.seconds_to_alarm() {
                    consider(to_update + (u64::from(d) - 1) * RTC_HZ);
                }
                if b & B_DSE != 0 {
                    // A transition may move the clock onto or past the
                    // alarm: wake at it and ask again.
                    let (d, _) = self.seconds_to_dst_transition();
                    consider(to_update + (d - 1) * RTC_HZ);
                }
            }
        }
        best.map(Ticks)
    }

    /// Fills the memory-size bytes a BIOS reads: base memory (0x15-0x16,
    /// 640 KiB at most), extended memory above 1 MiB in KiB (0x17-0x18 and
    /// 0x30-0x31, capped at 0xFFFF), memory from 16 MiB to 4 GiB in 64 KiB
    /// units (0x34-0x35, capped) and above 4 GiB in 64 KiB units
    /// (0x5B-0x5D). `below_4g` is the RAM from address 0 up (below any PCI
    /// hole), `above_4g` the RAM mapped from 4 GiB. Updates the checksum.
    pub fn set_memory_size(&mut self, below_4g: u64, above_4g: u64) {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        let base = (below_4g / KIB).min(640) as u16;
        let ext = (below_4g.saturating_sub(MIB) / KIB).min(0xFFFF) as u16;
        let above_16m = (below_4g.saturating_sub(16 * MIB) / (64 * KIB)).min(0xFFFF) as u16;
        let above_4g = (above_4g / (64 * KIB)).min(0xFF_FFFF) as u32;
        let c = &mut self.state.cmos;
        let mut put16 = |at: u8, v: u16| {
            c[usize::from(at)] = v as u8;
            c[usize::from(at) + 1] = (v >> 8) as u8;
        };
        put16(CMOS_BASE_MEM_LO, base);
        put16(CMOS_EXT_MEM_LO, ext);
        put16(CMOS_EXT_MEM2_LO, ext);
        put16(CMOS_MEM_ABOVE_16M_LO, above_16m);
        for i in 0..3 {
            c[usize::from(CMOS_MEM_ABOVE_4G) + i] = (above_4g >> (8 * i)) as u8;
        }
        self.update_checksum();
    }

    /// Sets the equipment byte (0x14; see the `EQUIP_*` bits) and the checksum.
    pub fn set_equipment(&mut self, equipment: u8) {
        self.state.cmos[usize::from(CMOS_EQUIPMENT)] = equipment;
        self.update_checksum();
    }

    /// Sets the floppy drive types (0x10) and the checksum.
    pub fn set_floppy_types(&mut self, drive0: FloppyType, drive1: FloppyType) {
        self.state.cmos[usize::from(CMOS_FLOPPY_TYPES)] = ((drive0 as u8) << 4) | drive1 as u8;
        self.update_checksum();
    }

    /// Recomputes the standard checksum: the 16-bit sum of 0x10-0x2D, high
    /// byte at 0x2E, low byte at 0x2F.
    pub fn update_checksum(&mut self) {
        let c = &mut self.state.cmos;
        let range = usize::from(CMOS_CHECKSUM_FIRST)..=usize::from(CMOS_CHECKSUM_LAST);
        let sum: u16 = c[range].iter().map(|b| u16::from(*b)).sum();
        c[usize::from(CMOS_CHECKSUM_HI)] = (sum >> 8) as u8;
        c[usize::from(CMOS_CHECKSUM_HI) + 1] = sum as u8;
    }
}

/// Floppy drive types as CMOS byte 0x10 encodes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FloppyType {
    /// No drive.
    None = 0,
    /// 5.25" 360 KiB.
    Kib360 = 1,
    /// 5.25" 1.2 MiB.
    Mib1_2 = 2,
    /// 3.5" 720 KiB.
    Kib720 = 3,
    /// 3.5" 1.44 MiB.
    Mib1_44 = 4,
    /// 3.5" 2.88 MiB.
    Mib2_88 = 5,
}

impl<L: IrqLine> PortIo for Rtc<L> {
    fn read(&mut self, offset: u16) -> u8 {
        match offset {
            PORT_DATA => {
                let index = self.state.index;
                let value = self.peek(index);
                if index == REG_C {
                    // Reading C clears every flag and releases the line.
                    self.state.cmos[usize::from(REG_C)] = 0;
                    self.irq.set_level(false);
                }
                value
            }
            _ => 0xFF, // the index register is write only
        }
    }

    fn write(&mut self, offset: u16, value: u8) {
        match offset {
            PORT_INDEX => {
                self.state.index = value & 0x7F;
                self.state.nmi_masked = value & 0x80 != 0;
            }
            PORT_DATA => self.poke(self.state.index, value),
            _ => {}
        }
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

    fn dt(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    fn rtc_at(t: DateTime) -> Rtc<Probe> {
        Rtc::new(t, Probe::default())
    }

    fn rd(rtc: &mut Rtc<Probe>, index: u8) -> u8 {
        rtc.write(PORT_INDEX, index);
        rtc.read(PORT_DATA)
    }

    fn wr(rtc: &mut Rtc<Probe>, index: u8, value: u8) {
        rtc.write(PORT_INDEX, index);
        rtc.write(PORT_DATA, value);
    }

    fn clock_bytes(rtc: &mut Rtc<Probe>) -> [u8; 8] {
        [
            rd(rtc, REG_SECONDS),
            rd(rtc, REG_MINUTES),
            rd(rtc, REG_HOURS),
            rd(rtc, REG_DAY_OF_WEEK),
            rd(rtc, REG_DAY),
            rd(rtc, REG_MONTH),
            rd(rtc, REG_YEAR),
            rd(rtc, REG_CENTURY),
        ]
    }

    const SEC: Ticks = Ticks(RTC_HZ);

    #[test]
    fn unix_conversions_round_trip() {
        assert_eq!(DateTime::from_unix(0), dt(1970, 1, 1, 0, 0, 0));
        assert_eq!(DateTime::from_unix(951_782_400), dt(2000, 2, 29, 0, 0, 0));
        assert_eq!(DateTime::from_unix(-1), dt(1969, 12, 31, 23, 59, 59));
        for secs in [
            0i64,
            1,
            86_399,
            951_782_400,
            4_102_444_800,
            -2_208_988_800,
            253_402_300_799,
        ] {
            assert_eq!(DateTime::from_unix(secs).to_unix(), secs);
        }
        assert_eq!(dt(1970, 1, 1, 0, 0, 0).day_of_week(), 5); // Thursday
        assert_eq!(dt(2000, 1, 1, 0, 0, 0).day_of_week(), 7); // Saturday
        assert_eq!(dt(2024, 2, 29, 0, 0, 0).day_of_week(), 5);
        // Overlong days count on.
        assert_eq!(
            DateTime::from_unix(dt(2023, 2, 31, 0, 0, 0).to_unix()),
            dt(2023, 3, 3, 0, 0, 0)
        );
    }

    #[test]
    fn reads_the_start_time_in_bcd_24h() {
        let mut rtc = rtc_at(dt(1999, 12, 31, 23, 59, 58));
        assert_eq!(
            clock_bytes(&mut rtc),
            [0x58, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x19]
        );
        assert_eq!(rd(&mut rtc, REG_A), A_DEFAULT);
        assert_eq!(rd(&mut rtc, REG_B), B_24H);
        assert_eq!(rd(&mut rtc, REG_D), D_VRT);
    }

    #[test]
    fn party_like_its_1999() {
        let mut rtc = rtc_at(dt(1999, 12, 31, 23, 59, 59));
        rtc.tick(Ticks(RTC_HZ - 1));
        assert_eq!(rd(&mut rtc, REG_YEAR), 0x99);
        rtc.tick(Ticks(1));
        assert_eq!(
            clock_bytes(&mut rtc),
            [0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20]
        );
        assert_eq!(rtc.date_time(), dt(2000, 1, 1, 0, 0, 0));
    }

    #[test]
    fn leap_days() {
        let mut rtc = rtc_at(dt(2000, 2, 28, 23, 59, 59));
        rtc.tick(SEC);
        assert_eq!(rtc.date_time(), dt(2000, 2, 29, 0, 0, 0));
        rtc.tick(Ticks(86_400 * RTC_HZ));
        assert_eq!(rtc.date_time(), dt(2000, 3, 1, 0, 0, 0));
        let mut rtc = rtc_at(dt(2100, 2, 28, 23, 59, 59)); // not a leap year
        rtc.tick(SEC);
        assert_eq!(rtc.date_time(), dt(2100, 3, 1, 0, 0, 0));
        let mut rtc = rtc_at(dt(2023, 2, 28, 12, 0, 0));
        rtc.tick(Ticks(12 * 3600 * RTC_HZ));
        assert_eq!(rtc.date_time(), dt(2023, 3, 1, 0, 0, 0));
        let mut rtc = rtc_at(dt(2024, 2, 29, 0, 0, 0));
        rtc.tick(Ticks(366 * 86_400 * RTC_HZ)); // one leap year later
        assert_eq!(rtc.date_time(), dt(2025, 3, 1, 0, 0, 0));
    }

    #[test]
    fn month_ends_roll_over() {
        for (start, end) in [
            (dt(2023, 1, 31, 23, 59, 59), dt(2023, 2, 1, 0, 0, 0)),
            (dt(2023, 4, 30, 23, 59, 59), dt(2023, 5, 1, 0, 0, 0)),
            (dt(2023, 12, 31, 23, 59, 59), dt(2024, 1, 1, 0, 0, 0)),
            (dt(2099, 12, 31, 23, 59, 59), dt(2100, 1, 1, 0, 0, 0)),
            (dt(2023, 6, 15, 10, 59, 59), dt(2023, 6, 15, 11, 0, 0)),
        ] {
            let mut rtc = rtc_at(start);
            rtc.tick(SEC);
            assert_eq!(rtc.date_time(), end, "from {start:?}");
        }
    }

    #[test]
    fn huge_ticks_are_exact_and_fast() {
        let start = dt(2024, 2, 29, 13, 14, 15);
        let mut rtc = rtc_at(start);
        let secs: i64 = 10 * 365 * 86_400 + 12_345;
        rtc.tick(Ticks(secs as u64 * RTC_HZ + 5));
        assert_eq!(rtc.date_time(), DateTime::from_unix(start.to_unix() + secs));
        assert_eq!(rtc.state().divider, 5);
        assert_eq!(rtc.state().day_of_week, rtc.date_time().day_of_week());
        // Piecewise equals at once.
        let mut a = rtc_at(start);
        let mut b = rtc_at(start);
        for _ in 0..1000 {
            a.tick(Ticks(12_345_679));
        }
        b.tick(Ticks(12_345_679_000));
        assert_eq!(a.state(), b.state());
        // The largest tick does not overflow; years wrap modulo 10000.
        let mut c = rtc_at(start);
        c.tick(Ticks(u64::MAX));
        c.tick(Ticks(u64::MAX));
        assert!(c.date_time().year < 10_000);
        assert_eq!(c.state().day_of_week, c.date_time().day_of_week());
    }

    #[test]
    fn daylight_saving_springs_forward_and_falls_back_once() {
        // 2024-04-28 and 2024-10-27 are the last Sundays of their months.
        let mut rtc = rtc_at(dt(2024, 4, 28, 1, 59, 58));
        wr(&mut rtc, REG_B, B_24H | B_DSE);
        rtc.tick(SEC);
        assert_eq!(rtc.date_time(), dt(2024, 4, 28, 1, 59, 59));
        rtc.tick(SEC);
        assert_eq!(rtc.date_time(), dt(2024, 4, 28, 3, 0, 0));
        let mut rtc = rtc_at(dt(2024, 10, 27, 1, 59, 59));
        wr(&mut rtc, REG_B, B_24H | B_DSE);
        rtc.tick(SEC);
        assert_eq!(rtc.date_time(), dt(2024, 10, 27, 1, 0, 0));
        rtc.tick(Ticks(3600 * RTC_HZ));
        assert_eq!(
            rtc.date_time(),
            dt(2024, 10, 27, 2, 0, 0),
            "the hour repeats once"
        );
        // Not on other Sundays, nor without DSE.
        let mut rtc = rtc_at(dt(2024, 4, 21, 1, 59, 59));
        wr(&mut rtc, REG_B, B_24H | B_DSE);
        rtc.tick(SEC);
        assert_eq!(rtc.date_time().hour, 2);
        let mut rtc = rtc_at(dt(2024, 4, 28, 1, 59, 59));
        rtc.tick(SEC);
        assert_eq!(rtc.date_time().hour, 2);
    }

    #[test]
    fn daylight_saving_follows_the_day_of_week_register() {
        // Saturday 2024-04-27, but the register says Sunday.
        let mut rtc = rtc_at(dt(2024, 4, 27, 1, 59, 59));
        wr(&mut rtc, REG_DAY_OF_WEEK, 1);
        wr(&mut rtc, REG_B, B_24H | B_DSE);
        rtc.tick(SEC);
        assert_eq!(rtc.date_time(), dt(2024, 4, 27, 3, 0, 0));
    }

    #[test]
    fn daylight_saving_over_long_ticks() {
        let start = dt(2024, 1, 1, 0, 0, 0);
        let mut rtc = rtc_at(start);
        wr(&mut rtc, REG_B, B_24H | B_DSE);
        rtc.tick(Ticks(200 * 86_400 * RTC_HZ));
        assert_eq!(
            rtc.date_time(),
            dt(2024, 7, 19, 1, 0, 0),
            "an hour ahead in summer"
        );
        rtc.tick(Ticks(166 * 86_400 * RTC_HZ));
        assert_eq!(
            rtc.date_time(),
            dt(2025, 1, 1, 0, 0, 0),
            "and back in winter"
        );
        // Piecewise equals at once, over years of transitions.
        let mut a = rtc_at(start);
        let mut b = rtc_at(start);
        wr(&mut a, REG_B, B_24H | B_DSE);
        wr(&mut b, REG_B, B_24H | B_DSE);
        let step = 7_777 * RTC_HZ + 1_234;
        for _ in 0..20_000 {
            a.tick(Ticks(step));
        }
        b.tick(Ticks(20_000 * step));
        assert_eq!(a.state(), b.state());
        // Whole 400-year cycles.
        let mut c = rtc_at(dt(2024, 10, 27, 1, 30, 0));
        wr(&mut c, REG_B, B_24H | B_DSE);
        c.tick(Ticks(1800 * RTC_HZ));
        assert_eq!(c.date_time(), dt(2024, 10, 27, 1, 0, 0));
        c.tick(Ticks(146_097 * 86_400 * RTC_HZ));
        assert_eq!(c.date_time(), dt(2424, 10, 27, 1, 0, 0));
        c.tick(Ticks(3600 * RTC_HZ));
        assert_eq!(c.date_time(), dt(2424, 10, 27, 2, 0, 0));
        c.tick(Ticks(u64::MAX));
        assert!(c.date_time().year < 10_000);
    }

    #[test]
    fn daylight_saving_alarm_in_the_skipped_hour_waits_a_day() {
        let mut rtc = rtc_at(dt(2024, 4, 28, 1, 0, 0));
        wr(&mut rtc, REG_HOURS_ALARM, 0x02);
        wr(&mut rtc, REG_MINUTES_ALARM, 0x30);
        wr(&mut rtc, REG_SECONDS_ALARM, 0x00);
        wr(&mut rtc, REG_B, B_24H | B_DSE | B_AIE);
        assert_eq!(
            rtc.ticks_until_next_irq(),
            Some(Ticks(3600 * RTC_HZ)),
            "wake at the jump"
        );
        rtc.tick(Ticks(3600 * RTC_HZ));
        assert_eq!(rtc.date_time(), dt(2024, 4, 28, 3, 0, 0));
        assert_eq!(rd(&mut rtc, REG_C) & C_AF, 0);
        assert_eq!(
            rtc.ticks_until_next_irq(),
            Some(Ticks((23 * 3600 + 1800) * RTC_HZ))
        );
        // An alarm at 3:00:00 matches the jump's update.
        let mut rtc = rtc_at(dt(2024, 4, 28, 1, 59, 59));
        wr(&mut rtc, REG_HOURS_ALARM, 0x03);
        wr(&mut rtc, REG_MINUTES_ALARM, 0x00);
        wr(&mut rtc, REG_SECONDS_ALARM, 0x00);
        wr(&mut rtc, REG_B, B_24H | B_DSE | B_AIE);
        rtc.tick(SEC);
        assert!(rtc.irq().high);
    }

    #[test]
    fn binary_and_12_hour_modes() {
        let mut rtc = rtc_at(dt(2009, 7, 4, 0, 5, 9));
        wr(&mut rtc, REG_B, B_DM_BINARY | B_24H);
        assert_eq!(clock_bytes(&mut rtc), [9, 5, 0, 7, 4, 7, 9, 20]);
        wr(&mut rtc, REG_B, B_DM_BINARY); // 12-hour binary
        assert_eq!(rd(&mut rtc, REG_HOURS), 12); // midnight is 12 AM
        wr(&mut rtc, REG_HOURS, HOUR_PM | 11);
        assert_eq!(rtc.date_time().hour, 23);
        wr(&mut rtc, REG_HOURS, HOUR_PM | 12);
        assert_eq!(rtc.date_time().hour, 12);
        wr(&mut rtc, REG_B, 0); // 12-hour BCD
        assert_eq!(rd(&mut rtc, REG_HOURS), HOUR_PM | 0x12);
        wr(&mut rtc, REG_HOURS, HOUR_PM | 0x09);
        assert_eq!(rd(&mut rtc, REG_HOURS), HOUR_PM | 0x09);
        assert_eq!(rtc.date_time().hour, 21);
        wr(&mut rtc, REG_HOURS, 0x12); // 12 AM
        assert_eq!(rtc.date_time().hour, 0);
        wr(&mut rtc, REG_B, B_24H);
        assert_eq!(rd(&mut rtc, REG_HOURS), 0x00);
    }

    #[test]
    fn guest_sets_the_clock_under_set() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        wr(&mut rtc, REG_B, B_SET | B_24H | B_UIE);
        assert_eq!(rd(&mut rtc, REG_B) & B_UIE, 0, "SET clears UIE");
        for (r, v) in [
            (REG_SECONDS, 0x30),
            (REG_MINUTES, 0x45),
            (REG_HOURS, 0x17),
            (REG_DAY, 0x31), // day before month: Feb 31 must not normalise yet
            (REG_MONTH, 0x02),
            (REG_MONTH, 0x03),
            (REG_YEAR, 0x24),
            (REG_CENTURY, 0x20),
            (REG_DAY_OF_WEEK, 0x01),
        ] {
            wr(&mut rtc, r, v);
        }
        rtc.tick(Ticks(10 * RTC_HZ)); // frozen
        assert_eq!(rtc.date_time(), dt(2024, 3, 31, 17, 45, 30));
        assert_eq!(rd(&mut rtc, REG_C) & C_UF, 0);
        wr(&mut rtc, REG_B, B_24H);
        rtc.tick(SEC);
        assert_eq!(rtc.date_time(), dt(2024, 3, 31, 17, 45, 31));
        assert_eq!(rd(&mut rtc, REG_C) & C_UF, C_UF);
    }

    #[test]
    fn invalid_writes_clamp() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        wr(&mut rtc, REG_SECONDS, 0x7F); // bad BCD: ignored
        assert_eq!(rtc.date_time().second, 0);
        wr(&mut rtc, REG_SECONDS, 0x99);
        assert_eq!(rtc.date_time().second, 59);
        wr(&mut rtc, REG_MONTH, 0x00);
        assert_eq!(rtc.date_time().month, 1);
        wr(&mut rtc, REG_HOURS, 0x88);
        assert_eq!(rtc.date_time().hour, 23);
        wr(&mut rtc, REG_DAY_OF_WEEK, 0x09);
        assert_eq!(rd(&mut rtc, REG_DAY_OF_WEEK), 7);
        wr(&mut rtc, REG_D, 0);
        assert_eq!(rd(&mut rtc, REG_D), D_VRT);
        wr(&mut rtc, REG_C, 0xF0);
        assert_eq!(rd(&mut rtc, REG_C), 0);
        wr(&mut rtc, REG_A, 0xFF);
        assert_eq!(rd(&mut rtc, REG_A), 0x7F, "UIP is read only");
    }

    #[test]
    fn uip_precedes_the_update() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        rtc.tick(Ticks(RTC_HZ - 9));
        assert_eq!(rd(&mut rtc, REG_A) & A_UIP, 0);
        rtc.tick(Ticks(1));
        assert_eq!(rd(&mut rtc, REG_A) & A_UIP, A_UIP);
        assert_eq!(rd(&mut rtc, REG_SECONDS), 0);
        rtc.tick(Ticks(8));
        assert_eq!(rd(&mut rtc, REG_A) & A_UIP, 0);
        assert_eq!(rd(&mut rtc, REG_SECONDS), 1);
        wr(&mut rtc, REG_B, B_SET | B_24H);
        rtc.tick(Ticks(RTC_HZ - 4));
        assert_eq!(rd(&mut rtc, REG_A) & A_UIP, 0, "no UIP while SET");
    }

    #[test]
    fn divider_reset_stops_the_clock_and_restarts_half_a_second_late() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        wr(&mut rtc, REG_B, B_24H | B_PIE | B_UIE);
        wr(&mut rtc, REG_A, 0x70 | 0x06);
        rtc.tick(Ticks(100 * RTC_HZ));
        assert_eq!(rtc.date_time().second, 0);
        assert_eq!(rd(&mut rtc, REG_C), 0);
        assert_eq!(rtc.ticks_until_next_irq(), None);
        wr(&mut rtc, REG_A, 0x20); // DV = 010, RS = 0
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(RTC_HZ / 2)));
        rtc.tick(Ticks(RTC_HZ / 2 - 1));
        assert_eq!(rtc.date_time().second, 0);
        rtc.tick(Ticks(1));
        assert_eq!(rtc.date_time().second, 1);
    }

    #[test]
    fn periodic_interrupt_rates() {
        for (rs, period) in [
            (1, 128),
            (2, 256),
            (3, 4),
            (6, 32),
            (15, 16_384),
            (8, 128),
            (9, 256),
        ] {
            let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
            wr(&mut rtc, REG_A, 0x20 | rs);
            wr(&mut rtc, REG_B, B_24H | B_PIE);
            assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(period)), "rs {rs}");
            rtc.tick(Ticks(period - 1));
            assert!(!rtc.irq().high);
            rtc.tick(Ticks(1));
            assert!(rtc.irq().high, "rs {rs}");
            assert_eq!(rd(&mut rtc, REG_C), C_IRQF | C_PF);
            assert!(!rtc.irq().high);
            assert_eq!(rd(&mut rtc, REG_C), 0, "read clears");
            assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(period)));
        }
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        wr(&mut rtc, REG_A, 0x20);
        wr(&mut rtc, REG_B, B_24H | B_PIE);
        assert_eq!(rtc.ticks_until_next_irq(), None, "RS = 0 disables");
    }

    #[test]
    fn flags_set_without_enables_and_irqf_follows_the_enables() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        rtc.tick(SEC);
        assert!(!rtc.irq().high);
        assert_eq!(rtc.cmos(REG_C), C_PF | C_UF);
        wr(&mut rtc, REG_B, B_24H | B_UIE);
        assert!(rtc.irq().high, "enabling with the flag set raises at once");
        wr(&mut rtc, REG_B, B_24H);
        assert!(!rtc.irq().high);
        assert_eq!(rd(&mut rtc, REG_C), C_PF | C_UF);
    }

    #[test]
    fn update_ended_interrupt_once_per_second() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        wr(&mut rtc, REG_B, B_24H | B_UIE);
        let mut count = 0;
        for _ in 0..(10 * RTC_HZ / 512) {
            rtc.tick(Ticks(512));
            if rtc.irq().high {
                count += 1;
                assert_eq!(rd(&mut rtc, REG_C) & (C_IRQF | C_UF), C_IRQF | C_UF);
            }
        }
        assert_eq!(count, 10);
        assert_eq!(rtc.irq().rises, 10);
        assert_eq!(rtc.ticks_until_next_irq(), Some(SEC));
    }

    #[test]
    fn alarm_matches_exact_time() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 12, 0, 0));
        wr(&mut rtc, REG_HOURS_ALARM, 0x12);
        wr(&mut rtc, REG_MINUTES_ALARM, 0x00);
        wr(&mut rtc, REG_SECONDS_ALARM, 0x05);
        wr(&mut rtc, REG_B, B_24H | B_AIE);
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(5 * RTC_HZ)));
        rtc.tick(Ticks(4 * RTC_HZ));
        assert!(!rtc.irq().high);
        rtc.tick(SEC);
        assert!(rtc.irq().high);
        assert_eq!(rd(&mut rtc, REG_C), C_IRQF | C_AF | C_UF | C_PF);
        // Next match is a day later.
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(86_400 * RTC_HZ)));
        rtc.tick(Ticks(86_400 * RTC_HZ - 1));
        assert!(!rtc.irq().high);
        rtc.tick(Ticks(1));
        assert!(rtc.irq().high);
    }

    #[test]
    fn alarm_dont_care_bytes() {
        // Every second: all three don't care.
        let mut rtc = rtc_at(dt(2000, 1, 1, 12, 0, 0));
        for r in [REG_HOURS_ALARM, REG_MINUTES_ALARM, REG_SECONDS_ALARM] {
            wr(&mut rtc, r, 0xC0 | r);
        }
        wr(&mut rtc, REG_B, B_24H | B_AIE);
        assert_eq!(rtc.ticks_until_next_irq(), Some(SEC));
        // Every minute at :30.
        wr(&mut rtc, REG_SECONDS_ALARM, 0x30);
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(30 * RTC_HZ)));
        rtc.tick(Ticks(31 * RTC_HZ));
        assert_eq!(rd(&mut rtc, REG_C) & C_AF, C_AF);
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(59 * RTC_HZ)));
        // Every hour at hh:15:00.
        wr(&mut rtc, REG_SECONDS_ALARM, 0);
        wr(&mut rtc, REG_MINUTES_ALARM, 0x15);
        assert_eq!(
            rtc.ticks_until_next_irq(),
            Some(Ticks((14 * 60 + 29) * RTC_HZ))
        );
        // An impossible alarm never fires.
        wr(&mut rtc, REG_MINUTES_ALARM, 0x61);
        assert_eq!(rtc.ticks_until_next_irq(), None);
        rtc.tick(Ticks(2 * 86_400 * RTC_HZ));
        assert_eq!(rd(&mut rtc, REG_C) & C_AF, 0);
    }

    #[test]
    fn alarm_in_12_hour_mode_and_across_a_huge_tick() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 10, 0, 0));
        wr(&mut rtc, REG_B, 0); // 12-hour BCD
        wr(&mut rtc, REG_HOURS_ALARM, HOUR_PM | 0x01);
        wr(&mut rtc, REG_MINUTES_ALARM, 0);
        wr(&mut rtc, REG_SECONDS_ALARM, 0);
        wr(&mut rtc, REG_B, B_AIE);
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(3 * 3600 * RTC_HZ)));
        rtc.tick(Ticks(3 * 3600 * RTC_HZ + 17));
        assert!(rtc.irq().high);
        assert_eq!(rd(&mut rtc, REG_C) & C_AF, C_AF);
        // A huge jump crosses a match.
        rtc.tick(Ticks(40 * 86_400 * RTC_HZ));
        assert_eq!(rd(&mut rtc, REG_C) & C_AF, C_AF);
        // A jump of less than the distance does not.
        rtc.tick(Ticks(3600 * RTC_HZ));
        assert_eq!(rd(&mut rtc, REG_C) & C_AF, 0);
    }

    #[test]
    fn alarm_search_matches_brute_force() {
        let fields = [
            AlarmField::Any,
            AlarmField::Exact(0),
            AlarmField::Exact(7),
            AlarmField::Exact(23),
            AlarmField::Exact(59),
            AlarmField::Never,
        ];
        let mut seed = 12345u64;
        for _ in 0..300 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let now = ((seed >> 33) % 86_400) as u32;
            let pick = |k: u64| fields[((seed >> k) % 6) as usize];
            let (h, m, s) = (pick(5), pick(13), pick(21));
            let brute = (1..=86_400u32).find(|d| {
                let t = (now + d) % 86_400;
                h.matches(t / 3600) && m.matches(t / 60 % 60) && s.matches(t % 60)
            });
            assert_eq!(
                seconds_to_alarm(now, h, m, s),
                brute,
                "{now} {h:?} {m:?} {s:?}"
            );
        }
    }

    #[test]
    fn nmi_mask_and_index() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        assert!(!rtc.nmi_masked());
        rtc.write(PORT_INDEX, 0x80 | 0x40);
        assert!(rtc.nmi_masked());
        rtc.write(PORT_DATA, 0xAB);
        assert_eq!(rtc.cmos(0x40), 0xAB);
        rtc.write(PORT_INDEX, 0x40);
        assert!(!rtc.nmi_masked());
        assert_eq!(rtc.read(PORT_DATA), 0xAB);
        assert_eq!(rtc.read(PORT_INDEX), 0xFF);
        assert_eq!(rtc.read(7), 0xFF);
        rtc.write(7, 0); // ignored
    }

    #[test]
    fn cmos_ram_holds_all_bytes() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        for i in 0x0E..0x80u8 {
            if i != REG_CENTURY {
                wr(&mut rtc, i, i ^ 0x5A);
            }
        }
        for i in 0x0E..0x80u8 {
            if i != REG_CENTURY {
                assert_eq!(rd(&mut rtc, i), i ^ 0x5A);
            }
        }
        // Alarms are plain bytes.
        wr(&mut rtc, REG_SECONDS_ALARM, 0x7E);
        assert_eq!(rd(&mut rtc, REG_SECONDS_ALARM), 0x7E);
    }

    #[test]
    fn memory_size_equipment_floppies_and_checksum() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        rtc.set_memory_size(512 << 20, 2 << 30);
        assert_eq!([rtc.cmos(0x15), rtc.cmos(0x16)], [0x80, 0x02]); // 640
        assert_eq!([rtc.cmos(0x17), rtc.cmos(0x18)], [0xFF, 0xFF]); // capped
        assert_eq!([rtc.cmos(0x30), rtc.cmos(0x31)], [0xFF, 0xFF]);
        assert_eq!([rtc.cmos(0x34), rtc.cmos(0x35)], [0x00, 0x1F]); // 496 MiB / 64 KiB
        assert_eq!(
            [rtc.cmos(0x5B), rtc.cmos(0x5C), rtc.cmos(0x5D)],
            [0x00, 0x80, 0x00]
        );
        rtc.set_memory_size(8 << 20, 0);
        assert_eq!([rtc.cmos(0x17), rtc.cmos(0x18)], [0x00, 0x1C]); // 7168 KiB
        assert_eq!([rtc.cmos(0x34), rtc.cmos(0x35)], [0, 0]);
        rtc.set_memory_size(256 << 10, 0);
        assert_eq!([rtc.cmos(0x15), rtc.cmos(0x16)], [0x00, 0x01]);
        assert_eq!([rtc.cmos(0x17), rtc.cmos(0x18)], [0, 0]);
        rtc.set_equipment(EQUIP_FLOPPY | EQUIP_FPU | EQUIP_VIDEO_EGA_VGA);
        assert_eq!(rtc.cmos(CMOS_EQUIPMENT), 0x03);
        rtc.set_floppy_types(FloppyType::Mib1_44, FloppyType::None);
        assert_eq!(rtc.cmos(CMOS_FLOPPY_TYPES), 0x40);
        let sum: u16 = (0x10..=0x2D).map(|i| u16::from(rtc.cmos(i))).sum();
        assert_eq!(u16::from_be_bytes([rtc.cmos(0x2E), rtc.cmos(0x2F)]), sum);
        assert_eq!(sum, 0x40 + 0x03 + 0x01); // floppies, equipment, base memory high byte
    }

    #[test]
    fn snapshot_round_trip_restores_the_line() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        wr(&mut rtc, REG_B, B_24H | B_UIE);
        rtc.tick(Ticks(RTC_HZ + 77));
        assert!(rtc.irq().high);
        let state = rtc.state().clone();
        let restored = Rtc::from_state(state.clone(), Probe::default());
        assert!(restored.irq().high);
        assert_eq!(restored.state(), &state);
    }

    #[test]
    fn every_hour_round_trips_in_every_mode() {
        for b in [0, B_24H, B_DM_BINARY, B_DM_BINARY | B_24H] {
            let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
            wr(&mut rtc, REG_B, b);
            for hour in 0..24u8 {
                let byte = rtc.encode_hour(hour);
                wr(&mut rtc, REG_HOURS, byte);
                assert_eq!(rtc.date_time().hour, hour, "mode {b:#x} byte {byte:#x}");
                assert_eq!(rd(&mut rtc, REG_HOURS), byte);
                assert_eq!(rtc.decode_hour(byte), Some(hour));
            }
            for v in 0..60u8 {
                let byte = if b & B_DM_BINARY != 0 { v } else { to_bcd(v) };
                wr(&mut rtc, REG_MINUTES, byte);
                assert_eq!(rd(&mut rtc, REG_MINUTES), byte);
                assert_eq!(rtc.date_time().minute, v);
            }
        }
    }

    #[test]
    fn year_9999_wraps_to_0000() {
        let mut rtc = rtc_at(dt(9999, 12, 31, 23, 59, 59));
        rtc.tick(SEC);
        assert_eq!(rtc.date_time(), dt(0, 1, 1, 0, 0, 0));
        assert_eq!(rd(&mut rtc, REG_CENTURY), 0x00);
        assert_eq!(
            rd(&mut rtc, REG_DAY_OF_WEEK),
            dt(0, 1, 1, 0, 0, 0).day_of_week()
        );
    }

    #[test]
    fn set_freezes_updates_and_alarms_but_not_the_periodic_interrupt() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        for r in [REG_HOURS_ALARM, REG_MINUTES_ALARM, REG_SECONDS_ALARM] {
            wr(&mut rtc, r, 0xFF);
        }
        wr(&mut rtc, REG_B, B_SET | B_24H | B_PIE | B_AIE);
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(32)), "periodic only");
        rtc.tick(Ticks(5 * RTC_HZ));
        assert_eq!(rd(&mut rtc, REG_C), C_IRQF | C_PF);
        assert_eq!(rtc.date_time(), dt(2000, 1, 1, 0, 0, 0));
        wr(&mut rtc, REG_B, B_SET | B_24H);
        assert_eq!(rtc.ticks_until_next_irq(), None);
        wr(&mut rtc, REG_B, B_24H | B_AIE);
        assert_eq!(rtc.ticks_until_next_irq(), Some(SEC));
    }

    #[test]
    fn next_irq_is_the_earliest_enabled_source() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        assert_eq!(rtc.ticks_until_next_irq(), None, "nothing enabled");
        wr(&mut rtc, REG_A, 0x20 | 15); // 2 Hz
        wr(&mut rtc, REG_SECONDS_ALARM, 0x00); // hh:mm:00 at 00:00 -> 60 s
        wr(&mut rtc, REG_MINUTES_ALARM, 0xC0);
        wr(&mut rtc, REG_HOURS_ALARM, 0xC0);
        wr(&mut rtc, REG_B, B_24H | B_AIE);
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(60 * RTC_HZ)));
        wr(&mut rtc, REG_B, B_24H | B_AIE | B_UIE);
        assert_eq!(rtc.ticks_until_next_irq(), Some(SEC));
        wr(&mut rtc, REG_B, B_24H | B_AIE | B_UIE | B_PIE);
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(RTC_HZ / 2)));
        rtc.tick(Ticks(100));
        assert_eq!(rtc.ticks_until_next_irq(), Some(Ticks(RTC_HZ / 2 - 100)));
    }

    #[test]
    fn register_a_writes_keep_the_divider_phase() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        rtc.tick(Ticks(1000));
        wr(&mut rtc, REG_A, 0x23);
        assert_eq!(rtc.state().divider, 1000);
        rtc.tick(Ticks(RTC_HZ - 1000));
        assert_eq!(rtc.date_time().second, 1);
    }

    #[test]
    fn set_date_time_normalises_and_sets_the_weekday() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        rtc.set_date_time(dt(2023, 2, 29, 25, 0, 0)); // overlong fields count on
        assert_eq!(rtc.date_time(), dt(2023, 3, 2, 1, 0, 0));
        assert_eq!(rd(&mut rtc, REG_DAY_OF_WEEK), 5); // a Thursday
    }

    #[test]
    fn set_cmos_writes_through_to_the_clock() {
        let mut rtc = rtc_at(dt(2000, 1, 1, 0, 0, 0));
        rtc.set_cmos(REG_MINUTES, 0x42);
        assert_eq!(rtc.date_time().minute, 42);
        rtc.set_cmos(0x80 | 0x50, 0x77); // bit 7 of the index is ignored
        assert_eq!(rtc.cmos(0x50), 0x77);
        assert_eq!(rtc.cmos(REG_D), D_VRT);
    }

    #[test]
    fn hostile_snapshot_is_sanitised() {
        let mut state = RtcState::new(dt(2000, 1, 1, 0, 0, 0));
        state.cmos = [0xFF; 128];
        state.time = DateTime {
            year: u16::MAX,
            month: 0,
            day: 0,
            hour: 99,
            minute: 99,
            second: 99,
        };
        state.day_of_week = 0;
        state.index = 0xFF;
        state.divider = u32::MAX;
        state.dst_fallback_year = Some(u16::MAX);
        let mut rtc = Rtc::from_state(state, Probe::default());
        wr(&mut rtc, REG_B, B_DSE | B_AIE | B_PIE | B_UIE);
        wr(&mut rtc, REG_A, 0x2F);
        for t in [1, RTC_HZ, 400 * 365 * 86_400 * RTC_HZ, u64::MAX] {
            rtc.tick(Ticks(t));
            let _ = rtc.ticks_until_next_irq();
        }
        clock_bytes(&mut rtc);
        assert!(rtc.date_time().year < 10_000);
    }

    #[test]
    fn fuzz_never_panics() {
        let mut rtc = rtc_at(dt(2000, 2, 29, 23, 59, 59));
        let mut seed = 0x1234_5678_9ABC_DEF0u64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let (op, port, value) = (seed % 5, (seed >> 8) as u16 % 3, (seed >> 16) as u8);
            match op {
                0 | 1 => rtc.write(port, value),
                2 => {
                    rtc.read(port);
                }
                3 => rtc.tick(Ticks(seed >> (24 + (seed >> 60)))),
                _ => {
                    let _ = rtc.ticks_until_next_irq();
                }
            }
            assert!(rtc.state().divider < RTC_HZ as u32);
            let t = rtc.date_time();
            assert!((1..=12).contains(&t.month) && (1..=31).contains(&t.day) && t.hour < 24);
            assert!(t.year < 10_000);
        }
    }
}
