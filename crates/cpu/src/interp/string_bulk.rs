//! The bulk path of REP MOVS, STOS, LODS, SCAS and CMPS (Intel SDM Vol. 2B,
//! "MOVS/MOVSB/MOVSW/MOVSD", "STOS/STOSB/STOSW/STOSD", "LODS/LODSB/LODSW/
//! LODSD", "SCAS/SCASB/SCASW/SCASD", "CMPS/CMPSB/CMPSW/CMPSD" and
//! "REP/REPE/REPZ/REPNE/REPNZ"): a chunk of elements is copied, filled,
//! loaded or compared directly in the bus's RAM slice, leaving ESI, EDI,
//! ECX, EAX and the flags exactly as the element loop of [`super::string`]
//! leaves them after the same elements.
//!
//! A chunk is the longest run of elements, from the current one, whose
//! source and destination each stay in one 4 KiB linear page, pass the
//! segment checks ([`Cpu::linear`]: presence, type, limit, expand-down),
//! do not wrap SI/DI at the address size, fit in the remaining count and
//! step budget, and whose pages the soft TLB already maps to plain RAM
//! with the right the access needs (for a write: a page holding no decoded
//! instructions, so writes to code still invalidate it). Anything else (a
//! TLB miss, MMIO or ROM, a code page, an element crossing a page, an
//! element that would fault) is left to the element loop, one element at
//! a time: faults, #DB, #AC and the restart after the step budget all come
//! from that one place.
//!
//! MOVS copies the way the element loop does: one memmove when no element
//! of the chunk reads a byte an earlier one wrote, element by element
//! otherwise (a destination one byte above the source replicates a byte).

use super::string::{areg, bump};
use crate::bus::Bus;
use crate::cpu::Cpu;
use crate::debug::watch;
use crate::flags::{width_mask, Flags, LazyOp};
use crate::memory::Access;
use crate::model::CpuModel;
use crate::state::{Reg, SegReg};
use iced_x86::Instruction;

/// What one bulk attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Chunk {
    /// `n` elements (at least one) ran in RAM, with the registers and flags
    /// the element loop leaves; `stop`: a REPE/REPNE condition ended the
    /// repetition at the last of them.
    Done { n: u32, stop: bool },
    /// Nothing ran: the current element takes the element loop.
    /// `page_rest` elements (at least one) are left before the operand that
    /// fell back leaves its page, where a new attempt may succeed.
    Fallback { page_rest: u32 },
}

/// When REPE or REPNE ends the repetition (SDM Vol. 2B, REP: Table 4-15).
#[derive(Clone, Copy, Debug)]
pub(super) struct Until {
    repe: bool,
    repne: bool,
}

impl Until {
    /// The condition of `insn`'s prefix, as the element loop tests it.
    pub(super) fn of(insn: &Instruction) -> Self {
        Self {
            repe: insn.has_repe_prefix(),
            repne: insn.has_repne_prefix(),
        }
    }

    /// Whether a comparison with ZF = `equal` ends the repetition.
    #[inline]
    fn stops(self, equal: bool) -> bool {
        (self.repe && !equal) || (self.repne && equal)
    }
}

/// Whether chunks may run in this instruction at all: not on the 8086
/// (whose offsets wrap per byte), nor while data breakpoints or host
/// watchpoints see each access, nor when misaligned elements could raise
/// #AC. None of this changes during a REP.
pub(super) fn allowed(cpu: &Cpu) -> bool {
    cpu.string_bulk
        && cpu.state.model != CpuModel::I8086
        && cpu.debug_watch & watch::DATA == 0
        && cpu.debug_hits == 0
        && !cpu.alignment_checks_armed()
}

/// One string operand's elements in a chunk.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// RAM offset of the current element.
    first: usize,
    /// Elements that qualify: at least one, at most the count asked for.
    n: u32,
}

impl Run {
    /// RAM offset of the lowest byte of the first `n` elements.
    fn low(self, n: u32, size: u32, down: bool) -> usize {
        if down {
            self.first - ((n - 1) * size) as usize
        } else {
            self.first
        }
    }
}

/// The elements of `size` bytes from `seg:offset`, stepping down with
/// `down`, that a chunk may cover (at most `max`); `Err` with the elements
/// left in the page when the current one must take the element loop.
fn run(
    cpu: &mut Cpu,
    (seg, offset): (SegReg, u32),
    size: u32,
    down: bool,
    write: bool,
    max: u32,
) -> Result<Run, u32> {
    let access = if write { Access::Write } else { Access::Read };
    let mask = u64::from(cpu.addr_mask());
    let linear = cpu.linear(seg, offset, size, access).map_err(|_| 1u32)?;
    let in_page = linear & 0xFFF;
    if max == 0 || in_page + size > 0x1000 || u64::from(offset) + u64::from(size) - 1 > mask {
        return Err(1);
    }
    let page_rest = if down {
        in_page / size + 1
    } else {
        (0x1000 - in_page) / size
    };
    // Offsets must not wrap at the address size inside a chunk.
    let no_wrap = if down {
        offset / size + 1
    } else {
        u32::try_from((mask + 1 - u64::from(offset)) / u64::from(size)).unwrap_or(u32::MAX)
    };
    let mut n = max.min(page_rest).min(no_wrap);
    let nth = |k: u32| {
        if down {
            offset - k * size
        } else {
            offset + k * size
        }
    };
    // The offsets that pass the segment checks form one interval, which
    // holds the current element: the good elements are a prefix.
    if cpu.linear(seg, nth(n - 1), size, access).is_err() {
        let (mut good, mut bad) = (1, n);
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            if cpu.linear(seg, nth(mid - 1), size, access).is_ok() {
                good = mid;
            } else {
                bad = mid;
            }
        }
        n = good;
    }
    let low_linear = if down {
        linear - (n - 1) * size
    } else {
        linear
    };
    let low = cpu.data_host(low_linear, write).ok_or(page_rest)?;
    let first = if down {
        low + ((n - 1) * size) as usize
    } else {
        low
    };
    Ok(Run { first, n })
}

/// Runs one bulk attempt: the soft-TLB hits `body` counted become the
/// `accesses` per element the element loop counts, or none when it falls
/// back.
fn attempt(
    cpu: &mut Cpu,
    accesses: u64,
    body: impl FnOnce(&mut Cpu) -> Result<Chunk, u32>,
) -> Chunk {
    let hits = cpu.tlb.stats.hits;
    match body(cpu) {
        Ok(chunk) => {
            if let Chunk::Done { n, .. } = chunk {
                cpu.tlb.stats.hits = hits + accesses * u64::from(n);
            }
            chunk
        }
        Err(page_rest) => {
            cpu.tlb.stats.hits = hits;
            Chunk::Fallback {
                page_rest: page_rest.max(1),
            }
        }
    }
}

/// Steps the index registers `regs` and ECX past `n` elements.
fn advance(cpu: &mut Cpu, regs: &[Reg], n: u32, size: u32, down: bool) {
    let bytes = n.wrapping_mul(size);
    let delta = if down { bytes.wrapping_neg() } else { bytes };
    for r in regs {
        bump(cpu, *r, delta);
    }
    bump(cpu, Reg::Ecx, n.wrapping_neg());
}

/// The `bytes` bytes of RAM at `low`, if the bus's RAM slice holds them.
fn ram_span<B: Bus + ?Sized>(bus: &mut B, low: usize, bytes: usize) -> Result<&mut [u8], u32> {
    bus.ram()
        .and_then(|ram| ram.get_mut(low..low + bytes))
        .ok_or(1)
}

/// A little-endian element.
#[inline]
fn le(bytes: &[u8]) -> u32 {
    bytes.iter().rev().fold(0, |v, b| (v << 8) | u32::from(*b))
}

/// The run at `ES:DI` (for a `write`, or a read).
fn destination(cpu: &mut Cpu, size: u32, down: bool, write: bool, max: u32) -> Result<Run, u32> {
    run(
        cpu,
        (SegReg::Es, areg(cpu, Reg::Edi)),
        size,
        down,
        write,
        max,
    )
}

/// The runs of MOVS and CMPS, from `seg:SI` and at `ES:DI` (written when
/// `write`): the elements both allow, the RAM offsets of their lowest
/// bytes and the bytes each spans.
fn source_and_destination(
    cpu: &mut Cpu,
    seg: SegReg,
    size: u32,
    down: bool,
    write: bool,
    max: u32,
) -> Result<(u32, usize, usize, usize), u32> {
    let src = run(cpu, (seg, areg(cpu, Reg::Esi)), size, down, false, max)?;
    let dst = destination(cpu, size, down, write, max)?;
    let n = src.n.min(dst.n);
    let (s, d) = (src.low(n, size, down), dst.low(n, size, down));
    Ok((n, s, d, (n * size) as usize))
}

/// The chunk of `REP MOVS` from `seg:SI` to `ES:DI` (at most `max`
/// elements of `size` bytes).
pub(super) fn movs<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    bus: &mut B,
    seg: SegReg,
    size: u32,
    max: u32,
) -> Chunk {
    attempt(cpu, 2, |cpu| {
        let down = cpu.state.df();
        let (n, s, d, bytes) = source_and_destination(cpu, seg, size, down, true, max)?;
        let ram = ram_span(bus, 0, s.max(d) + bytes)?;
        copy_elements(ram, (s, d), bytes, size, down);
        advance(cpu, &[Reg::Esi, Reg::Edi], n, size, down);
        Ok(Chunk::Done { n, stop: false })
    })
}

/// Copies `bytes` bytes of `size`-byte elements from RAM offset `src` to
/// `dst` (the lowest byte of each) with the bytes MOVS's element loop
/// leaves: it visits the elements upwards, or downwards with `down`. The
/// caller has checked that both ranges lie in `ram`.
fn copy_elements(ram: &mut [u8], (src, dst): (usize, usize), bytes: usize, size: u32, down: bool) {
    // One memmove reads every element before writing any: the same bytes
    // unless an element reads what an earlier one wrote, which needs an
    // overlap with the destination ahead of the source in visiting order.
    let disjoint = dst + bytes <= src || src + bytes <= dst;
    if disjoint || (down && dst >= src) || (!down && dst <= src) {
        ram.copy_within(src..src + bytes, dst);
        return;
    }
    match size {
        1 => copy_each::<1>(ram, (src, dst), bytes, down),
        2 => copy_each::<2>(ram, (src, dst), bytes, down),
        _ => copy_each::<4>(ram, (src, dst), bytes, down),
    }
}

/// [`copy_elements`] one `N`-byte element at a time.
fn copy_each<const N: usize>(ram: &mut [u8], (src, dst): (usize, usize), bytes: usize, down: bool) {
    let mut one = |at: usize| {
        let mut e = [0u8; N];
        e.copy_from_slice(&ram[src + at..src + at + N]);
        ram[dst + at..dst + at + N].copy_from_slice(&e);
    };
    if down {
        (0..bytes).step_by(N).rev().for_each(&mut one);
    } else {
        (0..bytes).step_by(N).for_each(&mut one);
    }
}

/// The chunk of `REP STOS` to `ES:DI`.
pub(super) fn stos<B: Bus + ?Sized>(cpu: &mut Cpu, bus: &mut B, size: u32, max: u32) -> Chunk {
    attempt(cpu, 1, |cpu| {
        let down = cpu.state.df();
        let value = cpu.state.reg(Reg::Eax, size).to_le_bytes();
        let dst = destination(cpu, size, down, true, max)?;
        let n = dst.n;
        let span = ram_span(bus, dst.low(n, size, down), (n * size) as usize)?;
        fill_elements(span, u32::from_le_bytes(value), size);
        advance(cpu, &[Reg::Edi], n, size, down);
        Ok(Chunk::Done { n, stop: false })
    })
}

/// Fills `span` with `size`-byte elements (1, 2 or 4) holding the low
/// bytes of `value`, little-endian, as REP STOS leaves memory. (A copy
/// of the element by a run-time length was a `memcpy` call per element:
/// clearing a 4 KiB page with REP STOSD made 1,024 of them.)
pub fn fill_elements(span: &mut [u8], value: u32, size: u32) {
    match size {
        1 => span.fill(value as u8),
        2 => fill_each(span, (value as u16).to_le_bytes()),
        _ => fill_each(span, value.to_le_bytes()),
    }
}

/// [`fill_elements`] with `N`-byte elements.
fn fill_each<const N: usize>(span: &mut [u8], element: [u8; N]) {
    span.chunks_exact_mut(N)
        .for_each(|e| e.copy_from_slice(&element));
}

/// The chunk of `REP LODS` from `seg:SI`: only its last element stays in
/// the accumulator.
pub(super) fn lods<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    bus: &mut B,
    seg: SegReg,
    size: u32,
    max: u32,
) -> Chunk {
    attempt(cpu, 1, |cpu| {
        let down = cpu.state.df();
        let src = run(cpu, (seg, areg(cpu, Reg::Esi)), size, down, false, max)?;
        let n = src.n;
        let low = src.low(n, size, down);
        let last = if down {
            low
        } else {
            low + ((n - 1) * size) as usize
        };
        let value = le(ram_span(bus, last, size as usize)?);
        cpu.state.set_reg(Reg::Eax, size, value);
        advance(cpu, &[Reg::Esi], n, size, down);
        Ok(Chunk::Done { n, stop: false })
    })
}

/// The chunk of `REPE/REPNE SCAS` against `ES:DI`.
pub(super) fn scas<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    bus: &mut B,
    size: u32,
    max: u32,
    until: Until,
) -> Chunk {
    attempt(cpu, 1, |cpu| {
        let down = cpu.state.df();
        let a = cpu.state.reg(Reg::Eax, size);
        let dst = destination(cpu, size, down, false, max)?;
        let n = dst.n;
        let span = ram_span(bus, dst.low(n, size, down), (n * size) as usize)?;
        // The accumulator repeated over 8 bytes (a multiple of the size).
        let pattern = match size {
            1 => u64::from(a) * 0x0101_0101_0101_0101,
            2 => u64::from(a) * 0x0001_0001_0001_0001,
            _ => u64::from(a) * 0x0000_0001_0000_0001,
        };
        let width = size as usize;
        let stop = first_stop(
            (span.len(), width, down, until),
            |at| word(span, at) ^ pattern,
            |at| le(&span[at..at + width]) == a,
        );
        let (n, last, stop) = ended(n, width, down, stop);
        let b = le(&span[last..last + width]);
        finish_compare(cpu, (n, (a, b), stop), &[Reg::Edi], size, down)
    })
}

/// The chunk of `REPE/REPNE CMPS` of `seg:SI` with `ES:DI`.
pub(super) fn cmps<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    bus: &mut B,
    seg: SegReg,
    size: u32,
    max: u32,
    until: Until,
) -> Chunk {
    attempt(cpu, 2, |cpu| {
        let down = cpu.state.df();
        let (n, s, d, bytes) = source_and_destination(cpu, seg, size, down, false, max)?;
        let ram = ram_span(bus, 0, s.max(d) + bytes)?;
        let (src, dst) = (&ram[s..s + bytes], &ram[d..d + bytes]);
        let width = size as usize;
        let stop = first_stop(
            (bytes, width, down, until),
            |at| word(src, at) ^ word(dst, at),
            |at| src[at..at + width] == dst[at..at + width],
        );
        let (n, last, stop) = ended(n, width, down, stop);
        let pair = (le(&src[last..last + width]), le(&dst[last..last + width]));
        finish_compare(cpu, (n, pair, stop), &[Reg::Esi, Reg::Edi], size, down)
    })
}

/// The 8 bytes at `at` (zeros past the end), little-endian.
#[inline]
fn word(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The byte offset of the first element, in the loop's visiting order,
/// of `bytes` bytes of `size`-byte element pairs at which `until` ends
/// the repetition. Whole 8-byte words (a multiple of every element size)
/// are tested lane by lane on `xor(at)`, the XOR of the two operands'
/// 8 bytes at byte offset `at`; the bytes after the last whole word
/// element by element with `equal(at)`.
fn first_stop(
    (bytes, size, down, until): (usize, usize, bool, Until),
    xor: impl Fn(usize) -> u64,
    equal: impl Fn(usize) -> bool,
) -> Option<usize> {
    // The top bit of each element lane, and the bits below it.
    let high: u64 = match size {
        1 => 0x8080_8080_8080_8080,
        2 => 0x8000_8000_8000_8000,
        _ => 0x8000_0000_8000_0000,
    };
    let low = !high;
    // The top bits of the lanes that end the repetition: a lane differs
    // when any of its bits is set (no carry leaves a lane).
    let stops = |x: u64| {
        let differ = (((x & low) + low) | x) & high;
        let mut m = 0;
        if until.repe {
            m |= differ;
        }
        if until.repne {
            m |= high & !differ;
        }
        m
    };
    let words = bytes / 8 * 8;
    let lane = |w: usize, bit: u32| w + bit as usize / 8 / size * size;
    if down {
        let tail = (words..bytes).step_by(size).rev();
        if let Some(at) = tail.into_iter().find(|&at| until.stops(equal(at))) {
            return Some(at);
        }
        (0..words).step_by(8).rev().find_map(|w| {
            let m = stops(xor(w));
            (m != 0).then(|| lane(w, 63 - m.leading_zeros()))
        })
    } else {
        let hit = (0..words).step_by(8).find_map(|w| {
            let m = stops(xor(w));
            (m != 0).then(|| lane(w, m.trailing_zeros()))
        });
        hit.or_else(|| {
            (words..bytes)
                .step_by(size)
                .find(|&at| until.stops(equal(at)))
        })
    }
}

/// From the stopping element's byte offset (if any) of `n` elements:
/// how many elements ran, the byte offset of the last of them, and
/// whether the condition stopped the repetition there.
fn ended(n: u32, size: usize, down: bool, stop: Option<usize>) -> (u32, usize, bool) {
    let bytes = n as usize * size;
    match stop {
        Some(at) => {
            let index = if down {
                bytes.saturating_sub(size + at) / size
            } else {
                at / size
            };
            (index as u32 + 1, at, true)
        }
        None => (n, if down { 0 } else { bytes.saturating_sub(size) }, false),
    }
}

/// What a run of comparisons did: elements done, the last pair compared
/// (minuend, subtrahend) and whether the REPE/REPNE condition stopped it.
type Compared = (u32, (u32, u32), bool);

/// Leaves the flags of the last comparison (SUB of the pair) and steps the
/// registers past the elements compared.
fn finish_compare(
    cpu: &mut Cpu,
    (n, (a, b), stop): Compared,
    regs: &[Reg],
    size: u32,
    down: bool,
) -> Result<Chunk, u32> {
    if n == 0 {
        return Err(1); // not reached: a run holds at least one element
    }
    let result = a.wrapping_sub(b) & width_mask(size);
    cpu.state.set_lazy(LazyOp::Sub, size, a, b, result);
    advance(cpu, regs, n, size, down);
    Ok(Chunk::Done { n, stop })
}

#[cfg(test)]
#[path = "string_bulk_tests.rs"]
mod tests;
