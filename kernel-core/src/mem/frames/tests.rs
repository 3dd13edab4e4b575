//! Model test of the buddy allocator against a reference model (a map of
//! outstanding blocks), plus targeted cases.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::{Buddy, FrameError, MAX_ORDER, order_for};
use crate::hal::{PAGE_SIZE, PhysAddr, PhysRange};

const FRAME: u64 = PAGE_SIZE as u64;

fn range(first_frame: u64, frames: u64) -> PhysRange {
    PhysRange {
        start: PhysAddr::of_frame(first_frame),
        len: frames * FRAME,
    }
}

/// The reference model: managed frames and outstanding blocks.
struct Model {
    managed: Vec<(u64, u64)>,
    outstanding: BTreeMap<u64, u32>,
}

impl Model {
    fn is_managed(&self, pfn: u64) -> bool {
        self.managed.iter().any(|&(s, e)| pfn >= s && pfn < e)
    }

    fn is_free(&self, pfn: u64) -> bool {
        self.is_managed(pfn)
            && self
                .outstanding
                .range(..=pfn)
                .next_back()
                .is_none_or(|(&s, &o)| pfn >= s + (1 << o))
    }

    fn managed_frames(&self) -> u64 {
        self.managed.iter().map(|&(s, e)| e - s).sum()
    }

    fn used_frames(&self) -> u64 {
        self.outstanding.values().map(|&o| 1u64 << o).sum()
    }

    /// Whether some naturally aligned block of `2^order` frames is free in
    /// the model: the buddy allocator must then be able to hand one out.
    fn has_free_block(&self, order: u32) -> bool {
        let size = 1u64 << order;
        self.managed.iter().any(|&(s, e)| {
            let mut b = s.next_multiple_of(size);
            while b + size <= e {
                if (b..b + size).all(|p| self.is_free(p)) {
                    return true;
                }
                b += size;
            }
            false
        })
    }
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(u32),
    Free(usize),
    DoubleFree(usize),
    WildFree(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u32..7).prop_map(Op::Alloc),
        4 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::DoubleFree),
        1 => (0u64..4096).prop_map(Op::WildFree),
    ]
}

/// One to three disjoint ranges with unaligned edges and holes between.
fn ranges() -> impl Strategy<Value = Vec<(u64, u64)>> {
    proptest::collection::vec((0u64..40, 1u64..700), 1..4).prop_map(|parts| {
        let mut start = 0;
        parts
            .into_iter()
            .map(|(gap, len)| {
                let s = start + gap;
                start = s + len;
                (s, s + len)
            })
            .collect()
    })
}

fn check_block(model: &Model, pa: PhysAddr, order: u32) -> Result<(), TestCaseError> {
    let pfn = pa.frame();
    prop_assert!(pa.is_page_aligned());
    prop_assert_eq!(pfn % (1 << order), 0, "block not naturally aligned");
    for p in pfn..pfn + (1 << order) {
        prop_assert!(
            model.is_free(p),
            "frame {} handed out twice or unmanaged",
            p
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn buddy_matches_model(spans in ranges(), ops in proptest::collection::vec(op(), 1..200)) {
        let phys: Vec<PhysRange> = spans.iter().map(|&(s, e)| range(s, e - s)).collect();
        let mut buddy = Buddy::new(&phys);
        let mut model = Model { managed: spans.clone(), outstanding: BTreeMap::new() };
        prop_assert_eq!(buddy.total_frames(), model.managed_frames());
        let mut freed: Vec<(u64, u32)> = Vec::new();

        for op in ops {
            match op {
                Op::Alloc(order) => match buddy.alloc(order) {
                    Ok(pa) => {
                        check_block(&model, pa, order)?;
                        model.outstanding.insert(pa.frame(), order);
                    }
                    Err(e) => {
                        prop_assert_eq!(e, FrameError::OutOfFrames);
                        prop_assert!(!model.has_free_block(order),
                            "order {} refused though an aligned free block exists", order);
                    }
                },
                Op::Free(i) if !model.outstanding.is_empty() => {
                    let (&pfn, &order) = model.outstanding.iter().nth(i % model.outstanding.len()).unwrap();
                    prop_assert_eq!(buddy.free(PhysAddr::of_frame(pfn), order), Ok(()));
                    model.outstanding.remove(&pfn);
                    freed.push((pfn, order));
                }
                Op::DoubleFree(i) if !freed.is_empty() => {
                    let (pfn, order) = freed[i % freed.len()];
                    if !model.outstanding.contains_key(&pfn) {
                        let before = buddy.free_frames();
                        prop_assert_eq!(
                            buddy.free(PhysAddr::of_frame(pfn), order),
                            Err(FrameError::NotAllocated(PhysAddr::of_frame(pfn)))
                        );
                        prop_assert_eq!(buddy.free_frames(), before);
                    }
                }
                Op::WildFree(pfn) => {
                    if !model.outstanding.contains_key(&pfn) {
                        prop_assert!(buddy.free(PhysAddr::of_frame(pfn), 0).is_err());
                    }
                }
                Op::Free(_) | Op::DoubleFree(_) => {}
            }
            prop_assert_eq!(buddy.free_frames(), model.managed_frames() - model.used_frames());
        }

        // Every frame returns, and fragmentation coalesces: after freeing
        // everything, every order that had an aligned block at the start has
        // one again.
        for (pfn, order) in core::mem::take(&mut model.outstanding) {
            prop_assert_eq!(buddy.free(PhysAddr::of_frame(pfn), order), Ok(()));
        }
        prop_assert_eq!(buddy.free_frames(), buddy.total_frames());
        for order in 0..=10 {
            if model.has_free_block(order) {
                let pa = buddy.alloc(order);
                prop_assert!(pa.is_ok(), "order {} not coalesced", order);
                if let Ok(pa) = pa {
                    prop_assert_eq!(buddy.free(pa, order), Ok(()));
                }
            }
        }
    }
}

#[test]
fn split_hands_out_ascending_contiguous_frames() {
    let mut buddy = Buddy::new(&[range(0, 1024)]);
    let first = buddy.alloc(0).unwrap().frame();
    for i in 1..512 {
        assert_eq!(buddy.alloc(0).unwrap().frame(), first + i);
    }
}

#[test]
fn full_coalesce_restores_max_block() {
    let frames = 1u64 << MAX_ORDER;
    let mut buddy = Buddy::new(&[range(0, frames)]);
    assert_eq!(buddy.largest_free_order(), Some(MAX_ORDER));
    let blocks: Vec<_> = (0..64).map(|_| buddy.alloc(3).unwrap()).collect();
    assert!(buddy.largest_free_order() < Some(MAX_ORDER));
    for pa in blocks {
        buddy.free(pa, 3).unwrap();
    }
    assert_eq!(buddy.largest_free_order(), Some(MAX_ORDER));
    assert_eq!(buddy.free_frames(), frames);
}

#[test]
fn wrong_order_free_is_refused() {
    let mut buddy = Buddy::new(&[range(16, 64)]);
    let pa = buddy.alloc(2).unwrap();
    assert_eq!(buddy.free(pa, 1), Err(FrameError::NotAllocated(pa)));
    assert_eq!(buddy.free(pa, 2), Ok(()));
}

#[test]
fn exhaustion_and_oversized_orders_are_errors() {
    let mut buddy = Buddy::new(&[range(0, 4)]);
    assert_eq!(
        buddy.alloc(MAX_ORDER + 1),
        Err(FrameError::OrderTooLarge(MAX_ORDER + 1))
    );
    assert_eq!(buddy.alloc(3), Err(FrameError::OutOfFrames));
    assert!(buddy.alloc(2).is_ok());
    assert_eq!(buddy.alloc(0), Err(FrameError::OutOfFrames));
}

#[test]
fn unaligned_and_empty_ranges() {
    let ranges = [
        PhysRange {
            start: PhysAddr(100),
            len: 10 * FRAME,
        },
        PhysRange {
            start: PhysAddr(0x10_0000),
            len: 100,
        },
    ];
    let buddy = Buddy::new(&ranges);
    // [100, 100 + 40960) holds frames 1..=9 whole; the second range none.
    assert_eq!(buddy.total_frames(), 9);
    assert_eq!(Buddy::new(&[]).total_frames(), 0);
}

#[test]
fn order_for_rounds_up() {
    assert_eq!(order_for(0), 0);
    assert_eq!(order_for(1), 0);
    assert_eq!(order_for(2), 1);
    assert_eq!(order_for(3), 2);
    assert_eq!(order_for(512), 9);
    assert_eq!(order_for(513), 10);
}
