//! Guest registers and memory operands in generated code.
//!
//! A memory access inlines the interpreter's fast path only: the segment
//! check of an ordinary present, writable, expand-up data segment (SDM
//! Vol. 3A, 5.3 "Limit Checking", 5.4 "Type Checking"), an access within
//! one page, and a soft-TLB entry that grants the right and maps plain RAM
//! (with direct writes allowed: the page holds no decoded code). Anything
//! else leaves the block before the instruction, and the interpreter runs
//! it, faults included. A TLB entry offers direct access only to a page
//! that lies wholly inside guest RAM and the access must stay in that
//! page, so generated code never touches memory outside guest RAM.

use std::mem::{offset_of, size_of};

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Type, Value};
use iced_x86::Register;
use oxide86_cpu::interp::operand::gpr_slot;
use oxide86_cpu::state::seg_flags;
use oxide86_cpu::tlb::{fast, TlbEntry, TLB_ENTRIES};
use oxide86_cpu::{SegReg, SegmentCache};

use crate::translate::{off, trusted, Emitter, GuestInsn, MODE_PG};

/// Flags for guest-RAM accesses: bounds checked before, little-endian.
fn guest() -> MemFlagsData {
    MemFlagsData::new()
        .with_notrap()
        .with_endianness(Endianness::Little)
}

/// The Cranelift integer type of an access `size` bytes wide.
pub(crate) fn ty_of(size: u32) -> Type {
    match size {
        1 => types::I8,
        2 => types::I16,
        _ => types::I32,
    }
}

impl Emitter<'_> {
    /// Reads a general register (zero-extended from its width), as the
    /// interpreter's `read_gpr`.
    pub fn read_reg(&mut self, r: Register) -> Value {
        let Some(s) = gpr_slot(r) else {
            return self.b.ins().iconst(types::I32, 0);
        };
        let v = self.b.use_var(self.regs[s.index]);
        let v = if s.shift != 0 {
            self.b.ins().ushr_imm_u(v, i64::from(s.shift))
        } else {
            v
        };
        match s.width {
            4 => v,
            w => self.b.ins().band_imm_u(v, i64::from(width_mask(w))),
        }
    }

    /// Writes a general register at its width, keeping the other bits.
    pub fn write_reg(&mut self, r: Register, value: Value) {
        let Some(s) = gpr_slot(r) else {
            return;
        };
        if s.width == 4 {
            self.set_reg(s.index, value);
            return;
        }
        let mask = width_mask(s.width) << s.shift;
        let old = self.b.use_var(self.regs[s.index]);
        let keep = self.b.ins().band_imm_u(old, i64::from(!mask));
        let v = if s.shift != 0 {
            self.b.ins().ishl_imm_u(value, i64::from(s.shift))
        } else {
            value
        };
        let v = self.b.ins().band_imm_u(v, i64::from(mask));
        let v = self.b.ins().bor(keep, v);
        self.set_reg(s.index, v);
    }

    /// The offset of the instruction's ModRM memory operand, wrapped to
    /// the address size (the interpreter's `effective_offset`).
    pub fn effective_offset(&mut self, g: &GuestInsn) -> Value {
        let insn = &g.d.insn;
        let disp = insn.memory_displacement32();
        let mut a = if insn.memory_base() != Register::None {
            let base = self.read_reg(insn.memory_base());
            if disp == 0 {
                base
            } else {
                self.b.ins().iadd_imm_u(base, i64::from(disp))
            }
        } else {
            self.b.ins().iconst(types::I32, i64::from(disp as i32))
        };
        if insn.memory_index() != Register::None {
            let index = self.read_reg(insn.memory_index());
            // A shift, not a multiply: the host's address modes take it
            // as a scale (x86-64 `lea (base, index, 4)`).
            let scaled = match insn.memory_index_scale() {
                1 => index,
                s => self
                    .b
                    .ins()
                    .ishl_imm_u(index, i64::from(s.trailing_zeros())),
            };
            a = self.b.ins().iadd(a, scaled);
        }
        if g.d.addr32 {
            a
        } else {
            self.b.ins().band_imm_u(a, 0xFFFF)
        }
    }

    /// The segment of the instruction's memory operand.
    pub fn memory_segment(g: &GuestInsn) -> SegReg {
        oxide86_cpu::interp::operand::seg_reg(g.d.insn.memory_segment()).unwrap_or(SegReg::Ds)
    }

    /// The host address of a `size`-byte access at `seg:offset`, or a side
    /// exit before the instruction at `g.eip` when the fast path does not
    /// apply. A `write` needs the page's direct-write right.
    pub fn host_addr(
        &mut self,
        g: &GuestInsn,
        seg: SegReg,
        offset: Value,
        size: u32,
        write: bool,
    ) -> Value {
        // A flat segment (known when the block was translated: the mode
        // is part of its key) needs no check: base 0, and an access past
        // 4 GiB - 1 also crosses a page, which exits below.
        let (lin, seg_bad) = if self.mode.flat & (1 << seg as u8) != 0 {
            (offset, None)
        } else {
            let (lin, bad) = self.segment_check(seg, offset, size);
            (lin, Some(bad))
        };
        if !write && self.mode.bits & MODE_PG == 0 {
            if let Some(addr) = self.direct_read(g, lin, seg_bad, size) {
                return addr;
            }
        }
        // The soft-TLB entry's comparator for this kind of access holds
        // the page base when a direct access may hit; comparing it with
        // the page of the last byte also sends a page-crossing access
        // (or one wrapping past 4 GiB) to the slow path.
        let last = self.b.ins().iadd_imm_u(lin, i64::from(size - 1));
        let last_page = self.b.ins().band_imm_u(last, i64::from(0xFFFF_F000u32));
        let e = self.tlb_entry(lin);
        let k = fast::index(write, self.mode.user);
        let cmp_off = offset_of!(TlbEntry, fast) + 4 * k;
        let want = self.b.ins().load(types::I32, trusted(), e, cmp_off as i32);
        let mut bad = self.b.ins().icmp(IntCC::NotEqual, want, last_page);
        if let Some(seg_bad) = seg_bad {
            bad = self.b.ins().bor(bad, seg_bad);
        }
        self.side_exit_if(bad, g.eip);
        // RAM offset = addend + linear: inside RAM, since the entry maps
        // a page that lies wholly in it and the access stays in the page.
        let addend = self.b.ins().load(
            types::I64,
            trusted(),
            e,
            offset_of!(TlbEntry, addend) as i32,
        );
        let lin64 = self.b.ins().uextend(types::I64, lin);
        let hoff = self.b.ins().iadd(addend, lin64);
        let ram = self.ram_base();
        let hoff = if self.ptr == types::I64 {
            hoff
        } else {
            self.b.ins().ireduce(self.ptr, hoff)
        };
        self.b.ins().iadd(ram, hoff)
    }

    /// The host address of the soft-TLB entry for the linear page of
    /// `lin` (a run-time value).
    pub(crate) fn tlb_entry(&mut self, lin: Value) -> Value {
        // The entry's byte offset: ((lin >> 12) & (TLB_ENTRIES - 1)) *
        // size_of::<TlbEntry>(), as one shift and one mask.
        let entry_shift = size_of::<TlbEntry>().trailing_zeros();
        let scaled = self.b.ins().ushr_imm_u(lin, i64::from(12 - entry_shift));
        let byte_off = self
            .b
            .ins()
            .band_imm_u(scaled, ((TLB_ENTRIES - 1) * size_of::<TlbEntry>()) as i64);
        let byte_off = self.b.ins().uextend(self.ptr, byte_off);
        let tlb = self.tlb_base();
        self.b.ins().iadd(tlb, byte_off)
    }

    /// A read with paging off (linear = physical) inside the bases' direct
    /// window (`Bases::direct`: plain RAM at offsets equal to the
    /// addresses, page-aligned): a range check instead of the soft-TLB
    /// lookup. Reads need no code-page check, and the window is the
    /// memory map the TLB would see (a change of the map drops every
    /// block). `None` when there is no window. (Writes keep the TLB path:
    /// the same range check plus a look at the decode cache's code bitmap
    /// for the page measured slower than the TLB's write comparator.)
    fn direct_read(
        &mut self,
        g: &GuestInsn,
        lin: Value,
        seg_bad: Option<Value>,
        size: u32,
    ) -> Option<Value> {
        let (lo, hi) = self.bases.direct;
        if hi.wrapping_sub(lo) < size {
            return None;
        }
        // lin - lo <= hi - lo - size, unsigned: the whole access lies in
        // lo..hi (an address below lo wraps to a large difference).
        let rel = self.b.ins().iadd_imm_s(lin, -i64::from(lo));
        let mut bad =
            self.b
                .ins()
                .icmp_imm_u(IntCC::UnsignedGreaterThan, rel, i64::from(hi - lo - size));
        if let Some(seg_bad) = seg_bad {
            bad = self.b.ins().bor(bad, seg_bad);
        }
        self.side_exit_if(bad, g.eip);
        let lin = if self.ptr == types::I64 {
            self.b.ins().uextend(types::I64, lin)
        } else {
            lin
        };
        let ram = self.ram_base();
        Some(self.b.ins().iadd(ram, lin))
    }

    /// The linear address of `seg:offset` and a flag that is set when
    /// the segment is not an ordinary present, writable, expand-up data
    /// segment or the `size`-byte access passes its limit.
    fn segment_check(&mut self, seg: SegReg, offset: Value, size: u32) -> (Value, Value) {
        let so = off::seg(seg as usize);
        let base = self.load_st(types::I32, so + offset_of!(SegmentCache, base) as i32);
        let limit = self.load_st(types::I32, so + offset_of!(SegmentCache, limit) as i32);
        let flags = self.load_st(types::I16, so + offset_of!(SegmentCache, flags) as i32);
        let kind_mask = seg_flags::PRESENT | seg_flags::CODE | seg_flags::RW | seg_flags::DC;
        let kind = self.b.ins().band_imm_u(flags, i64::from(kind_mask));
        let bad_kind = self.b.ins().icmp_imm_u(
            IntCC::NotEqual,
            kind,
            i64::from(seg_flags::PRESENT | seg_flags::RW),
        );
        // offset + size - 1 <= limit, without wrapping.
        let off64 = self.b.ins().uextend(types::I64, offset);
        let last = self.b.ins().iadd_imm_u(off64, i64::from(size - 1));
        let lim64 = self.b.ins().uextend(types::I64, limit);
        let bad_limit = self.b.ins().icmp(IntCC::UnsignedGreaterThan, last, lim64);
        let lin = self.b.ins().iadd(base, offset);
        (lin, self.b.ins().bor(bad_kind, bad_limit))
    }

    /// Loads `size` bytes of guest RAM at a checked host address, zero-extended to 32 bits.
    pub fn load_guest(&mut self, addr: Value, size: u32) -> Value {
        let v = self.b.ins().load(ty_of(size), guest(), addr, 0);
        if size == 4 {
            v
        } else {
            self.b.ins().uextend(types::I32, v)
        }
    }

    /// Stores the low `size` bytes of `v` at a checked host address (in
    /// verify mode, after telling the verifier's journal what it overwrites).
    pub fn store_guest(&mut self, addr: Value, v: Value, size: u32) {
        if self.hooks.note_store != 0 {
            let ctx = self.ctx;
            let n = self.b.ins().iconst(types::I32, i64::from(size));
            let ptr = self.ptr;
            self.call_helper(
                self.hooks.note_store,
                &[ptr, ptr, types::I32],
                None,
                &[ctx, addr, n],
            );
        }
        let v = if size == 4 {
            v
        } else {
            self.b.ins().ireduce(ty_of(size), v)
        };
        self.b.ins().store(guest(), v, addr, 0);
    }

    /// The stack-pointer width mask.
    pub fn stack_mask(&self) -> u32 {
        if self.mode.stack32 {
            u32::MAX
        } else {
            0xFFFF
        }
    }

    /// ESP with `new_sp` in its low bits (the stack-size mask applied).
    pub fn merge_sp(&mut self, esp: Value, new_sp: Value) -> Value {
        let mask = self.stack_mask();
        if mask == u32::MAX {
            return new_sp;
        }
        let keep = self.b.ins().band_imm_u(esp, i64::from(!mask));
        let low = self.b.ins().band_imm_u(new_sp, i64::from(mask));
        self.b.ins().bor(keep, low)
    }

    /// PUSH of `size` bytes (SDM Vol. 2B, PUSH): the store first, then ESP.
    pub fn push(&mut self, g: &GuestInsn, value: Value, size: u32) {
        let esp = self.b.use_var(self.regs[4]);
        let sp = self.b.ins().iadd_imm_s(esp, -i64::from(size));
        let sp = if self.stack_mask() == u32::MAX {
            sp
        } else {
            self.b.ins().band_imm_u(sp, 0xFFFF)
        };
        let addr = self.host_addr(g, SegReg::Ss, sp, size, true);
        self.store_guest(addr, value, size);
        let new = self.merge_sp(esp, sp);
        self.set_reg(4, new);
    }

    /// Reads `size` bytes at SS:(ESP + `delta`) without moving ESP.
    pub fn peek_stack(&mut self, g: &GuestInsn, delta: u32, size: u32) -> Value {
        let esp = self.b.use_var(self.regs[4]);
        let sp = if delta == 0 {
            esp
        } else {
            self.b.ins().iadd_imm_u(esp, i64::from(delta))
        };
        let sp = if self.stack_mask() == u32::MAX {
            sp
        } else {
            self.b.ins().band_imm_u(sp, 0xFFFF)
        };
        let addr = self.host_addr(g, SegReg::Ss, sp, size, false);
        self.load_guest(addr, size)
    }

    /// LEAVE (SDM Vol. 2A, LEAVE; `stack::leave`): ESP = EBP (within the
    /// stack-size mask), then POP EBP at the operand size. The read at
    /// SS:EBP comes first, so a slow path leaves everything as it was.
    pub fn leave(&mut self, g: &GuestInsn) {
        let w = if g.d.op32 { 4 } else { 2 };
        let ebp = self.b.use_var(self.regs[5]);
        let esp = self.b.use_var(self.regs[4]);
        let sp = if self.stack_mask() == u32::MAX {
            ebp
        } else {
            self.b.ins().band_imm_u(ebp, 0xFFFF)
        };
        let addr = self.host_addr(g, SegReg::Ss, sp, w, false);
        let v = self.load_guest(addr, w);
        let base = self.merge_sp(esp, ebp);
        let up = self.b.ins().iadd_imm_u(base, i64::from(w));
        let new = self.merge_sp(base, up);
        self.set_reg(4, new);
        let bp = if w == 4 { Register::EBP } else { Register::BP };
        self.write_reg(bp, v);
    }

    /// Moves ESP up by `n` bytes (within the stack-size mask).
    pub fn release_stack(&mut self, n: u32) {
        let esp = self.b.use_var(self.regs[4]);
        let sp = self.b.ins().iadd_imm_u(esp, i64::from(n));
        let new = self.merge_sp(esp, sp);
        self.set_reg(4, new);
    }
}

/// The value mask of a `w`-byte operand.
pub(crate) fn width_mask(w: u32) -> u32 {
    oxide86_cpu::flags::width_mask(w)
}
