//! tmpfs: a file system in kernel memory: directories, regular files and
//! symbolic links in a table of inodes, with path resolution confined to a
//! starting directory (WASI's preopens).
//!
//! Paths are byte strings of `/`-separated components, relative to the
//! directory they are resolved from. A path never leaves that directory's
//! subtree: an absolute path, a `..` above it, or a symbolic link whose
//! target would do either is [`FsError::NotCapable`]. Links are followed
//! at most [`MAX_LINKS`] deep ([`FsError::Loop`] past it). A trailing `/`
//! asks for a directory.
//!
//! Invariants:
//! - INV-TMPFS-1: every directory's entries name live inodes; a directory's
//!   `parent` is the directory holding its entry (the root's is itself).
//! - INV-TMPFS-2: an inode is freed when no entry names it (`nlink == 0`)
//!   and no open descriptor holds it (`open == 0`), and not before; an open
//!   file that was unlinked stays readable and writable.
//! - INV-TMPFS-3: the bytes all files hold (their data, not their holes:
//!   `filedata` INV-FILEDATA-3) and all link targets never exceed the
//!   capacity; a write that would pass it is [`FsError::NoSpace`] and
//!   changes nothing. Growing a file by truncating it makes a hole, which
//!   holds nothing.
//! - INV-TMPFS-4: directory entries never exceed the entry budget (the
//!   capacity over [`ENTRY_COST`], at least [`MIN_ENTRIES`]), so names,
//!   inodes and empty files, which hold no data bytes, are bounded too; a
//!   new entry past it is [`FsError::NoSpace`].

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::filedata::FileData;
use super::{FileType, FsError, Stat};

/// An inode number.
pub type Ino = u64;

/// Symbolic links followed in one resolution before [`FsError::Loop`].
pub const MAX_LINKS: usize = 40;
/// Longest name of one entry, in bytes.
pub const MAX_NAME: usize = 255;
/// Longest path resolved, in bytes.
pub const MAX_PATH: usize = 4096;

/// The root directory's inode.
pub const ROOT: Ino = 1;

/// Kernel memory one directory entry may take (its name, its map node
/// and an inode): what the entry budget is counted in.
pub const ENTRY_COST: u64 = 512;
/// The fewest entries any tmpfs may hold.
pub const MIN_ENTRIES: u64 = 1024;

enum Node {
    Dir {
        entries: BTreeMap<Vec<u8>, Ino>,
        parent: Ino,
    },
    File(FileData),
    Symlink(Vec<u8>),
}

struct Inode {
    node: Node,
    /// Entries naming it (a directory: 1 while it is in its parent).
    nlink: u64,
    /// Open descriptors holding it.
    open: u64,
    /// Access, modification and status-change times, ns since the epoch.
    times: [u64; 3],
}

/// How [`Tmpfs::open`] opens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Create a regular file if none is there.
    pub create: bool,
    /// With `create`: fail if something is there.
    pub exclusive: bool,
    /// Truncate a regular file to 0.
    pub truncate: bool,
    /// Fail unless it is a directory.
    pub directory: bool,
    /// Follow a symbolic link at the last component.
    pub follow: bool,
}

/// The state behind the lock.
struct Inner {
    nodes: BTreeMap<Ino, Inode>,
    next: Ino,
    /// Bytes of file data and link targets.
    bytes: u64,
    /// Directory entries (INV-TMPFS-4).
    entries: u64,
}

/// A tmpfs of at most `capacity` bytes of data.
pub struct Tmpfs {
    inner: spin::Mutex<Inner>,
    capacity: u64,
    /// The most directory entries (INV-TMPFS-4).
    max_entries: u64,
}

/// One step of a resolution: where a path leads.
struct Found {
    /// The directory holding the last component (the start for `.`).
    parent: Ino,
    /// The last component (empty for the start itself).
    name: Vec<u8>,
    /// What the last component names, if anything.
    ino: Option<Ino>,
    /// The path ended in `/`.
    trailing_slash: bool,
}

impl Inner {
    fn node(&self, ino: Ino) -> Result<&Inode, FsError> {
        self.nodes.get(&ino).ok_or(FsError::NoEnt)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Inode, FsError> {
        self.nodes.get_mut(&ino).ok_or(FsError::NoEnt)
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<Vec<u8>, Ino>, FsError> {
        match &self.node(dir)?.node {
            Node::Dir { entries, .. } => Ok(entries),
            _ => Err(FsError::NotDir),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<Vec<u8>, Ino>, FsError> {
        match &mut self.node_mut(dir)?.node {
            Node::Dir { entries, .. } => Ok(entries),
            _ => Err(FsError::NotDir),
        }
    }

    /// Enter `name` for `ino` in `dir`, within `max` entries.
    fn enter(&mut self, dir: Ino, name: Vec<u8>, ino: Ino, max: u64) -> Result<(), FsError> {
        if self.entries >= max {
            return Err(FsError::NoSpace);
        }
        self.entries_mut(dir)?.insert(name, ino);
        self.entries += 1;
        Ok(())
    }

    /// Take the entry `name` out of `dir`.
    fn leave(&mut self, dir: Ino, name: &[u8]) -> Result<(), FsError> {
        if self.entries_mut(dir)?.remove(name).is_some() {
            self.entries -= 1;
        }
        Ok(())
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(
            self.nodes.get(&ino).map(|n| &n.node),
            Some(Node::Dir { .. })
        )
    }

    fn add(&mut self, node: Node, now: u64) -> Ino {
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(
            ino,
            Inode {
                node,
                nlink: 1,
                open: 0,
                times: [now; 3],
            },
        );
        ino
    }

    /// Free `ino` if nothing holds it any more (INV-TMPFS-2).
    fn collect(&mut self, ino: Ino) {
        let gone = self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.nlink == 0 && n.open == 0);
        if gone && let Some(n) = self.nodes.remove(&ino) {
            self.bytes -= held(&n.node);
        }
    }

    /// Resolve `path` from `start`, following links in the middle always
    /// and at the end when `follow` (or when the path ends in `/`).
    fn resolve(&self, start: Ino, path: &[u8], follow: bool) -> Result<Found, FsError> {
        self.walk(start, path, follow, true)
    }

    /// Resolve `path` from `start` without ever following a link at its
    /// end, trailing `/` or not (what removing and renaming name).
    fn resolve_entry(&self, start: Ino, path: &[u8]) -> Result<Found, FsError> {
        self.walk(start, path, false, false)
    }

    /// [`Inner::resolve`], with a trailing `/` following a last link only
    /// when `slash_follows`.
    fn walk(
        &self,
        start: Ino,
        path: &[u8],
        follow: bool,
        slash_follows: bool,
    ) -> Result<Found, FsError> {
        if path.len() > MAX_PATH {
            return Err(FsError::NameTooLong);
        }
        if path.is_empty() {
            return Err(FsError::NoEnt);
        }
        // Directories from `start` (never popped past it) and the
        // components still to walk, last first.
        let mut stack = alloc::vec![start];
        let mut todo: Vec<Vec<u8>> = components(path)?;
        let trailing_slash = path.ends_with(b"/");
        let mut links = 0;
        loop {
            let dir = *stack.last().ok_or(FsError::NotCapable)?;
            let Some(name) = todo.pop() else {
                // Only `.` and `..` components: the directory itself.
                return Ok(Found {
                    parent: dir,
                    name: Vec::new(),
                    ino: Some(dir),
                    trailing_slash,
                });
            };
            let last = todo.is_empty();
            match name.as_slice() {
                b"." => continue,
                b".." => {
                    if stack.len() == 1 {
                        return Err(FsError::NotCapable);
                    }
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let entries = self.entries(dir)?;
            let ino = entries.get(&name).copied();
            let target = ino.and_then(|i| match &self.nodes.get(&i)?.node {
                Node::Symlink(t) => Some(t.clone()),
                _ => None,
            });
            match (ino, target) {
                (Some(_), Some(target)) if !last || follow || (trailing_slash && slash_follows) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(FsError::Loop);
                    }
                    if target.starts_with(b"/") {
                        return Err(FsError::NotCapable);
                    }
                    // A trailing `/` of the path still applies to where
                    // the link leads (`Found::trailing_slash`).
                    todo.extend(components(&target)?);
                }
                (ino, _) if last => {
                    return Ok(Found {
                        parent: dir,
                        name,
                        ino,
                        trailing_slash,
                    });
                }
                (Some(i), _) if self.is_dir(i) => stack.push(i),
                (Some(_), _) => return Err(FsError::NotDir),
                (None, _) => return Err(FsError::NoEnt),
            }
        }
    }

    /// Resolve to an existing inode.
    fn lookup(&self, start: Ino, path: &[u8], follow: bool) -> Result<Ino, FsError> {
        let f = self.resolve(start, path, follow)?;
        let ino = f.ino.ok_or(FsError::NoEnt)?;
        if f.trailing_slash && !self.is_dir(ino) {
            return Err(FsError::NotDir);
        }
        Ok(ino)
    }

    /// Resolve to the directory and name a new entry would take: `Exist`
    /// when something is there already.
    fn vacant(&self, start: Ino, path: &[u8]) -> Result<(Ino, Vec<u8>), FsError> {
        let f = self.resolve_entry(start, path)?;
        if f.ino.is_some() || f.name.is_empty() {
            return Err(FsError::Exist);
        }
        Ok((f.parent, f.name))
    }

    fn touch(&mut self, ino: Ino, which: &[usize], now: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            for &i in which {
                n.times[i] = now;
            }
        }
    }
}

fn data_len(node: &Node) -> u64 {
    match node {
        Node::File(d) => d.len(),
        Node::Symlink(d) => d.len() as u64,
        Node::Dir { .. } => 0,
    }
}

/// The bytes `node` holds against the capacity (INV-TMPFS-3).
fn held(node: &Node) -> u64 {
    match node {
        Node::File(d) => d.stored(),
        Node::Symlink(d) => d.len() as u64,
        Node::Dir { .. } => 0,
    }
}

/// The components of `path`, last first, without empty ones.
fn components(path: &[u8]) -> Result<Vec<Vec<u8>>, FsError> {
    if path.starts_with(b"/") {
        return Err(FsError::NotCapable);
    }
    if path.contains(&0) {
        return Err(FsError::Inval);
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if c.len() > MAX_NAME {
            return Err(FsError::NameTooLong);
        }
        out.push(c.to_vec());
    }
    out.reverse();
    Ok(out)
}

const ATIME: usize = 0;
const MTIME: usize = 1;
const CTIME: usize = 2;

impl Tmpfs {
    /// An empty tmpfs (just its root directory) of at most `capacity`
    /// bytes of data, created at `now` (ns since the epoch).
    pub fn new(capacity: u64, now: u64) -> Self {
        let mut inner = Inner {
            nodes: BTreeMap::new(),
            next: ROOT,
            bytes: 0,
            entries: 0,
        };
        let root = inner.add(
            Node::Dir {
                entries: BTreeMap::new(),
                parent: ROOT,
            },
            now,
        );
        debug_assert_eq!(root, ROOT);
        Self {
            inner: spin::Mutex::new(inner),
            capacity,
            max_entries: (capacity / ENTRY_COST).max(MIN_ENTRIES),
        }
    }

    /// Bytes of data held.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    /// Open `path` from directory `dir` as `flags` say, at `now`; the inode,
    /// held open until [`Tmpfs::close`].
    ///
    /// # Errors
    /// [`FsError`] as POSIX `openat` gives them.
    pub fn open(&self, dir: Ino, path: &[u8], flags: OpenFlags, now: u64) -> Result<Ino, FsError> {
        let mut inner = self.inner.lock();
        // Creating "name/" asks for a file that is a directory, whatever
        // is there (a link there is not followed first).
        if flags.create && path.ends_with(b"/") {
            inner.resolve_entry(dir, path)?;
            return Err(FsError::IsDir);
        }
        let f = inner.resolve(dir, path, flags.follow)?;
        let ino = match f.ino {
            Some(_) if flags.create && flags.exclusive => return Err(FsError::Exist),
            Some(ino) => ino,
            None if flags.create && !flags.directory && !f.trailing_slash => {
                if inner.entries >= self.max_entries {
                    return Err(FsError::NoSpace);
                }
                let ino = inner.add(Node::File(FileData::default()), now);
                inner.enter(f.parent, f.name, ino, self.max_entries)?;
                inner.touch(f.parent, &[MTIME, CTIME], now);
                ino
            }
            None => return Err(FsError::NoEnt),
        };
        let node = inner.node(ino)?;
        match &node.node {
            Node::Dir { .. } if flags.truncate => return Err(FsError::IsDir),
            Node::Dir { .. } => {}
            Node::Symlink(_) => return Err(FsError::Loop),
            Node::File(_) if flags.directory || f.trailing_slash => return Err(FsError::NotDir),
            Node::File(data) => {
                if flags.truncate && !data.is_empty() {
                    let freed = data.stored();
                    if let Node::File(d) = &mut inner.node_mut(ino)?.node {
                        d.set_len(0);
                    }
                    inner.bytes -= freed;
                    inner.touch(ino, &[MTIME, CTIME], now);
                }
            }
        }
        inner.node_mut(ino)?.open += 1;
        Ok(ino)
    }

    /// Hold `ino` open once more (a descriptor copied).
    pub fn retain(&self, ino: Ino) {
        if let Some(n) = self.inner.lock().nodes.get_mut(&ino) {
            n.open += 1;
        }
    }

    /// A descriptor of `ino` is closed (INV-TMPFS-2).
    pub fn close(&self, ino: Ino) {
        let mut inner = self.inner.lock();
        if let Some(n) = inner.nodes.get_mut(&ino) {
            n.open = n.open.saturating_sub(1);
        }
        inner.collect(ino);
    }

    /// Read at most `buf.len()` bytes of file `ino` at `offset`; how many.
    ///
    /// # Errors
    /// [`FsError::IsDir`] for a directory.
    pub fn read(&self, ino: Ino, offset: u64, buf: &mut [u8], now: u64) -> Result<usize, FsError> {
        let mut inner = self.inner.lock();
        let n = match &inner.node(ino)?.node {
            Node::File(data) => data.read(offset, buf),
            Node::Dir { .. } => return Err(FsError::IsDir),
            Node::Symlink(_) => return Err(FsError::Inval),
        };
        inner.touch(ino, &[ATIME], now);
        Ok(n)
    }

    /// Write `data` into file `ino` at `offset` (growing it, zeros in any
    /// gap); how many bytes.
    ///
    /// # Errors
    /// [`FsError::NoSpace`] past the capacity (INV-TMPFS-3),
    /// [`FsError::FileTooBig`] past what an offset can address.
    pub fn write(&self, ino: Ino, offset: u64, data: &[u8], now: u64) -> Result<usize, FsError> {
        let mut inner = self.inner.lock();
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FsError::FileTooBig)?;
        let (stored, grow) = match &inner.node(ino)?.node {
            Node::File(d) => (d.stored(), d.growth_of_write(offset, data.len() as u64)),
            Node::Dir { .. } => return Err(FsError::IsDir),
            Node::Symlink(_) => return Err(FsError::Inval),
        };
        // Writing nothing changes nothing, past the end or not (POSIX).
        if data.is_empty() {
            return Ok(0);
        }
        if inner.bytes + grow > self.capacity {
            return Err(FsError::NoSpace);
        }
        if i64::try_from(end).is_err() {
            return Err(FsError::FileTooBig);
        }
        let mut written = Ok(());
        let mut grown = 0;
        if let Node::File(d) = &mut inner.node_mut(ino)?.node {
            written = d.write(offset, data);
            grown = d.stored() - stored;
        }
        // A chunk that could not be allocated: what was written stays,
        // counted (INV-TMPFS-3 holds: it is below `grow`).
        inner.bytes += grown;
        written?;
        inner.touch(ino, &[MTIME, CTIME], now);
        Ok(data.len())
    }

    /// Set file `ino`'s size to `size` (zeros when it grows: a hole, which
    /// holds nothing against the capacity).
    ///
    /// # Errors
    /// [`FsError::IsDir`], [`FsError::Inval`] for a link,
    /// [`FsError::FileTooBig`] past what an offset can address.
    pub fn truncate(&self, ino: Ino, size: u64, now: u64) -> Result<(), FsError> {
        let mut inner = self.inner.lock();
        let stored = match &inner.node(ino)?.node {
            Node::File(d) => d.stored(),
            Node::Dir { .. } => return Err(FsError::IsDir),
            Node::Symlink(_) => return Err(FsError::Inval),
        };
        if i64::try_from(size).is_err() {
            return Err(FsError::FileTooBig);
        }
        let mut now_stored = stored;
        if let Node::File(d) = &mut inner.node_mut(ino)?.node {
            d.set_len(size);
            now_stored = d.stored();
        }
        // Growing makes a hole (nothing held); shrinking frees what was
        // held past the new end.
        inner.bytes -= stored - now_stored;
        inner.touch(ino, &[MTIME, CTIME], now);
        Ok(())
    }

    /// What `ino` is.
    ///
    /// # Errors
    /// [`FsError::NoEnt`] for a freed inode.
    pub fn stat(&self, ino: Ino) -> Result<Stat, FsError> {
        let inner = self.inner.lock();
        let n = inner.node(ino)?;
        Ok(Stat {
            ino,
            filetype: match n.node {
                Node::Dir { .. } => FileType::Directory,
                Node::File(_) => FileType::Regular,
                Node::Symlink(_) => FileType::Symlink,
            },
            nlink: n.nlink,
            size: data_len(&n.node),
            atime: n.times[ATIME],
            mtime: n.times[MTIME],
            ctime: n.times[CTIME],
        })
    }

    /// What `path` from `dir` names (following a last link when `follow`).
    ///
    /// # Errors
    /// [`FsError`] of the resolution.
    pub fn stat_path(&self, dir: Ino, path: &[u8], follow: bool) -> Result<Stat, FsError> {
        let ino = self.inner.lock().lookup(dir, path, follow)?;
        self.stat(ino)
    }

    /// Set `ino`'s access and modification times (`None`: leave it).
    ///
    /// # Errors
    /// [`FsError::NoEnt`] for a freed inode.
    pub fn set_times(
        &self,
        ino: Ino,
        atime: Option<u64>,
        mtime: Option<u64>,
        now: u64,
    ) -> Result<(), FsError> {
        let mut inner = self.inner.lock();
        let n = inner.node_mut(ino)?;
        if let Some(t) = atime {
            n.times[ATIME] = t;
        }
        if let Some(t) = mtime {
            n.times[MTIME] = t;
        }
        n.times[CTIME] = now;
        Ok(())
    }

    /// The whole of the regular file at absolute `path` (links followed),
    /// when it holds at most `max` bytes; `charge` is told its size first
    /// and may refuse (the reader's memory limit).
    ///
    /// # Errors
    /// [`FsError`] of the resolution, [`FsError::IsDir`] for a directory,
    /// [`FsError::FileTooBig`] past `max`, and `charge`'s error.
    pub fn read_file<T>(
        &self,
        path: &[u8],
        max: u64,
        now: u64,
        charge: impl FnOnce(u64) -> Result<T, FsError>,
    ) -> Result<(Vec<u8>, T), FsError> {
        let relative = path.strip_prefix(b"/").ok_or(FsError::Inval)?;
        let ino = self.lookup(ROOT, relative, true)?;
        let stat = self.stat(ino)?;
        if stat.filetype == FileType::Directory {
            return Err(FsError::IsDir);
        }
        if stat.size > max {
            return Err(FsError::FileTooBig);
        }
        let held = charge(stat.size)?;
        let mut bytes =
            alloc::vec![0u8; usize::try_from(stat.size).map_err(|_| FsError::FileTooBig)?];
        let n = self.read(ino, 0, &mut bytes, now)?;
        bytes.truncate(n);
        Ok((bytes, held))
    }

    /// The inode `path` from `dir` names, for calls on paths.
    ///
    /// # Errors
    /// [`FsError`] of the resolution.
    pub fn lookup(&self, dir: Ino, path: &[u8], follow: bool) -> Result<Ino, FsError> {
        self.inner.lock().lookup(dir, path, follow)
    }

    /// The entries of directory `ino`, `.` and `..` first, then by name:
    /// `(name, inode, type)`.
    ///
    /// # Errors
    /// [`FsError::NotDir`] for anything else.
    pub fn read_dir(&self, ino: Ino) -> Result<Vec<(Vec<u8>, Ino, FileType)>, FsError> {
        let inner = self.inner.lock();
        let Node::Dir { entries, parent } = &inner.node(ino)?.node else {
            return Err(FsError::NotDir);
        };
        let kind = |i: Ino| match inner.nodes.get(&i).map(|n| &n.node) {
            Some(Node::Dir { .. }) => FileType::Directory,
            Some(Node::Symlink(_)) => FileType::Symlink,
            _ => FileType::Regular,
        };
        let mut out = alloc::vec![
            (b".".to_vec(), ino, FileType::Directory),
            (b"..".to_vec(), *parent, FileType::Directory),
        ];
        out.extend(entries.iter().map(|(n, &i)| (n.clone(), i, kind(i))));
        Ok(out)
    }

    /// Make directory `path` in `dir`.
    ///
    /// # Errors
    /// [`FsError::Exist`] when something is there.
    pub fn mkdir(&self, dir: Ino, path: &[u8], now: u64) -> Result<(), FsError> {
        let mut inner = self.inner.lock();
        let (parent, name) = inner.vacant(dir, path)?;
        if inner.entries >= self.max_entries {
            return Err(FsError::NoSpace);
        }
        let ino = inner.add(
            Node::Dir {
                entries: BTreeMap::new(),
                parent,
            },
            now,
        );
        inner.enter(parent, name, ino, self.max_entries)?;
        inner.touch(parent, &[MTIME, CTIME], now);
        Ok(())
    }

    /// Make a symbolic link `path` in `dir` holding `target`.
    ///
    /// # Errors
    /// [`FsError::Exist`] when something is there; [`FsError::NoSpace`].
    pub fn symlink(&self, target: &[u8], dir: Ino, path: &[u8], now: u64) -> Result<(), FsError> {
        let mut inner = self.inner.lock();
        if target.is_empty() || target.contains(&0) {
            return Err(FsError::NoEnt);
        }
        let (parent, name) = inner.vacant(dir, path)?;
        if path.ends_with(b"/") {
            return Err(FsError::NoEnt);
        }
        if inner.bytes + target.len() as u64 > self.capacity || inner.entries >= self.max_entries {
            return Err(FsError::NoSpace);
        }
        let ino = inner.add(Node::Symlink(target.to_vec()), now);
        inner.bytes += target.len() as u64;
        inner.enter(parent, name, ino, self.max_entries)?;
        inner.touch(parent, &[MTIME, CTIME], now);
        Ok(())
    }

    /// The target of symbolic link `path` in `dir`.
    ///
    /// # Errors
    /// [`FsError::Inval`] when it is not a link.
    pub fn readlink(&self, dir: Ino, path: &[u8]) -> Result<Vec<u8>, FsError> {
        let inner = self.inner.lock();
        let ino = inner.lookup(dir, path, false)?;
        match &inner.node(ino)?.node {
            Node::Symlink(t) => Ok(t.clone()),
            _ => Err(FsError::Inval),
        }
    }

    /// Make `new` in `new_dir` another name of what `old` in `old_dir`
    /// names (not a directory).
    ///
    /// # Errors
    /// [`FsError::Perm`] for a directory, [`FsError::Exist`] when `new`
    /// exists.
    pub fn link(
        &self,
        old_dir: Ino,
        old: &[u8],
        follow: bool,
        new_dir: Ino,
        new: &[u8],
        now: u64,
    ) -> Result<(), FsError> {
        let mut inner = self.inner.lock();
        let ino = inner.lookup(old_dir, old, follow)?;
        // The new name's directory resolves before the source's kind is
        // looked at, as Linux does.
        let (parent, name) = inner.vacant(new_dir, new)?;
        if new.ends_with(b"/") {
            return Err(FsError::NoEnt);
        }
        if inner.is_dir(ino) {
            return Err(FsError::Perm);
        }
        inner.enter(parent, name, ino, self.max_entries)?;
        inner.node_mut(ino)?.nlink += 1;
        inner.touch(ino, &[CTIME], now);
        inner.touch(parent, &[MTIME, CTIME], now);
        Ok(())
    }

    /// Remove the entry `path` in `dir`: a directory (`dir_only`, which
    /// must be empty) or anything else (not `dir_only`).
    ///
    /// # Errors
    /// [`FsError::IsDir`], [`FsError::NotDir`], [`FsError::NotEmpty`].
    pub fn remove(&self, dir: Ino, path: &[u8], dir_only: bool, now: u64) -> Result<(), FsError> {
        let mut inner = self.inner.lock();
        let f = inner.resolve_entry(dir, path)?;
        let ino = f.ino.ok_or(FsError::NoEnt)?;
        if f.name.is_empty() {
            // `.` or the start itself.
            return Err(if dir_only {
                FsError::Inval
            } else {
                FsError::IsDir
            });
        }
        match (&inner.node(ino)?.node, dir_only) {
            (Node::Dir { entries, .. }, true) if !entries.is_empty() => {
                return Err(FsError::NotEmpty);
            }
            (Node::Dir { .. }, true) => {}
            (Node::Dir { .. }, false) => return Err(FsError::IsDir),
            (_, true) => return Err(FsError::NotDir),
            (_, false) if f.trailing_slash => return Err(FsError::NotDir),
            (_, false) => {}
        }
        inner.leave(f.parent, &f.name)?;
        inner.node_mut(ino)?.nlink -= 1;
        inner.touch(ino, &[CTIME], now);
        inner.touch(f.parent, &[MTIME, CTIME], now);
        inner.collect(ino);
        Ok(())
    }

    /// Move `old` in `old_dir` to `new` in `new_dir`, replacing what is
    /// there as POSIX `rename` does.
    ///
    /// # Errors
    /// [`FsError::IsDir`], [`FsError::NotDir`], [`FsError::NotEmpty`], and
    /// [`FsError::Inval`] for a directory moved into its own subtree.
    pub fn rename(
        &self,
        old_dir: Ino,
        old: &[u8],
        new_dir: Ino,
        new: &[u8],
        now: u64,
    ) -> Result<(), FsError> {
        let mut inner = self.inner.lock();
        // Both parents resolve before either last component is looked at,
        // as Linux does.
        let from = inner.resolve_entry(old_dir, old)?;
        let to = inner.resolve_entry(new_dir, new)?;
        if from.name.is_empty() || to.name.is_empty() {
            return Err(FsError::Busy);
        }
        let ino = from.ino.ok_or(FsError::NoEnt)?;
        let moving_dir = inner.is_dir(ino);
        if (from.trailing_slash || to.trailing_slash) && !moving_dir {
            return Err(FsError::NotDir);
        }
        if to.ino == Some(ino) {
            return Ok(());
        }
        if moving_dir {
            // Not into its own subtree.
            let mut at = to.parent;
            loop {
                if at == ino {
                    return Err(FsError::Inval);
                }
                let Node::Dir { parent, .. } = &inner.node(at)?.node else {
                    break;
                };
                if *parent == at {
                    break;
                }
                at = *parent;
            }
        }
        if let Some(victim) = to.ino {
            // Replacing a directory that holds the source: ENOTEMPTY, as
            // Linux reports before anything else about the target.
            let mut at = from.parent;
            loop {
                if at == victim {
                    return Err(FsError::NotEmpty);
                }
                match &inner.node(at)?.node {
                    Node::Dir { parent, .. } if *parent != at => at = *parent,
                    _ => break,
                }
            }
            match (&inner.node(victim)?.node, moving_dir) {
                (Node::Dir { entries, .. }, true) if !entries.is_empty() => {
                    return Err(FsError::NotEmpty);
                }
                (Node::Dir { .. }, true) => {}
                (Node::Dir { .. }, false) => return Err(FsError::IsDir),
                (_, true) => return Err(FsError::NotDir),
                (_, false) => {}
            }
            inner.leave(to.parent, &to.name)?;
            inner.node_mut(victim)?.nlink -= 1;
            inner.collect(victim);
        }
        // A move: one entry out, one in.
        inner.leave(from.parent, &from.name)?;
        inner.enter(to.parent, to.name, ino, u64::MAX)?;
        if let Node::Dir { parent, .. } = &mut inner.node_mut(ino)?.node {
            *parent = to.parent;
        }
        inner.touch(ino, &[CTIME], now);
        inner.touch(from.parent, &[MTIME, CTIME], now);
        inner.touch(to.parent, &[MTIME, CTIME], now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: OpenFlags = OpenFlags {
        create: true,
        exclusive: false,
        truncate: false,
        directory: false,
        follow: true,
    };
    const OPEN: OpenFlags = OpenFlags {
        create: false,
        ..CREATE
    };

    fn fs() -> Tmpfs {
        Tmpfs::new(1 << 20, 0)
    }

    fn write_file(fs: &Tmpfs, path: &[u8], data: &[u8]) -> Ino {
        let ino = fs.open(ROOT, path, CREATE, 1).unwrap();
        fs.write(ino, 0, data, 1).unwrap();
        fs.close(ino);
        ino
    }

    fn read_file(fs: &Tmpfs, path: &[u8]) -> Result<Vec<u8>, FsError> {
        let ino = fs.open(ROOT, path, OPEN, 2)?;
        let mut buf = alloc::vec![0; 64];
        let n = fs.read(ino, 0, &mut buf, 2)?;
        fs.close(ino);
        buf.truncate(n);
        Ok(buf)
    }

    #[test]
    fn files_round_trip_through_directories() {
        let fs = fs();
        fs.mkdir(ROOT, b"a", 1).unwrap();
        fs.mkdir(ROOT, b"a/b/", 1).unwrap();
        write_file(&fs, b"a/b/f", b"hello");
        assert_eq!(read_file(&fs, b"a/./b/../b/f").unwrap(), b"hello");
        assert_eq!(read_file(&fs, b"a//b///f").unwrap(), b"hello");
        assert_eq!(fs.bytes(), 5);
        assert_eq!(fs.stat_path(ROOT, b"a/b/f", true).unwrap().size, 5);
        let names: Vec<_> = fs.read_dir(fs.lookup(ROOT, b"a", true).unwrap()).unwrap();
        let names: Vec<&[u8]> = names.iter().map(|(n, ..)| n.as_slice()).collect();
        assert_eq!(names, [&b"."[..], b"..", b"b"]);
    }

    #[test]
    fn no_path_leaves_the_starting_directory() {
        let fs = fs();
        fs.mkdir(ROOT, b"jail", 1).unwrap();
        let jail = fs.lookup(ROOT, b"jail", true).unwrap();
        fs.mkdir(jail, b"a", 1).unwrap();
        write_file(&fs, b"secret", b"s");
        for path in [&b"../secret"[..], b"/secret", b"a/../../secret", b".."] {
            assert_eq!(
                fs.lookup(jail, path, true),
                Err(FsError::NotCapable),
                "{path:?}"
            );
        }
        fs.symlink(b"../secret", jail, b"out", 1).unwrap();
        fs.symlink(b"/secret", jail, b"abs", 1).unwrap();
        fs.symlink(b"a/../..", jail, b"up", 1).unwrap();
        for path in [&b"out"[..], b"abs", b"up/secret"] {
            assert_eq!(
                fs.open(jail, path, OPEN, 1),
                Err(FsError::NotCapable),
                "{path:?}"
            );
        }
        // Not following the last link names the link itself; a missing
        // component is missing before anything is left.
        assert_eq!(fs.readlink(jail, b"out").unwrap(), b"../secret");
        assert_eq!(
            fs.lookup(jail, b"nope/../../secret", true),
            Err(FsError::NoEnt)
        );
    }

    #[test]
    fn link_loops_end_in_eloop() {
        let fs = fs();
        fs.symlink(b"b", ROOT, b"a", 1).unwrap();
        fs.symlink(b"a", ROOT, b"b", 1).unwrap();
        assert_eq!(fs.open(ROOT, b"a", OPEN, 1), Err(FsError::Loop));
        fs.symlink(b"self/x", ROOT, b"self", 1).unwrap();
        assert_eq!(fs.lookup(ROOT, b"self", true), Err(FsError::Loop));
    }

    #[test]
    fn unlinked_open_files_live_until_closed() {
        let fs = fs();
        let ino = fs.open(ROOT, b"f", CREATE, 1).unwrap();
        fs.write(ino, 0, b"data", 1).unwrap();
        fs.remove(ROOT, b"f", false, 1).unwrap();
        assert_eq!(fs.lookup(ROOT, b"f", true), Err(FsError::NoEnt));
        let mut buf = [0u8; 4];
        assert_eq!(fs.read(ino, 0, &mut buf, 1), Ok(4));
        assert_eq!(fs.bytes(), 4);
        fs.close(ino);
        assert_eq!(fs.bytes(), 0);
        assert_eq!(fs.stat(ino), Err(FsError::NoEnt));
    }

    #[test]
    fn the_capacity_is_enospc_and_changes_nothing() {
        let fs = Tmpfs::new(10, 0);
        let ino = fs.open(ROOT, b"f", CREATE, 1).unwrap();
        assert_eq!(fs.write(ino, 0, b"0123456789", 1), Ok(10));
        assert_eq!(fs.write(ino, 10, b"x", 1), Err(FsError::NoSpace));
        assert_eq!(fs.write(ino, 5, b"xx", 1), Ok(2));
        assert_eq!(fs.stat(ino).unwrap().size, 10);
        assert_eq!(fs.truncate(ino, 3, 1), Ok(()));
        assert_eq!(fs.bytes(), 3);
        // A hole holds nothing: a 1 GiB file of one, then a write in it
        // that would pass the capacity, refused, changing nothing.
        assert_eq!(fs.truncate(ino, 1 << 30, 1), Ok(()));
        assert_eq!(fs.bytes(), 3);
        assert_eq!(fs.stat(ino).unwrap().size, 1 << 30);
        let far = alloc::vec![7u8; 8];
        assert_eq!(fs.write(ino, 1 << 29, &far, 1), Err(FsError::NoSpace));
        assert_eq!(fs.bytes(), 3);
        assert_eq!(fs.write(ino, 1 << 29, &far[..7], 1), Ok(7));
        assert_eq!(fs.bytes(), 10);
        assert_eq!(fs.truncate(ino, 3, 1), Ok(()));
        assert_eq!(fs.bytes(), 3);
        assert_eq!(fs.write(ino, u64::MAX, b"x", 1), Err(FsError::FileTooBig));
    }

    #[test]
    fn entries_are_bounded_even_without_data() {
        let fs = Tmpfs::new(0, 0);
        let name = |i: u64| alloc::format!("f{i}").into_bytes();
        for i in 0..MIN_ENTRIES {
            fs.close(fs.open(ROOT, &name(i), CREATE, 1).unwrap());
        }
        assert_eq!(fs.open(ROOT, b"one-more", CREATE, 1), Err(FsError::NoSpace));
        assert_eq!(fs.mkdir(ROOT, b"d", 1), Err(FsError::NoSpace));
        assert_eq!(fs.symlink(b"f0", ROOT, b"l", 1), Err(FsError::NoSpace));
        assert_eq!(
            fs.link(ROOT, b"f0", false, ROOT, b"h", 1),
            Err(FsError::NoSpace)
        );
        // A rename moves an entry; replacing one frees one.
        fs.rename(ROOT, b"f0", ROOT, b"g0", 1).unwrap();
        fs.rename(ROOT, b"g0", ROOT, b"f1", 1).unwrap();
        fs.mkdir(ROOT, b"d", 1).unwrap();
        fs.remove(ROOT, b"f2", false, 1).unwrap();
        fs.close(fs.open(ROOT, b"one-more", CREATE, 1).unwrap());
    }

    #[test]
    fn removal_and_rename_follow_posix() {
        let fs = fs();
        fs.mkdir(ROOT, b"d", 1).unwrap();
        write_file(&fs, b"d/f", b"1");
        assert_eq!(fs.remove(ROOT, b"d", true, 1), Err(FsError::NotEmpty));
        assert_eq!(fs.remove(ROOT, b"d", false, 1), Err(FsError::IsDir));
        assert_eq!(fs.remove(ROOT, b"d/f", true, 1), Err(FsError::NotDir));
        assert_eq!(fs.remove(ROOT, b"d/f/", false, 1), Err(FsError::NotDir));
        assert_eq!(
            fs.rename(ROOT, b"d", ROOT, b"d/sub", 1),
            Err(FsError::Inval)
        );
        write_file(&fs, b"g", b"2");
        assert_eq!(fs.rename(ROOT, b"g", ROOT, b"d", 1), Err(FsError::IsDir));
        assert_eq!(fs.rename(ROOT, b"d", ROOT, b"g", 1), Err(FsError::NotDir));
        fs.rename(ROOT, b"g", ROOT, b"d/f", 1).unwrap();
        assert_eq!(read_file(&fs, b"d/f").unwrap(), b"2");
        assert_eq!(fs.bytes(), 1);
        fs.rename(ROOT, b"d", ROOT, b"e", 1).unwrap();
        assert_eq!(read_file(&fs, b"e/f").unwrap(), b"2");
        fs.remove(ROOT, b"e/f", false, 1).unwrap();
        fs.remove(ROOT, b"e", true, 1).unwrap();
        assert_eq!(fs.read_dir(ROOT).unwrap().len(), 2);
    }

    #[test]
    fn hard_links_share_data_and_open_flags_apply() {
        let fs = fs();
        write_file(&fs, b"a", b"abc");
        fs.link(ROOT, b"a", false, ROOT, b"b", 1).unwrap();
        assert_eq!(fs.stat_path(ROOT, b"b", true).unwrap().nlink, 2);
        fs.remove(ROOT, b"a", false, 1).unwrap();
        assert_eq!(read_file(&fs, b"b").unwrap(), b"abc");
        let excl = OpenFlags {
            exclusive: true,
            ..CREATE
        };
        assert_eq!(fs.open(ROOT, b"b", excl, 1), Err(FsError::Exist));
        let trunc = OpenFlags {
            truncate: true,
            ..OPEN
        };
        let ino = fs.open(ROOT, b"b", trunc, 1).unwrap();
        fs.close(ino);
        assert_eq!(read_file(&fs, b"b").unwrap(), b"");
        let dir = OpenFlags {
            directory: true,
            ..OPEN
        };
        assert_eq!(fs.open(ROOT, b"b", dir, 1), Err(FsError::NotDir));
        assert_eq!(fs.open(ROOT, b"b/", OPEN, 1), Err(FsError::NotDir));
        assert_eq!(fs.open(ROOT, b"nope/", CREATE, 1), Err(FsError::IsDir));
        assert_eq!(fs.open(ROOT, b"nope/", OPEN, 1), Err(FsError::NoEnt));
        fs.mkdir(ROOT, b"d", 1).unwrap();
        assert_eq!(
            fs.link(ROOT, b"d", false, ROOT, b"d2", 1),
            Err(FsError::Perm)
        );
    }
}
