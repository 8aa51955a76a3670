//! Self-modifying code: which physical pages hold translations.
//!
//! Writes to code are detected by the interpreter's decode cache: the
//! translator decodes through it, so every byte of a block lies on a
//! line its bitmap marks as code, soft-TLB entries for such pages lose
//! their direct-write right (generated code's inline stores never reach
//! them), and every write to a marked line, from either engine or a
//! device, calls `DecodeCache::invalidate`, which logs the page. The
//! engine drains that log before each block lookup and drops every block
//! on a logged page (this module), and a helper that wrote code stops its
//! block at once, so even a block that patches its own next instruction
//! continues in freshly decoded code.

use bitvec::prelude::*;
use std::collections::HashMap;

/// Translated blocks by physical page, with a bitmap for the quick test.
#[derive(Debug)]
pub struct CodePages<K> {
    bits: BitVec<u64, Lsb0>,
    keys: HashMap<u32, Vec<K>>,
}

impl<K: Clone> Default for CodePages<K> {
    fn default() -> Self {
        Self {
            bits: bitvec![u64, Lsb0; 0; 1 << 20],
            keys: HashMap::new(),
        }
    }
}

impl<K: Clone> CodePages<K> {
    /// Records that `key` was translated from physical page `page` (paddr >> 12).
    pub fn add(&mut self, page: u32, key: K) {
        self.bits.set(page as usize & 0xF_FFFF, true);
        self.keys.entry(page).or_default().push(key);
    }

    /// Whether physical page `page` holds translations.
    pub fn has(&self, page: u32) -> bool {
        self.bits[page as usize & 0xF_FFFF]
    }

    /// The keys translated from physical page `page` (some may have been
    /// dropped since).
    pub fn keys_of(&self, page: u32) -> &[K] {
        self.keys.get(&page).map_or(&[], Vec::as_slice)
    }

    /// Forgets page `page` and returns the keys translated from it.
    pub fn take(&mut self, page: u32) -> Vec<K> {
        if !self.has(page) {
            return Vec::new();
        }
        self.bits.set(page as usize & 0xF_FFFF, false);
        self.keys.remove(&page).unwrap_or_default()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.bits.fill(false);
        self.keys.clear();
    }
}
