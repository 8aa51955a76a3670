//! The generator's deterministic PRNG (xorshift64*), so a seed names the
//! same sequences on every host and every run.

/// A xorshift64* generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03);
        r.next_u64();
        r
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// 32 random bits.
    pub fn u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            0
        } else {
            ((self.next_u64() >> 32) % u64::from(n)) as u32
        }
    }
    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `pct`/100.
    pub fn chance(&mut self, pct: u32) -> bool {
        self.below(100) < pct
    }
    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }
    /// A 32-bit value biased towards the edges arithmetic gets wrong.
    pub fn interesting(&mut self) -> u32 {
        match self.below(10) {
            0 => self.pick(&[
                0,
                1,
                0xFFFF_FFFF,
                0x8000_0000,
                0x7FFF_FFFF,
                0x80,
                0x7F,
                0xFF,
                0x8000,
                0xFFFF,
            ]),
            1 => self.below(16),
            2 => self.u32() & 0xFF,
            3 => self.u32() & 0xFFFF,
            4 => self.u32() | 0x8000_0000,
            5 => 0xFFFF_FFFF - self.below(16),
            _ => self.u32(),
        }
    }
}
