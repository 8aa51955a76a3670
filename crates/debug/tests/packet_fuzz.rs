//! Hostile GDB packets: a bounded fuzz of the stub over an in-memory
//! connection. Well-framed packets with random commands and arguments,
//! bad checksums and raw garbage must get replies (errors where the
//! packet is malformed), never a panic; Ctrl-C stops a running guest.

use std::collections::VecDeque;

use gdbstub::conn::{Connection, ConnectionExt};
use oxide86_debug::gdb::{serve, GdbTarget};
use oxide86_machine::embed::Machine;

/// Bytes from "GDB" in, replies out; reading past the input is an error
/// (the session ends).
#[derive(Default)]
struct MemConn {
    input: VecDeque<u8>,
    output: Vec<u8>,
}

impl Connection for &mut MemConn {
    type Error = std::io::Error;
    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        self.output.push(byte);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl ConnectionExt for &mut MemConn {
    fn read(&mut self) -> Result<u8, Self::Error> {
        self.input
            .pop_front()
            .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
    }
    fn peek(&mut self) -> Result<Option<u8>, Self::Error> {
        match self.input.front() {
            Some(b) => Ok(Some(*b)),
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

fn packet(payload: &[u8]) -> Vec<u8> {
    let sum = payload.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    let mut p = vec![b'$'];
    p.extend_from_slice(payload);
    p.extend_from_slice(format!("#{sum:02x}").as_bytes());
    p
}

/// A guest that spins forever (`jmp $` at the reset vector).
fn target() -> GdbTarget {
    let mut rom = vec![0xF4u8; 0x10000];
    rom[0xFFF0..0xFFF2].copy_from_slice(&[0xEB, 0xFE]);
    let m = Machine::builder()
        .memory_mib(1)
        .firmware(rom)
        .build()
        .unwrap();
    GdbTarget::new(m.pc)
}

fn session(t: &mut GdbTarget, input: Vec<u8>) -> String {
    let mut conn = MemConn {
        input: input.into(),
        output: Vec::new(),
    };
    let _ = serve(t, &mut conn);
    String::from_utf8_lossy(&conn.output).into_owned()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn malformed_packets_get_error_replies() {
    let mut t = target();
    let mut input = b"+".to_vec();
    input.extend(packet(b"mzz,4"));
    input.extend(packet(b"m0,zz"));
    input.extend(packet(b"Gnothex"));
    let out = session(&mut t, input);
    assert!(out.matches("$E").count() >= 2, "{out}");
}

#[test]
fn ctrl_c_stops_a_running_guest_with_sigint() {
    let mut t = target();
    let mut input = b"+".to_vec();
    input.extend(packet(b"c"));
    input.push(0x03);
    input.extend(packet(b"g"));
    let out = session(&mut t, input);
    assert!(out.contains("$T02") || out.contains("$S02"), "{out}");
}

#[test]
fn random_packets_never_panic() {
    const COMMANDS: [&[u8]; 30] = [
        b"g",
        b"G",
        b"m",
        b"M",
        b"X",
        b"p",
        b"P",
        b"c",
        b"s",
        b"?",
        b"Z0,",
        b"z0,",
        b"Z1,",
        b"z1,",
        b"Z2,",
        b"z2,",
        b"Z3,",
        b"Z4,",
        b"z4,",
        b"qSupported:",
        b"qXfer:features:read:target.xml:",
        b"vCont?",
        b"vCont;c",
        b"vCont;s",
        b"qRcmd,",
        b"H",
        b"T",
        b"qAttached",
        b"vMustReplyEmpty",
        b"D",
    ];
    const ALPHABET: &[u8] = b"0123456789abcdefABCDEF,:;#$}*-xyz";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut t = target();
    for _ in 0..300 {
        let mut input = b"+".to_vec();
        for _ in 0..rng.below(12) + 1 {
            let mut payload = COMMANDS[rng.below(COMMANDS.len() as u64) as usize].to_vec();
            if payload == b"qRcmd," {
                let cmds = [
                    "info registers",
                    "info tlb",
                    "info mem",
                    "x/4i cs:0xfff0",
                    "bogus",
                    "x/9zz",
                ];
                let c = cmds[rng.below(cmds.len() as u64) as usize];
                payload.extend(c.bytes().flat_map(|b| format!("{b:02x}").into_bytes()));
            } else {
                for _ in 0..rng.below(24) {
                    payload.push(ALPHABET[rng.below(ALPHABET.len() as u64) as usize]);
                }
            }
            match rng.below(10) {
                0 => input.extend(&payload), // unframed garbage
                1 => {
                    let mut p = packet(&payload);
                    let n = p.len();
                    p[n - 1] ^= 1; // bad checksum
                    input.extend(p);
                }
                2 => input.push(0x03),
                _ => input.extend(packet(&payload)),
            }
        }
        let _ = session(&mut t, input);
    }
}
