//! The WASI preview1 system interface (`wasi_snapshot_preview1`), as
//! `wasm32-wasip1` programs import it.
//!
//! Every function of the interface links, with its witx type. A process has
//! standard input, output and error as descriptors 0, 1 and 2 on the
//! console, the root of its scope's tmpfs preopened as `/` at 3 (calls on
//! files and directories: [`files`]), its arguments and environment
//! ([`crate::proc::Program`]), the clocks, random bytes and `poll_oneoff`.
//! A call that a descriptor's kind cannot do gets the errno of that kind:
//! a path call on standard I/O `ENOTDIR`, a seek `ESPIPE`.
//!
//! Waiting calls (`fd_read` of empty input, `poll_oneoff`) suspend the
//! process's fiber until the platform's input interrupt rings the kernel's
//! input bell (`Context::wait_for_input`), or, on a platform without one,
//! look again every [`INPUT_POLL`]. A kill while waiting ends the process.
//!
//! Every call goes through one dispatcher ([`dispatch`]) that turns the
//! interface's one error type ([`Fail`]: an [`Errno`] or a trap) into the
//! guest's result.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

mod files;
mod vfs;

use super::uaccess::{self, AccessError};
use crate::hal::{InputState, Platform};
use crate::proc::pipe::{self, PipeError};
use crate::proc::{Bound, Context, Fd, FdObject, Interface, Message, MsgSender};
use crate::sched::SchedHal;
use crate::wasm::module::{FuncType, ValType};
use crate::wasm::vm::{HostTrap, Val};

/// The import module of WASI preview1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// How often a process waiting for console input looks for it.
pub const INPUT_POLL: Duration = Duration::from_millis(1);

/// Most bytes one `fd_read` or `fd_write` moves per iovec of a file, or
/// in all on standard I/O (a shorter count is returned, as for any short
/// read or write).
const MAX_IO: usize = 1 << 20;
/// Most subscriptions one `poll_oneoff` takes.
const MAX_SUBSCRIPTIONS: usize = 4096;

/// A WASI errno (`errno` in the witx specification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Errno {
    /// `acces`: permission denied.
    Acces = 2,
    /// `again`: would block.
    Again = 6,
    /// `badf`: bad file descriptor.
    Badf = 8,
    /// `busy`: resource busy.
    Busy = 10,
    /// `exist`: file exists.
    Exist = 20,
    /// `fault`: bad address.
    Fault = 21,
    /// `fbig`: file too large.
    Fbig = 22,
    /// `inval`: invalid argument.
    Inval = 28,
    /// `io`: input/output error.
    Io = 29,
    /// `isdir`: is a directory.
    Isdir = 31,
    /// `loop`: too many levels of symbolic links.
    Loop = 32,
    /// `mfile`: too many open files.
    Mfile = 33,
    /// `nametoolong`: filename too long.
    Nametoolong = 37,
    /// `nfile`: too many files open in the system.
    Nfile = 41,
    /// `noent`: no such file or directory.
    Noent = 44,
    /// `nospc`: no space left on device.
    Nospc = 51,
    /// `nomem`: not enough space.
    Nomem = 48,
    /// `nosys`: function not supported.
    Nosys = 52,
    /// `notdir`: not a directory.
    Notdir = 54,
    /// `notempty`: directory not empty.
    Notempty = 55,
    /// `notsock`: not a socket.
    Notsock = 57,
    /// `notsup`: not supported.
    Notsup = 58,
    /// `overflow`: value too large.
    Overflow = 61,
    /// `perm`: operation not permitted.
    Perm = 63,
    /// `pipe`: broken pipe.
    Pipe = 64,
    /// `rofs`: read-only file system.
    Rofs = 69,
    /// `spipe`: invalid seek.
    Spipe = 70,
    /// `xdev`: cross-device link.
    Xdev = 75,
    /// `notcapable`: the path leaves the directory it is resolved from.
    Notcapable = 76,
}

impl Errno {
    /// The value the guest sees.
    pub fn code(self) -> i32 {
        i32::from(self as u16)
    }
}

impl From<AccessError> for Errno {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Fault => Self::Fault,
            AccessError::TooLong => Self::Inval,
        }
    }
}

/// How a call fails: an [`Errno`] for the guest, or a trap.
pub(super) type Fail = super::Fail<Errno>;

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Self::Errno(e)
    }
}

pub(super) type Res<T = ()> = Result<T, Fail>;

// Clock ids.
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const CLOCK_PROCESS_CPUTIME: u32 = 2;
const CLOCK_THREAD_CPUTIME: u32 = 3;

// File types.
const FILETYPE_CHARACTER_DEVICE: u8 = 2;

// Rights.
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
const RIGHT_FD_WRITE: u64 = 1 << 6;
const RIGHT_FD_FILESTAT_GET: u64 = 1 << 21;
const RIGHT_POLL_FD_READWRITE: u64 = 1 << 27;

// Descriptor flags.
const FDFLAGS_APPEND: u16 = 1 << 0;
const FDFLAGS_DSYNC: u16 = 1 << 1;
const FDFLAGS_NONBLOCK: u16 = 1 << 2;
const FDFLAGS_RSYNC: u16 = 1 << 3;
const FDFLAGS_SYNC: u16 = 1 << 4;

// Event types and flags.
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const EVENTRWFLAGS_HANGUP: u16 = 1;
const SUBCLOCKFLAGS_ABSTIME: u16 = 1;

/// Every function: its name and core wasm type.
const CALLS: [(&str, &[ValType], &[ValType]); 46] = {
    use ValType::{I32 as W, I64 as L};
    [
        ("args_get", &[W, W], &[W]),
        ("args_sizes_get", &[W, W], &[W]),
        ("environ_get", &[W, W], &[W]),
        ("environ_sizes_get", &[W, W], &[W]),
        ("clock_res_get", &[W, W], &[W]),
        ("clock_time_get", &[W, L, W], &[W]),
        ("fd_advise", &[W, L, L, W], &[W]),
        ("fd_allocate", &[W, L, L], &[W]),
        ("fd_close", &[W], &[W]),
        ("fd_datasync", &[W], &[W]),
        ("fd_fdstat_get", &[W, W], &[W]),
        ("fd_fdstat_set_flags", &[W, W], &[W]),
        ("fd_fdstat_set_rights", &[W, L, L], &[W]),
        ("fd_filestat_get", &[W, W], &[W]),
        ("fd_filestat_set_size", &[W, L], &[W]),
        ("fd_filestat_set_times", &[W, L, L, W], &[W]),
        ("fd_pread", &[W, W, W, L, W], &[W]),
        ("fd_prestat_get", &[W, W], &[W]),
        ("fd_prestat_dir_name", &[W, W, W], &[W]),
        ("fd_pwrite", &[W, W, W, L, W], &[W]),
        ("fd_read", &[W, W, W, W], &[W]),
        ("fd_readdir", &[W, W, W, L, W], &[W]),
        ("fd_renumber", &[W, W], &[W]),
        ("fd_seek", &[W, L, W, W], &[W]),
        ("fd_sync", &[W], &[W]),
        ("fd_tell", &[W, W], &[W]),
        ("fd_write", &[W, W, W, W], &[W]),
        ("path_create_directory", &[W, W, W], &[W]),
        ("path_filestat_get", &[W, W, W, W, W], &[W]),
        ("path_filestat_set_times", &[W, W, W, W, L, L, W], &[W]),
        ("path_link", &[W, W, W, W, W, W, W], &[W]),
        ("path_open", &[W, W, W, W, W, L, L, W, W], &[W]),
        ("path_readlink", &[W, W, W, W, W, W], &[W]),
        ("path_remove_directory", &[W, W, W], &[W]),
        ("path_rename", &[W, W, W, W, W, W], &[W]),
        ("path_symlink", &[W, W, W, W, W], &[W]),
        ("path_unlink_file", &[W, W, W], &[W]),
        ("poll_oneoff", &[W, W, W, W], &[W]),
        ("proc_exit", &[W], &[]),
        ("proc_raise", &[W], &[W]),
        ("sched_yield", &[], &[W]),
        ("random_get", &[W, W], &[W]),
        ("sock_accept", &[W, W, W], &[W]),
        ("sock_recv", &[W, W, W, W, W, W], &[W]),
        ("sock_send", &[W, W, W, W, W], &[W]),
        ("sock_shutdown", &[W, W], &[W]),
    ]
};

/// The WASI preview1 interface.
pub(crate) struct Wasi;

impl<'k, 'h, P: Platform + SchedHal> Interface<'k, 'h, P> for Wasi {
    fn module(&self) -> &'static str {
        MODULE
    }

    fn link(&self, ctx: &Arc<Context<'k, 'h, P>>, name: &str) -> Option<Bound<'k>> {
        let index = CALLS.iter().position(|(n, ..)| *n == name)?;
        let (_, params, results) = CALLS[index];
        let ty = FuncType {
            params: params.to_vec(),
            results: results.to_vec(),
        };
        let ctx = ctx.clone();
        Some((ty, Box::new(move |args| dispatch(&ctx, index, args))))
    }
}

/// The arguments of one call, read by position.
struct Args<'a>(&'a [Val]);

impl Args<'_> {
    /// Argument `k` as an `i32` (a pointer, length, descriptor or flags).
    fn w(&self, k: usize) -> i32 {
        match self.0.get(k) {
            Some(Val::I32(x)) => *x,
            _ => 0,
        }
    }

    /// Argument `k` as an unsigned `u32`.
    fn u(&self, k: usize) -> u32 {
        self.w(k).cast_unsigned()
    }

    /// Argument `k` as an `i64`.
    fn l(&self, k: usize) -> i64 {
        match self.0.get(k) {
            Some(Val::I64(x)) => *x,
            _ => 0,
        }
    }
}

/// Run function `index` of [`CALLS`] with `args` for the process of
/// `ctx`: its results, or the trap that stops the process.
fn dispatch<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    index: usize,
    args: &[Val],
) -> Result<Option<Val>, HostTrap> {
    let a = Args(args);
    let name = CALLS.get(index).map_or("", |c| c.0);
    let r = call(ctx, name, &a);
    match r {
        Ok(()) => Ok((name != "proc_exit").then_some(Val::I32(0))),
        Err(Fail::Errno(e)) => Ok(Some(Val::I32(e.code()))),
        Err(Fail::Trap(t)) => Err(t),
    }
}

/// The body of function `name` (see [`dispatch`]).
fn call<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, name: &str, a: &Args<'_>) -> Res {
    match name {
        "args_get" => strings_get(ctx, &ctx.program().args, a.w(0), a.w(1)),
        "args_sizes_get" => strings_sizes(ctx, &ctx.program().args, a.w(0), a.w(1)),
        "environ_get" => strings_get(ctx, &ctx.program().env, a.w(0), a.w(1)),
        "environ_sizes_get" => strings_sizes(ctx, &ctx.program().env, a.w(0), a.w(1)),
        "clock_res_get" => clock_res_get(ctx, a.u(0), a.w(1)),
        "clock_time_get" => clock_time_get(ctx, a.u(0), a.w(2)),
        "fd_advise" => by_kind(ctx, a.u(0), Errno::Spipe, Ok(())),
        "fd_sync" | "fd_datasync" => match open(ctx, a.u(0))?.object {
            FdObject::File { node, .. } => files::sync(ctx, node),
            _ => by_kind(ctx, a.u(0), Errno::Spipe, Ok(())),
        },
        "fd_allocate" => by_kind(ctx, a.u(0), Errno::Spipe, Err(Errno::Notsup.into())),
        "fd_filestat_set_times" => match open(ctx, a.u(0))?.object.node() {
            Some(node) => files::fd_filestat_set_times(ctx, node, a.l(1), a.l(2), a.u(3)),
            None => Err(Errno::Notsup.into()),
        },
        "fd_filestat_set_size" => match open(ctx, a.u(0))?.object {
            FdObject::File { .. } => files::fd_filestat_set_size(ctx, a.u(0), a.l(1)),
            FdObject::Dir { .. } => Err(Errno::Isdir.into()),
            _ => Err(Errno::Inval.into()),
        },
        "fd_close" => fd_close(ctx, a.u(0)),
        "fd_fdstat_get" => fd_fdstat_get(ctx, a.u(0), a.w(1)),
        "fd_fdstat_set_flags" => fd_fdstat_set_flags(ctx, a.u(0), a.u(1)),
        "fd_fdstat_set_rights" => fd_fdstat_set_rights(ctx, a.u(0)),
        "fd_filestat_get" => match open(ctx, a.u(0))?.object.node() {
            Some(node) => files::fd_filestat_get(ctx, node, a.w(1)),
            None => fd_filestat_get(ctx, a.u(0), a.w(1)),
        },
        "fd_pread" => by_kind(ctx, a.u(0), Errno::Spipe, Ok(())).and_then(|()| {
            files::read(ctx, a.u(0), (a.w(1), a.w(2)), Some(offset(a.l(3))?), a.w(4))
        }),
        "fd_pwrite" => by_kind(ctx, a.u(0), Errno::Spipe, Ok(())).and_then(|()| {
            files::write(ctx, a.u(0), (a.w(1), a.w(2)), Some(offset(a.l(3))?), a.w(4))
        }),
        "fd_seek" => by_kind(ctx, a.u(0), Errno::Spipe, Ok(()))
            .and_then(|()| files::fd_seek(ctx, a.u(0), a.l(1), a.u(2), a.w(3))),
        "fd_tell" => by_kind(ctx, a.u(0), Errno::Spipe, Ok(()))
            .and_then(|()| files::fd_tell(ctx, a.u(0), a.w(1))),
        "fd_prestat_get" => files::fd_prestat_get(ctx, a.u(0), a.w(1)),
        "fd_prestat_dir_name" => files::fd_prestat_dir_name(ctx, a.u(0), a.w(1), a.w(2)),
        "fd_read" => fd_read(ctx, a.u(0), a.w(1), a.w(2), a.w(3)),
        "fd_readdir" => files::fd_readdir(ctx, a.u(0), (a.w(1), a.w(2)), a.l(3), a.w(4)),
        "fd_renumber" => fd_renumber(ctx, a.u(0), a.u(1)),
        "fd_write" => fd_write(ctx, a.u(0), a.w(1), a.w(2), a.w(3)),
        "path_create_directory" => files::path_create_directory(ctx, a.u(0), (a.w(1), a.w(2))),
        "path_filestat_get" => {
            files::path_filestat_get(ctx, a.u(0), a.u(1), (a.w(2), a.w(3)), a.w(4))
        }
        "path_filestat_set_times" => files::path_filestat_set_times(
            ctx,
            a.u(0),
            a.u(1),
            (a.w(2), a.w(3)),
            a.l(4),
            a.l(5),
            a.u(6),
        ),
        "path_link" => files::path_link(
            ctx,
            a.u(0),
            a.u(1),
            (a.w(2), a.w(3)),
            a.u(4),
            (a.w(5), a.w(6)),
        ),
        "path_open" => files::path_open(
            ctx,
            a.u(0),
            a.u(1),
            (a.w(2), a.w(3)),
            a.u(4),
            a.l(5).cast_unsigned(),
            a.u(7),
            a.w(8),
        ),
        "path_readlink" => {
            files::path_readlink(ctx, a.u(0), (a.w(1), a.w(2)), (a.w(3), a.w(4)), a.w(5))
        }
        "path_remove_directory" => files::path_remove(ctx, a.u(0), (a.w(1), a.w(2)), true),
        "path_unlink_file" => files::path_remove(ctx, a.u(0), (a.w(1), a.w(2)), false),
        "path_rename" => {
            files::path_rename(ctx, a.u(0), (a.w(1), a.w(2)), a.u(3), (a.w(4), a.w(5)))
        }
        "path_symlink" => files::path_symlink(ctx, (a.w(0), a.w(1)), a.u(2), (a.w(3), a.w(4))),
        "poll_oneoff" => poll_oneoff(ctx, a.w(0), a.w(1), a.w(2), a.w(3)),
        "proc_exit" => Err(HostTrap::Exit(a.w(0)).into()),
        // Signals do not exist here.
        "proc_raise" => Err(Errno::Nosys.into()),
        "sched_yield" => ctx.yield_now().map_err(Fail::from),
        "random_get" => random_get(ctx, a.w(0), a.w(1)),
        "sock_accept" | "sock_recv" | "sock_send" | "sock_shutdown" => {
            open(ctx, a.u(0)).and(Err(Errno::Notsock.into()))
        }
        _ => Err(Errno::Nosys.into()),
    }
}

/// Descriptor `fd`, or `EBADF`.
pub(super) fn open<'k, P: Platform + SchedHal>(
    ctx: &Context<'k, '_, P>,
    fd: u32,
) -> Result<Fd<'k>, Fail> {
    ctx.fds().get(fd).ok_or(Fail::Errno(Errno::Badf))
}

/// The answer by the kind of `fd`: `EBADF` when it is not open, `stdio`
/// for standard I/O, `EBADF` for a directory, `file` for a regular file.
fn by_kind<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    stdio: Errno,
    file: Res,
) -> Res {
    match open(ctx, fd)?.object {
        FdObject::File { .. } => file,
        FdObject::Dir { .. } => Err(Errno::Badf.into()),
        FdObject::Stdin
        | FdObject::Stdout
        | FdObject::Stderr
        | FdObject::PipeRead(_)
        | FdObject::PipeWrite(_) => Err(stdio.into()),
    }
}

/// A file offset argument: `EINVAL` when negative.
fn offset(x: i64) -> Result<u64, Fail> {
    u64::try_from(x).map_err(|_| Fail::Errno(Errno::Inval))
}

/// Write `value` as little-endian bytes at guest address `at`.
pub(super) fn put<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, at: i32, bytes: &[u8]) -> Res {
    Ok(uaccess::copy_out(ctx.memory(), at, bytes)?)
}

/// Write the count `n` (a WASI `size`, 32 bits) at `at`.
pub(super) fn put_len<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, at: i32, n: usize) -> Res {
    put(ctx, at, &u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes())
}

/// `args_get` and `environ_get`: pointers to NUL-terminated copies of
/// `strings` at `ptrs`, the copies at `buf`.
fn strings_get<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    strings: &[Vec<u8>],
    ptrs: i32,
    buf: i32,
) -> Res {
    let mut table = Vec::with_capacity(strings.len() * 4);
    let mut data = Vec::new();
    for s in strings {
        let at = buf
            .cast_unsigned()
            .wrapping_add(u32::try_from(data.len()).map_err(|_| Errno::Overflow)?);
        table.extend_from_slice(&at.to_le_bytes());
        data.extend_from_slice(s);
        data.push(0);
    }
    uaccess::check(ctx.memory(), ptrs, table.len())?;
    uaccess::check(ctx.memory(), buf, data.len())?;
    put(ctx, ptrs, &table)?;
    put(ctx, buf, &data)
}

/// `args_sizes_get` and `environ_sizes_get`: the count of `strings` at
/// `count` and their bytes with a NUL each at `size`.
fn strings_sizes<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    strings: &[Vec<u8>],
    count: i32,
    size: i32,
) -> Res {
    let n = u32::try_from(strings.len()).map_err(|_| Errno::Overflow)?;
    let bytes: usize = strings.iter().map(|s| s.len() + 1).sum();
    let bytes = u32::try_from(bytes).map_err(|_| Errno::Overflow)?;
    uaccess::check(ctx.memory(), count, 4)?;
    uaccess::check(ctx.memory(), size, 4)?;
    put(ctx, count, &n.to_le_bytes())?;
    put(ctx, size, &bytes.to_le_bytes())
}

/// The time of clock `id` in nanoseconds.
fn clock_now<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, id: u32) -> Result<u64, Errno> {
    let t = match id {
        CLOCK_REALTIME => ctx.kernel().hal().wall_time().ok_or(Errno::Notsup)?,
        CLOCK_MONOTONIC => ctx.now(),
        CLOCK_PROCESS_CPUTIME | CLOCK_THREAD_CPUTIME => ctx.cpu_time(),
        _ => return Err(Errno::Inval),
    };
    Ok(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX))
}

fn clock_res_get<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, id: u32, out: i32) -> Res {
    // Every clock reads in nanoseconds; one microsecond is what each
    // platform's clock is at least as fine as.
    clock_now(ctx, id)?;
    put(ctx, out, &1_000u64.to_le_bytes())
}

fn clock_time_get<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, id: u32, out: i32) -> Res {
    let t = clock_now(ctx, id)?;
    put(ctx, out, &t.to_le_bytes())
}

fn fd_close<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, fd: u32) -> Res {
    let closed = ctx.fds().remove(fd).ok_or(Errno::Badf)?;
    if let Some(node) = closed.object.node() {
        ctx.release(node);
    }
    Ok(())
}

/// The filetype, rights and inheriting rights of descriptor `f`.
fn kind_and_rights(f: &Fd<'_>) -> (u8, u64, u64) {
    let common = RIGHT_FD_FDSTAT_SET_FLAGS | RIGHT_POLL_FD_READWRITE | RIGHT_FD_FILESTAT_GET;
    match f.object {
        FdObject::Stdin => (FILETYPE_CHARACTER_DEVICE, common | RIGHT_FD_READ, 0),
        FdObject::Stdout | FdObject::Stderr => {
            (FILETYPE_CHARACTER_DEVICE, common | RIGHT_FD_WRITE, 0)
        }
        // WASI preview1 has no pipe type; wasmtime reports pipes as
        // unknown too.
        FdObject::PipeRead(_) => (files::FILETYPE_UNKNOWN, common | RIGHT_FD_READ, 0),
        FdObject::PipeWrite(_) => (files::FILETYPE_UNKNOWN, common | RIGHT_FD_WRITE, 0),
        FdObject::File { .. } | FdObject::Dir { .. } => {
            let (kind, rights) = files::fdstat(f.clone()).unwrap_or((0, 0));
            let inheriting = if kind == files::FILETYPE_DIRECTORY {
                files::FILE_RIGHTS | files::DIR_RIGHTS
            } else {
                0
            };
            (kind, rights, inheriting)
        }
    }
}

fn fd_fdstat_get<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, fd: u32, out: i32) -> Res {
    let f = open(ctx, fd)?;
    let (kind, rights, inheriting) = kind_and_rights(&f);
    let mut stat = [0u8; 24];
    stat[0] = kind;
    stat[2..4].copy_from_slice(&f.flags.to_le_bytes());
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    stat[16..24].copy_from_slice(&inheriting.to_le_bytes());
    put(ctx, out, &stat)
}

fn fd_fdstat_set_flags<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    flags: u32,
) -> Res {
    let known = FDFLAGS_APPEND | FDFLAGS_DSYNC | FDFLAGS_NONBLOCK | FDFLAGS_RSYNC | FDFLAGS_SYNC;
    let flags = u16::try_from(flags)
        .ok()
        .filter(|f| f & !known == 0)
        .ok_or(Errno::Inval)?;
    let mut fds = ctx.fds();
    let f = fds.get_mut(fd).ok_or(Errno::Badf)?;
    // The console appends whatever is asked; only NONBLOCK changes reads.
    f.flags = flags;
    Ok(())
}

/// Rights are not kept per descriptor (a descriptor can do what its kind
/// and open mode allow, as `fd_fdstat_get` reports), so they cannot be
/// changed either: `ENOTSUP` for an open descriptor, `EBADF` otherwise,
/// as wasmtime answers. Programs probe this to skip rights checks.
fn fd_fdstat_set_rights<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, fd: u32) -> Res {
    open(ctx, fd)?;
    Err(Errno::Notsup.into())
}

fn fd_filestat_get<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, fd: u32, out: i32) -> Res {
    open(ctx, fd)?;
    let mut stat = [0u8; 64];
    stat[16] = FILETYPE_CHARACTER_DEVICE;
    stat[24..32].copy_from_slice(&1u64.to_le_bytes());
    put(ctx, out, &stat)
}

fn fd_renumber<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, from: u32, to: u32) -> Res {
    if from == to {
        return open(ctx, from).map(drop);
    }
    let replaced = ctx.fds().renumber(from, to).ok_or(Errno::Badf)?;
    if let Some(node) = replaced.object.node() {
        ctx.release(node);
    }
    Ok(())
}

/// The `(address, length)` of each of the `n` iovecs at `iovs`.
pub(super) fn iovecs<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    iovs: i32,
    n: i32,
) -> Result<Vec<(u32, u32)>, Fail> {
    let count = usize::try_from(n.cast_unsigned()).map_err(|_| Errno::Inval)?;
    let raw = uaccess::copy_in(
        ctx.memory(),
        iovs,
        n.saturating_mul(8),
        MAX_SUBSCRIPTIONS * 8,
    )
    .map_err(|e| match e {
        // More iovecs than any call takes.
        AccessError::TooLong => Fail::Errno(Errno::Inval),
        AccessError::Fault => Fail::Errno(Errno::Fault),
    })?;
    let mut out = Vec::with_capacity(count);
    for c in raw.chunks_exact(8) {
        let word = |k: usize| u32::from_le_bytes([c[k], c[k + 1], c[k + 2], c[k + 3]]);
        out.push((word(0), word(4)));
    }
    Ok(out)
}

fn fd_write<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    iovs: i32,
    n: i32,
    written: i32,
) -> Res {
    let f = open(ctx, fd)?;
    match f.object {
        FdObject::File { .. } => return files::write(ctx, fd, (iovs, n), None, written),
        FdObject::Stdin | FdObject::Dir { .. } | FdObject::PipeRead(_) => {
            return Err(Errno::Badf.into());
        }
        FdObject::Stdout | FdObject::Stderr | FdObject::PipeWrite(_) => {}
    }
    uaccess::check(ctx.memory(), written, 4)?;
    let bytes = gather(ctx, iovs, n)?;
    let hal = ctx.kernel().hal();
    let n = match f.object {
        FdObject::PipeWrite(tx) => pipe_write(ctx, tx, bytes, f.flags)?,
        FdObject::Stdout => {
            hal.write(&bytes);
            bytes.len()
        }
        _ => {
            hal.write_error(&bytes);
            bytes.len()
        }
    };
    put_len(ctx, written, n)
}

/// Write `bytes` to a pipe, waiting while it is full (unless `flags` has
/// `NONBLOCK`): how many went in.
fn pipe_write<'k, P: Platform + SchedHal>(
    ctx: &Context<'k, '_, P>,
    tx: MsgSender<'k>,
    bytes: Vec<u8>,
    flags: u16,
) -> Result<usize, Fail> {
    if flags & FDFLAGS_NONBLOCK != 0 && !pipe::writable(&tx) {
        return Err(Errno::Again.into());
    }
    let (vm, owner) = (ctx.kernel().vm(), ctx.owner());
    // INV-PIPE-3: each chunk is charged to the writer until it is read.
    let charge = move |chunk: Vec<u8>| {
        let frames = chunk.len().div_ceil(crate::hal::PAGE_SIZE) as u64;
        let hold = vm.hold_while(owner, frames).ok()?;
        Some(Message::charged(chunk, hold))
    };
    let sent = ctx.block(async move { pipe::write_all(&tx, &bytes, charge).await })?;
    sent.map_err(|e| {
        Fail::Errno(match e {
            PipeError::Broken => Errno::Pipe,
            PipeError::NoMemory => Errno::Nomem,
        })
    })
}

fn fd_read<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    fd: u32,
    iovs: i32,
    n: i32,
    read: i32,
) -> Res {
    let f = open(ctx, fd)?;
    match f.object {
        FdObject::File { .. } => return files::read(ctx, fd, (iovs, n), None, read),
        FdObject::Stdin | FdObject::PipeRead(_) => {}
        _ => return Err(Errno::Badf.into()),
    }
    uaccess::check(ctx.memory(), read, 4)?;
    let vecs = iovecs(ctx, iovs, n)?;
    let mut buf = vec![0u8; room(ctx, &vecs)?];
    let want = buf.len();
    if let FdObject::PipeRead(rx) = f.object {
        let bytes = loop {
            match rx.read_now(want) {
                Some(b) => break b,
                None if f.flags & FDFLAGS_NONBLOCK != 0 => return Err(Errno::Again.into()),
                None => {
                    let rx = rx.clone();
                    ctx.block(async move { rx.readable().await })?;
                }
            }
        };
        scatter(ctx, &vecs, &bytes)?;
        return put_len(ctx, read, bytes.len());
    }
    if let Some(tty) = ctx.tty() {
        let line = loop {
            match tty.read_now(want) {
                Some(b) => break b,
                None if f.flags & FDFLAGS_NONBLOCK != 0 => return Err(Errno::Again.into()),
                None => ctx.wait_for_input(None, INPUT_POLL)?,
            }
        };
        scatter(ctx, &vecs, &line)?;
        return put_len(ctx, read, line.len());
    }
    let got = if want == 0 {
        0
    } else {
        loop {
            match ctx.kernel().hal().read_input(&mut buf) {
                Ok(n) => break n,
                Err(InputState::Closed) => break 0,
                Err(_) if f.flags & FDFLAGS_NONBLOCK != 0 => return Err(Errno::Again.into()),
                Err(_) => ctx.wait_for_input(None, INPUT_POLL)?,
            }
        }
    };
    scatter(ctx, &vecs, &buf[..got])?;
    put_len(ctx, read, got)
}

/// The bytes the `n` iovecs at `iovs` hold, in order, at most [`MAX_IO`]
/// in all (a longer write is a short one).
pub(super) fn gather<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    iovs: i32,
    n: i32,
) -> Result<Vec<u8>, Fail> {
    let mut bytes = Vec::new();
    for (at, len) in iovecs(ctx, iovs, n)? {
        let room = MAX_IO - bytes.len();
        let take = usize::try_from(len).map_or(room, |l| l.min(room));
        let chunk = uaccess::copy_in(
            ctx.memory(),
            at.cast_signed(),
            i32::try_from(take).unwrap_or(i32::MAX),
            MAX_IO,
        )?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() == MAX_IO {
            break;
        }
    }
    Ok(bytes)
}

/// Check that every iovec of `vecs` lies in memory; the bytes they take
/// in all, at most [`MAX_IO`] (a longer read is a short one).
pub(super) fn room<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    vecs: &[(u32, u32)],
) -> Result<usize, Fail> {
    let mut total = 0usize;
    for &(at, len) in vecs {
        let len = usize::try_from(len).map_err(|_| Errno::Inval)?;
        uaccess::check(ctx.memory(), at.cast_signed(), len)?;
        total = total.saturating_add(len);
    }
    Ok(total.min(MAX_IO))
}

/// Copy `data` into the iovecs of `vecs`, in order, as far as it goes.
pub(super) fn scatter<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    vecs: &[(u32, u32)],
    data: &[u8],
) -> Res {
    let mut done = 0;
    for &(at, len) in vecs {
        if done == data.len() {
            break;
        }
        let take = usize::try_from(len).unwrap_or(0).min(data.len() - done);
        put(ctx, at.cast_signed(), &data[done..done + take])?;
        done += take;
    }
    Ok(())
}

fn random_get<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, buf: i32, len: i32) -> Res {
    let n = usize::try_from(len.cast_unsigned()).map_err(|_| Errno::Inval)?;
    uaccess::check(ctx.memory(), buf, n)?;
    let mut at = buf.cast_unsigned();
    let mut left = n;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        // Up to 4 GiB in one call: the quantum and a kill still apply.
        if (n - left).is_multiple_of(64 << 10) {
            ctx.preempt()?;
        }
        let take = left.min(chunk.len());
        ctx.kernel().random().fill(&mut chunk[..take]);
        put(ctx, at.cast_signed(), &chunk[..take])?;
        at = at.wrapping_add(u32::try_from(take).unwrap_or(0));
        left -= take;
    }
    Ok(())
}

/// One `poll_oneoff` subscription.
enum Sub {
    /// A clock reaching `at` on the monotonic clock (`None`: a clock this
    /// platform lacks or an unknown one: the error).
    Clock(Result<Duration, Errno>),
    /// A descriptor ready to read or write.
    Fd { kind: u8, fd: u32 },
    /// An unknown subscription type.
    Bad,
}

fn poll_oneoff<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    input: i32,
    output: i32,
    n: i32,
    nevents: i32,
) -> Res {
    let count = usize::try_from(n.cast_unsigned()).map_err(|_| Errno::Inval)?;
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Err(Errno::Inval.into());
    }
    let raw = uaccess::copy_in(
        ctx.memory(),
        input,
        n.saturating_mul(48),
        MAX_SUBSCRIPTIONS * 48,
    )?;
    uaccess::check(ctx.memory(), output, count * 32)?;
    uaccess::check(ctx.memory(), nevents, 4)?;
    let start = ctx.now();
    let subs: Vec<(u64, Sub)> = raw
        .chunks_exact(48)
        .map(|s| {
            let u64_at = |k: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&s[k..k + 8]);
                u64::from_le_bytes(b)
            };
            let u32_at = |k: usize| u32::from_le_bytes([s[k], s[k + 1], s[k + 2], s[k + 3]]);
            let sub = match s[8] {
                EVENTTYPE_CLOCK => {
                    let (id, timeout) = (u32_at(16), u64_at(24));
                    let abs = u16::from_le_bytes([s[40], s[41]]) & SUBCLOCKFLAGS_ABSTIME != 0;
                    Sub::Clock(clock_now(ctx, id).map(|now| {
                        let wait = if abs {
                            timeout.saturating_sub(now)
                        } else {
                            timeout
                        };
                        start.saturating_add(Duration::from_nanos(wait))
                    }))
                }
                kind @ (EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE) => Sub::Fd {
                    kind,
                    fd: u32_at(16),
                },
                _ => Sub::Bad,
            };
            (u64_at(0), sub)
        })
        .collect();
    loop {
        let now = ctx.now();
        let mut events = Vec::new();
        let mut next: Option<Duration> = None;
        for (userdata, sub) in &subs {
            let event = match sub {
                Sub::Clock(Ok(at)) if *at <= now => Some((EVENTTYPE_CLOCK, 0, 0, 0)),
                Sub::Clock(Ok(at)) => {
                    next = Some(next.map_or(*at, |n| n.min(*at)));
                    None
                }
                Sub::Clock(Err(e)) => Some((EVENTTYPE_CLOCK, *e as u16, 0, 0)),
                Sub::Fd { kind, fd } => fd_event(ctx, *kind, *fd),
                Sub::Bad => Some((0, Errno::Inval as u16, 0, 0)),
            };
            if let Some((kind, error, nbytes, flags)) = event {
                let mut e = [0u8; 32];
                e[0..8].copy_from_slice(&userdata.to_le_bytes());
                e[8..10].copy_from_slice(&error.to_le_bytes());
                e[10] = kind;
                e[16..24].copy_from_slice(&u64::to_le_bytes(nbytes));
                e[24..26].copy_from_slice(&u16::to_le_bytes(flags));
                events.extend_from_slice(&e);
            }
        }
        if !events.is_empty() {
            put(ctx, output, &events)?;
            return put_len(ctx, nevents, events.len() / 32);
        }
        // Nothing yet: sleep to the next deadline, or until input comes
        // when a subscription waits for it.
        let reads = subs.iter().any(|(_, s)| matches!(s, Sub::Fd { .. }));
        match (next, reads) {
            (at, true) => ctx.wait_for_input(at, INPUT_POLL)?,
            (Some(at), false) => ctx.sleep(at.saturating_sub(now))?,
            // Every subscription is a clock or a descriptor (anything else
            // gave an event above), and there is at least one.
            (None, false) => return Err(Errno::Inval.into()),
        }
    }
}

/// The event of a descriptor subscription, if it is ready (or wrong):
/// `(type, error, nbytes, flags)`.
fn fd_event<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    kind: u8,
    fd: u32,
) -> Option<(u8, u16, u64, u16)> {
    let Some(f) = ctx.fds().get(fd) else {
        return Some((kind, Errno::Badf as u16, 0, 0));
    };
    match (kind, f.object) {
        (EVENTTYPE_FD_READ, FdObject::PipeRead(rx)) => rx.ready().then_some((kind, 0, 1, 0)),
        (EVENTTYPE_FD_WRITE, FdObject::PipeWrite(tx)) => {
            pipe::writable(&tx).then_some((kind, 0, 0, 0))
        }
        (EVENTTYPE_FD_READ, FdObject::Stdin) if let Some(tty) = ctx.tty() => {
            tty.ready().then_some((kind, 0, 1, 0))
        }
        (EVENTTYPE_FD_READ, FdObject::Stdin) => match ctx.kernel().hal().input_state() {
            InputState::Ready => Some((kind, 0, 1, 0)),
            InputState::Closed => Some((kind, 0, 0, EVENTRWFLAGS_HANGUP)),
            InputState::Empty => None,
        },
        (EVENTTYPE_FD_WRITE, FdObject::Stdout | FdObject::Stderr) => Some((kind, 0, 0, 0)),
        // A file is always ready; a read reports what is left to read.
        (EVENTTYPE_FD_READ, FdObject::File { node, offset, .. }) => {
            let size = files::size(ctx, node);
            Some((kind, 0, size.saturating_sub(offset), 0))
        }
        (EVENTTYPE_FD_WRITE, FdObject::File { .. }) => Some((kind, 0, 0, 0)),
        _ => Some((kind, Errno::Badf as u16, 0, 0)),
    }
}
