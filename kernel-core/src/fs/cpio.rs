//! cpio "newc" archives (the initramfs format Linux uses): reading one
//! entry by entry, unpacking one into a [`Tmpfs`], and writing one.
//!
//! A newc entry is a 110-byte ASCII header (the magic `070701`, then
//! thirteen 8-digit hexadecimal fields), the NUL-terminated name padded to
//! a multiple of 4 bytes from the entry's start, and the data padded the
//! same way. An entry named `TRAILER!!!` ends the archive.
//!
//! Written here rather than taken from a crate: the kernel reads a boot
//! image before anything else runs, so a damaged one must fail with where
//! and why (a truncated image is an error, not a smaller file system),
//! which the `no_std` readers available end silently on.
//!
//! Invariants:
//! - INV-CPIO-1: reading never panics and never reads past the slice; a
//!   malformed archive is a [`CpioError`] naming the byte offset of the
//!   entry at fault, and an archive without its trailer is one.
//! - INV-CPIO-2: unpacking creates nothing outside the directory it
//!   unpacks into: a name with a `..` component, an empty component or a
//!   NUL is refused, `/` and `./` prefixes are dropped.
//! - INV-CPIO-3: [`write`] produces what [`entries`] reads back, entry for
//!   entry (`tests`).

use alloc::vec::Vec;
use core::fmt;

use super::FsError;
use super::tmpfs::{Ino, OpenFlags, Tmpfs};

/// The magic of a newc header.
const MAGIC: &[u8; 6] = b"070701";
/// Bytes of a header.
const HEADER: usize = 110;
/// The name of the last entry.
pub const TRAILER: &[u8] = b"TRAILER!!!";

/// The file-type bits of a mode.
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Directory,
    /// A regular file.
    Regular,
    /// A symbolic link; its data is the target.
    Symlink,
    /// Anything else (a device, a FIFO, a socket), by its type bits.
    Other(u32),
}

/// One entry of an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Byte offset of its header in the archive.
    pub offset: usize,
    /// Its path, as stored (without the terminating NUL).
    pub name: &'a [u8],
    /// What it is.
    pub kind: Kind,
    /// Its permission bits (the low 12 bits of the mode).
    pub perms: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
    /// Its data: a file's bytes, a link's target.
    pub data: &'a [u8],
}

/// Why an archive cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpioErrorKind {
    /// The archive ends inside this entry.
    Truncated,
    /// The entry does not start with `070701`.
    BadMagic,
    /// A header field is not 8 hexadecimal digits.
    BadNumber,
    /// The name is empty or not NUL-terminated.
    BadName,
    /// The archive ends without a `TRAILER!!!` entry.
    NoTrailer,
}

/// A malformed archive: what, and the offset of the entry at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpioError {
    /// What is wrong.
    pub kind: CpioErrorKind,
    /// Byte offset of the entry's header.
    pub offset: usize,
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            CpioErrorKind::Truncated => "archive ends inside an entry",
            CpioErrorKind::BadMagic => "not a newc header (magic 070701)",
            CpioErrorKind::BadNumber => "header field is not hexadecimal",
            CpioErrorKind::BadName => "entry name empty or not NUL-terminated",
            CpioErrorKind::NoTrailer => "archive ends without its TRAILER!!! entry",
        };
        write!(f, "cpio: {what} (entry at byte {})", self.offset)
    }
}

impl core::error::Error for CpioError {}

/// The entries of `archive` up to its trailer, in order; after an error
/// the iterator ends (INV-CPIO-1).
pub fn entries(archive: &[u8]) -> Entries<'_> {
    Entries {
        archive,
        at: 0,
        done: false,
    }
}

/// Iterator of [`entries`].
pub struct Entries<'a> {
    archive: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match read_entry(self.archive, self.at) {
            Ok((entry, next)) => {
                if entry.name == TRAILER {
                    self.done = true;
                    return None;
                }
                self.at = next;
                Some(Ok(entry))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// `n` rounded up to a multiple of 4, `None` on overflow.
fn pad4(n: usize) -> Option<usize> {
    n.checked_next_multiple_of(4)
}

/// The entry whose header is at `at`, and where the next one starts.
fn read_entry(archive: &[u8], at: usize) -> Result<(Entry<'_>, usize), CpioError> {
    let err = |kind| CpioError { kind, offset: at };
    if at >= archive.len() {
        return Err(err(CpioErrorKind::NoTrailer));
    }
    let header = archive
        .get(at..)
        .and_then(|rest| rest.get(..HEADER))
        .ok_or(err(CpioErrorKind::Truncated))?;
    if &header[..6] != MAGIC {
        return Err(err(CpioErrorKind::BadMagic));
    }
    // Fields: ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
    // devminor, rdevmajor, rdevminor, namesize, check.
    let field = |i: usize| -> Result<u32, CpioError> {
        let digits = &header[6 + 8 * i..6 + 8 * (i + 1)];
        let text = core::str::from_utf8(digits).map_err(|_| err(CpioErrorKind::BadNumber))?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(CpioErrorKind::BadNumber));
        }
        u32::from_str_radix(text, 16).map_err(|_| err(CpioErrorKind::BadNumber))
    };
    let mode = field(1)?;
    let mtime = field(5)?;
    let size = field(6)? as usize;
    let namesize = field(11)? as usize;
    let name_start = at + HEADER;
    let name_end = name_start
        .checked_add(namesize)
        .ok_or(err(CpioErrorKind::Truncated))?;
    let name = archive
        .get(name_start..name_end)
        .ok_or(err(CpioErrorKind::Truncated))?;
    let Some((&0, name)) = name.split_last() else {
        return Err(err(CpioErrorKind::BadName));
    };
    if name.is_empty() || name.contains(&0) {
        return Err(err(CpioErrorKind::BadName));
    }
    let data_start = pad4(name_end).ok_or(err(CpioErrorKind::Truncated))?;
    let data_end = data_start
        .checked_add(size)
        .ok_or(err(CpioErrorKind::Truncated))?;
    let data = archive
        .get(data_start..data_end)
        .ok_or(err(CpioErrorKind::Truncated))?;
    let next = pad4(data_end).ok_or(err(CpioErrorKind::Truncated))?;
    let kind = match mode & S_IFMT {
        S_IFDIR => Kind::Directory,
        S_IFREG => Kind::Regular,
        S_IFLNK => Kind::Symlink,
        other => Kind::Other(other),
    };
    let entry = Entry {
        offset: at,
        name,
        kind,
        perms: mode & 0o7777,
        mtime,
        data,
    };
    Ok((entry, next))
}

/// Why an archive could not be unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnpackError {
    /// The archive is malformed.
    Cpio(CpioError),
    /// An entry's path would leave the directory or is not a path
    /// (INV-CPIO-2); the offset of its entry.
    BadPath(usize),
    /// The file system refused an entry (out of space, a file where a
    /// directory must go); the offset of its entry.
    Fs(FsError, usize),
}

impl fmt::Display for UnpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpio(e) => e.fmt(f),
            Self::BadPath(at) => write!(f, "cpio: entry at byte {at}: path leaves the root"),
            Self::Fs(e, at) => write!(f, "cpio: entry at byte {at}: {e}"),
        }
    }
}

impl core::error::Error for UnpackError {}

/// What [`unpack`] made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Directories created (or found already there).
    pub directories: usize,
    /// Regular files written.
    pub files: usize,
    /// Symbolic links made.
    pub symlinks: usize,
    /// Entries of other kinds, passed over.
    pub skipped: usize,
    /// Bytes of file data written.
    pub bytes: u64,
}

/// Where an entry's name puts it, relative to the directory unpacked into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed<'a> {
    /// The directory itself (`.`, `/`).
    Root,
    /// This relative path under it.
    At(&'a [u8]),
    /// Outside it, or not a path: a `..`, `.` or empty component.
    Outside,
}

/// Where `name` goes (INV-CPIO-2): `/` and `./` prefixes and a trailing
/// `/` dropped. `sim pack` checks its paths with this too.
pub fn placed(name: &[u8]) -> Placed<'_> {
    let mut path = name;
    loop {
        if let Some(rest) = path.strip_prefix(b"/") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix(b"./") {
            path = rest;
        } else {
            break;
        }
    }
    let path = path.strip_suffix(b"/").unwrap_or(path);
    if path.is_empty() || path == b"." {
        return Placed::Root;
    }
    if path
        .split(|&b| b == b'/')
        .any(|c| c.is_empty() || c == b"." || c == b"..")
    {
        return Placed::Outside;
    }
    Placed::At(path)
}

/// Unpack `archive` into the directory `dir` of `fs` at time `now`:
/// directories, regular files and symbolic links; other kinds are passed
/// over. Entries may come in any order: a parent that has no entry of its
/// own is made. An existing directory is kept; an existing file is
/// replaced. Stops at the first error; what was made until then stays.
///
/// # Errors
/// [`UnpackError`].
pub fn unpack(archive: &[u8], fs: &Tmpfs, dir: Ino, now: u64) -> Result<Unpacked, UnpackError> {
    let mut done = Unpacked::default();
    for entry in entries(archive) {
        let entry = entry.map_err(UnpackError::Cpio)?;
        let offset = entry.offset;
        let path = match placed(entry.name) {
            Placed::At(path) => path,
            Placed::Root => continue,
            Placed::Outside => return Err(UnpackError::BadPath(offset)),
        };
        let fs_err = |e| UnpackError::Fs(e, offset);
        // Parents first (`mkdir -p`).
        let mut end = 0;
        while let Some(slash) = path[end..].iter().position(|&b| b == b'/') {
            end += slash;
            make_dir(fs, dir, &path[..end], now).map_err(fs_err)?;
            end += 1;
        }
        match entry.kind {
            Kind::Directory => {
                make_dir(fs, dir, path, now).map_err(fs_err)?;
                done.directories += 1;
            }
            Kind::Regular => {
                let flags = OpenFlags {
                    create: true,
                    truncate: true,
                    ..OpenFlags::default()
                };
                let ino = fs.open(dir, path, flags, now).map_err(fs_err)?;
                let written = fs.write(ino, 0, entry.data, now);
                fs.close(ino);
                if written.map_err(fs_err)? != entry.data.len() {
                    return Err(fs_err(FsError::NoSpace));
                }
                done.files += 1;
                done.bytes += entry.data.len() as u64;
            }
            Kind::Symlink => {
                match fs.remove(dir, path, false, now) {
                    Ok(()) | Err(FsError::NoEnt) => {}
                    Err(e) => return Err(fs_err(e)),
                }
                fs.symlink(entry.data, dir, path, now).map_err(fs_err)?;
                done.symlinks += 1;
            }
            Kind::Other(_) => done.skipped += 1,
        }
    }
    Ok(done)
}

/// Make the directory `path` under `dir` unless one is there.
fn make_dir(fs: &Tmpfs, dir: Ino, path: &[u8], now: u64) -> Result<(), FsError> {
    match fs.mkdir(dir, path, now) {
        Err(FsError::Exist) => match fs.lookup(dir, path, false) {
            Ok(ino)
                if fs
                    .stat(ino)
                    .is_ok_and(|s| s.filetype == super::FileType::Directory) =>
            {
                Ok(())
            }
            Ok(_) => Err(FsError::NotDir),
            Err(e) => Err(e),
        },
        other => other,
    }
}

/// An entry to [`write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item<'a> {
    /// Its path.
    pub name: &'a [u8],
    /// What it is ([`Kind::Other`] writes those type bits).
    pub kind: Kind,
    /// Permission bits.
    pub perms: u32,
    /// Data: a file's bytes, a link's target.
    pub data: &'a [u8],
}

/// Why [`write`] cannot encode an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// A name that is empty or holds a NUL (the item's index).
    BadName(usize),
    /// Data of 4 GiB or more (the item's index).
    TooLarge(usize),
}

/// A newc archive of `items`, in order, ending with the trailer
/// (INV-CPIO-3). Inode numbers count from 1; times are 0.
///
/// # Errors
/// [`WriteError`].
pub fn write(items: &[Item<'_>]) -> Result<Vec<u8>, WriteError> {
    let mut out = Vec::new();
    let trailer = Item {
        name: TRAILER,
        kind: Kind::Other(0),
        perms: 0,
        data: &[],
    };
    for (i, item) in items.iter().chain(core::iter::once(&trailer)).enumerate() {
        if item.name.is_empty() || item.name.contains(&0) {
            return Err(WriteError::BadName(i));
        }
        let size = u32::try_from(item.data.len()).map_err(|_| WriteError::TooLarge(i))?;
        let namesize = u32::try_from(item.name.len() + 1).map_err(|_| WriteError::TooLarge(i))?;
        let kind = match item.kind {
            Kind::Directory => S_IFDIR,
            Kind::Regular => S_IFREG,
            Kind::Symlink => S_IFLNK,
            Kind::Other(bits) => bits & S_IFMT,
        };
        let is_trailer = i == items.len();
        let fields = [
            if is_trailer { 0 } else { i as u32 + 1 },
            kind | (item.perms & 0o7777),
            0,
            0,
            if item.kind == Kind::Directory { 2 } else { 1 },
            0,
            size,
            0,
            0,
            0,
            0,
            namesize,
            0,
        ];
        out.extend_from_slice(MAGIC);
        for f in fields {
            push_hex(&mut out, f);
        }
        out.extend_from_slice(item.name);
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(item.data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    Ok(out)
}

/// `v` as 8 uppercase hexadecimal digits.
fn push_hex(out: &mut Vec<u8>, v: u32) {
    for shift in (0..8).rev() {
        let digit = (v >> (shift * 4)) & 0xf;
        out.push(b"0123456789ABCDEF"[digit as usize]);
    }
}

#[cfg(test)]
mod tests;
