//! `sim`'s own output: results on standard output, one-line messages on
//! standard error.
//!
//! `print!` and `println!` panic when standard output cannot be written
//! (a full disk, a closed pipe: Rust ignores SIGPIPE, so that is `EPIPE`),
//! which ends the program with status 101 and a panic message. Here every
//! write reports its failure instead, and the caller ends with
//! [`kernel_core::exit::OUTPUT`] after one line on standard error
//! ([`lost`]).
//!
//! Invariant INV-OUT-1: nothing in `sim` writes to standard output or
//! standard error except through this module (and the logger, which
//! ignores write failures); a failed write to standard error is ignored,
//! as there is nowhere left to report it.

use std::fmt;
use std::io::{self, Write as _};

/// Write `text` to standard output and flush it.
///
/// # Errors
/// What the write or the flush reported.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// One line `sim: <message>` on standard error; a failure is ignored.
pub fn error(message: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "sim: {message}");
}

/// `message` and a newline on standard error, without the `sim:` prefix
/// (a program's trap report); a failure is ignored.
pub fn error_raw(message: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{message}");
}

/// Report that standard output could not be written; the status to exit
/// with.
#[must_use]
pub fn lost(e: &io::Error) -> u8 {
    error(format_args!("cannot write to standard output: {e}"));
    kernel_core::exit::OUTPUT
}
