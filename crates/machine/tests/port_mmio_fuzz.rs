//! A guest writing any value to any port or MMIO address never panics the
//! emulator (issue 4). Two bounded, deterministic fuzzers:
//!
//! - `board_survives_random_port_and_memory_traffic` drives the PC board
//!   directly through `oxide86_cpu::Bus`: random `IN`/`OUT` of 1, 2 and 4
//!   bytes (biased towards the decoded ports), random memory accesses
//!   (biased towards the APIC pages, the ROM windows, the VGA hole, the
//!   top of RAM and the top of 4 GiB), interleaved with machine time,
//!   interrupt acknowledges, NMIs, IA32_APIC_BASE writes and serial input.
//!   Plain RAM must keep reading back what was written.
//! - `guest_code_with_random_port_and_memory_traffic_never_panics` runs
//!   whole PCs (a Multiboot kernel in protected mode and a raw firmware
//!   ROM in real mode) whose code does random `OUT`/`IN`/`OUTS`/`INS`,
//!   stores and loads, `WRMSR` to IA32_APIC_BASE, `STI`/`HLT`, for a
//!   bounded number of instructions.
//!
//! Guest-requested resets, power-off and debug exits are fine outcomes.
//! `OXIDE86_FUZZ_SCALE=N` multiplies the case counts (longer runs by hand),
//! `OXIDE86_FUZZ_SEED=S` changes the base seed, and a failure names the
//! case seed to pass as `OXIDE86_FUZZ_CASE=S` to rerun just that case.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::{multiboot_header, MB_ADDRESSES, MB_MEMORY};

use std::panic::{catch_unwind, AssertUnwindSafe};

use iced_x86::code_asm::*;
use oxide86_cpu::Bus;
use oxide86_devices::rtc::DateTime;
use oxide86_machine::memory_map::{PhysMemory, Region};
use oxide86_machine::pc::{BootSource, EngineKind, Pc, PcConfig};
use oxide86_machine::pc_board::PcBoard;
use oxide86_machine::ram::GuestRam;

/// xorshift64* with a SplitMix64-scrambled seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Runs `cases` cases (or only `OXIDE86_FUZZ_CASE`), each from its own
/// seed; a panic names the seed that reproduces it.
fn run_cases(name: &str, cases: u64, case: impl Fn(u64)) {
    if let Some(seed) = env_u64("OXIDE86_FUZZ_CASE") {
        case(seed);
        return;
    }
    let base = env_u64("OXIDE86_FUZZ_SEED").unwrap_or(0x0DE8_6F22);
    let cases = cases * env_u64("OXIDE86_FUZZ_SCALE").unwrap_or(1).max(1);
    for i in 0..cases {
        let seed = base.wrapping_mul(0x1_0000_0001).wrapping_add(i);
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| case(seed))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{name}: case {i} panicked; rerun with OXIDE86_FUZZ_CASE={seed:#x}: {msg}");
        }
    }
}

/// Ports the PC decodes (first port, how many).
const DECODED: &[(u16, u16)] = &[
    (0x20, 2),
    (0xA0, 2),
    (0x4D0, 2),
    (0x40, 4),
    (0x61, 1),
    (0x70, 2),
    (0x60, 1),
    (0x64, 1),
    (0x3F8, 8),
    (0x2F8, 8),
    (0x3E8, 8),
    (0x2E8, 8),
    (0xCF8, 8),
    (0x510, 2),
    (0x600, 12),
    (0x92, 1),
    (0x80, 1),
    (0xE9, 1),
    (0xF4, 1),
    (0xCF9, 1),
];

fn random_port(r: &mut Rng) -> u16 {
    if r.chance(80) {
        let (base, n) = r.pick(DECODED);
        // Now and then one past either end, or a multi-byte access that
        // runs off the end of the block.
        let off = r.below(u64::from(n) + 2) as u16;
        base.wrapping_add(off).wrapping_sub(u16::from(r.chance(5)))
    } else if r.chance(5) {
        r.pick(&[0, 0xFFFF, 0xFFFE, 0xFFFD])
    } else {
        r.next() as u16
    }
}

/// Values that mean something to some device, or anything.
fn random_value(r: &mut Rng, port: u16) -> u32 {
    match r.below(10) {
        0 => r.pick(&[0, 0xFF, 0xFFFF, 0xFFFF_FFFF, 0x8000_0000, 0x7F, 0x80]),
        // A PCI configuration address with the enable bit (any bus, device,
        // function, register).
        1 if (0xCF8..0xCFC).contains(&port) => 0x8000_0000 | (r.next() as u32 & 0x00FF_FFFF),
        // fw_cfg selectors: the fixed items, the file directory, files.
        2 if port == 0x510 => {
            r.pick(&[0, 1, 2, 3, 5, 0xE, 0x19, 0x20, 0x21, 0x22, 0x8000, 0x4000])
                | (r.below(8) as u32)
        }
        // ACPI PM1a_CNT with SLP_EN now and then.
        3 if port == 0x604 => r.next() as u32 & !(1 << 13),
        // i8042 commands.
        4 if port == 0x64 => r.pick(&[
            0x20, 0x60, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAD, 0xAE, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4,
            0xFE, 0xF0,
        ]),
        // Keyboard and mouse commands.
        5 if port == 0x60 => r.pick(&[
            0xED, 0xEE, 0xF0, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xFF, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA,
            0xEB, 0xEC, 0xF0, 0xC8, 0x64, 0x50, 0x02,
        ]),
        // PIT control words, the RTC index with and without NMI off.
        6 if port == 0x43 => r.next() as u32 & 0xFF,
        6 if port == 0x70 => r.below(0x100) as u32,
        // PIC ICW1/OCW2/OCW3.
        7 if port == 0x20 || port == 0xA0 => {
            r.pick(&[
                0x11, 0x13, 0x19, 0x1B, 0x20, 0x60, 0xA0, 0xC0, 0xE0, 0x0A, 0x0B, 0x4C, 0x6C, 0x0C,
            ]) | (r.below(8) as u32)
        }
        _ => r.next() as u32,
    }
}

fn random_size(r: &mut Rng) -> u8 {
    r.pick(&[1, 1, 2, 4])
}

/// A physical address worth poking.
fn random_addr(r: &mut Rng, ram: u32, rom: u32, apic_page: u32) -> u32 {
    let within =
        |r: &mut Rng, base: u32, len: u32| base.wrapping_add(r.below(u64::from(len.max(1))) as u32);
    match r.below(12) {
        0 | 1 => within(r, 0xFEC0_0000, 0x1000),
        2 | 3 => within(r, 0xFEE0_0000, 0x1000),
        4 => within(r, apic_page, 0x1000),
        5 => within(r, 0xA_0000, 0x2_0000),
        6 => within(r, 0xC_0000, 0x4_0000),
        7 => within(r, 0u32.wrapping_sub(rom.max(0x1000)), rom.max(0x1000)),
        8 => ram.wrapping_sub(8).wrapping_add(r.below(16) as u32),
        9 => 0xFFFF_FFF0 | r.below(16) as u32,
        10 => within(r, 0x10_0000 - 0x10, 0x20), // across the 1 MiB line (A20)
        _ => r.next() as u32,
    }
}

fn random_apic_base(r: &mut Rng) -> u64 {
    let page: u64 = match r.below(6) {
        0..=2 => 0xFEE0_0000,
        3 => 0xFEC0_0000,
        4 => r.pick(&[0, 0x1000, 0xA_0000, 0xF_F000, 0xFFFF_F000, 0x10_0000]),
        _ => r.next() & 0xF_FFFF_F000,
    };
    let flags = if r.chance(80) {
        0x900
    } else {
        r.next() & 0xF00
    };
    if r.chance(3) {
        r.next()
    } else {
        page | flags
    }
}

fn new_board(r: &mut Rng) -> (PcBoard, u32, u32) {
    let ram = r.pick(&[
        512 << 10,
        (1 << 20) + 0x1234,
        2 << 20,
        16 << 20,
        (8 << 20) - 1,
        0x9_0000,
    ]);
    let rom_len = r.pick(&[
        0usize,
        1,
        1000,
        4096,
        64 << 10,
        128 << 10,
        256 << 10,
        (128 << 10) + 3,
    ]);
    let rom: Vec<u8> = (0..rom_len).map(|i| i as u8 ^ 0x5A).collect();
    let any_date = i64::from(r.next() as u32);
    let board = PcBoard::new(
        PhysMemory::new(GuestRam::new(ram).expect("guest RAM"), rom),
        DateTime::from_unix(r.pick(&[0, 946_684_800, 4_102_444_799, -1, any_date])),
    );
    (board, ram as u32, rom_len as u32)
}

/// Checks that each byte of a write that landed in plain RAM is there.
fn check_ram_bytes(board: &mut PcBoard, addr: u32, size: u32, value: u32) {
    for i in 0..size {
        let a = addr.wrapping_add(i);
        if a >= 0xFEC0_0000 && board.apics.claims(a) {
            continue;
        }
        // PAM may send reads and writes of 0xC0000-0xFFFFF to different sides.
        if let Region::Ram(o) = board.memory.write_region(a) {
            let want = (value >> (8 * i)) as u8;
            assert_eq!(
                board.memory.ram().as_slice()[o],
                want,
                "RAM at {a:#x} after a {size}-byte write of {value:#x} at {addr:#x}"
            );
            if board.memory.read_region(a) == Region::Ram(o) {
                assert_eq!(board.read_u8(a), want, "RAM at {a:#x} read through the bus");
            }
        }
    }
}

fn board_case(seed: u64, steps: u64) {
    let mut r = Rng::new(seed);
    let (mut b, ram, rom) = new_board(&mut r);
    if r.chance(70) {
        // As firmware leaves it: the 8259A's INTR passes through LINT0.
        b.apics.virtual_wire_mode();
    }
    b.events.enabled = r.chance(20);
    let mut now: u64 = 0;
    let mut apic_page = 0xFEE0_0000u32;
    // What the case reached, for OXIDE86_FUZZ_VERBOSE.
    let (mut vectors, mut nmis, mut resets) = (0u32, 0u32, 0u32);
    for _ in 0..steps {
        match r.below(100) {
            0..=34 => {
                let port = random_port(&mut r);
                let size = random_size(&mut r);
                let v = random_value(&mut r, port);
                b.io_write(port, size, v);
            }
            35..=54 => {
                let port = random_port(&mut r);
                let size = random_size(&mut r);
                let v = b.io_read(port, size);
                if size < 4 {
                    assert_eq!(
                        v >> (8 * size),
                        0,
                        "IN of {size} bytes from {port:#x} read {v:#x}"
                    );
                }
            }
            55..=69 => {
                let addr = random_addr(&mut r, ram, rom, apic_page);
                let v = r.next() as u32;
                let size = random_size(&mut r);
                match size {
                    1 => b.write_u8(addr, v as u8),
                    2 => b.write_u16(addr, v as u16),
                    _ => b.write_u32(addr, v),
                }
                check_ram_bytes(&mut b, addr, u32::from(size), v);
            }
            70..=79 => {
                let addr = random_addr(&mut r, ram, rom, apic_page);
                match random_size(&mut r) {
                    1 => drop(b.read_u8(addr)),
                    2 => drop(b.read_u16(addr)),
                    _ => drop(b.read_u32(addr)),
                }
            }
            80..=85 => {
                // Machine time: mostly forwards, by a little or a lot.
                now = match r.below(40) {
                    0 | 1 => now.saturating_sub(r.below(1_000_000)),
                    2 => now.saturating_add(r.below(1_000_000_000_000)),
                    // Weeks of virtual time at once.
                    3 => now.saturating_add(r.below(1 << 51)),
                    4..=11 => now.saturating_add(r.below(10_000_000)),
                    _ => now.saturating_add(r.below(20_000)),
                };
                if r.chance(50) {
                    b.advance_to(now);
                } else {
                    b.sync_time(now);
                }
                let _ = b.ns_until_next_event();
            }
            86..=90 => {
                for _ in 0..r.below(4) {
                    if b.interrupt_pending() {
                        vectors += u32::from(b.interrupt_ack().is_some());
                    } else if r.chance(30) {
                        // A spurious acknowledge cycle.
                        let _ = b.interrupt_ack();
                    }
                }
                if r.chance(50) {
                    // End of interrupt at both PICs and the local APIC.
                    b.io_write(0x20, 1, 0x20);
                    b.io_write(0xA0, 1, 0x20);
                    b.write_u32(apic_page.wrapping_add(0xB0), 0);
                }
            }
            91 => {
                nmis += u32::from(b.take_nmi());
            }
            92 => {
                let v = random_apic_base(&mut r);
                apic_page = (v as u32) & 0xFFFF_F000;
                b.apic_base_changed(v);
            }
            93 => {
                let n = r.below(40) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
                let _ = b.serial_input(&bytes);
            }
            94 => {
                let _ = b.exit_requested();
                resets += u32::from(b.take_reset_request().is_some());
                let _ = b.events.take();
            }
            95 => {
                // The shape of an interrupt handler's or OS's bulk I/O.
                let port = random_port(&mut r);
                let size = random_size(&mut r);
                for _ in 0..r.below(64) {
                    if r.chance(50) {
                        let v = random_value(&mut r, port);
                        b.io_write(port, size, v);
                    } else {
                        let _ = b.io_read(port, size);
                    }
                }
            }
            _ => {
                // Reprogram a device the way a driver would, then poke it.
                let steps: &[(u16, u8)] = match r.below(5) {
                    // PIC init: ICW1-ICW4.
                    0 => &[
                        (0x20, 0x11),
                        (0x21, 0x20),
                        (0x21, 0x04),
                        (0x21, 0x01),
                        (0x21, 0x00),
                    ],
                    // PIT channel 0 rate generator with a tiny divisor.
                    1 => &[(0x43, 0x34), (0x40, 0x02), (0x40, 0x00)],
                    // RTC periodic interrupt at the fastest rate.
                    2 => &[
                        (0x70, 0x0A),
                        (0x71, 0x23),
                        (0x70, 0x0B),
                        (0x71, 0x72),
                        (0x70, 0x0C),
                    ],
                    // UART loopback with every interrupt on.
                    3 => &[
                        (0x3FB, 0x80),
                        (0x3F8, 0x01),
                        (0x3F9, 0x00),
                        (0x3FB, 0x03),
                        (0x3F9, 0x0F),
                        (0x3FC, 0x1B),
                        (0x3FA, 0xC7),
                    ],
                    // i8042: enable both ports and their interrupts.
                    _ => &[
                        (0x64, 0x60),
                        (0x60, 0x47),
                        (0x64, 0xA8),
                        (0x64, 0xD4),
                        (0x60, 0xF4),
                        (0x60, 0xF4),
                    ],
                };
                for &(port, v) in steps {
                    b.io_write(port, 1, v.into());
                }
                if r.chance(50) {
                    // I/O APIC: route a random pin to a random vector.
                    let pin = r.below(26) as u32;
                    b.write_u32(0xFEC0_0000, 0x10 + 2 * pin);
                    b.write_u32(0xFEC0_0010, r.next() as u32 & 0x0001_FFFF);
                }
            }
        }
    }
    // The machine still answers: RAM below the VGA hole reads back.
    let addr = 0x500 + (r.below(0x1000) as u32 & !3);
    if addr < ram {
        b.write_u32(addr, 0xA5C3_3C5A);
        assert_eq!(b.read_u32(addr), 0xA5C3_3C5A, "RAM at {addr:#x}");
    }
    b.advance_to(now.saturating_add(1_000_000));
    let _ = b.interrupt_pending();
    if std::env::var_os("OXIDE86_FUZZ_VERBOSE").is_some() {
        eprintln!(
            "board case {seed:#x}: {vectors} vectors, {nmis} NMIs, {resets} resets, A20 {}, exit {}, {} s",
            b.memory.a20(),
            b.exit_requested(),
            now / 1_000_000_000
        );
    }
}

#[test]
fn board_survives_random_port_and_memory_traffic() {
    run_cases("board", 4000, |seed| board_case(seed, 5_000));
}

// ---------------------------------------------------------------------------
// Whole machines running generated guest code.

/// Where the Multiboot image is loaded, and where its data sits.
const LOAD_AT: u32 = 0x0010_0000;
const IDT_AT: u32 = LOAD_AT + 0x8000;
const IDTR_AT: u32 = IDT_AT + 0x800;
const BUF_AT: u32 = IDTR_AT + 0x10;
const STACK_TOP: u32 = 0x0009_0000;
/// The image's code, IDT and buffers: random stores keep out of it (they
/// would turn the generated program into random code).
const IMAGE_END: u32 = BUF_AT + 0x400;

/// A random store target that leaves the program, its IDT and its stack
/// alone.
fn guest_store_addr(r: &mut Rng, ram: u32) -> u32 {
    // String stores reach up to 0x400 bytes either side of the address.
    const MARGIN: u32 = 0x400;
    let near = |a: u32, lo: u32, hi: u32| (lo - MARGIN..hi + MARGIN).contains(&a);
    loop {
        let a = random_addr(r, ram, 64 << 10, 0xFEE0_0000);
        // With A20 off, 0x1xxxxx wraps to 0x0xxxxx: keep the stack's alias too.
        let low = a & !(1 << 20);
        if !near(a, LOAD_AT, IMAGE_END) && !near(low, STACK_TOP - 0x1000, STACK_TOP) {
            return a;
        }
    }
}

/// A port for guest code: the debug-exit port ends the run, so it is
/// written only now and then (the board fuzzer covers it fully).
fn guest_port(r: &mut Rng) -> u16 {
    match random_port(r) {
        0xF4 if r.chance(95) => 0xF5,
        p => p,
    }
}

/// Arms PIT channel 0 (rate generator, a short period), programs the
/// master PIC (vectors 0x20-0x27, IRQ0 unmasked), enables interrupts and
/// halts: the timer wakes the CPU.
fn guest_sleep(a: &mut CodeAssembler, r: &mut Rng) -> Result<(), IcedError> {
    let divisor = 2 + r.below(2000) as u32;
    for (port, v) in [
        (0x43u32, 0x34u32),
        (0x40, divisor & 0xFF),
        (0x40, divisor >> 8),
        (0x20, 0x11),
        (0x21, 0x20),
        (0x21, 0x04),
        (0x21, 0x01),
        (0x21, 0xFE),
    ] {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    a.sti()?;
    a.hlt()
}

/// One random guest operation in 32-bit protected mode (flat segments).
fn guest_op32(a: &mut CodeAssembler, r: &mut Rng, ram: u32) -> Result<(), IcedError> {
    match r.below(100) {
        0..=29 => {
            let port = guest_port(r);
            let v = random_value(r, port);
            a.mov(edx, u32::from(port))?;
            a.mov(eax, v)?;
            match random_size(r) {
                1 => a.out(dx, al)?,
                2 => a.out(dx, ax)?,
                _ => a.out(dx, eax)?,
            }
        }
        30..=49 => {
            a.mov(edx, u32::from(guest_port(r)))?;
            match random_size(r) {
                1 => a.in_(al, dx)?,
                2 => a.in_(ax, dx)?,
                _ => a.in_(eax, dx)?,
            }
        }
        50..=69 => {
            a.mov(edi, guest_store_addr(r, ram))?;
            a.mov(eax, r.next() as u32)?;
            match random_size(r) {
                1 => a.mov(byte_ptr(edi), al)?,
                2 => a.mov(word_ptr(edi), ax)?,
                _ => a.mov(dword_ptr(edi), eax)?,
            }
        }
        70..=75 => {
            a.mov(esi, random_addr(r, ram, 64 << 10, 0xFEE0_0000))?;
            match random_size(r) {
                1 => a.mov(al, byte_ptr(esi))?,
                2 => a.mov(ax, word_ptr(esi))?,
                _ => a.mov(eax, dword_ptr(esi))?,
            }
        }
        76..=79 => {
            // REP STOS or REP MOVS over whatever is there (APIC pages,
            // ROM, the VGA hole, the end of RAM), either direction.
            a.mov(edi, guest_store_addr(r, ram))?;
            a.mov(esi, random_addr(r, ram, 64 << 10, 0xFEE0_0000))?;
            a.mov(eax, r.next() as u32)?;
            a.mov(ecx, r.below(64) as u32)?;
            if r.chance(20) {
                a.std()?;
            } else {
                a.cld()?;
            }
            match (r.chance(50), random_size(r)) {
                (true, 1) => a.rep().stosb()?,
                (true, 2) => a.rep().stosw()?,
                (true, _) => a.rep().stosd()?,
                (false, 1) => a.rep().movsb()?,
                (false, 2) => a.rep().movsw()?,
                (false, _) => a.rep().movsd()?,
            }
            a.cld()?;
        }
        80..=85 => {
            // String I/O between a port and the scratch buffer.
            a.mov(edx, u32::from(guest_port(r)))?;
            a.mov(ecx, r.below(17) as u32)?;
            a.cld()?;
            if r.chance(50) {
                a.mov(esi, BUF_AT)?;
                match random_size(r) {
                    1 => a.rep().outsb()?,
                    2 => a.rep().outsw()?,
                    _ => a.rep().outsd()?,
                }
            } else {
                a.mov(edi, BUF_AT)?;
                match random_size(r) {
                    1 => a.rep().insb()?,
                    2 => a.rep().insw()?,
                    _ => a.rep().insd()?,
                }
            }
        }
        86..=87 => {
            // IA32_APIC_BASE (only the architectural bits: others #GP).
            let v = random_apic_base(r) & 0xF_FFFF_F900;
            a.mov(ecx, 0x1Bu32)?;
            a.mov(eax, v as u32)?;
            a.mov(edx, (v >> 32) as u32)?;
            a.wrmsr()?;
        }
        88..=92 => a.sti()?,
        93..=95 => a.cli()?,
        96 => guest_sleep(a, r)?,
        _ => {
            // End of interrupt everywhere.
            a.mov(al, 0x20u32)?;
            a.out(0x20u32, al)?;
            a.out(0xA0u32, al)?;
            a.mov(dword_ptr(0xFEE0_00B0u32), 0u32)?;
        }
    }
    Ok(())
}

/// A Multiboot (a.out kludge) kernel that installs an IDT whose handlers
/// return, then loops over `ops` random operations.
fn multiboot_image(r: &mut Rng, ops: usize, ram: u32) -> Vec<u8> {
    // The handlers sit in the header's padding, at fixed addresses.
    const IRET_AT: u32 = LOAD_AT + 0x20;
    const IRET_ERR_AT: u32 = LOAD_AT + 0x24;
    let mut a = CodeAssembler::new(32).expect("assembler");
    multiboot_header(&mut a, MB_ADDRESSES | MB_MEMORY, LOAD_AT, LOAD_AT + 0x40);
    // iretd; add esp, 4; iretd (exceptions with an error code); padding.
    a.db(&[0xCF, 0x90, 0x90, 0x90, 0x83, 0xC4, 0x04, 0xCF])
        .unwrap();
    a.db(&[0x90; 0x18]).unwrap();
    a.mov(esp, STACK_TOP).unwrap();
    // Fill the IDT with 32-bit interrupt gates on the entry CS.
    let mut fill = a.create_label();
    let mut store = a.create_label();
    let mut with_code = a.create_label();
    a.mov(edi, IDT_AT).unwrap();
    a.xor(ecx, ecx).unwrap();
    a.set_label(&mut fill).unwrap();
    // Exceptions 8, 10-14 and 17 push an error code.
    a.cmp(ecx, 8).unwrap();
    a.je(with_code).unwrap();
    a.cmp(ecx, 17).unwrap();
    a.je(with_code).unwrap();
    a.mov(eax, IRET_AT).unwrap();
    a.cmp(ecx, 10).unwrap();
    a.jb(store).unwrap();
    a.cmp(ecx, 14).unwrap();
    a.ja(store).unwrap();
    a.set_label(&mut with_code).unwrap();
    a.mov(eax, IRET_ERR_AT).unwrap();
    a.set_label(&mut store).unwrap();
    a.mov(word_ptr(edi), ax).unwrap();
    a.mov(edx, cs).unwrap();
    a.mov(word_ptr(edi + 2), dx).unwrap();
    a.mov(word_ptr(edi + 4), 0x8E00u32).unwrap();
    a.shr(eax, 16).unwrap();
    a.mov(word_ptr(edi + 6), ax).unwrap();
    a.add(edi, 8).unwrap();
    a.inc(ecx).unwrap();
    a.cmp(ecx, 256).unwrap();
    a.jb(fill).unwrap();
    a.mov(word_ptr(IDTR_AT), 256 * 8 - 1).unwrap();
    a.mov(dword_ptr(IDTR_AT + 2), IDT_AT).unwrap();
    a.lidt(ptr(IDTR_AT)).unwrap();
    let mut top = a.create_label();
    a.set_label(&mut top).unwrap();
    for _ in 0..ops {
        guest_op32(&mut a, r, ram).unwrap();
    }
    a.jmp(top).unwrap();
    let code = a.assemble(u64::from(LOAD_AT)).expect("assemble");
    assert!(
        code.len() < (IDT_AT - LOAD_AT) as usize,
        "program too long: {}",
        code.len()
    );
    code
}

/// One random guest operation in real mode (from a firmware ROM).
fn guest_op16(a: &mut CodeAssembler, r: &mut Rng) -> Result<(), IcedError> {
    match r.below(100) {
        0..=34 => {
            let port = guest_port(r);
            let v = random_value(r, port);
            a.mov(dx, u32::from(port))?;
            a.mov(eax, v)?;
            match random_size(r) {
                1 => a.out(dx, al)?,
                2 => a.out(dx, ax)?,
                _ => a.out(dx, eax)?,
            }
        }
        35..=59 => {
            a.mov(dx, u32::from(guest_port(r)))?;
            match random_size(r) {
                1 => a.in_(al, dx)?,
                2 => a.in_(ax, dx)?,
                _ => a.in_(eax, dx)?,
            }
        }
        60..=84 => {
            // A store anywhere in the first MiB plus the HMA, away from
            // the vector table and the stack.
            let seg = r.pick(&[0xA000u32, 0xB800, 0xC000, 0xF000, 0xFFFF, 0x1000, 0x9000]);
            let off = r.next() as u32 & 0xFFFF;
            a.mov(ax, seg)?;
            a.mov(ds, ax)?;
            a.mov(bx, off)?;
            a.mov(eax, r.next() as u32)?;
            match random_size(r) {
                1 => a.mov(byte_ptr(bx), al)?,
                2 => a.mov(word_ptr(bx), ax)?,
                _ => a.mov(dword_ptr(bx), eax)?,
            }
            if r.chance(50) {
                a.mov(eax, dword_ptr(bx))?;
            }
        }
        85..=90 => a.sti()?,
        91..=95 => a.cli()?,
        96 => guest_sleep(a, r)?,
        _ => {
            a.mov(al, 0x20u32)?;
            a.out(0x20u32, al)?;
            a.out(0xA0u32, al)?;
        }
    }
    Ok(())
}

/// A 64 KiB firmware ROM: the reset vector jumps to F000:0000, which
/// points every real-mode vector at an IRET and loops over random ops.
fn firmware_image(r: &mut Rng, ops: usize) -> Vec<u8> {
    const IRET_AT: u32 = 0xFFF8;
    let mut a = CodeAssembler::new(16).expect("assembler");
    let mut fill = a.create_label();
    a.cli().unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(sp, 0x7000u32).unwrap();
    a.mov(es, ax).unwrap();
    a.xor(di, di).unwrap();
    a.mov(cx, 256u32).unwrap();
    a.set_label(&mut fill).unwrap();
    a.mov(word_ptr(di).es(), IRET_AT).unwrap();
    a.mov(word_ptr(di + 2).es(), 0xF000u32).unwrap();
    a.add(di, 4).unwrap();
    a.loop_(fill).unwrap();
    let mut top = a.create_label();
    a.set_label(&mut top).unwrap();
    for _ in 0..ops {
        guest_op16(&mut a, r).unwrap();
    }
    a.jmp(top).unwrap();
    let code = a.assemble(0).expect("assemble");
    assert!(code.len() < 0xFFF0, "program too long: {}", code.len());
    let mut rom = vec![0xF4u8; 64 << 10];
    rom[..code.len()].copy_from_slice(&code);
    // jmp far F000:0000 at the reset vector; the IRET all vectors reach.
    rom[0xFFF0..0xFFF5].copy_from_slice(&[0xEA, 0x00, 0x00, 0x00, 0xF0]);
    rom[IRET_AT as usize] = 0xCF;
    rom
}

fn guest_case(seed: u64) {
    let mut r = Rng::new(seed);
    let ram: u32 = r.pick(&[2 << 20, 4 << 20, (3 << 20) + 0x1000]);
    let boot = if r.chance(60) {
        let ops = 20 + r.below(200) as usize;
        BootSource::Multiboot {
            kernel: multiboot_image(&mut r, ops, ram),
            cmdline: String::new(),
            modules: Vec::new(),
        }
    } else {
        let ops = 20 + r.below(200) as usize;
        BootSource::Firmware(firmware_image(&mut r, ops))
    };
    let config = PcConfig {
        ram_bytes: ram as usize,
        max_instructions: Some(20_000 + r.below(100_000)),
        no_reboot: r.chance(20),
        engine: r.pick(&[
            EngineKind::Interp,
            EngineKind::Interp,
            EngineKind::Jit,
            EngineKind::Tiered,
        ]),
        jit_threshold: 1 + r.below(20) as u32,
        // Half the cases check every translated block against the
        // interpreter (verify mode compiles blocks a little differently,
        // so the others fuzz the plain JIT).
        jit_verify: seed.is_multiple_of(2),
        ..PcConfig::default()
    };
    let mut pc = Pc::new(config, boot).expect("machine");
    // Any ending is fine: power-off, debug exit, reset, dead halt, limit;
    // but never a translated block that disagrees with the interpreter.
    let exit = pc.run();
    if let Some(m) = pc.engine.mismatch() {
        panic!("guest case {seed:#x}: {m}");
    }
    if std::env::var_os("OXIDE86_FUZZ_VERBOSE").is_some() {
        eprintln!(
            "guest case {seed:#x}: {exit:?} after {} instructions, {} resets, {} port writes to 0x80",
            pc.total_instructions(),
            pc.stats.resets,
            pc.board.post.state().writes
        );
    }
    // The machine still answers.
    let b = &mut pc.board;
    b.memory.set_a20(true);
    b.write_u32(0x7F00, 0x1234_5678);
    assert_eq!(b.read_u32(0x7F00), 0x1234_5678);
    b.write_u32(ram - 4, 0x9ABC_DEF0);
    assert_eq!(b.read_u32(ram - 4), 0x9ABC_DEF0);
    let _ = b.io_read(0x3FD, 1);
}

#[test]
fn guest_code_with_random_port_and_memory_traffic_never_panics() {
    run_cases("guest", 150, guest_case);
}
