//! `spin`: loop forever, to test killing a busy process (Ctrl-C, `kill`).
//!
//! Usage: `spin`. Prints `spinning` on its own line, then computes without
//! end.
//!
//! Exit status: never exits by itself; 1 when the line cannot be written.

use std::hint::black_box;
use std::io::Write;

fn main() {
    let mut out = userland::stdout();
    if writeln!(out, "spinning")
        .and_then(|()| out.flush())
        .is_err()
    {
        userland::output_failed();
    }
    drop(out);
    let mut x: u64 = 1;
    loop {
        x = black_box(
            x.wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407),
        );
    }
}
