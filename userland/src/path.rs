//! The current directory. WASI has none: a program sees the file system
//! through its preopened `/`. The shell keeps the current directory in the
//! environment variable `PWD` and hands it to every program it starts;
//! the tools resolve relative paths against it with [`resolve`]. Also the
//! `SRC... DST` operands of `cp` and `mv` ([`sources_and_destination`],
//! [`Destination`]).

use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The current directory: `PWD` when it is absolute, else `/`.
pub fn cwd() -> PathBuf {
    match std::env::var_os("PWD") {
        Some(p) if Path::new(&p).is_absolute() => PathBuf::from(p),
        _ => PathBuf::from("/"),
    }
}

/// `p` made absolute against the current directory, with `.` and `..`
/// folded (`..` at `/` stays at `/`).
pub fn resolve(p: impl AsRef<Path>) -> PathBuf {
    join(&cwd(), p.as_ref())
}

/// `p` made absolute against `base`, with `.` and `..` folded.
pub fn join(base: &Path, p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    let whole = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    for c in whole.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The destination of a `SRC... DST` command line (`cp`, `mv`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// DST, resolved.
    pub path: PathBuf,
    /// Whether DST is an existing directory (links followed), into which
    /// the sources go under their own names.
    pub is_dir: bool,
}

impl Destination {
    /// Where `src` goes: into the destination under its own name when that
    /// is a directory, else the destination itself; `None` for a `src`
    /// with no name (`/`).
    pub fn target(&self, src: &Path) -> Option<PathBuf> {
        if self.is_dir {
            src.file_name().map(|n| self.path.join(n))
        } else {
            Some(self.path.clone())
        }
    }
}

/// `SRC... DST` operands taken apart: the sources as given, and the
/// destination. Exits (by [`crate::fail`]) with [`crate::USAGE`] and
/// `missing operand; USAGE` when there are fewer than two operands, and
/// with [`crate::FAILURE`] and `DST: not a directory` when there are
/// several sources and DST is not a directory.
pub fn sources_and_destination(
    name: &str,
    usage: &str,
    mut operands: Vec<OsString>,
) -> (Vec<OsString>, Destination) {
    let dst_arg = match operands.pop() {
        Some(d) if !operands.is_empty() => d,
        _ => crate::fail(name, format_args!("missing operand; {usage}"), crate::USAGE),
    };
    let path = resolve(&dst_arg);
    let is_dir = fs::metadata(&path).is_ok_and(|m| m.is_dir());
    if operands.len() > 1 && !is_dir {
        let shown = dst_arg.to_string_lossy();
        crate::fail(
            name,
            format_args!("{shown}: not a directory"),
            crate::FAILURE,
        );
    }
    (operands, Destination { path, is_dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_base_and_fold_dots() {
        let base = Path::new("/tmp/x");
        assert_eq!(join(base, Path::new("a/../b")), Path::new("/tmp/x/b"));
        assert_eq!(join(base, Path::new("/etc/./motd")), Path::new("/etc/motd"));
        assert_eq!(join(base, Path::new("../../../..")), Path::new("/"));
        assert_eq!(join(base, Path::new(".")), Path::new("/tmp/x"));
    }

    #[test]
    fn into_a_directory_keeps_the_name() {
        let dir = Destination {
            path: PathBuf::from("/d"),
            is_dir: true,
        };
        assert_eq!(dir.target(Path::new("/a/f")), Some(PathBuf::from("/d/f")));
        assert_eq!(dir.target(Path::new("/")), None);
        let file = Destination {
            path: PathBuf::from("/g"),
            is_dir: false,
        };
        assert_eq!(file.target(Path::new("/a/f")), Some(PathBuf::from("/g")));
    }
}
