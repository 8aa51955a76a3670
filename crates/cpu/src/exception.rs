//! Processor exceptions as values (Intel SDM Vol. 3A, 6.3 "Sources of
//! Interrupts" and 6.15 "Exception and Interrupt Reference").
//!
//! An instruction handler returns `Err(Exception)` instead of unwinding; the
//! CPU's one delivery mechanism turns it into an interrupt with the faulting
//! instruction's address (or the next one, for traps).

/// An x86 exception, with its error code where the architecture pushes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Exception {
    /// Vector 0, #DE: divide by zero or quotient too large (also AAM 0).
    #[error("#DE divide error")]
    DivideError,
    /// Vector 1, #DB: debug exception (single-step, breakpoints).
    #[error("#DB debug")]
    Debug,
    /// Vector 3, #BP: INT3.
    #[error("#BP breakpoint")]
    Breakpoint,
    /// Vector 4, #OF: INTO with OF set.
    #[error("#OF overflow")]
    Overflow,
    /// Vector 5, #BR: BOUND range exceeded.
    #[error("#BR bound range exceeded")]
    BoundRange,
    /// Vector 6, #UD: undefined or not-implemented opcode, or LOCK misuse.
    #[error("#UD invalid opcode")]
    InvalidOpcode,
    /// Vector 7, #NM: FPU instruction with CR0.EM or CR0.TS set.
    #[error("#NM device not available")]
    DeviceNotAvailable,
    /// Vector 8, #DF: a fault while delivering a fault (error code 0).
    #[error("#DF double fault")]
    DoubleFault,
    /// Vector 10, #TS: invalid TSS, with the selector error code.
    #[error("#TS({0:#06x}) invalid TSS")]
    InvalidTss(u16),
    /// Vector 11, #NP: segment not present, with the selector error code.
    #[error("#NP({0:#06x}) segment not present")]
    SegmentNotPresent(u16),
    /// Vector 12, #SS: stack-segment fault, with the selector error code.
    #[error("#SS({0:#06x}) stack fault")]
    StackFault(u16),
    /// Vector 13, #GP: general protection, with the selector error code.
    #[error("#GP({0:#06x}) general protection")]
    GeneralProtection(u16),
    /// Vector 14, #PF: page fault; `linear` goes to CR2.
    #[error("#PF({error_code:#x}) at {linear:#010x}")]
    PageFault {
        /// The faulting linear address (loaded into CR2).
        linear: u32,
        /// P, W/R, U/S, RSVD and I/D bits (SDM Vol. 3A, 4.7).
        error_code: u32,
    },
    /// Vector 16, #MF: unmasked x87 floating-point error.
    #[error("#MF x87 floating-point error")]
    FloatingPoint,
    /// Vector 17, #AC: alignment check (error code 0).
    #[error("#AC alignment check")]
    AlignmentCheck,
    /// Vector 18, #MC: machine check.
    #[error("#MC machine check")]
    MachineCheck,
    /// Vector 19, #XM: SIMD floating-point exception.
    #[error("#XM SIMD floating-point")]
    SimdFloatingPoint,
}

impl Exception {
    /// The interrupt vector this exception is delivered through.
    pub fn vector(self) -> u8 {
        match self {
            Exception::DivideError => 0,
            Exception::Debug => 1,
            Exception::Breakpoint => 3,
            Exception::Overflow => 4,
            Exception::BoundRange => 5,
            Exception::InvalidOpcode => 6,
            Exception::DeviceNotAvailable => 7,
            Exception::DoubleFault => 8,
            Exception::InvalidTss(_) => 10,
            Exception::SegmentNotPresent(_) => 11,
            Exception::StackFault(_) => 12,
            Exception::GeneralProtection(_) => 13,
            Exception::PageFault { .. } => 14,
            Exception::FloatingPoint => 16,
            Exception::AlignmentCheck => 17,
            Exception::MachineCheck => 18,
            Exception::SimdFloatingPoint => 19,
        }
    }

    /// The error code pushed in protected mode, if this exception has one.
    pub fn error_code(self) -> Option<u32> {
        match self {
            Exception::InvalidTss(c)
            | Exception::SegmentNotPresent(c)
            | Exception::StackFault(c)
            | Exception::GeneralProtection(c) => Some(u32::from(c)),
            Exception::PageFault { error_code, .. } => Some(error_code),
            Exception::DoubleFault | Exception::AlignmentCheck => Some(0),
            _ => None,
        }
    }

    /// Traps report the address of the next instruction; faults the faulting one.
    pub fn is_trap(self) -> bool {
        matches!(self, Exception::Breakpoint | Exception::Overflow)
    }
}
