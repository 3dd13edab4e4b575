//! The kernel's compiler on several threads: the bench's own driver for the
//! "using all CPUs" compilation row.
//!
//! `kernel_core::wasm::compile_module` (what `Store::compile` runs) compiles
//! one function after another. This driver does the same work through the
//! kernel's public pieces, spread over threads: validation and parsing
//! (`module::parse`) once, then each defined function translated by the
//! kernel's translator (`translate::translate_function`) and compiled by
//! Cranelift for the kernel's ISA (`Compiler::isa`), functions handed out
//! one at a time from a shared counter; then the trampolines of the
//! exported signatures. It leaves out what `compile_module` does after
//! Cranelift's `compile` (copying out relocations, trap sites and source
//! locations), which is small next to code generation.

use std::sync::atomic::{AtomicUsize, Ordering};

use cranelift_codegen::Context;
use cranelift_codegen::control::ControlPlane;
use cranelift_frontend::FunctionBuilderContext;
use kernel_core::wasm::budget::{Meter, Unmetered};
use kernel_core::wasm::module::{self, ExportKind, FuncType};
use kernel_core::wasm::translate::{ModuleEnv, translate_function};
use kernel_core::wasm::{CompileError, Compiler, TranslateConfig, VMOffsets};

/// Compile every function of `bytes` on `threads` threads (at least one);
/// the total size of the machine code.
///
/// # Errors
/// [`CompileError`] for invalid or unsupported modules and codegen failures
/// (the first one any thread met).
pub fn compile_parallel(
    bytes: &[u8],
    compiler: &Compiler,
    threads: usize,
) -> Result<usize, CompileError> {
    let parsed = module::parse(bytes, module::features())?;
    let info = &parsed.info;
    let config = TranslateConfig::default();
    let offsets = VMOffsets::new(compiler.pointer_bytes(), info);
    let isa = compiler.isa();
    let target = compiler.target();
    let next = AtomicUsize::new(0);
    let work = || -> Result<usize, CompileError> {
        let mut fctx = FunctionBuilderContext::new();
        let mut size = 0;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(body) = parsed.bodies.get(i) else {
                return Ok(size);
            };
            let index = info.num_imported_funcs + u32::try_from(i).unwrap_or(u32::MAX);
            let mut unmetered = Unmetered;
            let mut meter = Meter::new(&mut unmetered, index);
            let env = ModuleEnv {
                info,
                offsets: &offsets,
                config: &config,
                target: &target,
            };
            let func = translate_function(env, index, body, &mut fctx, &mut meter)?;
            let mut ctx = Context::for_function(func);
            let code = ctx
                .compile(isa, &mut ControlPlane::default())
                .map_err(|e| CompileError::Codegen {
                    func_index: index,
                    message: format!("{:?}", e.inner),
                })?;
            size += code.buffer.data().to_vec().len();
        }
    };
    let mut size = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads.max(1)).map(|_| s.spawn(work)).collect();
        let mine = work();
        helpers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .chain([mine])
            .sum::<Result<usize, CompileError>>()
    })?;
    let mut seen: Vec<&FuncType> = Vec::new();
    let mut fctx = FunctionBuilderContext::new();
    for e in info.exports.iter().filter(|e| e.kind == ExportKind::Func) {
        let Some(ty) = info.func_type(e.index) else {
            continue;
        };
        if !seen.contains(&ty) {
            seen.push(ty);
            size += compiler.compile_trampoline(ty, &mut fctx)?.code.len();
        }
    }
    Ok(size)
}
