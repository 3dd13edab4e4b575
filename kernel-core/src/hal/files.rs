//! Host files: directories of the machine's host passed through to the
//! kernel's file system (hostfs, [`crate::fs::hostfs`]), as a device that
//! takes requests and completes them later.
//!
//! The kernel submits a [`HostOp`] and gets a [`Ticket`]; the platform
//! carries the request out away from the CPU that submitted it and, when
//! it is done, wakes the waker [`HostFiles::host_poll`] was last given
//! (the completion interrupt). A request is confined to the directory its
//! handle names: no path leaves it, by `..`, an absolute path or a
//! symbolic link (INV-HOSTFS-1 in the implementation).
//!
//! - hosted: the directories of `Config::dirs`. Requests run on a tokio
//!   runtime's blocking pool; a completion wakes the waiting task, which
//!   sends an IPI to an idle CPU. In deterministic mode a request is carried
//!   out when it is submitted and completes at once, in virtual time.
//! - riscv: no host; [`HostFiles::host_root`] names nothing and every
//!   request fails with [`HalError::Unsupported`] (the defaults).

use alloc::vec::Vec;
use core::task::{Poll, Waker};

use super::HalError;
use crate::fs::{FileType, FsError, Stat};

/// An open host file or directory: the platform holds it until the last
/// [`HostFiles::host_close`] of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostHandle(pub u64);

/// A submitted request, to poll for its completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(pub u64);

/// How [`HostOp::Open`] opens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostOpen {
    /// Create a regular file if none is there.
    pub create: bool,
    /// With `create`: fail if something is there.
    pub exclusive: bool,
    /// Truncate a regular file to 0.
    pub truncate: bool,
    /// Fail unless it is a directory.
    pub directory: bool,
    /// Follow a symbolic link at the last component.
    pub follow: bool,
    /// Open for reading.
    pub read: bool,
    /// Open for writing (a directory is then refused: `EISDIR`).
    pub write: bool,
}

/// A request. Paths are relative to the directory handle beside them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostOp {
    /// Open `path`: [`HostReply::Opened`].
    Open {
        /// The directory it is resolved from.
        dir: HostHandle,
        /// The path.
        path: Vec<u8>,
        /// How.
        how: HostOpen,
    },
    /// Read up to `len` bytes at `offset`: [`HostReply::Data`].
    Read {
        /// The file.
        file: HostHandle,
        /// Where.
        offset: u64,
        /// How many at most.
        len: usize,
    },
    /// Write `data` at `offset`: [`HostReply::Count`].
    Write {
        /// The file.
        file: HostHandle,
        /// Where.
        offset: u64,
        /// What.
        data: Vec<u8>,
    },
    /// What a handle names: [`HostReply::Stat`].
    Stat {
        /// The file or directory.
        node: HostHandle,
    },
    /// What `path` names: [`HostReply::Stat`].
    StatPath {
        /// The directory it is resolved from.
        dir: HostHandle,
        /// The path.
        path: Vec<u8>,
        /// Follow a symbolic link at the last component.
        follow: bool,
    },
    /// Set the access and modification times (ns since the epoch; `None`
    /// leaves one): [`HostReply::Done`].
    SetTimes {
        /// The file or directory.
        node: HostHandle,
        /// Access time.
        atime: Option<u64>,
        /// Modification time.
        mtime: Option<u64>,
    },
    /// [`HostOp::SetTimes`] of what `path` names.
    SetTimesPath {
        /// The directory it is resolved from.
        dir: HostHandle,
        /// The path.
        path: Vec<u8>,
        /// Follow a symbolic link at the last component.
        follow: bool,
        /// Access time.
        atime: Option<u64>,
        /// Modification time.
        mtime: Option<u64>,
    },
    /// Set a file's size: [`HostReply::Done`].
    Truncate {
        /// The file.
        file: HostHandle,
        /// Its new size.
        size: u64,
    },
    /// A directory's entries, `.` and `..` first: [`HostReply::Entries`].
    ReadDir {
        /// The directory.
        dir: HostHandle,
    },
    /// Make a directory: [`HostReply::Done`].
    Mkdir {
        /// The directory it is resolved from.
        dir: HostHandle,
        /// The new directory's path.
        path: Vec<u8>,
    },
    /// Make a symbolic link to `target`: [`HostReply::Done`].
    Symlink {
        /// What the link holds.
        target: Vec<u8>,
        /// The directory it is resolved from.
        dir: HostHandle,
        /// The link's path.
        path: Vec<u8>,
    },
    /// A symbolic link's target: [`HostReply::Data`].
    Readlink {
        /// The directory it is resolved from.
        dir: HostHandle,
        /// The link's path.
        path: Vec<u8>,
    },
    /// A hard link `new` to what `old` names (not following a symbolic
    /// link): [`HostReply::Done`].
    Link {
        /// The directory `old` is resolved from.
        from: HostHandle,
        /// The existing path.
        old: Vec<u8>,
        /// The directory `new` is resolved from.
        to: HostHandle,
        /// The new path.
        new: Vec<u8>,
    },
    /// Remove an entry (a directory only when `dir`): [`HostReply::Done`].
    Remove {
        /// The directory it is resolved from.
        dir: HostHandle,
        /// The path.
        path: Vec<u8>,
        /// Remove a directory (`rmdir`), else anything but one (`unlink`).
        directory: bool,
    },
    /// Rename `old` to `new`: [`HostReply::Done`].
    Rename {
        /// The directory `old` is resolved from.
        from: HostHandle,
        /// The existing path.
        old: Vec<u8>,
        /// The directory `new` is resolved from.
        to: HostHandle,
        /// The new path.
        new: Vec<u8>,
    },
    /// Write a file's data through to its storage: [`HostReply::Done`].
    Sync {
        /// The file or directory.
        node: HostHandle,
    },
}

/// One entry of [`HostReply::Entries`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEntry {
    /// Its name.
    pub name: Vec<u8>,
    /// Its inode number.
    pub ino: u64,
    /// What it is.
    pub filetype: FileType,
}

/// What a completed request gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostReply {
    /// A new handle and what it names.
    Opened(HostHandle, FileType),
    /// Bytes read, or a link's target.
    Data(Vec<u8>),
    /// Bytes written.
    Count(usize),
    /// What a node is.
    Stat(Stat),
    /// A directory's entries.
    Entries(Vec<HostEntry>),
    /// Done, with nothing to tell.
    Done,
}

/// The host-files device. Every method has a default for a platform
/// without host files.
pub trait HostFiles {
    /// Directory number `index` of those the machine was given, held once
    /// more for the caller (who closes it), or `None` if there is no such
    /// directory.
    ///
    /// - hosted: `Config::dirs[index]`, opened when the machine was made.
    /// - riscv: `None`.
    fn host_root(&self, index: u32) -> Option<HostHandle> {
        let _ = index;
        None
    }

    /// Start `op`; the ticket to poll for it.
    ///
    /// # Errors
    /// [`HalError::Unsupported`] without host files; [`HalError::NoMemory`]
    /// when the platform cannot take more requests now.
    fn host_submit(&self, op: HostOp) -> Result<Ticket, HalError> {
        let _ = op;
        Err(HalError::Unsupported)
    }

    /// The outcome of `ticket` once it is complete (the ticket is then
    /// spent); until then `Pending`, and `waker` is woken when it
    /// completes. A ticket that is not known answers `Err(FsError::Io)`.
    fn host_poll(&self, ticket: Ticket, waker: &Waker) -> Poll<Result<HostReply, FsError>> {
        let _ = (ticket, waker);
        Poll::Ready(Err(FsError::Io))
    }

    /// Forget `ticket`: its outcome, when it comes, is dropped (the waiter
    /// went away, killed).
    fn host_cancel(&self, ticket: Ticket) {
        let _ = ticket;
    }

    /// Hold `handle` once more.
    fn host_retain(&self, handle: HostHandle) {
        let _ = handle;
    }

    /// Let go of `handle` once; the last holder's close closes it on the
    /// host.
    fn host_close(&self, handle: HostHandle) {
        let _ = handle;
    }
}
