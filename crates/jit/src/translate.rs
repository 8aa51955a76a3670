//! Guest block -> Cranelift function.
//!
//! [`scan`] walks the guest code from a start address through the
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
    types, AbiParam, Block, BlockArg, InstBuilder, MemFlagsData, Signature, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, Variable};
use iced_x86::Mnemonic as M;
use oxide86_cpu::decode::Decoded;
use oxide86_cpu::flags::LazyOp;
use oxide86_cpu::{Bus, Cpu, CpuState, LazyFlags};

use crate::ctx::{ChainSlot, JitCtx, EXIT_INTERP, EXIT_NEXT};

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
    /// CR0.PE, CR0.PG and EFLAGS.VM, packed.
    pub bits: u8,
}

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
                | (u8::from(s.cr0 & 0x8000_0000 != 0) << 1)
                | (u8::from(s.eflags & oxide86_cpu::state::eflags::VM != 0) << 2)
                | (s.cpl() << 3),
        }
    }
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
    /// Verify mode: called with the host address and width before every
    /// inline store, so the verifier can undo the block's writes
    /// (`verify::journal::note_store`); 0 emits no call.
    pub note_store: usize,
    /// Test only: deliberately miscompile one instruction (see
    /// [`Miscompile`]), to prove that `--jit-verify` catches it.
    pub miscompile: Option<Miscompile>,
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
/// registers, IF/TF/IOPL, the interrupt shadow or system state. (Memory
/// accesses it makes may reach MMIO; the helper ends the block if that
/// left an interrupt pending.)
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
        | M::Pause
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

/// Walks guest code from CS:`eip` (in the current mode) and decides how
/// each instruction runs. Returns `None` when not even the first
/// instruction can be translated.
pub fn scan<B: Bus + ?Sized>(cpu: &mut Cpu, bus: &mut B, mode: &Mode) -> Option<Scanned> {
    let start_eip = cpu.state.eip;
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
        let page = *paddr0.get_or_insert(f.paddr);
        if f.paddr & !0xFFF != page & !0xFFF {
            break (eip, EXIT_NEXT);
        }
        let next = eip.wrapping_add(f.decoded.insn.len() as u32) & mask;
        let lower = match crate::emit_insn::inline_kind(&f.decoded) {
            Some(_) => Lower::Inline,
            None if helper_safe(&f.decoded) => Lower::Helper,
            None => break (eip, EXIT_INTERP),
        };
        insns.push(GuestInsn {
            d: f.decoded,
            eip,
            next,
            lower,
        });
        if crate::emit_insn::inline_kind(&f.decoded) == Some(true) {
            break (next, EXIT_NEXT);
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

/// The function being built for one block.
pub(crate) struct Emitter<'a> {
    pub b: FunctionBuilder<'a>,
    /// `*mut JitCtx`.
    pub ctx: Value,
    /// `*mut CpuState`.
    pub st: Value,
    pub ptr: Type,
    pub regs: [Variable; 8],
    /// LazyFlags op, width, dst, src, res.
    pub lz: [Variable; 5],
    pub icount: Variable,
    pub budget: Variable,
    /// The flag-setting operation last recorded in this block, when known
    /// at translation time (else the lazy Variables hold whatever ran).
    pub known: Option<(LazyOp, u32)>,
    /// The shared exit: params (eip: i32, retired in this pass: i64,
    /// status: i32, chaining slot address or 0: pointer).
    pub exit: Block,
    /// The loop head (start of the block's body, after the entry loads).
    pub head: Block,
    pub mode: Mode,
    /// Instructions retired so far in this pass through the body.
    pub k: i64,
    pub start_eip: u32,
    pub block_len: i64,
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
        self.exit_with(eip, status, status == EXIT_NEXT);
    }

    /// [`Emitter::exit_to`] with a constant EIP (chained only when it is
    /// on the block's own page).
    pub fn exit_const(&mut self, eip: u32, status: u32) {
        let e = self.b.ins().iconst(types::I32, i64::from(eip as i32));
        let same_page = self.mode.cs_base.wrapping_add(eip) >> 12
            == self.mode.cs_base.wrapping_add(self.start_eip) >> 12;
        self.exit_with(e, status, status == EXIT_NEXT && same_page);
    }

    fn exit_with(&mut self, eip: Value, status: u32, chain: bool) {
        let k = self.b.ins().iconst(types::I64, self.k);
        let s = self.b.ins().iconst(types::I32, i64::from(status));
        let slot = if chain {
            let slot = Box::<ChainSlot>::default();
            let addr = &*slot as *const ChainSlot as i64;
            self.slots.push(slot);
            addr
        } else {
            0
        };
        let slot = self.b.ins().iconst(self.ptr, slot);
        self.b.ins().jump(
            self.exit,
            &[BlockArg::from(eip), k.into(), s.into(), slot.into()],
        );
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
        self.dirty[i] = true;
        self.b.def_var(self.regs[i], v);
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
    /// the state (before a helper that reads it).
    pub fn flush_vars(&mut self) {
        for i in 0..8 {
            let v = self.b.use_var(self.regs[i]);
            self.store_st(v, off::gpr(i));
        }
        for i in 0..5 {
            let v = self.b.use_var(self.lz[i]);
            self.store_st(v, off::lazy(i));
        }
        let ic = self.b.use_var(self.icount);
        let ic = self.b.ins().iadd_imm_s(ic, self.k);
        self.store_st(ic, off::ICOUNT);
    }

    /// Reloads the register and flag Variables from the state (after a helper).
    pub fn reload_vars(&mut self) {
        for i in 0..8 {
            let v = self.load_st(types::I32, off::gpr(i));
            self.set_reg(i, v);
        }
        for i in 0..5 {
            let v = self.load_st(types::I32, off::lazy(i));
            self.b.def_var(self.lz[i], v);
        }
        self.lazy_dirty = true;
        self.known = None;
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

#[allow(
    clippy::vec_box,
    clippy::type_complexity,
    reason = "generated code holds their addresses: they must not move"
)]
/// Builds the CLIF for `block` into `b` (the function's signature is
/// [`crate::cache::block_signature`]; helpers are called in `call_conv`,
/// at the addresses in `hooks`).
/// Returns the instructions and chaining slots the code points to.
pub(crate) fn emit_block(
    mut b: FunctionBuilder<'_>,
    block: &Scanned,
    mode: Mode,
    ptr: Type,
    call_conv: CallConv,
    hooks: Hooks,
    fcfg: cranelift_codegen::isa::TargetFrontendConfig,
) -> (Vec<Box<Decoded>>, Vec<Box<ChainSlot>>) {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let ctx = b.block_params(entry)[0];
    // One pass must fit in the budget (the dispatcher checks this for the
    // first block of a chain, this check covers the chained ones): else
    // leave at once, state untouched, for the interpreter.
    let budget0 = b.ins().load(
        types::I64,
        trusted(),
        ctx,
        offset_of!(JitCtx, budget) as i32,
    );
    let short = b
        .ins()
        .icmp_imm_u(IntCC::UnsignedLessThan, budget0, block.insns.len() as i64);
    let refuse = b.create_block();
    let body = b.create_block();
    b.set_cold_block(refuse);
    b.ins().brif(short, refuse, &[], body, &[]);
    b.switch_to_block(refuse);
    let s = b.ins().iconst(types::I32, i64::from(EXIT_NEXT));
    b.ins().return_(&[s]);
    b.switch_to_block(body);
    let st = b
        .ins()
        .load(ptr, trusted(), ctx, offset_of!(JitCtx, state) as i32);
    let regs = std::array::from_fn(|_| b.declare_var(types::I32));
    let lz = std::array::from_fn(|_| b.declare_var(types::I32));
    let icount = b.declare_var(types::I64);
    let budget = b.declare_var(types::I64);
    let exit = b.create_block();
    b.append_block_param(exit, types::I32);
    b.append_block_param(exit, types::I64);
    b.append_block_param(exit, types::I32);
    b.append_block_param(exit, ptr);
    let head = b.create_block();
    let mut e = Emitter {
        b,
        ctx,
        st,
        ptr,
        regs,
        lz,
        icount,
        budget,
        known: None,
        exit,
        head,
        mode,
        k: 0,
        start_eip: block.start_eip,
        block_len: block.insns.len() as i64,
        call_conv,
        helper_insns: Vec::new(),
        hooks,
        slots: Vec::new(),
        dirty: [false; 8],
        lazy_dirty: false,
    };
    for i in 0..8 {
        let v = e.load_st(types::I32, off::gpr(i));
        e.b.def_var(e.regs[i], v);
    }
    for i in 0..5 {
        let v = e.load_st(types::I32, off::lazy(i));
        e.b.def_var(e.lz[i], v);
    }
    let v = e.load_st(types::I64, off::ICOUNT);
    e.b.def_var(e.icount, v);
    e.b.def_var(e.budget, budget0);
    e.b.ins().jump(head, &[]);
    e.b.switch_to_block(head);
    for g in &block.insns {
        match g.lower {
            Lower::Inline => crate::emit_insn::emit(&mut e, g),
            Lower::Helper => crate::helpers::emit_helper_call(&mut e, g),
        }
        e.k += 1;
    }
    let last = block.insns.last().map(|g| (g.d, g.lower));
    let transferred =
        matches!(last, Some((d, Lower::Inline)) if crate::emit_insn::inline_kind(&d) == Some(true));
    if !transferred {
        e.exit_const(block.tail.0, block.tail.1);
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
    let ic = e.b.use_var(e.icount);
    let ic = e.b.ins().iadd(ic, params[1]);
    e.store_st(ic, off::ICOUNT);
    e.store_st(params[0], off::EIP);
    let bu = e.b.use_var(e.budget);
    let bu = e.b.ins().isub(bu, params[1]);
    e.b.ins()
        .store(trusted(), bu, ctx, offset_of!(JitCtx, budget) as i32);
    emit_chain(&mut e, params[0], params[2], params[3]);
    e.b.seal_all_blocks();
    let helper_insns = std::mem::take(&mut e.helper_insns);
    let slots = std::mem::take(&mut e.slots);
    e.b.finalize(fcfg);
    (helper_insns, slots)
}

/// The end of the shared exit, after the state is written back: with a
/// chaining slot (`slot` != 0) and `eip` on the block's page, tail-call
/// the slot's block when it starts at `eip`, else ask the dispatcher to
/// link the slot (`JitCtx::link_slot`); return `status` to the dispatcher.
fn emit_chain(e: &mut Emitter<'_>, eip: Value, status: Value, slot: Value) {
    let ret = e.b.create_block();
    let check = e.b.create_block();
    let probe = e.b.create_block();
    let chain = e.b.create_block();
    let link = e.b.create_block();
    e.b.ins().brif(slot, check, &[], ret, &[]);
    // The exit EIP must be on the block's page (only dynamic targets can
    // fail this; constant ones off the page get no slot).
    e.b.switch_to_block(check);
    let lin = e.b.ins().iadd_imm_s(eip, i64::from(e.mode.cs_base as i32));
    let start = e.mode.cs_base.wrapping_add(e.start_eip);
    let x = e.b.ins().bxor_imm_u(lin, i64::from(start));
    let off_page = e.b.ins().band_imm_u(x, i64::from(0xFFFF_F000u32));
    e.b.ins().brif(off_page, ret, &[], probe, &[]);
    e.b.switch_to_block(probe);
    let entry =
        e.b.ins()
            .load(e.ptr, trusted(), slot, offset_of!(ChainSlot, entry) as i32);
    let want = e.b.ins().load(
        types::I32,
        trusted(),
        slot,
        offset_of!(ChainSlot, eip) as i32,
    );
    let same = e.b.ins().icmp(IntCC::Equal, want, eip);
    let linked = e.b.ins().icmp_imm_u(IntCC::NotEqual, entry, 0);
    let go = e.b.ins().band(same, linked);
    e.b.ins().brif(go, chain, &[], link, &[]);
    e.b.switch_to_block(chain);
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
    e.b.switch_to_block(link);
    e.b.ins()
        .store(trusted(), slot, ctx, offset_of!(JitCtx, link_slot) as i32);
    e.b.ins().jump(ret, &[]);
    e.b.switch_to_block(ret);
    e.b.ins().return_(&[status]);
}
