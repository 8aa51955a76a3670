//! The debug console at port 0xE9 (as in Bochs and QEMU's isa-debugcon):
//! every byte written is output; a read returns 0xE9 so a guest can tell
//! the port exists.

use crate::PortIo;

/// The port QEMU and Bochs use.
pub const DEBUGCON_PORT: u16 = 0xE9;

/// Collects the bytes a guest writes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DebugCon {
    /// Everything written so far.
    pub output: Vec<u8>,
}

impl PortIo for DebugCon {
    fn read(&mut self, _offset: u16) -> u8 {
        0xE9
    }
    fn write(&mut self, _offset: u16, value: u8) {
        self.output.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_bytes_and_identifies_itself() {
        let mut d = DebugCon::default();
        for b in b"ok\n" {
            d.write(0, *b);
        }
        assert_eq!(d.output, b"ok\n");
        assert_eq!(d.read(0), 0xE9);
    }
}
