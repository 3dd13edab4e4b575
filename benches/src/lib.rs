//! Measurement helpers shared by the benches: run two workloads side by side
//! in one process and report their ratio. Numbers are printed, never
//! asserted: speed is measured, not tested.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Nanoseconds per iteration of `f`, the best of `rounds` timed rounds of
/// `iters` iterations each (the minimum filters out scheduling noise).
pub fn ns_per_iter(rounds: usize, iters: u64, mut f: impl FnMut()) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(start.elapsed());
    }
    black_box(best.as_nanos() as f64 / iters as f64)
}

/// Print one comparison line: `name: ours X ns, baseline Y ns, ratio R`.
pub fn report(name: &str, ours: f64, baseline_name: &str, baseline: f64) {
    println!(
        "{name}: vessel {ours:.1} ns/op, {baseline_name} {baseline:.1} ns/op, ratio {:.2}",
        ours / baseline
    );
}
