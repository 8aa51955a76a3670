//! Interrupt and exception delivery (Intel SDM Vol. 3A, 6.4 "Sources of
//! Interrupts", 6.15 "Exception and Interrupt Reference"; Vol. 1, 6.5.1
//! "Call and Return Operation for Interrupt or Exception Handling
//! Procedures" for the real-mode interrupt vector table).
//!
//! This is the one place where an interrupt enters the CPU: faults returned
//! by instruction handlers, software INT n, and external interrupts.
//! Protected-mode delivery through the IDT is built with the system ISA; a
//! guest that needs it before then is stopped with a shutdown that says so.

use crate::bus::Bus;
use crate::cpu::{Cpu, StepOutcome};
use crate::exception::Exception;
use crate::model::CpuModel;
use crate::state::{eflags, SegReg};

/// Where an interrupt came from (decides DPL checks and error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A processor exception.
    Exception(Exception),
    /// INT n, INT3, INTO (software).
    Software,
    /// The INTR pin (interrupt controller).
    External,
}

impl Cpu {
    /// Delivers an exception raised by the instruction at `ctx.start_eip`,
    /// escalating to a double fault and then to shutdown if delivery faults.
    pub fn raise<B: Bus + ?Sized>(&mut self, bus: &mut B, e: Exception) -> StepOutcome {
        let mut eip = self.state.eip;
        // The 8086 pushes the address of the next instruction for #DE.
        if e == Exception::DivideError && self.state.model == CpuModel::I8086 {
            eip = self.ctx.next_eip;
        }
        self.state.halted = false;
        self.last_exception = Some(e);
        self.deliver(bus, e.vector(), eip, Source::Exception(e))
    }

    /// Delivers interrupt `vector` with `return_eip` as the saved EIP.
    pub fn deliver<B: Bus + ?Sized>(&mut self, bus: &mut B, vector: u8, return_eip: u32, source: Source) -> StepOutcome {
        if let Source::Exception(Exception::PageFault { linear, .. }) = source {
            self.state.cr2 = linear;
        }
        match self.enter_interrupt(bus, vector, return_eip, source) {
            Ok(()) => StepOutcome::Continue,
            Err(second) => {
                if matches!(source, Source::Exception(Exception::DoubleFault)) {
                    self.shutdown_reason = Some(format!("triple fault: {second} while delivering #DF"));
                    return StepOutcome::Shutdown;
                }
                if matches!(second, Exception::DoubleFault) {
                    return StepOutcome::Shutdown;
                }
                self.deliver(bus, 8, return_eip, Source::Exception(Exception::DoubleFault))
            }
        }
    }

    /// Pushes the return frame and loads the handler's CS:EIP.
    pub(crate) fn enter_interrupt<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        vector: u8,
        return_eip: u32,
        source: Source,
    ) -> Result<(), Exception> {
        if self.state.protected_mode() || self.state.eflags & eflags::VM != 0 {
            self.shutdown_reason =
                Some(format!("protected-mode delivery of vector {vector} ({source:?}) is not built yet"));
            return Err(Exception::DoubleFault);
        }
        // Real mode: the IVT holds 4-byte IP:CS vectors (SDM Vol. 3A, 20.1.4).
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
        let pushed = self.push(bus, flags & 0xFFFF, 2).and_then(|_| self.push(bus, cs_old, 2)).and_then(|_| {
            self.push(bus, return_eip & 0xFFFF, 2)
        });
        if let Err(e) = pushed {
            self.state.gpr[4] = esp;
            return Err(e);
        }
        self.state.eflags &= !(eflags::IF | eflags::TF | eflags::AC | eflags::RF);
        self.state.set_real_mode_segment(SegReg::Cs, cs as u16);
        self.state.eip = ip;
        Ok(())
    }
}
