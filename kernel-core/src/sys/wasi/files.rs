//! WASI calls on files and directories, of the scope's tmpfs or of a host
//! directory (through [`super::vfs`]): `path_*`, the preopens, and the
//! `fd_*` calls on descriptors that name a file or a directory.
//!
//! Every path is resolved from a directory descriptor and stays under it
//! (each file system's own rule); an escape is `ENOTCAPABLE`.
//! A descriptor opened without read (write) rights cannot read (write):
//! `EBADF`, as wasmtime answers.

use alloc::vec::Vec;

use super::vfs::{Open, Vfs};
use super::{Errno, Fail, Res, gather, iovecs, put, put_len, room, scatter};
use crate::fs::tmpfs::{MAX_PATH, OpenFlags};
use crate::fs::{FileType, FsError, Node, Stat};
use crate::hal::Platform;
use crate::proc::{Context, Fd, FdObject};
use crate::sched::SchedHal;
use crate::sys::uaccess;

// File types.
pub(super) const FILETYPE_UNKNOWN: u8 = 0;
const FILETYPE_BLOCK_DEVICE: u8 = 1;
const FILETYPE_SOCKET_STREAM: u8 = 6;
pub(super) const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR_FILE: u8 = 4;
const FILETYPE_SYMBOLIC_LINK: u8 = 7;

// `lookupflags`, `oflags`, `fstflags`, rights and `whence`.
const LOOKUP_SYMLINK_FOLLOW: u32 = 1;
const OFLAGS_CREAT: u32 = 1;
const OFLAGS_DIRECTORY: u32 = 2;
const OFLAGS_EXCL: u32 = 4;
const OFLAGS_TRUNC: u32 = 8;
const FST_ATIM: u32 = 1;
const FST_ATIM_NOW: u32 = 2;
const FST_MTIM: u32 = 4;
const FST_MTIM_NOW: u32 = 8;
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;
const RIGHT_FD_READDIR: u64 = 1 << 14;
const WHENCE_SET: u32 = 0;
const WHENCE_CUR: u32 = 1;
const WHENCE_END: u32 = 2;
/// `fdflags.append`.
const FDFLAGS_APPEND: u16 = 1;

/// Every right a regular file's descriptor has: `fd_datasync` through
/// `fd_allocate` (bits 0..=8), `fd_filestat_get`, `_set_size`,
/// `_set_times` (21..=23) and `poll_fd_readwrite` (27).
pub(super) const FILE_RIGHTS: u64 = 0x1ff | 0b111 << 21 | 1 << 27;
/// Every right a directory's descriptor has: `fd_fdstat_set_flags` (3),
/// `fd_sync` (4), the `path_*` rights and `fd_readdir` (9..=20) but
/// `path_filestat_set_size` (19, of no call of preview1; wasmtime leaves
/// it out of directories too), `fd_filestat_get` (21),
/// `fd_filestat_set_times` (23) and `path_symlink` through
/// `path_unlink_file` (24..=26).
pub(super) const DIR_RIGHTS: u64 = 1 << 3
    | 1 << 4
    | (0xfff << 9 & !RIGHT_PATH_FILESTAT_SET_SIZE)
    | 1 << 21
    | 1 << 23
    | 0b111 << 24;
/// `rights.path_filestat_set_size`.
const RIGHT_PATH_FILESTAT_SET_SIZE: u64 = 1 << 19;

impl From<FsError> for Errno {
    fn from(e: FsError) -> Self {
        match e {
            FsError::NoEnt => Self::Noent,
            FsError::Exist => Self::Exist,
            FsError::NotDir => Self::Notdir,
            FsError::IsDir => Self::Isdir,
            FsError::NotEmpty => Self::Notempty,
            FsError::Loop => Self::Loop,
            FsError::NotCapable => Self::Notcapable,
            FsError::NoSpace => Self::Nospc,
            FsError::FileTooBig => Self::Fbig,
            FsError::Inval => Self::Inval,
            FsError::NameTooLong => Self::Nametoolong,
            FsError::Perm => Self::Perm,
            FsError::Busy => Self::Busy,
            FsError::CrossDevice => Self::Xdev,
            FsError::Access => Self::Acces,
            FsError::TooManyFiles => Self::Nfile,
            FsError::ReadOnly => Self::Rofs,
            FsError::Io => Self::Io,
            FsError::NotSupported => Self::Notsup,
        }
    }
}

impl From<FsError> for Fail {
    fn from(e: FsError) -> Self {
        Self::Errno(e.into())
    }
}

/// Wall-clock time in ns for timestamps (0 without a wall clock).
fn now<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>) -> u64 {
    ctx.kernel().wall_ns()
}

/// The path of `len` bytes at `ptr`.
fn path_in<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    ptr: i32,
    len: i32,
) -> Result<Vec<u8>, Fail> {
    uaccess::copy_in(ctx.memory(), ptr, len, MAX_PATH).map_err(|e| match e {
        uaccess::AccessError::TooLong => Fail::Errno(Errno::Nametoolong),
        uaccess::AccessError::Fault => Fail::Errno(Errno::Fault),
    })
}

/// The directory descriptor `fd` names: `EBADF` when not open, `ENOTDIR`
/// when not a directory.
fn dir<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, fd: u32) -> Result<Node, Fail> {
    match super::open(ctx, fd)?.object {
        FdObject::Dir { node, .. } => Ok(node),
        _ => Err(Errno::Notdir.into()),
    }
}

/// The `filestat` record of `s`.
fn filestat(s: &Stat) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[8..16].copy_from_slice(&s.ino.to_le_bytes());
    out[16] = filetype(s.filetype);
    out[24..32].copy_from_slice(&s.nlink.to_le_bytes());
    out[32..40].copy_from_slice(&s.size.to_le_bytes());
    out[40..48].copy_from_slice(&s.atime.to_le_bytes());
    out[48..56].copy_from_slice(&s.mtime.to_le_bytes());
    out[56..64].copy_from_slice(&s.ctime.to_le_bytes());
    out
}

fn filetype(t: FileType) -> u8 {
    match t {
        FileType::Directory => FILETYPE_DIRECTORY,
        FileType::Regular => FILETYPE_REGULAR_FILE,
        FileType::Symlink => FILETYPE_SYMBOLIC_LINK,
        FileType::BlockDevice => FILETYPE_BLOCK_DEVICE,
        FileType::CharDevice => super::FILETYPE_CHARACTER_DEVICE,
        FileType::Socket => FILETYPE_SOCKET_STREAM,
        FileType::Unknown => FILETYPE_UNKNOWN,
    }
}

/// The filetype and rights `fd_fdstat_get` reports for a file or
/// directory descriptor.
pub(super) fn fdstat(f: Fd) -> Option<(u8, u64)> {
    match f.object {
        FdObject::File { read, write, .. } => {
            let mut rights = FILE_RIGHTS;
            if !read {
                rights &= !RIGHT_FD_READ;
            }
            if !write {
                rights &= !RIGHT_FD_WRITE;
            }
            Some((FILETYPE_REGULAR_FILE, rights))
        }
        FdObject::Dir { .. } => Some((FILETYPE_DIRECTORY, DIR_RIGHTS)),
        _ => None,
    }
}

pub(super) fn fd_prestat_get<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    out: i32,
) -> Res {
    let name = preopen(ctx, fd)?;
    // Tag 0 (a directory) and the length of its name.
    let mut prestat = [0u8; 8];
    let len = u32::try_from(name.len()).map_err(|_| Errno::Nametoolong)?;
    prestat[4..8].copy_from_slice(&len.to_le_bytes());
    put(ctx, out, &prestat)
}

/// The path directory `fd` was preopened as: `EBADF` for any other
/// descriptor.
fn preopen<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, fd: u32) -> Result<Vec<u8>, Fail> {
    match super::open(ctx, fd)?.object {
        FdObject::Dir {
            preopen: Some(i), ..
        } => Ok(ctx.preopen_name(i).ok_or(Errno::Badf)?.to_vec()),
        _ => Err(Errno::Badf.into()),
    }
}

pub(super) fn fd_prestat_dir_name<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    buf: i32,
    len: i32,
) -> Res {
    let name = preopen(ctx, fd)?;
    if usize::try_from(len.cast_unsigned()).map_or(true, |l| l < name.len()) {
        return Err(Errno::Nametoolong.into());
    }
    put(ctx, buf, &name)
}

#[expect(clippy::too_many_arguments, reason = "the witx signature of path_open")]
pub(super) fn path_open<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    dirfd: u32,
    lookup: u32,
    path: (i32, i32),
    oflags: u32,
    rights: u64,
    fdflags: u32,
    out: i32,
) -> Res {
    let start = dir(ctx, dirfd)?;
    let path = path_in(ctx, path.0, path.1)?;
    uaccess::check(ctx.memory(), out, 4)?;
    let fdflags = u16::try_from(fdflags).map_err(|_| Errno::Inval)?;
    let flags = OpenFlags {
        create: oflags & OFLAGS_CREAT != 0,
        exclusive: oflags & OFLAGS_EXCL != 0,
        truncate: oflags & OFLAGS_TRUNC != 0,
        directory: oflags & OFLAGS_DIRECTORY != 0,
        follow: lookup & LOOKUP_SYMLINK_FOLLOW != 0,
    };
    let read = rights & RIGHT_FD_READ != 0;
    let write = rights & RIGHT_FD_WRITE != 0;
    let (node, kind) = Vfs::new(ctx).open(start, &path, Open { flags, read, write })?;
    let object = match kind {
        FileType::Directory => {
            if write && rights & RIGHT_FD_READDIR == 0 {
                ctx.release(node);
                return Err(Errno::Isdir.into());
            }
            FdObject::Dir {
                node,
                preopen: None,
            }
        }
        _ => FdObject::File {
            node,
            offset: 0,
            read,
            write,
        },
    };
    let Some(fd) = ctx.fds().insert(Fd {
        object,
        flags: fdflags,
    }) else {
        ctx.release(node);
        return Err(Errno::Mfile.into());
    };
    put(ctx, out, &fd.to_le_bytes())
}

pub(super) fn path_create_directory<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    path: (i32, i32),
) -> Res {
    let start = dir(ctx, fd)?;
    let path = path_in(ctx, path.0, path.1)?;
    Vfs::new(ctx).mkdir(start, &path)
}

pub(super) fn path_remove<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    path: (i32, i32),
    dir_only: bool,
) -> Res {
    let start = dir(ctx, fd)?;
    let path = path_in(ctx, path.0, path.1)?;
    Vfs::new(ctx).remove(start, &path, dir_only)
}

pub(super) fn path_rename<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    old_fd: u32,
    old: (i32, i32),
    new_fd: u32,
    new: (i32, i32),
) -> Res {
    let from = dir(ctx, old_fd)?;
    let to = dir(ctx, new_fd)?;
    let old = path_in(ctx, old.0, old.1)?;
    let new = path_in(ctx, new.0, new.1)?;
    Vfs::new(ctx).rename(from, &old, to, &new)
}

pub(super) fn path_symlink<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    target: (i32, i32),
    fd: u32,
    path: (i32, i32),
) -> Res {
    let start = dir(ctx, fd)?;
    let target = path_in(ctx, target.0, target.1)?;
    let path = path_in(ctx, path.0, path.1)?;
    // An absolute target could only ever lead out of the preopen.
    if target.starts_with(b"/") {
        return Err(Errno::Notcapable.into());
    }
    let vfs = Vfs::new(ctx);
    match vfs.symlink(&target, start, &path) {
        // `name/` where a non-directory is: `ENOTDIR`, as wasmtime answers
        // (the file systems answer `EEXIST`, as Linux does). The entry
        // itself is looked at, a link not followed.
        Err(Fail::Errno(Errno::Exist)) if path.ends_with(b"/") => {
            let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
            match vfs.stat_path(start, &path[..end], false) {
                Ok(s) if s.filetype != FileType::Directory => Err(Errno::Notdir.into()),
                _ => Err(Errno::Exist.into()),
            }
        }
        other => other,
    }
}

pub(super) fn path_readlink<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    path: (i32, i32),
    buf: (i32, i32),
    used: i32,
) -> Res {
    let start = dir(ctx, fd)?;
    let path = path_in(ctx, path.0, path.1)?;
    let target = Vfs::new(ctx).readlink(start, &path)?;
    let cap = usize::try_from(buf.1.cast_unsigned()).map_err(|_| Errno::Inval)?;
    uaccess::check(ctx.memory(), buf.0, cap)?;
    uaccess::check(ctx.memory(), used, 4)?;
    let n = target.len().min(cap);
    put(ctx, buf.0, &target[..n])?;
    put_len(ctx, used, n)
}

pub(super) fn path_link<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    old_fd: u32,
    lookup: u32,
    old: (i32, i32),
    new_fd: u32,
    new: (i32, i32),
) -> Res {
    let from = dir(ctx, old_fd)?;
    let to = dir(ctx, new_fd)?;
    let old = path_in(ctx, old.0, old.1)?;
    let new = path_in(ctx, new.0, new.1)?;
    // Following a symbolic link for a hard link is refused, as wasmtime
    // refuses it.
    if lookup & LOOKUP_SYMLINK_FOLLOW != 0 {
        return Err(Errno::Inval.into());
    }
    Vfs::new(ctx).link(from, &old, to, &new)
}

pub(super) fn path_filestat_get<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    lookup: u32,
    path: (i32, i32),
    out: i32,
) -> Res {
    let start = dir(ctx, fd)?;
    let path = path_in(ctx, path.0, path.1)?;
    let stat = Vfs::new(ctx).stat_path(start, &path, lookup & LOOKUP_SYMLINK_FOLLOW != 0)?;
    put(ctx, out, &filestat(&stat))
}

/// The times `fstflags` asks for: `(atime, mtime)`, `None` to leave one.
fn times(flags: u32, atim: i64, mtim: i64, now: u64) -> Result<(Option<u64>, Option<u64>), Errno> {
    let pick = |set: u32, set_now: u32, value: i64| match (flags & set != 0, flags & set_now != 0) {
        (true, true) => Err(Errno::Inval),
        (true, false) => Ok(Some(value.cast_unsigned())),
        (false, true) => Ok(Some(now)),
        (false, false) => Ok(None),
    };
    if flags & !(FST_ATIM | FST_ATIM_NOW | FST_MTIM | FST_MTIM_NOW) != 0 {
        return Err(Errno::Inval);
    }
    Ok((
        pick(FST_ATIM, FST_ATIM_NOW, atim)?,
        pick(FST_MTIM, FST_MTIM_NOW, mtim)?,
    ))
}

pub(super) fn path_filestat_set_times<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    lookup: u32,
    path: (i32, i32),
    atim: i64,
    mtim: i64,
    flags: u32,
) -> Res {
    let start = dir(ctx, fd)?;
    let path = path_in(ctx, path.0, path.1)?;
    let (a, m) = times(flags, atim, mtim, now(ctx))?;
    let follow = lookup & LOOKUP_SYMLINK_FOLLOW != 0;
    Vfs::new(ctx).set_times_path(start, (&path, follow), a, m)
}

/// `fd_filestat_get` of a file or directory descriptor.
pub(super) fn fd_filestat_get<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    node: Node,
    out: i32,
) -> Res {
    let stat = Vfs::new(ctx).stat(node)?;
    put(ctx, out, &filestat(&stat))
}

pub(super) fn fd_filestat_set_times<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    node: Node,
    atim: i64,
    mtim: i64,
    flags: u32,
) -> Res {
    let (a, m) = times(flags, atim, mtim, now(ctx))?;
    Vfs::new(ctx).set_times(node, a, m)
}

/// `fd_sync` and `fd_datasync` of a file.
pub(super) fn sync<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, node: Node) -> Res {
    Vfs::new(ctx).sync(node)
}

/// The size of `file` (0 if it cannot be had), for `poll_oneoff`.
pub(super) fn size<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, file: Node) -> u64 {
    Vfs::new(ctx).stat(file).map_or(0, |s| s.size)
}

/// The open file `fd` names, with its state: `EBADF` for anything else
/// (`EISDIR` for a directory).
fn file<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
) -> Result<(Node, u64, bool, bool, u16), Fail> {
    let f = super::open(ctx, fd)?;
    match f.object {
        FdObject::File {
            node,
            offset,
            read,
            write,
        } => Ok((node, offset, read, write, f.flags)),
        FdObject::Dir { .. } => Err(Errno::Isdir.into()),
        _ => Err(Errno::Badf.into()),
    }
}

/// Move `fd`'s offset to `offset`.
fn set_offset<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, fd: u32, to: u64) {
    if let Some(Fd {
        object: FdObject::File { offset, .. },
        ..
    }) = ctx.fds().get_mut(fd)
    {
        *offset = to;
    }
}

/// Read file `fd` into the iovecs at `iovs` at `at` (its offset when
/// `None`, which then moves); bytes read at `nread`.
pub(super) fn read<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    iovs: (i32, i32),
    at: Option<u64>,
    nread: i32,
) -> Res {
    let (node, offset, readable, _, _) = file(ctx, fd)?;
    if !readable {
        return Err(Errno::Badf.into());
    }
    uaccess::check(ctx.memory(), nread, 4)?;
    let vecs = iovecs(ctx, iovs.0, iovs.1)?;
    let start = at.unwrap_or(offset);
    let buf = Vfs::new(ctx).read(node, start, room(ctx, &vecs)?)?;
    let n = buf.len();
    scatter(ctx, &vecs, &buf)?;
    if at.is_none() {
        set_offset(ctx, fd, start + n as u64);
    }
    put_len(ctx, nread, n)
}

/// Write the iovecs at `iovs` to file `fd` at `at` (its offset, or its
/// end with `APPEND`, when `None`, which then moves); bytes written at
/// `nwritten`.
pub(super) fn write<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    iovs: (i32, i32),
    at: Option<u64>,
    nwritten: i32,
) -> Res {
    let (node, offset, _, writable, flags) = file(ctx, fd)?;
    if !writable {
        return Err(Errno::Badf.into());
    }
    uaccess::check(ctx.memory(), nwritten, 4)?;
    let vfs = Vfs::new(ctx);
    let start = match at {
        Some(at) => at,
        None if flags & FDFLAGS_APPEND != 0 => vfs.stat(node)?.size,
        None => offset,
    };
    let data = gather(ctx, iovs.0, iovs.1)?;
    let n = vfs.write(node, start, data)?;
    if at.is_none() {
        set_offset(ctx, fd, start + n as u64);
    }
    put_len(ctx, nwritten, n)
}

pub(super) fn fd_seek<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    delta: i64,
    whence: u32,
    out: i32,
) -> Res {
    let (node, offset, ..) = file(ctx, fd)?;
    let base = match whence {
        WHENCE_SET => 0,
        WHENCE_CUR => offset,
        WHENCE_END => Vfs::new(ctx).stat(node)?.size,
        _ => return Err(Errno::Inval.into()),
    };
    let to = base
        .checked_add_signed(delta)
        .filter(|&t| i64::try_from(t).is_ok())
        .ok_or(Errno::Inval)?;
    uaccess::check(ctx.memory(), out, 8)?;
    set_offset(ctx, fd, to);
    put(ctx, out, &to.to_le_bytes())
}

pub(super) fn fd_tell<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, fd: u32, out: i32) -> Res {
    let (_, offset, ..) = file(ctx, fd)?;
    put(ctx, out, &offset.to_le_bytes())
}

pub(super) fn fd_filestat_set_size<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    size: i64,
) -> Res {
    let (node, _, _, writable, _) = file(ctx, fd)?;
    if !writable {
        return Err(Errno::Badf.into());
    }
    let size = u64::try_from(size).map_err(|_| Errno::Inval)?;
    Vfs::new(ctx).truncate(node, size)
}

/// `fd_readdir`: entries of directory `fd` from `cookie` on as `dirent`
/// records at `buf`, the last one cut at `len` (so a full buffer says
/// there is more); bytes used at `used`.
pub(super) fn fd_readdir<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    buf: (i32, i32),
    cookie: i64,
    used: i32,
) -> Res {
    let node = dir(ctx, fd).map_err(|_| Fail::Errno(Errno::Badf))?;
    let cap = usize::try_from(buf.1.cast_unsigned()).map_err(|_| Errno::Inval)?;
    uaccess::check(ctx.memory(), buf.0, cap)?;
    uaccess::check(ctx.memory(), used, 4)?;
    let entries = Vfs::new(ctx).read_dir(node)?;
    let skip = usize::try_from(cookie.cast_unsigned()).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for (i, (name, ino, t)) in entries.iter().enumerate().skip(skip) {
        if out.len() >= cap {
            break;
        }
        let mut rec = Vec::with_capacity(24 + name.len());
        rec.extend_from_slice(&(i as u64 + 1).to_le_bytes());
        rec.extend_from_slice(&ino.to_le_bytes());
        rec.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_le_bytes());
        rec.push(filetype(*t));
        rec.extend_from_slice(&[0; 3]);
        rec.extend_from_slice(name);
        out.extend_from_slice(&rec);
    }
    out.truncate(cap);
    put(ctx, buf.0, &out)?;
    put_len(ctx, used, out.len())
}
