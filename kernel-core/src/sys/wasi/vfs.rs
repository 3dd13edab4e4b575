//! One door to both file systems for the WASI calls: each operation on a
//! [`Node`] goes to the scope's tmpfs, done at once, or to hostfs, where
//! the process waits (its fiber suspended, a kill ending the wait) while
//! the host-files device carries it out.
//!
//! A rename or hard link between the two file systems is
//! [`FsError::CrossDevice`], as between two mounts on any system.

use alloc::vec::Vec;

use super::Fail;
use crate::fs::tmpfs::{Ino, OpenFlags};
use crate::fs::{FileType, FsError, Node, Stat, hostfs};
use crate::hal::{HostHandle, HostOp, HostOpen, HostReply, Platform};
use crate::proc::Context;
use crate::sched::SchedHal;

/// The file systems, as one process sees them.
pub(super) struct Vfs<'c, 'k, 'h, P: Platform + SchedHal> {
    ctx: &'c Context<'k, 'h, P>,
}

/// How [`Vfs::open`] opens.
#[derive(Clone, Copy, Debug)]
pub(super) struct Open {
    /// Where and whether to create, truncate, follow.
    pub(super) flags: OpenFlags,
    /// For reading.
    pub(super) read: bool,
    /// For writing.
    pub(super) write: bool,
}

/// A reply that is not the one the request asks for: the device broke
/// its contract, and the call fails without trusting it.
fn unexpected<T>() -> Result<T, Fail> {
    Err(FsError::Io.into())
}

impl<'c, 'k, 'h, P: Platform + SchedHal> Vfs<'c, 'k, 'h, P> {
    pub(super) fn new(ctx: &'c Context<'k, 'h, P>) -> Self {
        Self { ctx }
    }

    /// Wall-clock time in ns for tmpfs timestamps (0 without a clock).
    fn now(&self) -> u64 {
        self.ctx.kernel().wall_ns()
    }

    /// Carry `op` out on the host, waiting for it.
    fn host(&self, op: HostOp) -> Result<HostReply, Fail> {
        let hal = self.ctx.kernel().hal();
        Ok(self.ctx.block(hostfs::call(hal, op))??)
    }

    fn host_done(&self, op: HostOp) -> Result<(), Fail> {
        match self.host(op)? {
            HostReply::Done => Ok(()),
            _ => unexpected(),
        }
    }

    /// Two directories of the same file system, or `CrossDevice`.
    fn pair(a: Node, b: Node) -> Result<Pair, Fail> {
        match (a, b) {
            (Node::Tmp(a), Node::Tmp(b)) => Ok(Pair::Tmp(a, b)),
            (Node::Host(a), Node::Host(b)) => Ok(Pair::Host(a, b)),
            _ => Err(FsError::CrossDevice.into()),
        }
    }

    /// Open `path` from directory `dir`: the new node (held once for the
    /// caller) and what it is.
    pub(super) fn open(&self, dir: Node, path: &[u8], how: Open) -> Result<(Node, FileType), Fail> {
        match dir {
            Node::Tmp(d) => {
                let fs = self.ctx.fs();
                let ino = fs.open(d, path, how.flags, self.now())?;
                match fs.stat(ino) {
                    Ok(s) => Ok((Node::Tmp(ino), s.filetype)),
                    Err(e) => {
                        fs.close(ino);
                        Err(e.into())
                    }
                }
            }
            Node::Host(d) => {
                let f = how.flags;
                let op = HostOp::Open {
                    dir: d,
                    path: path.to_vec(),
                    how: HostOpen {
                        create: f.create,
                        exclusive: f.exclusive,
                        truncate: f.truncate,
                        directory: f.directory,
                        follow: f.follow,
                        read: how.read,
                        write: how.write,
                    },
                };
                match self.host(op)? {
                    HostReply::Opened(h, t) => Ok((Node::Host(h), t)),
                    _ => unexpected(),
                }
            }
        }
    }

    /// Read up to `len` bytes of `file` at `offset`.
    pub(super) fn read(&self, file: Node, offset: u64, len: usize) -> Result<Vec<u8>, Fail> {
        match file {
            Node::Tmp(ino) => {
                let mut buf = alloc::vec![0u8; len];
                let n = self.ctx.fs().read(ino, offset, &mut buf, self.now())?;
                buf.truncate(n);
                Ok(buf)
            }
            Node::Host(h) => match self.host(HostOp::Read {
                file: h,
                offset,
                len,
            })? {
                HostReply::Data(d) if d.len() <= len => Ok(d),
                _ => unexpected(),
            },
        }
    }

    /// Write `data` to `file` at `offset`: bytes written.
    pub(super) fn write(&self, file: Node, offset: u64, data: Vec<u8>) -> Result<usize, Fail> {
        match file {
            Node::Tmp(ino) => Ok(self.ctx.fs().write(ino, offset, &data, self.now())?),
            Node::Host(h) => {
                let len = data.len();
                match self.host(HostOp::Write {
                    file: h,
                    offset,
                    data,
                })? {
                    HostReply::Count(n) if n <= len => Ok(n),
                    _ => unexpected(),
                }
            }
        }
    }

    fn host_stat(&self, op: HostOp) -> Result<Stat, Fail> {
        match self.host(op)? {
            HostReply::Stat(s) => Ok(s),
            _ => unexpected(),
        }
    }

    /// What `node` is.
    pub(super) fn stat(&self, node: Node) -> Result<Stat, Fail> {
        match node {
            Node::Tmp(ino) => Ok(self.ctx.fs().stat(ino)?),
            Node::Host(h) => self.host_stat(HostOp::Stat { node: h }),
        }
    }

    /// What `path` from `dir` names.
    pub(super) fn stat_path(&self, dir: Node, path: &[u8], follow: bool) -> Result<Stat, Fail> {
        match dir {
            Node::Tmp(d) => Ok(self.ctx.fs().stat_path(d, path, follow)?),
            Node::Host(h) => self.host_stat(HostOp::StatPath {
                dir: h,
                path: path.to_vec(),
                follow,
            }),
        }
    }

    /// Set `node`'s access and modification times (`None` leaves one).
    pub(super) fn set_times(
        &self,
        node: Node,
        atime: Option<u64>,
        mtime: Option<u64>,
    ) -> Result<(), Fail> {
        match node {
            Node::Tmp(ino) => Ok(self.ctx.fs().set_times(ino, atime, mtime, self.now())?),
            Node::Host(h) => self.host_done(HostOp::SetTimes {
                node: h,
                atime,
                mtime,
            }),
        }
    }

    /// [`Vfs::set_times`] of what `path` from `dir` names.
    pub(super) fn set_times_path(
        &self,
        dir: Node,
        (path, follow): (&[u8], bool),
        atime: Option<u64>,
        mtime: Option<u64>,
    ) -> Result<(), Fail> {
        match dir {
            Node::Tmp(d) => {
                let fs = self.ctx.fs();
                let ino = fs.lookup(d, path, follow)?;
                Ok(fs.set_times(ino, atime, mtime, self.now())?)
            }
            Node::Host(h) => self.host_done(HostOp::SetTimesPath {
                dir: h,
                path: path.to_vec(),
                follow,
                atime,
                mtime,
            }),
        }
    }

    /// Set `file`'s size.
    pub(super) fn truncate(&self, file: Node, size: u64) -> Result<(), Fail> {
        match file {
            Node::Tmp(ino) => Ok(self.ctx.fs().truncate(ino, size, self.now())?),
            Node::Host(h) => self.host_done(HostOp::Truncate { file: h, size }),
        }
    }

    /// The entries of directory `dir`, `.` and `..` first, in an order
    /// that stays the same while it is unchanged.
    pub(super) fn read_dir(&self, dir: Node) -> Result<Vec<(Vec<u8>, u64, FileType)>, Fail> {
        match dir {
            Node::Tmp(ino) => Ok(self.ctx.fs().read_dir(ino)?),
            Node::Host(h) => match self.host(HostOp::ReadDir { dir: h })? {
                HostReply::Entries(e) => {
                    Ok(e.into_iter().map(|e| (e.name, e.ino, e.filetype)).collect())
                }
                _ => unexpected(),
            },
        }
    }

    /// Make directory `path` in `dir`.
    pub(super) fn mkdir(&self, dir: Node, path: &[u8]) -> Result<(), Fail> {
        match dir {
            Node::Tmp(d) => Ok(self.ctx.fs().mkdir(d, path, self.now())?),
            Node::Host(h) => self.host_done(HostOp::Mkdir {
                dir: h,
                path: path.to_vec(),
            }),
        }
    }

    /// Make symbolic link `path` in `dir` to `target`.
    pub(super) fn symlink(&self, target: &[u8], dir: Node, path: &[u8]) -> Result<(), Fail> {
        match dir {
            Node::Tmp(d) => Ok(self.ctx.fs().symlink(target, d, path, self.now())?),
            Node::Host(h) => self.host_done(HostOp::Symlink {
                target: target.to_vec(),
                dir: h,
                path: path.to_vec(),
            }),
        }
    }

    /// The target of symbolic link `path` in `dir`.
    pub(super) fn readlink(&self, dir: Node, path: &[u8]) -> Result<Vec<u8>, Fail> {
        match dir {
            Node::Tmp(d) => Ok(self.ctx.fs().readlink(d, path)?),
            Node::Host(h) => match self.host(HostOp::Readlink {
                dir: h,
                path: path.to_vec(),
            })? {
                HostReply::Data(t) => Ok(t),
                _ => unexpected(),
            },
        }
    }

    /// Hard link `new` in `to` to what `old` in `from` names (a symbolic
    /// link itself, not followed).
    pub(super) fn link(&self, from: Node, old: &[u8], to: Node, new: &[u8]) -> Result<(), Fail> {
        match Self::pair(from, to)? {
            Pair::Tmp(a, b) => Ok(self.ctx.fs().link(a, old, false, b, new, self.now())?),
            Pair::Host(a, b) => self.host_done(HostOp::Link {
                from: a,
                old: old.to_vec(),
                to: b,
                new: new.to_vec(),
            }),
        }
    }

    /// Remove `path` in `dir`: a directory only if `directory`, else
    /// anything but one.
    pub(super) fn remove(&self, dir: Node, path: &[u8], directory: bool) -> Result<(), Fail> {
        match dir {
            Node::Tmp(d) => Ok(self.ctx.fs().remove(d, path, directory, self.now())?),
            Node::Host(h) => self.host_done(HostOp::Remove {
                dir: h,
                path: path.to_vec(),
                directory,
            }),
        }
    }

    /// Rename `old` in `from` to `new` in `to`.
    pub(super) fn rename(&self, from: Node, old: &[u8], to: Node, new: &[u8]) -> Result<(), Fail> {
        match Self::pair(from, to)? {
            Pair::Tmp(a, b) => Ok(self.ctx.fs().rename(a, old, b, new, self.now())?),
            Pair::Host(a, b) => self.host_done(HostOp::Rename {
                from: a,
                old: old.to_vec(),
                to: b,
                new: new.to_vec(),
            }),
        }
    }

    /// Write `node`'s data through to its storage (the tmpfs has none).
    pub(super) fn sync(&self, node: Node) -> Result<(), Fail> {
        match node {
            Node::Tmp(_) => Ok(()),
            Node::Host(h) => self.host_done(HostOp::Sync { node: h }),
        }
    }
}

/// Two directories of one file system.
enum Pair {
    Tmp(Ino, Ino),
    Host(HostHandle, HostHandle),
}
