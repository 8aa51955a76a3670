//! oxide86's machines: boards that connect the CPU to memory and devices,
//! and the run loop that drives them.
//!
//! For now this holds [`test_machine::TestMachine`], the minimal machine the
//! system-ISA conformance programs run on (RAM, the debug console and
//! debug-exit ports, and a test interrupt source). The PC board grows here.

pub mod test_machine;
