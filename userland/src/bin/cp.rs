//! `cp`: copy files and directories.
//!
//! Usage: `cp [-r] SRC DST` or `cp [-r] SRC... DIR`. When the destination
//! is an existing directory, each source is copied into it under its own
//! name. Files are copied in 64 KiB chunks; runs of zero chunks become
//! holes, so a sparse file stays sparse. With `-r`, directories are copied
//! with everything in them; without it a directory source is an error.
//!
//! Exit status: 0, 1 when a source could not be copied (the others still
//! are), 2 for a usage error.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const NAME: &str = "cp";
const USAGE: &str = "usage: cp [-r] SRC DST, or cp [-r] SRC... DIR";

fn parse() -> Result<(bool, Vec<OsString>), lexopt::Error> {
    use lexopt::Arg::{Short, Value};
    let mut recursive = false;
    let mut paths = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('r' | 'R') => recursive = true,
            Value(v) => paths.push(v),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((recursive, paths))
}

/// A failure: the path it concerns and why.
type Failure = (PathBuf, String);

fn failure(p: &Path, e: &io::Error) -> Failure {
    (p.to_path_buf(), userland::io_text(e))
}

/// Copy all of `src` to `dst` (at its start, already empty), leaving holes
/// for all-zero chunks; returns the bytes copied.
fn copy_data(
    src: &mut impl Read,
    dst: &mut (impl Write + Seek),
) -> Result<u64, userland::CopyError> {
    use userland::CopyError::{Read, Write};
    let mut buf = vec![0u8; userland::CHUNK];
    let mut total = 0u64;
    let mut hole = false;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Read(e)),
        };
        let chunk = &buf[..n];
        if chunk.iter().all(|&b| b == 0) {
            let skip = i64::try_from(n).map_err(|e| Write(io::Error::other(e)))?;
            dst.seek(SeekFrom::Current(skip)).map_err(Write)?;
            hole = true;
        } else {
            dst.write_all(chunk).map_err(Write)?;
            hole = false;
        }
        total += n as u64;
    }
    if hole {
        // Extend the file over a hole at its end, which no write did.
        dst.seek(SeekFrom::Start(total.saturating_sub(1)))
            .map_err(Write)?;
        dst.write_all(&[0]).map_err(Write)?;
    }
    dst.flush().map_err(Write)?;
    Ok(total)
}

/// Copy the file `src` to `dst`.
fn copy_file(src: &Path, dst: &Path) -> Result<(), Failure> {
    let mut from = File::open(src).map_err(|e| failure(src, &e))?;
    let mut to = File::create(dst).map_err(|e| failure(dst, &e))?;
    copy_data(&mut from, &mut to).map_err(|e| match e {
        userland::CopyError::Read(e) => failure(src, &e),
        userland::CopyError::Write(e) => failure(dst, &e),
    })?;
    Ok(())
}

/// Copy the directory `src` and everything in it to `dst`, made if
/// missing.
fn copy_tree(src: &Path, dst: &Path) -> Result<(), Failure> {
    match fs::create_dir(dst) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dst.is_dir() => {}
        Err(e) => return Err(failure(dst, &e)),
    }
    for e in fs::read_dir(src).map_err(|e| failure(src, &e))? {
        let e = e.map_err(|e| failure(src, &e))?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let meta = fs::metadata(&from).map_err(|e| failure(&from, &e))?;
        if meta.is_dir() {
            copy_tree(&from, &to)?;
        } else {
            copy_file(&from, &to)?;
        }
    }
    Ok(())
}

/// Copy `src` (shown as `shown`) to `to`; the message when it fails.
fn copy(recursive: bool, shown: &str, src: &Path, to: &Path) -> Result<(), String> {
    let meta = fs::metadata(src).map_err(|e| userland::io_message(shown, &e))?;
    if to == src {
        return Err(format!("{shown}: source and destination are the same file"));
    }
    let report = |(p, msg): Failure| format!("{}: {msg}", p.display());
    if meta.is_dir() {
        if !recursive {
            return Err(format!("{shown}: is a directory (use -r)"));
        }
        if to.starts_with(src) {
            return Err(format!("{shown}: cannot copy a directory into itself"));
        }
        copy_tree(src, to).map_err(report)
    } else {
        copy_file(src, to).map_err(report)
    }
}

fn main() -> ExitCode {
    let (recursive, paths) = userland::or_usage(NAME, USAGE, parse());
    let (sources, dst) = userland::path::sources_and_destination(NAME, USAGE, paths);
    let mut ok = true;
    for arg in &sources {
        let shown = arg.to_string_lossy();
        let src = userland::path::resolve(arg);
        let Some(to) = dst.target(&src) else {
            ok = false;
            userland::warn(NAME, format_args!("{shown}: cannot copy /"));
            continue;
        };
        if let Err(msg) = copy(recursive, &shown, &src, &to) {
            ok = false;
            userland::warn(NAME, msg);
        }
    }
    userland::exit_code(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn copies_data_and_zero_runs_alike() {
        let mut data = vec![0u8; userland::CHUNK * 2];
        data.extend_from_slice(b"middle");
        data.extend(std::iter::repeat_n(0u8, userland::CHUNK * 3));
        let mut out = Cursor::new(Vec::new());
        let n = copy_data(&mut &data[..], &mut out).map_err(|_| ()).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(out.into_inner(), data);
    }

    #[test]
    fn copies_a_tree() {
        let root = std::env::temp_dir().join(format!("userland-cp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), b"hello").unwrap();
        copy(true, "a", &root.join("a"), &root.join("c")).unwrap();
        assert_eq!(fs::read(root.join("c/b/f")).unwrap(), b"hello");
        assert!(copy(true, "a", &root.join("a"), &root.join("a/b")).is_err());
        assert!(copy(false, "a", &root.join("a"), &root.join("d")).is_err());
        fs::remove_dir_all(&root).unwrap();
    }
}
