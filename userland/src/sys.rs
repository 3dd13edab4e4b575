//! Vessel's own system calls, beyond WASI: starting programs with chosen
//! descriptors, pipes, process handles and the process table. They are
//! imported from the `vessel` module; built for any other system every call
//! fails with [`Error::Unsupported`], so the programs build and their logic
//! is tested natively.
//!
//! The ABI (little-endian, 32-bit pointers) is documented in the kernel's
//! `sys::vessel` module; this module is its only user-side copy.

use std::fmt;

/// Why a call failed: the kernel's negative result codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not a handle or descriptor of the caller, or of the wrong kind.
    BadHandle,
    /// A pointer outside the caller's memory.
    Fault,
    /// The other side is gone.
    Closed,
    /// An argument out of range.
    Invalid,
    /// Out of memory, handles, descriptors, or past the process limit.
    NoMemory,
    /// The process trapped or its module failed to load.
    Trapped,
    /// The process was killed.
    Killed,
    /// The process is still running.
    Running,
    /// No such file or process.
    NotFound,
    /// Not allowed.
    Denied,
    /// A code this library does not know.
    Other(i32),
    /// Not running on Vessel.
    Unsupported,
}

impl Error {
    /// The error a negative result `code` stands for.
    pub fn from_code(code: i32) -> Self {
        match code {
            -1 => Self::BadHandle,
            -2 => Self::Fault,
            -3 => Self::Closed,
            -4 => Self::Invalid,
            -5 => Self::NoMemory,
            -6 => Self::Trapped,
            -7 => Self::Killed,
            -8 => Self::Running,
            -9 => Self::NotFound,
            -10 => Self::Denied,
            i32::MIN => Self::Unsupported,
            c => Self::Other(c),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHandle => f.write_str("bad handle or descriptor"),
            Self::Fault => f.write_str("bad address"),
            Self::Closed => f.write_str("closed"),
            Self::Invalid => f.write_str("invalid argument"),
            Self::NoMemory => f.write_str("out of memory or past the process limit"),
            Self::Trapped => f.write_str("trapped"),
            Self::Killed => f.write_str("killed"),
            Self::Running => f.write_str("still running"),
            Self::NotFound => f.write_str("not found"),
            Self::Denied => f.write_str("not permitted"),
            Self::Other(c) => write!(f, "error {c}"),
            Self::Unsupported => f.write_str("not running on Vessel"),
        }
    }
}

impl std::error::Error for Error {}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// It trapped, or never started.
    Trapped,
    /// It was killed (Ctrl-C, `kill`, or its parent ended).
    Killed,
}

impl Status {
    /// The shell's `$?` for it: the exit code's low 8 bits, 130 when
    /// killed, 134 when trapped.
    pub fn code(self) -> i32 {
        match self {
            Self::Exited(c) => c & 0xff,
            Self::Killed => 130,
            Self::Trapped => 134,
        }
    }

    fn from_result(r: i32) -> Result<Self, Error> {
        match r {
            -6 => Ok(Self::Trapped),
            -7 => Ok(Self::Killed),
            r if r < 0 => Err(Error::from_code(r)),
            r => Ok(Self::Exited(r)),
        }
    }
}

/// `spawn_file` flag: Ctrl-C on the console kills the process.
const FOREGROUND: u32 = 1;

/// What to start: the program at an absolute path, its arguments (the
/// first its name), its whole environment and its standard descriptors.
#[derive(Clone, Debug, Default)]
pub struct Command {
    /// The program's absolute path in the file system.
    pub path: String,
    /// Its arguments, the first its name.
    pub args: Vec<String>,
    /// Its environment, `KEY=VALUE` each.
    pub env: Vec<String>,
    /// The caller's descriptors that become the child's 0, 1 and 2.
    pub stdio: [u32; 3],
    /// Whether Ctrl-C kills it.
    pub foreground: bool,
}

/// NUL-terminated strings, one after another.
fn nul_joined(items: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    out
}

/// A child process, named by a handle; closing it (drop) lets the kernel
/// reap the child once it ends, and does not kill it.
#[derive(Debug)]
pub struct Child {
    handle: i32,
}

/// Start `cmd`.
///
/// # Errors
/// [`Error::NotFound`] when no file is at the path, [`Error::NoMemory`]
/// past the process limit, [`Error::BadHandle`] for a bad descriptor.
pub fn spawn(cmd: &Command) -> Result<Child, Error> {
    let argv = nul_joined(&cmd.args);
    let env = nul_joined(&cmd.env);
    let flags = if cmd.foreground { FOREGROUND } else { 0 };
    let words: [u32; 9] = [
        addr(cmd.path.as_ptr()),
        len(cmd.path.len()),
        addr(argv.as_ptr()),
        len(argv.len()),
        addr(env.as_ptr()),
        len(env.len()),
        addr(cmd.stdio.as_ptr().cast()),
        3,
        flags,
    ];
    let r = imp::spawn_file(words.as_ptr().cast(), 36);
    if r < 0 {
        Err(Error::from_code(r))
    } else {
        Ok(Child { handle: r })
    }
}

/// A pointer as the kernel sees it (a 32-bit address on wasm32).
fn addr(p: *const u8) -> u32 {
    u32::try_from(p as usize).unwrap_or(u32::MAX)
}

/// A length as the kernel sees it.
fn len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Child {
    /// Wait for it to end.
    ///
    /// # Errors
    /// When the handle is bad (never for a child from [`spawn`]).
    pub fn wait(&self) -> Result<Status, Error> {
        Status::from_result(imp::wait(self.handle))
    }

    /// How it ended, or `None` while it runs.
    ///
    /// # Errors
    /// When the handle is bad.
    pub fn try_wait(&self) -> Result<Option<Status>, Error> {
        match Status::from_result(imp::try_wait(self.handle)) {
            Err(Error::Running) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Kill it (and its own children).
    ///
    /// # Errors
    /// When the handle is bad.
    pub fn kill(&self) -> Result<(), Error> {
        check(imp::kill(self.handle))
    }

    /// Its process id.
    ///
    /// # Errors
    /// When the handle is bad.
    pub fn pid(&self) -> Result<u32, Error> {
        let r = imp::pid(self.handle);
        check(r).map(|()| r.unsigned_abs())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        imp::close(self.handle);
    }
}

fn check(r: i32) -> Result<(), Error> {
    if r < 0 {
        Err(Error::from_code(r))
    } else {
        Ok(())
    }
}

/// The caller's own process id.
///
/// # Errors
/// [`Error::Unsupported`] off Vessel.
pub fn getpid() -> Result<u32, Error> {
    let r = imp::pid(-1);
    check(r).map(|()| r.unsigned_abs())
}

/// A new pipe: its read end and its write end, as WASI descriptors.
///
/// # Errors
/// [`Error::NoMemory`] when the caller's descriptor table is full.
pub fn pipe() -> Result<(u32, u32), Error> {
    let mut ends = [0u32; 2];
    check(imp::pipe(ends.as_mut_ptr().cast()))?;
    Ok((ends[0], ends[1]))
}

/// Kill the process `pid`: allowed for the caller's descendants and those
/// of its parent.
///
/// # Errors
/// [`Error::NotFound`] for no such process, [`Error::Denied`] for one the
/// caller may not kill.
pub fn kill_pid(pid: u32) -> Result<(), Error> {
    let pid = i32::try_from(pid).map_err(|_| Error::NotFound)?;
    check(imp::kill_pid(pid))
}

/// What a process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Running or ready to run.
    Runnable,
    /// Waiting in a system call (input, a pipe, a child, a sleep).
    Waiting,
    /// Ended, not yet reaped.
    Ended,
}

/// One row of the process table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcEntry {
    /// Its id.
    pub pid: u32,
    /// Its parent's id (0: started by the kernel).
    pub parent: u32,
    /// What it is doing.
    pub state: State,
    /// The CPU it last ran on (`None`: never ran).
    pub cpu: Option<u32>,
    /// CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory charged to it, in bytes.
    pub memory: u64,
    /// Its name (as given at spawn, at most 32 bytes).
    pub name: String,
}

/// Bytes of one process-table record.
const RECORD: usize = 64;

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Decode one 64-byte record.
fn decode(r: &[u8]) -> ProcEntry {
    let name = &r[32..64];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    ProcEntry {
        pid: u32_at(r, 0),
        parent: u32_at(r, 4),
        state: match u32_at(r, 8) {
            0 => State::Runnable,
            1 => State::Waiting,
            _ => State::Ended,
        },
        cpu: Some(u32_at(r, 12)).filter(|&c| c != u32::MAX),
        cpu_ns: u64_at(r, 16),
        memory: u64_at(r, 24),
        name: String::from_utf8_lossy(&name[..end]).into_owned(),
    }
}

/// Every process in the table.
///
/// # Errors
/// [`Error::Unsupported`] off Vessel.
pub fn procs() -> Result<Vec<ProcEntry>, Error> {
    let mut cap = 64;
    loop {
        let mut buf = vec![0u8; cap * RECORD];
        let n = imp::procs(buf.as_mut_ptr(), len(buf.len()));
        check(n)?;
        let n = n.unsigned_abs() as usize;
        if n <= cap {
            return Ok(buf[..n * RECORD].chunks_exact(RECORD).map(decode).collect());
        }
        cap = n + 16;
    }
}

#[cfg(target_os = "wasi")]
mod imp {
    #[link(wasm_import_module = "vessel")]
    unsafe extern "C" {
        #[link_name = "spawn_file"]
        fn vessel_spawn_file(req: *const u8, len: u32) -> i32;
        #[link_name = "wait"]
        fn vessel_wait(h: i32) -> i32;
        #[link_name = "try_wait"]
        fn vessel_try_wait(h: i32) -> i32;
        #[link_name = "kill"]
        fn vessel_kill(h: i32) -> i32;
        #[link_name = "close"]
        fn vessel_close(h: i32) -> i32;
        #[link_name = "pid"]
        fn vessel_pid(h: i32) -> i32;
        #[link_name = "pipe"]
        fn vessel_pipe(out: *mut u8) -> i32;
        #[link_name = "kill_pid"]
        fn vessel_kill_pid(pid: i32) -> i32;
        #[link_name = "procs"]
        fn vessel_procs(buf: *mut u8, cap: u32) -> i32;
    }

    pub(super) fn spawn_file(req: *const u8, len: u32) -> i32 {
        // SAFETY: `req` names `len` readable bytes, which name buffers that
        // live across the call; the kernel copies them all before returning.
        unsafe { vessel_spawn_file(req, len) }
    }
    pub(super) fn wait(h: i32) -> i32 {
        // SAFETY: a plain call on a handle number.
        unsafe { vessel_wait(h) }
    }
    pub(super) fn try_wait(h: i32) -> i32 {
        // SAFETY: a plain call on a handle number.
        unsafe { vessel_try_wait(h) }
    }
    pub(super) fn kill(h: i32) -> i32 {
        // SAFETY: a plain call on a handle number.
        unsafe { vessel_kill(h) }
    }
    pub(super) fn close(h: i32) -> i32 {
        // SAFETY: a plain call on a handle number.
        unsafe { vessel_close(h) }
    }
    pub(super) fn pid(h: i32) -> i32 {
        // SAFETY: a plain call on a handle number.
        unsafe { vessel_pid(h) }
    }
    pub(super) fn pipe(out: *mut u8) -> i32 {
        // SAFETY: `out` names 8 writable bytes.
        unsafe { vessel_pipe(out) }
    }
    pub(super) fn kill_pid(pid: i32) -> i32 {
        // SAFETY: a plain call on a number.
        unsafe { vessel_kill_pid(pid) }
    }
    pub(super) fn procs(buf: *mut u8, cap: u32) -> i32 {
        // SAFETY: `buf` names `cap` writable bytes.
        unsafe { vessel_procs(buf, cap) }
    }
}

#[cfg(not(target_os = "wasi"))]
mod imp {
    //! Off Vessel every call fails as "not running on Vessel"
    //! ([`super::Error::Unsupported`]).

    /// What every call returns here.
    const UNSUPPORTED: i32 = i32::MIN;

    pub(super) fn spawn_file(_: *const u8, _: u32) -> i32 {
        UNSUPPORTED
    }
    pub(super) fn wait(_: i32) -> i32 {
        UNSUPPORTED
    }
    pub(super) fn try_wait(_: i32) -> i32 {
        UNSUPPORTED
    }
    pub(super) fn kill(_: i32) -> i32 {
        UNSUPPORTED
    }
    pub(super) fn close(_: i32) -> i32 {
        UNSUPPORTED
    }
    pub(super) fn pid(_: i32) -> i32 {
        UNSUPPORTED
    }
    pub(super) fn pipe(_: *mut u8) -> i32 {
        UNSUPPORTED
    }
    pub(super) fn kill_pid(_: i32) -> i32 {
        UNSUPPORTED
    }
    pub(super) fn procs(_: *mut u8, _: u32) -> i32 {
        UNSUPPORTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_decode_with_their_name_and_no_cpu() {
        let mut r = [0u8; RECORD];
        r[0..4].copy_from_slice(&7u32.to_le_bytes());
        r[4..8].copy_from_slice(&1u32.to_le_bytes());
        r[8..12].copy_from_slice(&1u32.to_le_bytes());
        r[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        r[16..24].copy_from_slice(&5u64.to_le_bytes());
        r[24..32].copy_from_slice(&65536u64.to_le_bytes());
        r[32..34].copy_from_slice(b"sh");
        let e = decode(&r);
        assert_eq!(e.pid, 7);
        assert_eq!(e.parent, 1);
        assert_eq!(e.state, State::Waiting);
        assert_eq!(e.cpu, None);
        assert_eq!(e.cpu_ns, 5);
        assert_eq!(e.memory, 65536);
        assert_eq!(e.name, "sh");
    }

    #[test]
    fn results_map_to_statuses() {
        assert_eq!(Status::from_result(3), Ok(Status::Exited(3)));
        assert_eq!(Status::from_result(-7), Ok(Status::Killed));
        assert_eq!(Status::from_result(-9), Err(Error::NotFound));
        assert_eq!(Status::Exited(259).code(), 3);
    }

    #[test]
    fn calls_fail_off_vessel() {
        assert_eq!(pipe(), Err(Error::Unsupported));
    }
}
