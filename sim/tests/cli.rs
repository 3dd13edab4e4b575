//! End-to-end runs of the `sim` binary: the boot banner contract, exit
//! statuses, flag placement and errors for bad arguments.

mod common;

use common::{sim, stderr, stdout};

#[test]
fn boots_with_banner_and_passes_selftests() {
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
    let last = text.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "last line: {last}");
}

#[test]
fn global_flags_after_the_subcommand() {
    let out = sim(&["selftest", "--cpus", "3", "--memory", "64M"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("boot: hal=hosted cpus=3 memory=64MiB"));
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
