//! Hardware breakpoints: DR0-DR3 with their DR7 enables, kinds and lengths,
//! and the DR6 status bits they report (Intel SDM Vol. 3A, 17.2 "Debug
//! Registers", 17.3.1 "Debug Exception (#DB)").
//!
//! Instruction breakpoints are faults checked before an instruction runs
//! (unless EFLAGS.RF); data breakpoints are traps reported after the
//! instruction that touched the watched bytes completes. Which kinds are
//! armed is cached in [`Cpu::debug_watch`], recomputed on every MOV to DR7
//! and DR0-DR3, so the step loop pays one byte test when none is.

use crate::cpu::Cpu;

/// DR6 bits (SDM Vol. 3A, 17.2.3).
pub mod dr6 {
    /// B0-B3: breakpoint conditions 0-3 detected.
    pub const B_MASK: u32 = 0xF;
    /// BD: the next instruction accesses a debug register (DR7.GD).
    pub const BD: u32 = 1 << 13;
    /// BS: single step (EFLAGS.TF).
    pub const BS: u32 = 1 << 14;
}

/// DR7 bits (SDM Vol. 3A, 17.2.4).
pub mod dr7 {
    /// GD: general detect, #DB on any MOV to or from a debug register.
    pub const GD: u32 = 1 << 13;
}

/// Bits of [`Cpu::debug_watch`].
pub mod watch {
    /// At least one enabled instruction breakpoint.
    pub const EXEC: u8 = 1 << 0;
    /// At least one enabled data (write or read/write) breakpoint.
    pub const DATA: u8 = 1 << 1;
    /// At least one enabled I/O breakpoint (R/W = 10 with CR4.DE).
    pub const IO: u8 = 1 << 2;
}

/// The kind field R/Wn of DR7 for breakpoint `n`: 0 execute, 1 write,
/// 2 I/O (with CR4.DE; undefined without it), 3 read or write.
#[inline]
fn kind(dr7: u32, n: usize) -> u32 {
    (dr7 >> (16 + 4 * n)) & 3
}

/// The length in bytes LENn of DR7 selects (LEN 2 means 8 bytes on
/// processors that support it; treated as 8).
#[inline]
fn length(dr7: u32, n: usize) -> u32 {
    match (dr7 >> (18 + 4 * n)) & 3 {
        0 => 1,
        1 => 2,
        2 => 8,
        _ => 4,
    }
}

/// Whether breakpoint `n` is enabled locally or globally (Ln or Gn).
#[inline]
fn enabled(dr7: u32, n: usize) -> bool {
    dr7 & (3 << (2 * n)) != 0
}

impl Cpu {
    /// Recomputes [`Cpu::debug_watch`] from DR7 and CR4.DE; called after
    /// every write to DR0-DR3, DR7 or CR4 (and by debuggers that poke
    /// `state.dr` directly).
    pub fn update_breakpoints(&mut self) {
        let dr7 = self.state.dr[7];
        let de = self.state.cr4 & crate::paging::cr4::DE != 0;
        let mut w = 0;
        for n in 0..4 {
            if enabled(dr7, n) {
                w |= match kind(dr7, n) {
                    0 => watch::EXEC,
                    1 | 3 => watch::DATA,
                    _ if de => watch::IO,
                    _ => 0,
                };
            }
        }
        if self.host_watch.armed() {
            // Host watchpoints ride on the same memory-path hook.
            w |= watch::DATA;
        }
        self.debug_watch = w;
    }

    /// Records every enabled I/O breakpoint (R/W = 10, CR4.DE) that an
    /// access of `size` ports at `port` overlaps; reported after the
    /// instruction like a data breakpoint (SDM Vol. 3A, 17.2.5).
    pub(crate) fn note_io_access(&mut self, port: u16, size: u32) {
        if self.debug_watch & watch::IO == 0 {
            return;
        }
        let dr7 = self.state.dr[7];
        let first = u32::from(port);
        let last = first + size - 1;
        for n in 0..4 {
            if !enabled(dr7, n) || kind(dr7, n) != 2 {
                continue;
            }
            let len = length(dr7, n);
            let base = self.state.dr[n] & 0xFFFF & !(len - 1);
            if first < base + len && base <= last {
                self.debug_hits |= 1 << n;
            }
        }
    }

    /// B0-B3 for enabled instruction breakpoints at linear address `linear`.
    pub(crate) fn instruction_breakpoints(&self, linear: u32) -> u32 {
        let dr7 = self.state.dr[7];
        let mut hits = 0;
        for n in 0..4 {
            if enabled(dr7, n) && kind(dr7, n) == 0 && self.state.dr[n] == linear {
                hits |= 1 << n;
            }
        }
        hits
    }

    /// Records in [`Cpu::debug_hits`] every enabled data breakpoint that
    /// `size` bytes at `linear` overlap (writes match kinds 1 and 3, reads
    /// kind 3). The breakpoint address is aligned down to its length.
    pub(crate) fn note_data_access(&mut self, linear: u32, size: u32, write: bool) {
        self.note_host_access(linear, size, write);
        let dr7 = self.state.dr[7];
        let first = u64::from(linear);
        let last = first + u64::from(size) - 1;
        for n in 0..4 {
            if !enabled(dr7, n) {
                continue;
            }
            let k = kind(dr7, n);
            if !(k == 3 || (k == 1 && write)) {
                continue;
            }
            let len = length(dr7, n);
            let base = u64::from(self.state.dr[n] & !(len - 1));
            if first < base + u64::from(len) && base <= last {
                self.debug_hits |= 1 << n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assemble, flat32_cpu, CODE};
    use crate::{Bus, FlatRam, StepOutcome};
    use iced_x86::code_asm::*;

    /// A flat CPU whose IDT entry 1 points at a HLT, running `code`.
    fn setup(code: &[u8]) -> (Cpu, FlatRam) {
        let mut cpu = flat32_cpu();
        let mut ram = FlatRam::new(1 << 20);
        ram.load(CODE, code);
        // IDT at 0x3000: every vector -> 0x2000 (HLT), 32-bit interrupt gate.
        cpu.state.idtr.base = 0x3000;
        cpu.state.idtr.limit = 0x7FF;
        for v in 0..256u32 {
            let lo: u32 = 0x0008_0000 | 0x2000;
            let hi: u32 = 0x8E00;
            ram.load(0x3000 + v * 8, &lo.to_le_bytes());
            ram.load(0x3000 + v * 8 + 4, &hi.to_le_bytes());
        }
        ram.load(0x2000, &[0xF4]);
        // GDT at 0x4000 with a flat ring-0 code segment at selector 0x08.
        cpu.state.gdtr.base = 0x4000;
        cpu.state.gdtr.limit = 0x17;
        ram.load(0x4008, &0x00CF_9A00_0000_FFFFu64.to_le_bytes());
        ram.load(0x4010, &0x00CF_9200_0000_FFFFu64.to_le_bytes());
        (cpu, ram)
    }

    #[test]
    fn instruction_breakpoint_faults_before_the_instruction() {
        let code = assemble(32, |a| {
            a.mov(eax, 1)?;
            a.mov(eax, 2)?;
            a.mov(eax, 3)
        });
        let (mut cpu, mut ram) = setup(&code);
        cpu.state.dr[0] = CODE + 5; // the second MOV
        cpu.state.dr[7] = 0x401; // L0, execute, length 1
        cpu.update_breakpoints();
        assert_eq!(cpu.debug_watch, watch::EXEC);
        assert_eq!(cpu.run(&mut ram, 100), StepOutcome::Halted);
        assert_eq!(cpu.state.gpr[0], 1, "the breakpointed MOV has not run");
        assert_eq!(cpu.state.dr[6] & 0xF, 1);
        // The pushed EIP is the breakpointed instruction; RF pushed as it was (0).
        let top = cpu.state.gpr[4];
        assert_eq!(ram.read_u32(top), CODE + 5);
        assert_eq!(ram.read_u32(top + 8) & (1 << 16), 0);
    }

    #[test]
    fn resume_flag_suppresses_the_breakpoint_once() {
        let code = assemble(32, |a| {
            a.mov(eax, 1)?;
            a.mov(eax, 2)
        });
        let (mut cpu, mut ram) = setup(&code);
        cpu.state.dr[0] = CODE;
        cpu.state.dr[7] = 0x401;
        cpu.update_breakpoints();
        cpu.state.eflags |= crate::state::eflags::RF;
        assert_eq!(cpu.run(&mut ram, 100), StepOutcome::Halted);
        assert_eq!(cpu.state.gpr[0], 2, "both MOVs ran");
        assert_eq!(cpu.state.eflags & crate::state::eflags::RF, 0);
        assert_eq!(cpu.state.eip, CODE + 11, "the final HLT of the test code");
    }

    #[test]
    fn io_breakpoint_needs_cr4_de_and_traps_after_the_out() {
        let code = assemble(32, |a| {
            a.out(0x81, al)?; // overlaps a 2-byte breakpoint at port 0x80
            a.mov(eax, 7)
        });
        for de in [false, true] {
            let (mut cpu, mut ram) = setup(&code);
            if de {
                cpu.state.cr4 |= crate::paging::cr4::DE;
            }
            cpu.state.dr[3] = 0x80;
            cpu.state.dr[7] = (1 << 6) | (0b01_10 << 28); // L3, I/O, length 2
            cpu.update_breakpoints();
            assert_eq!(cpu.run(&mut ram, 100), StepOutcome::Halted);
            if de {
                assert_eq!(cpu.state.gpr[0], 0, "trap before the next instruction");
                assert_eq!(cpu.state.dr[6] & 0xF, 8);
            } else {
                assert_eq!(cpu.state.gpr[0], 7, "no I/O breakpoints without CR4.DE");
            }
        }
    }

    #[test]
    fn data_write_breakpoint_traps_after_the_write() {
        let code = assemble(32, |a| {
            a.mov(dword_ptr(0x5002), 0x1234)?; // overlaps the word at 0x5002
            a.mov(eax, 7)
        });
        let (mut cpu, mut ram) = setup(&code);
        cpu.state.dr[1] = 0x5002;
        cpu.state.dr[7] = (1 << 2) | (0b01_01 << 20); // L1, write, length 2
        cpu.update_breakpoints();
        assert_eq!(cpu.debug_watch, watch::DATA);
        assert_eq!(cpu.run(&mut ram, 100), StepOutcome::Halted);
        assert_eq!(ram.read_u32(0x5002), 0x1234, "the write completed");
        assert_eq!(cpu.state.gpr[0], 0, "trap before the next instruction");
        assert_eq!(cpu.state.dr[6] & 0xF, 2);
        let top = cpu.state.gpr[4];
        assert_eq!(ram.read_u32(top), CODE + 10);
    }

    #[test]
    fn single_step_after_mov_ss_is_reported_after_the_next_instruction() {
        let code = assemble(32, |a| {
            a.mov(ss, ax)?;
            a.nop()?;
            a.nop()
        });
        let (mut cpu, mut ram) = setup(&code);
        cpu.state.gpr[0] = 0x10;
        cpu.state.eflags |= crate::state::eflags::TF;
        assert_eq!(cpu.run(&mut ram, 100), StepOutcome::Halted);
        let top = cpu.state.gpr[4];
        // The code ends NOP, NOP, HLT: the trap comes before the second NOP.
        let second_nop = CODE + code.len() as u32 - 2;
        assert_eq!(ram.read_u32(top), second_nop, "after MOV SS and one NOP");
        assert_ne!(cpu.state.dr[6] & dr6::BS, 0);
    }

    #[test]
    fn reads_do_not_hit_a_write_breakpoint() {
        let code = assemble(32, |a| a.mov(eax, dword_ptr(0x5000)));
        let (mut cpu, mut ram) = setup(&code);
        cpu.state.dr[2] = 0x5000;
        cpu.state.dr[7] = (1 << 5) | (0b11_01 << 24); // G2, write, length 4
        cpu.update_breakpoints();
        assert_eq!(cpu.run(&mut ram, 100), StepOutcome::Halted);
        assert_eq!(cpu.state.eip, CODE + 6, "no #DB: halted at the test's HLT");
    }
}
