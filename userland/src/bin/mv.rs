//! `mv`: move (rename) files and directories.
//!
//! Usage: `mv SRC DST` or `mv SRC... DIR`. When the destination is an
//! existing directory, each source moves into it under its own name.
//!
//! Exit status: 0, 1 when a source could not be moved (the others still
//! are), 2 for a usage error.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
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
    if paths.len() < 2 {
        return Err("missing operand".into());
    }
    Ok(paths)
}

/// Where `src` goes: into `dst` when that is a directory, else `dst`.
fn target(src: &Path, dst: &Path, dst_is_dir: bool) -> Result<PathBuf, String> {
    if !dst_is_dir {
        return Ok(dst.to_path_buf());
    }
    src.file_name()
        .map(|n| dst.join(n))
        .ok_or_else(|| "cannot move /".to_owned())
}

fn main() -> ExitCode {
    let mut paths = match parse() {
        Ok(p) => p,
        Err(e) => userland::fail(NAME, format_args!("{e}; {USAGE}"), userland::USAGE),
    };
    let Some(dst_arg) = paths.pop() else {
        userland::fail(NAME, USAGE, userland::USAGE)
    };
    let dst = userland::path::resolve(&dst_arg);
    let dst_is_dir = fs::metadata(&dst).is_ok_and(|m| m.is_dir());
    if paths.len() > 1 && !dst_is_dir {
        let shown = dst_arg.to_string_lossy();
        userland::fail(
            NAME,
            format_args!("{shown}: not a directory"),
            userland::FAILURE,
        );
    }
    let mut ok = true;
    for arg in &paths {
        let shown = arg.to_string_lossy();
        let src = userland::path::resolve(arg);
        let moved = target(&src, &dst, dst_is_dir).and_then(|to| {
            if to != src && to.starts_with(&src) {
                return Err("cannot move a directory into itself".to_owned());
            }
            fs::rename(&src, &to).map_err(|e| userland::io_text(&e))
        });
        if let Err(msg) = moved {
            ok = false;
            userland::warn(NAME, format_args!("{shown}: {msg}"));
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_a_directory_keeps_the_name() {
        let t = target(Path::new("/a/f"), Path::new("/d"), true);
        assert_eq!(t, Ok(PathBuf::from("/d/f")));
        let t = target(Path::new("/a/f"), Path::new("/g"), false);
        assert_eq!(t, Ok(PathBuf::from("/g")));
        assert!(target(Path::new("/"), Path::new("/d"), true).is_err());
    }
}
