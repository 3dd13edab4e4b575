//! Physical memory: the memory map and the direct map.

/// Size of a frame and of a page on every platform Vessel runs on.
pub const PAGE_SIZE: usize = 4096;

/// A physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// The frame number of this address (address / [`PAGE_SIZE`]).
    pub const fn frame(self) -> u64 {
        self.0 / PAGE_SIZE as u64
    }

    /// The address of frame number `frame`.
    pub const fn of_frame(frame: u64) -> Self {
        Self(frame * PAGE_SIZE as u64)
    }

    /// Whether the address is a multiple of [`PAGE_SIZE`].
    pub const fn is_page_aligned(self) -> bool {
        self.0.is_multiple_of(PAGE_SIZE as u64)
    }
}

/// A half-open range `[start, start + len)` of physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    /// First byte.
    pub start: PhysAddr,
    /// Length in bytes.
    pub len: u64,
}

impl PhysRange {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.start.0 + self.len
    }
}

/// Physical memory as the kernel sees it.
pub trait PhysMemory {
    /// The RAM the kernel may hand out as frames: page-aligned, sorted,
    /// non-overlapping ranges. Memory the platform itself uses (the kernel
    /// image, boot stacks, the device tree, the HAL's heap) is not in it.
    ///
    /// - hosted: one range `[0, size)`, the whole memfd.
    /// - riscv: the device tree's `/memory` ranges minus the kernel image, the
    ///   device tree blob and the kernel heap.
    fn memory_map(&self) -> &[PhysRange];

    /// The direct-map address of physical address `pa`: every byte of RAM is
    /// readable and writable there for the kernel's whole life.
    ///
    /// Returns `None` when `pa` is not RAM of [`PhysMemory::memory_map`].
    ///
    /// - hosted: the memfd is mapped once, shared, at boot; this adds `pa` to
    ///   the base of that mapping.
    /// - riscv: adds `pa` to the base of the physmap (gigapage mappings
    ///   of all RAM in the upper half).
    fn direct_map(&self, pa: PhysAddr) -> Option<*mut u8>;

    /// Zero `len` bytes of RAM at `pa`, both page-aligned and inside one
    /// range of [`PhysMemory::memory_map`], owned by the caller (nothing
    /// else reads or maps them). Returns false when they are not RAM.
    ///
    /// - hosted: 64 KiB or more are given back to the host instead (a hole
    ///   punched in the memfd): they read as zero and cost the host nothing
    ///   until touched again, so a committed but untouched page (most of a
    ///   fiber stack, a fresh wasm page) is free; less is written, as is
    ///   anything the host refuses to punch.
    /// - riscv: written through the direct map (the default).
    fn zero(&self, pa: PhysAddr, len: usize) -> bool {
        let Some(base) = self.direct_map(pa) else {
            return false;
        };
        if len == 0 {
            return true;
        }
        if self.direct_map(PhysAddr(pa.0 + len as u64 - 1)).is_none() {
            return false;
        }
        // SAFETY: the direct map covers every byte of RAM for the kernel's
        // whole life (above), both ends of the range were checked, and the
        // caller owns the bytes, so nothing else reads them now.
        unsafe { core::ptr::write_bytes(base, 0, len) };
        true
    }

    /// Bytes of the kernel heap when it is a fixed region apart from the
    /// frames, `None` when it grows on demand: what bounds the kernel
    /// structures that live on the heap, such as tmpfs data.
    ///
    /// - hosted: `None` (the host's allocator).
    /// - riscv: the HAL heap's size (an eighth of RAM, at most 64 MiB).
    fn heap_bytes(&self) -> Option<u64> {
        None
    }
}
