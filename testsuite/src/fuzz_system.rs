//! Robustness fuzzing of the system ISA: random descriptor tables, IDT
//! gates, TSS contents, control-register settings and privilege levels,
//! with code biased towards system instructions (descriptor-table loads,
//! segment loads, far transfers, gates, task switches, MOV CRn/DRn, MSRs).
//! Whatever the input, the CPU must end in defined x86 behaviour, never a
//! Rust panic. [`run_one`] is the harness shared by the cargo-fuzz target
//! and the bounded `cargo test`.

use oxide86_cpu::state::{cr0, seg_flags, SegmentCache};
use oxide86_cpu::{Cpu, CpuModel, FlatRam, SegReg};

/// Physical layout of the fuzzed machine.
const GDT: u32 = 0x1000;
const IDT: u32 = 0x2000;
const TSS: u32 = 0x3000;
const PAGE_DIR: u32 = 0x4000;
const CODE: u32 = 0x8000;
const RAM: usize = 0x2_0000;

/// Instruction templates that reach the system paths; the fuzzer fills in
/// ModRM and immediates from the input.
const SYSTEM_OPCODES: &[&[u8]] = &[
    &[0x0F, 0x00], // SLDT/STR/LLDT/LTR/VERR/VERW
    &[0x0F, 0x01], // SGDT/SIDT/LGDT/LIDT/SMSW/LMSW/INVLPG
    &[0x0F, 0x02], // LAR
    &[0x0F, 0x03], // LSL
    &[0x0F, 0x06], // CLTS
    &[0x0F, 0x20], // MOV r, CRn
    &[0x0F, 0x22], // MOV CRn, r
    &[0x0F, 0x21], // MOV r, DRn
    &[0x0F, 0x23], // MOV DRn, r
    &[0x0F, 0x30], // WRMSR
    &[0x0F, 0x32], // RDMSR
    &[0x0F, 0x34], // SYSENTER
    &[0x0F, 0x35], // SYSEXIT
    &[0x8E],       // MOV Sreg, r/m
    &[0x8C],       // MOV r/m, Sreg
    &[0xEA],       // JMP ptr16:32
    &[0x9A],       // CALL ptr16:32
    &[0xFF],       // JMP/CALL m16:32 (reg 3, 5)
    &[0xCA],       // RETF imm16
    &[0xCB],       // RETF
    &[0xCF],       // IRET
    &[0xCD],       // INT imm8
    &[0xCC],       // INT3
    &[0xCE],       // INTO
    &[0xF1],       // INT1
    &[0x63],       // ARPL
    &[0x17],       // POP SS
    &[0x1F],       // POP DS
    &[0x0F, 0xA1], // POP FS
    &[0xC5],       // LDS
    &[0x0F, 0xB2], // LSS
    &[0x9D],       // POPF
    &[0xFA],       // CLI
    &[0xFB],       // STI
    &[0xF4],       // HLT
    &[0xE4],       // IN
    &[0xE6],       // OUT
];

/// A byte source over the fuzz input that yields zeroes when exhausted.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
}

/// Builds a protected-mode machine from `data` and runs up to 64 steps.
pub fn run_one(data: &[u8]) {
    let mut input = Input { data, pos: 0 };
    let mut ram = FlatRam::new(RAM);
    // GDT: 16 descriptors, mostly plausible (present code/data/system with
    // small bases and limits), some raw.
    for i in 1..16u32 {
        let kind = input.byte();
        let raw = if kind & 0x80 != 0 {
            u64::from(input.u32()) | (u64::from(input.u32()) << 32)
        } else {
            let access = [
                0x9A, 0x92, 0xFA, 0xF2, 0x89, 0x82, 0x8C, 0x85, 0x9E, 0x96, 0x90, 0x98,
            ][kind as usize % 12]
                | (input.byte() & 0x60);
            let limit = u64::from(input.u32() & 0xF_FFFF);
            let base = u64::from(input.u32() & 0x1_FFFF);
            let flags = u64::from(input.byte() & 0xC0);
            let gate_offset = u64::from(CODE + u32::from(input.byte()));
            if access & 0x10 == 0 && matches!(access & 0xF, 4 | 5 | 12) {
                // Call or task gate: selector and offset fields.
                (gate_offset & 0xFFFF)
                    | (u64::from(input.byte() & 0x7F) << 16)
                    | (u64::from(access) << 40)
                    | (u64::from(input.byte() & 3) << 32)
            } else {
                (limit & 0xFFFF)
                    | ((base & 0xFF_FFFF) << 16)
                    | (u64::from(access) << 40)
                    | ((limit >> 16) << 48)
                    | (flags << 48)
            }
        };
        ram.load(GDT + i * 8, &raw.to_le_bytes());
    }
    // IDT: 32 gates to the code area through random selectors.
    for v in 0..32u32 {
        let sel = u64::from(input.byte() & 0x7B);
        let access = u64::from([0x8Eu8, 0x8F, 0xEE, 0x85, 0x86, 0x0E][input.byte() as usize % 6]);
        let off = u64::from(CODE + u32::from(input.byte()));
        let raw = (off & 0xFFFF) | (sel << 16) | (access << 40) | ((off >> 16) << 48);
        ram.load(IDT + v * 8, &raw.to_le_bytes());
    }
    for i in 0..26u32 {
        let v = input.u32();
        ram.load(TSS + i * 4, &v.to_le_bytes());
    }
    // One identity-mapping 4 MiB page, sometimes with odd bits.
    let pde = 0x87u32 | (u32::from(input.byte()) & 0x1860);
    ram.load(PAGE_DIR, &pde.to_le_bytes());
    // Code: system instructions with random ModRM/immediates, plus raw bytes.
    let mut code = Vec::with_capacity(256);
    while code.len() < 200 && input.pos < data.len() {
        let pick = input.byte();
        if pick < 200 {
            code.extend_from_slice(SYSTEM_OPCODES[pick as usize % SYSTEM_OPCODES.len()]);
            for _ in 0..6 {
                code.push(input.byte());
            }
        } else {
            code.push(input.byte());
        }
    }
    ram.load(CODE, &code);

    let mut cpu = Cpu::new(CpuModel::P6);
    let s = &mut cpu.state;
    s.gdtr.base = GDT;
    s.gdtr.limit = 16 * 8 - 1;
    s.idtr.base = IDT;
    s.idtr.limit = if input.byte() & 1 == 0 {
        32 * 8 - 1
    } else {
        u16::from(input.byte())
    };
    s.cr0 |= cr0::PE;
    if input.byte() & 3 == 0 {
        s.cr0 |= cr0::PG;
        s.cr3 = PAGE_DIR;
        s.cr4 = 1 << 4; // PSE
    }
    let cpl = u16::from(input.byte() & 3);
    for seg in SegReg::ALL {
        s.seg[seg as usize] = SegmentCache::flat(0x10 | cpl, false, cpl);
    }
    s.seg[SegReg::Cs as usize] = SegmentCache::flat(0x08 | cpl, true, cpl);
    s.tr = SegmentCache {
        base: TSS,
        limit: 0x67,
        selector: 0x28,
        flags: seg_flags::PRESENT | 11,
    };
    s.eflags = 2 | (input.u32() & 0x0024_7FD5 & !(1 << 17));
    s.gpr = [
        input.u32(),
        input.u32(),
        input.u32(),
        input.u32(),
        0xF000,
        input.u32(),
        input.u32(),
        input.u32(),
    ];
    s.eip = CODE;
    s.msr.sysenter_cs = u32::from(input.byte() & 0x78);
    for _ in 0..64 {
        if cpu.step(&mut ram) != oxide86_cpu::StepOutcome::Continue {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn system_instructions_never_panic() {
        // Bounded, deterministic: 30,000 inputs from a fixed-seed xorshift.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = vec![0u8; 512];
        for _ in 0..30_000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            super::run_one(&buf);
        }
    }
}
