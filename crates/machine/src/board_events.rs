//! What the board saw of the CPU's I/O: port reads and writes and
//! interrupt-acknowledge cycles, recorded for `--trace-events` and for
//! debuggers that break on interrupts. Recording costs one branch per port
//! access while off.

/// One I/O event on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardEvent {
    /// `IN`: `size` bytes from `port` read `value`.
    PortRead {
        /// The first port.
        port: u16,
        /// 1, 2 or 4 bytes.
        size: u8,
        /// What the guest read.
        value: u32,
    },
    /// `OUT`: `size` bytes of `value` to `port`.
    PortWrite {
        /// The first port.
        port: u16,
        /// 1, 2 or 4 bytes.
        size: u8,
        /// What the guest wrote.
        value: u32,
    },
    /// The interrupt controller answered an acknowledge cycle with `vector`.
    InterruptAck {
        /// The vector delivered to the CPU.
        vector: u8,
    },
}

/// The board's event recorder.
#[derive(Clone, Debug, Default)]
pub struct BoardEvents {
    /// Record events into [`BoardEvents::take`]'s list.
    pub enabled: bool,
    events: Vec<BoardEvent>,
    /// The vector of the last acknowledged interrupt (always kept).
    pub last_ack: Option<u8>,
}

impl BoardEvents {
    /// Records `e` if recording is on (a bound keeps a forgotten recorder
    /// from growing without limit).
    #[inline]
    pub fn record(&mut self, e: BoardEvent) {
        if self.enabled && self.events.len() < 1 << 16 {
            self.events.push(e);
        }
    }

    /// Takes the events recorded so far.
    pub fn take(&mut self) -> Vec<BoardEvent> {
        std::mem::take(&mut self.events)
    }
}
