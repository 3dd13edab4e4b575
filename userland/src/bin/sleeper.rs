//! `sleeper`: sleeps, a demo program.
//!
//! Usage: `sleeper [MS]`: sleeps MS milliseconds (default 100), then
//! prints `sleeper: slept MS ms`.
//!
//! Exit status: 0, 1 when the output cannot be written, 2 for a usage
//! error.

use std::io::Write;
use std::time::Duration;

const NAME: &str = "sleeper";
const DEFAULT_MS: u64 = 100;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let ms = match (args.next(), args.next()) {
        (None, _) => DEFAULT_MS,
        (Some(a), None) => match a.to_str().and_then(|s| s.parse().ok()) {
            Some(n) => n,
            None => userland::fail(
                NAME,
                format_args!(
                    "invalid time '{}'; usage: sleeper [MS]",
                    a.to_string_lossy()
                ),
                userland::USAGE,
            ),
        },
        _ => userland::fail(NAME, "usage: sleeper [MS]", userland::USAGE),
    };
    std::thread::sleep(Duration::from_millis(ms));
    let mut out = userland::stdout();
    if writeln!(out, "{NAME}: slept {ms} ms")
        .and_then(|()| out.flush())
        .is_err()
    {
        userland::output_failed();
    }
}
