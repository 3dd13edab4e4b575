//! Placement of virtual ranges inside the kernel's window: a gap tracker
//! with randomized (ASLR) or fixed placement.
//!
//! The free ranges ("gaps") of the window are kept twice: in `by_addr`, an
//! ordered map from start to length, and in `by_size`, an ordered set of
//! `(length, start)`. Why two B-trees rather than one augmented tree: the
//! standard `BTreeMap` is already balanced and allocation-light, and the two
//! questions the allocator asks are each one ordered lookup in one of them:
//! "the smallest gap of at least `n` bytes" is `by_size.range((n, 0)..)`
//! (O(log n)), and "the gaps next to this address" (for fixed placement and
//! for merging on free) is `by_addr.range(..=a)` (O(log n)). An augmented
//! tree would answer both with one structure but needs a hand-written
//! balanced tree; the price here is a second node per gap.
//!
//! Placement:
//! - [`Placement::Random`]: the smallest gap that fits the request even at
//!   worst alignment (best fit keeps large gaps for large requests), then a
//!   random aligned offset inside its first [`ASLR_SPAN`] bytes of slack.
//!   The randomness comes from a [`Rng`] seeded from the HAL's entropy.
//! - [`Placement::BestFit`]: the same gap, offset zero (deterministic).
//! - [`Placement::Fixed`]: exactly at the given address, if it is free.
//!
//! Invariants:
//! - INV-GAP-1: `by_addr` and `by_size` hold the same gaps; gaps never
//!   overlap or touch (adjacent gaps are merged at once).
//! - INV-GAP-2: every gap and every range handed out is page aligned and lies
//!   inside the bounds.
//! - INV-GAP-3: no byte is handed out twice: a range handed out lies in no
//!   gap until it is freed.

use alloc::collections::{BTreeMap, BTreeSet};
use core::fmt;

use crate::hal::{PAGE_SIZE, VirtRange};

/// How far into a gap's slack random placement may move a range: 256 MiB,
/// 16 bits of page-granular entropy, without scattering small ranges over
/// the whole window (which would cost page tables on riscv).
pub const ASLR_SPAN: usize = 256 << 20;

/// Why a placement failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapError {
    /// No gap is large enough (or the fixed address is not free).
    Exhausted,
    /// Zero length, or a length, address or alignment that is not page
    /// sized (alignment must be a power of two).
    BadRequest,
    /// The range freed was not handed out.
    NotAllocated,
}

impl fmt::Display for GapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exhausted => "no free virtual range fits",
            Self::BadRequest => "bad virtual range request (zero or unaligned)",
            Self::NotAllocated => "range was not allocated",
        })
    }
}

impl core::error::Error for GapError {}

/// Where to place a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Randomized inside the best-fitting gap (ASLR).
    Random,
    /// The start of the best-fitting gap (deterministic).
    BestFit,
    /// Exactly at this address (the start of the outer range, guards
    /// included).
    Fixed(usize),
}

/// A small, fast PRNG (SplitMix64). Not cryptographic: it only spreads
/// placements; the seed comes from `Power::entropy_seed`.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub const fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The free ranges of the window.
pub struct Gaps {
    bounds: VirtRange,
    by_addr: BTreeMap<usize, usize>,
    by_size: BTreeSet<(usize, usize)>,
}

impl Gaps {
    /// All of `bounds` free (shrunk to whole pages).
    pub fn new(bounds: VirtRange) -> Self {
        let start = bounds.start.next_multiple_of(PAGE_SIZE);
        let end = bounds.end() & !(PAGE_SIZE - 1);
        let mut gaps = Self {
            bounds: VirtRange {
                start,
                len: end.saturating_sub(start),
            },
            by_addr: BTreeMap::new(),
            by_size: BTreeSet::new(),
        };
        if end > start {
            gaps.insert(start, end - start);
        }
        gaps
    }

    /// The whole managed range.
    pub const fn bounds(&self) -> VirtRange {
        self.bounds
    }

    /// Bytes free in all.
    pub fn free_bytes(&self) -> usize {
        self.by_addr.values().sum()
    }

    /// Number of gaps.
    pub fn gap_count(&self) -> usize {
        self.by_addr.len()
    }

    fn insert(&mut self, start: usize, len: usize) {
        self.by_addr.insert(start, len);
        self.by_size.insert((len, start));
    }

    fn remove(&mut self, start: usize, len: usize) {
        self.by_addr.remove(&start);
        self.by_size.remove(&(len, start));
    }

    /// Take `len` bytes aligned to `align` (both page multiples, `align` a
    /// power of two) placed as `placement` says.
    ///
    /// # Errors
    /// [`GapError::BadRequest`] or [`GapError::Exhausted`]; nothing changes
    /// then.
    pub fn alloc(
        &mut self,
        len: usize,
        align: usize,
        placement: Placement,
        rng: &mut Rng,
    ) -> Result<VirtRange, GapError> {
        if len == 0
            || !len.is_multiple_of(PAGE_SIZE)
            || !align.is_power_of_two()
            || align < PAGE_SIZE
        {
            return Err(GapError::BadRequest);
        }
        let (gstart, glen, at) = match placement {
            Placement::Fixed(at) => {
                if !at.is_multiple_of(align) {
                    return Err(GapError::BadRequest);
                }
                let (&s, &l) = self
                    .by_addr
                    .range(..=at)
                    .next_back()
                    .ok_or(GapError::Exhausted)?;
                let end = at.checked_add(len).ok_or(GapError::Exhausted)?;
                if end > s + l {
                    return Err(GapError::Exhausted);
                }
                (s, l, at)
            }
            Placement::Random | Placement::BestFit => {
                let (s, l) = self.best_fit(len, align).ok_or(GapError::Exhausted)?;
                let first = s.next_multiple_of(align);
                let slack = (s + l - first - len).min(ASLR_SPAN);
                let offset = if placement == Placement::Random {
                    let slots = (slack / align) as u64 + 1;
                    (rng.next_u64() % slots) as usize * align
                } else {
                    0
                };
                (s, l, first + offset)
            }
        };
        self.remove(gstart, glen);
        if at > gstart {
            self.insert(gstart, at - gstart);
        }
        if at + len < gstart + glen {
            self.insert(at + len, gstart + glen - (at + len));
        }
        Ok(VirtRange { start: at, len })
    }

    /// The smallest gap that holds `len` bytes at alignment `align`. One
    /// O(log n) lookup for a size that fits at any alignment; if none does,
    /// the gaps between `len` and that size are scanned (only those can
    /// still fit when their start happens to be aligned).
    fn best_fit(&self, len: usize, align: usize) -> Option<(usize, usize)> {
        let fits = |&(l, s): &(usize, usize)| {
            let first = s.checked_next_multiple_of(align)?;
            (first.checked_add(len)? <= s + l).then_some((s, l))
        };
        let worst = len.checked_add(align - PAGE_SIZE)?;
        if let Some(g) = self.by_size.range((worst, 0)..).next() {
            return Some((g.1, g.0));
        }
        self.by_size.range((len, 0)..).find_map(fits)
    }

    /// Return a range handed out by [`Gaps::alloc`] (or a page-aligned part
    /// of one), merging it with its neighbours (INV-GAP-1).
    ///
    /// # Errors
    /// [`GapError::NotAllocated`] when any of it is free already or outside
    /// the bounds; nothing changes then.
    pub fn free(&mut self, range: VirtRange) -> Result<(), GapError> {
        let (mut start, mut end) = (range.start, range.end());
        if range.len == 0
            || !start.is_multiple_of(PAGE_SIZE)
            || !range.len.is_multiple_of(PAGE_SIZE)
            || start < self.bounds.start
            || end > self.bounds.end()
        {
            return Err(GapError::NotAllocated);
        }
        let prev = self
            .by_addr
            .range(..=start)
            .next_back()
            .map(|(&s, &l)| (s, l));
        if prev.is_some_and(|(s, l)| s + l > start) {
            return Err(GapError::NotAllocated);
        }
        let next = self.by_addr.range(start..).next().map(|(&s, &l)| (s, l));
        if next.is_some_and(|(s, _)| s < end) {
            return Err(GapError::NotAllocated);
        }
        if let Some((s, l)) = prev.filter(|&(s, l)| s + l == start) {
            self.remove(s, l);
            start = s;
        }
        if let Some((s, l)) = next.filter(|&(s, _)| s == end) {
            self.remove(s, l);
            end = s + l;
        }
        self.insert(start, end - start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

    const P: usize = PAGE_SIZE;
    const BASE: usize = 0x1000_0000;

    fn gaps(pages: usize) -> Gaps {
        Gaps::new(VirtRange {
            start: BASE,
            len: pages * P,
        })
    }

    fn consistent(g: &Gaps) {
        assert_eq!(g.by_addr.len(), g.by_size.len());
        let mut last_end = 0;
        for (&s, &l) in &g.by_addr {
            assert!(g.by_size.contains(&(l, s)));
            assert!(s > last_end || last_end == 0, "INV-GAP-1: touching gaps");
            assert!(s.is_multiple_of(P) && l.is_multiple_of(P) && l > 0);
            last_end = s + l;
        }
    }

    #[test]
    fn fixed_placement_and_merge_back() {
        let mut g = gaps(64);
        let mut rng = Rng::new(1);
        let a = g
            .alloc(4 * P, P, Placement::Fixed(BASE + 8 * P), &mut rng)
            .unwrap();
        assert_eq!(a.start, BASE + 8 * P);
        assert_eq!(
            g.alloc(P, P, Placement::Fixed(BASE + 9 * P), &mut rng),
            Err(GapError::Exhausted)
        );
        g.free(a).unwrap();
        assert_eq!(g.gap_count(), 1);
        assert_eq!(g.free(a), Err(GapError::NotAllocated));
        consistent(&g);
    }

    #[test]
    fn random_placement_varies_and_stays_aligned() {
        let mut g = gaps(1 << 20);
        let mut rng = Rng::new(42);
        let starts: Vec<usize> = (0..8)
            .map(|_| {
                let r = g
                    .alloc(16 * P, 16 * P, Placement::Random, &mut rng)
                    .unwrap();
                assert!(r.start.is_multiple_of(16 * P));
                r.start
            })
            .collect();
        let mut sorted = starts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), starts.len());
        assert!(starts.iter().any(|&s| s != BASE), "no randomness");
        consistent(&g);
    }

    #[test]
    fn bad_requests_and_exhaustion() {
        let mut g = gaps(8);
        let mut rng = Rng::new(3);
        assert_eq!(
            g.alloc(0, P, Placement::BestFit, &mut rng),
            Err(GapError::BadRequest)
        );
        assert_eq!(
            g.alloc(P, 3 * P, Placement::BestFit, &mut rng),
            Err(GapError::BadRequest)
        );
        assert_eq!(
            g.alloc(9 * P, P, Placement::BestFit, &mut rng),
            Err(GapError::Exhausted)
        );
        assert!(g.alloc(8 * P, P, Placement::Random, &mut rng).is_ok());
        assert_eq!(g.free_bytes(), 0);
    }

    proptest! {
        /// INV-GAP-1..3 against a page bitmap.
        #[test]
        fn gaps_match_a_bitmap(ops in proptest::collection::vec((0u8..3, 1usize..9, 0usize..64), 1..80)) {
            let mut g = gaps(64);
            let mut rng = Rng::new(7);
            let mut used = [false; 64];
            let mut live: Vec<VirtRange> = Vec::new();
            for (op, n, at) in ops {
                match op {
                    0 | 1 => {
                        let placement = if op == 0 { Placement::Random } else { Placement::Fixed(BASE + at * P) };
                        if let Ok(r) = g.alloc(n * P, P, placement, &mut rng) {
                            let first = (r.start - BASE) / P;
                            for u in &mut used[first..first + n] {
                                prop_assert!(!*u, "INV-GAP-3: handed out twice");
                                *u = true;
                            }
                            live.push(r);
                        }
                    }
                    _ => {
                        if !live.is_empty() {
                            let r = live.swap_remove(at % live.len());
                            g.free(r).unwrap();
                            let first = (r.start - BASE) / P;
                            used[first..first + r.len / P].fill(false);
                        }
                    }
                }
                consistent(&g);
                let free = used.iter().filter(|u| !**u).count() * P;
                prop_assert_eq!(g.free_bytes(), free);
            }
        }
    }
}
