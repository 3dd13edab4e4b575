//! `kill`: kill processes by id.
//!
//! Usage: `kill PID...`. Each process is killed with its own children;
//! a process may kill its descendants and those of its parent.
//!
//! Exit status: 0, 1 when some process could not be killed (each gets its
//! own error line, `kill: 42: not found`), 2 for a usage error.

use std::process::ExitCode;

const NAME: &str = "kill";
const USAGE: &str = "usage: kill PID...";

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        userland::fail(
            NAME,
            format_args!("missing operand; {USAGE}"),
            userland::USAGE,
        );
    }
    let mut ok = true;
    for arg in &args {
        let shown = arg.to_string_lossy();
        let result = match arg.to_str().and_then(|s| s.parse::<u32>().ok()) {
            Some(pid) => userland::sys::kill_pid(pid).map_err(|e| e.to_string()),
            None => Err("not a process id".to_owned()),
        };
        if let Err(msg) = result {
            ok = false;
            userland::warn(NAME, format_args!("{shown}: {msg}"));
        }
    }
    userland::exit_code(ok)
}
