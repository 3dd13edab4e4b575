//! `cat`: concatenate files to standard output.
//!
//! Usage: `cat [FILE...]`. With no files, or for a file named `-`, reads
//! standard input. Streams in 64 KiB chunks, so files of any size (a 1 GiB
//! sparse file included) are copied without being held in memory.
//!
//! Exit status: 0 when every file was copied, 1 when one could not be read
//! (the others are still copied) or the output cannot be written, 2 for a
//! usage error.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::process::ExitCode;

use userland::CopyError;

const NAME: &str = "cat";
const USAGE: &str = "usage: cat [FILE...]";

fn parse() -> Result<Vec<OsString>, lexopt::Error> {
    let mut files = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Value(v) => files.push(v),
            _ => return Err(arg.unexpected()),
        }
    }
    if files.is_empty() {
        files.push(OsString::from("-"));
    }
    Ok(files)
}

fn main() -> ExitCode {
    let files = userland::or_usage(NAME, USAGE, parse());
    let mut out = userland::stdout();
    let mut ok = true;
    for name in &files {
        let shown = name.to_string_lossy();
        let copied = if name == "-" {
            // Input typed at the console comes a line at a time: pass each
            // on at once.
            userland::copy_stream(&mut io::stdin().lock(), &mut out, true)
        } else {
            match File::open(userland::path::resolve(name)) {
                Ok(mut f) => userland::copy_stream(&mut f, &mut out, false),
                Err(e) => Err(CopyError::Read(e)),
            }
        };
        match copied {
            Ok(_) => {}
            Err(CopyError::Read(e)) => {
                ok = false;
                userland::warn_flushed(&mut out, NAME, userland::io_message(&shown, &e));
            }
            Err(CopyError::Write(_)) => userland::output_failed(),
        }
    }
    userland::finish(out, ok)
}
