//! Proof that the swarm's checks can fail: with the planted bug switched
//! on (`kernel_core::faults::plant_leak`: a frame leaked when a process's
//! commit is refused), a sweep with frame faults finds it within 200
//! seeds, and shrinks the failing workload to a small replay file that
//! still fails the same way. Its own test binary: the switch is global.

use sim::swarm::{self, Faults, Workload, check};

#[test]
fn a_planted_frame_leak_is_caught_and_shrunk() {
    kernel_core::faults::plant_leak(true);
    let faults = Faults {
        frames: 100,
        ..Faults::default()
    };
    // The sweep's own loop, stopped at the first failure.
    let (seed, violation) = (0..200)
        .find_map(|seed| {
            let w = Workload::generate(seed, &faults);
            check::check(&w, false).err().map(|v| (seed, v))
        })
        .expect("the planted leak was not caught in 200 seeds");
    assert_eq!(violation.kind, "baseline", "seed {seed}: {violation:?}");
    let shrunk = swarm::shrink(&Workload::generate(seed, &faults), &violation);
    // Smaller than the seed's own workload, and small. Which promise a
    // refusal hits depends on the ones before it, so a process that only
    // draws refusals may have to stay.
    let size = |w: &Workload| w.procs.len() + w.procs.iter().map(|p| p.ops.len()).sum::<usize>();
    let original = Workload::generate(seed, &faults);
    assert!(
        size(&shrunk) < size(&original) && size(&shrunk) <= 8,
        "seed {seed} shrank only from {} to {}:\n{}",
        size(&original),
        size(&shrunk),
        shrunk.to_text()
    );
    // The replay file gives the same workload back, and it still fails.
    let again = Workload::parse(&shrunk.to_text()).expect("a replay file");
    assert_eq!(again, shrunk);
    assert_eq!(
        check::check(&again, false).map_err(|v| v.kind),
        Err("baseline")
    );
    // Without the bug the same workload passes.
    kernel_core::faults::plant_leak(false);
    assert!(check::check(&again, true).is_ok());
}
