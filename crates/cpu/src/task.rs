//! Hardware task switching (Intel SDM Vol. 3A, 7.3 "Task Switching", 7.4
//! "Task Linking", 7.2 "Task Management Data Structures" for the 16- and
//! 32-bit TSS layouts).
//!
//! A switch saves the current task's registers into its TSS, updates busy
//! bits, NT and the back link as the cause of the switch requires, loads
//! TR, sets CR0.TS, and loads the new task's state (CR3 and LDT first, then
//! the segment registers, whose checks fault with #TS in the new task).

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::descriptor::{system_type, Descriptor, Selector};
use crate::exception::Exception;
use crate::state::{cr0, eflags, SegReg, SegmentCache};

/// Why a task switch happens (decides busy bits, NT and the back link).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskSwitchReason {
    /// JMP to a TSS or task gate.
    Jmp,
    /// CALL to a TSS or task gate.
    Call,
    /// IRET with NT set (return to the back-linked task).
    Iret,
    /// An interrupt or exception through a task gate.
    Interrupt,
}

/// Field offsets of the 32-bit TSS.
mod tss32 {
    pub const CR3: u32 = 0x1C;
    pub const EIP: u32 = 0x20;
    pub const EFLAGS: u32 = 0x24;
    pub const GPR: u32 = 0x28;
    pub const SEG: u32 = 0x48;
    pub const LDT: u32 = 0x60;
    pub const MIN_LIMIT: u32 = 0x67;
}

/// Field offsets of the 16-bit TSS.
mod tss16 {
    pub const IP: u32 = 0x0E;
    pub const FLAGS: u32 = 0x10;
    pub const GPR: u32 = 0x12;
    pub const SEG: u32 = 0x22;
    pub const LDT: u32 = 0x2A;
    pub const MIN_LIMIT: u32 = 0x2B;
}

fn is_tss32(typ: u8) -> bool {
    matches!(typ, system_type::TSS32_AVAILABLE | system_type::TSS32_BUSY)
}

impl Cpu {
    /// Switches to the task whose TSS `selector` names. `save_eip` is the
    /// EIP saved for the outgoing task; `state.eip` is left alone until the
    /// switch commits, so a fault before that is reported at the
    /// instruction that caused the switch. `error_code` is pushed on the
    /// new task's stack (exceptions through task gates).
    pub fn task_switch<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        selector: Selector,
        reason: TaskSwitchReason,
        error_code: Option<u32>,
        save_eip: u32,
    ) -> Result<(), Exception> {
        if selector.is_ldt() {
            return Err(Exception::GeneralProtection(selector.error_code()));
        }
        let new = self.read_descriptor(bus, selector, Exception::GeneralProtection)?;
        let typ = new.typ();
        let busy = matches!(typ, system_type::TSS16_BUSY | system_type::TSS32_BUSY);
        let is_tss = !new.is_code_or_data() && matches!(typ, 1 | 3 | 9 | 11);
        if !is_tss || (reason == TaskSwitchReason::Iret) != busy {
            return Err(if reason == TaskSwitchReason::Iret {
                Exception::InvalidTss(selector.error_code())
            } else {
                Exception::GeneralProtection(selector.error_code())
            });
        }
        if !new.present() {
            return Err(Exception::SegmentNotPresent(selector.error_code()));
        }
        let new32 = is_tss32(typ);
        let min = if new32 {
            tss32::MIN_LIMIT
        } else {
            tss16::MIN_LIMIT
        };
        if new.limit() < min {
            return Err(Exception::InvalidTss(selector.error_code()));
        }
        // Save the outgoing task.
        let old_tr = self.state.tr;
        let old32 = is_tss32((old_tr.flags & 0xF) as u8);
        let mut flags = self.flags_image();
        if matches!(reason, TaskSwitchReason::Jmp | TaskSwitchReason::Iret) {
            // The outgoing task is no longer busy; IRET also drops its NT.
            self.set_tss_busy(bus, Selector(old_tr.selector), false)?;
            if reason == TaskSwitchReason::Iret {
                flags &= !eflags::NT;
            }
        }
        let b = old_tr.base;
        let s = self.state.clone();
        if old32 {
            self.write_linear_system(bus, b.wrapping_add(tss32::EIP), 4, save_eip)?;
            self.write_linear_system(bus, b.wrapping_add(tss32::EFLAGS), 4, flags)?;
            for i in 0..8 {
                self.write_linear_system(
                    bus,
                    b.wrapping_add(tss32::GPR + 4 * i),
                    4,
                    s.gpr[i as usize],
                )?;
            }
            for i in 0..6 {
                let sel = u32::from(s.seg[i as usize].selector);
                self.write_linear_system(bus, b.wrapping_add(tss32::SEG + 4 * i), 2, sel)?;
            }
        } else {
            self.write_linear_system(bus, b.wrapping_add(tss16::IP), 2, save_eip)?;
            self.write_linear_system(bus, b.wrapping_add(tss16::FLAGS), 2, flags)?;
            for i in 0..8 {
                self.write_linear_system(
                    bus,
                    b.wrapping_add(tss16::GPR + 2 * i),
                    2,
                    s.gpr[i as usize],
                )?;
            }
            for i in 0..4 {
                let sel = u32::from(s.seg[i as usize].selector);
                self.write_linear_system(bus, b.wrapping_add(tss16::SEG + 2 * i), 2, sel)?;
            }
        }
        // Read the incoming task.
        let nb = new.base();
        let rd = |cpu: &mut Cpu, bus: &mut B, off: u32, size: u32| {
            cpu.read_linear_system(bus, nb.wrapping_add(off), size)
        };
        // The debug-trap bit (T, bit 0 of offset 0x64; 32-bit TSS only).
        let debug_trap = new32 && rd(self, bus, 0x64, 2)? & 1 != 0;
        let (cr3, eip, new_flags, mut gpr, mut segs, ldt) = if new32 {
            let mut gpr = [0u32; 8];
            for (i, g) in gpr.iter_mut().enumerate() {
                *g = rd(self, bus, tss32::GPR + 4 * i as u32, 4)?;
            }
            let mut segs = [0u16; 6];
            for (i, sg) in segs.iter_mut().enumerate() {
                *sg = rd(self, bus, tss32::SEG + 4 * i as u32, 2)? as u16;
            }
            (
                Some(rd(self, bus, tss32::CR3, 4)?),
                rd(self, bus, tss32::EIP, 4)?,
                rd(self, bus, tss32::EFLAGS, 4)?,
                gpr,
                segs,
                rd(self, bus, tss32::LDT, 2)? as u16,
            )
        } else {
            let mut gpr = [0u32; 8];
            for (i, g) in gpr.iter_mut().enumerate() {
                *g = rd(self, bus, tss16::GPR + 2 * i as u32, 2)?;
            }
            let mut segs = [0u16; 6];
            for (i, sg) in segs.iter_mut().take(4).enumerate() {
                *sg = rd(self, bus, tss16::SEG + 2 * i as u32, 2)? as u16;
            }
            (
                None,
                rd(self, bus, tss16::IP, 2)?,
                rd(self, bus, tss16::FLAGS, 2)?,
                gpr,
                segs,
                rd(self, bus, tss16::LDT, 2)? as u16,
            )
        };
        if !new32 {
            // A 16-bit task keeps the upper halves of the general registers.
            for (g, old) in gpr.iter_mut().zip(s.gpr) {
                *g = (old & 0xFFFF_0000) | (*g & 0xFFFF);
            }
            segs[4] = 0;
            segs[5] = 0;
        }
        let mut new_flags = new_flags;
        if matches!(reason, TaskSwitchReason::Call | TaskSwitchReason::Interrupt) {
            new_flags |= eflags::NT;
            self.write_linear_system(bus, nb, 2, u32::from(old_tr.selector))?;
        }
        if reason != TaskSwitchReason::Iret {
            self.set_tss_busy(bus, selector, true)?;
        }
        // From here on, faults belong to the new task.
        let new_busy = Descriptor(new.0 | (2 << 40));
        self.state.tr = new_busy.to_cache(selector.0);
        // The local breakpoint enables L0-L3 and LE belong to the old task
        // (SDM Vol. 3A, 17.2.4).
        self.state.dr[7] &= !0x155;
        self.update_breakpoints();
        self.state.cr0 |= cr0::TS;
        if let Some(cr3) = cr3 {
            if self.state.cr0 & cr0::PG != 0 {
                self.write_cr3(cr3);
            } else {
                self.state.cr3 = cr3;
            }
        }
        self.state.gpr = gpr;
        self.state.eip = eip;
        self.state.lazy = Default::default();
        // EFLAGS, RF included, come whole from the new TSS (SDM Vol. 3A, 7.3).
        self.state.eflags = new_flags | eflags::RESERVED1;
        // Selectors are loaded before their descriptors are checked, so a
        // fault leaves the new task's selectors visible (SDM 7.3, step 11).
        for (i, sel) in segs.iter().enumerate() {
            self.state.seg[i] = SegmentCache {
                selector: *sel,
                ..SegmentCache::default()
            };
        }
        self.state.ldtr = SegmentCache {
            selector: ldt,
            ..SegmentCache::default()
        };
        self.load_task_ldt(bus, ldt)?;
        if self.state.eflags & eflags::VM != 0 {
            for (i, sel) in segs.iter().enumerate() {
                if let Some(seg) = SegReg::from_index(i) {
                    self.load_segment(bus, seg, *sel)?;
                }
            }
        } else {
            self.load_task_code_segment(bus, segs[SegReg::Cs as usize])?;
            let cpl = self.state.cpl();
            let ss = self.load_stack_for_cpl(bus, segs[SegReg::Ss as usize], cpl, 0)?;
            self.state.seg[SegReg::Ss as usize] = ss;
            for seg in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
                self.load_segment(bus, seg, segs[seg as usize])
                    .map_err(|e| match e {
                        Exception::GeneralProtection(c) => Exception::InvalidTss(c),
                        other => other,
                    })?;
            }
        }
        if let Some(code) = error_code {
            let size = if new32 { 4 } else { 2 };
            self.push(bus, code, size)?;
        }
        if debug_trap {
            // A #DB trap in the new task before its first instruction, with
            // DR6.BT (SDM Vol. 3A, 7.2.1 and 17.3.1.5).
            self.state.dr[6] |= 1 << 15;
            return Err(Exception::Debug);
        }
        Ok(())
    }

    /// Sets or clears the busy bit of a TSS descriptor in the GDT.
    fn set_tss_busy<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        selector: Selector,
        busy: bool,
    ) -> Result<(), Exception> {
        let addr = self.descriptor_address(selector, Exception::InvalidTss)?;
        let access = self.read_linear_system(bus, addr.wrapping_add(5), 1)?;
        let access = if busy { access | 2 } else { access & !2 };
        self.write_linear_system(bus, addr.wrapping_add(5), 1, access)
    }

    /// Loads LDTR from a task's TSS (#TS on a bad selector).
    fn load_task_ldt<B: Bus + ?Sized>(&mut self, bus: &mut B, ldt: u16) -> Result<(), Exception> {
        let sel = Selector(ldt);
        if sel.is_null() {
            return Ok(());
        }
        let ts = Exception::InvalidTss(sel.error_code());
        if sel.is_ldt() {
            return Err(ts);
        }
        let d = self.read_descriptor(bus, sel, Exception::InvalidTss)?;
        if d.is_code_or_data() || d.typ() != system_type::LDT {
            return Err(ts);
        }
        if !d.present() {
            return Err(ts);
        }
        self.state.ldtr = d.to_cache(ldt);
        Ok(())
    }

    /// Loads CS for a new task: a present code segment whose DPL matches
    /// the selector's RPL (conforming: DPL <= RPL); CPL becomes the RPL.
    fn load_task_code_segment<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        cs: u16,
    ) -> Result<(), Exception> {
        let sel = Selector(cs);
        let ts = Exception::InvalidTss(sel.error_code());
        if sel.is_null() {
            return Err(ts);
        }
        let d = self.read_descriptor(bus, sel, Exception::InvalidTss)?;
        let conforming = d.conforming_or_expand_down();
        if !d.is_code()
            || (!conforming && d.dpl() != sel.rpl())
            || (conforming && d.dpl() > sel.rpl())
        {
            return Err(ts);
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel.error_code()));
        }
        self.set_descriptor_accessed(bus, sel, d)?;
        self.state.seg[SegReg::Cs as usize] = d.with_accessed().to_cache(cs);
        Ok(())
    }
}
