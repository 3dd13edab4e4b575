//! hal-hosted: the Vessel HAL for an ordinary Linux process.
//!
//! A [`Hosted`] value is one machine:
//! - physical memory is a memfd, mapped once shared as the direct map
//!   (`memory`);
//! - the MMU edits host mappings of that memfd inside one reserved kernel
//!   window (`mmu`);
//! - CPUs are threads, each with an alternate signal stack, thread-locals and
//!   a POSIX timer (`context`, `cpu`);
//! - faults are `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE` and `SIGTRAP`;
//!   interrupts are the real-time signals [`TIMER_SIGNAL`] and [`IPI_SIGNAL`]
//!   (`signals`); masking them is a per-thread flag (`irq`).
//!
//! In deterministic mode ([`Config::deterministic`]) the same type runs
//! every CPU as a fiber on one host thread, with a virtual clock, virtual
//! timers and IPIs and a seeded interleaving (`det`); faults still arrive
//! as signals. [`Hosted::trace_summary`] identifies a run. Such a machine
//! may inject faults drawn from its seed ([`Config::faults`]: host-file
//! errors and late completions, spurious IPIs, late timers, CPU stalls),
//! each recorded in the trace and counted ([`Hosted::faults_injected`]).
//!
//! # Signals and masking
//!
//! | signal | meaning | handler |
//! |---|---|---|
//! | `SIGSEGV` | `TrapKind::PageFault` (x86_64: access from the page-fault error code; aarch64: `Unknown`) | `deliver_fault` |
//! | `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGTRAP` | `BusError`, `IllegalInstruction`, `Arithmetic`, `Breakpoint` | `deliver_fault` |
//! | [`TIMER_SIGNAL`] = 36 (`SIGRTMIN()+2` under glibc) | `Interrupt::Timer`, sent by the CPU's own POSIX timer | `deliver_interrupt` |
//! | [`IPI_SIGNAL`] = 37 (`SIGRTMIN()+3`) | `Interrupt::Ipi`, sent with `pthread_kill` | `deliver_interrupt` |
//!
//! Every handler runs on the CPU's alternate stack (`SA_ONSTACK`,
//! [`ALT_STACK_SIZE`]). Masking interrupts never touches the signal mask: it
//! clears a per-thread flag, and an interrupt signal that finds the flag
//! clear only records a pending bit, delivered when the flag is set again.
//! Faults are delivered with the flag cleared (as a riscv trap clears
//! `sstatus.SIE`) and it is restored on return. The signal mask is used only
//! by `wait_for_interrupt` (block, check pending, `sigsuspend`) and while a
//! CPU thread is set up and torn down. A fault on a thread with no CPU-local
//! block is reported on one line on standard error and then takes the
//! signal's default action (a core dump).
//!
//! In gdb: `handle SIGSEGV nostop noprint pass` (demand paging) and
//! `handle SIG36 SIG37 nostop noprint pass` (interrupts); the repository's
//! `scripts/vessel-gdb.py` does this. JIT code is announced to gdb and to
//! `perf` (`jit`; the objects gdb reads are `kernel_core::gdb_jit`'s). Compiled
//! modules may be kept across runs in a directory
//! ([`Hosted::set_code_cache`], `codecache`).
//!
//! Several machines may run in one process at once: all their state hangs
//! off the [`Hosted`] value and the threads that are its CPUs. The only
//! process-wide state is the set of signal handlers, installed once, which
//! dispatch through the interrupted thread's thread-locals.
//!
//! Crate invariants (module docs number their own):
//! - INV-HOST-1: a `Machine` lives as long as its [`Hosted`] value and
//!   every thread that is one of its CPUs (each holds an `Arc`); its memory
//!   and window are unmapped and the memfd closed when the last one goes.
//! - INV-HOST-2: every `unsafe` block says why its contract holds; the
//!   handlers are async-signal-safe (INV-SIG-2).

use std::sync::Arc;
use std::time::Duration;

use kernel_core::hal::Platform;

mod codecache;
mod console;
mod context;
mod cpu;
mod det;
mod error;
mod hostfs;
mod icache;
mod irq;
mod isa;
mod jit;
mod memory;
mod mmu;
mod power;
mod signals;
mod stack;
mod thread;
mod timer;
mod ucontext;

pub use context::{ALT_STACK_SIZE, CPU_STACK_SIZE};
pub use det::{
    Event, NOW_STEP, NOW_SWITCH_ONE_IN, POLL_STEP, POLL_SWITCH_ONE_IN, TRACE_CAPACITY, TraceEvent,
    TraceSummary,
};
pub use error::HostError;
pub use isa::host_isa;
pub use jit::{PerfMapError, enable_perf_map};
pub use mmu::WINDOW_ALIGN;
pub use signals::{IPI_SIGNAL, TIMER_SIGNAL};

/// Most CPUs a hosted machine may have.
pub const MAX_CPUS: usize = 1024;
/// Least physical memory a hosted machine may have: 16 MiB.
pub const MIN_MEMORY: u64 = 16 << 20;
/// Smallest kernel window a hosted machine may have: 16 MiB.
pub const MIN_WINDOW: usize = 16 << 20;

const PAGE_SIZE: usize = kernel_core::hal::PAGE_SIZE;
const PAGE: u64 = PAGE_SIZE as u64;

/// The shape of a hosted machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of CPUs (threads), at least 1 and at most [`MAX_CPUS`].
    pub cpus: usize,
    /// Physical memory in bytes (the memfd's size): a multiple of 4 KiB of
    /// at least [`MIN_MEMORY`]. Sparse: it costs what the kernel touches.
    pub memory: u64,
    /// Size of the kernel's virtual window in bytes: a multiple of 4 KiB of
    /// at least [`MIN_WINDOW`]. Reserved, not committed.
    pub window: usize,
    /// `Some(seed)`: deterministic mode. Every CPU is a fiber on the one
    /// thread that boots the machine, time is virtual and the interleaving
    /// of CPUs is drawn from `seed`, so two runs with the same seed (and
    /// workload) are identical (the module `det` says how). `None`: CPUs
    /// are threads and time is the host's.
    pub deterministic: Option<u64>,
    /// Keep what the kernel writes to its console in memory
    /// ([`Hosted::captured_console`]) instead of writing it to standard
    /// output. Panic output still goes to standard error.
    pub capture_console: bool,
    /// Faults to inject in deterministic mode, drawn from the seed (the
    /// module `det` says how); all zero (the default): none. Ignored with
    /// threads.
    pub faults: Faults,
}

/// Faults a deterministic machine injects, each as a rate in per mille, drawn from the machine's seed (all zero: none). Ignored with threads.
///
/// A rate above 1000 counts as 1000 (always). Every fault keeps the HAL's
/// invariants: a spurious IPI is one more `Interrupt::Ipi`, a stalled CPU
/// runs again, a late timer still fires and a late completion still wakes
/// its waiter (INV-DET-6 in `det`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Host-file requests (hostfs) that fail with an I/O error (`FsError::Io`) instead of being carried out.
    pub host_io_errors: u16,
    /// Host-file requests that complete late: carried out at submit, but their completion is delivered only after a random 1..=10 ms of virtual time (the waiting process stays asleep meanwhile; its waker is woken then).
    pub slow_io: u16,
    /// Scheduling steps at which a spurious IPI arrives at a random CPU.
    pub spurious_irqs: u16,
    /// Timer arms that fire late by a random 1..=5 ms of virtual time (timer skew, delayed interrupts).
    pub timer_skew: u16,
    /// Scheduling steps at which a random CPU stalls: it is not scheduled for a random 1..=20 ms of virtual time.
    pub cpu_stalls: u16,
}

/// How many of each fault a machine injected so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Host-file requests answered `FsError::Io` ([`Faults::host_io_errors`]).
    pub host_io_errors: u64,
    /// Host-file completions delivered late ([`Faults::slow_io`]).
    pub slow_io: u64,
    /// Spurious IPIs ([`Faults::spurious_irqs`]).
    pub spurious_irqs: u64,
    /// Timer arms made late ([`Faults::timer_skew`]).
    pub timer_skew: u64,
    /// CPU stalls ([`Faults::cpu_stalls`]).
    pub cpu_stalls: u64,
}

impl Default for Config {
    /// As many CPUs as the host offers, 512 MiB of memory, a 256 GiB
    /// window, threads, console on standard output, no injected faults.
    fn default() -> Self {
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory: 512 << 20,
            window: 256 << 30,
            deterministic: None,
            capture_console: false,
            faults: Faults::default(),
        }
    }
}

impl Config {
    fn validate(&self) -> Result<(), HostError> {
        if self.cpus == 0 {
            return Err(HostError::NoCpus);
        }
        if self.cpus > MAX_CPUS {
            return Err(HostError::TooManyCpus {
                requested: self.cpus,
            });
        }
        if !self.memory.is_multiple_of(PAGE)
            || self.memory < MIN_MEMORY
            || usize::try_from(self.memory).is_err()
        {
            return Err(HostError::BadMemorySize { bytes: self.memory });
        }
        if !self.window.is_multiple_of(PAGE_SIZE) || self.window < MIN_WINDOW {
            return Err(HostError::BadWindowSize { bytes: self.window });
        }
        Ok(())
    }
}

/// Everything one hosted machine owns. Fields drop in order: the window (and
/// every mapping in it) before the memory they map.
pub(crate) struct Machine {
    window: mmu::Window,
    phys: memory::PhysMem,
    cpus: cpu::CpuTable,
    clock: timer::BootClock,
    console: console::ConsoleLock,
    /// Deterministic mode's simulation, or `None` for threads.
    det: Option<det::Det>,
    /// The host directories passed through (hostfs).
    hostfs: hostfs::Device,
    /// Where compiled modules are kept across runs, if anywhere.
    code_cache: codecache::Dir,
}

/// A hosted machine: implements [`Platform`] and each of its parts.
///
/// Dropping it releases the machine once no CPU thread runs on it any more
/// (INV-HOST-1): [`boot`] joins them first; a secondary started with
/// `Cpus::start_cpu` and never joined keeps the machine alive until it ends.
pub struct Hosted {
    machine: Arc<Machine>,
}

impl Hosted {
    /// Build a machine: validate `config`, install the signal handlers (once
    /// per process), create and map the memory, reserve the window.
    ///
    /// # Errors
    /// A [`HostError`] saying which step failed; nothing is left behind.
    pub fn new(config: &Config) -> Result<Self, HostError> {
        Self::with_dirs(config, &[])
    }

    /// [`Hosted::new`], with the host directories `dirs` for the kernel to
    /// mount (hostfs: `kernel_core::proc::Mount::host` is an index into
    /// `dirs`).
    ///
    /// # Errors
    /// As [`Hosted::new`], and [`HostError::HostDir`] for a directory that
    /// does not open.
    pub fn with_dirs(config: &Config, dirs: &[std::path::PathBuf]) -> Result<Self, HostError> {
        config.validate()?;
        let hostfs = hostfs::Device::new(dirs, config.deterministic.is_some())
            .map_err(|(index, errno)| HostError::HostDir { index, errno })?;
        signals::install()?;
        icache::register()?;
        let phys = memory::PhysMem::new(config.memory)?;
        let hint = config.deterministic.map(|_| mmu::DETERMINISTIC_WINDOW_HINT);
        let window = mmu::Window::new(config.window, hint)?;
        let machine = Machine {
            window,
            phys,
            cpus: cpu::CpuTable::new(config.cpus),
            clock: timer::BootClock::start(),
            console: console::ConsoleLock::new(
                config.capture_console,
                config.deterministic.is_none(),
            ),
            det: config
                .deterministic
                .map(|seed| det::Det::new(seed, config.cpus, config.faults)),
            hostfs,
            code_cache: codecache::Dir::default(),
        };
        Ok(Self {
            machine: Arc::new(machine),
        })
    }

    /// Size of physical memory in bytes.
    pub fn memory_size(&self) -> u64 {
        self.machine.phys.size()
    }

    /// Whether the machine runs in deterministic mode.
    pub fn is_deterministic(&self) -> bool {
        self.machine.det.is_some()
    }

    /// Deterministic mode: the seed, virtual time, event count and trace
    /// digest so far; `None` with threads. Equal for two runs of the same
    /// workload with the same seed and CPU count.
    pub fn trace_summary(&self) -> Option<TraceSummary> {
        self.machine.det.as_ref().map(det::Det::summary)
    }

    /// Deterministic mode: the last (at most [`TRACE_CAPACITY`]) scheduling
    /// events, oldest first, for replaying a bug; empty with threads.
    pub fn trace_tail(&self) -> Vec<TraceEvent> {
        self.machine
            .det
            .as_ref()
            .map_or_else(Vec::new, det::Det::tail)
    }

    /// Deterministic mode: how many faults of each kind the machine
    /// injected so far ([`Config::faults`]); all zero with threads.
    pub fn faults_injected(&self) -> FaultCounts {
        self.machine
            .det
            .as_ref()
            .map_or_else(FaultCounts::default, det::Det::faults_injected)
    }

    /// What the kernel wrote to the console so far, when the machine was
    /// built with [`Config::capture_console`]; `None` otherwise.
    pub fn captured_console(&self) -> Option<Vec<u8>> {
        self.machine.console.captured()
    }

    /// With [`Config::capture_console`]: what the kernel wrote as errors
    /// (a program's standard error) so far; `None` without capture.
    pub fn captured_errors(&self) -> Option<Vec<u8>> {
        self.machine.console.captured_errors()
    }

    /// With [`Config::capture_console`]: `bytes` become the console's
    /// input, then end of input. Without capture input is standard input
    /// and this does nothing: false.
    pub fn set_input(&self, bytes: &[u8]) -> bool {
        self.machine.console.set_input(bytes)
    }

    /// Why writing the kernel's console output to standard output failed,
    /// if it did (its first failure; what followed was dropped). A run
    /// whose output was lost should not report success.
    pub fn console_error(&self) -> Option<std::io::Error> {
        self.machine.console.error()
    }

    fn machine_ptr(&self) -> *const Machine {
        Arc::as_ptr(&self.machine)
    }
}

impl Platform for Hosted {
    const NAME: &'static str = "hosted";
}

/// How long [`boot`] waits for secondary CPU threads to end once the kernel
/// has returned (they have left the kernel by then and only tear down).
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Build a machine, run `kernel_core::boot::boot` on a fresh CPU-0 thread,
/// join every CPU thread, tear the machine down and return the kernel's exit
/// status (`kernel_core::exit`).
///
/// A kernel panic on any CPU ends the process with `exit::PANIC`, as
/// `Power::shutdown` would; a fault the kernel answers `Fatal` ends it with
/// the kernel's status.
///
/// # Errors
/// A [`HostError`] when the machine or its CPU 0 cannot be set up.
pub fn boot(config: &Config, cmdline: &str) -> Result<u8, HostError> {
    boot_with(
        config,
        kernel_core::boot::BootInfo {
            cmdline,
            ..kernel_core::boot::BootInfo::default()
        },
    )
}

/// Bytes of the CPU stack wasm may use under `test=spec` (a hosted CPU
/// thread has a 16 MiB stack).
pub const WASM_STACK: usize = 4 << 20;

/// [`boot`] with a whole [`kernel_core::boot::BootInfo`] (e.g. a spec
/// bundle for `test=spec`); a `wasm_stack` of 0 becomes [`WASM_STACK`].
///
/// # Errors
/// As [`boot`].
pub fn boot_with(config: &Config, info: kernel_core::boot::BootInfo<'_>) -> Result<u8, HostError> {
    let hosted = Hosted::new(config)?;
    let status = boot_on(&hosted, info);
    drop(hosted);
    status
}

/// [`boot_with`] on a machine the caller built and keeps, so that it can
/// read [`Hosted::trace_summary`] or [`Hosted::captured_console`] after the
/// kernel returned. Every CPU has ended (threads joined) when it returns.
/// In deterministic mode a deadlock is reported on standard error and
/// returns `Ok(exit::FAILED)`.
///
/// # Errors
/// As [`boot`]; [`HostError::Thread`] with `EBUSY` when CPU 0 of the
/// machine already runs.
pub fn boot_on(
    hosted: &Hosted,
    mut info: kernel_core::boot::BootInfo<'_>,
) -> Result<u8, HostError> {
    if info.wasm_stack == 0 {
        info.wasm_stack = WASM_STACK;
    }
    on_hosted(hosted, |hosted| kernel_core::boot::boot(hosted, info))
}

/// Run `kernel` on a fresh CPU-0 thread of `hosted` (in deterministic
/// mode: CPU 0's fiber), join every CPU thread and return `kernel`'s
/// status; a deterministic deadlock is `exit::FAILED`.
fn on_hosted(hosted: &Hosted, kernel: impl FnOnce(&Hosted) -> u8 + Send) -> Result<u8, HostError> {
    if let Some(slot) = hosted.machine.cpus.slot(0)
        && slot.claim().is_err()
    {
        return Err(HostError::Thread(rustix::io::Errno::BUSY));
    }
    let outcome = context::on_fresh_cpu(&hosted.machine, 0, true, || kernel(hosted));
    let status = match outcome {
        // `run_kernel` ended the process on a panic, so `outcome` is a value.
        Ok(outcome) => outcome.unwrap_or(kernel_core::exit::PANIC),
        Err(HostError::Deadlock { .. }) => kernel_core::exit::FAILED,
        Err(e) => return Err(e),
    };
    hosted.machine.cpus.join_all(JOIN_TIMEOUT);
    Ok(status)
}

/// Boot the kernel on `hosted` with every CPU online
/// (`kernel_core::boot::boot_into`), run `workload` on CPU 0, and return
/// its status once every CPU has ended — for tests that run their own
/// scenario on a whole machine (and may read its trace afterwards).
///
/// # Errors
/// As [`boot_on`].
pub fn boot_into(
    hosted: &Hosted,
    workload: impl FnOnce(&kernel_core::kernel::Kernel<'_, Hosted>) -> u8 + Send,
) -> Result<u8, HostError> {
    on_hosted(hosted, |hosted| {
        kernel_core::boot::boot_into(hosted, workload)
    })
}

/// [`boot_into`] without the kernel's boot banner, for a workload whose
/// standard output is all its own (`kernel_core::boot::boot_quiet_into`).
///
/// # Errors
/// As [`boot_on`].
pub fn boot_quiet_into(
    hosted: &Hosted,
    workload: impl FnOnce(&kernel_core::kernel::Kernel<'_, Hosted>) -> u8 + Send,
) -> Result<u8, HostError> {
    on_hosted(hosted, |hosted| {
        kernel_core::boot::boot_quiet_into(hosted, workload)
    })
}

/// Run `f` on a fresh thread set up as CPU `cpu` of `hosted` (alternate
/// signal stack, thread-locals, timer, IPI target) and return its result —
/// for tests that need a CPU context without booting the whole kernel. In
/// deterministic mode `f` runs on CPU `cpu`'s fiber on that thread, and
/// any CPU it starts runs there too until `f` returns.
/// Interrupts are masked and no CPU-local block is installed when `f`
/// starts; the CPU is torn down when it returns.
///
/// # Panics
/// When `cpu` is out of range or already running, when the thread cannot be
/// set up, on a deterministic deadlock, and (re-raised) when `f` panics.
pub fn run_on_cpu<R: Send>(hosted: &Hosted, cpu: usize, f: impl FnOnce() -> R + Send) -> R {
    let Some(slot) = hosted.machine.cpus.slot(cpu) else {
        panic!("run_on_cpu: CPU {cpu} does not exist");
    };
    if let Err(e) = slot.claim() {
        panic!("run_on_cpu: CPU {cpu}: {e}");
    }
    match context::on_fresh_cpu(&hosted.machine, cpu, false, f) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(e) => panic!("run_on_cpu: CPU {cpu}: {e}"),
    }
}
