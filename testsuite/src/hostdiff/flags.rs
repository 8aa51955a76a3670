//! Which status flags an instruction leaves undefined (Intel SDM Vol. 2,
//! each instruction's "Flags Affected"), so the comparison can mask them.
//! iced-x86's tables give the general case; shifts and rotates depend on
//! the count, which the generator knows.

use iced_x86::{Instruction, Mnemonic as M, OpKind, RflagsBits};

const CF: u32 = 0x1;
const PF: u32 = 0x4;
const AF: u32 = 0x10;
const ZF: u32 = 0x40;
const SF: u32 = 0x80;
const OF: u32 = 0x800;
/// All six status flags.
pub const STATUS: u32 = CF | PF | AF | ZF | SF | OF;

/// iced-x86 `RflagsBits` as EFLAGS bits (status flags and DF).
pub fn to_eflags(bits: u32) -> u32 {
    let map = [
        (RflagsBits::OF, OF),
        (RflagsBits::SF, SF),
        (RflagsBits::ZF, ZF),
        (RflagsBits::AF, AF),
        (RflagsBits::CF, CF),
        (RflagsBits::PF, PF),
        (RflagsBits::DF, 0x400),
    ];
    map.iter()
        .filter(|(i, _)| bits & i != 0)
        .fold(0, |acc, (_, e)| acc | e)
}

/// The flags `insn` reads.
pub fn read(insn: &Instruction) -> u32 {
    to_eflags(insn.rflags_read())
}

/// `(defined, undefined)`: the flags `insn` writes with a defined value and
/// those it leaves undefined. `count` is the shift count or REP count when
/// the generator knows it (an unknown count is treated conservatively).
pub fn effect(insn: &Instruction, count: Option<u32>) -> (u32, u32) {
    let m = insn.mnemonic();
    match m {
        M::Shl
        | M::Sal
        | M::Shr
        | M::Sar
        | M::Rol
        | M::Ror
        | M::Rcl
        | M::Rcr
        | M::Shld
        | M::Shrd => shift_effect(insn, m, count),
        M::Movsb
        | M::Movsw
        | M::Movsd
        | M::Cmpsb
        | M::Cmpsw
        | M::Cmpsd
        | M::Scasb
        | M::Scasw
        | M::Scasd
        | M::Stosb
        | M::Stosw
        | M::Stosd
        | M::Lodsb
        | M::Lodsw
        | M::Lodsd
            if count == Some(0) && (insn.has_rep_prefix() || insn.has_repne_prefix()) =>
        {
            (0, 0)
        }
        _ => {
            let undefined = to_eflags(insn.rflags_undefined());
            (to_eflags(insn.rflags_modified()) & !undefined, undefined)
        }
    }
}

fn shift_effect(insn: &Instruction, m: M, count: Option<u32>) -> (u32, u32) {
    let width = if insn.op0_kind() == OpKind::Memory {
        insn.memory_size().size() as u32 * 8
    } else {
        insn.op0_register().size() as u32 * 8
    };
    let last = insn.op_count() - 1;
    let count = match insn.op_kind(last) {
        OpKind::Immediate8 => Some(u32::from(insn.immediate8())),
        _ => count,
    };
    let rotate = matches!(m, M::Rol | M::Ror | M::Rcl | M::Rcr);
    let double = matches!(m, M::Shld | M::Shrd);
    let Some(c) = count.map(|c| c & 31) else {
        // Count 0 changes nothing, so nothing becomes defined for sure.
        let undefined = if rotate {
            OF
        } else if double {
            STATUS
        } else {
            AF | OF | if width < 32 && m != M::Sar { CF } else { 0 }
        };
        return (0, undefined);
    };
    if c == 0 {
        return (0, 0);
    }
    let of = if c > 1 { OF } else { 0 };
    if matches!(m, M::Rcl | M::Rcr) && c % (width + 1) == 0 {
        // A rotation by the full width+1 bits leaves CF (and the value) as they were.
        return (0, of);
    }
    if rotate {
        return (CF | OF & !of, of);
    }
    if double && width == 16 && c > 16 {
        return (0, STATUS);
    }
    let cf = if !double && c >= width && m != M::Sar {
        CF
    } else {
        0
    };
    ((CF | PF | ZF | SF | OF) & !of & !cf, AF | of | cf)
}
