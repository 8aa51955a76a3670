//! Decoding with iced-x86 and the decoded-instruction cache.
//!
//! An instruction is decoded once per physical location and code size and
//! reused until a write reaches its bytes. The cache's tags are
//! direct-mapped on the low bits of the physical address; each names the
//! slot of a ring of decodings, filled in the order instructions are first
//! decoded, so the instructions of a block sit in consecutive cache lines
//! (indexed by address, one 64-byte entry per byte of code address put
//! consecutive instructions about 220 bytes apart, a cache miss each when
//! cold code was copied into a block or stepped). A bitmap with one bit
//! per 64-byte line of physical memory says which lines hold cached
//! instructions, so the write path finds out in one bit test whether it
//! must invalidate anything.
//!
//! Instructions are decoded at IP 0, so iced's branch targets are relative
//! (`target = (eip + near_branch_target) & mask` at run time) and a cached
//! entry is valid for any CS:EIP that reaches the same physical bytes.

use crate::block::{BlockCache, Header};
use crate::model::CpuModel;
use iced_x86::{Decoder, DecoderOptions, Instruction};

/// Entries of [`DecodeCache::new`] (a power of two): 4 MiB of decodings,
/// cheap enough to create for every test CPU.
const DEFAULT_ENTRIES: usize = 1 << 16;
/// log2 of the invalidation granule.
const LINE_SHIFT: u32 = 6;
/// The longest x86 instruction.
pub const MAX_INSN_LEN: usize = 15;

/// One decoded instruction and what the interpreter needs besides iced's view.
///
/// One cache line each: the slot address is a shift of the index, which
/// keeps the run loop's EIP-to-slot chain short.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
pub struct Decoded {
    /// iced's decoding (decoded at IP 0).
    pub insn: Instruction,
    /// 32-bit addressing (after any 0x67 prefix).
    pub addr32: bool,
    /// 32-bit operand size (after any 0x66 prefix).
    pub op32: bool,
    /// 8086 only: opcode 0F is POP CS (decoded as POP DS with this set).
    pub pop_cs: bool,
    /// The instruction cannot change what the per-instruction event checks
    /// of [`crate::Cpu::run`] look at (see [`is_quiet`]).
    pub quiet: bool,
    /// The handler, resolved once ([`crate::interp::resolve`], or a
    /// specialised form from [`crate::interp::fast::specialise`]).
    pub op: crate::interp::Op,
    /// Specialised forms: the `gpr` index of the first register operand.
    pub r0: u8,
    /// Specialised forms: the `gpr` index of the second register operand.
    pub r1: u8,
    /// Specialised forms: the immediate, sign-extended to 32 bits, a
    /// relative branch target, or a memory operand's displacement.
    pub imm: u32,
    /// Specialised memory forms: the base register's `gpr` index (8: none).
    pub base: u8,
    /// Specialised memory forms: the index register's `gpr` index (8: none).
    pub index: u8,
    /// Specialised memory forms: log2 of the index scale.
    pub scale: u8,
    /// Specialised memory forms: the effective segment.
    pub seg: crate::state::SegReg,
    /// The handler never changes `ctx.next_eip` (a specialised form that
    /// does not branch), so execution always falls through.
    pub falls_through: bool,
}

/// Which instruction a tag slot holds, and where its decoding is.
#[derive(Clone, Copy, Debug, Default)]
struct Tag {
    /// Physical address of the first byte (meaningful while `key` != 0).
    paddr: u32,
    /// 1 + code32 when valid, 0 when empty.
    key: u8,
    /// The instruction's length in bytes.
    len: u8,
    /// Its slot in [`DecodeCache::decoded`].
    at: u32,
}

/// Why decoding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes do not form a valid instruction (#UD).
    Invalid,
    /// The instruction is longer than the model allows (#GP(0)).
    TooLong,
    /// More bytes were needed than were readable: raise the fault of the
    /// first unreadable byte.
    NeedMoreBytes,
}

/// Counters for the decoded-instruction cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Lookups that found a valid entry.
    pub hits: u64,
    /// Lookups that decoded.
    pub misses: u64,
    /// Entries dropped because their bytes were written.
    pub invalidations: u64,
}

/// The decoded-instruction cache.
pub struct DecodeCache {
    /// The tags, direct-mapped on the low bits of the physical address;
    /// invalidation writes only these.
    tags: Box<[Tag]>,
    /// The decodings: a ring that [`DecodeCache::insert`] fills in order
    /// (the tag that named a slot it reuses is dropped), and the only
    /// writer. Never resized, so a pointer from
    /// [`DecodeCache::lookup_hit_ptr`] stays put.
    decoded: Box<[Decoded]>,
    /// Per slot of `decoded`: the tag that names it.
    owners: Box<[u32]>,
    /// The ring's next slot.
    next: usize,
    /// Number of tags minus one (a power of two minus one).
    mask: usize,
    /// One bit per 64-byte line of the 4 GiB physical space.
    code_lines: Vec<u64>,
    /// Hit/miss/invalidate counters.
    pub stats: DecodeStats,
    /// When set, [`DecodeCache::invalidate`] appends the physical page of
    /// every code line it drops, and [`DecodeCache::flush`] appends
    /// [`FLUSHED_ALL`], so a block translator can drop what it built from
    /// those bytes (the JIT drains the log).
    pub code_write_log: Option<Vec<u32>>,
    /// One counter per 4 KiB physical page, bumped whenever
    /// [`DecodeCache::invalidate`] drops a code line there.
    generations: Vec<u32>,
    /// Runs of these decodings (see [`crate::block`]).
    pub(crate) blocks: BlockCache,
    /// Number of [`DecodeCache::insert`] calls (wrapping): an open block
    /// cannot grow while it stays the same.
    inserts: u32,
}

/// A block of decoded instructions ready to run: its first instruction,
/// its length, and the offset of its last instruction's first byte from
/// its start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockRef {
    /// The first instruction (in the block pool).
    pub(crate) first: *const Decoded,
    /// Number of instructions.
    pub(crate) len: usize,
    /// Offset of the last instruction from the first.
    pub(crate) span: u32,
}

/// The entry [`DecodeCache::flush`] leaves in the code-write log: every page.
pub const FLUSHED_ALL: u32 = u32::MAX;

impl std::fmt::Debug for DecodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeCache")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for DecodeCache {
    fn default() -> Self {
        Self::new()
    }
}

impl DecodeCache {
    /// An empty cache of the default size.
    pub fn new() -> Self {
        Self::with_entries(DEFAULT_ENTRIES)
    }

    /// An empty cache of `entries` decodings (rounded up to a power of
    /// two; 64 bytes each) and twice as many tags (one per byte of
    /// physical code address, 12 bytes each). A machine running an
    /// operating system wants more than the default (a kernel's boot code
    /// spans megabytes).
    pub fn with_entries(entries: usize) -> Self {
        let entries = entries.max(1).next_power_of_two();
        let empty = Decoded {
            insn: Instruction::default(),
            addr32: false,
            op32: false,
            pop_cs: false,
            quiet: false,
            op: crate::interp::Op::X87,
            r0: 0,
            r1: 0,
            imm: 0,
            base: 8,
            index: 8,
            scale: 0,
            seg: crate::state::SegReg::Ds,
            falls_through: false,
        };
        // The line bitmap is 8 MiB of zeroes; the allocator maps it lazily.
        let tags = entries * 2;
        Self {
            tags: vec![Tag::default(); tags].into_boxed_slice(),
            decoded: vec![empty; entries].into_boxed_slice(),
            owners: vec![0; entries].into_boxed_slice(),
            next: 0,
            mask: tags - 1,
            code_lines: vec![0; 1 << (32 - LINE_SHIFT - 6)],
            stats: DecodeStats::default(),
            code_write_log: None,
            generations: vec![0; 1 << 20],
            blocks: BlockCache::new(),
            inserts: 0,
        }
    }

    /// The block of instructions starting at `paddr` for this code size
    /// (see [`crate::block`]), built from the cache's entries if there is
    /// none yet or its copies are stale. `None` when the cache has no
    /// entry at `paddr`.
    #[inline(always)]
    pub(crate) fn block(&mut self, paddr: u32, code32: bool) -> Option<BlockRef> {
        let h = &self.blocks.headers[BlockCache::index(paddr)];
        if h.key == 1 + u8::from(code32)
            && h.paddr == paddr
            && h.generation == self.generations[(paddr >> 12) as usize]
            && (!h.open || h.inserts == self.inserts)
        {
            return Some(BlockRef {
                first: self.blocks.instructions(h),
                len: usize::from(h.len),
                span: h.span,
            });
        }
        self.build_block(paddr, code32)
    }

    /// [`DecodeCache::block`] when the header does not hold a closed,
    /// current block for `paddr`: keeps an open block whose next
    /// instruction is still not decoded, else copies the cache's entries
    /// from `paddr` on into a new block.
    #[inline(never)]
    fn build_block(&mut self, paddr: u32, code32: bool) -> Option<BlockRef> {
        let key = 1 + u8::from(code32);
        let generation = self.generations[(paddr >> 12) as usize];
        let i = BlockCache::index(paddr);
        let h = self.blocks.headers[i];
        if h.key == key
            && h.paddr == paddr
            && h.generation == generation
            && self.slot(paddr.wrapping_add(h.end), code32).is_none()
        {
            self.blocks.headers[i].inserts = self.inserts;
            return Some(BlockRef {
                first: self.blocks.instructions(&h),
                len: usize::from(h.len),
                span: h.span,
            });
        }
        self.slot(paddr, code32)?;
        self.blocks.make_room();
        let start = self.blocks.next_start();
        let (mut p, mut len, mut span, mut open) = (paddr, 0u16, 0, true);
        while usize::from(len) < crate::block::MAX_LEN {
            let Some(s) = self.slot(p, code32) else { break };
            let d = self.decoded[self.tags[s].at as usize];
            self.blocks.push(d);
            len += 1;
            span = p - paddr;
            p += d.insn.len() as u32;
            let falls_through = matches!(
                d.insn.flow_control(),
                iced_x86::FlowControl::Next | iced_x86::FlowControl::ConditionalBranch
            );
            if !falls_through || !d.quiet || p & 0xFFF == 0 {
                open = false;
                break;
            }
        }
        if usize::from(len) == crate::block::MAX_LEN {
            open = false;
        }
        let h = Header {
            paddr,
            key,
            open,
            len,
            start,
            span,
            end: p - paddr,
            generation,
            inserts: self.inserts,
        };
        self.blocks.headers[i] = h;
        Some(BlockRef {
            first: self.blocks.instructions(&h),
            len: usize::from(len),
            span,
        })
    }

    /// The slot holding the decoding at `paddr` for this code size.
    #[inline]
    fn slot(&self, paddr: u32, code32: bool) -> Option<usize> {
        let i = paddr as usize & self.mask;
        let e = &self.tags[i];
        (e.key == 1 + u8::from(code32) && e.paddr == paddr).then_some(i)
    }

    /// The cached decoding of the instruction at `paddr` for this code size.
    #[inline]
    pub fn lookup(&mut self, paddr: u32, code32: bool) -> Option<&Decoded> {
        let i = paddr as usize & self.mask;
        let e = &self.tags[i];
        if e.key == 1 + u8::from(code32) && e.paddr == paddr {
            self.stats.hits += 1;
            Some(&self.decoded[e.at as usize])
        } else {
            self.stats.misses += 1;
            None
        }
    }

    /// [`DecodeCache::lookup`] as a pointer, counting nothing (the caller
    /// adds its hits to [`DecodeCache::stats`]; a miss is left to its
    /// slower path, which looks up and counts again).
    /// The pointee is written only by [`DecodeCache::insert`] and never
    /// moves, so it can be read while the CPU executes the instruction.
    #[inline]
    pub(crate) fn lookup_hit_ptr(&self, paddr: u32, code32: bool) -> Option<*const Decoded> {
        let i = paddr as usize & self.mask;
        let e = &self.tags[i];
        if e.key == 1 + u8::from(code32) && e.paddr == paddr {
            // In bounds: a tag's slot is an index of `decoded`.
            Some(self.decoded.as_ptr().wrapping_add(e.at as usize))
        } else {
            None
        }
    }

    /// Remembers a decoding whose `len` bytes start at `paddr` (all on one page).
    pub fn insert(&mut self, paddr: u32, code32: bool, decoded: Decoded) {
        self.inserts = self.inserts.wrapping_add(1);
        let len = decoded.insn.len() as u32;
        let i = paddr as usize & self.mask;
        let at = self.next;
        self.next = (at + 1) % self.decoded.len();
        // The slot's previous decoding goes with its tag, unless that tag
        // has been given another slot since.
        let owner = &mut self.tags[self.owners[at] as usize];
        if owner.at as usize == at {
            owner.key = 0;
        }
        self.tags[i] = Tag {
            paddr,
            key: 1 + u8::from(code32),
            len: len as u8,
            at: at as u32,
        };
        self.decoded[at] = decoded;
        self.owners[at] = i as u32;
        let first = paddr >> LINE_SHIFT;
        let last = paddr.wrapping_add(len.max(1) - 1) >> LINE_SHIFT;
        for line in [first, last] {
            self.code_lines[(line >> 6) as usize] |= 1 << (line & 63);
        }
    }

    /// Whether the 4 KiB page holding `paddr` has any cached instruction
    /// (one bitmap word covers the page's 64 lines).
    #[inline]
    pub fn page_has_code(&self, paddr: u32) -> bool {
        self.code_lines[(paddr >> 12) as usize] != 0
    }

    /// Whether a write of `len` bytes at `paddr` may touch cached code.
    #[inline]
    pub fn is_code(&self, paddr: u32, len: u32) -> bool {
        let first = paddr >> LINE_SHIFT;
        let last = paddr.wrapping_add(len - 1) >> LINE_SHIFT;
        self.line_marked(first) || (last != first && self.line_marked(last))
    }

    #[inline]
    fn line_marked(&self, line: u32) -> bool {
        self.code_lines[(line >> 6) as usize] & (1 << (line & 63)) != 0
    }

    /// Drops every cached instruction whose bytes overlap `[paddr, paddr+len)`.
    pub fn invalidate(&mut self, paddr: u32, len: u32) {
        let first = paddr >> LINE_SHIFT;
        let last = paddr.wrapping_add(len - 1) >> LINE_SHIFT;
        for line in first..=last {
            if !self.line_marked(line) {
                continue;
            }
            self.code_lines[(line >> 6) as usize] &= !(1 << (line & 63));
            let g = &mut self.generations[(line >> (12 - LINE_SHIFT)) as usize];
            *g = g.wrapping_add(1);
            if let Some(log) = &mut self.code_write_log {
                let page = line >> (12 - LINE_SHIFT);
                if log.last() != Some(&page) {
                    log.push(page);
                }
            }
            // Entries starting up to 14 bytes before the line may reach into it.
            let start = (line << LINE_SHIFT).wrapping_sub(MAX_INSN_LEN as u32 - 1);
            for a in 0..(1u32 << LINE_SHIFT) + MAX_INSN_LEN as u32 - 1 {
                let p = start.wrapping_add(a);
                let e = &mut self.tags[p as usize & self.mask];
                if e.key != 0 && e.paddr == p {
                    let end = p.wrapping_add(u32::from(e.len));
                    if p >> LINE_SHIFT == line || end > (line << LINE_SHIFT) {
                        e.key = 0;
                        self.stats.invalidations += 1;
                    }
                }
            }
        }
    }

    /// Drops everything (e.g. on reset).
    pub fn flush(&mut self) {
        for e in self.tags.iter_mut() {
            e.key = 0;
        }
        self.code_lines.iter_mut().for_each(|w| *w = 0);
        self.blocks.clear();
        if let Some(log) = &mut self.code_write_log {
            log.push(FLUSHED_ALL);
        }
    }
}

/// Decodes one instruction from `bytes` (fewer than 15 when the rest is
/// unreadable) as `model` executes it.
pub fn decode(bytes: &[u8], code32: bool, model: CpuModel) -> Result<Decoded, DecodeError> {
    let mut buf = [0u8; MAX_INSN_LEN];
    let n = bytes.len().min(MAX_INSN_LEN);
    buf[..n].copy_from_slice(&bytes[..n]);
    let mut pop_cs = false;
    let mut addr32 = code32;
    let mut op32 = code32;
    // Prefix scan: count prefixes, note 0x67, and apply the 8086's aliases.
    let mut i = 0;
    while i < n {
        match buf[i] {
            0x26 | 0x2E | 0x36 | 0x3E | 0xF0 | 0xF2 | 0xF3 => i += 1,
            0x64..=0x67 if model.is_386_or_later() => {
                match buf[i] {
                    0x67 => addr32 = !code32,
                    0x66 => op32 = !code32,
                    _ => {}
                }
                i += 1
            }
            0xF1 if model == CpuModel::I8086 => {
                buf[i] = 0xF0; // F1 is a LOCK alias on the 8086
                i += 1
            }
            _ => break,
        }
    }
    if i >= model.max_insn_len() {
        return Err(if i >= n && n < MAX_INSN_LEN {
            DecodeError::NeedMoreBytes
        } else {
            DecodeError::TooLong
        });
    }
    if i < n
        && model == CpuModel::I286
        && matches!(buf[i], 0xC4 | 0xC5)
        && i + 1 < n
        && buf[i + 1] >= 0xC0
    {
        // LES/LDS with a register operand: #UD on the 286 (iced would read a VEX prefix).
        return Err(DecodeError::Invalid);
    }
    if i < n && model != CpuModel::P6 {
        let has_modrm = i + 1 < n;
        match buf[i] {
            0x64..=0x67 if model == CpuModel::I286 => {} // not prefixes on a 286: left to iced (#UD)
            0x60..=0x6F if model == CpuModel::I8086 => buf[i] += 0x10, // Jcc aliases
            0xC0 | 0xC1 | 0xC8 | 0xC9 if model == CpuModel::I8086 => buf[i] += 2, // RET/RETF aliases
            // The 8086 decodes only the low two bits of an Sreg field and
            // ignores the reg field of POP r/m and MOV r/m, imm; FF /7 is PUSH.
            0x8C | 0x8E if model == CpuModel::I8086 && has_modrm => buf[i + 1] &= !0x20,
            0x8F | 0xC6 | 0xC7 if model == CpuModel::I8086 && has_modrm => buf[i + 1] &= !0x38,
            0xFF if model == CpuModel::I8086 && has_modrm && buf[i + 1] & 0x38 == 0x38 => {
                buf[i + 1] &= !0x08
            }
            0x0F if model == CpuModel::I8086 => {
                buf[i] = 0x1F; // POP CS: decoded as POP DS, executed on CS
                pop_cs = true;
            }
            _ => {}
        }
    }
    let options = if model == CpuModel::P6 {
        DecoderOptions::NONE
    } else {
        DecoderOptions::NO_INVALID_CHECK
    };
    let mut decoder = Decoder::with_ip(if code32 { 32 } else { 16 }, &buf[..n], 0, options);
    let mut insn = decoder.decode();
    if insn.is_invalid() && model != CpuModel::P6 && i < n && (0xD9..=0xDF).contains(&buf[i]) {
        // No coprocessor: every ESC encoding is valid; D8 /r has the same length.
        buf[i] = 0xD8;
        decoder = Decoder::with_ip(if code32 { 32 } else { 16 }, &buf[..n], 0, options);
        insn = decoder.decode();
    }
    if insn.is_invalid() {
        return Err(match decoder.last_error() {
            iced_x86::DecoderError::NoMoreBytes if n < MAX_INSN_LEN => DecodeError::NeedMoreBytes,
            iced_x86::DecoderError::NoMoreBytes => DecodeError::TooLong,
            _ => DecodeError::Invalid,
        });
    }
    if insn.len() > model.max_insn_len() {
        return Err(DecodeError::TooLong);
    }
    let mut d = Decoded {
        quiet: !pop_cs && is_quiet(&insn),
        op: crate::interp::resolve(&insn),
        r0: 0,
        r1: 0,
        imm: 0,
        base: 8,
        index: 8,
        scale: 0,
        seg: crate::state::SegReg::Ds,
        falls_through: false,
        insn,
        addr32,
        op32,
        pop_cs,
    };
    crate::interp::fast::specialise(&mut d);
    Ok(d)
}

/// Whether `insn` is "quiet": executed without a fault, it changes none of
/// what [`crate::Cpu::step`] checks before an instruction (interrupt shadow,
/// NMI blocking, IF, TF, RF, HLT, the debug registers), nor CS, the control
/// registers, the mode or the soft TLB, and it reaches the bus only through
/// memory accesses (no I/O port, no FPU error line). The run loop executes
/// a run of quiet instructions without repeating those checks; an access
/// that leaves the RAM fast path (and so might reach a device) still ends
/// the run (`Cpu::bus_event`). Conservative: anything not listed is not quiet.
pub fn is_quiet(insn: &Instruction) -> bool {
    use iced_x86::{MemorySize, Mnemonic as M, OpKind};
    // No segment-register operand (MOV/PUSH/POP Sreg load segments; MOV SS
    // and POP SS set the interrupt shadow).
    for n in 0..insn.op_count() {
        if insn.op_kind(n) == OpKind::Register && insn.op_register(n).is_segment_register() {
            return false;
        }
    }
    let far = || {
        matches!(insn.op_kind(0), OpKind::FarBranch16 | OpKind::FarBranch32)
            || (insn.op_kind(0) == OpKind::Memory
                && matches!(
                    insn.memory_size(),
                    MemorySize::SegPtr16 | MemorySize::SegPtr32
                ))
    };
    match insn.mnemonic() {
        M::Mov => !crate::interp::system::is_system_mov(insn),
        M::Jmp | M::Call => !far(),
        M::Movzx
        | M::Movsx
        | M::Lea
        | M::Xchg
        | M::Xlatb
        | M::Lahf
        | M::Sahf
        | M::Cbw
        | M::Cwde
        | M::Cwd
        | M::Cdq
        | M::Bswap
        | M::Cmpxchg
        | M::Cmpxchg8b
        | M::Xadd
        | M::Salc
        | M::Add
        | M::Adc
        | M::Sub
        | M::Sbb
        | M::Cmp
        | M::Inc
        | M::Dec
        | M::Neg
        | M::Mul
        | M::Imul
        | M::Div
        | M::Idiv
        | M::And
        | M::Or
        | M::Xor
        | M::Test
        | M::Not
        | M::Sal
        | M::Shl
        | M::Shr
        | M::Sar
        | M::Rol
        | M::Ror
        | M::Rcl
        | M::Rcr
        | M::Shld
        | M::Shrd
        | M::Aaa
        | M::Aas
        | M::Daa
        | M::Das
        | M::Aam
        | M::Aad
        | M::Bt
        | M::Bts
        | M::Btr
        | M::Btc
        | M::Bsf
        | M::Bsr
        | M::Movsb
        | M::Movsw
        | M::Movsd
        | M::Cmpsb
        | M::Cmpsw
        | M::Cmpsd
        | M::Scasb
        | M::Scasw
        | M::Scasd
        | M::Lodsb
        | M::Lodsw
        | M::Lodsd
        | M::Stosb
        | M::Stosw
        | M::Stosd
        | M::Jcxz
        | M::Jecxz
        | M::Loop
        | M::Loope
        | M::Loopne
        | M::Ret
        | M::Push
        | M::Pop
        | M::Pusha
        | M::Pushad
        | M::Popa
        | M::Popad
        | M::Enter
        | M::Leave
        | M::Clc
        | M::Stc
        | M::Cmc
        | M::Cld
        | M::Std
        | M::Nop => true,
        m => {
            insn.condition_code() != iced_x86::ConditionCode::None
                && matches!(
                    m,
                    M::Jo
                        | M::Jno
                        | M::Jb
                        | M::Jae
                        | M::Je
                        | M::Jne
                        | M::Jbe
                        | M::Ja
                        | M::Js
                        | M::Jns
                        | M::Jp
                        | M::Jnp
                        | M::Jl
                        | M::Jge
                        | M::Jle
                        | M::Jg
                        | M::Cmovo
                        | M::Cmovno
                        | M::Cmovb
                        | M::Cmovae
                        | M::Cmove
                        | M::Cmovne
                        | M::Cmovbe
                        | M::Cmova
                        | M::Cmovs
                        | M::Cmovns
                        | M::Cmovp
                        | M::Cmovnp
                        | M::Cmovl
                        | M::Cmovge
                        | M::Cmovle
                        | M::Cmovg
                        | M::Seto
                        | M::Setno
                        | M::Setb
                        | M::Setae
                        | M::Sete
                        | M::Setne
                        | M::Setbe
                        | M::Seta
                        | M::Sets
                        | M::Setns
                        | M::Setp
                        | M::Setnp
                        | M::Setl
                        | M::Setge
                        | M::Setle
                        | M::Setg
                )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::Mnemonic;

    #[test]
    fn decodes_with_relative_targets() {
        let d = decode(&[0xEB, 0x05], false, CpuModel::P6).unwrap();
        assert_eq!(d.insn.mnemonic(), Mnemonic::Jmp);
        assert_eq!(d.insn.near_branch_target(), 7);
    }

    #[test]
    fn short_input_asks_for_more() {
        assert_eq!(
            decode(&[0xB8, 0x01], true, CpuModel::P6).unwrap_err(),
            DecodeError::NeedMoreBytes
        );
    }

    #[test]
    fn prefixes_past_the_limit_are_too_long() {
        let b = [0x26u8; 15]; // 15 prefixes and no opcode within 15 bytes
        assert_eq!(
            decode(&b, false, CpuModel::P6).unwrap_err(),
            DecodeError::TooLong
        );
        let mut b = [0x26u8; 15];
        b[14] = 0x90; // exactly 15 bytes is fine
        assert!(decode(&b, false, CpuModel::P6).is_ok());
        let mut b = [0x26u8; 11];
        b[10] = 0x90;
        assert_eq!(
            decode(&b, false, CpuModel::I286).unwrap_err(),
            DecodeError::TooLong
        );
    }

    #[test]
    fn lock_is_checked_on_p6_but_not_on_the_286() {
        // LOCK NOP and LOCK ADD with a register destination are #UD on the P6.
        assert_eq!(
            decode(&[0xF0, 0x90], false, CpuModel::P6).unwrap_err(),
            DecodeError::Invalid
        );
        assert_eq!(
            decode(&[0xF0, 0x01, 0xC0], true, CpuModel::P6).unwrap_err(),
            DecodeError::Invalid
        );
        assert!(decode(&[0xF0, 0x01, 0x00], true, CpuModel::P6).is_ok());
        assert!(decode(&[0xF0, 0x90], false, CpuModel::I286).is_ok());
    }

    #[test]
    fn i8086_aliases() {
        let d = decode(&[0x64, 0x02], false, CpuModel::I8086).unwrap();
        assert_eq!(d.insn.mnemonic(), Mnemonic::Je);
        assert!(decode(&[0x0F], false, CpuModel::I8086).unwrap().pop_cs);
    }

    #[test]
    fn writes_invalidate_overlapping_entries() {
        let mut c = DecodeCache::new();
        let d = decode(&[0xB8, 1, 0, 0, 0], true, CpuModel::P6).unwrap();
        c.insert(0x103E, true, d); // spans two lines
        assert!(c.lookup(0x103E, true).is_some());
        assert!(c.is_code(0x1041, 1));
        c.invalidate(0x1041, 1);
        assert!(c.lookup(0x103E, true).is_none());
    }

    #[test]
    fn a_larger_cache_holds_code_the_default_one_aliases() {
        let d = decode(&[0x90], true, CpuModel::P6).unwrap();
        let (a, b) = (0x10_0000, 0x12_0000); // 128 KiB apart: the default's tags
        let mut small = DecodeCache::new();
        small.insert(a, true, d);
        small.insert(b, true, d);
        assert!(small.lookup(a, true).is_none(), "one slot for both");
        let mut large = DecodeCache::with_entries(3 << 16); // rounded up to 256 Ki
        large.insert(a, true, d);
        large.insert(b, true, d);
        assert!(large.lookup(a, true).is_some());
        assert!(large.lookup(b, true).is_some());
        large.invalidate(b, 1);
        assert!(large.lookup(b, true).is_none());
        assert!(large.lookup(a, true).is_some());
    }

    /// Decodings fill a ring in the order they are made: once it wraps,
    /// the oldest one's tag is dropped, and a tag given a new slot since
    /// keeps it.
    #[test]
    fn the_ring_drops_the_oldest_decoding_when_it_wraps() {
        let nop = decode(&[0x90], true, CpuModel::P6).unwrap();
        let inc = decode(&[0x40], true, CpuModel::P6).unwrap();
        let mut c = DecodeCache::with_entries(4);
        for a in 0..4 {
            c.insert(0x1000 + a, true, nop);
        }
        // 0x1001 again: a fifth slot (the ring's first), taken from 0x1000.
        c.insert(0x1001, true, inc);
        assert!(c.lookup(0x1000, true).is_none(), "the oldest was dropped");
        assert_eq!(
            c.lookup(0x1001, true).unwrap().insn.mnemonic(),
            Mnemonic::Inc
        );
        // The slot 0x1001 had before is reused: 0x1001 keeps its new one.
        c.insert(0x1004, true, nop);
        assert_eq!(
            c.lookup(0x1001, true).unwrap().insn.mnemonic(),
            Mnemonic::Inc
        );
        assert!(c.lookup(0x1002, true).is_some());
        assert!(c.lookup(0x1003, true).is_some());
        assert!(c.lookup(0x1004, true).is_some());
    }
}
