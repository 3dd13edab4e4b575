//! The differential oracle ([`tests::diff`]) over a fixed set of seeds, on
//! stable Rust: every seed's bytes (a SplitMix64 stream) become a
//! wasm-smith module and call arguments, and Vessel's JIT must agree with
//! wasmtime on every compared call. Even seeds run with guard-page
//! memories, odd seeds with explicitly bounds-checked ones.
//!
//! `JIT_DIFF_SEEDS=a..b` runs another range (for instance one failing seed,
//! `JIT_DIFF_SEEDS=17..18`). `JIT_DIFF_INPUT=FILE` runs one input of the
//! `jit_diff` fuzz target instead (a crash artifact: first byte the memory
//! mode, then the wasm-smith bytes) and writes the module it makes to
//! `FILE.wasm`, so a fuzzer's find is reproduced on stable. The summary line gives the compared and
//! inconclusive counts; the test fails on any divergence and also when too
//! few calls were compared, so it cannot pass vacuously.

use std::ops::Range;
use std::time::Instant;

use arbitrary::Unstructured;
use tests::diff::{self, Memories, Tally};

/// Seeds run by default.
const SEEDS: Range<u64> = 0..1000;
/// Input bytes per seed.
const BYTES: usize = 16 << 10;

fn seeds() -> Range<u64> {
    let Ok(s) = std::env::var("JIT_DIFF_SEEDS") else {
        return SEEDS;
    };
    let parsed = s
        .split_once("..")
        .and_then(|(a, b)| Some(a.trim().parse().ok()?..b.trim().parse().ok()?));
    parsed.unwrap_or_else(|| panic!("JIT_DIFF_SEEDS={s}: expected `a..b`"))
}

/// Run the fuzz target's input in `path`, as the target does.
fn run_input(path: &str) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let Some((&mode, rest)) = data.split_first() else {
        panic!("{path}: empty input");
    };
    let memories = if mode & 1 == 0 {
        Memories::GuardPages
    } else {
        Memories::Bounded
    };
    if let Some(wasm) = diff::module(&mut Unstructured::new(rest)) {
        let out = format!("{path}.wasm");
        std::fs::write(&out, wasm).unwrap_or_else(|e| panic!("{out}: {e}"));
        println!("module written to {out}");
    }
    let hosted = diff::machine();
    let outcome = hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            diff::check(k, &diff::engine(), memories, &mut Unstructured::new(rest))
        })
    });
    match outcome {
        Ok(tally) => println!("{path} ({memories:?}): no divergence; {tally}"),
        Err(d) => panic!("{path} ({memories:?}): {d}"),
    }
}

#[test]
fn jit_matches_wasmtime_on_fixed_seeds() {
    if let Ok(path) = std::env::var("JIT_DIFF_INPUT") {
        run_input(&path);
        return;
    }
    let hosted = diff::machine();
    let seeds = seeds();
    let start = Instant::now();
    let (tally, failures) = hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            let engine = diff::engine();
            let mut tally = Tally::default();
            let mut failures = Vec::new();
            for seed in seeds.clone() {
                let bytes = diff::seed_bytes(seed, BYTES);
                // Odd seeds run with explicitly bounds-checked memories.
                let memories = if seed % 2 == 0 {
                    Memories::GuardPages
                } else {
                    Memories::Bounded
                };
                match diff::check(k, &engine, memories, &mut Unstructured::new(&bytes)) {
                    Ok(t) => tally += t,
                    Err(d) => {
                        println!("seed {seed}: {d}");
                        failures.push(seed);
                    }
                }
            }
            (tally, failures)
        })
    });
    println!(
        "jit_diff: seeds {seeds:?}: {} passed, {} diverged; {tally}; {:.1?}",
        seeds.end - seeds.start - failures.len() as u64,
        failures.len(),
        start.elapsed()
    );
    assert!(failures.is_empty(), "diverging seeds: {failures:?}");
    // Not vacuous: most seeds compare something, most calls are compared.
    assert!(
        tally.cases_compared * 10 >= tally.cases * 8,
        "too few seeds compared anything: {tally}"
    );
    assert!(
        tally.compared * 10 >= (tally.compared + tally.inconclusive) * 8,
        "too many inconclusive calls: {tally}"
    );
}
