//! `init`: the first process; starts the shell (or another program) and
//! ends with it.
//!
//! Usage: `init [PROGRAM [ARGS...]]`, PROGRAM defaulting to `/bin/sh` (a
//! relative path is taken from the current directory). Prints
//! `init: starting PROGRAM`, then starts it with the arguments (its name
//! first), init's own environment plus `PWD=/` and `PATH=/bin` where those
//! are not set, and init's standard input, output and error; then waits
//! for it.
//!
//! Exit status: the program's (`sys::Status::code`: its exit code, 130
//! when killed, 134 when it trapped); 1 when it cannot be started or when
//! not running on Vessel.

use std::ffi::OsString;
use std::io::Write;

use userland::sys::{self, Command};

const NAME: &str = "init";
const DEFAULT_PROGRAM: &str = "/bin/sh";

/// The child's environment: `vars` as `KEY=VALUE`, plus the defaults
/// not among them.
fn environment(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<String> {
    let mut env = Vec::new();
    let (mut pwd, mut path) = (false, false);
    for (k, v) in vars {
        let k = k.to_string_lossy();
        pwd |= k == "PWD";
        path |= k == "PATH";
        env.push(format!("{k}={}", v.to_string_lossy()));
    }
    if !pwd {
        env.push("PWD=/".to_owned());
    }
    if !path {
        env.push("PATH=/bin".to_owned());
    }
    env
}

fn main() {
    if sys::getpid().is_err() {
        userland::fail(
            NAME,
            "needs Vessel (not running on Vessel)",
            userland::FAILURE,
        );
    }
    let mut args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.is_empty() {
        args.push(DEFAULT_PROGRAM.to_owned());
    }
    let program = args[0].clone();
    let path = userland::path::resolve(&program)
        .to_string_lossy()
        .into_owned();
    let mut out = std::io::stdout().lock();
    // The line must be out before the child writes to the same console.
    let _ = writeln!(out, "{NAME}: starting {program}").and_then(|()| out.flush());
    drop(out);
    let cmd = Command {
        path,
        args,
        env: environment(std::env::vars_os()),
        stdio: [0, 1, 2],
        foreground: false,
    };
    let child = match sys::spawn(&cmd) {
        Ok(c) => c,
        Err(e) => userland::fail(
            NAME,
            format_args!("cannot start {program}: {e}"),
            userland::FAILURE,
        ),
    };
    match child.wait() {
        Ok(status) => std::process::exit(status.code()),
        Err(e) => userland::fail(
            NAME,
            format_args!("waiting for {program}: {e}"),
            userland::FAILURE,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn defaults_fill_in_what_is_missing() {
        let env = environment(vars(&[("HOME", "/root")]).into_iter());
        assert_eq!(env, ["HOME=/root", "PWD=/", "PATH=/bin"]);
        let env = environment(vars(&[("PATH", "/x"), ("PWD", "/tmp")]).into_iter());
        assert_eq!(env, ["PATH=/x", "PWD=/tmp"]);
    }
}
