//! The console: standard output, standard input, standard error.
//!
//! This module owns the machine's console lock. `write` sends the whole
//! buffer to standard output with `write(2)` while holding it, so concurrent
//! writers of one machine never interleave within a call; nothing is
//! buffered in the process, so output written before `_exit` or a crash is
//! not lost. `panic_write` goes to standard error without the lock. A
//! machine built with [`crate::Config::capture_console`] keeps what `write`
//! gets in memory instead ([`crate::Hosted::captured_console`]), and what
//! `write_error` gets apart ([`crate::Hosted::captured_errors`]); its input
//! is what [`crate::Hosted::set_input`] gave, then end of input, never the
//! host's standard input.
//!
//! A `write` that fails (a full disk, a pipe nobody reads: Rust ignores
//! SIGPIPE, so that is `EPIPE`) is recorded, not retried:
//! [`crate::Hosted::console_error`] tells the caller that output was lost,
//! so that a run does not report success without its output, and later
//! writes are dropped at once.
//!
//! Console input raises `Interrupt::Input` (threads, host standard input
//! only): a read or look that finds nothing arms a watcher thread, which
//! waits in `poll(2)` for standard input to become readable (or hang up),
//! disarms, and raises the interrupt on CPU 0 with the IPI signal. One
//! arming, at most one interrupt (INV-CON-3).
//!
//! Invariants:
//! - INV-CON-1: the lock is held only around `write(2)` calls, never
//!   across a call into the kernel.
//! - INV-CON-2: once a standard output write failed, the first failure's
//!   error stays recorded and nothing more is written to standard output.
//! - INV-CON-3: the watcher raises input only while armed and disarms
//!   before it raises; it holds the machine only weakly, and ends within
//!   [`WATCH_TICK`] of the machine's drop.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

use kernel_core::hal::{Console, InputState};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use rustix::time::Timespec;

use crate::Hosted;

/// The lock that serializes one machine's console writes; with capture on
/// ([`crate::Config::capture_console`]) it guards the captured bytes.
pub(crate) struct ConsoleLock {
    lock: Mutex<Vec<u8>>,
    capture: bool,
    /// Capturing: what `write_error` got.
    errors: Mutex<Vec<u8>>,
    /// Capturing: the input not yet read.
    input: Mutex<std::collections::VecDeque<u8>>,
    /// Raise `Interrupt::Input` when standard input becomes readable.
    interrupts: bool,
    /// The watcher's arming (INV-CON-3).
    watch: Arc<Watch>,
    /// The errno of the first failed standard output write; 0: none
    /// (INV-CON-2).
    failed: AtomicI32,
}

impl ConsoleLock {
    /// A console writing to standard output (or, `capture`, to memory);
    /// with `interrupts`, standard input raises `Interrupt::Input`.
    pub(crate) fn new(capture: bool, interrupts: bool) -> Self {
        Self {
            interrupts: interrupts && !capture,
            watch: Arc::new(Watch::default()),
            lock: Mutex::new(Vec::new()),
            capture,
            errors: Mutex::new(Vec::new()),
            input: Mutex::new(std::collections::VecDeque::new()),
            failed: AtomicI32::new(0),
        }
    }

    /// Why a standard output write failed, if one did (INV-CON-2).
    pub(crate) fn error(&self) -> Option<std::io::Error> {
        match self.failed.load(Ordering::Acquire) {
            0 => None,
            errno => Some(std::io::Error::from_raw_os_error(errno)),
        }
    }

    /// Everything written to standard error so far, when capturing.
    pub(crate) fn captured_errors(&self) -> Option<Vec<u8>> {
        self.capture.then(|| {
            self.errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }

    /// Capturing: make `bytes` the input still to read (false when not
    /// capturing: input is the host's standard input).
    pub(crate) fn set_input(&self, bytes: &[u8]) -> bool {
        if self.capture {
            *self.input.lock().unwrap_or_else(PoisonError::into_inner) =
                bytes.iter().copied().collect();
        }
        self.capture
    }

    /// Capturing: the input queue; `None` when input is standard input.
    fn captured_input(&self) -> Option<std::sync::MutexGuard<'_, std::collections::VecDeque<u8>>> {
        self.capture
            .then(|| self.input.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Everything written so far, when capturing.
    pub(crate) fn captured(&self) -> Option<Vec<u8>> {
        self.capture.then(|| {
            self.lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }
}

/// How long the watcher waits in one `poll(2)` or for an arming before it
/// checks that its machine still exists.
const WATCH_TICK: Duration = Duration::from_millis(100);

/// The input watcher's arming.
#[derive(Default)]
struct Watch {
    armed: Mutex<bool>,
    changed: Condvar,
    /// The thread was started (once per machine).
    started: AtomicBool,
}

impl Watch {
    /// Wait until armed; false when `machine` went away meanwhile.
    fn wait_armed(&self, machine: &Weak<crate::Machine>) -> bool {
        let mut armed = self.armed.lock().unwrap_or_else(PoisonError::into_inner);
        while !*armed {
            if machine.strong_count() == 0 {
                return false;
            }
            armed = self
                .changed
                .wait_timeout(armed, WATCH_TICK)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    fn set(&self, on: bool) {
        *self.armed.lock().unwrap_or_else(PoisonError::into_inner) = on;
        self.changed.notify_all();
    }
}

/// The watcher thread of one machine (INV-CON-3).
fn watch_input(watch: &Watch, machine: &Weak<crate::Machine>) {
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: i64::try_from(WATCH_TICK.as_nanos()).unwrap_or(0),
    };
    while watch.wait_armed(machine) {
        let stdin = rustix::stdio::stdin();
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(0) | Err(Errno::INTR) => continue,
            // Readable, hung up, or an error the reader will meet too.
            _ => {}
        }
        watch.set(false);
        let Some(machine) = machine.upgrade() else {
            return;
        };
        if let Some(cpu) = machine.cpus.slot(0) {
            cpu.raise_input();
        }
    }
}

impl Hosted {
    /// A read found nothing: arm the watcher (starting it the first time)
    /// when input raises interrupts.
    fn arm_input(&self) {
        let console = &self.machine.console;
        if !console.interrupts {
            return;
        }
        let watch = &console.watch;
        watch.set(true);
        if !watch.started.swap(true, Ordering::SeqCst) {
            let (mine, machine) = (Arc::clone(watch), Arc::downgrade(&self.machine));
            let spawned = std::thread::Builder::new()
                .name("console-input".into())
                .spawn(move || watch_input(&mine, &machine));
            if spawned.is_err() {
                // No thread: readers still wake, a tick at a time.
                watch.started.store(false, Ordering::SeqCst);
            }
        }
    }
}

/// Write all of `bytes` to `fd`, retrying partial writes and interruptions
/// and waiting for room when the descriptor is non-blocking; gives up on any
/// other error (a closed pipe: nobody is reading) and returns it.
fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            // write(2) of a non-empty buffer returning 0: no room, ever.
            Ok(0) => return Err(Errno::NOSPC),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
                let _ = poll(&mut fds, None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Console for Hosted {
    /// Hosted, capturing: appends to the captured bytes instead.
    fn write(&self, bytes: &[u8]) {
        let console = &self.machine.console;
        let mut guard = console.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if console.capture {
            guard.extend_from_slice(bytes);
        } else if console.failed.load(Ordering::Acquire) == 0
            && let Err(e) = write_all(rustix::stdio::stdout(), bytes)
        {
            // Errno values are positive; keep the first (INV-CON-2).
            let _ = console.failed.compare_exchange(
                0,
                e.raw_os_error(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    fn try_read(&self) -> Option<u8> {
        if let Some(mut input) = self.machine.console.captured_input() {
            return input.pop_front();
        }
        let stdin = rustix::stdio::stdin();
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&zero)) {
            Ok(n) if n > 0 && fds[0].revents().contains(PollFlags::IN) => {}
            _ => return None,
        }
        let mut byte = [0u8; 1];
        match rustix::io::read(stdin, &mut byte) {
            Ok(1) => Some(byte[0]),
            _ => None,
        }
    }

    fn input_state(&self) -> InputState {
        if let Some(input) = self.machine.console.captured_input() {
            return if input.is_empty() {
                InputState::Closed
            } else {
                InputState::Ready
            };
        }
        let stdin = rustix::stdio::stdin();
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&zero)) {
            Ok(0) => {
                self.arm_input();
                InputState::Empty
            }
            Ok(_) if fds[0].revents().contains(PollFlags::IN) => InputState::Ready,
            // A hang-up, an error or an invalid descriptor: nothing more.
            _ => InputState::Closed,
        }
    }

    fn read_input(&self, buf: &mut [u8]) -> Result<usize, InputState> {
        if buf.is_empty() {
            return Err(InputState::Empty);
        }
        if let Some(mut input) = self.machine.console.captured_input() {
            let n = buf.len().min(input.len());
            if n == 0 {
                return Err(InputState::Closed);
            }
            for (b, byte) in buf.iter_mut().zip(input.drain(..n)) {
                *b = byte;
            }
            return Ok(n);
        }
        match self.input_state() {
            InputState::Ready => {}
            other => return Err(other),
        }
        match rustix::io::read(rustix::stdio::stdin(), buf) {
            Ok(0) => Err(InputState::Closed),
            Ok(n) => Ok(n),
            Err(Errno::AGAIN | Errno::INTR) => {
                self.arm_input();
                Err(InputState::Empty)
            }
            Err(_) => Err(InputState::Closed),
        }
    }

    fn panic_write(&self, bytes: &[u8]) {
        // Nowhere left to report a failure to.
        let _ = write_all(rustix::stdio::stderr(), bytes);
    }

    fn input_interrupts(&self) -> bool {
        self.machine.console.interrupts
    }

    /// Hosted: standard error, like [`Console::panic_write`]; capturing,
    /// the captured errors.
    fn write_error(&self, bytes: &[u8]) {
        let console = &self.machine.console;
        if console.capture {
            let mut errors = console
                .errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            errors.extend_from_slice(bytes);
            return;
        }
        let _ = write_all(rustix::stdio::stderr(), bytes);
    }
}
