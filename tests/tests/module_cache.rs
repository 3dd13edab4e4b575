//! The kernel's module cache: processes running the same bytes share one
//! compiled module while any of them holds it; a module that differs by
//! one byte is compiled on its own; the last user's end frees it; and
//! each sharer is still charged what the module keeps.

use std::time::Duration;

use kernel_core::mem::Owner;
use kernel_core::proc::{self, ExitStatus, SpawnOptions};
use tests::machine::{HANG_GUARD, on_machine, wait, wat};

/// Sleeps a while (so that every copy is alive at once), then exits 3.
const SLEEPER: &str = r#"(module
  (import "vessel" "sleep" (func $sleep (param i64) (result i32)))
  (func (export "_start") (result i32)
    (drop (call $sleep (i64.const 200000000)))
    (i32.const 3)))"#;

#[derive(Debug, PartialEq)]
struct Seen {
    inserts: u64,
    hits: u64,
    live_while_running: usize,
    charged_alike: bool,
    ends: Vec<Option<ExitStatus>>,
    live_after: usize,
}

#[test]
fn copies_of_a_program_share_one_compiled_module() {
    let seen = on_machine(2, |kernel, exec| {
        let cache = kernel.modules();
        let (inserts, hits) = (cache.inserts(), cache.hits());
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let module = wat(SLEEPER);
            let mut pids = Vec::new();
            for copy in 0..10 {
                if copy == 1 {
                    // The first copy has loaded before the others start
                    // (two started at once may both compile).
                    let loaded = async {
                        while cache.live() == 0 {
                            procs.exec().sleep(Duration::from_millis(1)).await;
                        }
                    };
                    let _ = procs.exec().timeout(HANG_GUARD, loaded).await;
                }
                pids.push(
                    procs
                        .spawn("sleeper", module.clone(), Vec::new(), procs.defaults())
                        .expect("spawn"),
                );
            }
            // The same program changed in one byte (the exit code).
            let other = wat(&SLEEPER.replace("(i32.const 3)", "(i32.const 4)"));
            pids.push(
                procs
                    .spawn("other", other, Vec::new(), procs.defaults())
                    .expect("spawn"),
            );
            // Every copy has loaded (the other program too): each holds
            // its memory owner's charge.
            let loaded = async {
                while cache.hits() - hits < 9 || cache.live() < 2 {
                    procs.exec().sleep(Duration::from_millis(1)).await;
                }
            };
            let _ = procs.exec().timeout(HANG_GUARD, loaded).await;
            let live_while_running = cache.live();
            // A copy counts as a hit before it has instantiated: wait until
            // every copy holds its whole charge.
            let charges = || -> Vec<u64> {
                pids[..10]
                    .iter()
                    .map(|&p| kernel.vm().owner_frames(Owner::Process(p)))
                    .collect()
            };
            let alike = |c: &[u64]| c.iter().all(|&n| n == c[0] && n > 0);
            let settled = async {
                while !alike(&charges()) {
                    procs.exec().sleep(Duration::from_millis(1)).await;
                }
            };
            let _ = procs.exec().timeout(HANG_GUARD, settled).await;
            let charged_alike = alike(&charges());
            let mut ends = Vec::new();
            for pid in &pids {
                ends.push(wait(&procs, *pid).await);
                procs.reap(*pid).await;
            }
            Seen {
                inserts: cache.inserts() - inserts,
                hits: cache.hits() - hits,
                live_while_running,
                charged_alike,
                ends,
                live_after: cache.live(),
            }
        })
        .expect("scope")
    });
    let mut ends = vec![Some(ExitStatus::Exited(3)); 10];
    ends.push(Some(ExitStatus::Exited(4)));
    assert_eq!(
        seen,
        Seen {
            inserts: 2,
            hits: 9,
            live_while_running: 2,
            charged_alike: true,
            ends,
            live_after: 0,
        }
    );
}

/// Copies spawned at the same moment load the module once: the first
/// compiles, the others wait for it (`cache` INV-CACHE-3) and share it. A
/// load that fails (a module that does not validate) wakes its waiters,
/// who each find out for themselves.
#[test]
fn copies_spawned_at_once_compile_once() {
    let (inserts, hits, ends, bad_ends) = on_machine(2, |kernel, exec| {
        let cache = kernel.modules();
        let (inserts, hits) = (cache.inserts(), cache.hits());
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let module = wat(SLEEPER);
            let pids: Vec<_> = (0..8)
                .map(|_| {
                    procs
                        .spawn("sleeper", module.clone(), Vec::new(), procs.defaults())
                        .expect("spawn")
                })
                .collect();
            let mut ends = Vec::new();
            for pid in &pids {
                ends.push(wait(&procs, *pid).await);
                procs.reap(*pid).await;
            }
            let counts = (cache.inserts() - inserts, cache.hits() - hits);
            // Bytes that are not a module: every copy fails to load.
            let bad: std::sync::Arc<[u8]> = b"\0asm\x01\0\0\0\x0a".to_vec().into();
            let pids: Vec<_> = (0..4)
                .map(|_| {
                    procs
                        .spawn("bad", bad.clone(), Vec::new(), procs.defaults())
                        .expect("spawn")
                })
                .collect();
            let mut bad_ends = Vec::new();
            for pid in &pids {
                bad_ends.push(wait(&procs, *pid).await);
                procs.reap(*pid).await;
            }
            (counts.0, counts.1, ends, bad_ends)
        })
        .expect("scope")
    });
    assert_eq!(inserts, 1, "compiled once");
    assert_eq!(hits, 7, "shared by the other seven");
    assert_eq!(ends, vec![Some(ExitStatus::Exited(3)); 8]);
    assert!(
        bad_ends
            .iter()
            .all(|e| matches!(e, Some(ExitStatus::Failed(proc::LoadError::Module(_))))),
        "{bad_ends:?}"
    );
}
