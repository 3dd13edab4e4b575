//! Per-process handle tables: the capabilities a process holds.
//!
//! A handle is an index into its process's own table; the object behind
//! it is a channel end or another process. A process can name only objects
//! in its table (it created them, or they were given to it at spawn), so a
//! forged or stale index is an error, never another process's object.
//!
//! Invariant INV-HANDLES-1: a table holds at most [`MAX_HANDLES`] entries;
//! a removed handle's index is reused only by a later insert.
//!
//! Invariant INV-HANDLES-2: a message a process sends is charged to it
//! (its limit, and promised frames, `mem` INV-VM-7) from the send until
//! it is received or the channel is dropped, so messages parked in
//! channels nobody reads count against their sender.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroUsize;

use super::Process;
use crate::hal::Interrupts;
use crate::mem::Hold;
use crate::sched::sync::{self, IrqCtl};

/// Most handles one process holds.
pub const MAX_HANDLES: usize = 1024;

/// The interrupt control of kernel channels: the platform's, type-erased so
/// that handle tables do not depend on the platform type.
#[derive(Clone, Copy)]
pub struct KernelIrqs<'k>(&'k (dyn Interrupts + Sync));

impl<'k> KernelIrqs<'k> {
    /// The interrupt control of `irqs`.
    pub(crate) fn new(irqs: &'k (dyn Interrupts + Sync)) -> Self {
        Self(irqs)
    }
}

impl Interrupts for KernelIrqs<'_> {
    fn irq_save(&self) -> bool {
        self.0.irq_save()
    }

    fn irq_restore(&self, enabled: bool) {
        self.0.irq_restore(enabled);
    }

    fn irqs_enabled(&self) -> bool {
        self.0.irqs_enabled()
    }
}

impl IrqCtl for KernelIrqs<'_> {
    type Irqs = Self;
    type Ref<'a>
        = &'a Self
    where
        Self: 'a;

    fn irqs(&self) -> Option<&Self> {
        Some(self)
    }
}

/// A message in a process channel: a byte string and, when a process sent
/// it, the charge to that process for the bytes while they wait in the
/// channel (INV-HANDLES-2).
#[derive(Debug)]
pub struct Message<'k> {
    bytes: Vec<u8>,
    charge: Option<Hold<'k>>,
}

impl<'k> Message<'k> {
    /// A message charged to nobody (sent by the kernel or a test).
    #[must_use]
    pub const fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            charge: None,
        }
    }

    /// A message whose bytes are paid for by `charge` until it is
    /// received.
    pub(crate) const fn charged(bytes: Vec<u8>, charge: Hold<'k>) -> Self {
        Self {
            bytes,
            charge: Some(charge),
        }
    }

    /// The bytes; receiving them gives back the sender's charge.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        drop(self.charge);
        self.bytes
    }
}

/// The sending end of a process channel (messages are byte strings).
pub type MsgSender<'k> = sync::Sender<KernelIrqs<'k>, Message<'k>>;
/// The receiving end of a process channel.
pub type MsgReceiver<'k> = sync::Receiver<KernelIrqs<'k>, Message<'k>>;

/// A new channel holding up to `capacity` messages (at least one).
pub fn new_channel<'k>(
    irqs: &'k (dyn Interrupts + Sync),
    capacity: usize,
) -> (MsgSender<'k>, MsgReceiver<'k>) {
    sync::channel(
        KernelIrqs(irqs),
        NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
    )
}

/// A handle's hold on a process: while any exists, the process stays in
/// its scope's table after it ends (a zombie its holders can still wait
/// for); the last one let go reaps it (`process` INV-PROCESS-5).
pub struct Claim<'k>(Arc<Process<'k>>);

impl<'k> Claim<'k> {
    /// The first handle of a process its parent spawned, which the
    /// process's record already counts.
    pub(crate) fn adopt(process: Arc<Process<'k>>) -> Self {
        Self(process)
    }

    /// The process.
    pub(crate) fn process(&self) -> &Arc<Process<'k>> {
        &self.0
    }
}

impl Clone for Claim<'_> {
    fn clone(&self) -> Self {
        self.0.hold();
        Self(self.0.clone())
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.let_go();
    }
}

/// What a handle names.
#[derive(Clone)]
pub enum Object<'k> {
    /// A channel's sending end.
    Sender(MsgSender<'k>),
    /// A channel's receiving end.
    Receiver(MsgReceiver<'k>),
    /// A process (to wait for, kill or detach).
    Process(Claim<'k>),
}

impl fmt::Debug for Object<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sender(_) => f.write_str("Sender"),
            Self::Receiver(_) => f.write_str("Receiver"),
            Self::Process(p) => write!(f, "Process({})", p.process().pid().0),
        }
    }
}

/// Why a handle operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// No object at that index (never given, closed, or out of range).
    Bad,
    /// An object of another kind than the call needs.
    WrongKind,
    /// The table is full (INV-HANDLES-1).
    Full,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bad => "no such handle",
            Self::WrongKind => "handle of the wrong kind",
            Self::Full => "handle table full",
        })
    }
}

impl core::error::Error for HandleError {}

/// One process's handles.
#[derive(Default)]
pub(crate) struct HandleTable<'k> {
    slots: Vec<Option<Object<'k>>>,
}

impl<'k> HandleTable<'k> {
    /// A table holding `objects` as handles `0..n` (at most
    /// [`MAX_HANDLES`]; the rest are dropped).
    pub(crate) fn with(objects: Vec<Object<'k>>) -> Self {
        Self {
            slots: objects.into_iter().take(MAX_HANDLES).map(Some).collect(),
        }
    }

    /// Add `object` at the lowest free index.
    pub(crate) fn insert(&mut self, object: Object<'k>) -> Result<i32, HandleError> {
        let index = match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                self.slots[i] = Some(object);
                i
            }
            None if self.slots.len() < MAX_HANDLES => {
                self.slots.push(Some(object));
                self.slots.len() - 1
            }
            None => return Err(HandleError::Full),
        };
        i32::try_from(index).map_err(|_| HandleError::Full)
    }

    fn slot(&self, h: i32) -> Result<&Object<'k>, HandleError> {
        usize::try_from(h)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .ok_or(HandleError::Bad)
    }

    /// A copy of the object at `h` (for passing to a child).
    pub(crate) fn get(&self, h: i32) -> Result<Object<'k>, HandleError> {
        self.slot(h).cloned()
    }

    /// Remove `h`.
    pub(crate) fn remove(&mut self, h: i32) -> Result<Object<'k>, HandleError> {
        self.slot(h)?;
        let i = usize::try_from(h).map_err(|_| HandleError::Bad)?;
        self.slots
            .get_mut(i)
            .and_then(Option::take)
            .ok_or(HandleError::Bad)
    }

    /// The sending end at `h`.
    pub(crate) fn sender(&self, h: i32) -> Result<MsgSender<'k>, HandleError> {
        match self.slot(h)? {
            Object::Sender(s) => Ok(s.clone()),
            _ => Err(HandleError::WrongKind),
        }
    }

    /// The receiving end at `h`.
    pub(crate) fn receiver(&self, h: i32) -> Result<MsgReceiver<'k>, HandleError> {
        match self.slot(h)? {
            Object::Receiver(r) => Ok(r.clone()),
            _ => Err(HandleError::WrongKind),
        }
    }

    /// The process at `h`.
    pub(crate) fn process(&self, h: i32) -> Result<Arc<Process<'k>>, HandleError> {
        match self.slot(h)? {
            Object::Process(p) => Ok(p.process().clone()),
            _ => Err(HandleError::WrongKind),
        }
    }
}
