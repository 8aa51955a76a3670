//! A guest that reads the local APIC timer's current count twice, 2,002
//! instructions apart, with no port access between: the second read must
//! see exactly that much time gone (one APIC bus tick per instruction at
//! divide-by-1 under the virtual clock), under every engine. The devices
//! catch up with the instruction at each MMIO access, not only at the run
//! loop's slice boundaries.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::{multiboot_header, run_to_debug_exit, MB_ADDRESSES, MB_MEMORY};

use iced_x86::code_asm::*;
use oxide86_machine::pc::EngineKind;

const LOAD_AT: u32 = 0x10_0000;
const APIC: u32 = 0xFEE0_0000;
const RESULT: u32 = 0x20_0000;

fn guest() -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut spin = a.create_label();
    multiboot_header(&mut a, MB_ADDRESSES | MB_MEMORY, LOAD_AT, LOAD_AT + 0x40);
    a.db(&[0; 0x20]).unwrap();
    // Software-enable the APIC; the timer one-shot and masked, divide by
    // 1, counting down from the top.
    a.mov(dword_ptr(APIC + 0xF0), 0x1FF).unwrap();
    a.mov(dword_ptr(APIC + 0x320), 0x1_0040).unwrap();
    a.mov(dword_ptr(APIC + 0x3E0), 0xB).unwrap();
    a.mov(dword_ptr(APIC + 0x380), 0xFFFF_FFFFu32).unwrap();
    a.mov(eax, dword_ptr(APIC + 0x390)).unwrap();
    a.mov(ecx, 1000).unwrap();
    a.set_label(&mut spin).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(spin).unwrap();
    a.mov(ebx, dword_ptr(APIC + 0x390)).unwrap();
    a.mov(dword_ptr(RESULT), eax).unwrap();
    a.mov(dword_ptr(RESULT + 4), ebx).unwrap();
    a.mov(al, 0).unwrap();
    a.out(0xF4, al).unwrap();
    a.assemble(u64::from(LOAD_AT)).unwrap()
}

fn counts(engine: EngineKind) -> (u32, u32) {
    let pc = run_to_debug_exit(guest(), engine, 1_000_000);
    let m = &pc.board.memory;
    (m.read_u32(RESULT), m.read_u32(RESULT + 4))
}

#[test]
fn the_apic_timer_count_moves_between_two_reads_under_every_engine() {
    for engine in [EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered] {
        let (first, second) = counts(engine);
        // The first read, MOV ECX and 1,000 DEC/JNZ pairs retire between them.
        assert_eq!(
            first.wrapping_sub(second),
            2002,
            "{engine:?}: {first:#x} then {second:#x}"
        );
    }
}
