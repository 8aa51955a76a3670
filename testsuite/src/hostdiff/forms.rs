//! The instruction forms the generator draws from: every iced-x86 `Code`
//! valid in 32-bit mode whose mnemonic belongs to a tested group and whose
//! operands the generator knows how to fill (registers, r/m, immediates,
//! plain memory). Special encodings (strings, branches, ENTER/LEAVE,
//! PUSHA/POPA/PUSHF/POPF, XLAT) are built by hand in the generator.

use iced_x86::{Code, Mnemonic as M, OpCodeOperandKind as K};

/// Groups the generator balances between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// MOV MOVZX MOVSX LEA XCHG BSWAP CMOVcc SETcc CMPXCHG(8B) XADD CBW... LAHF SAHF.
    Data,
    /// ADD ADC SUB SBB CMP INC DEC NEG AND OR XOR TEST NOT, flag ops.
    Alu,
    /// Shifts, rotates, SHLD, SHRD.
    Shift,
    /// MUL IMUL DIV IDIV.
    MulDiv,
    /// AAA AAS DAA DAS AAM AAD.
    Bcd,
    /// BT BTS BTR BTC BSF BSR.
    Bit,
    /// PUSH and POP of registers, memory and immediates.
    Stack,
}

/// One encodable instruction form.
#[derive(Clone, Debug)]
pub struct Form {
    /// The exact encoding.
    pub code: Code,
    /// Its explicit operands.
    pub kinds: Vec<K>,
    /// Its group.
    pub group: Group,
}

fn group_of(m: M) -> Option<Group> {
    use Group::*;
    Some(match m {
        M::Mov
        | M::Movzx
        | M::Movsx
        | M::Lea
        | M::Xchg
        | M::Bswap
        | M::Cmpxchg
        | M::Cmpxchg8b
        | M::Xadd
        | M::Cbw
        | M::Cwde
        | M::Cwd
        | M::Cdq
        | M::Lahf
        | M::Sahf => Data,
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
        | M::Cmovg => Data,
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
        | M::Setg => Data,
        M::Add
        | M::Adc
        | M::Sub
        | M::Sbb
        | M::Cmp
        | M::Inc
        | M::Dec
        | M::Neg
        | M::And
        | M::Or
        | M::Xor
        | M::Test
        | M::Not
        | M::Clc
        | M::Stc
        | M::Cmc
        | M::Cld
        | M::Std => Alu,
        M::Shl
        | M::Sal
        | M::Shr
        | M::Sar
        | M::Rol
        | M::Ror
        | M::Rcl
        | M::Rcr
        | M::Shld
        | M::Shrd => Shift,
        M::Mul | M::Imul | M::Div | M::Idiv => MulDiv,
        M::Aaa | M::Aas | M::Daa | M::Das | M::Aam | M::Aad => Bcd,
        M::Bt | M::Bts | M::Btr | M::Btc | M::Bsf | M::Bsr => Bit,
        M::Push | M::Pop => Stack,
        _ => return None,
    })
}

fn supported(k: K) -> bool {
    matches!(
        k,
        K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::mem
            | K::mem_offs
            | K::r8_reg
            | K::r8_opcode
            | K::r16_reg
            | K::r16_rm
            | K::r16_opcode
            | K::r32_reg
            | K::r32_rm
            | K::r32_opcode
            | K::imm8
            | K::imm8_const_1
            | K::imm8sex16
            | K::imm8sex32
            | K::imm16
            | K::imm32
            | K::al
            | K::cl
            | K::ax
            | K::eax
    )
}

/// Every form the generator uses, grouped.
pub fn all() -> Vec<Form> {
    let mut forms = Vec::new();
    for code in Code::values() {
        let op = code.op_code();
        if !op.is_instruction() || !op.mode32() {
            continue;
        }
        let Some(group) = group_of(code.mnemonic()) else {
            continue;
        };
        let kinds: Vec<K> = op.op_kinds().to_vec();
        if !kinds.iter().all(|&k| supported(k)) {
            continue;
        }
        // BSWAP r16 is undefined; the POPs of registers and PUSH/POP of
        // segment registers are handled elsewhere or excluded by kind.
        if code == Code::Bswap_r16 {
            continue;
        }
        forms.push(Form { code, kinds, group });
    }
    forms
}
