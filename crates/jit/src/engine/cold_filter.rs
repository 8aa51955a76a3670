//! The cold filter: lets the tiered dispatcher skip its lookups on most
//! entries of lukewarm code.
//!
//! Code that runs a few hundred times (most of a kernel's boot) is
//! interpreted, and every block the interpreter enters went through the
//! dispatcher: the key (a soft-TLB translation of CS:EIP and the mode),
//! the jump cache, the translation map and its execution count. That cost
//! more than interpreting the block. The filter remembers, by linear
//! address in a small direct-mapped table, block starts whose last lookup
//! found only a count below the threshold (or code that cannot be
//! translated, or a translation still being compiled in the background),
//! and lets the next `per` entries there interpret at once;
//! the entry after those is looked up again and counted with the skipped
//! ones, so a block is still translated after about `threshold` runs.
//!
//! Skipping a lookup can only mean interpreting a block that has a
//! translation a few entries longer (the interpreter is always correct),
//! so the table is never flushed: a stale or colliding slot costs time,
//! never a wrong result.

/// Slots in the table (a power of two).
const SLOTS: usize = 4096;

/// Entries skipped per lookup at the default threshold: at most this
/// many, and fewer for low thresholds (`per` = threshold / 64), so that
/// small thresholds (tests use 3) count every entry.
pub(crate) const MAX_SKIPPED: u32 = 15;

/// One slot: the linear address plus one (0: empty) and the entries
/// skipped since its last lookup.
#[derive(Clone, Copy, Default)]
struct Slot {
    tag: u32,
    skipped: u32,
}

pub(crate) struct ColdFilter {
    slots: Box<[Slot]>,
}

impl std::fmt::Debug for ColdFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdFilter").finish_non_exhaustive()
    }
}

impl Default for ColdFilter {
    fn default() -> Self {
        Self {
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
        }
    }
}

#[inline]
fn slot_of(lin: u32) -> usize {
    (lin ^ (lin >> 12)) as usize & (SLOTS - 1)
}

impl ColdFilter {
    /// Whether the block at linear address `lin` may be interpreted
    /// without a lookup: it was found lukewarm, and fewer than `per`
    /// entries were skipped since.
    #[inline]
    pub(crate) fn skip(&mut self, lin: u32, per: u32) -> bool {
        let s = &mut self.slots[slot_of(lin)];
        if s.tag == lin.wrapping_add(1) && s.skipped < per {
            s.skipped += 1;
            return true;
        }
        false
    }

    /// The entries this lookup at `lin` stands for (itself and those
    /// skipped since the last one), forgetting the skipped ones.
    #[inline]
    pub(crate) fn take(&mut self, lin: u32) -> u32 {
        let s = &mut self.slots[slot_of(lin)];
        if s.tag == lin.wrapping_add(1) {
            s.tag = 0;
            1 + std::mem::take(&mut s.skipped)
        } else {
            1
        }
    }

    /// The lookup at `lin` found a count below the threshold, code that
    /// is never translated or a translation not back from the worker yet:
    /// skip the next entries there.
    #[inline]
    pub(crate) fn remember(&mut self, lin: u32) {
        self.slots[slot_of(lin)] = Slot {
            tag: lin.wrapping_add(1),
            skipped: 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_start_is_skipped_per_times_then_counted_with_its_skips() {
        let mut f = ColdFilter::default();
        assert!(!f.skip(0x1000, 3), "nothing remembered yet");
        assert_eq!(f.take(0x1000), 1);
        f.remember(0x1000);
        assert!(f.skip(0x1000, 3));
        assert!(f.skip(0x1000, 3));
        assert!(f.skip(0x1000, 3));
        assert!(!f.skip(0x1000, 3), "the fourth entry is looked up");
        assert_eq!(f.take(0x1000), 4);
        assert!(
            !f.skip(0x1000, 3),
            "taken: looked up until remembered again"
        );
    }

    #[test]
    fn a_colliding_start_is_looked_up() {
        let mut f = ColdFilter::default();
        f.remember(0x1000);
        let other = 0x2003;
        assert_eq!(slot_of(other), slot_of(0x1000));
        assert!(!f.skip(other, 15));
        assert_eq!(f.take(other), 1);
        assert!(!f.skip(0x1000, 0), "per 0 never skips");
    }
}
