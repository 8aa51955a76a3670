//! Reads with paging off go straight to RAM inside the direct window
//! (`emit_mem.rs`, `Emitter::direct_read`; `translate::Bases::direct`):
//! they must read what the interpreter reads at every address, including
//! reads that run past the end of RAM or start beyond it, and a change
//! of the memory map (an A20-style address mask) must reach blocks
//! compiled under the old one.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_cpu::{Cpu, FlatRam};
use oxide86_jit::{Engine, EngineKind};

/// Reads of 1, 2 and 4 bytes at pseudo-random addresses below 512 KiB
/// (RAM is 256 KiB: half of them lie beyond it, some straddle its end),
/// folded into EDX; the data they read was filled in by `fill`.
fn scattered_reads() -> Vec<u8> {
    lcg_loop(3000, |a| {
        a.mov(edi, ebx)?;
        a.shr(edi, 13)?;
        a.movzx(eax, byte_ptr(edi))?;
        a.add(edx, eax)?;
        a.movzx(eax, word_ptr(edi + 0x1F))?;
        a.xor(edx, eax)?;
        a.add(edx, dword_ptr(edi + 0x3FFFD))?;
        a.rol(edx, 3)
    })
}

/// Fills RAM above the code with a pattern.
fn fill(_: &mut Cpu, ram: &mut FlatRam) {
    for (i, b) in ram.bytes.iter_mut().enumerate().skip(0x8000) {
        *b = (i as u32).wrapping_mul(0x9E37_79B9).to_le_bytes()[3];
    }
}

#[test]
fn reads_inside_and_beyond_ram_match_interp() {
    let code = scattered_reads();
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, &code, 200_000, fill);
        assert!(e.stats.block_insns > 10_000, "{:?}", e.stats);
    }
    same_at_budgets(
        &[EngineKind::Jit, EngineKind::Tiered],
        &code,
        odd_budgets(&[1, 13, 100], &[5001, 7777]),
        fill,
    );
}

/// Reads the dword at 0x30100 into the sum at 0x8000, forever.
fn read_loop() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.mov(eax, dword_ptr(0x30100))?;
        a.add(dword_ptr(0x8000), eax)?;
        a.jmp(top)
    })
}

/// Runs [`read_loop`] for 20,000 steps, then clears address bit 17 (as a
/// closed A20 gate clears bit 20: 0x30100 then reads 0x10100) the way
/// the CPU takes a memory-map change (TLB and decode cache flushed), and
/// runs 20,000 more. Returns the sum.
fn sum_across_mask_change(engine: Engine) -> u32 {
    let mut cpu = flat32();
    let mut ram = FlatRam::new(RAM);
    ram.load(CODE, &read_loop());
    ram.load(0x30100, &3u32.to_le_bytes());
    ram.load(0x10100, &5u32.to_le_bytes());
    let mut engine = engine;
    for part in 0..2 {
        if part == 1 {
            ram.mask = !(1 << 17);
            cpu.tlb.flush(false);
            cpu.icache.flush();
        }
        let mut steps = 0;
        while steps < 20_000 {
            let (_, n) = engine.run(&mut cpu, &mut ram, 1000, |_, _| false);
            steps += n;
        }
    }
    assert_eq!(cpu.state.icount, 40_000);
    u32::from_le_bytes(ram.bytes[0x8000..0x8004].try_into().unwrap())
}

#[test]
fn a_memory_map_change_reaches_compiled_reads() {
    // Three instructions a trip: 6,667 ADDs of 3 in the first 20,000
    // steps, 6,666 of 5 in the next.
    let want = sum_across_mask_change(Engine::new(EngineKind::Interp));
    assert_eq!(want, 6667 * 3 + 6666 * 5);
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let mut engine = Engine::new(kind);
        engine.threshold = 3;
        let got = sum_across_mask_change(engine);
        assert_eq!(got, want, "{kind:?}");
    }
}
