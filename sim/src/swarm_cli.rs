//! `sim swarm`'s command line: the sweep's progress and summary on
//! standard output, failures as they are found, and `--replay FILE`.

use std::path::Path;

use kernel_core::exit;
use sim::swarm::{self, Failure, Faults, Workload};

use crate::out;

/// The `--faults` word that gives back exactly `f`.
fn faults_word(f: &Faults) -> String {
    let on: Vec<String> = f
        .list()
        .iter()
        .filter(|(_, r)| *r > 0)
        .map(|(n, r)| format!("{n}={r}"))
        .collect();
    if on.is_empty() {
        "none".to_owned()
    } else {
        on.join(",")
    }
}

fn report(f: &Failure, faults: &Faults) {
    println!(
        "swarm: seed {} failed: {}: {}",
        f.seed,
        f.violation.kind,
        kernel_core::escape::name(&f.violation.detail)
    );
    println!(
        "swarm:   replay: sim swarm --seeds {}..{} --faults {}",
        f.seed,
        f.seed + 1,
        faults_word(faults)
    );
    let ops: usize = f.shrunk.procs.iter().map(|p| p.ops.len()).sum();
    match &f.file {
        Some(path) => println!(
            "swarm:   shrunk to {} processes, {ops} operations: sim swarm --replay {}",
            f.shrunk.procs.len(),
            path.display()
        ),
        None => print!(
            "swarm:   shrunk to {} processes, {ops} operations:\n{}",
            f.shrunk.procs.len(),
            f.shrunk.to_text()
        ),
    }
}

/// `sim swarm --seeds A..B [--faults LIST] [--shard K/N] [--out DIR]`.
pub fn sweep(seeds: &str, faults: &str, shard: Option<&str>, dir: Option<&Path>) -> u8 {
    let parsed = (
        swarm::parse_seeds(seeds)
            .map_err(|e| format!("--seeds {}: {e}", kernel_core::escape::name(seeds))),
        swarm::parse_faults(faults).map_err(|e| format!("--faults: {e}")),
        shard.map_or(Ok((1, 1)), |s| {
            swarm::parse_shard(s)
                .map_err(|e| format!("--shard {}: {e}", kernel_core::escape::name(s)))
        }),
    );
    let (seeds, faults, shard) = match parsed {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            out::error(format_args!("{e}"));
            return exit::USAGE;
        }
    };
    if let Some(d) = dir
        && let Err(e) = std::fs::create_dir_all(d)
    {
        out::error(format_args!("--out {}: {e}", d.display()));
        return exit::USAGE;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let seed = swarm::CURRENT_SEED.load(std::sync::atomic::Ordering::SeqCst);
        eprintln!(
            "swarm: seed {seed} panicked; replay: sim swarm --seeds {seed}..{}",
            seed + 1
        );
        previous(info);
    }));
    let summary = swarm::sweep(seeds, &faults, shard, dir, &mut |f| report(f, &faults));
    let injected: Vec<String> = swarm::FAULT_KINDS
        .iter()
        .zip(summary.injected)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "swarm: {} seeds, {} failed, {} invariant checks, {:.1} seeds/s; faults injected: {}",
        summary.seeds,
        summary.failures.len(),
        summary.checks,
        summary.rate,
        injected.join(", ")
    );
    if summary.failures.is_empty() {
        exit::SUCCESS
    } else {
        exit::FAILED
    }
}

/// `sim swarm --replay FILE`: run the workload twice (the second must
/// replay the first) and check it.
pub fn replay(file: &Path) -> u8 {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            out::error(format_args!("{}: {e}", file.display()));
            return exit::USAGE;
        }
    };
    let w = match Workload::parse(&text) {
        Ok(w) => w,
        Err(e) => {
            out::error(format_args!("{}: {e}", file.display()));
            return exit::USAGE;
        }
    };
    swarm::CURRENT_SEED.store(w.seed, std::sync::atomic::Ordering::SeqCst);
    match swarm::check::check(&w, true) {
        Ok(o) => {
            println!(
                "swarm: replay of seed {} passed: ends {:?}, trace {:?}",
                w.seed, o.ends, o.trace
            );
            exit::SUCCESS
        }
        Err(v) => {
            println!(
                "swarm: replay of seed {} failed: {}: {}",
                w.seed,
                v.kind,
                kernel_core::escape::name(&v.detail)
            );
            exit::FAILED
        }
    }
}
