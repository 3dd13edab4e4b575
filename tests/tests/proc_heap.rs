//! Nothing is kept per ended process: 100,000 processes spawned, run to
//! their exit and reaped, one after another, leave the kernel heap where
//! it was (INV-PROC-5), and the frames (free and promised), code objects,
//! shared stubs and modules, accounts and address-space regions where they
//! were.
//!
//! The hosted kernel's heap is this test process's allocator, so the test
//! counts the bytes it has live with a global allocator of its own; this
//! file holds this one test so that nothing else allocates beside it.

use std::time::Duration;

use kernel_core::proc::{self, ExitStatus, SpawnOptions};
use tests::heap::Counting;
use tests::machine::{HANG_GUARD, machine, on_config, wat};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Spawn-and-exit cycles measured.
const CYCLES: usize = 100_000;
/// Cycles run first, so that every structure that grows once (queues,
/// maps, the compiler's caches) has its size before the baseline.
const WARM_UP: usize = 1_000;
/// Heap bytes the run may end above its baseline: far less than one byte
/// per cycle, so any per-process leak shows.
const SLACK: isize = 16 << 10;

#[test]
fn a_hundred_thousand_spawns_leave_the_heap_at_its_baseline() {
    // A system call too, so that each process links a host thunk.
    let module = wat(r#"(module
      (import "vessel" "now" (func $now (result i64)))
      (func (export "_start") (result i32) (drop (call $now)) (i32.const 5)))"#);
    let ((baseline, after, exited, left, kept), _) = on_config(&machine(1), |kernel, exec| {
        // What the kernel holds besides its heap.
        // (Idle pooled regions released first: the pool is bounded, and
        // what is in use still shows in frames and regions.)
        let held = || {
            kernel.release_idle();
            let f = kernel.frames();
            (
                f.free_frames(),
                f.promised_frames(),
                kernel.code().len(),
                kernel.stubs().live(),
                kernel.modules().live(),
                kernel.vm().account_count(),
                kernel.vm().region_count(),
            )
        };
        let small = SpawnOptions {
            stack: 512 << 10,
            ..SpawnOptions::default()
        };
        proc::run(kernel, exec, small, |procs| async move {
            let mut exited = 0;
            let mut baseline = 0;
            let mut held_before = held();
            for cycle in 0..WARM_UP + CYCLES {
                if cycle == WARM_UP {
                    baseline = tests::heap::live();
                    held_before = held();
                }
                let Ok(pid) = procs.spawn("short", module.clone(), Vec::new(), small) else {
                    break;
                };
                let status = procs.reap(pid).await.map(|i| i.status);
                if status == Some(ExitStatus::Exited(5)) {
                    exited += 1;
                }
            }
            // The last fiber's stack goes a moment after its status.
            let settled = async {
                while held() != held_before {
                    procs.exec().sleep(Duration::from_millis(1)).await;
                }
            };
            let _ = procs.exec().timeout(HANG_GUARD, settled).await;
            (
                baseline,
                tests::heap::live(),
                exited,
                procs.count(),
                (held_before, held()),
            )
        })
        .expect("process scope")
    });
    assert_eq!(exited, WARM_UP + CYCLES, "processes that exited 5");
    assert_eq!(left, 0, "processes left in the table");
    assert_eq!(
        kept.1, kept.0,
        "(free frames, promised, code objects, stubs, modules, accounts, regions) after vs before"
    );
    let grown = after - baseline;
    assert!(
        grown <= SLACK,
        "the heap grew {grown} bytes over {CYCLES} processes (baseline {baseline})"
    );
}
