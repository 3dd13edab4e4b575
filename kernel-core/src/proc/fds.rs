//! Per-process file descriptors (WASI): what each descriptor names and its
//! flags. A process starts with standard input, output and error as
//! descriptors 0, 1 and 2, on the console.
//!
//! Invariant INV-FDS-1: a table holds at most [`MAX_FDS`] descriptors; a
//! closed descriptor's number is free for the next open or renumber.

use alloc::vec;
use alloc::vec::Vec;

/// Most descriptors one process holds.
pub const MAX_FDS: usize = 1024;

/// What a descriptor names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FdObject {
    /// The console's input.
    Stdin,
    /// The console's output.
    Stdout,
    /// The console's error output.
    Stderr,
}

/// One open descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fd {
    /// What it names.
    pub(crate) object: FdObject,
    /// Its WASI `fdflags` (`APPEND`, `NONBLOCK`, ...).
    pub(crate) flags: u16,
}

/// One process's descriptors.
pub(crate) struct FdTable {
    slots: Vec<Option<Fd>>,
}

impl Default for FdTable {
    /// Standard input, output and error as 0, 1 and 2.
    fn default() -> Self {
        let fd = |object| Some(Fd { object, flags: 0 });
        Self {
            slots: vec![
                fd(FdObject::Stdin),
                fd(FdObject::Stdout),
                fd(FdObject::Stderr),
            ],
        }
    }
}

impl FdTable {
    /// Descriptor `fd`, if open.
    pub(crate) fn get(&self, fd: u32) -> Option<Fd> {
        self.slots.get(usize::try_from(fd).ok()?).copied().flatten()
    }

    /// Descriptor `fd`, if open, to change its flags.
    pub(crate) fn get_mut(&mut self, fd: u32) -> Option<&mut Fd> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    /// Close `fd`; what it was, if open.
    pub(crate) fn remove(&mut self, fd: u32) -> Option<Fd> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.take()
    }

    /// Move `from` to `to` (both open), closing what `to` was.
    pub(crate) fn renumber(&mut self, from: u32, to: u32) -> bool {
        if self.get(to).is_none() {
            return false;
        }
        match self.remove(from) {
            Some(fd) => {
                if let Some(slot) = usize::try_from(to).ok().and_then(|i| self.slots.get_mut(i)) {
                    *slot = Some(fd);
                }
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdio_is_open_and_closing_frees_the_number() {
        let mut t = FdTable::default();
        assert_eq!(t.get(1).map(|f| f.object), Some(FdObject::Stdout));
        assert_eq!(t.get(3), None);
        assert_eq!(t.get(u32::MAX), None);
        assert!(t.remove(1).is_some());
        assert_eq!(t.get(1), None);
        assert!(t.remove(1).is_none());
    }

    #[test]
    fn renumber_needs_both_open_and_closes_the_target() {
        let mut t = FdTable::default();
        assert!(!t.renumber(0, 7));
        assert!(t.renumber(2, 1));
        assert_eq!(t.get(1).map(|f| f.object), Some(FdObject::Stderr));
        assert_eq!(t.get(2), None);
        assert!(!t.renumber(2, 1));
    }
}
