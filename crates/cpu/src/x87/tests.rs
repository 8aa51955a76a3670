//! Unit tests of the x87 through the CPU (Intel SDM Vol. 1, 8.5 stack
//! faults, 8.6/8.7 exception synchronization and #MF/FERR#, 8.1.10 and
//! 10.5.1 FSAVE/FXSAVE images; Vol. 3A 2.5 table 2-2 for #NM; Vol. 2A
//! FCOMI for EFLAGS).

use super::f80::{exc, INDEFINITE};
use super::{sw, F80};
use crate::flags::Flags;
use crate::state::{cr0, eflags, CpuState, SegReg};
use crate::testutil::{assemble, flat32_cpu, run16, run32, CODE};
use crate::{Bus, Cpu, CpuModel, FlatRam, StepOutcome};
use iced_x86::code_asm::*;

/// Exception handlers used by the real-mode tests: vector v halts at
/// 0x3000 + 16 v.
const HANDLERS: u32 = 0x3000;
const DATA: u32 = 0x2000;

fn install_handlers(ram: &mut FlatRam) {
    for v in [6u32, 7, 13, 16] {
        let off = HANDLERS + 16 * v;
        ram.load(4 * v, &[off as u8, (off >> 8) as u8, 0, 0]);
        ram.load(off, &[0xF4]);
    }
}

/// The vector whose handler halted, if any.
fn taken(s: &CpuState) -> Option<u32> {
    let at = s.eip.wrapping_sub(1);
    (HANDLERS..HANDLERS + 0x200)
        .contains(&at)
        .then(|| (at - HANDLERS) / 16)
}

/// Runs real-mode P6 code with the handlers installed.
fn run_rm(
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    setup: impl FnOnce(&mut CpuState, &mut FlatRam),
) -> (CpuState, FlatRam, Option<u32>) {
    let (s, ram) = run16(CpuModel::P6, build, |s, ram| {
        install_handlers(ram);
        setup(s, ram);
    });
    let v = taken(&s);
    (s, ram, v)
}

/// Runs 32-bit flat protected-mode code and also returns the memory.
fn run32_ram(
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> (CpuState, FlatRam) {
    let mut cpu = flat32_cpu();
    let mut ram = FlatRam::new(1 << 20);
    ram.load(CODE, &assemble(32, build));
    assert_eq!(cpu.run(&mut ram, 100_000), StepOutcome::Halted);
    cpu.state.commit_flags();
    (cpu.state, ram)
}

fn word(ram: &FlatRam, a: u32) -> u16 {
    u16::from_le_bytes([ram.bytes[a as usize], ram.bytes[a as usize + 1]])
}

fn dword(ram: &FlatRam, a: u32) -> u32 {
    u32::from(word(ram, a)) | (u32::from(word(ram, a + 2)) << 16)
}

#[test]
fn stack_overflow_sets_ie_sf_and_c1() {
    let s = run32(
        |a| {
            a.fninit()?;
            for _ in 0..9 {
                a.fld1()?;
            }
            Ok(())
        },
        |_| {},
    );
    let f = &s.fpu;
    assert_eq!(f.status & 0x7F, exc::IE | exc::SF);
    assert_ne!(f.status & sw::C1, 0);
    assert_eq!(f.st(0), INDEFINITE);
    assert_eq!(f.st(1), F80::ONE);
    assert_eq!(f.top(), 7);
}

#[test]
fn stack_underflow_sets_ie_sf_and_clears_c1() {
    let s = run32(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fadd_2(st0, st3)
        },
        |_| {},
    );
    let f = &s.fpu;
    assert_eq!(f.status & 0x7F, exc::IE | exc::SF);
    assert_eq!(f.status & sw::C1, 0);
    assert_eq!(f.st(0), INDEFINITE);
}

#[test]
fn unmasked_exception_raises_mf_on_the_next_waiting_instruction() {
    let (s, ram, v) = run_rm(
        |a| {
            a.fninit()?;
            a.fldcw(word_ptr(DATA))?;
            a.fldz()?;
            a.fld1()?;
            a.fdiv_2(st0, st1)?; // 1/0 with ZE unmasked
            a.fnstsw(ax)?; // does not wait
            a.wait()?; // #MF here
            a.nop()
        },
        |s, ram| {
            s.cr0 |= cr0::NE;
            ram.load(DATA, &0x037Bu16.to_le_bytes());
        },
    );
    assert_eq!(v, Some(16));
    let ip = word(&ram, s.gpr[4] & 0xFFFF);
    assert_eq!(ram.bytes[ip as usize], 0x9B, "#MF must point at the FWAIT");
    assert_eq!(s.gpr[0] as u16 & (exc::ZE | sw::ES), exc::ZE | sw::ES);
    assert_eq!(
        s.fpu.st(0),
        F80::ONE,
        "an unmasked ZE leaves the destination"
    );
    assert_ne!(s.fpu.status & sw::B, 0);
}

/// A bus that records the FERR# line.
struct FerrBus {
    ram: FlatRam,
    ferr: Vec<bool>,
}

impl Bus for FerrBus {
    fn read_u8(&mut self, addr: u32) -> u8 {
        self.ram.read_u8(addr)
    }
    fn write_u8(&mut self, addr: u32, value: u8) {
        self.ram.write_u8(addr, value)
    }
    fn fpu_error(&mut self, asserted: bool) {
        self.ferr.push(asserted);
    }
}

#[test]
fn ne_clear_reports_on_ferr_and_continues() {
    let code = assemble(16, |a| {
        a.fninit()?;
        a.fldcw(word_ptr(DATA))?;
        a.fldz()?;
        a.fld1()?;
        a.fdiv_2(st0, st1)?;
        a.wait()?;
        a.fld1()?;
        a.fnclex()
    });
    let mut cpu = Cpu::new(CpuModel::P6);
    for s in SegReg::ALL {
        cpu.state.set_real_mode_segment(s, 0);
    }
    cpu.state.eip = CODE;
    cpu.state.gpr[4] = 0x8000;
    let mut bus = FerrBus {
        ram: FlatRam::new(1 << 20),
        ferr: Vec::new(),
    };
    bus.ram.load(CODE, &code);
    bus.ram.load(DATA, &0x037Bu16.to_le_bytes());
    assert_eq!(cpu.run(&mut bus, 100), StepOutcome::Halted);
    assert!(bus.ferr.contains(&true));
    assert_eq!(bus.ferr.last(), Some(&false), "FNCLEX drops FERR#");
    assert_eq!(cpu.state.fpu.st(0), F80::ONE);
    assert_eq!(
        cpu.state.fpu.top(),
        5,
        "the waiting instructions ran (IGNNE#)"
    );
}

#[test]
fn em_or_ts_raise_nm_and_wait_checks_ts_with_mp() {
    let (_, _, v) = run_rm(|a| a.fld1(), |s, _| s.cr0 |= cr0::EM);
    assert_eq!(v, Some(7));
    let (_, _, v) = run_rm(|a| a.fld1(), |s, _| s.cr0 |= cr0::TS);
    assert_eq!(v, Some(7));
    let (_, _, v) = run_rm(|a| a.wait(), |s, _| s.cr0 = (s.cr0 | cr0::TS) & !cr0::MP);
    assert_eq!(v, None, "WAIT ignores TS without MP");
    let (_, _, v) = run_rm(|a| a.wait(), |s, _| s.cr0 |= cr0::TS | cr0::MP);
    assert_eq!(v, Some(7));
    let (_, _, v) = run_rm(|a| a.wait(), |s, _| s.cr0 |= cr0::EM);
    assert_eq!(v, None, "WAIT ignores EM");
}

fn fill(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.fninit()?;
    a.fldcw(word_ptr(DATA + 0x200))?;
    a.fld1()?;
    a.fldpi()?;
    a.fldl2e()?;
    a.fadd_2(st0, st1)?;
    a.fincstp()
}

#[test]
fn fsave_frstor_round_trip_16_bit_real_mode() {
    let setup =
        |_: &mut CpuState, ram: &mut FlatRam| ram.load(DATA + 0x200, &0x0A7Eu16.to_le_bytes());
    let (plain, _, _) = run_rm(fill, setup);
    let (s, ram, v) = run_rm(
        |a| {
            fill(a)?;
            a.fnsave(ptr(DATA))?;
            a.fnstcw(word_ptr(DATA + 0x100))?;
            a.frstor(ptr(DATA))
        },
        setup,
    );
    assert_eq!(v, None);
    assert_eq!(word(&ram, DATA + 0x100), 0x037F, "FNSAVE re-initializes");
    assert_eq!(s.fpu, plain.fpu);
    assert_eq!(word(&ram, DATA), 0x0A7E);
    assert_eq!(word(&ram, DATA + 4), plain.fpu.full_tag());
    // ST(0) at offset 14: fldl2e + pi after FINCSTP is pi... check against the state.
    let top = plain.fpu.st(0);
    assert_eq!(word(&ram, DATA + 14 + 8), top.sign_exp);
}

#[test]
fn fsave_frstor_round_trip_32_bit_protected_mode() {
    let build = |a: &mut CodeAssembler| {
        fill(a)?;
        a.fnsave(ptr(DATA))?;
        a.frstor(ptr(DATA))
    };
    let (s, ram) = run32_ram(build);
    let (plain, _) = run32_ram(fill);
    assert_eq!(s.fpu.regs, plain.fpu.regs);
    assert_eq!(s.fpu.status, plain.fpu.status);
    assert_eq!(s.fpu.control, plain.fpu.control);
    assert_eq!(dword(&ram, DATA + 16) & 0xFFFF, 0x08, "FCS");
    assert_eq!(
        dword(&ram, DATA + 28 + 8) & 0xFFFF,
        u32::from(plain.fpu.st(0).sign_exp)
    );
}

#[test]
fn fxsave_layout_and_alignment() {
    let (_, ram) = run32_ram(|a| {
        a.fninit()?;
        a.fld1()?;
        a.fldz()?;
        a.fxsave(ptr(DATA))
    });
    assert_eq!(word(&ram, DATA), 0x037F);
    assert_eq!(word(&ram, DATA + 2), 6 << 11);
    assert_eq!(
        ram.bytes[DATA as usize + 4],
        0xC0,
        "abridged tag: R6 and R7 valid"
    );
    assert_eq!(word(&ram, DATA + 6), 0x1EE, "FOP of FLDZ (D9 EE)");
    assert_eq!(dword(&ram, DATA + 8), CODE + 4, "FIP of FLDZ");
    assert_eq!(dword(&ram, DATA + 24), 0x1F80);
    assert_eq!(dword(&ram, DATA + 32 + 8) & 0xFFFF, 0, "ST0 = +0");
    assert_eq!(dword(&ram, DATA + 48 + 8) & 0xFFFF, 0x3FFF, "ST1 = 1.0");
    let (_, _, v) = run_rm(|a| a.fxsave(ptr(DATA + 8)), |_, _| {});
    assert_eq!(v, Some(13));
    let (s, _, v) = run_rm(
        |a| {
            a.fld1()?;
            a.fxsave(ptr(DATA))?;
            a.fninit()?;
            a.fxrstor(ptr(DATA))
        },
        |_, _| {},
    );
    assert_eq!(v, None);
    assert_eq!(s.fpu.st(0), F80::ONE);
    assert_eq!(s.fpu.top(), 7);
}

#[test]
fn fcomi_sets_zf_pf_cf() {
    let s = run32(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fldz()?;
            a.fcomi(st0, st1)
        },
        |_| {},
    );
    assert!(s.cf() && !s.zf() && !s.pf());
    let s = run32(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fld1()?;
            a.fucomip(st0, st1)
        },
        |_| {},
    );
    assert!(!s.cf() && s.zf() && !s.pf());
    assert_eq!(s.fpu.top(), 7, "FUCOMIP pops");
    let s = run32(
        |a| {
            a.fninit()?;
            a.fldz()?;
            a.fldz()?;
            a.fdiv_2(st0, st1)?; // indefinite
            a.fld1()?;
            a.fcomi(st0, st1)
        },
        |_| {},
    );
    assert_eq!(
        s.eflags & (eflags::ZF | eflags::PF | eflags::CF),
        eflags::ZF | eflags::PF | eflags::CF
    );
    assert_ne!(s.fpu.status & exc::IE, 0);
}

#[test]
fn fnstenv_records_pointers_and_opcode() {
    let (_, ram) = run32_ram(|a| {
        a.fninit()?;
        a.fld(dword_ptr(DATA + 0x100))?; // D9 05 disp32: opcode 0x105
        a.fnstenv(ptr(DATA))
    });
    assert_eq!(dword(&ram, DATA + 12), CODE + 2, "FIP");
    assert_eq!(dword(&ram, DATA + 16) >> 16, 0x105, "opcode");
    assert_eq!(dword(&ram, DATA + 20), DATA + 0x100, "FDP");
    assert_eq!(dword(&ram, DATA + 24) & 0xFFFF, 0x10, "FDS");
}

#[test]
fn fstsw_ax_and_fxam() {
    let s = run32(
        |a| {
            a.fninit()?;
            a.fldz()?;
            a.fchs()?;
            a.fxam()?;
            a.fstsw(ax)
        },
        |_| {},
    );
    // -0: C3 = 1, C1 = sign, TOP = 7.
    assert_eq!(s.gpr[0] as u16, sw::C3 | sw::C1 | (7 << 11));
}

#[test]
fn no_coprocessor_on_8086_and_286() {
    for model in [CpuModel::I8086, CpuModel::I286] {
        let (s, _) = run16(
            model,
            |a| {
                a.fld1()?;
                a.fadd(dword_ptr(0x100))?;
                a.fnstsw(word_ptr(0x200))?;
                a.wait()
            },
            |_, _| {},
        );
        assert_eq!(s.fpu, super::FpuState::default());
    }
}

#[test]
fn no_panic_on_random_escape_instructions() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for model in [CpuModel::P6, CpuModel::I286, CpuModel::I8086] {
        let mut cpu = Cpu::new(model);
        let mut ram = FlatRam::new(1 << 20);
        for _ in 0..20_000 {
            for s in SegReg::ALL {
                cpu.state.set_real_mode_segment(s, 0);
            }
            cpu.state.eip = CODE;
            cpu.state.halted = false;
            for r in cpu.state.gpr.iter_mut() {
                *r = next() as u32 & 0xFFFF;
            }
            let f = &mut cpu.state.fpu;
            for r in f.regs.iter_mut() {
                let v = next();
                *r = F80 {
                    signif: v,
                    sign_exp: (v >> 48) as u16 ^ (next() as u16),
                };
            }
            f.tag = next() as u16;
            f.status = next() as u16 & !(sw::ES | sw::B);
            f.control = next() as u16 | 0x3F;
            let b = next().to_le_bytes();
            let code = [0xD8 | (b[0] & 7), b[1], b[2], b[3], 0xF4];
            ram.load(CODE, &code);
            ram.load(0x2000, &b);
            cpu.icache.invalidate(CODE, 5);
            let _ = cpu.run(&mut ram, 4);
        }
    }
}

#[test]
fn env_layout_32_bit_real_mode() {
    let (s, ram, v) = run_rm(
        |a| {
            a.fninit()?; // DB E3
            a.fld1()?; // D9 E8 at CODE + 2
            a.db(&[0x66, 0xD9, 0x36, 0x00, 0x21])?; // o32 fnstenv [0x2100]
            a.fldpi()?;
            a.db(&[0x66, 0xDD, 0x36, 0x00, 0x20])?; // o32 fnsave [0x2000]
            a.db(&[0x66, 0xDD, 0x26, 0x00, 0x20]) // o32 frstor [0x2000]
        },
        |_, _| {},
    );
    assert_eq!(v, None);
    let env = DATA + 0x100;
    assert_eq!(dword(&ram, env), 0xFFFF_037F);
    assert_eq!(dword(&ram, env + 12), 0xFFFF_0000 | (CODE + 2));
    assert_eq!(dword(&ram, env + 16), 0x1E8, "opcode D9 E8, FIP[31:16] = 0");
    assert_eq!(s.fpu.st(0).sign_exp, 0x4000, "FRSTOR brought pi back");
    assert_eq!(s.fpu.st(1), F80::ONE);
    assert_eq!(s.fpu.control, 0x037F & !0x3F | 0x3F);
}

#[test]
fn env_layout_16_bit_protected_mode() {
    let (_, ram) = run32_ram(|a| {
        a.fninit()?;
        a.fld(dword_ptr(DATA + 0x200))?; // D9 05 disp32 at CODE + 2
        a.db(&[0x66, 0xD9, 0x35, 0x00, 0x21, 0x00, 0x00]) // o16 fnstenv [0x2100]
    });
    let env = DATA + 0x100;
    assert_eq!(word(&ram, env), 0x037F);
    assert_eq!(
        word(&ram, env + 4),
        0x7FFF,
        "tag: R7 holds +0 (01), the rest empty"
    );
    assert_eq!(word(&ram, env + 6), (CODE + 2) as u16, "FIP offset");
    assert_eq!(word(&ram, env + 8), 0x08, "FCS");
    assert_eq!(word(&ram, env + 10), (DATA + 0x200) as u16, "FDP offset");
    assert_eq!(word(&ram, env + 12), 0x10, "FDS");
}

#[test]
fn fcmov_follows_integer_flags() {
    let s = run32(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fldz()?;
            a.stc()?;
            a.fcmovb(st0, st1)?; // CF = 1: moves 1.0
            a.fldz()?;
            a.clc()?;
            a.fcmovb(st0, st2) // CF = 0: stays 0
        },
        |_| {},
    );
    assert_eq!(s.fpu.st(0), F80::zero(false));
    assert_eq!(s.fpu.st(1), F80::ONE);
}

#[test]
fn fsin_of_a_huge_operand_sets_c2_and_keeps_it() {
    let (_, ram) = run32_ram(|a| {
        a.fninit()?;
        a.mov(dword_ptr(DATA), 0)?;
        a.mov(dword_ptr(DATA + 4), 0x8000_0000u32)?;
        a.mov(word_ptr(DATA + 8), 0x403F)?; // 2^64
        a.fld(tword_ptr(DATA))?;
        a.fsin()?;
        a.fnstsw(word_ptr(DATA + 0x10))?;
        a.fstp(tword_ptr(DATA + 0x20))
    });
    assert_ne!(word(&ram, DATA + 0x10) & sw::C2, 0);
    assert_eq!(word(&ram, DATA + 0x28), 0x403F);
}

#[test]
fn fldcw_unmasking_a_pending_flag_makes_it_an_error() {
    let (s, _, v) = run_rm(
        |a| {
            a.fninit()?;
            a.fldz()?;
            a.fld1()?;
            a.fdiv_2(st0, st1)?; // masked ZE: flag only
            a.fnstsw(ax)?;
            a.mov(bx, ax)?;
            a.fldcw(word_ptr(DATA))?; // unmasks ZE: ES set
            a.fnstsw(ax)?;
            a.fld1() // #MF
        },
        |s, ram| {
            s.cr0 |= cr0::NE;
            ram.load(DATA, &0x037Bu16.to_le_bytes());
        },
    );
    assert_eq!(s.gpr[3] as u16 & (exc::ZE | sw::ES), exc::ZE);
    assert_eq!(
        s.gpr[0] as u16 & (exc::ZE | sw::ES | sw::B),
        exc::ZE | sw::ES | sw::B
    );
    assert_eq!(v, Some(16));
}
