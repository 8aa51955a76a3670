//! The architectural state of the CPU, laid out `#[repr(C)]` so generated
//! code can address every field with `core::mem::offset_of!`
//! (Intel SDM Vol. 1, 3.4 "Basic Program Execution Registers"; Vol. 3A,
//! 2.5 "Control Registers" and 3.4.3 "Segment Registers").

use crate::flags::LazyFlags;
use crate::model::CpuModel;
use crate::x87::FpuState;

/// General-purpose register numbers in the SDM's encoding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reg {
    /// EAX / AX / AL
    Eax = 0,
    /// ECX / CX / CL
    Ecx = 1,
    /// EDX / DX / DL
    Edx = 2,
    /// EBX / BX / BL
    Ebx = 3,
    /// ESP / SP / AH (as an 8-bit register number)
    Esp = 4,
    /// EBP / BP / CH
    Ebp = 5,
    /// ESI / SI / DH
    Esi = 6,
    /// EDI / DI / BH
    Edi = 7,
}

/// Segment registers in the SDM's encoding order (Sreg field of ModRM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SegReg {
    /// ES
    Es = 0,
    /// CS
    Cs = 1,
    /// SS
    Ss = 2,
    /// DS
    Ds = 3,
    /// FS (386 and later)
    Fs = 4,
    /// GS (386 and later)
    Gs = 5,
}

impl SegReg {
    /// All six, in encoding order.
    pub const ALL: [SegReg; 6] = [
        SegReg::Es,
        SegReg::Cs,
        SegReg::Ss,
        SegReg::Ds,
        SegReg::Fs,
        SegReg::Gs,
    ];
    /// The segment register with encoding `n` (0-5).
    pub fn from_index(n: usize) -> Option<SegReg> {
        Self::ALL.get(n).copied()
    }
}

/// Descriptor access-rights bits kept in [`SegmentCache::flags`]
/// (SDM Vol. 3A, 3.4.5 "Segment Descriptors": byte 5 and the high nibble of byte 6).
pub mod seg_flags {
    /// Accessed.
    pub const ACCESSED: u16 = 1 << 0;
    /// Data: writable. Code: readable.
    pub const RW: u16 = 1 << 1;
    /// Data: expand-down. Code: conforming.
    pub const DC: u16 = 1 << 2;
    /// Code segment (vs data).
    pub const CODE: u16 = 1 << 3;
    /// Code or data (vs system) descriptor.
    pub const S: u16 = 1 << 4;
    /// Descriptor privilege level, 2 bits.
    pub const DPL_SHIFT: u16 = 5;
    /// Present.
    pub const PRESENT: u16 = 1 << 7;
    /// Default operand size / big (32-bit).
    pub const DB: u16 = 1 << 14;
    /// Granularity: limit in 4 KiB units.
    pub const G: u16 = 1 << 15;
    /// What a real-mode segment load leaves: present, writable, accessed data.
    pub const REAL_MODE: u16 = PRESENT | S | RW | ACCESSED;
}

/// A segment register with its hidden descriptor cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct SegmentCache {
    /// Linear base address.
    pub base: u32,
    /// Byte-granular limit (already scaled by G).
    pub limit: u32,
    /// The visible selector.
    pub selector: u16,
    /// Access rights, see [`seg_flags`].
    pub flags: u16,
}

impl SegmentCache {
    /// The cache a real-mode load of `selector` produces (limit kept at 64 KiB).
    pub fn real_mode(selector: u16) -> Self {
        Self {
            base: u32::from(selector) << 4,
            limit: 0xFFFF,
            selector,
            flags: seg_flags::REAL_MODE,
        }
    }
    /// A flat 4 GiB 32-bit segment (base 0, page-granular limit), present and
    /// accessed: code (readable) or writable data, at privilege `dpl`. What
    /// SYSENTER/SYSEXIT load, and what boot loaders and tests start from.
    pub fn flat(selector: u16, code: bool, dpl: u16) -> Self {
        let mut flags = seg_flags::PRESENT
            | seg_flags::S
            | seg_flags::RW
            | seg_flags::ACCESSED
            | seg_flags::DB
            | seg_flags::G
            | ((dpl & 3) << seg_flags::DPL_SHIFT);
        if code {
            flags |= seg_flags::CODE;
        }
        Self {
            base: 0,
            limit: 0xFFFF_FFFF,
            selector,
            flags,
        }
    }

    /// The D/B bit: 32-bit code or stack.
    pub fn is_32bit(&self) -> bool {
        self.flags & seg_flags::DB != 0
    }
}

/// A descriptor-table register (GDTR, IDTR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct TableRegister {
    /// Linear base.
    pub base: u32,
    /// Byte limit.
    pub limit: u16,
}

/// Model-specific registers kept as plain state (their behaviour is wired
/// up with the system ISA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Msrs {
    /// IA32_TIME_STAMP_COUNTER offset: TSC = retired instructions + this.
    pub tsc_offset: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// IA32_SYSENTER_CS.
    pub sysenter_cs: u32,
    /// IA32_SYSENTER_ESP.
    pub sysenter_esp: u32,
    /// IA32_SYSENTER_EIP.
    pub sysenter_eip: u32,
    /// IA32_APIC_BASE.
    pub apic_base: u64,
    /// IA32_PAT.
    pub pat: u64,
    /// IA32_MTRR_PHYSBASE0..7 / PHYSMASK0..7, interleaved as the MSR numbers are.
    pub mtrr_var: [u64; 16],
    /// The eleven fixed-range MTRRs (0x250, 0x258, 0x259, 0x268-0x26F).
    pub mtrr_fixed: [u64; 11],
    /// IA32_MTRR_DEF_TYPE.
    pub mtrr_def_type: u64,
    /// The P6 performance-monitoring counters.
    pub perf: crate::perfmon::PerfCounters,
}

/// EFLAGS bit positions (SDM Vol. 1, 3.4.3).
pub mod eflags {
    /// Carry.
    pub const CF: u32 = 1 << 0;
    /// Always 1.
    pub const RESERVED1: u32 = 1 << 1;
    /// Parity.
    pub const PF: u32 = 1 << 2;
    /// Auxiliary carry.
    pub const AF: u32 = 1 << 4;
    /// Zero.
    pub const ZF: u32 = 1 << 6;
    /// Sign.
    pub const SF: u32 = 1 << 7;
    /// Trap.
    pub const TF: u32 = 1 << 8;
    /// Interrupt enable.
    pub const IF: u32 = 1 << 9;
    /// Direction.
    pub const DF: u32 = 1 << 10;
    /// Overflow.
    pub const OF: u32 = 1 << 11;
    /// I/O privilege level (2 bits).
    pub const IOPL: u32 = 3 << 12;
    /// Nested task.
    pub const NT: u32 = 1 << 14;
    /// Resume.
    pub const RF: u32 = 1 << 16;
    /// Virtual-8086 mode.
    pub const VM: u32 = 1 << 17;
    /// Alignment check.
    pub const AC: u32 = 1 << 18;
    /// Virtual interrupt flag.
    pub const VIF: u32 = 1 << 19;
    /// Virtual interrupt pending.
    pub const VIP: u32 = 1 << 20;
    /// CPUID available.
    pub const ID: u32 = 1 << 21;
    /// The six arithmetic status flags that lazy evaluation covers.
    pub const STATUS: u32 = CF | PF | AF | ZF | SF | OF;
}

/// CR0 bits (SDM Vol. 3A, 2.5).
pub mod cr0 {
    /// Protection enable.
    pub const PE: u32 = 1 << 0;
    /// Monitor coprocessor.
    pub const MP: u32 = 1 << 1;
    /// Emulation (no x87).
    pub const EM: u32 = 1 << 2;
    /// Task switched.
    pub const TS: u32 = 1 << 3;
    /// Extension type (always 1 on 486+).
    pub const ET: u32 = 1 << 4;
    /// Numeric error reporting.
    pub const NE: u32 = 1 << 5;
    /// Write protect.
    pub const WP: u32 = 1 << 16;
    /// Alignment mask.
    pub const AM: u32 = 1 << 18;
    /// Not write-through.
    pub const NW: u32 = 1 << 29;
    /// Cache disable.
    pub const CD: u32 = 1 << 30;
    /// Paging.
    pub const PG: u32 = 1 << 31;
}

/// The whole architectural state, shared by the interpreter and the JIT.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct CpuState {
    /// EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI.
    pub gpr: [u32; 8],
    /// Instruction pointer (offset in CS).
    pub eip: u32,
    /// EFLAGS; the six status bits are stale while `lazy.op` is not `None`.
    pub eflags: u32,
    /// The last flag-setting operation, evaluated on demand.
    pub lazy: LazyFlags,
    /// ES, CS, SS, DS, FS, GS with their descriptor caches.
    pub seg: [SegmentCache; 6],
    /// Local descriptor table register.
    pub ldtr: SegmentCache,
    /// Task register.
    pub tr: SegmentCache,
    /// Global descriptor table register.
    pub gdtr: TableRegister,
    /// Interrupt descriptor table register (the IVT in real mode).
    pub idtr: TableRegister,
    /// CR0.
    pub cr0: u32,
    /// CR2: the last page-fault linear address.
    pub cr2: u32,
    /// CR3: page-directory base.
    pub cr3: u32,
    /// CR4.
    pub cr4: u32,
    /// DR0-DR7 (DR4/DR5 alias DR6/DR7).
    pub dr: [u32; 8],
    /// Model-specific registers.
    pub msr: Msrs,
    /// Instructions retired since reset.
    pub icount: u64,
    /// The x87 FPU.
    pub fpu: FpuState,
    /// Which processor this is.
    pub model: CpuModel,
    /// Set by HLT; cleared by an interrupt or reset.
    pub halted: bool,
    /// Interrupts (and single-step) are inhibited for one instruction
    /// after STI, MOV SS and POP SS.
    pub interrupt_shadow: bool,
    /// An NMI handler is running: further NMIs wait for the next IRET.
    pub nmi_blocked: bool,
}

impl CpuState {
    /// The state after RESET (SDM Vol. 3A, 9.1.1 "Processor State After Reset").
    pub fn new(model: CpuModel) -> Self {
        let mut seg = [SegmentCache::real_mode(0); 6];
        seg[SegReg::Cs as usize] = SegmentCache {
            base: 0xFFFF_0000,
            limit: 0xFFFF,
            selector: 0xF000,
            flags: seg_flags::REAL_MODE | seg_flags::CODE,
        };
        if model != CpuModel::P6 {
            seg[SegReg::Cs as usize].base = 0xF_0000;
        }
        Self {
            gpr: [0; 8],
            eip: if model == CpuModel::I8086 { 0 } else { 0xFFF0 },
            eflags: eflags::RESERVED1,
            lazy: LazyFlags::default(),
            seg,
            ldtr: SegmentCache {
                flags: seg_flags::PRESENT | 2,
                limit: 0xFFFF,
                ..Default::default()
            },
            tr: SegmentCache {
                flags: seg_flags::PRESENT | 11,
                limit: 0xFFFF,
                ..Default::default()
            },
            gdtr: TableRegister {
                base: 0,
                limit: 0xFFFF,
            },
            idtr: TableRegister {
                base: 0,
                limit: 0x3FF,
            },
            cr0: if model == CpuModel::P6 {
                0x6000_0010
            } else {
                0
            },
            cr2: 0,
            cr3: 0,
            cr4: 0,
            dr: [0, 0, 0, 0, 0xFFFF_0FF0, 0x400, 0xFFFF_0FF0, 0x400],
            msr: Msrs {
                apic_base: 0xFEE0_0900,
                pat: 0x0007_0406_0007_0406,
                ..Default::default()
            },
            icount: 0,
            fpu: FpuState::default(),
            model,
            halted: false,
            interrupt_shadow: false,
            nmi_blocked: false,
        }
    }

    /// Loads a segment register the way real mode does (base = selector * 16).
    pub fn set_real_mode_segment(&mut self, seg: SegReg, selector: u16) {
        let s = &mut self.seg[seg as usize];
        s.selector = selector;
        s.base = u32::from(selector) << 4;
    }

    /// A segment register's cache.
    #[inline]
    pub fn segment(&self, seg: SegReg) -> &SegmentCache {
        &self.seg[seg as usize]
    }

    /// Protected mode (CR0.PE) and not virtual-8086.
    #[inline]
    pub fn protected_mode(&self) -> bool {
        self.cr0 & cr0::PE != 0 && self.eflags & eflags::VM == 0
    }

    /// Current privilege level: CS.RPL in protected mode, 3 in V86, 0 in real mode.
    #[inline]
    pub fn cpl(&self) -> u8 {
        if self.cr0 & cr0::PE == 0 {
            0
        } else if self.eflags & eflags::VM != 0 {
            3
        } else {
            (self.seg[SegReg::Cs as usize].selector & 3) as u8
        }
    }

    /// Whether code in CS runs with 32-bit default operand and address size.
    #[inline]
    pub fn code32(&self) -> bool {
        self.seg[SegReg::Cs as usize].is_32bit()
            && self.cr0 & cr0::PE != 0
            && self.eflags & eflags::VM == 0
    }

    /// Whether the stack uses ESP (SS.B) rather than SP.
    #[inline]
    pub fn stack32(&self) -> bool {
        self.seg[SegReg::Ss as usize].is_32bit()
            && self.cr0 & cr0::PE != 0
            && self.eflags & eflags::VM == 0
    }

    /// Reads a general register at `width` bytes (1 = low byte of `r`).
    #[inline]
    pub fn reg(&self, r: Reg, width: u32) -> u32 {
        let v = self.gpr[r as usize];
        match width {
            1 => v & 0xFF,
            2 => v & 0xFFFF,
            _ => v,
        }
    }

    /// Writes a general register at `width` bytes, leaving the upper bits.
    #[inline]
    pub fn set_reg(&mut self, r: Reg, width: u32, value: u32) {
        let slot = &mut self.gpr[r as usize];
        *slot = match width {
            1 => (*slot & !0xFF) | (value & 0xFF),
            2 => (*slot & !0xFFFF) | (value & 0xFFFF),
            _ => value,
        };
    }
}
