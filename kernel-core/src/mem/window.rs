//! Placement of mappings inside the kernel's virtual window.
//!
//! A first-fit allocator over the free ranges of the window, kept in an
//! ordered map from start to length. Adjacent free ranges are always merged
//! (INV-WIN-1), every range handed out is page aligned and lies inside the
//! window (INV-WIN-2), and no address is handed out twice (INV-WIN-3).

use alloc::collections::BTreeMap;
use core::fmt;

use crate::hal::{PAGE_SIZE, VirtRange};

/// Why a window operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowError {
    /// No free range is large enough.
    Exhausted,
    /// Zero length, or a length or alignment that is not page sized.
    BadRequest,
    /// The range freed was not handed out (or overlaps a free range).
    NotAllocated,
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exhausted => "kernel virtual window exhausted",
            Self::BadRequest => "bad window request (zero or unaligned)",
            Self::NotAllocated => "range was not allocated from the window",
        })
    }
}

impl core::error::Error for WindowError {}

/// The free ranges of the window.
pub struct Window {
    bounds: VirtRange,
    free: BTreeMap<usize, usize>,
}

impl Window {
    /// A window with all of `bounds` free (shrunk to whole pages).
    pub fn new(bounds: VirtRange) -> Self {
        let start = bounds.start.next_multiple_of(PAGE_SIZE);
        let end = bounds.end() & !(PAGE_SIZE - 1);
        let mut free = BTreeMap::new();
        if end > start {
            free.insert(start, end - start);
        }
        Self {
            bounds: VirtRange {
                start,
                len: end.saturating_sub(start),
            },
            free,
        }
    }

    /// The whole window.
    pub const fn bounds(&self) -> VirtRange {
        self.bounds
    }

    /// Take `len` bytes aligned to `align` (both multiples of the page size;
    /// `align` a power of two).
    ///
    /// # Errors
    /// [`WindowError::BadRequest`] or [`WindowError::Exhausted`].
    pub fn alloc(&mut self, len: usize, align: usize) -> Result<VirtRange, WindowError> {
        if len == 0
            || !len.is_multiple_of(PAGE_SIZE)
            || !align.is_power_of_two()
            || align < PAGE_SIZE
        {
            return Err(WindowError::BadRequest);
        }
        let (start, flen, at) = self
            .free
            .iter()
            .find_map(|(&s, &l)| {
                let at = s.checked_next_multiple_of(align)?;
                (at.checked_add(len)? <= s + l).then_some((s, l, at))
            })
            .ok_or(WindowError::Exhausted)?;
        self.free.remove(&start);
        if at > start {
            self.free.insert(start, at - start);
        }
        if at + len < start + flen {
            self.free.insert(at + len, start + flen - (at + len));
        }
        Ok(VirtRange { start: at, len })
    }

    /// Return a range handed out by [`Window::alloc`] (or a page-aligned
    /// part of one).
    ///
    /// # Errors
    /// [`WindowError::NotAllocated`] when any of it is free already or
    /// outside the window; nothing changes then.
    pub fn free(&mut self, range: VirtRange) -> Result<(), WindowError> {
        let (mut start, mut end) = (range.start, range.end());
        if range.len == 0
            || !start.is_multiple_of(PAGE_SIZE)
            || !range.len.is_multiple_of(PAGE_SIZE)
            || start < self.bounds.start
            || end > self.bounds.end()
        {
            return Err(WindowError::NotAllocated);
        }
        let prev = self.free.range(..=start).next_back().map(|(&s, &l)| (s, l));
        if prev.is_some_and(|(s, l)| s + l > start) {
            return Err(WindowError::NotAllocated);
        }
        let next = self.free.range(start..).next().map(|(&s, &l)| (s, l));
        if next.is_some_and(|(s, _)| s < end) {
            return Err(WindowError::NotAllocated);
        }
        if let Some((s, _)) = prev.filter(|&(s, l)| s + l == start) {
            self.free.remove(&s);
            start = s;
        }
        if let Some((s, l)) = next.filter(|&(s, _)| s == end) {
            self.free.remove(&s);
            end = s + l;
        }
        self.free.insert(start, end - start);
        Ok(())
    }

    /// Bytes free in all.
    pub fn free_bytes(&self) -> usize {
        self.free.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: usize = PAGE_SIZE;

    fn window() -> Window {
        Window::new(VirtRange {
            start: 0x1000_0000,
            len: 64 * P,
        })
    }

    #[test]
    fn alloc_free_merges_back() {
        let mut w = window();
        let a = w.alloc(4 * P, P).unwrap();
        let b = w.alloc(8 * P, 8 * P).unwrap();
        assert_eq!(b.start % (8 * P), 0);
        assert!(a.end() <= b.start || b.end() <= a.start);
        w.free(a).unwrap();
        w.free(b).unwrap();
        assert_eq!(w.free_bytes(), 64 * P);
        assert_eq!(w.free.len(), 1);
    }

    #[test]
    fn double_free_and_foreign_ranges_are_refused() {
        let mut w = window();
        let a = w.alloc(2 * P, P).unwrap();
        w.free(a).unwrap();
        assert_eq!(w.free(a), Err(WindowError::NotAllocated));
        assert_eq!(
            w.free(VirtRange {
                start: 0x10,
                len: P
            }),
            Err(WindowError::NotAllocated)
        );
    }

    #[test]
    fn exhaustion_and_bad_requests() {
        let mut w = window();
        assert_eq!(w.alloc(0, P), Err(WindowError::BadRequest));
        assert_eq!(w.alloc(P + 1, P), Err(WindowError::BadRequest));
        assert_eq!(w.alloc(65 * P, P), Err(WindowError::Exhausted));
        assert!(w.alloc(64 * P, P).is_ok());
        assert_eq!(w.alloc(P, P), Err(WindowError::Exhausted));
    }
}
