//! A test-only interrupt source, so hardware-interrupt delivery can be
//! tested before the interrupt controllers exist.
//!
//! Ports from its base:
//! - 0: vector (write) of the interrupt to raise;
//! - 1: mode (write): 0 = maskable INTR with that vector, 1 = NMI;
//! - 2: countdown (write): raise the interrupt after this many ticks
//!   (instructions); 0 raises it at once. Writing arms the source.
//!
//! A maskable request stays pending until acknowledged; an NMI is an edge
//! taken once.

use crate::{PortIo, Ticks};

/// Where the test machine puts it.
pub const TEST_IRQ_PORT: u16 = 0xE0;

const REG_VECTOR: u16 = 0;
const REG_MODE: u16 = 1;
const REG_COUNT: u16 = 2;
const MODE_NMI: u8 = 1;

/// The interrupt source's state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TestIrq {
    vector: u8,
    nmi: bool,
    countdown: Option<u64>,
    intr_pending: bool,
    nmi_pending: bool,
}

impl TestIrq {
    /// Advances the countdown; raises the request when it reaches zero.
    pub fn tick(&mut self, ticks: Ticks) {
        if let Some(c) = self.countdown {
            if ticks.0 >= c {
                self.countdown = None;
                if self.nmi {
                    self.nmi_pending = true;
                } else {
                    self.intr_pending = true;
                }
            } else {
                self.countdown = Some(c - ticks.0);
            }
        }
    }
    /// Ticks left until the countdown raises its request, if one runs.
    pub fn countdown(&self) -> Option<u64> {
        self.countdown
    }
    /// Whether a countdown is running or a request is pending.
    pub fn armed(&self) -> bool {
        self.countdown.is_some() || self.intr_pending || self.nmi_pending
    }
    /// The INTR line.
    pub fn intr(&self) -> bool {
        self.intr_pending
    }
    /// The acknowledge cycle: the vector, clearing the request.
    pub fn acknowledge(&mut self) -> Option<u8> {
        std::mem::take(&mut self.intr_pending).then_some(self.vector)
    }
    /// Takes a pending NMI edge.
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.nmi_pending)
    }
}

impl PortIo for TestIrq {
    fn read(&mut self, _offset: u16) -> u8 {
        u8::from(self.intr_pending) | (u8::from(self.nmi_pending) << 1)
    }
    fn write(&mut self, offset: u16, value: u8) {
        match offset {
            REG_VECTOR => self.vector = value,
            REG_MODE => self.nmi = value == MODE_NMI,
            REG_COUNT => self.countdown = Some(u64::from(value)),
            _ => {}
        }
        if offset == REG_COUNT && value == 0 {
            self.tick(Ticks(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_the_vector_after_the_countdown() {
        let mut t = TestIrq::default();
        t.write(REG_VECTOR, 0x40);
        t.write(REG_COUNT, 3);
        t.tick(Ticks(2));
        assert!(!t.intr());
        t.tick(Ticks(1));
        assert!(t.intr());
        assert_eq!(t.acknowledge(), Some(0x40));
        assert!(!t.intr());
    }

    #[test]
    fn nmi_mode_is_an_edge() {
        let mut t = TestIrq::default();
        t.write(REG_MODE, MODE_NMI);
        t.write(REG_COUNT, 0);
        assert!(t.take_nmi());
        assert!(!t.take_nmi());
        assert!(!t.intr());
    }
}
