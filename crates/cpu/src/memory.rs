//! The CPU's memory path: segment checks, linear address, translation to
//! physical, and the access itself (Intel SDM Vol. 3A, 3.4 "Logical and
//! Linear Addresses", 5.3 "Limit Checking", 5.4 "Type Checking").
//!
//! Every data access of the interpreter goes through here, so the
//! decoded-instruction cache sees every write to code.

use crate::bus::Bus;
use crate::cpu::{Cpu, DataWindow};
use crate::debug::watch;
use crate::exception::Exception;
use crate::model::CpuModel;
use crate::state::{cr0, eflags, seg_flags, SegReg};
use crate::tlb::rights;

/// What an access does with the bytes (selects the type and paging checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}

/// The soft-TLB right an access needs.
#[inline]
fn right_for(access: Access, user: bool) -> u8 {
    match (access, user) {
        (Access::Read, false) => rights::SUP_READ,
        (Access::Write, false) => rights::SUP_WRITE,
        (Access::Execute, false) => rights::SUP_EXEC,
        (Access::Read, true) => rights::USER_READ,
        (Access::Write, true) => rights::USER_WRITE,
        (Access::Execute, true) => rights::USER_EXEC,
    }
}

/// The exception a segment-limit or type violation raises: #SS(0) for the
/// stack segment, #GP(0) otherwise; the 286 raises #GP for every segment.
#[inline]
fn segment_fault(model: CpuModel, seg: SegReg) -> Exception {
    if seg == SegReg::Ss && model != CpuModel::I286 {
        Exception::StackFault(0)
    } else {
        Exception::GeneralProtection(0)
    }
}

impl Cpu {
    /// Checks an access of `size` bytes at `offset` in `seg` and returns its
    /// linear address.
    #[inline]
    pub fn linear(
        &self,
        seg: SegReg,
        offset: u32,
        size: u32,
        access: Access,
    ) -> Result<u32, Exception> {
        let s = &self.state.seg[seg as usize];
        let model = self.state.model;
        if model == CpuModel::I8086 {
            return Ok(s.base.wrapping_add(offset));
        }
        let last = u64::from(offset) + u64::from(size) - 1;
        if !self.state.protected_mode() {
            if last > u64::from(s.limit) {
                return Err(segment_fault(model, seg));
            }
            return Ok(s.base.wrapping_add(offset));
        }
        // Protected mode: a null selector's cache is marked not present.
        if s.flags & seg_flags::PRESENT == 0 {
            return Err(segment_fault(model, seg));
        }
        let code = s.flags & seg_flags::CODE != 0;
        let type_ok = match access {
            Access::Read => !code || s.flags & seg_flags::RW != 0,
            Access::Write => !code && s.flags & seg_flags::RW != 0,
            Access::Execute => code,
        };
        let in_limit = if !code && s.flags & seg_flags::DC != 0 {
            // Expand-down: valid offsets are limit+1 ..= 0xFFFF or 0xFFFFFFFF.
            let top = if s.is_32bit() { 0xFFFF_FFFFu64 } else { 0xFFFF };
            u64::from(offset) > u64::from(s.limit) && last <= top
        } else {
            last <= u64::from(s.limit)
        };
        if !type_ok || !in_limit {
            return Err(segment_fault(model, seg));
        }
        Ok(s.base.wrapping_add(offset))
    }

    /// Whether ordinary accesses are user-mode accesses for paging (CPL 3).
    #[inline]
    pub fn user_access(&self) -> bool {
        self.state.cpl() == 3
    }

    /// Translates a linear address to physical through the soft TLB and,
    /// on a miss, the page walker (identity while CR0.PG is clear).
    #[inline]
    pub fn translate<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        linear: u32,
        access: Access,
        user: bool,
    ) -> Result<u32, Exception> {
        if self.state.cr0 & cr0::PG == 0 {
            return Ok(linear);
        }
        if let Some(p) = self.tlb.lookup(linear, right_for(access, user)) {
            return Ok(p);
        }
        self.walk(bus, linear, access, user)
    }

    /// [`Cpu::translate`] through the soft TLB only: `None` on a miss
    /// (nothing is walked, so nothing in memory changes).
    #[inline]
    pub fn translate_cached(&mut self, linear: u32, access: Access, user: bool) -> Option<u32> {
        if self.state.cr0 & cr0::PG == 0 {
            return Some(linear);
        }
        self.tlb.lookup(linear, right_for(access, user))
    }

    /// Reads `size` (1, 2 or 4) bytes at a linear address with the current privilege.
    #[inline]
    pub fn read_linear<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        linear: u32,
        size: u32,
    ) -> Result<u32, Exception> {
        let user = self.user_access();
        if linear & size.wrapping_sub(1) != 0 && self.alignment_check(user) {
            return Err(Exception::AlignmentCheck);
        }
        self.read_linear_as(bus, linear, size, user)
    }

    /// Whether misaligned data accesses of the current privilege can raise
    /// #AC(0) now (see [`Cpu::alignment_check`]); the bulk string path
    /// leaves every element to the general path then.
    #[inline]
    pub(crate) fn alignment_checks_armed(&self) -> bool {
        self.alignment_check(self.user_access())
    }

    /// The RAM offset of `linear` for a data access of the current
    /// privilege, when the soft TLB already maps its page to plain RAM with
    /// the right the access needs (for a write: a page holding no decoded
    /// instructions, so no code invalidation can be missed); counts the TLB
    /// hit, as the RAM fast path does. Nothing else: no walk, no fault.
    #[inline]
    pub(crate) fn data_host(&mut self, linear: u32, write: bool) -> Option<usize> {
        let access = if write { Access::Write } else { Access::Read };
        let right = right_for(access, self.user_access());
        self.tlb.lookup_host(linear, right, write)
    }

    /// Whether a misaligned data access raises #AC(0): CR0.AM, EFLAGS.AC and
    /// CPL 3 (SDM Vol. 3A, 6.15 "Interrupt 17"). Callers test the
    /// misalignment first, so aligned accesses never get here.
    #[cold]
    fn alignment_check(&self, user: bool) -> bool {
        user && self.state.cr0 & cr0::AM != 0 && self.state.eflags & eflags::AC != 0
    }

    /// Reads with supervisor privilege: descriptor tables, the IDT and the
    /// TSS are implicit supervisor accesses whatever the CPL (SDM Vol. 3A, 4.6).
    #[inline]
    pub fn read_linear_system<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        linear: u32,
        size: u32,
    ) -> Result<u32, Exception> {
        self.read_linear_as(bus, linear, size, false)
    }

    /// Writes with supervisor privilege (see [`Cpu::read_linear_system`]).
    #[inline]
    pub fn write_linear_system<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        linear: u32,
        size: u32,
        value: u32,
    ) -> Result<(), Exception> {
        self.write_linear_as(bus, linear, size, value, false)
    }

    /// Writes `size` (1, 2 or 4) bytes at a linear address with the current privilege.
    #[inline]
    pub fn write_linear<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        linear: u32,
        size: u32,
        value: u32,
    ) -> Result<(), Exception> {
        let user = self.user_access();
        if linear & size.wrapping_sub(1) != 0 && self.alignment_check(user) {
            return Err(Exception::AlignmentCheck);
        }
        self.write_linear_as(bus, linear, size, value, user)
    }

    #[inline]
    fn read_linear_as<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        linear: u32,
        size: u32,
        user: bool,
    ) -> Result<u32, Exception> {
        if self.debug_watch & watch::DATA != 0 {
            self.note_data_access(linear, size, false);
        }
        if (linear & 0xFFF) + size > 0x1000 {
            self.note_bus_event();
            let mut v = 0;
            for i in 0..size {
                let p = self.translate(bus, linear.wrapping_add(i), Access::Read, user)?;
                v |= u32::from(bus.read_u8(p)) << (8 * i);
            }
            return Ok(v);
        }
        // Fast path: a TLB entry that maps plain RAM.
        if let Some(off) = self
            .tlb
            .lookup_host(linear, right_for(Access::Read, user), false)
        {
            if let Some(b) = bus.ram().and_then(|ram| ram.get(off..off + size as usize)) {
                return Ok(match size {
                    1 => u32::from(b[0]),
                    2 => u32::from(u16::from_le_bytes([b[0], b[1]])),
                    _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                });
            }
        }
        self.note_bus_event();
        let p = self.translate(bus, linear, Access::Read, user)?;
        if !self.learn_host(bus, linear, p) {
            // A device register may move with time (the local APIC's
            // current count): devices catch up to this instruction first,
            // as before a port access.
            bus.sync_time(self.state.icount);
        }
        Ok(match size {
            1 => u32::from(bus.read_u8(p)),
            2 => u32::from(bus.read_u16(p)),
            _ => bus.read_u32(p),
        })
    }

    /// After a slow-path translation: if the physical page is plain RAM,
    /// let the TLB entry point at it (writes only while the page holds no
    /// decoded instructions). Returns whether it is plain RAM.
    #[inline(never)]
    pub(crate) fn learn_host<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        linear: u32,
        paddr: u32,
    ) -> bool {
        // Generated code trusts an entry's RAM offset without a bounds
        // check, so the whole page must lie inside the RAM slice.
        let ram_len = bus.ram().map_or(0, |r| r.len());
        if let Some(offset) = bus
            .ram_page_offset(paddr)
            .filter(|o| o.checked_add(0x1000).is_some_and(|end| end <= ram_len))
        {
            let host_write = !self.icache.page_has_code(paddr);
            let paging = self.state.cr0 & cr0::PG != 0;
            self.tlb
                .attach_host(linear, paddr & !0xFFF, offset, host_write, paging);
            return true;
        }
        false
    }

    /// Drops cached RAM offsets when the board's memory map changed (A20).
    pub(crate) fn sync_memory_map<B: Bus + ?Sized>(&mut self, bus: &mut B) {
        let g = bus.memory_map_generation();
        if g != self.memory_map_generation {
            self.memory_map_generation = g;
            self.tlb.flush(false);
            // The same physical address may now read different bytes (A20,
            // PAM shadowing): decoded instructions and translations go too
            // (the flush is logged for the JIT).
            self.icache.flush();
        }
    }

    /// Either every byte is written or (on a fault) none is.
    #[inline]
    pub(crate) fn write_linear_as<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        linear: u32,
        size: u32,
        value: u32,
        user: bool,
    ) -> Result<(), Exception> {
        if self.debug_watch & watch::DATA != 0 {
            self.note_data_access(linear, size, true);
        }
        if (linear & 0xFFF) + size > 0x1000 {
            self.note_bus_event();
            let mut phys = [0u32; 4];
            for i in 0..size {
                phys[i as usize] =
                    self.translate(bus, linear.wrapping_add(i), Access::Write, user)?;
            }
            for i in 0..size {
                self.write_physical_u8(bus, phys[i as usize], (value >> (8 * i)) as u8);
            }
            return Ok(());
        }
        if let Some(off) = self
            .tlb
            .lookup_host(linear, right_for(Access::Write, user), true)
        {
            if let Some(b) = bus
                .ram()
                .and_then(|ram| ram.get_mut(off..off + size as usize))
            {
                // Constant-length copies (a variable one is a memmove call).
                let v = value.to_le_bytes();
                match b {
                    [b0] => *b0 = v[0],
                    [b0, b1] => [*b0, *b1] = [v[0], v[1]],
                    [b0, b1, b2, b3] => [*b0, *b1, *b2, *b3] = v,
                    _ => b.copy_from_slice(&v[..b.len().min(4)]),
                }
                return Ok(());
            }
        }
        self.note_bus_event();
        let p = self.translate(bus, linear, Access::Write, user)?;
        if !self.learn_host(bus, linear, p) {
            bus.sync_time(self.state.icount);
        }
        match size {
            1 => bus.write_u8(p, value as u8),
            2 => bus.write_u16(p, value as u16),
            _ => bus.write_u32(p, value),
        }
        if self.icache.is_code(p, size) {
            self.icache.invalidate(p, size);
        }
        Ok(())
    }

    #[inline]
    fn write_physical_u8<B: Bus + ?Sized>(&mut self, bus: &mut B, p: u32, value: u8) {
        bus.write_u8(p, value);
        if self.icache.is_code(p, 1) {
            self.icache.invalidate(p, 1);
        }
    }

    /// The RAM fast path of [`Cpu::read_mem`] and [`Cpu::write_mem`], all
    /// inline: the host offset of `size` bytes at `seg:offset` when the
    /// access passes the segment checks, is aligned (so #AC cannot apply),
    /// stays in one page, no data breakpoint is armed and the soft TLB maps
    /// the page to plain RAM with the needed right (counted as a TLB hit).
    /// `None` sends the access down the general path, which repeats every
    /// check and raises the fault if there is one.
    ///
    /// During a quiet instruction of [`Cpu::run`] the answer comes from a
    /// [`DataWindow`] when the offsets fall in one, and fills one otherwise.
    #[inline(always)]
    fn ram_fast_path(&mut self, seg: SegReg, offset: u32, size: u32, write: bool) -> Option<usize> {
        if let Some(host) = self.window_hit(seg, offset, size, write) {
            return Some(host);
        }
        let slot = seg as usize * 2 + usize::from(write);
        if self.state.model == CpuModel::I8086
            || self.debug_watch & watch::DATA != 0
            || !matches!(size, 1 | 2 | 4)
        {
            return None;
        }
        let access = if write { Access::Write } else { Access::Read };
        let linear = self.linear(seg, offset, size, access).ok()?;
        if linear & size.wrapping_sub(1) != 0 || (linear & 0xFFF) + size > 0x1000 {
            return None;
        }
        let user = self.user_access();
        let host = self
            .tlb
            .lookup_host(linear, right_for(access, user), write)?;
        if self.data_fast {
            self.fill_data_window(slot, seg, offset, linear, host, user);
        }
        Some(host)
    }

    /// The RAM offset of `size` bytes at `seg:offset` when a quiet
    /// instruction of a quiet run accesses them inside a [`DataWindow`]
    /// (counted as the soft-TLB hit the general path would count).
    #[inline(always)]
    fn window_hit(&mut self, seg: SegReg, offset: u32, size: u32, write: bool) -> Option<usize> {
        let slot = seg as usize * 2 + usize::from(write);
        if self.data_fast && self.data_valid & (1 << slot) != 0 {
            let w = &self.data_windows[slot];
            let last = u64::from(offset) + u64::from(size) - 1;
            if offset >= w.lo && last <= u64::from(w.hi) && matches!(size, 1 | 2 | 4) {
                // The general path would count this TLB hit too.
                self.tlb.stats.hits += 1;
                return Some(w.host_lo + (offset - w.lo) as usize);
            }
        }
        None
    }

    /// [`Cpu::read_mem`] for the hottest handlers: the [`DataWindow`]
    /// hit inline, anything else through an out-of-line [`Cpu::read_mem`].
    #[inline(always)]
    pub(crate) fn read_mem_windowed<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        offset: u32,
        size: u32,
    ) -> Result<u32, Exception> {
        if let Some(off) = self.window_hit(seg, offset, size, false) {
            if let Some(v) = load_ram(bus, off, size) {
                return Ok(v);
            }
            // Not reached (a window's page is in Bus::ram); the general
            // path counts its own TLB hit.
            self.tlb.stats.hits -= 1;
        }
        self.read_mem_outlined(bus, seg, offset, size)
    }

    /// [`Cpu::read_mem`], never inlined.
    #[inline(never)]
    fn read_mem_outlined<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        offset: u32,
        size: u32,
    ) -> Result<u32, Exception> {
        self.read_mem(bus, seg, offset, size)
    }

    /// [`Cpu::write_mem`] for the hottest handlers: the [`DataWindow`]
    /// hit inline, anything else through an out-of-line [`Cpu::write_mem`].
    #[inline(always)]
    pub(crate) fn write_mem_windowed<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        offset: u32,
        size: u32,
        value: u32,
    ) -> Result<(), Exception> {
        if let Some(off) = self.window_hit(seg, offset, size, true) {
            if store_ram(bus, off, size, value) {
                return Ok(());
            }
            self.tlb.stats.hits -= 1;
        }
        self.write_mem_outlined(bus, seg, offset, size, value)
    }

    /// [`Cpu::write_mem`], never inlined.
    #[inline(never)]
    fn write_mem_outlined<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        offset: u32,
        size: u32,
        value: u32,
    ) -> Result<(), Exception> {
        self.write_mem(bus, seg, offset, size, value)
    }

    /// [`Cpu::push`] for the specialised handlers (see
    /// [`Cpu::write_mem_windowed`]).
    #[inline(always)]
    pub(crate) fn push_windowed<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        value: u32,
        size: u32,
    ) -> Result<(), Exception> {
        let mask = self.stack_mask();
        let esp = self.state.gpr[4];
        let new_sp = esp.wrapping_sub(size) & mask;
        self.write_mem_windowed(bus, SegReg::Ss, new_sp, size, value)?;
        self.state.gpr[4] = (esp & !mask) | new_sp;
        Ok(())
    }

    /// [`Cpu::pop`] for the specialised handlers (see
    /// [`Cpu::read_mem_windowed`]).
    #[inline(always)]
    pub(crate) fn pop_windowed<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        size: u32,
    ) -> Result<u32, Exception> {
        let mask = self.stack_mask();
        let esp = self.state.gpr[4];
        let v = self.read_mem_windowed(bus, SegReg::Ss, esp & mask, size)?;
        self.state.gpr[4] = (esp & !mask) | (esp.wrapping_add(size) & mask);
        Ok(v)
    }

    /// Records the [`DataWindow`] of the page that a fast-path access at
    /// `seg:offset` (linear `linear`, RAM offset `host`) just hit: the
    /// offsets of `seg` that map into the same linear page without wrapping
    /// and pass the segment checks for this kind of access. None when #AC
    /// could apply (CPL 3 with CR0.AM and EFLAGS.AC: misaligned accesses
    /// must keep taking the general path).
    #[inline(never)]
    fn fill_data_window(
        &mut self,
        slot: usize,
        seg: SegReg,
        offset: u32,
        linear: u32,
        host: usize,
        user: bool,
    ) {
        if user && self.state.cr0 & cr0::AM != 0 && self.state.eflags & eflags::AC != 0 {
            return;
        }
        let s = &self.state.seg[seg as usize];
        let page = linear & !0xFFF;
        let Some(page_lo) = page.checked_sub(s.base) else {
            return; // the page is reached by wrapping offsets
        };
        let page_hi = page_lo + 0xFFF;
        // The offsets whose byte accesses pass Cpu::linear (the access at
        // `offset` did, so the type and presence checks hold).
        let expand_down = self.state.protected_mode()
            && s.flags & seg_flags::CODE == 0
            && s.flags & seg_flags::DC != 0;
        let (valid_lo, valid_hi) = if expand_down {
            let top = if s.is_32bit() { u32::MAX } else { 0xFFFF };
            match s.limit.checked_add(1) {
                Some(lo) => (lo, top),
                None => return,
            }
        } else {
            (0, s.limit)
        };
        let lo = page_lo.max(valid_lo);
        let hi = page_hi.min(valid_hi);
        if lo > hi || offset < lo {
            return;
        }
        self.data_windows[slot] = DataWindow {
            lo,
            hi,
            host_lo: host - (offset - lo) as usize,
        };
        self.data_valid |= 1 << slot;
    }

    /// Notes an access off the RAM fast path: it may have reached a device
    /// or changed the soft TLB, so the quiet run ends and its data windows
    /// go.
    #[inline]
    pub(crate) fn note_bus_event(&mut self) {
        self.bus_event = true;
        self.data_valid = 0;
    }

    /// Reads `size` bytes at `seg:offset`.
    #[inline]
    pub fn read_mem<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        offset: u32,
        size: u32,
    ) -> Result<u32, Exception> {
        if let Some(off) = self.ram_fast_path(seg, offset, size, false) {
            if let Some(v) = load_ram(bus, off, size) {
                return Ok(v);
            }
        }
        self.read_mem_general(bus, seg, offset, size)
    }

    /// [`Cpu::read_mem`] off the RAM fast path.
    #[inline(never)]
    fn read_mem_general<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        offset: u32,
        size: u32,
    ) -> Result<u32, Exception> {
        if self.state.model == CpuModel::I8086 && offset + size - 1 > 0xFFFF {
            // The 8086 wraps each byte's offset within the segment.
            let mut v = 0;
            for i in 0..size {
                let lin = self.linear(seg, offset.wrapping_add(i) & 0xFFFF, 1, Access::Read)?;
                v |= self.read_linear(bus, lin, 1)? << (8 * i);
            }
            return Ok(v);
        }
        let lin = self.linear(seg, offset, size, Access::Read)?;
        self.read_linear(bus, lin, size)
    }

    /// Writes `size` bytes at `seg:offset`.
    #[inline]
    pub fn write_mem<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        offset: u32,
        size: u32,
        value: u32,
    ) -> Result<(), Exception> {
        if let Some(off) = self.ram_fast_path(seg, offset, size, true) {
            if store_ram(bus, off, size, value) {
                return Ok(());
            }
        }
        self.write_mem_general(bus, seg, offset, size, value)
    }

    /// [`Cpu::write_mem`] off the RAM fast path.
    #[inline(never)]
    fn write_mem_general<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        offset: u32,
        size: u32,
        value: u32,
    ) -> Result<(), Exception> {
        if self.state.model == CpuModel::I8086 && offset + size - 1 > 0xFFFF {
            for i in 0..size {
                let lin = self.linear(seg, offset.wrapping_add(i) & 0xFFFF, 1, Access::Write)?;
                self.write_linear(bus, lin, 1, value >> (8 * i))?;
            }
            return Ok(());
        }
        let lin = self.linear(seg, offset, size, Access::Write)?;
        self.write_linear(bus, lin, size, value)
    }

    /// Checks that `size` bytes at `seg:offset` could be written, without
    /// writing (for instructions that must not fault half-way).
    pub fn check_write<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        seg: SegReg,
        offset: u32,
        size: u32,
    ) -> Result<(), Exception> {
        if self.state.model == CpuModel::I8086 {
            return Ok(());
        }
        let lin = self.linear(seg, offset, size, Access::Write)?;
        let user = self.user_access();
        self.translate(bus, lin, Access::Write, user)?;
        if (lin & 0xFFF) + size > 0x1000 {
            self.translate(bus, lin.wrapping_add(size - 1), Access::Write, user)?;
        }
        Ok(())
    }

    /// The stack pointer's width mask: 0xFFFF unless SS is a 32-bit segment.
    #[inline]
    pub fn stack_mask(&self) -> u32 {
        if self.state.stack32() {
            0xFFFF_FFFF
        } else {
            0xFFFF
        }
    }

    /// Pushes `size` (2 or 4) bytes (SDM Vol. 2B, PUSH).
    #[inline]
    pub fn push<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        value: u32,
        size: u32,
    ) -> Result<(), Exception> {
        let mask = self.stack_mask();
        let esp = self.state.gpr[4];
        let new_sp = esp.wrapping_sub(size) & mask;
        self.write_mem(bus, SegReg::Ss, new_sp, size, value)?;
        self.state.gpr[4] = (esp & !mask) | new_sp;
        Ok(())
    }

    /// Pops `size` (2 or 4) bytes (SDM Vol. 2B, POP).
    #[inline]
    pub fn pop<B: Bus + ?Sized>(&mut self, bus: &mut B, size: u32) -> Result<u32, Exception> {
        let v = self.peek_stack(bus, 0, size)?;
        let mask = self.stack_mask();
        let esp = self.state.gpr[4];
        self.state.gpr[4] = (esp & !mask) | (esp.wrapping_add(size) & mask);
        Ok(v)
    }

    /// Reads `size` bytes at SS:(ESP + `delta`) without moving ESP.
    #[inline]
    pub fn peek_stack<B: Bus + ?Sized>(
        &mut self,
        bus: &mut B,
        delta: u32,
        size: u32,
    ) -> Result<u32, Exception> {
        let mask = self.stack_mask();
        let sp = self.state.gpr[4].wrapping_add(delta) & mask;
        self.read_mem(bus, SegReg::Ss, sp, size)
    }
}

/// The `size` (1, 2 or 4) bytes of RAM at host offset `off`,
/// little-endian; `None` when `Bus::ram` does not hold them.
#[inline(always)]
fn load_ram<B: Bus + ?Sized>(bus: &mut B, off: usize, size: u32) -> Option<u32> {
    let b = bus.ram()?.get(off..off + size as usize)?;
    Some(match *b {
        [b0] => u32::from(b0),
        [b0, b1] => u32::from(u16::from_le_bytes([b0, b1])),
        [b0, b1, b2, b3] => u32::from_le_bytes([b0, b1, b2, b3]),
        _ => 0,
    })
}

/// Stores the low `size` (1, 2 or 4) bytes of `value` at RAM host offset
/// `off`; false when `Bus::ram` does not hold them.
#[inline(always)]
fn store_ram<B: Bus + ?Sized>(bus: &mut B, off: usize, size: u32, value: u32) -> bool {
    let Some(b) = bus
        .ram()
        .and_then(|ram| ram.get_mut(off..off + size as usize))
    else {
        return false;
    };
    let v = value.to_le_bytes();
    match b {
        [b0] => *b0 = v[0],
        [b0, b1] => [*b0, *b1] = [v[0], v[1]],
        [b0, b1, b2, b3] => [*b0, *b1, *b2, *b3] = v,
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::flat32_cpu;
    use crate::FlatRam;

    #[test]
    fn code_written_through_the_ram_fast_path_is_seen_by_the_next_fetch() {
        use crate::testutil::{run32, CODE};
        use iced_x86::code_asm::*;
        // The routine at 0x3000 (page first written as plain data, so the
        // TLB grants it direct writes): `mov al, 0x40 ; mov byte [0x3001], 0x41 ; ret`
        // patches its own immediate; a second call sees 0x41.
        let routine: [u8; 9] = [0xB0, 0x40, 0xC6, 0x05, 0x01, 0x30, 0x00, 0x00, 0x41];
        let s = run32(
            |a| {
                for (i, b) in routine.iter().enumerate() {
                    a.mov(byte_ptr(0x3000 + i as u64), *b as u32)?;
                }
                a.mov(byte_ptr(0x3009), 0xC3)?; // ret
                a.mov(eax, dword_ptr(0x3000))?; // read it back (fast path hit)
                a.mov(ebx, eax)?;
                a.call(0x3000)?;
                a.mov(ecx, eax)?; // first call: AL = 0x40, then the patch
                a.call(0x3000)?; // second call runs the patched MOV
                a.mov(edx, eax)?;
                // Plain data writes to a page holding code keep working too.
                a.mov(byte_ptr(0x3001), 0x42)?;
                a.call(0x3000)
            },
            |_| {},
        );
        assert_eq!(s.gpr[3], 0x05C6_40B0);
        assert_eq!((s.gpr[1] & 0xFF, s.gpr[2] & 0xFF), (0x40, 0x41));
        assert_eq!(s.gpr[0] & 0xFF, 0x42);
        let _ = CODE;
    }

    #[test]
    fn the_ram_fast_path_is_used_and_counts_hits() {
        let mut cpu = flat32_cpu();
        let mut ram = FlatRam::new(1 << 20);
        cpu.write_linear(&mut ram, 0x5000, 4, 0x1234_5678).unwrap();
        let hits = cpu.tlb.stats.hits;
        assert_eq!(cpu.read_linear(&mut ram, 0x5000, 4).unwrap(), 0x1234_5678);
        assert_eq!(
            cpu.tlb.stats.hits,
            hits + 1,
            "served from the TLB's RAM offset"
        );
        // A changed memory map (a new generation) drops the offsets.
        ram.mask = 0xF_FFFF;
        cpu.sync_memory_map(&mut ram);
        assert!(cpu.tlb.entries().next().is_none());
    }

    #[test]
    fn quiet_run_data_windows_keep_the_limit_and_expand_down_checks() {
        use crate::testutil::{assemble, CODE};
        use iced_x86::code_asm::*;
        // DS: limit 0x2FF9; ES: expand-down above 0x3007 (both inside a
        // page, so only the segment check stops an access). The loop's
        // first pass decodes; the second runs quietly: its first load fills
        // a window, the second hits it, the third (through EDI, now out of
        // the segment) must fault exactly as single steps do.
        let program = |use_es: bool, a: u64, b: u64, good: u32, bad: u32| {
            assemble(32, move |asm| {
                let mut top = asm.create_label();
                asm.mov(esi, 2u32)?;
                asm.mov(edi, good)?;
                asm.set_label(&mut top)?;
                if use_es {
                    asm.mov(eax, dword_ptr(a).es())?;
                    asm.mov(ebx, dword_ptr(b).es())?;
                    asm.mov(ecx, dword_ptr(edi).es())?;
                } else {
                    asm.mov(eax, dword_ptr(a))?;
                    asm.mov(ebx, dword_ptr(b))?;
                    asm.mov(ecx, dword_ptr(edi))?;
                }
                asm.mov(edi, bad)?;
                asm.dec(esi)?;
                asm.jnz(top)
            })
        };
        let cases = [
            (false, program(false, 0x2FE0, 0x2FE4, 0x2FE8, 0x2FF8)),
            (true, program(true, 0x3010, 0x3014, 0x3018, 0x3004)),
        ];
        for (expand_down, code) in cases {
            let setup = || {
                let mut cpu = flat32_cpu();
                let mut ram = FlatRam::new(1 << 20);
                ram.load(CODE, &code);
                if expand_down {
                    let e = &mut cpu.state.seg[SegReg::Es as usize];
                    e.flags |= seg_flags::DC;
                    e.limit = 0x3007;
                } else {
                    cpu.state.seg[SegReg::Ds as usize].limit = 0x2FF9;
                }
                (cpu, ram)
            };
            let (mut ran, mut ram_a) = setup();
            let (mut stepped, mut ram_b) = setup();
            ran.run(&mut ram_a, 11);
            for _ in 0..11 {
                stepped.step(&mut ram_b);
            }
            assert_eq!(
                stepped.last_exception,
                Some(Exception::GeneralProtection(0))
            );
            assert_eq!(
                format!("{:?} {:?}", ran.state, ran.last_exception),
                format!("{:?} {:?}", stepped.state, stepped.last_exception),
            );
        }
    }

    #[test]
    fn misaligned_cpl3_accesses_raise_ac_only_with_am_and_ac() {
        let mut cpu = flat32_cpu();
        let mut ram = FlatRam::new(0x10000);
        cpu.state.cr0 |= cr0::AM;
        cpu.state.eflags |= eflags::AC;
        assert_eq!(
            cpu.read_linear(&mut ram, 0x1001, 4),
            Ok(0),
            "CPL 0 is exempt"
        );
        cpu.state.seg[SegReg::Cs as usize].selector |= 3;
        let ac = Err(Exception::AlignmentCheck);
        assert_eq!(cpu.read_linear(&mut ram, 0x1001, 4), ac);
        assert_eq!(
            cpu.write_linear(&mut ram, 0x1003, 2, 0),
            Err(Exception::AlignmentCheck)
        );
        assert_eq!(cpu.read_linear(&mut ram, 0x1002, 2), Ok(0));
        assert_eq!(cpu.read_linear(&mut ram, 0x1003, 1), Ok(0));
        assert_eq!(cpu.read_linear_system(&mut ram, 0x1001, 4), Ok(0));
        cpu.state.eflags &= !eflags::AC;
        assert_eq!(cpu.read_linear(&mut ram, 0x1001, 4), Ok(0));
    }
}
