//! What a translated block does to memory, as verify mode records it while
//! the block runs on the real machine: the old value of every RAM byte it
//! overwrites (so the interpreter can later be shown the memory the block
//! started from) and whether it reached anything but plain RAM (a device:
//! the block is then not verified, since nothing that touches a device may
//! run twice).
//!
//! Two writers feed the journal. Inline stores call [`note_store`] just
//! before storing (verify-mode blocks are compiled with that call). The
//! interpreter helper runs its instruction through [`JournalBus`], which
//! sends every access down the bus (its `ram()` is `None`, so the CPU's
//! direct-RAM fast path is not taken; the general path it uses instead is
//! the same semantics) and notes writes and device accesses on the way.

use oxide86_cpu::decode::Decoded;
use oxide86_cpu::Bus;

use crate::ctx::JitCtx;

/// The record of one verified block run (chained blocks included).
#[derive(Debug, Default)]
pub struct Journal {
    /// `(RAM offset, value before the write)` of every byte written, in
    /// order (a byte written twice appears twice; the first entry holds
    /// the value the block started with).
    pub old: Vec<(usize, u8)>,
    /// Physical address and width of the writes the interpreter helper made
    /// (the ones that may have invalidated decoded code).
    pub helper_writes: Vec<(u32, u32)>,
    /// The first access to something other than plain RAM (MMIO, ROM, an
    /// I/O port), if any: `(what, address)`.
    pub device: Option<(&'static str, u32)>,
}

impl Journal {
    /// Empties the journal for the next run (keeping its allocations).
    pub fn clear(&mut self) {
        self.old.clear();
        self.helper_writes.clear();
        self.device = None;
    }

    fn note_device(&mut self, what: &'static str, addr: u32) {
        self.device.get_or_insert((what, addr));
    }
}

/// The bytes a block run overwrote, with the values they had before it,
/// sorted by RAM offset: the journal folded for lookups.
#[derive(Debug, Default)]
pub struct Undo(Vec<(usize, u8)>);

impl Undo {
    /// Folds `journal` (the first value noted for a byte is the old one).
    pub fn rebuild(&mut self, journal: &Journal) {
        self.0.clear();
        self.0.extend_from_slice(&journal.old);
        // Stable: of equal offsets the first noted stays first, and stays.
        self.0.sort_by_key(|&(off, _)| off);
        self.0.dedup_by_key(|&mut (off, _)| off);
    }

    /// The value the byte at RAM offset `off` had before the run, if the run wrote it.
    pub fn get(&self, off: usize) -> Option<u8> {
        let i = self.0.binary_search_by_key(&off, |&(o, _)| o).ok()?;
        Some(self.0[i].1)
    }

    /// Puts back, in `bytes` read at RAM offset `off`, the old values of
    /// the bytes the run wrote.
    pub fn apply(&self, off: usize, bytes: &mut [u8]) {
        let first = self.0.partition_point(|&(o, _)| o < off);
        let end = off + bytes.len();
        for &(o, old) in self.0[first..].iter().take_while(|&&(o, _)| o < end) {
            bytes[o - off] = old;
        }
    }

    /// Whether the run wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The offsets written, ascending.
    pub fn offsets(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().map(|&(off, _)| off)
    }
}

/// Called by verify-mode blocks before an inline store of `size` bytes at
/// host address `addr` (already bounds-checked against guest RAM): notes
/// the bytes about to be overwritten.
///
/// # Safety
/// `ctx` is the block's context with `journal` pointing to a live
/// [`Journal`] not otherwise borrowed while the block runs, and
/// `addr..addr + size` lies inside the bus's RAM slice at `ctx.ram`.
pub(crate) unsafe extern "C" fn note_store(ctx: *mut JitCtx, addr: *const u8, size: u32) {
    // SAFETY: see the function's contract.
    let ctx = unsafe { &*ctx };
    if ctx.journal.is_null() {
        return;
    }
    // SAFETY: as above: the dispatcher set `journal` to its verifier's
    // journal for this run and holds no other reference to it meanwhile.
    let journal = unsafe { &mut *(ctx.journal as *mut Journal) };
    let base = addr as usize - ctx.ram as usize;
    for i in 0..size as usize {
        // SAFETY: the block checked the whole access against the RAM bounds.
        let old = unsafe { *addr.add(i) };
        journal.old.push((base + i, old));
    }
}

/// The verify-mode interpreter helper: [`crate::helpers::interp_one`] with
/// the bus wrapped in a [`JournalBus`].
///
/// # Safety
/// As [`crate::helpers::interp_one`]; `ctx.journal` points to a live
/// [`Journal`] not otherwise borrowed while the block runs.
pub(crate) unsafe extern "C" fn interp_one_journaled<B: Bus>(
    ctx: *mut JitCtx,
    d: *const Decoded,
    next: u32,
) -> u32 {
    // SAFETY: see the function's contract.
    let c = unsafe { &mut *ctx };
    // SAFETY: as above.
    let (bus, journal) = unsafe { (&mut *(c.bus as *mut B), &mut *(c.journal as *mut Journal)) };
    let mut wrapped = JournalBus {
        inner: bus,
        journal,
    };
    // SAFETY: the same context, with a bus of the type the helper casts to.
    unsafe { crate::helpers::interp_one_on(c, d, next, &mut wrapped) }
}

/// The real bus as the interpreter helper sees it in verify mode: every
/// access is forwarded unchanged, RAM writes are journaled and anything
/// that is not plain RAM is noted as a device access.
pub(crate) struct JournalBus<'a, B: Bus> {
    /// The machine's bus.
    pub inner: &'a mut B,
    /// Where the block run's writes go.
    pub journal: &'a mut Journal,
}

impl<B: Bus> JournalBus<'_, B> {
    /// The RAM offset of physical `addr`, if it is plain RAM.
    fn ram_offset(&mut self, addr: u32) -> Option<usize> {
        let base = self.inner.ram_page_offset(addr)?;
        Some(base + (addr & 0xFFF) as usize)
    }

    fn note_read(&mut self, addr: u32) {
        if self.ram_offset(addr).is_none() {
            self.journal.note_device("memory read", addr);
        }
    }

    /// Journals a write of `size` bytes at `addr` before it happens (the
    /// CPU never splits a wide access across a page).
    fn note_write(&mut self, addr: u32, size: u32) {
        let Some(off) = self.ram_offset(addr) else {
            self.journal.note_device("memory write", addr);
            return;
        };
        let ram = self.inner.ram().unwrap_or_default();
        for i in 0..size as usize {
            let old = ram.get(off + i).copied().unwrap_or(0xFF);
            self.journal.old.push((off + i, old));
        }
        self.journal.helper_writes.push((addr, size));
    }
}

impl<B: Bus> Bus for JournalBus<'_, B> {
    fn read_u8(&mut self, addr: u32) -> u8 {
        self.note_read(addr);
        self.inner.read_u8(addr)
    }
    fn write_u8(&mut self, addr: u32, value: u8) {
        self.note_write(addr, 1);
        self.inner.write_u8(addr, value);
    }
    fn read_u16(&mut self, addr: u32) -> u16 {
        self.note_read(addr);
        self.inner.read_u16(addr)
    }
    fn read_u32(&mut self, addr: u32) -> u32 {
        self.note_read(addr);
        self.inner.read_u32(addr)
    }
    fn write_u16(&mut self, addr: u32, value: u16) {
        self.note_write(addr, 2);
        self.inner.write_u16(addr, value);
    }
    fn write_u32(&mut self, addr: u32, value: u32) {
        self.note_write(addr, 4);
        self.inner.write_u32(addr, value);
    }
    fn ram(&mut self) -> Option<&mut [u8]> {
        None
    }
    fn ram_page_offset(&mut self, paddr: u32) -> Option<usize> {
        self.inner.ram_page_offset(paddr)
    }
    fn memory_map_generation(&self) -> u64 {
        self.inner.memory_map_generation()
    }
    fn sync_time(&mut self, icount: u64) {
        self.inner.sync_time(icount);
    }
    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        self.journal.note_device("port read", u32::from(port));
        self.inner.io_read(port, size)
    }
    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        self.journal.note_device("port write", u32::from(port));
        self.inner.io_write(port, size, value);
    }
    fn take_nmi(&mut self) -> bool {
        self.inner.take_nmi()
    }
    fn interrupt_pending(&mut self) -> bool {
        self.inner.interrupt_pending()
    }
    fn interrupt_ack(&mut self) -> Option<u8> {
        self.journal.note_device("interrupt acknowledge", 0);
        self.inner.interrupt_ack()
    }
    fn apic_base_changed(&mut self, value: u64) {
        self.journal.note_device("APIC base write", value as u32);
        self.inner.apic_base_changed(value);
    }
    fn fpu_error(&mut self, asserted: bool) {
        self.journal.note_device("FERR#", u32::from(asserted));
        self.inner.fpu_error(asserted);
    }
}
