//! Instructions that cross a page boundary.
//!
//! The processor fetches each byte of an instruction through the
//! translation of the page that holds it (SDM Vol. 3A, 4.10.2 "TLBs":
//! translations are cached per page), so an instruction that runs on into
//! the next linear page depends on two translations and on bytes that the
//! decode cache does not cover (it caches no instruction that crosses a
//! page and marks none of its lines as code). A translated block may end
//! with such an instruction only behind a check, each time it runs, that
//! for both pages the soft TLB maps the linear page to RAM with the fetch
//! right at the block's privilege, and that RAM still holds the bytes
//! that were translated. Any difference (a remapped or evicted page, a
//! write to the bytes, a page without the right) leaves the block before
//! the instruction and the interpreter fetches it, faults included.

use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use oxide86_cpu::tlb::{bits, rights, TlbEntry, TLB_ENTRIES};

use crate::translate::{trusted, Emitter, GuestInsn};

/// Loads of instruction bytes from guest RAM (in bounds once the TLB
/// entry is checked; may be unaligned).
fn code_bytes() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl Emitter<'_> {
    /// The check before `g`, which crosses into the next page: its
    /// `bytes` must still be what both pages hold (see the module docs).
    pub fn check_crossing_fetch(&mut self, g: &GuestInsn, bytes: &[u8]) {
        let len = g.d.insn.len() as u32;
        let lin = self.mode.cs_base.wrapping_add(g.eip);
        let first = 0x1000 - (lin & 0xFFF);
        debug_assert!(first < len, "the instruction does not cross a page");
        let pieces = [(lin, 0, first), (lin.wrapping_add(first), first, len)];
        // Both entries first: only then are their RAM offsets valid.
        let bases = pieces.map(|(piece_lin, _, _)| {
            let (ok, base) = self.fetchable_page(piece_lin);
            let bad = self.b.ins().icmp_imm_u(IntCC::Equal, ok, 0);
            self.side_exit_if(bad, g.eip);
            base
        });
        let mut differs: Option<Value> = None;
        for (&(piece_lin, from, to), &base) in pieces.iter().zip(&bases) {
            let mut at = from;
            while at < to {
                let (ty, n) = chunk(to - at);
                // Both below 4 KiB: the offset in the page.
                let off = ((piece_lin & 0xFFF) + (at - from)) as i32;
                let got = self.b.ins().load(ty, code_bytes(), base, off);
                let want = le_bytes(&bytes[at as usize..(at + n) as usize]);
                let ne = self.b.ins().icmp_imm_u(IntCC::NotEqual, got, want);
                differs = Some(match differs {
                    Some(d) => self.b.ins().bor(d, ne),
                    None => ne,
                });
                at += n;
            }
        }
        if let Some(d) = differs {
            self.side_exit_if(d, g.eip);
        }
    }

    /// For the page holding `lin` (a translation-time constant): whether
    /// its soft-TLB entry maps it to RAM with the fetch right at this
    /// privilege (an I8, nonzero when it does), and the host address of
    /// the page's first byte (valid only then).
    fn fetchable_page(&mut self, lin: u32) -> (Value, Value) {
        let page = lin >> 12;
        let entry = (page as usize & (TLB_ENTRIES - 1)) * size_of::<TlbEntry>();
        let at = |field: usize| (entry + field) as i32;
        let tag = self.load_entry(types::I32, at(offset_of!(TlbEntry, tag)));
        let bits_v = self.load_entry(types::I32, at(offset_of!(TlbEntry, bits)));
        let need = bits::HOST | u32::from(self.fetch_right());
        let have = self.b.ins().band_imm_u(bits_v, i64::from(need));
        let tag_ok = self
            .b
            .ins()
            .icmp_imm_u(IntCC::Equal, tag, i64::from(page + 1));
        let rights_ok = self.b.ins().icmp_imm_u(IntCC::Equal, have, i64::from(need));
        let ok = self.b.ins().band(tag_ok, rights_ok);
        // RAM offset of the page = addend + its linear base.
        let addend = self.load_entry(types::I64, at(offset_of!(TlbEntry, addend)));
        let hoff = self.b.ins().iadd_imm_u(addend, i64::from(page << 12));
        let hoff = if self.ptr == types::I64 {
            hoff
        } else {
            self.b.ins().ireduce(self.ptr, hoff)
        };
        let ram = self.ram_base();
        (ok, self.b.ins().iadd(ram, hoff))
    }

    /// Whether the soft TLB maps the linear page of `lin` (a run-time
    /// value) to the physical page base `page` with the fetch right at
    /// this privilege: an I8, nonzero when it does. A far chaining slot's
    /// check (`translate::emit_chain`): the successor was translated from
    /// `page`.
    pub(crate) fn fetch_maps_to(&mut self, lin: Value, page: Value) -> Value {
        let e = self.tlb_entry(lin);
        let tag = self
            .b
            .ins()
            .load(types::I32, trusted(), e, offset_of!(TlbEntry, tag) as i32);
        let bits_v = self
            .b
            .ins()
            .load(types::I32, trusted(), e, offset_of!(TlbEntry, bits) as i32);
        let want_tag = self.b.ins().ushr_imm_u(lin, 12);
        let want_tag = self.b.ins().iadd_imm_u(want_tag, 1);
        let tag_ok = self.b.ins().icmp(IntCC::Equal, tag, want_tag);
        // Not `bits::HOST`: the successor was translated from RAM at
        // `page`, and is invalidated with it (a change of the memory map
        // drops every block).
        let need = u32::from(self.fetch_right());
        let have = self.b.ins().band_imm_u(bits_v, i64::from(need));
        let rights_ok = self.b.ins().icmp_imm_u(IntCC::NotEqual, have, 0);
        let base = self.b.ins().band_imm_u(bits_v, i64::from(0xFFFF_F000u32));
        let page_ok = self.b.ins().icmp(IntCC::Equal, base, page);
        let ok = self.b.ins().band(tag_ok, rights_ok);
        self.b.ins().band(ok, page_ok)
    }

    /// The fetch right at the block's privilege.
    fn fetch_right(&self) -> u8 {
        if self.mode.user {
            rights::USER_EXEC
        } else {
            rights::SUP_EXEC
        }
    }

    fn load_entry(&mut self, ty: Type, offset: i32) -> Value {
        let tlb = self.tlb_base();
        self.b.ins().load(ty, trusted(), tlb, offset)
    }
}

/// The widest load (type, bytes) for `left` more bytes to compare.
fn chunk(left: u32) -> (Type, u32) {
    match left {
        8.. => (types::I64, 8),
        4..=7 => (types::I32, 4),
        2..=3 => (types::I16, 2),
        _ => (types::I8, 1),
    }
}

/// `b` (1, 2, 4 or 8 bytes) as the little-endian integer a load of them gives.
fn le_bytes(b: &[u8]) -> i64 {
    let mut v = [0u8; 8];
    v[..b.len()].copy_from_slice(b);
    i64::from_le_bytes(v)
}
