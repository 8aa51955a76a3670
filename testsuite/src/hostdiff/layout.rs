//! The address-space layout both sides of the host-differential test share:
//! fixed regions in the native helper's 32-bit process, and the same
//! addresses on the interpreter's bus. Keep in step with
//! `native/hostdiff_helper.c`.

/// The data window every memory access of a sequence lands in.
pub const DATA_BASE: u32 = 0x1000_0000;
/// Size of the data window (compared byte for byte).
pub const DATA_SIZE: u32 = 0x1000;
/// Where the sequence's code is placed.
pub const CODE_BASE: u32 = 0x2000_0000;
/// Largest sequence the helper accepts.
pub const CODE_MAX: u32 = 0x1000;

/// Explicit memory operands stay below this offset in the window.
pub const DATA_AREA_END: u32 = 0xA00;
/// Lowest ESP offset a sequence may reach.
pub const STACK_LO: u32 = 0xA80;
/// Highest ESP offset a sequence may reach (room above for pops).
pub const STACK_HI: u32 = 0xFC0;
/// Where ESP starts (as an offset in the window).
pub const STACK_START: u32 = 0xE00;

/// EFLAGS bits the tester loads and compares: the six status flags and DF.
pub const FLAGS_COMPARED: u32 = 0x8D5 | 0x400;
/// The EFLAGS image a user-mode Linux process runs with apart from those
/// (IF and the reserved bit 1).
pub const FLAGS_FIXED: u32 = 0x202;
