//! Per-process file descriptors (WASI): what each descriptor names and its
//! flags. A process starts with standard input, output and error as
//! descriptors 0, 1 and 2, on the console, then its preopened directories
//! from 3 on: the root of its scope's tmpfs as `/` and its mounts
//! ([`super::Mount`]).
//!
//! Invariant INV-FDS-1: a table holds at most [`MAX_FDS`] descriptors; a
//! closed descriptor's number is free for the next open or renumber.
//! Invariant INV-FDS-2: each descriptor naming a file-system node holds it
//! open once (a tmpfs inode through [`crate::fs::tmpfs::Tmpfs::retain`], a
//! host handle through [`crate::hal::HostFiles::host_retain`]); whoever
//! takes a descriptor out of the table closes it.

use alloc::vec;
use alloc::vec::Vec;

use crate::fs::Node;

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
    /// A regular file (or any other non-directory), at `offset`.
    File {
        /// Its node.
        node: Node,
        /// Where the next read or write starts.
        offset: u64,
        /// Opened for reading.
        read: bool,
        /// Opened for writing.
        write: bool,
    },
    /// A directory.
    Dir {
        /// Its node.
        node: Node,
        /// It was preopened: its name is the process's preopen of this
        /// number.
        preopen: Option<u16>,
    },
}

impl FdObject {
    /// The node it holds open, if any (INV-FDS-2).
    pub(crate) fn node(self) -> Option<Node> {
        match self {
            Self::File { node, .. } | Self::Dir { node, .. } => Some(node),
            Self::Stdin | Self::Stdout | Self::Stderr => None,
        }
    }
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

impl FdTable {
    /// Standard input, output and error as 0, 1 and 2, then `preopens`
    /// from 3 on, preopen `i` at `3 + i` (the caller has retained each:
    /// INV-FDS-2).
    pub(crate) fn new(preopens: &[Node]) -> Self {
        let fd = |object| Some(Fd { object, flags: 0 });
        let mut slots = vec![
            fd(FdObject::Stdin),
            fd(FdObject::Stdout),
            fd(FdObject::Stderr),
        ];
        slots.extend(preopens.iter().zip(0u16..).map(|(&node, i)| {
            fd(FdObject::Dir {
                node,
                preopen: Some(i),
            })
        }));
        Self { slots }
    }

    /// Descriptor `fd`, if open.
    pub(crate) fn get(&self, fd: u32) -> Option<Fd> {
        self.slots.get(usize::try_from(fd).ok()?).copied().flatten()
    }

    /// Descriptor `fd`, if open, to change its flags.
    pub(crate) fn get_mut(&mut self, fd: u32) -> Option<&mut Fd> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    /// Add `fd` at the lowest free number; that number, or `None` when the
    /// table is full (INV-FDS-1).
    pub(crate) fn insert(&mut self, fd: Fd) -> Option<u32> {
        let index = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.slots.len() < MAX_FDS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return None,
        };
        self.slots[index] = Some(fd);
        u32::try_from(index).ok()
    }

    /// Take every descriptor out (the process ends).
    pub(crate) fn take_all(&mut self) -> Vec<Fd> {
        core::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }

    /// Close `fd`; what it was, if open.
    pub(crate) fn remove(&mut self, fd: u32) -> Option<Fd> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.take()
    }

    /// Move `from` to `to` (both open); what `to` was, for its taker to
    /// close (INV-FDS-2), or `None` when either is not open.
    pub(crate) fn renumber(&mut self, from: u32, to: u32) -> Option<Fd> {
        self.get(from)?;
        let old = self.get(to)?;
        if from == to {
            return None;
        }
        let fd = self.remove(from)?;
        let slot = usize::try_from(to)
            .ok()
            .and_then(|i| self.slots.get_mut(i))?;
        *slot = Some(fd);
        Some(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tmpfs::ROOT;

    impl Default for FdTable {
        /// The tmpfs root preopened.
        fn default() -> Self {
            Self::new(&[Node::Tmp(ROOT)])
        }
    }

    #[test]
    fn stdio_and_the_preopen_are_open_and_closing_frees_the_number() {
        let mut t = FdTable::default();
        assert_eq!(t.get(1).map(|f| f.object), Some(FdObject::Stdout));
        assert_eq!(
            t.get(3).map(|f| f.object),
            Some(FdObject::Dir {
                node: Node::Tmp(ROOT),
                preopen: Some(0)
            })
        );
        assert_eq!(t.get(4), None);
        assert_eq!(t.get(u32::MAX), None);
        assert!(t.remove(1).is_some());
        assert_eq!(t.get(1), None);
        assert!(t.remove(1).is_none());
    }

    #[test]
    fn renumber_needs_both_open_and_gives_back_the_target() {
        let mut t = FdTable::default();
        assert_eq!(t.renumber(0, 7), None);
        assert_eq!(t.renumber(2, 1).map(|f| f.object), Some(FdObject::Stdout));
        assert_eq!(t.get(1).map(|f| f.object), Some(FdObject::Stderr));
        assert_eq!(t.get(2), None);
        assert_eq!(t.renumber(2, 1), None);
    }

    #[test]
    fn inserts_take_the_lowest_free_number_up_to_the_limit() {
        let mut t = FdTable::default();
        let fd = Fd {
            object: FdObject::Stdout,
            flags: 0,
        };
        assert_eq!(t.insert(fd), Some(4));
        t.remove(1);
        assert_eq!(t.insert(fd), Some(1));
        while t.insert(fd).is_some() {}
        assert_eq!(t.slots.len(), MAX_FDS);
        assert_eq!(t.take_all().len(), MAX_FDS);
        assert_eq!(t.get(0), None);
    }
}
