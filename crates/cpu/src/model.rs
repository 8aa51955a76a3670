//! CPU models: the differences real software uses to tell processors apart.

/// Which processor the interpreter behaves as.
///
/// The differences modelled are those DOS-era CPU detection and the
/// SingleStepTests vectors observe: shift-count masking, PUSH SP, the #DE
/// return address, FLAGS bits 12-15 in real mode, LOCK acceptance, the
/// instruction length limit, segment-overrun faults and the 8086's opcode
/// aliases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum CpuModel {
    /// Intel 8086/8088: no shift-count masking, PUSH SP pushes the new SP,
    /// #DE pushes the next instruction's address, offsets wrap in a segment.
    I8086,
    /// Intel 80286 (real mode as recorded by the 286 vectors).
    I286,
    /// A Pentium Pro / Pentium II class family-6 CPU: the default.
    #[default]
    P6,
}

impl CpuModel {
    /// Parses the names used on the command line (`8086`, `286`, `p6`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "8086" | "8088" | "i8086" => Some(CpuModel::I8086),
            "286" | "80286" | "i286" => Some(CpuModel::I286),
            "p6" | "686" | "pentiumpro" | "pentium2" => Some(CpuModel::P6),
            _ => None,
        }
    }

    /// The name `from_name` accepts.
    pub fn name(self) -> &'static str {
        match self {
            CpuModel::I8086 => "8086",
            CpuModel::I286 => "286",
            CpuModel::P6 => "p6",
        }
    }

    /// 386 and later: 32-bit registers, the FS/GS segments, CPUID-era behaviour.
    pub fn is_386_or_later(self) -> bool {
        self == CpuModel::P6
    }

    /// Maximum instruction length before #GP (the 286 allows 10 bytes).
    pub fn max_insn_len(self) -> usize {
        match self {
            CpuModel::I286 => 10,
            _ => 15,
        }
    }
}
