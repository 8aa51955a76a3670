//! The machine's clock. In `virtual` mode time is derived from retired
//! instructions, so a run is repeatable bit for bit; in `realtime` mode it
//! follows the host's monotonic clock.

use std::time::Instant;

/// Virtual nanoseconds per retired instruction (a nominal 1000 MIPS CPU).
pub const NS_PER_INSTRUCTION: u64 = 1;

/// Which time base the machine runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClockMode {
    /// Time advances with retired instructions (deterministic).
    #[default]
    Virtual,
    /// Time follows the host clock.
    Realtime,
}

/// Converts the CPU's progress (or the host clock) to nanoseconds.
#[derive(Clone, Debug)]
pub struct Clock {
    mode: ClockMode,
    start: Instant,
    /// Virtual time added while the CPU idled (HLT skipping to an event).
    idle_ns: u64,
}

impl Clock {
    /// A clock starting now.
    pub fn new(mode: ClockMode) -> Self {
        Self {
            mode,
            start: Instant::now(),
            idle_ns: 0,
        }
    }

    /// The mode.
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Nanoseconds since power-on, given the retired-instruction count.
    pub fn now_ns(&self, icount: u64) -> u64 {
        match self.mode {
            ClockMode::Virtual => icount
                .saturating_mul(NS_PER_INSTRUCTION)
                .saturating_add(self.idle_ns),
            ClockMode::Realtime => self.start.elapsed().as_nanos() as u64,
        }
    }

    /// In virtual mode, lets `ns` pass while the CPU is halted.
    pub fn skip(&mut self, ns: u64) {
        if self.mode == ClockMode::Virtual {
            self.idle_ns = self.idle_ns.saturating_add(ns);
        }
    }
}

/// Converts a span of nanoseconds to ticks of a clock of `hz`, carrying
/// the remainder so that no time is lost over many conversions.
#[derive(Clone, Copy, Debug, Default)]
pub struct TickConverter {
    hz: u64,
    last_ns: u64,
    remainder: u128,
}

impl TickConverter {
    /// A converter for an input clock of `hz`.
    pub fn new(hz: u64) -> Self {
        Self {
            hz,
            last_ns: 0,
            remainder: 0,
        }
    }

    /// Ticks elapsed since the previous call, up to `now_ns`.
    pub fn advance_to(&mut self, now_ns: u64) -> u64 {
        let dt = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        let total = u128::from(dt) * u128::from(self.hz) + self.remainder;
        self.remainder = total % 1_000_000_000;
        (total / 1_000_000_000) as u64
    }

    /// Nanoseconds until `ticks` more ticks have elapsed (rounded up).
    pub fn ns_for_ticks(&self, ticks: u64) -> u64 {
        let needed = (u128::from(ticks) * 1_000_000_000).saturating_sub(self.remainder);
        needed.div_ceil(u128::from(self.hz.max(1))) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pit_ticks_do_not_drift() {
        let mut t = TickConverter::new(1_193_182);
        let mut total = 0;
        for ms in 1..=1000 {
            total += t.advance_to(ms * 1_000_000);
        }
        assert_eq!(total, 1_193_182);
    }

    #[test]
    fn virtual_time_is_the_instruction_count_plus_idle() {
        let mut c = Clock::new(ClockMode::Virtual);
        assert_eq!(c.now_ns(1000), 1000 * NS_PER_INSTRUCTION);
        c.skip(500);
        assert_eq!(c.now_ns(1000), 1000 * NS_PER_INSTRUCTION + 500);
    }

    #[test]
    fn ns_for_ticks_reaches_the_tick() {
        let mut t = TickConverter::new(32_768);
        let ns = t.ns_for_ticks(1);
        assert_eq!(t.advance_to(ns), 1);
    }
}
