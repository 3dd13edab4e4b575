//! A bounded multi-producer multi-consumer channel.
//!
//! Owns the queued values of one channel, its closed flag and the counts of
//! its [`Sender`]s and [`Receiver`]s. Both ends are `Clone + Send + Sync`
//! when `T: Send`, so a process's handle can be an `Arc` of either.
//!
//! Invariants:
//! - INV-CHAN-1 (bound): the queue never holds more than `capacity`
//!   values; a value enters only under the state lock after that check.
//! - INV-CHAN-2 (close): once `closed` is set it stays set and no value
//!   enters; receivers still drain what is queued, then get `Closed`.
//!   It is set by [`Sender::close`], [`Receiver::close`], the drop of the
//!   last sender, or the drop of the last receiver, which also drops every
//!   queued value (nobody can receive it).
//! - INV-CHAN-3 (wake-ups, by INV-WAIT-1): every change is made under the
//!   state lock and *then* notified: a value queued wakes one receiver, a
//!   value taken wakes one sender, a close wakes every waiter of both
//!   queues. Queued values are dropped after the lock is released
//!   (INV-SYNC-2).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::fmt;
use core::num::NonZeroUsize;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{IrqCtl, IrqMutex, WaitQueue};

/// Why [`Sender::try_send`] did not queue its value (returned inside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel holds `capacity` values.
    Full(T),
    /// The channel is closed (INV-CHAN-2).
    Closed(T),
}

/// Why [`Sender::send`] did not queue its value (returned inside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError<T> {
    /// The channel is closed (INV-CHAN-2).
    Closed(T),
}

/// Why [`Receiver::try_recv`] yielded no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued, and the channel is open.
    Empty,
    /// Nothing is queued, and the channel is closed.
    Closed,
}

/// Why [`Receiver::recv`] yielded no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing is queued, and the channel is closed.
    Closed,
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Closed(v) => v,
        }
    }
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Closed(v) => v,
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("channel full"),
            Self::Closed(_) => f.write_str("channel closed"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("channel empty"),
            Self::Closed => f.write_str("channel closed"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl<T: fmt::Debug> core::error::Error for TrySendError<T> {}
impl<T: fmt::Debug> core::error::Error for SendError<T> {}
impl core::error::Error for TryRecvError {}
impl core::error::Error for RecvError {}

struct State<T> {
    buf: VecDeque<T>,
    closed: bool,
}

/// What both ends share.
struct Chan<C: IrqCtl, T> {
    state: IrqMutex<C, State<T>>,
    capacity: NonZeroUsize,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    /// Receivers waiting for a value or the close.
    readable: WaitQueue<C>,
    /// Senders waiting for room or the close.
    writable: WaitQueue<C>,
}

impl<C: IrqCtl, T> Chan<C, T> {
    fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        {
            let mut s = self.state.lock();
            if s.closed {
                return Err(TrySendError::Closed(value));
            }
            if s.buf.len() >= self.capacity.get() {
                return Err(TrySendError::Full(value));
            }
            s.buf.push_back(value);
        }
        self.readable.notify_one();
        Ok(())
    }

    fn try_recv(&self) -> Result<T, TryRecvError> {
        let value = {
            let mut s = self.state.lock();
            match s.buf.pop_front() {
                Some(v) => v,
                None if s.closed => return Err(TryRecvError::Closed),
                None => return Err(TryRecvError::Empty),
            }
        };
        self.writable.notify_one();
        Ok(value)
    }

    /// Close (INV-CHAN-2); with `drain`, drop what is queued too.
    fn close(&self, drain: bool) {
        let (was_closed, dropped) = {
            let mut s = self.state.lock();
            let dropped = if drain {
                core::mem::take(&mut s.buf)
            } else {
                VecDeque::new()
            };
            (core::mem::replace(&mut s.closed, true), dropped)
        };
        // Queued values drop outside the lock (INV-SYNC-2).
        drop(dropped);
        if !was_closed {
            self.readable.notify_all();
            self.writable.notify_all();
        }
    }

    fn len(&self) -> usize {
        self.state.lock().buf.len()
    }

    fn is_closed(&self) -> bool {
        self.state.lock().closed
    }
}

/// A bounded channel of at most `capacity` queued values whose locks mask
/// interrupts through `ctl` (an executor [`crate::sched::Handle`] for
/// channels that `'static` tasks hold).
pub fn channel<C: IrqCtl + Clone, T>(
    ctl: C,
    capacity: NonZeroUsize,
) -> (Sender<C, T>, Receiver<C, T>) {
    let chan = Arc::new(Chan {
        state: IrqMutex::new(
            ctl.clone(),
            State {
                buf: VecDeque::new(),
                closed: false,
            },
        ),
        capacity,
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
        readable: WaitQueue::new(ctl.clone()),
        writable: WaitQueue::new(ctl),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending end of a [`channel`]. Dropping the last one closes it.
pub struct Sender<C: IrqCtl, T> {
    chan: Arc<Chan<C, T>>,
}

/// The receiving end of a [`channel`]. Dropping the last one closes it and
/// drops the values still queued.
pub struct Receiver<C: IrqCtl, T> {
    chan: Arc<Chan<C, T>>,
}

impl<C: IrqCtl, T> Sender<C, T> {
    /// Queue `value`, waiting while the channel is full.
    ///
    /// # Errors
    /// [`SendError::Closed`] with the value when the channel is closed
    /// (before or while waiting). Dropping the future drops the value.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut slot = Some(value);
        self.chan
            .writable
            .wait_for(|| match self.chan.try_send(slot.take()?) {
                Ok(()) => Some(Ok(())),
                Err(TrySendError::Closed(v)) => Some(Err(SendError::Closed(v))),
                Err(TrySendError::Full(v)) => {
                    slot = Some(v);
                    None
                }
            })
            .await
    }

    /// Queue `value` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }
}

impl<C: IrqCtl, T> Receiver<C, T> {
    /// The next value, waiting while the channel is empty and open.
    ///
    /// # Errors
    /// [`RecvError::Closed`] once the channel is closed and drained.
    pub async fn recv(&self) -> Result<T, RecvError> {
        self.chan
            .readable
            .wait_for(|| match self.chan.try_recv() {
                Ok(v) => Some(Ok(v)),
                Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                Err(TryRecvError::Empty) => None,
            })
            .await
    }

    /// The next value if one is queued now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] while open, [`TryRecvError::Closed`] once
    /// closed and drained.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }
}

/// What both ends offer: closing and the channel's state.
macro_rules! channel_end_state {
    ($end:ident) => {
        impl<C: IrqCtl, T> $end<C, T> {
            /// Close the channel for every end: sends fail from now on,
            /// receivers drain what is queued.
            pub fn close(&self) {
                self.chan.close(false);
            }

            /// Values queued now.
            pub fn len(&self) -> usize {
                self.chan.len()
            }

            /// Whether no value is queued now.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether the channel is closed.
            pub fn is_closed(&self) -> bool {
                self.chan.is_closed()
            }

            /// The most values the channel queues.
            pub fn capacity(&self) -> NonZeroUsize {
                self.chan.capacity
            }
        }
    };
}

channel_end_state!(Sender);
channel_end_state!(Receiver);

impl<C: IrqCtl, T> Clone for Sender<C, T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            chan: self.chan.clone(),
        }
    }
}

impl<C: IrqCtl, T> Clone for Receiver<C, T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Self {
            chan: self.chan.clone(),
        }
    }
}

impl<C: IrqCtl, T> Drop for Sender<C, T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close(false);
        }
    }
}

impl<C: IrqCtl, T> Drop for Receiver<C, T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close(true);
        }
    }
}

impl<C: IrqCtl, T> fmt::Debug for Sender<C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.chan.capacity)
            .finish_non_exhaustive()
    }
}

impl<C: IrqCtl, T> fmt::Debug for Receiver<C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.chan.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl<C: IrqCtl, T> Sender<C, T> {
    /// Registered (receivers, senders) waiting, for tests.
    pub(super) fn waiters(&self) -> (usize, usize) {
        (self.chan.readable.waiters(), self.chan.writable.waiters())
    }
}
