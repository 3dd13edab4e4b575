//! tmpfs against Linux: random sequences of file-system operations run on
//! a tmpfs and, the same, on a scratch directory of the host through
//! `std::fs`; every operation must give the same result (the same data,
//! or the same POSIX error) on both, and the two trees must end equal.
//!
//! Paths are made of a few names and `.`, at most three deep, some with a
//! trailing `/`, never `..` (the confinement rules, where tmpfs differs
//! from Linux on purpose, have their own unit tests).

use std::io::ErrorKind;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kernel_core::fs::tmpfs::{OpenFlags, ROOT, Tmpfs};
use kernel_core::fs::{FileType, FsError};
use proptest::prelude::*;

/// One operation, on paths relative to the root.
#[derive(Clone, Debug)]
enum Op {
    Mkdir(String),
    Create(String, Vec<u8>),
    Write(String, u64, Vec<u8>),
    Read(String),
    Unlink(String),
    Rmdir(String),
    Rename(String, String),
    Symlink(String, String),
    Stat(String),
    Link(String, String),
    Truncate(String, u64),
}

/// What an operation gave: data, a file type and size, or nothing.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Done,
    Data(Vec<u8>),
    Kind(FileType, u64),
}

/// The POSIX errors both sides can give.
#[derive(Debug, PartialEq, Eq)]
enum Err {
    NoEnt,
    Exist,
    NotDir,
    IsDir,
    NotEmpty,
    Loop,
    Inval,
    Perm,
    Busy,
    Other(String),
}

fn of_fs(e: FsError) -> Err {
    match e {
        FsError::NoEnt => Err::NoEnt,
        FsError::Exist => Err::Exist,
        FsError::NotDir => Err::NotDir,
        FsError::IsDir => Err::IsDir,
        FsError::NotEmpty => Err::NotEmpty,
        FsError::Loop => Err::Loop,
        FsError::Inval => Err::Inval,
        FsError::Perm => Err::Perm,
        FsError::Busy => Err::Busy,
        other => Err::Other(format!("{other:?}")),
    }
}

fn of_io(e: &std::io::Error) -> Err {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Err::NoEnt,
        Some(libc::EEXIST) => Err::Exist,
        Some(libc::ENOTDIR) => Err::NotDir,
        Some(libc::EISDIR) => Err::IsDir,
        Some(libc::ENOTEMPTY) => Err::NotEmpty,
        Some(libc::ELOOP) => Err::Loop,
        Some(libc::EINVAL) => Err::Inval,
        Some(libc::EPERM) => Err::Perm,
        Some(libc::EBUSY) => Err::Busy,
        _ => Err::Other(format!("{:?}", e.kind())),
    }
}

const CREATE: OpenFlags = OpenFlags {
    create: true,
    exclusive: false,
    truncate: true,
    directory: false,
    follow: true,
};
const OPEN: OpenFlags = OpenFlags {
    create: false,
    truncate: false,
    ..CREATE
};

fn on_tmpfs(fs: &Tmpfs, op: &Op) -> Result<Out, Err> {
    let b = |p: &String| p.clone().into_bytes();
    match op {
        Op::Mkdir(p) => fs.mkdir(ROOT, &b(p), 1).map(|()| Out::Done),
        Op::Create(p, data) => fs.open(ROOT, &b(p), CREATE, 1).and_then(|ino| {
            let r = fs.write(ino, 0, data, 1).map(|_| Out::Done);
            fs.close(ino);
            r
        }),
        Op::Write(p, at, data) => fs.open(ROOT, &b(p), OPEN, 1).and_then(|ino| {
            let r = fs.write(ino, *at, data, 1).map(|_| Out::Done);
            fs.close(ino);
            r
        }),
        Op::Read(p) => fs.open(ROOT, &b(p), OPEN, 1).and_then(|ino| {
            let mut buf = vec![0; 4096];
            let r = fs.read(ino, 0, &mut buf, 1).map(|n| {
                buf.truncate(n);
                Out::Data(buf)
            });
            fs.close(ino);
            r
        }),
        Op::Unlink(p) => fs.remove(ROOT, &b(p), false, 1).map(|()| Out::Done),
        Op::Rmdir(p) => fs.remove(ROOT, &b(p), true, 1).map(|()| Out::Done),
        Op::Rename(p, q) => fs.rename(ROOT, &b(p), ROOT, &b(q), 1).map(|()| Out::Done),
        Op::Symlink(target, p) => fs.symlink(&b(target), ROOT, &b(p), 1).map(|()| Out::Done),
        Op::Link(p, q) => fs
            .link(ROOT, &b(p), false, ROOT, &b(q), 1)
            .map(|()| Out::Done),
        Op::Truncate(p, size) => fs.open(ROOT, &b(p), OPEN, 1).and_then(|ino| {
            let r = fs.truncate(ino, *size, 1).map(|()| Out::Done);
            fs.close(ino);
            r
        }),
        Op::Stat(p) => fs.stat_path(ROOT, &b(p), true).map(|s| {
            let size = if s.filetype == FileType::Directory {
                0
            } else {
                s.size
            };
            Out::Kind(s.filetype, size)
        }),
    }
    .map_err(of_fs)
}

fn on_linux(root: &Path, op: &Op) -> Result<Out, Err> {
    let at = |p: &String| root.join(p);
    let r: std::io::Result<Out> = match op {
        Op::Mkdir(p) => std::fs::create_dir(at(p)).map(|()| Out::Done),
        Op::Create(p, data) => std::fs::write(at(p), data).map(|()| Out::Done),
        Op::Write(p, off, data) => std::fs::OpenOptions::new()
            .write(true)
            .open(at(p))
            .and_then(|f| f.write_all_at(data, *off))
            .map(|()| Out::Done),
        Op::Read(p) => std::fs::read(at(p)).map(Out::Data),
        Op::Unlink(p) => std::fs::remove_file(at(p)).map(|()| Out::Done),
        Op::Rmdir(p) => std::fs::remove_dir(at(p)).map(|()| Out::Done),
        Op::Rename(p, q) => std::fs::rename(at(p), at(q)).map(|()| Out::Done),
        Op::Symlink(target, p) => std::os::unix::fs::symlink(target, at(p)).map(|()| Out::Done),
        Op::Link(p, q) => std::fs::hard_link(at(p), at(q)).map(|()| Out::Done),
        Op::Truncate(p, size) => std::fs::OpenOptions::new()
            .write(true)
            .open(at(p))
            .and_then(|f| f.set_len(*size))
            .map(|()| Out::Done),
        Op::Stat(p) => std::fs::metadata(at(p)).map(|m| {
            if m.is_dir() {
                Out::Kind(FileType::Directory, 0)
            } else {
                Out::Kind(FileType::Regular, m.len())
            }
        }),
    };
    r.map_err(|e| {
        // A read of a directory: the same condition, told another way.
        if e.kind() == ErrorKind::IsADirectory {
            Err::IsDir
        } else {
            of_io(&e)
        }
    })
}

/// Every path under `dir` (relative, sorted) with what it holds: file
/// data, `None` for a directory, the target for a link (`L` prefix).
fn tree_of_linux(root: &Path, dir: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&path).expect("readlink");
            let mut v = b"L".to_vec();
            v.extend_from_slice(t.to_string_lossy().as_bytes());
            out.push((rel, Some(v)));
        } else if meta.is_dir() {
            out.push((rel, None));
            tree_of_linux(root, &path, out);
        } else {
            out.push((rel, Some(std::fs::read(&path).expect("read"))));
        }
    }
}

fn tree_of_tmpfs(fs: &Tmpfs, ino: u64, prefix: &str, out: &mut Vec<(String, Option<Vec<u8>>)>) {
    for (name, child, kind) in fs.read_dir(ino).expect("readdir").into_iter().skip(2) {
        let rel = format!("{prefix}{}", String::from_utf8_lossy(&name));
        match kind {
            FileType::Directory => {
                out.push((rel.clone(), None));
                tree_of_tmpfs(fs, child, &format!("{rel}/"), out);
            }
            FileType::Symlink => {
                let t = fs.readlink(ROOT, rel.as_bytes()).expect("readlink");
                let mut v = b"L".to_vec();
                v.extend_from_slice(&t);
                out.push((rel, Some(v)));
            }
            FileType::Regular => {
                let size = fs.stat(child).expect("stat").size;
                let mut buf = vec![0; usize::try_from(size).expect("small")];
                let n = fs.read(child, 0, &mut buf, 1).expect("read");
                buf.truncate(n);
                out.push((rel, Some(buf)));
            }
            other => panic!("the tmpfs holds no {other:?}"),
        }
    }
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "."]), 1..=3),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(parts, slash)| {
            let mut p = parts.join("/");
            if slash {
                p.push('/');
            }
            p
        })
}

fn op() -> impl Strategy<Value = Op> {
    let data = prop::collection::vec(any::<u8>(), 0..16);
    prop_oneof![
        3 => path().prop_map(Op::Mkdir),
        3 => (path(), data.clone()).prop_map(|(p, d)| Op::Create(p, d)),
        2 => (path(), 0..24u64, data).prop_map(|(p, at, d)| Op::Write(p, at, d)),
        2 => path().prop_map(Op::Read),
        2 => path().prop_map(Op::Unlink),
        2 => path().prop_map(Op::Rmdir),
        2 => (path(), path()).prop_map(|(p, q)| Op::Rename(p, q)),
        1 => (prop::sample::select(vec!["a", "b", "c", "a/b", "x"]), path())
            .prop_map(|(t, p)| Op::Symlink(t.to_owned(), p)),
        2 => path().prop_map(Op::Stat),
        1 => (path(), path()).prop_map(|(p, q)| Op::Link(p, q)),
        1 => (path(), 0..24u64).prop_map(|(p, n)| Op::Truncate(p, n)),
    ]
}

/// A fresh scratch directory for one case.
fn scratch() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vessel-tmpfs-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tmpfs_does_what_linux_does(ops in prop::collection::vec(op(), 1..40)) {
        let fs = Tmpfs::new(1 << 20, 0);
        let root = scratch();
        for (i, op) in ops.iter().enumerate() {
            let want = on_linux(&root, op);
            let got = on_tmpfs(&fs, op);
            prop_assert_eq!(got, want, "step {} {:?}", i, op);
        }
        let (mut linux, mut ours) = (Vec::new(), Vec::new());
        tree_of_linux(&root, &root, &mut linux);
        tree_of_tmpfs(&fs, ROOT, "", &mut ours);
        linux.sort();
        ours.sort();
        let _ = std::fs::remove_dir_all(&root);
        prop_assert_eq!(ours, linux);
    }
}
