//! The host-files device ([`kernel_core::hal::HostFiles`]): the host
//! directories a machine was given, passed through to the kernel's hostfs.
//!
//! Requests run away from the simulated CPUs, on the blocking pool of a
//! tokio runtime that plays the device (as QEMU's event loop plays its
//! devices): a CPU submits and goes on running other processes; the
//! completion stores the reply and wakes the waiting task, whose wake
//! sends an IPI to an idle CPU (the completion interrupt). In
//! deterministic mode there is no runtime: a request is carried out when
//! it is submitted and completes at once, in virtual time, so a replay
//! sees the same replies in the same order.
//!
//! A deterministic machine may inject faults here (`crate::Faults`),
//! drawn at submit: a request fails with `FsError::Io` without being
//! carried out (`host_io_errors`), or is carried out at once but its
//! completion is withheld (`Slot::Late`: `host_poll` answers `Pending`)
//! until the simulation's loop releases it 1..=10 ms of virtual time later
//! ([`Device::release`]) and wakes the waker it was last given
//! (`slow_io`).
//!
//! Invariants:
//! - INV-HOSTFS-1 (confinement): every path is resolved with `openat2` and
//!   `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` from the handle it names, or
//!   split into a parent resolved that way and a last component that the
//!   `*at` call does not follow; a path that would leave (`..`, absolute, a
//!   symbolic link) is `NotCapable`. No host file outside a given directory
//!   is opened, changed or described.
//! - INV-HOSTFS-3: a handle's host descriptor is closed when its last
//!   holder lets go ([`HostFiles::host_close`]); a request in flight holds
//!   the descriptors it uses, so a close meanwhile cannot pull one away.
//! - INV-HOSTFS-4 (late completions): a withheld request is complete on
//!   the host but answers `Pending` until released; `det` releases every
//!   one it withheld once its virtual due time has passed, and the release
//!   hands back the waker last given, so the waiter is woken exactly as by
//!   an ordinary completion. A handle it opened belongs to the ticket
//!   meanwhile: a cancel closes it.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use kernel_core::fs::{FileType, FsError, Stat};
use kernel_core::hal::{
    HalError, HostEntry, HostFiles, HostHandle, HostOp, HostOpen, HostReply, Ticket,
};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::Hosted;

/// Most requests in flight at once; past it a submit is refused.
const MAX_IN_FLIGHT: usize = 4096;
/// Threads of the device's blocking pool.
const DEVICE_THREADS: usize = 4;

/// Where a request stands.
enum Slot {
    /// Being carried out; the waker to wake when it completes.
    Running(Option<Waker>),
    /// Carried out, its completion withheld (deterministic mode, an
    /// injected `slow_io` fault) until `det` releases it
    /// ([`Device::release`]); the waker to wake then.
    Late(Result<HostReply, FsError>, Option<Waker>),
    /// Complete, not yet polled.
    Done(Result<HostReply, FsError>),
}

/// The device's tables.
#[derive(Default)]
struct State {
    /// Open handles: the host descriptor and its holders.
    handles: HashMap<u64, (Arc<OwnedFd>, u64)>,
    next_handle: u64,
    /// Requests not yet taken by their waiter.
    tickets: HashMap<u64, Slot>,
    next_ticket: u64,
}

impl State {
    fn add_handle(&mut self, fd: OwnedFd) -> HostHandle {
        self.next_handle += 1;
        self.handles.insert(self.next_handle, (Arc::new(fd), 1));
        HostHandle(self.next_handle)
    }
}

/// The device of one machine.
pub(crate) struct Device {
    state: Arc<Mutex<State>>,
    /// The given directories' handles, by index.
    roots: Vec<HostHandle>,
    /// The runtime requests run on; `None` in deterministic mode.
    runtime: Option<tokio::runtime::Runtime>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Device {
    /// Open `dirs` (each must be a directory) for a machine, threaded or
    /// (`deterministic`) not.
    ///
    /// # Errors
    /// The index of the directory that did not open and why, or the
    /// runtime that did not start.
    pub(crate) fn new(dirs: &[PathBuf], deterministic: bool) -> Result<Self, (usize, Errno)> {
        let mut state = State::default();
        let mut roots = Vec::with_capacity(dirs.len());
        for (i, dir) in dirs.iter().enumerate() {
            let fd = rustix::fs::open(
                dir,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| (i, e))?;
            roots.push(state.add_handle(fd));
        }
        let runtime = if deterministic || dirs.is_empty() {
            None
        } else {
            raise_open_file_limit();
            Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .max_blocking_threads(DEVICE_THREADS)
                    .thread_name("hostfs")
                    .build()
                    .map_err(|e| (dirs.len(), Errno::from_io_error(&e).unwrap_or(Errno::IO)))?,
            )
        };
        Ok(Self {
            state: Arc::new(Mutex::new(state)),
            roots,
            runtime,
        })
    }
}

impl Device {
    /// Deliver the withheld completion of `ticket` (INV-HOSTFS-4): it
    /// becomes complete and the waker its waiter left, if any, is returned
    /// for the caller to wake. `None` when there is nothing to wake (not
    /// polled yet, or cancelled: the outcome is gone with the ticket).
    pub(crate) fn release(&self, ticket: u64) -> Option<Waker> {
        let mut s = lock(&self.state);
        let slot = s.tickets.get_mut(&ticket)?;
        match core::mem::replace(slot, Slot::Done(Err(FsError::Io))) {
            Slot::Late(reply, waker) => {
                *slot = Slot::Done(reply);
                waker
            }
            other => {
                *slot = other;
                None
            }
        }
    }
}

/// Let the machine hold as many host descriptors as the host allows (the
/// soft limit up to the hard one); a failure keeps the soft limit.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        // The soft limit is only a convenience: if the host refuses, opens
        // past it fail with `TooManyFiles` instead.
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// The descriptors `op` names, held for its run (INV-HOSTFS-3).
fn held(state: &State, op: &HostOp) -> Result<Vec<Arc<OwnedFd>>, FsError> {
    let names: &[HostHandle] = match op {
        HostOp::Open { dir, .. }
        | HostOp::StatPath { dir, .. }
        | HostOp::SetTimesPath { dir, .. }
        | HostOp::ReadDir { dir }
        | HostOp::Mkdir { dir, .. }
        | HostOp::Symlink { dir, .. }
        | HostOp::Readlink { dir, .. }
        | HostOp::Remove { dir, .. } => &[*dir],
        HostOp::Read { file, .. } | HostOp::Write { file, .. } | HostOp::Truncate { file, .. } => {
            &[*file]
        }
        HostOp::Stat { node } | HostOp::SetTimes { node, .. } | HostOp::Sync { node } => &[*node],
        HostOp::Link { from, to, .. } | HostOp::Rename { from, to, .. } => &[*from, *to],
    };
    names
        .iter()
        .map(|h| {
            state
                .handles
                .get(&h.0)
                .map(|(fd, _)| Arc::clone(fd))
                .ok_or(FsError::Io)
        })
        .collect()
}

/// What a request gives before the device files it: a reply, or a new
/// descriptor to become a handle.
enum Outcome {
    Reply(HostReply),
    Opened(OwnedFd, FileType),
}

/// Carry out `op` on the descriptors `fds` holds for it, then file its
/// outcome under `ticket` and wake its waiter (dropped if it was
/// cancelled); with `late`, file it withheld instead (INV-HOSTFS-4).
fn complete(state: &Mutex<State>, ticket: u64, op: &HostOp, fds: &[Arc<OwnedFd>], late: bool) {
    let outcome = execute(op, fds);
    let waker = {
        let mut s = lock(state);
        let reply = match outcome {
            Ok(Outcome::Reply(r)) => Ok(r),
            Ok(Outcome::Opened(fd, t)) => Ok(HostReply::Opened(s.add_handle(fd), t)),
            Err(e) => Err(e),
        };
        match s.tickets.get_mut(&ticket) {
            Some(slot) if late => {
                let waker = match core::mem::replace(slot, Slot::Done(Err(FsError::Io))) {
                    Slot::Running(waker) | Slot::Late(_, waker) => waker,
                    Slot::Done(_) => None,
                };
                *slot = Slot::Late(reply, waker);
                None
            }
            Some(slot) => match core::mem::replace(slot, Slot::Done(reply)) {
                Slot::Running(waker) | Slot::Late(_, waker) => waker,
                Slot::Done(_) => None,
            },
            None => {
                // Cancelled: a handle it opened is nobody's.
                if let Ok(HostReply::Opened(h, _)) = reply {
                    s.handles.remove(&h.0);
                }
                None
            }
        }
    };
    if let Some(w) = waker {
        w.wake();
    }
}

impl HostFiles for Hosted {
    fn host_root(&self, index: u32) -> Option<HostHandle> {
        let device = &self.machine.hostfs;
        let handle = *device.roots.get(usize::try_from(index).ok()?)?;
        self.host_retain(handle);
        Some(handle)
    }

    fn host_submit(&self, op: HostOp) -> Result<Ticket, HalError> {
        let device = &self.machine.hostfs;
        let (ticket, fds) = {
            let mut s = lock(&device.state);
            if s.tickets.len() >= MAX_IN_FLIGHT {
                return Err(HalError::NoMemory);
            }
            s.next_ticket += 1;
            let ticket = s.next_ticket;
            match held(&s, &op) {
                Ok(fds) => {
                    s.tickets.insert(ticket, Slot::Running(None));
                    (ticket, fds)
                }
                Err(e) => {
                    s.tickets.insert(ticket, Slot::Done(Err(e)));
                    return Ok(Ticket(ticket));
                }
            }
        };
        match (&device.runtime, &self.machine.det) {
            (Some(rt), _) => {
                let state = Arc::clone(&device.state);
                drop(rt.spawn_blocking(move || complete(&state, ticket, &op, &fds, false)));
            }
            // Injected faults, drawn in submit order (INV-HOSTFS-4).
            (None, Some(det)) if det.host_io_error(ticket) => {
                drop(fds);
                if let Some(slot) = lock(&device.state).tickets.get_mut(&ticket) {
                    *slot = Slot::Done(Err(FsError::Io));
                }
            }
            (None, Some(det)) => match det.slow_io(ticket) {
                Some(due) => {
                    complete(&device.state, ticket, &op, &fds, true);
                    det.withhold(ticket, due);
                }
                None => complete(&device.state, ticket, &op, &fds, false),
            },
            (None, None) => complete(&device.state, ticket, &op, &fds, false),
        }
        Ok(Ticket(ticket))
    }

    fn host_poll(&self, ticket: Ticket, waker: &Waker) -> Poll<Result<HostReply, FsError>> {
        let mut s = lock(&self.machine.hostfs.state);
        match s.tickets.remove(&ticket.0) {
            Some(Slot::Done(reply)) => Poll::Ready(reply),
            Some(Slot::Running(_)) => {
                s.tickets
                    .insert(ticket.0, Slot::Running(Some(waker.clone())));
                Poll::Pending
            }
            Some(Slot::Late(reply, _)) => {
                s.tickets
                    .insert(ticket.0, Slot::Late(reply, Some(waker.clone())));
                Poll::Pending
            }
            None => Poll::Ready(Err(FsError::Io)),
        }
    }

    fn host_cancel(&self, ticket: Ticket) {
        let mut s = lock(&self.machine.hostfs.state);
        if let Some(
            Slot::Done(Ok(HostReply::Opened(h, _))) | Slot::Late(Ok(HostReply::Opened(h, _)), _),
        ) = s.tickets.remove(&ticket.0)
        {
            s.handles.remove(&h.0);
        }
    }

    fn host_retain(&self, handle: HostHandle) {
        if let Some((_, holders)) = lock(&self.machine.hostfs.state).handles.get_mut(&handle.0) {
            *holders += 1;
        }
    }

    fn host_close(&self, handle: HostHandle) {
        let mut s = lock(&self.machine.hostfs.state);
        if let Some((_, holders)) = s.handles.get_mut(&handle.0) {
            *holders -= 1;
            if *holders == 0 {
                s.handles.remove(&handle.0);
            }
        }
    }
}

/// An error of a call that resolves a path: an escape (`EXDEV` from
/// `RESOLVE_BENEATH`) is `NotCapable`.
fn resolve_error(e: Errno) -> FsError {
    if e == Errno::XDEV {
        FsError::NotCapable
    } else {
        op_error(e)
    }
}

/// An error of any other call.
fn op_error(e: Errno) -> FsError {
    match e {
        Errno::NOENT => FsError::NoEnt,
        Errno::EXIST => FsError::Exist,
        Errno::NOTDIR => FsError::NotDir,
        Errno::ISDIR => FsError::IsDir,
        Errno::NOTEMPTY => FsError::NotEmpty,
        Errno::LOOP => FsError::Loop,
        Errno::NOSPC | Errno::DQUOT => FsError::NoSpace,
        Errno::FBIG => FsError::FileTooBig,
        Errno::INVAL => FsError::Inval,
        Errno::NAMETOOLONG => FsError::NameTooLong,
        Errno::PERM => FsError::Perm,
        Errno::BUSY => FsError::Busy,
        Errno::XDEV => FsError::CrossDevice,
        Errno::ACCESS => FsError::Access,
        Errno::MFILE | Errno::NFILE => FsError::TooManyFiles,
        Errno::ROFS => FsError::ReadOnly,
        Errno::NOTSUP | Errno::NOSYS => FsError::NotSupported,
        _ => FsError::Io,
    }
}

/// `path` as a C string: a NUL inside is `Inval`; an absolute path is
/// `NotCapable` (it would leave the directory); an empty one `NoEnt`.
fn c_path(path: &[u8]) -> Result<CString, FsError> {
    if path.is_empty() {
        return Err(FsError::NoEnt);
    }
    if path.starts_with(b"/") {
        return Err(FsError::NotCapable);
    }
    CString::new(path).map_err(|_| FsError::Inval)
}

/// Flags of every confined resolution (INV-HOSTFS-1).
fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
}

/// Open `path` from `dir` confined, with `flags`.
fn open_beneath(dir: &OwnedFd, path: &[u8], flags: OFlags, mode: Mode) -> Result<OwnedFd, FsError> {
    let path = c_path(path)?;
    loop {
        match rustix::fs::openat2(dir, &path, flags | OFlags::CLOEXEC, mode, beneath()) {
            // A rename elsewhere raced the resolution: try again.
            Err(Errno::AGAIN) => {}
            other => return other.map_err(resolve_error),
        }
    }
}

/// `path` split into its parent directory, opened confined, and its last
/// component (with any trailing `/`), which the caller's `*at` call does
/// not follow; `None` for the component when it is `.` or `..`, which only
/// a confined open of the whole path may name.
fn parent(dir: &OwnedFd, path: &[u8]) -> Result<(OwnedFd, Option<CString>), FsError> {
    c_path(path)?;
    let trimmed = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let cut = path[..trimmed].iter().rposition(|&b| b == b'/');
    let (head, last) = match cut {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&b"."[..], path),
    };
    let head = if head.is_empty() { &b"."[..] } else { head };
    let fd = open_beneath(dir, head, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
    let name = &last[..trimmed - (path.len() - last.len())];
    if name == b"." || name == b".." {
        return Ok((fd, None));
    }
    Ok((fd, Some(CString::new(last).map_err(|_| FsError::Inval)?)))
}

fn stat_of(st: &rustix::fs::Stat) -> Stat {
    let ns = |s: i64, n: u64| {
        u64::try_from(s)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(n)
    };
    Stat {
        ino: st.st_ino,
        filetype: filetype(rustix::fs::FileType::from_raw_mode(st.st_mode)),
        nlink: st.st_nlink,
        size: u64::try_from(st.st_size).unwrap_or(0),
        atime: ns(st.st_atime, st.st_atime_nsec),
        mtime: ns(st.st_mtime, st.st_mtime_nsec),
        ctime: ns(st.st_ctime, st.st_ctime_nsec),
    }
}

fn filetype(t: rustix::fs::FileType) -> FileType {
    use rustix::fs::FileType as T;
    match t {
        T::Directory => FileType::Directory,
        T::RegularFile => FileType::Regular,
        T::Symlink => FileType::Symlink,
        T::BlockDevice => FileType::BlockDevice,
        T::CharacterDevice => FileType::CharDevice,
        T::Socket => FileType::Socket,
        _ => FileType::Unknown,
    }
}

fn timespec(t: Option<u64>) -> Timespec {
    match t {
        Some(ns) => Timespec {
            tv_sec: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
            tv_nsec: i64::try_from(ns % 1_000_000_000).unwrap_or(0),
        },
        None => Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
    }
}

fn timestamps(atime: Option<u64>, mtime: Option<u64>) -> Timestamps {
    Timestamps {
        last_access: timespec(atime),
        last_modification: timespec(mtime),
    }
}

/// Set the times of what the `O_PATH` descriptor `fd` names, through its
/// `/proc/self/fd` link (an `O_PATH` descriptor takes no `futimens`).
fn set_times_of(fd: &OwnedFd, times: &Timestamps) -> Result<(), FsError> {
    use std::os::fd::AsRawFd;
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::fs::utimensat(rustix::fs::CWD, link, times, AtFlags::empty()).map_err(op_error)
}

/// Carry out `op` with `fds`, the descriptors it names in order.
fn execute(op: &HostOp, fds: &[Arc<OwnedFd>]) -> Result<Outcome, FsError> {
    let fd = fds.first().ok_or(FsError::Io)?;
    let done = |r: Result<(), Errno>| {
        r.map(|()| Outcome::Reply(HostReply::Done))
            .map_err(op_error)
    };
    match op {
        HostOp::Open { path, how, .. } => open(fd, path, *how),
        HostOp::Read { offset, len, .. } => {
            let mut buf = vec![0u8; *len];
            let n = rustix::io::pread(&**fd, &mut buf[..], *offset).map_err(op_error)?;
            buf.truncate(n);
            Ok(Outcome::Reply(HostReply::Data(buf)))
        }
        HostOp::Write { offset, data, .. } => {
            let n = rustix::io::pwrite(&**fd, data, *offset).map_err(op_error)?;
            Ok(Outcome::Reply(HostReply::Count(n)))
        }
        HostOp::Stat { .. } => {
            let st = rustix::fs::fstat(&**fd).map_err(op_error)?;
            Ok(Outcome::Reply(HostReply::Stat(stat_of(&st))))
        }
        HostOp::StatPath { path, follow, .. } => {
            let st = match (follow, parent(fd, path)?) {
                (false, (dir, Some(name))) => {
                    rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW).map_err(op_error)?
                }
                _ => {
                    let f = open_beneath(fd, path, OFlags::PATH, Mode::empty())?;
                    rustix::fs::fstat(&f).map_err(op_error)?
                }
            };
            Ok(Outcome::Reply(HostReply::Stat(stat_of(&st))))
        }
        HostOp::SetTimes { atime, mtime, .. } => {
            let times = timestamps(*atime, *mtime);
            match rustix::fs::futimens(&**fd, &times) {
                // A directory given to the machine is open for reading;
                // anything else the device opened takes futimens.
                Err(Errno::BADF) => {
                    set_times_of(fd, &times).map(|()| Outcome::Reply(HostReply::Done))
                }
                r => done(r),
            }
        }
        HostOp::SetTimesPath {
            path,
            follow,
            atime,
            mtime,
            ..
        } => {
            let times = timestamps(*atime, *mtime);
            match (follow, parent(fd, path)?) {
                (false, (dir, Some(name))) => done(rustix::fs::utimensat(
                    &dir,
                    &name,
                    &times,
                    AtFlags::SYMLINK_NOFOLLOW,
                )),
                _ => {
                    let f = open_beneath(fd, path, OFlags::PATH, Mode::empty())?;
                    set_times_of(&f, &times).map(|()| Outcome::Reply(HostReply::Done))
                }
            }
        }
        HostOp::Truncate { size, .. } => done(rustix::fs::ftruncate(&**fd, *size)),
        HostOp::ReadDir { .. } => read_dir(fd),
        HostOp::Mkdir { path, .. } => match parent(fd, path)? {
            (dir, Some(name)) => done(rustix::fs::mkdirat(&dir, &name, Mode::from_raw_mode(0o777))),
            (_, None) => Err(FsError::Exist),
        },
        HostOp::Symlink { target, path, .. } => {
            let target = CString::new(target.as_slice()).map_err(|_| FsError::Inval)?;
            match parent(fd, path)? {
                (dir, Some(name)) => done(rustix::fs::symlinkat(&target, &dir, &name)),
                (_, None) => Err(FsError::Exist),
            }
        }
        HostOp::Readlink { path, .. } => match parent(fd, path)? {
            (dir, Some(name)) => rustix::fs::readlinkat(&dir, &name, Vec::new())
                .map(|t| Outcome::Reply(HostReply::Data(t.into_bytes())))
                .map_err(op_error),
            (_, None) => Err(FsError::Inval),
        },
        HostOp::Link { old, new, .. } => {
            let to = fds.get(1).ok_or(FsError::Io)?;
            match (parent(fd, old)?, parent(to, new)?) {
                ((a, Some(x)), (b, Some(y))) => {
                    done(rustix::fs::linkat(&a, &x, &b, &y, AtFlags::empty()))
                }
                ((_, None), _) => Err(FsError::Perm),
                (_, (_, None)) => Err(FsError::Exist),
            }
        }
        HostOp::Remove {
            path, directory, ..
        } => match parent(fd, path)? {
            (dir, Some(name)) => {
                let flags = if *directory {
                    AtFlags::REMOVEDIR
                } else {
                    AtFlags::empty()
                };
                done(rustix::fs::unlinkat(&dir, &name, flags))
            }
            (_, None) if *directory => Err(FsError::Busy),
            (_, None) => Err(FsError::IsDir),
        },
        HostOp::Rename { old, new, .. } => {
            let to = fds.get(1).ok_or(FsError::Io)?;
            match (parent(fd, old)?, parent(to, new)?) {
                ((a, Some(x)), (b, Some(y))) => done(rustix::fs::renameat(&a, &x, &b, &y)),
                _ => Err(FsError::Busy),
            }
        }
        HostOp::Sync { .. } => match rustix::fs::fsync(&**fd) {
            // A directory given to the machine may refuse; nothing of its
            // own is unwritten.
            Err(Errno::BADF | Errno::INVAL) => Ok(Outcome::Reply(HostReply::Done)),
            r => done(r),
        },
    }
}

/// `HostOp::Open`: a new descriptor for `path`. A directory opens for
/// reading whatever `how.write` asks (the kernel decides what a descriptor
/// may do with it).
fn open(dir: &OwnedFd, path: &[u8], how: HostOpen) -> Result<Outcome, FsError> {
    let mut flags = OFlags::NONBLOCK;
    flags.set(OFlags::CREATE, how.create);
    flags.set(OFlags::EXCL, how.create && how.exclusive);
    flags.set(OFlags::TRUNC, how.truncate);
    flags.set(OFlags::DIRECTORY, how.directory);
    flags.set(OFlags::NOFOLLOW, !how.follow);
    let access = match (how.read, how.write) {
        (true, true) => OFlags::RDWR,
        (false, true) => OFlags::WRONLY,
        _ => OFlags::RDONLY,
    };
    // openat2 takes a mode only with O_CREAT.
    let mode = if how.create {
        Mode::from_raw_mode(0o666)
    } else {
        Mode::empty()
    };
    let fd = match open_beneath(dir, path, flags | access, mode) {
        Err(FsError::IsDir) if how.write && !how.truncate => open_beneath(
            dir,
            path,
            (flags - OFlags::CREATE - OFlags::EXCL) | OFlags::RDONLY | OFlags::DIRECTORY,
            mode,
        )?,
        other => other?,
    };
    let st = rustix::fs::fstat(&fd).map_err(op_error)?;
    let kind = filetype(rustix::fs::FileType::from_raw_mode(st.st_mode));
    Ok(Outcome::Opened(fd, kind))
}

/// `HostOp::ReadDir`: `.` and `..`, then the entries by name (a stable
/// order, so cookies mean the same from call to call and run to run).
fn read_dir(fd: &OwnedFd) -> Result<Outcome, FsError> {
    let own = rustix::fs::openat(
        fd,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(op_error)?;
    let mut entries = Vec::new();
    let mut dot = Vec::new();
    for entry in rustix::fs::Dir::new(own).map_err(op_error)? {
        let entry = entry.map_err(op_error)?;
        let name = entry.file_name().to_bytes().to_vec();
        let mut kind = filetype(entry.file_type());
        if kind == FileType::Unknown {
            // Some file systems leave `d_type` out: ask.
            if let Ok(st) =
                rustix::fs::statat(fd.as_fd(), entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
            {
                kind = filetype(rustix::fs::FileType::from_raw_mode(st.st_mode));
            }
        }
        let e = HostEntry {
            name,
            ino: entry.ino(),
            filetype: kind,
        };
        if e.name == b"." || e.name == b".." {
            dot.push(e);
        } else {
            entries.push(e);
        }
    }
    dot.sort_by(|a, b| a.name.cmp(&b.name));
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    dot.extend(entries);
    Ok(Outcome::Reply(HostReply::Entries(dot)))
}
