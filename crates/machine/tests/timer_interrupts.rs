//! A guest that programs the 8259A and 8254 the way an OS does and sleeps
//! in HLT between timer interrupts: checks IRQ0 delivery through the PIC,
//! EOI, HLT wake-up with virtual time skipping, and that virtual time makes
//! the run repeatable to the instruction; and that piped input reaches a
//! guest whose COM1 driver listens although its tick never stops.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::{irq0_only_to, multiboot_header, MB_ADDRESSES, MB_MEMORY};

use iced_x86::code_asm::*;
use oxide86_machine::clock::ClockMode;
use oxide86_machine::pc::{BootSource, EngineKind, HostInput, Pc, PcConfig, PcExit};

const LOAD_AT: u32 = 0x10_0000;
const IDT: u32 = 0x20_0000;
const COUNTER: u32 = 0x20_1000;

/// Waits for `ticks` timer interrupts, then exits with 0. With `serial`,
/// COM1's received-data interrupt is enabled first and a byte received
/// (seen after any wake-up) ends the wait early: it is stored after the
/// counter.
fn guest(ticks: u32, serial: bool) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut handler = a.create_label();
    let mut wait = a.create_label();
    let mut got = a.create_label();
    multiboot_header(&mut a, MB_ADDRESSES | MB_MEMORY, LOAD_AT, LOAD_AT + 0x40);
    a.db(&[0; 0x20]).unwrap();
    a.mov(esp, 0x9_0000).unwrap();
    irq0_only_to(&mut a, IDT, LOAD_AT + 0x200); // the handler is placed at +0x200
                                                // 8254 channel 0, mode 2, 1193 counts (about 1 kHz).
    a.mov(al, 0x34).unwrap();
    a.out(0x43, al).unwrap();
    a.mov(al, 1193 & 0xFF).unwrap();
    a.out(0x40, al).unwrap();
    a.mov(al, 1193 >> 8).unwrap();
    a.out(0x40, al).unwrap();
    if serial {
        a.mov(dx, 0x3FA).unwrap(); // FCR: FIFOs on
        a.mov(al, 1).unwrap();
        a.out(dx, al).unwrap();
        a.mov(dx, 0x3F9).unwrap(); // IER: received data available
        a.out(dx, al).unwrap();
    }
    a.sti().unwrap();
    a.set_label(&mut wait).unwrap();
    a.hlt().unwrap();
    if serial {
        a.mov(dx, 0x3FD).unwrap(); // LSR
        a.in_(al, dx).unwrap();
        a.test(al, 1).unwrap();
        a.jnz(got).unwrap();
    }
    a.cmp(dword_ptr(COUNTER), ticks).unwrap();
    a.jb(wait).unwrap();
    a.set_label(&mut got).unwrap();
    if serial {
        a.mov(dx, 0x3F8).unwrap();
        a.in_(al, dx).unwrap();
        a.mov(byte_ptr(COUNTER + 4), al).unwrap();
    }
    a.cli().unwrap();
    a.mov(al, 0).unwrap();
    a.out(0xF4, al).unwrap();
    let mut code = a.assemble(u64::from(LOAD_AT)).unwrap();
    assert!(code.len() <= 0x200);
    code.resize(0x200, 0);
    let mut h = CodeAssembler::new(32).unwrap();
    h.set_label(&mut handler).unwrap();
    h.inc(dword_ptr(COUNTER)).unwrap();
    h.push(eax).unwrap();
    h.mov(al, 0x20).unwrap();
    h.out(0x20, al).unwrap(); // non-specific EOI
    h.pop(eax).unwrap();
    h.iretd().unwrap();
    code.extend(h.assemble(u64::from(LOAD_AT + 0x200)).unwrap());
    code
}

fn run(ticks: u32) -> (PcExit, u64, u32) {
    run_on(ticks, EngineKind::Interp, false).0
}

fn run_on(ticks: u32, engine: EngineKind, jit_verify: bool) -> ((PcExit, u64, u32), Pc) {
    let config = PcConfig {
        clock: ClockMode::Virtual,
        max_instructions: Some(50_000_000),
        engine,
        jit_verify,
        ..PcConfig::default()
    };
    let boot = BootSource::Multiboot {
        kernel: guest(ticks, false),
        cmdline: String::new(),
        modules: Vec::new(),
    };
    let mut pc = Pc::new(config, boot).unwrap();
    let exit = pc.run();
    let counter = pc.board.memory.read_u32(COUNTER);
    ((exit, pc.cpu.state.icount, counter), pc)
}

#[test]
fn timer_interrupts_wake_hlt_and_count() {
    let (exit, icount, counter) = run(10);
    assert_eq!(exit, PcExit::DebugExit(0));
    assert_eq!(counter, 10);
    // Ten HLT/interrupt rounds take few instructions: time skipped while idle.
    assert!(icount < 10_000, "{icount} instructions");
}

#[test]
fn virtual_time_repeats_to_the_instruction() {
    assert_eq!(run(25), run(25));
}

/// Under `--jit-verify` (interrupts, HLT, IRET and port I/O between the
/// blocks): the interpreter reproduces every block run, and the run is the
/// interpreter's to the instruction.
#[test]
fn the_timer_guest_verifies_under_the_jit() {
    let (r, pc) = run_on(25, EngineKind::Jit, true);
    assert!(
        pc.engine.mismatch().is_none(),
        "{}",
        pc.engine.mismatch().unwrap()
    );
    assert_eq!(r, run(25));
    assert!(pc.engine.stats.blocks_verified > 0, "{:?}", pc.engine.stats);
}

/// The tick (1 kHz) never leaves 100 ms free, but the guest has COM1's
/// received-data interrupt on: piped input is handed over at its first
/// idle HLT, not never.
#[test]
fn piped_input_reaches_a_listening_guest_whose_tick_never_stops() {
    let config = PcConfig {
        clock: ClockMode::Virtual,
        max_instructions: Some(50_000_000),
        ..PcConfig::default()
    };
    let boot = BootSource::Multiboot {
        kernel: guest(1_000_000, true),
        cmdline: String::new(),
        modules: Vec::new(),
    };
    let mut pc = Pc::new(config, boot).unwrap();
    pc.input = HostInput::Stream(Box::new(std::io::Cursor::new(b"x".to_vec())));
    assert_eq!(pc.run(), PcExit::DebugExit(0));
    assert_eq!(pc.board.memory.read_u8(COUNTER + 4), b'x');
    assert!(pc.board.memory.read_u32(COUNTER) <= 1);
}
