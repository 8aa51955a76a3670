//! The debug-exit device at port 0xF4 (QEMU's isa-debug-exit protocol): a
//! write of `value` asks the emulator to exit with status `(value << 1) | 1`.

use crate::PortIo;

/// The port test programs use.
pub const DEBUG_EXIT_PORT: u16 = 0xF4;

/// Remembers the first exit request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DebugExit {
    /// The value written, once a guest has asked to exit.
    pub requested: Option<u8>,
}

impl DebugExit {
    /// The process exit status the request maps to.
    pub fn exit_status(&self) -> Option<i32> {
        self.requested.map(|v| (i32::from(v) << 1) | 1)
    }
}

impl PortIo for DebugExit {
    fn read(&mut self, _offset: u16) -> u8 {
        0xFF
    }
    fn write(&mut self, _offset: u16, value: u8) {
        if self.requested.is_none() {
            self.requested = Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_value_shifted_with_low_bit() {
        let mut d = DebugExit::default();
        d.write(0, 0);
        d.write(0, 7); // only the first request counts
        assert_eq!(d.exit_status(), Some(1));
    }
}
