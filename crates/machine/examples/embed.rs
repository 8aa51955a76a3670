//! Embedding oxide86: build a PC around a tiny firmware ROM, stop at a
//! breakpoint, single-step, read and change registers and memory, catch a
//! write with a watchpoint, then run to the guest's exit.
//!
//! Run with `cargo run --release -p oxide86-machine --example embed`.

use iced_x86::code_asm::*;
use oxide86_cpu::host_watch::WatchKind;
use oxide86_machine::embed::{Machine, Until};
use oxide86_machine::pc::PcExit;
use oxide86_machine::stop::Stop;

/// Where the program sits in the 64 KiB ROM (F000:FF00 after reset, linear
/// 0xFFFF_FF00 while CS keeps its reset base).
const CODE: u32 = 0xFF00;
/// Reset CS base.
const CS_BASE: u32 = 0xFFFF_0000;

/// The guest: sums 10 + 9 + ... + 1 into AX, storing each partial sum at
/// 0000:0500, then writes the low byte of the sum to the debug-exit port.
/// Returns the ROM and the offset of the loop's first instruction.
fn rom() -> Result<(Vec<u8>, u32), IcedError> {
    let mut a = CodeAssembler::new(16)?;
    let mut top = a.create_label();
    a.cli()?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    a.mov(cx, 10)?;
    a.set_label(&mut top)?;
    a.add(ax, cx)?;
    a.mov(word_ptr(0x500), ax)?;
    a.dec(cx)?;
    a.jnz(top)?;
    a.out(0xF4, al)?;
    a.hlt()?;
    let result = a.assemble_options(
        u64::from(CODE),
        iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
    )?;
    let code = result.inner.code_buffer.clone();
    let top_at = result.label_ip(&top)? as u32;
    let mut rom = vec![0xF4u8; 0x10000];
    rom[CODE as usize..CODE as usize + code.len()].copy_from_slice(&code);
    // Reset vector at FFF0: jmp near CODE.
    let rel = (CODE as i32 - 0xFFF3) as i16;
    rom[0xFFF0] = 0xE9;
    rom[0xFFF1..0xFFF3].copy_from_slice(&rel.to_le_bytes());
    Ok((rom, top_at))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (rom, top) = rom()?;
    let mut m = Machine::builder().memory_mib(1).firmware(rom).build()?;

    // Run to the loop's first instruction.
    let stop = m.run_until(Until::Address(CS_BASE + top));
    println!("stopped: {stop:?}, EIP={:#06x}", m.cpu.state.eip);
    assert_eq!(
        stop,
        Stop::Breakpoint {
            linear: CS_BASE + top
        }
    );

    // One instruction: ADD AX, CX with AX=0, CX=10.
    assert_eq!(m.step(), Stop::Stepped);
    println!("after one step: AX={:#06x}", m.cpu.state.gpr[0] & 0xFFFF);
    assert_eq!(m.cpu.state.gpr[0] & 0xFFFF, 10);

    // Change a register: with CX=3 the loop's DEC leaves 2, so it adds
    // only 2 and 1 more.
    m.cpu.state.gpr[1] = 3;

    // Catch the next store of the partial sum.
    m.add_watchpoint(0x500, 2, WatchKind::Write);
    let stop = m.run_until(Until::Stop);
    let mut word = [0u8; 2];
    m.read_linear(0x500, &mut word);
    println!("watchpoint: {stop:?}, [0x500]={}", u16::from_le_bytes(word));
    assert!(matches!(stop, Stop::Watchpoint(hit) if hit.write && hit.linear == 0x500));
    assert_eq!(u16::from_le_bytes(word), 10);
    m.remove_watchpoint(0x500, 2, WatchKind::Write);

    // Run to the end: 10 + 2 + 1 = 13, written to port 0xF4.
    let stop = m.run_until(Until::Stop);
    println!(
        "end: {stop:?} after {} instructions",
        m.total_instructions()
    );
    assert_eq!(stop, Stop::Exit(PcExit::DebugExit(13)));
    Ok(())
}
