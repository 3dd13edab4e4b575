//! The monotonic clock does not go back and measures a 20 ms sleep; the
//! wall clock is after 2020.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let t0 = Instant::now();
    let t1 = Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    let slept = t0.elapsed();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let checks = [
        ("monotonic", t1 >= t0),
        ("sleep", slept >= Duration::from_millis(20)),
        ("wall clock", wall > 1_577_836_800),
    ];
    let mut failed = 0;
    for (what, ok) in checks {
        println!("{what}: {}", if ok { "ok" } else { "FAILED" });
        failed += i32::from(!ok);
    }
    std::process::exit(failed);
}
