//! Pipes: one-way byte streams between processes, seen by WASI programs as
//! descriptors (the `pipe` call of [`crate::sys::vessel`] makes one; a
//! spawn hands ends to a child as its standard I/O).
//!
//! A pipe is a process channel ([`super::new_channel`]) of byte chunks of at
//! most [`CHUNK`] bytes, [`CAPACITY`] chunks deep, with the bytes of a
//! partly read chunk kept at the read end. Its ends are reference counted
//! by the channel: every descriptor holding the write end holds a sender,
//! every descriptor holding the read end shares one [`PipeReader`].
//!
//! Invariants:
//! - INV-PIPE-1: bytes come out in the order they went in, each once,
//!   whichever descriptors (in whichever processes) read or write.
//! - INV-PIPE-2: a read waits while the pipe is empty and a write end is
//!   open; once every write end is closed and the pipe is drained, a read
//!   returns no bytes (end of stream). A write waits while [`CAPACITY`]
//!   chunks are queued; once every read end is closed it fails
//!   ([`PipeError::Broken`]).
//! - INV-PIPE-3: queued chunks are charged to the writer's memory owner
//!   until they are read (`handles` INV-HANDLES-2); the one chunk a reader
//!   has begun is the kernel's, at most [`CHUNK`] bytes per pipe.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use super::{Message, MsgReceiver, MsgSender};
use crate::hal::Interrupts;
use crate::sched::sync::TryRecvError;

/// Most bytes of one queued chunk (a longer write is split).
pub const CHUNK: usize = 64 << 10;
/// Chunks a pipe holds before a write waits.
pub const CAPACITY: usize = 16;

/// Why a pipe write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PipeError {
    /// Every read end is closed.
    Broken,
    /// The writer is past its memory limit.
    NoMemory,
}

/// The read end of a pipe, shared by every descriptor that holds it.
pub(crate) struct PipeReader<'k> {
    rx: MsgReceiver<'k>,
    /// The chunk being read, and how far.
    rest: spin::Mutex<(Vec<u8>, usize)>,
}

impl fmt::Debug for PipeReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeReader").finish_non_exhaustive()
    }
}

/// A new pipe: its read end and its write end.
pub(crate) fn pipe<'k>(irqs: &'k (dyn Interrupts + Sync)) -> (Arc<PipeReader<'k>>, MsgSender<'k>) {
    let (tx, rx) = super::new_channel(irqs, CAPACITY);
    let reader = PipeReader {
        rx,
        rest: spin::Mutex::new((Vec::new(), 0)),
    };
    (Arc::new(reader), tx)
}

impl PipeReader<'_> {
    /// Up to `max` bytes now: `Some` of them (none: end of stream), or
    /// `None` when the pipe is empty and a write end is open.
    pub(crate) fn read_now(&self, max: usize) -> Option<Vec<u8>> {
        let mut rest = self.rest.lock();
        if rest.1 == rest.0.len() {
            match self.rx.try_recv() {
                Ok(m) => *rest = (m.into_bytes(), 0),
                Err(TryRecvError::Closed) => return Some(Vec::new()),
                Err(TryRecvError::Empty) => return None,
            }
        }
        let (bytes, at) = &mut *rest;
        let n = max.min(bytes.len() - *at);
        let out = bytes[*at..*at + n].to_vec();
        *at += n;
        Some(out)
    }

    /// Whether a read would not wait (bytes queued, or end of stream).
    pub(crate) fn ready(&self) -> bool {
        let rest = self.rest.lock();
        rest.1 < rest.0.len() || !self.rx.is_empty() || self.rx.is_closed()
    }

    /// Wait until a read would not wait.
    pub(crate) async fn readable(&self) {
        if self.ready() {
            return;
        }
        let got = self.rx.recv().await;
        if let Ok(m) = got {
            let mut rest = self.rest.lock();
            let (bytes, at) = &mut *rest;
            bytes.drain(..*at);
            *at = 0;
            bytes.extend_from_slice(&m.into_bytes());
        }
    }
}

/// Write all of `bytes` to the pipe of `tx`, each chunk charged by
/// `charge` (which refuses when the writer is past its limit), waiting
/// while the pipe is full; how many bytes went in.
///
/// # Errors
/// [`PipeError::Broken`] when every read end is closed, and
/// [`PipeError::NoMemory`] when `charge` refuses, before any byte went in
/// (after some did, the count so far).
pub(crate) async fn write_all<'k>(
    tx: &MsgSender<'k>,
    bytes: &[u8],
    mut charge: impl FnMut(Vec<u8>) -> Option<Message<'k>>,
) -> Result<usize, PipeError> {
    let mut sent = 0;
    for chunk in bytes.chunks(CHUNK) {
        let failed = match charge(chunk.to_vec()) {
            None => PipeError::NoMemory,
            Some(msg) => match tx.send(msg).await {
                Err(_) => PipeError::Broken,
                Ok(()) => {
                    sent += chunk.len();
                    continue;
                }
            },
        };
        return if sent == 0 { Err(failed) } else { Ok(sent) };
    }
    Ok(sent)
}

/// Whether a write to the pipe of `tx` would not wait.
pub(crate) fn writable(tx: &MsgSender<'_>) -> bool {
    tx.len() < CAPACITY || tx.is_closed()
}
