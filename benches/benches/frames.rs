//! Frame allocation: the kernel's buddy allocator against the host's
//! `malloc` handing out page-aligned 4 KiB blocks, side by side.

use std::alloc::{Layout, alloc, dealloc};
use std::hint::black_box;

use benches::{ns_per_iter, report};
use kernel_core::hal::{PhysAddr, PhysRange};
use kernel_core::mem::Buddy;

const BATCH: usize = 256;

fn main() {
    let mut buddy = Buddy::new(&[PhysRange {
        start: PhysAddr(0),
        len: 1 << 30,
    }]);
    let mut held = Vec::with_capacity(BATCH);
    let ours = ns_per_iter(20, 200, || {
        for _ in 0..BATCH {
            held.push(buddy.alloc(0).expect("1 GiB holds the batch"));
        }
        for pa in held.drain(..) {
            buddy.free(pa, 0).expect("allocated above");
        }
    }) / (2 * BATCH) as f64;

    let layout = Layout::from_size_align(4096, 4096).expect("valid layout");
    let mut ptrs = Vec::with_capacity(BATCH);
    let native = ns_per_iter(20, 200, || {
        for _ in 0..BATCH {
            // SAFETY: the layout has a non-zero size.
            ptrs.push(black_box(unsafe { alloc(layout) }));
        }
        for p in ptrs.drain(..) {
            // SAFETY: `p` came from `alloc` with this layout just above.
            unsafe { dealloc(p, layout) };
        }
    }) / (2 * BATCH) as f64;

    report(
        "frame alloc+free (order 0)",
        ours,
        "malloc 4K aligned",
        native,
    );
}
