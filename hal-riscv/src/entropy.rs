//! The entropy device: a virtio-rng (QEMU `-device virtio-rng-device`) in
//! one of the `virtio,mmio` slots, driven by the `virtio-drivers` crate.
//!
//! Its DMA memory (the queue rings) and the buffers it fills come from the
//! HAL heap, which lies in RAM below 4 GiB where virtual addresses are
//! physical ones (the identity map): the device sees the same addresses
//! the kernel does.
//!
//! Invariants:
//! - INV-ENTROPY-1: the device is probed once at boot, before other harts
//!   run; afterwards it is only used under its lock.
//! - INV-ENTROPY-2: every buffer handed to the device is a heap allocation
//!   (identity mapped), never a stack buffer: kernel stacks may live in the
//!   kernel window, whose addresses are not physical.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use alloc::boxed::Box;
use core::ptr::NonNull;

use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE};

use crate::layout::IDENTITY_LIMIT;

/// DMA for the virtio drivers: heap pages, identity mapped.
pub struct HeapDma;

fn pages_layout(pages: usize) -> Option<Layout> {
    let size = pages.checked_mul(PAGE_SIZE).filter(|&s| s > 0)?;
    Layout::from_size_align(size, PAGE_SIZE).ok()
}

// SAFETY: `dma_alloc` returns zeroed, page-aligned heap memory owned by the
// caller until `dma_dealloc`, at its physical address (the heap is identity
// mapped); `share` hands out the physical address of heap buffers
// (INV-ENTROPY-2) and needs no copy; `mmio_phys_to_virt` is the identity
// map, which covers every device below 4 GiB.
unsafe impl Hal for HeapDma {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (u64, NonNull<u8>) {
        let Some(layout) = pages_layout(pages) else {
            return (0, NonNull::dangling());
        };
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        match NonNull::new(ptr) {
            Some(p) => (p.as_ptr() as u64, p),
            // `paddr == 0` is the crate's "no memory".
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: u64, vaddr: NonNull<u8>, pages: usize) -> i32 {
        if let Some(layout) = pages_layout(pages) {
            // SAFETY: the caller's contract: `vaddr` came from `dma_alloc`
            // with the same page count, so with this layout.
            unsafe { dealloc(vaddr.as_ptr(), layout) };
        }
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: u64, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as usize as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> u64 {
        buffer.as_ptr().cast::<u8>() as usize as u64
    }

    unsafe fn unshare(_paddr: u64, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

type Rng = VirtIORng<HeapDma, MmioTransport<'static>>;

/// The device, once found (INV-ENTROPY-1).
static DEVICE: spin::Mutex<Option<Rng>> = spin::Mutex::new(None);

/// Bytes asked of the device per request.
const CHUNK: usize = 32;

/// Look for a virtio-rng among the `virtio,mmio` slots `(base, size)` and
/// keep the first that initialises; its base, if one did.
///
/// # Safety
/// Each slot must be a `virtio,mmio` register window from the device tree,
/// and no other hart may run yet (INV-ENTROPY-1).
pub unsafe fn probe(slots: &[(u64, u64)]) -> Option<u64> {
    for &(base, size) in slots {
        if base == 0 || base.saturating_add(size) > IDENTITY_LIMIT {
            continue;
        }
        let Ok(size) = usize::try_from(size) else {
            continue;
        };
        let Some(header) = NonNull::new(base as usize as *mut VirtIOHeader) else {
            continue;
        };
        // SAFETY: the caller's contract: a virtio-mmio window of `size`
        // bytes, identity mapped, used by nothing else for the kernel's
        // life.
        let Ok(transport) = (unsafe { MmioTransport::new(header, size) }) else {
            continue;
        };
        if transport.device_type() != DeviceType::EntropySource {
            continue;
        }
        if let Ok(rng) = Rng::new(transport) {
            *DEVICE.lock() = Some(rng);
            return Some(base);
        }
    }
    None
}

/// Eight bytes from the device, if there is one and it answers.
pub fn read_u64() -> Option<u64> {
    let mut device = DEVICE.lock();
    let rng = device.as_mut()?;
    // INV-ENTROPY-2: the device fills a heap buffer.
    let mut buf: Box<[u8; CHUNK]> = Box::new([0; CHUNK]);
    let n = rng.request_entropy(&mut buf[..]).ok()?;
    let mut word = [0u8; 8];
    for (i, b) in buf[..n.min(CHUNK)].iter().enumerate() {
        word[i % 8] ^= b;
    }
    (n >= 8).then(|| u64::from_le_bytes(word))
}
