//! Code generation and code memory: one `JITModule` per cache generation.
//!
//! Blocks use Cranelift's `tail` calling convention so that an exit can
//! continue straight into the next block with `return_call_indirect`
//! (chaining, without stack growth); Rust enters the first block of a
//! chain through a small System V trampoline, compiled once into a module
//! of its own that no flush frees ([`CodeCache`]), so it serves every
//! generation and the background worker's blocks too.
//!
//! Blocks are needed as soon as they are translated, so each is finalized
//! on its own; the generation is retired whole (its memory freed with
//! `free_memory`) when it holds [`GENERATION_LIMIT`] blocks or on a full
//! flush. Invalidated blocks are only unlinked from the lookup table until
//! then. See `docs/jit.md` for why this and not an own code area.

use std::mem::ManuallyDrop;

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Module};
use oxide86_cpu::decode::Decoded;

use crate::ctx::{ChainSlot, JitCtx};
use crate::translate::{emit_region, Hooks, Mode, Region};

/// Blocks per generation before the whole cache is flushed (about 4 KiB
/// of mapped code memory each, see `docs/jit.md`).
pub const GENERATION_LIMIT: usize = 65536;

/// The entry point of a translated block: the address of a
/// `CallConv::Tail` function `fn(*mut JitCtx) -> u32`, which Rust cannot
/// call directly (see [`CodeCache::enter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockFn(usize);

impl BlockFn {
    /// The code address (what chaining slots hold).
    pub fn addr(self) -> usize {
        self.0
    }
}

/// The System V trampoline that calls a block: `(ctx, block entry) -> status`.
type Trampoline = unsafe extern "C" fn(*mut JitCtx, *const u8) -> u32;

/// A translated block.
#[derive(Debug)]
pub struct CompiledBlock {
    /// Its code.
    pub entry: BlockFn,
    /// What the budget must hold for it to start: the instructions of its
    /// entry block and of the blocks checked with it (`budget.rs`). The
    /// dispatcher interprets when the budget holds less.
    pub need: u64,
    /// Bytes of machine code.
    pub code_bytes: usize,
    /// Compiled with Cranelift's optimiser (a hot region's second
    /// compilation, see the engine's `Engine::optimize_after`).
    pub optimized: bool,
    /// Its branches that run as selects (`emit_select.rs`).
    pub selects: u64,
    /// Guest instructions that block runs retired in the `Engine::run`
    /// calls that ended in this block for want of budget (the engine's
    /// sample of where the time goes, `engine/optimize.rs`).
    pub credit: u64,
    /// Instructions its helper calls point to.
    #[allow(
        clippy::vec_box,
        reason = "generated code holds their addresses: they must not move"
    )]
    _insns: Vec<Box<Decoded>>,
    /// Its chaining slots (generated code holds their addresses).
    #[allow(
        clippy::vec_box,
        reason = "generated code holds their addresses: they must not move"
    )]
    _slots: Vec<Box<ChainSlot>>,
}

impl CompiledBlock {
    /// Clears this block's chaining slots that lead to `target` (a block
    /// being replaced): their exits ask the dispatcher to link them again.
    pub(crate) fn unlink_from(&mut self, target: BlockFn) {
        for slot in &mut self._slots {
            if slot.entry == target.0 {
                **slot = ChainSlot::default();
            }
        }
    }
}

/// Why a block could not be compiled.
#[derive(Debug)]
pub struct CompileError(pub String);

/// Where blocks are compiled: the Cranelift module of the current
/// generation and reusable contexts. The dispatcher's [`CodeCache`] holds
/// one; the tiered engine's background worker (`worker.rs`) holds its own,
/// made on its thread.
pub struct Compiler {
    /// Dropped only through `free_memory` (dropping a `JITModule` leaks
    /// its code on purpose).
    module: ManuallyDrop<JITModule>,
    /// The same for the optimised compilations of hot regions: a module
    /// whose ISA has `opt_level=speed` (the flag is the ISA's, not the
    /// function's). Freed with `module`, in the same generation.
    optimizing: ManuallyDrop<JITModule>,
    ctx: cranelift_codegen::Context,
    fctx: FunctionBuilderContext,
    /// Blocks compiled into the current generation.
    pub blocks: usize,
    /// Bytes of machine code in the current generation.
    pub code_bytes: usize,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiler")
            .field("blocks", &self.blocks)
            .finish_non_exhaustive()
    }
}

/// The dispatcher's side: the trampoline Rust enters blocks through, in a
/// module of its own that is never flushed (it only calls the address it
/// is given, so it serves blocks of every generation and of either
/// compiler), and the compiler of synchronous translation.
pub struct CodeCache {
    /// The trampoline's module, freed only when the cache is dropped.
    entry_module: ManuallyDrop<JITModule>,
    trampoline: Trampoline,
    /// The lookup stub's entry (see `compile_lookup_stub`), for
    /// `Hooks::lookup`: it lives as long as the cache, like the trampoline.
    pub lookup_stub: usize,
    /// Compiles blocks on the dispatcher's thread.
    pub compiler: Compiler,
}

impl std::fmt::Debug for CodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeCache")
            .field("compiler", &self.compiler)
            .finish_non_exhaustive()
    }
}

/// The code-generation flags of every block, for any target: tier-1
/// settings from `../shared/notes/cranelift-facts.md` (no optimisation,
/// the verifier only in debug builds) plus frame pointers for tail calls.
pub(crate) fn flags() -> Result<settings::Flags, CompileError> {
    flags_at("none")
}

/// [`flags`] at Cranelift optimisation level `opt_level`.
fn flags_at(opt_level: &str) -> Result<settings::Flags, CompileError> {
    let err = |e: &dyn std::fmt::Display| CompileError(e.to_string());
    let mut fb = settings::builder();
    fb.set("opt_level", opt_level).map_err(|e| err(&e))?;
    let verify = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    fb.set("enable_verifier", verify).map_err(|e| err(&e))?;
    fb.set("is_pic", "false").map_err(|e| err(&e))?;
    // Required by tail calls (`return_call_indirect`) on x86-64.
    fb.set("preserve_frame_pointers", "true")
        .map_err(|e| err(&e))?;
    Ok(settings::Flags::new(fb))
}

fn new_module() -> Result<JITModule, CompileError> {
    module_at("none")
}

/// A module for the host whose ISA optimises at `opt_level`.
fn module_at(opt_level: &str) -> Result<JITModule, CompileError> {
    let err = |e: &dyn std::fmt::Display| CompileError(e.to_string());
    let isa = cranelift_native::builder()
        .map_err(|e| err(&e))?
        .finish(flags_at(opt_level)?)
        .map_err(|e| err(&e))?;
    let jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    Ok(JITModule::new(jb))
}

/// The signature of every block: `fn(*mut JitCtx) -> u32` in the tail
/// calling convention.
pub(crate) fn block_signature(ptr: types::Type) -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(ptr));
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

/// Defines the function built in `ctx` (finalized) in `module` as an
/// anonymous function of signature `sig`, and clears `ctx`.
fn define_anonymous(
    module: &mut JITModule,
    ctx: &mut cranelift_codegen::Context,
    sig: &Signature,
) -> Result<FuncId, CompileError> {
    let id = module
        .declare_anonymous_function(sig)
        .map_err(|e| CompileError(e.to_string()))?;
    module
        .define_function(id, ctx)
        .map_err(|e| CompileError(format!("{e:?}")))?;
    module.clear_context(ctx);
    Ok(id)
}

/// Compiles the trampoline into `module`: a function in the host's
/// calling convention that calls the block at its second argument.
fn compile_trampoline(
    module: &mut JITModule,
    ctx: &mut cranelift_codegen::Context,
    fctx: &mut FunctionBuilderContext,
) -> Result<FuncId, CompileError> {
    let ptr = module.target_config().pointer_type();
    let mut sig = Signature::new(module.isa().default_call_conv());
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    sig.returns.push(AbiParam::new(types::I32));
    module.clear_context(ctx);
    ctx.func.signature = sig.clone();
    let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let (jctx, callee) = (b.block_params(entry)[0], b.block_params(entry)[1]);
    let sr = b.import_signature(block_signature(ptr));
    let call = b.ins().call_indirect(sr, callee, &[jctx]);
    let status = b.inst_results(call)[0];
    b.ins().return_(&[status]);
    b.seal_all_blocks();
    b.finalize(module.target_config());
    define_anonymous(module, ctx, &sig)
}

/// Compiles the lookup stub into `module`: a block-signature function
/// that asks `jump_cache::lookup` for the block at the state's EIP and
/// tail-calls it (counting a chained entry), or returns `EXIT_NEXT`.
/// Blocks tail-call it from exits that cannot chain, so that they hold
/// no call themselves (a call costs every block entry a larger frame).
fn compile_lookup_stub(
    module: &mut JITModule,
    ctx: &mut cranelift_codegen::Context,
    fctx: &mut FunctionBuilderContext,
) -> Result<FuncId, CompileError> {
    let ptr = module.target_config().pointer_type();
    let sig = block_signature(ptr);
    module.clear_context(ctx);
    ctx.func.signature = sig.clone();
    let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let jctx = b.block_params(entry)[0];
    let mut lsig = Signature::new(module.isa().default_call_conv());
    lsig.params.push(AbiParam::new(ptr));
    lsig.returns.push(AbiParam::new(ptr));
    let lsig = b.import_signature(lsig);
    let callee = b
        .ins()
        .iconst(ptr, crate::jump_cache::lookup as *const () as i64);
    let call = b.ins().call_indirect(lsig, callee, &[jctx]);
    let found = b.inst_results(call)[0];
    let go = b.create_block();
    let back = b.create_block();
    b.ins().brif(found, go, &[], back, &[]);
    b.switch_to_block(go);
    let at = std::mem::offset_of!(JitCtx, chained) as i32;
    let flags = cranelift_codegen::ir::MemFlagsData::trusted();
    let n = b.ins().load(types::I64, flags, jctx, at);
    let n = b.ins().iadd_imm_s(n, 1);
    b.ins().store(flags, n, jctx, at);
    let sr = b.import_signature(block_signature(ptr));
    b.ins().return_call_indirect(sr, found, &[jctx]);
    b.switch_to_block(back);
    let next = b.ins().iconst(types::I32, i64::from(crate::ctx::EXIT_NEXT));
    b.ins().return_(&[next]);
    b.seal_all_blocks();
    b.finalize(module.target_config());
    define_anonymous(module, ctx, &sig)
}

/// A new module holding only the trampoline and the lookup stub,
/// compiled and finalized; also the stub's address.
fn new_entry_module() -> Result<(JITModule, Trampoline, usize), CompileError> {
    let mut ctx = cranelift_codegen::Context::new();
    let mut fctx = FunctionBuilderContext::new();
    let mut module = new_module()?;
    let id = compile_trampoline(&mut module, &mut ctx, &mut fctx)?;
    let stub = compile_lookup_stub(&mut module, &mut ctx, &mut fctx)?;
    module
        .finalize_definitions()
        .map_err(|e| CompileError(e.to_string()))?;
    let code = module.get_finalized_function(id);
    // SAFETY: `code` is the finalized trampoline, compiled with exactly
    // this signature in the ISA's default calling convention (`extern "C"`
    // on every host Cranelift supports).
    let trampoline = unsafe { std::mem::transmute::<*const u8, Trampoline>(code) };
    let stub = module.get_finalized_function(stub) as usize;
    Ok((module, trampoline, stub))
}

impl CodeCache {
    /// A cache for the host ISA.
    pub fn new() -> Result<Self, CompileError> {
        let (module, trampoline, lookup_stub) = new_entry_module()?;
        Ok(Self {
            entry_module: ManuallyDrop::new(module),
            trampoline,
            lookup_stub,
            compiler: Compiler::new()?,
        })
    }

    /// Runs the block at `entry` (and whatever it chains to) on `ctx`.
    ///
    /// # Safety
    /// `entry` is a [`CompiledBlock::entry`] of a live generation (of this
    /// cache's compiler or of the background worker's: the trampoline
    /// serves both), and `ctx` is a context whose pointers are valid for
    /// the block (see the dispatcher's `run_block`).
    pub unsafe fn enter(&self, ctx: *mut JitCtx, entry: BlockFn) -> u32 {
        // SAFETY: per the contract; the trampoline's module lives as long
        // as `self`.
        unsafe { (self.trampoline)(ctx, entry.0 as *const u8) }
    }
}

impl Drop for CodeCache {
    fn drop(&mut self) {
        // SAFETY: no block runs while the cache is dropped (entering one
        // needs `&self`), so nothing is inside the trampoline.
        unsafe { ManuallyDrop::take(&mut self.entry_module).free_memory() };
    }
}

impl Compiler {
    /// A compiler for the host ISA, with an empty first generation.
    pub fn new() -> Result<Self, CompileError> {
        Ok(Self {
            module: ManuallyDrop::new(new_module()?),
            optimizing: ManuallyDrop::new(module_at("speed")?),
            ctx: cranelift_codegen::Context::new(),
            fctx: FunctionBuilderContext::new(),
            blocks: 0,
            code_bytes: 0,
        })
    }

    /// Compiles a scanned block, calling the helpers in `hooks`; with
    /// `optimize`, through Cranelift's optimiser (about a third more
    /// compile time; see `docs/jit.md`, "Optimised recompilation").
    pub fn compile(
        &mut self,
        region: &Region,
        mode: Mode,
        hooks: Hooks,
        optimize: bool,
    ) -> Result<CompiledBlock, CompileError> {
        let Self {
            module,
            optimizing,
            ctx,
            fctx,
            blocks,
            code_bytes,
        } = self;
        let module: &mut JITModule = if optimize { optimizing } else { module };
        let ptr = module.target_config().pointer_type();
        module.clear_context(ctx);
        let sig = block_signature(ptr);
        ctx.func.signature = sig.clone();
        let b = FunctionBuilder::new(&mut ctx.func, fctx);
        let fcfg = module.target_config();
        // First compilations store registers as they are assigned
        // (`Emitter::write_through`): about a tenth less compile time.
        let emitted = emit_region(b, region, mode, hooks, fcfg, !optimize);
        let r = (|| {
            // Named by guest entry, so that `perf report` names the host
            // code of each block (cranelift-jit writes `/tmp/perf-<pid>.map`
            // when it runs under `perf record`).
            let name = format!(
                "guest_{:08x}_{}insns_{}blocks_{}{}",
                region.entry().start_eip,
                region.entry().insns.len(),
                region.blocks.len(),
                blocks,
                if optimize { "_opt" } else { "" }
            );
            let id = module
                .declare_function(&name, cranelift_module::Linkage::Local, &sig)
                .map_err(|e| CompileError(e.to_string()))?;
            let dump = std::env::var_os("OXIDE86_JIT_DUMP").is_some();
            ctx.set_disasm(dump);
            module
                .define_function(id, ctx)
                .map_err(|e| CompileError(format!("{e:?}")))?;
            if let Some(vcode) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
                // A debugging aid (`OXIDE86_JIT_DUMP=1`): the host code of each block.
                eprintln!("block at EIP {:#x}:\n{vcode}", region.entry().start_eip);
            }
            let size = ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
            module
                .finalize_definitions()
                .map_err(|e| CompileError(e.to_string()))?;
            Ok((id, size))
        })();
        module.clear_context(ctx);
        let (id, size) = r?;
        let code = module.get_finalized_function(id);
        *blocks += 1;
        *code_bytes += size;
        Ok(CompiledBlock {
            entry: BlockFn(code as usize),
            need: emitted.entry_need,
            code_bytes: size,
            optimized: optimize,
            selects: emitted.selects as u64,
            credit: 0,
            _insns: emitted.helper_insns,
            _slots: emitted.slots,
        })
    }

    /// Frees every block's code and starts a new generation. The caller
    /// must have dropped every [`CompiledBlock`] of this compiler, or
    /// made sure none is entered or linked any more.
    pub fn flush(&mut self) -> Result<(), CompileError> {
        let module = new_module()?;
        let optimizing = module_at("speed")?;
        let old = std::mem::replace(&mut self.module, ManuallyDrop::new(module));
        let old_optimizing = std::mem::replace(&mut self.optimizing, ManuallyDrop::new(optimizing));
        // SAFETY: callers flush only between blocks (no code of the old
        // modules is running) once no CompiledBlock of them can be entered
        // or linked, so nothing reaches the freed code.
        unsafe {
            ManuallyDrop::into_inner(old).free_memory();
            ManuallyDrop::into_inner(old_optimizing).free_memory();
        }
        self.blocks = 0;
        self.code_bytes = 0;
        Ok(())
    }
}

impl Drop for Compiler {
    fn drop(&mut self) {
        // SAFETY: the owner drops its compiler only when no block of it
        // can run any more (the engine is being dropped, or the worker
        // thread ends after the engine let go of it), and CompiledBlocks
        // only hold addresses that nothing calls any more.
        unsafe {
            ManuallyDrop::take(&mut self.module).free_memory();
            ManuallyDrop::take(&mut self.optimizing).free_memory();
        }
    }
}
