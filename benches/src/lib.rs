//! Guest workloads for speed figures, and the code that runs them.
//!
//! [`integer_mix`] is a CPU-bound flat 32-bit program (integer arithmetic,
//! memory loads and stores, branches, calls and returns, string moves and
//! stores) that loops a given number of times and halts. [`run_interp`]
//! executes it in the interpreter and reports guest MIPS and the
//! decoded-instruction cache's hit rate.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use iced_x86::code_asm::*;
use oxide86_cpu::{FlatRam, StepOutcome};
use oxide86_testsuite::setup;

/// Where the workload's code is loaded (and execution starts).
pub const CODE: u32 = 0x1000;
/// Scratch array the inner loop reads and writes.
const ARRAY: u32 = 0x1_0000;
/// Destination of the string moves and stores.
const STRINGS: u32 = 0x2_0000;
/// Top of the stack.
const STACK: u32 = 0x8000;
/// Guest RAM size.
pub const RAM_SIZE: usize = 0x4_0000;
/// Inner-loop trips per outer iteration.
const INNER: u32 = 100;

/// Guest instructions retired per outer iteration of [`integer_mix`] at
/// least (the data-dependent SUB adds up to one per inner trip).
pub const INSNS_PER_ITERATION: u64 = 10 + 16 * INNER as u64;

/// Assembles the integer-mix workload: `iterations` outer loops, then HLT.
pub fn integer_mix(iterations: u32) -> Result<Vec<u8>> {
    let mut a = CodeAssembler::new(32)?;
    let mut outer = a.create_label();
    let mut inner = a.create_label();
    let mut skip = a.create_label();
    let mut func = a.create_label();
    a.mov(ebp, iterations)?;
    a.set_label(&mut outer)?;
    // 10 instructions per outer trip besides the inner loop.
    a.mov(ecx, INNER)?;
    a.mov(esi, ARRAY)?;
    a.mov(ebx, 1)?;
    a.set_label(&mut inner)?;
    // 16 instructions per inner trip, 17 when the SUB runs.
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
    a.dec(ecx)?;
    a.jnz(inner)?;
    a.mov(edi, STRINGS)?;
    a.mov(ecx, 64)?;
    a.rep().movsd()?;
    a.mov(ecx, 32)?;
    a.rep().stosd()?;
    a.dec(ebp)?;
    a.jnz(outer)?;
    a.hlt()?;
    // 3 instructions per call besides the CALL itself.
    a.set_label(&mut func)?;
    a.push(ebx)?;
    a.pop(ebx)?;
    a.ret()?;
    Ok(a.assemble(u64::from(CODE))?)
}

/// What one interpreter run measured.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// Guest instructions retired.
    pub instructions: u64,
    /// Host wall-clock time.
    pub elapsed: Duration,
    /// Decoded-instruction cache hits / lookups.
    pub hit_rate: f64,
}

impl Figure {
    /// Millions of guest instructions per host second.
    pub fn mips(&self) -> f64 {
        self.instructions as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Runs [`integer_mix`] with `iterations` in the interpreter to its HLT.
pub fn run_interp(iterations: u32) -> Result<Figure> {
    let code = integer_mix(iterations)?;
    let mut ram = FlatRam::new(RAM_SIZE);
    ram.load(CODE, &code);
    let mut cpu = setup::flat32_cpu(CODE);
    cpu.state.gpr[4] = STACK;
    let start = Instant::now();
    let outcome = cpu.run(&mut ram, u64::MAX);
    let elapsed = start.elapsed();
    ensure!(
        outcome == StepOutcome::Halted,
        "workload ended with {outcome:?}: {:?}",
        cpu.shutdown_reason
    );
    let s = cpu.icache.stats;
    let lookups = (s.hits + s.misses).max(1);
    Ok(Figure {
        instructions: cpu.state.icount,
        elapsed,
        hit_rate: s.hits as f64 / lookups as f64,
    })
}

/// Guest instructions retired per iteration of [`alu_branch`].
pub const ALU_INSNS_PER_ITERATION: u64 = 16;

/// Assembles an ALU-and-branch kernel (no multiply, shift or string
/// instructions: everything the JIT lowers inline): `iterations` trips
/// of a loop with a data-dependent branch, a call and a stack round trip.
pub fn alu_branch(iterations: u32) -> Result<Vec<u8>> {
    let mut a = CodeAssembler::new(32)?;
    let mut top = a.create_label();
    let mut skip = a.create_label();
    let mut func = a.create_label();
    a.mov(ecx, iterations)?;
    a.mov(esi, ARRAY)?;
    a.set_label(&mut top)?;
    a.add(eax, ecx)?;
    a.xor(edx, eax)?;
    a.lea(ebx, dword_ptr(eax + edx * 2 + 3))?;
    a.mov(dword_ptr(esi + 8), ebx)?;
    a.sub(ebx, dword_ptr(esi + 4))?;
    a.and(ebx, 0xFF)?;
    a.cmp(ebx, 0x80)?;
    a.jb(skip)?;
    a.inc(edi)?;
    a.set_label(&mut skip)?;
    a.call(func)?;
    a.dec(ecx)?;
    a.jnz(top)?;
    a.hlt()?;
    a.set_label(&mut func)?;
    a.push(ebx)?;
    a.pop(ebp)?;
    a.ret()?;
    Ok(a.assemble(u64::from(CODE))?)
}

/// Runs a flat 32-bit workload to its HLT under `engine` (in slices of
/// 1000 steps, as the machine's run loop does: the interpreter through
/// `Cpu::run_until`, whose quiet runs and blocks skip the per-instruction
/// checks, the others through the JIT's `Engine::run`). Translation time
/// is included in the wall time.
pub fn run_engine(
    code: &[u8],
    engine: oxide86_jit::EngineKind,
) -> Result<(Figure, oxide86_jit::JitStats)> {
    let mut ram = FlatRam::new(RAM_SIZE);
    ram.load(CODE, code);
    let mut cpu = setup::flat32_cpu(CODE);
    cpu.state.gpr[4] = STACK;
    let mut e = oxide86_jit::Engine::new(engine);
    if let Some(n) = std::env::var("OXIDE86_BENCH_REGION_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        e.region_blocks = n;
    }
    let start = Instant::now();
    let outcome = loop {
        let (o, _) = if engine == oxide86_jit::EngineKind::Interp {
            cpu.run_until(&mut ram, 1000, |_| false)
        } else {
            e.run(&mut cpu, &mut ram, 1000, |_, _| false)
        };
        if o != StepOutcome::Continue {
            break o;
        }
    };
    let elapsed = start.elapsed();
    ensure!(
        outcome == StepOutcome::Halted,
        "workload ended with {outcome:?}: {:?}",
        cpu.shutdown_reason
    );
    let s = cpu.icache.stats;
    let lookups = (s.hits + s.misses).max(1);
    Ok((
        Figure {
            instructions: cpu.state.icount,
            elapsed,
            hit_rate: s.hits as f64 / lookups as f64,
        },
        e.stats,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_halts_after_the_expected_instruction_count() {
        let f = run_interp(10).unwrap();
        let least = 1 + 10 * INSNS_PER_ITERATION + 1; // + setup MOV and HLT
        assert!(
            (least..=least + 10 * u64::from(INNER)).contains(&f.instructions),
            "{}",
            f.instructions
        );
        assert!(f.hit_rate > 0.9, "hit rate {}", f.hit_rate);
    }
}
