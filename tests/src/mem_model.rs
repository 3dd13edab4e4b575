//! The memory manager's reference model, shared by the proptest state
//! machine (`tests/tests/mem_model.rs`) and the `mem_ops` fuzz target.
//!
//! It owns the model (a map from page to state for each of [`SLOTS`]
//! region slots, and the VM objects mapped in them) and [`run`], which
//! applies a sequence of [`Op`]s to the kernel's memory manager and to the
//! model: reserve / commit (demand or eager) / map object (shared or
//! copy-on-write) / protect / decommit / release / touch. After every step
//! each page of every region is compared with the model: `query` must
//! report the same backing, permissions and residency, every resident
//! readable page must read back the model's value, the allocator's free
//! frame count must equal the start count minus the frames the model says
//! are held, and the owner's charge must equal what the model says is
//! committed. At the end every region is released and every frame must be
//! back.
//!
//! Touches of committed, allowed pages are real loads and stores (demand and
//! copy-on-write faults go through the HAL's signal path), so [`run`] must
//! be called on a kernel CPU. Touches the model says must not be resolved
//! (guard, hole, forbidden access) are asked of `Vm::probe`, the fault
//! path's classifier, so the process survives.
//!
//! Invariant: the kernel starts and ends a [`run`] with no region and no
//! object of [`OWNER`] (a run cleans up after itself, even when it fails).

use core::fmt;

use std::collections::BTreeMap;
use std::sync::Arc;

use arbitrary::Unstructured;
use hal_hosted::Hosted;
use kernel_core::hal::{Access, PAGE_SIZE, Perms, VirtRange};
use kernel_core::kernel::Kernel;
use kernel_core::mem::{
    Backing, Commit, FaultOutcome, Owner, Placement, ProcessId, RegionSpec, VmError, VmObject,
    order_for,
};

/// Where the memory manager and the model disagree, or the kernel refused a
/// step the model says must succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// A value differs.
    Mismatch {
        /// What was compared.
        what: String,
        /// The kernel's value.
        got: String,
        /// The model's value.
        want: String,
    },
    /// A call the model expects to succeed failed.
    Kernel(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mismatch { what, got, want } => {
                write!(f, "{what}: kernel {got}, model {want}")
            }
            Self::Kernel(e) => f.write_str(e),
        }
    }
}

/// Return a [`ModelError::Mismatch`] from the enclosing function (which
/// returns `Result<_, ModelError>`) unless `got == want`; shared by the
/// reference models of the whole-system tests.
#[macro_export]
macro_rules! ensure_eq {
    ($got:expr, $want:expr $(,)?) => {
        $crate::ensure_eq!($got, $want, "{}", stringify!($got))
    };
    ($got:expr, $want:expr, $($fmt:tt)+) => {{
        let (got, want) = (&$got, &$want);
        if got != want {
            return Err($crate::mem_model::ModelError::Mismatch {
                what: format!($($fmt)+),
                got: format!("{got:?}"),
                want: format!("{want:?}"),
            });
        }
    }};
}

/// Region slots a sequence works on.
pub const SLOTS: usize = 4;
/// The owner every region and object is charged to.
pub const OWNER: Owner = Owner::Process(ProcessId(1));
const WX: Perms = Perms {
    read: true,
    write: true,
    execute: true,
};
/// The permissions an [`Op`] chooses from (two of them are refused: W+X).
pub const PERMS: [Perms; 5] = [
    Perms::NONE,
    Perms::READ,
    Perms::READ_WRITE,
    Perms::READ_EXECUTE,
    WX,
];

fn read(va: usize) -> u64 {
    // SAFETY: the model says the page is committed, readable and inside a
    // live region; a demand or COW fault is resolved by the kernel.
    unsafe { std::ptr::read_volatile(va as *const u64) }
}

fn write(va: usize, v: u64) {
    // SAFETY: the model says the page is committed, writable and inside a
    // live region.
    unsafe { std::ptr::write_volatile(va as *mut u64, v) }
}

/// One step of a sequence. Indices are taken modulo what exists, so every
/// value of every field is a valid step (a step on an empty slot, or one
/// the slot's state makes moot, does nothing).
#[derive(Clone, Debug)]
pub enum Op {
    /// Reserve a region of `granules` granules of `1 << granule` pages with
    /// `guard` guard pages each side, in an empty slot.
    Reserve {
        /// Slot, `< SLOTS`.
        slot: usize,
        /// Granules, at least 1.
        granules: usize,
        /// Guard pages each side.
        guard: usize,
        /// log2 of the pages per granule.
        granule: u32,
    },
    /// Commit granules `first..first + count` (clipped) with `PERMS[perms]`.
    Commit {
        /// Slot.
        slot: usize,
        /// First granule (modulo the region's granules).
        first: usize,
        /// Granules.
        count: usize,
        /// Index into [`PERMS`].
        perms: usize,
        /// Eager (resident now) or on demand.
        eager: bool,
    },
    /// Map a new object of `pages` pages, or the object of slot
    /// `share_from`, into an empty slot, shared or copy-on-write.
    MapObject {
        /// Slot.
        slot: usize,
        /// Pages of a new object, at least 1.
        pages: usize,
        /// Map the object of this slot again, if it has one.
        share_from: Option<usize>,
        /// Copy-on-write rather than shared.
        cow: bool,
        /// Index into [`PERMS`].
        perms: usize,
    },
    /// Change the permissions of granules `first..first + count`.
    Protect {
        /// Slot.
        slot: usize,
        /// First granule.
        first: usize,
        /// Granules.
        count: usize,
        /// Index into [`PERMS`].
        perms: usize,
    },
    /// Decommit granules `first..first + count`.
    Decommit {
        /// Slot.
        slot: usize,
        /// First granule.
        first: usize,
        /// Granules.
        count: usize,
    },
    /// Release the slot's region.
    Release {
        /// Slot.
        slot: usize,
    },
    /// Load or store a word at page `page` of the slot's region (negative
    /// and past-the-end pages are its guard pages).
    Touch {
        /// Slot.
        slot: usize,
        /// Page, from minus the guard pages to the end plus them.
        page: isize,
        /// Store rather than load.
        write: bool,
        /// The word stored.
        value: u64,
    },
}

/// Where a page's contents come from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    /// Zero (anonymous, untouched or decommitted).
    Zero,
    /// A private frame holding this word.
    Own(u64),
    /// Page `page` of object `obj`, copy-on-write or shared.
    Obj { obj: usize, page: usize, cow: bool },
}

#[derive(Clone, Copy, Debug)]
struct PageM {
    committed: bool,
    perms: Perms,
    resident: bool,
    src: Src,
}

const HOLE: PageM = PageM {
    committed: false,
    perms: Perms::NONE,
    resident: false,
    src: Src::Zero,
};

#[derive(Debug)]
struct RegionM {
    range: VirtRange,
    guard_pages: usize,
    granule: u32,
    pages: Vec<PageM>,
    obj: Option<usize>,
}

impl RegionM {
    fn per(&self) -> usize {
        1 << self.granule
    }

    fn granules(&self) -> usize {
        self.pages.len() / self.per()
    }

    /// Private frames held: resident granules whose pages are not object
    /// pages.
    fn private_frames(&self) -> u64 {
        self.pages
            .chunks(self.per())
            .filter(|g| {
                g.iter()
                    .any(|p| p.resident && !matches!(p.src, Src::Obj { .. }))
            })
            .count() as u64
            * self.per() as u64
    }
}

struct ObjM {
    arc: Arc<VmObject>,
    values: Vec<u64>,
}

struct Model<'k, 'h> {
    k: &'k Kernel<'h, Hosted>,
    free0: u64,
    regions: [Option<RegionM>; SLOTS],
    objs: BTreeMap<usize, ObjM>,
    next_obj: usize,
}

fn allows(p: Perms, write: bool) -> bool {
    if write { p.write } else { p.read }
}

impl Model<'_, '_> {
    fn value(&self, p: &PageM) -> u64 {
        match p.src {
            Src::Zero => 0,
            Src::Own(v) => v,
            Src::Obj { obj, page, .. } => self.objs[&obj].values[page],
        }
    }

    /// What the owner is charged (INV-VM-7): every committed page that is
    /// not a shared object page, plus the objects' frames.
    fn charged_frames(&self) -> u64 {
        let committed = self
            .regions
            .iter()
            .flatten()
            .flat_map(|r| &r.pages)
            .filter(|p| p.committed && !matches!(p.src, Src::Obj { cow: false, .. }))
            .count() as u64;
        committed + self.object_frames()
    }

    fn object_frames(&self) -> u64 {
        self.objs
            .values()
            .map(|o| 1u64 << order_for(o.arc.pages() as u64))
            .sum()
    }

    /// Frames taken from the allocator: resident private granules and the
    /// objects.
    fn held_frames(&self) -> u64 {
        let private: u64 = self
            .regions
            .iter()
            .flatten()
            .map(RegionM::private_frames)
            .sum();
        let objects: u64 = self
            .objs
            .values()
            .map(|o| 1u64 << order_for(o.arc.pages() as u64))
            .sum();
        private + objects
    }

    /// Granule range `first..first + count` of `slot`, clipped to fit.
    fn span(&self, slot: usize, first: usize, count: usize) -> Option<(usize, usize)> {
        let r = self.regions[slot].as_ref()?;
        let n = r.granules();
        let first = first % n;
        Some((first, count.min(n - first)))
    }

    fn drop_unused_objects(&mut self) {
        let used: Vec<usize> = self
            .regions
            .iter()
            .flatten()
            .filter_map(|r| r.obj)
            .collect();
        let unused: Vec<usize> = self
            .objs
            .keys()
            .copied()
            .filter(|o| !used.contains(o))
            .collect();
        for o in unused {
            if let Some(obj) = self.objs.remove(&o) {
                self.k.vm().drop_object(obj.arc);
            }
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), ModelError> {
        let vm = self.k.vm();
        match *op {
            Op::Reserve {
                slot,
                granules,
                guard,
                granule,
            } => {
                if self.regions[slot].is_some() {
                    return Ok(());
                }
                let per = 1usize << granule;
                let spec = RegionSpec {
                    len: granules * per * PAGE_SIZE,
                    guard: guard * PAGE_SIZE,
                    granule,
                    owner: OWNER,
                    placement: Placement::Random,
                };
                let range = vm
                    .reserve(&spec)
                    .map_err(|e| ModelError::Kernel(format!("reserve: {e}")))?;
                ensure_eq!(range.start % (per * PAGE_SIZE), 0, "granule alignment");
                self.regions[slot] = Some(RegionM {
                    range,
                    guard_pages: guard,
                    granule,
                    pages: vec![HOLE; granules * per],
                    obj: None,
                });
            }
            Op::Commit {
                slot,
                first,
                count,
                perms,
                eager,
            } => {
                let Some((first, count)) = self.span(slot, first, count) else {
                    return Ok(());
                };
                let r = self.regions[slot].as_mut().unwrap();
                let per = r.per();
                let perms = PERMS[perms];
                let how = if eager { Commit::Eager } else { Commit::Demand };
                let got = vm.commit(
                    r.range.start,
                    first * per * PAGE_SIZE,
                    count * per * PAGE_SIZE,
                    perms,
                    how,
                );
                let pages = first * per..(first + count) * per;
                let want = if !perms.is_wx_safe() {
                    Err(VmError::WriteExecute)
                } else if r.pages[pages.clone()].iter().any(|p| p.committed) {
                    Err(VmError::AlreadyCommitted)
                } else {
                    Ok(())
                };
                ensure_eq!(got, want, "commit");
                if want.is_ok() {
                    for p in &mut r.pages[pages] {
                        *p = PageM {
                            committed: true,
                            perms,
                            resident: eager,
                            src: Src::Zero,
                        };
                    }
                }
            }
            Op::MapObject {
                slot,
                pages,
                share_from,
                cow,
                perms,
            } => {
                if self.regions[slot].is_some() {
                    return Ok(());
                }
                let perms = PERMS[perms];
                // Map the object of another region again, or a new one.
                let existing = share_from
                    .and_then(|s| self.regions[s].as_ref())
                    .and_then(|r| r.obj);
                let obj = match existing {
                    Some(o) => o,
                    None => {
                        let values: Vec<u64> = (0..pages)
                            .map(|i| 0x0B0B_0000 + (self.next_obj * 16 + i) as u64)
                            .collect();
                        let mut template = vec![0u8; pages * PAGE_SIZE];
                        for (i, v) in values.iter().enumerate() {
                            template[i * PAGE_SIZE..i * PAGE_SIZE + 8]
                                .copy_from_slice(&v.to_ne_bytes());
                        }
                        let arc = vm
                            .create_object(pages, &template, OWNER)
                            .map_err(|e| ModelError::Kernel(format!("object: {e}")))?;
                        let id = self.next_obj;
                        self.next_obj += 1;
                        self.objs.insert(id, ObjM { arc, values });
                        id
                    }
                };
                let arc = Arc::clone(&self.objs[&obj].arc);
                let spec = RegionSpec {
                    owner: OWNER,
                    ..RegionSpec::new(0)
                };
                let range = vm
                    .map_object(&spec, &arc, perms, cow)
                    .map_err(|e| ModelError::Kernel(format!("map object: {e}")))?;
                self.regions[slot] = Some(RegionM {
                    range,
                    guard_pages: 1,
                    granule: 0,
                    pages: (0..arc.pages())
                        .map(|page| PageM {
                            committed: true,
                            perms,
                            resident: true,
                            src: Src::Obj { obj, page, cow },
                        })
                        .collect(),
                    obj: Some(obj),
                });
            }
            Op::Protect {
                slot,
                first,
                count,
                perms,
            } => {
                let Some((first, count)) = self.span(slot, first, count) else {
                    return Ok(());
                };
                let r = self.regions[slot].as_mut().unwrap();
                let per = r.per();
                let perms = PERMS[perms];
                let got = vm.protect(
                    r.range.start,
                    first * per * PAGE_SIZE,
                    count * per * PAGE_SIZE,
                    perms,
                );
                let pages = first * per..(first + count) * per;
                let want = if !perms.is_wx_safe() {
                    Err(VmError::WriteExecute)
                } else if r.pages[pages.clone()].iter().any(|p| !p.committed) {
                    Err(VmError::NotCommitted)
                } else {
                    Ok(())
                };
                ensure_eq!(got, want, "protect");
                if want.is_ok() {
                    for p in &mut r.pages[pages] {
                        p.perms = perms;
                    }
                }
            }
            Op::Decommit { slot, first, count } => {
                let Some((first, count)) = self.span(slot, first, count) else {
                    return Ok(());
                };
                let r = self.regions[slot].as_mut().unwrap();
                let per = r.per();
                let before = r.private_frames();
                let got = vm.decommit(
                    r.range.start,
                    first * per * PAGE_SIZE,
                    count * per * PAGE_SIZE,
                );
                for p in &mut r.pages[first * per..(first + count) * per] {
                    *p = HOLE;
                }
                ensure_eq!(got, Ok(before - r.private_frames()), "decommit");
            }
            Op::Release { slot } => {
                let Some(r) = self.regions[slot].take() else {
                    return Ok(());
                };
                let got = vm.release(r.range.start);
                ensure_eq!(got, Ok(r.private_frames()), "release");
                self.drop_unused_objects();
            }
            Op::Touch {
                slot,
                page,
                write: is_write,
                value,
            } => {
                let Some(r) = self.regions[slot].as_ref() else {
                    return Ok(());
                };
                let n = r.pages.len() as isize;
                let g = r.guard_pages as isize;
                if page < -g || page >= n + g {
                    return Ok(());
                }
                let va = (r.range.start as isize + page * PAGE_SIZE as isize) as usize;
                let access = if is_write {
                    Access::Write
                } else {
                    Access::Read
                };
                if page < 0 || page >= n {
                    ensure_eq!(
                        vm.probe(va, access),
                        FaultOutcome::Guard,
                        "guard at page {}",
                        page
                    );
                    return Ok(());
                }
                let p = r.pages[page as usize];
                if !p.committed {
                    ensure_eq!(
                        vm.probe(va, access),
                        FaultOutcome::Hole,
                        "hole at page {}",
                        page
                    );
                    return Ok(());
                }
                if !allows(p.perms, is_write) {
                    ensure_eq!(
                        vm.probe(va, access),
                        FaultOutcome::Violation,
                        "perms {:?}",
                        p.perms
                    );
                    return Ok(());
                }
                let want = self.value(&p);
                let per = r.per();
                let r = self.regions[slot].as_mut().unwrap();
                // A touch makes the whole granule resident.
                let first = page as usize / per * per;
                for q in &mut r.pages[first..first + per] {
                    q.resident = true;
                }
                let q = &mut r.pages[page as usize];
                if is_write {
                    write(va, value);
                    match q.src {
                        Src::Obj {
                            obj,
                            page,
                            cow: false,
                        } => {
                            self.objs.get_mut(&obj).unwrap().values[page] = value;
                        }
                        _ => q.src = Src::Own(value),
                    }
                } else {
                    let got = read(va);
                    ensure_eq!(got, want, "read at page {}", page);
                }
            }
        }
        Ok(())
    }

    /// Every page of every region agrees with the model; frames add up.
    fn check(&self) -> Result<(), ModelError> {
        let vm = self.k.vm();
        for r in self.regions.iter().flatten() {
            if r.guard_pages > 0 {
                let q = vm.query(r.range.start - 1).map(|i| i.backing);
                ensure_eq!(q, Some(Backing::Guard));
                let q = vm.query(r.range.end()).map(|i| i.backing);
                ensure_eq!(q, Some(Backing::Guard));
            }
            for (i, p) in r.pages.iter().enumerate() {
                let va = r.range.start + i * PAGE_SIZE;
                let info = vm
                    .query(va)
                    .ok_or_else(|| ModelError::Kernel("query: none".into()))?;
                let backing = match (p.committed, p.src) {
                    (false, _) => Backing::Hole,
                    (true, Src::Obj { cow: true, .. }) => Backing::Cow,
                    (true, Src::Obj { cow: false, .. }) => Backing::Shared,
                    (true, _) => Backing::Anonymous,
                };
                ensure_eq!(info.backing, backing, "backing of page {}", i);
                ensure_eq!(info.region, r.range);
                ensure_eq!(info.owner, OWNER);
                if p.committed {
                    ensure_eq!(info.perms, p.perms, "perms of page {}", i);
                }
                ensure_eq!(info.frame.is_some(), p.resident, "residency of page {}", i);
                if p.resident && p.perms.read {
                    ensure_eq!(read(va), self.value(p), "contents of page {}", i);
                }
            }
        }
        let held = self.held_frames();
        ensure_eq!(
            self.k.frames().free_frames(),
            self.free0 - held,
            "free frames"
        );
        ensure_eq!(
            vm.owner_frames(OWNER),
            self.charged_frames(),
            "owner's charge"
        );
        Ok(())
    }
}

/// Pick an [`Op`] from `u`, with the same weights and ranges as the
/// proptest strategy of `tests/tests/mem_model.rs`.
///
/// # Errors
/// When `u` runs out of bytes.
pub fn arbitrary_op(u: &mut Unstructured<'_>) -> arbitrary::Result<Op> {
    let slot = u.choose_index(SLOTS)?;
    let pick = u.int_in_range(0u8..=17)?;
    Ok(match pick {
        0..=1 => Op::Reserve {
            slot,
            granules: u.int_in_range(1..=5)?,
            guard: u.int_in_range(0..=2)?,
            granule: if u.arbitrary()? { 2 } else { 0 },
        },
        2..=4 => Op::Commit {
            slot,
            first: u.int_in_range(0..=5)?,
            count: u.int_in_range(1..=3)?,
            perms: u.choose_index(PERMS.len())?,
            eager: u.arbitrary()?,
        },
        5 => Op::MapObject {
            slot,
            pages: u.int_in_range(1..=4)?,
            share_from: if u.arbitrary()? {
                Some(u.choose_index(SLOTS)?)
            } else {
                None
            },
            cow: u.arbitrary()?,
            perms: u.int_in_range(1..=2)?,
        },
        6..=7 => Op::Protect {
            slot,
            first: u.int_in_range(0..=5)?,
            count: u.int_in_range(1..=3)?,
            perms: u.choose_index(PERMS.len())?,
        },
        8 => Op::Decommit {
            slot,
            first: u.int_in_range(0..=5)?,
            count: u.int_in_range(1..=3)?,
        },
        9 => Op::Release { slot },
        _ => Op::Touch {
            slot,
            page: u.int_in_range(-3..=26)?,
            write: u.arbitrary()?,
            value: u.int_in_range(1..=u64::MAX - 1)?,
        },
    })
}

/// Apply `ops` to `k`'s memory manager and to a fresh model, checking
/// after every step; then release everything and check that every frame
/// came back and no region is left.
///
/// # Errors
/// The first disagreement.
pub fn run(k: &Kernel<'_, Hosted>, ops: &[Op]) -> Result<(), ModelError> {
    let mut m = Model {
        k,
        free0: k.frames().free_frames(),
        regions: Default::default(),
        objs: BTreeMap::new(),
        next_obj: 0,
    };
    let mut outcome = Ok(());
    for op in ops {
        outcome = m.apply(op).and_then(|()| m.check());
        if outcome.is_err() {
            break;
        }
    }
    // Tear down whatever is left, so the next run starts clean, and check
    // every frame came back.
    for slot in 0..SLOTS {
        if outcome.is_ok() {
            outcome = m.apply(&Op::Release { slot });
        } else if let Some(r) = m.regions[slot].take() {
            let _ = k.vm().release(r.range.start);
        }
    }
    m.drop_unused_objects();
    outcome?;
    ensure_eq!(k.frames().free_frames(), m.free0, "frames leaked");
    ensure_eq!(k.vm().region_count(), 0);
    Ok(())
}
