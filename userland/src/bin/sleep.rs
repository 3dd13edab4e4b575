//! `sleep`: wait a while.
//!
//! Usage: `sleep SECONDS...`: waits for the sum of the arguments, each a
//! number of seconds, possibly fractional (`0.5`), optionally followed by
//! `s`, `m` (minutes), `h` (hours) or `d` (days).
//!
//! Exit status: 0, 2 for a usage error (a missing or bad duration).

use std::time::Duration;

const NAME: &str = "sleep";
const USAGE: &str = "usage: sleep SECONDS...";

/// The duration `arg` stands for.
fn parse_duration(arg: &str) -> Result<Duration, String> {
    let bad = || format!("invalid time interval '{arg}'");
    let (number, unit) = match arg.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&arg[..i], c),
        _ => (arg, 's'),
    };
    let scale = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => return Err(bad()),
    };
    // Rust parses `inf` and `nan`; a number starts with a digit or `.`.
    if !number.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let seconds: f64 = number.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(seconds * scale).map_err(|_| bad())
}

fn main() {
    let mut total = Duration::ZERO;
    let mut any = false;
    for arg in std::env::args_os().skip(1) {
        let Some(arg) = arg.to_str() else {
            userland::fail(
                NAME,
                format_args!("invalid time interval; {USAGE}"),
                userland::USAGE,
            )
        };
        total = total.saturating_add(userland::or_usage(NAME, USAGE, parse_duration(arg)));
        any = true;
    }
    if !any {
        userland::fail(
            NAME,
            format_args!("missing operand; {USAGE}"),
            userland::USAGE,
        );
    }
    std::thread::sleep(total);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fractions_and_units() {
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(".25s"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "-1", "x", "1x", "inf", "nan", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
