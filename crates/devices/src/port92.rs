//! System control port A at 0x92 (the "fast A20" port of PS/2 and later
//! chipsets; Intel PIIX datasheet, port 92h): bit 1 gates address line 20,
//! bit 0 pulses a CPU reset (reads back 0 after the pulse).

use crate::PortIo;

/// The port the PC places it at.
pub const PORT92: u16 = 0x92;

const FAST_RESET: u8 = 1 << 0;
const A20: u8 = 1 << 1;

/// Port 0x92's latch and the requests it makes of the machine.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Port92 {
    value: u8,
    reset_requested: bool,
}

impl Port92 {
    /// Whether the port enables A20.
    pub fn a20(&self) -> bool {
        self.value & A20 != 0
    }
    /// Takes a pending fast-reset request.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }
}

impl PortIo for Port92 {
    fn read(&mut self, _offset: u16) -> u8 {
        self.value & !FAST_RESET
    }
    fn write(&mut self, _offset: u16, value: u8) {
        if value & FAST_RESET != 0 && self.value & FAST_RESET == 0 {
            self.reset_requested = true;
        }
        self.value = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a20_bit_and_reset_pulse() {
        let mut p = Port92::default();
        p.write(0, A20);
        assert!(p.a20());
        assert!(!p.take_reset_request());
        p.write(0, A20 | FAST_RESET);
        assert!(p.take_reset_request());
        assert_eq!(p.read(0), A20);
    }
}
