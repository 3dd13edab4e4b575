//! Helpers for Vessel's whole-system tests (the tests themselves live in
//! `tests/tests/`, one binary per file, because they boot kernels and
//! install signal handlers).

use std::process::{Command, Output};

/// Environment variable that turns a test binary into a child that runs one
/// scenario and exits, so that a test can watch a kernel stop its process.
pub const CHILD_ENV: &str = "VESSEL_TEST_CHILD";

/// Re-run the current test binary as a child running only `test`, with
/// [`CHILD_ENV`] set to `scenario`, and return its output.
pub fn run_child(test: &str, scenario: &str) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, scenario)
        .output()
        .expect("test binary re-runs")
}

/// The scenario this process was started for, if it is a child.
pub fn child_scenario() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}
