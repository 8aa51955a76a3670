//! Shared setup: flat 32-bit guests on a `FlatRam`, run under an engine.

use iced_x86::code_asm::CodeAssembler;
use oxide86_cpu::{Cpu, CpuModel, CpuState, Flags, FlatRam, SegReg, SegmentCache, StepOutcome};
use oxide86_jit::{Engine, EngineKind};

pub const CODE: u32 = 0x1000;
pub const RAM: usize = 0x4_0000;

/// A flat 32-bit CPU at `CODE` with ESP 0x8000.
pub fn flat32() -> Cpu {
    let mut cpu = Cpu::new(CpuModel::P6);
    cpu.state.cr0 |= 1;
    for s in SegReg::ALL {
        cpu.state.seg[s as usize] =
            SegmentCache::flat(if s == SegReg::Cs { 8 } else { 16 }, s == SegReg::Cs, 0);
    }
    cpu.state.eip = CODE;
    cpu.state.gpr[4] = 0x8000;
    cpu
}

/// Stores the little-endian dword `v` at `addr`.
pub fn put32(ram: &mut FlatRam, addr: u32, v: u32) {
    ram.load(addr, &v.to_le_bytes());
}

/// Assembles with `f` at `CODE`.
pub fn assemble(f: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    f(&mut a).unwrap();
    a.assemble(u64::from(CODE)).unwrap()
}

/// A loop of `iterations` trips around `body`, then HLT: ECX counts the
/// trips down, ESI points at scratch data (0x10000), and EBX is a
/// pseudo-random value that IMUL and ADD ECX renew at the top of each
/// trip. The body must leave ECX and ESI as it found them.
pub fn lcg_loop(
    iterations: u32,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
) -> Vec<u8> {
    use iced_x86::code_asm::*;
    assemble(|a| {
        let mut top = a.create_label();
        a.mov(ecx, iterations)?;
        a.mov(esi, 0x10000u32)?;
        a.mov(ebx, 0x9E37_79B9u32)?;
        a.set_label(&mut top)?;
        a.imul_3(ebx, ebx, 0x0100_0193)?;
        a.add(ebx, ecx)?;
        body(a)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    })
}

/// Runs `code` until HLT (or `max` steps) under `kind`, in slices of
/// `slice` steps; returns the final state, RAM and the engine.
pub fn run(
    kind: EngineKind,
    code: &[u8],
    max: u64,
    slice: u64,
    setup: impl Fn(&mut Cpu, &mut FlatRam),
) -> (CpuState, FlatRam, Engine) {
    run_configured(kind, code, max, slice, setup, |_| {})
}

/// [`run`] with the engine adjusted by `configure` first.
pub fn run_configured(
    kind: EngineKind,
    code: &[u8],
    max: u64,
    slice: u64,
    setup: impl Fn(&mut Cpu, &mut FlatRam),
    configure: impl Fn(&mut Engine),
) -> (CpuState, FlatRam, Engine) {
    let mut engine = Engine::new(kind);
    engine.threshold = 3;
    configure(&mut engine);
    run_on(engine, code, max, slice, setup)
}

/// [`run`] on a given engine; stops early at a verify-mode mismatch.
pub fn run_on(
    mut engine: Engine,
    code: &[u8],
    max: u64,
    slice: u64,
    setup: impl Fn(&mut Cpu, &mut FlatRam),
) -> (CpuState, FlatRam, Engine) {
    let mut cpu = flat32();
    let mut ram = FlatRam::new(RAM);
    ram.load(CODE, code);
    setup(&mut cpu, &mut ram);
    let mut steps = 0;
    while steps < max {
        let (o, n) = engine.run(&mut cpu, &mut ram, slice.min(max - steps), |_, _| false);
        steps += n;
        if o != StepOutcome::Continue || engine.mismatch().is_some() {
            break;
        }
    }
    (cpu.state, ram, engine)
}

/// The state as the architecture sees it, for comparisons: the lazy
/// status flags committed to EFLAGS. The raw status bits under an
/// uncommitted lazy record are not architectural, and the JIT may leave
/// older ones there when a later instruction replaced the flags an
/// eager producer (IMUL, a shift) would have written.
pub fn architectural(s: &CpuState) -> String {
    let mut s = s.clone();
    s.commit_flags();
    format!("{s:?}")
}

/// Runs under the interpreter and under `kind`, asserting equal state and RAM.
pub fn same_as_interp(
    kind: EngineKind,
    code: &[u8],
    max: u64,
    setup: impl Fn(&mut Cpu, &mut FlatRam) + Copy,
) -> Engine {
    let (a, ra, _) = run(EngineKind::Interp, code, max, 1000, setup);
    let (b, rb, e) = run(kind, code, max, 1000, setup);
    assert_eq!(
        architectural(&a),
        architectural(&b),
        "state differs under {kind:?}"
    );
    assert!(ra.bytes == rb.bytes, "RAM differs under {kind:?}");
    e
}

/// [`same_as_interp`] under `jit` and `tiered` for a program whose
/// instructions are meant to run inline: more than 10,000 of them must
/// run in blocks, and at most `helper_insns` through the interpreter
/// helper (the forms the program uses on purpose that are not inline).
pub fn inline_same_as_interp(code: &[u8], helper_insns: u64) {
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let e = same_as_interp(kind, code, 100_000, |_, _| {});
        assert!(e.stats.block_insns > 10_000, "{:?}", e.stats);
        assert!(e.stats.helper_insns <= helper_insns, "{:?}", e.stats);
    }
}

/// Runs `code` under the interpreter and under each of `kinds` for every
/// `(slice, max)` budget (run() slices of `slice` steps, `max` in all),
/// asserting equal architectural state and RAM: blocks and chains must
/// stop exactly where the interpreter does.
pub fn same_at_budgets(
    kinds: &[EngineKind],
    code: &[u8],
    budgets: impl IntoIterator<Item = (u64, u64)>,
    setup: impl Fn(&mut Cpu, &mut FlatRam) + Copy,
) {
    for (slice, max) in budgets {
        let (a, ra, _) = run(EngineKind::Interp, code, max, slice, setup);
        for &kind in kinds {
            let (b, rb, _) = run(kind, code, max, slice, setup);
            assert_eq!(
                architectural(&a),
                architectural(&b),
                "{kind:?} slice {slice} max {max}"
            );
            assert!(ra.bytes == rb.bytes, "{kind:?} slice {slice} max {max}");
        }
    }
}

/// Slices of 1, 7, 13 ... steps against totals of 1234, 5001 ...: every
/// combination of the two lists.
pub fn odd_budgets(slices: &[u64], maxes: &[u64]) -> Vec<(u64, u64)> {
    slices
        .iter()
        .flat_map(|&s| maxes.iter().map(move |&m| (s, m)))
        .collect()
}
