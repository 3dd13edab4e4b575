//! Regions kept for reuse: the slots behind linear memories and tables.
//!
//! Reserving a region, committing it and mapping its first granules costs
//! host calls on hosted and page-table work and TLB shootdowns on riscv;
//! releasing it costs as much again. A process that starts and ends often
//! (a shell's `true`) would pay both every time, so regions of the shapes
//! wasm instances use are given back to a [`RegionPool`] instead of being
//! released, and the next instance of the same shape takes one.
//!
//! A region given back keeps its first granules committed and resident
//! (at most [`KEEP_BYTES`], within the pool's frame budget): they are
//! zeroed in place through the direct map ([`Vm::scrub`]), nothing is
//! unmapped, and the next tenant writes them without a fault. The rest is
//! decommitted: only what the last tenant touched, not the reservation.
//! While idle a region is charged to the kernel; taking it charges its
//! kept granules to the new owner ([`Vm::reassign`]).
//!
//! Invariants:
//! - INV-POOL-1: an idle region is in the pool once and used by nobody; a
//!   region is taken out before anyone else uses it (never two tenants).
//! - INV-POOL-2: every private frame of an idle region is zero, and its
//!   committed granules are exactly `[0, kept)`: no byte of an earlier
//!   tenant is readable by the next.
//! - INV-POOL-3: idle regions are at most `max_slots` (settable), their kept frames
//!   at most `max_frames` and their address space (guards included) at
//!   most `max_bytes` of the window; a region that does not fit is
//!   released. A reservation that finds no room in the window releases
//!   every idle region and tries again, so idle slots never keep a new
//!   region out.
//! - INV-POOL-4: an idle region is charged to [`Owner::Kernel`]; a region
//!   handed out is charged to its new owner before it is returned.

use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::gaps::Placement;
use super::space::{Mapping, Owner, RegionSpec, Vm, VmError};
use crate::hal::{Mmu, PAGE_SIZE, PhysMemory, VirtRange};

/// Most bytes of a region kept committed and resident while it is idle.
pub const KEEP_BYTES: usize = 1 << 20;

/// What makes two regions interchangeable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    len: usize,
    guard: usize,
    granule: u32,
}

impl Shape {
    const fn of(spec: &RegionSpec) -> Self {
        Self {
            len: spec.len,
            guard: spec.guard,
            granule: spec.granule,
        }
    }

    const fn granule_bytes(self) -> usize {
        PAGE_SIZE << self.granule
    }

    /// Window bytes a region of this shape takes, guards included (as
    /// `Vm::reserve` rounds the guards to granules).
    const fn footprint(self) -> usize {
        let g = self.granule_bytes();
        self.len
            .saturating_add(self.guard.div_ceil(g).saturating_mul(g).saturating_mul(2))
    }
}

/// An idle region.
#[derive(Clone, Copy, Debug)]
struct Slot {
    range: VirtRange,
    shape: Shape,
    /// Committed bytes from the start (INV-POOL-2).
    kept: usize,
}

impl Slot {
    const fn frames(&self) -> u64 {
        (self.kept / PAGE_SIZE) as u64
    }
}

#[derive(Default)]
struct Idle {
    slots: Vec<Slot>,
    frames: u64,
    bytes: usize,
    /// Regions handed out from the pool, and released since it was made.
    reused: u64,
    fresh: u64,
}

/// What the pool holds and has done ([`RegionPool::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Idle regions.
    pub idle: usize,
    /// Frames their kept granules hold (resident or promised).
    pub frames: u64,
    /// Regions handed out again.
    pub reused: u64,
    /// Regions reserved anew because none fitted.
    pub fresh: u64,
}

/// Idle regions by shape, most recently given back first.
pub struct RegionPool {
    idle: spin::Mutex<Idle>,
    max_slots: AtomicUsize,
    max_frames: u64,
    max_bytes: usize,
}

/// A region taken from a [`RegionPool`] (or reserved anew): given back to
/// it when dropped.
pub struct Pooled<'a, H: Mmu + PhysMemory> {
    /// Taken out only by `drop`.
    mapping: ManuallyDrop<Mapping<'a, H>>,
    pool: &'a RegionPool,
    shape: Shape,
    kept: usize,
}

impl RegionPool {
    /// A pool of at most `max_slots` idle regions keeping at most
    /// `max_frames` frames committed and `max_bytes` of the window
    /// reserved between them.
    pub const fn new(max_slots: usize, max_frames: u64, max_bytes: usize) -> Self {
        Self {
            idle: spin::Mutex::new(Idle {
                slots: Vec::new(),
                frames: 0,
                bytes: 0,
                reused: 0,
                fresh: 0,
            }),
            max_slots: AtomicUsize::new(max_slots),
            max_frames,
            max_bytes,
        }
    }

    /// A region of `spec`'s shape for `spec.owner`: an idle one when there
    /// is one (its first [`Pooled::kept`] bytes committed read + write and
    /// zero), else one reserved anew (nothing committed). Regions with a
    /// fixed placement are always reserved anew.
    ///
    /// # Errors
    /// As [`Vm::reserve`] for a new region.
    pub fn take<'a, H: Mmu + PhysMemory>(
        &'a self,
        vm: Vm<'a, H>,
        spec: &RegionSpec,
    ) -> Result<Pooled<'a, H>, VmError> {
        let shape = Shape::of(spec);
        if spec.placement == Placement::Random {
            let slot = {
                let mut idle = self.idle.lock();
                let at = idle.slots.iter().rposition(|s| s.shape == shape);
                at.map(|i| {
                    let s = idle.slots.swap_remove(i);
                    idle.frames -= s.frames();
                    idle.bytes -= s.shape.footprint();
                    idle.reused += 1;
                    s
                })
            };
            if let Some(slot) = slot {
                // INV-POOL-1: out of the pool, so only this caller has it.
                let mapping = Mapping::adopt(vm, slot.range);
                let mut kept = slot.kept;
                if mapping.reassign(spec.owner).is_err() {
                    // The owner cannot take the kept granules: hand the
                    // region over empty (reassigning nothing cannot fail).
                    if mapping.decommit(0, kept).is_err() || mapping.reassign(spec.owner).is_err() {
                        drop(mapping);
                        return self.reserve(vm, spec, shape);
                    }
                    kept = 0;
                }
                return Ok(Pooled {
                    mapping: ManuallyDrop::new(mapping),
                    pool: self,
                    shape,
                    kept,
                });
            }
        }
        self.reserve(vm, spec, shape)
    }

    fn reserve<'a, H: Mmu + PhysMemory>(
        &'a self,
        vm: Vm<'a, H>,
        spec: &RegionSpec,
        shape: Shape,
    ) -> Result<Pooled<'a, H>, VmError> {
        let mapping = match Mapping::reserve(vm, spec) {
            Err(VmError::Placement(_)) if self.trim(vm) > 0 => Mapping::reserve(vm, spec)?,
            other => other?,
        };
        self.idle.lock().fresh += 1;
        Ok(Pooled {
            mapping: ManuallyDrop::new(mapping),
            pool: self,
            shape,
            kept: 0,
        })
    }

    /// Keep `mapping` for reuse when it fits (INV-POOL-3), else release it.
    fn give<H: Mmu + PhysMemory>(&self, mapping: Mapping<'_, H>, shape: Shape) {
        let Some(end) = mapping.committed_end() else {
            return;
        };
        let g = shape.granule_bytes();
        let room = {
            let idle = self.idle.lock();
            if !self.fits(&idle, shape, 0) {
                return; // released as `mapping` drops
            }
            self.max_frames.saturating_sub(idle.frames) as usize * PAGE_SIZE
        };
        let kept = end.min(KEEP_BYTES).min(room) / g * g;
        let prepared = (kept == end || mapping.decommit(kept, end - kept).is_ok())
            && mapping.reassign(Owner::Kernel).is_ok()
            && (kept == 0 || mapping.scrub(0, kept).is_ok());
        if !prepared {
            return;
        }
        let slot = Slot {
            range: mapping.range(),
            shape,
            kept,
        };
        let mut idle = self.idle.lock();
        // Checked again: another CPU may have filled the pool meanwhile.
        if !self.fits(&idle, shape, slot.frames()) {
            return;
        }
        idle.frames += slot.frames();
        idle.bytes += shape.footprint();
        idle.slots.push(slot);
        mapping.into_raw();
    }

    /// Whether one more idle region of `shape` keeping `frames` frames
    /// stays within the limits (INV-POOL-3).
    fn fits(&self, idle: &Idle, shape: Shape, frames: u64) -> bool {
        idle.slots.len() < self.max_slots.load(Ordering::Relaxed)
            && idle.frames.saturating_add(frames) <= self.max_frames
            && idle.bytes.saturating_add(shape.footprint()) <= self.max_bytes
    }

    /// Keep at most `n` idle regions from now on (0: release every region
    /// given back, as if there were no pool), releasing any past it.
    pub fn set_max_slots<H: Mmu + PhysMemory>(&self, vm: Vm<'_, H>, n: usize) {
        self.max_slots.store(n, Ordering::Relaxed);
        self.release_past(vm, n);
    }

    /// Release every idle region now. Returns how many there were.
    pub fn trim<H: Mmu + PhysMemory>(&self, vm: Vm<'_, H>) -> usize {
        self.release_past(vm, 0)
    }

    /// Release the idle regions given back first, keeping the `keep` most
    /// recent; how many went.
    fn release_past<H: Mmu + PhysMemory>(&self, vm: Vm<'_, H>, keep: usize) -> usize {
        let gone: Vec<Slot> = {
            let mut idle = self.idle.lock();
            let n = idle.slots.len().saturating_sub(keep);
            let gone: Vec<Slot> = idle.slots.drain(..n).collect();
            for s in &gone {
                idle.frames -= s.frames();
                idle.bytes -= s.shape.footprint();
            }
            gone
        };
        let n = gone.len();
        for s in gone {
            drop(Mapping::adopt(vm, s.range));
        }
        n
    }

    /// What the pool holds now.
    pub fn stats(&self) -> PoolStats {
        let idle = self.idle.lock();
        PoolStats {
            idle: idle.slots.len(),
            frames: idle.frames,
            reused: idle.reused,
            fresh: idle.fresh,
        }
    }
}

impl<'a, H: Mmu + PhysMemory> Pooled<'a, H> {
    /// The region.
    pub fn mapping(&self) -> &Mapping<'a, H> {
        &self.mapping
    }

    /// Bytes from the start committed read + write and zero when the region
    /// was handed out (0 for a new region).
    pub const fn kept(&self) -> usize {
        self.kept
    }
}

impl<H: Mmu + PhysMemory> Drop for Pooled<'_, H> {
    fn drop(&mut self) {
        // SAFETY: `mapping` is not used again: this is the drop.
        let m = unsafe { ManuallyDrop::take(&mut self.mapping) };
        self.pool.give(m, self.shape);
    }
}
