//! oxide86's Cranelift JIT: guest x86 blocks translated to host code.
//!
//! A block is straight-line guest code on one physical page, ending at a
//! control transfer, an instruction that must run in the interpreter, or a
//! length limit. It becomes one Cranelift function over a [`ctx::JitCtx`]:
//! guest registers live in `cranelift-frontend` Variables between the
//! loads on entry and the stores at every exit, status flags are recorded
//! in the interpreter's lazy representation ([`oxide86_cpu::LazyFlags`]),
//! memory accesses inline the soft-TLB RAM hit path and leave everything
//! else (misses, MMIO, code pages, faults) to the interpreter. The
//! interpreter is the reference: see `docs/jit.md`.

mod budget;
pub mod cache;
pub mod cross;
pub mod ctx;
mod emit_carry;
mod emit_fetch;
mod emit_flags;
mod emit_insn;
mod emit_mem;
mod emit_muls;
mod emit_select;
mod emit_string;
pub mod engine;
mod helpers;
mod jump_cache;
pub mod smc;
pub mod translate;
pub mod verify;
pub mod worker;

pub use engine::{Engine, EngineKind, JitStats};
pub use verify::report::{FieldDiff, Mismatch, TraceStep};
