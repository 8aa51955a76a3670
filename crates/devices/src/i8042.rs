//! The Intel 8042 keyboard controller of the PC/AT and PS/2, with a PS/2
//! keyboard on its first port and a PS/2 mouse on its auxiliary port
//! (references: IBM PS/2 Hardware Interface Technical Reference, "Keyboard
//! and Auxiliary Device Controller"; the behaviour Linux's
//! drivers/input/serio/i8042.c, atkbd.c and psmouse probes expect).
//!
//! Ports from its base: offset 0 is the data port (0x60), offset 4 the
//! status (read) / command (write) port (0x64); the machine maps both.
//!
//! The controller has one output buffer. Behind it wait three queues:
//! controller replies (and bytes injected by 0xD2/0xD3), the keyboard's
//! bytes and the mouse's bytes, served in that order whenever the buffer is
//! empty and the source's interface is enabled in the command byte. A byte
//! from the keyboard side raises IRQ1, one from the mouse IRQ12, each only
//! while the command byte enables that interrupt; reading the data port
//! drops the line (and raises it again if another byte moves in).
//!
//! The keyboard speaks scancode set 2; with command-byte bit 6 (XLATE) the
//! controller translates to set 1 as the real 8042 does, so a guest asking
//! the keyboard for set 1 without translation gets set 1 too. Set 3 is
//! accepted and reported but sends set 2 codes. Typematic repeat is the
//! host's job (it sends repeated presses). The mouse is a standard PS/2
//! mouse that becomes an IntelliMouse (ID 3, 4-byte packets with the wheel)
//! after the sample-rate knock 200/100/80, and an IntelliMouse Explorer (ID
//! 4, wheel and buttons 4-5 in the fourth byte) after 200/200/80, as
//! Linux's psmouse probes them. Everything happens at once: IBF never reads
//! 1 and no command takes time.
//!
//! The output port's A20 gate ([`I8042::a20`]) starts off, as on a PC/AT at
//! power-on; a machine booting without a BIOS calls [`I8042::set_a20`]. A
//! reset (0xFE, any pulse with bit 0 clear, or 0xD1 with bit 0 clear) is
//! latched until the machine calls [`I8042::take_reset_request`].
//!
//! ```
//! use oxide86_devices::i8042::{I8042, KeyCode, CMD_A20_ON, PORT_COMMAND, PORT_DATA, STATUS_OBF};
//! use oxide86_devices::{NoIrq, PortIo};
//!
//! let mut kbc = I8042::new(NoIrq, NoIrq);
//! kbc.key_event(KeyCode::A, true);
//! assert_ne!(kbc.read(PORT_COMMAND) & STATUS_OBF, 0);
//! assert_eq!(kbc.read(PORT_DATA), 0x1E); // set 2 0x1C, translated to set 1
//! kbc.write(PORT_COMMAND, CMD_A20_ON);
//! assert!(kbc.a20());
//! ```

use std::collections::VecDeque;

use crate::{IrqLine, PortIo};

/// Offset of the data port (0x60 on a PC).
pub const PORT_DATA: u16 = 0;
/// The PC's base port: map 0x60 and 0x64 only (0x61 is system port B).
pub const I8042_BASE: u16 = 0x60;
/// The PC's keyboard interrupt.
pub const I8042_KBD_IRQ: u8 = 1;
/// The PC's mouse (auxiliary) interrupt.
pub const I8042_AUX_IRQ: u8 = 12;
/// Offset of the status/command port (0x64 on a PC).
pub const PORT_COMMAND: u16 = 4;

/// Status: output buffer full (a byte waits at the data port).
pub const STATUS_OBF: u8 = 1 << 0;
/// Status: input buffer full (never set: writes are taken at once).
pub const STATUS_IBF: u8 = 1 << 1;
/// Status: system flag (command byte bit 2; set by a passed self test).
pub const STATUS_SYS: u8 = 1 << 2;
/// Status: the last write was to the command port (A2 address line).
pub const STATUS_A2: u8 = 1 << 3;
/// Status: keyboard not inhibited (the keylock is open).
pub const STATUS_INH: u8 = 1 << 4;
/// Status: the byte in the output buffer came from the auxiliary device.
pub const STATUS_AUXB: u8 = 1 << 5;
/// Status: a device did not answer (an absent mouse).
pub const STATUS_TIMEOUT: u8 = 1 << 6;
/// Status: parity error on the serial link (never set).
pub const STATUS_PERR: u8 = 1 << 7;

/// Command byte: interrupt (IRQ1) on keyboard output.
pub const CTR_KBD_INT: u8 = 1 << 0;
/// Command byte: interrupt (IRQ12) on auxiliary output.
pub const CTR_AUX_INT: u8 = 1 << 1;
/// Command byte: system flag.
pub const CTR_SYS: u8 = 1 << 2;
/// Command byte: ignore the keylock (stored only).
pub const CTR_OVERRIDE: u8 = 1 << 3;
/// Command byte: keyboard interface disabled (clock held low).
pub const CTR_KBD_DISABLE: u8 = 1 << 4;
/// Command byte: auxiliary interface disabled.
pub const CTR_AUX_DISABLE: u8 = 1 << 5;
/// Command byte: translate keyboard set 2 to set 1.
pub const CTR_XLATE: u8 = 1 << 6;
/// The command byte at power-on: translated keyboard with IRQ1, both
/// interfaces enabled, IRQ12 off until software enables it.
pub const CTR_DEFAULT: u8 = CTR_XLATE | CTR_KBD_INT;

/// Controller command: read internal RAM byte 0 (the command byte); 0x21-0x3F read the rest.
pub const CMD_READ_CTR: u8 = 0x20;
/// Controller command: write the command byte (next data byte); 0x61-0x7F write RAM.
pub const CMD_WRITE_CTR: u8 = 0x60;
/// Controller command: is a password installed? (replies 0xF1: no).
pub const CMD_PASSWORD_TEST: u8 = 0xA4;
/// Controller command: disable the auxiliary interface.
pub const CMD_AUX_DISABLE: u8 = 0xA7;
/// Controller command: enable the auxiliary interface.
pub const CMD_AUX_ENABLE: u8 = 0xA8;
/// Controller command: test the auxiliary interface (replies 0x00: fine).
pub const CMD_AUX_TEST: u8 = 0xA9;
/// Controller command: self test (replies 0x55 and sets SYS).
pub const CMD_SELF_TEST: u8 = 0xAA;
/// Controller command: test the keyboard interface (replies 0x00: fine).
pub const CMD_KBD_TEST: u8 = 0xAB;
/// Controller command: disable the keyboard interface.
pub const CMD_KBD_DISABLE: u8 = 0xAD;
/// Controller command: enable the keyboard interface.
pub const CMD_KBD_ENABLE: u8 = 0xAE;
/// Controller command: read the input port.
pub const CMD_READ_INPUT: u8 = 0xC0;
/// Controller command: read the output port.
pub const CMD_READ_OUTPUT: u8 = 0xD0;
/// Controller command: write the output port (next data byte).
pub const CMD_WRITE_OUTPUT: u8 = 0xD1;
/// Controller command: next data byte appears as if from the keyboard.
pub const CMD_WRITE_KBD_BUFFER: u8 = 0xD2;
/// Controller command: next data byte appears as if from the mouse.
pub const CMD_WRITE_AUX_BUFFER: u8 = 0xD3;
/// Controller command: send the next data byte to the mouse.
pub const CMD_WRITE_AUX: u8 = 0xD4;
/// Controller command: gate A20 off (a common extension).
pub const CMD_A20_OFF: u8 = 0xDD;
/// Controller command: gate A20 on (a common extension).
pub const CMD_A20_ON: u8 = 0xDF;
/// Controller command: read the test inputs.
pub const CMD_READ_TEST_INPUTS: u8 = 0xE0;
/// Controller command: pulse output port bit 0 (system reset).
pub const CMD_PULSE_RESET: u8 = 0xFE;

/// Output port: system reset (active low).
pub const OUT_RESET: u8 = 1 << 0;
/// Output port: A20 gate.
pub const OUT_A20: u8 = 1 << 1;
/// Output port: output buffer full from the keyboard (IRQ1 pin).
pub const OUT_KBD_OBF: u8 = 1 << 4;
/// Output port: output buffer full from the mouse (IRQ12 pin).
pub const OUT_AUX_OBF: u8 = 1 << 5;
/// Output port at power-on: reset inactive, A20 off, clock and data idle high.
const OUT_DEFAULT: u8 = OUT_RESET | 0xC0;
/// Input port: bit 7 = keyboard not inhibited, bit 5 = no manufacturing jumper.
const INPUT_PORT: u8 = 0xA0;

/// Device reply: acknowledge.
pub const ACK: u8 = 0xFA;
/// Device reply: resend (command not understood).
pub const RESEND: u8 = 0xFE;
/// Device reply: basic assurance test passed.
pub const BAT_OK: u8 = 0xAA;
/// Controller reply to CMD_SELF_TEST: passed.
pub const SELF_TEST_OK: u8 = 0x55;

const KBD_SET_LEDS: u8 = 0xED; // parameter: LED bits
const KBD_ECHO: u8 = 0xEE; // replies 0xEE
const KBD_SCANCODE_SET: u8 = 0xF0; // parameter: 0 query, 1-3 select
const KBD_IDENTIFY: u8 = 0xF2; // replies ACK, 0xAB, 0x83
const KBD_TYPEMATIC: u8 = 0xF3; // parameter: rate and delay
const KBD_ENABLE: u8 = 0xF4; // start scanning
const KBD_DISABLE: u8 = 0xF5; // defaults, stop scanning
const KBD_DEFAULTS: u8 = 0xF6; // defaults, keep scanning
const KBD_RESEND: u8 = 0xFE; // repeat the last byte
const KBD_RESET: u8 = 0xFF; // defaults, ACK, BAT
const KBD_ID: [u8; 2] = [0xAB, 0x83]; // an MF2 keyboard
const KBD_TYPEMATIC_DEFAULT: u8 = 0x2B; // 10.9 cps, 500 ms

const AUX_SCALING_1_1: u8 = 0xE6;
const AUX_SCALING_2_1: u8 = 0xE7;
const AUX_SET_RESOLUTION: u8 = 0xE8; // parameter: 0-3
const AUX_STATUS: u8 = 0xE9; // replies ACK and three status bytes
const AUX_STREAM_MODE: u8 = 0xEA;
const AUX_READ_DATA: u8 = 0xEB; // replies ACK and a packet
const AUX_RESET_WRAP: u8 = 0xEC;
const AUX_WRAP_MODE: u8 = 0xEE; // echo every byte until EC or FF
const AUX_REMOTE_MODE: u8 = 0xF0;
const AUX_GET_ID: u8 = 0xF2;
const AUX_SAMPLE_RATE: u8 = 0xF3; // parameter: samples per second
const AUX_ENABLE: u8 = 0xF4; // start streaming
const AUX_DISABLE: u8 = 0xF5;
const AUX_DEFAULTS: u8 = 0xF6;
const AUX_RESEND: u8 = 0xFE;
const AUX_RESET: u8 = 0xFF; // ACK, BAT, ID
const AUX_INTELLIMOUSE_KNOCK: [u8; 3] = [200, 100, 80]; // sample rates that enable the wheel
const AUX_ID_INTELLIMOUSE: u8 = 3;
const AUX_EXPLORER_KNOCK: [u8; 3] = [200, 200, 80]; // wheel plus buttons 4 and 5
const AUX_ID_EXPLORER: u8 = 4;

/// Mouse button bits, as in the first byte of a movement packet.
pub const MOUSE_LEFT: u8 = 1 << 0;
/// Right mouse button.
pub const MOUSE_RIGHT: u8 = 1 << 1;
/// Middle mouse button.
pub const MOUSE_MIDDLE: u8 = 1 << 2;
/// Fourth (side) button, reported by an IntelliMouse Explorer only.
pub const MOUSE_BUTTON4: u8 = 1 << 3;
/// Fifth (extra) button, reported by an IntelliMouse Explorer only.
pub const MOUSE_BUTTON5: u8 = 1 << 4;

const KBD_QUEUE: usize = 16; // the keyboard's own buffer
const AUX_QUEUE: usize = 64; // room for a burst of packets
const REPLY_QUEUE: usize = 16; // controller replies not yet read

/// Scancode set 2 code of each set 1 code 0x00-0x7F; the 8042 translation
/// is its inverse (plus 0x83 F7 -> 0x41 and 0x84 SysRq -> 0x54).
#[rustfmt::skip]
const SET1_TO_SET2: [u8; 128] = [
    0x00, 0x76, 0x16, 0x1E, 0x26, 0x25, 0x2E, 0x36, 0x3D, 0x3E, 0x46, 0x45, 0x4E, 0x55, 0x66, 0x0D,
    0x15, 0x1D, 0x24, 0x2D, 0x2C, 0x35, 0x3C, 0x43, 0x44, 0x4D, 0x54, 0x5B, 0x5A, 0x14, 0x1C, 0x1B,
    0x23, 0x2B, 0x34, 0x33, 0x3B, 0x42, 0x4B, 0x4C, 0x52, 0x0E, 0x12, 0x5D, 0x1A, 0x22, 0x21, 0x2A,
    0x32, 0x31, 0x3A, 0x41, 0x49, 0x4A, 0x59, 0x7C, 0x11, 0x29, 0x58, 0x05, 0x06, 0x04, 0x0C, 0x03,
    0x0B, 0x02, 0x0A, 0x01, 0x09, 0x77, 0x7E, 0x6C, 0x75, 0x7D, 0x7B, 0x6B, 0x73, 0x74, 0x79, 0x69,
    0x72, 0x7A, 0x70, 0x71, 0x7F, 0x60, 0x61, 0x78, 0x07, 0x0F, 0x17, 0x1F, 0x27, 0x2F, 0x37, 0x3F,
    0x47, 0x4F, 0x56, 0x5E, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x40, 0x48, 0x50, 0x57, 0x6F,
    0x13, 0x19, 0x39, 0x51, 0x53, 0x5C, 0x5F, 0x62, 0x63, 0x64, 0x65, 0x67, 0x68, 0x6A, 0x6D, 0x6E,
];

/// The 8042's set 2 -> set 1 translation of one byte (before the break bit).
const XLATE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0x80;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t[0] = 0xFF;
    let mut s1 = 1;
    while s1 < 128 {
        t[SET1_TO_SET2[s1] as usize] = s1 as u8;
        s1 += 1;
    }
    t[0x83] = 0x41;
    t[0x84] = 0x54;
    t
};

/// A key by its scancode set 2 make code: `0x00cc` for a plain key, `0xE0cc`
/// for an extended one (sent with an E0 prefix), or [`KeyCode::PAUSE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyCode(pub u16);

impl KeyCode {
    /// Pause/Break: sends E1 14 77 E1 F0 14 F0 77 on press, nothing on release.
    pub const PAUSE: Self = Self(0xE114);
    /// The A key.
    pub const A: Self = Self(0x1C);
    /// Enter (main keyboard).
    pub const ENTER: Self = Self(0x5A);
    /// Escape.
    pub const ESCAPE: Self = Self(0x76);
    /// Left Shift.
    pub const LEFT_SHIFT: Self = Self(0x12);
    /// Right arrow (extended).
    pub const RIGHT: Self = Self(0xE074);

    /// A plain key with set 2 make code `code`.
    pub const fn plain(code: u8) -> Self {
        Self(code as u16)
    }

    /// An extended (E0-prefixed) key with set 2 make code `code`.
    pub const fn extended(code: u8) -> Self {
        Self(0xE000 | code as u16)
    }

    /// The set 2 bytes for a press or release.
    fn set2_bytes(self, pressed: bool) -> Vec<u8> {
        if self == Self::PAUSE {
            return if pressed {
                vec![0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77]
            } else {
                vec![]
            };
        }
        let mut bytes = Vec::with_capacity(3);
        if self.0 >> 8 == 0xE0 {
            bytes.push(0xE0);
        }
        if !pressed {
            bytes.push(0xF0);
        }
        bytes.push(self.0 as u8);
        bytes
    }
}

/// Which side a byte in the output buffer comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The keyboard, or the controller itself (IRQ1, AUXB clear).
    Keyboard,
    /// The auxiliary device (IRQ12, AUXB set).
    Aux,
}

/// The PS/2 keyboard's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyboardState {
    /// Bytes waiting to go to the controller (set 2, or set 1 if selected).
    pub queue: VecDeque<u8>,
    /// Whether key events are reported.
    pub scanning: bool,
    /// The selected scancode set (1-3).
    pub set: u8,
    /// LED bits (0 scroll, 1 num, 2 caps lock).
    pub leds: u8,
    /// Typematic rate/delay byte.
    pub typematic: u8,
    /// A command waiting for its parameter byte.
    pub pending: Option<u8>,
    /// The last byte sent (for 0xFE resend).
    pub last_sent: u8,
}

impl Default for KeyboardState {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            scanning: true,
            set: 2,
            leds: 0,
            typematic: KBD_TYPEMATIC_DEFAULT,
            pending: None,
            last_sent: 0,
        }
    }
}

/// The PS/2 mouse's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MouseState {
    /// Bytes waiting to go to the controller.
    pub queue: VecDeque<u8>,
    /// Whether the mouse is connected (absent: commands time out).
    pub present: bool,
    /// Data reporting enabled (0xF4).
    pub streaming: bool,
    /// Remote mode (packets only on 0xEB).
    pub remote: bool,
    /// Wrap (echo) mode.
    pub wrap: bool,
    /// 2:1 scaling.
    pub scaling_2_1: bool,
    /// Resolution code 0-3 (1, 2, 4, 8 counts/mm).
    pub resolution: u8,
    /// Samples per second.
    pub sample_rate: u8,
    /// Device ID: 0 standard, 3 IntelliMouse, 4 IntelliMouse Explorer.
    pub id: u8,
    /// The last three sample rates set (for the IntelliMouse knock).
    pub rate_history: [u8; 3],
    /// A command waiting for its parameter byte.
    pub pending: Option<u8>,
    /// The last byte sent (for 0xFE resend).
    pub last_sent: u8,
    /// Buttons held (MOUSE_* bits).
    pub buttons: u8,
    /// Movement not yet reported (x right, y up, z wheel).
    pub dx: i32,
    /// See `dx`.
    pub dy: i32,
    /// See `dx`.
    pub dz: i32,
}

impl Default for MouseState {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            present: true,
            streaming: false,
            remote: false,
            wrap: false,
            scaling_2_1: false,
            resolution: 2,
            sample_rate: 100,
            id: 0,
            rate_history: [0; 3],
            pending: None,
            last_sent: 0,
            buttons: 0,
            dx: 0,
            dy: 0,
            dz: 0,
        }
    }
}

/// Snapshot state of the controller and its two devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I8042State {
    /// Internal RAM; byte 0 is the command byte.
    pub ram: [u8; 32],
    /// The output buffer, if full, and where its byte came from.
    pub output: Option<(u8, Source)>,
    /// The last byte read from the data port (what an empty buffer reads).
    pub last_read: u8,
    /// Controller replies and injected bytes, ahead of either device.
    pub replies: VecDeque<(u8, Source)>,
    /// A controller command waiting for its data byte.
    pub pending: Option<u8>,
    /// The last write went to the command port.
    pub a2: bool,
    /// A device failed to answer (status TIMEOUT), until the next write.
    pub timeout: bool,
    /// The output port (reset, A20 and the rest as last written).
    pub output_port: u8,
    /// A reset was requested and not yet taken by the machine.
    pub reset_requested: bool,
    /// A translated F0 (break prefix) was swallowed; the next byte gets bit 7.
    pub xlate_break: bool,
    /// The keyboard.
    pub keyboard: KeyboardState,
    /// The mouse.
    pub mouse: MouseState,
}

impl Default for I8042State {
    fn default() -> Self {
        let mut ram = [0u8; 32];
        ram[0] = CTR_DEFAULT;
        Self {
            ram,
            output: None,
            last_read: 0,
            replies: VecDeque::new(),
            pending: None,
            a2: false,
            timeout: false,
            output_port: OUT_DEFAULT,
            reset_requested: false,
            xlate_break: false,
            keyboard: KeyboardState::default(),
            mouse: MouseState::default(),
        }
    }
}

/// The 8042 with keyboard and mouse, driving IRQ1 through `K` and IRQ12
/// through `A`.
#[derive(Debug)]
pub struct I8042<K: IrqLine, A: IrqLine> {
    state: I8042State,
    kbd_irq: K,
    aux_irq: A,
}

impl<K: IrqLine, A: IrqLine> I8042<K, A> {
    /// A controller after power-on, with a keyboard and a mouse attached.
    pub fn new(kbd_irq: K, aux_irq: A) -> Self {
        Self::from_state(I8042State::default(), kbd_irq, aux_irq)
    }

    /// Builds the device from a snapshot, restoring both lines' levels.
    pub fn from_state(state: I8042State, kbd_irq: K, aux_irq: A) -> Self {
        let mut c = Self {
            state,
            kbd_irq,
            aux_irq,
        };
        c.refill();
        c
    }

    /// The snapshot state.
    pub fn state(&self) -> &I8042State {
        &self.state
    }

    /// The IRQ1 wire.
    pub fn kbd_irq(&self) -> &K {
        &self.kbd_irq
    }

    /// The IRQ12 wire.
    pub fn aux_irq(&self) -> &A {
        &self.aux_irq
    }

    /// Whether the output port gates A20 on.
    pub fn a20(&self) -> bool {
        self.state.output_port & OUT_A20 != 0
    }

    /// Sets the A20 gate (for a machine that starts with it on).
    pub fn set_a20(&mut self, on: bool) {
        if on {
            self.state.output_port |= OUT_A20;
        } else {
            self.state.output_port &= !OUT_A20;
        }
    }

    /// Whether the guest pulsed the reset line since the last call.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.state.reset_requested)
    }

    /// Connects or disconnects the mouse (absent: aux writes time out).
    pub fn set_mouse_present(&mut self, present: bool) {
        self.state.mouse.present = present;
    }

    fn ctr(&self) -> u8 {
        self.state.ram[0]
    }

    /// The status register.
    pub fn status(&self) -> u8 {
        let s = &self.state;
        let mut status = STATUS_INH | (self.ctr() & CTR_SYS);
        match s.output {
            Some((_, Source::Keyboard)) => status |= STATUS_OBF,
            Some((_, Source::Aux)) => status |= STATUS_OBF | STATUS_AUXB,
            None => {}
        }
        if s.a2 {
            status |= STATUS_A2;
        }
        if s.timeout {
            status |= STATUS_TIMEOUT;
        }
        status
    }

    /// Moves the next byte into an empty output buffer and sets both lines.
    fn refill(&mut self) {
        let ctr = self.ctr();
        let s = &mut self.state;
        if s.output.is_none() {
            if let Some(reply) = s.replies.pop_front() {
                s.output = Some(reply);
            } else if ctr & CTR_KBD_DISABLE == 0 {
                while let Some(byte) = s.keyboard.queue.pop_front() {
                    if ctr & CTR_XLATE == 0 {
                        s.output = Some((byte, Source::Keyboard));
                        break;
                    }
                    if byte == 0xF0 {
                        s.xlate_break = true;
                        continue;
                    }
                    let brk = if std::mem::take(&mut s.xlate_break) {
                        0x80
                    } else {
                        0
                    };
                    s.output = Some((XLATE[usize::from(byte)] | brk, Source::Keyboard));
                    break;
                }
            }
            if s.output.is_none() && ctr & CTR_AUX_DISABLE == 0 {
                if let Some(byte) = s.mouse.queue.pop_front() {
                    s.output = Some((byte, Source::Aux));
                }
            }
        }
        let out = s.output.map(|(_, src)| src);
        self.kbd_irq
            .set_level(out == Some(Source::Keyboard) && ctr & CTR_KBD_INT != 0);
        self.aux_irq
            .set_level(out == Some(Source::Aux) && ctr & CTR_AUX_INT != 0);
    }

    fn reply(&mut self, byte: u8) {
        self.push_reply(byte, Source::Keyboard);
    }

    /// Queues a controller reply; a guest that never reads cannot grow the
    /// queue past `REPLY_QUEUE` (later replies are lost).
    fn push_reply(&mut self, byte: u8, source: Source) {
        if self.state.replies.len() < REPLY_QUEUE {
            self.state.replies.push_back((byte, source));
        }
    }

    fn write_output_port(&mut self, value: u8) {
        if value & OUT_RESET == 0 {
            self.state.reset_requested = true;
        }
        // The reset line is released again; the OBF bits are live outputs.
        self.state.output_port = (value | OUT_RESET) & !(OUT_KBD_OBF | OUT_AUX_OBF);
    }

    fn output_port(&self) -> u8 {
        let obf = match self.state.output {
            Some((_, Source::Keyboard)) => OUT_KBD_OBF,
            Some((_, Source::Aux)) => OUT_AUX_OBF,
            None => 0,
        };
        self.state.output_port | obf
    }

    fn command(&mut self, cmd: u8) {
        self.state.pending = None;
        match cmd {
            0x20..=0x3F => self.reply(self.state.ram[usize::from(cmd & 0x1F)]),
            0x60..=0x7F
            | CMD_WRITE_OUTPUT
            | CMD_WRITE_KBD_BUFFER
            | CMD_WRITE_AUX_BUFFER
            | CMD_WRITE_AUX => self.state.pending = Some(cmd),
            CMD_PASSWORD_TEST => self.reply(0xF1),
            CMD_AUX_DISABLE => self.state.ram[0] |= CTR_AUX_DISABLE,
            CMD_AUX_ENABLE => self.state.ram[0] &= !CTR_AUX_DISABLE,
            CMD_AUX_TEST | CMD_KBD_TEST => self.reply(0x00),
            CMD_SELF_TEST => {
                self.state.ram[0] |= CTR_SYS;
                self.reply(SELF_TEST_OK);
            }
            CMD_KBD_DISABLE => self.state.ram[0] |= CTR_KBD_DISABLE,
            CMD_KBD_ENABLE => self.state.ram[0] &= !CTR_KBD_DISABLE,
            CMD_READ_INPUT => self.reply(INPUT_PORT),
            CMD_READ_OUTPUT => self.reply(self.output_port()),
            CMD_A20_OFF => self.set_a20(false),
            CMD_A20_ON => self.set_a20(true),
            CMD_READ_TEST_INPUTS => self.reply(0x00),
            // Pulse the output port bits whose mask bit is 0; only bit 0
            // (reset) matters, so 0xF1, 0xF3, ... 0xFF pulse nothing.
            0xF0..=0xFF if cmd & OUT_RESET == 0 => self.state.reset_requested = true,
            _ => {} // unknown commands are ignored
        }
    }

    fn data(&mut self, value: u8) {
        match self.state.pending.take() {
            Some(cmd @ 0x60..=0x7F) => self.state.ram[usize::from(cmd & 0x1F)] = value,
            Some(CMD_WRITE_OUTPUT) => self.write_output_port(value),
            Some(CMD_WRITE_KBD_BUFFER) => self.push_reply(value, Source::Keyboard),
            Some(CMD_WRITE_AUX_BUFFER) => self.push_reply(value, Source::Aux),
            Some(CMD_WRITE_AUX) => self.mouse_command(value),
            _ => self.keyboard_command(value),
        }
    }

    fn kbd_send(&mut self, bytes: &[u8]) {
        let k = &mut self.state.keyboard;
        if k.queue.len() + bytes.len() > KBD_QUEUE {
            return; // the keyboard's buffer is full: the event is lost
        }
        k.queue.extend(bytes);
        if let Some(last) = bytes.last() {
            k.last_sent = *last;
        }
    }

    fn keyboard_defaults(&mut self) {
        let k = &mut self.state.keyboard;
        k.set = 2;
        k.typematic = KBD_TYPEMATIC_DEFAULT;
        k.pending = None;
    }

    fn keyboard_command(&mut self, value: u8) {
        if let Some(cmd) = self.state.keyboard.pending.take() {
            // A byte with bit 7 set in place of a parameter is a new command.
            if value & 0x80 == 0 {
                let k = &mut self.state.keyboard;
                match cmd {
                    KBD_SET_LEDS => k.leds = value & 0x07,
                    KBD_TYPEMATIC => k.typematic = value,
                    _ if value == 0 => {
                        let set = k.set;
                        return self.kbd_send(&[ACK, set]);
                    }
                    _ if value <= 3 => k.set = value,
                    _ => {}
                }
                return self.kbd_send(&[ACK]);
            }
        }
        match value {
            KBD_SET_LEDS | KBD_TYPEMATIC | KBD_SCANCODE_SET => {
                self.state.keyboard.pending = Some(value);
                self.kbd_send(&[ACK]);
            }
            KBD_ECHO => self.kbd_send(&[KBD_ECHO]),
            KBD_IDENTIFY => self.kbd_send(&[ACK, KBD_ID[0], KBD_ID[1]]),
            KBD_ENABLE => {
                self.state.keyboard.queue.clear();
                self.state.keyboard.scanning = true;
                self.kbd_send(&[ACK]);
            }
            KBD_DISABLE => {
                self.keyboard_defaults();
                self.state.keyboard.scanning = false;
                self.kbd_send(&[ACK]);
            }
            KBD_DEFAULTS => {
                self.keyboard_defaults();
                self.kbd_send(&[ACK]);
            }
            0xF7..=0xFD => self.kbd_send(&[ACK]), // set 3 key types: accepted
            KBD_RESEND => {
                let last = self.state.keyboard.last_sent;
                self.kbd_send(&[last]);
            }
            KBD_RESET => {
                self.state.keyboard.queue.clear();
                self.keyboard_defaults();
                self.state.keyboard.leds = 0;
                self.state.keyboard.scanning = true;
                self.kbd_send(&[ACK, BAT_OK]);
            }
            _ => self.kbd_send(&[RESEND]),
        }
    }

    fn aux_send(&mut self, bytes: &[u8]) {
        let m = &mut self.state.mouse;
        if m.queue.len() + bytes.len() > AUX_QUEUE {
            return;
        }
        m.queue.extend(bytes);
        if let Some(last) = bytes.last() {
            m.last_sent = *last;
        }
    }

    fn mouse_defaults(&mut self) {
        let m = &mut self.state.mouse;
        m.sample_rate = 100;
        m.resolution = 2;
        m.scaling_2_1 = false;
        m.streaming = false;
        m.remote = false;
        m.pending = None;
        m.dx = 0;
        m.dy = 0;
        m.dz = 0;
    }

    fn mouse_command(&mut self, value: u8) {
        if !self.state.mouse.present {
            self.state.timeout = true;
            self.push_reply(RESEND, Source::Aux);
            return;
        }
        let m = &mut self.state.mouse;
        if m.wrap && value != AUX_RESET_WRAP && value != AUX_RESET {
            return self.aux_send(&[value]);
        }
        if let Some(cmd) = m.pending.take() {
            if cmd == AUX_SAMPLE_RATE {
                m.sample_rate = value;
                m.rate_history = [m.rate_history[1], m.rate_history[2], value];
                if m.rate_history == AUX_INTELLIMOUSE_KNOCK {
                    m.id = AUX_ID_INTELLIMOUSE;
                } else if m.rate_history == AUX_EXPLORER_KNOCK {
                    m.id = AUX_ID_EXPLORER;
                }
            } else {
                m.resolution = value & 0x03;
            }
            return self.aux_send(&[ACK]);
        }
        match value {
            AUX_SCALING_1_1 => m.scaling_2_1 = false,
            AUX_SCALING_2_1 => m.scaling_2_1 = true,
            AUX_SET_RESOLUTION | AUX_SAMPLE_RATE => m.pending = Some(value),
            AUX_STATUS => {
                let status = (u8::from(m.remote) << 6)
                    | (u8::from(m.streaming) << 5)
                    | (u8::from(m.scaling_2_1) << 4)
                    | ((m.buttons & MOUSE_LEFT) << 2)
                    | ((m.buttons & MOUSE_MIDDLE) >> 1)
                    | ((m.buttons & MOUSE_RIGHT) >> 1);
                let (res, rate) = (m.resolution, m.sample_rate);
                return self.aux_send(&[ACK, status, res, rate]);
            }
            AUX_STREAM_MODE => m.remote = false,
            AUX_READ_DATA => {
                self.aux_send(&[ACK]);
                self.mouse_packet(false);
                return;
            }
            AUX_RESET_WRAP => m.wrap = false,
            AUX_WRAP_MODE => m.wrap = true,
            AUX_REMOTE_MODE => m.remote = true,
            AUX_GET_ID => {
                let id = m.id;
                return self.aux_send(&[ACK, id]);
            }
            AUX_ENABLE => m.streaming = true,
            AUX_DISABLE => m.streaming = false,
            AUX_DEFAULTS => self.mouse_defaults(),
            AUX_RESEND => {
                let last = m.last_sent;
                return self.aux_send(&[last]);
            }
            AUX_RESET => {
                self.mouse_defaults();
                let m = &mut self.state.mouse;
                m.wrap = false;
                m.id = 0;
                m.rate_history = [0; 3];
                m.queue.clear();
                return self.aux_send(&[ACK, BAT_OK, 0x00]);
            }
            _ => return self.aux_send(&[RESEND]),
        }
        self.aux_send(&[ACK]);
    }

    /// Sends one packet of the pending movement (clamped to what a packet
    /// holds) and keeps the rest; 2:1 scaling applies in stream mode.
    fn mouse_packet(&mut self, stream: bool) {
        let m = &mut self.state.mouse;
        let size = if m.id == AUX_ID_INTELLIMOUSE || m.id == AUX_ID_EXPLORER {
            4
        } else {
            3
        };
        if m.queue.len() + size > AUX_QUEUE {
            return;
        }
        let (dx, dy, dz) = (
            m.dx.clamp(-256, 255),
            m.dy.clamp(-256, 255),
            m.dz.clamp(-8, 7),
        );
        m.dx -= dx;
        m.dy -= dy;
        m.dz -= dz;
        let scale = |v: i32| {
            if !(stream && m.scaling_2_1) {
                return v;
            }
            let s = match v.abs() {
                a @ 0..=1 => a,
                2 => 1,
                3 => 3,
                4 => 6,
                5 => 9,
                a => 2 * a,
            };
            s * v.signum()
        };
        let (sx, sy) = (scale(dx), scale(dy));
        let (x, y) = (sx.clamp(-256, 255), sy.clamp(-256, 255));
        let mut b0 = 0x08 | (m.buttons & 0x07);
        if x < 0 {
            b0 |= 0x10;
        }
        if y < 0 {
            b0 |= 0x20;
        }
        if sx != x {
            b0 |= 0x40;
        }
        if sy != y {
            b0 |= 0x80;
        }
        let mut packet = vec![b0, x as u8, y as u8];
        if m.id == AUX_ID_EXPLORER {
            packet.push((dz as u8 & 0x0F) | ((m.buttons >> 3) & 0x03) << 4);
        } else if size == 4 {
            packet.push(dz as u8);
        }
        self.aux_send(&packet);
    }

    /// A key pressed or released on the host keyboard (dropped while the
    /// keyboard is not scanning or its buffer is full).
    pub fn key_event(&mut self, key: KeyCode, pressed: bool) {
        if !self.state.keyboard.scanning {
            return;
        }
        let mut bytes = key.set2_bytes(pressed);
        if self.state.keyboard.set == 1 {
            // The keyboard itself sends set 1: the translation of set 2.
            let mut brk = false;
            bytes = bytes
                .into_iter()
                .filter_map(|b| {
                    if b == 0xF0 {
                        brk = true;
                        return None;
                    }
                    let out =
                        XLATE[usize::from(b)] | if std::mem::take(&mut brk) { 0x80 } else { 0 };
                    Some(out)
                })
                .collect();
        }
        self.kbd_send(&bytes);
        self.refill();
    }

    /// Host mouse movement (`dx` right, `dy` up, as PS/2 counts them) and the
    /// buttons now held (MOUSE_* bits).
    pub fn mouse_event(&mut self, dx: i32, dy: i32, buttons: u8) {
        self.mouse_event_with_wheel(dx, dy, 0, buttons);
    }

    /// As [`Self::mouse_event`], with wheel movement `dz` (reported only by
    /// a wheel mouse; positive is towards the user). `buttons` may include
    /// MOUSE_BUTTON4/5, which only an IntelliMouse Explorer reports.
    pub fn mouse_event_with_wheel(&mut self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        let m = &mut self.state.mouse;
        if !m.present {
            return;
        }
        m.dx = m.dx.saturating_add(dx).clamp(-65_536, 65_535);
        m.dy = m.dy.saturating_add(dy).clamp(-65_536, 65_535);
        if m.id == AUX_ID_INTELLIMOUSE || m.id == AUX_ID_EXPLORER {
            m.dz = m.dz.saturating_add(dz).clamp(-1024, 1023);
        }
        m.buttons = buttons & 0x1F;
        if m.streaming && !m.remote && !m.wrap {
            // Report everything, a packet per clamp-full, while there is room.
            loop {
                let before = self.state.mouse.queue.len();
                self.mouse_packet(true);
                let m = &self.state.mouse;
                if m.queue.len() == before || (m.dx == 0 && m.dy == 0 && m.dz == 0) {
                    break;
                }
            }
        }
        self.refill();
    }
}

impl<K: IrqLine, A: IrqLine> PortIo for I8042<K, A> {
    fn read(&mut self, offset: u16) -> u8 {
        match offset {
            PORT_DATA => {
                if let Some((byte, _)) = self.state.output.take() {
                    self.state.last_read = byte;
                    // The line drops; the next byte (if any) raises it again.
                    self.kbd_irq.set_level(false);
                    self.aux_irq.set_level(false);
                    self.refill();
                }
                self.state.last_read
            }
            PORT_COMMAND => self.status(),
            _ => 0xFF,
        }
    }

    fn write(&mut self, offset: u16, value: u8) {
        match offset {
            PORT_DATA => {
                self.state.a2 = false;
                self.state.timeout = false;
                self.data(value);
            }
            PORT_COMMAND => {
                self.state.a2 = true;
                self.state.timeout = false;
                self.command(value);
            }
            _ => return,
        }
        self.refill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test double for an IRQ wire: level and rising edges.
    #[derive(Debug, Default)]
    struct Probe {
        high: bool,
        rises: u32,
    }
    impl IrqLine for Probe {
        fn set_level(&mut self, high: bool) {
            self.rises += u32::from(high && !self.high);
            self.high = high;
        }
    }

    type Kbc = I8042<Probe, Probe>;

    fn kbc() -> Kbc {
        I8042::new(Probe::default(), Probe::default())
    }

    /// Reads every waiting byte, as Linux's i8042_flush does.
    fn flush(c: &mut Kbc) -> Vec<u8> {
        let mut out = Vec::new();
        while c.read(PORT_COMMAND) & STATUS_OBF != 0 && out.len() < 256 {
            out.push(c.read(PORT_DATA));
        }
        out
    }

    /// i8042_command: command, parameters, then the replies.
    fn command(c: &mut Kbc, cmd: u8, params: &[u8], replies: usize) -> Vec<u8> {
        c.write(PORT_COMMAND, cmd);
        for p in params {
            assert_eq!(c.read(PORT_COMMAND) & STATUS_IBF, 0);
            c.write(PORT_DATA, *p);
        }
        (0..replies)
            .map(|_| {
                assert_ne!(c.read(PORT_COMMAND) & STATUS_OBF, 0, "reply to {cmd:#x}");
                c.read(PORT_DATA)
            })
            .collect()
    }

    fn set_ctr(c: &mut Kbc, ctr: u8) {
        command(c, CMD_WRITE_CTR, &[ctr], 0);
    }

    fn to_keyboard(c: &mut Kbc, bytes: &[u8]) -> Vec<u8> {
        for b in bytes {
            c.write(PORT_DATA, *b);
        }
        flush(c)
    }

    fn to_mouse(c: &mut Kbc, bytes: &[u8]) -> Vec<u8> {
        for b in bytes {
            c.write(PORT_COMMAND, CMD_WRITE_AUX);
            c.write(PORT_DATA, *b);
        }
        flush(c)
    }

    #[test]
    fn translation_table_is_the_inverse_of_set1_to_set2() {
        let mut seen = [false; 128];
        for (s1, s2) in SET1_TO_SET2.iter().enumerate().skip(1) {
            assert!(
                *s2 != 0 && *s2 < 0x80 && !seen[usize::from(*s2)],
                "set 1 {s1:#x}"
            );
            seen[usize::from(*s2)] = true;
            assert_eq!(usize::from(XLATE[usize::from(*s2)]), s1);
        }
        assert_eq!(XLATE[0x1C], 0x1E); // A
        assert_eq!(XLATE[0x76], 0x01); // Esc
        assert_eq!(XLATE[0x83], 0x41); // F7
        assert_eq!(XLATE[0x84], 0x54); // SysRq
        assert_eq!(XLATE[0xFA], 0xFA);
        assert_eq!(XLATE[0xAA], 0xAA);
        assert_eq!(XLATE[0x00], 0xFF);
    }

    #[test]
    fn power_on_status_and_command_byte() {
        let mut c = kbc();
        assert_eq!(c.read(PORT_COMMAND), STATUS_INH);
        assert_eq!(command(&mut c, CMD_READ_CTR, &[], 1), [CTR_DEFAULT]);
        assert_eq!(c.read(PORT_COMMAND) & STATUS_A2, STATUS_A2);
        assert!(!c.a20());
        assert!(!c.take_reset_request());
    }

    #[test]
    fn self_test_sets_sys() {
        let mut c = kbc();
        assert_eq!(command(&mut c, CMD_SELF_TEST, &[], 1), [SELF_TEST_OK]);
        assert_eq!(c.read(PORT_COMMAND) & STATUS_SYS, STATUS_SYS);
        assert_eq!(command(&mut c, CMD_KBD_TEST, &[], 1), [0x00]);
        assert_eq!(command(&mut c, CMD_AUX_TEST, &[], 1), [0x00]);
        assert_eq!(command(&mut c, CMD_PASSWORD_TEST, &[], 1), [0xF1]);
        assert_eq!(command(&mut c, CMD_READ_INPUT, &[], 1), [INPUT_PORT]);
        assert_eq!(command(&mut c, CMD_READ_TEST_INPUTS, &[], 1), [0x00]);
    }

    #[test]
    fn internal_ram_and_command_byte_bits() {
        let mut c = kbc();
        command(&mut c, 0x65, &[0x5A], 0);
        assert_eq!(command(&mut c, 0x25, &[], 1), [0x5A]);
        command(&mut c, CMD_KBD_DISABLE, &[], 0);
        command(&mut c, CMD_AUX_DISABLE, &[], 0);
        let ctr = command(&mut c, CMD_READ_CTR, &[], 1)[0];
        assert_eq!(
            ctr & (CTR_KBD_DISABLE | CTR_AUX_DISABLE),
            CTR_KBD_DISABLE | CTR_AUX_DISABLE
        );
        command(&mut c, CMD_KBD_ENABLE, &[], 0);
        command(&mut c, CMD_AUX_ENABLE, &[], 0);
        assert_eq!(command(&mut c, CMD_READ_CTR, &[], 1), [CTR_DEFAULT]);
        set_ctr(&mut c, CTR_SYS);
        assert_eq!(c.read(PORT_COMMAND) & STATUS_SYS, STATUS_SYS);
    }

    #[test]
    fn a20_and_reset_through_the_output_port() {
        let mut c = kbc();
        command(&mut c, CMD_WRITE_OUTPUT, &[0xDF], 0);
        assert!(c.a20());
        assert!(!c.take_reset_request());
        assert_eq!(
            command(&mut c, CMD_READ_OUTPUT, &[], 1)[0] & (OUT_A20 | OUT_RESET),
            0x03
        );
        command(&mut c, CMD_WRITE_OUTPUT, &[0xDD], 0);
        assert!(!c.a20());
        command(&mut c, CMD_A20_ON, &[], 0);
        assert!(c.a20());
        command(&mut c, CMD_A20_OFF, &[], 0);
        assert!(!c.a20());
        c.set_a20(true);
        assert!(c.a20());
        // Pulse commands: 0xFE pulses reset; 0xFF and 0xF3 do not.
        command(&mut c, 0xFF, &[], 0);
        command(&mut c, 0xF3, &[], 0);
        assert!(!c.take_reset_request());
        command(&mut c, CMD_PULSE_RESET, &[], 0);
        assert!(c.take_reset_request());
        assert!(!c.take_reset_request(), "taken once");
        command(&mut c, 0xF0, &[], 0);
        assert!(c.take_reset_request());
        // Writing the output port with bit 0 clear resets too.
        command(&mut c, CMD_WRITE_OUTPUT, &[0xDE], 0);
        assert!(c.take_reset_request());
        assert!(c.a20());
        assert_eq!(
            command(&mut c, CMD_READ_OUTPUT, &[], 1)[0] & OUT_RESET,
            OUT_RESET
        );
    }

    #[test]
    fn output_port_reports_the_buffer_source() {
        let mut c = kbc();
        // A keyboard byte waits behind the D0 reply.
        c.write(PORT_COMMAND, CMD_WRITE_AUX_BUFFER);
        c.write(PORT_DATA, 0x11);
        c.write(PORT_COMMAND, CMD_READ_OUTPUT);
        assert_eq!(c.read(PORT_DATA), 0x11);
        assert_eq!(c.read(PORT_DATA) & (OUT_KBD_OBF | OUT_AUX_OBF), OUT_AUX_OBF);
    }

    /// The Linux i8042 probe: flush, self test, CTR read and write, AUX loop
    /// and bit tests, AUX IRQ delivery, then enabling the keyboard port and
    /// atkbd's GET ID.
    #[test]
    fn linux_i8042_probe_sequence() {
        let mut c = kbc();
        c.key_event(KeyCode::A, true); // stale input from before the driver
        assert_eq!(flush(&mut c), [0x1E]);
        assert_eq!(command(&mut c, CMD_SELF_TEST, &[], 1), [SELF_TEST_OK]);
        // i8042_controller_init: read the CTR twice, expect it stable.
        let ctr = command(&mut c, CMD_READ_CTR, &[], 1)[0];
        assert_eq!(command(&mut c, CMD_READ_CTR, &[], 1)[0], ctr);
        assert_ne!(c.read(PORT_COMMAND) & STATUS_INH, 0, "keylock open");
        assert_ne!(ctr & CTR_XLATE, 0);
        let ctr = (ctr | CTR_KBD_DISABLE) & !CTR_KBD_INT;
        set_ctr(&mut c, ctr);
        assert_eq!(flush(&mut c), []);
        // i8042_check_aux: loopback through the AUX output buffer.
        c.write(PORT_COMMAND, CMD_WRITE_AUX_BUFFER);
        c.write(PORT_DATA, 0x5A);
        let status = c.read(PORT_COMMAND);
        assert_eq!(
            status & (STATUS_OBF | STATUS_AUXB),
            STATUS_OBF | STATUS_AUXB
        );
        assert_eq!(c.read(PORT_DATA), 0x5A);
        // Bit assignment test.
        command(&mut c, CMD_AUX_DISABLE, &[], 0);
        assert_ne!(
            command(&mut c, CMD_READ_CTR, &[], 1)[0] & CTR_AUX_DISABLE,
            0
        );
        command(&mut c, CMD_AUX_ENABLE, &[], 0);
        let ctr = command(&mut c, CMD_READ_CTR, &[], 1)[0];
        assert_eq!(ctr & CTR_AUX_DISABLE, 0);
        // AUX IRQ delivery test.
        set_ctr(&mut c, (ctr & !CTR_AUX_DISABLE) | CTR_AUX_INT);
        c.write(PORT_COMMAND, CMD_WRITE_AUX_BUFFER);
        c.write(PORT_DATA, 0xA5);
        assert!(c.aux_irq().high);
        assert!(!c.kbd_irq().high);
        assert_eq!(c.read(PORT_COMMAND) & STATUS_AUXB, STATUS_AUXB);
        assert_eq!(c.read(PORT_DATA), 0xA5);
        assert!(!c.aux_irq().high);
        // Enable the keyboard port with its interrupt; atkbd probes.
        let ctr = (ctr & !CTR_KBD_DISABLE) | CTR_KBD_INT | CTR_AUX_INT;
        set_ctr(&mut c, ctr);
        c.write(PORT_DATA, KBD_IDENTIFY);
        assert!(c.kbd_irq().high);
        assert_eq!(flush(&mut c), [ACK, 0xAB, 0x41], "ID 83 translated to 41");
        assert!(c.kbd_irq().rises >= 3, "an edge per byte");
        // psmouse: reset and ID through D4.
        assert_eq!(to_mouse(&mut c, &[AUX_RESET]), [ACK, BAT_OK, 0x00]);
        assert!(c.aux_irq().rises >= 4);
    }

    #[test]
    fn irq_per_byte_and_gating() {
        let mut c = kbc();
        c.key_event(KeyCode::A, true);
        c.key_event(KeyCode::A, false);
        assert!(c.kbd_irq().high);
        assert_eq!(c.read(PORT_DATA), 0x1E);
        assert!(c.kbd_irq().high, "next byte raised it again");
        assert_eq!(c.kbd_irq().rises, 2);
        assert_eq!(c.read(PORT_DATA), 0x9E);
        assert!(!c.kbd_irq().high);
        assert_eq!(
            c.read(PORT_DATA),
            0x9E,
            "an empty buffer reads the last byte"
        );
        assert_eq!(c.kbd_irq().rises, 2);
        // Interrupt disabled: data but no line.
        set_ctr(&mut c, CTR_XLATE);
        c.key_event(KeyCode::A, true);
        assert!(!c.kbd_irq().high);
        assert_eq!(c.read(PORT_COMMAND) & STATUS_OBF, STATUS_OBF);
        set_ctr(&mut c, CTR_XLATE | CTR_KBD_INT);
        assert!(c.kbd_irq().high, "enabling with data waiting raises it");
    }

    #[test]
    fn disabled_interfaces_hold_their_bytes() {
        let mut c = kbc();
        command(&mut c, CMD_KBD_DISABLE, &[], 0);
        c.key_event(KeyCode::A, true);
        assert_eq!(c.read(PORT_COMMAND) & STATUS_OBF, 0);
        command(&mut c, CMD_KBD_ENABLE, &[], 0);
        assert_eq!(flush(&mut c), [0x1E]);
        command(&mut c, CMD_AUX_DISABLE, &[], 0);
        c.write(PORT_COMMAND, CMD_WRITE_AUX);
        c.write(PORT_DATA, AUX_GET_ID);
        assert_eq!(flush(&mut c), []);
        command(&mut c, CMD_AUX_ENABLE, &[], 0);
        assert_eq!(flush(&mut c), [ACK, 0x00]);
    }

    #[test]
    fn untranslated_set2_and_keyboard_set1() {
        let mut c = kbc();
        set_ctr(&mut c, CTR_KBD_INT);
        c.key_event(KeyCode::A, true);
        c.key_event(KeyCode::A, false);
        c.key_event(KeyCode::RIGHT, true);
        c.key_event(KeyCode::RIGHT, false);
        assert_eq!(
            flush(&mut c),
            [0x1C, 0xF0, 0x1C, 0xE0, 0x74, 0xE0, 0xF0, 0x74]
        );
        c.key_event(KeyCode::PAUSE, true);
        c.key_event(KeyCode::PAUSE, false);
        assert_eq!(
            flush(&mut c),
            [0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77]
        );
        // The keyboard itself switched to set 1.
        assert_eq!(to_keyboard(&mut c, &[KBD_SCANCODE_SET, 1]), [ACK, ACK]);
        assert_eq!(to_keyboard(&mut c, &[KBD_SCANCODE_SET, 0]), [ACK, ACK, 1]);
        c.key_event(KeyCode::RIGHT, true);
        c.key_event(KeyCode::RIGHT, false);
        c.key_event(KeyCode::PAUSE, true);
        assert_eq!(
            flush(&mut c),
            [0xE0, 0x4D, 0xE0, 0xCD, 0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]
        );
    }

    #[test]
    fn translated_keys() {
        let mut c = kbc();
        c.key_event(KeyCode::ESCAPE, true);
        c.key_event(KeyCode::ESCAPE, false);
        c.key_event(KeyCode::RIGHT, true);
        c.key_event(KeyCode::RIGHT, false);
        c.key_event(KeyCode::plain(0x83), true); // F7
        c.key_event(KeyCode::extended(0x5A), false); // keypad Enter
        assert_eq!(
            flush(&mut c),
            [0x01, 0x81, 0xE0, 0x4D, 0xE0, 0xCD, 0x41, 0xE0, 0x9C]
        );
        c.key_event(KeyCode::PAUSE, true);
        assert_eq!(flush(&mut c), [0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]);
        // Scancode set query answers translate too.
        assert_eq!(
            to_keyboard(&mut c, &[KBD_SCANCODE_SET, 0]),
            [ACK, ACK, 0x41]
        );
    }

    #[test]
    fn keyboard_commands() {
        let mut c = kbc();
        assert_eq!(to_keyboard(&mut c, &[KBD_RESET]), [ACK, BAT_OK]);
        assert_eq!(to_keyboard(&mut c, &[KBD_ECHO]), [KBD_ECHO]);
        assert_eq!(to_keyboard(&mut c, &[KBD_SET_LEDS, 0x07]), [ACK, ACK]);
        assert_eq!(c.state().keyboard.leds, 7);
        assert_eq!(to_keyboard(&mut c, &[KBD_TYPEMATIC, 0x20]), [ACK, ACK]);
        assert_eq!(c.state().keyboard.typematic, 0x20);
        assert_eq!(to_keyboard(&mut c, &[KBD_DISABLE]), [ACK]);
        c.key_event(KeyCode::A, true);
        assert_eq!(flush(&mut c), [], "not scanning");
        assert_eq!(c.state().keyboard.typematic, KBD_TYPEMATIC_DEFAULT);
        assert_eq!(to_keyboard(&mut c, &[KBD_ENABLE]), [ACK]);
        c.key_event(KeyCode::A, true);
        assert_eq!(flush(&mut c), [0x1E]);
        assert_eq!(to_keyboard(&mut c, &[KBD_DEFAULTS]), [ACK]);
        assert!(c.state().keyboard.scanning);
        assert_eq!(to_keyboard(&mut c, &[KBD_RESEND]), [ACK]);
        assert_eq!(
            to_keyboard(&mut c, &[0xFA]),
            [ACK],
            "set 3 commands accepted"
        );
        assert_eq!(to_keyboard(&mut c, &[0x42]), [RESEND]);
        // A command in place of a parameter is taken as a command.
        assert_eq!(
            to_keyboard(&mut c, &[KBD_SET_LEDS, KBD_ECHO]),
            [ACK, KBD_ECHO]
        );
        assert_eq!(to_keyboard(&mut c, &[KBD_SCANCODE_SET, 3]), [ACK, ACK]);
        assert_eq!(c.state().keyboard.set, 3);
        assert_eq!(to_keyboard(&mut c, &[KBD_SCANCODE_SET, 9]), [ACK, ACK]);
        assert_eq!(c.state().keyboard.set, 3, "bad set ignored");
        assert_eq!(to_keyboard(&mut c, &[KBD_RESET]), [ACK, BAT_OK]);
        assert_eq!(c.state().keyboard.set, 2);
    }

    #[test]
    fn keyboard_buffer_overflow_drops_events() {
        let mut c = kbc();
        command(&mut c, CMD_KBD_DISABLE, &[], 0);
        for _ in 0..20 {
            c.key_event(KeyCode::RIGHT, true); // two bytes each
        }
        assert_eq!(c.state().keyboard.queue.len(), KBD_QUEUE);
        command(&mut c, CMD_KBD_ENABLE, &[], 0);
        assert_eq!(flush(&mut c).len(), KBD_QUEUE);
    }

    #[test]
    fn mouse_commands() {
        let mut c = kbc();
        assert_eq!(to_mouse(&mut c, &[AUX_RESET]), [ACK, BAT_OK, 0x00]);
        assert_eq!(to_mouse(&mut c, &[AUX_GET_ID]), [ACK, 0x00]);
        assert_eq!(to_mouse(&mut c, &[AUX_STATUS]), [ACK, 0x00, 2, 100]);
        assert_eq!(to_mouse(&mut c, &[AUX_SET_RESOLUTION, 3]), [ACK, ACK]);
        assert_eq!(to_mouse(&mut c, &[AUX_SCALING_2_1]), [ACK]);
        assert_eq!(to_mouse(&mut c, &[AUX_SAMPLE_RATE, 40]), [ACK, ACK]);
        assert_eq!(to_mouse(&mut c, &[AUX_ENABLE]), [ACK]);
        assert_eq!(to_mouse(&mut c, &[AUX_REMOTE_MODE]), [ACK]);
        c.mouse_event(0, 0, MOUSE_LEFT | MOUSE_RIGHT);
        assert_eq!(to_mouse(&mut c, &[AUX_STATUS]), [ACK, 0x75, 3, 40]);
        assert_eq!(
            to_mouse(&mut c, &[AUX_SCALING_1_1, AUX_STREAM_MODE]),
            [ACK, ACK]
        );
        assert_eq!(to_mouse(&mut c, &[AUX_DISABLE]), [ACK]);
        assert_eq!(to_mouse(&mut c, &[AUX_STATUS]), [ACK, 0x05, 3, 40]);
        assert_eq!(to_mouse(&mut c, &[AUX_DEFAULTS]), [ACK]);
        assert_eq!(to_mouse(&mut c, &[AUX_STATUS]), [ACK, 0x05, 2, 100]);
        assert_eq!(to_mouse(&mut c, &[AUX_RESEND]), [100]);
        assert_eq!(to_mouse(&mut c, &[0x42]), [RESEND]);
    }

    #[test]
    fn mouse_wrap_mode_echoes() {
        let mut c = kbc();
        assert_eq!(to_mouse(&mut c, &[AUX_WRAP_MODE]), [ACK]);
        assert_eq!(to_mouse(&mut c, &[0x12, AUX_GET_ID]), [0x12, AUX_GET_ID]);
        assert_eq!(to_mouse(&mut c, &[AUX_RESET_WRAP]), [ACK]);
        assert_eq!(to_mouse(&mut c, &[AUX_GET_ID]), [ACK, 0]);
        assert_eq!(
            to_mouse(&mut c, &[AUX_WRAP_MODE, AUX_RESET]),
            [ACK, ACK, BAT_OK, 0]
        );
    }

    #[test]
    fn intellimouse_knock_and_packets() {
        let mut c = kbc();
        set_ctr(&mut c, CTR_XLATE | CTR_KBD_INT | CTR_AUX_INT);
        to_mouse(
            &mut c,
            &[
                AUX_SAMPLE_RATE,
                200,
                AUX_SAMPLE_RATE,
                80,
                AUX_SAMPLE_RATE,
                100,
            ],
        );
        assert_eq!(to_mouse(&mut c, &[AUX_GET_ID]), [ACK, 0], "wrong order");
        to_mouse(
            &mut c,
            &[
                AUX_SAMPLE_RATE,
                200,
                AUX_SAMPLE_RATE,
                100,
                AUX_SAMPLE_RATE,
                80,
            ],
        );
        assert_eq!(to_mouse(&mut c, &[AUX_GET_ID]), [ACK, 3]);
        to_mouse(&mut c, &[AUX_ENABLE]);
        c.mouse_event_with_wheel(5, -3, -1, MOUSE_MIDDLE);
        assert!(c.aux_irq().high);
        assert_eq!(c.read(PORT_COMMAND) & STATUS_AUXB, STATUS_AUXB);
        assert_eq!(flush(&mut c), [0x08 | 0x20 | MOUSE_MIDDLE, 5, 0xFD, 0xFF]);
        assert_eq!(to_mouse(&mut c, &[AUX_RESET]), [ACK, BAT_OK, 0]);
        assert_eq!(
            to_mouse(&mut c, &[AUX_GET_ID]),
            [ACK, 0],
            "reset forgets the wheel"
        );
    }

    #[test]
    fn intellimouse_explorer_knock_and_packets() {
        let mut c = kbc();
        // psmouse: IntelliMouse first, then the Explorer knock.
        to_mouse(
            &mut c,
            &[
                AUX_SAMPLE_RATE,
                200,
                AUX_SAMPLE_RATE,
                100,
                AUX_SAMPLE_RATE,
                80,
            ],
        );
        to_mouse(
            &mut c,
            &[
                AUX_SAMPLE_RATE,
                200,
                AUX_SAMPLE_RATE,
                200,
                AUX_SAMPLE_RATE,
                80,
            ],
        );
        assert_eq!(to_mouse(&mut c, &[AUX_GET_ID]), [ACK, 4]);
        to_mouse(&mut c, &[AUX_ENABLE]);
        c.mouse_event_with_wheel(1, 1, 3, MOUSE_LEFT | MOUSE_BUTTON5);
        assert_eq!(flush(&mut c), [0x09, 1, 1, 0x23]);
        c.mouse_event_with_wheel(0, 0, -20, MOUSE_BUTTON4);
        // Clamped to -8 per packet; the rest follows.
        assert_eq!(
            flush(&mut c),
            [0x08, 0, 0, 0x18, 0x08, 0, 0, 0x18, 0x08, 0, 0, 0x1C]
        );
        assert_eq!(
            to_mouse(&mut c, &[AUX_STATUS]),
            [ACK, 0x20, 2, 80],
            "buttons 4-5 not in status"
        );
    }

    #[test]
    fn movement_packets_split_and_overflow() {
        let mut c = kbc();
        to_mouse(&mut c, &[AUX_ENABLE]);
        c.mouse_event(-300, 10, MOUSE_LEFT);
        assert_eq!(flush(&mut c), [0x19, 0x00, 10, 0x19, 0xD4, 0]); // -256 then -44
        c.mouse_event(0, 0, 0);
        assert_eq!(flush(&mut c), [0x08, 0, 0], "button release alone reports");
        // Remote mode: accumulate, report on read data.
        to_mouse(&mut c, &[AUX_REMOTE_MODE]);
        c.mouse_event(3, 4, 0);
        c.mouse_event(3, 4, 0);
        assert_eq!(flush(&mut c), []);
        assert_eq!(to_mouse(&mut c, &[AUX_READ_DATA]), [ACK, 0x08, 6, 8]);
        assert_eq!(to_mouse(&mut c, &[AUX_READ_DATA]), [ACK, 0x08, 0, 0]);
        // 2:1 scaling in stream mode.
        to_mouse(&mut c, &[AUX_STREAM_MODE, AUX_SCALING_2_1]);
        c.mouse_event(4, -5, 0);
        assert_eq!(flush(&mut c), [0x28, 6, (-9i8) as u8]);
        c.mouse_event(200, 0, 0);
        assert_eq!(
            flush(&mut c),
            [0x48, 0xFF, 0],
            "scaled past 255: overflow bit"
        );
        // Disabled: movement is kept but not reported.
        to_mouse(&mut c, &[AUX_DISABLE]);
        c.mouse_event(1, 1, 0);
        assert_eq!(flush(&mut c), []);
    }

    #[test]
    fn absent_mouse_times_out() {
        let mut c = kbc();
        c.set_mouse_present(false);
        c.write(PORT_COMMAND, CMD_WRITE_AUX);
        c.write(PORT_DATA, AUX_GET_ID);
        let status = c.read(PORT_COMMAND);
        assert_eq!(
            status & (STATUS_TIMEOUT | STATUS_AUXB),
            STATUS_TIMEOUT | STATUS_AUXB
        );
        assert_eq!(c.read(PORT_DATA), RESEND);
        c.mouse_event(1, 1, 1);
        assert_eq!(flush(&mut c), []);
        c.write(PORT_COMMAND, CMD_READ_CTR);
        assert_eq!(c.read(PORT_COMMAND) & STATUS_TIMEOUT, 0);
    }

    #[test]
    fn write_keyboard_buffer_is_not_translated() {
        let mut c = kbc();
        c.write(PORT_COMMAND, CMD_WRITE_KBD_BUFFER);
        c.write(PORT_DATA, 0x1C);
        assert!(c.kbd_irq().high);
        assert_eq!(
            c.read(PORT_COMMAND) & (STATUS_OBF | STATUS_AUXB),
            STATUS_OBF
        );
        assert_eq!(c.read(PORT_DATA), 0x1C);
    }

    #[test]
    fn snapshot_round_trip_restores_the_lines() {
        let mut c = kbc();
        set_ctr(&mut c, CTR_XLATE | CTR_KBD_INT | CTR_AUX_INT);
        c.write(PORT_COMMAND, CMD_WRITE_AUX_BUFFER);
        c.write(PORT_DATA, 0x33);
        let state = c.state().clone();
        let restored = I8042::from_state(state.clone(), Probe::default(), Probe::default());
        assert!(restored.aux_irq().high && !restored.kbd_irq().high);
        assert_eq!(restored.state(), &state);
    }

    #[test]
    fn unmapped_offsets_and_empty_reads() {
        let mut c = kbc();
        assert_eq!(c.read(PORT_DATA), 0, "nothing read yet");
        assert_eq!(c.read(1), 0xFF);
        c.write(2, 0xAA);
        assert_eq!(c.read(PORT_COMMAND) & STATUS_OBF, 0);
    }

    #[test]
    fn a_command_cancels_a_pending_one() {
        let mut c = kbc();
        c.write(PORT_COMMAND, CMD_WRITE_CTR);
        c.write(PORT_COMMAND, CMD_READ_CTR);
        assert_eq!(flush(&mut c), [CTR_DEFAULT]);
        c.write(PORT_DATA, KBD_ECHO); // goes to the keyboard, not the CTR
        assert_eq!(flush(&mut c), [KBD_ECHO]);
        assert_eq!(command(&mut c, CMD_READ_CTR, &[], 1), [CTR_DEFAULT]);
    }

    #[test]
    fn mouse_resolution_is_masked_and_reported() {
        let mut c = kbc();
        assert_eq!(to_mouse(&mut c, &[AUX_SET_RESOLUTION, 0xFF]), [ACK, ACK]);
        assert_eq!(to_mouse(&mut c, &[AUX_STATUS]), [ACK, 0, 3, 100]);
    }

    #[test]
    fn controller_replies_are_bounded() {
        let mut c = kbc();
        for _ in 0..100 {
            c.write(PORT_COMMAND, CMD_READ_CTR);
        }
        assert_eq!(flush(&mut c).len(), 1 + REPLY_QUEUE);
    }

    #[test]
    fn hostile_snapshot_does_not_panic() {
        let mut state = I8042State {
            ram: [0xFF; 32],
            pending: Some(0x00),
            ..Default::default()
        };
        state.keyboard.queue = std::iter::repeat_n(0xF0, 100).collect();
        state.keyboard.set = 0xFF;
        state.keyboard.pending = Some(0x00);
        state.mouse.queue = (0..=255).collect();
        state.mouse.id = 0xFF;
        state.mouse.dx = i32::MIN;
        state.mouse.dy = i32::MAX;
        state.mouse.dz = i32::MIN;
        state.mouse.pending = Some(0x12);
        let mut c = I8042::from_state(state, Probe::default(), Probe::default());
        c.mouse_event_with_wheel(i32::MAX, i32::MIN, i32::MAX, 0xFF);
        c.key_event(KeyCode::PAUSE, true);
        for v in [0x00, 0xFF, KBD_ECHO] {
            c.write(PORT_DATA, v);
            c.write(PORT_COMMAND, CMD_WRITE_AUX);
            c.write(PORT_DATA, v);
        }
        command(&mut c, CMD_WRITE_CTR, &[0], 0);
        flush(&mut c);
    }

    #[test]
    fn fuzz_never_panics() {
        let mut c = kbc();
        let mut seed = 0xFEED_FACE_CAFE_BEEFu64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let (op, value) = (seed % 10, (seed >> 16) as u8);
            let port = [PORT_DATA, PORT_COMMAND, 1, 7][((seed >> 8) % 4) as usize];
            match op {
                0..=3 => c.write(port, value),
                4..=6 => {
                    c.read(port);
                }
                7 => c.key_event(KeyCode((seed >> 32) as u16), value & 1 != 0),
                8 => c.mouse_event_with_wheel(
                    (seed >> 24) as i16 as i32 * 1000,
                    (seed >> 40) as i16 as i32,
                    i32::from(value as i8),
                    value,
                ),
                _ => {
                    c.take_reset_request();
                    c.set_mouse_present(value & 0x30 != 0);
                }
            }
            let s = c.state();
            assert!(s.keyboard.queue.len() <= KBD_QUEUE && s.mouse.queue.len() <= AUX_QUEUE);
            assert!(s.replies.len() <= REPLY_QUEUE);
        }
    }
}
