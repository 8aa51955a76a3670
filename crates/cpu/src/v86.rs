//! Virtual-8086 mode's IOPL-sensitive instructions and the virtual-mode
//! extensions: CR4.VME (virtual interrupt flag for CLI, STI, PUSHF, POPF,
//! IRET and the TSS interrupt redirection bitmap for INT n) and CR4.PVI
//! (virtual interrupt flag for CLI/STI at CPL 3 in protected mode) (Intel
//! SDM Vol. 3A, 20.2.7 "Sensitive Instructions", 20.3 "Interrupt and
//! Exception Handling in Virtual-8086 Mode", 20.4 "Protected-Mode Virtual
//! Interrupts").

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::Flags;
use crate::paging::cr4;
use crate::state::{cr0, eflags, SegReg};

/// What CLI/STI (and, in V86 mode, PUSHF/POPF/IRET) act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InterruptFlag {
    /// The real EFLAGS.IF (CPL <= IOPL, or real mode).
    Real,
    /// EFLAGS.VIF (V86 with VME, or CPL 3 with PVI, when IOPL < 3).
    Virtual,
}

impl Cpu {
    /// EFLAGS.IOPL as a number.
    #[inline]
    pub(crate) fn iopl(&self) -> u8 {
        ((self.state.eflags & eflags::IOPL) >> 12) as u8
    }

    /// Whether virtual-8086 mode is active.
    #[inline]
    pub(crate) fn v86(&self) -> bool {
        self.state.eflags & eflags::VM != 0
    }

    /// Which interrupt flag CLI/STI may change here, or #GP(0) (SDM Vol. 2A
    /// "CLI", Vol. 2B "STI", decision tables).
    pub(crate) fn cli_sti_target(&self) -> Result<InterruptFlag, Exception> {
        let s = &self.state;
        if s.cr0 & cr0::PE == 0 || s.cpl() <= self.iopl() {
            return Ok(InterruptFlag::Real);
        }
        let virtual_ok = if self.v86() {
            s.cr4 & cr4::VME != 0
        } else {
            s.cpl() == 3 && s.cr4 & cr4::PVI != 0
        };
        if virtual_ok {
            Ok(InterruptFlag::Virtual)
        } else {
            Err(Exception::GeneralProtection(0))
        }
    }

    /// Whether V86 PUSHF/POPF/IRET (with `width`-byte operands) run with
    /// VME's virtual interrupt flag: IOPL < 3, CR4.VME and a 16-bit operand;
    /// #GP(0) when IOPL < 3 otherwise. Outside V86 mode or at IOPL 3 the
    /// instruction runs normally ([`InterruptFlag::Real`]).
    pub(crate) fn v86_flags_target(&self, width: u32) -> Result<InterruptFlag, Exception> {
        if !self.v86() || self.iopl() == 3 {
            return Ok(InterruptFlag::Real);
        }
        if self.state.cr4 & cr4::VME != 0 && width == 2 {
            Ok(InterruptFlag::Virtual)
        } else {
            Err(Exception::GeneralProtection(0))
        }
    }

    /// The FLAGS image VME's PUSHF and redirected INT n push: IOPL reads
    /// as 3 and IF as VIF.
    pub(crate) fn virtual_flags_image(&self) -> u32 {
        let f = self.flags_image() & 0xFFFF & !eflags::IF;
        let vif = if self.state.eflags & eflags::VIF != 0 {
            eflags::IF
        } else {
            0
        };
        f | eflags::IOPL | vif
    }

    /// Loads a 16-bit FLAGS image under VME (POPF, IRET): #GP(0) when it
    /// sets TF, or sets IF while VIP is pending; IF goes to VIF, IOPL and
    /// the real IF are kept.
    pub(crate) fn load_virtual_flags(&mut self, value: u32) -> Result<(), Exception> {
        let s = &mut self.state;
        if value & eflags::TF != 0 || (value & eflags::IF != 0 && s.eflags & eflags::VIP != 0) {
            return Err(Exception::GeneralProtection(0));
        }
        let writable = eflags::STATUS | eflags::DF | eflags::NT;
        s.commit_flags();
        s.eflags = (s.eflags & !writable) | (value & writable) | eflags::RESERVED1;
        if value & eflags::IF != 0 {
            s.eflags |= eflags::VIF;
        } else {
            s.eflags &= !eflags::VIF;
        }
        Ok(())
    }

    /// Whether INT `vector` in V86 mode with CR4.VME goes to the V86 task's
    /// own interrupt vector table: bit `vector` of the 32-byte redirection
    /// bitmap just below the TSS I/O map base is clear (SDM Vol. 3A,
    /// 20.3.3). #GP(0) if the bitmap is outside the TSS.
    pub(crate) fn int_redirected<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        vector: u8,
    ) -> Result<bool, Exception> {
        let tr = self.state.tr;
        let tss_type = tr.flags & 0xF;
        if (tss_type != 9 && tss_type != 11) || tr.limit < 0x67 {
            return Err(Exception::GeneralProtection(0));
        }
        let map_base = self.read_linear_system(bus, tr.base.wrapping_add(0x66), 2)?;
        let byte = (map_base + u32::from(vector) / 8).wrapping_sub(32);
        if map_base < 32 || byte > tr.limit {
            return Err(Exception::GeneralProtection(0));
        }
        let bits = self.read_linear_system(bus, tr.base.wrapping_add(byte), 1)?;
        Ok(bits & (1 << (vector % 8)) == 0)
    }

    /// INT `vector` redirected to the V86 task's vector table at linear 0:
    /// pushes FLAGS (IOPL 3 and IF = VIF when IOPL < 3), CS and IP, then
    /// clears TF and IF (or VIF when IOPL < 3) (SDM Vol. 2A "INT n",
    /// method 5).
    pub(crate) fn v86_redirect_interrupt<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        vector: u8,
        return_ip: u32,
    ) -> Result<(), Exception> {
        let entry = u32::from(vector) * 4;
        let ip = self.read_linear(bus, entry, 2)?;
        let cs = self.read_linear(bus, entry + 2, 2)? as u16;
        let iopl3 = self.iopl() == 3;
        let flags = if iopl3 {
            self.flags_image() & 0xFFFF
        } else {
            self.virtual_flags_image()
        };
        let old_cs = u32::from(self.state.seg[SegReg::Cs as usize].selector);
        let esp = self.state.gpr[4];
        let pushed = self
            .push(bus, flags, 2)
            .and_then(|_| self.push(bus, old_cs, 2))
            .and_then(|_| self.push(bus, return_ip & 0xFFFF, 2));
        if let Err(e) = pushed {
            self.state.gpr[4] = esp;
            return Err(e);
        }
        self.state.eflags &= !(eflags::TF | if iopl3 { eflags::IF } else { eflags::VIF });
        self.load_segment(bus, SegReg::Cs, cs)?;
        self.ctx.next_eip = ip;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assemble, CODE};
    use crate::{Bus, CpuModel, FlatRam, SegmentCache, StepOutcome};

    /// A CPU in V86 mode at 0000:CODE with IOPL `iopl`, CR4 `cr4`, and a
    /// 32-bit TSS at 0x6000 whose I/O map base is 0x100 (so the
    /// redirection bitmap is at 0x60E0, all clear).
    fn v86_cpu(iopl: u32, cr4_bits: u32) -> Cpu {
        let mut cpu = Cpu::new(CpuModel::P6);
        let s = &mut cpu.state;
        s.cr0 |= cr0::PE;
        s.cr4 = cr4_bits;
        s.eflags |= eflags::VM | (iopl << 12);
        for seg in SegReg::ALL {
            let mut c = SegmentCache::real_mode(0);
            c.flags |= 3 << crate::state::seg_flags::DPL_SHIFT;
            s.seg[seg as usize] = c;
        }
        s.seg[SegReg::Cs as usize].flags |= crate::state::seg_flags::CODE;
        s.tr = SegmentCache {
            base: 0x6000,
            limit: 0x200,
            selector: 0x28,
            flags: 0x8B,
        };
        s.gpr[4] = 0x8000;
        s.eip = CODE;
        cpu
    }

    fn ram_with(code: &[u8]) -> FlatRam {
        let mut ram = FlatRam::new(1 << 20);
        ram.load(CODE, code);
        ram.load(0x6066, &0x100u16.to_le_bytes());
        ram
    }

    #[test]
    fn vme_cli_sti_change_vif_not_if() {
        let code = assemble(16, |a| {
            a.sti()?;
            a.pushf()?;
            a.cli()
        });
        let mut cpu = v86_cpu(0, cr4::VME);
        let mut ram = ram_with(&code);
        for _ in 0..3 {
            assert_eq!(cpu.step(&mut ram), StepOutcome::Continue);
        }
        let pushed = u32::from(ram.read_u16(0x7FFE));
        assert_eq!(
            pushed & (eflags::IF | eflags::IOPL),
            eflags::IF | eflags::IOPL
        );
        assert_eq!(cpu.state.eflags & (eflags::IF | eflags::VIF), 0);
    }

    #[test]
    fn cli_without_vme_faults_at_iopl_0() {
        let code = assemble(16, |a| a.cli());
        let mut cpu = v86_cpu(0, 0);
        let mut ram = ram_with(&code);
        assert_eq!(cpu.cli_sti_target(), Err(Exception::GeneralProtection(0)));
        cpu.step(&mut ram);
        assert_eq!(cpu.last_exception, Some(Exception::GeneralProtection(0)));
    }

    #[test]
    fn vme_redirects_int_to_the_v86_ivt() {
        let code = assemble(16, |a| a.int(0x21));
        let mut cpu = v86_cpu(0, cr4::VME);
        let mut ram = ram_with(&code);
        ram.load(0x21 * 4, &[0x34, 0x12, 0x00, 0x02]); // 0200:1234
        assert_eq!(cpu.step(&mut ram), StepOutcome::Continue);
        assert_eq!(cpu.state.seg[SegReg::Cs as usize].selector, 0x200);
        assert_eq!(cpu.state.eip, 0x1234);
        assert_eq!(u32::from(ram.read_u16(0x7FFA)), CODE + 2);
        // Setting the bitmap bit sends it to the protected-mode path (#GP at IOPL 0).
        let mut cpu = v86_cpu(0, cr4::VME);
        ram.load(0x60E0 + 4, &[0x02]);
        cpu.step(&mut ram);
        assert_eq!(cpu.last_exception, Some(Exception::GeneralProtection(0)));
    }
}
