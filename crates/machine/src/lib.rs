//! oxide86's machines: boards that connect the CPU to memory and devices,
//! and the run loop that drives them.
//!
//! - [`pc::Pc`]: the PC (memory map, devices, boot paths, clock, run loop).
//! - [`test_machine::TestMachine`]: the minimal machine the system-ISA
//!   conformance programs run on.

pub mod acpi;
pub mod apic;
pub mod board_events;
pub mod boot;
pub mod clock;
pub mod embed;
pub mod inspect;
pub mod memory_map;
pub mod pam;
pub mod pc;
pub mod pc_board;
pub mod ram;
pub mod stop;
pub mod test_machine;
