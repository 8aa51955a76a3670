//! Conformance runners for oxide86's CPU, each usable as a library call
//! (from `cargo test`) and as an `oxide86 conformance ...` command.
//!
//! - [`hostdiff`]: random sequences run on the host CPU and the interpreter.
//! - [`singlestep`]: hardware-recorded single-instruction vectors
//!   (SingleStepTests 8086 and 80286 sets in `../shared/testdata`).
//! - [`coverage`]: which instruction encodings a CPU model must execute and
//!   which of them the interpreter implements.
//! - [`fuzz`]: the robustness fuzzing harness (no guest input panics).
//! - [`fuzz_system`]: the robustness harness over system instructions.
//! - [`setup`]: ready-made real-mode and flat 32-bit processors.
//! - [`system`]: the project's bare-metal system-ISA programs
//!   (`testsuite/system/*.asm`) on the minimal test machine.

pub mod coverage;
pub mod fuzz;
pub mod fuzz_system;
pub mod hostdiff;
pub mod linux;
pub mod setup;
pub mod singlestep;
pub mod system;

use std::path::PathBuf;

/// The shared test-data folder, found from this crate's manifest directory
/// (the workspace root's sibling `shared/`), never from the current directory.
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
}
