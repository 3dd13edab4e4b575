//! Why building or running a hosted machine failed.
//!
//! This module owns [`HostError`], the error of the crate's own API
//! ([`crate::Hosted::new`], [`crate::boot`]). Errors of the HAL traits are
//! `kernel_core::hal::HalError`; this type never crosses that boundary.

use core::fmt;

use rustix::io::Errno;

/// A hosted machine could not be built or run.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostError {
    /// [`crate::Config::cpus`] is zero.
    NoCpus,
    /// [`crate::Config::cpus`] is larger than [`crate::MAX_CPUS`].
    TooManyCpus {
        /// The configured count.
        requested: usize,
    },
    /// [`crate::Config::memory`] is not a multiple of 4 KiB or is below
    /// [`crate::MIN_MEMORY`].
    BadMemorySize {
        /// The configured size in bytes.
        bytes: u64,
    },
    /// [`crate::Config::window`] is not a multiple of 4 KiB or is below
    /// [`crate::MIN_WINDOW`].
    BadWindowSize {
        /// The configured size in bytes.
        bytes: usize,
    },
    /// `memfd_create` failed.
    Memfd(Errno),
    /// `ftruncate` of the memfd to the memory size failed.
    Truncate(Errno),
    /// `mmap` of the direct map (the whole memfd) failed.
    DirectMap(Errno),
    /// The `PROT_NONE` reservation of the kernel window failed.
    ReserveWindow(Errno),
    /// Installing a signal handler (`sigaction`) failed.
    Signals(Errno),
    /// The interrupt signals [`crate::TIMER_SIGNAL`] and [`crate::IPI_SIGNAL`]
    /// are not real-time signals of this C library.
    SignalNumbers,
    /// Allocating or installing a CPU's alternate signal stack failed.
    AltStack(Errno),
    /// `timer_create` of a CPU's timer failed.
    Timer(Errno),
    /// Spawning a CPU thread failed.
    Thread(Errno),
    /// Registering for `membarrier(PRIVATE_EXPEDITED_SYNC_CORE)` failed
    /// (aarch64 hosts only).
    Membarrier(Errno),
    /// Mapping the stack of a simulated CPU (deterministic mode) failed.
    FiberStack(Errno),
    /// Host directory number `index` of those given to the machine did
    /// not open as a directory (or, past the last, the host-files device
    /// did not start).
    HostDir {
        /// Its position in the list.
        index: usize,
        /// Why.
        errno: Errno,
    },
    /// Deterministic mode: every CPU waited for an interrupt while none was
    /// pending and no timer was armed, so none could ever come. The run was
    /// stopped (and reported on standard error) instead of hanging.
    Deadlock {
        /// Virtual time of the deadlock, in nanoseconds since boot.
        virtual_ns: u64,
    },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCpus => f.write_str("configuration has no CPUs"),
            Self::TooManyCpus { requested } => {
                write!(
                    f,
                    "{requested} CPUs configured, at most {} supported",
                    crate::MAX_CPUS
                )
            }
            Self::BadMemorySize { bytes } => write!(
                f,
                "memory size {bytes} is not a multiple of 4 KiB of at least {} bytes",
                crate::MIN_MEMORY
            ),
            Self::BadWindowSize { bytes } => write!(
                f,
                "window size {bytes} is not a multiple of 4 KiB of at least {} bytes",
                crate::MIN_WINDOW
            ),
            Self::Memfd(e) => write!(f, "memfd_create failed: {e}"),
            Self::Truncate(e) => write!(f, "ftruncate of physical memory failed: {e}"),
            Self::DirectMap(e) => write!(f, "mmap of the direct map failed: {e}"),
            Self::ReserveWindow(e) => write!(f, "reserving the kernel window failed: {e}"),
            Self::Signals(e) => write!(f, "installing signal handlers failed: {e}"),
            Self::SignalNumbers => {
                f.write_str("the timer and IPI signals are not real-time signals of this C library")
            }
            Self::AltStack(e) => write!(f, "setting up an alternate signal stack failed: {e}"),
            Self::Timer(e) => write!(f, "timer_create failed: {e}"),
            Self::Thread(e) => write!(f, "spawning a CPU thread failed: {e}"),
            Self::Membarrier(e) => write!(f, "membarrier registration failed: {e}"),
            Self::FiberStack(e) => write!(f, "mapping a simulated CPU's stack failed: {e}"),
            Self::HostDir { index, errno } => {
                write!(f, "host directory {index} cannot be opened: {errno}")
            }
            Self::Deadlock { virtual_ns } => write!(
                f,
                "deadlock at virtual time {virtual_ns} ns: every CPU waits for an interrupt and none can come"
            ),
        }
    }
}

impl std::error::Error for HostError {}

/// The `errno` of the last failed libc call on this thread.
pub(crate) fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// The errno inside a `std::io::Error` (thread spawn), `EAGAIN` if none.
pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_io_error(e).unwrap_or(Errno::AGAIN)
}
