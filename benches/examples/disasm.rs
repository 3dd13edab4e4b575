//! Machine code of one workload function, ours beside wasmtime's, for
//! reading where a gap between them comes from (`benches/NOTES.md`).
//!
//! `cargo run --release -p benches --example disasm -- WORKLOAD FUNCTION OUT_DIR`
//! compiles workload `WORKLOAD` (`sha2`, `miniz`, `json`, `regex`, `sort`,
//! `matmul`) with the kernel's compiler for this host's CPU and writes the
//! named export's code to `OUT_DIR/ours.bin`, and wasmtime's precompiled
//! ELF (same host features) to `OUT_DIR/wasmtime.elf`. Read them with
//! `objdump -D -b binary -m i386:x86-64 ours.bin` and
//! `objdump -d wasmtime.elf` (wasmtime names functions
//! `wasm[0]::function[N]::<name>`; this prints N).

use kernel_core::wasm::module::ExportKind;
use kernel_core::wasm::{Compiler, TranslateConfig, compile_module};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workload, function, out] = args.as_slice() else {
        eprintln!("usage: disasm WORKLOAD FUNCTION OUT_DIR");
        std::process::exit(2);
    };
    let Some((_, bytes)) = benches::modules::MODULES
        .iter()
        .find(|(n, _)| n == workload)
    else {
        eprintln!("disasm: no workload {workload:?}");
        std::process::exit(2);
    };
    let compiler = match Compiler::host_with(hal_hosted::host_isa()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("disasm: {e}");
            std::process::exit(1);
        }
    };
    let module = match compile_module(bytes, &TranslateConfig::default(), &compiler) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("disasm: {workload}: {e}");
            std::process::exit(1);
        }
    };
    let Some(index) = module
        .info
        .exports
        .iter()
        .find(|e| e.name == *function && e.kind == ExportKind::Func)
        .map(|e| e.index)
    else {
        eprintln!("disasm: {workload} exports no function {function:?}");
        std::process::exit(2);
    };
    let Some(code) = index
        .checked_sub(module.info.num_imported_funcs)
        .and_then(|d| module.functions.get(d as usize))
    else {
        eprintln!("disasm: {function} is imported");
        std::process::exit(2);
    };
    let out = std::path::Path::new(out);
    let engine = wasmtime::Engine::default();
    let theirs = match engine.precompile_module(bytes) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("disasm: wasmtime: {e}");
            std::process::exit(1);
        }
    };
    for (name, data) in [("ours.bin", &code.code[..]), ("wasmtime.elf", &theirs[..])] {
        if let Err(e) = std::fs::write(out.join(name), data) {
            eprintln!("disasm: {}: {e}", out.join(name).display());
            std::process::exit(1);
        }
    }
    println!(
        "{workload}!{function}: function index {index}; ours {} bytes of code",
        code.code.len()
    );
}
