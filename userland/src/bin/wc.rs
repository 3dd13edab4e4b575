//! `wc`: count lines, words and bytes.
//!
//! Usage: `wc [-l] [-w] [-c] [FILE...]`. With no files, or for a file
//! named `-`, reads standard input. Without options, prints all three
//! counts; otherwise just the ones asked for, always in the order lines,
//! words, bytes. Each input gets a line `LINES WORDS BYTES NAME` (counts
//! 7 wide, no name for standard input read by default), and a `total`
//! line follows when there are several. A single count of a single input
//! is printed without padding, so `echo hi | wc -c` prints `3`. Words
//! are runs of bytes other than ASCII white space. Input is streamed;
//! counts are 64-bit.
//!
//! Exit status: 0, 1 when a file could not be read (the others are still
//! counted) or the output cannot be written, 2 for a usage error.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::process::ExitCode;

const NAME: &str = "wc";
const USAGE: &str = "usage: wc [-l] [-w] [-c] [FILE...]";

/// Counts of one input, fed a chunk at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
    /// Whether the last byte fed was inside a word.
    in_word: bool,
}

impl Counts {
    fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        for &b in chunk {
            if b == b'\n' {
                self.lines += 1;
            }
            // isspace() in the C locale.
            let space = matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
            if !space && !self.in_word {
                self.words += 1;
            }
            self.in_word = !space;
        }
    }

    fn add(&mut self, other: &Self) {
        self.lines += other.lines;
        self.words += other.words;
        self.bytes += other.bytes;
    }
}

/// Which counts to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Show {
    lines: bool,
    words: bool,
    bytes: bool,
}

impl Show {
    fn columns(self) -> usize {
        usize::from(self.lines) + usize::from(self.words) + usize::from(self.bytes)
    }
}

/// One output line: the chosen counts, each `width` wide, then the name.
fn render(c: &Counts, show: Show, width: usize, name: Option<&str>) -> String {
    let mut fields = Vec::new();
    for (on, n) in [
        (show.lines, c.lines),
        (show.words, c.words),
        (show.bytes, c.bytes),
    ] {
        if on {
            fields.push(format!("{n:>width$}"));
        }
    }
    if let Some(name) = name {
        fields.push(name.to_owned());
    }
    fields.join(" ")
}

/// Count all of `src`.
fn count(src: &mut dyn Read) -> io::Result<Counts> {
    let mut buf = vec![0u8; userland::CHUNK];
    let mut c = Counts::default();
    loop {
        match src.read(&mut buf) {
            Ok(0) => return Ok(c),
            Ok(n) => c.feed(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn parse() -> Result<(Show, Vec<OsString>), lexopt::Error> {
    use lexopt::Arg::{Short, Value};
    let mut show = Show {
        lines: false,
        words: false,
        bytes: false,
    };
    let mut files = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('l') => show.lines = true,
            Short('w') => show.words = true,
            Short('c') => show.bytes = true,
            Value(v) => files.push(v),
            _ => return Err(arg.unexpected()),
        }
    }
    if show.columns() == 0 {
        show = Show {
            lines: true,
            words: true,
            bytes: true,
        };
    }
    Ok((show, files))
}

fn main() -> ExitCode {
    let (show, files) = userland::or_usage(NAME, USAGE, parse());
    // `None`: standard input read by default, printed without a name.
    let inputs: Vec<Option<OsString>> = if files.is_empty() {
        vec![None]
    } else {
        files.into_iter().map(Some).collect()
    };
    let width = if inputs.len() == 1 && show.columns() == 1 {
        1
    } else {
        7
    };
    let mut out = userland::stdout();
    let mut total = Counts::default();
    let mut ok = true;
    for input in &inputs {
        let shown = input.as_ref().map(|n| n.to_string_lossy().into_owned());
        let counted = match input {
            Some(n) if n != "-" => {
                File::open(userland::path::resolve(n)).and_then(|mut f| count(&mut f))
            }
            _ => count(&mut io::stdin().lock()),
        };
        match counted {
            Ok(c) => {
                total.add(&c);
                if writeln!(out, "{}", render(&c, show, width, shown.as_deref())).is_err() {
                    userland::output_failed();
                }
            }
            Err(e) => {
                ok = false;
                let shown = shown.as_deref().unwrap_or("-");
                userland::warn_flushed(&mut out, NAME, userland::io_message(shown, &e));
            }
        }
    }
    if inputs.len() > 1 && writeln!(out, "{}", render(&total, show, width, Some("total"))).is_err()
    {
        userland::output_failed();
    }
    userland::finish(out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Show = Show {
        lines: true,
        words: true,
        bytes: true,
    };

    #[test]
    fn counts_lines_words_and_bytes() {
        let c = count(&mut &b"hello world\n  two\twords\nend"[..]).unwrap();
        assert_eq!((c.lines, c.words, c.bytes), (2, 5, 27));
    }

    #[test]
    fn a_word_split_across_chunks_counts_once() {
        let mut c = Counts::default();
        c.feed(b"hel");
        c.feed(b"lo wor");
        c.feed(b"ld");
        assert_eq!(c.words, 2);
    }

    #[test]
    fn renders_padded_or_bare() {
        let mut c = Counts::default();
        c.feed(b"hi\n");
        assert_eq!(render(&c, ALL, 7, None), "      1       1       3");
        let bytes = Show {
            lines: false,
            words: false,
            bytes: true,
        };
        assert_eq!(render(&c, bytes, 1, None), "3");
        assert_eq!(render(&c, bytes, 1, Some("f")), "3 f");
    }
}
