//! Loading and running a process: compile its module into a store charged
//! to it, link each import to the system interface of its import module,
//! run its entry export and turn how that ended into its exit status.
//!
//! A system interface ([`Interface`]) serves one import module (`vessel`,
//! and later others); a process may import from several. The loader knows
//! no system call, and an interface knows no loader: they meet in this
//! trait and in the process's [`Context`].
//!
//! Invariant INV-LOAD-1: everything a process owns (store, handles) is
//! dropped before [`run_process`] returns its status (INV-PROC-2).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::context::Context;
use super::process::Process;
use super::{ExitStatus, Inner, LoadError, Object};
use crate::hal::Platform;
use crate::kernel::MemError;
use crate::mem::{GapError, VmError};
use crate::sched::SchedHal;
use crate::wasm::TrapKind;
use crate::wasm::module::{CompileError, FuncType, ImportKind};
use crate::wasm::vm::{
    CallError, Extern, HostTrap, InstantiateError, SingleHostFn, Store, Trap, Val,
};

/// Bytes of the fiber stack kept for host calls below wasm's budget.
const HOST_STACK_RESERVE: usize = 256 << 10;

/// A host function of an interface, bound to one process: its type and
/// body.
pub(crate) type Bound<'k> = (FuncType, Box<SingleHostFn<'k>>);

/// A system interface: the host functions of one import module.
pub(crate) trait Interface<'k, 'h, P: Platform + SchedHal>: Send + Sync {
    /// The import module it serves.
    fn module(&self) -> &'static str;

    /// Its function `name`, bound to the process of `ctx`; `None` when it
    /// has none of that name.
    fn link(&self, ctx: &Arc<Context<'k, 'h, P>>, name: &str) -> Option<Bound<'k>>;
}

/// The interfaces a scope's processes link against.
pub(crate) type Interfaces<'k, 'h, P> = Vec<Box<dyn Interface<'k, 'h, P> + 'k>>;

/// The body of a process's fiber: load `module` into a fresh store charged
/// to the process, link its imports, run its `_start` (or `main`) export,
/// and return how it ended (INV-LOAD-1).
pub(crate) fn run_process<'k, 'h, P: Platform + SchedHal>(
    scope: &Arc<Inner<'k, 'h, P>>,
    proc: &Arc<Process<'k>>,
    module: &Arc<[u8]>,
    (handles, mut stdio): (Vec<Object<'k>>, super::Stdio<'k, 'h, P>),
) -> ExitStatus {
    let ctx = Arc::new(Context::new(
        scope.clone(),
        proc.clone(),
        handles,
        stdio.take(),
    ));
    let status = run_in_store(scope, &ctx, proc, module);
    // The store is gone; drop the handles now (INV-CONTEXT-1), and the
    // cache entry of a module no store holds any more (INV-CACHE-2).
    ctx.clear_handles();
    scope.kernel.modules().prune();
    status
}

fn run_in_store<'k, 'h, P: Platform + SchedHal>(
    scope: &Arc<Inner<'k, 'h, P>>,
    ctx: &Arc<Context<'k, 'h, P>>,
    proc: &Arc<Process<'k>>,
    bytes: &Arc<[u8]>,
) -> ExitStatus {
    let budget = proc.options().stack.saturating_sub(HOST_STACK_RESERVE);
    let Ok(mut store) = Store::new(scope.kernel, budget) else {
        return ExitStatus::Failed(LoadError::Isa);
    };
    store.set_memory_owner(ctx.owner());
    // Debuggers and profilers name its code `<process>!<function>`.
    store.set_module_name(&proc.name());
    // Programs of the boot image may come precompiled (`init`): looked
    // for only when the image has the directory, so a scope without one
    // does not hash every module it compiles.
    let dir = crate::init::PRECOMPILED_DIR.trim_start_matches('/');
    if scope
        .fs
        .lookup(crate::fs::tmpfs::ROOT, dir.as_bytes(), true)
        .is_ok()
    {
        let images = scope.clone();
        store.set_precompiled(Box::new(move |key: &[u8; 32]| {
            let path = crate::init::precompiled_path(key);
            let now = images.kernel.wall_ns();
            let max = crate::init::MAX_PRECOMPILED;
            let read = images.fs.read_file(path.as_bytes(), max, now, |_| Ok(()));
            read.ok().map(|(bytes, ())| bytes)
        }));
    }
    store.interrupt().set_hook(proc.hook());
    store.interrupt().set_wait_hook(ctx.wait_hook());
    let kernel = scope.kernel;
    proc.attach_interrupt(store.interrupt(), kernel.cpu(kernel.hal().current_cpu()));
    // Single-flight: a copy spawned while another loads the same bytes
    // waits for it, suspended, instead of compiling them again.
    let mut wait = |p: &Arc<crate::wasm::cache::Pending>| ctx.block(p.wait()).is_ok();
    let module = match store.compile_shared_waiting(bytes, &mut wait) {
        Ok(m) => m,
        Err(CompileError::OverBudget { .. } | CompileError::MetadataOverBudget { .. }) => {
            return ExitStatus::Failed(LoadError::OutOfMemory);
        }
        Err(CompileError::TooLarge { .. }) => return ExitStatus::Failed(LoadError::TooLarge),
        Err(CompileError::Unsupported { what, offset }) => {
            return ExitStatus::Failed(LoadError::Unsupported { what, at: offset });
        }
        Err(CompileError::Interrupted) => return interrupted(proc),
        Err(e) => return ExitStatus::Failed(LoadError::Module(e.offset().unwrap_or(0))),
    };
    let mut imports: Vec<(String, String, Extern)> = Vec::new();
    for imp in &module.info.imports {
        let ImportKind::Func(_) = imp.kind else {
            return ExitStatus::Failed(LoadError::Link);
        };
        let bound = scope
            .interfaces
            .iter()
            .find(|i| i.module() == imp.module)
            .and_then(|i| i.link(ctx, &imp.name));
        let Some((ty, f)) = bound else {
            return ExitStatus::Failed(LoadError::Link);
        };
        match store.host_func_single(ty, f) {
            Ok(f) => imports.push((imp.module.clone(), imp.name.clone(), Extern::Func(f))),
            Err(_) => return ExitStatus::Failed(LoadError::Instantiate),
        }
    }
    let resolve = |m: &str, n: &str| {
        imports
            .iter()
            .find(|(module, name, _)| module == m && name == n)
            .map(|(_, _, f)| f.clone())
    };
    // The start function's system calls see the memory too.
    let mut attach = |store: &Store<'k, 'h, P>, inst| {
        // SAFETY: the view goes into `ctx`, used only by the host functions
        // of this store, which run only while it lives (INV-VM-7).
        if let Some(view) = unsafe { store.memory_view(inst, 0) } {
            ctx.attach_memory(view);
        }
    };
    let inst = match store.instantiate_then(&module, &resolve, &mut attach) {
        Ok(i) => i,
        Err(InstantiateError::Start(CallError::Trap(t))) => return trapped(proc, &t),
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
        Err(CallError::Trap(t)) => trapped(proc, &t),
        Err(_) => ExitStatus::Failed(LoadError::Instantiate),
    }
}

/// The status of a process whose code trapped with `trap`: the exit code
/// or kill a system call stopped it for, else the trap.
fn trapped(proc: &Process<'_>, trap: &Trap) -> ExitStatus {
    match (trap.host, trap.kind) {
        (Some(HostTrap::Exit(code)), _) => ExitStatus::Exited(code),
        (Some(HostTrap::Killed), _) | (None, TrapKind::Interrupted) => interrupted(proc),
        (_, kind) => {
            proc.set_trap(trap);
            ExitStatus::Trapped(kind)
        }
    }
}

/// The status of a process stopped by its preemption check: killed, for
/// the reason it was killed.
fn interrupted(proc: &Process<'_>) -> ExitStatus {
    match proc.killed() {
        Some(reason) => ExitStatus::Killed(reason),
        None => ExitStatus::Trapped(TrapKind::Interrupted),
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
