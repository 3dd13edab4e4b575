//! The `vessel` system interface: processes, channels and the console,
//! imported from the module [`MODULE`].
//!
//! | import | type | does |
//! |---|---|---|
//! | `exit` | `(i32)` | end the process with that code |
//! | `yield` | `()` | let other processes run |
//! | `sleep` | `(i64 ns) -> i32` | sleep that long (monotonic) |
//! | `now` | `() -> i64` | monotonic time in ns |
//! | `write` | `(i32 ptr, i32 len) -> i32` | write bytes to the console; bytes written |
//! | `chan_create` | `(i32 out) -> i32` | new channel: its send handle and receive handle as two little-endian `u32` at `out` |
//! | `chan_send` | `(i32 h, i32 ptr, i32 len) -> i32` | send a message (copied), waiting while the channel is full |
//! | `chan_recv` | `(i32 h, i32 ptr, i32 cap) -> i32` | receive a message, waiting while empty; copies at most `cap` bytes and returns the message's full length |
//! | `close` | `(i32 h) -> i32` | drop a handle |
//! | `spawn` | `(i32 ptr, i32 len, i32 handles, i32 n) -> i32` | start a process from the wasm module at `ptr`, giving it copies of the `n` handles (`u32` each) listed at `handles` as its handles `0..n`; returns a process handle (-5: out of memory, or past the child or process limit) |
//! | `wait` | `(i32 h) -> i32` | wait for a process handle's process to end; its exit code (an ended process stays waitable while a handle names it; closing the last handle reaps it) |
//! | `kill` | `(i32 h) -> i32` | kill a process handle's process |
//! | `detach` | `(i32 h) -> i32` | let a child outlive the caller: it is no longer killed when the caller ends (-4 if not the caller's child) |
//! | `spawn_program` | `(i32 ptr, i32 len, i32 handles, i32 n, i32 argv, i32 argv_len, i32 flags) -> i32` | `spawn` with WASI arguments: the `argv_len` bytes at `argv` are NUL-terminated strings, the first the program's name (none: the caller's name); `flags` bit 0 hands down the caller's environment, bit 1 withholds the file system (no preopen); other bits -4 |
//! | `spawn_file` | `(i32 req, i32 len) -> i32` | start the program at an absolute path of the file system; `req` is 9 little-endian `u32` (`len` 36): path pointer and length, argv pointer and length (NUL-terminated strings, the first its name; none: the path), env pointer and length (NUL-terminated `KEY=VALUE`, its whole environment), a pointer to `n` WASI descriptors of the caller and `n` (at most 3: they become the child's 0, 1, 2; the rest are the console), flags (bit 0: Ctrl-C on the console kills it; bit 1: no file system); a process handle (-9: no such file) |
//! | `try_wait` | `(i32 h) -> i32` | `wait` without waiting: -8 while the process runs |
//! | `pid` | `(i32 h) -> i32` | the process id of a process handle; of the caller for -1 |
//! | `kill_pid` | `(i32 pid) -> i32` | kill a process by id: the caller's descendants and its parent's (-9: no such process, -10: not allowed) |
//! | `procs` | `(i32 buf, i32 cap) -> i32` | the process table: one 64-byte record per process into the `cap` bytes at `buf` (as many as fit), returning how many there are; a record is pid, parent pid (0: none), state (0 runnable, 1 waiting, 2 ended), last CPU (`u32::MAX`: none) as `u32`s, CPU time in ns and memory in bytes as `u64`s, and the name, NUL-padded to 32 bytes |
//! | `pipe` | `(i32 out) -> i32` | a new pipe ([`crate::proc::pipe`]): its read and write ends, WASI descriptors, as two `u32` at `out` |
//!
//! Results are `>= 0` on success, or a negative [`Errno`]. A handle is a
//! capability: an index into the caller's own table, so a process can use
//! only handles it created or was given; a bad handle or pointer is an
//! error code, never a kernel fault (pointers go through [`uaccess`]).
//! Waiting calls suspend the process's fiber; a process killed while it
//! waits does not return from the call.
//!
//! Every call goes through one dispatcher ([`dispatch`]), which turns the
//! one error type of the interface ([`Fail`]) into the guest's result or
//! its trap.
//!
//! Invariant INV-SYS-1: a system call that fails has changed nothing the
//! caller can see (no handle made, no byte written), except `chan_recv`,
//! which may have taken a message it then could not copy out (`Fault`).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use super::uaccess::{self, AccessError};
use crate::fs::FsError;
use crate::hal::{Console, PAGE_SIZE, Platform};
use crate::mem::ProcessId;
use crate::proc::{
    Bound, Claim, Context, ExitStatus, Fd, FdObject, Interface, KillReason, MAX_PROGRAM_BYTES,
    Message, Object, Pid, Program,
};
use crate::sched::SchedHal;
use crate::wasm::module::{FuncType, ValType};
use crate::wasm::vm::{HostTrap, Val};

/// The module name every call of this interface is imported from.
pub const MODULE: &str = "vessel";

/// Most bytes one message may hold.
pub const MAX_MESSAGE: usize = 64 << 10;
/// Most bytes of a module `spawn` takes.
pub const MAX_MODULE: usize = 16 << 20;
/// Most handles `spawn` passes.
pub const MAX_SPAWN_HANDLES: usize = 64;
/// Messages a channel holds before `chan_send` waits.
pub const CHANNEL_CAPACITY: usize = 16;

/// An error code a system call returns (negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// Not a handle of the caller, or a handle of the wrong kind.
    BadHandle = -1,
    /// A pointer and length outside the caller's memory.
    Fault = -2,
    /// The channel's other side is gone (and, for receive, it is empty).
    Closed = -3,
    /// An argument out of range (negative time, a message too long).
    Invalid = -4,
    /// Out of handles, memory or process ids.
    NoMemory = -5,
    /// The waited-for process trapped or failed to load.
    Trapped = -6,
    /// The waited-for process was killed.
    Killed = -7,
    /// The process is still running (`try_wait`).
    Running = -8,
    /// No file at the path, or no process of that id.
    NotFound = -9,
    /// The caller may not do it (kill that process).
    Denied = -10,
}

impl Errno {
    /// The value the guest sees.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<AccessError> for Errno {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Fault => Self::Fault,
            AccessError::TooLong => Self::Invalid,
        }
    }
}

/// How a call fails: an [`Errno`] for the guest, or a trap.
type Fail = super::Fail<Errno>;

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Self::Errno(e)
    }
}

/// The calls, by import name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Exit,
    Yield,
    Sleep,
    Now,
    Write,
    ChanCreate,
    ChanSend,
    ChanRecv,
    Close,
    Spawn,
    Wait,
    Kill,
    Detach,
    SpawnProgram,
    SpawnFile,
    TryWait,
    Pid,
    KillPid,
    Procs,
    Pipe,
}

use ValType::{I32, I64};

/// Every call: its name, parameters and results.
const CALLS: [(&str, Call, &[ValType], &[ValType]); 20] = [
    ("exit", Call::Exit, &[I32], &[]),
    ("yield", Call::Yield, &[], &[]),
    ("sleep", Call::Sleep, &[I64], &[I32]),
    ("now", Call::Now, &[], &[I64]),
    ("write", Call::Write, &[I32, I32], &[I32]),
    ("chan_create", Call::ChanCreate, &[I32], &[I32]),
    ("chan_send", Call::ChanSend, &[I32, I32, I32], &[I32]),
    ("chan_recv", Call::ChanRecv, &[I32, I32, I32], &[I32]),
    ("close", Call::Close, &[I32], &[I32]),
    ("spawn", Call::Spawn, &[I32, I32, I32, I32], &[I32]),
    ("wait", Call::Wait, &[I32], &[I32]),
    ("kill", Call::Kill, &[I32], &[I32]),
    ("detach", Call::Detach, &[I32], &[I32]),
    (
        "spawn_program",
        Call::SpawnProgram,
        &[I32, I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    ("spawn_file", Call::SpawnFile, &[I32, I32], &[I32]),
    ("try_wait", Call::TryWait, &[I32], &[I32]),
    ("pid", Call::Pid, &[I32], &[I32]),
    ("kill_pid", Call::KillPid, &[I32], &[I32]),
    ("procs", Call::Procs, &[I32, I32], &[I32]),
    ("pipe", Call::Pipe, &[I32], &[I32]),
];

/// `spawn_program` flag: hand down the caller's environment.
const INHERIT_ENV: i32 = 1;
/// `spawn_program` and `spawn_file` flag: no directory preopened for the
/// child.
const NO_FILES: i32 = 2;

/// The `vessel` interface.
pub(crate) struct Vessel;

impl<'k, 'h, P: Platform + SchedHal> Interface<'k, 'h, P> for Vessel {
    fn module(&self) -> &'static str {
        MODULE
    }

    fn link(&self, ctx: &Arc<Context<'k, 'h, P>>, name: &str) -> Option<Bound<'k>> {
        let &(_, call, params, results) = CALLS.iter().find(|(n, ..)| *n == name)?;
        let ty = FuncType {
            params: params.to_vec(),
            results: results.to_vec(),
        };
        let ctx = ctx.clone();
        Some((ty, Box::new(move |args| dispatch(&ctx, call, args))))
    }
}

/// What a successful call gives the guest.
enum Ret {
    Nothing,
    I32(i32),
    I64(i64),
}

/// Run `call` with `args` (already of its parameter types) for the process
/// of `ctx`: its results, or the trap that stops the process.
fn dispatch<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    call: Call,
    args: &[Val],
) -> Result<Option<Val>, HostTrap> {
    let i = |k: usize| match args.get(k) {
        Some(Val::I32(x)) => *x,
        _ => 0,
    };
    let r = match call {
        Call::Exit => Err(Fail::Trap(HostTrap::Exit(i(0)))),
        Call::Yield => ctx.yield_now().map(|()| Ret::Nothing).map_err(Fail::from),
        Call::Sleep => sleep(ctx, args).map(|()| Ret::I32(0)),
        Call::Now => Ok(Ret::I64(
            i64::try_from(ctx.now().as_nanos()).unwrap_or(i64::MAX),
        )),
        Call::Write => write(ctx, i(0), i(1)).map(Ret::I32),
        Call::ChanCreate => chan_create(ctx, i(0)).map(|()| Ret::I32(0)),
        Call::ChanSend => chan_send(ctx, i(0), i(1), i(2)).map(|()| Ret::I32(0)),
        Call::ChanRecv => chan_recv(ctx, i(0), i(1), i(2)).map(Ret::I32),
        Call::Close => close(ctx, i(0)).map(|()| Ret::I32(0)),
        Call::Spawn => spawn(ctx, (i(0), i(1)), (i(2), i(3)), None).map(Ret::I32),
        Call::SpawnProgram => {
            spawn(ctx, (i(0), i(1)), (i(2), i(3)), Some((i(4), i(5), i(6)))).map(Ret::I32)
        }
        Call::Wait => wait(ctx, i(0)).map(Ret::I32),
        Call::Kill => kill(ctx, i(0)).map(|()| Ret::I32(0)),
        Call::Detach => detach(ctx, i(0)).map(|()| Ret::I32(0)),
        Call::SpawnFile => spawn_file(ctx, i(0), i(1)).map(Ret::I32),
        Call::TryWait => try_wait(ctx, i(0)).map(Ret::I32),
        Call::Pid => pid(ctx, i(0)).map(Ret::I32),
        Call::KillPid => kill_pid(ctx, i(0)).map(|()| Ret::I32(0)),
        Call::Procs => procs(ctx, i(0), i(1)).map(Ret::I32),
        Call::Pipe => pipe(ctx, i(0)).map(|()| Ret::I32(0)),
    };
    match r {
        Ok(Ret::Nothing) => Ok(None),
        Ok(Ret::I32(v)) => Ok(Some(Val::I32(v))),
        Ok(Ret::I64(v)) => Ok(Some(Val::I64(v))),
        Err(Fail::Errno(e)) => Ok(Some(Val::I32(e.code()))),
        Err(Fail::Trap(t)) => Err(t),
    }
}

fn sleep<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, args: &[Val]) -> Result<(), Fail> {
    let ns = match args.first() {
        Some(Val::I64(x)) => *x,
        _ => 0,
    };
    let ns = u64::try_from(ns).map_err(|_| Errno::Invalid)?;
    Ok(ctx.sleep(Duration::from_nanos(ns))?)
}

fn write<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    ptr: i32,
    len: i32,
) -> Result<i32, Fail> {
    let bytes = uaccess::copy_in(ctx.memory(), ptr, len, MAX_MESSAGE)?;
    Console::write(ctx.kernel().hal(), &bytes);
    Ok(i32::try_from(bytes.len()).unwrap_or(i32::MAX))
}

fn chan_create<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, out: i32) -> Result<(), Fail> {
    uaccess::check(ctx.memory(), out, 8)?;
    let (tx, rx) = crate::proc::new_channel(ctx.kernel().hal(), CHANNEL_CAPACITY);
    let mut table = ctx.handles();
    let t = table
        .insert(Object::Sender(tx))
        .map_err(|_| Errno::NoMemory)?;
    let r = match table.insert(Object::Receiver(rx)) {
        Ok(r) => r,
        Err(_) => {
            let _ = table.remove(t);
            return Err(Errno::NoMemory.into());
        }
    };
    drop(table);
    put_pair(ctx, out, t.cast_unsigned(), r.cast_unsigned())
}

/// Write `a` and `b` as two little-endian `u32` at `out`, which the
/// caller checked before making them (INV-SYS-1: the memory cannot
/// shrink, so this cannot fail after the check).
fn put_pair<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    out: i32,
    a: u32,
    b: u32,
) -> Result<(), Fail> {
    let mut pair = [0u8; 8];
    pair[..4].copy_from_slice(&a.to_le_bytes());
    pair[4..].copy_from_slice(&b.to_le_bytes());
    uaccess::copy_out(ctx.memory(), out, &pair)?;
    Ok(())
}

fn chan_send<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    h: i32,
    ptr: i32,
    len: i32,
) -> Result<(), Fail> {
    let tx = ctx.handles().sender(h).map_err(|_| Errno::BadHandle)?;
    let msg = uaccess::copy_in(ctx.memory(), ptr, len, MAX_MESSAGE)?;
    // INV-HANDLES-2: the bytes are the sender's until received.
    let frames = msg.len().div_ceil(PAGE_SIZE) as u64;
    let charge = ctx
        .kernel()
        .vm()
        .hold_while(ctx.owner(), frames)
        .map_err(|_| Errno::NoMemory)?;
    let msg = Message::charged(msg, charge);
    let sent = ctx.block(async move { tx.send(msg).await.is_ok() })?;
    if sent {
        Ok(())
    } else {
        Err(Errno::Closed.into())
    }
}

fn chan_recv<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    h: i32,
    ptr: i32,
    cap: i32,
) -> Result<i32, Fail> {
    let rx = ctx.handles().receiver(h).map_err(|_| Errno::BadHandle)?;
    let cap = usize::try_from(uaccess::unsigned(cap)).map_err(|_| Errno::Invalid)?;
    uaccess::check(ctx.memory(), ptr, cap)?;
    let msg = ctx.block(async move { rx.recv().await.ok() })?;
    let msg = msg.ok_or(Errno::Closed)?.into_bytes();
    let n = msg.len().min(cap);
    uaccess::copy_out(ctx.memory(), ptr, &msg[..n])?;
    Ok(i32::try_from(msg.len()).unwrap_or(i32::MAX))
}

fn close<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, h: i32) -> Result<(), Fail> {
    let removed = ctx.handles().remove(h);
    removed.map(drop).map_err(|_| Errno::BadHandle.into())
}

/// `spawn`, and `spawn_program` when `argv` is `(ptr, len, flags)`.
fn spawn<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    (ptr, len): (i32, i32),
    (list, n): (i32, i32),
    argv: Option<(i32, i32, i32)>,
) -> Result<i32, Fail> {
    let program = match argv {
        // A child never has more of the file system than its parent.
        None => Program {
            no_files: ctx.program().no_files,
            mounts: ctx.program().mounts.clone(),
            ..Program::default()
        },
        Some(argv) => program_of(ctx, argv)?,
    };
    // The copy is kernel memory spent for the caller: charged to it until
    // the child holds its own charge for the bytes.
    let bytes = usize::try_from(uaccess::unsigned(len)).map_or(MAX_MODULE, |b| b.min(MAX_MODULE));
    let _copy = ctx
        .kernel()
        .vm()
        .hold_while(ctx.owner(), bytes.div_ceil(PAGE_SIZE) as u64)
        .map_err(|_| Errno::NoMemory)?;
    let module = uaccess::copy_in(ctx.memory(), ptr, len, MAX_MODULE)?;
    let count = usize::try_from(uaccess::unsigned(n)).map_err(|_| Errno::Invalid)?;
    if count > MAX_SPAWN_HANDLES {
        return Err(Errno::Invalid.into());
    }
    let raw = uaccess::copy_in(
        ctx.memory(),
        list,
        n.saturating_mul(4),
        MAX_SPAWN_HANDLES * 4,
    )?;
    let given = {
        let table = ctx.handles();
        raw.chunks_exact(4)
            .map(|c| {
                let h = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                table.get(h.cast_signed()).map_err(|_| Errno::BadHandle)
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let child = ctx
        .spawn_child(None, (module.into(), program), given, None)
        .map_err(|_| Errno::NoMemory)?;
    let claim = Object::Process(Claim::adopt(child.clone()));
    let inserted = ctx.handles().insert(claim);
    inserted.map_err(|_| {
        child.kill(KillReason::Request);
        Errno::NoMemory.into()
    })
}

/// The program `spawn_program` asks for: the NUL-terminated strings of
/// `argv` as arguments (none: the caller's name), and the caller's
/// environment and file system as `flags` say.
fn program_of<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    (ptr, len, flags): (i32, i32, i32),
) -> Result<Program, Fail> {
    if flags & !(INHERIT_ENV | NO_FILES) != 0 {
        return Err(Errno::Invalid.into());
    }
    let mut args = strings(ctx, ptr, len)?;
    let parent = ctx.program();
    if args.is_empty() {
        args.push(parent.args.first().cloned().unwrap_or_default());
    }
    Ok(Program {
        args,
        env: if flags & INHERIT_ENV != 0 {
            parent.env.clone()
        } else {
            Vec::new()
        },
        no_files: flags & NO_FILES != 0 || parent.no_files,
        mounts: parent.mounts.clone(),
    })
}

/// The NUL-terminated strings in the `len` bytes at `ptr` (at most
/// [`MAX_PROGRAM_BYTES`]).
fn strings<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    ptr: i32,
    len: i32,
) -> Result<Vec<Vec<u8>>, Fail> {
    let raw = uaccess::copy_in(ctx.memory(), ptr, len, MAX_PROGRAM_BYTES)?;
    if !raw.is_empty() && raw.last() != Some(&0) {
        return Err(Errno::Invalid.into());
    }
    let mut out: Vec<Vec<u8>> = raw.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    // The split leaves an empty piece after the last NUL.
    out.pop();
    Ok(out)
}

fn wait<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, h: i32) -> Result<i32, Fail> {
    let child = ctx.handles().process(h).map_err(|_| Errno::BadHandle)?;
    let status = ctx.block(async move { child.wait().await })?;
    ended(status)
}

/// What `wait` returns for a process that ended with `status`.
fn ended(status: ExitStatus) -> Result<i32, Fail> {
    match status {
        ExitStatus::Exited(code) => Ok(code),
        ExitStatus::Killed(_) => Err(Errno::Killed.into()),
        ExitStatus::Running => Err(Errno::Running.into()),
        ExitStatus::Trapped(_) | ExitStatus::Failed(_) => Err(Errno::Trapped.into()),
    }
}

fn try_wait<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, h: i32) -> Result<i32, Fail> {
    let child = ctx.handles().process(h).map_err(|_| Errno::BadHandle)?;
    ended(child.status())
}

fn pid<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, h: i32) -> Result<i32, Fail> {
    let pid = if h == -1 {
        ctx.process().pid()
    } else {
        ctx.handles()
            .process(h)
            .map_err(|_| Errno::BadHandle)?
            .pid()
    };
    Ok(i32::try_from(pid.0).unwrap_or(i32::MAX))
}

/// `spawn_file` flag: Ctrl-C on the console kills the child.
const FOREGROUND: u32 = 1;
/// Bytes of a `spawn_file` request.
const SPAWN_REQUEST: usize = 36;
/// Most bytes of a `spawn_file` path.
const MAX_PATH: usize = 4096;

fn spawn_file<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    req: i32,
    len: i32,
) -> Result<i32, Fail> {
    if usize::try_from(len).ok() != Some(SPAWN_REQUEST) {
        return Err(Errno::Invalid.into());
    }
    let raw = uaccess::copy_in(ctx.memory(), req, len, SPAWN_REQUEST)?;
    let w = |k: usize| {
        u32::from_le_bytes([raw[4 * k], raw[4 * k + 1], raw[4 * k + 2], raw[4 * k + 3]])
            .cast_signed()
    };
    let flags = w(8).cast_unsigned();
    if flags & !(FOREGROUND | NO_FILES.cast_unsigned()) != 0 {
        return Err(Errno::Invalid.into());
    }
    let path = uaccess::copy_in(ctx.memory(), w(0), w(1), MAX_PATH)?;
    if path.first() != Some(&b'/') {
        return Err(Errno::Invalid.into());
    }
    let mut args = strings(ctx, w(2), w(3))?;
    if args.is_empty() {
        args.push(path.clone());
    }
    let env = strings(ctx, w(4), w(5))?;
    let count = usize::try_from(w(7).cast_unsigned()).map_err(|_| Errno::Invalid)?;
    if count > 3 {
        return Err(Errno::Invalid.into());
    }
    let list = uaccess::copy_in(ctx.memory(), w(6), w(7).saturating_mul(4), 12)?;
    let given: Vec<u32> = list
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // Every descriptor must be open and not a directory before any is
    // copied (INV-SYS-1).
    for &fd in &given {
        match ctx.fds().get(fd).map(|f| f.object) {
            None | Some(FdObject::Dir { .. }) => return Err(Errno::BadHandle.into()),
            Some(_) => {}
        }
    }
    let (vm, owner) = (ctx.kernel().vm(), ctx.owner());
    let read = ctx
        .fs()
        .read_file(&path, MAX_MODULE as u64, ctx.kernel().wall_ns(), |size| {
            // The copy is kernel memory spent for the caller, as for `spawn`.
            let frames = size.div_ceil(PAGE_SIZE as u64);
            vm.hold_while(owner, frames).map_err(|_| FsError::NoSpace)
        });
    let (module, _copy) = read.map_err(|e| match e {
        FsError::NoSpace => Errno::NoMemory,
        FsError::NoEnt | FsError::NotDir | FsError::IsDir | FsError::Loop => Errno::NotFound,
        _ => Errno::Invalid,
    })?;
    let parent = ctx.program();
    let program = Program {
        args,
        env,
        no_files: flags & NO_FILES.cast_unsigned() != 0 || parent.no_files,
        mounts: parent.mounts.clone(),
    };
    let console = [FdObject::Stdin, FdObject::Stdout, FdObject::Stderr];
    let stdio = console.map(|object| Fd { object, flags: 0 });
    let mut stdio = stdio;
    for (slot, &fd) in stdio.iter_mut().zip(&given) {
        // Checked open above; nothing closes it in between (the caller is
        // in this call).
        if let Some(copy) = ctx.dup(fd) {
            *slot = copy;
        }
    }
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(&path);
    let name = core::str::from_utf8(name).unwrap_or("program");
    let child = ctx
        .spawn_child(
            Some(name),
            (module.into(), program),
            Vec::new(),
            Some(stdio),
        )
        .map_err(|_| Errno::NoMemory)?;
    if flags & FOREGROUND != 0 {
        child.set_foreground();
    }
    let claim = Object::Process(Claim::adopt(child.clone()));
    let inserted = ctx.handles().insert(claim);
    inserted.map_err(|_| {
        child.kill(KillReason::Request);
        Errno::NoMemory.into()
    })
}

fn kill_pid<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, pid: i32) -> Result<(), Fail> {
    let target = ctx
        .find(ProcessId(pid.cast_unsigned()))
        .ok_or(Errno::NotFound)?;
    let me = ctx.process();
    if Some(target.pid()) == me.parent() {
        return Err(Errno::Denied.into());
    }
    // Allowed: itself, its descendants, and its parent's descendants:
    // walk up from the target (each hop a live record, at most the table).
    let allowed: Vec<Pid> = core::iter::once(me.pid()).chain(me.parent()).collect();
    let mut at = Some(target.clone());
    for _ in 0..=crate::proc::MAX_PROCESSES {
        let Some(p) = at else { break };
        if allowed.contains(&p.pid()) {
            target.kill(KillReason::Request);
            return Ok(());
        }
        at = p.parent().and_then(|parent| ctx.find(parent));
    }
    Err(Errno::Denied.into())
}

/// Bytes of one `procs` record.
const PROC_RECORD: usize = 64;

fn procs<P: Platform + SchedHal>(
    ctx: &Context<'_, '_, P>,
    buf: i32,
    cap: i32,
) -> Result<i32, Fail> {
    let cap = usize::try_from(uaccess::unsigned(cap)).map_err(|_| Errno::Invalid)?;
    let mut all = ctx.processes();
    all.sort_by_key(|p| p.pid().0);
    let fit = all.len().min(cap / PROC_RECORD);
    let mut out = Vec::with_capacity(fit * PROC_RECORD);
    let vm = ctx.kernel().vm();
    for p in all.iter().take(fit) {
        let info = p.info();
        let state: u32 = match info.status {
            ExitStatus::Running if info.waiting => 1,
            ExitStatus::Running => 0,
            _ => 2,
        };
        let cpu = if info.slices == 0 {
            u32::MAX
        } else {
            u32::try_from(info.last_cpu).unwrap_or(u32::MAX)
        };
        let memory = vm.owner_frames(crate::mem::Owner::Process(info.pid)) * PAGE_SIZE as u64;
        out.extend_from_slice(&info.pid.0.to_le_bytes());
        out.extend_from_slice(&info.parent.map_or(0, |p| p.0).to_le_bytes());
        out.extend_from_slice(&state.to_le_bytes());
        out.extend_from_slice(&cpu.to_le_bytes());
        let ns = u64::try_from(info.cpu_time.as_nanos()).unwrap_or(u64::MAX);
        out.extend_from_slice(&ns.to_le_bytes());
        out.extend_from_slice(&memory.to_le_bytes());
        let mut name = [0u8; 32];
        let n = info.name.len().min(32);
        name[..n].copy_from_slice(&info.name.as_bytes()[..n]);
        out.extend_from_slice(&name);
    }
    uaccess::copy_out(ctx.memory(), buf, &out)?;
    Ok(i32::try_from(all.len()).unwrap_or(i32::MAX))
}

fn pipe<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, out: i32) -> Result<(), Fail> {
    uaccess::check(ctx.memory(), out, 8)?;
    let (rx, tx) = crate::proc::pipe::pipe(ctx.kernel().hal());
    let mut fds = ctx.fds();
    let fd = |object| Fd { object, flags: 0 };
    let r = fds
        .insert(fd(FdObject::PipeRead(rx)))
        .ok_or(Errno::NoMemory)?;
    let Some(w) = fds.insert(fd(FdObject::PipeWrite(tx))) else {
        fds.remove(r);
        return Err(Errno::NoMemory.into());
    };
    drop(fds);
    put_pair(ctx, out, r, w)
}

fn kill<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, h: i32) -> Result<(), Fail> {
    let child = ctx.handles().process(h).map_err(|_| Errno::BadHandle)?;
    child.kill(KillReason::Request);
    Ok(())
}

fn detach<P: Platform + SchedHal>(ctx: &Context<'_, '_, P>, h: i32) -> Result<(), Fail> {
    let child = ctx.handles().process(h).map_err(|_| Errno::BadHandle)?;
    if ctx.detach(&child) {
        Ok(())
    } else {
        Err(Errno::Invalid.into())
    }
}
