//! The kernel's address space: regions of the kernel window, what backs
//! each page, the fault path that fills them, and per-owner accounting.
//!
//! A **region** is a page-aligned range of the window placed by [`Gaps`]
//! (randomized or fixed), with `guard` bytes on each side that are never
//! mapped. Inside it, pages are described by one slot per *granule* (a
//! naturally aligned block of `2^granule` pages, the unit in which frames are
//! allocated and mapped). A slot is one `AtomicU64`:
//!
//! ```text
//!  63            12 11    9   8      7      6    5      4 3 2   1 0
//! [ frame address ][ 0 ][CONTIG][SHARED][COW][COMMIT][X W R][state]
//! ```
//!
//! `state` is `NONE` (no frame), `BUSY` (a CPU is filling it now) or
//! `RESIDENT` (the frame at `frame address` is mapped). A slot of zero is a
//! hole: neither committed nor resident.
//!
//! Backings:
//! - *anonymous, demand*: committed, not resident until first touch; the
//!   fault path maps a zeroed block of `2^granule` frames with one MMU call
//!   (64 KiB granules keep a 1 GiB memory at 16,384 host mappings).
//! - *anonymous, eager*: committed and resident at once.
//! - *contiguous*: one physically contiguous block, mapped at creation.
//! - *shared object* ([`VmObject`]): one block of frames mapped in several
//!   regions; either truly shared (`SHARED`) or copy-on-write (`COW`: mapped
//!   without write; a write fault copies the page into a private frame).
//!
//! Locking: one reader-writer lock over the whole space. Structural
//! operations (reserve, commit, protect, decommit, release) take it for
//! writing; the fault path takes it for reading and moves slots with
//! compare-and-swap among faulting CPUs only. `release` takes the region
//! out under the lock and unmaps and frees it outside, so other CPUs do
//! not wait behind the host's unmap; its range goes back to the gaps under
//! the lock again. Owners' accounts are in a map under a lock of their own,
//! taken after the space's (never before), so charging and uncharging an
//! owner does not wait for structural changes.
//!
//! Invariants:
//! - INV-VM-1: regions never overlap; a region's outer range (guards
//!   included) is handed out by [`Gaps`] and returned only on release.
//! - INV-VM-2: a guard is never mapped; a hole (slot zero) is never mapped;
//!   a `RESIDENT` slot's granule is mapped to its frame with the slot's
//!   permissions (minus write while `COW`).
//! - INV-VM-3: a `RESIDENT` slot without `COW`, `SHARED` or `CONTIG` owns a
//!   block of `2^granule` frames; it returns to the frame allocator as soon
//!   as the page is decommitted or the region released.
//! - INV-VM-4: permissions obey W^X at every step: a request for write and
//!   execute is refused before anything changes.
//! - INV-VM-5 (INV-HAL-2): the fault path allocates nothing on the heap (slot
//!   leaves are allocated at commit) and takes only the space's read lock
//!   and the frame allocator's lock. Kernel code never touches region memory
//!   while it holds the write lock, so a faulting CPU never holds it. This
//!   is checked: the space records which CPU holds the write lock, and a
//!   fault on that CPU is [`FaultOutcome::LockHeld`], a kernel bug reported
//!   as such (`test=lockfault` shows it), where it would otherwise spin for
//!   ever.
//! - INV-VM-6: only the CPU that moved a slot to `BUSY` maps its granule;
//!   other CPUs faulting there wait for it to leave `BUSY`, then retry.
//! - INV-VM-7: accounting is by commitment, so that a limit is enforced
//!   where an error can still be returned (a wasm `memory.grow` returns -1)
//!   rather than in the fault path. An owner is charged `2^granule` frames
//!   for every committed slot that is not `SHARED` or `CONTIG` (resident or
//!   not; a COW page counts for its possible copy), `2^order` for each
//!   contiguous block and for each object it created. The charge never
//!   exceeds the owner's limit; exceeding it, or running out of frames, is
//!   an error value, never a panic. Owners together cannot overcommit RAM
//!   either: every committed granule without a frame holds a promise in
//!   the frame allocator's ledger (INV-MEM-2) for a block of the granule's
//!   order, kept placeable (INV-MEM-3), so a demand or COW fault finds its
//!   frame. Were it not found, the fault would be unresolved
//!   ([`FaultOutcome::OutOfMemory`]), which the trap path turns into a
//!   trap of the faulting wasm code.
//! - INV-VM-8: an owner with a parent (a child process) is charged in its
//!   parent's account and every ancestor's as well as its own, each under
//!   its own limit; a charge is all or nothing along that chain.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::gaps::{GapError, Gaps, Placement, Rng};
use super::{FrameAllocator, FrameError, KernelTables, map_frames, order_for, zero_frames};
use crate::hal::{Access, HalError, Mmu, PAGE_SIZE, Perms, PhysAddr, PhysMemory, VirtRange};

const STATE: u64 = 0b11;
const NONE: u64 = 0;
const BUSY: u64 = 1;
const RESIDENT: u64 = 2;
const F_R: u64 = 1 << 2;
const F_W: u64 = 1 << 3;
const F_X: u64 = 1 << 4;
const F_COMMIT: u64 = 1 << 5;
const F_COW: u64 = 1 << 6;
const F_SHARED: u64 = 1 << 7;
const F_CONTIG: u64 = 1 << 8;
const FLAGS: u64 = 0xfff;
/// Slots per leaf of a region's slot table.
const LEAF: usize = 512;

/// A process, once processes exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId(pub u32);

/// Who a mapping's frames are charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// The kernel itself.
    Kernel,
    /// A process.
    Process(ProcessId),
}

/// Why an address-space operation failed. Nothing changed when one is
/// returned, unless the operation's `# Errors` says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmError {
    /// Zero length, unaligned (to a page or the region's granule), or
    /// outside the region.
    BadRange,
    /// Writable and executable at once (W^X, INV-VM-4).
    WriteExecute,
    /// No region starts at this address.
    NoSuchRegion,
    /// No room in the window (or the fixed address is taken).
    Placement(GapError),
    /// The frame allocator is empty.
    OutOfFrames,
    /// The owner's memory limit would be exceeded (INV-VM-7).
    LimitExceeded,
    /// Part of the range is committed already.
    AlreadyCommitted,
    /// Part of the range is not committed.
    NotCommitted,
    /// Not possible on this kind of region (a partial decommit of a
    /// physically contiguous region, a granule above the buddy's maximum).
    Unsupported,
    /// The MMU refused.
    Hal(HalError),
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRange => f.write_str("bad range for the region"),
            Self::WriteExecute => f.write_str("writable and executable at once (W^X)"),
            Self::NoSuchRegion => f.write_str("no region starts there"),
            Self::Placement(e) => e.fmt(f),
            Self::OutOfFrames => f.write_str("out of physical frames"),
            Self::LimitExceeded => f.write_str("owner's memory limit exceeded"),
            Self::AlreadyCommitted => f.write_str("range already committed"),
            Self::NotCommitted => f.write_str("range not committed"),
            Self::Unsupported => f.write_str("not supported on this region"),
            Self::Hal(e) => write!(f, "MMU: {e}"),
        }
    }
}

impl core::error::Error for VmError {}

/// What the fault path made of a fault (or, from [`Vm::probe`], would make).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// The address lies in no region.
    NotOurs,
    /// A frame is mapped now (or the page is present already): retry.
    Resolved,
    /// The address is in a region's guard.
    Guard,
    /// The address is in a region but not committed there.
    Hole,
    /// The page's permissions forbid the access.
    Violation,
    /// No frame or page table could be had.
    OutOfMemory,
    /// The faulting CPU holds the space's write lock, so the fault could
    /// never be resolved (INV-VM-5 broken: a kernel bug).
    LockHeld,
}

impl FaultOutcome {
    /// A short reason, for the kernel fault report.
    pub const fn why(self) -> &'static str {
        match self {
            Self::NotOurs => "no mapping",
            Self::Resolved => "resolved",
            Self::Guard => "guard page",
            Self::Hole => "no mapping (uncommitted page of a region)",
            Self::Violation => "access not allowed by the page's permissions",
            Self::OutOfMemory => "out of memory resolving a demand fault",
            Self::LockHeld => "fault while this CPU holds the address-space write lock (INV-VM-5)",
        }
    }
}

/// How [`Vm::commit`] backs the committed pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Zero-filled on first touch.
    Demand,
    /// Zero-filled frames mapped now.
    Eager,
}

/// What backs a page, as [`Vm::query`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A guard: never mapped.
    Guard,
    /// Not committed.
    Hole,
    /// Anonymous memory (resident or not), private to the region.
    Anonymous,
    /// A page of a shared object, copy-on-write.
    Cow,
    /// A page of a shared object, shared.
    Shared,
    /// Part of a physically contiguous block.
    Contiguous,
    /// A region the kernel reserved without letting `mem` manage its pages
    /// ([`Vm::reserve_raw`]); its owner maps it through the HAL directly.
    Unmanaged,
}

/// What lies at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageInfo {
    /// The region's usable range.
    pub region: VirtRange,
    /// Who the region's frames are charged to.
    pub owner: Owner,
    /// What backs the page.
    pub backing: Backing,
    /// The page's permissions (what the owner asked for; a COW page is
    /// mapped without write until copied).
    pub perms: Perms,
    /// The frame mapped at the page, when resident.
    pub frame: Option<PhysAddr>,
}

/// Per-owner frame accounting (INV-VM-7), with an optional parent: an
/// owner's charges count against its ancestors' limits too (INV-VM-8).
#[derive(Debug)]
pub struct Account {
    frames: AtomicU64,
    limit: AtomicU64,
    /// Set at most once, before anything is charged to the account.
    parent: spin::Once<Arc<Account>>,
    /// Who the parent is, set with it.
    parent_owner: spin::Once<Owner>,
    /// Its owner is gone ([`Vm::forget`]); it stays while children refer
    /// to it, and goes with the last of them.
    gone: core::sync::atomic::AtomicBool,
}

impl Account {
    const fn new() -> Self {
        Self {
            frames: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
            parent: spin::Once::new(),
            parent_owner: spin::Once::new(),
            gone: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// This account, then its parent, its parent's parent, ...
    fn chain(&self) -> impl Iterator<Item = &Account> {
        core::iter::successors(Some(self), |a| a.parent.get().map(|p| &**p))
    }

    /// Charge `n` frames here and to every ancestor if all their limits
    /// allow; nothing is charged otherwise. Lock-free, no recursion (fault
    /// path).
    fn charge(&self, n: u64) -> bool {
        for (depth, a) in self.chain().enumerate() {
            if !a.charge_own(n) {
                for b in self.chain().take(depth) {
                    b.uncharge_own(n);
                }
                return false;
            }
        }
        true
    }

    fn uncharge(&self, n: u64) {
        for a in self.chain() {
            a.uncharge_own(n);
        }
    }

    fn charge_own(&self, n: u64) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        self.frames
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                f.checked_add(n).filter(|&t| t <= limit)
            })
            .is_ok()
    }

    fn uncharge_own(&self, n: u64) {
        let _ = self
            .frames
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                Some(f.saturating_sub(n))
            });
    }
}

/// A shared VM object: one physically contiguous block of frames that can
/// be mapped in several regions, shared or copy-on-write. Its frames are
/// charged to its creator and freed when the last reference goes through
/// [`Vm::drop_object`] or the release of the last region mapping it.
#[derive(Debug)]
pub struct VmObject {
    pa: PhysAddr,
    order: u32,
    pages: usize,
    account: Arc<Account>,
}

impl VmObject {
    /// Pages in the object.
    pub const fn pages(&self) -> usize {
        self.pages
    }

    /// The frame of page `page`.
    pub const fn frame(&self, page: usize) -> PhysAddr {
        PhysAddr(self.pa.0 + (page * PAGE_SIZE) as u64)
    }
}

/// What to reserve and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionSpec {
    /// Usable bytes (a multiple of the granule size).
    pub len: usize,
    /// Guard bytes on each side (a page multiple; may be zero; rounded up
    /// to a multiple of the granule size).
    pub guard: usize,
    /// Frames are allocated and mapped in naturally aligned blocks of
    /// `2^granule` pages; commit, protect and decommit work in granules.
    pub granule: u32,
    /// Who pays for the frames.
    pub owner: Owner,
    /// Where the outer range (guards included) goes.
    pub placement: Placement,
}

impl RegionSpec {
    /// `len` bytes, one guard page each side, 4 KiB granules, owned by the
    /// kernel, placed at random.
    pub const fn new(len: usize) -> Self {
        Self {
            len,
            guard: PAGE_SIZE,
            granule: 0,
            owner: Owner::Kernel,
            placement: Placement::Random,
        }
    }
}

struct Region {
    range: VirtRange,
    guard: usize,
    granule: u32,
    owner: Owner,
    account: Arc<Account>,
    managed: bool,
    object: Option<Arc<VmObject>>,
    contig: Option<(PhysAddr, u32)>,
    leaves: Box<[Option<Box<[AtomicU64]>>]>,
    /// Granules from here on have never had a leaf entry made for them,
    /// so every slot there is a hole: scans stop here.
    high: usize,
}

impl Region {
    const fn granule_bytes(&self) -> usize {
        PAGE_SIZE << self.granule
    }

    const fn outer(&self) -> VirtRange {
        VirtRange {
            start: self.range.start - self.guard,
            len: self.range.len + 2 * self.guard,
        }
    }

    fn slot(&self, idx: usize) -> Option<&AtomicU64> {
        self.leaves.get(idx / LEAF)?.as_ref()?.get(idx % LEAF)
    }

    fn slot_of(&self, addr: usize) -> Option<&AtomicU64> {
        self.slot((addr - self.range.start) / self.granule_bytes())
    }

    /// Granule indices of `offset..offset + len`, validated.
    fn granules(&self, offset: usize, len: usize) -> Result<core::ops::Range<usize>, VmError> {
        let g = self.granule_bytes();
        let end = offset.checked_add(len).ok_or(VmError::BadRange)?;
        if len == 0 || !offset.is_multiple_of(g) || !len.is_multiple_of(g) || end > self.range.len {
            return Err(VmError::BadRange);
        }
        Ok(offset / g..end / g)
    }

    /// Make sure the leaves for `granules` exist (allocates; not for the
    /// fault path).
    fn ensure_leaves(&mut self, granules: core::ops::Range<usize>) {
        if granules.is_empty() {
            return;
        }
        self.high = self.high.max(granules.end);
        for leaf in granules.start / LEAF..=(granules.end - 1) / LEAF {
            if let Some(l) = self.leaves.get_mut(leaf)
                && l.is_none()
            {
                *l = Some((0..LEAF).map(|_| AtomicU64::new(0)).collect());
            }
        }
    }

    /// Free the leaves over `granules` whose slots are all holes (a fault
    /// there is a hole whether its leaf exists or not), and lower `high`
    /// to the end of the last leaf left. Under the write lock: no CPU is
    /// in the fault path, which reads leaves under the read lock.
    fn drop_empty_leaves(&mut self, granules: core::ops::Range<usize>) {
        if granules.is_empty() {
            return;
        }
        for leaf in granules.start / LEAF..=(granules.end - 1) / LEAF {
            if let Some(l) = self.leaves.get_mut(leaf)
                && l.as_ref()
                    .is_some_and(|slots| slots.iter().all(|s| s.load(Ordering::Acquire) == 0))
            {
                *l = None;
            }
        }
        let last = self
            .leaves
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| (i + 1) * LEAF);
        self.high = self.high.min(last);
    }

    /// The slots of `granules` whose leaves exist, with their indices
    /// (a missing leaf is all holes).
    fn slots_in(
        &self,
        granules: core::ops::Range<usize>,
    ) -> impl Iterator<Item = (usize, &AtomicU64)> + '_ {
        let granules = granules.start..granules.end.min(self.high);
        let first = granules.start / LEAF;
        let last = granules.end.div_ceil(LEAF).min(self.leaves.len());
        (first..last.max(first))
            .filter_map(move |l| Some((l, self.leaves.get(l)?.as_ref()?)))
            .flat_map(move |(l, leaf)| {
                let lo = granules.start.max(l * LEAF);
                let hi = granules.end.min((l + 1) * LEAF);
                (lo..hi).map(move |i| (i, &leaf[i - l * LEAF]))
            })
    }

    fn value(&self, idx: usize) -> u64 {
        self.slot(idx).map_or(0, |s| s.load(Ordering::Acquire))
    }

    fn set(&self, idx: usize, v: u64) {
        if let Some(s) = self.slot(idx) {
            s.store(v, Ordering::Release);
        }
    }
}

fn perm_flags(p: Perms) -> u64 {
    (if p.read { F_R } else { 0 })
        | (if p.write { F_W } else { 0 })
        | (if p.execute { F_X } else { 0 })
}

const fn flag_perms(v: u64) -> Perms {
    Perms {
        read: v & F_R != 0,
        write: v & F_W != 0 && v & F_COW == 0,
        execute: v & F_X != 0,
    }
}

const fn asked_perms(v: u64) -> Perms {
    Perms {
        read: v & F_R != 0,
        write: v & F_W != 0,
        execute: v & F_X != 0,
    }
}

const fn is_private(v: u64) -> bool {
    v & STATE == RESIDENT && v & (F_COW | F_SHARED | F_CONTIG) == 0
}

const fn frame_of(v: u64) -> PhysAddr {
    PhysAddr(v & !FLAGS)
}

struct Inner {
    gaps: Gaps,
    rng: Rng,
    /// Regions by the start of their outer range (INV-VM-1).
    regions: BTreeMap<usize, Region>,
}

impl Inner {
    /// The region whose outer range holds `addr`.
    fn at(&self, addr: usize) -> Option<&Region> {
        let (_, r) = self.regions.range(..=addr).next_back()?;
        r.outer().contains(addr).then_some(r)
    }

    fn key_of(&self, start: usize) -> Result<usize, VmError> {
        let (&k, r) = self
            .regions
            .range(..=start)
            .next_back()
            .ok_or(VmError::NoSuchRegion)?;
        if r.range.start == start {
            Ok(k)
        } else {
            Err(VmError::NoSuchRegion)
        }
    }
}

/// The kernel's address space. See the module documentation.
pub struct Space {
    inner: spin::RwLock<Inner>,
    /// 1 + the CPU that holds `inner` for writing, 0 when none does
    /// (INV-VM-5).
    writer: AtomicUsize,
    /// Every owner's account. A lock of its own, taken after `inner` when
    /// both are (never before), so that charging an owner does not wait
    /// for structural changes elsewhere in the space.
    accounts: spin::RwLock<BTreeMap<Owner, Arc<Account>>>,
}

/// The space's write lock, with the record of which CPU took it
/// (INV-VM-5).
struct WriteGuard<'a> {
    inner: spin::RwLockWriteGuard<'a, Inner>,
    writer: &'a AtomicUsize,
}

impl core::ops::Deref for WriteGuard<'_> {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl core::ops::DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // Cleared before `inner` unlocks (fields drop after this).
        self.writer.store(0, Ordering::Release);
    }
}

impl Space {
    /// An empty space over `window`, placing at random from `seed`.
    pub fn new(window: VirtRange, seed: u64) -> Self {
        Self {
            inner: spin::RwLock::new(Inner {
                gaps: Gaps::new(window),
                rng: Rng::new(seed),
                regions: BTreeMap::new(),
            }),
            writer: AtomicUsize::new(0),
            accounts: spin::RwLock::new(BTreeMap::new()),
        }
    }

    /// `owner`'s account, made if it has none (the read lock only when it
    /// exists, the common case).
    fn account(&self, owner: Owner) -> Arc<Account> {
        if let Some(a) = self.accounts.read().get(&owner) {
            return Arc::clone(a);
        }
        self.accounts
            .write()
            .entry(owner)
            .or_insert_with(|| Arc::new(Account::new()))
            .clone()
    }
}

/// The address space together with the platform and frame allocator it
/// works with: the handle every operation goes through.
pub struct Vm<'a, H> {
    hal: &'a H,
    frames: &'a FrameAllocator,
    space: &'a Space,
}

impl<H> Clone for Vm<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H> Copy for Vm<'_, H> {}

/// Step the fault classifier asks for.
enum Step<'r> {
    Done(FaultOutcome),
    /// The page is resident and the access allowed: a race or a repeat.
    Present(usize),
    /// Another CPU fills the granule now.
    Wait(&'r AtomicU64),
    /// Fill the committed granule at `va`.
    Fill(&'r Region, &'r AtomicU64, u64, usize),
    /// Copy the COW page at `va`.
    Copy(&'r Region, &'r AtomicU64, u64, usize),
}

fn allows(v: u64, access: Access) -> bool {
    match access {
        Access::Read => v & F_R != 0,
        Access::Write => v & F_W != 0,
        Access::Execute => v & F_X != 0,
        Access::Unknown => v & (F_R | F_W | F_X) != 0,
    }
}

fn classify(inner: &Inner, addr: usize, access: Access) -> Step<'_> {
    let Some(r) = inner.at(addr) else {
        return Step::Done(FaultOutcome::NotOurs);
    };
    if !r.range.contains(addr) {
        return Step::Done(FaultOutcome::Guard);
    }
    if !r.managed {
        return Step::Done(FaultOutcome::Hole);
    }
    let Some(slot) = r.slot_of(addr) else {
        return Step::Done(FaultOutcome::Hole);
    };
    let v = slot.load(Ordering::Acquire);
    if v & F_COMMIT == 0 {
        return Step::Done(FaultOutcome::Hole);
    }
    if !allows(v, access) {
        return Step::Done(FaultOutcome::Violation);
    }
    let g = r.granule_bytes();
    let va = addr & !(g - 1);
    match v & STATE {
        NONE => Step::Fill(r, slot, v, va),
        BUSY => Step::Wait(slot),
        _ if v & F_COW != 0 && matches!(access, Access::Write | Access::Unknown) => {
            Step::Copy(r, slot, v, va)
        }
        _ => Step::Present(va),
    }
}

impl<'a, H: Mmu + PhysMemory> Vm<'a, H> {
    /// The handle over `space`, mapping through `hal` with frames from
    /// `frames`.
    pub const fn new(hal: &'a H, frames: &'a FrameAllocator, space: &'a Space) -> Self {
        Self { hal, frames, space }
    }

    /// The frame allocator behind this space.
    pub const fn frames(&self) -> &'a FrameAllocator {
        self.frames
    }

    fn place(
        &self,
        inner: &mut Inner,
        spec: &RegionSpec,
        managed: bool,
    ) -> Result<Region, VmError> {
        let g = PAGE_SIZE
            .checked_shl(spec.granule)
            .filter(|_| spec.granule <= super::MAX_ORDER)
            .ok_or(VmError::Unsupported)?;
        if spec.len == 0 || !spec.len.is_multiple_of(g) || !spec.guard.is_multiple_of(PAGE_SIZE) {
            return Err(VmError::BadRange);
        }
        // Guards are rounded up to whole granules, so that aligning the
        // outer range aligns the usable one.
        let guard = spec
            .guard
            .checked_next_multiple_of(g)
            .ok_or(VmError::BadRange)?;
        let total = guard
            .checked_mul(2)
            .and_then(|x| x.checked_add(spec.len))
            .ok_or(VmError::BadRange)?;
        let Inner { gaps, rng, .. } = inner;
        let outer = gaps
            .alloc(total, g, spec.placement, rng)
            .map_err(VmError::Placement)?;
        let range = VirtRange {
            start: outer.start + guard,
            len: spec.len,
        };
        let slots = spec.len / g;
        Ok(Region {
            range,
            guard,
            granule: spec.granule,
            owner: spec.owner,
            account: self.space.account(spec.owner),
            managed,
            object: None,
            contig: None,
            leaves: (0..slots.div_ceil(LEAF)).map(|_| None).collect(),
            high: 0,
        })
    }

    /// Reserve a region: every page is a hole until committed. Returns the
    /// usable range; its start names the region.
    ///
    /// # Errors
    /// [`VmError::BadRange`], [`VmError::Unsupported`] (granule too large) or
    /// [`VmError::Placement`].
    pub fn reserve(&self, spec: &RegionSpec) -> Result<VirtRange, VmError> {
        let mut inner = self.write();
        let region = self.place(&mut inner, spec, true)?;
        let range = region.range;
        inner.regions.insert(region.outer().start, region);
        Ok(range)
    }

    /// Reserve `len` bytes with `guard` bytes each side whose pages the
    /// caller maps through the HAL itself (`mem` never maps them; faults
    /// there are holes). Released with [`Vm::release`], which then only
    /// gives the range back: the caller unmaps first.
    ///
    /// # Errors
    /// As [`Vm::reserve`].
    pub fn reserve_raw(&self, len: usize, guard: usize) -> Result<VirtRange, VmError> {
        let spec = RegionSpec {
            guard,
            ..RegionSpec::new(len)
        };
        let mut inner = self.write();
        let region = self.place(&mut inner, &spec, false)?;
        let range = region.range;
        inner.regions.insert(region.outer().start, region);
        Ok(range)
    }

    /// Commit `offset..offset + len` of the region at `start` with `perms`.
    ///
    /// # Errors
    /// [`VmError::WriteExecute`], [`VmError::NoSuchRegion`],
    /// [`VmError::BadRange`], [`VmError::AlreadyCommitted`], and for
    /// [`VmError::LimitExceeded`] (the owner is charged for the committed
    /// range at once, INV-VM-7), and for [`Commit::Eager`]
    /// [`VmError::OutOfFrames`] or [`VmError::Hal`]. Nothing changes on error
    /// (frames taken are returned, the charge lifted).
    pub fn commit(
        &self,
        start: usize,
        offset: usize,
        len: usize,
        perms: Perms,
        how: Commit,
    ) -> Result<(), VmError> {
        if !perms.is_wx_safe() {
            return Err(VmError::WriteExecute);
        }
        let mut inner = self.write();
        let key = inner.key_of(start)?;
        let r = inner.regions.get_mut(&key).ok_or(VmError::NoSuchRegion)?;
        if !r.managed {
            return Err(VmError::Unsupported);
        }
        let gs = r.granules(offset, len)?;
        if gs.clone().any(|i| r.value(i) != 0) {
            return Err(VmError::AlreadyCommitted);
        }
        r.ensure_leaves(gs.clone());
        let flags = perm_flags(perms) | F_COMMIT;
        let n = gs.len() as u64;
        let per = 1u64 << r.granule;
        if !r.account.charge(n * per) {
            return Err(VmError::LimitExceeded);
        }
        // INV-MEM-2: every committed granule is backed by a frame or a
        // promise of one, from the moment it is committed.
        if self.frames.promise(n, r.granule, r.owner).is_err() {
            r.account.uncharge(n * per);
            if crate::faults::leak_planted() {
                // The planted bug (`faults`): a frame lost on this path.
                let _ = self.frames.alloc(0);
            }
            return Err(VmError::OutOfFrames);
        }
        if how == Commit::Demand {
            for i in gs {
                r.set(i, flags);
            }
            return Ok(());
        }
        let mut blocks: Vec<PhysAddr> = Vec::with_capacity(gs.len());
        let undo = |blocks: &[PhysAddr], r: &Region| {
            for &pa in blocks {
                let _ = self.frames.free_promised(pa, r.granule);
            }
            self.frames.unpromise(n, r.granule);
            r.account.uncharge(n * per);
        };
        for _ in gs.clone() {
            match self.frames.alloc_promised(r.granule) {
                Ok(pa) if zero_frames(self.hal, pa, 1 << r.granule) => blocks.push(pa),
                Ok(pa) => {
                    let _ = self.frames.free_promised(pa, r.granule);
                    undo(&blocks, r);
                    return Err(VmError::OutOfFrames);
                }
                Err(_) => {
                    undo(&blocks, r);
                    return Err(VmError::OutOfFrames);
                }
            }
        }
        let pages: Vec<PhysAddr> = blocks
            .iter()
            .flat_map(|pa| (0..per).map(move |i| PhysAddr(pa.0 + i * PAGE_SIZE as u64)))
            .collect();
        let tables = KernelTables::new(self.frames, self.hal);
        let va = r.range.start + offset;
        // SAFETY: the frames were just allocated for this region; the range
        // lies in the region and is all holes, so unmapped (INV-VM-2); perms
        // passed the W^X check (INV-VM-4).
        if let Err(e) = unsafe { map_frames(self.hal, va, &pages, perms, &tables) } {
            undo(&blocks, r);
            return Err(VmError::Hal(e));
        }
        for (i, pa) in gs.zip(blocks) {
            r.set(i, pa.0 | flags | RESIDENT);
        }
        Ok(())
    }

    /// Change the permissions of the committed `offset..offset + len` of the
    /// region at `start`. Resident pages are re-protected in the MMU at once
    /// (and flushed); COW pages stay without write until copied.
    ///
    /// # Errors
    /// [`VmError::WriteExecute`], [`VmError::NoSuchRegion`],
    /// [`VmError::BadRange`], [`VmError::NotCommitted`] (nothing changes),
    /// [`VmError::Hal`] (pages before the failing run have changed).
    pub fn protect(
        &self,
        start: usize,
        offset: usize,
        len: usize,
        perms: Perms,
    ) -> Result<(), VmError> {
        if !perms.is_wx_safe() {
            return Err(VmError::WriteExecute);
        }
        let inner = self.write();
        let key = inner.key_of(start)?;
        let r = inner.regions.get(&key).ok_or(VmError::NoSuchRegion)?;
        if !r.managed {
            return Err(VmError::Unsupported);
        }
        let gs = r.granules(offset, len)?;
        if gs.clone().any(|i| r.value(i) & F_COMMIT == 0) {
            return Err(VmError::NotCommitted);
        }
        let g = r.granule_bytes();
        // Runs of resident granules with equal effective permissions cost
        // one MMU call each.
        let mut run: Option<(usize, usize, Perms)> = None;
        let apply = |run: Option<(usize, usize, Perms)>| -> Result<(), VmError> {
            if let Some((va, len, p)) = run {
                // SAFETY: the run is resident in this region, which the
                // space owns; the permissions obey W^X (INV-VM-4).
                let flush = unsafe { self.hal.protect(va, len, p) }.map_err(VmError::Hal)?;
                self.hal.flush(flush);
            }
            Ok(())
        };
        for i in gs {
            let old = r.value(i);
            let new = (old & !(F_R | F_W | F_X)) | perm_flags(perms);
            r.set(i, new);
            let va = r.range.start + i * g;
            if new & STATE == RESIDENT {
                let eff = flag_perms(new);
                match &mut run {
                    Some((s, l, p)) if *s + *l == va && *p == eff => *l += g,
                    _ => {
                        apply(run.take())?;
                        run = Some((va, g, eff));
                    }
                }
            } else {
                apply(run.take())?;
            }
        }
        apply(run)
    }

    /// Decommit `offset..offset + len` of the region at `start`: unmap it,
    /// return its private frames to the allocator at once (INV-VM-3) and
    /// lift the charge (INV-VM-7). The pages become holes. Returns the
    /// frames freed.
    ///
    /// # Errors
    /// [`VmError::NoSuchRegion`], [`VmError::BadRange`],
    /// [`VmError::Unsupported`] (part of a contiguous block), or
    /// [`VmError::Hal`] when the unmap fails (nothing is freed then).
    pub fn decommit(&self, start: usize, offset: usize, len: usize) -> Result<u64, VmError> {
        let mut inner = self.write();
        let key = inner.key_of(start)?;
        let r = inner.regions.get(&key).ok_or(VmError::NoSuchRegion)?;
        if !r.managed {
            return Err(VmError::Unsupported);
        }
        let gs = r.granules(offset, len)?;
        if gs.clone().any(|i| r.value(i) & F_CONTIG != 0) {
            return Err(VmError::Unsupported);
        }
        let freed = self.unmap_and_free(r, gs.clone())?;
        // Leaves left all holes go too, so a region that lives on (a pooled
        // one) does not keep heap for what it once committed.
        if let Some(r) = inner.regions.get_mut(&key) {
            r.drop_empty_leaves(gs);
        }
        Ok(freed)
    }

    /// Unmap the granules `gs` of `r`, then free their private frames.
    /// Only leaves that exist are visited and only the span between the
    /// first and last mapped granule is unmapped, so releasing a 4 GiB
    /// reservation costs what was committed in it, not its size.
    fn unmap_and_free(&self, r: &Region, gs: core::ops::Range<usize>) -> Result<u64, VmError> {
        let g = r.granule_bytes();
        let mut mapped: Option<(usize, usize)> = None;
        for (i, s) in r.slots_in(gs.clone()) {
            if s.load(Ordering::Acquire) & STATE != NONE {
                let lo = mapped.map_or(i, |(lo, _)| lo);
                mapped = Some((lo, i + 1));
            }
        }
        if let Some((lo, hi)) = mapped {
            // SAFETY: the range lies in the region the space owns; nothing
            // uses it after this call (the caller's decommit/release).
            let flush = unsafe { self.hal.unmap(r.range.start + lo * g, (hi - lo) * g) }
                .map_err(VmError::Hal)?;
            self.hal.flush(flush);
        }
        let (mut freed, mut uncharged, mut lapsed) = (0, 0u64, 0u64);
        for (_, s) in r.slots_in(gs) {
            let v = s.swap(0, Ordering::AcqRel);
            if is_private(v) && self.frames.free(frame_of(v), r.granule).is_ok() {
                freed += 1u64 << r.granule;
            }
            if v & F_COMMIT != 0 && v & (F_SHARED | F_CONTIG) == 0 {
                uncharged += 1 << r.granule;
                if !is_private(v) {
                    // No frame of its own yet (demand, or COW not copied):
                    // its promise lapses (INV-MEM-2).
                    lapsed += 1;
                }
            }
        }
        if uncharged > 0 {
            r.account.uncharge(uncharged);
        }
        if lapsed > 0 {
            self.frames.unpromise(lapsed, r.granule);
        }
        Ok(freed)
    }

    /// Release the region at `start`: unmap it, free its frames (INV-VM-3),
    /// drop its object reference, and give the range and guards back.
    /// Returns the private frames freed.
    ///
    /// # Errors
    /// [`VmError::NoSuchRegion`], or [`VmError::Hal`] when the unmap fails
    /// (the region stays then).
    pub fn release(&self, start: usize) -> Result<u64, VmError> {
        // Out of the map under the lock; unmapped and freed outside it, so
        // other CPUs do not wait behind the host's unmap (and its TLB
        // shootdown); the range goes back to the gaps only after, so
        // nothing is placed in it meanwhile (INV-VM-1).
        let (key, mut r) = {
            let mut inner = self.write();
            let key = inner.key_of(start)?;
            let r = inner.regions.remove(&key).ok_or(VmError::NoSuchRegion)?;
            (key, r)
        };
        let mut freed = 0;
        if r.managed {
            let n = r.range.len / r.granule_bytes();
            match self.unmap_and_free(&r, 0..n) {
                Ok(f) => freed = f,
                Err(e) => {
                    // The region stays, as it was.
                    self.write().regions.insert(key, r);
                    return Err(e);
                }
            }
        }
        if let Some((pa, order)) = r.contig.take()
            && self.frames.free(pa, order).is_ok()
        {
            r.account.uncharge(1 << order);
            freed += 1 << order;
        }
        if let Some(obj) = r.object.take() {
            self.put_object(obj);
        }
        // The region (and its hold on its account: `forget`) goes under
        // the lock, as its range goes back.
        let outer = r.outer();
        let mut inner = self.write();
        drop(r);
        let _ = inner.gaps.free(outer);
        Ok(freed)
    }

    /// A region of `spec.len` bytes backed by one physically contiguous,
    /// zeroed block, mapped at once with `perms`. Returns the range and the
    /// block's physical address.
    ///
    /// # Errors
    /// As [`Vm::reserve`], plus [`VmError::WriteExecute`],
    /// [`VmError::LimitExceeded`], [`VmError::OutOfFrames`], [`VmError::Hal`];
    /// nothing stays reserved or allocated then.
    pub fn map_contiguous(
        &self,
        spec: &RegionSpec,
        perms: Perms,
    ) -> Result<(VirtRange, PhysAddr), VmError> {
        if !perms.is_wx_safe() {
            return Err(VmError::WriteExecute);
        }
        let spec = RegionSpec {
            granule: 0,
            ..*spec
        };
        let mut inner = self.write();
        let mut r = self.place(&mut inner, &spec, true)?;
        let pages = spec.len / PAGE_SIZE;
        let order = order_for(pages as u64);
        let fail = |inner: &mut Inner, r: &Region, e| {
            let _ = inner.gaps.free(r.outer());
            Err(e)
        };
        if order > super::MAX_ORDER {
            return fail(&mut inner, &r, VmError::Unsupported);
        }
        if !r.account.charge(1 << order) {
            return fail(&mut inner, &r, VmError::LimitExceeded);
        }
        let Ok(pa) = self.take_frames(order, spec.owner) else {
            r.account.uncharge(1 << order);
            return fail(&mut inner, &r, VmError::OutOfFrames);
        };
        zero_frames(self.hal, pa, 1 << order);
        let tables = KernelTables::new(self.frames, self.hal);
        // SAFETY: the block was just allocated for this region and the range
        // was just placed (unmapped); perms obey W^X.
        match unsafe { self.hal.map(r.range.start, pa, spec.len, perms, &tables) } {
            Ok(flush) => self.hal.flush(flush),
            Err(e) => {
                let _ = self.frames.free(pa, order);
                r.account.uncharge(1 << order);
                return fail(&mut inner, &r, VmError::Hal(e));
            }
        }
        r.ensure_leaves(0..pages);
        for i in 0..pages {
            let page = pa.0 + (i * PAGE_SIZE) as u64;
            r.set(i, page | perm_flags(perms) | F_COMMIT | F_CONTIG | RESIDENT);
        }
        r.contig = Some((pa, order));
        let range = r.range;
        inner.regions.insert(r.outer().start, r);
        Ok((range, pa))
    }

    /// A shared object of `pages` pages, zero-filled and then initialised
    /// from `template` (at most `pages * 4096` bytes), charged to `owner`.
    ///
    /// # Errors
    /// [`VmError::BadRange`] (zero pages or a template that does not fit),
    /// [`VmError::Unsupported`], [`VmError::LimitExceeded`],
    /// [`VmError::OutOfFrames`].
    #[expect(unsafe_code, reason = "copies the template through the direct map")]
    pub fn create_object(
        &self,
        pages: usize,
        template: &[u8],
        owner: Owner,
    ) -> Result<Arc<VmObject>, VmError> {
        if pages == 0 || template.len() > pages.saturating_mul(PAGE_SIZE) {
            return Err(VmError::BadRange);
        }
        let order = order_for(pages as u64);
        if order > super::MAX_ORDER {
            return Err(VmError::Unsupported);
        }
        let account = self.space.account(owner);
        if !account.charge(1 << order) {
            return Err(VmError::LimitExceeded);
        }
        let Ok(pa) = self.take_frames(order, owner) else {
            account.uncharge(1 << order);
            return Err(VmError::OutOfFrames);
        };
        let base = self.hal.direct_map(pa);
        if !zero_frames(self.hal, pa, 1 << order) || base.is_none() {
            let _ = self.frames.free(pa, order);
            account.uncharge(1 << order);
            return Err(VmError::OutOfFrames);
        }
        if let Some(base) = base {
            // SAFETY: the block was just allocated (nobody else uses it) and
            // is reachable through the direct map (checked by zero_frames);
            // the template fits in it (checked above).
            unsafe { core::ptr::copy_nonoverlapping(template.as_ptr(), base, template.len()) };
        }
        Ok(Arc::new(VmObject {
            pa,
            order,
            pages,
            account,
        }))
    }

    /// Drop a reference to an object; the last one frees its frames.
    pub fn drop_object(&self, object: Arc<VmObject>) {
        self.put_object(object);
    }

    fn put_object(&self, object: Arc<VmObject>) {
        if let Some(obj) = Arc::into_inner(object)
            && self.frames.free(obj.pa, obj.order).is_ok()
        {
            obj.account.uncharge(1 << obj.order);
        }
    }

    /// A region mapping all of `object` with `perms`: shared (writes reach
    /// the object and every other shared mapping) or, with `cow`,
    /// copy-on-write (mapped without write; the first write to a page copies
    /// it into a private frame). A COW mapping charges `spec.owner` one frame
    /// per page up front (INV-VM-7). The region holds a reference to the
    /// object until released.
    ///
    /// # Errors
    /// As [`Vm::reserve`], plus [`VmError::WriteExecute`],
    /// [`VmError::LimitExceeded`] and [`VmError::Hal`]; nothing stays
    /// reserved or charged then.
    pub fn map_object(
        &self,
        spec: &RegionSpec,
        object: &Arc<VmObject>,
        perms: Perms,
        cow: bool,
    ) -> Result<VirtRange, VmError> {
        if !perms.is_wx_safe() {
            return Err(VmError::WriteExecute);
        }
        let spec = RegionSpec {
            len: object.pages * PAGE_SIZE,
            granule: 0,
            ..*spec
        };
        let mut inner = self.write();
        let mut r = self.place(&mut inner, &spec, true)?;
        let kind = if cow { F_COW } else { F_SHARED };
        let flags = perm_flags(perms) | F_COMMIT | kind | RESIDENT;
        let charge = if cow { object.pages as u64 } else { 0 };
        if !r.account.charge(charge) {
            let _ = inner.gaps.free(r.outer());
            return Err(VmError::LimitExceeded);
        }
        // Each COW page is promised the frame its first write copies into
        // (INV-MEM-2).
        if self.frames.promise(charge, 0, spec.owner).is_err() {
            r.account.uncharge(charge);
            let _ = inner.gaps.free(r.outer());
            return Err(VmError::OutOfFrames);
        }
        let tables = KernelTables::new(self.frames, self.hal);
        // SAFETY: the object's frames live while the region holds its
        // reference; the range was just placed (unmapped); the effective
        // permissions obey W^X.
        match unsafe {
            self.hal.map(
                r.range.start,
                object.pa,
                spec.len,
                flag_perms(flags),
                &tables,
            )
        } {
            Ok(flush) => self.hal.flush(flush),
            Err(e) => {
                self.frames.unpromise(charge, 0);
                r.account.uncharge(charge);
                let _ = inner.gaps.free(r.outer());
                return Err(VmError::Hal(e));
            }
        }
        r.ensure_leaves(0..object.pages);
        for i in 0..object.pages {
            r.set(i, object.frame(i).0 | flags);
        }
        r.object = Some(Arc::clone(object));
        let range = r.range;
        inner.regions.insert(r.outer().start, r);
        Ok(range)
    }

    /// What lies at `addr`, or `None` outside every region.
    pub fn query(&self, addr: usize) -> Option<PageInfo> {
        let inner = self.space.inner.read();
        let r = inner.at(addr)?;
        let mut info = PageInfo {
            region: r.range,
            owner: r.owner,
            backing: Backing::Guard,
            perms: Perms::NONE,
            frame: None,
        };
        if !r.range.contains(addr) {
            return Some(info);
        }
        if !r.managed {
            info.backing = Backing::Unmanaged;
            return Some(info);
        }
        let v = r.slot_of(addr).map_or(0, |s| s.load(Ordering::Acquire));
        info.perms = asked_perms(v);
        info.backing = if v & F_COMMIT == 0 {
            Backing::Hole
        } else if v & F_COW != 0 {
            Backing::Cow
        } else if v & F_SHARED != 0 {
            Backing::Shared
        } else if v & F_CONTIG != 0 {
            Backing::Contiguous
        } else {
            Backing::Anonymous
        };
        if v & STATE == RESIDENT {
            let within = (addr - r.range.start) % r.granule_bytes();
            info.frame = Some(PhysAddr(frame_of(v).0 + (within & !(PAGE_SIZE - 1)) as u64));
        }
        Some(info)
    }

    /// What a fault at `addr` with `access` would come to, without doing
    /// anything: [`FaultOutcome::Resolved`] when it would be resolved (or no
    /// fault would happen because the page is present and allowed).
    pub fn probe(&self, addr: usize, access: Access) -> FaultOutcome {
        let inner = self.space.inner.read();
        match classify(&inner, addr, access) {
            Step::Done(o) => o,
            Step::Fill(..) | Step::Copy(..) | Step::Present(_) | Step::Wait(_) => {
                FaultOutcome::Resolved
            }
        }
    }

    /// The space's write lock, recording the CPU that takes it.
    fn write(&self) -> WriteGuard<'a> {
        let inner = self.space.inner.write();
        self.space
            .writer
            .store(self.hal.current_cpu() + 1, Ordering::Release);
        WriteGuard {
            inner,
            writer: &self.space.writer,
        }
    }

    /// Hold the space's write lock until the guard drops: only for
    /// `test=lockfault`, which breaks INV-VM-5 on purpose.
    pub(crate) fn write_lock(&self) -> impl Sized + 'a {
        self.write()
    }

    /// Resolve a fault at `addr` with `access` on a CPU whose last resolved
    /// fault page is kept in `last_fault`. Trap-context safe (INV-VM-5).
    pub fn resolve(&self, addr: usize, access: Access, last_fault: &AtomicUsize) -> FaultOutcome {
        if self.space.writer.load(Ordering::Acquire) == self.hal.current_cpu() + 1 {
            return FaultOutcome::LockHeld;
        }
        let inner = self.space.inner.read();
        match classify(&inner, addr, access) {
            Step::Done(o) => o,
            Step::Wait(slot) => {
                // INV-VM-6: wait for the CPU that fills the granule, retry.
                while slot.load(Ordering::Acquire) & STATE == BUSY {
                    core::hint::spin_loop();
                }
                FaultOutcome::Resolved
            }
            Step::Present(va) => {
                // Present already: once may be a race with the CPU that
                // mapped it; twice in a row at the same page is a fault that
                // retrying would never fix.
                if last_fault.swap(va, Ordering::Relaxed) == va {
                    last_fault.store(0, Ordering::Relaxed);
                    FaultOutcome::Violation
                } else {
                    FaultOutcome::Resolved
                }
            }
            Step::Fill(r, slot, old, va) => {
                let o = self.fill(r, slot, old, va);
                if o == FaultOutcome::Resolved {
                    last_fault.store(va, Ordering::Relaxed);
                }
                o
            }
            Step::Copy(r, slot, old, va) => {
                let o = self.copy(r, slot, old, va);
                if o == FaultOutcome::Resolved {
                    last_fault.store(va, Ordering::Relaxed);
                }
                o
            }
        }
    }

    /// Frames allocated at once for `owner`: promised and taken in one go,
    /// so a process cannot take the kernel's reserve (INV-MEM-2).
    fn take_frames(&self, order: u32, owner: Owner) -> Result<PhysAddr, FrameError> {
        self.frames.promise(1, order, owner)?;
        self.frames.alloc_promised(order).inspect_err(|_| {
            self.frames.unpromise(1, order);
        })
    }

    /// Take the block promised to a granule of `r` at commit (INV-MEM-2).
    fn take_block(&self, r: &Region) -> Result<PhysAddr, FaultOutcome> {
        self.frames
            .alloc_promised(r.granule)
            .map_err(|_| FaultOutcome::OutOfMemory)
    }

    /// Give back a block [`Vm::take_block`] took for a granule that stays
    /// without a frame: its promise is renewed.
    fn give_block(&self, r: &Region, pa: PhysAddr) {
        let _ = self.frames.free_promised(pa, r.granule);
    }

    fn fill(&self, r: &Region, slot: &AtomicU64, old: u64, va: usize) -> FaultOutcome {
        if slot
            .compare_exchange(
                old,
                (old & !STATE) | BUSY,
                Ordering::Acquire,
                Ordering::Acquire,
            )
            .is_err()
        {
            return FaultOutcome::Resolved; // another CPU got there; retry
        }
        let pa = match self.take_block(r) {
            Ok(pa) => pa,
            Err(o) => {
                slot.store(old, Ordering::Release);
                return o;
            }
        };
        let tables = KernelTables::new(self.frames, self.hal);
        let mapped = zero_frames(self.hal, pa, 1 << r.granule).then(|| {
            // SAFETY: the block was just taken for this slot, which is BUSY
            // so no other CPU maps this granule (INV-VM-6); the granule is
            // committed and not resident, so unmapped (INV-VM-2); the perms
            // obey W^X (INV-VM-4).
            unsafe {
                self.hal
                    .map(va, pa, r.granule_bytes(), flag_perms(old), &tables)
            }
        });
        match mapped {
            Some(Ok(flush)) => {
                self.hal.flush(flush);
                slot.store(pa.0 | (old & FLAGS & !STATE) | RESIDENT, Ordering::Release);
                FaultOutcome::Resolved
            }
            _ => {
                self.give_block(r, pa);
                slot.store(old, Ordering::Release);
                FaultOutcome::OutOfMemory
            }
        }
    }

    #[expect(unsafe_code, reason = "copies a page through the direct map")]
    fn copy(&self, r: &Region, slot: &AtomicU64, old: u64, va: usize) -> FaultOutcome {
        if slot
            .compare_exchange(
                old,
                (old & !STATE) | BUSY,
                Ordering::Acquire,
                Ordering::Acquire,
            )
            .is_err()
        {
            return FaultOutcome::Resolved;
        }
        let pa = match self.take_block(r) {
            Ok(pa) => pa,
            Err(o) => {
                slot.store(old, Ordering::Release);
                return o;
            }
        };
        let len = r.granule_bytes();
        let (Some(src), Some(dst)) = (self.hal.direct_map(frame_of(old)), self.hal.direct_map(pa))
        else {
            self.give_block(r, pa);
            slot.store(old, Ordering::Release);
            return FaultOutcome::OutOfMemory;
        };
        // SAFETY: both are RAM in the direct map; `pa` was just taken (no one
        // else uses it) and the shared page is only read.
        unsafe { core::ptr::copy_nonoverlapping(src.cast_const(), dst, len) };
        let new = (old & FLAGS & !(STATE | F_COW)) | RESIDENT;
        let tables = KernelTables::new(self.frames, self.hal);
        // SAFETY: the slot is BUSY (INV-VM-6), so only this CPU edits the
        // granule; the old translation points at the shared object, which
        // stays alive (the region holds it); perms obey W^X.
        let result = unsafe { self.hal.unmap(va, len) }.and_then(|f| {
            self.hal.flush(f);
            // SAFETY: as above; the granule is unmapped now.
            unsafe { self.hal.map(va, pa, len, flag_perms(new), &tables) }
        });
        match result {
            Ok(flush) => {
                self.hal.flush(flush);
                slot.store(pa.0 | new, Ordering::Release);
                FaultOutcome::Resolved
            }
            Err(_) => {
                // Put the shared page back read-only. If even that fails the
                // granule stays unmapped with its old slot: the next write
                // fault copies again, a read faults twice and is reported.
                // SAFETY: as above.
                if let Ok(f) = unsafe {
                    self.hal
                        .map(va, frame_of(old), len, flag_perms(old), &tables)
                } {
                    self.hal.flush(f);
                }
                slot.store(old, Ordering::Release);
                self.give_block(r, pa);
                FaultOutcome::OutOfMemory
            }
        }
    }

    /// Granules of the region at `start` that have a frame now.
    pub fn resident(&self, start: usize) -> Option<usize> {
        let inner = self.space.inner.read();
        let r = inner.regions.get(&inner.key_of(start).ok()?)?;
        let n = r.range.len / r.granule_bytes();
        Some(
            r.slots_in(0..n)
                .filter(|(_, s)| s.load(Ordering::Acquire) & STATE == RESIDENT)
                .count(),
        )
    }

    /// The end (an offset from the region's start) of the last committed
    /// granule of the region at `start`: 0 when nothing is committed.
    pub fn committed_end(&self, start: usize) -> Option<usize> {
        let inner = self.space.inner.read();
        let r = inner.regions.get(&inner.key_of(start).ok()?)?;
        let n = r.range.len / r.granule_bytes();
        let last = r
            .slots_in(0..n)
            .filter(|(_, s)| s.load(Ordering::Acquire) & F_COMMIT != 0)
            .map(|(i, _)| i + 1)
            .last()
            .unwrap_or(0);
        Some(last * r.granule_bytes())
    }

    /// Zero, in place, every granule of `offset..offset + len` of the
    /// region at `start` that has a private frame, through the direct map:
    /// nothing is unmapped or flushed, and committed granules without a
    /// frame stay so (their first touch maps a zeroed block). Returns the
    /// granules zeroed. For a region nobody uses while this runs (a pooled
    /// one being recycled): a CPU writing it meanwhile could leave data.
    ///
    /// # Errors
    /// [`VmError::NoSuchRegion`], [`VmError::BadRange`],
    /// [`VmError::Unsupported`] (an unmanaged region, or a shared,
    /// copy-on-write or contiguous granule in the range: nothing is zeroed
    /// then), [`VmError::Hal`] when a frame is not in the direct map.
    #[expect(unsafe_code, reason = "zeroes frames through the direct map")]
    pub fn scrub(&self, start: usize, offset: usize, len: usize) -> Result<usize, VmError> {
        let inner = self.space.inner.read();
        let r = inner
            .regions
            .get(&inner.key_of(start)?)
            .ok_or(VmError::NoSuchRegion)?;
        if !r.managed {
            return Err(VmError::Unsupported);
        }
        let gs = r.granules(offset, len)?;
        if r.slots_in(gs.clone())
            .any(|(_, s)| s.load(Ordering::Acquire) & (F_COW | F_SHARED | F_CONTIG) != 0)
        {
            return Err(VmError::Unsupported);
        }
        let bytes = r.granule_bytes();
        let mut zeroed = 0;
        for (_, s) in r.slots_in(gs) {
            let v = s.load(Ordering::Acquire);
            if !is_private(v) {
                continue;
            }
            let dst = self
                .hal
                .direct_map(frame_of(v))
                .ok_or(VmError::Hal(HalError::OutOfRange))?;
            // SAFETY: the frame is RAM in the direct map (which covers a
            // granule's block whole: frames are RAM of one range), owned by
            // this region's granule (INV-VM-3); the caller guarantees
            // nobody uses the region meanwhile. Written, not given back to
            // the host (`PhysMemory::zero` would punch a hole): the next
            // tenant then writes it without a fault.
            unsafe { core::ptr::write_bytes(dst, 0, bytes) };
            zeroed += 1;
        }
        Ok(zeroed)
    }

    /// Limit `owner` to `frames` frames. Frames already charged stay; the
    /// next charge that would pass the limit fails.
    pub fn set_limit(&self, owner: Owner, frames: u64) {
        let account = self.space.account(owner);
        account.limit.store(frames, Ordering::Release);
    }

    /// Make `owner`'s charges count against `parent`'s limit too, and its
    /// ancestors' (INV-VM-8). Returns false, changing nothing, when
    /// `owner` already has a parent or something charged, or when the two
    /// are the same owner.
    pub fn set_parent(&self, owner: Owner, parent: Owner) -> bool {
        if owner == parent {
            return false;
        }
        let parent_owner = parent;
        let (child, parent) = (self.space.account(owner), self.space.account(parent));
        if child.frames.load(Ordering::Acquire) != 0 || child.parent.is_completed() {
            return false;
        }
        let mut set = false;
        child.parent.call_once(|| {
            set = true;
            parent
        });
        if set {
            child.parent_owner.call_once(|| parent_owner);
        }
        set
    }

    /// Charge `frames` frames of kernel memory used on `owner`'s behalf
    /// (compiling its code): against its limit and promised from the
    /// machine's free frames, exactly as committed pages are (INV-MEM-2),
    /// so what the kernel spends for a process counts against what the
    /// process may commit. [`Vm::unhold`] gives it back.
    ///
    /// # Errors
    /// [`VmError::LimitExceeded`] or [`VmError::OutOfFrames`]; nothing is
    /// charged then.
    pub fn hold(&self, owner: Owner, frames: u64) -> Result<(), VmError> {
        self.charge_and_promise(owner, frames).map(drop)
    }

    fn charge_and_promise(&self, owner: Owner, frames: u64) -> Result<Arc<Account>, VmError> {
        let account = self.space.account(owner);
        if !account.charge(frames) {
            return Err(VmError::LimitExceeded);
        }
        if self.frames.promise(frames, 0, owner).is_err() {
            account.uncharge(frames);
            return Err(VmError::OutOfFrames);
        }
        Ok(account)
    }

    /// [`Vm::hold`] for as long as the returned [`Hold`] lives.
    ///
    /// # Errors
    /// As [`Vm::hold`].
    pub fn hold_while(&self, owner: Owner, frames: u64) -> Result<Hold<'a>, VmError> {
        let account = self.charge_and_promise(owner, frames)?;
        Ok(Hold {
            account,
            frames: self.frames,
            count: frames,
        })
    }

    /// Give back `frames` frames [`Vm::hold`] charged to `owner`.
    pub fn unhold(&self, owner: Owner, frames: u64) {
        let account = self.space.account(owner);
        self.frames.unpromise(frames, 0);
        account.uncharge(frames);
    }

    /// Move the region at `start` to `owner`: what its committed pages
    /// are charged (INV-VM-7) is charged to `owner`, all or nothing along
    /// its chain (INV-VM-8), then lifted from the region's old owner; the
    /// region's frames and mappings stay as they are. For regions whose
    /// committed pages are all private (a pooled fiber stack).
    ///
    /// # Errors
    /// [`VmError::NoSuchRegion`]; [`VmError::Unsupported`] for a region
    /// with contiguous, shared or copy-on-write pages;
    /// [`VmError::LimitExceeded`] when `owner` cannot take the charge
    /// (nothing changed then).
    pub fn reassign(&self, start: usize, owner: Owner) -> Result<(), VmError> {
        let account = self.space.account(owner);
        let mut inner = self.write();
        let key = inner.key_of(start)?;
        let r = inner.regions.get_mut(&key).ok_or(VmError::NoSuchRegion)?;
        if !r.managed || r.object.is_some() || r.contig.is_some() {
            return Err(VmError::Unsupported);
        }
        if r.owner == owner {
            return Ok(());
        }
        let n = r.range.len / r.granule_bytes();
        let mut frames = 0u64;
        for (_, slot) in r.slots_in(0..n) {
            let v = slot.load(Ordering::Acquire);
            if v & (F_SHARED | F_CONTIG | F_COW) != 0 {
                return Err(VmError::Unsupported);
            }
            if v & F_COMMIT != 0 {
                frames += 1 << r.granule;
            }
        }
        if !account.charge(frames) {
            return Err(VmError::LimitExceeded);
        }
        r.account.uncharge(frames);
        r.owner = owner;
        r.account = account;
        Ok(())
    }

    /// Frames charged to `owner` now (INV-VM-7: committed, not only
    /// resident).
    pub fn owner_frames(&self, owner: Owner) -> u64 {
        self.space
            .accounts
            .read()
            .get(&owner)
            .map_or(0, |a| a.frames.load(Ordering::Acquire))
    }

    /// Regions in the space.
    pub fn region_count(&self) -> usize {
        self.space.inner.read().regions.len()
    }

    /// `owner` is gone (a reaped process): drop its account (and its
    /// limit) once nothing is charged to it and no region, object or child
    /// account refers to it, then any ancestor that is gone and no longer
    /// referred to, so that owners that are gone leave nothing behind.
    /// Returns whether `owner`'s account is gone now; one still in use is
    /// kept, and dropped with the last child that refers to it.
    pub fn forget(&self, owner: Owner) -> bool {
        // Under the space's lock too: a region being released holds its
        // account until the lock is taken again (`release`).
        let inner = self.write();
        let mut accounts = self.space.accounts.write();
        let mut freed = Vec::new();
        let mut next = Some(owner);
        let mut first = true;
        while let Some(o) = next.take() {
            let Some(account) = accounts.get(&o) else {
                break;
            };
            if first {
                account.gone.store(true, Ordering::Release);
            }
            // The map's reference, and the one of the child just removed
            // (still alive in `freed`).
            let refs = if first { 1 } else { 2 };
            let unused = account.gone.load(Ordering::Acquire)
                && Arc::strong_count(account) == refs
                && account.frames.load(Ordering::Acquire) == 0;
            if !unused {
                break;
            }
            next = account.parent_owner.get().copied();
            freed.extend(accounts.remove(&o));
            first = false;
        }
        let gone = !accounts.contains_key(&owner);
        // Freed once the locks are released.
        drop(accounts);
        drop(inner);
        drop(freed);
        gone
    }

    /// Owners with an account now.
    pub fn account_count(&self) -> usize {
        self.space.accounts.read().len()
    }
}

/// Kernel memory charged to an owner ([`Vm::hold_while`]); dropping it
/// gives the charge back. Not tied to the platform, so that it can travel
/// with what it pays for (a message in a channel).
pub struct Hold<'a> {
    account: Arc<Account>,
    frames: &'a FrameAllocator,
    count: u64,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.frames.unpromise(self.count, 0);
        self.account.uncharge(self.count);
    }
}

impl fmt::Debug for Hold<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hold({} frames)", self.count)
    }
}

/// A region owned by the caller: released (unmapped, frames freed, range
/// returned) when dropped.
pub struct Mapping<'a, H: Mmu + PhysMemory> {
    vm: Vm<'a, H>,
    range: VirtRange,
}

impl<'a, H: Mmu + PhysMemory> Mapping<'a, H> {
    /// Reserve a region as [`Vm::reserve`] does and own it.
    ///
    /// # Errors
    /// As [`Vm::reserve`].
    pub fn reserve(vm: Vm<'a, H>, spec: &RegionSpec) -> Result<Self, VmError> {
        Ok(Self {
            vm,
            range: vm.reserve(spec)?,
        })
    }

    /// Own the region at `range` again, after [`Mapping::into_raw`].
    /// Nothing is checked: the caller must be the region's only owner,
    /// or two owners would release it.
    pub(crate) const fn adopt(vm: Vm<'a, H>, range: VirtRange) -> Self {
        Self { vm, range }
    }

    /// Stop owning the region without releasing it (it stays reserved
    /// until [`Mapping::adopt`] takes it back).
    pub(crate) fn into_raw(self) -> VirtRange {
        let range = self.range;
        core::mem::forget(self);
        range
    }

    /// The usable range (its start names the region).
    pub const fn range(&self) -> VirtRange {
        self.range
    }

    /// See [`Vm::committed_end`].
    pub fn committed_end(&self) -> Option<usize> {
        self.vm.committed_end(self.range.start)
    }

    /// See [`Vm::scrub`].
    ///
    /// # Errors
    /// As [`Vm::scrub`].
    pub fn scrub(&self, offset: usize, len: usize) -> Result<usize, VmError> {
        self.vm.scrub(self.range.start, offset, len)
    }

    /// Charge the region to `owner` from now on ([`Vm::reassign`]).
    ///
    /// # Errors
    /// As [`Vm::reassign`].
    pub fn reassign(&self, owner: Owner) -> Result<(), VmError> {
        self.vm.reassign(self.range.start, owner)
    }

    /// See [`Vm::commit`] (offsets are relative to the region).
    ///
    /// # Errors
    /// As [`Vm::commit`].
    pub fn commit(
        &self,
        offset: usize,
        len: usize,
        perms: Perms,
        how: Commit,
    ) -> Result<(), VmError> {
        self.vm.commit(self.range.start, offset, len, perms, how)
    }

    /// See [`Vm::protect`].
    ///
    /// # Errors
    /// As [`Vm::protect`].
    pub fn protect(&self, offset: usize, len: usize, perms: Perms) -> Result<(), VmError> {
        self.vm.protect(self.range.start, offset, len, perms)
    }

    /// See [`Vm::decommit`].
    ///
    /// # Errors
    /// As [`Vm::decommit`].
    pub fn decommit(&self, offset: usize, len: usize) -> Result<u64, VmError> {
        self.vm.decommit(self.range.start, offset, len)
    }

    /// Granules with a frame now.
    pub fn resident(&self) -> usize {
        self.vm.resident(self.range.start).unwrap_or(0)
    }

    /// Release now; returns the frames freed.
    ///
    /// # Errors
    /// As [`Vm::release`]; the region is released again on drop then.
    pub fn unmap(self) -> Result<u64, VmError> {
        let freed = self.vm.release(self.range.start)?;
        core::mem::forget(self);
        Ok(freed)
    }
}

impl<H: Mmu + PhysMemory> Drop for Mapping<'_, H> {
    fn drop(&mut self) {
        if let Err(e) = self.vm.release(self.range.start) {
            tracing::error!(start = self.range.start, error = %e, "region release failed");
        }
    }
}
