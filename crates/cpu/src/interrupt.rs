//! Interrupt and exception delivery (Intel SDM Vol. 3A, 6.4 "Sources of
//! Interrupts", 6.12 "Exception and Interrupt Handling", 6.15 "Exception and
//! Interrupt Reference" with table 6-5 for double faults; 20.1.4 for the
//! real-mode interrupt vector table; 20.3 "Interrupt and Exception Handling
//! in Virtual-8086 Mode").
//!
//! This is the one place where an interrupt enters the CPU: faults returned
//! by instruction handlers, software INT n, and external interrupts. A fault
//! during delivery escalates by the double-fault rules; a fault while
//! delivering #DF is a triple fault, which the machine turns into a reset.

use crate::bus::Bus;
use crate::cpu::{Cpu, StepOutcome};
use crate::descriptor::{system_type, Selector};
use crate::exception::Exception;
use crate::flags::Flags;
use crate::model::CpuModel;
use crate::state::{cr0, eflags, SegReg, SegmentCache};
use crate::task::TaskSwitchReason;

/// Where an interrupt came from (decides DPL checks and error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A processor exception.
    Exception(Exception),
    /// INT n, INT3, INTO (software: the gate's DPL is checked).
    Software,
    /// INT1 / ICEBP: a software trap without the DPL check.
    Icebp,
    /// The INTR pin (interrupt controller), or NMI.
    External,
}

impl Source {
    /// The EXT bit of error codes: set unless a software interrupt caused it.
    fn ext(self) -> u16 {
        u16::from(!matches!(self, Source::Software))
    }
}

/// The double-fault class of an exception (SDM Vol. 3A, table 6-4).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Benign,
    Contributory,
    PageFault,
    DoubleFault,
}

fn class(e: Exception) -> Class {
    match e {
        Exception::DivideError
        | Exception::InvalidTss(_)
        | Exception::SegmentNotPresent(_)
        | Exception::StackFault(_)
        | Exception::GeneralProtection(_) => Class::Contributory,
        Exception::PageFault { .. } => Class::PageFault,
        Exception::DoubleFault => Class::DoubleFault,
        _ => Class::Benign,
    }
}

/// A 32- or 16-bit stack being written during delivery, committed only
/// when every push has succeeded.
struct NewStack {
    ss: SegmentCache,
    esp: u32,
    user: bool,
    /// The EXT bit for a #SS raised while pushing.
    ext: u16,
}

impl Cpu {
    /// Delivers an exception raised by the instruction at `ctx.start_eip`.
    pub fn raise<B: Bus + ?Sized>(&mut self, bus: &mut B, e: Exception) -> StepOutcome {
        let mut eip = self.state.eip;
        // The 8086 pushes the address of the next instruction for #DE.
        if e == Exception::DivideError && self.state.model == CpuModel::I8086 {
            eip = self.ctx.next_eip;
        }
        self.state.halted = false;
        self.last_exception = Some(e);
        // Fault-class exceptions push RF = 1 so that the return does not
        // re-trigger an instruction breakpoint (SDM Vol. 3A, 17.3.1.1).
        if !e.is_trap() && self.state.model == CpuModel::P6 {
            self.state.eflags |= eflags::RF;
        }
        self.deliver(bus, e.vector(), eip, Source::Exception(e))
    }

    /// Delivers interrupt `vector` with `return_eip` as the saved EIP,
    /// applying the double-fault rules when delivery itself faults.
    pub fn deliver<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        vector: u8,
        return_eip: u32,
        source: Source,
    ) -> StepOutcome {
        let mut vector = vector;
        let mut source = source;
        let mut return_eip = return_eip;
        loop {
            if let Source::Exception(Exception::PageFault { linear, .. }) = source {
                self.state.cr2 = linear;
            }
            let tr = self.state.tr.selector;
            let second = match self.enter_interrupt(bus, vector, return_eip, source) {
                Ok(()) => return StepOutcome::Continue,
                Err(e) => e,
            };
            if self.state.tr.selector != tr {
                // A task gate switched tasks before the fault: it belongs
                // to the new task, at the new task's EIP.
                return_eip = self.state.eip;
            }
            let first = match source {
                Source::Exception(e) => class(e),
                _ => Class::Benign,
            };
            let next = match (first, class(second)) {
                (
                    Class::DoubleFault,
                    Class::Contributory | Class::PageFault | Class::DoubleFault,
                ) => {
                    self.shutdown_reason =
                        Some(format!("triple fault: {second} while delivering #DF"));
                    return StepOutcome::Shutdown;
                }
                (Class::Contributory, Class::Contributory)
                | (Class::PageFault, Class::Contributory | Class::PageFault) => {
                    Exception::DoubleFault
                }
                _ => second,
            };
            vector = next.vector();
            source = Source::Exception(next);
        }
    }

    /// Pushes the return frame and loads the handler for the current mode.
    pub(crate) fn enter_interrupt<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        vector: u8,
        return_eip: u32,
        source: Source,
    ) -> Result<(), Exception> {
        if self.state.cr0 & cr0::PE == 0 {
            return self.enter_real_mode_interrupt(bus, vector, return_eip);
        }
        self.enter_protected_mode_interrupt(bus, vector, return_eip, source)
    }

    /// Real mode: the IVT holds 4-byte IP:CS vectors (SDM Vol. 3A, 20.1.4).
    fn enter_real_mode_interrupt<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        vector: u8,
        return_eip: u32,
    ) -> Result<(), Exception> {
        let entry = u32::from(vector) * 4;
        if entry + 3 > u32::from(self.state.idtr.limit) {
            return Err(Exception::GeneralProtection(0));
        }
        let base = self.state.idtr.base;
        let ip = self.read_linear(bus, base.wrapping_add(entry), 2)?;
        let cs = self.read_linear(bus, base.wrapping_add(entry + 2), 2)?;
        let flags = self.flags_image();
        let cs_old = u32::from(self.state.seg[SegReg::Cs as usize].selector);
        let esp = self.state.gpr[4];
        let pushed = self
            .push(bus, flags & 0xFFFF, 2)
            .and_then(|_| self.push(bus, cs_old, 2))
            .and_then(|_| self.push(bus, return_eip & 0xFFFF, 2));
        if let Err(e) = pushed {
            self.state.gpr[4] = esp;
            return Err(e);
        }
        self.state.eflags &= !(eflags::IF | eflags::TF | eflags::AC | eflags::RF);
        self.state.set_real_mode_segment(SegReg::Cs, cs as u16);
        self.state.eip = ip;
        Ok(())
    }

    /// Pushes `value` (`size` bytes) on a stack being built for delivery,
    /// checking the new SS's limit (expand-down aware) and paging.
    fn push_new<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        st: &mut NewStack,
        value: u32,
        size: u32,
    ) -> Result<(), Exception> {
        let mask = if st.ss.is_32bit() {
            0xFFFF_FFFF
        } else {
            0xFFFF
        };
        let sp = st.esp.wrapping_sub(size) & mask;
        let expand_down = st.ss.flags & crate::state::seg_flags::DC != 0;
        let last = u64::from(sp) + u64::from(size) - 1;
        let ok = if expand_down {
            sp > st.ss.limit && last <= u64::from(mask)
        } else {
            last <= u64::from(st.ss.limit)
        };
        if !ok {
            // A fault on the handler's stack carries EXT unless the event
            // was a software interrupt (SDM Vol. 3A, 6.13).
            return Err(Exception::StackFault(st.ext));
        }
        self.write_linear_as(bus, st.ss.base.wrapping_add(sp), size, value, st.user)?;
        st.esp = (st.esp & !mask) | sp;
        Ok(())
    }

    /// Protected mode and virtual-8086 mode: through an IDT gate, with a
    /// stack switch from the TSS when the handler is more privileged.
    fn enter_protected_mode_interrupt<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        vector: u8,
        return_eip: u32,
        source: Source,
    ) -> Result<(), Exception> {
        let ext = source.ext();
        let idt_code = u16::from(vector) * 8 + 2 + ext;
        let entry = u32::from(vector) * 8;
        if entry + 7 > u32::from(self.state.idtr.limit) {
            return Err(Exception::GeneralProtection(idt_code));
        }
        let base = self.state.idtr.base;
        let lo = self.read_linear_system(bus, base.wrapping_add(entry), 4)?;
        let hi = self.read_linear_system(bus, base.wrapping_add(entry + 4), 4)?;
        let gate = crate::descriptor::Descriptor(u64::from(lo) | (u64::from(hi) << 32));
        let cpl = self.state.cpl();
        let v86 = self.state.eflags & eflags::VM != 0;
        let typ = gate.typ();
        let is_gate = !gate.is_code_or_data()
            && matches!(
                typ,
                system_type::TASK_GATE
                    | system_type::INTERRUPT_GATE16
                    | system_type::TRAP_GATE16
                    | system_type::INTERRUPT_GATE32
                    | system_type::TRAP_GATE32
            );
        if !is_gate {
            return Err(Exception::GeneralProtection(idt_code));
        }
        if source == Source::Software && gate.dpl() < cpl {
            return Err(Exception::GeneralProtection(idt_code));
        }
        if !gate.present() {
            return Err(Exception::SegmentNotPresent(idt_code));
        }
        let error_code = match source {
            Source::Exception(e) => e.error_code(),
            _ => None,
        };
        if typ == system_type::TASK_GATE {
            let tss = gate.gate_selector();
            return self.task_switch(
                bus,
                tss,
                TaskSwitchReason::Interrupt,
                error_code,
                return_eip,
            );
        }
        let sel = gate.gate_selector();
        if sel.is_null() {
            return Err(Exception::GeneralProtection(ext));
        }
        let code = self
            .read_descriptor(bus, sel, Exception::GeneralProtection)
            .map_err(|e| with_ext(e, ext))?;
        if !code.is_code() || code.dpl() > cpl {
            return Err(Exception::GeneralProtection(sel.error_code() | ext));
        }
        if !code.present() {
            return Err(Exception::SegmentNotPresent(sel.error_code() | ext));
        }
        let gate32 = typ & 8 != 0;
        let size = if gate32 { 4 } else { 2 };
        let offset = gate.gate_offset();
        let conforming = code.conforming_or_expand_down();
        let new_cpl = if conforming { cpl } else { code.dpl() };
        let flags = self.flags_image();
        let old_cs = u32::from(self.state.seg[SegReg::Cs as usize].selector);
        let old_ss = u32::from(self.state.seg[SegReg::Ss as usize].selector);
        let old_esp = self.state.gpr[4];
        let mut st;
        if new_cpl < cpl {
            if v86 && new_cpl != 0 {
                return Err(Exception::GeneralProtection(sel.error_code() | ext));
            }
            let (ss_sel, esp) = self.tss_stack(bus, new_cpl, ext)?;
            let ss = self.load_stack_for_cpl(bus, ss_sel, new_cpl, ext)?;
            st = NewStack {
                ss,
                esp,
                user: false,
                ext,
            };
            if v86 {
                for seg in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
                    let v = u32::from(self.state.seg[seg as usize].selector);
                    self.push_new(bus, &mut st, v, size)?;
                }
            }
            self.push_new(bus, &mut st, old_ss, size)?;
            self.push_new(bus, &mut st, old_esp, size)?;
        } else {
            if v86 {
                return Err(Exception::GeneralProtection(sel.error_code() | ext));
            }
            st = NewStack {
                ss: self.state.seg[SegReg::Ss as usize],
                esp: old_esp,
                user: cpl == 3,
                ext,
            };
        }
        if offset > code.limit() {
            return Err(Exception::GeneralProtection(ext));
        }
        self.push_new(bus, &mut st, flags, size)?;
        self.push_new(bus, &mut st, old_cs, size)?;
        self.push_new(bus, &mut st, return_eip, size)?;
        if let Some(c) = error_code {
            self.push_new(bus, &mut st, c, size)?;
        }
        // Commit: nothing below can fault.
        self.set_descriptor_accessed(bus, sel, code)?;
        let s = &mut self.state;
        if new_cpl < cpl {
            s.seg[SegReg::Ss as usize] = st.ss;
        }
        s.gpr[4] = st.esp;
        if v86 {
            for seg in [SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs] {
                s.seg[seg as usize] = SegmentCache::default();
            }
        }
        s.seg[SegReg::Cs as usize] = code
            .with_accessed()
            .to_cache((sel.0 & !3) | u16::from(new_cpl));
        s.commit_flags();
        s.eflags &= !(eflags::TF | eflags::NT | eflags::VM | eflags::RF);
        if typ & 1 == 0 {
            s.eflags &= !eflags::IF; // interrupt gate (trap gates keep IF)
        }
        s.eip = if gate32 { offset } else { offset & 0xFFFF };
        Ok(())
    }

    /// SS:ESP for privilege level `cpl` from the current TSS (SDM Vol. 3A,
    /// 7.2.1 "Task-State Segment"): #TS(TR selector) if outside its limit.
    pub(crate) fn tss_stack<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        cpl: u8,
        ext: u16,
    ) -> Result<(u16, u32), Exception> {
        let tr = self.state.tr;
        let ts = Exception::InvalidTss(tr.selector & 0xFFFC | ext);
        let tss32 = matches!(
            (tr.flags & 0xF) as u8,
            system_type::TSS32_AVAILABLE | system_type::TSS32_BUSY
        );
        let cpl = u32::from(cpl);
        if tss32 {
            let at = 4 + cpl * 8;
            if at + 5 > tr.limit {
                return Err(ts);
            }
            let esp = self.read_linear_system(bus, tr.base.wrapping_add(at), 4)?;
            let ss = self.read_linear_system(bus, tr.base.wrapping_add(at + 4), 2)? as u16;
            Ok((ss, esp))
        } else {
            let at = 2 + cpl * 4;
            if at + 3 > tr.limit {
                return Err(ts);
            }
            let sp = self.read_linear_system(bus, tr.base.wrapping_add(at), 2)?;
            let ss = self.read_linear_system(bus, tr.base.wrapping_add(at + 2), 2)? as u16;
            Ok((ss, sp))
        }
    }

    /// Checks a new stack segment for privilege level `cpl` taken from the
    /// TSS or a far return (#TS for TSS stacks) and returns its cache.
    pub(crate) fn load_stack_for_cpl<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        selector: u16,
        cpl: u8,
        ext: u16,
    ) -> Result<SegmentCache, Exception> {
        let sel = Selector(selector);
        if sel.is_null() {
            return Err(Exception::InvalidTss(ext));
        }
        let ts = Exception::InvalidTss(sel.error_code() | ext);
        let d = self
            .read_descriptor(bus, sel, Exception::InvalidTss)
            .map_err(|e| with_ext(e, ext))?;
        if sel.rpl() != cpl || d.dpl() != cpl || !d.is_data() || !d.readable_or_writable() {
            return Err(ts);
        }
        if !d.present() {
            return Err(Exception::StackFault(sel.error_code() | ext));
        }
        self.set_descriptor_accessed(bus, sel, d)?;
        Ok(d.with_accessed().to_cache(selector))
    }
}

/// Adds the EXT bit to a selector error code.
fn with_ext(e: Exception, ext: u16) -> Exception {
    match e {
        Exception::GeneralProtection(c) => Exception::GeneralProtection(c | ext),
        Exception::InvalidTss(c) => Exception::InvalidTss(c | ext),
        Exception::SegmentNotPresent(c) => Exception::SegmentNotPresent(c | ext),
        Exception::StackFault(c) => Exception::StackFault(c | ext),
        other => other,
    }
}
