//! Code generation and code memory: one `JITModule` per cache generation.
//!
//! Blocks are needed as soon as they are translated, so each is finalized
//! on its own; the generation is retired whole (its memory freed with
//! `free_memory`) when it holds [`GENERATION_LIMIT`] blocks or on a full
//! flush. Invalidated blocks are only unlinked from the lookup table until
//! then. See `docs/jit.md` for why this and not an own code area.

use cranelift_codegen::ir::{types, AbiParam, Signature};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::Module;
use oxide86_cpu::decode::Decoded;

use crate::ctx::JitCtx;
use crate::translate::{emit_block, Mode, Scanned};

/// Blocks per generation before the whole cache is flushed (about 4 KiB
/// of mapped code memory each, see `docs/jit.md`).
pub const GENERATION_LIMIT: usize = 8192;

/// The entry point of a translated block.
pub type BlockFn = unsafe extern "C" fn(*mut JitCtx) -> u32;

/// A translated block.
#[derive(Debug)]
pub struct CompiledBlock {
    /// Its code.
    pub entry: BlockFn,
    /// Guest instructions in one pass through it (the most steps it
    /// retires unless it loops on itself).
    pub len: u64,
    /// Instructions its helper calls point to.
    #[allow(
        clippy::vec_box,
        reason = "generated code holds their addresses: they must not move"
    )]
    _insns: Vec<Box<Decoded>>,
}

/// Why a block could not be compiled.
#[derive(Debug)]
pub struct CompileError(pub String);

/// The Cranelift module of the current generation and reusable contexts.
pub struct CodeCache {
    module: JITModule,
    ctx: cranelift_codegen::Context,
    fctx: FunctionBuilderContext,
    /// Blocks compiled into the current generation.
    pub blocks: usize,
    /// Bytes of machine code in the current generation.
    pub code_bytes: usize,
}

impl std::fmt::Debug for CodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeCache")
            .field("blocks", &self.blocks)
            .finish_non_exhaustive()
    }
}

fn new_module() -> Result<JITModule, CompileError> {
    let err = |e: &dyn std::fmt::Display| CompileError(e.to_string());
    let mut fb = settings::builder();
    fb.set("opt_level", "none").map_err(|e| err(&e))?;
    let verify = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    fb.set("enable_verifier", verify).map_err(|e| err(&e))?;
    fb.set("is_pic", "false").map_err(|e| err(&e))?;
    let isa = cranelift_native::builder()
        .map_err(|e| err(&e))?
        .finish(settings::Flags::new(fb))
        .map_err(|e| err(&e))?;
    let jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    Ok(JITModule::new(jb))
}

impl CodeCache {
    /// A cache for the host ISA.
    pub fn new() -> Result<Self, CompileError> {
        let module = new_module()?;
        let ctx = module.make_context();
        Ok(Self {
            module,
            ctx,
            fctx: FunctionBuilderContext::new(),
            blocks: 0,
            code_bytes: 0,
        })
    }

    /// Compiles a scanned block; `interp_helper` is the address of the
    /// interpreter helper for the dispatcher's bus type.
    pub fn compile(
        &mut self,
        block: &Scanned,
        mode: Mode,
        interp_helper: usize,
    ) -> Result<CompiledBlock, CompileError> {
        let ptr = self.module.target_config().pointer_type();
        let cc = self.module.isa().default_call_conv();
        self.module.clear_context(&mut self.ctx);
        let mut sig = Signature::new(cc);
        sig.params.push(AbiParam::new(ptr));
        sig.returns.push(AbiParam::new(types::I32));
        self.ctx.func.signature = sig.clone();
        let b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let fcfg = self.module.target_config();
        let insns = emit_block(b, block, mode, ptr, cc, interp_helper, fcfg);
        let r = (|| {
            let id = self
                .module
                .declare_anonymous_function(&sig)
                .map_err(|e| CompileError(e.to_string()))?;
            self.module
                .define_function(id, &mut self.ctx)
                .map_err(|e| CompileError(format!("{e:?}")))?;
            let size = self
                .ctx
                .compiled_code()
                .map_or(0, |c| c.code_buffer().len());
            self.module
                .finalize_definitions()
                .map_err(|e| CompileError(e.to_string()))?;
            Ok((id, size))
        })();
        self.module.clear_context(&mut self.ctx);
        let (id, size) = r?;
        let code = self.module.get_finalized_function(id);
        self.blocks += 1;
        self.code_bytes += size;
        // SAFETY: `code` is the finalized entry of a function compiled with
        // exactly this signature (one pointer in, an i32 out, the ISA's
        // default calling convention, which is `extern "C"` on every host
        // Cranelift supports).
        let entry = unsafe { std::mem::transmute::<*const u8, BlockFn>(code) };
        Ok(CompiledBlock {
            entry,
            len: block.insns.len() as u64,
            _insns: insns,
        })
    }

    /// Frees every block's code and starts a new generation. The caller
    /// must have dropped every [`CompiledBlock`] of this cache.
    pub fn flush(&mut self) -> Result<(), CompileError> {
        let old = std::mem::replace(&mut self.module, new_module()?);
        // SAFETY: the dispatcher calls this only between blocks (no code of
        // the old module is running) after dropping all its CompiledBlocks,
        // so no pointer into the freed code remains.
        unsafe { old.free_memory() };
        self.ctx = self.module.make_context();
        self.blocks = 0;
        self.code_bytes = 0;
        Ok(())
    }
}
