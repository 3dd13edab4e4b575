//! The memory manager against its reference model: libFuzzer's bytes
//! become a sequence of up to 64 operations (`tests::mem_model::Op`: reserve,
//! commit, map object, protect, decommit, release, touch) that
//! `tests::mem_model::run` applies to the hosted kernel and to the model,
//! checking every page, the free frame count and the owner's charge after
//! each step. The same model backs the proptest in
//! `tests/tests/mem_model.rs`.
//!
//! Touches are real loads and stores: demand and copy-on-write faults are
//! resolved by the kernel's fault path, whose signal handlers replace
//! libFuzzer's when the kernel boots. A fault it cannot resolve ends the
//! process with its report (exit status 3) before libFuzzer can save the
//! input: set `VESSEL_FUZZ_LAST_INPUT=FILE` to keep each input first.
//!
//! After every input the process's peak resident memory must stay within
//! the machine's memory plus [`RUNTIME_ALLOWANCE`] (`tests::rss`): an input
//! that makes the kernel hold host memory outside the machine it was given
//! (its heap growing with what a guest asks for) is a crash too.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use tests::kernel_thread::KernelThread;
use tests::mem_model;

static KERNEL: OnceLock<KernelThread> = OnceLock::new();

/// Most operations in one input.
const MAX_OPS: usize = 64;
/// The machine's memory (a memfd: what the kernel touches of it is
/// resident on the host).
const MEMORY: u64 = 64 << 20;
/// What the process may hold besides the machine's memory: the target
/// binary, libFuzzer's corpus and tables, the kernel's and the model's
/// heaps. The kernel's heap for one input is a few regions' slot tables
/// and the window's gaps, kilobytes. Measured: a peak of 31 MiB in all,
/// machine included, over 867,000 inputs (150 s from an empty corpus).
const RUNTIME_ALLOWANCE: u64 = 256 << 20;

fuzz_target!(|data: &[u8]| {
    if let Some(path) = std::env::var_os("VESSEL_FUZZ_LAST_INPUT") {
        let _ = std::fs::write(path, data);
    }
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS && !u.is_empty() {
        match mem_model::arbitrary_op(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    let kernel = KERNEL.get_or_init(|| {
        KernelThread::start(hal_hosted::Config {
            cpus: 1,
            memory: MEMORY,
            window: 1 << 40,
            ..hal_hosted::Config::default()
        })
    });
    let outcome = kernel.run(move |k| mem_model::run(k, &ops).map_err(|e| (e, ops)));
    if let Err((e, ops)) = outcome {
        panic!("memory manager and model disagree: {e}\nops: {ops:#?}");
    }
    tests::rss::check_peak(
        MEMORY + RUNTIME_ALLOWANCE,
        "the machine's 64 MiB and 256 MiB for the fuzzer and the runtime",
    );
});
