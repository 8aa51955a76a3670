//! The P6 family's two performance-monitoring counters (SDM Vol. 3B, 20.6.8
//! "Performance Monitoring (P6 Family Processor)" and Vol. 4, table 2-54):
//! PerfEvtSel0/1 (MSRs 0x186/0x187) choose an event, PerfCtr0/1 (MSRs
//! 0xC1/0xC2) count it in 40 bits. EN in PerfEvtSel0 starts and stops both.
//!
//! Two events count: 0xC0 INST_RETIRED and 0x79 CPU_CLK_UNHALTED (one clock
//! per retired instruction, the machine's time base); every other event
//! counts nothing. The USR/OS ring filter, the edge/invert/CMASK
//! qualifiers and the overflow interrupt (INT) are not modelled: an
//! enabled counter of a supported event counts in every ring and wraps
//! silently at 2^40.

/// PerfCtr0.
pub const PERFCTR0: u32 = 0xC1;
/// PerfCtr1.
pub const PERFCTR1: u32 = 0xC2;
/// PerfEvtSel0.
pub const PERFEVTSEL0: u32 = 0x186;
/// PerfEvtSel1.
pub const PERFEVTSEL1: u32 = 0x187;

/// The counters' width.
const COUNTER_MASK: u64 = (1 << 40) - 1;
/// PerfEvtSel bit 22: counters enabled (PerfEvtSel0's bit governs both).
const EN: u64 = 1 << 22;
/// PerfEvtSel bit 21 is reserved, as are bits 32-63.
const EVTSEL_RESERVED: u64 = 0xFFFF_FFFF_0020_0000;
/// Events that count.
const INST_RETIRED: u64 = 0xC0;
const CPU_CLK_UNHALTED: u64 = 0x79;

/// The counters' registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerfCounters {
    /// PerfEvtSel0 and PerfEvtSel1.
    evtsel: [u64; 2],
    /// Each counter's value at `since`.
    value: [u64; 2],
    /// Retired instructions when `value` was taken.
    since: [u64; 2],
}

impl PerfCounters {
    /// Whether counter `n` is counting instructions now.
    fn counting(&self, n: usize) -> bool {
        self.evtsel[0] & EN != 0 && matches!(self.evtsel[n] & 0xFF, INST_RETIRED | CPU_CLK_UNHALTED)
    }

    fn counter(&self, n: usize, icount: u64) -> u64 {
        let mut v = self.value[n];
        if self.counting(n) {
            v = v.wrapping_add(icount.wrapping_sub(self.since[n]));
        }
        v & COUNTER_MASK
    }

    /// Freezes both counters' values at `icount` before a reconfiguration.
    fn settle(&mut self, icount: u64) {
        for n in 0..2 {
            self.value[n] = self.counter(n, icount);
            self.since[n] = icount;
        }
    }

    /// RDMSR of one of the four registers; `None` for any other MSR.
    pub fn read(&self, msr: u32, icount: u64) -> Option<u64> {
        match msr {
            PERFCTR0 => Some(self.counter(0, icount)),
            PERFCTR1 => Some(self.counter(1, icount)),
            PERFEVTSEL0 => Some(self.evtsel[0]),
            PERFEVTSEL1 => Some(self.evtsel[1]),
            _ => None,
        }
    }

    /// WRMSR: `Some(true)` when taken, `Some(false)` for a reserved bit
    /// (#GP), `None` for any other MSR. A counter write takes bits 0-31
    /// sign-extended to 40 bits, as on P6 processors.
    pub fn write(&mut self, msr: u32, value: u64, icount: u64) -> Option<bool> {
        self.settle(icount);
        match msr {
            PERFCTR0 | PERFCTR1 => {
                let n = (msr - PERFCTR0) as usize;
                self.value[n] = (value as u32 as i32 as i64 as u64) & COUNTER_MASK;
                Some(true)
            }
            PERFEVTSEL0 | PERFEVTSEL1 if value & EVTSEL_RESERVED != 0 => Some(false),
            PERFEVTSEL0 | PERFEVTSEL1 => {
                self.evtsel[(msr - PERFEVTSEL0) as usize] = value;
                Some(true)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_retired_count_while_enabled() {
        let mut p = PerfCounters::default();
        assert_eq!(p.write(PERFCTR0, 0xFFFF_FFF0, 100), Some(true));
        assert_eq!(
            p.read(PERFCTR0, 100),
            Some(0xFF_FFFF_FFF0),
            "sign-extended to 40 bits"
        );
        p.write(PERFEVTSEL0, EN | (3 << 16) | INST_RETIRED, 100);
        assert_eq!(
            p.read(PERFCTR0, 150),
            Some(0x00_0000_0022),
            "wrapped at 2^40"
        );
        p.write(PERFEVTSEL0, (3 << 16) | INST_RETIRED, 150); // EN off: stops
        assert_eq!(p.read(PERFCTR0, 10_000), Some(0x22));
    }

    #[test]
    fn counter_1_follows_evtsel0s_enable_and_other_events_do_not_count() {
        let mut p = PerfCounters::default();
        p.write(PERFEVTSEL1, CPU_CLK_UNHALTED, 0);
        assert_eq!(p.read(PERFCTR1, 50), Some(0), "EN of PerfEvtSel0 is clear");
        p.write(PERFEVTSEL0, EN | 0x2E, 50); // L2 requests: not modelled
        assert_eq!(p.read(PERFCTR1, 80), Some(30));
        assert_eq!(p.read(PERFCTR0, 80), Some(0));
        assert_eq!(p.write(PERFEVTSEL0, 1 << 21, 80), Some(false));
        assert_eq!(p.read(0x10, 80), None);
    }
}
