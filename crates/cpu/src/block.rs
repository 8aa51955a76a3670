//! Blocks: runs of decoded instructions copied out of the
//! decoded-instruction cache into one array, for the quiet runs of
//! [`crate::Cpu::run`]. Inside a block the next instruction is the next
//! array element, so the run loop does not go from EIP to a physical
//! address to a decode-cache slot (three dependent loads) per instruction.
//!
//! A block starts at a physical address and holds up to [`MAX_LEN`]
//! decoded instructions that follow each other on one 4 KiB page. It goes
//! on past a conditional branch (its fall-through) and ends after any
//! other instruction that may transfer control (iced-x86's flow control:
//! jumps, calls, returns, interrupts) or is not quiet
//! ([`crate::decode::is_quiet`]), at the page's end, or where the decode
//! cache has no entry yet (an *open* block, rebuilt once that entry
//! exists). The run loop leaves a block where execution does not fall
//! through (a taken branch, a REP iteration). The copies stay valid until a write reaches cached code on the
//! block's page: [`crate::decode::DecodeCache::invalidate`] bumps the
//! page's generation, which the block recorded; a flush drops all blocks.

use crate::decode::Decoded;

/// The most instructions in one block.
pub(crate) const MAX_LEN: usize = 32;
/// Number of block headers (a power of two; direct-mapped).
const HEADERS: usize = 1 << 14;
/// Decoded instructions the pool holds before it is emptied.
const POOL: usize = 1 << 18;

/// Where a block's instructions are and what they were built from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Header {
    /// Physical address of the first instruction.
    pub(crate) paddr: u32,
    /// 1 + code32 while valid, 0 when empty.
    pub(crate) key: u8,
    /// Ended where the decode cache had no entry: may grow.
    pub(crate) open: bool,
    /// Number of instructions.
    pub(crate) len: u16,
    /// Index of the first instruction in the pool.
    pub(crate) start: u32,
    /// Offset from `paddr` of the last instruction's first byte.
    pub(crate) span: u32,
    /// Offset from `paddr` of the first byte after the block.
    pub(crate) end: u32,
    /// The page's code generation the copies were taken at.
    pub(crate) generation: u32,
    /// An open block: the decode cache's insertion count when it was last
    /// found not to grow (it cannot until the cache gains an entry).
    pub(crate) inserts: u32,
}

/// The block headers and the pool their instructions live in.
pub(crate) struct BlockCache {
    /// Direct-mapped on the start address ([`BlockCache::index`]).
    pub(crate) headers: Box<[Header]>,
    /// The blocks' instructions, each block contiguous. Reserved once and
    /// never grown past its capacity, so an element does not move while
    /// a block runs; emptied (with every header) when full, which happens
    /// only while a block is built, never while one runs.
    pool: Vec<Decoded>,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("pool", &self.pool.len())
            .finish_non_exhaustive()
    }
}

impl BlockCache {
    /// No blocks. The pool's memory is reserved, not touched.
    pub(crate) fn new() -> Self {
        Self {
            headers: vec![Header::default(); HEADERS].into_boxed_slice(),
            pool: Vec::with_capacity(POOL),
        }
    }

    /// The header slot for a block starting at `paddr`.
    #[inline(always)]
    pub(crate) fn index(paddr: u32) -> usize {
        (paddr ^ (paddr >> 12)) as usize & (HEADERS - 1)
    }

    /// A pointer to the first instruction of the block `h` describes.
    #[inline(always)]
    pub(crate) fn instructions(&self, h: &Header) -> *const Decoded {
        // In bounds: a header's range lies inside the pool's elements.
        self.pool.as_ptr().wrapping_add(h.start as usize)
    }

    /// Drops every block (the pool's elements stay until the next build).
    pub(crate) fn clear(&mut self) {
        for h in self.headers.iter_mut() {
            h.key = 0;
        }
    }

    /// Room for one more block: empties the pool (and drops every block)
    /// when it might not fit.
    pub(crate) fn make_room(&mut self) {
        if self.pool.len() + MAX_LEN > POOL {
            self.clear();
            self.pool.clear();
        }
    }

    /// Number of instructions in the pool (where the next block starts).
    pub(crate) fn next_start(&self) -> u32 {
        self.pool.len() as u32
    }

    /// Appends an instruction of the block being built (after
    /// [`BlockCache::make_room`]; at most [`MAX_LEN`] per block).
    pub(crate) fn push(&mut self, d: Decoded) {
        debug_assert!(self.pool.len() < POOL, "make_room before building");
        self.pool.push(d);
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{flat32_cpu, CODE};
    use crate::{FlatRam, StepOutcome};

    /// A loop that stores CL into the immediate of a later instruction of
    /// the same block, then adds that immediate into EDX.
    const PATCHING_LOOP: [u8; 25] = [
        0xB9, 0x05, 0x00, 0x00, 0x00, // mov ecx, 5
        0x88, 0x0D, 0x0F, 0x10, 0x00, 0x00, // top: mov [0x100f], cl
        0x83, 0xC3, 0x01, // add ebx, 1
        0xB8, 0x00, 0x56, 0x34, 0x12, // mov eax, 0x12345600 (imm at 0x100f)
        0x01, 0xC2, // add edx, eax
        0x49, // dec ecx
        0x75, 0xED, // jnz top
        0xF4, // hlt
    ];

    #[test]
    fn code_written_inside_a_block_is_seen_on_the_next_trip() {
        let mut cpu = flat32_cpu();
        let mut ram = FlatRam::new(1 << 20);
        ram.load(CODE, &PATCHING_LOOP);
        assert_eq!(cpu.run(&mut ram, 1000), StepOutcome::Halted);
        let want = (1..=5u32).fold(0u32, |s, cl| s.wrapping_add(0x1234_5600 | cl));
        assert_eq!(cpu.state.gpr[2], want);
    }

    /// `Cpu::run_to_transfer` returns where each taken JNZ lands (and at
    /// the HLT), having reported every step but the unasked quiet ones to
    /// `stop`, and ends as stepping does.
    #[test]
    fn run_to_transfer_returns_where_each_jump_lands() {
        let mut ran = flat32_cpu();
        let mut stepped = flat32_cpu();
        let mut ram_r = FlatRam::new(1 << 20);
        let mut ram_s = FlatRam::new(1 << 20);
        ram_r.load(CODE, &PATCHING_LOOP);
        ram_s.load(CODE, &PATCHING_LOOP);
        let mut calls = Vec::new();
        loop {
            let mut reported = 0;
            let (o, n) = ran.run_to_transfer(&mut ram_r, 1000, |_, k| {
                reported += k;
                false
            });
            assert!(reported <= n, "reported {reported} of {n}");
            calls.push((n, ran.state.eip));
            if o != StepOutcome::Continue {
                break;
            }
        }
        let top = CODE + 5;
        let end = CODE + PATCHING_LOOP.len() as u32;
        assert_eq!(
            calls,
            [(7, top), (6, top), (6, top), (6, top), (7, end)],
            "steps and EIP of each call"
        );
        while stepped.step(&mut ram_s) == StepOutcome::Continue {}
        assert_eq!(format!("{:?}", ran.state), format!("{:?}", stepped.state));
    }

    /// A taken jump of a few bytes is a transfer too: `run_to_transfer`
    /// returns where it lands, as after a long one (it once compared the
    /// distance with the longest instruction's length, so the tiering
    /// counters never saw the targets of short forward jumps).
    #[test]
    fn run_to_transfer_returns_after_short_forward_jumps() {
        const SHORT_JUMPS: [u8; 12] = [
            0x31, 0xC0, // xor eax, eax
            0x74, 0x03, // jz +3 (taken)
            0x83, 0xC3, 0x01, // add ebx, 1 (skipped)
            0x41, // inc ecx
            0xEB, 0x01, // jmp +1
            0x90, // nop (skipped)
            0xF4, // hlt
        ];
        for warm in [false, true] {
            let mut cpu = flat32_cpu();
            let mut ram = FlatRam::new(1 << 20);
            ram.load(CODE, &SHORT_JUMPS);
            if warm {
                // The second time the instructions come from the decode
                // cache's blocks (the quiet-run path).
                cpu.run(&mut ram, 100);
                cpu.state.eip = CODE;
                cpu.state.halted = false;
            }
            let mut calls = Vec::new();
            loop {
                let (o, n) = cpu.run_to_transfer(&mut ram, 1000, |_, _| false);
                calls.push((n, cpu.state.eip - CODE));
                if o != StepOutcome::Continue {
                    break;
                }
            }
            assert_eq!(calls, [(2, 7), (2, 11), (1, 12)], "warm {warm}");
        }
    }

    #[test]
    fn runs_stop_after_exactly_max_instructions_inside_blocks() {
        for max in 1..40 {
            let mut stepped = flat32_cpu();
            let mut ran = flat32_cpu();
            let mut ram_s = FlatRam::new(1 << 20);
            let mut ram_r = FlatRam::new(1 << 20);
            ram_s.load(CODE, &PATCHING_LOOP);
            ram_r.load(CODE, &PATCHING_LOOP);
            // Warm the decode cache and the blocks with a first pass.
            ran.run(&mut ram_r, 40);
            ran.state.eip = CODE;
            ran.state.icount = 0;
            ran.state.halted = false;
            for _ in 0..40 {
                stepped.step(&mut ram_s);
            }
            stepped.state.eip = CODE;
            stepped.state.icount = 0;
            stepped.state.halted = false;
            for _ in 0..max {
                stepped.step(&mut ram_s);
            }
            ran.run(&mut ram_r, max);
            assert_eq!(ran.state.halted, max >= 32, "max {max}");
            assert_eq!(
                format!("{:?}", ran.state),
                format!("{:?}", stepped.state),
                "max {max}"
            );
        }
    }
}
