//! What a hostile user or module can do to `sim`, one regression test per
//! way: runaway runs (`--timeout`), oversized input, names that forge
//! terminal output, the perf map, unwritable standard output, and the
//! errors for bad input. Fixtures are in `tests/data/limits/`.

mod common;

use std::fs::File;
use std::process::{Output, Stdio};

use common::{data, scratch, sim, sim_to, stderr as err, stdout as out};

const TIMEOUT: i32 = 5;
const OUTPUT: i32 = 6;
const USAGE: i32 = 2;

fn limits(name: &str) -> String {
    data(&format!("limits/{name}"))
}

/// `sim --cpus 1 run <limits/file> ARGS...`.
fn run(file: &str, args: &[&str]) -> Output {
    let path = limits(file);
    let mut argv = vec!["--cpus", "1", "run", &path];
    argv.extend_from_slice(args);
    sim(&argv)
}

/// No byte of `text` is a control character other than a newline.
fn assert_no_controls(what: &str, text: &[u8]) {
    let s = String::from_utf8_lossy(text);
    let bad: Vec<char> = s.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(
        bad.is_empty(),
        "{what} holds control characters {bad:?}:\n{s}"
    );
    for c in ['\u{202e}', '\u{2066}', '\u{200f}'] {
        assert!(!s.contains(c), "{what} holds {c:?}:\n{s}");
    }
}

// Reproduction 5: runaway runs.

#[test]
fn timeout_interrupts_a_loop_in_the_called_export() {
    let o = run("loop_export.wat", &["--timeout", "300ms"]);
    assert_eq!(o.status.code(), Some(TIMEOUT), "{}{}", out(&o), err(&o));
    assert_eq!(err(&o), "sim: timed out after 300ms\n");
    assert_eq!(out(&o), "");
}

#[test]
fn timeout_interrupts_a_loop_in_the_start_function() {
    let o = run("loop_start.wat", &["--timeout", "1s"]);
    assert_eq!(o.status.code(), Some(TIMEOUT), "{}{}", out(&o), err(&o));
    assert_eq!(err(&o), "sim: timed out after 1s\n");
}

#[test]
fn timeout_interrupts_a_wast_script_and_runs_nothing_after() {
    let script = limits("loop.wast");
    let o = sim(&["--cpus", "1", "wast", &script, "--timeout", "300ms"]);
    assert_eq!(o.status.code(), Some(TIMEOUT), "{}{}", out(&o), err(&o));
    assert_eq!(err(&o), "sim: timed out after 300ms\n");
    let text = out(&o);
    assert!(
        text.lines()
            .any(|l| l == format!("{script}:5: timed out after 300ms")),
        "{text}"
    );
    // The two directives before the loop passed; the one after never ran.
    assert_eq!(text.lines().last(), Some("2 passed, 1 failed"), "{text}");
}

#[test]
fn a_run_within_its_timeout_is_unchanged() {
    let fib = data("fib.wat");
    let o = sim(&[
        "--cpus",
        "1",
        "run",
        &fib,
        "--timeout",
        "10m",
        "--invoke",
        "main",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "832040\n");
}

#[test]
fn bad_timeouts_are_one_line_and_exit_2() {
    let fib = data("fib.wat");
    for (value, why) in [
        ("0s", "must be more than zero"),
        ("5", "needs a unit"),
        ("soon", "not a duration"),
        ("1.5s", "needs a unit"),
    ] {
        let o = sim(&["run", &fib, "--timeout", value]);
        assert_eq!(o.status.code(), Some(USAGE), "{value}: {}", err(&o));
        let e = err(&o);
        assert_eq!(e.lines().count(), 1, "{value}: {e}");
        assert!(
            e.starts_with(&format!("sim: --timeout {value}: {why}")),
            "{value}: {e}"
        );
    }
}

// Input size cap.

#[test]
fn endless_input_is_refused_at_the_module_size_limit() {
    for sub in ["run", "wast"] {
        let o = sim(&[sub, "/dev/zero"]);
        assert_eq!(o.status.code(), Some(USAGE), "{sub}: {}", err(&o));
        assert_eq!(
            err(&o),
            "sim: /dev/zero: larger than 16 MiB, the largest module the kernel accepts\n",
            "{sub}"
        );
    }
}

// Reproduction 6: names reach the terminal.

#[test]
fn hostile_names_in_a_backtrace_are_escaped() {
    let o = run("names.wat", &["--invoke", "outer\x1b]0;title\x07"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_no_controls("stdout", &o.stdout);
    assert_no_controls("stderr", &o.stderr);
    let text = out(&o);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "trap: unreachable",
            "  at func 0 (in\\x1b[2J\\x00ner\\x0aforged line\\u{202e}evil) @ 0x36",
            "  at func 1 @ 0x3a",
        ],
        "{text}"
    );
}

#[test]
fn hostile_export_names_in_errors_are_escaped() {
    let o = run("names.wat", &["--invoke", "no\nsuch\x1b[0m"]);
    assert_eq!(o.status.code(), Some(USAGE));
    assert_no_controls("stderr", &o.stderr);
    assert_eq!(
        err(&o),
        "sim: no exported function `no\\x0asuch\\x1b[0m` (exported functions: \
         outer\\x1b]0;title\\x07, \\u{202e}\\x0d\\x0a)\n"
    );
}

#[test]
fn a_100_kb_name_is_cut_with_a_marker() {
    let dir = scratch("long-name");
    let long = "n".repeat(100_000);
    let path = dir.join("long.wat");
    std::fs::write(
        &path,
        format!(
            "(module (func (@name \"{long}\") unreachable) (func (export \"{long}\") call 0) \
             (func (export \"go\") call 0))"
        ),
    )
    .expect("write module");
    let path = path.display().to_string();
    let o = sim(&["--cpus", "1", "run", &path, "--invoke", "go"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let text = out(&o);
    assert!(text.len() < 2048, "{} bytes", text.len());
    let marker = format!("{}…(+{} bytes)", "n".repeat(256), 100_000 - 256);
    assert!(text.contains(&format!("({marker})")), "{text}");
    // The export list of a "no export" error: the same.
    let o = sim(&["--cpus", "1", "run", &path, "--invoke", "absent"]);
    assert_eq!(o.status.code(), Some(USAGE));
    let e = err(&o);
    assert!(e.len() < 2048, "{} bytes", e.len());
    assert!(e.contains(&marker), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_backtrace_longer_than_64_frames_says_it_was_cut() {
    let o = run("deep.wat", &["--invoke", "_start"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"trap: call stack exhausted"), "{text}");
    let frames = lines
        .iter()
        .filter(|l| l.starts_with("  at func 0"))
        .count();
    assert_eq!(frames, 64, "{text}");
    assert_eq!(lines.last(), Some(&"  ... backtrace cut at 64 frames"));
}

// Reproduction 7: the perf map. The open itself is also tested in
// hal-hosted's jit tests, in a directory of their own.

#[test]
fn perf_map_refuses_a_planted_link_and_leaves_its_target() {
    let dir = scratch("perf-link");
    let target = dir.join("precious");
    std::fs::write(&target, b"keep me").expect("target");
    let fib = data("fib.wat");
    // A shell plants the link at the path for its own pid, then becomes
    // sim with `exec`, which keeps the pid: no race for the name.
    let o = std::process::Command::new("sh")
        .args([
            "-c",
            r#"ln -s "$1" "$2/perf-$$.map" && exec "$3" --cpus 1 --perf-map run "$4""#,
            "sh",
        ])
        .arg(&target)
        .arg(std::env::temp_dir())
        .args([env!("CARGO_BIN_EXE_sim"), fib.as_str()])
        .output()
        .expect("sh runs");
    assert_eq!(o.status.code(), Some(USAGE), "{}{}", out(&o), err(&o));
    let e = err(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("sim: --perf-map: ") && e.contains("already exists and is not ours"),
        "{e}"
    );
    assert_eq!(std::fs::read(&target).expect("target"), b"keep me");
    assert_eq!(out(&o), "", "nothing ran");
    // The link is named in the message; remove it.
    if let Some(link) = e.split_whitespace().find(|w| w.ends_with(".map")) {
        let _ = std::fs::remove_file(link);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn perf_map_is_private_and_one_symbol_per_line() {
    let path = limits("names.wat");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["--cpus", "1", "--perf-map", "run", &path])
        .args(["--invoke", "outer\x1b]0;title\x07"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim runs");
    let map = std::env::temp_dir().join(format!("perf-{}.map", child.id()));
    let o = child.wait_with_output().expect("sim ends");
    let text = std::fs::read(&map);
    let mode =
        std::fs::metadata(&map).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
    let _ = std::fs::remove_file(&map);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let text = text.expect("the perf map was written");
    assert_eq!(mode.expect("stat") & 0o777, 0o600);
    assert_no_controls("the perf map", &text);
    let text = String::from_utf8_lossy(&text);
    for line in text.lines() {
        let mut words = line.splitn(3, ' ');
        let hex = |w: Option<&str>| w.is_some_and(|w| u64::from_str_radix(w, 16).is_ok());
        assert!(hex(words.next()) && hex(words.next()), "{line}");
        assert!(
            words.next().is_some_and(|n| n.starts_with("names!")),
            "{line}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.ends_with(" names!in\\x1b[2J\\x00ner\\x0aforged line\\u{202e}evil")),
        "{text}"
    );
}

// Reproduction 8: standard output that cannot be written.

/// A pipe whose reading end is already closed: every write fails with
/// `EPIPE`.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

fn dev_full() -> Stdio {
    Stdio::from(File::create("/dev/full").expect("/dev/full"))
}

#[test]
fn unwritable_results_exit_6_with_one_line() {
    let fib = data("fib.wat");
    for (what, stdout, why) in [
        ("/dev/full", dev_full(), "No space left on device"),
        ("a closed pipe", closed_pipe(), "Broken pipe"),
    ] {
        let o = sim_to(&["--cpus", "1", "run", &fib, "--invoke", "main"], stdout);
        assert_eq!(o.status.code(), Some(OUTPUT), "{what}: {}", err(&o));
        let e = err(&o);
        assert_eq!(e.lines().count(), 1, "{what}: {e}");
        assert!(
            e.starts_with("sim: cannot write to standard output: ") && e.contains(why),
            "{what}: {e}"
        );
    }
}

#[test]
fn unwritable_console_fails_the_demo_and_selftest() {
    for (sub, stdout) in [("demo", dev_full()), ("selftest", closed_pipe())] {
        let o = sim_to(&["--cpus", "2", sub], stdout);
        assert_eq!(o.status.code(), Some(OUTPUT), "{sub}: {}", err(&o));
        assert!(
            err(&o)
                .lines()
                .any(|l| l.starts_with("sim: cannot write to standard output: ")),
            "{sub}: {}",
            err(&o)
        );
    }
}

#[test]
fn unwritable_wast_table_exits_6() {
    let script = limits("loop.wast");
    let o = sim_to(
        &["--cpus", "1", "wast", &script, "--timeout", "100ms"],
        dev_full(),
    );
    assert_eq!(o.status.code(), Some(OUTPUT), "{}", err(&o));
}

// Reproduction 9: unclear errors.

#[test]
fn text_errors_name_file_line_and_column() {
    let o = run("bad_line3.wat", &[]);
    assert_eq!(o.status.code(), Some(USAGE));
    assert_eq!(
        err(&o),
        format!(
            "sim: {}:3:5: unknown operator or unexpected token\n",
            limits("bad_line3.wat")
        )
    );
}

#[test]
fn script_errors_name_file_line_and_column() {
    let script = limits("bad_line2.wast");
    let o = sim(&["--cpus", "1", "wast", &script]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{script}:2:19: cannot parse script: "))),
        "{text}"
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let o = run("bom.wat", &["--invoke", "_start"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "7\n");
}

#[test]
fn a_short_wasm_file_is_a_truncated_binary() {
    let o = run("short.wasm", &[]);
    assert_eq!(o.status.code(), Some(USAGE));
    assert_eq!(
        err(&o),
        format!(
            "sim: {}: truncated module: 3 byte(s), shorter than the 8-byte header\n",
            limits("short.wasm")
        )
    );
}

#[test]
fn memory_errors_say_what_is_needed() {
    for (value, msg) in [
        ("4K", "sim: --memory 4K: at least 16M is needed\n"),
        (
            "16777217",
            "sim: --memory 16777217: must be a multiple of 4K\n",
        ),
        (
            "12Q",
            "sim: --memory 12Q: unknown size suffix `Q` (use K, M, G or T)\n",
        ),
    ] {
        let o = sim(&["--memory", value, "selftest"]);
        assert_eq!(o.status.code(), Some(USAGE), "{value}");
        assert_eq!(err(&o), msg);
        assert_eq!(out(&o), "");
    }
}

#[test]
fn a_data_segment_out_of_bounds_is_named() {
    let o = run("data_oob.wat", &["--invoke", "_start"]);
    assert_eq!(o.status.code(), Some(USAGE));
    assert_eq!(
        err(&o),
        "sim: out of bounds memory access (data segment 1)\n"
    );
}

#[test]
fn boot_errors_go_to_standard_error() {
    let o = sim(&["boot", "bogus"]);
    assert_eq!(o.status.code(), Some(USAGE));
    assert_eq!(out(&o), "");
    assert!(
        err(&o).starts_with("boot: unknown command-line word `bogus`"),
        "{}",
        err(&o)
    );
}
