//! Debugging oxide86 guests: a GDB remote stub ([`gdb`]), monitor commands
//! ([`monitor`]), instruction and event tracing ([`trace`]), and the driver
//! that runs a machine with all of them attached ([`session`]).
//!
//! Addresses GDB sends are linear (segment base + offset, before paging):
//! GDB knows no segments. The monitor also takes `seg:off` and physical
//! addresses ([`addr`]). Breakpoints and watchpoints live outside the
//! guest (see `oxide86_machine::stop`): guest memory and the guest's
//! DR0-DR7 never change.

pub mod addr;
pub mod gdb;
pub mod monitor;
pub mod regs;
pub mod session;
pub mod trace;
