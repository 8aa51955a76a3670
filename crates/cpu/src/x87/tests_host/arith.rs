//! Host comparison of the bit-exact instructions (Intel SDM Vol. 1, 8.3
//! and 4.9; Vol. 2A for each instruction): arithmetic, loads and stores of
//! every format, compares, constants, the control word and the tag word.

use super::*;

#[test]
fn x87_host_fadd_fsub() {
    check("fadd", h_fadd, |a| a.fadd_2(st0, st1), N, 1, &mut mixed);
    check("fsub", h_fsub, |a| a.fsub_2(st0, st1), N, 2, &mut mixed);
    check("fsubr", h_fsubr, |a| a.fsubr_2(st0, st1), N, 3, &mut mixed);
}

#[test]
fn x87_host_fmul_fdiv() {
    check("fmul", h_fmul, |a| a.fmul_2(st0, st1), N, 4, &mut mixed);
    check("fdiv", h_fdiv, |a| a.fdiv_2(st0, st1), N, 5, &mut mixed);
    check("fdivr", h_fdivr, |a| a.fdivr_2(st0, st1), N, 6, &mut mixed);
}

#[test]
fn x87_host_memory_operands() {
    check(
        "fadd m32",
        h_fadd_m32,
        |a| a.fadd(dword_ptr(m(OFF_MEM))),
        N,
        7,
        &mut with_mem,
    );
    check(
        "fmul m64",
        h_fmul_m64,
        |a| a.fmul(qword_ptr(m(OFF_MEM))),
        N,
        8,
        &mut with_mem,
    );
    check(
        "fisub m16",
        h_fisub_m16,
        |a| a.fisub(word_ptr(m(OFF_MEM))),
        N,
        9,
        &mut with_mem,
    );
    check(
        "fidivr m32",
        h_fidivr_m32,
        |a| a.fidivr(dword_ptr(m(OFF_MEM))),
        N,
        10,
        &mut with_mem,
    );
}

#[test]
fn x87_host_fsqrt_frndint() {
    check("fsqrt", h_fsqrt, |a| a.fsqrt(), N, 11, &mut mixed);
    let mut near_int = |r: &mut Rng| {
        let (mut a, b, mem, cw) = mixed(r);
        if r.below(2) == 0 {
            a = F80::new(a.sign(), 16383 + r.below(70) as u16, a.signif | (1 << 63));
        }
        (a, b, mem, cw)
    };
    check("frndint", h_frndint, |a| a.frndint(), N, 12, &mut near_int);
}

#[test]
fn x87_host_fprem() {
    let mut gen = |r: &mut Rng| {
        let (a, b, mem, cw) = mixed(r);
        let b = if r.below(2) == 0 {
            F80::new(
                b.sign(),
                a.exp().saturating_sub(r.below(140) as u16).max(1),
                b.signif | (1 << 63),
            )
        } else {
            b
        };
        (a, b, mem, cw)
    };
    check("fprem", h_fprem, |a| a.fprem(), N, 13, &mut gen);
    check("fprem1", h_fprem1, |a| a.fprem1(), N, 14, &mut gen);
}

#[test]
fn x87_host_fscale_fxtract() {
    let mut gen = |r: &mut Rng| {
        let (a, b, mem, cw) = mixed(r);
        let b = if r.below(3) != 0 {
            F80::new(b.sign(), 16383 + r.below(16) as u16, b.signif | (1 << 63))
        } else {
            b
        };
        (a, b, mem, cw)
    };
    check("fscale", h_fscale, |a| a.fscale(), N, 15, &mut gen);
    let mut one = |r: &mut Rng| {
        let (a, _, mem, cw) = mixed(r);
        (a, F80::ONE, mem, cw)
    };
    check("fxtract", h_fxtract, |a| a.fxtract(), N, 16, &mut one);
}

#[test]
fn x87_host_compares() {
    check("fcom", h_fcom, |a| a.fcom_2(st0, st1), N, 17, &mut pair);
    check("fucom", h_fucom, |a| a.fucom(st0, st1), N, 18, &mut pair);
    check(
        "fcom m32",
        h_fcom_m32,
        |a| a.fcom(dword_ptr(m(OFF_MEM))),
        N,
        19,
        &mut with_mem,
    );
    check("ftst", h_ftst, |a| a.ftst(), N, 20, &mut pair);
    check("fxam", h_fxam, |a| a.fxam(), N, 21, &mut pair);
}

#[test]
fn x87_host_loads() {
    check(
        "fld m32",
        h_fld_m32,
        |a| a.fld(dword_ptr(m(OFF_MEM))),
        N,
        22,
        &mut mem_bits,
    );
    check(
        "fld m64",
        h_fld_m64,
        |a| a.fld(qword_ptr(m(OFF_MEM))),
        N,
        23,
        &mut mem_bits,
    );
    check(
        "fild m16",
        h_fild_m16,
        |a| a.fild(word_ptr(m(OFF_MEM))),
        N,
        24,
        &mut mem_bits,
    );
    check(
        "fild m32",
        h_fild_m32,
        |a| a.fild(dword_ptr(m(OFF_MEM))),
        N,
        25,
        &mut mem_bits,
    );
    check(
        "fild m64",
        h_fild_m64,
        |a| a.fild(qword_ptr(m(OFF_MEM))),
        N,
        26,
        &mut mem_bits,
    );
    let mut bcd = |r: &mut Rng| {
        let (a, b, _, cw) = pair(r);
        let mut mem = [0u8; 16];
        for byte in mem.iter_mut().take(9) {
            *byte = ((r.below(10) as u8) << 4) | r.below(10) as u8;
        }
        mem[9] = if r.next() & 1 != 0 { 0x80 } else { 0 };
        (a, b, mem, cw)
    };
    check(
        "fbld",
        h_fbld,
        |a| a.fbld(tword_ptr(m(OFF_MEM))),
        N,
        27,
        &mut bcd,
    );
}

#[test]
fn x87_host_stores() {
    check(
        "fst m32",
        h_fst_m32,
        |a| a.fst(dword_ptr(m(OFF_MEM))),
        N,
        28,
        &mut |r| for_store(r, &[0, 127, -126, -149, 128]),
    );
    check(
        "fst m64",
        h_fst_m64,
        |a| a.fst(qword_ptr(m(OFF_MEM))),
        N,
        29,
        &mut |r| for_store(r, &[0, 1023, -1022, -1074, 1024]),
    );
    check(
        "fist m16",
        h_fist_m16,
        |a| a.fist(word_ptr(m(OFF_MEM))),
        N,
        30,
        &mut |r| for_store(r, &[0, 3, 14, 15, 16]),
    );
    check(
        "fist m32",
        h_fist_m32,
        |a| a.fist(dword_ptr(m(OFF_MEM))),
        N,
        31,
        &mut |r| for_store(r, &[0, 10, 30, 31, 32]),
    );
    check(
        "fistp m64",
        h_fistp_m64,
        |a| a.fistp(qword_ptr(m(OFF_MEM))),
        N,
        32,
        &mut |r| for_store(r, &[0, 40, 62, 63, 64]),
    );
    check(
        "fbstp",
        h_fbstp,
        |a| a.fbstp(tword_ptr(m(OFF_MEM))),
        N,
        33,
        &mut |r| for_store(r, &[0, 20, 59, 60, 61]),
    );
}

#[test]
fn x87_host_constants() {
    let mut gen = |r: &mut Rng| pair(r);
    check("fldpi", h_fldpi, |a| a.fldpi(), 64, 34, &mut gen);
    check("fldl2e", h_fldl2e, |a| a.fldl2e(), 64, 35, &mut gen);
    check("fldl2t", h_fldl2t, |a| a.fldl2t(), 64, 36, &mut gen);
    check("fldlg2", h_fldlg2, |a| a.fldlg2(), 64, 37, &mut gen);
    check("fldln2", h_fldln2, |a| a.fldln2(), 64, 38, &mut gen);
}

#[test]
fn x87_host_fcomi_and_control_word() {
    check(
        "fcomi",
        h_fcomi,
        |a| {
            a.fcomi(st0, st1)?;
            flags_to_mem(a)
        },
        N,
        70,
        &mut pair,
    );
    check(
        "fucomi",
        h_fucomi,
        |a| {
            a.fucomi(st0, st1)?;
            flags_to_mem(a)
        },
        N,
        71,
        &mut pair,
    );
    check(
        "fldcw",
        h_fldcw,
        |a| {
            a.fldcw(word_ptr(m(OFF_MEM)))?;
            a.fnstcw(word_ptr(m(OFF_MEM + 2)))
        },
        2000,
        72,
        &mut |r| {
            let mut mem = [0u8; 16];
            mem[..2].copy_from_slice(&(r.next() as u16).to_le_bytes());
            (F80::ONE, F80::ONE, mem, r.cw())
        },
    );
    check(
        "fsubr m32",
        h_fsubr_m32,
        |a| a.fsubr(dword_ptr(m(OFF_MEM))),
        N,
        73,
        &mut with_mem,
    );
    check(
        "fdivr m64",
        h_fdivr_m64,
        |a| a.fdivr(qword_ptr(m(OFF_MEM))),
        N,
        74,
        &mut with_mem,
    );
}

/// The tag word FNSTENV stores, recomputed from the register contents
/// (the pointers differ between host and guest and are cleared).
#[test]
fn x87_host_fnstenv_tag_word() {
    check(
        "fnstenv tag",
        h_fstenv_tag,
        |a| {
            a.fstp(st3)?;
            a.fld(st1)?;
            a.fnstenv(ptr(m(OFF_MEM)))?;
            a.fldcw(word_ptr(m(OFF_CW)))?;
            a.mov(dword_ptr(m(OFF_MEM + 4)), 0)?;
            a.mov(dword_ptr(m(OFF_MEM + 12)), 0)
        },
        5000,
        75,
        &mut pair,
    );
}

#[test]
fn x87_host_fprem_far_apart() {
    let mut gen = |r: &mut Rng| {
        let (a, b, mem, cw) = mixed(r);
        let a = F80::new(
            a.sign(),
            0x7000 + r.below(0xFFE) as u16,
            a.signif | (1 << 63),
        );
        let b = F80::new(b.sign(), 1 + r.below(0x7000) as u16, b.signif | (1 << 63));
        (a, b, mem, cw)
    };
    check("fprem far", h_fprem, |a| a.fprem(), N / 4, 76, &mut gen);
    check("fprem1 far", h_fprem1, |a| a.fprem1(), N / 4, 77, &mut gen);
}
