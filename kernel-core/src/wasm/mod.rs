//! The WebAssembly JIT, compile side: validation and parsing ([`module`]),
//! the `VMContext` layout ([`vmoffsets`]), builtins reachable from JIT code
//! ([`builtins`]), function translation to Cranelift IR ([`translate`]) and
//! compilation to relocatable machine code ([`compile`]).
//!
//! The entry point is [`compile_module`]. Nothing here executes code: the
//! runtime (placing code, instantiation, traps) builds on its output.

pub mod builtins;
pub mod compile;
pub mod module;
pub mod translate;
pub mod vmoffsets;

pub use compile::{
    CompiledFunction, CompiledModule, Compiler, Reloc, RelocTarget, TargetArch, TrapKind, TrapSite,
    compile_module,
};
pub use module::{CompileError, ModuleInfo};
pub use translate::TranslateConfig;
pub use vmoffsets::VMOffsets;
