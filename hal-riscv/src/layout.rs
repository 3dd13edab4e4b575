//! The address-space layout of the riscv image and the pure arithmetic
//! around it: the memory map handed to the kernel, where the HAL heap goes,
//! the logical numbering of harts, hart masks for SBI calls, and clock
//! conversions. Nothing here touches hardware, so all of it is unit-tested
//! on the host.
//!
//! Physical layout (QEMU `virt` + OpenSBI `-bios default`):
//! `0x8000_0000..0x8020_0000` OpenSBI, `0x8020_0000..__image_end` this image
//! (text, data, bss, boot and trap stacks), then the HAL heap. The device
//! tree lies wherever OpenSBI left it.
//!
//! Virtual layout (one address space shared by every hart; Sv48 when the
//! hart has it, else Sv39, chosen at boot by `mmu::enable`):
//! - `0..4 GiB`: the identity map. MMIO below 2 GiB and RAM read/write,
//!   never executable, except the image: it runs at its physical address,
//!   mapped page by page with its sections' permissions (text read/execute,
//!   rodata read, data, bss and stacks read/write; nothing both writable
//!   and executable) and an unmapped guard page under every stack
//!   ([`ImageLayout::page_perms`]);
//! - the physmap, `physmap_base + pa` for all RAM below [`PHYSMAP_SIZE`]
//!   (read/write gigapages), used by `direct_map` and for page tables;
//! - the kernel window, 4 KiB pages made by `Mmu::map`.
//!
//! Where the last two lie depends on the mode ([`VirtLayout::of`]): under
//! Sv39 the physmap is at [`SV39_PHYSMAP_BASE`] and the window is the
//! 64 GiB at [`SV39_WINDOW_BASE`]; under Sv48 both move to the upper half
//! of the 48-bit space, the physmap at [`SV48_PHYSMAP_BASE`] and a 64 TiB
//! window at [`SV48_WINDOW_BASE`], room for about ten thousand 4 GiB +
//! guard linear-memory reservations.
//!
//! Invariants:
//! - INV-LAYOUT-1: every range [`usable_memory`] returns is page aligned,
//!   non-empty, below [`PHYSMAP_SIZE`], sorted and disjoint from the others
//!   and from every hole it was given.
//! - INV-LAYOUT-2: logical CPU 0 is the boot hart; the others follow in
//!   device-tree order, at most [`MAX_HARTS`] in all.
//! - INV-LAYOUT-3: in both modes the physmap and the window are canonical,
//!   disjoint and clear of the identity map (checked at compile time).
//! - INV-LAYOUT-4: [`ImageLayout::page_perms`] never gives a page both
//!   write and execute, and gives `None` (unmapped) for exactly the
//!   [`STACK_GUARD`] bytes at the bottom of every boot and trap stack.

use core::time::Duration;

use kernel_core::hal::{PAGE_SIZE, Perms, PhysAddr, PhysRange, VirtRange};

use crate::fixed::FixedVec;
use crate::pagetable::Mode;

/// One gibibyte (the size of a Sv39 level-2 "gigapage").
pub const GIB: u64 = 1 << 30;
/// One mebibyte.
pub const MIB: u64 = 1 << 20;
const PAGE: u64 = PAGE_SIZE as u64;

/// The most harts the image supports (one boot stack and trap stack each;
/// `link.ld` reserves the same number).
pub const MAX_HARTS: usize = 8;
/// Bytes of boot stack per hart (must match `link.ld`).
pub const BOOT_STACK_SIZE: usize = 512 * 1024;
/// Bytes of trap stack per hart (must match `link.ld`).
pub const TRAP_STACK_SIZE: usize = 64 * 1024;
/// Bytes of the unmapped guard under every boot and trap stack (must
/// match `link.ld`): an overflow faults instead of running into the
/// neighbouring stack.
pub const STACK_GUARD: usize = 4096;
/// Bytes `link.ld` reserves per hart for its boot stack and guard.
pub const BOOT_STACK_STRIDE: usize = STACK_GUARD + BOOT_STACK_SIZE;
/// Bytes `link.ld` reserves per hart for its trap stack and guard.
pub const TRAP_STACK_STRIDE: usize = STACK_GUARD + TRAP_STACK_SIZE;

/// The top of stack `i` of an array of stacks that starts at `start`, each
/// `stride` bytes: its guard page, then the stack.
pub const fn stack_top(start: usize, stride: usize, i: usize) -> usize {
    start + (i + 1) * stride
}

/// Start of RAM on `virt`, where OpenSBI lives; nothing below the end of
/// the HAL heap, from here, is handed to the kernel.
pub const FIRMWARE_BASE: u64 = 0x8000_0000;
/// End of the identity map: the image, the heap, the device tree and the
/// UART must all lie below this.
pub const IDENTITY_LIMIT: u64 = 4 * GIB;

/// Physical addresses the physmap covers (`0..PHYSMAP_SIZE`); RAM above is
/// ignored.
pub const PHYSMAP_SIZE: u64 = 64 * GIB;
/// Base of the physmap under Sv39: `SV39_PHYSMAP_BASE + pa` maps `pa`.
pub const SV39_PHYSMAP_BASE: usize = 0xffff_ffc0_0000_0000;
/// Base of the kernel window under Sv39.
pub const SV39_WINDOW_BASE: usize = 0xffff_ffd0_0000_0000;
/// Size of the kernel window under Sv39.
pub const SV39_WINDOW_SIZE: usize = 64 << 30;
/// Base of the physmap under Sv48: the start of the upper half.
pub const SV48_PHYSMAP_BASE: usize = 0xffff_8000_0000_0000;
/// Base of the kernel window under Sv48 (128 TiB of the upper half hold
/// the physmap, this and room to spare).
pub const SV48_WINDOW_BASE: usize = 0xffff_a000_0000_0000;
/// Size of the kernel window under Sv48: 64 TiB, 128 root entries.
pub const SV48_WINDOW_SIZE: usize = 64 << 40;

/// Where the physmap and the kernel window lie in one translation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtLayout {
    /// The mode this layout is for.
    pub mode: Mode,
    /// `physmap_base + pa` maps physical address `pa` (below
    /// [`PHYSMAP_SIZE`]).
    pub physmap_base: usize,
    /// Base of the kernel window (`Mmu::kernel_window`).
    pub window_base: usize,
    /// Size of the kernel window.
    pub window_size: usize,
}

impl VirtLayout {
    /// The layout of `mode`.
    pub const fn of(mode: Mode) -> Self {
        match mode {
            Mode::Sv39 => Self {
                mode,
                physmap_base: SV39_PHYSMAP_BASE,
                window_base: SV39_WINDOW_BASE,
                window_size: SV39_WINDOW_SIZE,
            },
            Mode::Sv48 => Self {
                mode,
                physmap_base: SV48_PHYSMAP_BASE,
                window_base: SV48_WINDOW_BASE,
                window_size: SV48_WINDOW_SIZE,
            },
        }
    }

    /// The kernel window.
    pub const fn window(&self) -> VirtRange {
        VirtRange {
            start: self.window_base,
            len: self.window_size,
        }
    }

    /// INV-LAYOUT-3 for this layout.
    const fn is_sound(&self) -> bool {
        let m = self.mode;
        m.is_canonical(self.physmap_base)
            && m.is_canonical(self.physmap_base + (PHYSMAP_SIZE as usize - 1))
            && m.is_canonical(self.window_base)
            && m.is_canonical(self.window_base + (self.window_size - 1))
            && self.physmap_base as u64 + PHYSMAP_SIZE <= self.window_base as u64
            && self.physmap_base as u64 >= IDENTITY_LIMIT
    }
}

const _: () = assert!(
    VirtLayout::of(Mode::Sv39).is_sound() && VirtLayout::of(Mode::Sv48).is_sound(),
    "INV-LAYOUT-3: the physmap and the window are canonical and disjoint"
);

/// The sections of the linked image, as physical (= identity-mapped)
/// addresses from `link.ld`'s symbols, each page aligned and in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    /// `__image_start`: the first byte of `.text`.
    pub start: u64,
    /// `__rodata_start`: the end of `.text`.
    pub rodata: u64,
    /// `__data_start`: the end of `.rodata`; data, bss and stacks follow.
    pub data: u64,
    /// `__boot_stacks_start`: [`MAX_HARTS`] boot stacks of
    /// [`BOOT_STACK_STRIDE`] each, guard first.
    pub boot_stacks: u64,
    /// `__trap_stacks_start` (= `__boot_stacks_end`): [`MAX_HARTS`] trap
    /// stacks of [`TRAP_STACK_STRIDE`] each, guard first.
    pub trap_stacks: u64,
    /// `__image_end`: the first byte after the image.
    pub end: u64,
}

impl ImageLayout {
    /// Whether the sections are page aligned, in order, and the stacks
    /// hold what `layout` says.
    pub fn is_consistent(&self) -> bool {
        let aligned = [
            self.start,
            self.rodata,
            self.data,
            self.boot_stacks,
            self.trap_stacks,
            self.end,
        ]
        .iter()
        .all(|a| a.is_multiple_of(PAGE));
        let trap_end = self.trap_stacks + (MAX_HARTS * TRAP_STACK_STRIDE) as u64;
        aligned
            && self.start <= self.rodata
            && self.rodata <= self.data
            && self.data <= self.boot_stacks
            && self.trap_stacks == self.boot_stacks + (MAX_HARTS * BOOT_STACK_STRIDE) as u64
            && trap_end <= self.end
    }

    /// How the identity map maps the page at `pa` (INV-LAYOUT-4): the
    /// image's sections with their own permissions, `None` for a stack
    /// guard, and read/write for the RAM around the image.
    pub fn page_perms(&self, pa: u64) -> Option<Perms> {
        let guard = |base: u64, stride: usize| {
            let at = pa - base;
            at < (MAX_HARTS * stride) as u64 && at % (stride as u64) < STACK_GUARD as u64
        };
        if pa < self.start || pa >= self.end {
            Some(Perms::READ_WRITE)
        } else if pa < self.rodata {
            Some(Perms::READ_EXECUTE)
        } else if pa < self.data {
            Some(Perms::READ)
        } else if (pa >= self.boot_stacks && guard(self.boot_stacks, BOOT_STACK_STRIDE))
            || (pa >= self.trap_stacks && guard(self.trap_stacks, TRAP_STACK_STRIDE))
        {
            None
        } else {
            Some(Perms::READ_WRITE)
        }
    }
}

/// Most RAM ranges handed to the kernel; pieces past this are dropped
/// (memory lost, never memory double-used).
pub const MAX_MAP_RANGES: usize = 32;
/// Largest HAL heap.
pub const HEAP_MAX: u64 = 64 * MIB;
/// Smallest HAL heap the kernel can boot with.
pub const HEAP_MIN: u64 = 4 * MIB;

/// The memory map type.
pub type MemoryMap = FixedVec<PhysRange, MAX_MAP_RANGES>;

/// An empty range, to fill unused slots of fixed arrays.
pub const EMPTY_RANGE: PhysRange = PhysRange {
    start: PhysAddr(0),
    len: 0,
};

/// `x` rounded up to a multiple of `align` (a power of two), or `None` on
/// overflow.
pub const fn align_up(x: u64, align: u64) -> Option<u64> {
    match x.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// `x` rounded down to a multiple of `align` (a power of two).
pub const fn align_down(x: u64, align: u64) -> u64 {
    x & !(align - 1)
}

/// `[start, end)` of a range, saturating at `u64::MAX`.
fn bounds(r: &PhysRange) -> (u64, u64) {
    (r.start.0, r.start.0.saturating_add(r.len))
}

fn range(start: u64, end: u64) -> PhysRange {
    PhysRange {
        start: PhysAddr(start),
        len: end - start,
    }
}

/// RAM minus `holes`, page aligned (RAM shrunk inwards, holes grown
/// outwards), clipped to `limit`, sorted and without overlaps
/// (INV-LAYOUT-1). Overlapping RAM ranges (a malformed device tree) are
/// merged rather than handed out twice.
pub fn usable_memory(ram: &[PhysRange], holes: &[PhysRange], limit: u64) -> MemoryMap {
    // Sorted, merged, aligned RAM.
    let mut out = MemoryMap::new(EMPTY_RANGE);
    let mut sorted = FixedVec::<PhysRange, MAX_MAP_RANGES>::new(EMPTY_RANGE);
    for r in ram {
        let (start, end) = bounds(r);
        let Some(start) = align_up(start, PAGE) else {
            continue;
        };
        let end = align_down(end.min(limit), PAGE);
        if start >= end {
            continue;
        }
        let at = sorted
            .iter()
            .position(|s| s.start.0 > start)
            .unwrap_or(sorted.len());
        let _ = sorted.insert(at, range(start, end));
    }
    for r in sorted.iter() {
        let (start, end) = bounds(r);
        match out.last_mut() {
            Some(last) if start <= last.end() => {
                let merged_end = end.max(last.end());
                *last = range(last.start.0, merged_end);
            }
            _ => {
                let _ = out.push(range(start, end));
            }
        }
    }
    for hole in holes {
        let (hs, he) = bounds(hole);
        if hole.len == 0 {
            continue;
        }
        let hs = align_down(hs, PAGE);
        let he = align_up(he, PAGE).unwrap_or(u64::MAX);
        let mut next = MemoryMap::new(EMPTY_RANGE);
        for r in out.iter() {
            let (s, e) = bounds(r);
            if he <= s || hs >= e {
                let _ = next.push(*r);
                continue;
            }
            if s < hs {
                let _ = next.push(range(s, hs));
            }
            if he < e {
                let _ = next.push(range(he, e));
            }
        }
        out = next;
    }
    out
}

/// Whether `[start, start + len)` lies inside the union of `map`, whose
/// ranges are sorted (adjacent ranges may be crossed).
pub fn covers(map: &[PhysRange], start: u64, len: u64) -> bool {
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    let mut at = start;
    for r in map {
        let (s, e) = bounds(r);
        if s <= at && at < e {
            at = e;
        }
        if at >= end {
            return true;
        }
    }
    at >= end
}

/// How large the HAL heap is for `ram_total` bytes of RAM: an eighth of it,
/// page aligned, between [`HEAP_MIN`] and [`HEAP_MAX`].
pub fn heap_size(ram_total: u64) -> u64 {
    align_down((ram_total / 8).clamp(HEAP_MIN, HEAP_MAX), PAGE)
}

/// Place a heap of `size` bytes at the first page boundary at or after
/// `image_end` that avoids every hole (the device tree, reserved memory)
/// and lies in one RAM range below [`IDENTITY_LIMIT`].
pub fn place_heap(
    ram: &[PhysRange],
    holes: &[PhysRange],
    image_end: u64,
    size: u64,
) -> Option<PhysRange> {
    let mut start = align_up(image_end, PAGE)?;
    // Each step moves past one hole, so this terminates.
    for _ in 0..=holes.len() {
        let end = start.checked_add(size)?;
        match holes.iter().filter(|h| h.len > 0).find(|h| {
            let (hs, he) = bounds(h);
            hs < end && start < he
        }) {
            Some(h) => start = align_up(bounds(h).1, PAGE)?,
            None => {
                let inside = ram.iter().any(|r| {
                    let (s, e) = bounds(r);
                    s <= start && end <= e
                });
                return (inside && end <= IDENTITY_LIMIT).then(|| range(start, end));
            }
        }
    }
    None
}

/// The logical hart table: the boot hart first, then the other harts of
/// `dt_harts` in device-tree order, at most [`MAX_HARTS`] (INV-LAYOUT-2).
pub fn logical_harts(dt_harts: &[u64], boot: u64) -> FixedVec<u64, MAX_HARTS> {
    let mut out = FixedVec::<u64, MAX_HARTS>::new(0);
    let _ = out.push(boot);
    for &h in dt_harts.iter().filter(|&&h| h != boot) {
        if out.push(h).is_err() {
            break;
        }
    }
    out
}

/// Group hart ids into SBI `(hart_mask, hart_mask_base)` pairs, calling `f`
/// once per group (SBI spec v2.0, section 3.1: bit `i` of the mask names
/// hart `base + i`). Ids in ascending order make the fewest groups.
pub fn for_each_hart_mask(harts: impl Iterator<Item = u64>, mut f: impl FnMut(u64, u64)) {
    let mut group: Option<(u64, u64)> = None;
    for h in harts {
        match group {
            Some((mask, base)) if h >= base && h - base < 64 => {
                group = Some((mask | 1 << (h - base), base));
            }
            _ => {
                if let Some((mask, base)) = group {
                    f(mask, base);
                }
                group = Some((1, h));
            }
        }
    }
    if let Some((mask, base)) = group {
        f(mask, base);
    }
}

/// `ticks` of a `hz` clock as a duration (exact to the nanosecond, rounded
/// down; no overflow for any `u64` tick count).
pub fn ticks_to_duration(ticks: u64, hz: u64) -> Duration {
    if hz == 0 {
        return Duration::ZERO;
    }
    let secs = ticks / hz;
    let rem = ticks % hz;
    // rem < hz <= u64::MAX, so rem * 1e9 fits in u128.
    let nanos = (u128::from(rem) * 1_000_000_000 / u128::from(hz)) as u32;
    Duration::new(secs, nanos)
}

/// `d` in ticks of a `hz` clock, rounded up (a timer never fires early),
/// saturating at `u64::MAX`.
pub fn duration_to_ticks(d: Duration, hz: u64) -> u64 {
    let ticks = u128::from(hz) * d.as_nanos();
    let ticks = ticks.div_ceil(1_000_000_000);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// Bytes in `ranges`.
pub fn total(map: &[PhysRange]) -> u64 {
    map.iter().map(|r| r.len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, len: u64) -> PhysRange {
        PhysRange {
            start: PhysAddr(start),
            len,
        }
    }

    /// INV-LAYOUT-1 for one output.
    fn check_inv(map: &[PhysRange], holes: &[PhysRange], limit: u64) {
        for w in map.windows(2) {
            assert!(w[0].end() <= w[1].start.0, "unsorted or overlapping: {w:?}");
        }
        for x in map {
            assert!(x.len > 0);
            assert_eq!(x.start.0 % PAGE, 0);
            assert_eq!(x.len % PAGE, 0);
            assert!(x.end() <= limit);
            for h in holes.iter().filter(|h| h.len > 0) {
                assert!(
                    x.end() <= h.start.0 || h.end() <= x.start.0,
                    "{x:?} overlaps hole {h:?}"
                );
            }
        }
    }

    #[test]
    fn qemu_virt_512m_map_inv_layout_1() {
        let ram = [r(0x8000_0000, 512 * MIB)];
        let holes = [r(FIRMWARE_BASE, 0x0660_0000), r(0x9fe0_0000, 0x1234)];
        let map = usable_memory(&ram, &holes, PHYSMAP_SIZE);
        assert_eq!(
            &*map,
            &[
                r(0x8660_0000, 0x9fe0_0000 - 0x8660_0000),
                r(0x9fe0_2000, 0xa000_0000 - 0x9fe0_2000)
            ]
        );
        check_inv(&map, &holes, PHYSMAP_SIZE);
    }

    #[test]
    fn unaligned_ram_shrinks_and_holes_grow() {
        let ram = [r(0x1000_0800, 0x10_0000)];
        let holes = [r(0x1004_0010, 0x10)];
        let map = usable_memory(&ram, &holes, u64::MAX);
        assert_eq!(
            &*map,
            &[
                r(0x1000_1000, 0x3_f000),
                r(0x1004_1000, 0x1000_0800 + 0x10_0000 - 0x1004_1000 - 0x800)
            ]
        );
        check_inv(&map, &holes, u64::MAX);
    }

    #[test]
    fn overlapping_unsorted_ram_is_merged_and_clipped() {
        let ram = [
            r(0x3000_0000, 0x1000_0000),
            r(0x1000_0000, 0x2800_0000),
            r(0, 0),
        ];
        let map = usable_memory(&ram, &[], 0x3800_0000);
        assert_eq!(&*map, &[r(0x1000_0000, 0x2800_0000)]);
    }

    #[test]
    fn hole_covering_everything_leaves_nothing() {
        let map = usable_memory(&[r(0x8000_0000, GIB)], &[r(0, u64::MAX)], u64::MAX);
        assert!(map.is_empty());
    }

    #[test]
    fn covers_crosses_adjacent_ranges_only() {
        let map = [r(0x1000, 0x1000), r(0x2000, 0x1000), r(0x5000, 0x1000)];
        assert!(covers(&map, 0x1000, 0x2000));
        assert!(covers(&map, 0x2800, 0x800));
        assert!(!covers(&map, 0x2000, 0x2000));
        assert!(!covers(&map, 0x0, 0x1000));
        assert!(!covers(&map, u64::MAX, 2));
        assert!(covers(&map, 0x5000, 0));
    }

    /// `link.ld` reserves what these constants say (the boot code checks
    /// the same at run time, from the linked symbols).
    #[test]
    fn linker_script_agrees_on_stacks() {
        let script = include_str!("../link.ld");
        let value = |name: &str| -> usize {
            let line = script
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{name} =")))
                .unwrap();
            let v = line.split('=').nth(1).unwrap().trim().trim_end_matches(';');
            match v.strip_suffix('K') {
                Some(k) => k.parse::<usize>().unwrap() * 1024,
                None => v.parse().unwrap(),
            }
        };
        assert_eq!(value("MAX_HARTS"), MAX_HARTS);
        assert_eq!(value("BOOT_STACK_SIZE"), BOOT_STACK_SIZE);
        assert_eq!(value("TRAP_STACK_SIZE"), TRAP_STACK_SIZE);
        assert_eq!(value("STACK_GUARD"), STACK_GUARD);
        assert!(script.contains(". = 0x80200000;"));
    }

    fn image() -> ImageLayout {
        let boot_stacks = 0x80b5_6000;
        let trap_stacks = boot_stacks + (MAX_HARTS * BOOT_STACK_STRIDE) as u64;
        ImageLayout {
            start: 0x8020_0000,
            rodata: 0x8077_5000,
            data: 0x80b4_2000,
            boot_stacks,
            trap_stacks,
            end: trap_stacks + (MAX_HARTS * TRAP_STACK_STRIDE) as u64,
        }
    }

    #[test]
    fn image_pages_are_w_xor_x_with_stack_guards_inv_layout_4() {
        let img = image();
        assert!(img.is_consistent());
        assert_eq!(img.page_perms(0x8000_0000), Some(Perms::READ_WRITE));
        assert_eq!(img.page_perms(0x8020_0000), Some(Perms::READ_EXECUTE));
        assert_eq!(img.page_perms(0x8077_4000), Some(Perms::READ_EXECUTE));
        assert_eq!(img.page_perms(0x8077_5000), Some(Perms::READ));
        assert_eq!(img.page_perms(0x80b4_2000), Some(Perms::READ_WRITE));
        assert_eq!(img.page_perms(img.end), Some(Perms::READ_WRITE));
        let mut guards = 0;
        let mut page = img.start;
        while page < img.end {
            match img.page_perms(page) {
                None => guards += 1,
                Some(p) => assert!(!(p.write && p.execute), "W+X at {page:#x}"),
            }
            page += PAGE;
        }
        assert_eq!(guards, 2 * MAX_HARTS * STACK_GUARD / PAGE as usize);
        for i in 0..MAX_HARTS {
            for (start, stride, size) in [
                (img.boot_stacks, BOOT_STACK_STRIDE, BOOT_STACK_SIZE),
                (img.trap_stacks, TRAP_STACK_STRIDE, TRAP_STACK_SIZE),
            ] {
                let top = stack_top(start as usize, stride, i) as u64;
                let bottom = top - size as u64;
                assert_eq!(img.page_perms(bottom - PAGE), None, "guard under stack {i}");
                assert_eq!(img.page_perms(bottom), Some(Perms::READ_WRITE));
                assert_eq!(img.page_perms(top - PAGE), Some(Perms::READ_WRITE));
            }
        }
        let mut bad = img;
        bad.trap_stacks += PAGE;
        assert!(!bad.is_consistent());
        bad = img;
        bad.rodata += 1;
        assert!(!bad.is_consistent());
    }

    #[test]
    fn both_virtual_layouts_inv_layout_3() {
        let sv39 = VirtLayout::of(Mode::Sv39);
        assert_eq!(sv39.physmap_base, 0xffff_ffc0_0000_0000);
        assert_eq!(
            sv39.window(),
            VirtRange {
                start: 0xffff_ffd0_0000_0000,
                len: 64 << 30
            }
        );
        let sv48 = VirtLayout::of(Mode::Sv48);
        assert!(sv48.window_size / (6 << 30) >= 10_000);
        assert!(!Mode::Sv39.is_canonical(sv48.window_base));
        assert!(Mode::Sv48.is_canonical(sv48.window_base + sv48.window_size - 1));
        assert!(!Mode::Sv48.is_canonical(0x0000_8000_0000_0000));
        assert!(Mode::Sv48.is_canonical(0x0000_7fff_ffff_f000));
        for l in [sv39, sv48] {
            assert!(l.is_sound());
        }
    }

    #[test]
    fn heap_size_is_an_eighth_within_bounds() {
        assert_eq!(total(&[r(0, 3 * MIB), r(8 * MIB, MIB)]), 4 * MIB);
        assert_eq!(heap_size(512 * MIB), 64 * MIB);
        assert_eq!(heap_size(8 * GIB), HEAP_MAX);
        assert_eq!(heap_size(128 * MIB), 16 * MIB);
        assert_eq!(heap_size(16 * MIB), HEAP_MIN);
    }

    #[test]
    fn heap_skips_the_device_tree() {
        let ram = [r(0x8000_0000, 128 * MIB)];
        let dtb = r(0x8060_0000, 0x2000);
        let heap = place_heap(&ram, &[dtb], 0x8040_0123, 4 * MIB).unwrap();
        assert_eq!(heap, r(0x8060_2000, 4 * MIB));
        let heap = place_heap(&ram, &[r(0x9000_0000, 0x1000)], 0x8040_0000, 4 * MIB).unwrap();
        assert_eq!(heap, r(0x8040_0000, 4 * MIB));
        assert_eq!(place_heap(&ram, &[], 0x8040_0000, 200 * MIB), None);
    }

    #[test]
    fn logical_harts_put_boot_first_inv_layout_2() {
        let h = logical_harts(&[0, 1, 2, 3], 2);
        assert_eq!(&*h, &[2, 0, 1, 3]);
        let many: [u64; 12] = core::array::from_fn(|i| i as u64);
        let h = logical_harts(&many, 11);
        assert_eq!(&*h, &[11, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(&*logical_harts(&[], 5), &[5]);
    }

    #[test]
    fn hart_masks_group_by_64() {
        let mut calls = std::vec::Vec::new();
        for_each_hart_mask([1u64, 2, 3, 70, 140].into_iter(), |m, b| calls.push((m, b)));
        assert_eq!(calls, [(0b111, 1), (1, 70), (1, 140)]);
        calls.clear();
        for_each_hart_mask([0u64, 63, 64].into_iter(), |m, b| calls.push((m, b)));
        assert_eq!(calls, [(1 | 1 << 63, 0), (1, 64)]);
        calls.clear();
        for_each_hart_mask(core::iter::empty(), |m, b| calls.push((m, b)));
        assert!(calls.is_empty());
    }

    #[test]
    fn clock_conversions_round_the_safe_way() {
        let hz = 10_000_000;
        assert_eq!(
            ticks_to_duration(15_000_001, hz),
            Duration::new(1, 500_000_100)
        );
        assert_eq!(duration_to_ticks(Duration::from_nanos(1), hz), 1);
        assert_eq!(duration_to_ticks(Duration::from_millis(1), hz), 10_000);
        assert_eq!(duration_to_ticks(Duration::MAX, hz), u64::MAX);
        assert_eq!(ticks_to_duration(u64::MAX, 1).as_secs(), u64::MAX);
        assert_eq!(ticks_to_duration(5, 0), Duration::ZERO);
        for t in [0u64, 1, 9_999_999, 10_000_000, 123_456_789_012] {
            assert_eq!(duration_to_ticks(ticks_to_duration(t, hz), hz), t);
        }
    }
}
