//! The current directory. WASI has none: a program sees the file system
//! through its preopened `/`. The shell keeps the current directory in the
//! environment variable `PWD` and hands it to every program it starts;
//! the tools resolve relative paths against it with [`resolve`].

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
}
