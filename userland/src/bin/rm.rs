//! `rm`: remove files and directories.
//!
//! Usage: `rm [-r] [-f] PATH...`.
//!
//! - `-r`: remove directories and everything in them; without it a
//!   directory is an error.
//! - `-f`: a missing path is no error, and no path at all is no usage
//!   error.
//!
//! `/` and paths ending in `.` or `..` are refused.
//!
//! Exit status: 0, 1 when a path could not be removed (the others still
//! are), 2 for a usage error.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

const NAME: &str = "rm";
const USAGE: &str = "usage: rm [-r] [-f] PATH...";

/// What the options asked for.
#[derive(Default)]
struct Options {
    recursive: bool,
    force: bool,
    paths: Vec<OsString>,
}

fn parse() -> Result<Options, lexopt::Error> {
    use lexopt::Arg::{Short, Value};
    let mut o = Options::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('r' | 'R') => o.recursive = true,
            Short('f') => o.force = true,
            Value(v) => o.paths.push(v),
            _ => return Err(arg.unexpected()),
        }
    }
    if o.paths.is_empty() && !o.force {
        return Err("missing operand".into());
    }
    Ok(o)
}

/// Whether `arg` names `.` or `..` as its last component (which `rm`
/// refuses, as coreutils does).
fn ends_in_dot(arg: &Path) -> bool {
    matches!(
        arg.components().next_back(),
        Some(Component::CurDir | Component::ParentDir)
    ) || arg.as_os_str().as_encoded_bytes().ends_with(b"/.")
}

/// Remove the directory `dir` and everything in it; on failure, the path
/// that could not be removed and why.
fn remove_tree(dir: &Path) -> Result<(), (PathBuf, io::Error)> {
    let entries = fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))?;
    for e in entries {
        let e = e.map_err(|e| (dir.to_path_buf(), e))?;
        let path = e.path();
        let is_dir = e.file_type().map_err(|err| (path.clone(), err))?.is_dir();
        if is_dir {
            remove_tree(&path)?;
        } else {
            fs::remove_file(&path).map_err(|err| (path.clone(), err))?;
        }
    }
    fs::remove_dir(dir).map_err(|e| (dir.to_path_buf(), e))
}

/// Remove one path; the message to print when it fails.
fn remove(o: &Options, arg: &OsString) -> Result<(), String> {
    let shown = arg.to_string_lossy();
    let path = userland::path::resolve(arg);
    if path == Path::new("/") || ends_in_dot(Path::new(arg)) {
        return Err(format!("{shown}: refusing to remove"));
    }
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if o.force && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(userland::io_message(&shown, &e)),
    };
    if meta.is_dir() {
        if !o.recursive {
            return Err(format!("{shown}: is a directory (use -r)"));
        }
        remove_tree(&path).map_err(|(p, e)| userland::io_message(p.display(), &e))
    } else {
        fs::remove_file(&path).map_err(|e| userland::io_message(&shown, &e))
    }
}

fn main() -> ExitCode {
    let o = userland::or_usage(NAME, USAGE, parse());
    let mut ok = true;
    for arg in &o.paths {
        if let Err(msg) = remove(&o, arg) {
            ok = false;
            userland::warn(NAME, msg);
        }
    }
    userland::exit_code(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_dot_dot_are_spotted() {
        assert!(ends_in_dot(Path::new(".")));
        assert!(ends_in_dot(Path::new("a/..")));
        assert!(ends_in_dot(Path::new("a/.")));
        assert!(!ends_in_dot(Path::new(".hidden")));
        assert!(!ends_in_dot(Path::new("a/b")));
    }

    #[test]
    fn remove_tree_removes_nested_directories() {
        let root = std::env::temp_dir().join(format!("userland-rm-{}", std::process::id()));
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), b"x").unwrap();
        fs::write(root.join("g"), b"y").unwrap();
        remove_tree(&root).unwrap();
        assert!(!root.exists());
    }
}
