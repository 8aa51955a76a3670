//! Unit tests of the x87 through the CPU.
