//! Generated code for other hosts (compile only, feature `cross`): a
//! corpus of guest blocks (inline ALU and memory code, helper calls,
//! string instructions, calls and returns, chained exits) translated for
//! x86-64, aarch64 and riscv64. Run by CI with
//! `cargo test -p oxide86-jit --features cross --release`.
#![cfg(feature = "cross")]

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use std::collections::BTreeSet;

use common::*;
use iced_x86::code_asm::*;
use oxide86_cpu::FlatRam;
use oxide86_jit::cross::compile_for;
use oxide86_jit::translate::{scan_region, Mode, Region, MAX_REGION_BLOCKS};

fn corpus_program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut skip = a.create_label();
        let mut func = a.create_label();
        a.mov(ecx, 50u32)?;
        a.mov(esi, 0x10000u32)?;
        a.mov(ebx, 1u32)?;
        a.set_label(&mut top)?;
        a.add(eax, ebx)?;
        a.imul_3(ebx, ebx, 3)?;
        a.xor(edx, eax)?;
        a.shl(edx, 1)?;
        a.mov(dword_ptr(esi + ecx * 4), eax)?;
        a.mov(edi, dword_ptr(esi + ecx * 4 - 4))?;
        a.add(eax, edi)?;
        a.and(eax, 0xFFFF)?;
        a.cmp(eax, 0x8000)?;
        a.jb(skip)?;
        a.sub(eax, 0x4000)?;
        a.set_label(&mut skip)?;
        a.call(func)?;
        a.movzx(edi, al)?;
        a.movsx(ebp, ax)?;
        a.lea(edi, dword_ptr(edi + ebp * 2 + 7))?;
        a.setl(dl)?;
        a.cmovg(edi, ebx)?;
        a.inc(byte_ptr(esi))?;
        a.dec(word_ptr(esi + 2))?;
        a.neg(bp)?;
        a.not(ah)?;
        a.sub(ax, word_ptr(esi + 4))?;
        a.adc(edx, 3)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.mov(edi, 0x20000u32)?;
        a.mov(ecx, 64u32)?;
        a.rep().stosd()?;
        a.hlt()?;
        a.set_label(&mut func)?;
        a.push(ebx)?;
        a.push(0x1234)?;
        a.pop(edx)?;
        a.pop(ebx)?;
        a.ret()
    })
}

/// A block from every instruction the program runs (as the translator
/// would scan it if execution entered there).
fn corpus() -> Vec<(Region, Mode)> {
    let mut cpu = flat32();
    let mut ram = FlatRam::new(RAM);
    ram.load(CODE, &corpus_program());
    let mut starts = BTreeSet::from([CODE]);
    for _ in 0..5_000 {
        if cpu.step(&mut ram) != oxide86_cpu::StepOutcome::Continue {
            break;
        }
        starts.insert(cpu.state.eip);
    }
    starts
        .into_iter()
        .filter_map(|eip| {
            cpu.state.eip = eip;
            let mode = Mode::of(&cpu);
            scan_region(&mut cpu, &mut ram, &mode, MAX_REGION_BLOCKS, &|_, _| true)
                .map(|s| (s, mode))
        })
        .collect()
}

#[test]
fn guest_blocks_compile_for_x86_64_aarch64_and_riscv64() {
    let blocks = corpus();
    assert!(blocks.len() >= 30, "corpus of {} blocks", blocks.len());
    for triple in [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "riscv64gc-unknown-linux-gnu",
    ] {
        let mut total = 0;
        for (block, mode) in &blocks {
            let n = compile_for(triple, block, *mode)
                .unwrap_or_else(|e| panic!("block at {:#x}: {}", block.entry().start_eip, e.0));
            assert!(n > 0);
            total += n;
        }
        println!("{triple}: {} blocks, {total} bytes", blocks.len());
    }
}
