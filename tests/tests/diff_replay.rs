//! The record-and-replay path of the differential oracle on hosted: seeds
//! recorded on wasmtime alone (`tests::diff::record`, SIMD off as for
//! riscv) and replayed on the hosted kernel by the same code the riscv
//! kernel runs under `test=diff` (`kernel_core::diff::replay`). Also shows
//! that the replay catches a wrong expectation and names its seed, and
//! that a damaged bundle is refused.

use kernel_core::diff::record::{self, Event};
use kernel_core::diff::replay::{self, CaseResult, Summary};
use kernel_core::diff::{Outcome, Step, Value};
use tests::diff::{self, Memories};

const BYTES: usize = 16 << 10;

fn recorded(seeds: std::ops::Range<u64>) -> Vec<record::Case> {
    let engine = diff::engine();
    seeds
        .map(|seed| {
            let memories = if seed % 2 == 0 {
                Memories::GuardPages
            } else {
                Memories::Bounded
            };
            diff::record(
                &engine,
                diff::smith_config_with(false),
                seed,
                memories,
                &diff::seed_bytes(seed, BYTES),
            )
        })
        .collect()
}

fn replayed(cases: &[record::Case]) -> (Summary, Vec<CaseResult>) {
    let bundle = record::bundle(&cases.iter().map(record::encode_case).collect::<Vec<_>>());
    let hosted = diff::machine();
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            let mut failures = Vec::new();
            let summary = replay::run_bundle(k, &bundle, |r| {
                if !matches!(r, CaseResult::Agreed { .. }) {
                    failures.push(r.clone());
                }
            })
            .expect("bundle decodes");
            (summary, failures)
        })
    })
}

#[test]
fn recorded_seeds_replay_without_divergence() {
    let cases = recorded(0..100);
    let (summary, failures) = replayed(&cases);
    for f in &failures {
        println!("{}", replay::failure_line(f).unwrap_or_default());
    }
    println!(
        "diff_replay: {} agree, {} diverge, {} inconclusive; {}",
        summary.agreed, summary.diverged, summary.inconclusive, summary.tally
    );
    assert!(failures.is_empty());
    assert_eq!(summary.agreed, 100);
    assert!(summary.passed(), "{summary:?}");
}

#[test]
fn a_wrong_expectation_is_a_divergence_naming_its_seed() {
    let mut cases = recorded(0..20);
    // Flip the low bit of the first recorded number a call returned.
    let mut flipped = None;
    'find: for c in &mut cases {
        for e in &mut c.events {
            let Event::Call {
                export,
                outcome: Ok(Outcome::Returned(vals)),
                ..
            } = e
            else {
                continue;
            };
            for v in vals.iter_mut() {
                match v {
                    Value::I32(x) => *x ^= 1,
                    Value::I64(x) => *x ^= 1,
                    Value::F32(x) => *x ^= 1,
                    Value::F64(x) => *x ^= 1,
                    Value::V128(_) | Value::Ref { .. } => continue,
                }
                flipped = Some((c.seed, export.clone()));
                break 'find;
            }
        }
    }
    let (seed, export) = flipped.expect("some call of seeds 0..20 returns a number");
    let (summary, failures) = replayed(&cases);
    assert_eq!(summary.diverged, 1);
    assert!(!summary.passed());
    match failures.as_slice() {
        [
            CaseResult::Diverged {
                seed: s,
                divergence,
                ..
            },
        ] => {
            assert_eq!(*s, seed);
            assert_eq!(divergence.step, Step::Call(export));
        }
        other => panic!("expected one divergence of seed {seed}: {other:?}"),
    }
    let line = replay::failure_line(&failures[0]).unwrap_or_default();
    assert!(line.starts_with(&format!("diff: seed {seed} ")), "{line}");
}

#[test]
fn a_damaged_bundle_is_refused() {
    let cases = recorded(0..3);
    let mut bundle = record::bundle(&cases.iter().map(record::encode_case).collect::<Vec<_>>());
    let mid = bundle.len() / 2;
    bundle[mid] ^= 0x10;
    assert_eq!(record::cases(&bundle), Err(record::FormatError::Checksum));
}
