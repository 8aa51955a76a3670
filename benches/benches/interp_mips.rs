//! Guest MIPS of the interpreter on the integer-mix workload
//! (`cargo bench -p oxide86-benches`). A measurement, never a test: it
//! prints the figure and asserts nothing about speed.
//!
//! `OXIDE86_BENCH_ITERATIONS` overrides the outer-loop count (default
//! about 300 million guest instructions).

use oxide86_benches::{run_interp, INSNS_PER_ITERATION};

fn main() -> anyhow::Result<()> {
    let iterations = std::env::var("OXIDE86_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or((300_000_000 / INSNS_PER_ITERATION) as u32);
    // A short warm-up run pages in the RAM and the decode cache's tables.
    run_interp(100)?;
    let f = run_interp(iterations)?;
    println!(
        "interp integer-mix: {} instructions in {:.3} s = {:.1} MIPS; decode cache hit rate {:.4}%",
        f.instructions,
        f.elapsed.as_secs_f64(),
        f.mips(),
        100.0 * f.hit_rate
    );
    Ok(())
}
