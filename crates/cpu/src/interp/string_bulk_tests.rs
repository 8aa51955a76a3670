//! The bulk string path against the element loop it must equal: each case
//! runs twice, with chunks and element by element ([`Cpu::string_bulk`]
//! cleared), and both runs must leave the same registers, flags, RAM,
//! exception, instruction count and soft-TLB counters.

use super::{movs, stos, Chunk};
use crate::flags::Flags;
use crate::state::{cr0, eflags, SegReg};
use crate::testutil::{flat32_cpu, CODE};
use crate::{Bus, Cpu, CpuModel, Exception, FlatRam, StepOutcome};

/// Where every exception and interrupt handler is: a HLT.
const HANDLER: u32 = 0x2000;
/// The page directory when paging is on (page tables follow it).
const PAGE_DIR: u32 = 0x8_0000;
/// Instructions a case may run.
const LIMIT: u64 = 64;

/// Byte-form opcodes of the string instructions with a bulk path.
const MOVSB: u8 = 0xA4;
const CMPSB: u8 = 0xA6;
const STOSB: u8 = 0xAA;
const LODSB: u8 = 0xAC;
const SCASB: u8 = 0xAE;
/// Prefixes.
const REP: u8 = 0xF3;
const REPNE: u8 = 0xF2;

/// One string instruction.
#[derive(Clone, Copy, Debug)]
struct Insn {
    /// Byte-form opcode.
    op: u8,
    /// [`REP`], [`REPNE`] or 0 for none.
    rep: u8,
    /// Element size: 1, 2 or 4.
    size: u32,
    /// A 0x67 prefix.
    addr_override: bool,
    /// A segment-override prefix, or 0.
    seg_prefix: u8,
}

impl Insn {
    fn rep(op: u8, size: u32) -> Self {
        Self {
            op,
            rep: REP,
            size,
            addr_override: false,
            seg_prefix: 0,
        }
    }

    /// Its bytes in code of the given default size, then a HLT.
    fn bytes(self, code32: bool) -> Vec<u8> {
        let mut b = Vec::new();
        if self.rep != 0 {
            b.push(self.rep);
        }
        if (self.size == 2 && code32) || (self.size == 4 && !code32) {
            b.push(0x66);
        }
        if self.addr_override {
            b.push(0x67);
        }
        if self.seg_prefix != 0 {
            b.push(self.seg_prefix);
        }
        b.push(self.op + u8::from(self.size != 1));
        b.push(0xF4);
        b
    }
}

/// Flat 32-bit protected mode with every vector going to [`HANDLER`],
/// optionally with identity paging of the first MiB.
fn flat32(paging: bool) -> (Cpu, FlatRam) {
    let mut cpu = flat32_cpu();
    let mut ram = FlatRam::new(1 << 20);
    cpu.state.idtr.base = 0x3000;
    cpu.state.idtr.limit = 0x7FF;
    for v in 0..256u32 {
        ram.load(0x3000 + v * 8, &(0x0008_0000 | HANDLER).to_le_bytes());
        ram.load(0x3000 + v * 8 + 4, &0x8E00u32.to_le_bytes());
    }
    ram.load(HANDLER, &[0xF4]);
    if paging {
        ram.load(PAGE_DIR, &((PAGE_DIR + 0x1000) | 7).to_le_bytes());
        for page in 0..256u32 {
            ram.load(
                PAGE_DIR + 0x1000 + page * 4,
                &(page << 12 | 7).to_le_bytes(),
            );
        }
        cpu.state.cr3 = PAGE_DIR;
        cpu.state.cr0 |= cr0::PG;
    }
    (cpu, ram)
}

/// Real mode, every segment at 0, the IVT sending every vector to [`HANDLER`].
fn real16() -> (Cpu, FlatRam) {
    let mut cpu = Cpu::new(CpuModel::P6);
    let mut ram = FlatRam::new(1 << 20);
    for s in SegReg::ALL {
        cpu.state.set_real_mode_segment(s, 0);
    }
    for v in 0..256u32 {
        ram.load(v * 4, &HANDLER.to_le_bytes());
    }
    ram.load(HANDLER, &[0xF4]);
    cpu.state.gpr[4] = 0x8000;
    cpu.state.eip = CODE;
    (cpu, ram)
}

/// Makes the page holding `linear` not present (paging must be on).
fn unmap(ram: &mut FlatRam, linear: u32) {
    ram.load(PAGE_DIR + 0x1000 + (linear >> 12) * 4, &0u32.to_le_bytes());
}

/// How a case is driven: single steps (no quiet-run data windows, as when
/// the JIT runs the instruction through the interpreter) or [`Cpu::run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drive {
    Step,
    Run,
}

/// Runs the machine `setup` builds to a HLT twice, with chunks and element
/// by element, asserts that both leave the same state, and returns the
/// chunked run.
fn both(drive: Drive, setup: impl Fn() -> (Cpu, FlatRam)) -> (Cpu, FlatRam) {
    let go = |bulk: bool| {
        let (mut cpu, mut ram) = setup();
        cpu.string_bulk = bulk;
        match drive {
            Drive::Step => {
                for _ in 0..LIMIT {
                    if cpu.step(&mut ram) != StepOutcome::Continue {
                        break;
                    }
                }
            }
            Drive::Run => {
                cpu.run(&mut ram, LIMIT);
            }
        }
        cpu.state.commit_flags();
        (cpu, ram)
    };
    let (bulk, mut bulk_ram) = go(true);
    let (single, mut single_ram) = go(false);
    assert_eq!(format!("{:?}", bulk.state), format!("{:?}", single.state));
    assert_eq!(bulk.last_exception, single.last_exception);
    assert_eq!(bulk.tlb.stats, single.tlb.stats);
    let (a, b) = (bulk_ram.ram().unwrap(), single_ram.ram().unwrap());
    if a == b {
        return (bulk, bulk_ram);
    }
    if let Some(at) = (0..a.len()).find(|&i| a[i] != b[i]) {
        panic!(
            "RAM differs at {at:#x}: {:#x} chunked, {:#x} element by element",
            a[at], b[at]
        );
    }
    (bulk, bulk_ram)
}

/// A flat 32-bit machine running `insn` with ESI, EDI, ECX, EAX and DF
/// given, RAM from 0x10000 filled with a byte pattern.
fn flat_case(insn: Insn, (esi, edi, ecx, eax): (u32, u32, u32, u32), down: bool) -> (Cpu, FlatRam) {
    let (mut cpu, mut ram) = flat32(false);
    ram.load(CODE, &insn.bytes(true));
    let pattern: Vec<u8> = (0..0x3_0000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    ram.load(0x1_0000, &pattern);
    cpu.state.gpr[6] = esi;
    cpu.state.gpr[7] = edi;
    cpu.state.gpr[1] = ecx;
    cpu.state.gpr[0] = eax;
    if down {
        cpu.state.eflags |= eflags::DF;
    }
    (cpu, ram)
}

#[test]
fn movs_and_stos_of_every_size_and_direction_match_the_element_loop() {
    for op in [MOVSB, STOSB, LODSB] {
        for size in [1, 2, 4] {
            for down in [false, true] {
                for drive in [Drive::Step, Drive::Run] {
                    // 0x900 elements from mid-page: every run crosses pages.
                    let regs = (0x1_2345, 0x2_5432, 0x900, 0x1234_5678);
                    let (cpu, _) = both(drive, || flat_case(Insn::rep(op, size), regs, down));
                    let bytes = 0x900 * size;
                    let moved = |start: u32| {
                        if down {
                            start.wrapping_sub(bytes)
                        } else {
                            start + bytes
                        }
                    };
                    let s = &cpu.state;
                    assert_eq!(s.gpr[1], 0);
                    assert_eq!(
                        s.gpr[7],
                        if op == LODSB {
                            0x2_5432
                        } else {
                            moved(0x2_5432)
                        }
                    );
                    assert_eq!(
                        s.gpr[6],
                        if op == STOSB {
                            0x1_2345
                        } else {
                            moved(0x1_2345)
                        }
                    );
                }
            }
        }
    }
}

#[test]
fn overlapping_copies_replicate_like_the_element_loop() {
    for size in [1, 2, 4] {
        for delta in 1..=9u32 {
            for down in [false, true] {
                // Up: the destination above the source; down: below.
                let (src, dst) = if down {
                    (0x1_8000, 0x1_8000 - delta)
                } else {
                    (0x1_8000, 0x1_8000 + delta)
                };
                let regs = (src, dst, 0x800, 0);
                let (_, mut ram) = both(Drive::Step, || {
                    flat_case(Insn::rep(MOVSB, size), regs, down)
                });
                if size == 1 && delta == 1 && !down {
                    // The classic fill: each byte copies the one before.
                    let first = ram.read_u8(src);
                    assert!((0..0x801).all(|i| ram.read_u8(src + i) == first));
                }
            }
        }
    }
}

#[test]
fn writes_to_a_page_of_decoded_code_invalidate_it() {
    // A routine at 0x1_0800 (`mov eax, 1 ; ret`) runs once, so its page
    // holds decoded code; REP STOSB then rewrites its immediate with 2s
    // and the second call must see 0x02020202.
    let setup = || {
        let (mut cpu, mut ram) = flat32(false);
        let code = [
            0xE8, 0xFB, 0xF7, 0x00, 0x00, // call 0x1_0800
            0xB0, 0x02, // mov al, 2
            0xF3, 0xAA, // rep stosb
            0xE8, 0xF2, 0xF7, 0x00, 0x00, // call 0x1_0800
            0xF4,
        ];
        ram.load(CODE, &code);
        ram.load(0x1_0800, &[0xB8, 1, 0, 0, 0, 0xC3]);
        cpu.state.gpr[7] = 0x1_0801;
        cpu.state.gpr[1] = 4;
        (cpu, ram)
    };
    for drive in [Drive::Step, Drive::Run] {
        let (cpu, _) = both(drive, setup);
        assert_eq!(cpu.state.gpr[0], 0x0202_0202);
    }
}

#[test]
fn a_segment_limit_mid_run_faults_at_the_element() {
    for drive in [Drive::Step, Drive::Run] {
        let (cpu, _) = both(drive, || {
            let regs = (0x1_0000, 0x2_0000, 0x1000, 0);
            let (mut cpu, ram) = flat_case(Insn::rep(MOVSB, 4), regs, false);
            cpu.state.seg[SegReg::Ds as usize].limit = 0x1_1FFD;
            (cpu, ram)
        });
        // The dword at 0x1_1FF8 passes; the one at 0x1_1FFC ends past the limit.
        assert_eq!(cpu.last_exception, Some(Exception::GeneralProtection(0)));
        let s = &cpu.state;
        assert_eq!(
            (s.gpr[6], s.gpr[7], s.gpr[1]),
            (0x1_1FFC, 0x2_1FFC, 0x1000 - 0x7FF)
        );
    }
}

#[test]
fn a_page_fault_on_the_second_page_leaves_the_registers_at_its_element() {
    for drive in [Drive::Step, Drive::Run] {
        let (cpu, _) = both(drive, || {
            let (mut cpu, mut ram) = flat32(true);
            ram.load(CODE, &Insn::rep(MOVSB, 4).bytes(true));
            unmap(&mut ram, 0x1_1000);
            cpu.state.gpr[6] = 0x1_0F00;
            cpu.state.gpr[7] = 0x2_0000;
            cpu.state.gpr[1] = 0x100;
            (cpu, ram)
        });
        assert!(matches!(
            cpu.last_exception,
            Some(Exception::PageFault { .. })
        ));
        let s = &cpu.state;
        assert_eq!(s.cr2, 0x1_1000);
        assert_eq!((s.gpr[6], s.gpr[7], s.gpr[1]), (0x1_1000, 0x2_0100, 0xC0));
    }
}

#[test]
fn sixteen_bit_indexes_wrap_inside_their_segment() {
    for size in [1, 2, 4] {
        for down in [false, true] {
            let (cpu, _) = both(Drive::Step, || {
                let (mut cpu, mut ram) = real16();
                ram.load(CODE, &Insn::rep(MOVSB, size).bytes(false));
                cpu.state.set_real_mode_segment(SegReg::Ds, 0x2000);
                cpu.state.set_real_mode_segment(SegReg::Es, 0x3000);
                let fill: Vec<u8> = (0..0x2_0000u32).map(|i| (i % 253) as u8).collect();
                ram.load(0x2_0000, &fill);
                let start = if down { 0x0010 } else { 0xFFF0 };
                cpu.state.gpr[6] = 0xABCD_0000 | start;
                cpu.state.gpr[7] = start - 4;
                cpu.state.gpr[1] = 0x5555_0040;
                if down {
                    cpu.state.eflags |= eflags::DF;
                }
                (cpu, ram)
            });
            // Only SI, DI and CX count.
            assert_eq!(cpu.state.gpr[6] >> 16, 0xABCD);
            assert_eq!(cpu.state.gpr[1], 0x5555_0000);
        }
    }
}

#[test]
fn a_zero_count_does_nothing() {
    for op in [MOVSB, STOSB, LODSB, SCASB, CMPSB] {
        let regs = (0x1_0000, 0x2_0000, 0, 0x77);
        let (cpu, _) = both(Drive::Step, || flat_case(Insn::rep(op, 4), regs, false));
        let s = &cpu.state;
        assert_eq!(
            (s.gpr[6], s.gpr[7], s.gpr[1], s.gpr[0]),
            (0x1_0000, 0x2_0000, 0, 0x77)
        );
    }
}

#[test]
fn repe_cmps_stops_at_the_first_difference() {
    for size in [1, 2, 4] {
        let (cpu, _) = both(Drive::Step, || {
            let regs = (0x1_0F00, 0x2_0F80, 0x1000, 0);
            let (cpu, mut ram) = flat_case(Insn::rep(CMPSB, size), regs, false);
            let same: Vec<u8> = (0..0x2000u32).map(|i| (i * 13) as u8).collect();
            ram.load(0x1_0F00, &same);
            ram.load(0x2_0F80, &same);
            ram.load(0x2_0F80 + 0x401 * size - 1, &[0xEE]); // in element 0x400
            (cpu, ram)
        });
        let s = &cpu.state;
        assert_eq!(s.gpr[1], 0x1000 - 0x401);
        assert_eq!(s.gpr[6], 0x1_0F00 + 0x401 * size);
        assert_eq!(s.eflags & eflags::ZF, 0);
    }
}

#[test]
fn repne_scas_finds_the_byte() {
    for down in [false, true] {
        let (cpu, _) = both(Drive::Run, || {
            let mut insn = Insn::rep(SCASB, 1);
            insn.rep = REPNE;
            let (cpu, mut ram) = flat_case(insn, (0, 0x1_8000, 0x3000, 0x1FF), down);
            ram.load(0x1_0000, &vec![0; 0x3_0000]);
            ram.load(if down { 0x1_6ABC } else { 0x1_9543 }, &[0xFF]);
            (cpu, ram)
        });
        let s = &cpu.state;
        let (edi, ecx) = if down {
            (0x1_6ABB, 0x3000 - 0x1545)
        } else {
            (0x1_9544, 0x3000 - 0x1544)
        };
        assert_eq!((s.gpr[7], s.gpr[1]), (edi, ecx));
        assert_ne!(s.eflags & eflags::ZF, 0);
    }
}

#[test]
fn a_long_rep_restarts_after_the_step_budget_as_the_element_loop_does() {
    for drive in [Drive::Step, Drive::Run] {
        let (cpu, _) = both(drive, || {
            let regs = (0x4_0000, 0x6_0000, 0x1_8001, 0);
            flat_case(Insn::rep(MOVSB, 1), regs, false)
        });
        assert_eq!(cpu.state.gpr[1], 0);
    }
}

#[test]
fn chunks_stop_at_page_ends_and_fall_back_on_tlb_misses_and_code() {
    let (mut cpu, mut ram) = flat_case(Insn::rep(MOVSB, 4), (0x1_0F00, 0x2_0000, 0, 0), false);
    cpu.ctx.addr32 = true;
    // Nothing in the TLB yet: the element loop goes first.
    assert_eq!(
        movs(&mut cpu, &mut ram, SegReg::Ds, 4, 0x1000),
        Chunk::Fallback { page_rest: 0x40 }
    );
    cpu.read_linear(&mut ram, 0x1_0F00, 4).unwrap();
    cpu.write_linear(&mut ram, 0x2_0000, 4, 0).unwrap();
    let hits = cpu.tlb.stats.hits;
    // The source page ends after 0x40 dwords.
    assert_eq!(
        movs(&mut cpu, &mut ram, SegReg::Ds, 4, 0x1000),
        Chunk::Done {
            n: 0x40,
            stop: false
        }
    );
    assert_eq!(
        cpu.tlb.stats.hits,
        hits + 0x80,
        "one hit per access, as the element loop"
    );
    assert_eq!((cpu.state.gpr[6], cpu.state.gpr[7]), (0x1_1000, 0x2_0100));
    // The budget limits a chunk.
    cpu.state.gpr[7] = 0x2_0000;
    assert_eq!(
        stos(&mut cpu, &mut ram, 2, 5),
        Chunk::Done { n: 5, stop: false }
    );
    // A page holding decoded code takes no direct writes.
    cpu.state.gpr[7] = CODE + 0x100;
    cpu.write_linear(&mut ram, CODE + 0x100, 4, 0).unwrap();
    cpu.state.gpr[1] = 0;
    cpu.step(&mut ram); // decodes the REP MOVSD at CODE (which does nothing)
    cpu.ctx.addr32 = true;
    cpu.state.gpr[7] = CODE + 0x100;
    let hits = cpu.tlb.stats.hits;
    assert!(matches!(
        stos(&mut cpu, &mut ram, 4, 0x10),
        Chunk::Fallback { .. }
    ));
    assert_eq!(cpu.tlb.stats.hits, hits);
}

/// xorshift64*: reproducible pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() >> 32) as u32 % n
    }
    fn chance(&mut self, in_n: u32) -> bool {
        self.below(in_n) == 0
    }
}

/// One random case: mode, instruction, registers, segments, paging and RAM.
fn random_case(seed: u64) -> (Cpu, FlatRam) {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let real = r.chance(3);
    let paging = !real && r.chance(2);
    let (mut cpu, mut ram) = if real { real16() } else { flat32(paging) };
    let op = [MOVSB, CMPSB, STOSB, LODSB, SCASB][r.below(5) as usize];
    let insn = Insn {
        op,
        rep: [REP, REPNE, REP, 0][r.below(4) as usize],
        size: [1, 2, 4][r.below(3) as usize],
        addr_override: r.chance(4),
        seg_prefix: [0, 0, 0x26, 0x64][r.below(4) as usize],
    };
    ram.load(CODE, &insn.bytes(!real));
    // Data from 0x1_0000 to 0x4_0000, and the accumulator: few distinct
    // values, so that REPE and REPNE stop at varied places.
    let (first, values) = (r.next() as u8, 1 + r.next() % 4);
    let pick = |bits: u64| first.wrapping_add((bits % values) as u8);
    let mut data = vec![0u8; 0x3_0000];
    for chunk in data.chunks_exact_mut(8) {
        let bits = r.next();
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = pick(bits >> (8 * i));
        }
    }
    let bits = r.next();
    let eax = u32::from_le_bytes([0, 8, 16, 24].map(|i| pick(bits >> i)));
    ram.load(0x1_0000, &data);
    let addr32 = real == insn.addr_override;
    let s = &mut cpu.state;
    // Segment bases on or off page boundaries (a page then holds the
    // ends of a 16-bit offset range).
    let misalign = if r.chance(2) { r.below(0x1000) } else { 0 };
    if real {
        let para = (misalign >> 4) as u16;
        s.set_real_mode_segment(SegReg::Ds, 0x1000 + para);
        s.set_real_mode_segment(
            SegReg::Es,
            [0x1000, 0x2000, 0x3000][r.below(3) as usize] + para,
        );
        s.set_real_mode_segment(SegReg::Fs, 0x2800);
    } else if !addr32 {
        s.seg[SegReg::Ds as usize].base = 0x1_0000 + misalign;
        s.seg[SegReg::Es as usize].base =
            [0x1_0000, 0x2_0000, 0x2_F000][r.below(3) as usize] + misalign;
        s.seg[SegReg::Fs as usize].base = 0x2_8000;
    } else {
        s.seg[SegReg::Fs as usize].base = 0x8000;
    }
    let offset = |r: &mut Rng| {
        if addr32 && !real {
            0x1_4000 + r.below(0x2_8000)
        } else if r.chance(3) {
            r.below(0x200).wrapping_sub(0x100) & 0xFFFF // near the wrap
        } else {
            r.below(0x1_0000)
        }
    };
    let esi = offset(&mut r);
    let edi = if r.chance(3) {
        esi.wrapping_add(r.below(33)).wrapping_sub(16) & if addr32 { u32::MAX } else { 0xFFFF }
    } else {
        offset(&mut r)
    };
    // Bits above a 16-bit index are kept and ignored.
    s.gpr[6] = if addr32 { esi } else { esi | r.below(4) << 16 };
    s.gpr[7] = edi;
    s.gpr[1] = match r.below(8) {
        0 => 0,
        1 => 1 + r.below(4),
        _ => r.below(0x4000 / insn.size),
    };
    s.gpr[0] = eax;
    if r.chance(2) {
        s.eflags |= eflags::DF;
    }
    if !real && r.chance(5) {
        // A limit the run may reach.
        let seg = if r.chance(2) { SegReg::Ds } else { SegReg::Es };
        s.seg[seg as usize].limit = (esi.max(edi) & !0xFFF) + r.below(0x3000);
    }
    if !real && r.chance(6) {
        // ES expand-down above a random offset.
        let es = &mut s.seg[SegReg::Es as usize];
        es.flags |= crate::state::seg_flags::DC;
        es.limit = edi.saturating_sub(r.below(0x2000));
    }
    if paging && r.chance(2) {
        let data_page = 0x1_0000 + (r.below(0x30) << 12);
        unmap(&mut ram, data_page);
    }
    (cpu, ram)
}

#[test]
fn random_cases_match_the_element_loop() {
    for seed in 0..2000 {
        let drive = if seed % 2 == 0 {
            Drive::Step
        } else {
            Drive::Run
        };
        let outcome = std::panic::catch_unwind(|| both(drive, || random_case(seed)));
        assert!(outcome.is_ok(), "seed {seed} differs");
    }
}
