//! The memory manager against its reference model (`tests::mem_model`), on
//! the hosted kernel with real memory and real faults.
//!
//! A proptest state machine drives random sequences of reserve / commit
//! (demand or eager) / map object (shared or copy-on-write) / protect /
//! decommit / release / touch through `tests::mem_model::run`, which checks
//! every page of every region, the free frame count and the owner's charge
//! after every step (the `mem_ops` fuzz target drives the same model from
//! libFuzzer's bytes). The child-process tests at the end show that the
//! faults the model only probes (guard, hole, forbidden access), taken for
//! real, stop the kernel with a clean report.

use hal_hosted::{Config, Hosted};
use kernel_core::hal::{PAGE_SIZE, Perms, VirtRange};
use kernel_core::mem::{Commit, RegionSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use tests::mem_model::{self, Op, PERMS, SLOTS};

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
    // SAFETY: callers read committed, readable pages of a live region; a
    // demand fault is resolved by the kernel, anything else is the fault
    // the calling test expects.
    unsafe { std::ptr::read_volatile(va as *const u64) }
}

fn write(va: usize, v: u64) {
    // SAFETY: as for `read`, for writable pages.
    unsafe { std::ptr::write_volatile(va as *mut u64, v) }
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
                mem_model::run(k, &ops).map_err(|e| TestCaseError::fail(e.to_string()))
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
