//! `sim swarm`: simulation testing over many seeds. For each seed a random
//! workload (`workload`) runs on a deterministic machine of random shape
//! with faults drawn from the seed, and the kernel's invariants are
//! checked afterwards (`check`). A failing seed is printed with the first
//! broken invariant and the command that replays it, then shrunk (fewer
//! processes, fewer operations, fewer faults) while it still fails the
//! same way, and the smallest workload is written as a replay file.
//!
//! A kernel fault or panic ends `sim` itself (the kernel's report says
//! so); the panic hook names the seed first, so the sweep can be replayed
//! from there.

pub mod check;
pub mod workload;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use check::{Outcome, Violation};
pub use workload::{FAULT_KINDS, Faults, Workload};

/// The default rates (per mille) of each fault kind a sweep may inject.
pub const DEFAULT_FAULTS: Faults = Faults {
    frames: 100,
    kills: 300,
    io: 100,
    slow_io: 200,
    irqs: 50,
    skew: 100,
    stalls: 20,
};

/// Parse `--faults`: `all`, `none`, or a comma-separated list of kinds,
/// each optionally `KIND=RATE` (per mille, at most 1,000).
///
/// # Errors
/// The word that is not a kind or a rate.
pub fn parse_faults(text: &str) -> Result<Faults, String> {
    match text {
        "all" => return Ok(DEFAULT_FAULTS),
        "none" => return Ok(Faults::default()),
        _ => {}
    }
    let mut faults = Faults::default();
    let mut defaults = DEFAULT_FAULTS;
    for word in text.split(',') {
        let (name, rate) = match word.split_once('=') {
            Some((n, r)) => (
                n,
                Some(
                    r.parse::<u16>()
                        .ok()
                        .filter(|&r| r <= 1000)
                        .ok_or_else(|| format!("`{word}`: the rate is per mille, 0 to 1000"))?,
                ),
            ),
            None => (word, None),
        };
        let default = *defaults.get_mut(name).ok_or_else(|| {
            format!(
                "`{}`: not a fault kind (kinds: {})",
                kernel_core::escape::name(name),
                FAULT_KINDS.join(", ")
            )
        })?;
        if let Some(r) = faults.get_mut(name) {
            *r = rate.unwrap_or(default);
        }
    }
    Ok(faults)
}

/// Parse `--seeds A..B` (B excluded).
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_seeds(text: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| "expected A..B".to_owned())?;
    let a: u64 = a.parse().map_err(|_| format!("`{a}` is not a seed"))?;
    let b: u64 = b.parse().map_err(|_| format!("`{b}` is not a seed"))?;
    if a >= b {
        return Err(format!("{a}..{b} holds no seed"));
    }
    Ok(a..b)
}

/// Parse `--shard K/N` (1 <= K <= N).
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| "expected K/N".to_owned())?;
    let k: u64 = k.parse().map_err(|_| format!("`{k}` is not a number"))?;
    let n: u64 = n.parse().map_err(|_| format!("`{n}` is not a number"))?;
    if k == 0 || k > n {
        return Err(format!("shard {k}/{n}: K must be 1 to N"));
    }
    Ok((k, n))
}

/// One seed that failed, shrunk.
#[derive(Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The first broken invariant of the seed's own workload.
    pub violation: Violation,
    /// The smallest workload found that still fails the same way.
    pub shrunk: Workload,
    /// Where it was written, if it was.
    pub file: Option<PathBuf>,
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Faults injected by kind ([`FAULT_KINDS`] order).
    pub injected: [u64; 7],
    /// Invariant checks made.
    pub checks: u64,
    /// The seeds that failed.
    pub failures: Vec<Failure>,
    /// Seeds per second.
    pub rate: f64,
}

/// Whether seed `s` of a sweep is this shard's (`(k, n)`: every n-th seed
/// from the k-th).
pub fn in_shard(s: u64, shard: (u64, u64)) -> bool {
    s % shard.1 == shard.0 - 1
}

/// Whether seed `s` also runs twice to check its replay (one in eight).
fn replays(s: u64) -> bool {
    s.is_multiple_of(8)
}

/// Shrink `w`, which fails as `v`: drop processes, operations, kills and
/// fault kinds one at a time while the run still fails with the same kind
/// of violation. The smallest workload found.
pub fn shrink(w: &Workload, v: &Violation) -> Workload {
    let still = |c: &Workload| matches!(check::check(c, false), Err(e) if e.kind == v.kind);
    let mut best = w.clone();
    let mut progress = true;
    while progress {
        progress = false;
        for i in (0..best.procs.len()).rev() {
            let mut c = best.clone();
            c.procs.remove(i);
            if !c.procs.is_empty() && still(&c) {
                best = c;
                progress = true;
            }
        }
        for i in 0..best.procs.len() {
            for k in (0..best.procs[i].ops.len()).rev() {
                let mut c = best.clone();
                c.procs[i].ops.remove(k);
                if still(&c) {
                    best = c;
                    progress = true;
                }
            }
            if best.procs[i].kill_at_ms.is_some() {
                let mut c = best.clone();
                c.procs[i].kill_at_ms = None;
                if still(&c) {
                    best = c;
                    progress = true;
                }
            }
        }
        for (name, rate) in best.faults.list() {
            if rate == 0 {
                continue;
            }
            let mut c = best.clone();
            if let Some(r) = c.faults.get_mut(name) {
                *r = 0;
            }
            if still(&c) {
                best = c;
                progress = true;
            }
        }
    }
    best
}

/// Run the sweep over `seeds` (those of `shard`) with `faults` enabled;
/// replay files of failures go to `out`. `progress` is told of each
/// failure as it is found.
pub fn sweep(
    seeds: std::ops::Range<u64>,
    faults: &Faults,
    shard: (u64, u64),
    out: Option<&Path>,
    progress: &mut dyn FnMut(&Failure),
) -> Summary {
    let start = Instant::now();
    let mut summary = Summary::default();
    for seed in seeds.filter(|&s| in_shard(s, shard)) {
        let w = Workload::generate(seed, faults);
        CURRENT_SEED.store(seed, std::sync::atomic::Ordering::SeqCst);
        summary.seeds += 1;
        let replay = replays(seed);
        summary.checks += check::CHECKS_PER_RUN + u64::from(replay);
        match check::check(&w, replay) {
            Ok(o) => {
                for (t, n) in summary.injected.iter_mut().zip(o.injected) {
                    *t += n;
                }
            }
            Err(violation) => {
                let shrunk = shrink(&w, &violation);
                let file = out.and_then(|dir| {
                    let path = dir.join(format!("swarm-{seed}.replay"));
                    std::fs::write(&path, shrunk.to_text()).ok().map(|()| path)
                });
                let failure = Failure {
                    seed,
                    violation,
                    shrunk,
                    file,
                };
                progress(&failure);
                summary.failures.push(failure);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    summary.rate = if secs > 0.0 {
        summary.seeds as f64 / secs
    } else {
        0.0
    };
    summary
}

/// The seed being run, for the panic hook.
pub static CURRENT_SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
