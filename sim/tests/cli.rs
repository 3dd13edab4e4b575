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
            .any(|l| common::banner_is(l, "boot: hal=hosted cpus=2 memory=512MiB")),
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
        ("vector", "exited 0"),
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
    assert_eq!(last, "demo: 9 as expected, 0 not", "{text}");
}

#[test]
fn global_flags_after_the_subcommand() {
    let out = sim(&["selftest", "--cpus", "3", "--memory", "64M"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| common::banner_is(l, "boot: hal=hosted cpus=3 memory=64MiB")),
        "{text}"
    );
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
        &["run"],
        &["--memory", "4K"],
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
        assert_eq!(stdout(&out), "", "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

/// Run `sim` with `args`, killing it (and failing) after `limit`.
fn sim_bounded(args: &[&str], limit: std::time::Duration) -> std::process::Output {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim binary runs");
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait for sim") {
            Some(_) => return child.wait_with_output().expect("sim output"),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("sim output");
                panic!(
                    "sim {args:?} did not end within {limit:?}:\n{}{}",
                    stdout(&out),
                    stderr(&out)
                );
            }
            None => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// Run `sim` twice with `args` (a deterministic run), expect exit 0 and
/// the same standard output both times; that output.
fn replays(args: &[&str]) -> String {
    let limit = std::time::Duration::from_secs(300);
    let a = sim_bounded(args, limit);
    let b = sim_bounded(args, limit);
    assert_eq!(a.status.code(), Some(0), "{}{}", stdout(&a), stderr(&a));
    let text = stdout(&a);
    assert_eq!(text, stdout(&b), "two runs of {args:?} differ");
    text
}

#[test]
fn deterministic_runs_with_one_seed_print_the_same() {
    let text = replays(&["--deterministic", "--seed", "7", "--cpus", "4", "selftest"]);
    let mut lines = text.lines().rev();
    let summary = lines.next().unwrap_or_default();
    assert!(
        summary.starts_with("deterministic: seed=7 virtual=") && summary.contains(" trace="),
        "last line: {summary}"
    );
    let totals = lines.next().unwrap_or_default();
    assert!(totals.ends_with(" passed, 0 failed"), "{text}");
}

/// The most CPUs the CLI accepts: a compute and a vector process per CPU
/// plus five more, all live at once, fit the default memory and window.
#[test]
fn the_demo_passes_at_the_most_cpus() {
    let out = sim(&["--cpus", "256"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.lines().any(|l| l == "demo: 517 as expected, 0 not"),
        "{text}"
    );
}

#[test]
fn deterministic_demo_replays() {
    let text = replays(&["--deterministic", "--seed", "3", "--cpus", "2", "demo"]);
    let mut lines = text.lines().rev();
    assert!(
        lines
            .next()
            .unwrap_or_default()
            .starts_with("deterministic: seed=3 ")
    );
    assert_eq!(lines.next(), Some("demo: 9 as expected, 0 not"), "{text}");
}

#[test]
fn bad_seeds_exit_2() {
    for args in [
        &["--seed", "7", "selftest"][..],
        &["--deterministic", "--seed", "x"],
        &["--deterministic", "--seed", "-1"],
    ] {
        let out = sim(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

/// `test=input`: a process waits for a line of console input, which
/// comes half a second after the start; the input interrupt wakes it, so
/// it ran a handful of slices, not one per millisecond it waited.
#[test]
fn a_line_of_input_wakes_its_reader() {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["boot", "test=input"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sim starts");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(b"hello, kernel\n").expect("input");
    drop(stdin);
    let out = child.wait_with_output().expect("sim ends");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("\nline: hello, kernel\n"), "{text}");
    let slices: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("input: read after "))
        .and_then(|l| l.strip_suffix(" slices"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no slice count: {text}"));
    assert!(
        slices < 50,
        "the reader ran {slices} slices while it waited"
    );
}

/// What a hostile user may hand `sim run --dir` and `sim swarm --replay`:
/// each is one escaped line on standard error and exit 2, never a run.
#[test]
fn bad_dirs_and_replay_files_are_one_escaped_line() {
    let dir = common::scratch("bad-replay");
    let wasm = dir.join("empty.wat");
    std::fs::write(&wasm, "(module (func (export \"_start\")))").expect("module");
    for bad in ["/no\u{1b}[31mwhere::/", "/tmp::", "::/"] {
        let out = sim(&["run", "--dir", bad, wasm.to_str().expect("utf-8")]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{bad:?}: {err}");
        assert!(!err.contains('\u{1b}'), "{bad:?}: {err}");
    }
    let replays = [
        "not a replay file",
        "vessel-swarm 1\ncpus 0\n",
        "vessel-swarm 1\nmemory-mib 99999999999999\n",
        "vessel-swarm 1\nfault bogus 3\n",
        "vessel-swarm 1\n  compute 5\n",
        "vessel-swarm 1\n\u{1b}[2Jproc\n",
    ];
    for (i, text) in replays.iter().enumerate() {
        let file = dir.join(format!("bad{i}.replay"));
        std::fs::write(&file, text).expect("replay file");
        let out = sim(&["swarm", "--replay", file.to_str().expect("utf-8")]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{text:?}: {err}");
        assert!(!err.contains('\u{1b}'), "{text:?}: {err}");
    }
}

#[test]
fn boot_with_an_initrd_runs_init_from_it_and_exits_with_its_status() {
    let init = wat::parse_str(
        r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (call $exit (i32.const 3))))"#,
    )
    .expect("init assembles");
    use kernel_core::fs::cpio::{Item, Kind, write};
    let image = write(&[Item {
        name: b"sbin/init",
        kind: Kind::Regular,
        perms: 0o755,
        data: &init,
    }])
    .expect("an image");
    let path = common::scratch("initrd").join("image.cpio");
    std::fs::write(&path, &image).expect("write the image");
    let out = sim(&[
        "boot".as_ref(),
        "--initrd".as_ref(),
        path.as_os_str(),
        "init=/sbin/init".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Without `init=`, /bin/init is looked for: not in this image.
    let out = sim(&["boot".as_ref(), "--initrd".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("init: /bin/init: "),
        "{}",
        stdout(&out)
    );
    // An image that is not there: one line, exit 2.
    let out = sim(&["boot", "--initrd", "/no/such/image.cpio"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/no/such/image.cpio"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pack_writes_an_image_boot_runs_and_refuses_bad_arguments_in_one_line() {
    let dir = common::scratch("pack");
    let image = dir.join("boot.cpio");
    let echo = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wasi_echo.wat");
    let out = sim(&[
        "pack".as_ref(),
        image.as_os_str(),
        format!("/bin/init={echo}").as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = sim(&[
        "boot".as_ref(),
        "--initrd".as_ref(),
        image.as_os_str(),
        "init=/bin/init".as_ref(),
        "--".as_ref(),
        "a".as_ref(),
        "b".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("\na\nb\n"), "{}", stdout(&out));
    for bad in [
        "bin/init=x.wasm".to_owned(),
        "/bin/init".to_owned(),
        "/=x".to_owned(),
        format!("/a={echo}"),
        format!("/bin/../../etc={echo}"),
        format!("/a//b={echo}"),
        format!("//a/={echo}"),
    ] {
        let args: [std::ffi::OsString; 4] = [
            "pack".into(),
            dir.join("bad.cpio").into_os_string(),
            format!("/a={echo}").into(),
            bad.clone().into(),
        ];
        let out = sim(&args);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert_eq!(stderr(&out).lines().count(), 1, "{bad}: {}", stderr(&out));
        assert!(!dir.join("bad.cpio").exists(), "{bad}: nothing written");
    }
}
