//! The CPU table: which CPUs run, on which threads, and IPIs between them.
//!
//! This module owns one [`CpuSlot`] per configured CPU and the join handles
//! of the secondary CPU threads, and implements `Cpus` for [`Hosted`]. The
//! thread side of a CPU (alternate stack, thread-locals, timer) is
//! [`crate::context`].
//!
//! A slot moves `FREE -> CLAIMED` (a thread is being set up for it),
//! `CLAIMED -> RUNNING` (the thread is ready for signals),
//! `RUNNING -> LEAVING -> FREE` (the thread tears down), or
//! `CLAIMED -> FREE` when setting up fails.
//!
//! Invariants:
//! - INV-CPU-1: at most one thread is CPU `n` of a machine at a time: only
//!   the winner of the `FREE -> CLAIMED` exchange sets a thread up for it.
//! - INV-CPU-2: `pthread` names a live, unjoined thread whenever `state` is
//!   `RUNNING`; a sender signals it only between incrementing `senders` and
//!   decrementing it after seeing `RUNNING`, and a leaving thread waits for
//!   `senders == 0` after publishing `LEAVING` (both `SeqCst`, so one of the
//!   two sees the other), so no signal is sent to a thread that has gone.
//! - INV-CPU-3: `ipi_raised` is true while an IPI signal is on its way to
//!   the CPU and not yet taken by its handler; further IPIs merge with it.
//!
//! Sending an IPI takes no lock and never blocks, so the kernel may send one
//! from an interrupt or fault handler (INV-HAL-2).
//!
//! In deterministic mode the slots still say which CPUs run (claimed by
//! `start_cpu`, freed when the CPU's fiber ends), but starting a CPU makes
//! a fiber, an IPI is a pending bit and waiting idles the fiber (`det`).

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kernel_core::hal::{CpuEntry, CpuId, CpuLocal, Cpus, HalError, IsaFeatures};

use crate::signals::IPI_SIGNAL;
use crate::{Hosted, context, irq, thread};

const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const RUNNING: u8 = 2;
const LEAVING: u8 = 3;

/// One CPU of the machine.
pub(crate) struct CpuSlot {
    state: AtomicU8,
    /// The `pthread_t` of the CPU thread (INV-CPU-2).
    pthread: AtomicU64,
    /// Senders between "saw RUNNING" and "signal sent" (INV-CPU-2).
    senders: AtomicUsize,
    /// INV-CPU-3.
    ipi_raised: AtomicBool,
    /// Console input raised, for the IPI signal's handler to deliver.
    input_raised: AtomicBool,
}

impl CpuSlot {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(FREE),
            pthread: AtomicU64::new(0),
            senders: AtomicUsize::new(0),
            ipi_raised: AtomicBool::new(false),
            input_raised: AtomicBool::new(false),
        }
    }

    /// Take the slot for a thread about to become this CPU (INV-CPU-1).
    pub(crate) fn claim(&self) -> Result<(), HalError> {
        self.state
            .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| HalError::Busy)
    }

    /// Give back a claim whose thread could not be set up.
    pub(crate) fn unclaim(&self) {
        self.state.store(FREE, Ordering::Release);
    }

    /// The claiming thread is ready: IPIs go to `pthread` from now on.
    pub(crate) fn register(&self, pthread: libc::pthread_t) {
        self.pthread.store(pthread, Ordering::SeqCst);
        self.ipi_raised.store(false, Ordering::SeqCst);
        self.state.store(RUNNING, Ordering::SeqCst);
    }

    /// The CPU thread is about to end; afterwards the slot is free.
    pub(crate) fn leave(&self) {
        self.state.store(LEAVING, Ordering::SeqCst);
        while self.senders.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        self.pthread.store(0, Ordering::SeqCst);
        self.ipi_raised.store(false, Ordering::SeqCst);
        self.state.store(FREE, Ordering::Release);
    }

    fn send_ipi(&self) {
        if self.ipi_raised.swap(true, Ordering::AcqRel) {
            return; // INV-CPU-3: merges with the one on its way.
        }
        self.senders.fetch_add(1, Ordering::SeqCst);
        let sent = self.state.load(Ordering::SeqCst) == RUNNING && {
            let pthread = self.pthread.load(Ordering::SeqCst);
            // SAFETY: INV-CPU-2: the thread is live and unjoined until
            // `senders` drops back to zero.
            unsafe { libc::pthread_kill(pthread, IPI_SIGNAL) == 0 }
        };
        if !sent {
            // Not running (or the host refused): drop it, do not block
            // later IPIs behind it.
            self.ipi_raised.store(false, Ordering::Release);
        }
        self.senders.fetch_sub(1, Ordering::SeqCst);
    }

    /// Raise console input on this CPU: a flag the IPI signal's handler
    /// takes ([`CpuSlot::take_input`]), and the signal.
    pub(crate) fn raise_input(&self) {
        self.input_raised.store(true, Ordering::SeqCst);
        self.send_ipi();
    }

    /// Whether console input was raised since the last call (the IPI
    /// signal's handler asks).
    pub(crate) fn take_input(&self) -> bool {
        self.input_raised.swap(false, Ordering::AcqRel)
    }

    /// The IPI signal reached the CPU's handler (INV-CPU-3). The acquire
    /// pairs with the senders' release, so what they wrote before sending
    /// is visible to the interrupt entry.
    pub(crate) fn ipi_arrived(&self) {
        self.ipi_raised.swap(false, Ordering::AcqRel);
    }
}

/// Every CPU of a machine.
pub(crate) struct CpuTable {
    slots: Box<[CpuSlot]>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl CpuTable {
    pub(crate) fn new(count: usize) -> Self {
        Self {
            slots: (0..count).map(|_| CpuSlot::new()).collect(),
            threads: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn slot(&self, cpu: CpuId) -> Option<&CpuSlot> {
        self.slots.get(cpu)
    }

    /// Keep a started secondary's handle for [`CpuTable::join_all`].
    pub(crate) fn adopt(&self, handle: JoinHandle<()>) {
        self.threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }

    /// Join every secondary CPU thread started so far, including those
    /// started while joining. A thread still running after `timeout` is
    /// detached instead (reported on standard error): the kernel gave up on
    /// it already (INV-BOOT-1 of kernel-core leaks rather than frees), and it
    /// keeps the machine alive through its own `Arc` (INV-HOST-1).
    pub(crate) fn join_all(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let next = self
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(handle) = next else { return };
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if handle.is_finished() {
                // A secondary that panicked has already ended the process
                // (context::run_kernel), so a join error cannot happen.
                drop(handle.join());
            } else {
                let name = handle.thread().name().unwrap_or("cpu?").to_owned();
                eprintln!("hal-hosted: {name} did not end; detaching it");
            }
        }
    }
}

impl Cpus for Hosted {
    fn cpu_count(&self) -> usize {
        self.machine.cpus.count()
    }

    fn isa_features(&self) -> IsaFeatures {
        crate::isa::host_isa()
    }

    /// Hosted: a thread that is not a CPU of this machine reads as CPU 0.
    fn current_cpu(&self) -> CpuId {
        thread::with(|t| {
            if t.is_cpu_of(self.machine_ptr()) {
                t.id.load(Ordering::Relaxed)
            } else {
                0
            }
        })
    }

    /// Deterministic: a fiber on the host thread, run when the simulation
    /// picks it.
    fn start_cpu(&self, cpu: CpuId, entry: CpuEntry, arg: usize) -> Result<(), HalError> {
        if cpu == 0 {
            return Err(HalError::OutOfRange);
        }
        let slot = self.machine.cpus.slot(cpu).ok_or(HalError::OutOfRange)?;
        slot.claim()?;
        if let Some(det) = &self.machine.det {
            return det.start(cpu, entry, arg).inspect_err(|_| slot.unclaim());
        }
        context::start_secondary(&self.machine, cpu, entry, arg).map_err(|_| HalError::NoMemory)
    }

    /// Deterministic: a pending bit on the target, taken at its next switch
    /// point (at once for a CPU sending to itself).
    fn send_ipi(&self, cpu: CpuId) {
        if let Some(det) = &self.machine.det {
            thread::with(|t| {
                let from = t.is_cpu_of(self.machine_ptr()).then_some(t);
                det.send_ipi(from, cpu);
            });
            return;
        }
        if let Some(slot) = self.machine.cpus.slot(cpu) {
            slot.send_ipi();
        }
    }

    /// Hosted: returns at once on a thread that is not a CPU of this machine
    /// (no interrupt could ever reach it).
    /// Deterministic: the CPU idles and another runs (`det`).
    fn wait_for_interrupt(&self) {
        thread::with(|t| {
            if t.is_cpu_of(self.machine_ptr()) {
                match &self.machine.det {
                    Some(det) => det.wait(t),
                    None => irq::wait(t),
                }
            }
        });
    }

    unsafe fn set_cpu_local(&self, block: *const CpuLocal) {
        thread::with(|t| t.cpu_local.store(block.cast_mut(), Ordering::Release));
    }

    fn cpu_local(&self) -> *const CpuLocal {
        thread::with(|t| t.local())
    }
}
