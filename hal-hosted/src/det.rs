//! Deterministic mode: every simulated CPU on one host thread, a virtual
//! clock and a seeded interleaving, so that a run is reproducible bit for
//! bit.
//!
//! This module owns the simulation of a machine built with
//! [`crate::Config::deterministic`]: one [`SimCpu`] record per CPU, the
//! virtual clock, the seeded generator, the CPU fibers and the event trace.
//!
//! # How it runs
//!
//! The thread that boots the machine (or runs [`crate::run_on_cpu`]) is the
//! host thread. Each CPU is a fiber (`kernel_core::sched::fiber`) on a
//! [`HostStack`]; the host thread's own stack runs a small scheduler loop
//! ([`Det::run`]) that resumes one CPU fiber at a time. A CPU gives the
//! host thread back only at a *switch point*:
//!
//! | switch point | when it switches |
//! |---|---|
//! | `Cpus::wait_for_interrupt` | always, unless an interrupt is already pending (the CPU idles) |
//! | `Interrupts::poll` | with interrupts enabled, one time in [`POLL_SWITCH_ONE_IN`] (seeded) |
//! | `Clock::now` | with interrupts enabled, one time in [`NOW_SWITCH_ONE_IN`] (seeded) |
//!
//! The loop then picks, with the seeded generator, one of the CPUs that can
//! run: those that yielded at `poll`/`now`, and idle ones with an IPI
//! pending or a timer due. When every CPU idles and none can wake, virtual
//! time jumps to the earliest armed timer; when no timer is armed either,
//! that is a deadlock: it is reported on standard error and the run ends
//! with [`HostError::Deadlock`] (`boot` turns it into `exit::FAILED`).
//!
//! # Virtual time and interrupts
//!
//! `Clock::now` advances the virtual clock by [`NOW_STEP`] (so spin loops
//! such as `Kernel::wait_until` make progress) and `Interrupts::poll` by
//! [`POLL_STEP`]. A CPU's timer is a virtual one-shot deadline; an IPI sets
//! a pending bit on its target. Both are *collected* by the CPU they are
//! for at its switch points, at `Interrupts::irq_restore(true)` and at
//! `Clock::set_timer`, and delivered there through the CPU-local block
//! exactly as the signal path does (`irq`), or left pending while
//! interrupts are masked.
//!
//! Faults stay real: demand paging raises `SIGSEGV` on the host thread and
//! the handler finds the CPU through the thread-locals (`thread`), which
//! the loop switches with every CPU: before resuming CPU `n` it loads `n`'s
//! id, CPU-local block, interrupt flag and masked pending bits into them,
//! and saves them back when the fiber yields.
//!
//! Everything the run does is a function of the seed, as long as the
//! kernel's own behaviour is a function of what the HAL tells it (the
//! entropy seed is derived from the simulation seed too). Host addresses
//! (where the window or the direct map lands) are not part of the trace.
//! What breaks replay: another host thread calling into the machine (its
//! `now` advances the shared clock, its IPIs land whenever it runs), and
//! kernel code that spins on another CPU without a switch point (a lock
//! that does not mask interrupts held across `now`/`poll`, or a wait loop
//! with interrupts masked), which hangs instead.
//!
//! # Trace
//!
//! Every scheduling event (CPU start and end, switch, IPI sent, timer
//! fired, interrupt delivered, idle jump, deadlock) is folded, with its
//! virtual time, into a 64-bit FNV-1a digest and counted; the last
//! [`TRACE_CAPACITY`] are kept in a ring ([`crate::Hosted::trace_tail`]).
//!
//! Invariants:
//! - INV-DET-1: CPU fibers run only on the host thread, one at a time,
//!   resumed by [`Det::run`]; a CPU gives control back only at a switch
//!   point, so nothing else interleaves and a run is a function of the seed.
//! - INV-DET-2: a CPU is never switched away while its interrupts are
//!   masked, except by its own `wait_for_interrupt`: kernel code holding an
//!   interrupt-masking lock (or running a fault or interrupt handler, which
//!   runs masked) keeps the host thread until it unmasks. In particular no
//!   switch happens on the alternate signal stack.
//! - INV-DET-3: while CPU `n` runs, the host thread's thread-locals hold
//!   `n`'s id, block, interrupt flag and masked pending bits, and `n`'s
//!   record holds what arrived for it from elsewhere (`pending`) and its
//!   timer; while it does not run, its record holds all of it.
//! - INV-DET-4: the trace ring is preallocated and the trace lock is taken
//!   only around recording, which touches no kernel memory, so recording
//!   from the tail of a fault handler can neither allocate nor deadlock.
//! - INV-DET-5: `suspender` of a CPU is set by its fiber body before any
//!   kernel code runs on it and stays valid until the body returns.

use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};

use kernel_core::hal::{CpuEntry, CpuId, CpuLocal, HalError, Interrupt};
use kernel_core::sched::fiber::{Fiber, Resume, SendFiber, Suspender};

use crate::context::{CPU_STACK_SIZE, run_kernel};
use crate::stack::HostStack;
use crate::thread::{self, CpuThread, PENDING_IPI, PENDING_TIMER};
use crate::{HostError, Machine, irq};

/// Virtual time one `Interrupts::poll` takes: 1 µs.
pub const POLL_STEP: Duration = Duration::from_micros(1);
/// The wall-clock time at virtual time 0: 2026-01-01T00:00:00Z, so that a
/// replay reads the same wall clock.
pub const WALL_EPOCH: Duration = Duration::from_secs(1_767_225_600);
/// Virtual time one `Clock::now` takes: 100 ns.
pub const NOW_STEP: Duration = Duration::from_nanos(100);
/// `poll` with interrupts enabled switches CPUs one time in this many.
pub const POLL_SWITCH_ONE_IN: u64 = 4;
/// `now` with interrupts enabled switches CPUs one time in this many.
pub const NOW_SWITCH_ONE_IN: u64 = 16;
/// Events kept in the trace ring ([`crate::Hosted::trace_tail`]).
pub const TRACE_CAPACITY: usize = 4096;

const NO_DEADLINE: u64 = u64::MAX;

const OFF: u8 = 0;
const READY: u8 = 1;
const IDLE: u8 = 2;
const RUNNING: u8 = 3;

/// One scheduling event of a deterministic run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A CPU fiber was created.
    Start {
        /// The CPU.
        cpu: CpuId,
    },
    /// A CPU's fiber returned.
    End {
        /// The CPU.
        cpu: CpuId,
    },
    /// The host thread went from one CPU to another.
    Switch {
        /// The CPU that ran before.
        from: CpuId,
        /// The CPU that runs now.
        to: CpuId,
    },
    /// An IPI was raised.
    Ipi {
        /// The sending CPU.
        from: CpuId,
        /// The target.
        to: CpuId,
    },
    /// A CPU's timer deadline passed; its interrupt is now pending.
    TimerFired {
        /// The CPU.
        cpu: CpuId,
    },
    /// An interrupt was handed to the kernel.
    Interrupt {
        /// The CPU.
        cpu: CpuId,
        /// Which one.
        irq: Interrupt,
    },
    /// Every CPU idled: virtual time jumped to the earliest timer.
    IdleJump,
    /// Every CPU idled with no timer armed and nothing pending.
    Deadlock,
}

impl Event {
    /// A stable encoding for the digest: kind and two operands.
    fn encode(self) -> (u8, u64, u64) {
        let id = |c: CpuId| c as u64;
        match self {
            Self::Start { cpu } => (1, id(cpu), 0),
            Self::End { cpu } => (2, id(cpu), 0),
            Self::Switch { from, to } => (3, id(from), id(to)),
            Self::Ipi { from, to } => (4, id(from), id(to)),
            Self::TimerFired { cpu } => (5, id(cpu), 0),
            Self::Interrupt { cpu, irq } => (6, id(cpu), u64::from(irq == Interrupt::Ipi)),
            Self::IdleJump => (7, 0, 0),
            Self::Deadlock => (8, 0, 0),
        }
    }
}

/// An [`Event`] and the virtual time it happened at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Virtual time since boot.
    pub time: Duration,
    /// What happened.
    pub event: Event,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>12}ns ", self.time.as_nanos())?;
        match self.event {
            Event::Start { cpu } => write!(f, "start cpu{cpu}"),
            Event::End { cpu } => write!(f, "end cpu{cpu}"),
            Event::Switch { from, to } => write!(f, "switch cpu{from} -> cpu{to}"),
            Event::Ipi { from, to } => write!(f, "ipi cpu{from} -> cpu{to}"),
            Event::TimerFired { cpu } => write!(f, "timer fired on cpu{cpu}"),
            Event::Interrupt { cpu, irq } => write!(f, "interrupt {irq:?} on cpu{cpu}"),
            Event::IdleJump => f.write_str("idle: jump to the next timer"),
            Event::Deadlock => f.write_str("deadlock"),
        }
    }
}

/// What identifies a deterministic run: two runs with the same seed, CPU
/// count and workload have equal summaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceSummary {
    /// The simulation seed.
    pub seed: u64,
    /// Virtual time now.
    pub virtual_time: Duration,
    /// Events recorded so far.
    pub events: u64,
    /// FNV-1a (64-bit) of every event so far, in order, with its time.
    pub digest: u64,
}

impl fmt::Display for TraceSummary {
    /// `seed=N virtual=<ns>ns events=<count> trace=<16 hex digits>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed={} virtual={}ns events={} trace={:016x}",
            self.seed,
            self.virtual_time.as_nanos(),
            self.events,
            self.digest
        )
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The digest, the count and the ring of recent events (INV-DET-4).
struct Trace {
    events: u64,
    digest: u64,
    ring: Vec<TraceEvent>,
    next: usize,
}

impl Trace {
    fn new() -> Self {
        Self {
            events: 0,
            digest: FNV_OFFSET,
            ring: Vec::with_capacity(TRACE_CAPACITY),
            next: 0,
        }
    }

    fn push(&mut self, e: TraceEvent) {
        let (kind, a, b) = e.event.encode();
        let time = u64::try_from(e.time.as_nanos()).unwrap_or(u64::MAX);
        let mut h = self.digest;
        for byte in [kind]
            .into_iter()
            .chain(a.to_le_bytes())
            .chain(b.to_le_bytes())
            .chain(time.to_le_bytes())
        {
            h ^= u64::from(byte);
            h = h.wrapping_mul(FNV_PRIME);
        }
        self.digest = h;
        self.events += 1;
        // Within the preallocated capacity: never reallocates.
        if self.ring.len() < TRACE_CAPACITY {
            self.ring.push(e);
        } else {
            self.ring[self.next] = e;
        }
        self.next = (self.next + 1) % TRACE_CAPACITY;
    }

    fn tail(&self) -> Vec<TraceEvent> {
        if self.ring.len() < TRACE_CAPACITY {
            return self.ring.clone();
        }
        let mut v = self.ring[self.next..].to_vec();
        v.extend_from_slice(&self.ring[..self.next]);
        v
    }
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// One simulated CPU's record (INV-DET-3).
struct SimCpu {
    state: AtomicU8,
    /// Interrupts raised for this CPU and not yet collected by it.
    pending: AtomicU8,
    /// Virtual deadline in ns, or [`NO_DEADLINE`].
    deadline: AtomicU64,
    /// The thread-local fields, while the CPU does not run.
    saved_irqs: AtomicBool,
    saved_pending: AtomicU8,
    saved_local: AtomicPtr<CpuLocal>,
    /// INV-DET-5.
    suspender: AtomicPtr<Suspender>,
}

impl SimCpu {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(OFF),
            pending: AtomicU8::new(0),
            deadline: AtomicU64::new(NO_DEADLINE),
            saved_irqs: AtomicBool::new(false),
            saved_pending: AtomicU8::new(0),
            saved_local: AtomicPtr::new(ptr::null_mut()),
            suspender: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A fresh CPU: masked, nothing pending, no block, no timer, ready.
    fn reset(&self) {
        self.pending.store(0, Ordering::SeqCst);
        self.deadline.store(NO_DEADLINE, Ordering::SeqCst);
        self.saved_irqs.store(false, Ordering::SeqCst);
        self.saved_pending.store(0, Ordering::SeqCst);
        self.saved_local.store(ptr::null_mut(), Ordering::SeqCst);
        self.suspender.store(ptr::null_mut(), Ordering::SeqCst);
        self.state.store(READY, Ordering::SeqCst);
    }
}

/// A secondary CPU's fiber; its body borrows nothing.
type CpuFiber = SendFiber<'static, HostStack>;

/// The record pointer a secondary's body uses to publish its suspender.
struct RecordPtr(*const SimCpu);

// SAFETY: the pointer is only dereferenced by the fiber body, on the host
// thread (INV-DET-1), while the `Det` that owns the record (and the fiber)
// lives.
unsafe impl Send for RecordPtr {}

/// The simulation state of one deterministic machine.
pub(crate) struct Det {
    seed: u64,
    /// Virtual nanoseconds since boot.
    clock: AtomicU64,
    /// splitmix64 state of the interleaving generator.
    rng: AtomicU64,
    /// splitmix64 state of `Power::entropy_seed`.
    entropy: AtomicU64,
    cpus: Box<[SimCpu]>,
    /// The fibers of secondary CPUs, by id (INV-DET-1: only [`Det::run`]
    /// resumes them, with the lock released).
    fibers: Mutex<Vec<Option<CpuFiber>>>,
    /// The CPU the host thread ran last.
    last: AtomicUsize,
    trace: Mutex<Trace>,
}

impl Det {
    pub(crate) fn new(seed: u64, cpus: usize) -> Self {
        Self {
            seed,
            clock: AtomicU64::new(0),
            rng: AtomicU64::new(mix(seed)),
            entropy: AtomicU64::new(mix(seed ^ 0x5eed_e17a_0b5e_ed00)),
            cpus: (0..cpus).map(|_| SimCpu::new()).collect(),
            fibers: Mutex::new((0..cpus).map(|_| None).collect()),
            last: AtomicUsize::new(0),
            trace: Mutex::new(Trace::new()),
        }
    }

    fn time_ns(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Virtual time since boot.
    pub(crate) fn time(&self) -> Duration {
        Duration::from_nanos(self.time_ns())
    }

    fn advance(&self, step: Duration) {
        let ns = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
        self.clock.fetch_add(ns, Ordering::SeqCst);
    }

    /// The next draw of the interleaving generator.
    fn draw(&self) -> u64 {
        mix(self
            .rng
            .fetch_add(GOLDEN_GAMMA, Ordering::SeqCst)
            .wrapping_add(GOLDEN_GAMMA))
    }

    /// `Power::entropy_seed`: a function of the seed and the call count.
    pub(crate) fn entropy(&self) -> u64 {
        mix(self
            .entropy
            .fetch_add(GOLDEN_GAMMA, Ordering::SeqCst)
            .wrapping_add(GOLDEN_GAMMA))
    }

    pub(crate) fn record(&self, event: Event) {
        let e = TraceEvent {
            time: self.time(),
            event,
        };
        // INV-DET-4: a poisoned lock only means a panic elsewhere; the
        // trace itself is always consistent between pushes.
        self.trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e);
    }

    pub(crate) fn summary(&self) -> TraceSummary {
        let t = self.trace.lock().unwrap_or_else(PoisonError::into_inner);
        TraceSummary {
            seed: self.seed,
            virtual_time: self.time(),
            events: t.events,
            digest: t.digest,
        }
    }

    pub(crate) fn tail(&self) -> Vec<TraceEvent> {
        self.trace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tail()
    }

    fn cpu(&self, t: &CpuThread) -> Option<(CpuId, &SimCpu)> {
        let id = t.id.load(Ordering::SeqCst);
        self.cpus.get(id).map(|r| (id, r))
    }

    // ---- the CPU side: called on a CPU of this machine ----

    /// `Clock::now` on a CPU of this machine: advance, collect, maybe
    /// switch (INV-DET-2).
    pub(crate) fn on_now(&self, t: &CpuThread) {
        self.advance(NOW_STEP);
        self.safe_point(t, NOW_SWITCH_ONE_IN);
    }

    /// `Interrupts::poll` on a CPU of this machine.
    pub(crate) fn on_poll(&self, t: &CpuThread) {
        self.advance(POLL_STEP);
        self.safe_point(t, POLL_SWITCH_ONE_IN);
    }

    /// Advance only: `now`/`poll` from a thread that is no CPU of ours.
    pub(crate) fn tick(&self, step: Duration) {
        self.advance(step);
    }

    fn safe_point(&self, t: &CpuThread, one_in: u64) {
        self.collect(t);
        if t.irqs_enabled.load(Ordering::SeqCst) && self.draw().is_multiple_of(one_in) {
            self.yield_cpu(t, READY);
            self.collect(t);
        }
    }

    /// Take what arrived for the calling CPU (IPIs from other CPUs, its own
    /// timer if due) into its thread-locals: delivered now when interrupts
    /// are enabled, pending otherwise. Returns whether anything arrived.
    pub(crate) fn collect(&self, t: &CpuThread) -> bool {
        let Some((id, rec)) = self.cpu(t) else {
            return false;
        };
        let mut bits = rec.pending.swap(0, Ordering::SeqCst);
        let deadline = rec.deadline.load(Ordering::SeqCst);
        if deadline <= self.time_ns() {
            rec.deadline.store(NO_DEADLINE, Ordering::SeqCst);
            self.record(Event::TimerFired { cpu: id });
            bits |= PENDING_TIMER;
        }
        if bits == 0 {
            return false;
        }
        irq::arrive(t, bits);
        true
    }

    /// `Cpus::wait_for_interrupt`: return at once when something is pending
    /// or arrives now; otherwise idle until the loop finds this CPU
    /// wakeable, then collect.
    pub(crate) fn wait(&self, t: &CpuThread) {
        if self.collect(t) || t.pending.load(Ordering::SeqCst) != 0 {
            return;
        }
        self.yield_cpu(t, IDLE);
        self.collect(t);
    }

    /// Give the host thread back to the loop, leaving this CPU `state`.
    fn yield_cpu(&self, t: &CpuThread, state: u8) {
        let Some((_, rec)) = self.cpu(t) else { return };
        let s = rec.suspender.load(Ordering::SeqCst);
        if s.is_null() {
            return; // Not inside a CPU fiber: nothing to switch from.
        }
        rec.state.store(state, Ordering::SeqCst);
        // SAFETY: INV-DET-5: the suspender of the running CPU's fiber, and
        // we run inside that fiber (INV-DET-1, INV-DET-3: the thread-local
        // id names the CPU whose fiber the host thread is in).
        unsafe { (*s).suspend() };
    }

    /// `Clock::set_timer` on the calling CPU (then collected at once, so a
    /// past deadline interrupts now when enabled).
    pub(crate) fn set_timer(&self, t: &CpuThread, deadline: Duration) {
        if let Some((_, rec)) = self.cpu(t) {
            let ns = u64::try_from(deadline.as_nanos()).unwrap_or(NO_DEADLINE - 1);
            rec.deadline
                .store(ns.min(NO_DEADLINE - 1), Ordering::SeqCst);
            self.collect(t);
        }
    }

    /// `Clock::cancel_timer` on the calling CPU.
    pub(crate) fn cancel_timer(&self, t: &CpuThread) {
        if let Some((_, rec)) = self.cpu(t) {
            rec.deadline.store(NO_DEADLINE, Ordering::SeqCst);
        }
    }

    /// `Cpus::send_ipi` to `to`; `from` is the calling CPU's thread-locals
    /// when it is a CPU of this machine.
    pub(crate) fn send_ipi(&self, from: Option<&CpuThread>, to: CpuId) {
        let Some(rec) = self.cpus.get(to) else { return };
        let sender = from.and_then(|t| self.cpu(t)).map(|(id, _)| id);
        self.record(Event::Ipi {
            from: sender.unwrap_or(usize::MAX),
            to,
        });
        match from {
            Some(t) if sender == Some(to) => irq::arrive(t, PENDING_IPI),
            _ => {
                rec.pending.fetch_or(PENDING_IPI, Ordering::SeqCst);
            }
        }
    }

    /// `Cpus::start_cpu` (the slot is claimed): a fiber for `cpu` running
    /// `entry(arg)`, ready to be picked.
    pub(crate) fn start(&self, cpu: CpuId, entry: CpuEntry, arg: usize) -> Result<(), HalError> {
        let Some(rec) = self.cpus.get(cpu) else {
            return Err(HalError::OutOfRange);
        };
        let stack = HostStack::new(CPU_STACK_SIZE).map_err(|_| HalError::NoMemory)?;
        let record = RecordPtr(rec);
        let fiber = Fiber::new(stack, move |s: &Suspender| {
            let record = record;
            // SAFETY: `RecordPtr`'s contract: the record outlives the fiber.
            let rec = unsafe { &*record.0 };
            rec.suspender
                .store(ptr::from_ref(s).cast_mut(), Ordering::SeqCst);
            run_kernel(|| entry(arg));
        });
        // SAFETY: INV-DET-1: the fiber is only ever resumed on the host
        // thread, so nothing on its stack changes threads.
        let fiber = unsafe { SendFiber::new(fiber) };
        rec.reset();
        self.record(Event::Start { cpu });
        let mut fibers = self.fibers.lock().unwrap_or_else(PoisonError::into_inner);
        fibers[cpu] = Some(fiber);
        Ok(())
    }

    // ---- the host side: the loop ----

    /// Run `f` as CPU `main` (already claimed, with the calling thread set
    /// up as a CPU of `machine`) and every CPU it starts, until `f`
    /// returns. `kernel` as for `context::on_fresh_cpu`: a panic in `f`
    /// ends the process, else it is returned.
    ///
    /// # Errors
    /// [`HostError::FiberStack`], or [`HostError::Deadlock`] (reported on
    /// standard error; the CPUs' fibers are abandoned).
    pub(crate) fn run<R: Send>(
        &self,
        machine: &Machine,
        main: CpuId,
        kernel: bool,
        f: impl FnOnce() -> R + Send,
    ) -> Result<std::thread::Result<R>, HostError> {
        let Some(rec) = self.cpus.get(main) else {
            return Err(HostError::NoCpus);
        };
        let stack = HostStack::new(CPU_STACK_SIZE).map_err(HostError::FiberStack)?;
        let mut out = None;
        let out_ref = &mut out;
        rec.reset();
        let mut fiber = Fiber::new(stack, move |s: &Suspender| {
            rec.suspender
                .store(ptr::from_ref(s).cast_mut(), Ordering::SeqCst);
            *out_ref = Some(if kernel {
                Ok(run_kernel(f))
            } else {
                catch_unwind(AssertUnwindSafe(f))
            });
        });
        self.record(Event::Start { cpu: main });
        self.last.store(main, Ordering::SeqCst);
        let driven = self.drive(machine, main, &mut fiber);
        // A suspended fiber (deadlock) is abandoned: its stack leaks.
        drop(fiber);
        driven?;
        Ok(out.unwrap_or_else(|| Err(Box::new("the CPU fiber ended without a result"))))
    }

    fn drive(
        &self,
        machine: &Machine,
        main: CpuId,
        main_fiber: &mut Fiber<'_, HostStack>,
    ) -> Result<(), HostError> {
        loop {
            let next = self.pick()?;
            let prev = self.last.swap(next, Ordering::SeqCst);
            if prev != next {
                self.record(Event::Switch {
                    from: prev,
                    to: next,
                });
            }
            self.load(next);
            let resumed = if next == main {
                main_fiber.resume()
            } else {
                let taken = self
                    .fibers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_mut(next)
                    .and_then(Option::take);
                match taken {
                    Some(mut fiber) => {
                        let r = fiber.resume();
                        if r == Resume::Suspended {
                            let mut fibers =
                                self.fibers.lock().unwrap_or_else(PoisonError::into_inner);
                            fibers[next] = Some(fiber);
                        }
                        r
                    }
                    None => Resume::Finished,
                }
            };
            self.save(next);
            if resumed == Resume::Finished {
                self.cpus[next].state.store(OFF, Ordering::SeqCst);
                self.cpus[next]
                    .suspender
                    .store(ptr::null_mut(), Ordering::SeqCst);
                self.record(Event::End { cpu: next });
                if next == main {
                    return Ok(());
                }
                if let Some(slot) = machine.cpus.slot(next) {
                    slot.unclaim();
                }
            }
        }
    }

    /// Whether CPU `rec` can run now.
    fn runnable(&self, rec: &SimCpu) -> bool {
        match rec.state.load(Ordering::SeqCst) {
            READY => true,
            IDLE => {
                rec.pending.load(Ordering::SeqCst) != 0
                    || rec.deadline.load(Ordering::SeqCst) <= self.time_ns()
            }
            _ => false,
        }
    }

    /// The next CPU to run, drawn from the runnable ones (another than the
    /// last when there is a choice); jumps virtual time when all idle.
    fn pick(&self) -> Result<CpuId, HostError> {
        loop {
            let last = self.last.load(Ordering::SeqCst);
            let count = self.cpus.iter().filter(|r| self.runnable(r)).count();
            if count > 0 {
                let others = self
                    .cpus
                    .iter()
                    .enumerate()
                    .filter(|&(i, r)| i != last && self.runnable(r))
                    .count();
                if others == 0 {
                    return Ok(last);
                }
                let k = usize::try_from(self.draw() % others as u64).unwrap_or(0);
                let found = self
                    .cpus
                    .iter()
                    .enumerate()
                    .filter(|&(i, r)| i != last && self.runnable(r))
                    .nth(k)
                    .map(|(i, _)| i);
                return Ok(found.unwrap_or(last));
            }
            let earliest = self
                .cpus
                .iter()
                .filter(|r| r.state.load(Ordering::SeqCst) == IDLE)
                .map(|r| r.deadline.load(Ordering::SeqCst))
                .min()
                .filter(|&d| d != NO_DEADLINE);
            match earliest {
                Some(d) => {
                    self.clock.fetch_max(d, Ordering::SeqCst);
                    self.record(Event::IdleJump);
                }
                None => {
                    self.record(Event::Deadlock);
                    let virtual_ns = self.time_ns();
                    eprintln!(
                        "hal-hosted: deterministic run (seed {}): deadlock at virtual time {virtual_ns} ns: \
                         every CPU waits for an interrupt, none is pending and no timer is armed",
                        self.seed
                    );
                    return Err(HostError::Deadlock { virtual_ns });
                }
            }
        }
    }

    /// Make the host thread's thread-locals CPU `cpu`'s (INV-DET-3).
    fn load(&self, cpu: CpuId) {
        let rec = &self.cpus[cpu];
        thread::with(|t| {
            t.id.store(cpu, Ordering::SeqCst);
            t.slot.store(ptr::null_mut(), Ordering::SeqCst);
            t.cpu_local
                .store(rec.saved_local.load(Ordering::SeqCst), Ordering::SeqCst);
            t.pending
                .store(rec.saved_pending.load(Ordering::SeqCst), Ordering::SeqCst);
            t.irqs_enabled
                .store(rec.saved_irqs.load(Ordering::SeqCst), Ordering::SeqCst);
        });
        // A CPU that idled stays IDLE in its record until it runs.
        rec.state.store(RUNNING, Ordering::SeqCst);
    }

    /// Save the host thread's thread-locals into CPU `cpu`'s record.
    fn save(&self, cpu: CpuId) {
        let rec = &self.cpus[cpu];
        thread::with(|t| {
            rec.saved_local
                .store(t.cpu_local.load(Ordering::SeqCst), Ordering::SeqCst);
            rec.saved_pending
                .store(t.pending.load(Ordering::SeqCst), Ordering::SeqCst);
            rec.saved_irqs
                .store(t.irqs_enabled.load(Ordering::SeqCst), Ordering::SeqCst);
        });
    }
}
