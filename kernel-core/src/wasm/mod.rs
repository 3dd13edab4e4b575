//! The WebAssembly JIT, compile side: validation and parsing ([`module`]),
//! the `VMContext` layout ([`vmoffsets`]), builtins reachable from JIT code
//! ([`builtins`]), function translation to Cranelift IR ([`translate`]) and
//! compilation to relocatable machine code ([`compile`]).
//!
//! The entry point is [`compile_module`]. Nothing here executes code: the
//! runtime (placing code, instantiation, traps) builds on its output.

pub mod artifact;
pub mod budget;
pub mod builtins;
pub mod cache;
#[expect(
    unsafe_code,
    reason = "code is written through the direct map and mapped with unsafe MMU calls"
)]
pub mod code;
pub mod compile;
pub mod entry;
#[expect(
    unsafe_code,
    reason = "the unwinder reads frame-pointer chains and jumps to handlers"
)]
pub mod exn;
pub mod futex;
#[expect(
    unsafe_code,
    reason = "JIT code reads the interrupt cell through a raw epoch pointer"
)]
pub mod interrupt;
pub mod module;
pub mod retained;
pub mod stubs;
#[expect(
    unsafe_code,
    reason = "JIT code reads and writes table elements through raw pointers"
)]
pub mod table;
pub mod translate;
pub mod typed;
#[expect(
    unsafe_code,
    reason = "VMContexts, linear memories and tables are raw memory JIT code reads"
)]
pub mod vm;
pub mod vmoffsets;

pub use compile::{
    CompiledFunction, CompiledModule, Compiler, Reloc, RelocTarget, TargetArch, TrapKind, TrapSite,
    compile_module, compile_module_within,
};
pub use module::{CompileError, ModuleInfo};
pub use translate::TranslateConfig;
pub use vmoffsets::VMOffsets;
