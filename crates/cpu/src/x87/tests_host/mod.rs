//! Differential tests against the host's own x87 (Intel SDM Vol. 1, chapter
//! 8 for the semantics under test). Each case runs the same instruction
//! sequence on the host CPU (inline assembly) and on the emulator (the same
//! sequence assembled with iced-x86 and stepped through [`crate::Cpu`]):
//!
//! ```text
//! fninit; fldcw [cw]; fld tbyte [b]; fld tbyte [a]; OP; fnstsw [sw];
//! fnclex; fstp tbyte [res]; fnclex; fstp tbyte [res2]
//! ```
//!
//! and compares the result bits, the second stack slot, the memory
//! operand area and the status word (exception flags, SF, C0-C3, TOP).
//! The four rounding modes and three precision controls are cycled through;
//! [`arith`] masks every exception, [`special`] also unmasks them (FNCLEX
//! right after FNSTSW keeps them from being delivered on the host). This
//! module holds the harness: the frame, the host sequences, the emulator
//! runner, the fixed-seed generator and the case generators.
#![allow(clippy::undocumented_unsafe_blocks)]

mod arith;
mod special;

use super::F80;
use crate::testutil::{assemble, flat32_cpu, CODE};
use crate::{Cpu, FlatRam, StepOutcome};
use core::arch::asm;
use iced_x86::code_asm::*;

/// Where the frame lives in guest memory.
const DATA: u32 = 0x4000;
const FRAME: usize = 0x60;
const OFF_A: usize = 0x00;
const OFF_B: usize = 0x10;
const OFF_RES: usize = 0x20;
const OFF_CW: usize = 0x30;
const OFF_SW: usize = 0x32;
const OFF_MEM: usize = 0x40;
const OFF_RES2: usize = 0x50;

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Frame([u8; FRAME]);

impl Frame {
    fn new(cw: u16, a: F80, b: F80, mem: [u8; 16]) -> Frame {
        let mut f = Frame([0; FRAME]);
        f.put(OFF_A, a);
        f.put(OFF_B, b);
        f.0[OFF_CW..OFF_CW + 2].copy_from_slice(&cw.to_le_bytes());
        f.0[OFF_MEM..OFF_MEM + 16].copy_from_slice(&mem);
        f
    }
    fn put(&mut self, off: usize, v: F80) {
        self.0[off..off + 8].copy_from_slice(&v.signif.to_le_bytes());
        self.0[off + 8..off + 10].copy_from_slice(&v.sign_exp.to_le_bytes());
    }
    fn get(&self, off: usize) -> F80 {
        let mut s = [0u8; 8];
        s.copy_from_slice(&self.0[off..off + 8]);
        F80 {
            signif: u64::from_le_bytes(s),
            sign_exp: u16::from_le_bytes([self.0[off + 8], self.0[off + 9]]),
        }
    }
    fn sw(&self) -> u16 {
        u16::from_le_bytes([self.0[OFF_SW], self.0[OFF_SW + 1]])
    }
}

/// Runs the host sequence with `$op` in the middle (FNCLEX after FNSTSW,
/// so unmasked exceptions are recorded but never delivered).
macro_rules! host_fn {
    ($name:ident, $op:literal) => {
        fn $name(f: &mut Frame) {
            let p = f as *mut Frame;
            // SAFETY: `p` points to a live, 16-byte aligned frame of 0x60
            // bytes and every access below stays inside it; the x87 stack is
            // declared clobbered and left empty with the default control
            // word by the final FNINIT, as the Rust ABI requires.
            unsafe {
                asm!(
                    "fninit",
                    "fldcw word ptr [{p} + 0x30]",
                    "fld tbyte ptr [{p} + 0x10]",
                    "fld tbyte ptr [{p}]",
                    $op,
                    "fnstsw word ptr [{p} + 0x32]",
                    "fnclex",
                    "fstp tbyte ptr [{p} + 0x20]",
                    "fnclex",
                    "fstp tbyte ptr [{p} + 0x50]",
                    "fninit",
                    p = in(reg) p,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                    options(nostack),
                );
            }
        }
    };
}

host_fn!(h_fadd, "fadd st(0), st(1)");
host_fn!(h_fsub, "fsub st(0), st(1)");
host_fn!(h_fsubr, "fsubr st(0), st(1)");
host_fn!(h_fmul, "fmul st(0), st(1)");
host_fn!(h_fdiv, "fdiv st(0), st(1)");
host_fn!(h_fdivr, "fdivr st(0), st(1)");
host_fn!(h_fadd_m32, "fadd dword ptr [{p} + 0x40]");
host_fn!(h_fmul_m64, "fmul qword ptr [{p} + 0x40]");
host_fn!(h_fisub_m16, "fisub word ptr [{p} + 0x40]");
host_fn!(h_fidivr_m32, "fidivr dword ptr [{p} + 0x40]");
host_fn!(h_fsqrt, "fsqrt");
host_fn!(h_fprem, "fprem");
host_fn!(h_fprem1, "fprem1");
host_fn!(h_frndint, "frndint");
host_fn!(h_fscale, "fscale");
host_fn!(h_fxtract, "fxtract");
host_fn!(h_fcom, "fcom st(1)");
host_fn!(h_fucom, "fucom st(1)");
host_fn!(h_fcom_m32, "fcom dword ptr [{p} + 0x40]");
host_fn!(h_ftst, "ftst");
host_fn!(h_fxam, "fxam");
host_fn!(h_fld_m32, "fld dword ptr [{p} + 0x40]");
host_fn!(h_fld_m64, "fld qword ptr [{p} + 0x40]");
host_fn!(h_fild_m16, "fild word ptr [{p} + 0x40]");
host_fn!(h_fild_m32, "fild dword ptr [{p} + 0x40]");
host_fn!(h_fild_m64, "fild qword ptr [{p} + 0x40]");
host_fn!(h_fbld, "fbld tbyte ptr [{p} + 0x40]");
host_fn!(h_fst_m32, "fst dword ptr [{p} + 0x40]");
host_fn!(h_fst_m64, "fst qword ptr [{p} + 0x40]");
host_fn!(h_fist_m16, "fist word ptr [{p} + 0x40]");
host_fn!(h_fist_m32, "fist dword ptr [{p} + 0x40]");
host_fn!(h_fistp_m64, "fistp qword ptr [{p} + 0x40]");
host_fn!(h_fbstp, "fbstp tbyte ptr [{p} + 0x40]");
host_fn!(h_fldpi, "fldpi");
host_fn!(h_fldl2e, "fldl2e");
host_fn!(h_fldl2t, "fldl2t");
host_fn!(h_fldlg2, "fldlg2");
host_fn!(h_fldln2, "fldln2");

type Build = fn(&mut CodeAssembler) -> Result<(), IcedError>;

const fn m(off: usize) -> u32 {
    DATA + off as u32
}

/// The emulator's copy of the sequence around `op`.
fn emu_code(op: Build) -> Vec<u8> {
    assemble(32, |a| {
        a.fninit()?;
        a.fldcw(word_ptr(m(OFF_CW)))?;
        a.fld(tword_ptr(m(OFF_B)))?;
        a.fld(tword_ptr(m(OFF_A)))?;
        op(a)?;
        a.fnstsw(word_ptr(m(OFF_SW)))?;
        a.fnclex()?;
        a.fstp(tword_ptr(m(OFF_RES)))?;
        a.fnclex()?;
        a.fstp(tword_ptr(m(OFF_RES2)))
    })
}

struct Emu {
    cpu: Cpu,
    ram: FlatRam,
}

impl Emu {
    fn new(op: Build) -> Emu {
        let mut ram = FlatRam::new(1 << 16);
        ram.load(CODE, &emu_code(op));
        Emu {
            cpu: flat32_cpu(),
            ram,
        }
    }
    fn run(&mut self, f: &mut Frame) {
        self.ram.load(DATA, &f.0);
        self.cpu.state.eip = CODE;
        self.cpu.state.halted = false;
        let out = self.cpu.run(&mut self.ram, 100);
        assert_eq!(out, StepOutcome::Halted, "emulator did not reach HLT");
        f.0.copy_from_slice(&self.ram.bytes[DATA as usize..DATA as usize + FRAME]);
    }
}

/// A fixed-seed xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A significand with an interesting low end (ties, all ones, zeros).
    fn sig(&mut self) -> u64 {
        let s = self.next();
        match self.below(8) {
            0 => s & !0xFFFF_FFFF,
            1 => (s & !0x7FF) | 0x400,
            2 => (s & !0xFF) | 0x80,
            3 => s | 0xFFFF,
            4 => (s & !0xFF_FFFF_FFFF) | 0x80_0000_0000,
            5 => 1 << 63,
            _ => s,
        }
    }
    /// An 80-bit operand from a mix of classes, exponents around `centre`.
    fn f80(&mut self, centre: i32, spread: i32) -> F80 {
        let sign = self.next() & 1 != 0;
        let k = self.below(100);
        let sig = self.sig();
        match k {
            0..=1 => F80::zero(sign),
            2 => F80::inf(sign),
            3 => F80::new(sign, 0x7FFF, (1 << 63) | (1 << 62) | (sig >> 2)), // QNaN
            4 => F80::new(sign, 0x7FFF, (1 << 63) | ((sig >> 2) | 1)),       // SNaN
            5 => F80::new(sign, 0, sig >> (1 + self.below(63))),             // denormal
            6 => F80::new(sign, 0, sig | (1 << 63)),                         // pseudo-denormal
            7 => F80::new(sign, 1 + self.below(0x7FFE) as u16, sig & !(1 << 63)), // unnormal
            8..=10 => F80::new(
                sign,
                [1, 2, 0x7FFE, 0x7FFD][self.below(4) as usize],
                sig | (1 << 63),
            ),
            11..=20 => F80::new(sign, 1 + self.below(0x7FFE) as u16, sig | (1 << 63)),
            _ => {
                let e = (16383 + centre + self.below(2 * spread as u64 + 1) as i32 - spread)
                    .clamp(1, 0x7FFE);
                F80::new(sign, e as u16, sig | (1 << 63))
            }
        }
    }
    /// A control word with everything masked and random RC/PC.
    fn cw(&mut self) -> u16 {
        let pc = [0u16, 2, 3][self.below(3) as usize];
        0x7F | (pc << 8) | ((self.below(4) as u16) << 10)
    }
    /// Like [`Rng::cw`] with a random subset of the exceptions unmasked.
    fn cw_unmasked(&mut self) -> u16 {
        self.cw() & !(self.next() as u16 & 0x3F)
    }
}

/// Runs `n` cases of one instruction on both and compares everything.
fn check(
    name: &str,
    host: fn(&mut Frame),
    op: Build,
    n: usize,
    seed: u64,
    gen: &mut dyn FnMut(&mut Rng) -> Case,
) {
    let mut emu = Emu::new(op);
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    for _ in 0..n {
        let (a, b, mem, cw) = gen(&mut rng);
        let mut hf = Frame::new(cw, a, b, mem);
        let mut ef = hf;
        host(&mut hf);
        emu.run(&mut ef);
        if hf.0 != ef.0 && failures.len() < 12 {
            failures.push(format!(
                "{name} cw={cw:04x} a={:04x}:{:016x} b={:04x}:{:016x} mem={:02x?}\n  host res={:04x}:{:016x} res2={:04x}:{:016x} sw={:04x} mem={:02x?}\n  emu  res={:04x}:{:016x} res2={:04x}:{:016x} sw={:04x} mem={:02x?}",
                a.sign_exp, a.signif, b.sign_exp, b.signif, &mem[..10],
                hf.get(OFF_RES).sign_exp, hf.get(OFF_RES).signif, hf.get(OFF_RES2).sign_exp, hf.get(OFF_RES2).signif, hf.sw(), &hf.0[OFF_MEM..OFF_MEM + 10],
                ef.get(OFF_RES).sign_exp, ef.get(OFF_RES).signif, ef.get(OFF_RES2).sign_exp, ef.get(OFF_RES2).signif, ef.sw(), &ef.0[OFF_MEM..OFF_MEM + 10],
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches (first shown):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const N: usize = 20_000;

/// One generated case: a, b, the memory operand bytes and the control word.
type Case = (F80, F80, [u8; 16], u16);

/// Two register operands near each other in exponent.
fn pair(r: &mut Rng) -> Case {
    let a = r.f80(0, 80);
    let b = if r.below(3) == 0 {
        // Same exponent neighbourhood: cancellation and ties.
        let e = a.exp();
        F80::new(
            r.next() & 1 != 0,
            e.saturating_sub(r.below(3) as u16).max(1),
            r.sig() | (1 << 63),
        )
    } else {
        r.f80(0, 80)
    };
    (a, b, [0; 16], r.cw())
}

/// Operands whose results over- or underflow.
fn extreme(r: &mut Rng) -> Case {
    let centre = if r.next() & 1 == 0 { 8000 } else { -8000 };
    (r.f80(centre, 300), r.f80(centre, 300), [0; 16], r.cw())
}

fn mixed(r: &mut Rng) -> Case {
    if r.below(4) == 0 {
        extreme(r)
    } else {
        pair(r)
    }
}

fn with_mem(r: &mut Rng) -> Case {
    let (a, b, _, cw) = mixed(r);
    let mut mem = [0u8; 16];
    let bits = match r.below(6) {
        0 => r.next() & 0x807F_FFFF_000F_FFFF, // denormals
        1 => r.next() | 0x7FF0_0000_7F80_0000, // NaN/inf area
        _ => r.next(),
    };
    mem[..8].copy_from_slice(&bits.to_le_bytes());
    (a, b, mem, cw)
}

fn mem_bits(r: &mut Rng) -> Case {
    let (a, b, _, cw) = pair(r);
    let mut mem = [0u8; 16];
    let bits = match r.below(8) {
        0 => r.next() & 0x800F_FFFF_807F_FFFF,
        1 => r.next() | 0x7FF0_0000_7F80_0000,
        2 => r.next() & 0x8000_0000_8000_0000,
        3 => r.next() & 0xFFFF,
        _ => r.next(),
    };
    mem[..8].copy_from_slice(&bits.to_le_bytes());
    (a, b, mem, cw)
}

/// Values near the limits of the narrower formats.
fn for_store(r: &mut Rng, centres: &[i32]) -> Case {
    let (a, b, mem, cw) = pair(r);
    let a = if r.below(4) != 0 {
        let c = centres[r.below(centres.len() as u64) as usize];
        let mut v = r.f80(c, 40);
        if r.below(3) == 0 {
            // Near a tie at the destination precision.
            v.signif = (v.signif & !0xFFFF_FFFF_FFFF) | (1 << 63) | (r.below(4) << 38) | (1 << 39);
        }
        v
    } else {
        a
    };
    (a, b, mem, cw)
}

host_fn!(h_fsin, "fsin");
host_fn!(h_fcos, "fcos");
host_fn!(h_fptan, "fptan");
host_fn!(h_fsincos, "fsincos");
host_fn!(h_f2xm1, "f2xm1");
host_fn!(h_fyl2x, "fyl2x");
host_fn!(h_fyl2xp1, "fyl2xp1");
host_fn!(h_fpatan, "fpatan");

/// Like [`check`], but the host's transcendentals are not correctly
/// rounded: results may differ by one ulp, and PE/C1 are not compared.
fn check_loose(
    name: &str,
    host: fn(&mut Frame),
    op: Build,
    n: usize,
    seed: u64,
    unmask: bool,
    gen: &mut dyn FnMut(&mut Rng) -> (F80, F80),
) {
    use super::transcend::tests::ulps;
    let max_ulps = 1;
    let mut emu = Emu::new(op);
    let mut rng = Rng(seed);
    let mut worst = 0;
    for _ in 0..n {
        let (a, b) = gen(&mut rng);
        let mut cw = rng.cw() | 0x0300 & ((rng.below(2) as u16) * 0x0300);
        if unmask {
            cw &= !(rng.next() as u16 & 0x3F);
        }
        let mut hf = Frame::new(cw, a, b, [0; 16]);
        let mut ef = hf;
        host(&mut hf);
        emu.run(&mut ef);
        let mut differ = false;
        // A result one ulp apart may be tiny on one side only; with
        // underflow unmasked that side's result is then also scaled by
        // 2^24576 (SDM Vol. 1, 8.5.4 "Numeric Underflow Exception"):
        // compare the two on an unbounded exponent.
        let one_side_ue = cw & 0x0010 == 0 && (hf.sw() ^ ef.sw()) & 0x0010 != 0;
        let bias = |f: &Frame| if f.sw() & 0x0010 != 0 { 0x6000 } else { 0 };
        for off in [OFF_RES, OFF_RES2] {
            let (h, e) = (hf.get(off), ef.get(off));
            differ |= h != e;
            let d = if h == e {
                0
            } else if h.is_nan() || e.is_nan() || h.sign() != e.sign() {
                i128::MAX
            } else if one_side_ue {
                // Only the tiny one of the results was scaled.
                let scaled = unbounded_key(h, bias(&hf)) - unbounded_key(e, bias(&ef));
                ulps(h, e).min(scaled.abs())
            } else {
                ulps(h, e)
            };
            worst = worst.max(d);
            assert!(
                d <= max_ulps,
                "{name} cw={cw:04x} a={a:x?} b={b:x?}: host {h:x?} emu {e:x?}"
            );
        }
        // A result one ulp apart may be tiny on one side only: UE then
        // differs too, and with UE unmasked so do ES and B, which follow it.
        let ue = match (differ, one_side_ue) {
            (false, _) => 0,
            (true, false) => 0x0010,
            (true, true) => 0x8090,
        };
        let mask = !(0x0020 | super::sw::C1 | ue);
        assert_eq!(
            hf.sw() & mask,
            ef.sw() & mask,
            "{name} status a={a:x?} b={b:x?}"
        );
    }
    assert!(worst <= max_ulps);
}

/// `v`'s place among values with a 64-bit significand and an unbounded
/// exponent (consecutive ones a step apart), `bias` taken off its
/// exponent first (a denormal's exponent counts as 1).
fn unbounded_key(v: F80, bias: i32) -> i128 {
    if v.signif == 0 {
        return 0;
    }
    let field = i128::from(v.sign_exp & 0x7FFF).max(1);
    let (mut e, mut s) = (field - i128::from(bias), v.signif);
    while s >> 63 == 0 {
        s <<= 1;
        e -= 1;
    }
    let k = e * (1 << 63) + i128::from(s - (1 << 63));
    if v.sign_exp & 0x8000 != 0 {
        -k
    } else {
        k
    }
}

fn small(r: &mut Rng, lo: i32, hi: i32) -> F80 {
    let e = lo + r.below((hi - lo + 1) as u64) as i32;
    F80::new(r.next() & 1 != 0, (16383 + e) as u16, r.next() | (1 << 63))
}

host_fn!(h_fcomi, "fcomi st(0), st(1)\n setc byte ptr [{p} + 0x40]\n sete byte ptr [{p} + 0x41]\n setp byte ptr [{p} + 0x42]\n seto byte ptr [{p} + 0x43]\n sets byte ptr [{p} + 0x44]");
host_fn!(h_fucomi, "fucomi st(0), st(1)\n setc byte ptr [{p} + 0x40]\n sete byte ptr [{p} + 0x41]\n setp byte ptr [{p} + 0x42]\n seto byte ptr [{p} + 0x43]\n sets byte ptr [{p} + 0x44]");
host_fn!(
    h_fldcw,
    "fldcw word ptr [{p} + 0x40]\n fnstcw word ptr [{p} + 0x42]"
);
host_fn!(h_fsubr_m32, "fsubr dword ptr [{p} + 0x40]");
host_fn!(h_fdivr_m64, "fdivr qword ptr [{p} + 0x40]");
host_fn!(h_fstenv_tag, "fstp st(3)\n fld st(1)\n fnstenv [{p} + 0x40]\n fldcw word ptr [{p} + 0x30]\n mov dword ptr [{p} + 0x44], 0\n mov dword ptr [{p} + 0x4c], 0");

fn flags_to_mem(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.setb(byte_ptr(m(OFF_MEM)))?;
    a.sete(byte_ptr(m(OFF_MEM + 1)))?;
    a.setp(byte_ptr(m(OFF_MEM + 2)))?;
    a.seto(byte_ptr(m(OFF_MEM + 3)))?;
    a.sets(byte_ptr(m(OFF_MEM + 4)))
}

host_fn!(h_sf_faddp, "ffree st(1)\n faddp st(1), st(0)");
host_fn!(h_sf_fadd0, "ffree st(0)\n fadd st(0), st(1)");
host_fn!(h_sf_fst, "ffree st(0)\n fst dword ptr [{p} + 0x40]");
host_fn!(h_sf_fistp, "ffree st(0)\n fistp dword ptr [{p} + 0x40]");
host_fn!(h_sf_fcomp, "ffree st(1)\n fcomp st(1)");
host_fn!(h_sf_fxam, "ffree st(0)\n fxam");
host_fn!(h_sf_fxch, "ffree st(1)\n fxch st(1)");
host_fn!(h_sf_fld, "fld st(0)\n fld st(0)\n fld st(0)\n fld st(0)\n fld st(0)\n fld st(0)\n fld st(0)\n fincstp\n fincstp\n fincstp\n fincstp\n fincstp\n fincstp");
host_fn!(h_sf_fsqrt, "ffree st(0)\n fsqrt");
host_fn!(h_sf_fsincos, "fld st(0)\n fld st(0)\n fld st(0)\n fld st(0)\n fld st(0)\n fld st(0)\n fsincos\n fincstp\n fincstp\n fincstp\n fincstp\n fincstp\n fincstp");
host_fn!(h_sf_fptan_empty, "ffree st(0)\n fptan");
host_fn!(h_sf_fyl2x, "ffree st(1)\n fyl2x");
