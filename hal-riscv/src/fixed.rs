//! A fixed-capacity vector for the boot path, which runs before the heap
//! exists (device-tree extraction, the memory map, the hart table).
//!
//! INV-FIXED-1: `items[..len]` are the elements; `len <= N` always.

use core::ops::{Deref, DerefMut};

/// Up to `N` copies of `T`, stored inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedVec<T: Copy, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy, const N: usize> FixedVec<T, N> {
    /// An empty vector; `fill` only initialises the unused slots.
    pub const fn new(fill: T) -> Self {
        Self {
            items: [fill; N],
            len: 0,
        }
    }

    /// Append `item`; gives it back when the vector is full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = item;
                self.len += 1;
                Ok(())
            }
            None => Err(item),
        }
    }

    /// Insert `item` at `index` (clamped to the length), shifting the rest
    /// up; gives it back when the vector is full.
    pub fn insert(&mut self, index: usize, item: T) -> Result<(), T> {
        if self.len == N {
            return Err(item);
        }
        let index = index.min(self.len);
        self.items.copy_within(index..self.len, index + 1);
        self.items[index] = item;
        self.len += 1;
        Ok(())
    }
}

impl<T: Copy, const N: usize> Deref for FixedVec<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // INV-FIXED-1: `len <= N`, so the slice is in bounds.
        &self.items[..self.len]
    }
}

impl<T: Copy, const N: usize> DerefMut for FixedVec<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        // INV-FIXED-1: `len <= N`, so the slice is in bounds.
        &mut self.items[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::FixedVec;

    #[test]
    fn push_until_full_then_refuse() {
        let mut v = FixedVec::<u32, 2>::new(0);
        assert_eq!(v.push(1), Ok(()));
        assert_eq!(v.push(2), Ok(()));
        assert_eq!(v.push(3), Err(3));
        assert_eq!(&*v, &[1, 2]);
    }

    #[test]
    fn insert_shifts_and_clamps() {
        let mut v = FixedVec::<u32, 4>::new(0);
        v.push(1).unwrap();
        v.push(3).unwrap();
        v.insert(1, 2).unwrap();
        v.insert(99, 4).unwrap();
        assert_eq!(&*v, &[1, 2, 3, 4]);
        assert_eq!(v.insert(0, 0), Err(0));
    }
}
