//! Many processes alive at once: 10,000 idle processes, each blocked in
//! `chan_recv`, all ending as told, with every frame back afterwards. The
//! bytes each costs are printed (the `versus` bench reports them too);
//! nothing here is timed.

use kernel_core::proc::MAX_PROCESSES;
use tests::density::idle_processes;

#[test]
fn ten_thousand_idle_processes_live_at_once_and_all_end_as_told() {
    let n = 10_000;
    assert!(n <= MAX_PROCESSES);
    let d = idle_processes(n);
    println!(
        "density: {} processes idle at once: {} KiB of host memory and {} KiB of kernel frames each",
        d.ready,
        d.rss_per_process() >> 10,
        d.frame_bytes_per_process() >> 10
    );
    assert_eq!(d.ready, n, "{d:?}");
    assert_eq!(d.as_told, n, "{d:?}");
    assert_eq!(d.left, 0, "{d:?}");
    let ((free0, promised0), (free1, promised1)) = d.frames_before_after;
    assert_eq!((free1, promised1), (free0, promised0), "{d:?}");
}
