//! Threaded dispatch: which handler executes an instruction is resolved
//! once, when it is decoded ([`resolve`]), and kept in the decoded-instruction
//! cache as an [`Op`]; executing it is then one indirect call through
//! [`Op::handler`], with no match on the mnemonic per execution.
//!
//! [`resolve`] is the one place that maps an iced-x86 `Mnemonic` to its
//! handler; [`super::execute`] goes through it too.

use super::{arith, bcd, bit, control, data, flagops, io, logic, misc, muldiv};
use super::{segment, shift, stack, string, system};
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::decode::Decoded;
use crate::exception::Exception;
use iced_x86::{Instruction, Mnemonic as M};

/// An instruction handler (Intel SDM Vol. 2 for each instruction): the
/// general ones read only [`Decoded::insn`], the specialised ones of
/// [`super::fast`] the fields [`Decoded`] adds. It returns whether the
/// instruction retired; when it faulted instead, the exception is in
/// [`Cpu::fault`] (a flag in a register is cheaper to return per
/// instruction than a `Result` written through memory).
pub type Handler<B> = fn(&mut Cpu, &Decoded, &mut B) -> bool;

/// The [`Handler`] status of a handler's `Result`: keeps the exception in
/// [`Cpu::fault`].
#[inline(always)]
pub(crate) fn retired(cpu: &mut Cpu, r: Result<(), Exception>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            cpu.fault = e;
            false
        }
    }
}

macro_rules! ops {
    (
        general { $($name:ident => $f:expr,)* }
        specialised { $($sname:ident => $sf:expr,)* }
    ) => {
        /// Which handler executes an instruction.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Op {
            $(
                #[doc = concat!("`", stringify!($f), "`")]
                $name,
            )*
            $(
                #[doc = concat!("`", stringify!($sf), "` (a specialised form)")]
                $sname,
            )*
        }

        /// The handlers in [`Op`] order, one table per bus type.
        struct Table<B: ?Sized>(std::marker::PhantomData<B>);

        impl<B: Bus + ?Sized> Table<B> {
            const ALL: [Handler<B>; [$(Op::$name,)* $(Op::$sname,)*].len()] = [
                $(|cpu: &mut Cpu, d: &Decoded, bus: &mut B| {
                    let r = $f(cpu, &d.insn, bus);
                    retired(cpu, r)
                },)*
                $(|cpu: &mut Cpu, d: &Decoded, bus: &mut B| {
                    let r = $sf(cpu, d, bus);
                    retired(cpu, r)
                },)*
            ];
        }
    };
}

impl Op {
    /// The handler for this op.
    #[inline(always)]
    pub fn handler<B: Bus + ?Sized>(self) -> Handler<B> {
        Table::<B>::ALL[self as usize]
    }

    /// Runs the handler for this op on `d`, as a `Result`.
    #[inline]
    pub fn execute<B: Bus + ?Sized>(
        self,
        cpu: &mut Cpu,
        d: &Decoded,
        bus: &mut B,
    ) -> Result<(), Exception> {
        if self.handler()(cpu, d, bus) {
            Ok(())
        } else {
            Err(cpu.fault)
        }
    }
}

/// NOP.
fn nop<B: Bus + ?Sized>(_: &mut Cpu, _: &Instruction, _: &mut B) -> Result<(), Exception> {
    Ok(())
}

/// JMPE, UD0, UD1, UD2: #UD.
fn undefined<B: Bus + ?Sized>(_: &mut Cpu, _: &Instruction, _: &mut B) -> Result<(), Exception> {
    Err(Exception::InvalidOpcode)
}

/// SAL: SHL, except on the 8086 where the /6 encoding is SETMO.
fn sal<B: Bus + ?Sized>(cpu: &mut Cpu, insn: &Instruction, bus: &mut B) -> Result<(), Exception> {
    if cpu.state.model == crate::model::CpuModel::I8086 {
        shift::setmo(cpu, insn, bus)
    } else {
        shift::shl(cpu, insn, bus)
    }
}

ops! {
    general {
    X87 => crate::x87::execute,
    SystemMovSystem => system::mov_system,
    DataMov => data::mov,
    DataMovzx => data::movzx,
    DataMovsx => data::movsx,
    DataLea => data::lea,
    DataXchg => data::xchg,
    DataXlat => data::xlat,
    DataLahf => data::lahf,
    DataSahf => data::sahf,
    DataCbw => data::cbw,
    DataCwd => data::cwd,
    DataBswap => data::bswap,
    DataCmovcc => data::cmovcc,
    DataSetcc => data::setcc,
    SegmentLoadFarPointer => segment::load_far_pointer,
    DataCmpxchg => data::cmpxchg,
    DataCmpxchg8b => data::cmpxchg8b,
    DataXadd => data::xadd,
    DataSalc => data::salc,
    ArithAdd => arith::add,
    ArithAdc => arith::adc,
    ArithSub => arith::sub,
    ArithSbb => arith::sbb,
    ArithCmp => arith::cmp,
    ArithInc => arith::inc,
    ArithDec => arith::dec,
    ArithNeg => arith::neg,
    MuldivMul => muldiv::mul,
    MuldivImul => muldiv::imul,
    MuldivDiv => muldiv::div,
    MuldivIdiv => muldiv::idiv,
    LogicAnd => logic::and,
    LogicOr => logic::or,
    LogicXor => logic::xor,
    LogicTest => logic::test,
    LogicNot => logic::not,
    ShiftShl => shift::shl,
    ShiftShr => shift::shr,
    ShiftSar => shift::sar,
    ShiftRol => shift::rol,
    ShiftRor => shift::ror,
    ShiftRcl => shift::rcl,
    ShiftRcr => shift::rcr,
    ShiftShld => shift::shld,
    ShiftShrd => shift::shrd,
    BcdAaa => bcd::aaa,
    BcdAas => bcd::aas,
    BcdDaa => bcd::daa,
    BcdDas => bcd::das,
    BcdAam => bcd::aam,
    BcdAad => bcd::aad,
    BitBt => bit::bt,
    BitBts => bit::bts,
    BitBtr => bit::btr,
    BitBtc => bit::btc,
    BitBsf => bit::bsf,
    BitBsr => bit::bsr,
    StringMovs => string::movs,
    StringCmps => string::cmps,
    StringScas => string::scas,
    StringLods => string::lods,
    StringStos => string::stos,
    StringIns => string::ins,
    StringOuts => string::outs,
    ControlJmp => control::jmp,
    Undefined => undefined,
    ControlJcc => control::jcc,
    ControlJcxz => control::jcxz,
    ControlLoop => control::loop_,
    ControlCall => control::call,
    ControlRet => control::ret,
    ControlRetf => control::retf,
    ControlInt => control::int,
    ControlInt3 => control::int3,
    ControlInto => control::into,
    ControlInt1 => control::int1,
    ControlIret => control::iret,
    ControlBound => control::bound,
    StackPush => stack::push,
    StackPop => stack::pop,
    StackPusha => stack::pusha,
    StackPopa => stack::popa,
    StackPushf => stack::pushf,
    StackPopf => stack::popf,
    StackEnter => stack::enter,
    StackLeave => stack::leave,
    FlagopsClc => flagops::clc,
    FlagopsStc => flagops::stc,
    FlagopsCmc => flagops::cmc,
    FlagopsCld => flagops::cld,
    FlagopsStd => flagops::std,
    FlagopsCli => flagops::cli,
    FlagopsSti => flagops::sti,
    IoIn => io::in_,
    IoOut => io::out,
    Nop => nop,
    MiscReservedNop => misc::reserved_nop,
    MiscHlt => misc::hlt,
    MiscPause => misc::pause,
    MiscCpuid => misc::cpuid,
    MiscRdtsc => misc::rdtsc,
    MiscRdpmc => misc::rdpmc,
    SystemLgdtLidt => system::lgdt_lidt,
    SystemSgdtSidt => system::sgdt_sidt,
    SystemSldtStr => system::sldt_str,
    SystemLldt => system::lldt,
    SystemLtr => system::ltr,
    SystemLar => system::lar,
    SystemLsl => system::lsl,
    SystemVerrVerw => system::verr_verw,
    SystemArpl => system::arpl,
    SystemSmsw => system::smsw,
    SystemLmsw => system::lmsw,
    SystemClts => system::clts,
    SystemInvd => system::invd,
    SystemInvlpg => system::invlpg,
    SystemRdmsr => system::rdmsr,
    SystemWrmsr => system::wrmsr,
    SystemSysenter => system::sysenter,
    SystemSysexit => system::sysexit,
    Sal => sal,
    }
    specialised {
        MovR32R32 => super::fast::mov_r32_r32,
        MovR32Imm => super::fast::mov_r32_imm,
        AddR32R32 => super::fast::add_r32_r32,
        SubR32R32 => super::fast::sub_r32_r32,
        AndR32R32 => super::fast::and_r32_r32,
        OrR32R32 => super::fast::or_r32_r32,
        XorR32R32 => super::fast::xor_r32_r32,
        CmpR32R32 => super::fast::cmp_r32_r32,
        TestR32R32 => super::fast::test_r32_r32,
        AddR32Imm => super::fast::add_r32_imm,
        SubR32Imm => super::fast::sub_r32_imm,
        AndR32Imm => super::fast::and_r32_imm,
        OrR32Imm => super::fast::or_r32_imm,
        XorR32Imm => super::fast::xor_r32_imm,
        CmpR32Imm => super::fast::cmp_r32_imm,
        TestR32Imm => super::fast::test_r32_imm,
        IncR32 => super::fast::inc_r32,
        DecR32 => super::fast::dec_r32,
        PushR32 => super::fast::push_r32,
        PopR32 => super::fast::pop_r32,
        JoRel => super::fast::jcc_rel::<0, B>,
        JnoRel => super::fast::jcc_rel::<1, B>,
        JbRel => super::fast::jcc_rel::<2, B>,
        JaeRel => super::fast::jcc_rel::<3, B>,
        JeRel => super::fast::jcc_rel::<4, B>,
        JneRel => super::fast::jcc_rel::<5, B>,
        JbeRel => super::fast::jcc_rel::<6, B>,
        JaRel => super::fast::jcc_rel::<7, B>,
        JsRel => super::fast::jcc_rel::<8, B>,
        JnsRel => super::fast::jcc_rel::<9, B>,
        JpRel => super::fast::jcc_rel::<10, B>,
        JnpRel => super::fast::jcc_rel::<11, B>,
        JlRel => super::fast::jcc_rel::<12, B>,
        JgeRel => super::fast::jcc_rel::<13, B>,
        JleRel => super::fast::jcc_rel::<14, B>,
        JgRel => super::fast::jcc_rel::<15, B>,
        JmpRel => super::fast::jmp_rel,
        CallRel => super::fast::call_rel,
        RetNear => super::fast::ret_near,
        MovR32Mem => super::fast::mov_r32_mem,
        MovMemR32 => super::fast::mov_mem_r32,
        ImulR32R32Imm => super::fast::imul_r32_r32_imm,
        ShlR32Imm => super::fast::shl_r32_imm,
    }
}

/// The handler for `insn`: everything not listed is the x87's or undefined.
pub fn resolve(insn: &Instruction) -> Op {
    match insn.mnemonic() {
        M::Mov if system::is_system_mov(insn) => Op::SystemMovSystem,
        M::Mov => Op::DataMov,
        M::Movzx => Op::DataMovzx,
        M::Movsx => Op::DataMovsx,
        M::Lea => Op::DataLea,
        M::Xchg => Op::DataXchg,
        M::Xlatb => Op::DataXlat,
        M::Lahf => Op::DataLahf,
        M::Sahf => Op::DataSahf,
        M::Cbw | M::Cwde => Op::DataCbw,
        M::Cwd | M::Cdq => Op::DataCwd,
        M::Bswap => Op::DataBswap,
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
        | M::Cmovg => Op::DataCmovcc,
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
        | M::Setg => Op::DataSetcc,
        M::Lds | M::Les | M::Lfs | M::Lgs | M::Lss => Op::SegmentLoadFarPointer,
        M::Cmpxchg => Op::DataCmpxchg,
        M::Cmpxchg8b => Op::DataCmpxchg8b,
        M::Xadd => Op::DataXadd,
        M::Salc => Op::DataSalc,
        M::Add => Op::ArithAdd,
        M::Adc => Op::ArithAdc,
        M::Sub => Op::ArithSub,
        M::Sbb => Op::ArithSbb,
        M::Cmp => Op::ArithCmp,
        M::Inc => Op::ArithInc,
        M::Dec => Op::ArithDec,
        M::Neg => Op::ArithNeg,
        M::Mul => Op::MuldivMul,
        M::Imul => Op::MuldivImul,
        M::Div => Op::MuldivDiv,
        M::Idiv => Op::MuldivIdiv,
        M::And => Op::LogicAnd,
        M::Or => Op::LogicOr,
        M::Xor => Op::LogicXor,
        M::Test => Op::LogicTest,
        M::Not => Op::LogicNot,
        M::Sal => Op::Sal,
        M::Shl => Op::ShiftShl,
        M::Shr => Op::ShiftShr,
        M::Sar => Op::ShiftSar,
        M::Rol => Op::ShiftRol,
        M::Ror => Op::ShiftRor,
        M::Rcl => Op::ShiftRcl,
        M::Rcr => Op::ShiftRcr,
        M::Shld => Op::ShiftShld,
        M::Shrd => Op::ShiftShrd,
        M::Aaa => Op::BcdAaa,
        M::Aas => Op::BcdAas,
        M::Daa => Op::BcdDaa,
        M::Das => Op::BcdDas,
        M::Aam => Op::BcdAam,
        M::Aad => Op::BcdAad,
        M::Bt => Op::BitBt,
        M::Bts => Op::BitBts,
        M::Btr => Op::BitBtr,
        M::Btc => Op::BitBtc,
        // A CPU without BMI1/ABM ignores the F3 prefix of TZCNT/LZCNT and
        // runs BSF/BSR (SDM Vol. 2B, TZCNT: "on processors that do not
        // support TZCNT, the instruction byte encoding is executed as BSF").
        M::Bsf | M::Tzcnt => Op::BitBsf,
        M::Bsr | M::Lzcnt => Op::BitBsr,
        M::Movsb | M::Movsw | M::Movsd => Op::StringMovs,
        M::Cmpsb | M::Cmpsw | M::Cmpsd => Op::StringCmps,
        M::Scasb | M::Scasw | M::Scasd => Op::StringScas,
        M::Lodsb | M::Lodsw | M::Lodsd => Op::StringLods,
        M::Stosb | M::Stosw | M::Stosd => Op::StringStos,
        M::Insb | M::Insw | M::Insd => Op::StringIns,
        M::Outsb | M::Outsw | M::Outsd => Op::StringOuts,
        M::Jmp => Op::ControlJmp,
        M::Jmpe => Op::Undefined,
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
        | M::Jg => Op::ControlJcc,
        M::Jcxz | M::Jecxz => Op::ControlJcxz,
        M::Loop | M::Loope | M::Loopne => Op::ControlLoop,
        M::Call => Op::ControlCall,
        M::Ret => Op::ControlRet,
        M::Retf => Op::ControlRetf,
        M::Int => Op::ControlInt,
        M::Int3 => Op::ControlInt3,
        M::Into => Op::ControlInto,
        M::Int1 => Op::ControlInt1,
        M::Iret | M::Iretd => Op::ControlIret,
        M::Bound => Op::ControlBound,
        M::Push => Op::StackPush,
        M::Pop => Op::StackPop,
        M::Pusha | M::Pushad => Op::StackPusha,
        M::Popa | M::Popad => Op::StackPopa,
        M::Pushf | M::Pushfd => Op::StackPushf,
        M::Popf | M::Popfd => Op::StackPopf,
        M::Enter => Op::StackEnter,
        M::Leave => Op::StackLeave,
        M::Clc => Op::FlagopsClc,
        M::Stc => Op::FlagopsStc,
        M::Cmc => Op::FlagopsCmc,
        M::Cld => Op::FlagopsCld,
        M::Std => Op::FlagopsStd,
        M::Cli => Op::FlagopsCli,
        M::Sti => Op::FlagopsSti,
        M::In => Op::IoIn,
        M::Out => Op::IoOut,
        M::Nop => Op::Nop,
        M::Pause => Op::MiscPause,
        M::Reservednop => Op::MiscReservedNop,
        M::Hlt => Op::MiscHlt,
        M::Cpuid => Op::MiscCpuid,
        M::Rdtsc => Op::MiscRdtsc,
        M::Rdpmc => Op::MiscRdpmc,
        M::Ud0 | M::Ud1 | M::Ud2 => Op::Undefined,
        M::Lgdt | M::Lidt => Op::SystemLgdtLidt,
        M::Sgdt | M::Sidt => Op::SystemSgdtSidt,
        M::Sldt | M::Str => Op::SystemSldtStr,
        M::Lldt => Op::SystemLldt,
        M::Ltr => Op::SystemLtr,
        M::Lar => Op::SystemLar,
        M::Lsl => Op::SystemLsl,
        M::Verr | M::Verw => Op::SystemVerrVerw,
        M::Arpl => Op::SystemArpl,
        M::Smsw => Op::SystemSmsw,
        M::Lmsw => Op::SystemLmsw,
        M::Clts => Op::SystemClts,
        M::Invd | M::Wbinvd => Op::SystemInvd,
        M::Invlpg => Op::SystemInvlpg,
        M::Rdmsr => Op::SystemRdmsr,
        M::Wrmsr => Op::SystemWrmsr,
        M::Sysenter => Op::SystemSysenter,
        M::Sysexit => Op::SystemSysexit,
        _ => Op::X87,
    }
}
