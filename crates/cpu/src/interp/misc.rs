//! Miscellaneous: HLT CPUID RDTSC and the reserved NOPs (Intel SDM Vol. 2A
//! "CPUID", Vol. 2B "HLT", "NOP", "RDTSC").

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::state::cr0;
use iced_x86::Instruction;

/// CPUID leaf 1 EDX feature bits this CPU implements (SDM Vol. 2A, table 3-11).
pub mod features {
    /// x87 FPU on chip.
    pub const FPU: u32 = 1 << 0;
    /// Virtual-8086 mode extensions (CR4.VME, CR4.PVI).
    pub const VME: u32 = 1 << 1;
    /// Debugging extensions (CR4.DE).
    pub const DE: u32 = 1 << 2;
    /// Page-size extensions (4 MiB pages).
    pub const PSE: u32 = 1 << 3;
    /// Time-stamp counter (RDTSC).
    pub const TSC: u32 = 1 << 4;
    /// RDMSR/WRMSR.
    pub const MSR: u32 = 1 << 5;
    /// Physical-address extension.
    pub const PAE: u32 = 1 << 6;
    /// CMPXCHG8B.
    pub const CX8: u32 = 1 << 8;
    /// An on-chip local APIC (reported only where the machine has one).
    pub const APIC: u32 = 1 << 9;
    /// SYSENTER/SYSEXIT.
    pub const SEP: u32 = 1 << 11;
    /// Memory-type range registers (as storage: no caching is modelled).
    pub const MTRR: u32 = 1 << 12;
    /// Global pages (CR4.PGE).
    pub const PGE: u32 = 1 << 13;
    /// CMOVcc (and FCMOVcc/FCOMI with FPU).
    pub const CMOV: u32 = 1 << 15;
    /// Page attribute table (IA32_PAT as storage).
    pub const PAT: u32 = 1 << 16;
    /// FXSAVE/FXRSTOR.
    pub const FXSR: u32 = 1 << 24;
    /// Leaf 0x80000001 EDX: execute-disable (EFER.NXE, the PAE NX bit).
    pub const EXT_NX: u32 = 1 << 20;
    /// Everything leaf 1 EDX reports.
    pub const ALL: u32 =
        FPU | VME | DE | PSE | TSC | MSR | PAE | CX8 | SEP | MTRR | PGE | CMOV | PAT | FXSR;
}

/// `HLT`: stop until an interrupt (#GP(0) outside ring 0).
pub fn hlt<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    if cpu.state.cr0 & cr0::PE != 0 && cpu.state.cpl() != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    cpu.state.halted = true;
    Ok(())
}

/// `PAUSE` (`F3 90`, `REP NOP` before the Pentium 4): a hint that the
/// code is a spin-wait loop (SDM Vol. 2B, "PAUSE"); it delays for an
/// implementation-specific time and changes nothing else. With
/// [`Cpu::pause_exits`] the step ends with [`crate::StepOutcome::Paused`]
/// so the machine can let that time pass.
pub fn pause<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    cpu.paused = cpu.pause_exits;
    Ok(())
}

/// The brand string of leaves 0x80000002-4 (48 bytes, NUL-padded).
const BRAND: &[u8; 48] = b"oxide86 Virtual CPU (family 6)\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// Packs 4 bytes of a string into a register as CPUID returns text.
fn text(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// `CPUID`: a family-6 identity advertising only what is implemented.
pub fn cpuid<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let leaf = cpu.state.gpr[0];
    let (a, b, c, d) = match leaf {
        0 => (2, text(b"Genu"), text(b"ntel"), text(b"ineI")),
        // Family 6, model 3, stepping 3.
        // The APIC flag follows IA32_APIC_BASE's global enable on a machine
        // that has a local APIC (SDM Vol. 3A, 10.4.3).
        1 => {
            let apic = cpu.local_apic && cpu.state.msr.apic_base & (1 << 11) != 0;
            (
                0x0000_0633,
                0,
                0,
                features::ALL | if apic { features::APIC } else { 0 },
            )
        }
        // One descriptor byte per register: 0x01 in AL means "call once";
        // no cache or TLB descriptors are reported.
        2 => (0x0000_0001, 0, 0, 0),
        0x8000_0000 => (0x8000_0004, 0, 0, 0),
        // Extended features: only XD (EFER.NXE with PAE paging).
        0x8000_0001 => (0, 0, 0, features::EXT_NX),
        0x8000_0002..=0x8000_0004 => {
            let i = ((leaf - 0x8000_0002) * 16) as usize;
            let s = &BRAND[i..i + 16];
            (text(&s[0..]), text(&s[4..]), text(&s[8..]), text(&s[12..]))
        }
        // Past the top leaf: Intel returns the highest basic leaf's data.
        _ => (0, 0, 0, 0),
    };
    cpu.state.gpr[0] = a;
    cpu.state.gpr[3] = b;
    cpu.state.gpr[1] = c;
    cpu.state.gpr[2] = d;
    Ok(())
}

/// `RDTSC`: EDX:EAX = the time-stamp counter (#GP(0) with CR4.TSD outside ring 0).
pub fn rdtsc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    const CR4_TSD: u32 = 1 << 2;
    if cpu.state.cr4 & CR4_TSD != 0 && cpu.state.cpl() != 0 && cpu.state.cr0 & cr0::PE != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let tsc = cpu.state.icount.wrapping_add(cpu.state.msr.tsc_offset);
    cpu.state.gpr[0] = tsc as u32;
    cpu.state.gpr[2] = (tsc >> 32) as u32;
    Ok(())
}

/// `RDPMC`: EDX:EAX = performance counter ECX (0 or 1, 40 bits; SDM Vol.
/// 2B, RDPMC, and Vol. 3B, 20.6.8). #GP(0) for another counter, or at
/// CPL > 0 in protected mode unless CR4.PCE is set.
pub fn rdpmc<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    const CR4_PCE: u32 = 1 << 8;
    if cpu.state.cr4 & CR4_PCE == 0 && cpu.state.cpl() != 0 && cpu.state.cr0 & cr0::PE != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let msr = match cpu.state.gpr[1] {
        0 => crate::perfmon::PERFCTR0,
        1 => crate::perfmon::PERFCTR1,
        _ => return Err(Exception::GeneralProtection(0)),
    };
    let v = cpu
        .state
        .msr
        .perf
        .read(msr, cpu.state.icount)
        .unwrap_or_default();
    cpu.state.gpr[0] = v as u32;
    cpu.state.gpr[2] = (v >> 32) as u32;
    Ok(())
}

/// The reserved-NOP opcodes `0F 0D` and `0F 18`-`0F 1F` (SDM Vol. 2B
/// "NOP", table 4-12): no operation from the family-6 processors on
/// (the memory operand is not accessed), #UD before them.
pub fn reserved_nop<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    if cpu.state.model == crate::CpuModel::P6 {
        Ok(())
    } else {
        Err(Exception::InvalidOpcode)
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::run32;

    #[test]
    fn cpuid_vendor_and_brand() {
        let s = run32(|a| a.cpuid(), |s| s.gpr[0] = 0);
        let mut v = Vec::new();
        for r in [s.gpr[3], s.gpr[2], s.gpr[1]] {
            v.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&v, b"GenuineIntel");
        let s = run32(|a| a.cpuid(), |s| s.gpr[0] = 0x8000_0002);
        assert_eq!(&s.gpr[0].to_le_bytes(), b"oxid");
    }

    #[test]
    fn pause_ends_the_run_only_with_pause_exits() {
        // mov ecx, 3; l: nop; nop; pause; dec ecx; jnz l; hlt. From the
        // second round on, the quiet run's fast path (decoded instructions
        // cached) reaches the PAUSE.
        let code = [
            0xB9, 3, 0, 0, 0, 0x90, 0x90, 0xF3, 0x90, 0x49, 0x75, 0xF9, 0xF4,
        ];
        for exits in [false, true] {
            let mut cpu = crate::testutil::flat32_cpu();
            let mut ram = crate::FlatRam::new(1 << 16);
            ram.load(crate::testutil::CODE, &code);
            cpu.pause_exits = exits;
            if exits {
                for round in 0..3 {
                    assert_eq!(cpu.run(&mut ram, 100), crate::StepOutcome::Paused);
                    assert_eq!(cpu.state.eip, crate::testutil::CODE + 9);
                    assert_eq!(cpu.state.icount, 4 + 5 * round);
                }
            }
            assert_eq!(cpu.run(&mut ram, 100), crate::StepOutcome::Halted);
            assert_eq!(cpu.state.icount, 17);
        }
    }

    #[test]
    fn multi_byte_and_reserved_nops_do_nothing() {
        // nop dword [eax]; reserved NOPs 0F 18 /4 [eax], 0F 0D eax, 0F 1E eax
        let bytes = [
            0x0F, 0x1F, 0x00, 0x0F, 0x18, 0x20, 0x0F, 0x0D, 0xC0, 0x0F, 0x1E, 0xC8,
        ];
        let mut cpu = crate::testutil::flat32_cpu();
        let mut ram = crate::FlatRam::new(1 << 16);
        ram.load(crate::testutil::CODE, &bytes);
        ram.load(crate::testutil::CODE + bytes.len() as u32, &[0xF4]);
        cpu.state.gpr[0] = 0xFFFF_FFF0; // the memory operands are never accessed
        assert_eq!(cpu.run(&mut ram, 10), crate::StepOutcome::Halted);
        assert_eq!(cpu.unimplemented, None);
        assert_eq!(cpu.state.icount, 5);
        let (s, _) = crate::testutil::run16(
            crate::CpuModel::I286,
            |_| Ok(()),
            |s, ram| {
                ram.load(crate::testutil::CODE, &[0x0F, 0x18, 0xE0]); // 0F 18 /4, then #UD
                ram.load(6 * 4, &[0x00, 0x20, 0, 0]); // #UD handler at 0000:2000
                ram.load(0x2000, &[0xF4]);
                s.gpr[4] = 0x8000;
            },
        );
        assert_eq!(s.eip, 0x2001); // halted in the #UD handler
    }

    #[test]
    fn cpuid_leaf1_reports_family_6_and_no_apic_mce_mca() {
        let s = run32(|a| a.cpuid(), |s| s.gpr[0] = 1);
        assert_eq!((s.gpr[0] >> 8) & 0xF, 6);
        assert!((s.gpr[0] >> 4) & 0xF >= 3);
        assert_eq!(s.gpr[2], super::features::ALL);
        let apic_mce_mca = (1 << 9) | (1 << 7) | (1 << 14);
        assert_eq!(s.gpr[2] & apic_mce_mca, 0);
        let s = run32(|a| a.cpuid(), |s| s.gpr[0] = 0x8000_0001);
        assert_eq!(s.gpr[2], super::features::EXT_NX);
    }

    /// Linux's perf reads the P6 counters with RDPMC.
    #[test]
    fn rdpmc_reads_the_performance_counters() {
        let s = crate::testutil::run32(
            |a| a.rdpmc(),
            |s| {
                s.msr.perf.write(crate::perfmon::PERFCTR1, 0x1234, 0);
                s.gpr[1] = 1;
            },
        );
        assert_eq!((s.gpr[0], s.gpr[2]), (0x1234, 0));
    }
}
