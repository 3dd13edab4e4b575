//! The system interface: the host functions processes import, all under
//! the module name [`MODULE`] (`"vessel"`), and the body every process
//! fiber runs ([`run_process`]).
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
//!
//! Results are `>= 0` on success, or a negative [`Errno`]. A handle is a
//! capability: an index into the caller's own table, so a process can use
//! only handles it created or was given; a bad handle or pointer is an
//! error code, never a kernel fault (pointers go through [`uaccess`]).
//! Waiting calls suspend the process's fiber (see [`crate::proc`]); a
//! process killed while it waits does not return from the call.
//!
//! Invariant INV-SYS-1: a system call that fails has changed nothing the
//! caller can see (no handle made, no byte written), except `chan_recv`,
//! which may have taken a message it then could not copy out (`Fault`).

mod uaccess;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use crate::hal::Platform;
use crate::kernel::MemError;
use crate::mem::{GapError, Owner, VmError};
use crate::proc::{
    Claim, ExitStatus, HandleTable, Inner, KillReason, LoadError, Message, Object, Process,
    SpawnOptions,
};
use crate::sched::SchedHal;
use crate::wasm::TrapKind;
use crate::wasm::module::{CompileError, FuncType, ImportKind, ValType};
use crate::wasm::vm::{CallError, Extern, HostTrap, InstantiateError, MemoryView, Store, Val};

/// The module name every system call is imported from.
pub const MODULE: &str = "vessel";

/// Most bytes one message may hold.
pub const MAX_MESSAGE: usize = 64 << 10;
/// Most bytes of a module `spawn` takes.
pub const MAX_MODULE: usize = 16 << 20;
/// Most handles `spawn` passes.
pub const MAX_SPAWN_HANDLES: usize = 64;
/// Messages a channel holds before `chan_send` waits.
pub const CHANNEL_CAPACITY: usize = 16;
/// Bytes of the fiber stack kept for host calls below wasm's budget.
const HOST_STACK_RESERVE: usize = 256 << 10;

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
}

impl Errno {
    /// The value the guest sees.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// What a process's system calls share.
pub(crate) struct SysCtx<'k, 'h, P: Platform + SchedHal> {
    scope: Arc<Inner<'k, 'h, P>>,
    proc: Arc<Process<'k>>,
    handles: spin::Mutex<HandleTable<'k>>,
    memory: spin::Once<MemoryView>,
    exit: spin::Mutex<Option<i32>>,
}

type SysResult = Result<i32, Errno>;

/// A system call's outcome as the host function returns it: a value for
/// the guest, or a trap when the process must stop (exit, killed).
fn ret(r: Result<SysResult, HostTrap>) -> Result<Vec<Val>, HostTrap> {
    let v = r?;
    Ok(vec![Val::I32(v.unwrap_or_else(Errno::code))])
}

impl<'k, 'h, P: Platform + SchedHal> SysCtx<'k, 'h, P> {
    fn mem(&self) -> Option<&MemoryView> {
        self.memory.get()
    }

    /// Wait for `fut` on the fiber; a kill ends the call with a trap.
    fn block<T: Send + 'k>(
        &self,
        fut: impl core::future::Future<Output = T> + Send + 'k,
    ) -> Result<T, HostTrap> {
        self.proc.block_on(fut).ok_or(HostTrap)
    }

    fn exit(&self, code: i32) -> HostTrap {
        *self.exit.lock() = Some(code);
        HostTrap
    }

    fn sleep(&self, ns: i64) -> Result<SysResult, HostTrap> {
        let Ok(ns) = u64::try_from(ns) else {
            return Ok(Err(Errno::Invalid));
        };
        let sleep = self.scope.exec.sleep(Duration::from_nanos(ns));
        self.block(sleep)?;
        Ok(Ok(0))
    }

    fn now(&self) -> i64 {
        i64::try_from(self.scope.exec.now().as_nanos()).unwrap_or(i64::MAX)
    }

    fn write(&self, ptr: i32, len: i32) -> SysResult {
        let bytes = uaccess::copy_in(self.mem(), ptr, len, MAX_MESSAGE)?;
        crate::hal::Console::write(self.scope.kernel.hal(), &bytes);
        Ok(i32::try_from(bytes.len()).unwrap_or(i32::MAX))
    }

    fn chan_create(&self, out: i32) -> SysResult {
        uaccess::check(self.mem(), out, 8)?;
        let (tx, rx) = crate::proc::new_channel(self.scope.kernel.hal(), CHANNEL_CAPACITY);
        let mut table = self.handles.lock();
        let t = table
            .insert(Object::Sender(tx))
            .map_err(|_| Errno::NoMemory)?;
        let r = match table.insert(Object::Receiver(rx)) {
            Ok(r) => r,
            Err(_) => {
                let _ = table.remove(t);
                return Err(Errno::NoMemory);
            }
        };
        drop(table);
        let mut pair = [0u8; 8];
        pair[..4].copy_from_slice(&t.to_le_bytes());
        pair[4..].copy_from_slice(&r.to_le_bytes());
        // Checked above; the memory cannot shrink (INV-SYS-1).
        uaccess::copy_out(self.mem(), out, &pair)?;
        Ok(0)
    }

    fn chan_send(&self, h: i32, ptr: i32, len: i32) -> Result<SysResult, HostTrap> {
        let tx = match self.handles.lock().sender(h) {
            Ok(tx) => tx,
            Err(_) => return Ok(Err(Errno::BadHandle)),
        };
        let msg = match uaccess::copy_in(self.mem(), ptr, len, MAX_MESSAGE) {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        // INV-HANDLES-2: the bytes are the sender's until received.
        let frames = msg.len().div_ceil(crate::hal::PAGE_SIZE) as u64;
        let charge = match self
            .scope
            .kernel
            .vm()
            .hold_while(Owner::Process(self.proc.pid()), frames)
        {
            Ok(c) => c,
            Err(_) => return Ok(Err(Errno::NoMemory)),
        };
        let msg = Message::charged(msg, charge);
        let sent = self.block(async move { tx.send(msg).await.is_ok() })?;
        Ok(if sent { Ok(0) } else { Err(Errno::Closed) })
    }

    fn chan_recv(&self, h: i32, ptr: i32, cap: i32) -> Result<SysResult, HostTrap> {
        let rx = match self.handles.lock().receiver(h) {
            Ok(rx) => rx,
            Err(_) => return Ok(Err(Errno::BadHandle)),
        };
        let Ok(cap) = usize::try_from(uaccess::unsigned(cap)) else {
            return Ok(Err(Errno::Invalid));
        };
        if let Err(e) = uaccess::check(self.mem(), ptr, cap) {
            return Ok(Err(e));
        }
        let Some(msg) = self.block(async move { rx.recv().await.ok() })? else {
            return Ok(Err(Errno::Closed));
        };
        let msg = msg.into_bytes();
        let n = msg.len().min(cap);
        if let Err(e) = uaccess::copy_out(self.mem(), ptr, &msg[..n]) {
            return Ok(Err(e));
        }
        Ok(Ok(i32::try_from(msg.len()).unwrap_or(i32::MAX)))
    }

    fn close(&self, h: i32) -> SysResult {
        self.handles
            .lock()
            .remove(h)
            .map(|_| 0)
            .map_err(|_| Errno::BadHandle)
    }

    fn spawn(&self, ptr: i32, len: i32, list: i32, n: i32) -> SysResult {
        if self.proc.live_children() >= crate::proc::MAX_CHILDREN {
            return Err(Errno::NoMemory);
        }
        // The copy is kernel memory spent for the caller: charged to it
        // until the child holds its own charge for the bytes.
        let bytes =
            usize::try_from(uaccess::unsigned(len)).map_or(MAX_MODULE, |b| b.min(MAX_MODULE));
        let _copy = self
            .scope
            .kernel
            .vm()
            .hold_while(
                Owner::Process(self.proc.pid()),
                bytes.div_ceil(crate::hal::PAGE_SIZE) as u64,
            )
            .map_err(|_| Errno::NoMemory)?;
        let module = uaccess::copy_in(self.mem(), ptr, len, MAX_MODULE)?;
        let count = usize::try_from(uaccess::unsigned(n)).map_err(|_| Errno::Invalid)?;
        if count > MAX_SPAWN_HANDLES {
            return Err(Errno::Invalid);
        }
        let raw = uaccess::copy_in(self.mem(), list, n.saturating_mul(4), MAX_SPAWN_HANDLES * 4)?;
        let given = {
            let table = self.handles.lock();
            raw.chunks_exact(4)
                .map(|c| {
                    let h = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    table.get(h.cast_signed()).map_err(|_| Errno::BadHandle)
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let name = self.proc.name();
        let now = crate::hal::Clock::now(self.scope.kernel.hal());
        let options = self.proc.child_options(self.scope.defaults, now);
        let child = self
            .scope
            .spawn(&name, module.into(), given, options, Some(self.proc.pid()))
            .map_err(|_| Errno::NoMemory)?;
        self.proc.adopt(&child);
        let claim = Object::Process(Claim::adopt(child.clone()));
        let inserted = self.handles.lock().insert(claim);
        inserted.map_err(|_| {
            child.kill(KillReason::Request);
            Errno::NoMemory
        })
    }

    fn detach(&self, h: i32) -> SysResult {
        let child = self
            .handles
            .lock()
            .process(h)
            .map_err(|_| Errno::BadHandle)?;
        if self.proc.detach(&child) {
            Ok(0)
        } else {
            Err(Errno::Invalid)
        }
    }

    fn wait(&self, h: i32) -> Result<SysResult, HostTrap> {
        let child = match self.handles.lock().process(h) {
            Ok(p) => p,
            Err(_) => return Ok(Err(Errno::BadHandle)),
        };
        let status = self.block(async move { child.wait().await })?;
        Ok(match status {
            ExitStatus::Exited(code) => Ok(code),
            ExitStatus::Killed(_) => Err(Errno::Killed),
            ExitStatus::Running | ExitStatus::Trapped(_) | ExitStatus::Failed(_) => {
                Err(Errno::Trapped)
            }
        })
    }

    fn kill(&self, h: i32) -> SysResult {
        let child = self
            .handles
            .lock()
            .process(h)
            .map_err(|_| Errno::BadHandle)?;
        child.kill(KillReason::Request);
        Ok(0)
    }

    /// The host function for import `name`, if it is a system call.
    fn import(self: &Arc<Self>, store: &mut Store<'k, 'h, P>, name: &str) -> Option<Extern> {
        use ValType::{I32, I64};
        let ty = |params: &[ValType], results: &[ValType]| FuncType {
            params: params.to_vec(),
            results: results.to_vec(),
        };
        let c = self.clone();
        let i = |a: &[Val], k: usize| match a.get(k) {
            Some(Val::I32(x)) => *x,
            _ => 0,
        };
        let (t, f): (FuncType, Box<crate::wasm::vm::TrappingHostFn<'k>>) = match name {
            "exit" => (ty(&[I32], &[]), Box::new(move |a| Err(c.exit(i(a, 0))))),
            "yield" => (
                ty(&[], &[]),
                Box::new(move |_| {
                    c.proc.suspend(crate::proc::Request::Yield);
                    if c.proc.killed().is_some() {
                        Err(HostTrap)
                    } else {
                        Ok(Vec::new())
                    }
                }),
            ),
            "sleep" => (
                ty(&[I64], &[I32]),
                Box::new(move |a| {
                    let ns = match a.first() {
                        Some(Val::I64(x)) => *x,
                        _ => 0,
                    };
                    ret(c.sleep(ns))
                }),
            ),
            "now" => (
                ty(&[], &[I64]),
                Box::new(move |_| Ok(vec![Val::I64(c.now())])),
            ),
            "write" => (
                ty(&[I32, I32], &[I32]),
                Box::new(move |a| ret(Ok(c.write(i(a, 0), i(a, 1))))),
            ),
            "chan_create" => (
                ty(&[I32], &[I32]),
                Box::new(move |a| ret(Ok(c.chan_create(i(a, 0))))),
            ),
            "chan_send" => (
                ty(&[I32, I32, I32], &[I32]),
                Box::new(move |a| ret(c.chan_send(i(a, 0), i(a, 1), i(a, 2)))),
            ),
            "chan_recv" => (
                ty(&[I32, I32, I32], &[I32]),
                Box::new(move |a| ret(c.chan_recv(i(a, 0), i(a, 1), i(a, 2)))),
            ),
            "close" => (
                ty(&[I32], &[I32]),
                Box::new(move |a| ret(Ok(c.close(i(a, 0))))),
            ),
            "spawn" => (
                ty(&[I32, I32, I32, I32], &[I32]),
                Box::new(move |a| ret(Ok(c.spawn(i(a, 0), i(a, 1), i(a, 2), i(a, 3))))),
            ),
            "wait" => (ty(&[I32], &[I32]), Box::new(move |a| ret(c.wait(i(a, 0))))),
            "kill" => (
                ty(&[I32], &[I32]),
                Box::new(move |a| ret(Ok(c.kill(i(a, 0))))),
            ),
            "detach" => (
                ty(&[I32], &[I32]),
                Box::new(move |a| ret(Ok(c.detach(i(a, 0))))),
            ),
            _ => return None,
        };
        store.host_func_boxed(t, f).ok().map(Extern::Func)
    }

    /// The status a trap means for this process.
    fn status_of(&self, kind: TrapKind) -> ExitStatus {
        if let Some(code) = *self.exit.lock() {
            return ExitStatus::Exited(code);
        }
        match (kind, self.proc.killed()) {
            (TrapKind::Host | TrapKind::Interrupted, Some(r)) => ExitStatus::Killed(r),
            (kind, _) => ExitStatus::Trapped(kind),
        }
    }
}

/// The body of a process's fiber: load `module` into a fresh store charged
/// to the process, link its system-call imports, run its `_start` (or
/// `main`) export, and return how it ended. Everything the process owns
/// (store, handles) is dropped before this returns (INV-PROC-2).
pub(crate) fn run_process<'k, 'h, P: Platform + SchedHal>(
    scope: &Arc<Inner<'k, 'h, P>>,
    proc: &Arc<Process<'k>>,
    module: &[u8],
    handles: Vec<Object<'k>>,
) -> ExitStatus {
    let ctx = Arc::new(SysCtx {
        scope: scope.clone(),
        proc: proc.clone(),
        handles: spin::Mutex::new(HandleTable::with(handles)),
        memory: spin::Once::new(),
        exit: spin::Mutex::new(None),
    });
    let status = run_in_store(&ctx, proc.options(), module);
    // The store is gone; drop the handles now, not when the last clone
    // of the context goes (INV-PROC-2).
    ctx.handles.lock().clear();
    status
}

fn run_in_store<'k, 'h, P: Platform + SchedHal>(
    ctx: &Arc<SysCtx<'k, 'h, P>>,
    options: SpawnOptions,
    bytes: &[u8],
) -> ExitStatus {
    let proc = &ctx.proc;
    let budget = options.stack.saturating_sub(HOST_STACK_RESERVE);
    let Ok(mut store) = Store::new(ctx.scope.kernel, budget) else {
        return ExitStatus::Failed(LoadError::Isa);
    };
    store.set_memory_owner(Owner::Process(proc.pid()));
    // Debuggers and profilers name its code `<process>!<function>`.
    store.set_module_name(&proc.name());
    store.interrupt().set_hook(proc.hook());
    proc.attach_interrupt(store.interrupt());
    let module = match store.compile(bytes) {
        Ok(m) => m,
        Err(CompileError::OverBudget { .. } | CompileError::MetadataOverBudget { .. }) => {
            return ExitStatus::Failed(LoadError::OutOfMemory);
        }
        Err(CompileError::TooLarge { .. }) => return ExitStatus::Failed(LoadError::TooLarge),
        Err(CompileError::Interrupted) => return ctx.status_of(TrapKind::Interrupted),
        Err(e) => return ExitStatus::Failed(LoadError::Module(e.offset().unwrap_or(0))),
    };
    let mut imports = Vec::new();
    for imp in &module.info.imports {
        if imp.module != MODULE || !matches!(imp.kind, ImportKind::Func(_)) {
            return ExitStatus::Failed(LoadError::Link);
        }
        match ctx.import(&mut store, &imp.name) {
            Some(f) => imports.push((imp.name.clone(), f)),
            None => return ExitStatus::Failed(LoadError::Link),
        }
    }
    let resolve = |m: &str, n: &str| {
        (m == MODULE)
            .then(|| imports.iter().find(|(name, _)| name == n))
            .flatten()
            .map(|(_, f)| f.clone())
    };
    // The start function's system calls see the memory too.
    let mut attach = |store: &Store<'k, 'h, P>, inst| {
        // SAFETY: the view goes into `ctx`, used only by the host functions
        // of this store, which run only while it lives (INV-VM-7).
        if let Some(view) = unsafe { store.memory_view(inst, 0) } {
            ctx.memory.call_once(|| view);
        }
    };
    let inst = match store.instantiate_then(&module, &resolve, &mut attach) {
        Ok(i) => i,
        Err(InstantiateError::Start(CallError::Trap(t))) => return ctx.status_of(t.kind),
        Err(
            InstantiateError::IncompatibleImport { .. } | InstantiateError::UnknownImport { .. },
        ) => {
            return ExitStatus::Failed(LoadError::Link);
        }
        Err(e) => return ExitStatus::Failed(instantiate_failure(&e)),
    };
    let entry = ["_start", "main"]
        .iter()
        .find_map(|n| match store.export(inst, n) {
            Some(Extern::Func(f)) if f.ty().params.is_empty() => Some(f),
            _ => None,
        });
    let Some(entry) = entry else {
        return ExitStatus::Failed(LoadError::NoEntry);
    };
    match store.invoke(&entry, &[]) {
        Ok(vals) => match vals.first() {
            Some(Val::I32(code)) => ExitStatus::Exited(*code),
            _ => ExitStatus::Exited(0),
        },
        Err(CallError::Trap(t)) => ctx.status_of(t.kind),
        Err(_) => ExitStatus::Failed(LoadError::Instantiate),
    }
}

/// The [`LoadError`] of a failed instantiation: running out of memory or of
/// virtual space is told apart from a module that cannot be set up at all.
fn instantiate_failure(e: &InstantiateError) -> LoadError {
    match e {
        InstantiateError::Memory(MemError::Vm(VmError::Placement(GapError::Exhausted))) => {
            LoadError::AddressSpace
        }
        InstantiateError::Memory(
            MemError::Vm(VmError::OutOfFrames | VmError::LimitExceeded) | MemError::Frames(_),
        ) => LoadError::OutOfMemory,
        _ => LoadError::Instantiate,
    }
}
