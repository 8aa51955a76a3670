//! The host side of a serial console on stdin/stdout: raw terminal mode
//! (restored on every exit path by a guard) and QEMU's escape prefix,
//! Ctrl-A, for commands to the emulator (Ctrl-A x quits, Ctrl-A h helps,
//! Ctrl-A Ctrl-A sends a literal Ctrl-A).

use std::io::IsTerminal;

/// The escape prefix (Ctrl-A).
pub const ESCAPE: u8 = 0x01;

/// What a byte typed on the console means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleEvent {
    /// A byte for the guest.
    Input(u8),
    /// Ctrl-A x: quit the emulator.
    Quit,
    /// Ctrl-A h: print the escape help.
    Help,
    /// Nothing yet (the escape prefix was typed, or an unknown command).
    None,
}

/// Splits typed bytes into guest input and emulator commands.
#[derive(Clone, Copy, Debug, Default)]
pub struct EscapeParser {
    after_escape: bool,
}

impl EscapeParser {
    /// Feeds one byte.
    pub fn feed(&mut self, b: u8) -> ConsoleEvent {
        if std::mem::take(&mut self.after_escape) {
            return match b {
                b'x' | b'X' => ConsoleEvent::Quit,
                b'h' | b'H' | b'?' => ConsoleEvent::Help,
                ESCAPE => ConsoleEvent::Input(ESCAPE),
                _ => ConsoleEvent::None,
            };
        }
        if b == ESCAPE {
            self.after_escape = true;
            return ConsoleEvent::None;
        }
        ConsoleEvent::Input(b)
    }
}

/// The help text for Ctrl-A h.
pub const HELP: &str = "\r\nC-a x    exit the emulator\r\nC-a h    print this help\r\nC-a C-a  send C-a to the guest\r\n";

/// Puts stdin in raw mode while it lives (when stdin is a terminal) and
/// restores the saved settings when dropped, including on panics that
/// unwind and on the error paths of `run`.
pub struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl std::fmt::Debug for RawTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawTerminal")
            .field("raw", &self.saved.is_some())
            .finish()
    }
}

impl RawTerminal {
    /// Enters raw mode if stdin is a terminal; otherwise does nothing.
    pub fn enter() -> std::io::Result<Self> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(Self { saved: None });
        }
        let saved = tcgetattr(&stdin).map_err(std::io::Error::from)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).map_err(std::io::Error::from)?;
        Ok(Self { saved: Some(saved) })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &saved,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_commands() {
        let mut p = EscapeParser::default();
        assert_eq!(p.feed(b'a'), ConsoleEvent::Input(b'a'));
        assert_eq!(p.feed(ESCAPE), ConsoleEvent::None);
        assert_eq!(p.feed(b'h'), ConsoleEvent::Help);
        assert_eq!(p.feed(ESCAPE), ConsoleEvent::None);
        assert_eq!(p.feed(ESCAPE), ConsoleEvent::Input(ESCAPE));
        assert_eq!(p.feed(ESCAPE), ConsoleEvent::None);
        assert_eq!(p.feed(b'x'), ConsoleEvent::Quit);
        assert_eq!(p.feed(b'x'), ConsoleEvent::Input(b'x'));
    }
}
