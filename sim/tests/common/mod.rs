//! Running the `sim` binary from integration tests.

#![allow(
    dead_code,
    reason = "each test binary includes this module and uses a different part of it; `expect` would fail in the binaries that use all of it"
)]

use std::process::{Command, Output, Stdio};

/// Where `sim run` keeps compiled programs by default in the tests
/// (`$XDG_CACHE_HOME/vessel`): under the target directory, not the home.
pub const CACHE_HOME: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/sim-cache-home");

/// The `sim` binary, its default cache under [`CACHE_HOME`].
pub fn sim_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sim"));
    c.env("XDG_CACHE_HOME", CACHE_HOME);
    c
}

/// Run `sim` with `args` and collect its output.
pub fn sim<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    sim_command().args(args).output().expect("sim binary runs")
}

/// Run `sim` with `args` and its standard output going to `stdout`; its
/// exit status and standard error (standard output is not collected).
pub fn sim_to<S: AsRef<std::ffi::OsStr>>(args: &[S], stdout: Stdio) -> Output {
    sim_command()
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("sim binary runs")
}

/// Whether `line` is the boot banner `want`, followed by the ISA the
/// host's CPU reports when it is more than the baseline
/// (` isa=x86-64-v2+...`).
pub fn banner_is(line: &str, want: &str) -> bool {
    line.strip_prefix(want)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(" isa=x86-64"))
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The path of `name` in `sim/tests/data/`.
pub fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory of the calling test's own under the system's
/// temporary directory (removed first if a previous run left it).
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vessel-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
