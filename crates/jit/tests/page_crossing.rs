//! Instructions that cross a page boundary run in generated code, behind
//! a check of both pages' bytes: writes to either part and a remapping of
//! the second page must give the interpreter's results.

#[allow(dead_code, reason = "shared with the other test files")]
mod common;
use common::*;
use iced_x86::code_asm::*;
use oxide86_cpu::{Cpu, FlatRam};
use oxide86_jit::EngineKind;

/// Where the loop starts.
const LOOP: u32 = 0x1F00;
/// `add eax, imm32` (5 bytes): opcode and first immediate byte on the
/// code's first page, the other three on the next.
const CROSSING: u32 = 0x1FFE;
/// Trips around the loop.
const TRIPS: u32 = 1000;
/// The identity-mapping page directory and table (paging tests).
const PD: u32 = 0x2_0000;
const PT: u32 = 0x2_1000;
/// A second copy of the page after the boundary, with another immediate.
const ALT_PAGE: u32 = 0x3000;

/// After the crossing instruction's first two bytes (at 0x2000): the
/// rest of its immediate, DEC ECX, JNZ rel32 back to `LOOP`, HLT.
fn tail(imm_hi: [u8; 3]) -> Vec<u8> {
    let rel = LOOP.wrapping_sub(0x200A).to_le_bytes();
    let mut t = imm_hi.to_vec();
    t.extend_from_slice(&[0x49, 0x0F, 0x85]);
    t.extend_from_slice(&rel);
    t.push(0xF4);
    t
}

/// ECX counts `TRIPS` down; each trip runs `body` (at `LOOP`), NOPs up
/// to `CROSSING`, `add eax, 0x11223344` across the boundary and the loop
/// end on the next page.
fn program(body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut code = assemble(|a| {
        a.mov(ecx, TRIPS)?;
        a.xor(eax, eax)?;
        a.jmp(u64::from(LOOP))
    });
    code.resize((LOOP - CODE) as usize, 0x90);
    let mut a = CodeAssembler::new(32).unwrap();
    a.add(ebx, ecx).unwrap();
    body(&mut a).unwrap();
    code.extend(a.assemble(u64::from(LOOP)).unwrap());
    assert!(
        code.len() <= (CROSSING - CODE) as usize,
        "loop body too long"
    );
    code.resize((CROSSING - CODE) as usize, 0x90);
    code.extend_from_slice(&[0x05, 0x44]);
    code.extend(tail([0x33, 0x22, 0x11]));
    code
}

/// Runs `code` under the interpreter, `jit` and `tiered` with `setup`,
/// asserting equal state and RAM; returns the `jit` run's final EAX and
/// its instructions retired outside generated code.
fn agree(code: &[u8], setup: impl Fn(&mut Cpu, &mut FlatRam) + Copy) -> (u32, u64) {
    // One slice: a slice's end sends a block's last instructions to the
    // interpreter, which would blur the count of those that ran outside.
    let (i, ri, _) = run(EngineKind::Interp, code, 1_000_000, 1_000_000, setup);
    assert!(i.halted, "the program did not finish");
    let mut outside = 0;
    for kind in [EngineKind::Jit, EngineKind::Tiered] {
        let (s, rs, e) = run(kind, code, 1_000_000, 1_000_000, setup);
        assert_eq!(architectural(&i), architectural(&s), "{kind:?}");
        assert!(ri.bytes == rs.bytes, "RAM differs under {kind:?}");
        if kind == EngineKind::Jit {
            outside = s.icount - e.stats.block_insns;
        }
    }
    (i.gpr[0], outside)
}

#[test]
fn a_hot_instruction_across_a_page_boundary_runs_in_blocks() {
    let (sum, outside) = agree(&program(|_| Ok(())), |_, _| {});
    assert_eq!(sum, 0x1122_3344u32.wrapping_mul(TRIPS));
    assert!(outside < 20, "{outside} instructions ran outside blocks");
}

/// The loop rewrites the immediate's byte on the second page (a page of
/// code, whose blocks do not include the crossing instruction) and on
/// the first page: every trip must add the value just written.
#[test]
fn writes_to_either_part_of_the_instruction_take_effect() {
    for byte in [CROSSING + 1, CROSSING + 2] {
        let code = program(|a| a.mov(byte_ptr(u64::from(byte)), cl));
        let (sum, _) = agree(&code, |_, _| {});
        let shift = 8 * (byte - CROSSING - 1);
        let base = 0x1122_3344u32 & !(0xFF << shift);
        let want = (1..=TRIPS).fold(0u32, |acc, c| {
            acc.wrapping_add(base | ((c & 0xFF) << shift))
        });
        assert_eq!(sum, want, "patching {byte:#x}");
    }
}

/// Paging on, identity-mapped; halfway through, the loop points linear
/// page 2 (the instruction's second part) at a copy with another
/// immediate and INVLPGs it: the later trips add the new value (the
/// block translated with the old bytes leaves each of them to the
/// interpreter).
#[test]
fn remapping_the_second_page_takes_effect() {
    let code = program(|a| {
        let mut skip = a.create_label();
        a.cmp(ecx, TRIPS / 2)?;
        a.jne(skip)?;
        a.mov(dword_ptr(u64::from(PT + 8)), ALT_PAGE | 7)?;
        a.invlpg(byte_ptr(0x2000u64))?;
        a.set_label(&mut skip)?;
        a.nop()
    });
    let setup = |cpu: &mut Cpu, ram: &mut FlatRam| {
        ram.load(PD, &(PT | 7).to_le_bytes());
        for i in 0..64u32 {
            ram.load(PT + 4 * i, &((i << 12) | 7).to_le_bytes());
        }
        ram.load(ALT_PAGE, &tail([0x00, 0x00, 0x01]));
        cpu.state.cr3 = PD;
        cpu.state.cr0 |= 0x8000_0000;
    };
    let (sum, _) = agree(&code, setup);
    let (old, new) = (0x1122_3344u32, 0x0100_0044u32);
    // ECX from TRIPS down to TRIPS / 2 + 1 adds the old value; the trip
    // with ECX = TRIPS / 2 remaps first.
    let half = TRIPS / 2;
    let want = old
        .wrapping_mul(TRIPS - half)
        .wrapping_add(new.wrapping_mul(half));
    assert_eq!(sum, want);
}
