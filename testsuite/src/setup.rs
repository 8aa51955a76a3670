//! Ready-made processors for runners, fuzzing and benchmarks: a CPU in real
//! mode and one in flat 32-bit protected mode (every segment based at 0
//! with a 4 GiB limit, as after a boot loader's `lgdt; mov cr0`), set up
//! directly in the segment caches because descriptor loads belong to the
//! system ISA (Intel SDM Vol. 3A, 3.4.5 "Segment Descriptors").

use oxide86_cpu::state::cr0;
use oxide86_cpu::{Cpu, CpuModel, SegReg, SegmentCache};

/// A `model` CPU in real mode with every segment register 0 and execution
/// starting at `eip`.
pub fn real_mode_cpu(model: CpuModel, eip: u32) -> Cpu {
    let mut cpu = Cpu::new(model);
    for s in SegReg::ALL {
        cpu.state.set_real_mode_segment(s, 0);
    }
    cpu.state.eip = eip;
    cpu
}

/// A family-6 CPU in flat 32-bit protected mode at CPL 0: CS is a 32-bit
/// code segment (selector 0x08), the others 32-bit data segments (0x10),
/// all covering 4 GiB from base 0; execution starts at `eip`.
pub fn flat32_cpu(eip: u32) -> Cpu {
    let mut cpu = Cpu::new(CpuModel::P6);
    set_flat32(&mut cpu, eip);
    cpu
}

/// Puts an existing CPU (its state, not its decode cache) into the
/// [`flat32_cpu`] setup.
pub fn set_flat32(cpu: &mut Cpu, eip: u32) {
    let s = &mut cpu.state;
    s.cr0 |= cr0::PE;
    s.seg = [SegmentCache::flat(0x10, false, 0); 6];
    s.seg[SegReg::Cs as usize] = SegmentCache::flat(0x08, true, 0);
    s.eip = eip;
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxide86_cpu::{FlatRam, StepOutcome};

    #[test]
    fn flat32_runs_32_bit_code() {
        let mut cpu = flat32_cpu(0x1000);
        let mut ram = FlatRam::new(0x10000);
        ram.load(0x1000, &[0xB8, 0x78, 0x56, 0x34, 0x12, 0xF4]); // mov eax, 0x12345678; hlt
        assert_eq!(cpu.run(&mut ram, 10), StepOutcome::Halted);
        assert_eq!(cpu.state.gpr[0], 0x1234_5678);
    }

    #[test]
    fn real_mode_runs_16_bit_code() {
        let mut cpu = real_mode_cpu(CpuModel::I8086, 0x100);
        let mut ram = FlatRam::new(0x10000);
        ram.load(0x100, &[0xB8, 0x34, 0x12, 0xF4]); // mov ax, 0x1234; hlt
        assert_eq!(cpu.run(&mut ram, 10), StepOutcome::Halted);
        assert_eq!(cpu.state.gpr[0], 0x1234);
    }
}
