//! Vessel's programs: `init`, the shell `sh` and the tools, one binary
//! each, built for `wasm32-wasip1` and packed into the boot image. This
//! library holds what they share: Vessel's own system calls ([`sys`]), the
//! current directory, which Vessel keeps in the environment as `PWD`
//! ([`path`]), and the tools' ways of reporting errors ([`warn`], [`fail`],
//! [`warn_flushed`], [`io_message`]), of taking their arguments
//! ([`or_usage`], [`optional_number`]), of writing and copying output
//! ([`stdout`], [`print_line`], [`copy_stream`]) and of ending ([`finish`],
//! [`exit_code`]). They build natively too, so the workspace's checks cover
//! them; off Vessel the system calls fail.

pub mod path;
pub mod sys;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::str::FromStr;

/// Exit status of a tool that failed at its work.
pub const FAILURE: i32 = 1;

/// Exit status of a tool given bad arguments.
pub const USAGE: i32 = 2;

/// Print `NAME: message` as one line on standard error.
pub fn warn(name: &str, message: impl fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{name}: {message}");
}

/// Print `NAME: message` on standard error and exit with `status`.
pub fn fail(name: &str, message: impl fmt::Display, status: i32) -> ! {
    warn(name, message);
    std::process::exit(status)
}

/// `parsed` (a tool's options and operands), or, when they are bad, exit
/// with [`USAGE`] and `NAME: ERROR; USAGE-LINE`, `usage` being that line.
pub fn or_usage<T>(name: &str, usage: &str, parsed: Result<T, impl fmt::Display>) -> T {
    match parsed {
        Ok(p) => p,
        Err(e) => fail(name, format_args!("{e}; {usage}"), USAGE),
    }
}

/// Exit quietly with [`FAILURE`]: what a tool does when writing its
/// output fails (a closed pipe, a full disk), as nothing more can be said.
pub fn output_failed() -> ! {
    std::process::exit(FAILURE)
}

/// Flush `out`, or exit by [`output_failed`] when that fails.
pub fn flush(out: &mut impl Write) {
    if out.flush().is_err() {
        output_failed();
    }
}

/// [`warn`] after flushing `out` (by [`flush`]), so that what a tool has
/// written so far comes before the message when both go to one console.
pub fn warn_flushed(out: &mut impl Write, name: &str, message: impl fmt::Display) {
    flush(out);
    warn(name, message);
}

/// The exit status of a tool that went on past its errors: success when
/// `ok`, else [`FAILURE`].
pub fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The end of a tool that writes `out`: [`flush`] it, then
/// [`exit_code`]`(ok)`.
pub fn finish(mut out: impl Write, ok: bool) -> ExitCode {
    flush(&mut out);
    exit_code(ok)
}

/// `WHAT: TEXT`, the message about an I/O error `e` on `what` (usually a
/// path as given), TEXT being its [`io_text`].
pub fn io_message(what: impl fmt::Display, e: &io::Error) -> String {
    format!("{what}: {}", io_text(e))
}

/// Write `line` and a newline to [`stdout`] and flush it, or exit by
/// [`output_failed`].
pub fn print_line(line: impl fmt::Display) {
    let mut out = stdout();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        output_failed();
    }
}

/// The one optional number operand of a program used as `NAME [N]`:
/// `default` when `args` is empty, the number when it holds one.
///
/// # Errors
/// `Some("invalid WHAT 'ARG'")` when the one operand is no such number,
/// `None` when there are two or more.
pub fn parse_optional_number<T: FromStr>(
    args: &[OsString],
    what: &str,
    default: T,
) -> Result<T, Option<String>> {
    match args {
        [] => Ok(default),
        [a] => a
            .to_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Some(format!("invalid {what} '{}'", a.to_string_lossy()))),
        _ => Err(None),
    }
}

/// [`parse_optional_number`] of `args`, exiting with [`USAGE`] and the
/// message (then `usage`) when they are bad.
pub fn optional_number<T: FromStr>(
    name: &str,
    usage: &str,
    args: &[OsString],
    what: &str,
    default: T,
) -> T {
    match parse_optional_number(args, what, default) {
        Ok(n) => n,
        Err(Some(msg)) => fail(name, format_args!("{msg}; {usage}"), USAGE),
        Err(None) => fail(name, usage, USAGE),
    }
}

/// An I/O error's text without Rust's ` (os error N)` suffix, e.g.
/// `No such file or directory`.
pub fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// The locked, buffered standard output every tool writes to.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::new(io::stdout().lock())
}

/// Bytes the tools read and write at a time.
pub const CHUNK: usize = 64 << 10;

/// Which side of a copy failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the source.
    Read(io::Error),
    /// Writing the destination.
    Write(io::Error),
}

/// Copy all of `src` to `dst` in [`CHUNK`]-sized pieces, flushing `dst`
/// after each when `flush` (for interactive input); returns the bytes
/// copied.
///
/// # Errors
/// The first read or write error, told apart by [`CopyError`].
pub fn copy_stream(src: &mut dyn Read, dst: &mut dyn Write, flush: bool) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        if flush {
            dst.flush().map_err(CopyError::Write)?;
        }
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_text_drops_the_os_error_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert!(!io_text(&e).contains("os error"));
        let e = io::Error::other("plain");
        assert_eq!(io_text(&e), "plain");
    }

    #[test]
    fn an_optional_number_defaults_parses_or_complains() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(parse_optional_number(&args(&[]), "count", 7u32), Ok(7));
        assert_eq!(parse_optional_number(&args(&["42"]), "count", 7u32), Ok(42));
        assert_eq!(
            parse_optional_number(&args(&["x"]), "count", 7u32),
            Err(Some("invalid count 'x'".to_owned()))
        );
        assert_eq!(
            parse_optional_number(&args(&["1", "2"]), "count", 7u32),
            Err(None)
        );
    }

    #[test]
    fn copy_stream_copies_everything() {
        let data = vec![7u8; CHUNK * 2 + 5];
        let mut out = Vec::new();
        let n = copy_stream(&mut &data[..], &mut out, false)
            .map_err(|_| ())
            .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(out, data);
    }
}
