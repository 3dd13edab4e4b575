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
//! pending or a timer due (a stalled CPU, see below, not before its stall
//! ends). When every CPU idles and none can wake, virtual time jumps to
//! the earliest thing that will happen: an armed timer, the end of a
//! stall, a withheld host-file completion; when there is none, that is a
//! deadlock: it is reported on standard error and the run ends with
//! [`HostError::Deadlock`] (`boot` turns it into `exit::FAILED`).
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
//! # Injected faults
//!
//! [`crate::Config::faults`] gives a rate in per mille for each kind of
//! fault ([`Faults`]). Each kind draws from a splitmix64 stream of its own,
//! derived from the seed and the kind (never from the interleaving
//! generator), and only when its rate is not zero; so a machine without
//! faults runs exactly as before, and a run with faults is as much a
//! function of the seed as one without. Where each is decided:
//!
//! | fault | occasion | effect |
//! |---|---|---|
//! | `spurious_irqs` | each scheduling step of the loop | a random CPU that is on gets an IPI pending, as `send_ipi` leaves one |
//! | `cpu_stalls` | each scheduling step of the loop | a random CPU that is on is not picked for 1..=20 ms of virtual time |
//! | `timer_skew` | each `Clock::set_timer` | the arm fires 1..=5 ms after it would have |
//! | `host_io_errors` | each host-file submit (`hostfs`) | the request is answered `FsError::Io`, not carried out |
//! | `slow_io` | each host-file submit | carried out, but its completion is withheld for 1..=10 ms of virtual time |
//!
//! A withheld completion is released by the loop (before each pick) once
//! virtual time has passed its due time: the device files it as complete
//! and the loop wakes the waker its waiter left, with the host thread
//! detached from every CPU, as a device thread would (INV-DET-7). Each
//! fault is recorded in the trace when it is injected (and each withheld
//! completion again when released) and counted
//! ([`crate::Hosted::faults_injected`]).
//!
//! # Trace
//!
//! Every scheduling event (CPU start and end, switch, IPI sent, timer
//! fired, interrupt delivered, idle jump, deadlock, injected fault,
//! withheld completion released) is folded, with its virtual time, into a
//! 64-bit FNV-1a digest and counted; the last [`TRACE_CAPACITY`] are kept
//! in a ring ([`crate::Hosted::trace_tail`]).
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
//! - INV-DET-6: injected faults keep the HAL's invariants. A spurious IPI
//!   is only a pending bit on a CPU's record, collected and delivered like
//!   any other (INV-IRQ-1/2); a stall only keeps a CPU from being picked
//!   until a virtual time that the idle jump reaches, so it runs again; a
//!   skewed timer is a later deadline, which still fires; a withheld
//!   completion is released (INV-DET-7). A kind with rate zero draws
//!   nothing and records nothing.
//! - INV-DET-7: the loop releases every withheld host-file completion once
//!   virtual time passes its due time, counts one as something that will
//!   happen (never a deadlock), and wakes its waker only between fibers,
//!   with the host thread's CPU fields cleared and its machine pointer
//!   null (`detached`), so the waker's kernel code runs as on a thread
//!   that is no CPU, never as the CPU that ran last.

use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};

use kernel_core::hal::{CpuEntry, CpuId, CpuLocal, HalError, Interrupt};
use kernel_core::sched::fiber::{Fiber, Resume, SendFiber, Suspender};

use crate::context::{CPU_STACK_SIZE, run_kernel};
use crate::stack::HostStack;
use crate::thread::{self, CpuThread, PENDING_IPI, PENDING_TIMER};
use crate::{FaultCounts, Faults, HostError, Machine, irq};

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

/// Longest delay of a late host-file completion ([`Faults::slow_io`]), in
/// ms (at least 1).
const SLOW_IO_MAX_MS: u64 = 10;
/// Longest lateness of a skewed timer ([`Faults::timer_skew`]), in ms.
const TIMER_SKEW_MAX_MS: u64 = 5;
/// Longest CPU stall ([`Faults::cpu_stalls`]), in ms.
const CPU_STALL_MAX_MS: u64 = 20;
/// A fault's rate is per this many.
const PER_MILLE: u64 = 1000;
const MS: u64 = 1_000_000;

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
    /// Every CPU idled: virtual time jumped to the earliest timer (or end
    /// of a stall, or withheld host-file completion).
    IdleJump,
    /// Every CPU idled with no timer armed and nothing pending.
    Deadlock,
    /// Injected ([`Faults::spurious_irqs`]): an IPI nobody sent is now
    /// pending on a CPU.
    SpuriousIpi {
        /// The CPU.
        cpu: CpuId,
    },
    /// Injected ([`Faults::cpu_stalls`]): a CPU is not scheduled for a
    /// while.
    Stall {
        /// The CPU.
        cpu: CpuId,
        /// For how long (virtual time).
        duration: Duration,
    },
    /// Injected ([`Faults::timer_skew`]): a timer arm fires late.
    TimerSkew {
        /// The CPU whose timer it is.
        cpu: CpuId,
        /// How late (virtual time).
        by: Duration,
    },
    /// Injected ([`Faults::host_io_errors`]): a host-file request fails
    /// with `FsError::Io` instead of being carried out.
    IoError {
        /// The request's ticket.
        ticket: u64,
    },
    /// Injected ([`Faults::slow_io`]): a host-file request was carried out
    /// and its completion is withheld for a while.
    SlowIo {
        /// The request's ticket.
        ticket: u64,
        /// For how long (virtual time).
        delay: Duration,
    },
    /// A withheld host-file completion was delivered (its waiter woken).
    IoCompleted {
        /// The request's ticket.
        ticket: u64,
    },
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
            Self::SpuriousIpi { cpu } => (9, id(cpu), 0),
            Self::Stall { cpu, duration } => (10, id(cpu), nanos(duration)),
            Self::TimerSkew { cpu, by } => (11, id(cpu), nanos(by)),
            Self::IoError { ticket } => (12, ticket, 0),
            Self::SlowIo { ticket, delay } => (13, ticket, nanos(delay)),
            Self::IoCompleted { ticket } => (14, ticket, 0),
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
            Event::IdleJump => f.write_str("idle: jump to the next timer, stall end or completion"),
            Event::Deadlock => f.write_str("deadlock"),
            Event::SpuriousIpi { cpu } => write!(f, "fault: spurious ipi on cpu{cpu}"),
            Event::Stall { cpu, duration } => {
                write!(f, "fault: cpu{cpu} stalls for {}ns", duration.as_nanos())
            }
            Event::TimerSkew { cpu, by } => {
                write!(f, "fault: timer of cpu{cpu} late by {}ns", by.as_nanos())
            }
            Event::IoError { ticket } => write!(f, "fault: host request {ticket} fails (io)"),
            Event::SlowIo { ticket, delay } => write!(
                f,
                "fault: host request {ticket} completes in {}ns",
                delay.as_nanos()
            ),
            Event::IoCompleted { ticket } => write!(f, "host request {ticket} completes"),
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

/// `d` in nanoseconds, saturated.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The kinds of injected fault ([`Faults`]), each drawn from its own
/// stream (INV-DET-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    HostIoError = 0,
    SlowIo = 1,
    SpuriousIrq = 2,
    TimerSkew = 3,
    CpuStall = 4,
}

const FAULT_KINDS: usize = 5;

/// The fault injector: per kind a rate, a splitmix64 stream of its own
/// (derived from the seed and the kind) and a count of faults injected.
struct Injector {
    rates: [u64; FAULT_KINDS],
    streams: [AtomicU64; FAULT_KINDS],
    counts: [AtomicU64; FAULT_KINDS],
}

impl Injector {
    fn new(seed: u64, faults: Faults) -> Self {
        let rates = [
            faults.host_io_errors,
            faults.slow_io,
            faults.spurious_irqs,
            faults.timer_skew,
            faults.cpu_stalls,
        ]
        .map(|r| u64::from(r).min(PER_MILLE));
        let mut kind = 0u64;
        let streams = [(); FAULT_KINDS].map(|()| {
            kind += 1;
            AtomicU64::new(mix(seed
                ^ 0xfa17_0000_0000_0000
                ^ kind.wrapping_mul(GOLDEN_GAMMA)))
        });
        Self {
            rates,
            streams,
            counts: [(); FAULT_KINDS].map(|()| AtomicU64::new(0)),
        }
    }

    fn draw(&self, kind: FaultKind) -> u64 {
        mix(self.streams[kind as usize]
            .fetch_add(GOLDEN_GAMMA, Ordering::SeqCst)
            .wrapping_add(GOLDEN_GAMMA))
    }

    /// Whether a fault of `kind` happens at this occasion: then it is
    /// counted and the answer is a further draw for its parameters. Draws
    /// nothing when the kind's rate is zero.
    fn roll(&self, kind: FaultKind) -> Option<u64> {
        let rate = self.rates[kind as usize];
        if rate == 0 || self.draw(kind) % PER_MILLE >= rate {
            return None;
        }
        self.counts[kind as usize].fetch_add(1, Ordering::SeqCst);
        Some(self.draw(kind))
    }

    fn counts(&self) -> FaultCounts {
        let c = |k: FaultKind| self.counts[k as usize].load(Ordering::SeqCst);
        FaultCounts {
            host_io_errors: c(FaultKind::HostIoError),
            slow_io: c(FaultKind::SlowIo),
            spurious_irqs: c(FaultKind::SpuriousIrq),
            timer_skew: c(FaultKind::TimerSkew),
            cpu_stalls: c(FaultKind::CpuStall),
        }
    }
}

/// A duration of 1 ms up to `max_ms` ms, to the nanosecond, from `draw`.
fn span(draw: u64, max_ms: u64) -> u64 {
    MS + draw % ((max_ms - 1) * MS + 1)
}

/// One simulated CPU's record (INV-DET-3).
struct SimCpu {
    state: AtomicU8,
    /// Interrupts raised for this CPU and not yet collected by it.
    pending: AtomicU8,
    /// Virtual deadline in ns, or [`NO_DEADLINE`].
    deadline: AtomicU64,
    /// Injected stall ([`Faults::cpu_stalls`]): not picked before this
    /// virtual time in ns (0: never stalled).
    stalled_until: AtomicU64,
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
            stalled_until: AtomicU64::new(0),
            saved_irqs: AtomicBool::new(false),
            saved_pending: AtomicU8::new(0),
            saved_local: AtomicPtr::new(ptr::null_mut()),
            suspender: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A fresh CPU: masked, nothing pending, no block, no timer, not
    /// stalled, ready.
    fn reset(&self) {
        self.pending.store(0, Ordering::SeqCst);
        self.deadline.store(NO_DEADLINE, Ordering::SeqCst);
        self.stalled_until.store(0, Ordering::SeqCst);
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
    /// The injected faults' streams and counts (INV-DET-6).
    faults: Injector,
    /// Withheld host-file completions ([`Faults::slow_io`]): (virtual
    /// due time in ns, ticket), released in that order by the loop
    /// (INV-DET-7).
    late: Mutex<BTreeSet<(u64, u64)>>,
    /// The earliest due time in `late`, or [`NO_DEADLINE`]: the loop's
    /// check without the lock.
    late_next: AtomicU64,
}

impl Det {
    pub(crate) fn new(seed: u64, cpus: usize, faults: Faults) -> Self {
        Self {
            seed,
            clock: AtomicU64::new(0),
            rng: AtomicU64::new(mix(seed)),
            entropy: AtomicU64::new(mix(seed ^ 0x5eed_e17a_0b5e_ed00)),
            cpus: (0..cpus).map(|_| SimCpu::new()).collect(),
            fibers: Mutex::new((0..cpus).map(|_| None).collect()),
            last: AtomicUsize::new(0),
            trace: Mutex::new(Trace::new()),
            faults: Injector::new(seed, faults),
            late: Mutex::new(BTreeSet::new()),
            late_next: AtomicU64::new(NO_DEADLINE),
        }
    }

    /// How many faults of each kind were injected so far.
    pub(crate) fn faults_injected(&self) -> FaultCounts {
        self.faults.counts()
    }

    // ---- injected faults on the device side (hostfs) ----

    /// Whether host-file request `ticket` fails with an injected I/O error
    /// ([`Faults::host_io_errors`]); recorded when it does.
    pub(crate) fn host_io_error(&self, ticket: u64) -> bool {
        let hit = self.faults.roll(FaultKind::HostIoError).is_some();
        if hit {
            self.record(Event::IoError { ticket });
        }
        hit
    }

    /// Whether host-file request `ticket` completes late
    /// ([`Faults::slow_io`]): then it is recorded, and the answer is the
    /// virtual time (1..=10 ms from now) at which its completion is due,
    /// for [`Det::withhold`] once the device has filed it withheld.
    pub(crate) fn slow_io(&self, ticket: u64) -> Option<Duration> {
        let r = self.faults.roll(FaultKind::SlowIo)?;
        let delay = span(r, SLOW_IO_MAX_MS);
        self.record(Event::SlowIo {
            ticket,
            delay: Duration::from_nanos(delay),
        });
        Some(Duration::from_nanos(self.time_ns().saturating_add(delay)))
    }

    /// Release the withheld completion of `ticket` at virtual time `due`
    /// (from [`Det::slow_io`]): the loop calls `Device::release` then
    /// (INV-DET-7).
    pub(crate) fn withhold(&self, ticket: u64, due: Duration) {
        let due = nanos(due);
        let mut late = self.late.lock().unwrap_or_else(PoisonError::into_inner);
        late.insert((due, ticket));
        self.late_next.fetch_min(due, Ordering::SeqCst);
    }

    /// The loop: release every withheld completion that is due, in due
    /// order, waking its waiter with the host thread detached from every
    /// CPU (INV-DET-7).
    fn release_due(&self, machine: &Machine) {
        let now = self.time_ns();
        if self.late_next.load(Ordering::SeqCst) > now {
            return;
        }
        let due: Vec<u64> = {
            let mut late = self.late.lock().unwrap_or_else(PoisonError::into_inner);
            let mut due = Vec::new();
            while let Some(&(at, ticket)) = late.first()
                && at <= now
            {
                late.pop_first();
                due.push(ticket);
            }
            let next = late.first().map_or(NO_DEADLINE, |&(at, _)| at);
            self.late_next.store(next, Ordering::SeqCst);
            due
        };
        for ticket in due {
            self.record(Event::IoCompleted { ticket });
            if let Some(waker) = machine.hostfs.release(ticket) {
                detached(|| waker.wake());
            }
        }
    }

    // ---- injected faults on the loop's side ----

    /// One scheduling step's faults: a spurious IPI at a random CPU
    /// ([`Faults::spurious_irqs`]), a random CPU stalled
    /// ([`Faults::cpu_stalls`]). Only CPUs that are on are candidates.
    fn step_faults(&self) {
        let on = self
            .cpus
            .iter()
            .filter(|r| r.state.load(Ordering::SeqCst) != OFF)
            .count() as u64;
        if on == 0 {
            return;
        }
        let nth_on = |r: u64| {
            let k = usize::try_from(r % on).unwrap_or(0);
            self.cpus
                .iter()
                .enumerate()
                .filter(|(_, rec)| rec.state.load(Ordering::SeqCst) != OFF)
                .nth(k)
        };
        if let Some(r) = self.faults.roll(FaultKind::SpuriousIrq)
            && let Some((cpu, rec)) = nth_on(r)
        {
            // Exactly what `send_ipi` leaves for a CPU that does not run:
            // collected at its next switch point (INV-IRQ-1 holds there).
            self.record(Event::SpuriousIpi { cpu });
            rec.pending.fetch_or(PENDING_IPI, Ordering::SeqCst);
        }
        if let Some(r) = self.faults.roll(FaultKind::CpuStall)
            && let Some((cpu, rec)) = nth_on(r)
        {
            let duration = span(self.faults.draw(FaultKind::CpuStall), CPU_STALL_MAX_MS);
            let until = self.time_ns().saturating_add(duration);
            self.record(Event::Stall {
                cpu,
                duration: Duration::from_nanos(duration),
            });
            rec.stalled_until.fetch_max(until, Ordering::SeqCst);
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
    /// past deadline interrupts now when enabled). An injected skew
    /// ([`Faults::timer_skew`]) makes the arm fire 1..=5 ms after it would
    /// have (after the deadline, or after now for a past one).
    pub(crate) fn set_timer(&self, t: &CpuThread, deadline: Duration) {
        if let Some((id, rec)) = self.cpu(t) {
            let mut ns = u64::try_from(deadline.as_nanos()).unwrap_or(NO_DEADLINE - 1);
            if let Some(r) = self.faults.roll(FaultKind::TimerSkew) {
                let by = span(r, TIMER_SKEW_MAX_MS);
                self.record(Event::TimerSkew {
                    cpu: id,
                    by: Duration::from_nanos(by),
                });
                ns = ns.max(self.time_ns()).saturating_add(by);
            }
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
            self.step_faults();
            let next = self.pick(machine)?;
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

    /// The virtual time from which CPU `rec` can run unless something
    /// else arrives for it: 0 when ready (or an interrupt is pending),
    /// its timer's deadline when idle, and not before its stall ends;
    /// [`NO_DEADLINE`] when only something from elsewhere can make it run.
    fn runnable_at(rec: &SimCpu) -> u64 {
        let at = match rec.state.load(Ordering::SeqCst) {
            READY => 0,
            IDLE if rec.pending.load(Ordering::SeqCst) != 0 => 0,
            IDLE => rec.deadline.load(Ordering::SeqCst),
            _ => NO_DEADLINE,
        };
        if at == NO_DEADLINE {
            return NO_DEADLINE;
        }
        at.max(rec.stalled_until.load(Ordering::SeqCst))
    }

    /// Whether CPU `rec` can run now.
    fn runnable(&self, rec: &SimCpu) -> bool {
        Self::runnable_at(rec) <= self.time_ns()
    }

    /// The earliest future virtual time at which something will happen
    /// while no CPU can run: a CPU's timer or stall end, or a withheld
    /// host-file completion (INV-DET-7); `None` for a deadlock.
    fn next_happening(&self) -> Option<u64> {
        let now = self.time_ns();
        self.cpus
            .iter()
            .filter(|r| r.state.load(Ordering::SeqCst) != OFF)
            .flat_map(|r| [Self::runnable_at(r), r.stalled_until.load(Ordering::SeqCst)])
            .chain([self.late_next.load(Ordering::SeqCst)])
            .filter(|&t| t > now && t != NO_DEADLINE)
            .min()
    }

    /// The next CPU to run, drawn from the runnable ones (another than the
    /// last when there is a choice); jumps virtual time when all idle.
    /// Releases due host-file completions first (INV-DET-7).
    fn pick(&self, machine: &Machine) -> Result<CpuId, HostError> {
        loop {
            self.release_due(machine);
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
            match self.next_happening() {
                Some(d) => {
                    self.clock.fetch_max(d, Ordering::SeqCst);
                    self.record(Event::IdleJump);
                }
                None => {
                    self.record(Event::Deadlock);
                    let virtual_ns = self.time_ns();
                    eprintln!(
                        "hal-hosted: deterministic run (seed {}): deadlock at virtual time {virtual_ns} ns: \
                         every CPU waits for an interrupt, none is pending, no timer is armed, \
                         no CPU is stalled and no host-file completion is withheld",
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

/// Run `f` on the host thread as a thread that is no CPU of any machine
/// (as the threaded device's completion threads are): the kernel code a
/// waker runs must not take the host thread for the CPU that ran last
/// (INV-DET-7). The loop's next `load` sets the CPU fields again; only the
/// machine pointer needs putting back.
fn detached(f: impl FnOnce()) {
    let machine = thread::with(|t| {
        let machine = t.machine.swap(ptr::null_mut(), Ordering::SeqCst);
        t.slot.store(ptr::null_mut(), Ordering::SeqCst);
        t.cpu_local.store(ptr::null_mut(), Ordering::SeqCst);
        t.irqs_enabled.store(false, Ordering::SeqCst);
        t.pending.store(0, Ordering::SeqCst);
        machine
    });
    f();
    // INV-THREAD-1 holds again: the pointer is the machine this thread's
    // `CpuContext` keeps alive, which it was before.
    thread::with(|t| t.machine.store(machine, Ordering::SeqCst));
}
