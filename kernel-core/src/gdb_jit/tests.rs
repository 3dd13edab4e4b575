//! The list stays linked through publishes and retires, the budget and the
//! heap bound what is published, and skipped objects are counted.

use alloc::string::ToString;
use alloc::vec::Vec;

use super::*;
use crate::hal::JitSymbol;

/// Starts of the linked objects within `range` (tests of this module run
/// at once on one global list: each looks only at its own addresses).
fn linked_in(lo: usize, hi: usize) -> Vec<usize> {
    let _s = STATE.lock();
    let mut out = Vec::new();
    // SAFETY: the lock is held (INV-GDBJIT-1).
    unsafe {
        let desc = __jit_debug_descriptor.0.get();
        assert_eq!((*desc).version, 1);
        let mut e = (*desc).first_entry;
        let mut prev: *mut CodeEntry = ptr::null_mut();
        while !e.is_null() {
            assert_eq!((*e).prev, prev, "back link");
            let node = e.cast::<Node>();
            let obj = &(*node).object;
            assert_eq!((*e).symfile_addr, obj.as_ptr());
            assert_eq!((*e).symfile_size, obj.len() as u64);
            if (lo..hi).contains(&(*node).start) {
                out.push((*node).start);
            }
            prev = e;
            e = (*e).next;
        }
    }
    out
}

fn range(base: usize, i: usize) -> VirtRange {
    VirtRange {
        start: base + i * 0x1000,
        len: 0x1000,
    }
}

fn publish_one(r: VirtRange, budget: usize) -> Result<(), Skip> {
    let syms = [
        JitSymbol {
            name: "t!outer",
            start: r.start,
            len: 16,
            lines: &[(4, 1), (8, 3)],
        },
        JitSymbol {
            name: "t!inner",
            start: r.start + 16,
            len: 32,
            lines: &[(4, 7)],
        },
    ];
    publish(
        &JitCode {
            range: r,
            module: "t",
            symbols: &syms,
        },
        budget,
    )
}

#[test]
fn publish_and_retire_keep_the_list_linked() {
    let base = 0x7e00_0000_0000;
    let hi = base + 0x10_0000;
    for i in 0..3 {
        publish_one(range(base, i), usize::MAX).expect("published");
    }
    let mut got = linked_in(base, hi);
    got.sort_unstable();
    assert_eq!(got, [base, base + 0x1000, base + 0x2000]);
    // Publishing at a start already linked replaces the old object.
    publish_one(range(base, 1), usize::MAX).expect("published");
    assert_eq!(linked_in(base, hi).len(), 3);
    retire(range(base, 1));
    retire(range(base, 0));
    assert_eq!(linked_in(base, hi), [base + 0x2000]);
    // Retiring what is not linked is nothing.
    retire(range(base, 0));
    retire(range(base, 2));
    assert!(linked_in(base, hi).is_empty());
    let _s = STATE.lock();
    // SAFETY: read under the lock (INV-GDBJIT-1).
    let (flag, relevant) = unsafe {
        let d = __jit_debug_descriptor.0.get();
        ((*d).action_flag, (*d).relevant_entry)
    };
    assert_eq!((flag, relevant), (JIT_NOACTION, ptr::null_mut()));
}

#[test]
fn over_budget_is_skipped_and_counted() {
    let base = 0x7e10_0000_0000;
    let before = stats().skipped;
    let e = publish_one(range(base, 0), 64).expect_err("64 bytes hold no object");
    assert!(matches!(e, Skip::OverBudget { .. }), "{e}");
    assert!(e.to_string().contains("budget"), "{e}");
    assert!(stats().skipped > before);
    assert!(linked_in(base, base + 0x1000).is_empty());
}

#[test]
fn the_cost_bound_covers_the_object() {
    let syms = [JitSymbol {
        name: "m!f\0with a NUL",
        start: 0x5000,
        len: 0x100,
        lines: &[(0, 0), (4, u32::MAX), (8, 0), (0xfc, 12)],
    }];
    let code = JitCode {
        range: VirtRange {
            start: 0x5000,
            len: 0x1000,
        },
        module: "m",
        symbols: &syms,
    };
    let object = build(&code).expect("built");
    assert_eq!(&object[..4], b"\x7fELF");
    assert!(object.capacity() + size_of::<Node>() <= cost_bound(&code));
}
