//! End-to-end runs of the `sim` binary: the boot banner contract, exit
//! statuses, flag placement and errors for bad arguments.

mod common;

use common::{sim, stderr, stdout};

#[test]
fn default_run_is_the_demo_with_every_process_as_expected() {
    let out = sim(&["--cpus", "2"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    assert!(
        text.lines()
            .any(|l| l == "boot: hal=hosted cpus=2 memory=512MiB"),
        "{text}"
    );
    // One row per process: name and status, then the verdict.
    let row = |name: &str, status: &str| {
        text.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.get(1) == Some(&name) && l.contains(status) && words.last() == Some(&"yes")
        })
    };
    for (name, status) in [
        ("compute", "exited 0"),
        ("ping", "exited 0"),
        ("pong", "exited 0"),
        ("sleeper", "exited 0"),
        ("trap", "trapped: integer divide by zero"),
        ("spin", "killed: deadline"),
    ] {
        assert!(
            row(name, status),
            "no `{name}` row with `{status}`:\n{text}"
        );
    }
    let last = text.lines().last().unwrap_or_default();
    assert_eq!(last, "demo: 7 as expected, 0 not", "{text}");
}

#[test]
fn global_flags_after_the_subcommand() {
    let out = sim(&["selftest", "--cpus", "3", "--memory", "64M"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("boot: hal=hosted cpus=3 memory=64MiB"));
    let last = text.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "last line: {last}");
}

#[test]
fn unresolvable_fault_is_reported_and_exits_3() {
    let out = sim(&["--cpus", "2", "boot", "test=fault"]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout:\n{}\nstderr:\n{err}",
        stdout(&out)
    );
    let report = err
        .lines()
        .find(|l| l.starts_with("kernel fault:"))
        .unwrap_or_else(|| panic!("no report in:\n{err}"));
    assert!(report.contains("PageFault"), "{report}");
    assert!(report.contains("pc=0x"), "{report}");
    assert!(report.contains("addr=0x"), "{report}");
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for args in [
        &["--memory", "12Q"][..],
        &["--cpus", "0"],
        &["--log", "[[["],
        &["boot", "bogus"],
        &["frobnicate"],
    ] {
        let out = sim(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let msg = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!msg.contains("panicked"), "{args:?} panicked: {msg}");
    }
}
