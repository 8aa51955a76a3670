//! Guest block -> Cranelift function.
//!
//! `scan_at` walks the guest code from a start address through the
//! interpreter's decode cache and decides, per instruction, whether it is
//! lowered inline, run by the interpreter helper inside the block, or left
//! out (the block then ends before it). [`Emitter`] holds the function
//! being built: guest registers and the lazy-flags record are
//! `cranelift-frontend` Variables, loaded on entry and stored by the one
//! shared exit block, which every exit jumps to with `(eip, retired,
//! status, chaining slot)`. An exit with a slot continues straight into
//! the slot's block (a tail call) when it holds the EIP being left with.

use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, Block, BlockArg, InstBuilder, InstructionData, MemFlagsData, Opcode,
    Signature, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, Variable};
use iced_x86::Mnemonic as M;
use oxide86_cpu::decode::Decoded;
use oxide86_cpu::flags::LazyOp;
use oxide86_cpu::{Bus, Cpu, CpuState, LazyFlags};

use crate::ctx::{ChainSlot, JitCtx, EXIT_INTERP, EXIT_NEXT, EXIT_STOP, FAR_SLOT, NO_BUDGET_STOP};

/// The most guest instructions in one block.
pub const MAX_BLOCK_INSNS: usize = 48;

/// Everything about the CPU mode a block's code depends on (part of the
/// translation-cache key besides the physical address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mode {
    /// CS base (linear address of CS:0).
    pub cs_base: u32,
    /// CS limit (branch targets are checked against it).
    pub cs_limit: u32,
    /// 32-bit code segment (default operand and address size).
    pub code32: bool,
    /// 32-bit stack (ESP vs SP).
    pub stack32: bool,
    /// CPL 3: user accesses for paging.
    pub user: bool,
    /// CR0.PE, CR0.PG ([`MODE_PG`]) and EFLAGS.VM, packed, and the CPL.
    pub bits: u8,
    /// Segments (bit `SegReg as u8`) that are flat ordinary data segments
    /// (base 0, limit 4 GiB - 1, present, writable, expand-up): their
    /// accesses need no segment check in generated code.
    pub flat: u8,
}

/// CR0.PG's bit in [`Mode::bits`].
pub const MODE_PG: u8 = 1 << 1;

impl Mode {
    /// The mode the CPU is in now.
    pub fn of(cpu: &Cpu) -> Self {
        let s = &cpu.state;
        let cs = s.seg[oxide86_cpu::SegReg::Cs as usize];
        Mode {
            cs_base: cs.base,
            cs_limit: cs.limit,
            code32: s.code32(),
            stack32: s.stack32(),
            user: s.cpl() == 3,
            bits: u8::from(s.cr0 & 1 != 0)
                | if s.cr0 & 0x8000_0000 != 0 { MODE_PG } else { 0 }
                | (u8::from(s.eflags & oxide86_cpu::state::eflags::VM != 0) << 2)
                | (s.cpl() << 3),
            flat: flat_segments(s),
        }
    }
}

/// The flat-segment mask of [`Mode::flat`].
fn flat_segments(s: &CpuState) -> u8 {
    use oxide86_cpu::state::seg_flags;
    let kind_mask = seg_flags::PRESENT | seg_flags::CODE | seg_flags::RW | seg_flags::DC;
    let mut mask = 0;
    for (i, seg) in s.seg.iter().enumerate() {
        if seg.base == 0
            && seg.limit == u32::MAX
            && seg.flags & kind_mask == seg_flags::PRESENT | seg_flags::RW
        {
            mask |= 1 << i;
        }
    }
    mask
}

/// How one guest instruction is executed in a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lower {
    /// Emitted as Cranelift IR.
    Inline,
    /// Run by the interpreter through a helper call inside the block.
    Helper,
}

/// One guest instruction of a block.
#[derive(Clone, Copy, Debug)]
pub struct GuestInsn {
    /// The decoding.
    pub d: Decoded,
    /// Its EIP.
    pub eip: u32,
    /// The EIP after it (wrapped to the code size).
    pub next: u32,
    /// How it is executed.
    pub lower: Lower,
    /// For an instruction that crosses into the next page (always the
    /// last of its block): the bytes generated code checks before it
    /// runs (see `emit_fetch.rs`).
    pub crossing: Option<[u8; oxide86_cpu::decode::MAX_INSN_LEN]>,
}

/// A scanned block: its instructions and how it ends.
#[derive(Clone, Debug)]
pub struct Scanned {
    /// EIP of the first instruction.
    pub start_eip: u32,
    /// Physical address of the first instruction.
    pub paddr: u32,
    /// The instructions.
    pub insns: Vec<GuestInsn>,
    /// When the last instruction does not transfer control: where the
    /// block continues, and whether that instruction needs the interpreter.
    pub tail: (u32, u32),
}

/// The Rust functions generated code calls (at fixed addresses) and the
/// switches that change what is emitted; the engine picks them once per
/// bus type and mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hooks {
    /// The interpreter helper for the dispatcher's bus type
    /// (`interp_one::<B>`, or its journaling form under `--jit-verify`).
    pub interp_helper: usize,
    /// The lookup stub (`CodeCache::lookup_stub`), tail-called at exits
    /// that cannot chain; 0: those exits return to the dispatcher.
    pub lookup: usize,
    /// Verify mode: called with the host address and width before every
    /// inline store, so the verifier can undo the block's writes
    /// (`verify::journal::note_store`); 0 emits no call.
    pub note_store: usize,
    /// Test only: deliberately miscompile one instruction (see
    /// [`Miscompile`]), to prove that `--jit-verify` catches it.
    pub miscompile: Option<Miscompile>,
    /// Where the soft TLB's entries and guest RAM are, and the direct
    /// window: constants in the code, so no register holds them across a
    /// block (the engine flushes its blocks if any of them changes).
    pub bases: Bases,
}

/// Where the soft TLB's entries and guest RAM were when a block was
/// compiled, and which physical pages were plain RAM: the code uses them
/// as constants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bases {
    /// `Cpu::tlb`'s entry array.
    pub tlb: usize,
    /// The bus's RAM slice (0 if the bus has none: no TLB entry then
    /// offers direct access).
    pub ram: usize,
    /// The longest run of physical pages `lo..hi` (page-aligned byte
    /// addresses) that are plain RAM at RAM offsets equal to their
    /// addresses, under the bus's memory map `map_generation`: with
    /// paging off a read inside it goes straight to RAM.
    pub direct: (u32, u32),
    /// `Bus::memory_map_generation` when `direct` was computed.
    pub map_generation: u64,
}

impl Bases {
    /// The bases of `cpu` and `bus` now.
    pub fn of<B: Bus + ?Sized>(cpu: &Cpu, bus: &mut B) -> Self {
        Self {
            tlb: cpu.tlb.entries_ptr() as usize,
            ram: ram_addr(bus),
            direct: direct_window(bus),
            map_generation: bus.memory_map_generation(),
        }
    }

    /// Whether these are still the bases of `cpu` and `bus` (without
    /// recomputing the window: it changes only with the map's generation).
    pub fn still_hold<B: Bus + ?Sized>(&self, cpu: &Cpu, bus: &mut B) -> bool {
        self.tlb == cpu.tlb.entries_ptr() as usize
            && self.ram == ram_addr(bus)
            && self.map_generation == bus.memory_map_generation()
    }
}

/// Where `bus`'s RAM slice starts (0 if it has none).
fn ram_addr<B: Bus + ?Sized>(bus: &mut B) -> usize {
    bus.ram().map_or(0, |r| r.as_mut_ptr() as usize)
}

/// The longest run of pages that [`Bus::ram_page_offset`] maps to RAM at
/// their own address (below 4 GiB; e.g. 1 MiB to the top of RAM on a PC).
fn direct_window<B: Bus + ?Sized>(bus: &mut B) -> (u32, u32) {
    let pages = bus.ram().map_or(0, |r| r.len() >> 12).min((1 << 20) - 1);
    let (mut best, mut start) = ((0u32, 0u32), None);
    for p in 0..=pages {
        let addr = (p << 12) as u32;
        let identity = p < pages && bus.ram_page_offset(addr) == Some(p << 12);
        match (identity, start) {
            (true, None) => start = Some(p),
            (false, Some(s)) => {
                if p - s > (best.1 - best.0) as usize >> 12 {
                    best = ((s << 12) as u32, addr);
                }
                start = None;
            }
            _ => {}
        }
    }
    best
}

/// A deliberate translation error, for the verifier's own tests only
/// (`Engine::inject_miscompile`). Checked at translation time, so it costs
/// nothing at run time.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miscompile {
    /// Inline `ADD` computes `dst - src` (flags still recorded as an ADD).
    AddAsSub,
}

/// Whether an instruction may run through the interpreter helper inside
/// a block: it neither transfers control nor touches I/O ports, segment
/// registers, IF/TF/IOPL, the interrupt shadow or system state other
/// than the soft TLB: INVLPG drops a TLB entry, and the block ends after
/// it ([`ends_block_after_helper`]). (Memory accesses it makes may reach
/// MMIO; the helper ends the block if that left an interrupt pending.)
/// RDTSC qualifies: the TSC is the retired instruction count plus an
/// offset the machine changes only between `Engine::run` calls, and the
/// block stores the exact count before every helper call, so kernel
/// delay loops (`rdtsc`, compare, branch back) run as one translated
/// loop.
pub fn helper_safe(d: &Decoded) -> bool {
    use iced_x86::OpKind;
    let insn = &d.insn;
    // Only general registers: no segment, control, debug, x87 or SSE ones.
    let other_register = (0..insn.op_count()).any(|i| {
        insn.op_kind(i) == OpKind::Register
            && oxide86_cpu::interp::operand::gpr_slot(insn.op_register(i)).is_none()
    });
    if other_register || d.pop_cs || insn.has_lock_prefix() {
        return false;
    }
    match insn.mnemonic() {
        M::Movsb
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
        | M::Stosd => insn.is_string_instruction(),
        M::Mov
        | M::Movzx
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
        | M::Shl
        | M::Sal
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
        | M::Clc
        | M::Stc
        | M::Cmc
        | M::Cld
        | M::Std
        | M::Pushf
        | M::Pushfd
        | M::Pusha
        | M::Pushad
        | M::Popa
        | M::Popad
        | M::Push
        | M::Pop
        | M::Leave
        | M::Enter
        | M::Nop
        | M::Rdtsc
        | M::Invlpg
        | M::Cmove
        | M::Cmovne
        | M::Cmovb
        | M::Cmovae
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
        | M::Cmovo
        | M::Cmovno
        | M::Sete
        | M::Setne
        | M::Setb
        | M::Setae
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
        | M::Seto
        | M::Setno => true,
        _ => false,
    }
}

/// Whether the block ends after `d` runs through the helper, which then
/// returns to the dispatcher: INVLPG (SDM Vol. 2A, "INVLPG") may have
/// dropped the mapping of the code being run, so what follows is looked
/// up again through the soft TLB, as the interpreter fetches it.
pub fn ends_block_after_helper(d: &Decoded) -> bool {
    d.insn.mnemonic() == M::Invlpg
}

/// Walks guest code from CS:`start_eip` (in the current mode) and
/// decides how each instruction runs, keeping to physical page `page`
/// (the first instruction's page if `None`). Returns `None` when not even
/// the first instruction can be translated.
fn scan_at<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    bus: &mut B,
    mode: &Mode,
    start_eip: u32,
    page: Option<u32>,
) -> Option<Scanned> {
    let mut eip = start_eip;
    let mut insns = Vec::new();
    let mut paddr0 = None;
    let mask = if mode.code32 { u32::MAX } else { 0xFFFF };
    let tail = loop {
        if insns.len() >= MAX_BLOCK_INSNS {
            break (eip, EXIT_NEXT);
        }
        let f = match cpu.fetch_for_translation(bus, eip) {
            Ok(Some(f)) => f,
            _ => break (eip, EXIT_INTERP),
        };
        let first = *paddr0.get_or_insert(f.paddr);
        if f.paddr & !0xFFF != page.unwrap_or(first) & !0xFFF {
            if insns.is_empty() {
                return None;
            }
            break (eip, EXIT_NEXT);
        }
        let next = eip.wrapping_add(f.decoded.insn.len() as u32) & mask;
        let lower = match crate::emit_insn::inline_kind(&f.decoded) {
            Some(_) if f.decoded.insn.mnemonic() == M::Cli && !cli_inline(mode) => {
                break (eip, EXIT_INTERP)
            }
            Some(_) => Lower::Inline,
            None if crate::emit_string::rep_inline(&f.decoded, mode) => Lower::Inline,
            None if helper_safe(&f.decoded) => Lower::Helper,
            None => break (eip, EXIT_INTERP),
        };
        insns.push(GuestInsn {
            d: f.decoded,
            eip,
            next,
            lower,
            crossing: f.crossing,
        });
        if crate::emit_insn::inline_kind(&f.decoded) == Some(true) || f.crossing.is_some() {
            break (next, EXIT_NEXT);
        }
        if ends_block_after_helper(&f.decoded) {
            break (next, EXIT_STOP);
        }
        eip = next;
    };
    let paddr = paddr0?;
    if insns.is_empty() {
        return None;
    }
    Some(Scanned {
        start_eip,
        paddr,
        insns,
        tail,
    })
}

/// Whether CLI only clears IF in `mode` (SDM Vol. 2A, "CLI"): in real
/// mode, or in protected mode at CPL 0 outside virtual-8086 mode; else it
/// may fault or clear VIF, and the interpreter runs it.
fn cli_inline(mode: &Mode) -> bool {
    let pe = mode.bits & 1 != 0;
    let vm = mode.bits & 4 != 0;
    let cpl = mode.bits >> 3;
    !pe || (!vm && cpl == 0)
}

/// Whether `next` (the instruction after another in the same guest
/// block) sets all six status flags without reading any and without a
/// memory operand (so no side exit can come before it): the flags the
/// instruction before it writes are then never seen (SDM Vol. 1,
/// Appendix A: ADD, SUB, CMP, AND, OR, XOR, TEST, NEG and IMUL write
/// OF, SF, ZF, AF, PF and CF; the values of the undefined ones are the
/// interpreter's, and the next instruction replaces those too).
fn flags_dead_after(next: Option<&GuestInsn>) -> bool {
    let Some(g) = next else {
        return false;
    };
    let insn = &g.d.insn;
    g.lower == Lower::Inline
        && matches!(
            insn.mnemonic(),
            M::Add | M::Sub | M::Cmp | M::And | M::Or | M::Xor | M::Test | M::Neg | M::Imul
        )
        && (0..insn.op_count()).all(|n| insn.op_kind(n) != iced_x86::OpKind::Memory)
}

/// Whether, in the instructions `rest` that follow one in its guest
/// block, an instruction that replaces all six status flags without
/// reading any (the list of [`flags_dead_after`], memory operands
/// allowed) comes before anything that reads or partly writes them: only
/// inline instructions that leave the flags alone may come between. Side
/// exits and helpers in between are fine (the deferred flags are written
/// on their paths), so this only says where deferring pays.
fn flags_replaced_later(rest: &[GuestInsn]) -> bool {
    for g in rest {
        if g.lower != Lower::Inline {
            return false;
        }
        match g.d.insn.mnemonic() {
            M::Add | M::Sub | M::Cmp | M::And | M::Or | M::Xor | M::Test | M::Neg | M::Imul => {
                return true
            }
            M::Mov | M::Movzx | M::Movsx | M::Lea | M::Push | M::Pop | M::Nop | M::Not => {}
            _ => return false,
        }
    }
    false
}

/// The most guest blocks in one region.
pub const MAX_REGION_BLOCKS: usize = 16;

/// A region: guest blocks on one physical page that reach each other
/// through direct jumps, calls and returns, compiled as one function
/// (guest registers stay SSA values from block to block). `blocks[0]`
/// is the entry.
#[derive(Clone, Debug)]
pub struct Region {
    /// The guest blocks, entry first.
    pub blocks: Vec<Scanned>,
}

impl Region {
    /// A region of one block.
    pub fn single(block: Scanned) -> Self {
        Self {
            blocks: vec![block],
        }
    }

    /// The entry block.
    pub fn entry(&self) -> &Scanned {
        &self.blocks[0]
    }

    /// Where a block of the region runs on without a transfer (cut by its
    /// length, a page boundary or an instruction across one) to an
    /// instruction that starts no block of the region.
    pub fn straight_continuations(&self) -> Vec<u32> {
        self.blocks
            .iter()
            .filter_map(|b| {
                let last = b.insns.last()?;
                let transfer = last.lower == Lower::Inline
                    && crate::emit_insn::inline_kind(&last.d) == Some(true);
                (!transfer && b.tail.1 == EXIT_NEXT).then_some(b.tail.0)
            })
            .filter(|eip| !self.blocks.iter().any(|b| b.start_eip == *eip))
            .collect()
    }

    /// Where a call in the region returns to (the EIPs after its CALLs).
    pub fn return_points(&self) -> Vec<u32> {
        let mut points: Vec<u32> = self
            .blocks
            .iter()
            .filter_map(|b| b.insns.last())
            .filter(|g| g.lower == Lower::Inline && g.d.insn.mnemonic() == M::Call)
            .map(|g| g.next)
            .filter(|r| self.blocks.iter().any(|b| b.start_eip == *r))
            .collect();
        points.sort_unstable();
        points.dedup();
        points
    }
}

/// The direct successors of a block: where its last instruction may go
/// (with a CALL's return point), each marked `true` when it is the
/// fall-through (a not-taken Jcc, or the block's length limit).
fn successors(block: &Scanned) -> Vec<(u32, bool)> {
    let Some(last) = block.insns.last() else {
        return Vec::new();
    };
    let insn = &last.d.insn;
    let transfer =
        last.lower == Lower::Inline && crate::emit_insn::inline_kind(&last.d) == Some(true);
    if !transfer {
        return match block.tail {
            (eip, EXIT_NEXT) => vec![(eip, true)],
            _ => Vec::new(),
        };
    }
    let target = crate::emit_insn::rel_target(insn, last.eip);
    let indirect = crate::emit_insn::is_indirect_branch(insn);
    match insn.mnemonic() {
        M::Jmp if indirect => Vec::new(),
        M::Call if indirect => vec![(last.next, false)],
        M::Jmp => vec![(target, false)],
        M::Call => vec![(target, false), (last.next, false)],
        M::Ret => Vec::new(),
        _ => vec![(target, false), (last.next, true)],
    }
}

/// Scans the region entered at CS:EIP: the entry block, then (breadth
/// first) the blocks its transfers reach on the same linear and physical
/// page within the CS limit, up to `max_blocks` blocks. A jump, call or
/// return target joins only if `hot(paddr, eip)` says it ran (the tiering
/// counters); a fall-through always does.
pub fn scan_region<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    bus: &mut B,
    mode: &Mode,
    max_blocks: usize,
    hot: &dyn Fn(u32, u32) -> bool,
) -> Option<Region> {
    let eip = cpu.state.eip;
    scan_region_at(cpu, bus, mode, eip, max_blocks, hot)
}

/// [`scan_region`] entered at CS:`eip` (in the CPU's current mode, which
/// `mode` describes).
pub fn scan_region_at<B: Bus + ?Sized>(
    cpu: &mut Cpu,
    bus: &mut B,
    mode: &Mode,
    eip: u32,
    max_blocks: usize,
    hot: &dyn Fn(u32, u32) -> bool,
) -> Option<Region> {
    let entry = scan_at(cpu, bus, mode, eip, None)?;
    let page = entry.paddr;
    let lin_page = mode.cs_base.wrapping_add(entry.start_eip) >> 12;
    let mut region = Region::single(entry);
    let mut next = 0;
    while next < region.blocks.len() && region.blocks.len() < max_blocks {
        for (eip, fall_through) in successors(&region.blocks[next]) {
            let known = region.blocks.iter().any(|b| b.start_eip == eip);
            let lin = mode.cs_base.wrapping_add(eip);
            if known
                || region.blocks.len() >= max_blocks
                || eip > mode.cs_limit
                || lin >> 12 != lin_page
                || !(fall_through || hot(page & !0xFFF | lin & 0xFFF, eip))
            {
                continue;
            }
            if let Some(b) = scan_at(cpu, bus, mode, eip, Some(page)) {
                region.blocks.push(b);
            }
        }
        next += 1;
    }
    Some(region)
}

/// Memory flags for accesses to the state and the context (never trap,
/// aligned fields).
pub(crate) fn trusted() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Offsets in [`CpuState`].
pub(crate) mod off {
    use super::*;
    pub fn gpr(i: usize) -> i32 {
        (offset_of!(CpuState, gpr) + 4 * i) as i32
    }
    pub const EIP: i32 = offset_of!(CpuState, eip) as i32;
    pub const EFLAGS: i32 = offset_of!(CpuState, eflags) as i32;
    pub const ICOUNT: i32 = offset_of!(CpuState, icount) as i32;
    pub const CR4: i32 = offset_of!(CpuState, cr4) as i32;
    pub const TSC_OFFSET: i32 =
        (offset_of!(CpuState, msr) + offset_of!(oxide86_cpu::state::Msrs, tsc_offset)) as i32;
    pub fn lazy(i: usize) -> i32 {
        let base = offset_of!(CpuState, lazy);
        (base
            + [
                offset_of!(LazyFlags, op),
                offset_of!(LazyFlags, width),
                offset_of!(LazyFlags, dst),
                offset_of!(LazyFlags, src),
                offset_of!(LazyFlags, res),
            ][i]) as i32
    }
    pub fn seg(i: usize) -> i32 {
        (offset_of!(CpuState, seg) + i * std::mem::size_of::<oxide86_cpu::SegmentCache>()) as i32
    }
}

/// The region's entry as [`JitCtx::budget_stop`] records it.
fn region_key(region: &Region) -> i64 {
    let e = region.entry();
    ((u64::from(e.paddr) << 32) | u64::from(e.start_eip)) as i64
}

/// A guest block of the region being built.
pub(crate) struct Head {
    pub eip: u32,
    /// Its first Cranelift block.
    pub block: Block,
    /// What the budget must hold when it starts (`budget.rs`).
    pub need: i64,
    /// Only one block of the region transfers to it, and that block's
    /// need includes this one's: a transfer here checks nothing.
    pub covered: bool,
}

/// The function being built for one block.
pub(crate) struct Emitter<'a> {
    pub b: FunctionBuilder<'a>,
    /// `*mut JitCtx`.
    pub ctx: Value,
    /// `*mut CpuState`.
    pub st: Value,
    /// Where the soft TLB's entries and guest RAM are ([`Hooks::bases`]).
    pub bases: Bases,
    pub ptr: Type,
    pub regs: [Variable; 8],
    /// LazyFlags op, width, dst, src, res.
    pub lz: [Variable; 5],
    /// CF of the current flags as an I8 0/1, kept beside the lazy record
    /// (defined by every producer, and from the state's record at entry
    /// and after helpers), so INC, DEC, ADC, SBB and JB/JAE read it
    /// without evaluating an unknown record.
    pub cf: Variable,
    /// The function records an INC or DEC somewhere, so the state's
    /// EFLAGS.CF is written from `cf` wherever the state is written
    /// ([`Emitter::sync_cf`]).
    pub cf_sync: bool,
    /// The budget left, minus the instructions of the guest blocks passed
    /// in this run (the current block's `k` not yet taken off). What was
    /// retired since the state's instruction count was last written is
    /// `JitCtx::budget - budget` (see [`Emitter::sync_count`]), so the
    /// count itself needs no Variable.
    pub budget: Variable,
    /// The region's entry as [`JitCtx::budget_stop`] records it.
    pub entry_key: i64,
    /// The flag-setting operation last recorded in this block, when known
    /// at translation time (else the lazy Variables hold whatever ran).
    pub known: Option<(LazyOp, u32)>,
    /// The status flags the current instruction writes are dead: the next
    /// one replaces all six without reading any and cannot leave the
    /// block before it does ([`flags_dead_after`]), so an instruction that
    /// computes its flags eagerly (IMUL, shifts) may skip them.
    pub flags_dead: bool,
    /// The status flags the current instruction writes are replaced by a
    /// later instruction of the guest block before any reads them
    /// ([`flags_replaced_later`]): an eager producer may defer them.
    pub flags_replaced_later: bool,
    /// Flags an eager producer deferred (see [`Emitter::eager_flags`]).
    pub deferred: Option<crate::emit_muls::Deferred>,
    /// The op and width Variables do not yet hold `known`: a constant
    /// record is given to them only where a join point, the exit or a
    /// helper reads them ([`Emitter::settle_lazy_op`]).
    pub op_pending: bool,
    /// The shared exit: params (eip: i32, retired in this pass: i64,
    /// status: i32, chaining slot address or 0: pointer).
    pub exit: Block,
    /// Each guest block of the region, in its order.
    pub heads: Vec<Head>,
    /// EIPs after the region's CALLs that are blocks of the region: a RET
    /// to one of them continues there.
    pub return_points: Vec<u32>,
    /// The region's Jccs that run as selects (`emit_select.rs`).
    pub(crate) arms: Vec<crate::emit_select::Arms>,
    /// An arm of one is being emitted: nothing may leave the function.
    pub in_arm: bool,
    pub mode: Mode,
    /// Instructions of the current guest block retired so far in this pass.
    pub k: i64,
    /// EIP of the region's entry.
    pub start_eip: u32,
    pub call_conv: CallConv,
    /// Guest instructions for the interpreter helper (kept alive by the block).
    #[allow(
        clippy::vec_box,
        reason = "generated code holds their addresses: they must not move"
    )]
    pub helper_insns: Vec<Box<Decoded>>,
    /// Helper addresses and emission switches.
    pub hooks: Hooks,
    /// Registers some instruction of the block assigns: only these are
    /// written back at the exit (the others still hold their entry values).
    pub dirty: [bool; 8],
    /// Whether some instruction assigns the lazy-flags Variables.
    pub lazy_dirty: bool,
    /// Registers whose Variable is known to equal the state's copy here
    /// (a helper call then need not store them first).
    pub synced: [bool; 8],
    /// The same for the lazy-flags Variables.
    pub lazy_synced: bool,
    /// Registers are stored to the state as they are assigned (outside
    /// selected arms, whose results are assigned again after the
    /// selects), so exits write none back and the registers are not live
    /// into the shared exit: first compilations, where it saves a tenth
    /// of the compile time (`docs/jit.md`, "Translation").
    pub write_through: bool,
    /// Some exit has a far chaining slot (a constant target on another
    /// page): the shared exit checks its mapping ([`emit_chain`]).
    pub has_far: bool,
    /// The block's chaining slots (kept alive by the block).
    #[allow(
        clippy::vec_box,
        reason = "generated code holds their addresses: they must not move"
    )]
    pub slots: Vec<Box<ChainSlot>>,
}

impl Emitter<'_> {
    /// Jumps to the shared exit with `eip`, after `k` retired instructions of
    /// this pass, with `status`. An [`EXIT_NEXT`] exit gets a chaining
    /// slot (the exit block checks at run time that `eip` is on the
    /// block's page).
    pub fn exit_to(&mut self, eip: Value, status: u32) {
        self.exit_with(eip, status, status == EXIT_NEXT, false);
    }

    /// [`Emitter::exit_to`] with a constant EIP (chained through a far
    /// slot when it is on another page).
    pub fn exit_const(&mut self, eip: u32, status: u32) {
        let e = self.b.ins().iconst(types::I32, i64::from(eip as i32));
        let same_page = self.mode.cs_base.wrapping_add(eip) >> 12
            == self.mode.cs_base.wrapping_add(self.start_eip) >> 12;
        let far = status == EXIT_NEXT && !same_page;
        self.has_far |= far;
        self.exit_with(e, status, status == EXIT_NEXT, far);
    }

    fn exit_with(&mut self, eip: Value, status: u32, chain: bool, far: bool) {
        debug_assert!(!self.in_arm, "an exit inside a selected arm");
        // Deferred flags are written on this path only (it may be a side
        // exit's cold block): the code after it still defers them.
        let main = (self.deferred, self.known, self.op_pending, self.lazy_synced);
        self.materialize_deferred();
        self.settle_lazy_op();
        // The interpreter reads EFLAGS.CF under an INC or DEC record (or
        // a record this function may not know).
        if !matches!(self.known, Some((op, _)) if !matches!(op, LazyOp::Inc | LazyOp::Dec)) {
            self.sync_cf();
        }
        let k = self.b.ins().iconst(types::I64, self.k);
        let s = self.b.ins().iconst(types::I32, i64::from(status));
        let slot = if chain {
            let slot = Box::<ChainSlot>::default();
            let addr = &*slot as *const ChainSlot as usize;
            self.slots.push(slot);
            (if far { addr | FAR_SLOT } else { addr }) as i64
        } else {
            0
        };
        let slot = self.b.ins().iconst(self.ptr, slot);
        self.b.ins().jump(
            self.exit,
            &[BlockArg::from(eip), k.into(), s.into(), slot.into()],
        );
        if main.0.is_some() {
            (self.deferred, self.known, self.op_pending, self.lazy_synced) = main;
        }
    }

    /// Control goes to `target` after `self.k` instructions of the current
    /// guest block (the transfer included): into the region's block there
    /// when it has one and the budget holds its need (`budget.rs`; a
    /// covered block was checked for by the block before it), else out
    /// through the exit.
    pub fn transfer(&mut self, target: u32) {
        let Some(&Head {
            block: head,
            need,
            covered,
            ..
        }) = self.heads.iter().find(|h| h.eip == target)
        else {
            self.exit_const(target, EXIT_NEXT);
            return;
        };
        self.materialize_deferred();
        self.settle_lazy_op();
        let n = self.k;
        let bu = self.b.use_var(self.budget);
        let bu = self.b.ins().iadd_imm_s(bu, -n);
        self.b.def_var(self.budget, bu);
        if covered {
            // The block before this one checked for it (`budget.rs`).
            self.b.ins().jump(head, &[]);
            return;
        }
        let more = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, bu, need);
        let stop = self.b.create_block();
        self.b.set_cold_block(stop);
        self.b.ins().brif(more, head, &[], stop, &[]);
        self.b.switch_to_block(stop);
        let k = self.b.ins().iconst(types::I64, self.entry_key);
        let at = offset_of!(JitCtx, budget_stop) as i32;
        self.b.ins().store(trusted(), k, self.ctx, at);
        let saved = self.k;
        self.k = 0;
        self.exit_const(target, EXIT_NEXT);
        self.k = saved;
    }

    /// A transfer to a run-time `target` (a RET): to the region's block
    /// when `target` is one of its return points, else out through the
    /// exit (chained when possible).
    pub fn transfer_dynamic(&mut self, target: Value) {
        self.materialize_deferred();
        for r in self.return_points.clone() {
            let hit = self.b.ins().icmp_imm_u(IntCC::Equal, target, i64::from(r));
            let there = self.b.create_block();
            let other = self.b.create_block();
            self.b.ins().brif(hit, there, &[], other, &[]);
            self.b.switch_to_block(there);
            self.transfer(r);
            self.b.switch_to_block(other);
        }
        self.exit_to(target, EXIT_NEXT);
    }

    /// A conditional side exit: when `cond` is non-zero, leave the block
    /// before the current instruction (at `eip`) with [`EXIT_INTERP`].
    pub fn side_exit_if(&mut self, cond: Value, eip: u32) {
        let slow = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(cond, slow, &[], cont, &[]);
        self.b.switch_to_block(slow);
        self.exit_const(eip, EXIT_INTERP);
        self.b.switch_to_block(cont);
    }

    /// Assigns guest register `i` (EAX = 0 ... EDI = 7).
    pub fn set_reg(&mut self, i: usize, v: Value) {
        self.b.def_var(self.regs[i], v);
        if self.write_through && !self.in_arm {
            self.store_st(v, off::gpr(i));
            self.synced[i] = true;
            return;
        }
        self.dirty[i] = true;
        self.synced[i] = false;
    }

    /// The address of the soft TLB's entry array, as a constant made where
    /// it is used (Cranelift rematerialises constants per block, so it
    /// occupies no register between accesses).
    pub fn tlb_base(&mut self) -> Value {
        self.b.ins().iconst(self.ptr, self.bases.tlb as i64)
    }

    /// The address of guest RAM, as [`Emitter::tlb_base`].
    pub fn ram_base(&mut self) -> Value {
        self.b.ins().iconst(self.ptr, self.bases.ram as i64)
    }

    /// Loads a 32-bit field of the state.
    pub fn load_st(&mut self, ty: Type, offset: i32) -> Value {
        self.b.ins().load(ty, trusted(), self.st, offset)
    }

    /// Stores to a field of the state.
    pub fn store_st(&mut self, v: Value, offset: i32) {
        self.b.ins().store(trusted(), v, self.st, offset);
    }

    /// Writes the register and flag Variables and the instruction count to
    /// the state before a helper runs the current instruction (which
    /// counts itself: the context's budget already leaves it out).
    pub fn flush_vars(&mut self) {
        for i in 0..8 {
            if !self.synced[i] {
                let v = self.b.use_var(self.regs[i]);
                self.store_st(v, off::gpr(i));
                self.synced[i] = true;
            }
        }
        self.store_lazy();
        let bu = self.b.use_var(self.budget);
        let left = self.b.ins().iadd_imm_s(bu, -self.k);
        self.sync_count(left, 1);
    }

    /// The instruction count at the current instruction (those retired
    /// before it), as an I64, without writing it.
    pub fn icount_now(&mut self) -> Value {
        let bu = self.b.use_var(self.budget);
        let left = self.b.ins().iadd_imm_s(bu, -self.k);
        let at = offset_of!(JitCtx, budget) as i32;
        let synced = self.b.ins().load(types::I64, trusted(), self.ctx, at);
        let done = self.b.ins().isub(synced, left);
        let ic = self.load_st(types::I64, off::ICOUNT);
        self.b.ins().iadd(ic, done)
    }

    /// Adds what was retired since the last sync to the state's
    /// instruction count, given the budget `left` now, and sets the
    /// context's budget to `left - ahead` (`ahead`: instructions about to
    /// be counted by the state's own count, a helper's).
    pub fn sync_count(&mut self, left: Value, ahead: i64) {
        let ctx = self.ctx;
        let at = offset_of!(JitCtx, budget) as i32;
        let synced = self.b.ins().load(types::I64, trusted(), ctx, at);
        let done = self.b.ins().isub(synced, left);
        let ic = self.load_st(types::I64, off::ICOUNT);
        let ic = self.b.ins().iadd(ic, done);
        self.store_st(ic, off::ICOUNT);
        let left = self.b.ins().iadd_imm_s(left, -ahead);
        self.b.ins().store(trusted(), left, ctx, at);
    }

    /// Gives the op and width Variables the record `known` holds, when
    /// [`Emitter::record_flags`] deferred it. Called on every path that
    /// reads them (it may run in one arm of a branch, so it does not
    /// clear `op_pending`: the other arm settles again).
    pub fn settle_lazy_op(&mut self) {
        if !self.op_pending {
            return;
        }
        if let Some((op, w)) = self.known {
            let opv = self.b.ins().iconst(types::I32, op as i64);
            let wv = self.b.ins().iconst(types::I32, i64::from(w));
            self.b.def_var(self.lz[0], opv);
            self.b.def_var(self.lz[1], wv);
        }
    }

    /// `v & mask` for an I32 `v` and a width mask: `v` itself when the mask
    /// keeps all 32 bits, a constant when `v` is one (blocks are compiled
    /// at `opt_level=none`, which folds nothing).
    pub fn mask(&mut self, v: Value, mask: i64) -> Value {
        let m = mask as u32;
        if self.b.func.dfg.value_type(v) != types::I32 {
            return self.b.ins().band_imm_u(v, mask);
        }
        if m == u32::MAX {
            return v;
        }
        if let Some(c) = self.const_of(v) {
            return self.b.ins().iconst(types::I32, i64::from(c & m));
        }
        self.b.ins().band_imm_u(v, mask)
    }

    /// The value of `v` when an `iconst` defines it.
    pub fn const_of(&self, v: Value) -> Option<u32> {
        let inst = self.b.func.dfg.value_def(v).inst()?;
        match self.b.func.dfg.insts[inst] {
            InstructionData::UnaryImm {
                opcode: Opcode::Iconst,
                imm,
            } => Some(imm.bits() as u32),
            _ => None,
        }
    }

    /// Reloads the register and flag Variables from the state (after a helper).
    pub fn reload_vars(&mut self) {
        for i in 0..8 {
            let v = self.load_st(types::I32, off::gpr(i));
            self.b.def_var(self.regs[i], v);
            self.dirty[i] |= !self.write_through;
        }
        for i in 0..5 {
            let v = self.load_st(types::I32, off::lazy(i));
            self.b.def_var(self.lz[i], v);
        }
        self.load_cf();
        self.lazy_dirty = true;
        self.known = None;
        self.op_pending = false;
        self.synced = [true; 8];
        self.lazy_synced = true;
    }

    /// Calls a helper at a fixed host address with the given signature.
    pub fn call_helper(
        &mut self,
        addr: usize,
        params: &[Type],
        ret: Option<Type>,
        args: &[Value],
    ) -> Option<Value> {
        let mut sig = Signature::new(self.call_conv);
        for p in params {
            sig.params.push(AbiParam::new(*p));
        }
        if let Some(r) = ret {
            sig.returns.push(AbiParam::new(r));
        }
        let sr = self.b.import_signature(sig);
        let callee = self.b.ins().iconst(self.ptr, addr as i64);
        let call = self.b.ins().call_indirect(sr, callee, args);
        self.b.inst_results(call).first().copied()
    }
}

/// What [`emit_region`] built besides the CLIF.
#[allow(
    clippy::vec_box,
    reason = "generated code holds their addresses: they must not move"
)]
pub(crate) struct Emitted {
    /// Instructions the code points to (for the interpreter helper).
    pub helper_insns: Vec<Box<Decoded>>,
    /// Chaining slots the code points to.
    pub slots: Vec<Box<ChainSlot>>,
    /// Branches that run as selects (`emit_select.rs`).
    pub selects: usize,
    /// What the budget must hold for the function to start (`budget.rs`).
    pub entry_need: u64,
}

/// Builds the CLIF for `region` into `b` for the target `fcfg` (the
/// function's signature is [`crate::cache::block_signature`]; helpers are
/// called in the target's default convention, at the addresses in
/// `hooks`), and says what else it built. With `write_through`, registers
/// are stored as they are assigned ([`Emitter::write_through`]).
pub(crate) fn emit_region(
    mut b: FunctionBuilder<'_>,
    region: &Region,
    mode: Mode,
    hooks: Hooks,
    fcfg: cranelift_codegen::isa::TargetFrontendConfig,
    write_through: bool,
) -> Emitted {
    let ptr = fcfg.pointer_type();
    let call_conv = fcfg.default_call_conv;
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let ctx = b.block_params(entry)[0];
    // The entry block's need must fit in the budget (the dispatcher
    // checks this for the first block of a chain, this check covers the
    // chained ones): else leave at once, state untouched, for the
    // interpreter.
    let budget0 = b.ins().load(
        types::I64,
        trusted(),
        ctx,
        offset_of!(JitCtx, budget) as i32,
    );
    let block = region.entry();
    let arms = crate::emit_select::plan(region);
    let plan = crate::budget::plan(region, &arms);
    let short = b
        .ins()
        .icmp_imm_u(IntCC::UnsignedLessThan, budget0, plan.need[0]);
    let refuse = b.create_block();
    let body = b.create_block();
    b.set_cold_block(refuse);
    b.ins().brif(short, refuse, &[], body, &[]);
    b.switch_to_block(refuse);
    // Where the budget ran out, unless a region this one was chained from
    // stopped there first (its stop exit went on to this entry).
    let entry_key = region_key(region);
    let at = offset_of!(JitCtx, budget_stop) as i32;
    let recorded = b.ins().load(types::I64, trusted(), ctx, at);
    let none = b
        .ins()
        .icmp_imm_u(IntCC::Equal, recorded, NO_BUDGET_STOP as i64);
    let k = b.ins().iconst(types::I64, entry_key);
    let k = b.ins().select(none, k, recorded);
    b.ins().store(trusted(), k, ctx, at);
    let s = b.ins().iconst(types::I32, i64::from(EXIT_NEXT));
    b.ins().return_(&[s]);
    b.switch_to_block(body);
    let st = b
        .ins()
        .load(ptr, trusted(), ctx, offset_of!(JitCtx, state) as i32);
    let regs = std::array::from_fn(|_| b.declare_var(types::I32));
    let lz = std::array::from_fn(|_| b.declare_var(types::I32));
    let budget = b.declare_var(types::I64);
    let cf = b.declare_var(types::I8);
    let exit = b.create_block();
    b.append_block_param(exit, types::I32);
    b.append_block_param(exit, types::I64);
    b.append_block_param(exit, types::I32);
    b.append_block_param(exit, ptr);
    let heads: Vec<Head> = region
        .blocks
        .iter()
        .zip(plan.need.iter().zip(&plan.covered))
        .map(|(g, (&need, &covered))| Head {
            eip: g.start_eip,
            block: b.create_block(),
            need,
            covered,
        })
        .collect();
    let head = heads[0].block;
    let mut e = Emitter {
        b,
        ctx,
        st,
        bases: hooks.bases,
        ptr,
        regs,
        lz,
        cf,
        cf_sync: region.blocks.iter().any(|b| {
            b.insns
                .iter()
                .any(|g| g.lower == Lower::Inline && matches!(g.d.insn.mnemonic(), M::Inc | M::Dec))
        }),
        budget,
        entry_key,
        known: None,
        flags_dead: false,
        flags_replaced_later: false,
        deferred: None,
        op_pending: false,
        exit,
        heads,
        return_points: region.return_points(),
        arms,
        in_arm: false,
        mode,
        k: 0,
        start_eip: block.start_eip,
        call_conv,
        helper_insns: Vec::new(),
        hooks,
        slots: Vec::new(),
        has_far: false,
        write_through,
        dirty: [false; 8],
        lazy_dirty: false,
        synced: [true; 8],
        lazy_synced: true,
    };
    for i in 0..8 {
        let v = e.load_st(types::I32, off::gpr(i));
        e.b.def_var(e.regs[i], v);
    }
    for i in 0..5 {
        let v = e.load_st(types::I32, off::lazy(i));
        e.b.def_var(e.lz[i], v);
    }
    e.load_cf();
    e.b.def_var(e.budget, budget0);
    e.b.ins().jump(head, &[]);
    for (i, block) in region.blocks.iter().enumerate() {
        e.b.switch_to_block(e.heads[i].block);
        // A join point: the flag producer is not known statically, and
        // the Variables may differ from the state on some path here.
        e.known = None;
        e.op_pending = false;
        debug_assert!(e.deferred.is_none(), "flags deferred across a join");
        e.deferred = None;
        e.synced = [e.write_through; 8];
        e.lazy_synced = false;
        e.k = 0;
        for (i, g) in block.insns.iter().enumerate() {
            e.flags_dead = flags_dead_after(block.insns.get(i + 1));
            e.flags_replaced_later = flags_replaced_later(&block.insns[i + 1..]);
            if let Some(bytes) = &g.crossing {
                e.check_crossing_fetch(g, bytes);
            }
            match g.lower {
                Lower::Inline => crate::emit_insn::emit(&mut e, g),
                Lower::Helper => crate::helpers::emit_helper_call(&mut e, g),
            }
            e.k += 1;
        }
        let last = block.insns.last().map(|g| (g.d, g.lower));
        let transferred = matches!(last, Some((d, Lower::Inline)) if crate::emit_insn::inline_kind(&d) == Some(true));
        match block.tail {
            _ if transferred => {}
            (eip, EXIT_NEXT) => e.transfer(eip),
            (eip, status) => e.exit_const(eip, status),
        }
    }
    // The shared exit: write back what the block assigns.
    e.b.switch_to_block(exit);
    let params = e.b.block_params(exit).to_vec();
    for i in 0..8 {
        if e.dirty[i] {
            let v = e.b.use_var(e.regs[i]);
            e.store_st(v, off::gpr(i));
        }
    }
    if e.lazy_dirty {
        for i in 0..5 {
            let v = e.b.use_var(e.lz[i]);
            e.store_st(v, off::lazy(i));
        }
    }
    e.store_st(params[0], off::EIP);
    let bu = e.b.use_var(e.budget);
    let left = e.b.ins().isub(bu, params[1]);
    e.sync_count(left, 0);
    emit_chain(&mut e, params[0], params[2], params[3]);
    e.b.seal_all_blocks();
    let emitted = Emitted {
        helper_insns: std::mem::take(&mut e.helper_insns),
        slots: std::mem::take(&mut e.slots),
        selects: e.arms.len(),
        entry_need: e.heads[0].need as u64,
    };
    e.b.finalize(fcfg);
    emitted
}

/// Loads the field at `offset` (of type `ty`) of the [`ChainSlot`] at `at`.
fn slot_field(e: &mut Emitter<'_>, at: Value, ty: Type, offset: usize) -> Value {
    e.b.ins().load(ty, trusted(), at, offset as i32)
}

/// The end of the shared exit, after the state is written back: with a
/// chaining slot (`slot` != 0) and `eip` on the block's page, tail-call
/// the slot's block when it starts at `eip`, else ask the dispatcher to
/// link the slot (`JitCtx::link_slot`). A far slot ([`FAR_SLOT`] set: a
/// constant target on another page) and a slot whose dynamic target lies
/// on another page are taken when they are linked (to that EIP) and,
/// with paging on, the soft TLB still maps the target's page to the page
/// it was linked to with the fetch right. Any other [`EXIT_NEXT`] exit
/// tail-calls the lookup stub (`Hooks::lookup`), which asks the jump
/// cache (`jump_cache::lookup`) and tail-calls what it finds.
/// Otherwise return `status` to the dispatcher.
fn emit_chain(e: &mut Emitter<'_>, eip: Value, status: Value, slot: Value) {
    let ret = e.b.create_block();
    let check = e.b.create_block();
    let probe = e.b.create_block();
    let chain = e.b.create_block();
    e.b.append_block_param(chain, e.ptr);
    let link = e.b.create_block();
    e.b.append_block_param(link, e.ptr);
    let unslotted = e.b.create_block();
    // A linked slot whose successor is on another page (params: the
    // slot's address, its entry): taken when it holds `eip` and, with
    // paging on, the soft TLB still maps the target's page to the one
    // the successor was translated from.
    let far_linked = e.b.create_block();
    e.b.append_block_param(far_linked, e.ptr);
    e.b.append_block_param(far_linked, e.ptr);
    if e.has_far {
        let tagged = e.b.create_block();
        let far = e.b.create_block();
        e.b.ins().brif(slot, tagged, &[], unslotted, &[]);
        e.b.switch_to_block(tagged);
        let is_far = e.b.ins().band_imm_u(slot, FAR_SLOT as i64);
        e.b.ins().brif(is_far, far, &[], check, &[]);
        e.b.switch_to_block(far);
        let at = e.b.ins().band_imm_u(slot, !(FAR_SLOT as i64));
        let entry = slot_field(e, at, e.ptr, offset_of!(ChainSlot, entry));
        e.b.ins().brif(
            entry,
            far_linked,
            &[at.into(), entry.into()],
            link,
            &[slot.into()],
        );
    } else {
        e.b.ins().brif(slot, check, &[], unslotted, &[]);
    }
    // A dynamic target (a RET) on the block's page takes the slot as a
    // near one; off the page, as a far one (linked with [`FAR_SLOT`] set).
    e.b.switch_to_block(check);
    let lin = e.b.ins().iadd_imm_s(eip, i64::from(e.mode.cs_base as i32));
    let start = e.mode.cs_base.wrapping_add(e.start_eip);
    let x = e.b.ins().bxor_imm_u(lin, i64::from(start));
    let off_page = e.b.ins().band_imm_u(x, i64::from(0xFFFF_F000u32));
    let far_dynamic = e.b.create_block();
    e.b.ins().brif(off_page, far_dynamic, &[], probe, &[]);
    e.b.switch_to_block(far_dynamic);
    let entry = slot_field(e, slot, e.ptr, offset_of!(ChainSlot, entry));
    let tagged = e.b.ins().bor_imm_u(slot, FAR_SLOT as i64);
    e.b.ins().brif(
        entry,
        far_linked,
        &[slot.into(), entry.into()],
        link,
        &[tagged.into()],
    );
    e.b.switch_to_block(far_linked);
    let (at, entry) = (
        e.b.block_params(far_linked)[0],
        e.b.block_params(far_linked)[1],
    );
    let want = slot_field(e, at, types::I32, offset_of!(ChainSlot, eip));
    let mut go = e.b.ins().icmp(IntCC::Equal, want, eip);
    if e.mode.bits & MODE_PG != 0 {
        let page = slot_field(e, at, types::I32, offset_of!(ChainSlot, page));
        let lin = e.b.ins().iadd_imm_s(eip, i64::from(e.mode.cs_base as i32));
        let mapped = e.fetch_maps_to(lin, page);
        go = e.b.ins().band(go, mapped);
    }
    // With paging off linear is physical, and a change of the memory map
    // drops every block: the link holds as long as its successor.
    e.b.ins().brif(go, chain, &[entry.into()], unslotted, &[]);
    e.b.switch_to_block(probe);
    let entry = slot_field(e, slot, e.ptr, offset_of!(ChainSlot, entry));
    let want = slot_field(e, slot, types::I32, offset_of!(ChainSlot, eip));
    let same = e.b.ins().icmp(IntCC::Equal, want, eip);
    let linked = e.b.ins().icmp_imm_u(IntCC::NotEqual, entry, 0);
    let go = e.b.ins().band(same, linked);
    if e.hooks.lookup == 0 {
        e.b.ins()
            .brif(go, chain, &[entry.into()], link, &[slot.into()]);
    } else {
        // A slot linked to another EIP (a RET to several call sites)
        // keeps its link: the jump cache serves the other targets.
        let other = e.b.create_block();
        e.b.ins().brif(go, chain, &[entry.into()], other, &[]);
        e.b.switch_to_block(other);
        e.b.ins().brif(linked, unslotted, &[], link, &[slot.into()]);
    }
    e.b.switch_to_block(chain);
    let entry = e.b.block_params(chain)[0];
    let ctx = e.ctx;
    let n = e.b.ins().load(
        types::I64,
        trusted(),
        ctx,
        offset_of!(JitCtx, chained) as i32,
    );
    let n = e.b.ins().iadd_imm_s(n, 1);
    e.b.ins()
        .store(trusted(), n, ctx, offset_of!(JitCtx, chained) as i32);
    let sr = e.b.import_signature(crate::cache::block_signature(e.ptr));
    e.b.ins().return_call_indirect(sr, entry, &[ctx]);
    // The dispatcher links the slot to the block it looks up next, so
    // this exit must return to it (not continue through the jump cache).
    e.b.switch_to_block(link);
    let to_link = e.b.block_params(link)[0];
    e.b.ins().store(
        trusted(),
        to_link,
        ctx,
        offset_of!(JitCtx, link_slot) as i32,
    );
    e.b.ins().jump(ret, &[]);
    e.b.switch_to_block(unslotted);
    if e.hooks.lookup == 0 {
        e.b.ins().jump(ret, &[]);
    } else {
        let find = e.b.create_block();
        let next =
            e.b.ins()
                .icmp_imm_u(IntCC::Equal, status, i64::from(EXIT_NEXT));
        e.b.ins().brif(next, find, &[], ret, &[]);
        e.b.switch_to_block(find);
        let stub = e.b.ins().iconst(e.ptr, e.hooks.lookup as i64);
        let sr = e.b.import_signature(crate::cache::block_signature(e.ptr));
        e.b.ins().return_call_indirect(sr, stub, &[ctx]);
    }
    e.b.switch_to_block(ret);
    e.b.ins().return_(&[status]);
}
