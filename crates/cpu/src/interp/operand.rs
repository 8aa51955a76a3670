//! Operand access for instruction handlers: registers, memory through the
//! segment checks, and immediates, as iced-x86 describes them
//! (Intel SDM Vol. 2A, 2.1.5 "Addressing-Mode Encoding of ModR/M and SIB").

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::state::{CpuState, SegReg};
use iced_x86::{Instruction, OpKind, Register};

/// Where a general register operand lives: index into `gpr`, width in bytes
/// and bit shift (8 for AH, CH, DH, BH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GprSlot {
    /// Index into [`CpuState::gpr`].
    pub index: usize,
    /// Width in bytes.
    pub width: u32,
    /// 8 for the high-byte registers, else 0.
    pub shift: u32,
}

/// Packed general-register slots indexed by iced `Register` value: bit 7
/// valid, bits 0-2 the `gpr` index, bits 3-4 the width (0: byte, 1: word,
/// 2: dword), bit 5 high byte. A table because every register operand of
/// every instruction passes through here.
static GPR_SLOTS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 8 {
        if i < 4 {
            t[Register::AL as usize + i] = 0x80 | i as u8;
            t[Register::AH as usize + i] = 0x80 | 0x20 | i as u8;
        }
        t[Register::AX as usize + i] = 0x80 | 0x08 | i as u8;
        t[Register::EAX as usize + i] = 0x80 | 0x10 | i as u8;
        i += 1;
    }
    t
};

/// Value masks by packed width code.
const WIDTH_MASKS: [u32; 4] = [0xFF, 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF];

/// Maps an iced register to its slot, or `None` for non-general registers.
#[inline]
pub fn gpr_slot(r: Register) -> Option<GprSlot> {
    let p = GPR_SLOTS[r as usize];
    (p & 0x80 != 0).then(|| GprSlot {
        index: usize::from(p & 7),
        width: 1 << ((p >> 3) & 3),
        shift: u32::from((p >> 5) & 1) * 8,
    })
}

/// Maps an iced segment register to ours.
#[inline]
pub fn seg_reg(r: Register) -> Option<SegReg> {
    let v = r as u32;
    let es = Register::ES as u32;
    if (es..es + 6).contains(&v) {
        SegReg::from_index((v - es) as usize)
    } else {
        None
    }
}

/// Reads a general register (zero-extended).
#[inline]
pub fn read_gpr(s: &CpuState, r: Register) -> u32 {
    let p = GPR_SLOTS[r as usize];
    if p & 0x80 != 0 {
        let v = s.gpr[usize::from(p & 7)] >> (u32::from(p & 0x20) >> 2);
        return v & WIDTH_MASKS[usize::from((p >> 3) & 3)];
    }
    match seg_reg(r) {
        Some(sr) => u32::from(s.seg[sr as usize].selector),
        None => 0,
    }
}

/// Writes a general register at its width, leaving the other bits.
#[inline]
pub fn write_gpr(s: &mut CpuState, r: Register, value: u32) {
    let p = GPR_SLOTS[r as usize];
    if p & 0x80 != 0 {
        let shift = u32::from(p & 0x20) >> 2;
        let mask = WIDTH_MASKS[usize::from((p >> 3) & 3)] << shift;
        let slot = &mut s.gpr[usize::from(p & 7)];
        *slot = (*slot & !mask) | ((value << shift) & mask);
    }
}

/// The width in bytes of operand `n`.
#[inline]
pub fn op_width(insn: &Instruction, n: u32) -> u32 {
    match insn.op_kind(n) {
        OpKind::Register => gpr_slot(insn.op_register(n)).map_or(2, |g| g.width),
        OpKind::Immediate8 | OpKind::Immediate8_2nd => 1,
        OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
        OpKind::Immediate32 | OpKind::Immediate8to32 => 4,
        _ => insn.memory_size().size() as u32,
    }
}

impl Cpu {
    /// The offset part of a ModRM/SIB memory operand, wrapped to the
    /// address size.
    #[inline]
    pub fn effective_offset(&self, insn: &Instruction) -> u32 {
        let s = &self.state;
        let mut a = insn.memory_displacement32();
        let base = insn.memory_base();
        if base != Register::None {
            a = a.wrapping_add(read_gpr(s, base));
        }
        let index = insn.memory_index();
        if index != Register::None {
            a = a.wrapping_add(read_gpr(s, index).wrapping_mul(insn.memory_index_scale()));
        }
        if self.ctx.addr32 {
            a
        } else {
            a & 0xFFFF
        }
    }

    /// The segment of a memory operand (override or default).
    #[inline]
    pub fn memory_segment(&self, insn: &Instruction) -> SegReg {
        seg_reg(insn.memory_segment()).unwrap_or(SegReg::Ds)
    }

    /// Reads operand `n` (register, memory or immediate), zero-extended
    /// from its width; immediates come sign-extended to the operand size.
    ///
    /// Inlined into every handler (with `n` a constant, the operand-kind
    /// lookups fold); the memory case stays out of line.
    #[inline(always)]
    pub fn read_op<B: Bus + ?Sized>(
        &mut self,
        insn: &Instruction,
        n: u32,
        bus: &mut B,
    ) -> Result<u32, Exception> {
        match insn.op_kind(n) {
            OpKind::Register => Ok(read_gpr(&self.state, insn.op_register(n))),
            OpKind::Memory => self.read_memory_operand(insn, bus),
            OpKind::Immediate8to16 => Ok(u32::from(insn.immediate8to16() as u16)),
            _ => Ok(insn.immediate(n) as u32),
        }
    }

    /// Reads the instruction's ModRM memory operand at its memory size.
    #[inline(never)]
    fn read_memory_operand<B: Bus + ?Sized>(
        &mut self,
        insn: &Instruction,
        bus: &mut B,
    ) -> Result<u32, Exception> {
        let seg = self.memory_segment(insn);
        let off = self.effective_offset(insn);
        let w = insn.memory_size().size() as u32;
        self.read_mem(bus, seg, off, w)
    }

    /// Writes operand `n` (register or memory); inlined like [`Cpu::read_op`].
    #[inline(always)]
    pub fn write_op<B: Bus + ?Sized>(
        &mut self,
        insn: &Instruction,
        n: u32,
        value: u32,
        bus: &mut B,
    ) -> Result<(), Exception> {
        match insn.op_kind(n) {
            OpKind::Register => {
                write_gpr(&mut self.state, insn.op_register(n), value);
                Ok(())
            }
            OpKind::Memory => self.write_memory_operand(insn, value, bus),
            _ => Err(Exception::InvalidOpcode),
        }
    }

    /// Writes the instruction's ModRM memory operand at its memory size.
    #[inline(never)]
    fn write_memory_operand<B: Bus + ?Sized>(
        &mut self,
        insn: &Instruction,
        value: u32,
        bus: &mut B,
    ) -> Result<(), Exception> {
        let seg = self.memory_segment(insn);
        let off = self.effective_offset(insn);
        let w = insn.memory_size().size() as u32;
        self.write_mem(bus, seg, off, w, value)
    }

    /// Reads `size` bytes at `extra` past a memory operand's offset
    /// (for far pointers, BOUND, CMPXCHG8B), wrapping at the address size.
    #[inline]
    pub fn read_mem_operand<B: Bus + ?Sized>(
        &mut self,
        insn: &Instruction,
        extra: u32,
        size: u32,
        bus: &mut B,
    ) -> Result<u32, Exception> {
        let seg = self.memory_segment(insn);
        let off = self.effective_offset(insn).wrapping_add(extra) & self.addr_mask();
        self.read_mem(bus, seg, off, size)
    }

    /// 0xFFFF for 16-bit addressing, all ones for 32-bit.
    #[inline]
    pub fn addr_mask(&self) -> u32 {
        if self.ctx.addr32 {
            0xFFFF_FFFF
        } else {
            0xFFFF
        }
    }

    /// The operand size in bytes (2 or 4) after any 0x66 prefix.
    #[inline]
    pub fn op_size(&self) -> u32 {
        if self.ctx.op32 {
            4
        } else {
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_slots() {
        assert_eq!(
            gpr_slot(Register::AH),
            Some(GprSlot {
                index: 0,
                width: 1,
                shift: 8
            })
        );
        assert_eq!(
            gpr_slot(Register::DI),
            Some(GprSlot {
                index: 7,
                width: 2,
                shift: 0
            })
        );
        assert_eq!(
            gpr_slot(Register::EBP),
            Some(GprSlot {
                index: 5,
                width: 4,
                shift: 0
            })
        );
        assert_eq!(seg_reg(Register::GS), Some(SegReg::Gs));
    }

    #[test]
    fn slot_table_matches_the_register_ranges() {
        for r in Register::values() {
            let v = r as u32;
            let expect = [
                (Register::AL, 4, 1, 0),
                (Register::AH, 4, 1, 8),
                (Register::AX, 8, 2, 0),
                (Register::EAX, 8, 4, 0),
            ]
            .iter()
            .find(|(base, n, _, _)| (*base as u32..*base as u32 + n).contains(&v))
            .map(|&(base, _, width, shift)| GprSlot {
                index: (v - base as u32) as usize,
                width,
                shift,
            });
            assert_eq!(gpr_slot(r), expect, "{r:?}");
        }
    }

    #[test]
    fn high_byte_write_keeps_the_rest() {
        let mut s = CpuState::new(crate::CpuModel::P6);
        s.gpr[3] = 0x1234_5678;
        write_gpr(&mut s, Register::BH, 0xAB);
        assert_eq!(s.gpr[3], 0x1234_AB78);
        assert_eq!(read_gpr(&s, Register::BH), 0xAB);
    }
}
