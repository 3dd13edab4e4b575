//! `ls`: list directory entries.
//!
//! Usage: `ls [-l] [-a] [PATH...]`. Each directory's entries are printed
//! sorted by name, one per line; a file argument prints itself. With no
//! path, lists the current directory. With several paths, each directory's
//! listing is headed by `PATH:`, and listings are separated by a blank line.
//!
//! - `-a`: include the entries whose names start with `.`.
//! - `-l`: print `TYPE SIZE NAME`, TYPE being `d` (directory), `l`
//!   (symbolic link) or `-` (anything else), SIZE in bytes.
//!
//! Exit status: 0, 1 when a path could not be listed (the others still
//! are) or the output cannot be written, 2 for a usage error.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

const NAME: &str = "ls";
const USAGE: &str = "usage: ls [-l] [-a] [PATH...]";

/// What the options asked for.
#[derive(Default)]
struct Options {
    long: bool,
    all: bool,
    paths: Vec<OsString>,
}

fn parse() -> Result<Options, lexopt::Error> {
    use lexopt::Arg::{Short, Value};
    let mut o = Options::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('l') => o.long = true,
            Short('a') => o.all = true,
            Value(v) => o.paths.push(v),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}

/// The `-l` type letter of `meta` (not following links).
fn type_letter(meta: &Metadata) -> char {
    let t = meta.file_type();
    if t.is_dir() {
        'd'
    } else if t.is_symlink() {
        'l'
    } else {
        '-'
    }
}

/// One output line for `name`.
fn line(long: bool, meta: Option<&Metadata>, name: &str) -> String {
    match meta {
        _ if !long => name.to_owned(),
        Some(m) => format!("{} {} {name}", type_letter(m), m.len()),
        None => format!("? ? {name}"),
    }
}

/// The entries of the directory `dir` to show, sorted by name.
fn entries(dir: &Path, all: bool) -> std::io::Result<Vec<(OsString, Option<Metadata>)>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if !all && name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let meta = fs::symlink_metadata(dir.join(&n)).ok();
            (n, meta)
        })
        .collect())
}

fn main() -> ExitCode {
    let o = userland::or_usage(NAME, USAGE, parse());
    let paths = if o.paths.is_empty() {
        vec![userland::path::cwd().into_os_string()]
    } else {
        o.paths.clone()
    };
    let headed = paths.len() > 1;
    let mut out = userland::stdout();
    let mut ok = true;
    let mut first = true;
    for arg in &paths {
        let shown = arg.to_string_lossy();
        let path = userland::path::resolve(arg);
        let result = fs::symlink_metadata(&path).and_then(|meta| {
            // A link to a directory named on the command line lists the
            // directory, except with `-l`, which shows the link itself.
            let is_dir = meta.is_dir()
                || (!o.long && meta.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_dir()));
            if !is_dir {
                return Ok(vec![line(o.long, Some(&meta), &shown)]);
            }
            let list = entries(&path, o.all)?;
            let mut lines = Vec::with_capacity(list.len() + 2);
            if headed {
                if !first {
                    lines.push(String::new());
                }
                lines.push(format!("{shown}:"));
            }
            for (n, meta) in &list {
                lines.push(line(o.long, meta.as_ref(), &n.to_string_lossy()));
            }
            Ok(lines)
        });
        match result {
            Ok(lines) => {
                first = false;
                for l in lines {
                    if writeln!(out, "{l}").is_err() {
                        userland::output_failed();
                    }
                }
            }
            Err(e) => {
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

    #[test]
    fn long_lines_show_type_size_and_name() {
        let dir = std::env::temp_dir();
        let meta = fs::symlink_metadata(&dir).ok();
        assert_eq!(line(false, meta.as_ref(), "x"), "x");
        let long = line(true, meta.as_ref(), "x");
        assert!(long.starts_with("d ") && long.ends_with(" x"), "{long}");
        assert_eq!(line(true, None, "gone"), "? ? gone");
    }
}
