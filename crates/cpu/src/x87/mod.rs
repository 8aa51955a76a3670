//! The x87 floating-point unit (Intel SDM Vol. 1, chapter 8 "Programming
//! with the x87 FPU": 8.1 the execution environment (register stack, status,
//! control and tag words, instruction and data pointers, last opcode), 8.3
//! the instruction set, 8.5 the exception conditions, 8.6 exception
//! synchronization; Vol. 3A, 2.5 table 2-2 for CR0.EM/MP/TS and 22.x for
//! the 8086/286 without a coprocessor).
//!
//! [`execute`] is the dispatcher the integer interpreter hands every
//! mnemonic it does not know. It gates the instruction (no coprocessor on
//! the 8086/286 models, #NM, pending #MF), records the FPU instruction and
//! data pointers, and sends it to its group file: [`arith`], [`compare`],
//! [`convert`] (loads and stores), [`misc`], [`env`](mod@env), [`transcend`]. The
//! arithmetic itself is the soft-float core in [`f80`].
//!
//! Error reporting: an unmasked exception sets ES and B in the status word.
//! The next waiting x87 instruction (or WAIT) then raises #MF when CR0.NE=1.
//! With CR0.NE=0 (the PC/AT "MS-DOS compatible" mode) the error is signalled
//! on the FERR# pin through [`Bus::fpu_error`] when it happens, which the
//! board routes to IRQ13; the processor is modelled with IGNNE# asserted, so
//! the waiting instruction does not freeze and proceeds (the guest's IRQ13
//! handler clears the error with FNCLEX/FNINIT, which drops FERR#).

pub mod arith;
pub mod compare;
pub mod convert;
pub mod env;
pub mod f80;
pub mod misc;
pub mod mp;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests_host;
pub mod transcend;
#[cfg(test)]
mod transcend_vectors;

/// An 80-bit double-extended value as stored in an x87 register
/// (SDM Vol. 1, 4.2.2): explicit integer bit in `signif`, 15-bit biased
/// exponent and the sign in `sign_exp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub struct F80 {
    /// Significand, bit 63 is the explicit integer bit.
    pub signif: u64,
    /// Bit 15 sign, bits 0-14 biased exponent.
    pub sign_exp: u16,
}

/// The x87 register file and environment (SDM Vol. 1, 8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FpuState {
    /// Physical registers R0-R7 (ST(i) is R[(TOP + i) mod 8]).
    pub regs: [F80; 8],
    /// Control word (FCW).
    pub control: u16,
    /// Status word (FSW) with TOP in bits 11-13.
    pub status: u16,
    /// Full tag word, two bits per physical register (11 = empty).
    pub tag: u16,
    /// Opcode of the last non-control instruction (11 bits).
    pub last_opcode: u16,
    /// FPU instruction pointer offset.
    pub last_ip: u32,
    /// FPU instruction pointer selector.
    pub last_cs: u16,
    /// FPU data pointer selector.
    pub last_ds: u16,
    /// FPU data pointer offset.
    pub last_dp: u32,
    /// MXCSR as FXSAVE stores it.
    pub mxcsr: u32,
}

impl Default for FpuState {
    /// The state after FNINIT (SDM Vol. 2A, FINIT/FNINIT; Vol. 1, 8.1.5).
    fn default() -> Self {
        Self {
            regs: [F80::default(); 8],
            control: 0x037F,
            status: 0,
            tag: 0xFFFF,
            last_opcode: 0,
            last_ip: 0,
            last_cs: 0,
            last_ds: 0,
            last_dp: 0,
            mxcsr: 0x1F80,
        }
    }
}

/// Status-word bits (SDM Vol. 1, figure 8-4).
pub mod sw {
    /// Stack fault.
    pub const SF: u16 = 1 << 6;
    /// Error summary.
    pub const ES: u16 = 1 << 7;
    /// Condition code C0.
    pub const C0: u16 = 1 << 8;
    /// Condition code C1.
    pub const C1: u16 = 1 << 9;
    /// Condition code C2.
    pub const C2: u16 = 1 << 10;
    /// Condition code C3.
    pub const C3: u16 = 1 << 14;
    /// FPU busy (mirrors ES).
    pub const B: u16 = 1 << 15;
    /// All four condition codes.
    pub const CC: u16 = C0 | C1 | C2 | C3;
}

/// Tag values (SDM Vol. 1, 8.1.7).
pub mod tag {
    /// Valid.
    pub const VALID: u16 = 0;
    /// Zero.
    pub const ZERO: u16 = 1;
    /// Special: NaN, infinity, denormal, unsupported.
    pub const SPECIAL: u16 = 2;
    /// Empty.
    pub const EMPTY: u16 = 3;
}

impl FpuState {
    /// TOP, the physical number of ST(0).
    #[inline]
    pub fn top(&self) -> usize {
        usize::from((self.status >> 11) & 7)
    }
    /// Sets TOP.
    #[inline]
    pub fn set_top(&mut self, top: usize) {
        self.status = (self.status & !0x3800) | (((top & 7) as u16) << 11);
    }
    /// The physical register of ST(i).
    #[inline]
    pub fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }
    /// The two-bit tag of physical register `p`.
    #[inline]
    pub fn tag_of(&self, p: usize) -> u16 {
        (self.tag >> (2 * p)) & 3
    }
    /// Sets the tag of physical register `p`.
    #[inline]
    pub fn set_tag(&mut self, p: usize, t: u16) {
        self.tag = (self.tag & !(3 << (2 * p))) | ((t & 3) << (2 * p));
    }
    /// Whether ST(i) is empty.
    #[inline]
    pub fn is_empty(&self, i: usize) -> bool {
        self.tag_of(self.phys(i)) == tag::EMPTY
    }
    /// ST(i), whatever its tag.
    #[inline]
    pub fn st(&self, i: usize) -> F80 {
        self.regs[self.phys(i)]
    }
    /// Writes ST(i) and tags it from its contents.
    #[inline]
    pub fn set_st(&mut self, i: usize, v: F80) {
        let p = self.phys(i);
        self.regs[p] = v;
        self.set_tag(p, tag_for(v));
    }
    /// Marks ST(0) empty and increments TOP.
    #[inline]
    pub fn pop(&mut self) {
        let p = self.phys(0);
        self.set_tag(p, tag::EMPTY);
        self.set_top(self.top() + 1);
    }
    /// Decrements TOP and writes the new ST(0).
    #[inline]
    pub fn push(&mut self, v: F80) {
        self.set_top(self.top().wrapping_sub(1));
        self.set_st(0, v);
    }
    /// The full tag word with non-empty tags recomputed from the contents,
    /// as FSTENV/FSAVE store it.
    pub fn full_tag(&self) -> u16 {
        let mut t = 0;
        for p in 0..8 {
            let v = if self.tag_of(p) == tag::EMPTY {
                tag::EMPTY
            } else {
                tag_for(self.regs[p])
            };
            t |= v << (2 * p);
        }
        t
    }
    /// Sets ES and B from the unmasked pending exceptions (SDM Vol. 1, 8.1.3.5).
    pub fn update_summary(&mut self) {
        if self.status & 0x3F & !self.control & 0x3F != 0 {
            self.status |= sw::ES | sw::B;
        } else {
            self.status &= !(sw::ES | sw::B);
        }
    }
    /// FNINIT (SDM Vol. 2A, FINIT/FNINIT): registers keep their contents.
    pub fn init(&mut self) {
        self.control = 0x037F;
        self.status = 0;
        self.tag = 0xFFFF;
        self.last_opcode = 0;
        self.last_ip = 0;
        self.last_cs = 0;
        self.last_dp = 0;
        self.last_ds = 0;
    }
}

/// The tag a value gets when written to a register.
pub fn tag_for(v: F80) -> u16 {
    match v.class() {
        f80::Class::Normal => tag::VALID,
        f80::Class::Zero => tag::ZERO,
        _ => tag::SPECIAL,
    }
}

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use crate::memory::Access;
use crate::model::CpuModel;
use crate::state::{cr0, SegReg};
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};

/// How an x87 instruction synchronizes with pending errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Checks for pending unmasked exceptions first and records the FPU
    /// instruction/data pointers (the ordinary numeric instructions).
    Numeric,
    /// Waits (checks pending exceptions) but is a control instruction:
    /// the pointers are kept.
    WaitControl,
    /// Does not wait (FN* forms, FXSAVE/FXRSTOR).
    NoWait,
}

fn kind_of(m: M) -> Option<Kind> {
    Some(match m {
        M::Fninit
        | M::Fnclex
        | M::Fnstcw
        | M::Fnstsw
        | M::Fnstenv
        | M::Fnsave
        | M::Fneni
        | M::Fndisi
        | M::Fnsetpm => Kind::NoWait,
        M::Fxsave | M::Fxrstor => Kind::NoWait,
        M::Finit
        | M::Fclex
        | M::Fstcw
        | M::Fstsw
        | M::Fstenv
        | M::Fsave
        | M::Feni
        | M::Fdisi
        | M::Fsetpm
        | M::Fldcw
        | M::Fldenv
        | M::Frstor
        | M::Wait => Kind::WaitControl,
        M::F2xm1
        | M::Fabs
        | M::Fadd
        | M::Faddp
        | M::Fbld
        | M::Fbstp
        | M::Fchs
        | M::Fcmovb
        | M::Fcmovbe
        | M::Fcmove
        | M::Fcmovnb
        | M::Fcmovnbe
        | M::Fcmovne
        | M::Fcmovnu
        | M::Fcmovu
        | M::Fcom
        | M::Fcomi
        | M::Fcomip
        | M::Fcomp
        | M::Fcompp
        | M::Fcos
        | M::Fdecstp
        | M::Fdiv
        | M::Fdivp
        | M::Fdivr
        | M::Fdivrp
        | M::Ffree
        | M::Ffreep
        | M::Fiadd
        | M::Ficom
        | M::Ficomp
        | M::Fidiv
        | M::Fidivr
        | M::Fild
        | M::Fimul
        | M::Fincstp
        | M::Fist
        | M::Fistp
        | M::Fisub
        | M::Fisubr
        | M::Fld
        | M::Fld1
        | M::Fldl2e
        | M::Fldl2t
        | M::Fldlg2
        | M::Fldln2
        | M::Fldpi
        | M::Fldz
        | M::Fmul
        | M::Fmulp
        | M::Fnop
        | M::Fpatan
        | M::Fprem
        | M::Fprem1
        | M::Fptan
        | M::Frndint
        | M::Fscale
        | M::Fsin
        | M::Fsincos
        | M::Fsqrt
        | M::Fst
        | M::Fstp
        | M::Fstpnce
        | M::Fsub
        | M::Fsubp
        | M::Fsubr
        | M::Fsubrp
        | M::Ftst
        | M::Fucom
        | M::Fucomi
        | M::Fucomip
        | M::Fucomp
        | M::Fucompp
        | M::Fxam
        | M::Fxch
        | M::Fxtract
        | M::Fyl2x
        | M::Fyl2xp1 => Kind::Numeric,
        _ => return None,
    })
}

/// Whether a mnemonic belongs to the x87 (including FISTTP, FRSTPM and the
/// 386SL FSTDW/FSTSG, which this CPU does not have).
fn is_escape(m: M) -> bool {
    kind_of(m).is_some()
        || matches!(
            m,
            M::Fisttp | M::Frstpm | M::Fstdw | M::Fstsg | M::Fnstdw | M::Fnstsg
        )
}

/// Executes an x87 instruction; anything else is #UD.
pub fn execute<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    let m = insn.mnemonic();
    let Some(kind) = kind_of(m) else {
        if is_escape(m) && cpu.state.model == CpuModel::P6 {
            return Err(Exception::InvalidOpcode); // not on a family-6 part
        }
        if is_escape(m) {
            return no_coprocessor(cpu, insn, bus);
        }
        return Err(cpu.note_unimplemented(insn));
    };
    if cpu.state.model != CpuModel::P6 {
        return no_coprocessor(cpu, insn, bus);
    }
    let c = cpu.state.cr0;
    if m == M::Wait {
        if c & cr0::TS != 0 && c & cr0::MP != 0 {
            return Err(Exception::DeviceNotAvailable);
        }
    } else if matches!(m, M::Fxsave | M::Fxrstor) {
        if c & cr0::EM != 0 {
            return Err(Exception::InvalidOpcode);
        }
        if c & cr0::TS != 0 {
            return Err(Exception::DeviceNotAvailable);
        }
    } else if c & (cr0::EM | cr0::TS) != 0 {
        return Err(Exception::DeviceNotAvailable);
    }
    if kind != Kind::NoWait && cpu.state.fpu.status & sw::ES != 0 {
        if c & cr0::NE != 0 {
            return Err(Exception::FloatingPoint);
        }
        // IGNNE# asserted: the error stays on FERR# and execution goes on.
        bus.fpu_error(true);
    }
    if kind == Kind::Numeric {
        record_pointers(cpu, insn, bus);
    }
    let r = dispatch(cpu, insn, bus);
    if cpu.state.fpu.status & sw::ES != 0 && c & cr0::NE == 0 {
        bus.fpu_error(true);
    }
    r
}

/// The 8086 and 80286 models have no coprocessor attached: an ESC opcode
/// decodes its ModRM, the 286 performs the segment check of the memory
/// operand (the SingleStepTests vectors show #GP at a segment overrun) and
/// nothing else changes (SDM Vol. 3A, 22.18 "x87 FPU" on systems without
/// one; the 8086 vectors of opcodes D8-DF change only IP).
fn no_coprocessor<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    if cpu.state.model == CpuModel::I286 && insn.mnemonic() != M::Wait {
        let c = cpu.state.cr0;
        if c & (cr0::EM | cr0::TS) != 0 {
            return Err(Exception::DeviceNotAvailable);
        }
        if has_memory(insn) {
            let size = (insn.memory_size().size() as u32).clamp(1, 4);
            let seg = cpu.memory_segment(insn);
            let off = cpu.effective_offset(insn);
            cpu.linear(seg, off, size, Access::Read)?;
        }
    }
    let _ = bus;
    Ok(())
}

/// Whether any operand of `insn` is in memory.
pub(crate) fn has_memory(insn: &Instruction) -> bool {
    (0..insn.op_count()).any(|i| insn.op_kind(i) == OpKind::Memory)
}

/// Records FPU IP/CS, the 11-bit opcode and (for memory forms) DP/DS, as a
/// non-control instruction does (SDM Vol. 1, 8.1.8 and 8.1.9).
fn record_pointers<B: Bus + ?Sized>(cpu: &mut Cpu, insn: &Instruction, bus: &mut B) {
    let eip = cpu.ctx.start_eip;
    let mask = cpu.ip_mask();
    let mut opcode = 0u16;
    for i in 0..14u32 {
        let Some(b) = code_byte(cpu, bus, eip.wrapping_add(i) & mask) else {
            break;
        };
        if (0xD8..=0xDF).contains(&b) {
            let modrm = code_byte(cpu, bus, eip.wrapping_add(i + 1) & mask).unwrap_or(0);
            opcode = (u16::from(b & 7) << 8) | u16::from(modrm);
            break;
        }
    }
    let f = &mut cpu.state.fpu;
    f.last_opcode = opcode;
    f.last_ip = eip;
    f.last_cs = cpu.state.seg[SegReg::Cs as usize].selector;
    if has_memory(insn) {
        let seg = cpu.memory_segment(insn);
        let off = cpu.effective_offset(insn);
        let f = &mut cpu.state.fpu;
        f.last_dp = off;
        f.last_ds = cpu.state.seg[seg as usize].selector;
    }
}

fn code_byte<B: Bus + ?Sized>(cpu: &mut Cpu, bus: &mut B, eip: u32) -> Option<u8> {
    let lin = cpu.linear(SegReg::Cs, eip, 1, Access::Execute).ok()?;
    let user = cpu.user_access();
    let p = cpu.translate(bus, lin, Access::Execute, user).ok()?;
    Some(bus.read_u8(p))
}

/// The register number i of an ST(i) operand.
pub(crate) fn sti(insn: &Instruction, n: u32) -> usize {
    let r = insn.op_register(n) as u32;
    (r.wrapping_sub(Register::ST0 as u32) & 7) as usize
}

/// Folds an operation's exception flags into the status word: sets C1 (to
/// `c1`), the sticky flags, and ES/B if any is unmasked. Returns whether the
/// destination may be written (IE, DE and ZE unmasked suppress it, SDM
/// Vol. 1, 8.5).
pub(crate) fn raise(fpu: &mut FpuState, flags: u16, c1: bool) -> bool {
    use f80::exc::{DE, IE, SF, ZE};
    // An unmasked invalid, denormal or zero-divide stops the instruction
    // before it computes: nothing after it (OE, UE, PE, C1) is reported.
    let (flags, c1) = if flags & (IE | DE | ZE) & !fpu.control != 0 {
        (flags & (IE | DE | ZE | SF), false)
    } else {
        (flags, c1)
    };
    fpu.status = (fpu.status & !sw::C1) | if c1 { sw::C1 } else { 0 };
    fpu.status |= flags & 0x7F;
    let unmasked = flags & 0x3F & !fpu.control;
    if unmasked != 0 {
        fpu.status |= sw::ES | sw::B;
    }
    unmasked & (IE | DE | ZE) == 0
}

/// A stack underflow (an empty source register): IE and SF with C1 = 0.
/// Returns whether the masked response (real indefinite) may be written.
pub(crate) fn underflow(fpu: &mut FpuState) -> bool {
    raise(fpu, f80::exc::IE | f80::exc::SF, false)
}

/// A stack overflow (pushing onto a full register): IE and SF with C1 = 1.
/// Returns whether the masked response may be written.
pub(crate) fn overflow(fpu: &mut FpuState) -> bool {
    raise(fpu, f80::exc::IE | f80::exc::SF, true)
}

/// Pushes `v`, or handles stack overflow (ST(7) not empty): masked, the
/// real indefinite is pushed. Returns false if nothing was pushed.
pub(crate) fn push_checked(fpu: &mut FpuState, v: F80, c1: bool) -> bool {
    if !fpu.is_empty(7) {
        if overflow(fpu) {
            fpu.push(f80::INDEFINITE);
            return true;
        }
        return false;
    }
    fpu.push(v);
    fpu.status = (fpu.status & !sw::C1) | if c1 { sw::C1 } else { 0 };
    true
}

fn dispatch<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    match insn.mnemonic() {
        M::Fadd | M::Faddp | M::Fiadd => arith::binary(cpu, insn, bus, arith::Op::Add),
        M::Fsub | M::Fsubp | M::Fisub => arith::binary(cpu, insn, bus, arith::Op::Sub),
        M::Fsubr | M::Fsubrp | M::Fisubr => arith::binary(cpu, insn, bus, arith::Op::Subr),
        M::Fmul | M::Fmulp | M::Fimul => arith::binary(cpu, insn, bus, arith::Op::Mul),
        M::Fdiv | M::Fdivp | M::Fidiv => arith::binary(cpu, insn, bus, arith::Op::Div),
        M::Fdivr | M::Fdivrp | M::Fidivr => arith::binary(cpu, insn, bus, arith::Op::Divr),
        M::Fsqrt => arith::unary(cpu, arith::Unary::Sqrt),
        M::Fabs => arith::unary(cpu, arith::Unary::Abs),
        M::Fchs => arith::unary(cpu, arith::Unary::Chs),
        M::Frndint => arith::unary(cpu, arith::Unary::Rndint),
        M::Fscale => arith::fscale(cpu),
        M::Fxtract => arith::fxtract(cpu),
        M::Fprem => arith::fprem(cpu, false),
        M::Fprem1 => arith::fprem(cpu, true),
        M::Fcom
        | M::Fcomp
        | M::Fcompp
        | M::Fucom
        | M::Fucomp
        | M::Fucompp
        | M::Ficom
        | M::Ficomp => compare::fcom(cpu, insn, bus),
        M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip => compare::fcomi(cpu, insn),
        M::Ftst => compare::ftst(cpu),
        M::Fxam => compare::fxam(cpu),
        M::Fld => convert::fld(cpu, insn, bus),
        M::Fild => convert::fild(cpu, insn, bus),
        M::Fbld => convert::fbld(cpu, insn, bus),
        M::Fst | M::Fstp | M::Fstpnce => convert::fst(cpu, insn, bus),
        M::Fist | M::Fistp => convert::fist(cpu, insn, bus),
        M::Fbstp => convert::fbstp(cpu, insn, bus),
        M::Fld1 | M::Fldz | M::Fldpi | M::Fldl2e | M::Fldl2t | M::Fldlg2 | M::Fldln2 => {
            misc::load_constant(cpu, insn)
        }
        M::Fxch => misc::fxch(cpu, insn),
        M::Ffree | M::Ffreep => misc::ffree(cpu, insn),
        M::Fdecstp | M::Fincstp => misc::step_top(cpu, insn),
        M::Fnop => Ok(()),
        M::Fcmovb
        | M::Fcmovbe
        | M::Fcmove
        | M::Fcmovnb
        | M::Fcmovnbe
        | M::Fcmovne
        | M::Fcmovnu
        | M::Fcmovu => misc::fcmov(cpu, insn),
        M::Fsin
        | M::Fcos
        | M::Fsincos
        | M::Fptan
        | M::Fpatan
        | M::F2xm1
        | M::Fyl2x
        | M::Fyl2xp1 => transcend::execute(cpu, insn),
        M::Fninit | M::Finit => env::finit(cpu, bus),
        M::Fnclex | M::Fclex => env::fclex(cpu, bus),
        M::Fldcw => env::fldcw(cpu, insn, bus),
        M::Fnstcw | M::Fstcw => env::fstcw(cpu, insn, bus),
        M::Fnstsw | M::Fstsw => env::fstsw(cpu, insn, bus),
        M::Fldenv => env::fldenv(cpu, insn, bus),
        M::Fnstenv | M::Fstenv => env::fstenv(cpu, insn, bus),
        M::Fnsave | M::Fsave => env::fsave(cpu, insn, bus),
        M::Frstor => env::frstor(cpu, insn, bus),
        M::Fxsave => env::fxsave(cpu, insn, bus),
        M::Fxrstor => env::fxrstor(cpu, insn, bus),
        // 8087/287 controls: no-ops on the 387 and later.
        M::Fneni | M::Feni | M::Fndisi | M::Fdisi | M::Fnsetpm | M::Fsetpm | M::Wait => Ok(()),
        _ => Err(cpu.note_unimplemented(insn)),
    }
}

#[cfg(test)]
mod tests;
