//! Code the dispatcher hands to the interpreter after making the checks
//! `Cpu::step` makes before an instruction starts its first instruction
//! as a quiet run does (`Cpu::run_to_transfer_checked`): the results,
//! the stops at any budget and EFLAGS.RF must be the interpreter's.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_cpu::state::eflags;
use oxide86_cpu::{Cpu, FlatRam};
use oxide86_jit::{Engine, EngineKind};

/// Calls of eight small routines in turn, each a few instructions that
/// end in a RET, so that every dispatcher entry begins a short run.
fn many_entries() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut routines: Vec<CodeLabel> = (0..8).map(|_| a.create_label()).collect();
        let mut done = a.create_label();
        a.mov(ecx, 300u32)?;
        a.mov(ebx, 0x9E37_79B9u32)?;
        a.set_label(&mut top)?;
        for r in &routines {
            a.call(*r)?;
        }
        a.dec(ecx)?;
        a.jnz(top)?;
        a.jmp(done)?;
        for (i, r) in routines.iter_mut().enumerate() {
            a.set_label(r)?;
            a.imul_3(ebx, ebx, 0x0100_0193)?;
            a.add(ebx, i as u32)?;
            a.xor(dword_ptr(0x10000 + 4 * i as u32), ebx)?;
            a.ret()?;
        }
        a.set_label(&mut done)?;
        a.hlt()
    })
}

/// Runs under tiered with a threshold nothing reaches: every instruction
/// is interpreted, each run entered by the dispatcher.
fn interpreted_only(
    code: &[u8],
    max: u64,
    slice: u64,
    setup: impl Fn(&mut Cpu, &mut FlatRam),
) -> oxide86_cpu::CpuState {
    let never = |e: &mut Engine| e.threshold = u32::MAX;
    let (state, _, e) = run_configured(EngineKind::Tiered, code, max, slice, setup, never);
    assert_eq!(e.stats.block_insns, 0, "{:?}", e.stats);
    state
}

#[test]
fn dispatcher_entered_runs_stop_where_the_interpreter_does() {
    let code = many_entries();
    for (slice, max) in odd_budgets(&[1, 2, 7, 64, 1000], &[1, 5, 999, 4321, 20_000]) {
        let (a, _, _) = run(EngineKind::Interp, &code, max, slice, |_, _| {});
        let b = interpreted_only(&code, max, slice, |_, _| {});
        assert_eq!(
            architectural(&a),
            architectural(&b),
            "slice {slice} max {max}"
        );
    }
}

/// A GDT at 0x3_0000 with flat ring-0 code (selector 8) and data (16).
fn flat_gdt(cpu: &mut Cpu, ram: &mut FlatRam) {
    const GDT: u32 = 0x3_0000;
    let code: u64 = 0x00CF_9A00_0000_FFFF;
    let data: u64 = 0x00CF_9200_0000_FFFF;
    ram.load(GDT + 8, &code.to_le_bytes());
    ram.load(GDT + 16, &data.to_le_bytes());
    cpu.state.gdtr.base = GDT;
    cpu.state.gdtr.limit = 23;
}

/// IRET returns with EFLAGS.RF set in the image (SDM Vol. 3A, 17.3.1.1:
/// the instruction it returns to ignores instruction breakpoints, and RF
/// is cleared when it completes). The instruction after it starts at the
/// dispatcher; the run is stopped at every budget, so the state right
/// after that instruction is compared too.
#[test]
fn the_first_instruction_after_the_dispatcher_clears_rf() {
    // `top` is CODE + 5, after the 5-byte MOV ECX.
    let code = assemble(|a| {
        let mut top = a.create_label();
        let mut done = a.create_label();
        a.mov(ecx, 4u32)?;
        a.set_label(&mut top)?;
        a.mov(eax, 5u32)?;
        a.add(eax, 7)?;
        a.dec(ecx)?;
        a.jz(done)?;
        a.pushfd()?;
        a.or(dword_ptr(esp), eflags::RF)?;
        a.push(8u32)?;
        a.push(CODE + 5)?;
        a.iretd()?;
        a.set_label(&mut done)?;
        a.hlt()
    });
    for max in 1..50 {
        let (a, _, _) = run(EngineKind::Interp, &code, max, 1000, flat_gdt);
        let b = interpreted_only(&code, max, 1000, flat_gdt);
        assert_eq!(architectural(&a), architectural(&b), "max {max}");
        for kind in [EngineKind::Jit, EngineKind::Tiered] {
            let (b, _, _) = run(kind, &code, max, 1000, flat_gdt);
            assert_eq!(architectural(&a), architectural(&b), "{kind:?} max {max}");
        }
    }
}
