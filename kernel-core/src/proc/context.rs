//! What a process's system calls share: its [`Context`]. Every system
//! interface ([`crate::sys`]) reaches the process, its handles, its memory
//! and the kernel only through this narrow API.
//!
//! Invariant INV-CONTEXT-1: a context lives as long as its process's store
//! runs (the store's host functions hold it); its handle table is cleared
//! when the store is gone (INV-PROC-2), not when the last clone goes.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::time::Duration;

use super::process::{Process, Request};
use super::{Fd, FdTable, HandleTable, Inner, MAX_CHILDREN, Object, Program, SpawnError};
use crate::fs::Node;
use crate::fs::tmpfs::Tmpfs;
use crate::hal::Platform;
use crate::kernel::Kernel;
use crate::mem::Owner;
use crate::sched::SchedHal;
use crate::wasm::interrupt::{WaitEnd, WaitHook};
use crate::wasm::vm::{HostTrap, MemoryView};

/// A future that ends when the first of `a` and `b` does.
async fn first<A: Future<Output = ()>, B: Future<Output = ()>>(a: A, b: B) {
    let mut a = core::pin::pin!(a);
    let mut b = core::pin::pin!(b);
    core::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            core::task::Poll::Ready(())
        } else {
            core::task::Poll::Pending
        }
    })
    .await;
}

/// Whether `woken` or `sleep` ends first (`woken` wins a tie).
async fn race(woken: crate::wasm::futex::WaitFuture, sleep: impl Future<Output = ()>) -> WaitEnd {
    let mut a = core::pin::pin!(woken);
    let mut b = core::pin::pin!(sleep);
    core::future::poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() {
            core::task::Poll::Ready(WaitEnd::Woken)
        } else if b.as_mut().poll(cx).is_ready() {
            core::task::Poll::Ready(WaitEnd::TimedOut)
        } else {
            core::task::Poll::Pending
        }
    })
    .await
}

/// Why [`Context::spawn_child`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildError {
    /// The caller has [`MAX_CHILDREN`] live children.
    TooManyChildren,
    /// The scope refused ([`SpawnError`]).
    Spawn(SpawnError),
}

/// The per-process state its system calls share.
pub(crate) struct Context<'k, 'h, P: Platform + SchedHal> {
    scope: Arc<Inner<'k, 'h, P>>,
    proc: Arc<Process<'k>>,
    handles: spin::Mutex<HandleTable<'k>>,
    fds: spin::Mutex<FdTable<'k>>,
    /// The paths of its preopened directories, by preopen number.
    preopens: Vec<Vec<u8>>,
    memory: spin::Once<MemoryView>,
}

impl<'k, 'h, P: Platform + SchedHal> Context<'k, 'h, P> {
    pub(super) fn new(
        scope: Arc<Inner<'k, 'h, P>>,
        proc: Arc<Process<'k>>,
        handles: Vec<Object<'k>>,
        stdio: Option<[Fd<'k>; 3]>,
    ) -> Self {
        let (nodes, preopens) = Self::preopens(&scope, proc.program());
        Self {
            scope,
            proc,
            handles: spin::Mutex::new(HandleTable::with(handles)),
            fds: spin::Mutex::new(FdTable::new(&nodes, stdio)),
            preopens,
            memory: spin::Once::new(),
        }
    }

    /// The directories `program` starts with, each held open for its
    /// descriptor (INV-FDS-2), and their paths: the tmpfs root as `/`
    /// unless a mount takes `/`, then each mount the platform has. A
    /// mount of a host directory the platform does not have is left out.
    fn preopens(scope: &Inner<'k, 'h, P>, program: &Program) -> (Vec<Node>, Vec<Vec<u8>>) {
        let mut nodes = Vec::new();
        let mut names = Vec::new();
        if program.no_files {
            return (nodes, names);
        }
        if !program.mounts.iter().any(|m| m.guest == b"/") {
            scope.fs.retain(crate::fs::tmpfs::ROOT);
            nodes.push(Node::Tmp(crate::fs::tmpfs::ROOT));
            names.push(b"/".to_vec());
        }
        for m in &program.mounts {
            if let Some(handle) = scope.kernel.hal().host_root(m.host) {
                nodes.push(Node::Host(handle));
                names.push(m.guest.clone());
            }
        }
        (nodes, names)
    }

    /// The path of preopen `index`, if it exists.
    pub(crate) fn preopen_name(&self, index: u16) -> Option<&[u8]> {
        self.preopens.get(usize::from(index)).map(Vec::as_slice)
    }

    /// Let go of `node`, held for a descriptor that was taken out of the
    /// table (INV-FDS-2).
    pub(crate) fn release(&self, node: Node) {
        self.scope.release(node);
    }

    /// A copy of descriptor `fd` for another table, holding what it names
    /// open once more (INV-FDS-2); `None` when `fd` is not open.
    pub(crate) fn dup(&self, fd: u32) -> Option<Fd<'k>> {
        let fd = self.fds.lock().get(fd)?;
        if let Some(node) = fd.object.node() {
            self.scope.retain(node);
        }
        Some(fd)
    }

    /// The process's memory 0, once its instance exists (`None` before,
    /// or when it has none).
    pub(crate) fn memory(&self) -> Option<&MemoryView> {
        self.memory.get()
    }

    /// Attach the process's memory (once; later calls change nothing).
    pub(super) fn attach_memory(&self, view: MemoryView) {
        self.memory.call_once(|| view);
    }

    /// The process's handle table.
    pub(crate) fn handles(&self) -> spin::MutexGuard<'_, HandleTable<'k>> {
        self.handles.lock()
    }

    /// The process's file descriptors.
    pub(crate) fn fds(&self) -> spin::MutexGuard<'_, FdTable<'k>> {
        self.fds.lock()
    }

    /// The process's arguments and environment.
    pub(crate) fn program(&self) -> &Program {
        self.proc.program()
    }

    /// CPU time the process has used so far.
    pub(crate) fn cpu_time(&self) -> Duration {
        self.proc.cpu_time()
    }

    /// The scope's file system.
    pub(crate) fn fs(&self) -> &Tmpfs {
        &self.scope.fs
    }

    /// Drop every handle and close every descriptor (INV-CONTEXT-1,
    /// INV-FDS-2).
    pub(super) fn clear_handles(&self) {
        let table = core::mem::take(&mut *self.handles.lock());
        drop(table);
        let fds = self.fds.lock().take_all();
        for node in fds.iter().filter_map(|f| f.object.node()) {
            self.release(node);
        }
    }

    /// The owner the process's memory is charged to.
    pub(crate) fn owner(&self) -> Owner {
        Owner::Process(self.proc.pid())
    }

    /// The console's line discipline, when the scope has turned it on:
    /// standard input then reads through it.
    pub(crate) fn tty(&self) -> Option<&super::tty::Tty<'k>> {
        Some(&self.scope.tty).filter(|t| t.is_on())
    }

    /// The process.
    pub(crate) fn process(&self) -> &Arc<Process<'k>> {
        &self.proc
    }

    /// Every process of the scope, ended or not.
    pub(crate) fn processes(&self) -> Vec<Arc<Process<'k>>> {
        self.scope.all()
    }

    /// The scope's process `pid`, if it is in the table.
    pub(crate) fn find(&self, pid: super::Pid) -> Option<Arc<Process<'k>>> {
        self.scope.find(pid)
    }

    /// The kernel.
    pub(crate) fn kernel(&self) -> &'k Kernel<'h, P> {
        self.scope.kernel
    }

    /// Monotonic time.
    pub(crate) fn now(&self) -> Duration {
        self.scope.exec.now()
    }

    /// Suspend the process until `fut` is done; its output. A kill while
    /// it waits ends the call with [`HostTrap::Killed`].
    pub(crate) fn block<T: Send + 'k>(
        &self,
        fut: impl Future<Output = T> + Send + 'k,
    ) -> Result<T, HostTrap> {
        self.proc.block_on(fut).ok_or(HostTrap::Killed)
    }

    /// The wait hook of this process's store (`memory.atomic.wait`): the
    /// process is suspended until a `notify` wakes it, its timeout passes
    /// or it is killed, and other processes run meanwhile.
    pub(crate) fn wait_hook(self: &Arc<Self>) -> Box<WaitHook<'k>> {
        // Weak: the process holds its store's interrupt cell, which holds
        // this hook; a strong count would make a cycle.
        let weak = Arc::downgrade(self);
        Box::new(move |woken, limit| {
            let Some(me) = weak.upgrade() else {
                return WaitEnd::Killed;
            };
            let ended = match limit {
                None => me.block(async move {
                    woken.await;
                    WaitEnd::Woken
                }),
                Some(d) => {
                    let sleep = me.scope.exec.sleep(d);
                    me.block(race(woken, sleep))
                }
            };
            ended.unwrap_or(WaitEnd::Killed)
        })
    }

    /// Sleep `duration` (suspending the process).
    pub(crate) fn sleep(&self, duration: Duration) -> Result<(), HostTrap> {
        let sleep = self.scope.exec.sleep(duration);
        self.block(sleep)
    }

    /// Wait for console input until `until` (monotonic; `None`: no
    /// limit): until the line discipline has a line, when it is on;
    /// else until the platform's input interrupt rings the kernel's
    /// input bell, or, on a platform without one, for at most
    /// `poll` before the caller looks again. Ends early, never late; the
    /// caller looks at the input afterwards either way.
    pub(crate) fn wait_for_input(
        &self,
        until: Option<Duration>,
        poll: Duration,
    ) -> Result<(), HostTrap> {
        let now = self.now();
        let kernel = self.scope.kernel;
        if self.tty().is_some() {
            let scope = self.scope.clone();
            let readable = async move { scope.tty.readable().await };
            return match until {
                None => self.block(readable),
                Some(at) => {
                    let sleep = self.scope.exec.sleep(at.saturating_sub(now));
                    self.block(first(readable, sleep))
                }
            };
        }
        if !kernel.hal().input_interrupts() {
            let until = until.map_or(now + poll, |u| u.min(now + poll));
            return self.sleep(until.saturating_sub(now));
        }
        let bell = kernel.input_bell().wait();
        match until {
            None => self.block(bell),
            Some(at) => {
                let sleep = self.scope.exec.sleep(at.saturating_sub(now));
                self.block(first(bell, sleep))
            }
        }
    }

    /// A preemption point inside a long call: the process yields if its
    /// quantum is over, and a kill ends the call with
    /// [`HostTrap::Killed`].
    pub(crate) fn preempt(&self) -> Result<(), HostTrap> {
        if self.proc.preemption_point() {
            Err(HostTrap::Killed)
        } else {
            Ok(())
        }
    }

    /// Let other processes run first.
    pub(crate) fn yield_now(&self) -> Result<(), HostTrap> {
        self.proc.suspend(Request::Yield);
        match self.proc.killed() {
            Some(_) => Err(HostTrap::Killed),
            None => Ok(()),
        }
    }

    /// Start `module` as a child of the process named `name` (`None`: the
    /// caller's name) holding `handles`, with the arguments and environment
    /// of `program` and `stdio` (from [`Context::dup`]; `None`: the
    /// console) as its descriptors 0, 1 and 2: with options no larger than
    /// its own (INV-PROC-4), killed when it ends.
    pub(crate) fn spawn_child(
        &self,
        name: Option<&str>,
        (module, program): (Arc<[u8]>, Program),
        handles: Vec<Object<'k>>,
        stdio: Option<[Fd<'k>; 3]>,
    ) -> Result<Arc<Process<'k>>, ChildError> {
        let stdio = super::Stdio::new(&self.scope, stdio);
        if self.proc.live_children() >= MAX_CHILDREN {
            return Err(ChildError::TooManyChildren);
        }
        let now = self.scope.kernel.hal().now();
        let options = self.proc.child_options(self.scope.defaults, now);
        let own = self.proc.name();
        let child = self
            .scope
            .spawn(
                name.unwrap_or(&own),
                (module, program),
                (handles, stdio),
                options,
                Some(self.proc.pid()),
            )
            .map_err(ChildError::Spawn)?;
        self.proc.adopt(&child);
        Ok(child)
    }

    /// Let `child` outlive the process; false if it is not its child.
    pub(crate) fn detach(&self, child: &Process<'k>) -> bool {
        self.proc.detach(child)
    }
}
