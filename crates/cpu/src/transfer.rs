//! Protected-mode far control transfers: far JMP and CALL to code
//! segments, call gates (with the stack switch and parameter copy), task
//! gates and TSSs; far RET and IRET within and across privilege levels,
//! IRET to virtual-8086 mode and the nested-task return (Intel SDM Vol. 2A
//! "CALL", "IRET", Vol. 2A-2B "JMP", "RET"; Vol. 3A, 5.8 "Privilege Level
//! Checking When Transferring Program Control Between Code Segments").
//!
//! Every check and every stack write happens before state is committed, so
//! a faulting transfer leaves the registers as they were.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::descriptor::{system_type, Descriptor, Selector};
use crate::exception::Exception;
use crate::flags::Flags;
use crate::state::{eflags, seg_flags, SegReg, SegmentCache};
use crate::task::TaskSwitchReason;

/// Stack writes planned on the current or a new stack.
struct Frame {
    ss: SegmentCache,
    esp: u32,
}

impl Cpu {
    /// Pushes `value` on a planned frame (limit and paging checked).
    fn frame_push<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        f: &mut Frame,
        value: u32,
        size: u32,
        user: bool,
    ) -> Result<(), Exception> {
        let mask = if f.ss.is_32bit() { 0xFFFF_FFFF } else { 0xFFFF };
        let sp = f.esp.wrapping_sub(size) & mask;
        let last = u64::from(sp) + u64::from(size) - 1;
        let ok = if f.ss.flags & seg_flags::DC != 0 {
            sp > f.ss.limit && last <= u64::from(mask)
        } else {
            last <= u64::from(f.ss.limit)
        };
        if !ok {
            return Err(Exception::StackFault(0));
        }
        self.write_linear_as(bus, f.ss.base.wrapping_add(sp), size, value, user)?;
        f.esp = (f.esp & !mask) | sp;
        Ok(())
    }

    /// Checks a code-segment target of a far JMP/CALL (no gate).
    fn check_direct_code(&self, sel: Selector, d: Descriptor) -> Result<(), Exception> {
        let cpl = self.state.cpl();
        let bad = if d.conforming_or_expand_down() {
            d.dpl() > cpl
        } else {
            sel.rpl() > cpl || d.dpl() != cpl
        };
        if bad {
            return Err(Exception::GeneralProtection(sel.error_code()));
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel.error_code()));
        }
        Ok(())
    }

    /// Far JMP or CALL in protected mode to `selector:offset`; `width` is
    /// the operand size for a direct call's pushes.
    pub(crate) fn far_transfer_protected<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        selector: u16,
        offset: u32,
        width: u32,
        call: bool,
    ) -> Result<(), Exception> {
        let sel = Selector(selector);
        if sel.is_null() {
            return Err(Exception::GeneralProtection(0));
        }
        let d = self.read_descriptor(bus, sel, Exception::GeneralProtection)?;
        let cpl = self.state.cpl();
        let gp = Exception::GeneralProtection(sel.error_code());
        if d.is_code() {
            self.check_direct_code(sel, d)?;
            let offset = if width == 2 { offset & 0xFFFF } else { offset };
            if offset > d.limit() {
                return Err(Exception::GeneralProtection(0));
            }
            if call {
                let mut f = Frame {
                    ss: self.state.seg[SegReg::Ss as usize],
                    esp: self.state.gpr[4],
                };
                let user = cpl == 3;
                let cs = u32::from(self.state.seg[SegReg::Cs as usize].selector);
                let ret = self.ctx.next_eip;
                self.frame_push(bus, &mut f, cs, width, user)?;
                self.frame_push(bus, &mut f, ret, width, user)?;
                self.state.gpr[4] = f.esp;
            }
            self.set_descriptor_accessed(bus, sel, d)?;
            self.state.seg[SegReg::Cs as usize] =
                d.with_accessed().to_cache((selector & !3) | u16::from(cpl));
            self.ctx.next_eip = offset;
            return Ok(());
        }
        if d.is_code_or_data() {
            return Err(gp);
        }
        match d.typ() {
            system_type::CALL_GATE16 | system_type::CALL_GATE32 => {
                self.through_call_gate(bus, sel, d, call)
            }
            system_type::TASK_GATE
            | system_type::TSS16_AVAILABLE
            | system_type::TSS32_AVAILABLE => {
                if d.dpl() < cpl || d.dpl() < sel.rpl() {
                    return Err(gp);
                }
                if !d.present() {
                    return Err(Exception::SegmentNotPresent(sel.error_code()));
                }
                let tss = if d.typ() == system_type::TASK_GATE {
                    d.gate_selector()
                } else {
                    sel
                };
                let reason = if call {
                    TaskSwitchReason::Call
                } else {
                    TaskSwitchReason::Jmp
                };
                let next = self.ctx.next_eip;
                self.task_switch(bus, tss, reason, None, next)?;
                self.ctx.next_eip = self.state.eip;
                Ok(())
            }
            _ => Err(gp),
        }
    }

    /// JMP or CALL through a call gate (SDM Vol. 3A, 5.8.4-5.8.5).
    fn through_call_gate<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        sel: Selector,
        gate: Descriptor,
        call: bool,
    ) -> Result<(), Exception> {
        let cpl = self.state.cpl();
        if gate.dpl() < cpl || gate.dpl() < sel.rpl() {
            return Err(Exception::GeneralProtection(sel.error_code()));
        }
        if !gate.present() {
            return Err(Exception::SegmentNotPresent(sel.error_code()));
        }
        let tsel = gate.gate_selector();
        if tsel.is_null() {
            return Err(Exception::GeneralProtection(0));
        }
        let code = self.read_descriptor(bus, tsel, Exception::GeneralProtection)?;
        let tgp = Exception::GeneralProtection(tsel.error_code());
        if !code.is_code() || code.dpl() > cpl {
            return Err(tgp);
        }
        let conforming = code.conforming_or_expand_down();
        if !call && !conforming && code.dpl() != cpl {
            return Err(tgp);
        }
        if !code.present() {
            return Err(Exception::SegmentNotPresent(tsel.error_code()));
        }
        let size = if gate.typ() == system_type::CALL_GATE32 {
            4
        } else {
            2
        };
        let offset = gate.gate_offset();
        if offset > code.limit() {
            return Err(Exception::GeneralProtection(0));
        }
        let old_cs = u32::from(self.state.seg[SegReg::Cs as usize].selector);
        let ret = self.ctx.next_eip;
        let new_cpl = if conforming { cpl } else { code.dpl() };
        if call && new_cpl < cpl {
            // More privileged: new stack from the TSS, copy the parameters.
            let (ss_sel, esp) = self.tss_stack(bus, new_cpl, 0)?;
            let ss = self.load_stack_for_cpl(bus, ss_sel, new_cpl, 0)?;
            let old_ss = self.state.seg[SegReg::Ss as usize];
            let old_esp = self.state.gpr[4];
            let old_mask = if old_ss.is_32bit() {
                0xFFFF_FFFF
            } else {
                0xFFFF
            };
            let count = gate.gate_param_count();
            let mut params = Vec::with_capacity(count as usize);
            for i in 0..count {
                let off = old_esp.wrapping_add(i * size) & old_mask;
                params.push(self.read_mem(bus, SegReg::Ss, off, size)?);
            }
            let mut f = Frame { ss, esp };
            self.frame_push(bus, &mut f, u32::from(old_ss.selector), size, false)?;
            self.frame_push(bus, &mut f, old_esp, size, false)?;
            for p in params.iter().rev() {
                self.frame_push(bus, &mut f, *p, size, false)?;
            }
            self.frame_push(bus, &mut f, old_cs, size, false)?;
            self.frame_push(bus, &mut f, ret, size, false)?;
            self.state.seg[SegReg::Ss as usize] = f.ss;
            self.state.gpr[4] = f.esp;
        } else if call {
            let mut f = Frame {
                ss: self.state.seg[SegReg::Ss as usize],
                esp: self.state.gpr[4],
            };
            let user = cpl == 3;
            self.frame_push(bus, &mut f, old_cs, size, user)?;
            self.frame_push(bus, &mut f, ret, size, user)?;
            self.state.gpr[4] = f.esp;
        }
        self.set_descriptor_accessed(bus, tsel, code)?;
        self.state.seg[SegReg::Cs as usize] = code
            .with_accessed()
            .to_cache((tsel.0 & !3) | u16::from(new_cpl));
        self.ctx.next_eip = if size == 2 { offset & 0xFFFF } else { offset };
        Ok(())
    }

    /// Checks the code segment a far RET or IRET returns to.
    fn check_return_code<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        selector: u16,
    ) -> Result<(Selector, Descriptor), Exception> {
        let sel = Selector(selector);
        if sel.is_null() {
            return Err(Exception::GeneralProtection(0));
        }
        let d = self.read_descriptor(bus, sel, Exception::GeneralProtection)?;
        let gp = Exception::GeneralProtection(sel.error_code());
        if !d.is_code() || sel.rpl() < self.state.cpl() {
            return Err(gp);
        }
        let conforming = d.conforming_or_expand_down();
        if (conforming && d.dpl() > sel.rpl()) || (!conforming && d.dpl() != sel.rpl()) {
            return Err(gp);
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel.error_code()));
        }
        Ok((sel, d))
    }

    /// After a return to an outer level: data segment registers the new
    /// CPL may not use become null (SDM Vol. 2A, RET "RETURN-TO-OUTER-
    /// PRIVILEGE-LEVEL").
    fn drop_inaccessible_segments(&mut self) {
        let cpl = self.state.cpl();
        for seg in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            let c = &mut self.state.seg[seg as usize];
            let dpl = ((c.flags >> seg_flags::DPL_SHIFT) & 3) as u8;
            let code = c.flags & seg_flags::CODE != 0;
            let conforming_code = code && c.flags & seg_flags::DC != 0;
            if c.flags & seg_flags::PRESENT != 0 && !conforming_code && dpl < cpl {
                *c = SegmentCache {
                    selector: 0,
                    ..SegmentCache::default()
                };
            }
        }
    }

    /// Far RET in protected mode, releasing `release` bytes of parameters.
    pub(crate) fn far_return_protected<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        width: u32,
        release: u32,
    ) -> Result<(), Exception> {
        let offset = self.peek_stack(bus, 0, width)?;
        let selector = self.peek_stack(bus, width, 2)? as u16;
        let (sel, d) = self.check_return_code(bus, selector)?;
        let offset = if width == 2 { offset & 0xFFFF } else { offset };
        if offset > d.limit() {
            return Err(Exception::GeneralProtection(0));
        }
        let mask = self.stack_mask();
        let esp = self.state.gpr[4];
        if sel.rpl() == self.state.cpl() {
            self.set_descriptor_accessed(bus, sel, d)?;
            self.state.seg[SegReg::Cs as usize] = d.with_accessed().to_cache(selector);
            self.state.gpr[4] = (esp & !mask) | (esp.wrapping_add(2 * width + release) & mask);
            self.ctx.next_eip = offset;
            return Ok(());
        }
        let new_esp = self.peek_stack(bus, 2 * width + release, width)?;
        let new_ss = self.peek_stack(bus, 3 * width + release, 2)? as u16;
        let ss = self
            .load_stack_for_cpl(bus, new_ss, sel.rpl(), 0)
            .map_err(to_gp)?;
        self.set_descriptor_accessed(bus, sel, d)?;
        self.state.seg[SegReg::Cs as usize] = d.with_accessed().to_cache(selector);
        self.state.seg[SegReg::Ss as usize] = ss;
        let new_mask = if ss.is_32bit() { 0xFFFF_FFFF } else { 0xFFFF };
        let e = self.state.gpr[4];
        self.state.gpr[4] = (e & !new_mask) | (new_esp.wrapping_add(release) & new_mask);
        self.ctx.next_eip = offset;
        self.drop_inaccessible_segments();
        Ok(())
    }

    /// IRET in protected mode: the nested-task return, returns within and
    /// to outer levels, and the return to virtual-8086 mode.
    pub(crate) fn iret_protected<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        width: u32,
    ) -> Result<(), Exception> {
        if self.state.eflags & eflags::NT != 0 {
            let link = self.read_linear_system(bus, self.state.tr.base, 2)? as u16;
            let next = self.ctx.next_eip;
            self.task_switch(bus, Selector(link), TaskSwitchReason::Iret, None, next)?;
            self.ctx.next_eip = self.state.eip;
            return Ok(());
        }
        let offset = self.peek_stack(bus, 0, width)?;
        let selector = self.peek_stack(bus, width, 2)? as u16;
        let flags = self.peek_stack(bus, 2 * width, width)?;
        let cpl = self.state.cpl();
        if width == 4 && flags & eflags::VM != 0 && cpl == 0 {
            return self.iret_to_v86(bus, offset, selector, flags);
        }
        let (sel, d) = self.check_return_code(bus, selector)?;
        let offset = if width == 2 { offset & 0xFFFF } else { offset };
        if offset > d.limit() {
            return Err(Exception::GeneralProtection(0));
        }
        let mask = self.stack_mask();
        let esp = self.state.gpr[4];
        let outer = sel.rpl() > cpl;
        let new_stack = if outer {
            let new_esp = self.peek_stack(bus, 3 * width, width)?;
            let new_ss = self.peek_stack(bus, 4 * width, 2)? as u16;
            Some((
                self.load_stack_for_cpl(bus, new_ss, sel.rpl(), 0)
                    .map_err(to_gp)?,
                new_esp,
            ))
        } else {
            None
        };
        self.set_descriptor_accessed(bus, sel, d)?;
        // Flags are loaded with the privilege of the IRET itself.
        self.load_iret_flags(flags, width);
        self.state.seg[SegReg::Cs as usize] = d.with_accessed().to_cache(selector);
        match new_stack {
            Some((ss, new_esp)) => {
                self.state.seg[SegReg::Ss as usize] = ss;
                let m = if ss.is_32bit() { 0xFFFF_FFFF } else { 0xFFFF };
                let e = self.state.gpr[4];
                self.state.gpr[4] = (e & !m) | (new_esp & m);
                self.drop_inaccessible_segments();
            }
            None => self.state.gpr[4] = (esp & !mask) | (esp.wrapping_add(3 * width) & mask),
        }
        self.ctx.next_eip = offset;
        Ok(())
    }

    /// EFLAGS from an IRET frame: RF too, IOPL only at CPL 0, IF only at
    /// CPL <= IOPL, VIF/VIP only at CPL 0; VM is never set here.
    fn load_iret_flags(&mut self, flags: u32, width: u32) {
        let rf_vif = self.state.eflags & (eflags::VIF | eflags::VIP);
        self.load_flags(flags, width);
        if width == 4 {
            let s = &mut self.state;
            s.eflags = (s.eflags & !eflags::RF) | (flags & eflags::RF);
            if s.cpl() == 0 {
                s.eflags = (s.eflags & !(eflags::VIF | eflags::VIP))
                    | (flags & (eflags::VIF | eflags::VIP));
            } else {
                s.eflags = (s.eflags & !(eflags::VIF | eflags::VIP)) | rf_vif;
            }
        }
    }

    /// IRET from ring 0 to virtual-8086 mode (SDM Vol. 2A, IRET
    /// "RETURN-TO-VIRTUAL-8086-MODE"): the frame also holds ESP, SS, ES, DS,
    /// FS and GS.
    fn iret_to_v86<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        offset: u32,
        cs: u16,
        flags: u32,
    ) -> Result<(), Exception> {
        let mut vals = [0u32; 6];
        for (i, v) in vals.iter_mut().enumerate() {
            *v = self.peek_stack(bus, 12 + 4 * i as u32, 4)?;
        }
        let [esp, ss, es, ds, fs, gs] = vals;
        let s = &mut self.state;
        s.commit_flags();
        s.eflags = (flags & 0x003F_7FD5) | eflags::RESERVED1 | eflags::VM;
        for (seg, sel) in [
            (SegReg::Cs, cs),
            (SegReg::Ss, ss as u16),
            (SegReg::Es, es as u16),
            (SegReg::Ds, ds as u16),
            (SegReg::Fs, fs as u16),
            (SegReg::Gs, gs as u16),
        ] {
            let mut c = SegmentCache::real_mode(sel);
            c.flags |= 3 << seg_flags::DPL_SHIFT;
            if seg == SegReg::Cs {
                c.flags |= seg_flags::CODE;
            }
            s.seg[seg as usize] = c;
        }
        s.gpr[4] = esp;
        self.ctx.next_eip = offset & 0xFFFF;
        Ok(())
    }
}

/// A stack check on a return reports #GP, not #TS.
fn to_gp(e: Exception) -> Exception {
    match e {
        Exception::InvalidTss(c) => Exception::GeneralProtection(c),
        other => other,
    }
}
