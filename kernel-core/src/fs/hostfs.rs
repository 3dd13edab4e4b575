//! hostfs: a directory of the host passed through, through the HAL's
//! host-files device ([`crate::hal::HostFiles`]).
//!
//! A call is a request to the device and a wait for its completion:
//! [`call`] is the future a process blocks on (its fiber suspended, its CPU
//! free for others) while the host does the work. The device confines
//! every path to the directory it starts from; the kernel keeps no state
//! of its own besides the handles its descriptors hold.
//!
//! Invariant INV-HOSTFS-2: a request whose waiter goes away (the process
//! is killed while it waits) is cancelled when its future is dropped, so
//! its completion frees what it holds and reaches no one.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::FsError;
use crate::hal::{HostFiles, HostOp, HostReply, Ticket};

/// The waiting half of one request: cancels it when dropped before its
/// completion (INV-HOSTFS-2).
struct Pending<'h, H: HostFiles> {
    hal: &'h H,
    ticket: Option<Ticket>,
}

impl<H: HostFiles> Future for Pending<'_, H> {
    type Output = Result<HostReply, FsError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(ticket) = self.ticket else {
            return Poll::Ready(Err(FsError::Io));
        };
        let done = self.hal.host_poll(ticket, cx.waker());
        if done.is_ready() {
            self.ticket = None;
        }
        done
    }
}

impl<H: HostFiles> Drop for Pending<'_, H> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.hal.host_cancel(ticket);
        }
    }
}

/// Carry `op` out on the host: its reply once the device completes it.
///
/// # Errors
/// The host's answer as an [`FsError`]; [`FsError::NotSupported`] on a
/// platform without host files, [`FsError::TooManyFiles`] when the device
/// takes no more requests now.
pub fn call<H: HostFiles + Sync>(
    hal: &H,
    op: HostOp,
) -> impl Future<Output = Result<HostReply, FsError>> + Send + '_ {
    // The request is owned by its waiter from here on, even if the future
    // is dropped before its first poll (INV-HOSTFS-2).
    let pending = hal.host_submit(op).map(|ticket| Pending {
        hal,
        ticket: Some(ticket),
    });
    async move {
        pending
            .map_err(|e| match e {
                crate::hal::HalError::Unsupported => FsError::NotSupported,
                _ => FsError::TooManyFiles,
            })?
            .await
    }
}
