//! Background translation (`Engine::background`, tiered engine): the
//! guest ends in the interpreter's state whatever the worker's timing, a
//! translation whose page is written while it is compiled never runs, and
//! flushes or drops with jobs in flight are safe.
//!
//! The worker's timing is not the test's to choose, so these tests drive
//! the dispatcher one step at a time where the order matters (a job is
//! submitted in the step that looks its block up, and results are taken
//! only at the start of a later step), and wait (bounded) for the worker
//! where they need its results.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_cpu::{Cpu, FlatRam, StepOutcome};
use oxide86_jit::{Engine, EngineKind};
use std::time::{Duration, Instant};

/// A tiered engine translating in the background at threshold 3.
fn background_engine() -> Engine {
    let mut e = Engine::new(EngineKind::Tiered);
    e.threshold = 3;
    e.background = true;
    e
}

/// Runs `n` steps (fewer if the guest halts); returns the outcome.
fn steps(e: &mut Engine, cpu: &mut Cpu, ram: &mut FlatRam, n: u64) -> StepOutcome {
    e.run(cpu, ram, n, |_, _| false).0
}

/// Waits (at most 10 s) until the worker has no job left, running one
/// step at a time so the dispatcher takes the results.
fn settle(e: &mut Engine, cpu: &mut Cpu, ram: &mut FlatRam) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while e.background_in_flight() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        if steps(e, cpu, ram, 1) != StepOutcome::Continue {
            return;
        }
    }
}

/// Runs to HLT in slices of 1000 steps, letting the worker finish what
/// it was given between slices; returns the state and RAM.
fn run_settling(mut e: Engine, code: &[u8], max: u64) -> (oxide86_cpu::CpuState, FlatRam, Engine) {
    let mut cpu = flat32();
    let mut ram = FlatRam::new(RAM);
    ram.load(CODE, code);
    let mut total = 0;
    while total < max {
        let (o, n) = e.run(&mut cpu, &mut ram, 1000, |_, _| false);
        total += n;
        if o != StepOutcome::Continue {
            break;
        }
        settle(&mut e, &mut cpu, &mut ram);
    }
    (cpu.state, ram, e)
}

/// A loop over memory and flags with a call, for the state comparison.
fn busy_loop() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut sub = a.create_label();
        let mut skip = a.create_label();
        a.mov(ecx, 5000u32)?;
        a.xor(ebx, ebx)?;
        a.mov(esi, 0x2000u32)?;
        a.set_label(&mut top)?;
        a.mov(eax, ecx)?;
        a.imul_3(eax, eax, 7)?;
        a.xor(dword_ptr(esi), eax)?;
        a.add(ebx, dword_ptr(esi))?;
        a.test(ecx, 3u32)?;
        a.jnz(skip)?;
        a.call(sub)?;
        a.set_label(&mut skip)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()?;
        a.set_label(&mut sub)?;
        a.rol(ebx, 3u32)?;
        a.adc(edx, ebx)?;
        a.ret()
    })
}

/// The guest ends in the interpreter's state, and blocks compiled by the
/// worker really ran.
#[test]
fn same_state_as_the_interpreter_with_translated_code_run() {
    let code = busy_loop();
    let (a, ra, _) = run(EngineKind::Interp, &code, 1_000_000, 1000, |_, _| {});
    let (b, rb, e) = run_settling(background_engine(), &code, 1_000_000);
    assert_eq!(architectural(&a), architectural(&b));
    assert!(ra.bytes == rb.bytes, "RAM differs");
    assert!(a.halted && b.halted);
    assert!(e.stats.background_jobs > 0, "{:?}", e.stats);
    assert!(e.stats.block_insns > 10_000, "{:?}", e.stats);
    // Every job compiled (a result may still be on its way at the HLT).
    assert_eq!(
        e.stats.blocks_translated + e.background_in_flight() as u64,
        e.stats.background_jobs
    );
    assert!(e.stats.background_ns > 0, "{:?}", e.stats);
}

/// Without waiting for the worker (whatever it has finished when), the
/// state is the interpreter's: the shared programs under background.
#[test]
fn same_state_whatever_the_timing() {
    let code = busy_loop();
    for slice in [1, 7, 1000] {
        let (a, ra, _) = run(EngineKind::Interp, &code, 1_000_000, slice, |_, _| {});
        let (b, rb, _) = run_configured(
            EngineKind::Tiered,
            &code,
            1_000_000,
            slice,
            |_, _| {},
            |e| e.background = true,
        );
        assert_eq!(architectural(&a), architectural(&b), "slice {slice}");
        assert!(ra.bytes == rb.bytes, "RAM differs, slice {slice}");
    }
}

/// The routine at 0x3000 (`mov eax, imm32 ; ret`) called in a loop of
/// `n` iterations that sums EAX into EBX.
fn calling_loop(n: u32) -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        a.mov(byte_ptr(0x3000u64), 0xB8u32)?;
        a.mov(dword_ptr(0x3001u64), 1u32)?;
        a.mov(byte_ptr(0x3005u64), 0xC3u32)?;
        a.mov(ecx, n)?;
        a.xor(ebx, ebx)?;
        a.set_label(&mut top)?;
        a.call(0x3000u64)?;
        a.add(ebx, eax)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    })
}

/// Steps until the step starting at `eip` hands a job to the worker.
fn step_until_submitted_at(e: &mut Engine, cpu: &mut Cpu, ram: &mut FlatRam, eip: u32) {
    for _ in 0..100_000 {
        let (at, jobs) = (cpu.state.eip, e.stats.background_jobs);
        assert_eq!(steps(e, cpu, ram, 1), StepOutcome::Continue);
        if at == eip && e.stats.background_jobs > jobs {
            return;
        }
    }
    panic!("no job submitted at {eip:#x}: {:?}", e.stats);
}

/// A write to the routine's page while its translation is in flight: the
/// result is discarded, the new code runs, and the routine is translated
/// again (from the new bytes) later.
#[test]
fn a_page_written_while_compiling_discards_the_result() {
    const N: u32 = 20_000;
    let code = calling_loop(N);
    let mut e = background_engine();
    let mut cpu = flat32();
    let mut ram = FlatRam::new(RAM);
    ram.load(CODE, &code);
    // The step that submits the routine's job ends the `run` call, and
    // results are taken only at the start of a step: it is in flight.
    step_until_submitted_at(&mut e, &mut cpu, &mut ram, 0x3000);
    assert!(e.background_in_flight() > 0);
    // That step ran `mov eax, 1` in the interpreter; a "device" now
    // patches the immediate to 2 and tells the decode cache.
    assert_eq!(cpu.state.eip, 0x3005);
    let done = N - cpu.state.gpr[1] + 1; // calls made, this one included
    ram.bytes[0x3001] = 2;
    cpu.icache.invalidate(0x3001, 1);
    // Let the worker finish (its result is on the way or taken later)...
    std::thread::sleep(Duration::from_millis(20));
    // ...then run on, settling between slices so translations install.
    loop {
        let (o, _) = e.run(&mut cpu, &mut ram, 1000, |_, _| false);
        if o != StepOutcome::Continue {
            break;
        }
        settle(&mut e, &mut cpu, &mut ram);
    }
    assert!(cpu.state.halted);
    assert_eq!(cpu.state.gpr[3], done + 2 * (N - done));
    assert_eq!(e.stats.discarded, 1, "{:?}", e.stats);
    // The routine was requested again and ran translated: more jobs than
    // the loop's three keys, and blocks ran.
    assert!(e.stats.background_jobs >= 4, "{:?}", e.stats);
    assert!(e.stats.block_runs > 1000, "{:?}", e.stats);
}

/// Flushes with jobs in flight (the caller's and the generation limit's):
/// nothing of a flushed generation runs, and the state is the
/// interpreter's.
#[test]
fn flushing_with_jobs_in_flight_is_safe() {
    let code = busy_loop();
    let (a, ra, _) = run(EngineKind::Interp, &code, 1_000_000, 1000, |_, _| {});
    let mut e = background_engine();
    let mut cpu = flat32();
    let mut ram = FlatRam::new(RAM);
    ram.load(CODE, &code);
    // A flush right after each of the first few submissions.
    for _ in 0..3 {
        let jobs = e.stats.background_jobs;
        while e.stats.background_jobs == jobs {
            assert_eq!(steps(&mut e, &mut cpu, &mut ram, 1), StepOutcome::Continue);
        }
        assert!(e.background_in_flight() > 0);
        e.flush();
    }
    // Then a generation of two blocks: the limit flushes again and again.
    e.generation_limit = 2;
    loop {
        let (o, _) = e.run(&mut cpu, &mut ram, 50, |_, _| false);
        if o != StepOutcome::Continue {
            break;
        }
        if e.stats.flushes.is_multiple_of(3) {
            settle(&mut e, &mut cpu, &mut ram);
        }
    }
    assert_eq!(architectural(&a), architectural(&cpu.state));
    assert!(ra.bytes == ram.bytes, "RAM differs");
    assert!(e.stats.flushes >= 3, "{:?}", e.stats);
}

/// Dropping the engine with jobs in flight joins the worker cleanly.
#[test]
fn dropping_with_jobs_in_flight() {
    let code = busy_loop();
    for _ in 0..20 {
        let mut e = background_engine();
        let mut cpu = flat32();
        let mut ram = FlatRam::new(RAM);
        ram.load(CODE, &code);
        while e.background_in_flight() == 0 {
            assert_eq!(steps(&mut e, &mut cpu, &mut ram, 1), StepOutcome::Continue);
        }
        drop(e);
    }
}

/// Verify mode and the `jit` engine translate synchronously even with
/// `background` set.
#[test]
fn verify_mode_and_jit_stay_synchronous() {
    let code = busy_loop();
    let (_, _, e) = run_configured(
        EngineKind::Jit,
        &code,
        100_000,
        1000,
        |_, _| {},
        |e| {
            e.background = true;
        },
    );
    assert_eq!(e.stats.background_jobs, 0);
    assert!(e.stats.blocks_translated > 0);
    let (_, _, e) = run_configured(
        EngineKind::Tiered,
        &code,
        100_000,
        1000,
        |_, _| {},
        |e| {
            e.background = true;
            e.set_verify(true);
        },
    );
    assert_eq!(e.stats.background_jobs, 0);
    assert!(e.stats.blocks_verified > 0);
    assert!(e.mismatch().is_none());
}
