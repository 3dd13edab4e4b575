//! `mkdir`: make directories.
//!
//! Usage: `mkdir [-p] DIR...`. With `-p`, missing parents are made too and
//! a directory that already exists is no error.
//!
//! Exit status: 0, 1 when a directory could not be made (the others still
//! are), 2 for a usage error.

use std::ffi::OsString;
use std::fs;
use std::process::ExitCode;

const NAME: &str = "mkdir";
const USAGE: &str = "usage: mkdir [-p] DIR...";

fn parse() -> Result<(bool, Vec<OsString>), lexopt::Error> {
    use lexopt::Arg::{Short, Value};
    let mut parents = false;
    let mut dirs = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('p') => parents = true,
            Value(v) => dirs.push(v),
            _ => return Err(arg.unexpected()),
        }
    }
    if dirs.is_empty() {
        return Err("missing operand".into());
    }
    Ok((parents, dirs))
}

fn main() -> ExitCode {
    let (parents, dirs) = userland::or_usage(NAME, USAGE, parse());
    let mut ok = true;
    for d in &dirs {
        let path = userland::path::resolve(d);
        let made = if parents {
            fs::create_dir_all(&path)
        } else {
            fs::create_dir(&path)
        };
        if let Err(e) = made {
            ok = false;
            let shown = d.to_string_lossy();
            userland::warn(NAME, userland::io_message(&shown, &e));
        }
    }
    userland::exit_code(ok)
}
