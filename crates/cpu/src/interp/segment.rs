//! Segment-register loads: MOV Sreg, POP Sreg, LDS/LES/LFS/LGS/LSS
//! (Intel SDM Vol. 2A "LDS/LES/LFS/LGS/LSS", Vol. 2B "MOV", "POP"; Vol. 3A,
//! 20.1.1 "Address Translation in Real-Address Mode").
//!
//! In real mode a load sets the selector and base (selector * 16) and keeps
//! the cached limit and attributes, which is what makes "unreal mode" work.
//! Virtual-8086 loads also reset the limit to 64 KiB. In protected mode the
//! descriptor is read from the GDT or LDT and checked (SDM Vol. 3A, 5.5
//! "Privilege Levels", 5.7 "Privilege Level Checking When Loading the SS
//! Register").

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::descriptor::Selector;
use crate::exception::Exception;
use crate::state::{cr0, eflags, seg_flags, SegReg, SegmentCache};
use iced_x86::{Instruction, Mnemonic};

impl Cpu {
    /// Loads segment register `seg` (not CS) with `selector` as the current
    /// mode does (SDM Vol. 2B "MOV", "POP": the protected-mode checks).
    pub fn load_segment<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        selector: u16,
    ) -> Result<(), Exception> {
        let s = &mut self.state;
        if s.cr0 & cr0::PE == 0 {
            s.set_real_mode_segment(seg, selector);
            return Ok(());
        }
        if s.eflags & eflags::VM != 0 {
            let c = &mut s.seg[seg as usize];
            *c = SegmentCache::real_mode(selector);
            c.flags |= 3 << seg_flags::DPL_SHIFT;
            if seg == SegReg::Cs {
                c.flags |= seg_flags::CODE;
            }
            return Ok(());
        }
        let sel = Selector(selector);
        let cpl = s.cpl();
        if sel.is_null() {
            if seg == SegReg::Ss {
                return Err(Exception::GeneralProtection(0));
            }
            // A null selector loads; any later access through it faults.
            s.seg[seg as usize] = SegmentCache {
                selector,
                ..SegmentCache::default()
            };
            return Ok(());
        }
        let d = self.read_descriptor(bus, sel, Exception::GeneralProtection)?;
        let gp = Exception::GeneralProtection(sel.error_code());
        if seg == SegReg::Ss {
            if sel.rpl() != cpl || !d.is_data() || !d.readable_or_writable() || d.dpl() != cpl {
                return Err(gp);
            }
            if !d.present() {
                return Err(Exception::StackFault(sel.error_code()));
            }
        } else {
            let readable = d.is_data() || (d.is_code() && d.readable_or_writable());
            if !readable {
                return Err(gp);
            }
            let conforming_code = d.is_code() && d.conforming_or_expand_down();
            if !conforming_code && (sel.rpl() > d.dpl() || cpl > d.dpl()) {
                return Err(gp);
            }
            if !d.present() {
                return Err(Exception::SegmentNotPresent(sel.error_code()));
            }
        }
        self.set_descriptor_accessed(bus, sel, d)?;
        self.state.seg[seg as usize] = d.with_accessed().to_cache(selector);
        Ok(())
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
    // Unlike MOV SS and POP SS, LSS sets no interrupt shadow: it loads
    // SS:ESP in one instruction.
    cpu.load_segment(bus, seg, selector)?;
    cpu.write_op(insn, 0, offset, bus)
}
