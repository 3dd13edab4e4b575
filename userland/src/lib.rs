//! Vessel's programs: `init`, the shell `sh` and the tools, one binary
//! each, built for `wasm32-wasip1` and packed into the boot image. This
//! library holds what they share: Vessel's own system calls ([`sys`]), the
//! current directory, which Vessel keeps in the environment as `PWD`
//! ([`path`]), and the tools' way of reporting errors ([`warn`], [`fail`])
//! and of writing and copying output ([`stdout`], [`copy_stream`]). They build natively too, so the workspace's checks cover
//! them; off Vessel the system calls fail.

pub mod path;
pub mod sys;

use std::fmt;
use std::io::{self, Read, Write};

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

/// Exit quietly with [`FAILURE`]: what a tool does when writing its
/// output fails (a closed pipe, a full disk), as nothing more can be said.
pub fn output_failed() -> ! {
    std::process::exit(FAILURE)
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
