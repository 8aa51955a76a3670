//! The reference interpreter: one function per mnemonic, grouped by concept
//! in sibling files (Intel SDM Vol. 2 for each instruction).
//!
//! [`execute`] is the one place that maps an iced-x86 `Mnemonic` to its
//! handler. Handlers read operands, compute, write results, and only then
//! record flags, so a fault leaves the registers as they were. Whatever is
//! not listed here, and is not x87, raises #UD.

pub mod arith;
pub mod bcd;
pub mod bit;
pub mod control;
pub mod data;
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
pub mod system;

use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::exception::Exception;
use iced_x86::{Instruction, Mnemonic as M};

/// Executes one decoded instruction (EIP already points past it in
/// `cpu.ctx.next_eip`).
#[inline]
pub fn execute<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    insn: &Instruction,
    bus: &mut B,
) -> Result<(), Exception> {
    match insn.mnemonic() {
        // Data movement.
        M::Mov if system::is_system_mov(insn) => system::mov_system(cpu, insn, bus),
        M::Mov => data::mov(cpu, insn, bus),
        M::Movzx => data::movzx(cpu, insn, bus),
        M::Movsx => data::movsx(cpu, insn, bus),
        M::Lea => data::lea(cpu, insn, bus),
        M::Xchg => data::xchg(cpu, insn, bus),
        M::Xlatb => data::xlat(cpu, insn, bus),
        M::Lahf => data::lahf(cpu, insn, bus),
        M::Sahf => data::sahf(cpu, insn, bus),
        M::Cbw | M::Cwde => data::cbw(cpu, insn, bus),
        M::Cwd | M::Cdq => data::cwd(cpu, insn, bus),
        M::Bswap => data::bswap(cpu, insn, bus),
        M::Cmovo
        | M::Cmovno
        | M::Cmovb
        | M::Cmovae
        | M::Cmove
        | M::Cmovne
        | M::Cmovbe
        | M::Cmova
        | M::Cmovs
        | M::Cmovns
        | M::Cmovp
        | M::Cmovnp
        | M::Cmovl
        | M::Cmovge
        | M::Cmovle
        | M::Cmovg => data::cmovcc(cpu, insn, bus),
        M::Seto
        | M::Setno
        | M::Setb
        | M::Setae
        | M::Sete
        | M::Setne
        | M::Setbe
        | M::Seta
        | M::Sets
        | M::Setns
        | M::Setp
        | M::Setnp
        | M::Setl
        | M::Setge
        | M::Setle
        | M::Setg => data::setcc(cpu, insn, bus),
        M::Lds | M::Les | M::Lfs | M::Lgs | M::Lss => segment::load_far_pointer(cpu, insn, bus),
        M::Cmpxchg => data::cmpxchg(cpu, insn, bus),
        M::Cmpxchg8b => data::cmpxchg8b(cpu, insn, bus),
        M::Xadd => data::xadd(cpu, insn, bus),
        M::Salc => data::salc(cpu, insn, bus),
        // Arithmetic.
        M::Add => arith::add(cpu, insn, bus),
        M::Adc => arith::adc(cpu, insn, bus),
        M::Sub => arith::sub(cpu, insn, bus),
        M::Sbb => arith::sbb(cpu, insn, bus),
        M::Cmp => arith::cmp(cpu, insn, bus),
        M::Inc => arith::inc(cpu, insn, bus),
        M::Dec => arith::dec(cpu, insn, bus),
        M::Neg => arith::neg(cpu, insn, bus),
        M::Mul => muldiv::mul(cpu, insn, bus),
        M::Imul => muldiv::imul(cpu, insn, bus),
        M::Div => muldiv::div(cpu, insn, bus),
        M::Idiv => muldiv::idiv(cpu, insn, bus),
        // Logic.
        M::And => logic::and(cpu, insn, bus),
        M::Or => logic::or(cpu, insn, bus),
        M::Xor => logic::xor(cpu, insn, bus),
        M::Test => logic::test(cpu, insn, bus),
        M::Not => logic::not(cpu, insn, bus),
        // Shifts and rotates.
        M::Sal if cpu.state.model == crate::model::CpuModel::I8086 => shift::setmo(cpu, insn, bus),
        M::Shl | M::Sal => shift::shl(cpu, insn, bus),
        M::Shr => shift::shr(cpu, insn, bus),
        M::Sar => shift::sar(cpu, insn, bus),
        M::Rol => shift::rol(cpu, insn, bus),
        M::Ror => shift::ror(cpu, insn, bus),
        M::Rcl => shift::rcl(cpu, insn, bus),
        M::Rcr => shift::rcr(cpu, insn, bus),
        M::Shld => shift::shld(cpu, insn, bus),
        M::Shrd => shift::shrd(cpu, insn, bus),
        // BCD.
        M::Aaa => bcd::aaa(cpu, insn, bus),
        M::Aas => bcd::aas(cpu, insn, bus),
        M::Daa => bcd::daa(cpu, insn, bus),
        M::Das => bcd::das(cpu, insn, bus),
        M::Aam => bcd::aam(cpu, insn, bus),
        M::Aad => bcd::aad(cpu, insn, bus),
        // Bits.
        M::Bt => bit::bt(cpu, insn, bus),
        M::Bts => bit::bts(cpu, insn, bus),
        M::Btr => bit::btr(cpu, insn, bus),
        M::Btc => bit::btc(cpu, insn, bus),
        // A CPU without BMI1/ABM ignores the F3 prefix of TZCNT/LZCNT and
        // runs BSF/BSR (SDM Vol. 2B, TZCNT: "on processors that do not
        // support TZCNT, the instruction byte encoding is executed as BSF").
        M::Bsf | M::Tzcnt => bit::bsf(cpu, insn, bus),
        M::Bsr | M::Lzcnt => bit::bsr(cpu, insn, bus),
        // Strings.
        M::Movsb | M::Movsw | M::Movsd => string::movs(cpu, insn, bus),
        M::Cmpsb | M::Cmpsw | M::Cmpsd => string::cmps(cpu, insn, bus),
        M::Scasb | M::Scasw | M::Scasd => string::scas(cpu, insn, bus),
        M::Lodsb | M::Lodsw | M::Lodsd => string::lods(cpu, insn, bus),
        M::Stosb | M::Stosw | M::Stosd => string::stos(cpu, insn, bus),
        M::Insb | M::Insw | M::Insd => string::ins(cpu, insn, bus),
        M::Outsb | M::Outsw | M::Outsd => string::outs(cpu, insn, bus),
        // Control transfer.
        M::Jmp => control::jmp(cpu, insn, bus),
        M::Jmpe => Err(Exception::InvalidOpcode),
        M::Jo
        | M::Jno
        | M::Jb
        | M::Jae
        | M::Je
        | M::Jne
        | M::Jbe
        | M::Ja
        | M::Js
        | M::Jns
        | M::Jp
        | M::Jnp
        | M::Jl
        | M::Jge
        | M::Jle
        | M::Jg => control::jcc(cpu, insn, bus),
        M::Jcxz | M::Jecxz => control::jcxz(cpu, insn, bus),
        M::Loop | M::Loope | M::Loopne => control::loop_(cpu, insn, bus),
        M::Call => control::call(cpu, insn, bus),
        M::Ret => control::ret(cpu, insn, bus),
        M::Retf => control::retf(cpu, insn, bus),
        M::Int => control::int(cpu, insn, bus),
        M::Int3 => control::int3(cpu, insn, bus),
        M::Into => control::into(cpu, insn, bus),
        M::Int1 => control::int1(cpu, insn, bus),
        M::Iret | M::Iretd => control::iret(cpu, insn, bus),
        M::Bound => control::bound(cpu, insn, bus),
        // Stack.
        M::Push => stack::push(cpu, insn, bus),
        M::Pop => stack::pop(cpu, insn, bus),
        M::Pusha | M::Pushad => stack::pusha(cpu, insn, bus),
        M::Popa | M::Popad => stack::popa(cpu, insn, bus),
        M::Pushf | M::Pushfd => stack::pushf(cpu, insn, bus),
        M::Popf | M::Popfd => stack::popf(cpu, insn, bus),
        M::Enter => stack::enter(cpu, insn, bus),
        M::Leave => stack::leave(cpu, insn, bus),
        // Flag control.
        M::Clc => flagops::clc(cpu, insn, bus),
        M::Stc => flagops::stc(cpu, insn, bus),
        M::Cmc => flagops::cmc(cpu, insn, bus),
        M::Cld => flagops::cld(cpu, insn, bus),
        M::Std => flagops::std(cpu, insn, bus),
        M::Cli => flagops::cli(cpu, insn, bus),
        M::Sti => flagops::sti(cpu, insn, bus),
        // I/O.
        M::In => io::in_(cpu, insn, bus),
        M::Out => io::out(cpu, insn, bus),
        // Miscellaneous.
        M::Nop | M::Pause => Ok(()),
        M::Reservednop => misc::reserved_nop(cpu, insn, bus),
        M::Hlt => misc::hlt(cpu, insn, bus),
        M::Cpuid => misc::cpuid(cpu, insn, bus),
        M::Rdtsc => misc::rdtsc(cpu, insn, bus),
        M::Ud0 | M::Ud1 | M::Ud2 => Err(Exception::InvalidOpcode),
        // System.
        M::Lgdt | M::Lidt => system::lgdt_lidt(cpu, insn, bus),
        M::Sgdt | M::Sidt => system::sgdt_sidt(cpu, insn, bus),
        M::Sldt | M::Str => system::sldt_str(cpu, insn, bus),
        M::Lldt => system::lldt(cpu, insn, bus),
        M::Ltr => system::ltr(cpu, insn, bus),
        M::Lar => system::lar(cpu, insn, bus),
        M::Lsl => system::lsl(cpu, insn, bus),
        M::Verr | M::Verw => system::verr_verw(cpu, insn, bus),
        M::Arpl => system::arpl(cpu, insn, bus),
        M::Smsw => system::smsw(cpu, insn, bus),
        M::Lmsw => system::lmsw(cpu, insn, bus),
        M::Clts => system::clts(cpu, insn, bus),
        M::Invd | M::Wbinvd => system::invd(cpu, insn, bus),
        M::Invlpg => system::invlpg(cpu, insn, bus),
        M::Rdmsr => system::rdmsr(cpu, insn, bus),
        M::Wrmsr => system::wrmsr(cpu, insn, bus),
        M::Sysenter => system::sysenter(cpu, insn, bus),
        M::Sysexit => system::sysexit(cpu, insn, bus),
        // Everything else is the x87's or undefined.
        _ => crate::x87::execute(cpu, insn, bus),
    }
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
