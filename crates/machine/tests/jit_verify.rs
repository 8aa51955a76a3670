//! `--jit-verify` on the whole machine: a guest runs to its exit with every
//! block run verified, and a translation error ends the run with
//! `PcExit::JitMismatch` (exit status 6) and a report naming the
//! instruction.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::{multiboot_header, MB_ADDRESSES};

use iced_x86::code_asm::*;
use oxide86_jit::translate::Miscompile;
use oxide86_machine::pc::{BootSource, EngineKind, Pc, PcConfig, PcExit};

const LOAD_AT: u32 = 0x10_0000;
const DATA: u32 = 0x20_0000;

/// A Multiboot guest: a loop of ADDs and stores, then exit 0 through the
/// debug-exit port.
fn guest() -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    let mut top = a.create_label();
    multiboot_header(&mut a, MB_ADDRESSES, LOAD_AT, LOAD_AT + 0x40);
    a.db(&[0; 0x20]).unwrap();
    a.mov(esp, 0x9_0000).unwrap();
    a.mov(ecx, 1000).unwrap();
    a.mov(esi, DATA).unwrap();
    a.xor(eax, eax).unwrap();
    a.set_label(&mut top).unwrap();
    a.add(eax, ecx).unwrap();
    a.mov(dword_ptr(esi + ecx * 4), eax).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(top).unwrap();
    a.mov(al, 0).unwrap();
    a.out(0xF4, al).unwrap();
    a.hlt().unwrap();
    a.assemble(u64::from(LOAD_AT)).unwrap()
}

fn machine() -> Pc {
    let config = PcConfig {
        engine: EngineKind::Jit,
        jit_verify: true,
        max_instructions: Some(1_000_000),
        ..PcConfig::default()
    };
    let boot = BootSource::Multiboot {
        kernel: guest(),
        cmdline: String::new(),
        modules: Vec::new(),
    };
    Pc::new(config, boot).unwrap()
}

#[test]
fn a_guest_runs_to_its_exit_with_every_block_verified() {
    let mut pc = machine();
    assert_eq!(pc.run(), PcExit::DebugExit(0));
    assert!(pc.engine.mismatch().is_none());
    let s = pc.engine.stats;
    // The loop is one block that loops inside its own code: few runs, many
    // instructions, all checked.
    assert_eq!(s.blocks_verified, s.block_runs, "{s:?}");
    assert!(s.block_insns > 3000, "{s:?}");
    // 1 + 2 + ... + 1000 stored at DATA + 4.
    assert_eq!(pc.board.memory.read_u32(DATA + 4), 500_500);
}

#[test]
fn a_translation_error_ends_the_run_with_a_report() {
    let mut pc = machine();
    pc.engine.inject_miscompile(Some(Miscompile::AddAsSub));
    let exit = pc.run();
    assert_eq!(exit, PcExit::JitMismatch);
    assert_eq!(exit.status(), 6);
    let m = pc.engine.mismatch().expect("the report");
    let text = m.to_string();
    assert_eq!(m.diffs[0].name, "EAX", "{text}");
    assert_eq!(
        m.culprit().map(|(_, t)| t.text.as_str()),
        Some("add eax,ecx"),
        "{text}"
    );
}
