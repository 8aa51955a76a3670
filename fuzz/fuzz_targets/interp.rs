//! Fuzz target: arbitrary bytes become a CPU mode, registers and guest code
//! (`oxide86_testsuite::fuzz::run_one`); the interpreter must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    oxide86_testsuite::fuzz::run_one(data);
});
