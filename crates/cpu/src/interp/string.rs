//! String instructions: MOVS CMPS SCAS LODS STOS INS OUTS with REP, REPE and
//! REPNE (Intel SDM Vol. 2B, "REP/REPE/REPZ/REPNE/REPNZ").
//!
//! The address size picks SI/DI/CX or ESI/EDI/ECX and where they wrap; the
//! element size comes from the mnemonic. Registers are updated after every
//! element, so a fault in the middle of a REP leaves the count and indexes
//! of the elements done, with EIP still at the instruction.
//!
//! The 286 differs on a segment overrun (a word at offset 0xFFFF): its
//! microcode has already stepped the index registers of the accesses up to
//! the faulting one, and under REP decremented CX, before #GP is raised.
//! [`overrun_286`] models that from the 286 vectors.
//!
//! Under REP, MOVS STOS LODS SCAS and CMPS run most elements in chunks
//! straight in RAM ([`super::string_bulk`]); the element loop here takes
//! every element a chunk cannot, and is what the chunks must equal.

use super::string_bulk::{self as bulk, Chunk, Until};
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::flags::{width_mask, Flags, LazyOp};
use crate::model::CpuModel;
use crate::state::{Reg, SegReg};
use iced_x86::{Instruction, Mnemonic as M};

/// Element size in bytes from the mnemonic's suffix.
fn element_size(insn: &Instruction) -> u32 {
    match insn.mnemonic() {
        M::Movsb | M::Cmpsb | M::Scasb | M::Lodsb | M::Stosb | M::Insb | M::Outsb => 1,
        M::Movsw | M::Cmpsw | M::Scasw | M::Lodsw | M::Stosw | M::Insw | M::Outsw => 2,
        _ => 4,
    }
}

/// Reads an index or count register at the address size.
#[inline]
pub(super) fn areg(cpu: &Cpu, r: Reg) -> u32 {
    cpu.state.gpr[r as usize] & cpu.addr_mask()
}

/// Adds `delta` to an index or count register at the address size.
#[inline]
pub(super) fn bump(cpu: &mut Cpu, r: Reg, delta: u32) {
    let mask = cpu.addr_mask();
    let v = cpu.state.gpr[r as usize];
    cpu.state.gpr[r as usize] = (v & !mask) | (v.wrapping_add(delta) & mask);
}

/// The per-element step: +size, or -size with DF set.
#[inline]
fn step(cpu: &Cpu, size: u32) -> u32 {
    if cpu.state.df() {
        size.wrapping_neg()
    } else {
        size
    }
}

/// Elements one step runs before a REP yields: EIP stays at the instruction,
/// which resumes at the next step, so interrupts are taken between
/// iterations as on hardware (SDM Vol. 2B, REP: "a repeating string
/// operation can be suspended by an exception or interrupt") and a 4 GiB
/// count cannot stall the machine. Above any 16-bit count, so 16-bit REPs
/// still finish in one step.
const MAX_ELEMENTS_PER_STEP: u32 = 0x1_0000;

/// Applies the 286's segment-overrun side effects (see the module docs):
/// `stepped` are the index registers already advanced, `cx_steps` how often
/// a REP prefix has decremented CX, for the access that raised `e`.
fn overrun_286(
    cpu: &mut Cpu,
    insn: &Instruction,
    e: Exception,
    size: u32,
    stepped: &[Reg],
    cx_steps: u32,
) -> Exception {
    if cpu.state.model == CpuModel::I286 && e == Exception::GeneralProtection(0) {
        let d = step(cpu, size);
        for r in stepped {
            bump(cpu, *r, d);
        }
        if insn.has_rep_prefix() || insn.has_repne_prefix() {
            for _ in 0..cx_steps {
                bump(cpu, Reg::Ecx, u32::MAX);
            }
        }
    }
    e
}

/// The chunk function of an instruction with a bulk path: runs up to the
/// given number of elements in RAM (see [`super::string_bulk`]).
type ChunkFn<B> = fn(&mut Cpu, &Instruction, &mut B, u32) -> Chunk;

/// Runs `element` once, or under REP while the count is non-zero; with a
/// `chunk` function, as many elements as it can take run in chunks, and
/// the others through `element`. A REPE/REPNE condition (`conditional`)
/// is tested on the flags after each element.
#[inline]
fn repeat<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
    conditional: bool,
    chunk: Option<ChunkFn<B>>,
    mut element: impl FnMut(&mut Cpu, &mut B) -> Result<(), Exception>,
) -> Result<(), Exception> {
    let rep = insn.has_rep_prefix() || insn.has_repne_prefix();
    if !rep {
        return element(cpu, bus);
    }
    let chunk = chunk.filter(|_| bulk::allowed(cpu));
    let mut budget = MAX_ELEMENTS_PER_STEP;
    // Elements left for `element` before the next chunk attempt, and
    // whether the last attempt fell back.
    let (mut singles, mut fell_back) = (0u32, false);
    while areg(cpu, Reg::Ecx) != 0 {
        if budget == 0 {
            cpu.ctx.next_eip = cpu.ctx.start_eip;
            return Ok(());
        }
        if let (Some(chunk), 0) = (chunk, singles) {
            match chunk(cpu, insn, bus, budget.min(areg(cpu, Reg::Ecx))) {
                Chunk::Done { n, stop } => {
                    budget -= n;
                    fell_back = false;
                    if stop {
                        break;
                    }
                    continue;
                }
                // One element through the element loop (which may fill
                // the missing TLB entry) and another attempt; after two
                // fallbacks in a row (MMIO, a code page), the rest of the
                // page.
                Chunk::Fallback { page_rest } => {
                    singles = if fell_back { page_rest } else { 1 };
                    fell_back = !fell_back;
                }
            }
        }
        singles = singles.saturating_sub(1);
        budget -= 1;
        element(cpu, bus)?;
        bump(cpu, Reg::Ecx, u32::MAX);
        if conditional {
            let zf = cpu.state.zf();
            if (insn.has_repe_prefix() && !zf) || (insn.has_repne_prefix() && zf) {
                break;
            }
        }
        if cpu.debug_hits != 0 && areg(cpu, Reg::Ecx) != 0 {
            // A data breakpoint hit by an iteration other than the last:
            // the #DB trap comes now, with EIP on the instruction and RF
            // pushed as 1 so that it resumes (SDM Vol. 3A, 17.3.1.2 and
            // 17.3.1.1).
            cpu.ctx.next_eip = cpu.ctx.start_eip;
            cpu.state.eflags |= crate::state::eflags::RF;
            break;
        }
    }
    Ok(())
}

/// `MOVS`: [ES:DI] = [seg:SI].
pub fn movs<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let size = element_size(insn);
    let seg = cpu.memory_segment(insn);
    let chunk: ChunkFn<B> = |cpu, insn, bus, max| {
        let seg = cpu.memory_segment(insn);
        bulk::movs(cpu, bus, seg, element_size(insn), max)
    };
    repeat(cpu, insn, bus, false, Some(chunk), |cpu, bus| {
        let v = cpu
            .read_mem_windowed(bus, seg, areg(cpu, Reg::Esi), size)
            .map_err(|e| overrun_286(cpu, insn, e, size, &[Reg::Esi], 1))?;
        cpu.write_mem_windowed(bus, SegReg::Es, areg(cpu, Reg::Edi), size, v)
            .map_err(|e| overrun_286(cpu, insn, e, size, &[Reg::Esi, Reg::Edi], 2))?;
        let d = step(cpu, size);
        bump(cpu, Reg::Esi, d);
        bump(cpu, Reg::Edi, d);
        Ok(())
    })
}

/// `CMPS`: compare [seg:SI] with [ES:DI] (flags of source - destination).
pub fn cmps<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let size = element_size(insn);
    let seg = cpu.memory_segment(insn);
    let chunk: ChunkFn<B> = |cpu, insn, bus, max| {
        let seg = cpu.memory_segment(insn);
        bulk::cmps(cpu, bus, seg, element_size(insn), max, Until::of(insn))
    };
    repeat(cpu, insn, bus, true, Some(chunk), |cpu, bus| {
        // The 286 reads ES:DI first; later processors read the source first.
        let (a, b) = if cpu.state.model == CpuModel::I286 {
            let b = cpu
                .read_mem_windowed(bus, SegReg::Es, areg(cpu, Reg::Edi), size)
                .map_err(|e| overrun_286(cpu, insn, e, size, &[Reg::Edi], 0))?;
            let a = cpu
                .read_mem_windowed(bus, seg, areg(cpu, Reg::Esi), size)
                .map_err(|e| overrun_286(cpu, insn, e, size, &[Reg::Edi, Reg::Esi], 0))?;
            (a, b)
        } else {
            let a = cpu.read_mem_windowed(bus, seg, areg(cpu, Reg::Esi), size)?;
            (
                a,
                cpu.read_mem_windowed(bus, SegReg::Es, areg(cpu, Reg::Edi), size)?,
            )
        };
        cpu.state.set_lazy(
            LazyOp::Sub,
            size,
            a,
            b,
            a.wrapping_sub(b) & width_mask(size),
        );
        let d = step(cpu, size);
        bump(cpu, Reg::Esi, d);
        bump(cpu, Reg::Edi, d);
        Ok(())
    })
}

/// `SCAS`: compare the accumulator with [ES:DI].
pub fn scas<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let size = element_size(insn);
    let chunk: ChunkFn<B> =
        |cpu, insn, bus, max| bulk::scas(cpu, bus, element_size(insn), max, Until::of(insn));
    repeat(cpu, insn, bus, true, Some(chunk), |cpu, bus| {
        let b = cpu
            .read_mem_windowed(bus, SegReg::Es, areg(cpu, Reg::Edi), size)
            .map_err(|e| overrun_286(cpu, insn, e, size, &[Reg::Edi], 1))?;
        let a = cpu.state.reg(Reg::Eax, size);
        cpu.state.set_lazy(
            LazyOp::Sub,
            size,
            a,
            b,
            a.wrapping_sub(b) & width_mask(size),
        );
        let d = step(cpu, size);
        bump(cpu, Reg::Edi, d);
        Ok(())
    })
}

/// `LODS`: accumulator = [seg:SI].
pub fn lods<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let size = element_size(insn);
    let seg = cpu.memory_segment(insn);
    let chunk: ChunkFn<B> = |cpu, insn, bus, max| {
        let seg = cpu.memory_segment(insn);
        bulk::lods(cpu, bus, seg, element_size(insn), max)
    };
    repeat(cpu, insn, bus, false, Some(chunk), |cpu, bus| {
        let v = cpu
            .read_mem_windowed(bus, seg, areg(cpu, Reg::Esi), size)
            .map_err(|e| overrun_286(cpu, insn, e, size, &[Reg::Esi], 1))?;
        cpu.state.set_reg(Reg::Eax, size, v);
        let d = step(cpu, size);
        bump(cpu, Reg::Esi, d);
        Ok(())
    })
}

/// `STOS`: [ES:DI] = accumulator.
pub fn stos<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let size = element_size(insn);
    let chunk: ChunkFn<B> = |cpu, insn, bus, max| bulk::stos(cpu, bus, element_size(insn), max);
    repeat(cpu, insn, bus, false, Some(chunk), |cpu, bus| {
        let v = cpu.state.reg(Reg::Eax, size);
        cpu.write_mem_windowed(bus, SegReg::Es, areg(cpu, Reg::Edi), size, v)
            .map_err(|e| overrun_286(cpu, insn, e, size, &[Reg::Edi], 2))?;
        let d = step(cpu, size);
        bump(cpu, Reg::Edi, d);
        Ok(())
    })
}

/// `INS`: [ES:DI] = port DX.
pub fn ins<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let size = element_size(insn);
    let port = cpu.state.gpr[Reg::Edx as usize] as u16;
    cpu.check_io(bus, port, size)?;
    cpu.note_io_access(port, size);
    repeat(cpu, insn, bus, false, None, |cpu, bus| {
        let di = areg(cpu, Reg::Edi);
        cpu.check_write(bus, SegReg::Es, di, size)
            .map_err(|e| overrun_286(cpu, insn, e, size, &[Reg::Edi], 2))?;
        bus.sync_time(cpu.state.icount);
        let v = bus.io_read(port, size as u8);
        cpu.write_mem(bus, SegReg::Es, di, size, v)?;
        let d = step(cpu, size);
        bump(cpu, Reg::Edi, d);
        Ok(())
    })
}

/// `OUTS`: port DX = [seg:SI].
pub fn outs<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let size = element_size(insn);
    let seg = cpu.memory_segment(insn);
    let port = cpu.state.gpr[Reg::Edx as usize] as u16;
    cpu.check_io(bus, port, size)?;
    cpu.note_io_access(port, size);
    repeat(cpu, insn, bus, false, None, |cpu, bus| {
        let v = cpu
            .read_mem(bus, seg, areg(cpu, Reg::Esi), size)
            .map_err(|e| overrun_286(cpu, insn, e, size, &[Reg::Esi], 1))?;
        bus.sync_time(cpu.state.icount);
        bus.io_write(port, size as u8, v);
        cpu.sync_memory_map(bus);
        let d = step(cpu, size);
        bump(cpu, Reg::Esi, d);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use crate::state::eflags;
    use crate::testutil::{run16, run32};
    use crate::{Bus, CpuModel};
    use iced_x86::code_asm::*;

    #[test]
    fn long_rep_yields_and_resumes() {
        let mut cpu = crate::testutil::flat32_cpu();
        let mut ram = crate::FlatRam::new(1 << 20);
        ram.load(crate::testutil::CODE, &[0xF3, 0xAA, 0xF4]); // rep stosb; hlt
        cpu.state.gpr[1] = 0x1_8000; // ECX
        cpu.state.gpr[7] = 0x2_0000; // EDI
        cpu.state.gpr[0] = 0x5A;
        cpu.step(&mut ram);
        assert_eq!(
            (cpu.state.gpr[1], cpu.state.eip),
            (0x8000, crate::testutil::CODE)
        );
        cpu.step(&mut ram);
        assert_eq!(
            (cpu.state.gpr[1], cpu.state.eip),
            (0, crate::testutil::CODE + 2)
        );
        assert_eq!(ram.read_u8(0x3_7FFF), 0x5A);
        assert_eq!(ram.read_u8(0x3_8000), 0);
    }

    #[test]
    fn rep_movsb_copies_and_counts_down() {
        let s = run32(
            |a| {
                a.mov(dword_ptr(0x3000), 0x4433_2211)?;
                a.rep().movsb()?;
                a.mov(eax, dword_ptr(0x4000))
            },
            |s| {
                s.gpr[6] = 0x3000;
                s.gpr[7] = 0x4000;
                s.gpr[1] = 3;
            },
        );
        assert_eq!(s.gpr[0], 0x0033_2211);
        assert_eq!((s.gpr[1], s.gpr[6], s.gpr[7]), (0, 0x3003, 0x4003));
    }

    #[test]
    fn repne_scasb_stops_on_match() {
        let (s, _) = run16(
            CpuModel::P6,
            |a| a.repne().scasb(),
            |s, ram| {
                ram.load(0x2000, b"abcdef");
                s.gpr[0] = u32::from(b'd');
                s.gpr[7] = 0x2000;
                s.gpr[1] = 100;
            },
        );
        assert_eq!(s.gpr[7] & 0xFFFF, 0x2004);
        assert_eq!(s.gpr[1] & 0xFFFF, 96);
        assert_ne!(s.eflags & eflags::ZF, 0);
    }

    #[test]
    fn sixteen_bit_index_wraps() {
        let (s, mut ram) = run16(
            CpuModel::P6,
            |a| a.stosb(),
            |s, _| {
                s.gpr[7] = 0x1_FFFF; // only DI counts
                s.gpr[0] = 0x5A;
                s.set_real_mode_segment(crate::SegReg::Es, 0x100);
            },
        );
        assert_eq!(s.gpr[7], 0x1_0000);
        assert_eq!(ram.read_u8(0x10FFF), 0x5A);
    }
}
