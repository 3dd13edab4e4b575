//! `mv`: move (rename) files and directories.
//!
//! Usage: `mv SRC DST` or `mv SRC... DIR`. When the destination is an
//! existing directory, each source moves into it under its own name.
//!
//! Exit status: 0, 1 when a source could not be moved (the others still
//! are), 2 for a usage error.

use std::ffi::OsString;
use std::fs;
use std::process::ExitCode;

const NAME: &str = "mv";
const USAGE: &str = "usage: mv SRC DST, or mv SRC... DIR";

fn parse() -> Result<Vec<OsString>, lexopt::Error> {
    let mut paths = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Value(v) => paths.push(v),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(paths)
}

fn main() -> ExitCode {
    let paths = userland::or_usage(NAME, USAGE, parse());
    let (sources, dst) = userland::path::sources_and_destination(NAME, USAGE, paths);
    let mut ok = true;
    for arg in &sources {
        let shown = arg.to_string_lossy();
        let src = userland::path::resolve(arg);
        let moved = match dst.target(&src) {
            None => Err("cannot move /".to_owned()),
            Some(to) if to != src && to.starts_with(&src) => {
                Err("cannot move a directory into itself".to_owned())
            }
            Some(to) => fs::rename(&src, &to).map_err(|e| userland::io_text(&e)),
        };
        if let Err(msg) = moved {
            ok = false;
            userland::warn(NAME, format_args!("{shown}: {msg}"));
        }
    }
    userland::exit_code(ok)
}
