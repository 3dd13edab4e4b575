//! Write the boot image of `test=diff`: seeds of the differential oracle
//! run on wasmtime on this host and recorded with their modules
//! (`tests::diff::record`, format `kernel_core::diff::record`), for the
//! riscv kernel to replay in QEMU (`-initrd OUT -append test=diff`).
//!
//! ```text
//! cargo run -p tests --example diff_image -- OUT [FIRST COUNT]
//! ```
//!
//! Seeds `FIRST..FIRST+COUNT` (default `0..1000`), each from the same
//! SplitMix64 bytes as `tests/tests/jit_diff.rs`, with the same wasm-smith
//! configuration (SIMD included: the riscv kernel compiles it to the V
//! extension, which QEMU's default harts have), the same memories (even
//! seeds guard pages, odd seeds explicitly bounds-checked), and wasmtime's
//! NaN canonicalization on (riscv's FPU makes only canonical NaNs; see
//! `tests::diff::engine_canonical_nans`).

use std::process::ExitCode;

use tests::diff::{self, Memories};

/// Input bytes per seed (as `tests/tests/jit_diff.rs`).
const BYTES: usize = 16 << 10;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!("usage: diff_image OUT [FIRST COUNT]");
        ExitCode::from(2)
    };
    let (out, first, count) = match args.as_slice() {
        [out] => (out, 0, 1000),
        [out, first, count] => match (first.parse::<u64>(), count.parse::<u64>()) {
            (Ok(f), Ok(c)) if f.checked_add(c).is_some() => (out, f, c),
            _ => return usage(),
        },
        _ => return usage(),
    };
    let engine = diff::engine_canonical_nans();
    let mut cases = Vec::new();
    let (mut no_module, mut calls) = (0u64, 0usize);
    for seed in first..first + count {
        // As `jit_diff`: odd seeds run with bounds-checked memories.
        let memories = if seed % 2 == 0 {
            Memories::GuardPages
        } else {
            Memories::Bounded
        };
        let case = diff::record(
            &engine,
            diff::smith_config_with(true),
            seed,
            memories,
            &diff::seed_bytes(seed, BYTES),
        );
        no_module += u64::from(case.wasm.is_none());
        calls += case.events.len();
        cases.push(kernel_core::diff::record::encode_case(&case));
    }
    let image = kernel_core::diff::record::bundle(&cases);
    if let Err(e) = std::fs::write(out, &image) {
        eprintln!("diff_image: {out}: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "diff_image: seeds {first}..{}: {} cases ({no_module} without a module), {calls} events, {} bytes in {out}",
        first + count,
        cases.len(),
        image.len()
    );
    ExitCode::SUCCESS
}
