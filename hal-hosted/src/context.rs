//! Turning a host thread into a CPU and back.
//!
//! This module owns the life of a CPU thread: [`CpuContext::enter`] gives
//! the calling thread an alternate signal stack, its thread-locals, a POSIX
//! timer and a registered slot, then unblocks the interrupt signals; dropping
//! the context undoes all of it in reverse. It also spawns the threads:
//! secondaries for `Cpus::start_cpu`, and the scoped threads of
//! [`crate::run_on_cpu`] and [`crate::boot`]. In deterministic mode only
//! the scoped thread is made; it runs every CPU as a fiber ([`crate::det`]).
//!
//! Invariants:
//! - INV-CTX-1: while a `CpuContext` lives on a thread, that thread's
//!   `CpuThread::machine` points to the context's machine (kept alive by
//!   the context's `Arc`, INV-THREAD-1) and its slot is `RUNNING`.
//! - INV-CTX-2: the interrupt signals are blocked on the thread before any
//!   of its CPU state is torn down, so no handler sees half of it.
//! - INV-CTX-3: the alternate stack is installed before the thread-locals
//!   that make faults deliverable, and removed after them.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::Ordering;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, mpsc};

use kernel_core::hal::{CpuEntry, CpuId};
use kernel_core::sched::fiber::FiberStack;

use crate::error::{io_errno, last_errno};
use crate::stack::HostStack;
use crate::{HostError, Machine, signals, thread, timer};

/// Usable size of a CPU's alternate signal stack. Faults and interrupts run
/// the kernel's trap code on it (demand paging, wake-ups), so it is far
/// larger than `SIGSTKSZ`.
pub const ALT_STACK_SIZE: usize = 256 * 1024;

/// Stack size of a CPU thread. Virtual: pages are committed when touched.
pub const CPU_STACK_SIZE: usize = 16 * 1024 * 1024;

/// An alternate signal stack: a [`HostStack`] (guard page below it)
/// installed with `sigaltstack`.
struct AltStack {
    /// Unmapped when the value drops, after `Drop` has uninstalled it.
    _stack: HostStack,
    previous: libc::stack_t,
}

impl AltStack {
    fn install() -> Result<Self, HostError> {
        let stack = HostStack::new(ALT_STACK_SIZE).map_err(HostError::AltStack)?;
        let usable = stack.bounds();
        let alt = libc::stack_t {
            ss_sp: usable.start as *mut c_void,
            ss_flags: 0,
            ss_size: usable.len(),
        };
        let mut previous = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: 0,
            ss_size: 0,
        };
        // SAFETY: `alt` describes memory owned by this value for as long as
        // it is installed (Drop reinstalls `previous` before the stack is
        // unmapped); on failure nothing was installed and `stack` unmaps.
        if unsafe { libc::sigaltstack(&alt, &mut previous) } != 0 {
            return Err(HostError::AltStack(last_errno()));
        }
        Ok(Self {
            _stack: stack,
            previous,
        })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: we are not running on the alternate stack (this is normal
        // thread context); putting back the previous one (std's, or
        // disabled) stops the host from using ours before `_stack` unmaps
        // it, right after this.
        unsafe { libc::sigaltstack(&self.previous, ptr::null_mut()) };
    }
}

/// The calling thread's tenure as a CPU.
pub(crate) struct CpuContext {
    _altstack: AltStack,
    timer: *mut c_void,
    cpu: CpuId,
    machine: Arc<Machine>,
}

impl CpuContext {
    /// Make the calling thread CPU `cpu` of `machine`, whose slot the caller
    /// has claimed. On error the claim is given back.
    pub(crate) fn enter(machine: Arc<Machine>, cpu: CpuId) -> Result<Self, HostError> {
        let Some(slot) = machine.cpus.slot(cpu) else {
            unreachable!("callers claim the slot first, so it exists");
        };
        match Self::setup() {
            Ok((altstack, timer)) => {
                let machine_ptr = Arc::as_ptr(&machine).cast_mut();
                thread::with(|t| {
                    t.irqs_enabled.store(false, Ordering::SeqCst);
                    t.pending.store(0, Ordering::SeqCst);
                    t.cpu_local.store(ptr::null_mut(), Ordering::SeqCst);
                    t.timer.store(timer, Ordering::SeqCst);
                    t.id.store(cpu, Ordering::SeqCst);
                    t.slot
                        .store(ptr::from_ref(slot).cast_mut(), Ordering::SeqCst);
                    t.machine.store(machine_ptr, Ordering::SeqCst);
                });
                // SAFETY: `pthread_self` is always valid.
                slot.register(unsafe { libc::pthread_self() });
                set_interrupt_mask(libc::SIG_UNBLOCK);
                Ok(Self {
                    _altstack: altstack,
                    timer,
                    cpu,
                    machine,
                })
            }
            Err(e) => {
                slot.unclaim();
                Err(e)
            }
        }
    }

    /// The parts that can fail: the alternate stack and the timer.
    fn setup() -> Result<(AltStack, *mut c_void), HostError> {
        let altstack = AltStack::install()?;
        let tid = rustix::thread::gettid().as_raw_nonzero().get();
        let timer = timer::create(tid).map_err(HostError::Timer)?;
        Ok((altstack, timer))
    }
}

impl Drop for CpuContext {
    fn drop(&mut self) {
        // INV-CTX-2: no interrupt handler runs on this thread from here on;
        // signals still queued for it die with it.
        set_interrupt_mask(libc::SIG_BLOCK);
        thread::with(|t| {
            t.machine.store(ptr::null_mut(), Ordering::SeqCst);
            t.slot.store(ptr::null_mut(), Ordering::SeqCst);
            t.timer.store(ptr::null_mut(), Ordering::SeqCst);
            t.cpu_local.store(ptr::null_mut(), Ordering::SeqCst);
            t.irqs_enabled.store(false, Ordering::SeqCst);
            t.pending.store(0, Ordering::SeqCst);
        });
        timer::delete(self.timer);
        if let Some(slot) = self.machine.cpus.slot(self.cpu) {
            slot.leave();
        }
        // Fields drop next, in declaration order: the alternate stack
        // (INV-CTX-3), then the machine reference (possibly the last one).
    }
}

/// Block or unblock both interrupt signals on the calling thread.
fn set_interrupt_mask(how: libc::c_int) {
    let set = signals::interrupt_set();
    // SAFETY: `set` is a valid signal set.
    unsafe { libc::pthread_sigmask(how, &set, ptr::null_mut()) };
}

/// Run kernel code on a CPU thread. A kernel panic stops the machine; on
/// hosted the machine's life is the process's, so it exits with
/// `exit::PANIC` (the panic message was printed by the panic hook).
pub(crate) fn run_kernel<R>(f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => std::process::exit(i32::from(kernel_core::exit::PANIC)),
    }
}

/// Spawn secondary CPU `cpu` (slot already claimed) running `entry(arg)`;
/// returns once the thread is set up, or with the setup error.
pub(crate) fn start_secondary(
    machine: &Arc<Machine>,
    cpu: CpuId,
    entry: CpuEntry,
    arg: usize,
) -> Result<(), HostError> {
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), HostError>>(1);
    let machine_for_thread = Arc::clone(machine);
    let spawned = std::thread::Builder::new()
        .name(format!("cpu{cpu}"))
        .stack_size(CPU_STACK_SIZE)
        .spawn(move || {
            let context = match CpuContext::enter(machine_for_thread, cpu) {
                Ok(context) => context,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            run_kernel(|| entry(arg));
            drop(context);
        });
    let handle = match spawned {
        Ok(handle) => handle,
        Err(e) => {
            if let Some(slot) = machine.cpus.slot(cpu) {
                slot.unclaim();
            }
            return Err(HostError::Thread(io_errno(&e)));
        }
    };
    match ready_rx.recv() {
        Ok(Ok(())) => {
            machine.cpus.adopt(handle);
            Ok(())
        }
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        // The thread ended without a word: it cannot, short of a panic in
        // `enter`, which unclaims nothing; report it as a thread failure.
        Err(_) => {
            let _ = handle.join();
            Err(HostError::Thread(rustix::io::Errno::AGAIN))
        }
    }
}

/// Run `f` on a fresh scoped thread that is CPU `cpu` of `machine` (in
/// deterministic mode: the host thread of every CPU, with `f` on CPU
/// `cpu`'s fiber). Returns the setup error (or a deterministic deadlock),
/// or `f`'s outcome (value or panic payload).
pub(crate) fn on_fresh_cpu<R: Send>(
    machine: &Arc<Machine>,
    cpu: CpuId,
    kernel: bool,
    f: impl FnOnce() -> R + Send,
) -> Result<std::thread::Result<R>, HostError> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name(format!("cpu{cpu}"))
            .stack_size(CPU_STACK_SIZE)
            .spawn_scoped(scope, || {
                let context = CpuContext::enter(Arc::clone(machine), cpu)?;
                let outcome = match &machine.det {
                    // Deterministic: this thread is the host thread of
                    // every CPU, `f` runs in CPU `cpu`'s fiber.
                    Some(det) => det.run(machine, cpu, kernel, f),
                    None if kernel => Ok(Ok(run_kernel(f))),
                    None => Ok(catch_unwind(AssertUnwindSafe(f))),
                };
                drop(context);
                outcome
            });
        match spawned {
            Ok(handle) => match handle.join() {
                Ok(result) => result,
                Err(payload) => Ok(Err(payload)),
            },
            Err(e) => {
                if let Some(slot) = machine.cpus.slot(cpu) {
                    slot.unclaim();
                }
                Err(HostError::Thread(io_errno(&e)))
            }
        }
    })
}
