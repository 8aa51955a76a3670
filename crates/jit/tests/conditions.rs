//! Every condition code after CMP, SUB, TEST, DEC and ADD at each width,
//! as SETcc and as Jcc, on operands that hit the signed and unsigned
//! boundaries: the JIT compares the record's values directly where a
//! native compare gives the condition (`Emitter::direct_condition`), and
//! the result must be the interpreter's.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_jit::EngineKind;

const ITERATIONS: u32 = 200;

/// SETcc of all sixteen conditions, as bits of EDI (MOV, MOVZX and LEA
/// leave the flags alone), added into the checksum at [esi].
fn set_all(a: &mut CodeAssembler) -> Result<(), iced_x86::IcedError> {
    a.mov(edi, 0)?;
    for cc in 0..16 {
        match cc {
            0 => a.seto(dl)?,
            1 => a.setno(dl)?,
            2 => a.setb(dl)?,
            3 => a.setae(dl)?,
            4 => a.sete(dl)?,
            5 => a.setne(dl)?,
            6 => a.setbe(dl)?,
            7 => a.seta(dl)?,
            8 => a.sets(dl)?,
            9 => a.setns(dl)?,
            10 => a.setp(dl)?,
            11 => a.setnp(dl)?,
            12 => a.setl(dl)?,
            13 => a.setge(dl)?,
            14 => a.setle(dl)?,
            _ => a.setg(dl)?,
        }
        a.movzx(edx, dl)?;
        a.lea(edi, ptr(edx + edi * 2))?;
    }
    a.imul_3(edx, dword_ptr(esi), 31)?;
    a.add(edx, edi)?;
    a.mov(dword_ptr(esi), edx)
}

fn program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut skips: Vec<CodeLabel> = (0..8).map(|_| a.create_label()).collect();
        a.mov(ecx, ITERATIONS)?;
        a.mov(esi, 0x10000u32)?;
        a.mov(ebx, 0x7FFF_FFFEu32)?;
        a.mov(eax, 0x8000_0001u32)?;
        a.set_label(&mut top)?;
        // Operands near 0, the sign boundaries and each other.
        a.imul_3(ebp, ecx, 0x0101_0101)?;
        a.xor(eax, ebp)?;
        a.rol(ebx, 9)?;
        a.test(ecx, 3)?;
        a.jnz(skips[0])?;
        a.mov(ebx, eax)?; // equal operands every fourth trip
        a.set_label(&mut skips[0])?;
        a.cmp(eax, ebx)?;
        set_all(a)?;
        a.cmp(ax, bx)?;
        set_all(a)?;
        a.cmp(al, bl)?;
        set_all(a)?;
        a.cmp(ax, -3)?; // a sign-extended immediate
        set_all(a)?;
        a.cmp(bl, -128)?;
        set_all(a)?;
        a.mov(edx, eax)?;
        a.sub(edx, ebx)?;
        set_all(a)?;
        a.test(eax, ebx)?;
        set_all(a)?;
        a.mov(edx, eax)?;
        a.dec(dx)?;
        set_all(a)?;
        a.mov(edx, eax)?;
        a.add(edx, ebx)?;
        set_all(a)?;
        // Jcc after CMP: each taken or not by the data.
        for (i, jcc) in [0usize, 1, 2, 3].iter().enumerate() {
            a.cmp(eax, ebx)?;
            let l = skips[1 + i];
            match jcc {
                0 => a.jl(l)?,
                1 => a.jle(l)?,
                2 => a.ja(l)?,
                _ => a.jns(l)?,
            }
            a.add(dword_ptr(esi + 4), 1 << i)?;
            a.set_label(&mut skips[1 + i])?;
        }
        a.cmp(bx, ax)?;
        a.jg(skips[5])?;
        a.add(dword_ptr(esi + 4), 0x100)?;
        a.set_label(&mut skips[5])?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.hlt()
    })
}

#[test]
fn conditions_after_each_producer_match_interp() {
    inline_same_as_interp(&program(), 0);
}

#[test]
fn odd_slices_stop_at_the_same_instruction() {
    same_at_budgets(
        &[EngineKind::Jit, EngineKind::Tiered],
        &program(),
        odd_budgets(&[1, 7, 13], &[1234, 5001]),
        |_, _| {},
    );
}
