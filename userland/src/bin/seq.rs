//! `seq`: print a sequence of whole numbers, one per line.
//!
//! Usage: `seq [FIRST [STEP]] LAST`: from FIRST (default 1) by STEP
//! (default 1, may be negative but not 0) as long as not past LAST.
//!
//! Exit status: 0, 1 when the output cannot be written, 2 for a usage
//! error.

use std::io::Write;

const NAME: &str = "seq";
const USAGE: &str = "usage: seq [FIRST [STEP]] LAST";

/// The numbers from `first` by `step` up (or down) to `last`.
fn sequence(first: i64, step: i64, last: i64) -> impl Iterator<Item = i64> {
    let mut next = Some(first);
    std::iter::from_fn(move || {
        let n = next?;
        let within = if step > 0 { n <= last } else { n >= last };
        if !within || step == 0 {
            return None;
        }
        next = n.checked_add(step);
        Some(n)
    })
}

/// `(first, step, last)` from the arguments.
fn parse(args: &[String]) -> Result<(i64, i64, i64), String> {
    let num = |s: &String| {
        s.parse::<i64>()
            .map_err(|_| format!("invalid number '{s}'"))
    };
    let (first, step, last) = match args {
        [last] => (1, 1, num(last)?),
        [first, last] => (num(first)?, 1, num(last)?),
        [first, step, last] => (num(first)?, num(step)?, num(last)?),
        _ => return Err("expected one to three numbers".to_owned()),
    };
    if step == 0 {
        return Err("the step must not be 0".to_owned());
    }
    Ok((first, step, last))
}

fn main() {
    let args: Option<Vec<String>> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect();
    let parsed = args
        .ok_or_else(|| "invalid number".to_owned())
        .and_then(|a| parse(&a));
    let (first, step, last) = userland::or_usage(NAME, USAGE, parsed);
    let mut out = userland::stdout();
    for n in sequence(first, step, last) {
        if writeln!(out, "{n}").is_err() {
            userland::output_failed();
        }
    }
    userland::flush(&mut out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(args: &[&str]) -> Result<Vec<i64>, String> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let (f, s, l) = parse(&args)?;
        Ok(sequence(f, s, l).collect())
    }

    #[test]
    fn ranges() {
        assert_eq!(seq(&["3"]), Ok(vec![1, 2, 3]));
        assert_eq!(seq(&["-1", "1"]), Ok(vec![-1, 0, 1]));
        assert_eq!(seq(&["5", "-2", "0"]), Ok(vec![5, 3, 1]));
        assert_eq!(seq(&["2", "1"]), Ok(vec![]));
        assert_eq!(seq(&["0"]), Ok(vec![]));
    }

    #[test]
    fn stops_at_the_end_of_the_integers() {
        let top = i64::MAX.to_string();
        assert_eq!(seq(&[&top, &top]), Ok(vec![i64::MAX]));
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(seq(&[]).is_err());
        assert!(seq(&["x"]).is_err());
        assert!(seq(&["1", "0", "5"]).is_err());
        assert!(seq(&["1", "2", "3", "4"]).is_err());
    }
}
