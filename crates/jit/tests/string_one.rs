//! LODS and SCAS without REP, inline, give the interpreter's state: all
//! element sizes, DF clear and set, a segment override, 16-bit addresses
//! (the upper half of the index register kept), and the flags of SCAS
//! read after it (SETcc, Jcc, ADC, PUSHFD).

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;

const ITERATIONS: u32 = 300;

fn program() -> Vec<u8> {
    assemble(|a| {
        let mut top = a.create_label();
        let mut down = a.create_label();
        let mut go = a.create_label();
        let mut skip = a.create_label();
        a.mov(ecx, ITERATIONS)?;
        a.mov(ebx, 0x9E37_79B9u32)?;
        a.set_label(&mut top)?;
        a.imul_3(ebx, ebx, 0x0100_0193)?;
        a.add(ebx, ecx)?;
        a.mov(dword_ptr(0x10000 + 64), ebx)?;
        a.mov(esi, ebx)?;
        a.and(esi, 0x3F)?;
        a.add(esi, 0x10000)?;
        a.lea(edi, dword_ptr(esi + 3))?;
        a.test(ebx, 0x100)?;
        a.jnz(down)?;
        a.cld()?;
        a.jmp(go)?;
        a.set_label(&mut down)?;
        a.std()?;
        a.set_label(&mut go)?;
        a.mov(dword_ptr(esi), ebx)?;
        a.lodsb()?;
        a.mov(dword_ptr(0x10000 + 128), eax)?;
        a.lodsw()?;
        a.lodsd()?;
        a.add(dword_ptr(0x10000 + 192), eax)?;
        a.db(&[0x26, 0xAD])?; // ES: LODSD
        a.scasb()?;
        a.setz(dl)?;
        a.adc(dword_ptr(0x10000 + 192), edx)?;
        a.scasw()?;
        a.pushfd()?;
        a.pop(edx)?;
        a.add(dword_ptr(0x10000 + 192), edx)?;
        a.mov(eax, ebx)?;
        a.scasd()?;
        a.jb(skip)?;
        a.add(dword_ptr(0x10000 + 196), edi)?;
        a.set_label(&mut skip)?;
        a.add(dword_ptr(0x10000 + 196), esi)?;
        // 16-bit addresses: SI and DI, the upper halves kept.
        a.mov(esi, 0x0001_2000)?;
        a.mov(edi, 0xFFFF_0001u32)?;
        a.db(&[0x67, 0xAC])?; // LODSB with SI
        a.db(&[0x67, 0xAF])?; // SCASD with DI
        a.setl(dl)?;
        a.add(dword_ptr(0x10000 + 196), edx)?;
        a.add(dword_ptr(0x10000 + 196), esi)?;
        a.add(dword_ptr(0x10000 + 196), edi)?;
        a.add(dword_ptr(0x10000 + 196), eax)?;
        a.dec(ecx)?;
        a.jnz(top)?;
        a.cld()?;
        a.hlt()
    })
}

#[test]
fn lods_and_scas_inline_match_interp() {
    // PUSHFD and CLD/STD go through the helper.
    inline_same_as_interp(&program(), 2 * u64::from(ITERATIONS));
}
