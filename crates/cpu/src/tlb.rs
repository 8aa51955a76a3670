//! The soft TLB: a direct-mapped cache of linear-page translations filled by
//! the page walker (Intel SDM Vol. 3A, 4.10 "Caching Translation
//! Information").
//!
//! Like a hardware TLB it may hold stale translations; it is invalidated
//! exactly when the architecture says (MOV to CR3 except global pages,
//! INVLPG, changes of CR0.PG/WP and CR4.PGE/PSE/PAE, task switches that load
//! CR3). Each entry keeps the rights the walk granted for each kind of
//! access at each privilege, so a hit is a tag compare and a bit test. A
//! write right is only granted once the dirty bit is set in the guest's
//! page table, so the first write to a clean page takes the walk and sets it.
//!
//! For the JIT each entry also carries one comparator per kind of direct
//! access ([`TlbEntry::fast`]): the linear page base when that access may go
//! straight to host RAM, else a value no page base equals. Generated code
//! compares it with the page of the access's *last* byte, which also
//! rejects an access that crosses into the next page, and adds
//! [`TlbEntry::addend`] to reach RAM: two loads and a compare.

/// Number of entries (a power of two). 4096 pages (16 MiB) keep the
/// kernel's XZ decompressor, which reads its dictionary all over a
/// window of several MiB, from missing every few hundred instructions;
/// flushes stay cheap because they visit only the entries in use
/// ([`SoftTlb`]'s `used` list).
pub const TLB_ENTRIES: usize = 4096;

/// The most slots `SoftTlb` lists as used before it stops listing and
/// scans every entry instead, until the next full flush.
const USED_LIST_MAX: usize = TLB_ENTRIES / 4;

/// Rights bits of an entry ([`TlbEntry::rights`]).
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

/// Indices of [`TlbEntry::fast`]: one comparator per direct access kind.
pub mod fast {
    /// Supervisor read.
    pub const SUP_READ: usize = 0;
    /// Supervisor write.
    pub const SUP_WRITE: usize = 1;
    /// User read.
    pub const USER_READ: usize = 2;
    /// User write.
    pub const USER_WRITE: usize = 3;

    /// The comparator index for a data access.
    pub const fn index(write: bool, user: bool) -> usize {
        match (write, user) {
            (false, false) => SUP_READ,
            (true, false) => SUP_WRITE,
            (false, true) => USER_READ,
            (true, true) => USER_WRITE,
        }
    }
}

/// A [`TlbEntry::fast`] comparator no access matches (page bases have
/// their low 12 bits clear).
pub const NO_FAST: u32 = 1;

/// Bits of [`TlbEntry::bits`] above the physical page base.
pub mod bits {
    /// The rights ([`super::rights`]) in the low byte.
    pub const RIGHTS: u32 = 0xFF;
    /// The page is plain RAM at the offset [`super::TlbEntry::addend`] gives.
    pub const HOST: u32 = 1 << 8;
    /// Writes may go to RAM directly too: the page holds no decoded
    /// instructions, so no direct write can miss a code invalidation.
    pub const HOST_WRITE: u32 = 1 << 9;
}

/// One cached translation: 32 bytes, so generated code indexes the array
/// with a shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct TlbEntry {
    /// Per [`fast`] index: the linear page base when that access may use
    /// host RAM directly (the page is plain RAM, the right is granted,
    /// and for writes the page holds no decoded code), else [`NO_FAST`].
    pub fast: [u32; 4],
    /// The page's offset in the bus's RAM minus its linear base (wrapping):
    /// RAM offset = `addend + linear` when a comparator matches. The whole
    /// page lies inside the bus's RAM slice.
    pub addend: u64,
    /// Linear page number + 1 (0 = empty), so page 0 can be cached.
    /// Public for generated code, which checks fetch rights by itself
    /// where no comparator of [`TlbEntry::fast`] serves.
    pub tag: u32,
    /// Physical page base | [`bits`].
    pub bits: u32,
}

// Generated code scales the index by a shift.
const _: () = assert!(std::mem::size_of::<TlbEntry>() == 32);

/// An empty entry.
const EMPTY: TlbEntry = TlbEntry {
    fast: [NO_FAST; 4],
    addend: 0,
    tag: 0,
    bits: 0,
};

impl Default for TlbEntry {
    fn default() -> Self {
        EMPTY
    }
}

impl TlbEntry {
    /// A translation of linear page `page` (page number) without a RAM offset.
    fn new(page: u32, phys_page: u32, rights: u8) -> Self {
        Self {
            fast: [NO_FAST; 4],
            addend: 0,
            tag: page + 1,
            bits: phys_page & !0xFFF | u32::from(rights),
        }
    }

    /// The physical page base.
    pub fn phys(&self) -> u32 {
        self.bits & !0xFFF
    }

    /// The [`rights`] bits.
    pub fn rights(&self) -> u8 {
        (self.bits & bits::RIGHTS) as u8
    }

    /// The page's offset in the bus's RAM, when it is plain RAM.
    pub fn host_offset(&self) -> Option<usize> {
        (self.bits & bits::HOST != 0).then(|| {
            let base = (self.tag.wrapping_sub(1) as u64) << 12;
            self.addend.wrapping_add(base) as usize
        })
    }

    /// Whether writes may go to RAM directly (see [`bits::HOST_WRITE`]).
    pub fn host_write(&self) -> bool {
        self.bits & bits::HOST_WRITE != 0
    }

    /// Recomputes the comparators from the tag, rights and host bits.
    fn refresh_fast(&mut self) {
        let base = self.tag.wrapping_sub(1) << 12;
        let host = self.tag != 0 && self.bits & bits::HOST != 0;
        let writable = self.bits & bits::HOST_WRITE != 0;
        for (i, right, write) in [
            (fast::SUP_READ, rights::SUP_READ, false),
            (fast::SUP_WRITE, rights::SUP_WRITE, true),
            (fast::USER_READ, rights::USER_READ, false),
            (fast::USER_WRITE, rights::USER_WRITE, true),
        ] {
            let ok = host && self.rights() & right != 0 && (writable || !write);
            self.fast[i] = if ok { base } else { NO_FAST };
        }
    }

    /// Sets the RAM offset of the page (and whether writes may use it).
    fn set_host(&mut self, ram_offset: usize, host_write: bool) {
        let base = u64::from(self.tag.wrapping_sub(1)) << 12;
        self.addend = (ram_offset as u64).wrapping_sub(base);
        self.bits |= bits::HOST;
        if host_write {
            self.bits |= bits::HOST_WRITE;
        } else {
            self.bits &= !bits::HOST_WRITE;
        }
        self.refresh_fast();
    }
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
    /// The slots that may hold an entry (every non-empty one is listed;
    /// some listed ones may be empty again), so that flushes, INVLPG of a
    /// large page and `forget_host_writes` visit only those; `None` once
    /// more than [`USED_LIST_MAX`] were listed: visit every slot.
    used: Option<Vec<u32>>,
    /// Whether a [`rights::LARGE`] entry may be cached (since the last full flush).
    large_cached: bool,
    /// Counters, available to the machine and the monitor.
    pub stats: TlbStats,
}

impl Default for SoftTlb {
    fn default() -> Self {
        Self {
            entries: vec![EMPTY; TLB_ENTRIES].into_boxed_slice(),
            used: Some(Vec::with_capacity(USED_LIST_MAX)),
            large_cached: false,
            stats: TlbStats::default(),
        }
    }
}

impl SoftTlb {
    /// The entry `linear` indexes.
    #[inline]
    fn slot(&mut self, linear: u32) -> &mut TlbEntry {
        &mut self.entries[Self::index(linear)]
    }

    #[inline]
    fn index(linear: u32) -> usize {
        (linear >> 12) as usize & (TLB_ENTRIES - 1)
    }

    /// Notes that the empty slot for `linear` is about to be filled.
    #[inline]
    fn note_used(&mut self, linear: u32) {
        let i = Self::index(linear);
        if self.entries[i].tag != 0 {
            return;
        }
        if let Some(list) = &mut self.used {
            if list.len() < USED_LIST_MAX {
                list.push(i as u32);
            } else {
                self.used = None;
            }
        }
    }

    /// Calls `f` on every slot that may hold an entry.
    fn for_each_used(&mut self, mut f: impl FnMut(&mut TlbEntry)) {
        match &self.used {
            Some(list) => {
                for &i in list {
                    f(&mut self.entries[i as usize]);
                }
            }
            None => self.entries.iter_mut().for_each(f),
        }
    }

    /// The physical address for `linear` if an entry grants `right`.
    #[inline]
    pub fn lookup(&mut self, linear: u32, right: u8) -> Option<u32> {
        let page = linear >> 12;
        let e = *self.slot(linear);
        if e.tag == page + 1 && e.rights() & right != 0 {
            self.stats.hits += 1;
            Some(e.phys() | (linear & 0xFFF))
        } else {
            self.stats.misses += 1;
            None
        }
    }

    /// Caches a translation of the page holding `linear`.
    #[inline]
    pub fn insert(&mut self, linear: u32, phys_page: u32, rights: u8) {
        self.large_cached |= rights & rights::LARGE != 0;
        self.note_used(linear);
        *self.slot(linear) = TlbEntry::new(linear >> 12, phys_page, rights);
    }

    /// The RAM offset of `linear` if a cached entry grants `right` and maps
    /// plain RAM (for a write: a page without decoded code). Counts a hit.
    #[inline]
    pub fn lookup_host(&mut self, linear: u32, right: u8, write: bool) -> Option<usize> {
        let page = linear >> 12;
        let e = *self.slot(linear);
        if e.tag == page + 1 && e.rights() & right != 0 && (e.host_write() || !write) {
            let host = e.host_offset()?;
            self.stats.hits += 1;
            Some(host + (linear & 0xFFF) as usize)
        } else {
            None
        }
    }

    /// Records that the entry for `linear` (mapping physical page
    /// `phys_page`) is plain RAM at `ram_offset`, a page that lies wholly
    /// inside the bus's RAM slice (generated code relies on it); with
    /// paging off the entry is created, as an identity mapping with every
    /// right.
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
        if !paging {
            self.note_used(linear);
        }
        let e = self.slot(linear);
        if !paging {
            let all = rights::SUP_READ
                | rights::SUP_WRITE
                | rights::SUP_EXEC
                | rights::USER_READ
                | rights::USER_WRITE
                | rights::USER_EXEC;
            *e = TlbEntry::new(page, phys_page, all);
        } else if !(e.tag == page + 1 && e.phys() == phys_page & !0xFFF) {
            return;
        }
        e.set_host(ram_offset, host_write);
    }

    /// Withdraws direct writes from every entry mapping `phys_page` (called
    /// when decoded instructions are cached from that page).
    pub fn forget_host_writes(&mut self, phys_page: u32) {
        self.for_each_used(|e| {
            if e.host_write() && e.phys() == phys_page {
                e.bits &= !bits::HOST_WRITE;
                e.refresh_fast();
            }
        });
    }

    /// Drops every entry, or every non-global one.
    pub fn flush(&mut self, keep_global: bool) {
        self.stats.flushes += 1;
        if !keep_global {
            self.large_cached = false;
        }
        self.for_each_used(|e| {
            if !(keep_global && e.rights() & rights::GLOBAL != 0) {
                *e = EMPTY;
            }
        });
        // List what survived (global entries).
        let entries = &self.entries;
        match &mut self.used {
            Some(list) => list.retain(|&i| entries[i as usize].tag != 0),
            None => {
                let kept = (0..TLB_ENTRIES as u32).filter(|&i| entries[i as usize].tag != 0);
                let list: Vec<u32> = kept.take(USED_LIST_MAX + 1).collect();
                self.used = (list.len() <= USED_LIST_MAX).then_some(list);
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
        let e = self.slot(linear);
        if e.tag == page + 1 {
            *e = EMPTY;
        }
        if self.large_cached {
            self.for_each_used(|e| {
                if e.tag != 0 && e.rights() & rights::LARGE != 0 && (e.tag - 1) >> 10 == page >> 10
                {
                    *e = EMPTY;
                }
            });
        }
    }

    /// The entry array, for generated code that inlines the direct
    /// accesses ([`TlbEntry::fast`]): [`TLB_ENTRIES`] entries indexed by
    /// `(linear >> 12) & (TLB_ENTRIES - 1)`. The array is allocated once
    /// and never moves.
    pub fn entries_ptr(&self) -> *const TlbEntry {
        self.entries.as_ptr()
    }

    /// Makes this TLB an exact copy of `other` (entries, counters), without
    /// allocating: the JIT's verify mode gives its interpreter twin the
    /// TLB the block started with, stale entries included.
    pub fn copy_from(&mut self, other: &SoftTlb) {
        self.entries.copy_from_slice(&other.entries);
        match (&mut self.used, &other.used) {
            (Some(mine), Some(theirs)) => {
                mine.clear();
                mine.extend_from_slice(theirs);
            }
            (mine, theirs) => mine.clone_from(theirs),
        }
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
    fn fast_comparators_follow_rights_host_and_code() {
        let mut t = SoftTlb::default();
        let rw = rights::SUP_READ | rights::SUP_WRITE | rights::USER_READ;
        t.insert(0x0040_1234, 0x9000, rw);
        let e = |t: &SoftTlb| *t.entries().next().unwrap().1;
        // No RAM offset yet: no direct access of any kind.
        assert_eq!(e(&t).fast, [NO_FAST; 4]);
        t.attach_host(0x0040_1234, 0x9000, 0x9000, true, true);
        let x = e(&t);
        assert_eq!(x.fast[fast::SUP_READ], 0x0040_1000);
        assert_eq!(x.fast[fast::SUP_WRITE], 0x0040_1000);
        assert_eq!(x.fast[fast::USER_READ], 0x0040_1000);
        assert_eq!(x.fast[fast::USER_WRITE], NO_FAST);
        assert_eq!(x.addend.wrapping_add(0x0040_1234) as usize, 0x9234);
        assert_eq!(x.host_offset(), Some(0x9000));
        assert_eq!(
            t.lookup_host(0x0040_1234, rights::SUP_WRITE, true),
            Some(0x9234)
        );
        // Code cached from the page: reads stay direct, writes do not.
        t.forget_host_writes(0x9000);
        let x = e(&t);
        assert_eq!(x.fast[fast::SUP_READ], 0x0040_1000);
        assert_eq!(x.fast[fast::SUP_WRITE], NO_FAST);
        assert_eq!(t.lookup_host(0x0040_1234, rights::SUP_WRITE, true), None);
        // An entry for another physical page is not given a RAM offset.
        t.attach_host(0x0040_1234, 0xA000, 0xA000, true, true);
        assert_eq!(e(&t).host_offset(), Some(0x9000));
        t.invalidate_page(0x0040_1000);
        assert!(t.entries().next().is_none());
    }

    #[test]
    fn paging_off_entries_are_identity_with_every_right() {
        let mut t = SoftTlb::default();
        t.attach_host(0x0, 0x0, 0x0, true, false);
        let (base, e) = t.entries().next().unwrap();
        assert_eq!(base, 0);
        assert_eq!(e.fast, [0; 4]);
        assert_eq!(e.addend, 0);
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

    /// Flushes visit only the listed slots, or all of them once the list
    /// overflowed: either way nothing but global entries survives, and
    /// the next flush (after the list was rebuilt) still finds them.
    #[test]
    fn flushes_clear_every_entry_whether_listed_or_not() {
        for pages in [10u32, USED_LIST_MAX as u32 + 50] {
            let mut t = SoftTlb::default();
            for p in 0..pages {
                // Every other one global; refill some slots after INVLPG.
                let g = if p % 2 == 0 { rights::GLOBAL } else { 0 };
                t.insert(p << 12, p << 12, rights::SUP_READ | g);
                if p % 7 == 0 {
                    t.invalidate_page(p << 12);
                    t.insert(p << 12, p << 12, rights::SUP_READ | g);
                }
            }
            t.flush(true);
            assert_eq!(
                t.entries().count(),
                pages.div_ceil(2) as usize,
                "{pages} pages"
            );
            assert!(t.entries().all(|(_, e)| e.rights() & rights::GLOBAL != 0));
            t.forget_host_writes(0);
            t.flush(false);
            assert_eq!(t.entries().count(), 0, "{pages} pages");
            // Later fills are listed again.
            t.insert(0x5000, 0x5000, rights::SUP_READ);
            t.flush(false);
            assert_eq!(t.entries().count(), 0);
        }
    }

    /// `forget_host_writes` reaches entries filled with paging off too.
    #[test]
    fn host_writes_are_withdrawn_from_listed_entries() {
        let mut t = SoftTlb::default();
        t.attach_host(0x7000, 0x7000, 0x7000, true, false);
        assert!(t.lookup_host(0x7000, rights::SUP_WRITE, true).is_some());
        t.forget_host_writes(0x7000);
        assert!(t.lookup_host(0x7000, rights::SUP_WRITE, true).is_none());
        assert!(t.lookup_host(0x7000, rights::SUP_READ, false).is_some());
    }
}
