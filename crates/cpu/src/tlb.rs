//! The soft TLB: a direct-mapped cache of linear-page translations filled by
//! the page walker (Intel SDM Vol. 3A, 4.10 "Caching Translation
//! Information").
//!
//! Like a hardware TLB it may hold stale translations; it is invalidated
//! exactly when the architecture says (MOV to CR3 except global pages,
//! INVLPG, changes of CR0.PG/WP and CR4.PGE/PSE/PAE, task switches that load
//! CR3). Each entry keeps the rights the walk granted for each kind of
//! access at each privilege, so a hit is a tag compare and a bit test: the
//! layout the JIT will inline. A write right is only granted once the dirty
//! bit is set in the guest's page table, so the first write to a clean page
//! takes the walk and sets it.

/// Number of entries (a power of two).
pub const TLB_ENTRIES: usize = 1024;

/// Rights bits in [`TlbEntry::rights`].
pub mod rights {
    /// Supervisor read.
    pub const SUP_READ: u8 = 1 << 0;
    /// Supervisor write (dirty bit already set).
    pub const SUP_WRITE: u8 = 1 << 1;
    /// Supervisor instruction fetch.
    pub const SUP_EXEC: u8 = 1 << 2;
    /// User read.
    pub const USER_READ: u8 = 1 << 3;
    /// User write (dirty bit already set).
    pub const USER_WRITE: u8 = 1 << 4;
    /// User instruction fetch.
    pub const USER_EXEC: u8 = 1 << 5;
    /// A piece of a 4 MiB or 2 MiB page (INVLPG drops all its pieces).
    pub const LARGE: u8 = 1 << 6;
    /// A global page (CR4.PGE): survives CR3 writes.
    pub const GLOBAL: u8 = 1 << 7;
}

/// One cached translation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TlbEntry {
    /// Linear page number + 1 (0 = empty), so page 0 can be cached.
    pub tag: u32,
    /// Physical page base.
    pub phys: u32,
    /// [`rights`] bits.
    pub rights: u8,
    /// The page's offset in the bus's RAM slice plus one (0: not plain
    /// RAM, or not known yet): accesses that hit go straight to host memory.
    pub host: u32,
    /// Writes may use `host` too: the page holds no decoded instructions,
    /// so no write through the fast path can miss a code invalidation.
    pub host_write: bool,
}

/// Hit, miss and flush counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbStats {
    /// Lookups answered from the TLB.
    pub hits: u64,
    /// Lookups that walked the page tables.
    pub misses: u64,
    /// Whole-TLB flushes (CR3 writes, paging-mode changes).
    pub flushes: u64,
    /// Single-page invalidations (INVLPG).
    pub invlpg: u64,
}

/// The soft TLB.
#[derive(Clone, Debug)]
pub struct SoftTlb {
    entries: Box<[TlbEntry]>,
    /// Whether a [`rights::LARGE`] entry may be cached (since the last full flush).
    large_cached: bool,
    /// Counters, available to the machine and the monitor.
    pub stats: TlbStats,
}

impl Default for SoftTlb {
    fn default() -> Self {
        Self {
            entries: vec![TlbEntry::default(); TLB_ENTRIES].into_boxed_slice(),
            large_cached: false,
            stats: TlbStats::default(),
        }
    }
}

impl SoftTlb {
    /// The physical address for `linear` if an entry grants `right`.
    #[inline]
    pub fn lookup(&mut self, linear: u32, right: u8) -> Option<u32> {
        let page = linear >> 12;
        let e = &self.entries[page as usize & (TLB_ENTRIES - 1)];
        if e.tag == page + 1 && e.rights & right != 0 {
            self.stats.hits += 1;
            Some(e.phys | (linear & 0xFFF))
        } else {
            self.stats.misses += 1;
            None
        }
    }

    /// Caches a translation of the page holding `linear`.
    #[inline]
    pub fn insert(&mut self, linear: u32, phys_page: u32, rights: u8) {
        let page = linear >> 12;
        self.large_cached |= rights & rights::LARGE != 0;
        self.entries[page as usize & (TLB_ENTRIES - 1)] = TlbEntry {
            tag: page + 1,
            phys: phys_page & !0xFFF,
            rights,
            host: 0,
            host_write: false,
        };
    }

    /// The RAM offset of `linear` if a cached entry grants `right` and maps
    /// plain RAM (for a write: a page without decoded code). Counts a hit.
    #[inline]
    pub fn lookup_host(&mut self, linear: u32, right: u8, write: bool) -> Option<usize> {
        let page = linear >> 12;
        let e = &self.entries[page as usize & (TLB_ENTRIES - 1)];
        if e.tag == page + 1 && e.rights & right != 0 && e.host != 0 && (e.host_write || !write) {
            self.stats.hits += 1;
            Some((e.host - 1) as usize + (linear & 0xFFF) as usize)
        } else {
            None
        }
    }

    /// Records that the entry for `linear` (mapping physical page
    /// `phys_page`) is plain RAM at `ram_offset`; with paging off the entry
    /// is created, as an identity mapping with every right.
    #[inline]
    pub fn attach_host(
        &mut self,
        linear: u32,
        phys_page: u32,
        ram_offset: usize,
        host_write: bool,
        paging: bool,
    ) {
        let page = linear >> 12;
        let Ok(host) = u32::try_from(ram_offset + 1) else {
            return;
        };
        let e = &mut self.entries[page as usize & (TLB_ENTRIES - 1)];
        if !paging {
            let all = rights::SUP_READ
                | rights::SUP_WRITE
                | rights::SUP_EXEC
                | rights::USER_READ
                | rights::USER_WRITE
                | rights::USER_EXEC;
            *e = TlbEntry {
                tag: page + 1,
                phys: phys_page,
                rights: all,
                host,
                host_write,
            };
        } else if e.tag == page + 1 && e.phys == phys_page {
            e.host = host;
            e.host_write = host_write;
        }
    }

    /// Withdraws direct writes from every entry mapping `phys_page` (called
    /// when decoded instructions are cached from that page).
    pub fn forget_host_writes(&mut self, phys_page: u32) {
        for e in self.entries.iter_mut() {
            if e.host_write && e.phys == phys_page {
                e.host_write = false;
            }
        }
    }

    /// Drops every entry, or every non-global one.
    pub fn flush(&mut self, keep_global: bool) {
        self.stats.flushes += 1;
        if !keep_global {
            self.large_cached = false;
        }
        for e in self.entries.iter_mut() {
            if !(keep_global && e.rights & rights::GLOBAL != 0) {
                *e = TlbEntry::default();
            }
        }
    }

    /// INVLPG: drops the entry for `linear`'s page (global or not). A 4 MiB
    /// or 2 MiB page is cached per 4 KiB piece, and INVLPG of any address in
    /// it must drop every piece (SDM Vol. 3A, 4.10.4.1), so while large
    /// pages may be cached every large piece in the same 4 MiB-aligned
    /// region goes too (dropping more than needed is always allowed).
    pub fn invalidate_page(&mut self, linear: u32) {
        self.stats.invlpg += 1;
        let page = linear >> 12;
        let e = &mut self.entries[page as usize & (TLB_ENTRIES - 1)];
        if e.tag == page + 1 {
            *e = TlbEntry::default();
        }
        if self.large_cached {
            for e in self.entries.iter_mut() {
                if e.tag != 0 && e.rights & rights::LARGE != 0 && (e.tag - 1) >> 10 == page >> 10 {
                    *e = TlbEntry::default();
                }
            }
        }
    }

    /// The entry array, for generated code that inlines [`SoftTlb::lookup_host`]:
    /// [`TLB_ENTRIES`] entries indexed by `(linear >> 12) & (TLB_ENTRIES - 1)`.
    /// The array is allocated once and never moves.
    pub fn entries_ptr(&self) -> *const TlbEntry {
        self.entries.as_ptr()
    }

    /// Makes this TLB an exact copy of `other` (entries, counters), without
    /// allocating: the JIT's verify mode gives its interpreter twin the
    /// TLB the block started with, stale entries included.
    pub fn copy_from(&mut self, other: &SoftTlb) {
        self.entries.copy_from_slice(&other.entries);
        self.large_cached = other.large_cached;
        self.stats = other.stats;
    }

    /// The valid entries, for `info tlb`: (linear page base, entry).
    pub fn entries(&self) -> impl Iterator<Item = (u32, &TlbEntry)> {
        self.entries
            .iter()
            .filter(|e| e.tag != 0)
            .map(|e| ((e.tag - 1) << 12, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_needs_the_right() {
        let mut t = SoftTlb::default();
        t.insert(0x0040_1234, 0x9000, rights::SUP_READ | rights::USER_READ);
        assert_eq!(t.lookup(0x0040_1FFF, rights::USER_READ), Some(0x9FFF));
        assert_eq!(t.lookup(0x0040_1000, rights::USER_WRITE), None);
        assert_eq!(t.stats.hits, 1);
    }

    #[test]
    fn flush_keeps_global_pages_when_asked() {
        let mut t = SoftTlb::default();
        t.insert(0x1000, 0x1000, rights::SUP_READ | rights::GLOBAL);
        t.insert(0x2000, 0x2000, rights::SUP_READ);
        t.flush(true);
        assert!(t.lookup(0x1000, rights::SUP_READ).is_some());
        assert!(t.lookup(0x2000, rights::SUP_READ).is_none());
        t.invalidate_page(0x1000);
        assert!(t.lookup(0x1000, rights::SUP_READ).is_none());
    }

    #[test]
    fn invlpg_drops_every_piece_of_a_large_page() {
        let mut t = SoftTlb::default();
        let r = rights::SUP_READ | rights::LARGE;
        t.insert(0x0080_0000, 0x0040_0000, r);
        t.insert(0x0080_5000, 0x0040_5000, r);
        t.insert(0x00C0_0000, 0x0000_0000, r); // another large page
        t.insert(0x0080_6000, 0x0010_0000, rights::SUP_READ); // a 4 KiB page
        t.invalidate_page(0x0080_0123);
        assert!(t.lookup(0x0080_5000, rights::SUP_READ).is_none());
        assert!(t.lookup(0x00C0_0000, rights::SUP_READ).is_some());
        assert!(t.lookup(0x0080_6000, rights::SUP_READ).is_some());
    }
}
