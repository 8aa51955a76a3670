//! System instructions: LGDT SGDT LIDT SIDT LLDT SLDT LTR STR LAR LSL VERR
//! VERW ARPL LMSW SMSW CLTS, MOV to and from control and debug registers,
//! INVD WBINVD INVLPG, RDMSR WRMSR, SYSENTER SYSEXIT (Intel SDM Vol. 2A-2B;
//! Vol. 3A, 2.5 "Control Registers", 2.8 "System Instruction Summary",
//! 17.2 "Debug Registers"; Vol. 4 for the MSR numbers).

use super::operand::op_width;
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::descriptor::{system_type, Descriptor, Selector};
use crate::exception::Exception;
use crate::flags::{flag_if, Flags};
use crate::model::CpuModel;
use crate::paging::{cr4, EFER_NXE};
use crate::state::eflags::ZF;
use crate::state::{cr0, eflags, SegReg, SegmentCache};
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

/// #GP(0) unless at CPL 0 (real mode counts as CPL 0; V86 is CPL 3).
fn require_cpl0(cpu: &Cpu) -> Result<(), Exception> {
    if cpu.state.cpl() != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(())
}

/// #UD outside protected mode (for LLDT, LTR, LAR, VERR and the like).
fn require_protected(cpu: &Cpu) -> Result<(), Exception> {
    if !cpu.state.protected_mode() {
        return Err(Exception::InvalidOpcode);
    }
    Ok(())
}

/// `LGDT`/`LIDT m16&32`: with a 16-bit operand only 24 bits of base load.
pub fn lgdt_lidt<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_cpl0(cpu)?;
    let limit = cpu.read_mem_operand(insn, 0, 2, bus)? as u16;
    let mut base = cpu.read_mem_operand(insn, 2, 4, bus)?;
    if !cpu.ctx.op32 {
        base &= 0x00FF_FFFF;
    }
    let table = if insn.mnemonic() == Mnemonic::Lgdt {
        &mut cpu.state.gdtr
    } else {
        &mut cpu.state.idtr
    };
    table.base = base;
    table.limit = limit;
    Ok(())
}

/// `SGDT`/`SIDT m`: limit then base; a 16-bit operand stores 24 bits of base
/// and a zero (0xFF on the 286) sixth byte.
pub fn sgdt_sidt<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let t = if insn.mnemonic() == Mnemonic::Sgdt {
        cpu.state.gdtr
    } else {
        cpu.state.idtr
    };
    let mut base = t.base;
    if !cpu.ctx.op32 {
        base = (base & 0x00FF_FFFF)
            | if cpu.state.model == CpuModel::I286 {
                0xFF00_0000
            } else {
                0
            };
    }
    let seg = cpu.memory_segment(insn);
    let off = cpu.effective_offset(insn);
    let mask = cpu.addr_mask();
    cpu.check_write(bus, seg, off, 2)?;
    cpu.check_write(bus, seg, off.wrapping_add(2) & mask, 4)?;
    cpu.write_mem(bus, seg, off, 2, u32::from(t.limit))?;
    cpu.write_mem(bus, seg, off.wrapping_add(2) & mask, 4, base)
}

/// `SLDT`/`STR r/m16`: the selector (zero-extended into a 32-bit register).
pub fn sldt_str<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_protected(cpu)?;
    let sel = if insn.mnemonic() == Mnemonic::Sldt {
        cpu.state.ldtr.selector
    } else {
        cpu.state.tr.selector
    };
    cpu.write_op(insn, 0, u32::from(sel), bus)
}

/// `LLDT r/m16`: loads the LDT register from a GDT LDT descriptor.
pub fn lldt<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_protected(cpu)?;
    require_cpl0(cpu)?;
    let sel = Selector(cpu.read_op(insn, 0, bus)? as u16);
    if sel.is_null() {
        cpu.state.ldtr = SegmentCache {
            selector: sel.0,
            ..SegmentCache::default()
        };
        return Ok(());
    }
    if sel.is_ldt() {
        return Err(Exception::GeneralProtection(sel.error_code()));
    }
    let d = cpu.read_descriptor(bus, sel, Exception::GeneralProtection)?;
    if d.is_code_or_data() || d.typ() != system_type::LDT {
        return Err(Exception::GeneralProtection(sel.error_code()));
    }
    if !d.present() {
        return Err(Exception::SegmentNotPresent(sel.error_code()));
    }
    cpu.state.ldtr = d.to_cache(sel.0);
    Ok(())
}

/// `LTR r/m16`: loads the task register from an available TSS descriptor
/// and marks it busy.
pub fn ltr<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_protected(cpu)?;
    require_cpl0(cpu)?;
    let sel = Selector(cpu.read_op(insn, 0, bus)? as u16);
    if sel.is_null() {
        return Err(Exception::GeneralProtection(0));
    }
    if sel.is_ldt() {
        return Err(Exception::GeneralProtection(sel.error_code()));
    }
    let d = cpu.read_descriptor(bus, sel, Exception::GeneralProtection)?;
    let available = matches!(
        d.typ(),
        system_type::TSS16_AVAILABLE | system_type::TSS32_AVAILABLE
    );
    if d.is_code_or_data() || !available {
        return Err(Exception::GeneralProtection(sel.error_code()));
    }
    if !d.present() {
        return Err(Exception::SegmentNotPresent(sel.error_code()));
    }
    let busy = Descriptor(d.0 | (2 << 40));
    let addr = cpu.descriptor_address(sel, Exception::GeneralProtection)?;
    cpu.write_linear_system(bus, addr.wrapping_add(5), 1, u32::from(busy.access()))?;
    cpu.state.tr = busy.to_cache(sel.0);
    Ok(())
}

/// Whether a descriptor passes the privilege test of LAR/LSL/VERR/VERW:
/// conforming code always, everything else needs DPL >= CPL and DPL >= RPL.
fn visible(cpu: &Cpu, sel: Selector, d: Descriptor) -> bool {
    let conforming_code = d.is_code() && d.conforming_or_expand_down();
    conforming_code || (d.dpl() >= cpu.state.cpl() && d.dpl() >= sel.rpl())
}

/// Reads the descriptor for LAR/LSL/VERR/VERW, or `None` (ZF = 0) when the
/// selector is null or outside its table.
fn probe<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    bus: &mut B,
    sel: Selector,
) -> Result<Option<Descriptor>, Exception> {
    if sel.is_null()
        || cpu
            .descriptor_address(sel, Exception::GeneralProtection)
            .is_err()
    {
        return Ok(None);
    }
    cpu.read_descriptor(bus, sel, Exception::GeneralProtection)
        .map(Some)
}

/// `LAR r, r/m16`: the access rights of a descriptor, ZF = 1 when visible.
pub fn lar<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_protected(cpu)?;
    let sel = Selector(cpu.read_op(insn, 1, bus)? as u16);
    let ok = match probe(cpu, bus, sel)? {
        Some(d) => {
            let type_ok = d.is_code_or_data() || matches!(d.typ(), 1 | 2 | 3 | 4 | 5 | 9 | 11 | 12);
            if type_ok && visible(cpu, sel, d) {
                let rights = ((d.0 >> 32) as u32)
                    & if op_width(insn, 0) == 4 {
                        0x00FF_FF00
                    } else {
                        0xFF00
                    };
                cpu.write_op(insn, 0, rights, bus)?;
                true
            } else {
                false
            }
        }
        None => false,
    };
    cpu.state.set_status(ZF, flag_if(ok, ZF));
    Ok(())
}

/// `LSL r, r/m16`: the byte-granular segment limit, ZF = 1 when visible.
pub fn lsl<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_protected(cpu)?;
    let sel = Selector(cpu.read_op(insn, 1, bus)? as u16);
    let ok = match probe(cpu, bus, sel)? {
        Some(d) => {
            let type_ok = d.is_code_or_data() || matches!(d.typ(), 1 | 2 | 3 | 9 | 11);
            if type_ok && visible(cpu, sel, d) {
                cpu.write_op(insn, 0, d.limit(), bus)?;
                true
            } else {
                false
            }
        }
        None => false,
    };
    cpu.state.set_status(ZF, flag_if(ok, ZF));
    Ok(())
}

/// `VERR`/`VERW r/m16`: ZF = 1 if the segment is readable / writable from here.
pub fn verr_verw<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_protected(cpu)?;
    let sel = Selector(cpu.read_op(insn, 0, bus)? as u16);
    let write = insn.mnemonic() == Mnemonic::Verw;
    let ok = match probe(cpu, bus, sel)? {
        Some(d) if d.is_code_or_data() => {
            let kind_ok = if write {
                d.is_data() && d.readable_or_writable()
            } else {
                d.is_data() || d.readable_or_writable()
            };
            kind_ok && visible(cpu, sel, d)
        }
        _ => false,
    };
    cpu.state.set_status(ZF, flag_if(ok, ZF));
    Ok(())
}

/// `ARPL r/m16, r16`: raise the destination's RPL to the source's (ZF = 1).
pub fn arpl<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_protected(cpu)?;
    let dst = cpu.read_op(insn, 0, bus)?;
    let src = cpu.read_op(insn, 1, bus)?;
    let raise = dst & 3 < src & 3;
    if raise {
        cpu.write_op(insn, 0, (dst & !3) | (src & 3), bus)?;
    }
    cpu.state.set_status(ZF, flag_if(raise, ZF));
    Ok(())
}

/// `SMSW r/m`: the low word of CR0 (a 32-bit register gets all of CR0).
pub fn smsw<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let v = cpu.state.cr0;
    cpu.write_op(insn, 0, v, bus)
}

/// `LMSW r/m16`: loads PE, MP, EM, TS; PE cannot be cleared this way.
pub fn lmsw<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_cpl0(cpu)?;
    let v = cpu.read_op(insn, 0, bus)?;
    let old = cpu.state.cr0;
    let bits = cr0::PE | cr0::MP | cr0::EM | cr0::TS;
    let new = (old & !(bits & !cr0::PE)) | (v & bits) | (old & cr0::PE);
    cpu.write_cr0(new)
}

/// `CLTS`: clears CR0.TS.
pub fn clts<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    require_cpl0(cpu)?;
    cpu.state.cr0 &= !cr0::TS;
    Ok(())
}

/// `INVD`/`WBINVD`: no caches are modelled; privilege is still checked.
pub fn invd<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    require_cpl0(cpu)
}

/// `INVLPG m`: drops the soft-TLB entry for the operand's linear address.
pub fn invlpg<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    require_cpl0(cpu)?;
    let seg = cpu.memory_segment(insn);
    let linear = cpu.state.seg[seg as usize]
        .base
        .wrapping_add(cpu.effective_offset(insn));
    cpu.tlb.invalidate_page(linear);
    Ok(())
}

/// The control-register number of an iced register, if it is one.
fn cr_number(r: Register) -> Option<u32> {
    let (v, base) = (r as u32, Register::CR0 as u32);
    (base..base + 16).contains(&v).then(|| v - base)
}

/// The debug-register number of an iced register, if it is one.
fn dr_number(r: Register) -> Option<u32> {
    let (v, base) = (r as u32, Register::DR0 as u32);
    (base..base + 16).contains(&v).then(|| v - base)
}

/// Whether a MOV has a control or debug register operand.
pub fn is_system_mov(insn: &Instruction) -> bool {
    (0..2).any(|n| {
        insn.op_kind(n) == OpKind::Register
            && (cr_number(insn.op_register(n)).is_some()
                || dr_number(insn.op_register(n)).is_some())
    })
}

impl Cpu {
    /// MOV to CR0: #GP(0) for PG without PE or NW without CD; the soft TLB
    /// is flushed when PG, WP or PE change (SDM Vol. 3A, 2.5, 4.10.4.1).
    pub fn write_cr0(&mut self, value: u32) -> Result<(), Exception> {
        let v = value | cr0::ET;
        if (v & cr0::PG != 0 && v & cr0::PE == 0) || (v & cr0::NW != 0 && v & cr0::CD == 0) {
            return Err(Exception::GeneralProtection(0));
        }
        let changed = self.state.cr0 ^ v;
        self.state.cr0 = v;
        if changed & (cr0::PG | cr0::WP | cr0::PE) != 0 {
            self.tlb.flush(false);
        }
        Ok(())
    }

    /// MOV to CR3: a new page directory; non-global translations go. The
    /// PAE PDPTEs are reloaded lazily by the next walk unless the caller
    /// (MOV CR3) loaded them already.
    pub fn write_cr3(&mut self, value: u32) {
        self.pdptes = None;
        self.state.cr3 = value;
        self.tlb.flush(true);
    }

    /// MOV to CR4: reserved bits #GP(0) (MCE and OSXMMEXCPT too: CPUID
    /// reports neither machine checks nor SSE); paging-mode changes flush
    /// the TLB.
    pub fn write_cr4(&mut self, value: u32) -> Result<(), Exception> {
        let known = cr4::VME
            | cr4::PVI
            | cr4::TSD
            | cr4::DE
            | cr4::PSE
            | cr4::PAE
            | cr4::PGE
            | cr4::PCE
            | cr4::OSFXSR;
        if value & !known != 0 {
            return Err(Exception::GeneralProtection(0));
        }
        let changed = self.state.cr4 ^ value;
        self.state.cr4 = value;
        if changed & (cr4::PSE | cr4::PAE | cr4::PGE) != 0 {
            self.tlb.flush(false);
        }
        self.update_breakpoints(); // CR4.DE arms I/O breakpoints
        Ok(())
    }
}

/// `MOV CRn, r32` / `MOV r32, CRn` / `MOV DRn, r32` / `MOV r32, DRn`.
pub fn mov_system<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_cpl0(cpu)?;
    let (dst, src) = (insn.op0_register(), insn.op1_register());
    if let Some(n) = cr_number(src) {
        let v = match n {
            0 => cpu.state.cr0,
            2 => cpu.state.cr2,
            3 => cpu.state.cr3,
            4 => cpu.state.cr4,
            _ => return Err(Exception::InvalidOpcode),
        };
        return cpu.write_op(insn, 0, v, bus);
    }
    if let Some(n) = cr_number(dst) {
        let v = cpu.read_op(insn, 1, bus)?;
        // With PAE paging on afterwards, MOV to CR3, and MOV to CR0/CR4
        // changing a paging bit, load the PDPTEs first (SDM Vol. 3A, 4.4.1).
        let (cr0_now, cr4_now) = (cpu.state.cr0, cpu.state.cr4);
        let (cr0_new, cr4_new, cr3_new) = match n {
            0 => (v, cr4_now, cpu.state.cr3),
            3 => (cr0_now, cr4_now, v),
            4 => (cr0_now, v, cpu.state.cr3),
            _ => (cr0_now, cr4_now, cpu.state.cr3),
        };
        let pae_paging = cr0_new & cr0::PG != 0 && cr4_new & cr4::PAE != 0;
        let reload = match n {
            0 => (cr0_now ^ cr0_new) & (cr0::PG | cr0::CD | cr0::NW) != 0,
            3 => true,
            4 => (cr4_now ^ cr4_new) & (cr4::PAE | cr4::PGE | cr4::PSE) != 0,
            _ => false,
        };
        let loaded = if pae_paging && reload {
            Some(cpu.fetch_pdptes(bus, cr3_new)?)
        } else {
            None
        };
        let r = match n {
            0 => cpu.write_cr0(v),
            2 => {
                cpu.state.cr2 = v;
                Ok(())
            }
            3 => {
                cpu.write_cr3(v);
                Ok(())
            }
            4 => cpu.write_cr4(v),
            _ => Err(Exception::InvalidOpcode),
        };
        if r.is_ok() && loaded.is_some() {
            cpu.pdptes = loaded;
        }
        return r;
    }
    // Debug registers: DR4/DR5 alias DR6/DR7 unless CR4.DE makes them #UD;
    // DR7.GD turns any access into #DB with DR6.BD set.
    let (n, to_dr) = match (dr_number(dst), dr_number(src)) {
        (Some(n), _) => (n, true),
        (_, Some(n)) => (n, false),
        _ => return Err(Exception::InvalidOpcode),
    };
    let n = match n {
        0..=3 | 6 | 7 => n,
        4 | 5 if cpu.state.cr4 & cr4::DE == 0 => n + 2,
        _ => return Err(Exception::InvalidOpcode),
    };
    if cpu.state.dr[7] & (1 << 13) != 0 {
        cpu.state.dr[6] |= 1 << 13;
        cpu.state.dr[7] &= !(1 << 13);
        return Err(Exception::Debug);
    }
    if to_dr {
        let v = cpu.read_op(insn, 1, bus)?;
        cpu.state.dr[n as usize] = match n {
            6 => (v & 0x0000_E00F) | 0xFFFF_0FF0,
            7 => (v & 0xFFFF_2BFF) | 0x400,
            _ => v,
        };
        cpu.update_breakpoints();
        Ok(())
    } else {
        let v = cpu.state.dr[n as usize];
        cpu.write_op(insn, 0, v, bus)
    }
}

/// MSR numbers (SDM Vol. 4, table 2-2 "IA-32 Architectural MSRs").
mod msr {
    pub const TSC: u32 = 0x10;
    pub const PLATFORM_ID: u32 = 0x17;
    pub const APIC_BASE: u32 = 0x1B;
    /// IA32_BIOS_UPDT_TRIG: a microcode update trigger (write-only).
    pub const BIOS_UPDT_TRIG: u32 = 0x79;
    /// IA32_BIOS_SIGN_ID: the loaded microcode revision in bits 63:32.
    pub const BIOS_SIGN_ID: u32 = 0x8B;
    pub const MTRRCAP: u32 = 0xFE;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const MTRR_PHYS_FIRST: u32 = 0x200;
    pub const MTRR_PHYS_LAST: u32 = 0x20F;
    pub const MTRR_FIXED: [u32; 11] = [
        0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F,
    ];
    pub const PAT: u32 = 0x277;
    pub const MTRR_DEF_TYPE: u32 = 0x2FF;
    pub const EFER: u32 = 0xC000_0080;
}

/// `RDMSR`: EDX:EAX = MSR[ECX]; unknown MSRs raise #GP(0).
pub fn rdmsr<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    require_cpl0(cpu)?;
    let m = &cpu.state.msr;
    let n = cpu.state.gpr[1];
    let v = match n {
        msr::TSC => cpu.state.icount.wrapping_add(m.tsc_offset),
        msr::APIC_BASE => m.apic_base,
        // No platform bits and no microcode loaded: revision 0.
        msr::PLATFORM_ID | msr::BIOS_SIGN_ID => 0,
        msr::MTRRCAP => 0x508, // 8 variable ranges, fixed ranges, write-combining
        msr::SYSENTER_CS => u64::from(m.sysenter_cs),
        msr::SYSENTER_ESP => u64::from(m.sysenter_esp),
        msr::SYSENTER_EIP => u64::from(m.sysenter_eip),
        msr::MTRR_PHYS_FIRST..=msr::MTRR_PHYS_LAST => {
            m.mtrr_var[(n - msr::MTRR_PHYS_FIRST) as usize]
        }
        msr::PAT => m.pat,
        msr::MTRR_DEF_TYPE => m.mtrr_def_type,
        msr::EFER => m.efer,
        _ => match msr::MTRR_FIXED.iter().position(|&f| f == n) {
            Some(i) => m.mtrr_fixed[i],
            None => m
                .perf
                .read(n, cpu.state.icount)
                .ok_or(Exception::GeneralProtection(0))?,
        },
    };
    cpu.state.gpr[0] = v as u32;
    cpu.state.gpr[2] = (v >> 32) as u32;
    Ok(())
}

/// `WRMSR`: MSR[ECX] = EDX:EAX; unknown MSRs and reserved bits raise #GP(0).
pub fn wrmsr<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    require_cpl0(cpu)?;
    let n = cpu.state.gpr[1];
    let v = u64::from(cpu.state.gpr[0]) | (u64::from(cpu.state.gpr[2]) << 32);
    let icount = cpu.state.icount;
    let m = &mut cpu.state.msr;
    match n {
        msr::TSC => m.tsc_offset = v.wrapping_sub(icount),
        msr::APIC_BASE => {
            if v & !APIC_BASE_WRITABLE != 0 {
                return Err(Exception::GeneralProtection(0));
            }
            m.apic_base = v;
            bus.apic_base_changed(v);
        }
        // Writing 0 to BIOS_SIGN_ID before CPUID asks for the revision;
        // an update trigger has no microcode to load. Both are accepted.
        msr::BIOS_SIGN_ID | msr::BIOS_UPDT_TRIG => {}
        msr::SYSENTER_CS => m.sysenter_cs = v as u32 & 0xFFFF,
        msr::SYSENTER_ESP => m.sysenter_esp = v as u32,
        msr::SYSENTER_EIP => m.sysenter_eip = v as u32,
        msr::MTRR_PHYS_FIRST..=msr::MTRR_PHYS_LAST => {
            let mask_reg = (n - msr::MTRR_PHYS_FIRST) % 2 == 1;
            let ok = if mask_reg {
                v & PHYSMASK_RESERVED == 0
            } else {
                v & PHYSBASE_RESERVED == 0 && mtrr_type_ok(v as u8)
            };
            if !ok {
                return Err(Exception::GeneralProtection(0));
            }
            m.mtrr_var[(n - msr::MTRR_PHYS_FIRST) as usize] = v
        }
        msr::PAT => {
            if !v.to_le_bytes().iter().all(|&t| mtrr_type_ok(t) || t == 7) {
                return Err(Exception::GeneralProtection(0));
            }
            m.pat = v
        }
        msr::MTRR_DEF_TYPE => {
            if v & !0xCFF != 0 || !mtrr_type_ok(v as u8) {
                return Err(Exception::GeneralProtection(0));
            }
            m.mtrr_def_type = v
        }
        msr::EFER => {
            if v & !EFER_NXE != 0 {
                return Err(Exception::GeneralProtection(0));
            }
            m.efer = v;
            cpu.tlb.flush(false);
        }
        _ => match msr::MTRR_FIXED.iter().position(|&f| f == n) {
            Some(i) if v.to_le_bytes().iter().all(|&t| mtrr_type_ok(t)) => m.mtrr_fixed[i] = v,
            Some(_) => return Err(Exception::GeneralProtection(0)),
            None => {
                if m.perf.write(n, v, icount) != Some(true) {
                    return Err(Exception::GeneralProtection(0));
                }
            }
        },
    }
    Ok(())
}

/// IA32_APIC_BASE's writable bits: BSP (8), global enable (11) and the
/// base (12-35, MAXPHYADDR 36); the rest are reserved (SDM Vol. 3A, 10.4.4).
const APIC_BASE_WRITABLE: u64 = 0xF_FFFF_F900;

/// Reserved bits of IA32_MTRR_PHYSBASEn and PHYSMASKn with MAXPHYADDR = 36
/// (SDM Vol. 3A, 11.11.2.3).
const PHYSBASE_RESERVED: u64 = 0xFFFF_FFF0_0000_0F00;
const PHYSMASK_RESERVED: u64 = 0xFFFF_FFF0_0000_07FF;

/// Whether `t` is a memory type MTRRs may hold: UC, WC, WT, WP or WB
/// (SDM Vol. 3A, 11.11.1); any other type written raises #GP(0). The PAT
/// also accepts UC- (7) (11.12.2).
fn mtrr_type_ok(t: u8) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}

/// `SYSENTER`: fast call to ring 0 (SDM Vol. 2B, SYSENTER).
pub fn sysenter<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let cs = cpu.state.msr.sysenter_cs as u16;
    if cpu.state.cr0 & cr0::PE == 0 || cs & 0xFFFC == 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let s = &mut cpu.state;
    s.eflags &= !(eflags::VM | eflags::IF | eflags::RF);
    s.seg[SegReg::Cs as usize] = SegmentCache::flat(cs & 0xFFFC, true, 0);
    s.seg[SegReg::Ss as usize] = SegmentCache::flat((cs & 0xFFFC) + 8, false, 0);
    s.gpr[4] = s.msr.sysenter_esp;
    cpu.ctx.next_eip = s.msr.sysenter_eip;
    Ok(())
}

/// `SYSEXIT`: fast return to ring 3 at EDX with ESP = ECX.
pub fn sysexit<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    _insn: &Instruction,
    _bus: &mut B,
) -> Result<(), Exception> {
    let cs = cpu.state.msr.sysenter_cs as u16;
    if !cpu.state.protected_mode() || cpu.state.cpl() != 0 || cs & 0xFFFC == 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let s = &mut cpu.state;
    s.seg[SegReg::Cs as usize] = SegmentCache::flat(((cs & 0xFFFC) + 16) | 3, true, 3);
    s.seg[SegReg::Ss as usize] = SegmentCache::flat(((cs & 0xFFFC) + 24) | 3, false, 3);
    s.gpr[4] = s.gpr[1];
    cpu.ctx.next_eip = s.gpr[2];
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::flat32_cpu;
    use crate::FlatRam;

    #[test]
    fn cr4_bits_for_features_cpuid_does_not_report_are_reserved() {
        let mut cpu = flat32_cpu();
        for bit in [cr4::MCE, cr4::OSXMMEXCPT, 1 << 11] {
            assert_eq!(cpu.write_cr4(bit), Err(Exception::GeneralProtection(0)));
        }
        assert_eq!(cpu.write_cr4(cr4::PSE | cr4::PGE | cr4::OSFXSR), Ok(()));
    }

    fn write_msr(cpu: &mut Cpu, n: u32, v: u64) -> Result<(), Exception> {
        cpu.state.gpr[1] = n;
        cpu.state.gpr[0] = v as u32;
        cpu.state.gpr[2] = (v >> 32) as u32;
        wrmsr(cpu, &Instruction::default(), &mut FlatRam::new(16))
    }

    #[test]
    fn pat_and_mtrrs_refuse_reserved_memory_types_and_bits() {
        let mut cpu = flat32_cpu();
        assert_eq!(write_msr(&mut cpu, msr::PAT, 0x0007_0406_0007_0406), Ok(()));
        let gp = Err(Exception::GeneralProtection(0));
        assert_eq!(write_msr(&mut cpu, msr::PAT, 0x0007_0406_0007_0402), gp);
        assert_eq!(write_msr(&mut cpu, msr::PAT, 0x0807_0406_0007_0406), gp);
        assert_eq!(cpu.state.msr.pat, 0x0007_0406_0007_0406);
        assert_eq!(write_msr(&mut cpu, msr::MTRR_DEF_TYPE, 0xC06), Ok(()));
        assert_eq!(write_msr(&mut cpu, msr::MTRR_DEF_TYPE, 0xC07), gp);
        assert_eq!(write_msr(&mut cpu, msr::MTRR_DEF_TYPE, 0x1006), gp);
        assert_eq!(write_msr(&mut cpu, 0x200, 0x0010_0006), Ok(()));
        assert_eq!(write_msr(&mut cpu, 0x200, 0x0010_0106), gp);
        assert_eq!(write_msr(&mut cpu, 0x201, 0xF_FFF0_0800), Ok(()));
        assert_eq!(write_msr(&mut cpu, 0x201, 0xF_FFF0_0801), gp);
        assert_eq!(write_msr(&mut cpu, 0x250, 0x0606_0606_0606_0606), Ok(()));
        assert_eq!(write_msr(&mut cpu, 0x250, 0x0606_0606_0606_0603), gp);
    }
}
