//! `sleeper`: sleeps, a demo program.
//!
//! Usage: `sleeper [MS]`: sleeps MS milliseconds (default 100), then
//! prints `sleeper: slept MS ms`.
//!
//! Exit status: 0, 1 when the output cannot be written, 2 for a usage
//! error.

use std::time::Duration;

const NAME: &str = "sleeper";
const USAGE: &str = "usage: sleeper [MS]";
const DEFAULT_MS: u64 = 100;

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let ms = userland::optional_number(NAME, USAGE, &args, "time", DEFAULT_MS);
    std::thread::sleep(Duration::from_millis(ms));
    userland::print_line(format_args!("{NAME}: slept {ms} ms"));
}
