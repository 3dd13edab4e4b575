//! File systems: what a process's file descriptors name besides the
//! console. [`tmpfs`] keeps files in kernel memory (their bytes in
//! [`filedata`] chunks); it is the root every process gets (preopened as
//! `/`). [`hostfs`] passes a directory of the
//! host through (hosted only), mounted where a program asks
//! ([`crate::proc::Mount`]); a mount is preopened at its own path, and a
//! mount at `/` takes the tmpfs root's place. A [`Node`] names a file or
//! directory of either.
//!
//! Errors are [`FsError`], one per POSIX condition; each system interface
//! maps them to its own codes.

pub mod cpio;
pub mod filedata;
pub mod hostfs;
pub mod tmpfs;

use core::fmt;

/// What a path or inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// A directory.
    Directory,
    /// A regular file.
    Regular,
    /// A symbolic link.
    Symlink,
    /// A block device (host files only).
    BlockDevice,
    /// A character device (host files only).
    CharDevice,
    /// A socket (host files only).
    Socket,
    /// Anything else (a FIFO).
    Unknown,
}

/// A file or directory of one of the file systems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// An inode of the tmpfs.
    Tmp(tmpfs::Ino),
    /// A handle of a host file or directory.
    Host(crate::hal::HostHandle),
}

/// What [`tmpfs::Tmpfs::stat`] tells of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Its inode number.
    pub ino: u64,
    /// What it is.
    pub filetype: FileType,
    /// Entries naming it.
    pub nlink: u64,
    /// Bytes of a file or link target (0 for a directory).
    pub size: u64,
    /// Last access, ns since the epoch.
    pub atime: u64,
    /// Last modification of the data.
    pub mtime: u64,
    /// Last change of the inode.
    pub ctime: u64,
}

/// Why a file-system operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No such file or directory.
    NoEnt,
    /// Something is there already.
    Exist,
    /// A component that must be a directory is not.
    NotDir,
    /// A directory where a file is needed.
    IsDir,
    /// A directory that must be empty is not.
    NotEmpty,
    /// Too many symbolic links.
    Loop,
    /// The path would leave the directory it is resolved from.
    NotCapable,
    /// The file system is full.
    NoSpace,
    /// A size or offset past what a file can hold.
    FileTooBig,
    /// An argument the operation cannot take.
    Inval,
    /// A name or path too long.
    NameTooLong,
    /// Not allowed (a hard link to a directory).
    Perm,
    /// The operation needs what is in use (renaming `.`).
    Busy,
    /// A rename or link between two file systems.
    CrossDevice,
    /// The host refused access.
    Access,
    /// The host has no more open files to give.
    TooManyFiles,
    /// The host file system is read-only.
    ReadOnly,
    /// The host failed the operation some other way.
    Io,
    /// The file system cannot do this.
    NotSupported,
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoEnt => "no such file or directory",
            Self::Exist => "file exists",
            Self::NotDir => "not a directory",
            Self::IsDir => "is a directory",
            Self::NotEmpty => "directory not empty",
            Self::Loop => "too many symbolic links",
            Self::NotCapable => "path leaves its directory",
            Self::NoSpace => "no space left",
            Self::FileTooBig => "file too large",
            Self::Inval => "invalid argument",
            Self::NameTooLong => "name too long",
            Self::Perm => "operation not permitted",
            Self::Busy => "resource busy",
            Self::CrossDevice => "link or rename across file systems",
            Self::Access => "permission denied",
            Self::TooManyFiles => "too many open files",
            Self::ReadOnly => "read-only file system",
            Self::Io => "input/output error",
            Self::NotSupported => "not supported",
        })
    }
}

impl core::error::Error for FsError {}
