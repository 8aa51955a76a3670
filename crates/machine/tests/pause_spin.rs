//! A guest that waits one millisecond the way a kernel's `udelay` does
//! (RDTSC, compare, PAUSE, loop): under the virtual clock each PAUSE lets
//! `PAUSE_NS` of machine time pass, so the wait takes about a thousand
//! loop rounds instead of a million instructions, and it ends on the same
//! instruction under every engine.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::{multiboot_header, run_to_debug_exit, MB_ADDRESSES, MB_MEMORY};

use iced_x86::code_asm::*;
use oxide86_machine::pc::{EngineKind, PAUSE_NS};

const LOAD_AT: u32 = 0x10_0000;
const RESULT: u32 = 0x20_0000;
const WAIT_NS: u32 = 1_000_000;

fn guest() -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut spin = a.create_label();
    multiboot_header(&mut a, MB_ADDRESSES | MB_MEMORY, LOAD_AT, LOAD_AT + 0x40);
    a.db(&[0; 0x20]).unwrap();
    a.xor(esi, esi).unwrap();
    a.rdtsc().unwrap();
    a.mov(ebx, eax).unwrap();
    a.set_label(&mut spin).unwrap();
    a.inc(esi).unwrap();
    a.pause().unwrap();
    a.rdtsc().unwrap();
    a.sub(eax, ebx).unwrap();
    a.cmp(eax, WAIT_NS).unwrap();
    a.jb(spin).unwrap();
    a.mov(dword_ptr(RESULT), esi).unwrap();
    a.mov(al, 0).unwrap();
    a.out(0xF4, al).unwrap();
    a.assemble(u64::from(LOAD_AT)).unwrap()
}

/// The loop rounds and the instructions retired.
fn run(engine: EngineKind) -> (u32, u64) {
    let pc = run_to_debug_exit(guest(), engine, 50_000_000);
    (pc.board.memory.read_u32(RESULT), pc.cpu.state.icount)
}

#[test]
fn a_pause_loop_waits_in_few_instructions_and_ends_on_the_same_one_under_every_engine() {
    let (rounds, icount) = run(EngineKind::Interp);
    // Each round takes its six instructions and PAUSE_NS, or less when a
    // device event (the PIT's) cuts a PAUSE short.
    let per_round = PAUSE_NS as u32 + 6;
    assert!(
        (WAIT_NS / per_round..WAIT_NS / per_round + 10).contains(&rounds),
        "{rounds} rounds"
    );
    assert!(icount < 10_000, "{icount} instructions");
    for engine in [EngineKind::Jit, EngineKind::Tiered] {
        assert_eq!(run(engine), (rounds, icount), "{engine:?}");
    }
}

/// A debugger's single step stops after a PAUSE as after any instruction.
#[test]
fn a_single_step_over_pause_stops_after_it() {
    use oxide86_machine::embed::Machine;
    use oxide86_machine::stop::Stop;
    // The reset vector: cli ; pause ; inc ax ; hlt
    let mut rom = vec![0xFFu8; 0x10000];
    rom[0xFFF0..0xFFF5].copy_from_slice(&[0xFA, 0xF3, 0x90, 0x40, 0xF4]);
    let mut m = Machine::builder()
        .memory_mib(1)
        .firmware(rom)
        .build()
        .unwrap();
    assert_eq!(m.step(), Stop::Stepped);
    assert_eq!(m.step(), Stop::Stepped);
    assert_eq!(m.cpu.state.eip, 0xFFF3);
    assert_eq!(m.cpu.state.gpr[0] & 0xFFFF, 0);
}
