//! The hardware abstraction layer: the only door from the kernel to the platform.
//!
//! The HAL is a handful of narrow traits, one per capability, gathered by
//! [`Platform`]. A kernel subsystem is generic over the narrowest part it
//! needs (the frame allocator needs nothing, the fault path needs [`Mmu`] and
//! [`PhysMemory`], the idle loop needs [`Cpus`] and [`Interrupts`]).
//!
//! Two implementations exist and every method's documentation says what each
//! of them does:
//! - **hosted** (`hal-hosted`): the kernel runs as a Linux process; physical
//!   memory is a memfd, the MMU is `mmap`/`mprotect`, CPUs are threads, traps
//!   and interrupts are signals.
//! - **riscv** (`hal-riscv`): bare metal riscv64 under OpenSBI; Sv48 page
//!   tables (Sv39 on harts without Sv48), `stvec`, SBI timers and IPIs, a 16550 UART.
//!
//! Rules of the boundary (numbered so that SAFETY comments can cite them):
//! - INV-HAL-1: errors cross the boundary as [`HalError`] values; no method
//!   panics on bad input.
//! - INV-HAL-2: trap context is special. The code a HAL calls from a trap
//!   ([`CpuLocal::deliver_fault`], [`CpuLocal::deliver_interrupt`]) allocates
//!   nothing on the heap, takes no lock that the interrupted code on the same
//!   CPU may hold, and never panics.
//! - INV-HAL-3: obligations are types. A page-table change returns a
//!   `#[must_use]` [`TlbFlush`] that must be handed to [`Mmu::flush`]; an
//!   interrupt-disabled section is an [`IrqGuard`].
//! - INV-HAL-4: hosted address spaces are disjoint ranges of one process; the
//!   kernel never assumes two address spaces can use the same virtual address.

mod clock;
mod codecache;
mod console;
mod cpu;
mod error;
mod files;
mod irq;
mod isa;
mod jit;
mod local;
mod mmu;
mod phys;
mod power;
mod trap;

pub use clock::Clock;
pub use codecache::CodeCache;
pub use console::{Console, InputState};
pub use cpu::{CpuEntry, CpuId, Cpus};
pub use error::HalError;
pub use files::{HostEntry, HostFiles, HostHandle, HostOp, HostOpen, HostReply, Ticket};
pub use irq::{Interrupts, IrqGuard};
pub use isa::{IsaError, IsaFeatures, RiscvExt, RiscvExtensions, X86Ext, X86Extensions};
pub use jit::{JitCode, JitDebug, JitSymbol};
pub use local::CpuLocal;
pub use mmu::{Mmu, Perms, TableFrames, TlbFlush, VirtRange};
pub use phys::{PAGE_SIZE, PhysAddr, PhysMemory, PhysRange};
pub use power::Power;
pub use trap::{Access, Interrupt, ResumeContext, TrapAction, TrapFrame, TrapKind};

/// A whole platform: every capability the kernel needs, in one bound.
///
/// The parts are supertraits so that a `&P` can be handed to a subsystem that
/// asks only for, say, `&impl Mmu`.
pub trait Platform:
    PhysMemory
    + Mmu
    + Cpus
    + Interrupts
    + Clock
    + Console
    + Power
    + JitDebug
    + HostFiles
    + CodeCache
    + Sync
    + 'static
{
    /// The name printed in the boot banner: `hosted` or `riscv`.
    const NAME: &'static str;
}
