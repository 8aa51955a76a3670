//! Code generation for other hosts, compile only: the same CLIF a block
//! becomes on this host, compiled for a named target (`aarch64`,
//! `riscv64gc`, ...) and never run. It keeps the translator portable:
//! the `cross` cargo feature builds Cranelift's `arm64` and `riscv64`
//! backends and `tests/cross.rs` translates a corpus of guest blocks for
//! them. Without a target's backend the lookup fails with an error.

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::isa;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use crate::cache::{block_signature, flags, CompileError};
use crate::translate::{emit_region, Hooks, Mode, Region};

/// Compiles `region` (translated in `mode`) for the target `triple`, e.g.
/// `aarch64-unknown-linux-gnu`; returns the machine code's size in bytes.
/// Helper calls point to a placeholder address (the code is not run).
pub fn compile_for(triple: &str, region: &Region, mode: Mode) -> Result<usize, CompileError> {
    let err = |e: &dyn std::fmt::Display| CompileError(format!("{triple}: {e}"));
    let isa = isa::lookup_by_name(triple)
        .map_err(|e| err(&e))?
        .finish(flags()?)
        .map_err(|e| err(&e))?;
    let ptr = isa.pointer_type();
    let mut ctx = cranelift_codegen::Context::new();
    ctx.func.signature = block_signature(ptr);
    let mut fctx = FunctionBuilderContext::new();
    let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    // Kept alive until compiled; their addresses only end up as constants.
    let _pointees = emit_region(
        b,
        region,
        mode,
        Hooks {
            interp_helper: 0x1000,
            lookup: 0x2000,
            ..Hooks::default()
        },
        isa.frontend_config(),
        true,
    );
    let code = ctx
        .compile(&*isa, &mut ControlPlane::default())
        .map_err(|e| err(&format!("{:?}", e.inner)))?;
    Ok(code.code_buffer().len())
}
