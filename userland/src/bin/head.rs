//! `head`: print the first lines or bytes of files.
//!
//! Usage: `head [-n N] [-c N] [FILE...]`: the first N lines (default 10),
//! or with `-c` the first N bytes. With no files, or for a file named `-`,
//! reads standard input. With several files, each is headed by
//! `==> NAME <==`, separated by a blank line. Reads no more than it needs
//! (in 64 KiB chunks).
//!
//! Exit status: 0, 1 when a file could not be read (the others still are)
//! or the output cannot be written, 2 for a usage error.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use lexopt::ValueExt;

const NAME: &str = "head";
const USAGE: &str = "usage: head [-n N] [-c N] [FILE...]";

/// How much to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    Lines(u64),
    Bytes(u64),
}

impl Limit {
    /// How many bytes of `chunk` to print, given `left` of the limit,
    /// which it counts down.
    fn cut(self, chunk: &[u8], left: &mut u64) -> usize {
        match self {
            Self::Bytes(_) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                *left -= n as u64;
                n
            }
            Self::Lines(_) => {
                for (i, &b) in chunk.iter().enumerate() {
                    if *left == 0 {
                        return i;
                    }
                    if b == b'\n' {
                        *left -= 1;
                        if *left == 0 {
                            return i + 1;
                        }
                    }
                }
                if *left == 0 { 0 } else { chunk.len() }
            }
        }
    }

    fn amount(self) -> u64 {
        match self {
            Self::Lines(n) | Self::Bytes(n) => n,
        }
    }
}

/// Which side failed.
enum Fail {
    Read(io::Error),
    Write,
}

/// Copy the head of `src` to `out`, flushing each piece when `flush`.
fn head(limit: Limit, src: &mut dyn Read, out: &mut dyn Write, flush: bool) -> Result<(), Fail> {
    let mut left = limit.amount();
    let mut buf = vec![0u8; userland::CHUNK];
    while left > 0 {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fail::Read(e)),
        };
        let take = limit.cut(&buf[..n], &mut left);
        out.write_all(&buf[..take]).map_err(|_| Fail::Write)?;
        if flush {
            out.flush().map_err(|_| Fail::Write)?;
        }
    }
    Ok(())
}

fn parse() -> Result<(Limit, Vec<OsString>), lexopt::Error> {
    use lexopt::Arg::{Short, Value};
    let mut limit = Limit::Lines(10);
    let mut files = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('n') => limit = Limit::Lines(parser.value()?.parse()?),
            Short('c') => limit = Limit::Bytes(parser.value()?.parse()?),
            Value(v) => files.push(v),
            _ => return Err(arg.unexpected()),
        }
    }
    if files.is_empty() {
        files.push(OsString::from("-"));
    }
    Ok((limit, files))
}

fn main() -> ExitCode {
    let (limit, files) = userland::or_usage(NAME, USAGE, parse());
    let headed = files.len() > 1;
    let mut out = userland::stdout();
    let mut ok = true;
    for (i, name) in files.iter().enumerate() {
        let shown = if name == "-" {
            "standard input".into()
        } else {
            name.to_string_lossy()
        };
        if headed {
            let gap = if i > 0 { "\n" } else { "" };
            if writeln!(out, "{gap}==> {shown} <==").is_err() {
                userland::output_failed();
            }
        }
        let done = if name == "-" {
            head(limit, &mut io::stdin().lock(), &mut out, true)
        } else {
            match File::open(userland::path::resolve(name)) {
                Ok(mut f) => head(limit, &mut f, &mut out, false),
                Err(e) => Err(Fail::Read(e)),
            }
        };
        match done {
            Ok(()) => {}
            Err(Fail::Write) => userland::output_failed(),
            Err(Fail::Read(e)) => {
                ok = false;
                userland::warn_flushed(&mut out, NAME, userland::io_message(&shown, &e));
            }
        }
    }
    userland::finish(out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: Limit, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(head(limit, &mut &input[..], &mut out, false).is_ok());
        out
    }

    #[test]
    fn first_lines() {
        assert_eq!(run(Limit::Lines(2), b"a\nb\nc\n"), b"a\nb\n");
        assert_eq!(run(Limit::Lines(5), b"a\nb"), b"a\nb");
        assert_eq!(run(Limit::Lines(0), b"a\n"), b"");
    }

    #[test]
    fn first_bytes() {
        assert_eq!(run(Limit::Bytes(3), b"abcdef"), b"abc");
        assert_eq!(run(Limit::Bytes(10), b"ab"), b"ab");
    }

    #[test]
    fn the_line_count_carries_across_chunks() {
        let limit = Limit::Lines(3);
        let mut left = 3;
        assert_eq!(limit.cut(b"x\ny", &mut left), 3);
        assert_eq!(left, 2);
        assert_eq!(limit.cut(b"\n\nzz", &mut left), 2);
        assert_eq!(left, 0);
    }
}
