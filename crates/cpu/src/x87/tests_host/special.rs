//! Host comparison of the transcendentals (Intel SDM Vol. 1, 8.3.9 and
//! 8.3.10; within one ulp, as the host is not correctly rounded), of
//! unmasked exception responses (8.5) and of stack faults (8.5.1.1).

use super::*;

#[test]
fn x87_host_transcendentals_loosely() {
    let n = 3000;
    let mut trig = |r: &mut Rng| (small(r, -40, -2), F80::ONE);
    check_loose("fsin", h_fsin, |a| a.fsin(), n, 40, false, &mut trig);
    check_loose("fcos", h_fcos, |a| a.fcos(), n, 41, false, &mut trig);
    check_loose("fptan", h_fptan, |a| a.fptan(), n, 42, false, &mut trig);
    check_loose(
        "fsincos",
        h_fsincos,
        |a| a.fsincos(),
        n,
        43,
        false,
        &mut trig,
    );
    check_loose("f2xm1", h_f2xm1, |a| a.f2xm1(), n, 44, false, &mut |r| {
        (small(r, -40, -1), F80::ONE)
    });
    let mut l2x = |r: &mut Rng| (small(r, -100, 100).abs(), small(r, -10, 10));
    check_loose("fyl2x", h_fyl2x, |a| a.fyl2x(), n, 45, false, &mut l2x);
    check_loose(
        "fyl2xp1",
        h_fyl2xp1,
        |a| a.fyl2xp1(),
        n,
        46,
        false,
        &mut |r| (small(r, -60, -3), small(r, -10, 10)),
    );
    check_loose("fpatan", h_fpatan, |a| a.fpatan(), n, 47, false, &mut |r| {
        (small(r, -30, 30), small(r, -30, 30))
    });
}

/// Unmasked exceptions (delivered nowhere: FNCLEX follows FNSTSW): the
/// destination is kept for IE/DE/ZE, biased by 24576 for OE/UE on a
/// register, and memory is not written for OE/UE on a store.
#[test]
fn x87_host_unmasked_exceptions() {
    let mut unmasked = |r: &mut Rng| {
        let (a, b, mem, _) = mixed(r);
        (a, b, mem, r.cw_unmasked())
    };
    check(
        "fadd unmasked",
        h_fadd,
        |a| a.fadd_2(st0, st1),
        N / 2,
        50,
        &mut unmasked,
    );
    check(
        "fmul unmasked",
        h_fmul,
        |a| a.fmul_2(st0, st1),
        N / 2,
        51,
        &mut unmasked,
    );
    check(
        "fdiv unmasked",
        h_fdiv,
        |a| a.fdiv_2(st0, st1),
        N / 2,
        52,
        &mut unmasked,
    );
    check(
        "fsqrt unmasked",
        h_fsqrt,
        |a| a.fsqrt(),
        N / 2,
        53,
        &mut unmasked,
    );
    check(
        "fscale unmasked",
        h_fscale,
        |a| a.fscale(),
        N / 2,
        54,
        &mut |r| {
            let (a, b, mem, _) = mixed(r);
            let b = if r.below(2) == 0 {
                F80::new(b.sign(), 16383 + 14, b.signif | (1 << 63))
            } else {
                b
            };
            (a, b, mem, r.cw_unmasked())
        },
    );
    check(
        "fst m32 unmasked",
        h_fst_m32,
        |a| a.fst(dword_ptr(m(OFF_MEM))),
        N / 2,
        55,
        &mut |r| {
            let (a, b, mem, _) = for_store(r, &[0, 127, -126, -149, 128]);
            (a, b, mem, r.cw_unmasked())
        },
    );
    check(
        "fst m64 unmasked",
        h_fst_m64,
        |a| a.fst(qword_ptr(m(OFF_MEM))),
        N / 2,
        56,
        &mut |r| {
            let (a, b, mem, _) = for_store(r, &[0, 1023, -1022, -1074, 1024]);
            (a, b, mem, r.cw_unmasked())
        },
    );
    check(
        "fist m32 unmasked",
        h_fist_m32,
        |a| a.fist(dword_ptr(m(OFF_MEM))),
        N / 2,
        57,
        &mut |r| {
            let (a, b, mem, _) = for_store(r, &[0, 10, 30, 31, 32]);
            (a, b, mem, r.cw_unmasked())
        },
    );
    check(
        "fld m32 unmasked",
        h_fld_m32,
        |a| a.fld(dword_ptr(m(OFF_MEM))),
        N / 2,
        58,
        &mut |r| {
            let (a, b, mem, _) = mem_bits(r);
            (a, b, mem, r.cw_unmasked())
        },
    );
    let mut unm_mem = |r: &mut Rng| {
        let (a, b, mem, _) = with_mem(r);
        (a, b, mem, r.cw_unmasked())
    };
    check(
        "fadd m32 unmasked",
        h_fadd_m32,
        |a| a.fadd(dword_ptr(m(OFF_MEM))),
        N / 2,
        59,
        &mut unm_mem,
    );
    check(
        "fcom m32 unmasked",
        h_fcom_m32,
        |a| a.fcom(dword_ptr(m(OFF_MEM))),
        N / 2,
        60,
        &mut unm_mem,
    );
    check(
        "fld m64 unmasked",
        h_fld_m64,
        |a| a.fld(qword_ptr(m(OFF_MEM))),
        N / 2,
        61,
        &mut unm_mem,
    );
    check(
        "fcom unmasked",
        h_fcom,
        |a| a.fcom_2(st0, st1),
        N / 2,
        62,
        &mut unmasked,
    );
    check(
        "fprem unmasked",
        h_fprem,
        |a| a.fprem(),
        N / 2,
        63,
        &mut unmasked,
    );
    check(
        "frndint unmasked",
        h_frndint,
        |a| a.frndint(),
        N / 2,
        64,
        &mut unmasked,
    );
    check(
        "fxtract unmasked",
        h_fxtract,
        |a| a.fxtract(),
        N / 2,
        65,
        &mut unmasked,
    );
    check(
        "fbstp unmasked",
        h_fbstp,
        |a| a.fbstp(tword_ptr(m(OFF_MEM))),
        N / 2,
        66,
        &mut |r| {
            let (a, b, mem, _) = for_store(r, &[0, 20, 59, 60, 61]);
            (a, b, mem, r.cw_unmasked())
        },
    );
    check(
        "fistp m64 unmasked",
        h_fistp_m64,
        |a| a.fistp(qword_ptr(m(OFF_MEM))),
        N / 2,
        67,
        &mut |r| {
            let (a, b, mem, _) = for_store(r, &[0, 40, 62, 63, 64]);
            (a, b, mem, r.cw_unmasked())
        },
    );
}

/// Stack overflow and underflow against the host, masked and unmasked
/// (the overflow sequences go on with FINCSTP, a waiting instruction, so
/// they run masked only).
#[test]
fn x87_host_stack_faults() {
    let mut gen = |r: &mut Rng| {
        let (a, b, mem, _) = pair(r);
        let cw = if r.below(2) == 0 {
            r.cw()
        } else {
            r.cw_unmasked()
        };
        (a, b, mem, cw)
    };
    let n = 2000;
    check(
        "sf faddp",
        h_sf_faddp,
        |a| {
            a.ffree(st1)?;
            a.faddp(st1, st0)
        },
        n,
        80,
        &mut gen,
    );
    check(
        "sf fadd",
        h_sf_fadd0,
        |a| {
            a.ffree(st0)?;
            a.fadd_2(st0, st1)
        },
        n,
        81,
        &mut gen,
    );
    check(
        "sf fst",
        h_sf_fst,
        |a| {
            a.ffree(st0)?;
            a.fst(dword_ptr(m(OFF_MEM)))
        },
        n,
        82,
        &mut gen,
    );
    check(
        "sf fistp",
        h_sf_fistp,
        |a| {
            a.ffree(st0)?;
            a.fistp(dword_ptr(m(OFF_MEM)))
        },
        n,
        83,
        &mut gen,
    );
    check(
        "sf fcomp",
        h_sf_fcomp,
        |a| {
            a.ffree(st1)?;
            a.fcomp_2(st0, st1)
        },
        n,
        84,
        &mut gen,
    );
    check(
        "sf fxam",
        h_sf_fxam,
        |a| {
            a.ffree(st0)?;
            a.fxam()
        },
        n,
        85,
        &mut gen,
    );
    check(
        "sf fxch",
        h_sf_fxch,
        |a| {
            a.ffree(st1)?;
            a.fxch(st0, st1)
        },
        n,
        86,
        &mut gen,
    );
    check(
        "sf fld overflow",
        h_sf_fld,
        |a| {
            for _ in 0..7 {
                a.fld(st0)?;
            }
            for _ in 0..6 {
                a.fincstp()?;
            }
            Ok(())
        },
        n,
        87,
        &mut pair,
    );
    check(
        "sf fsqrt",
        h_sf_fsqrt,
        |a| {
            a.ffree(st0)?;
            a.fsqrt()
        },
        n,
        88,
        &mut gen,
    );
    check(
        "sf fsincos overflow",
        h_sf_fsincos,
        |a| {
            for _ in 0..6 {
                a.fld(st0)?;
            }
            a.fsincos()?;
            for _ in 0..6 {
                a.fincstp()?;
            }
            Ok(())
        },
        n,
        89,
        &mut pair,
    );
    check(
        "sf fptan empty",
        h_sf_fptan_empty,
        |a| {
            a.ffree(st0)?;
            a.fptan()
        },
        n,
        90,
        &mut gen,
    );
    check(
        "sf fyl2x",
        h_sf_fyl2x,
        |a| {
            a.ffree(st1)?;
            a.fyl2x()
        },
        n,
        91,
        &mut gen,
    );
}

/// Special operands and unmasked exceptions for the transcendentals.
#[test]
fn x87_host_transcendentals_special_operands() {
    let n = 3000;
    let mut special = |r: &mut Rng| {
        let a = if r.below(2) == 0 {
            r.f80(-3, 4)
        } else {
            small(r, -40, -2)
        };
        let b = if r.below(2) == 0 {
            r.f80(0, 8)
        } else {
            small(r, -10, 10)
        };
        (a, b)
    };
    // The host reduces trigonometric arguments with a 66-bit pi, so keep
    // the finite ones below pi/4 where it is accurate.
    let mut trig = |r: &mut Rng| {
        let mut a = r.f80(-20, 18);
        if (16382..16383 + 63).contains(&a.exp()) {
            a = F80::new(a.sign(), 16380, a.signif);
        }
        (a, F80::ONE)
    };
    for unmask in [false, true] {
        check_loose(
            "fsin special",
            h_fsin,
            |a| a.fsin(),
            n,
            100,
            unmask,
            &mut trig,
        );
        check_loose(
            "fcos special",
            h_fcos,
            |a| a.fcos(),
            n,
            101,
            unmask,
            &mut trig,
        );
        check_loose(
            "f2xm1 special",
            h_f2xm1,
            |a| a.f2xm1(),
            n,
            102,
            unmask,
            &mut special,
        );
        check_loose(
            "fpatan special",
            h_fpatan,
            |a| a.fpatan(),
            n,
            103,
            unmask,
            &mut special,
        );
        check_loose(
            "fyl2x special",
            h_fyl2x,
            |a| a.fyl2x(),
            n,
            104,
            unmask,
            &mut special,
        );
        check_loose(
            "fyl2xp1 special",
            h_fyl2xp1,
            |a| a.fyl2xp1(),
            n,
            105,
            unmask,
            &mut special,
        );
        check_loose(
            "fptan special",
            h_fptan,
            |a| a.fptan(),
            n,
            106,
            unmask,
            &mut trig,
        );
        check_loose(
            "fsincos special",
            h_fsincos,
            |a| a.fsincos(),
            n,
            107,
            unmask,
            &mut trig,
        );
    }
}
