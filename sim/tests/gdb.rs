//! Native gdb on the hosted kernel: a breakpoint on a wasm function by name,
//! set before the module is compiled, is hit, and `bt` shows the wasm
//! frames. Uses the repository's gdb setup (`scripts/vessel-gdb.py`).
//!
//! Skipped, with a printed reason, only when `gdb` is not installed
//! (`scripts/test-all` installs it on Debian-like systems).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Run `gdb -batch -x script --args sim ...` with a time limit; its combined
/// output.
fn gdb_batch(gdb: &Path, commands: &str, sim_args: &[&str]) -> String {
    // One directory per call: tests of one binary may run at once.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vessel-gdb-test-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = dir.join("commands.gdb");
    std::fs::write(&script, commands).expect("write gdb commands");
    let mut child = Command::new(gdb)
        .args(["-nx", "-q", "-batch", "-x"])
        .arg(&script)
        .arg("--args")
        .arg(env!("CARGO_BIN_EXE_sim"))
        .args(sim_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gdb starts");
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().expect("wait for gdb").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("gdb output");
    let _ = std::fs::remove_dir_all(&dir);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// gdb, or `None` after saying why the test is skipped.
fn gdb_or_skip() -> Option<PathBuf> {
    let gdb = find_in_path("gdb");
    if gdb.is_none() {
        eprintln!("skipping the gdb test: gdb is not installed (apt-get install gdb)");
    }
    gdb
}

/// What `text` holds between the markers `from` and `to`.
fn between<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    text.split(from)
        .nth(1)
        .and_then(|s| s.split(to).next())
        .unwrap_or_default()
}

#[test]
fn breakpoint_on_wasm_function_and_backtrace() {
    let Some(gdb) = gdb_or_skip() else {
        return;
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let wat = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/calls.wat");
    // `calls!inner` does not exist until `sim` compiles the module: the
    // breakpoint stays pending until the JIT interface registers it.
    let commands = format!(
        "set pagination off\n\
         set width 0\n\
         source {root}/scripts/vessel-gdb.py\n\
         break calls!inner\n\
         run\n\
         echo ==bt==\\n\n\
         bt\n\
         echo ==vessel-bt==\\n\n\
         vessel-bt\n\
         echo ==end==\\n\n\
         kill\n"
    );
    let text = gdb_batch(
        &gdb,
        &commands,
        &["--cpus", "1", "run", wat, "--invoke", "outer", "5"],
    );
    // gdb writes `hit Breakpoint 1, calls!inner () at ...`, with
    // `0x... in ` before the name when the stop is not at a line's start.
    assert!(
        text.lines()
            .any(|l| l.contains("hit Breakpoint 1,") && l.contains("calls!inner ()")),
        "the breakpoint on calls!inner was not hit:\n{text}"
    );
    let bt = between(&text, "==bt==", "==vessel-bt==");
    let frames: Vec<&str> = bt.lines().filter(|l| l.starts_with('#')).collect();
    let inner = frames.iter().position(|l| l.contains("calls!inner"));
    let outer = frames.iter().position(|l| l.contains("calls!outer"));
    assert!(
        matches!((inner, outer), (Some(0), Some(1))),
        "bt does not show inner above outer:\n{text}"
    );
    let vbt = between(&text, "==vessel-bt==", "==end==");
    assert!(
        vbt.contains("#0  calls!inner") && vbt.contains("#1  calls!outer @ 0x30"),
        "vessel-bt:\n{text}"
    );
}

#[test]
fn vessel_procs_lists_the_process_stopped_at_a_breakpoint() {
    let Some(gdb) = gdb_or_skip() else {
        return;
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let wat = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wasi_echo.wat");
    let commands = format!(
        "set pagination off\n\
         set width 0\n\
         source {root}/scripts/vessel-gdb.py\n\
         break wasi_echo!print\n\
         run\n\
         echo ==procs==\\n\n\
         vessel-procs\n\
         echo ==end==\\n\n\
         kill\n"
    );
    let text = gdb_batch(&gdb, &commands, &["--cpus", "1", "run", wat, "a"]);
    let procs = between(&text, "==procs==", "==end==");
    let row = procs
        .lines()
        .find(|l| l.trim_end().ends_with("wasi_echo"))
        .unwrap_or_else(|| panic!("vessel-procs does not list wasi_echo:\n{text}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(fields.get(3), Some(&"run"), "its state: {row}");
    assert_eq!(fields.get(2), Some(&"0"), "no parent: {row}");
}
