//! The system interfaces: the host functions processes import, one
//! interface per import module, each a peer implementing
//! [`crate::proc::Interface`]. The process loader ([`crate::proc`]) links a
//! process's imports against [`interfaces`]; a process may import from
//! several.
//!
//! | module | interface |
//! |---|---|
//! | `vessel` | [`vessel`]: processes, channels, the console |
//! | `wasi_snapshot_preview1` | [`wasi`]: WASI preview1 |
//!
//! Every interface reads and writes guest memory only through
//! [`uaccess`], and reaches the process, its handles and the kernel only
//! through the process's [`crate::proc::Context`].

mod uaccess;
pub mod vessel;
pub mod wasi;

use alloc::boxed::Box;
use alloc::vec;

use crate::hal::Platform;
use crate::proc::Interfaces;
use crate::sched::SchedHal;

pub use vessel::{CHANNEL_CAPACITY, Errno, MAX_MESSAGE, MAX_MODULE, MAX_SPAWN_HANDLES, MODULE};

use crate::wasm::vm::HostTrap;
use uaccess::AccessError;

/// How a system call fails: an error code `E` of its interface for the
/// guest, or a trap that stops the process. Each interface's dispatcher
/// turns it into the call's result.
pub(crate) enum Fail<E> {
    /// The guest gets this code.
    Errno(E),
    /// The process stops (exit, killed).
    Trap(HostTrap),
}

impl<E> From<HostTrap> for Fail<E> {
    fn from(t: HostTrap) -> Self {
        Self::Trap(t)
    }
}

impl<E: From<AccessError>> From<AccessError> for Fail<E> {
    fn from(e: AccessError) -> Self {
        Self::Errno(e.into())
    }
}

/// Every system interface, as processes link against them.
pub(crate) fn interfaces<'k, 'h, P: Platform + SchedHal>() -> Interfaces<'k, 'h, P> {
    vec![Box::new(vessel::Vessel), Box::new(wasi::Wasi)]
}
