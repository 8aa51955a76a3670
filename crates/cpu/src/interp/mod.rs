//! The reference interpreter: one function per mnemonic, grouped by concept
//! in sibling files (Intel SDM Vol. 2 for each instruction).
//!
//! [`dispatch::resolve`] is the one place that maps an iced-x86 `Mnemonic`
//! to its handler. Handlers read operands, compute, write results, and only then
//! record flags, so a fault leaves the registers as they were. Whatever is
//! not listed here, and is not x87, raises #UD.

pub mod arith;
pub mod bcd;
pub mod bit;
pub mod control;
pub mod data;
pub mod dispatch;
pub mod fast;
pub mod flagops;
pub mod io;
pub mod logic;
pub mod misc;
pub mod muldiv;
pub mod operand;
pub mod segment;
pub mod shift;
pub mod stack;
pub mod string;
mod string_bulk;
pub use string_bulk::fill_elements;
pub mod system;

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::decode::Decoded;
use crate::exception::Exception;
pub use dispatch::{resolve, Handler, Op};
use iced_x86::Instruction;

/// Executes one decoded instruction (EIP already points past it in
/// `cpu.ctx.next_eip`), resolving its handler first; the run loop uses the
/// [`Op`] resolved when the instruction was decoded instead.
#[inline]
pub fn execute<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let d = Decoded {
        insn: *insn,
        addr32: cpu.ctx.addr32,
        op32: cpu.ctx.op32,
        pop_cs: cpu.ctx.pop_cs,
        quiet: false,
        op: resolve(insn),
        r0: 0,
        r1: 0,
        imm: 0,
        base: 8,
        index: 8,
        scale: 0,
        seg: crate::state::SegReg::Ds,
        falls_through: false,
    };
    d.op.execute(cpu, &d, bus)
}

/// The condition-code nibble (0 = O ... 15 = G) of a Jcc/SETcc/CMOVcc.
#[inline]
pub(crate) fn condition_nibble(insn: &Instruction) -> u8 {
    (insn.condition_code() as u8).wrapping_sub(1) & 0xF
}

/// Width in bytes and mask, for the common `let (w, m) = ...` pattern.
#[inline]
pub(crate) fn width_and_mask(insn: &Instruction, n: u32) -> (u32, u32) {
    let w = operand::op_width(insn, n);
    (w, crate::flags::width_mask(w))
}
