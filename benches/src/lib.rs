//! Measurement helpers shared by the benches: timing loops that interleave
//! contenders sample by sample, the results table (medians and ratios,
//! ours / theirs), the workload modules built by `build.rs`, and a
//! parallel driver for the kernel's compiler. Numbers are printed, never
//! asserted: speed is measured, not tested.

use std::hint::black_box;
use std::time::{Duration, Instant};

pub mod compile;

/// The workload modules (`benches/workloads`, built for
/// `wasm32-unknown-unknown` by `build.rs`).
pub mod modules {
    include!(concat!(env!("OUT_DIR"), "/workloads.rs"));
}

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

/// Nanoseconds `f` takes, once.
pub fn time_ns(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64
}

/// A contender: one call takes one sample and returns its nanoseconds per
/// operation.
pub type Contender<'a> = &'a mut dyn FnMut() -> f64;

/// Run `warmup` unrecorded rounds, then `samples` recorded rounds; in each
/// round every contender takes one sample, in an order that rotates from
/// round to round, so drift (frequency, caches, other load) falls on all of
/// them alike. Returns each contender's median.
pub fn interleave(warmup: usize, samples: usize, contenders: &mut [Contender<'_>]) -> Vec<f64> {
    let n = contenders.len();
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(samples); n];
    for round in 0..warmup + samples {
        for k in 0..n {
            let i = (round + k) % n;
            let t = (contenders[i])();
            if round >= warmup {
                times[i].push(t);
            }
        }
    }
    times.into_iter().map(median).collect()
}

/// The median of `v` (the mean of the middle two for an even length; NaN
/// when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The geometric mean of `v` (NaN when empty).
pub fn geomean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp()
}

/// A duration in nanoseconds, in a unit that keeps 3-4 digits.
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return "n/a".into();
    }
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// What a row's figures are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds.
    Time,
    /// Bytes.
    Bytes,
}

/// A size in bytes, in a unit that keeps 3-4 digits.
pub fn fmt_bytes(b: f64) -> String {
    if !b.is_finite() {
        return "n/a".into();
    }
    if b < 1024.0 {
        format!("{b:.0} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    }
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The group (execution, compilation, ...).
    pub group: &'static str,
    /// What is measured.
    pub name: String,
    /// Our median, in ns (or bytes: `unit`).
    pub ours: f64,
    /// wasmtime's median, when it is a contender.
    pub wasmtime: Option<f64>,
    /// Native's or tokio's median, when one is a contender.
    pub other: Option<f64>,
    /// What the three figures are.
    pub unit: Unit,
    /// The target for this row.
    pub target: &'static str,
    /// Anything the figures need to be read right.
    pub note: String,
}

/// A ratio `ours / theirs`, or `n/a`.
fn ratio(ours: f64, theirs: Option<f64>) -> String {
    match theirs {
        Some(t) if t > 0.0 && ours.is_finite() => format!("{:.2}x", ours / t),
        _ => "n/a".into(),
    }
}

/// The results as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| group | row | ours | wasmtime | native / tokio | ours / wasmtime | ours / native or tokio | target | note |\n\
         |---|---|---:|---:|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        let fmt = match r.unit {
            Unit::Time => fmt_ns,
            Unit::Bytes => fmt_bytes,
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.group,
            r.name,
            fmt(r.ours),
            r.wasmtime.map_or_else(|| "n/a".into(), fmt),
            r.other.map_or_else(|| "n/a".into(), fmt),
            ratio(r.ours, r.wasmtime),
            ratio(r.ours, r.other),
            r.target,
            r.note,
        ));
    }
    s
}
