//! Mapping 1 GiB (262,144 pages) costs far fewer host mappings than
//! `vm.max_map_count` (65,530 by default): a physically contiguous run is
//! one `mmap`, and contiguous single pages merge in the host.
//!
//! One test in its own binary: it counts this process's mappings.

// Public so that helpers this binary does not use are not dead code.
pub mod common;

use common::NoTables;
use hal_hosted::{Config, Hosted};
use kernel_core::hal::{Mmu, PAGE_SIZE, Perms, PhysAddr, PhysMemory};

fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

const MIB: usize = 1 << 20;
const RUN: usize = 2 * MIB;
const RUNS: usize = 512;

#[test]
fn one_gib_of_runs_and_merged_single_pages_stay_far_below_max_map_count() {
    let hosted = Hosted::new(&Config {
        cpus: 1,
        memory: (1 << 30) + 64 * MIB as u64,
        window: 8 << 30,
        ..Config::default()
    })
    .unwrap();
    let window = hosted.kernel_window();
    let before = mapping_count();

    // 512 runs of 2 MiB at adjacent addresses, in reverse physical order so
    // that neighbours cannot merge: one host mapping per run.
    for i in 0..RUNS {
        let va = window.start + i * RUN;
        let pa = PhysAddr(((RUNS - 1 - i) * RUN) as u64);
        // SAFETY: the test owns every frame and page.
        hosted.flush(unsafe { hosted.map(va, pa, RUN, Perms::READ_WRITE, &NoTables) }.unwrap());
    }
    let after_runs = mapping_count();
    let growth = after_runs - before;
    assert!(growth <= RUNS + 8, "{growth} new mappings for {RUNS} runs");

    // Touch every page: 262,144 of them.
    let pages = RUNS * RUN / PAGE_SIZE;
    assert_eq!(pages, 262_144);
    for page in 0..pages {
        let va = window.start + page * PAGE_SIZE;
        // SAFETY: mapped read-write above.
        unsafe { (va as *mut u64).write_volatile(page as u64) };
    }
    // Spot-check through the direct map: page p of run i is frame
    // (RUNS-1-i) * 512 + p.
    for &(run, offset) in &[
        (0usize, 0usize),
        (0, 511),
        (7, 100),
        (RUNS - 1, 0),
        (RUNS - 1, 511),
    ] {
        let pa = PhysAddr((((RUNS - 1 - run) * RUN) + offset * PAGE_SIZE) as u64);
        // SAFETY: inside the direct map.
        let value = unsafe { hosted.direct_map(pa).unwrap().cast::<u64>().read_volatile() };
        assert_eq!(value, (run * RUN / PAGE_SIZE + offset) as u64);
    }

    // 8,192 single-page maps of contiguous frames at contiguous addresses,
    // after the runs: the host merges them into one mapping.
    let singles = 8192;
    let base_va = window.start + RUNS * RUN + 16 * MIB;
    let base_pa = (RUNS * RUN) as u64;
    for i in 0..singles {
        // SAFETY: the test owns every frame and page.
        let flush = unsafe {
            hosted.map(
                base_va + i * PAGE_SIZE,
                PhysAddr(base_pa + (i * PAGE_SIZE) as u64),
                PAGE_SIZE,
                Perms::READ_WRITE,
                &NoTables,
            )
        }
        .unwrap();
        hosted.flush(flush);
    }
    let after_singles = mapping_count();
    assert!(
        after_singles - after_runs <= 3,
        "{} new mappings for {singles} contiguous single pages",
        after_singles - after_runs
    );
    for i in (0..singles).step_by(97) {
        // SAFETY: mapped read-write above.
        unsafe { ((base_va + i * PAGE_SIZE) as *mut u64).write_volatile(i as u64) };
    }

    let total = after_singles - before;
    assert!(total < 2_000, "{total} mappings: far below 65,530 expected");

    // Unmapping everything gives the mappings back (the reservation merges).
    // SAFETY: nothing uses the range any more.
    hosted.flush(unsafe { hosted.unmap(window.start, window.len) }.unwrap());
    let after_unmap = mapping_count();
    eprintln!(
        "host mappings: {before} before, {after_runs} after {RUNS} runs, \
         {after_singles} after {singles} single pages, {after_unmap} after unmap"
    );
    assert!(
        after_unmap <= before + 2,
        "{after_unmap} mappings after unmap, {before} before"
    );
}
