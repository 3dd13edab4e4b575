//! The CPU-local block: how a HAL finds the kernel from a trap.
//!
//! The kernel creates one block per CPU and installs it with
//! [`super::Cpus::set_cpu_local`]. A HAL that takes a fault or an interrupt
//! reads the block of the current CPU and calls
//! [`CpuLocal::deliver_fault`] or [`CpuLocal::deliver_interrupt`]. The block
//! carries a type-erased pointer to the kernel and two entry functions, so
//! the HAL needs to know nothing of the kernel's type and no global holds
//! kernel state: several kernels can run side by side in one process.
//!
//! INV-LOCAL-1: `data` is valid for `on_fault` and `on_interrupt` for the
//! whole life of the block (the constructor's safety contract).

use super::{CpuId, Interrupt, TrapAction, TrapFrame};

/// Entry for synchronous faults; `data` is the block's kernel pointer.
pub type FaultEntry = unsafe fn(data: *const (), frame: &TrapFrame) -> TrapAction;
/// Entry for interrupts; `data` is the block's kernel pointer.
pub type InterruptEntry = unsafe fn(data: *const (), irq: Interrupt);

/// One CPU's link from the platform back to the kernel running on it.
pub struct CpuLocal {
    id: CpuId,
    data: *const (),
    on_fault: FaultEntry,
    on_interrupt: InterruptEntry,
}

// SAFETY: every field is immutable after construction, and the constructor's
// contract makes `data` a pointer to state the entries may use from any CPU.
unsafe impl Sync for CpuLocal {}
// SAFETY: as for `Sync`; the block holds no CPU-affine state.
unsafe impl Send for CpuLocal {}

impl CpuLocal {
    /// A block for CPU `id` whose traps go to `on_fault` / `on_interrupt`
    /// with `data`.
    ///
    /// # Safety
    /// `data` must stay valid for both entries, from any CPU, for as long as
    /// the block exists (INV-LOCAL-1), and both entries must obey INV-HAL-2.
    pub const unsafe fn new(
        id: CpuId,
        data: *const (),
        on_fault: FaultEntry,
        on_interrupt: InterruptEntry,
    ) -> Self {
        Self {
            id,
            data,
            on_fault,
            on_interrupt,
        }
    }

    /// The logical CPU this block belongs to.
    pub const fn id(&self) -> CpuId {
        self.id
    }

    /// The kernel pointer the block was made with.
    pub const fn data(&self) -> *const () {
        self.data
    }

    /// Hand a synchronous fault to the kernel and return its answer.
    /// Obeys INV-HAL-2: callable from a signal handler or trap vector.
    pub fn deliver_fault(&self, frame: &TrapFrame) -> TrapAction {
        // SAFETY: INV-LOCAL-1 keeps `data` valid for `on_fault`.
        unsafe { (self.on_fault)(self.data, frame) }
    }

    /// Hand an interrupt to the kernel. The HAL calls this with interrupts
    /// masked on this CPU. Obeys INV-HAL-2.
    pub fn deliver_interrupt(&self, irq: Interrupt) {
        // SAFETY: INV-LOCAL-1 keeps `data` valid for `on_interrupt`.
        unsafe { (self.on_interrupt)(self.data, irq) }
    }
}
