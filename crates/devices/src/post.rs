//! The POST diagnostic port at 0x80. Firmware writes a progress code here at
//! each step of the power-on self test (a "POST card" on the ISA bus shows it);
//! nothing on the board acts on it. Guests also write to it as a short I/O
//! delay (Linux's `outb_p`). We remember the last byte for `--stats`, and, as
//! on many boards whose chipset latches the port, a read returns that byte.

use crate::PortIo;

/// The port firmware and Linux write to.
pub const POST_PORT: u16 = 0x80;

/// The last POST code written, and how many writes there were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostState {
    /// The last byte written (0 before any write).
    pub last: u8,
    /// How many bytes have been written (wrapping).
    pub writes: u64,
}

/// The POST code latch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostPort {
    state: PostState,
}

impl PostPort {
    /// Builds the port from a snapshot (or `Default`).
    pub fn from_state(state: PostState) -> Self {
        Self { state }
    }

    /// The snapshot state.
    pub fn state(&self) -> &PostState {
        &self.state
    }

    /// The last code written, or `None` before the first write.
    pub fn last_code(&self) -> Option<u8> {
        (self.state.writes != 0).then_some(self.state.last)
    }
}

impl PortIo for PostPort {
    fn read(&mut self, _offset: u16) -> u8 {
        self.state.last
    }

    fn write(&mut self, _offset: u16, value: u8) {
        self.state.last = value;
        self.state.writes = self.state.writes.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_written_reads_zero_and_has_no_code() {
        let mut p = PostPort::default();
        assert_eq!(p.last_code(), None);
        assert_eq!(p.read(0), 0);
    }

    #[test]
    fn remembers_the_last_byte_and_reads_it_back() {
        let mut p = PostPort::default();
        p.write(0, 0x11);
        p.write(0, 0x55);
        assert_eq!(p.last_code(), Some(0x55));
        assert_eq!(p.read(0), 0x55);
        assert_eq!(p.read(0), 0x55, "reading does not clear the latch");
        assert_eq!(p.state().writes, 2);
    }

    #[test]
    fn a_zero_code_is_still_a_code() {
        let mut p = PostPort::default();
        p.write(0, 0);
        assert_eq!(p.last_code(), Some(0));
    }

    #[test]
    fn snapshot_round_trips() {
        let mut p = PostPort::default();
        p.write(0, 0xAA);
        let q = PostPort::from_state(*p.state());
        assert_eq!(q, p);
        assert_eq!(q.last_code(), Some(0xAA));
    }
}
