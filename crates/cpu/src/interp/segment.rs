//! Segment-register loads: MOV Sreg, POP Sreg, LDS/LES/LFS/LGS/LSS
//! (Intel SDM Vol. 2A "LDS/LES/LFS/LGS/LSS", Vol. 2B "MOV", "POP"; Vol. 3A,
//! 20.1.1 "Address Translation in Real-Address Mode").
//!
//! In real mode a load sets the selector and base (selector * 16) and keeps
//! the cached limit and attributes, which is what makes "unreal mode" work.
//! Virtual-8086 loads also reset the limit to 64 KiB. Descriptor loads in
//! protected mode belong to the system ISA.

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::state::{cr0, eflags, seg_flags, SegReg};
use iced_x86::{Instruction, Mnemonic};

impl Cpu {
    /// Loads segment register `seg` with `selector` as the current mode does.
    pub fn load_segment(&mut self, seg: SegReg, selector: u16) -> Result<(), Exception> {
        let s = &mut self.state;
        if s.cr0 & cr0::PE == 0 {
            s.set_real_mode_segment(seg, selector);
            return Ok(());
        }
        if s.eflags & eflags::VM != 0 {
            let c = &mut s.seg[seg as usize];
            *c = crate::state::SegmentCache::real_mode(selector);
            c.flags |= 3 << seg_flags::DPL_SHIFT;
            return Ok(());
        }
        // Protected-mode descriptor loads come with the system ISA.
        Err(Exception::GeneralProtection(selector & 0xFFFC))
    }
}

/// `LDS/LES/LFS/LGS/LSS reg, m16:16|m16:32`: offset first, then selector.
pub fn load_far_pointer<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let w = super::operand::op_width(insn, 0);
    let offset = cpu.read_mem_operand(insn, 0, w, bus)?;
    let selector = cpu.read_mem_operand(insn, w, 2, bus)? as u16;
    let seg = match insn.mnemonic() {
        Mnemonic::Lds => SegReg::Ds,
        Mnemonic::Les => SegReg::Es,
        Mnemonic::Lfs => SegReg::Fs,
        Mnemonic::Lgs => SegReg::Gs,
        _ => SegReg::Ss,
    };
    cpu.load_segment(seg, selector)?;
    if seg == SegReg::Ss {
        cpu.state.interrupt_shadow = true;
    }
    cpu.write_op(insn, 0, offset, bus)
}
