//! The clock and the per-CPU one-shot timers.
//!
//! This module owns the machine's boot instant and the POSIX timer of each
//! CPU thread. `now()` is `CLOCK_MONOTONIC` minus the boot instant; a CPU's
//! timer is a `timer_create(CLOCK_MONOTONIC)` timer whose expiry sends
//! [`TIMER_SIGNAL`] to that thread only (`SIGEV_THREAD_ID`).
//!
//! Invariants:
//! - INV-TIMER-1: while a thread is a CPU (its `machine` field is set), its
//!   `timer` field is a live timer it created for itself ([`create`]),
//!   deleted ([`delete`]) only after `machine` is cleared. (A `timer_t` may
//!   be null: glibc's first timer is id 0.)
//! - INV-TIMER-2: an armed deadline is never an all-zero `it_value` (which
//!   would disarm the timer instead).

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::Ordering;
use core::time::Duration;

use kernel_core::hal::Clock;
use rustix::io::Errno;
use rustix::time::{ClockId, clock_gettime};

use crate::signals::TIMER_SIGNAL;
use crate::{Hosted, error, thread};

/// The instant a machine booted, on the host's monotonic clock.
pub(crate) struct BootClock {
    boot: Duration,
}

fn monotonic() -> Duration {
    let ts = clock_gettime(ClockId::Monotonic);
    // CLOCK_MONOTONIC is never negative.
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl BootClock {
    pub(crate) fn start() -> Self {
        Self { boot: monotonic() }
    }

    fn since_boot(&self) -> Duration {
        monotonic().saturating_sub(self.boot)
    }

    /// The absolute `CLOCK_MONOTONIC` time of `deadline` after boot,
    /// saturated far in the future, never zero (INV-TIMER-2).
    fn absolute(&self, deadline: Duration) -> libc::timespec {
        let at = self.boot.saturating_add(deadline);
        // Far enough for any kernel deadline, small enough for the host.
        let secs = at.as_secs().min(i64::MAX as u64 / 4) as i64;
        let nanos = i64::from(at.subsec_nanos());
        let mut ts = libc::timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        };
        if ts.tv_sec == 0 && ts.tv_nsec == 0 {
            ts.tv_nsec = 1;
        }
        ts
    }
}

/// Create a timer that signals the calling thread, `tid`.
pub(crate) fn create(tid: i32) -> Result<*mut c_void, Errno> {
    // SAFETY: `sigevent` is a plain C struct for which all-zero is valid.
    let mut event: libc::sigevent = unsafe { core::mem::zeroed() };
    event.sigev_notify = libc::SIGEV_THREAD_ID;
    event.sigev_signo = TIMER_SIGNAL;
    event.sigev_notify_thread_id = tid;
    let mut timer: libc::timer_t = ptr::null_mut();
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer) } != 0 {
        return Err(error::last_errno());
    }
    Ok(timer)
}

/// Delete a timer made by [`create`].
pub(crate) fn delete(timer: *mut c_void) {
    // SAFETY: INV-TIMER-1: `timer` is live and nothing uses it afterwards.
    unsafe { libc::timer_delete(timer) };
}

fn settime(timer: *mut c_void, value: libc::timespec) {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: value,
    };
    // SAFETY: INV-TIMER-1: `timer` is this thread's live timer; `spec` is
    // valid. The call cannot fail for a valid timer and normalized value.
    unsafe { libc::timer_settime(timer, libc::TIMER_ABSTIME, &spec, ptr::null_mut()) };
}

impl Clock for Hosted {
    /// Hosted, deterministic: virtual time, advanced by
    /// [`crate::det::NOW_STEP`] per call; on a CPU with interrupts enabled
    /// this delivers what became due and may switch CPUs (seeded).
    fn now(&self) -> Duration {
        if let Some(det) = &self.machine.det {
            thread::with(|t| {
                if t.is_cpu_of(self.machine_ptr()) {
                    det.on_now(t);
                } else {
                    det.tick(crate::det::NOW_STEP);
                }
            });
            return det.time();
        }
        self.machine.clock.since_boot()
    }

    /// Hosted: `CLOCK_REALTIME`. Deterministic: [`crate::det::WALL_EPOCH`]
    /// plus virtual time.
    fn wall_time(&self) -> Option<Duration> {
        if self.machine.det.is_some() {
            return Some(crate::det::WALL_EPOCH.saturating_add(self.now()));
        }
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        let secs = u64::try_from(t.tv_sec).ok()?;
        let nanos = u32::try_from(t.tv_nsec).ok()?;
        Some(Duration::new(secs, nanos))
    }

    /// Hosted: on a thread that is not a CPU of this machine, does nothing.
    /// Deterministic: a virtual deadline, checked at the CPU's switch points.
    fn set_timer(&self, deadline: Duration) {
        if let Some(det) = &self.machine.det {
            thread::with(|t| {
                if t.is_cpu_of(self.machine_ptr()) {
                    det.set_timer(t, deadline);
                }
            });
            return;
        }
        let value = self.machine.clock.absolute(deadline);
        thread::with(|t| {
            let timer = t.timer.load(Ordering::Relaxed);
            if t.is_cpu_of(self.machine_ptr()) {
                settime(timer, value);
            }
        });
    }

    /// Hosted: on a thread that is not a CPU of this machine, does nothing.
    fn cancel_timer(&self) {
        if let Some(det) = &self.machine.det {
            thread::with(|t| {
                if t.is_cpu_of(self.machine_ptr()) {
                    det.cancel_timer(t);
                }
            });
            return;
        }
        thread::with(|t| {
            let timer = t.timer.load(Ordering::Relaxed);
            if t.is_cpu_of(self.machine_ptr()) {
                settime(
                    timer,
                    libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    },
                );
            }
        });
    }
}
