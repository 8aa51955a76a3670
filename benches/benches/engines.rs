//! Guest MIPS and wall time per engine (interp, jit, tiered) on the
//! integer workloads: `cargo bench -p oxide86-benches --bench engines`.
//! A measurement, never a test: it prints a table and asserts nothing
//! about speed. `OXIDE86_BENCH_INSNS` sets the approximate guest
//! instructions per run (default 200 million); `OXIDE86_BENCH_ENGINES`
//! (e.g. `jit`, or `interp,jit`) runs only some engines, for profiling;
//! `OXIDE86_BENCH_REGION_BLOCKS=1` translates single blocks (no regions).

use oxide86_benches::{
    alu_branch, integer_mix, run_engine, ALU_INSNS_PER_ITERATION, INSNS_PER_ITERATION,
};
use oxide86_jit::EngineKind;

fn main() -> anyhow::Result<()> {
    let insns: u64 = std::env::var("OXIDE86_BENCH_INSNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000_000);
    let workloads = [
        (
            "integer-mix",
            integer_mix((insns / INSNS_PER_ITERATION) as u32)?,
        ),
        (
            "alu-branch",
            alu_branch((insns / ALU_INSNS_PER_ITERATION) as u32)?,
        ),
    ];
    println!(
        "{:<12} {:<7} {:>12} {:>9} {:>9} {:>8} {:>7} {:>11} {:>9} {:>9}",
        "workload",
        "engine",
        "guest insns",
        "wall s",
        "MIPS",
        "vs interp",
        "blocks",
        "xlate ms",
        "in blocks",
        "chained"
    );
    for (name, code) in &workloads {
        // Warm-up: page in RAM and the decode cache's tables.
        let _ = run_engine(&integer_mix(10)?, EngineKind::Interp)?;
        let mut interp_mips = 0.0;
        let only = std::env::var("OXIDE86_BENCH_ENGINES").ok();
        for kind in [EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered] {
            let name_of = format!("{kind:?}").to_lowercase();
            if only
                .as_deref()
                .is_some_and(|o| !o.split(',').any(|e| e == name_of))
            {
                continue;
            }
            let (f, s) = run_engine(code, kind)?;
            if kind == EngineKind::Interp {
                interp_mips = f.mips();
            }
            println!(
                "{:<12} {:<7} {:>12} {:>9.3} {:>9.1} {:>8.2}x {:>7} {:>11.2} {:>8.1}% {:>8.1}%",
                name,
                format!("{kind:?}").to_lowercase(),
                f.instructions,
                f.elapsed.as_secs_f64(),
                f.mips(),
                f.mips() / interp_mips,
                s.blocks_translated,
                s.translate_ns as f64 / 1e6,
                100.0 * s.block_insns as f64 / f.instructions.max(1) as f64,
                100.0 * s.chained as f64 / s.block_runs.max(1) as f64
            );
        }
    }
    Ok(())
}
