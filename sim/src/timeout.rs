//! `--timeout DURATION`: the time a run may take, and the watchdog that
//! interrupts the running wasm when it is up.
//!
//! A [`Limit`] is a positive whole number of `ms`, `s`, `m` or `h`.
//! [`with_watchdog`] runs a closure with a [`Watchdog`] and, when a limit is
//! given, a watcher thread that waits for the closure to finish. If the
//! limit passes first, the watcher marks the dog expired and lowers the
//! deadline of the watched store's interrupt cell to 0
//! (`kernel_core::wasm::interrupt`, INV-INT-2): the running code's next
//! check (every function entry and loop header) calls the dog's hook,
//! which interrupts it, and the call in progress ends with an `Interrupted`
//! trap. The limit is wall-clock time, also in a deterministic run.
//!
//! Invariants:
//! - INV-TIMEOUT-1: the dog expires at most once and never un-expires;
//!   once expired, every store it watches (the current one and any watched
//!   later) has deadline 0 and a hook that interrupts, so no wasm of those
//!   stores runs to completion after expiry.
//! - INV-TIMEOUT-2: the watcher thread ends before [`with_watchdog`]
//!   returns (it is scoped), so it never touches a store that is gone.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kernel_core::hal::Platform;
use kernel_core::wasm::interrupt::{HookAction, Interrupt};
use kernel_core::wasm::vm::Store;

/// A unit of [`Limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds, `ms`.
    Millis,
    /// Seconds, `s`.
    Secs,
    /// Minutes, `m`.
    Mins,
    /// Hours, `h`.
    Hours,
}

impl Unit {
    fn suffix(self) -> &'static str {
        match self {
            Self::Millis => "ms",
            Self::Secs => "s",
            Self::Mins => "m",
            Self::Hours => "h",
        }
    }

    fn millis(self) -> u64 {
        match self {
            Self::Millis => 1,
            Self::Secs => 1000,
            Self::Mins => 60_000,
            Self::Hours => 3_600_000,
        }
    }
}

/// How long a run may take: `amount` `unit`s, more than zero. Displays as
/// it is written (`500ms`, `2s`, `1m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    amount: u64,
    unit: Unit,
    duration: Duration,
}

impl Limit {
    /// The limit as a duration.
    #[must_use]
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

/// Why a text is not a [`Limit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitError {
    /// No leading number.
    NotADuration,
    /// A number without a unit, or with one that is not `ms`, `s`, `m`, `h`.
    Unit,
    /// Zero: a run that may take no time at all.
    Zero,
    /// More milliseconds than fit in 64 bits.
    TooLong,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotADuration => "not a duration like 500ms, 2s or 1m",
            Self::Unit => "needs a unit: ms, s, m or h (like 500ms, 2s or 1m)",
            Self::Zero => "must be more than zero",
            Self::TooLong => "too long",
        })
    }
}

impl std::error::Error for LimitError {}

/// Parse a [`Limit`]: digits, then `ms`, `s`, `m` or `h`.
///
/// # Errors
/// [`LimitError`] for anything else, and for zero.
pub fn parse(text: &str) -> Result<Limit, LimitError> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, suffix) = text.split_at(digits);
    if num.is_empty() {
        return Err(LimitError::NotADuration);
    }
    let unit = match suffix {
        "ms" => Unit::Millis,
        "s" => Unit::Secs,
        "m" => Unit::Mins,
        "h" => Unit::Hours,
        _ => return Err(LimitError::Unit),
    };
    // Only digits: the one way to fail is overflow.
    let amount: u64 = num.parse().map_err(|_| LimitError::TooLong)?;
    if amount == 0 {
        return Err(LimitError::Zero);
    }
    let millis = amount
        .checked_mul(unit.millis())
        .ok_or(LimitError::TooLong)?;
    Ok(Limit {
        amount,
        unit,
        duration: Duration::from_millis(millis),
    })
}

/// Interrupts the wasm of the stores it watches once its limit is up
/// (module doc). Without a limit it never expires.
pub struct Watchdog<'k> {
    limit: Option<Limit>,
    expired: Arc<AtomicBool>,
    watched: Mutex<Option<Arc<Interrupt<'k>>>>,
}

impl<'k> Watchdog<'k> {
    fn new(limit: Option<Limit>) -> Self {
        Self {
            limit,
            expired: Arc::new(AtomicBool::new(false)),
            watched: Mutex::new(None),
        }
    }

    /// A dog without a limit: it never expires, and watching a store with
    /// it changes nothing.
    #[must_use]
    pub fn unlimited() -> Self {
        Self::new(None)
    }

    /// The limit, if there is one.
    #[must_use]
    pub fn limit(&self) -> Option<Limit> {
        self.limit
    }

    /// Whether the limit is up (INV-TIMEOUT-1).
    #[must_use]
    pub fn expired(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }

    /// Watch `store` from now on (instead of the store watched before):
    /// install the hook that interrupts its code once the dog has expired.
    /// Call it before any of the store's code runs (the hook is set at most
    /// once, interrupt INV-INT-3); a store that already has a hook keeps
    /// it, and is still stopped at expiry only if that hook interrupts.
    pub fn watch<P: Platform>(&self, store: &Store<'k, '_, P>) {
        if self.limit.is_none() {
            return;
        }
        let cell = store.interrupt();
        let expired = Arc::clone(&self.expired);
        cell.set_hook(Box::new(move |cell| {
            // Deadline first, then the flag: an expiry between the two
            // leaves the deadline at 0, never lost.
            cell.set_deadline(u64::MAX);
            if expired.load(Ordering::SeqCst) {
                cell.set_deadline(0);
                HookAction::Interrupt
            } else {
                HookAction::Continue
            }
        }));
        let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        *watched = Some(Arc::clone(cell));
        // Expired before this store was watched: stop it at once.
        if self.expired() {
            cell.set_deadline(0);
        }
    }

    /// The limit is up: mark it, and stop the watched store's code.
    fn expire(&self) {
        self.expired.store(true, Ordering::SeqCst);
        let watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = watched.as_ref() {
            cell.set_deadline(0);
        }
    }
}

/// Run `f` with a [`Watchdog`] for `limit`; with a limit, a watcher
/// thread expires the dog when the limit passes before `f` returns.
///
/// # Errors
/// When the watcher thread cannot be started (then `f` does not run).
pub fn with_watchdog<'k, R>(
    limit: Option<Limit>,
    f: impl FnOnce(&Watchdog<'k>) -> R,
) -> std::io::Result<R> {
    let dog = Watchdog::new(limit);
    let Some(limit) = limit else {
        return Ok(f(&dog));
    };
    let (done, finished) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let dog = &dog;
        std::thread::Builder::new()
            .name("sim-timeout".to_owned())
            .spawn_scoped(s, move || {
                // `done` is dropped when `f` returns (or unwinds).
                if finished.recv_timeout(limit.duration()) == Err(RecvTimeoutError::Timeout) {
                    dog.expire();
                }
            })?;
        let r = f(dog);
        drop(done);
        Ok(r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_their_unit() {
        let ms = |t: &str| parse(t).map(|l| l.duration().as_millis());
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("2s"), Ok(2000));
        assert_eq!(ms("1m"), Ok(60_000));
        assert_eq!(ms("3h"), Ok(10_800_000));
        assert_eq!(parse("2s").map(|l| l.to_string()), Ok("2s".to_owned()));
        assert_eq!(
            parse("500ms").map(|l| l.to_string()),
            Ok("500ms".to_owned())
        );
    }

    #[test]
    fn zero_garbage_and_overflow_are_refused() {
        assert_eq!(parse("0s"), Err(LimitError::Zero));
        assert_eq!(parse("0ms"), Err(LimitError::Zero));
        assert_eq!(parse("5"), Err(LimitError::Unit));
        assert_eq!(parse("5 s"), Err(LimitError::Unit));
        assert_eq!(parse("5sec"), Err(LimitError::Unit));
        assert_eq!(parse(""), Err(LimitError::NotADuration));
        assert_eq!(parse("s"), Err(LimitError::NotADuration));
        assert_eq!(parse("-1s"), Err(LimitError::NotADuration));
        assert_eq!(parse("1.5s"), Err(LimitError::Unit));
        assert_eq!(parse("99999999999999999999s"), Err(LimitError::TooLong));
        assert_eq!(parse("18446744073709551615h"), Err(LimitError::TooLong));
    }

    #[test]
    fn without_a_limit_the_dog_never_expires() {
        let (expired, limit) =
            with_watchdog(None, |dog| (dog.expired(), dog.limit())).expect("no thread needed");
        assert!(!expired);
        assert_eq!(limit, None);
    }

    #[test]
    fn a_closure_that_ends_in_time_leaves_the_dog_unexpired() {
        // An hour: if the watcher did not end with the closure, the test
        // would not end either.
        let expired = with_watchdog(parse("1h").ok(), |dog| dog.expired()).expect("watcher starts");
        assert!(!expired);
    }

    #[test]
    fn a_limit_expires_the_dog_while_the_closure_waits() {
        let limit = parse("10ms").ok();
        // Wait for the expiry itself, not for a time: the test cannot pass
        // unless the watcher fired.
        let expired = with_watchdog(limit, |dog| {
            while !dog.expired() {
                std::thread::yield_now();
            }
            dog.expired()
        })
        .expect("watcher starts");
        assert!(expired);
    }
}
