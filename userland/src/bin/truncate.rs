//! `truncate`: set the length of files.
//!
//! Usage: `truncate -s SIZE FILE...`. Each file is made if missing, then
//! cut or extended (with zeros, as a hole) to SIZE bytes. SIZE is a whole
//! number, optionally followed by `K`, `M`, `G` or `T` (powers of 1024;
//! `KiB` etc. also accepted), so `truncate -s 1G big` makes a sparse
//! 1 GiB file.
//!
//! Exit status: 0, 1 when a file could not be made or sized (the others
//! still are), 2 for a usage error.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::process::ExitCode;

use lexopt::ValueExt;

const NAME: &str = "truncate";
const USAGE: &str = "usage: truncate -s SIZE FILE...";

/// The byte count `s` stands for.
fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size '{s}'");
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits);
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        "T" | "TIB" => 40,
        _ => return Err(bad()),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

fn parse() -> Result<(u64, Vec<OsString>), lexopt::Error> {
    use lexopt::Arg::{Short, Value};
    let mut size = None;
    let mut files = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('s') => size = Some(parse_size(&parser.value()?.string()?)?),
            Value(v) => files.push(v),
            _ => return Err(arg.unexpected()),
        }
    }
    let Some(size) = size else {
        return Err("missing -s SIZE".into());
    };
    if files.is_empty() {
        return Err("missing file operand".into());
    }
    Ok((size, files))
}

fn main() -> ExitCode {
    let (size, files) = userland::or_usage(NAME, USAGE, parse());
    let mut ok = true;
    for name in &files {
        let sized = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(userland::path::resolve(name))
            .and_then(|f| f.set_len(size));
        if let Err(e) = sized {
            ok = false;
            let shown = name.to_string_lossy();
            userland::warn(NAME, userland::io_message(&shown, &e));
        }
    }
    userland::exit_code(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("10K"), Ok(10 << 10));
        assert_eq!(parse_size("3m"), Ok(3 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
    }

    #[test]
    fn rejects_bad_sizes() {
        for bad in [
            "",
            "K",
            "1X",
            "-1",
            "1.5G",
            "99999999999999999999",
            "20000000T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
