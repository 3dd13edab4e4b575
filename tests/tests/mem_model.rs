//! The memory manager against a reference model, on the hosted kernel with
//! real memory and real faults.
//!
//! A proptest state machine drives random sequences of reserve / commit
//! (demand or eager) / map object (shared or copy-on-write) / protect /
//! decommit / release / touch. After every step each page of every region is
//! compared with the model (a map from page to state): `query` must report
//! the same backing, permissions and residency, every resident readable page
//! must read back the model's value, the allocator's free frame count must
//! equal the start count minus the frames the model says are held, and the
//! owner's charge must equal what the model says is committed.
//!
//! Touches of committed, allowed pages are real loads and stores (demand and
//! copy-on-write faults go through the HAL's signal path). Touches the model
//! says must not be resolved (guard, hole, forbidden access) are asked of
//! `Vm::probe`, the fault path's classifier, so the process survives; the
//! child-process tests at the end show that the same faults, taken for real,
//! stop the kernel with a clean report.

use std::collections::BTreeMap;
use std::sync::Arc;

use hal_hosted::{Config, Hosted};
use kernel_core::hal::{Access, PAGE_SIZE, Perms, VirtRange};
use kernel_core::kernel::Kernel;
use kernel_core::mem::{
    Backing, Commit, FaultOutcome, Owner, Placement, ProcessId, RegionSpec, VmError, VmObject,
    order_for,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};

const SLOTS: usize = 4;
const OWNER: Owner = Owner::Process(ProcessId(1));
const WX: Perms = Perms {
    read: true,
    write: true,
    execute: true,
};
const PERMS: [Perms; 5] = [
    Perms::NONE,
    Perms::READ,
    Perms::READ_WRITE,
    Perms::READ_EXECUTE,
    WX,
];

fn machine() -> Hosted {
    Hosted::new(&Config {
        cpus: 1,
        memory: 64 << 20,
        window: 1 << 40,
        ..Config::default()
    })
    .expect("machine")
}

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

#[derive(Clone, Debug)]
enum Op {
    Reserve {
        slot: usize,
        granules: usize,
        guard: usize,
        granule: u32,
    },
    Commit {
        slot: usize,
        first: usize,
        count: usize,
        perms: usize,
        eager: bool,
    },
    MapObject {
        slot: usize,
        pages: usize,
        share_from: Option<usize>,
        cow: bool,
        perms: usize,
    },
    Protect {
        slot: usize,
        first: usize,
        count: usize,
        perms: usize,
    },
    Decommit {
        slot: usize,
        first: usize,
        count: usize,
    },
    Release {
        slot: usize,
    },
    Touch {
        slot: usize,
        page: isize,
        write: bool,
        value: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        2 => (slot.clone(), 1usize..6, 0usize..3, prop_oneof![Just(0u32), Just(2u32)])
            .prop_map(|(slot, granules, guard, granule)| Op::Reserve { slot, granules, guard, granule }),
        3 => (slot.clone(), 0usize..6, 1usize..4, 0..PERMS.len(), any::<bool>())
            .prop_map(|(slot, first, count, perms, eager)| Op::Commit { slot, first, count, perms, eager }),
        1 => (slot.clone(), 1usize..5, proptest::option::of(0..SLOTS), any::<bool>(), 1usize..3)
            .prop_map(|(slot, pages, share_from, cow, perms)| Op::MapObject { slot, pages, share_from, cow, perms }),
        2 => (slot.clone(), 0usize..6, 1usize..4, 0..PERMS.len())
            .prop_map(|(slot, first, count, perms)| Op::Protect { slot, first, count, perms }),
        1 => (slot.clone(), 0usize..6, 1usize..4)
            .prop_map(|(slot, first, count)| Op::Decommit { slot, first, count }),
        1 => slot.clone().prop_map(|slot| Op::Release { slot }),
        8 => (slot, -3isize..27, any::<bool>(), 1u64..u64::MAX)
            .prop_map(|(slot, page, write, value)| Op::Touch { slot, page, write, value }),
    ]
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

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
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
                    .map_err(|e| TestCaseError::fail(format!("reserve: {e}")))?;
                prop_assert_eq!(range.start % (per * PAGE_SIZE), 0, "granule alignment");
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
                prop_assert_eq!(got, want, "commit");
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
                            .map_err(|e| TestCaseError::fail(format!("object: {e}")))?;
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
                    .map_err(|e| TestCaseError::fail(format!("map object: {e}")))?;
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
                prop_assert_eq!(got, want, "protect");
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
                prop_assert_eq!(got, Ok(before - r.private_frames()), "decommit");
            }
            Op::Release { slot } => {
                let Some(r) = self.regions[slot].take() else {
                    return Ok(());
                };
                let got = vm.release(r.range.start);
                prop_assert_eq!(got, Ok(r.private_frames()), "release");
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
                    prop_assert_eq!(
                        vm.probe(va, access),
                        FaultOutcome::Guard,
                        "guard at page {}",
                        page
                    );
                    return Ok(());
                }
                let p = r.pages[page as usize];
                if !p.committed {
                    prop_assert_eq!(
                        vm.probe(va, access),
                        FaultOutcome::Hole,
                        "hole at page {}",
                        page
                    );
                    return Ok(());
                }
                if !allows(p.perms, is_write) {
                    prop_assert_eq!(
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
                    prop_assert_eq!(got, want, "read at page {}", page);
                }
            }
        }
        Ok(())
    }

    /// Every page of every region agrees with the model; frames add up.
    fn check(&self) -> Result<(), TestCaseError> {
        let vm = self.k.vm();
        for r in self.regions.iter().flatten() {
            if r.guard_pages > 0 {
                let q = vm.query(r.range.start - 1).map(|i| i.backing);
                prop_assert_eq!(q, Some(Backing::Guard));
                let q = vm.query(r.range.end()).map(|i| i.backing);
                prop_assert_eq!(q, Some(Backing::Guard));
            }
            for (i, p) in r.pages.iter().enumerate() {
                let va = r.range.start + i * PAGE_SIZE;
                let info = vm
                    .query(va)
                    .ok_or_else(|| TestCaseError::fail("query: none"))?;
                let backing = match (p.committed, p.src) {
                    (false, _) => Backing::Hole,
                    (true, Src::Obj { cow: true, .. }) => Backing::Cow,
                    (true, Src::Obj { cow: false, .. }) => Backing::Shared,
                    (true, _) => Backing::Anonymous,
                };
                prop_assert_eq!(info.backing, backing, "backing of page {}", i);
                prop_assert_eq!(info.region, r.range);
                prop_assert_eq!(info.owner, OWNER);
                if p.committed {
                    prop_assert_eq!(info.perms, p.perms, "perms of page {}", i);
                }
                prop_assert_eq!(info.frame.is_some(), p.resident, "residency of page {}", i);
                if p.resident && p.perms.read {
                    prop_assert_eq!(read(va), self.value(p), "contents of page {}", i);
                }
            }
        }
        let held = self.held_frames();
        prop_assert_eq!(
            self.k.frames().free_frames(),
            self.free0 - held,
            "free frames"
        );
        prop_assert_eq!(
            vm.owner_frames(OWNER),
            self.charged_frames(),
            "owner's charge"
        );
        Ok(())
    }
}

#[test]
fn memory_manager_matches_model() {
    let hosted = machine();
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            let mut runner = TestRunner::new(PtConfig {
                cases: 128,
                failure_persistence: None,
                ..PtConfig::default()
            });
            let result = runner.run(&proptest::collection::vec(op(), 1..60), |ops| {
                let mut m = Model {
                    k,
                    free0: k.frames().free_frames(),
                    regions: Default::default(),
                    objs: BTreeMap::new(),
                    next_obj: 0,
                };
                let mut outcome = Ok(());
                for op in &ops {
                    outcome = m.apply(op).and_then(|()| m.check());
                    if outcome.is_err() {
                        break;
                    }
                }
                // Tear down whatever is left, so the next case starts clean,
                // and check every frame came back.
                for slot in 0..SLOTS {
                    if outcome.is_ok() {
                        outcome = m.apply(&Op::Release { slot });
                    } else if let Some(r) = m.regions[slot].take() {
                        let _ = k.vm().release(r.range.start);
                    }
                }
                m.drop_unused_objects();
                outcome?;
                prop_assert_eq!(k.frames().free_frames(), m.free0, "frames leaked");
                prop_assert_eq!(k.vm().region_count(), 0);
                Ok(())
            });
            if let Err(e) = result {
                panic!("{e}");
            }
        })
    });
}

/// A 1 GiB region in 64 KiB granules, every 4 KiB page written: 16,384
/// faults, each one block of 16 frames and one host mapping, so the host's
/// `vm.max_map_count` (65,530) is never approached.
#[test]
fn gigabyte_of_demand_faults_in_64k_blocks() {
    let hosted = Hosted::new(&Config {
        cpus: 1,
        memory: 1200 << 20,
        window: 1 << 40,
        ..Config::default()
    })
    .expect("machine");
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            let vm = k.vm();
            let free0 = k.frames().free_frames();
            let spec = RegionSpec {
                granule: 4,
                guard: 64 << 10,
                ..RegionSpec::new(1 << 30)
            };
            let r = vm.reserve(&spec).expect("reserve");
            vm.commit(r.start, 0, r.len, Perms::READ_WRITE, Commit::Demand)
                .expect("commit");
            for page in (0..r.len).step_by(PAGE_SIZE) {
                write(r.start + page, page as u64);
            }
            assert_eq!(vm.resident(r.start), Some(16_384));
            let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
            let count = maps.lines().count();
            assert!(count < 40_000, "{count} host mappings for 1 GiB");
            assert_eq!(
                read(r.start + (r.len - PAGE_SIZE)),
                (r.len - PAGE_SIZE) as u64
            );
            assert_eq!(vm.release(r.start), Ok(1 << 18));
            assert_eq!(k.frames().free_frames(), free0);
        })
    });
}

/// Run `test` in a child process that must stop with a kernel fault
/// report mentioning `why`.
fn expect_fault_report(test: &str, why: &str) {
    tests::expect_fault_report(test, &["PageFault", "pc=0x", "addr=0x", why]);
}

/// In a child: build a kernel with a read-only demand region between guard
/// pages and hand `f` the region; `f` makes a fault that must not resolve.
fn child(f: impl FnOnce(VirtRange) + Send) {
    let hosted = machine();
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            let r = k
                .vm()
                .reserve(&RegionSpec::new(4 * PAGE_SIZE))
                .expect("reserve");
            k.vm()
                .commit(r.start, 0, r.len, Perms::READ, Commit::Demand)
                .expect("commit");
            // A demand read resolves first: the region works.
            assert_eq!(read(r.start), 0);
            f(r);
        })
    });
    eprintln!("the fault did not stop the kernel");
    std::process::exit(100);
}

#[test]
fn demand_touch_resolves() {
    let hosted = machine();
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            let vm = k.vm();
            let r = vm
                .reserve(&RegionSpec::new(8 * PAGE_SIZE))
                .expect("reserve");
            vm.commit(r.start, 0, r.len, Perms::READ_WRITE, Commit::Demand)
                .expect("commit");
            assert_eq!(vm.resident(r.start), Some(0));
            write(r.start + 3 * PAGE_SIZE + 8, 99);
            assert_eq!(read(r.start + 3 * PAGE_SIZE + 8), 99);
            assert_eq!(read(r.start + 5 * PAGE_SIZE), 0);
            assert_eq!(vm.resident(r.start), Some(2));
            assert_eq!(vm.release(r.start), Ok(2));
        })
    });
}

#[test]
fn guard_page_touch_is_a_clean_reported_fault() {
    if tests::child_scenario().is_some() {
        child(|r| {
            read(r.start - 8);
        });
    }
    expect_fault_report("guard_page_touch_is_a_clean_reported_fault", "guard page");
}

#[test]
fn write_to_read_only_page_is_a_clean_reported_fault() {
    if tests::child_scenario().is_some() {
        child(|r| write(r.start + PAGE_SIZE, 1));
    }
    expect_fault_report(
        "write_to_read_only_page_is_a_clean_reported_fault",
        "access not allowed",
    );
}
