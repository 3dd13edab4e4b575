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

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::MsgSender;
use super::pipe::PipeReader;
use crate::fs::Node;

/// Most descriptors one process holds.
pub const MAX_FDS: usize = 1024;

/// What a descriptor names.
#[derive(Clone, Debug)]
pub(crate) enum FdObject<'k> {
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
    /// The read end of a pipe ([`super::pipe`]).
    PipeRead(Arc<PipeReader<'k>>),
    /// The write end of a pipe.
    PipeWrite(MsgSender<'k>),
}

impl FdObject<'_> {
    /// The node it holds open, if any (INV-FDS-2). A pipe end is held by
    /// the object itself and closes when the last copy is dropped.
    pub(crate) fn node(&self) -> Option<Node> {
        match *self {
            Self::File { node, .. } | Self::Dir { node, .. } => Some(node),
            Self::Stdin | Self::Stdout | Self::Stderr | Self::PipeRead(_) | Self::PipeWrite(_) => {
                None
            }
        }
    }
}

/// One open descriptor.
#[derive(Clone, Debug)]
pub(crate) struct Fd<'k> {
    /// What it names.
    pub(crate) object: FdObject<'k>,
    /// Its WASI `fdflags` (`APPEND`, `NONBLOCK`, ...).
    pub(crate) flags: u16,
}

/// One process's descriptors.
pub(crate) struct FdTable<'k> {
    slots: Vec<Option<Fd<'k>>>,
}

impl<'k> FdTable<'k> {
    /// Standard input, output and error as 0, 1 and 2 (the console, or
    /// `stdio`, each held open once for the table: INV-FDS-2), then
    /// `preopens` from 3 on, preopen `i` at `3 + i` (the caller has
    /// retained each).
    pub(crate) fn new(preopens: &[Node], stdio: Option<[Fd<'k>; 3]>) -> Self {
        let fd = |object| Some(Fd { object, flags: 0 });
        let mut slots: Vec<Option<Fd<'k>>> = match stdio {
            Some(given) => given.into_iter().map(Some).collect(),
            None => vec![
                fd(FdObject::Stdin),
                fd(FdObject::Stdout),
                fd(FdObject::Stderr),
            ],
        };
        slots.extend(preopens.iter().zip(0u16..).map(|(&node, i)| {
            fd(FdObject::Dir {
                node,
                preopen: Some(i),
            })
        }));
        Self { slots }
    }

    /// Descriptor `fd`, if open.
    pub(crate) fn get(&self, fd: u32) -> Option<Fd<'k>> {
        self.slots.get(usize::try_from(fd).ok()?).cloned().flatten()
    }

    /// Descriptor `fd`, if open, to change its flags.
    pub(crate) fn get_mut(&mut self, fd: u32) -> Option<&mut Fd<'k>> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    /// Add `fd` at the lowest free number; that number, or `None` when the
    /// table is full (INV-FDS-1).
    pub(crate) fn insert(&mut self, fd: Fd<'k>) -> Option<u32> {
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
    pub(crate) fn take_all(&mut self) -> Vec<Fd<'k>> {
        core::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }

    /// Close `fd`; what it was, if open.
    pub(crate) fn remove(&mut self, fd: u32) -> Option<Fd<'k>> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.take()
    }

    /// Move `from` to `to` (both open); what `to` was, for its taker to
    /// close (INV-FDS-2), or `None` when either is not open.
    pub(crate) fn renumber(&mut self, from: u32, to: u32) -> Option<Fd<'k>> {
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

    impl Default for FdTable<'_> {
        /// The tmpfs root preopened.
        fn default() -> Self {
            Self::new(&[Node::Tmp(ROOT)], None)
        }
    }

    #[test]
    fn stdio_and_the_preopen_are_open_and_closing_frees_the_number() {
        let mut t = FdTable::default();
        assert!(matches!(t.get(1).map(|f| f.object), Some(FdObject::Stdout)));
        assert!(matches!(
            t.get(3).map(|f| f.object),
            Some(FdObject::Dir {
                node: Node::Tmp(ROOT),
                preopen: Some(0)
            })
        ));
        assert!(t.get(4).is_none());
        assert!(t.get(u32::MAX).is_none());
        assert!(t.remove(1).is_some());
        assert!(t.get(1).is_none());
        assert!(t.remove(1).is_none());
    }

    #[test]
    fn renumber_needs_both_open_and_gives_back_the_target() {
        let mut t = FdTable::default();
        assert!(t.renumber(0, 7).is_none());
        assert!(matches!(
            t.renumber(2, 1).map(|f| f.object),
            Some(FdObject::Stdout)
        ));
        assert!(matches!(t.get(1).map(|f| f.object), Some(FdObject::Stderr)));
        assert!(t.get(2).is_none());
        assert!(t.renumber(2, 1).is_none());
    }

    #[test]
    fn inserts_take_the_lowest_free_number_up_to_the_limit() {
        let mut t = FdTable::default();
        let fd = Fd {
            object: FdObject::Stdout,
            flags: 0,
        };
        assert_eq!(t.insert(fd.clone()), Some(4));
        t.remove(1);
        assert_eq!(t.insert(fd.clone()), Some(1));
        while t.insert(fd.clone()).is_some() {}
        assert_eq!(t.slots.len(), MAX_FDS);
        assert_eq!(t.take_all().len(), MAX_FDS);
        assert!(t.get(0).is_none());
    }
}
