//! Processes: a wasm instance with its own memory owner, limits, handles
//! and exit status, running on its own fiber as a task of the executor.
//!
//! [`run`] opens a process *scope* over a kernel and an executor: inside
//! it, [`Procs::spawn`] starts processes (so does the `spawn` system call,
//! [`crate::sys`]); when the scope's main future ends, every process still
//! running is killed and awaited, so nothing a process borrows (the kernel)
//! is freed under it.
//!
//! A process runs on a fiber ([`crate::sched::fiber`]) driven by one
//! executor task ([`process`]). A host call that must wait (sleep, channel
//! receive, wait for a child) hands a future to the task and suspends the
//! fiber; the CPU runs other tasks until the future completes. Timer
//! interrupts advance the kernel's epoch; JIT code checks it at function
//! entries and loop headers ([`crate::wasm::interrupt`]) and a process past
//! its quantum yields. Killing a process (by request or by its deadline)
//! makes its next check, or its pending wait, end it.
//!
//! Invariants:
//! - INV-PROC-1 (scope): every process task is spawned with
//!   [`crate::sched::Handle::spawn_unchecked`] and awaited by [`run`]
//!   before it returns, and no process task is ever cancelled, so the
//!   kernel a process borrows outlives it (INV-TASK-5).
//! - INV-PROC-2 (release): a process's store (linear memories, code), its
//!   handle table and its fiber stack are dropped before its exit status is
//!   published, so whoever sees the status sees every frame returned to the
//!   frame allocator and every channel end it held closed.
//! - INV-PROC-3 (accounting): a process's linear memories and fiber stack
//!   are charged to `Owner::Process(pid)` under its memory limit.
//! - INV-PROC-4 (parents): a process spawned through the `spawn` system
//!   call gets a memory limit no larger than its parent's and a deadline
//!   no later than its parent's, its charges count against its parent's
//!   limit too (`mem` INV-VM-8), and it is killed ([`KillReason::Parent`])
//!   when its parent ends, whatever the reason, unless its parent detached
//!   it (the `detach` system call); so is its own subtree.
//! - INV-PROC-5 (reaping): a process is in its scope's table ([`Pid`]s
//!   name slots with a generation, `table` INV-TABLE-1) from its spawn
//!   until it has ended and nothing holds it: a process the scope spawned
//!   is held until [`Procs::reap`], a child while a handle names it. Once
//!   out, nothing of it is left in the kernel but what those who still
//!   hold its record (a handle being dropped, a waiter) keep of it.
//! - INV-PROC-6 (stack pool): the fiber stack of a process that finished
//!   goes back to its scope's pool, charged to the kernel, while the pool
//!   holds fewer than [`POOLED_STACKS`] and at most a 64th of RAM; a
//!   spawn takes a pooled stack of its length first, charged to the new
//!   process (refused, as a new stack would be, past its limit). The pool
//!   is released with its scope. A stack is never in the pool and in use.

mod context;
pub mod debug;
mod fds;
mod handles;
mod load;
pub(crate) mod pipe;
mod process;
mod table;
mod tty;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

pub(crate) use context::Context;
pub use fds::MAX_FDS;
pub(crate) use fds::{Fd, FdObject, FdTable};
pub(crate) use handles::HandleTable;
pub use handles::{
    Claim, HandleError, KernelIrqs, MAX_HANDLES, Message, MsgReceiver, MsgSender, Object,
    new_channel,
};
pub(crate) use load::{Bound, Interface, Interfaces};
pub use process::ProcInfo;
pub use process::Process;

use crate::hal::Platform;
use crate::kernel::Kernel;
use crate::mem::ProcessId;
use crate::sched::fiber::KernelStack;
use crate::sched::{Executor, Handle, JoinHandle, SchedError, SchedHal};
use crate::wasm::TrapKind;
use table::{Table, TableError};

/// A process id: a slot of its scope's table and that slot's generation,
/// so a pid names one process ever, even once its slot is reused
/// (INV-TABLE-1).
pub type Pid = ProcessId;

/// A scope's process table: the processes it runs and those ended but not
/// yet reaped.
pub(crate) type ProcTable<'k> = spin::Mutex<Table<Arc<Process<'k>>>>;

/// How a process ended (or that it has not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Still running.
    Running,
    /// It called `exit(code)`, or its entry function returned (`code` is
    /// its `i32` result, else 0).
    Exited(i32),
    /// Its code trapped.
    Trapped(TrapKind),
    /// It was killed.
    Killed(KillReason),
    /// It never ran: its module or its set-up failed.
    Failed(LoadError),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Running => f.write_str("running"),
            Self::Exited(c) => write!(f, "exited {c}"),
            Self::Trapped(k) => write!(f, "trapped: {}", k.message()),
            Self::Killed(r) => write!(f, "killed: {r}"),
            Self::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// Why a process was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillReason {
    /// [`Procs::kill`].
    Request,
    /// Its deadline passed.
    Deadline,
    /// The scope ended while it ran.
    Shutdown,
    /// The process that spawned it ended (INV-PROC-4).
    Parent,
}

impl fmt::Display for KillReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Request => "by request",
            Self::Deadline => "deadline",
            Self::Shutdown => "shutdown",
            Self::Parent => "its parent ended",
        })
    }
}

/// Most processes one scope holds at once, running or ended and not yet
/// reaped.
pub const MAX_PROCESSES: usize = table::SLOTS;
/// Most live children one process has (`spawn` returns -5 past it).
pub const MAX_CHILDREN: usize = 64;

/// Why a process could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The module did not validate or compile; the byte offset.
    Module(u64),
    /// The module is valid but uses what this machine cannot run (SIMD on
    /// a CPU without a vector unit): what, and the byte offset.
    Unsupported {
        /// What is not supported.
        what: &'static str,
        /// Byte offset of its first use in the module.
        at: u64,
    },
    /// The host ISA cannot be compiled for.
    Isa,
    /// An import is not a system call of the right type.
    Link,
    /// Memories, tables or segments could not be set up (a segment out of
    /// bounds, a limit above what the runtime supports).
    Instantiate,
    /// Its memory, tables or code could not be committed: the owner's
    /// limit or the machine's free frames ran out.
    OutOfMemory,
    /// No room is left in the kernel's virtual window for its memories.
    AddressSpace,
    /// A function would take more memory to compile than any may
    /// (`wasm::budget::MAX_FUNCTION_ESTIMATE`).
    TooLarge,
    /// No exported `_start` or `main` function without parameters.
    NoEntry,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Module(at) => write!(f, "invalid module at byte {at:#x}"),
            Self::Unsupported { what, at } => write!(f, "unsupported at byte {at:#x}: {what}"),
            Self::Isa => f.write_str("unsupported ISA"),
            Self::Link => f.write_str("unknown or mistyped import"),
            Self::Instantiate => f.write_str("cannot instantiate"),
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::AddressSpace => f.write_str("kernel address space exhausted"),
            Self::TooLarge => f.write_str("a function is too large to compile"),
            Self::NoEntry => f.write_str("no `_start` or `main` export"),
        }
    }
}

/// What a program starts with besides its module: its arguments, its
/// environment (WASI `args_get`, `environ_get`) and its preopened
/// directories.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    /// Its arguments, the first its name.
    pub args: Vec<Vec<u8>>,
    /// Its environment, `KEY=VALUE` each.
    pub env: Vec<Vec<u8>>,
    /// Withhold the file system: no directory is preopened for it.
    pub no_files: bool,
    /// Host directories preopened for it besides the tmpfs root `/`, in
    /// order (descriptors 4, 5, ...; a mount at `/` takes the root's
    /// place at 3). A child started by `spawn` gets its parent's.
    pub mounts: Vec<Mount>,
}

/// A host directory mounted for a program (hostfs, through the HAL's
/// [`crate::hal::HostFiles`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mount {
    /// The path it is preopened as (WASI `fd_prestat_dir_name`).
    pub guest: Vec<u8>,
    /// Which of the platform's host directories
    /// ([`crate::hal::HostFiles::host_root`]).
    pub host: u32,
}

/// Most bytes of a program's arguments and environment together, with a
/// terminating NUL each.
pub const MAX_PROGRAM_BYTES: usize = 1 << 20;

impl Program {
    /// Bytes of its arguments, environment and mount paths, with a NUL
    /// each.
    pub fn bytes(&self) -> usize {
        let mounts = self.mounts.iter().map(|m| &m.guest);
        self.args
            .iter()
            .chain(&self.env)
            .chain(mounts)
            .map(|s| s.len() + 1)
            .sum()
    }
}

/// Per-process settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpawnOptions {
    /// CPU time a process runs before it yields to others.
    pub quantum: Duration,
    /// Kill the process this long after it was spawned (`None`: never).
    pub deadline: Option<Duration>,
    /// Most 4 KiB frames its memories and stack may hold.
    pub memory_limit: u64,
    /// Bytes of its fiber stack (a guard page below it).
    pub stack: usize,
}

impl SpawnOptions {
    /// The defaults: a 10 ms quantum, no deadline, a 256 MiB memory limit,
    /// a 2 MiB stack.
    pub const DEFAULT: Self = Self {
        quantum: Duration::from_millis(10),
        deadline: None,
        memory_limit: (256 << 20) / 4096,
        stack: 2 << 20,
    };
}

impl Default for SpawnOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why [`Procs::spawn`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// The scope is ending; no new process starts.
    ShuttingDown,
    /// The process ids ran out.
    NoPid,
    /// Its module's bytes or its stack do not fit its memory limit, the
    /// machine's free frames or the kernel's window.
    NoMemory,
    /// The scope runs as many processes as it may ([`Procs::limit`]).
    TooMany,
    /// Its arguments and environment pass [`MAX_PROGRAM_BYTES`].
    ArgsTooLarge,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ShuttingDown => "the process scope is shutting down",
            Self::NoPid => "out of process ids",
            Self::NoMemory => "out of memory for the module or the stack",
            Self::TooMany => "too many processes",
            Self::ArgsTooLarge => "arguments and environment too large",
        })
    }
}

impl core::error::Error for SpawnError {}

/// What every process of a scope shares.
pub(crate) struct Inner<'k, 'h, P: Platform + SchedHal> {
    pub(crate) kernel: &'k Kernel<'h, P>,
    pub(crate) exec: Handle<P>,
    pub(crate) defaults: SpawnOptions,
    /// The system interfaces its processes link against.
    interfaces: Interfaces<'k, 'h, P>,
    /// The file system its processes share (preopened as `/`).
    pub(crate) fs: crate::fs::tmpfs::Tmpfs,
    procs: Arc<ProcTable<'k>>,
    tasks: spin::Mutex<Tasks>,
    closed: core::sync::atomic::AtomicBool,
    /// The most processes the table may hold (at most [`MAX_PROCESSES`]).
    max_live: AtomicUsize,
    /// Fiber stacks of ended processes, charged to the kernel, for the
    /// next spawns (INV-PROC-6).
    stacks: spin::Mutex<Vec<KernelStack<'k, P>>>,
    /// The console's line discipline, once turned on.
    pub(crate) tty: tty::Tty<'k>,
}

/// Most fiber stacks a scope keeps for reuse.
const POOLED_STACKS: usize = 16;

/// The tasks of a scope's processes and their watchdogs, with those that
/// finished pruned now and then, so the list holds about as many as run.
struct Tasks {
    list: Vec<JoinHandle<()>>,
    /// Prune when the list reaches this length.
    prune_at: usize,
}

impl Tasks {
    const MIN_PRUNE: usize = 64;

    fn push(&mut self, task: JoinHandle<()>) {
        self.list.push(task);
        if self.list.len() >= self.prune_at {
            // A finished task's future has been dropped (INV-TASK-4), so
            // its handle is no longer needed to await it (INV-PROC-1).
            self.list.retain(|t| !t.is_finished());
            self.prune_at = (self.list.len() * 2).max(Self::MIN_PRUNE);
        }
    }
}

/// A handle on a process scope, passed to [`run`]'s main function.
pub struct Procs<'k, 'h, P: Platform + SchedHal> {
    pub(crate) inner: Arc<Inner<'k, 'h, P>>,
}

impl<P: Platform + SchedHal> Clone for Procs<'_, '_, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// Run `main` in a process scope over `kernel` on the calling CPU, which
/// becomes a worker of `exec` until it returns (other CPUs should run
/// [`Executor::run_worker`]). When `main`'s future ends, every process
/// still running is killed ([`KillReason::Shutdown`]) and every process
/// task is awaited (INV-PROC-1).
///
/// # Errors
/// [`SchedError`] when the calling CPU cannot be a worker.
pub fn run<'k, 'h, P, F, Fut>(
    kernel: &'k Kernel<'h, P>,
    exec: &Executor<'h, P>,
    defaults: SpawnOptions,
    main: F,
) -> Result<Fut::Output, SchedError>
where
    P: Platform + SchedHal,
    F: FnOnce(Procs<'k, 'h, P>) -> Fut,
    Fut: Future,
{
    let procs = Procs {
        inner: Arc::new(Inner {
            kernel,
            exec: exec.handle(),
            defaults,
            interfaces: crate::sys::interfaces(),
            fs: crate::fs::tmpfs::Tmpfs::new(tmpfs_capacity(kernel), kernel.wall_ns()),
            procs: Arc::new(spin::Mutex::new(Table::new())),
            tasks: spin::Mutex::new(Tasks {
                list: Vec::new(),
                prune_at: Tasks::MIN_PRUNE,
            }),
            closed: core::sync::atomic::AtomicBool::new(false),
            max_live: AtomicUsize::new(MAX_PROCESSES),
            stacks: spin::Mutex::new(Vec::new()),
            tty: tty::Tty::new(handles::KernelIrqs::new(kernel.hal())),
        }),
    };
    let scope = procs.clone();
    exec.run_until(async move {
        let out = main(procs).await;
        scope.close().await;
        out
    })
}

/// The bytes a scope's tmpfs may hold: a quarter of the machine's RAM,
/// and of the kernel heap where that is a fixed region.
fn tmpfs_capacity<P: Platform>(kernel: &Kernel<'_, P>) -> u64 {
    let ram = kernel.frames().total_frames() * crate::hal::PAGE_SIZE as u64 / 4;
    // File data lives on the kernel heap, and a growing file may hold up
    // to twice its bytes while it grows: where the heap is a fixed region,
    // a quarter of it at most, so a full tmpfs leaves the kernel its heap.
    kernel
        .hal()
        .heap_bytes()
        .map_or(ram, |heap| ram.min(heap / 4))
}

impl<'k, 'h, P: Platform + SchedHal> Procs<'k, 'h, P> {
    /// Start a process running `module` (a wasm binary), named `name`,
    /// holding `handles` as its handles `0..n`. It runs until it exits,
    /// traps, is killed or passes `options.deadline`; its status then
    /// shows in [`Procs::info`] and [`Procs::wait`] until [`Procs::reap`]
    /// takes it out of the table.
    ///
    /// # Errors
    /// [`SpawnError`]; a module that does not load is not an error here:
    /// the process ends with [`ExitStatus::Failed`].
    pub fn spawn(
        &self,
        name: &str,
        module: Arc<[u8]>,
        handles: Vec<Object<'k>>,
        options: SpawnOptions,
    ) -> Result<Pid, SpawnError> {
        self.spawn_program(name, module, handles, options, Program::default())
    }

    /// [`Procs::spawn`] with the arguments and environment `program`.
    ///
    /// # Errors
    /// As [`Procs::spawn`]; [`SpawnError::ArgsTooLarge`].
    pub fn spawn_program(
        &self,
        name: &str,
        module: Arc<[u8]>,
        handles: Vec<Object<'k>>,
        options: SpawnOptions,
        program: Program,
    ) -> Result<Pid, SpawnError> {
        // The scope holds the record until `reap` (INV-PROCESS-5).
        self.inner
            .spawn(
                name,
                (module, program),
                (handles, Stdio::new(&self.inner, None)),
                options,
                None,
            )
            .map(|p| p.pid())
    }

    /// A handle naming `pid`, to pass to processes this scope spawns (they
    /// may then `wait` for it or `kill` it); `None` when no such process
    /// is in the table. While the handle lives the record stays
    /// (INV-PROCESS-5).
    pub fn claim(&self, pid: Pid) -> Option<Object<'k>> {
        let p = self.inner.find(pid)?;
        p.hold();
        Some(Object::Process(handles::Claim::adopt(p)))
    }

    /// Kill `pid` (no effect on a process that has ended). Returns whether
    /// such a process is in the table.
    pub fn kill(&self, pid: Pid) -> bool {
        match self.inner.find(pid) {
            Some(p) => {
                p.kill(KillReason::Request);
                true
            }
            None => false,
        }
    }

    /// Wait until `pid` has ended and return its status (`None`: no such
    /// process in the table).
    pub async fn wait(&self, pid: Pid) -> Option<ExitStatus> {
        let p = self.inner.find(pid)?;
        Some(p.wait().await)
    }

    /// Wait until `pid`, a process this scope spawned, has ended, take it
    /// out of the table and return its last row. Its pid then names
    /// nothing, and its slot is free for a later process (with a new pid).
    /// `None`: no such process, or not one spawned by [`Procs::spawn`]
    /// (a process's children are reaped when it lets go of them).
    pub async fn reap(&self, pid: Pid) -> Option<ProcInfo> {
        let p = self.inner.find(pid)?;
        if !p.reaped_by_scope() {
            return None;
        }
        p.wait().await;
        let info = p.info();
        p.let_go_by_scope();
        Some(info)
    }

    /// Every process in the table (running, or ended and not reaped), by
    /// slot.
    pub fn info(&self) -> Vec<ProcInfo> {
        let procs: Vec<_> = self.inner.procs.lock().iter().cloned().collect();
        procs.iter().map(|p| p.info()).collect()
    }

    /// Turn the console's line discipline on for this scope's processes
    /// and feed it console input (`tty`): a future that runs until the
    /// input ends, for the caller to poll beside its own work and drop
    /// when done.
    pub async fn console_pump(&self) {
        self.inner.pump_console().await;
    }

    /// The file system the scope's processes share (preopened as `/`).
    pub fn fs(&self) -> &crate::fs::tmpfs::Tmpfs {
        &self.inner.fs
    }

    /// Processes in the table (running, or ended and not reaped).
    pub fn count(&self) -> usize {
        self.inner.procs.lock().len()
    }

    /// The kernel.
    pub fn kernel(&self) -> &'k Kernel<'h, P> {
        self.inner.kernel
    }

    /// The executor's handle (spawn helper tasks, sleep, time).
    pub fn exec(&self) -> &Handle<P> {
        &self.inner.exec
    }

    /// The default options of this scope.
    pub fn defaults(&self) -> SpawnOptions {
        self.inner.defaults
    }

    /// Let the table hold at most `n` processes (and at most
    /// [`MAX_PROCESSES`]); a spawn past it is [`SpawnError::TooMany`].
    /// Processes already in it are not affected.
    pub fn limit(&self, n: usize) {
        self.inner
            .max_live
            .store(n.min(MAX_PROCESSES), Ordering::SeqCst);
    }

    /// End the scope: refuse new processes, kill the running ones and await
    /// every process task (INV-PROC-1).
    async fn close(&self) {
        self.inner
            .closed
            .store(true, core::sync::atomic::Ordering::SeqCst);
        let procs: Vec<_> = self.inner.procs.lock().iter().cloned().collect();
        for p in &procs {
            p.kill(KillReason::Shutdown);
        }
        drop(procs);
        loop {
            let task = self.inner.tasks.lock().list.pop();
            match task {
                // A process task is never cancelled (INV-PROC-1), so this
                // returns when its future has been dropped.
                Some(t) => {
                    let _ = t.await;
                }
                None => break,
            }
        }
    }
}

/// Descriptors a spawn hands a child as its standard input, output and
/// error, each holding what it names open (`fds` INV-FDS-2) until the
/// child's descriptor table takes them ([`Stdio::take`]); released if it
/// never does.
pub(crate) struct Stdio<'k, 'h, P: Platform + SchedHal> {
    fds: Option<[Fd<'k>; 3]>,
    scope: Arc<Inner<'k, 'h, P>>,
}

impl<'k, 'h, P: Platform + SchedHal> Stdio<'k, 'h, P> {
    /// `fds` (each already held open for the child), or the console.
    pub(crate) fn new(scope: &Arc<Inner<'k, 'h, P>>, fds: Option<[Fd<'k>; 3]>) -> Self {
        Self {
            fds,
            scope: scope.clone(),
        }
    }

    /// The descriptors, now the taker's to close.
    pub(crate) fn take(&mut self) -> Option<[Fd<'k>; 3]> {
        self.fds.take()
    }
}

impl<P: Platform + SchedHal> Drop for Stdio<'_, '_, P> {
    fn drop(&mut self) {
        for fd in self.fds.take().into_iter().flatten() {
            if let Some(node) = fd.object.node() {
                self.scope.release(node);
            }
        }
    }
}

impl<'k, 'h, P: Platform + SchedHal> Inner<'k, 'h, P> {
    /// Hold `node` open once more (for a new descriptor: INV-FDS-2).
    pub(crate) fn retain(&self, node: crate::fs::Node) {
        match node {
            crate::fs::Node::Tmp(ino) => self.fs.retain(ino),
            crate::fs::Node::Host(handle) => self.kernel.hal().host_retain(handle),
        }
    }

    /// Let go of `node`, held for a descriptor that was taken out of a
    /// table (INV-FDS-2).
    pub(crate) fn release(&self, node: crate::fs::Node) {
        match node {
            crate::fs::Node::Tmp(ino) => self.fs.close(ino),
            crate::fs::Node::Host(handle) => self.kernel.hal().host_close(handle),
        }
    }

    /// Every process in the table, ended or not.
    pub(crate) fn all(&self) -> Vec<Arc<Process<'k>>> {
        self.procs.lock().iter().cloned().collect()
    }

    pub(crate) fn find(&self, pid: Pid) -> Option<Arc<Process<'k>>> {
        self.procs.lock().get(pid).cloned()
    }

    /// Take `pid` out of the table; its record is dropped outside the lock.
    fn remove(&self, pid: Pid) {
        let record = self.procs.lock().remove(pid);
        drop(record);
    }

    /// Start a process (see [`Procs::spawn`]); `parent` is the process
    /// whose `spawn` system call starts it.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        name: &str,
        (module, program): (Arc<[u8]>, Program),
        (handles, stdio): (Vec<Object<'k>>, Stdio<'k, 'h, P>),
        options: SpawnOptions,
        parent: Option<Pid>,
    ) -> Result<Arc<Process<'k>>, SpawnError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(SpawnError::ShuttingDown);
        }
        let program_bytes = program.bytes();
        if program_bytes > MAX_PROGRAM_BYTES {
            return Err(SpawnError::ArgsTooLarge);
        }
        let hal = self.kernel.hal();
        let deadline_at = options.deadline.map(|d| hal.now().saturating_add(d));
        let max = self.max_live.load(Ordering::SeqCst);
        let mut made = None;
        let pid = self
            .procs
            .lock()
            .insert(max, |pid| {
                let debug = debug::DebugEntry::claim(
                    self.kernel.id(),
                    pid.0,
                    parent.map_or(0, |p| p.0),
                    name,
                );
                let p = Arc::new(Process::new(
                    (pid, debug),
                    (String::from(name), program),
                    options,
                    deadline_at,
                    hal,
                    Arc::downgrade(&self.procs),
                    parent,
                ));
                made = Some(p.clone());
                p
            })
            .map_err(|e| match e {
                TableError::Full => SpawnError::TooMany,
                TableError::NoPid => SpawnError::NoPid,
            })?;
        let Some(proc) = made else {
            return Err(SpawnError::NoPid);
        };
        let owner = crate::mem::Owner::Process(pid);
        match self.resources(owner, module.len() + program_bytes, options, parent) {
            Ok((hold, stack)) => {
                self.start(proc.clone(), (module, hold), stack, (handles, stdio));
                Ok(proc)
            }
            Err(e) => {
                self.remove(pid);
                self.kernel.vm().forget(owner);
                Err(e)
            }
        }
    }

    /// Set up `owner`'s account (its limit, and its parent's: INV-PROC-4)
    /// and charge it for the `bytes` of its module, arguments and
    /// environment, and for its stack.
    fn resources(
        &self,
        owner: crate::mem::Owner,
        bytes: usize,
        options: SpawnOptions,
        parent: Option<Pid>,
    ) -> Result<(crate::mem::Hold<'k>, KernelStack<'k, P>), SpawnError> {
        let vm = self.kernel.vm();
        vm.set_limit(owner, options.memory_limit);
        if let Some(parent) = parent {
            // A fresh owner has neither a charge nor a parent yet.
            vm.set_parent(owner, crate::mem::Owner::Process(parent));
        }
        // The module's bytes (and the program's) are kernel memory held
        // for the process until it ends: charged to it like its pages
        // (INV-MEM-2).
        let frames = (bytes as u64).div_ceil(crate::hal::PAGE_SIZE as u64);
        let hold = vm
            .hold_while(owner, frames)
            .map_err(|_| SpawnError::NoMemory)?;
        let stack = self.take_stack(options.stack, owner)?;
        Ok((hold, stack))
    }

    /// A fiber stack of `len` bytes charged to `owner`: a pooled one when
    /// the pool has one of that length (INV-PROC-6), else a new one.
    fn take_stack(
        &self,
        len: usize,
        owner: crate::mem::Owner,
    ) -> Result<KernelStack<'k, P>, SpawnError> {
        let want = len.next_multiple_of(crate::hal::PAGE_SIZE);
        let pooled = {
            let mut pool = self.stacks.lock();
            pool.iter()
                .position(|s| s.len() == want)
                .map(|i| pool.swap_remove(i))
        };
        if let Some(stack) = pooled {
            return match stack.reassign(owner) {
                Ok(()) => Ok(stack),
                Err(_) => {
                    self.recycle_stack(stack);
                    Err(SpawnError::NoMemory)
                }
            };
        }
        KernelStack::new(self.kernel.vm(), len, owner).map_err(|_| SpawnError::NoMemory)
    }

    /// Keep an ended process's fiber stack for the next spawn, charged to
    /// the kernel, while the pool has room: at most [`POOLED_STACKS`],
    /// together at most a 64th of RAM (INV-PROC-6); else release it.
    pub(crate) fn recycle_stack(&self, stack: KernelStack<'k, P>) {
        let frames = self.kernel.frames().total_frames();
        let mut pool = self.stacks.lock();
        let held: usize = pool.iter().map(KernelStack::len).sum();
        let fits = pool.len() < POOLED_STACKS
            && ((held + stack.len()) / crate::hal::PAGE_SIZE) as u64 <= frames / 64;
        if fits && stack.reassign(crate::mem::Owner::Kernel).is_ok() {
            pool.push(stack);
        }
    }

    /// Spawn the driver task of `proc` (and its deadline's watchdog).
    fn start(
        self: &Arc<Self>,
        proc: Arc<Process<'k>>,
        module: process::Module<'k>,
        stack: KernelStack<'k, P>,
        given: (Vec<Object<'k>>, Stdio<'k, 'h, P>),
    ) {
        let deadline = proc.options().deadline;
        let driver = process::Driver::new(self.clone(), proc.clone(), module, stack, given);
        // SAFETY: INV-PROC-1: `run` awaits this task (through `tasks`)
        // before the scope, and so the kernel borrow, ends; it is never
        // cancelled.
        let task = unsafe { self.exec.spawn_unchecked(driver) };
        self.tasks.lock().push(task);
        if let Some(after) = deadline {
            let (exec, p) = (self.exec.clone(), proc);
            let watchdog = async move {
                if exec.timeout(after, p.wait()).await.is_err() {
                    p.kill(KillReason::Deadline);
                }
            };
            // SAFETY: as for the driver: awaited by `run`, never cancelled.
            let task = unsafe { self.exec.spawn_unchecked(watchdog) };
            self.tasks.lock().push(task);
        }
    }
}

/// A boxed future a waiting host call hands to its process's task.
pub(crate) type WaitFuture<'a> = core::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
