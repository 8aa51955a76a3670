//! Watchpoints of a host-side debugger (GDB stub, monitor, embedding API),
//! kept apart from the guest's own DR0-DR7 breakpoints: the guest never
//! sees them, they never raise #DB, and they cost nothing while none is set.
//!
//! The memory path records every data access that overlaps a watched range
//! (in [`Cpu::note_data_access`], the same hook the DR data breakpoints
//! use); the machine's run loop reads [`HostWatch::take_hits`] between
//! instructions and stops. Instruction fetches are not data accesses and
//! never hit.

use crate::cpu::Cpu;

/// Which accesses a [`HostWatchpoint`] fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// Writes only.
    Write,
    /// Reads only.
    Read,
    /// Reads and writes.
    Access,
}

/// A watched range of linear addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostWatchpoint {
    /// First linear address.
    pub addr: u32,
    /// Length in bytes (at least 1).
    pub len: u32,
    /// Which accesses fire.
    pub kind: WatchKind,
}

/// One access that touched a watched range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchHit {
    /// The watchpoint that fired.
    pub watchpoint: HostWatchpoint,
    /// The access's linear address.
    pub linear: u32,
    /// The access's size in bytes.
    pub size: u32,
    /// Whether the access was a write.
    pub write: bool,
}

/// The host debugger's watchpoints and the hits recorded since they were
/// last taken.
#[derive(Clone, Debug, Default)]
pub struct HostWatch {
    points: Vec<HostWatchpoint>,
    hits: Vec<WatchHit>,
}

impl HostWatch {
    /// Whether any watchpoint is set.
    #[inline]
    pub fn armed(&self) -> bool {
        !self.points.is_empty()
    }

    /// The watchpoints set.
    pub fn points(&self) -> &[HostWatchpoint] {
        &self.points
    }

    /// Takes the hits recorded since the last call.
    pub fn take_hits(&mut self) -> Vec<WatchHit> {
        std::mem::take(&mut self.hits)
    }

    /// Records an access of `size` bytes at `linear` against every watchpoint.
    fn note(&mut self, linear: u32, size: u32, write: bool) {
        let first = u64::from(linear);
        let last = first + u64::from(size.max(1)) - 1;
        for &w in &self.points {
            let fires = match w.kind {
                WatchKind::Write => write,
                WatchKind::Read => !write,
                WatchKind::Access => true,
            };
            let base = u64::from(w.addr);
            if fires && first < base + u64::from(w.len.max(1)) && base <= last {
                // A bound keeps a guest looping over watched memory from
                // growing the list while nobody takes it.
                if self.hits.len() < 64 {
                    self.hits.push(WatchHit {
                        watchpoint: w,
                        linear,
                        size,
                        write,
                    });
                }
            }
        }
    }
}

impl Cpu {
    /// Adds a host watchpoint; false if the same one is already set.
    pub fn add_host_watchpoint(&mut self, w: HostWatchpoint) -> bool {
        if self.host_watch.points.contains(&w) {
            return false;
        }
        self.host_watch.points.push(w);
        self.update_breakpoints();
        true
    }

    /// Removes a host watchpoint; false if it was not set.
    pub fn remove_host_watchpoint(&mut self, w: HostWatchpoint) -> bool {
        let before = self.host_watch.points.len();
        self.host_watch.points.retain(|p| *p != w);
        self.update_breakpoints();
        before != self.host_watch.points.len()
    }

    /// Records a data access for the host watchpoints (called by the
    /// memory path while [`crate::debug::watch::DATA`] is armed).
    #[inline]
    pub(crate) fn note_host_access(&mut self, linear: u32, size: u32, write: bool) {
        if self.host_watch.armed() {
            self.host_watch.note(linear, size, write);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assemble, flat32_cpu, CODE};
    use crate::{Bus, CpuModel, FlatRam, StepOutcome};
    use iced_x86::code_asm::*;

    #[test]
    fn writes_and_reads_are_recorded_without_touching_the_guest_debug_state() {
        let code = assemble(32, |a| {
            a.mov(dword_ptr(0x5000), eax)?;
            a.mov(ebx, dword_ptr(0x5002))?;
            a.mov(ecx, dword_ptr(0x6000))?;
            a.hlt()
        });
        let mut cpu = flat32_cpu();
        let mut ram = FlatRam::new(1 << 20);
        ram.load(CODE, &code);
        let w = HostWatchpoint {
            addr: 0x5003,
            len: 1,
            kind: WatchKind::Access,
        };
        assert!(cpu.add_host_watchpoint(w));
        assert!(!cpu.add_host_watchpoint(w), "set once");
        assert_eq!(cpu.step(&mut ram), StepOutcome::Continue);
        let hits = cpu.host_watch.take_hits();
        assert_eq!(hits.len(), 1);
        assert!(hits[0].write && hits[0].linear == 0x5000 && hits[0].size == 4);
        assert_eq!(cpu.step(&mut ram), StepOutcome::Continue);
        assert!(!cpu.host_watch.take_hits()[0].write);
        assert_eq!(cpu.step(&mut ram), StepOutcome::Continue);
        assert!(cpu.host_watch.take_hits().is_empty());
        assert_eq!(cpu.state.dr[6] & 0xF, 0, "the guest saw no #DB status");
        assert!(cpu.remove_host_watchpoint(w));
        assert_eq!(cpu.debug_watch, 0);
        let _ = (ram.read_u8(0), CpuModel::P6);
    }
}
