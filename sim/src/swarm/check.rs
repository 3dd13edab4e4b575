//! Running one swarm workload on a deterministic machine and checking the
//! kernel's invariants afterwards.
//!
//! Checked after every run:
//! - the kernel returned (no kernel fault, no panic: either ends `sim`);
//! - frames (free and promised), code objects and the scope's process
//!   table are back to their baseline once every process is reaped;
//! - every process ended the way the model allows: its natural end (exit
//!   code, trap, deadline), or a kill the workload made, or a refusal the
//!   injected frame faults explain; never a self-check failure (an exit
//!   code of 100 or more: a message lost, duplicated or reordered, a file
//!   read back wrong, a memory grown past its maximum);
//! - the files on the tmpfs and the host directory are what the model
//!   says: each kept file of a process that ran to its end is there and
//!   holds its bytes, any other is a known name holding nothing or all its
//!   bytes;
//! - when asked, a second run of the same workload gives the same trace
//!   digest, process ends and files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hal_hosted::{Config, Hosted};
use kernel_core::fs::tmpfs::ROOT;
use kernel_core::proc::{self, ExitStatus, KillReason, Mount, ProcInfo, Program, SpawnOptions};
use kernel_core::wasm::TrapKind;

use super::workload::{End, Op, Workload};

/// Most pages a process's memory may reach (its declared maximum).
pub const LIMIT_PAGES: u32 = 66;
/// Virtual time a process that does not spin may take.
const DEADLINE: Duration = Duration::from_secs(60);
/// Virtual time the table may take to empty once every process is
/// reaped (children end after their parents).
const EMPTY_WITHIN: Duration = Duration::from_secs(10);
/// Virtual time a spinning process runs before its deadline kills it.
const SPIN_DEADLINE: Duration = Duration::from_millis(200);

/// What one run left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Each process's end (`None`: its spawn was refused).
    pub ends: Vec<Option<ExitStatus>>,
    /// Files of the tmpfs root and of the host directory (`h...` names).
    pub files: BTreeMap<String, Vec<u8>>,
    /// The trace digest and event count.
    pub trace: Option<(u64, u64)>,
    /// Faults injected, by kind, in [`super::workload::FAULT_KINDS`] order.
    pub injected: [u64; 7],
}

/// A broken invariant: which, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Its kind (what shrinking keeps failing on).
    pub kind: &'static str,
    /// What was seen.
    pub detail: String,
}

impl Violation {
    fn new(kind: &'static str, detail: String) -> Self {
        Self { kind, detail }
    }
}

/// Invariant checks one run makes, for the summary.
pub const CHECKS_PER_RUN: u64 = 5;

/// A host directory of its own for one run, removed when dropped.
struct HostDir(PathBuf);

impl HostDir {
    fn new(seed: u64) -> std::io::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("vessel-swarm-{}-{seed}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files_of(dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    if let Ok(list) = std::fs::read_dir(dir) {
        for e in list.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            out.insert(name, std::fs::read(e.path()).unwrap_or_default());
        }
    }
}

/// Run `w` once.
///
/// # Errors
/// A [`Violation`] for what the run itself shows broken (the kernel did
/// not return, a baseline was not met).
pub fn run(w: &Workload) -> Result<Outcome, Violation> {
    let f = w.faults;
    let config = Config {
        cpus: w.cpus,
        memory: w.memory_mib << 20,
        window: 1 << 40,
        deterministic: Some(w.seed),
        capture_console: true,
        faults: hal_hosted::Faults {
            host_io_errors: f.io,
            slow_io: f.slow_io,
            spurious_irqs: f.irqs,
            timer_skew: f.skew,
            cpu_stalls: f.stalls,
        },
    };
    let host = if w.uses_host() {
        Some(HostDir::new(w.seed).map_err(|e| Violation::new("setup", e.to_string()))?)
    } else {
        None
    };
    let dirs: Vec<PathBuf> = host.iter().map(|h| h.0.clone()).collect();
    let hosted = Hosted::with_dirs(&config, &dirs)
        .map_err(|e| Violation::new("setup", format!("machine: {e}")))?;
    let tolerant = f.frames > 0 || f.io > 0;
    let modules: Vec<Arc<[u8]>> = w
        .procs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            wat::parse_str(p.wat(i, LIMIT_PAGES, tolerant))
                .map(Into::into)
                .map_err(|e| Violation::new("setup", format!("process {i}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let result = std::sync::Mutex::new(None);
    let booted = hal_hosted::boot_quiet_into(&hosted, |kernel| {
        let frames = kernel.frames();
        let before = (
            frames.free_frames(),
            frames.promised_frames(),
            kernel.code().len(),
        );
        frames.inject_refusals(w.seed, f.frames);
        let scoped = kernel_core::boot::with_executor(kernel, |exec| {
            proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
                let pids: Vec<_> = w
                    .procs
                    .iter()
                    .zip(&modules)
                    .enumerate()
                    .map(|(i, (p, module))| {
                        let program = Program {
                            args: vec![format!("p{i}").into_bytes()],
                            mounts: if dirs.is_empty() {
                                Vec::new()
                            } else {
                                vec![Mount {
                                    guest: b"/h".to_vec(),
                                    host: 0,
                                }]
                            },
                            ..Program::default()
                        };
                        let options = SpawnOptions {
                            deadline: Some(if p.end == End::Spin {
                                SPIN_DEADLINE
                            } else {
                                DEADLINE
                            }),
                            ..procs.defaults()
                        };
                        procs
                            .spawn_program(
                                &format!("p{i}"),
                                module.clone(),
                                Vec::new(),
                                options,
                                program,
                            )
                            .ok()
                    })
                    .collect();
                // The kills, in time order.
                let mut kills: Vec<(u32, usize)> = w
                    .procs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| p.kill_at_ms.map(|t| (t, i)))
                    .collect();
                kills.sort_unstable();
                let mut now = 0;
                for (at, i) in kills {
                    procs
                        .exec()
                        .sleep(Duration::from_millis(u64::from(at - now)))
                        .await;
                    now = at;
                    if let Some(pid) = pids[i] {
                        procs.kill(pid);
                    }
                }
                let mut infos: Vec<Option<ProcInfo>> = Vec::new();
                for pid in &pids {
                    infos.push(match pid {
                        Some(pid) => procs.reap(*pid).await,
                        None => None,
                    });
                }
                let mut files = BTreeMap::new();
                let fs = procs.fs();
                if let Ok(entries) = fs.read_dir(ROOT) {
                    for (name, ino, _) in entries.iter().skip(2) {
                        let size = fs.stat(*ino).map_or(0, |s| s.size);
                        let mut buf = vec![0; usize::try_from(size).unwrap_or(0)];
                        let n = fs.read(*ino, 0, &mut buf, 0).unwrap_or(0);
                        buf.truncate(n);
                        files.insert(String::from_utf8_lossy(name).into_owned(), buf);
                    }
                }
                // Children leave the table a moment after their parent
                // (their last handle) is gone: wait for that, boundedly.
                let empty = async {
                    while procs.count() > 0 {
                        procs.exec().sleep(Duration::from_millis(1)).await;
                    }
                };
                let _ = procs.exec().timeout(EMPTY_WITHIN, empty).await;
                let left = procs.count();
                (infos, files, left)
            })
        });
        let refused = frames.refusals_injected();
        frames.inject_refusals(0, 0);
        // Idle pooled regions are the kernel's cache, not a leak.
        kernel.release_idle();
        let after = (
            frames.free_frames(),
            frames.promised_frames(),
            kernel.code().len(),
        );
        if let Ok(mut r) = result.lock() {
            *r = Some((scoped, before, after, refused));
        }
        0
    });
    match booted {
        Ok(0) => {}
        Ok(code) => {
            return Err(Violation::new(
                "kernel",
                format!("the kernel returned {code}"),
            ));
        }
        Err(e) => return Err(Violation::new("kernel", format!("the machine failed: {e}"))),
    }
    let Some((scoped, before, after, refused)) = result.into_inner().ok().flatten() else {
        return Err(Violation::new(
            "kernel",
            "the workload did not finish".to_owned(),
        ));
    };
    let (infos, mut files, left) =
        scoped.map_err(|e| Violation::new("kernel", format!("no process scope: {e}")))?;
    if left != 0 {
        return Err(Violation::new(
            "baseline",
            format!("{left} processes left in the table"),
        ));
    }
    if before != after {
        return Err(Violation::new(
            "baseline",
            format!(
                "(free frames, promised frames, code objects) {before:?} before, {after:?} after"
            ),
        ));
    }
    if let Some(h) = &host {
        files_of(&h.0, &mut files);
    }
    let counts = hosted.faults_injected();
    let kills = w.procs.iter().filter(|p| p.kill_at_ms.is_some()).count() as u64;
    Ok(Outcome {
        ends: infos.iter().map(|i| i.as_ref().map(|i| i.status)).collect(),
        files,
        trace: hosted.trace_summary().map(|t| (t.digest, t.events)),
        injected: [
            refused,
            kills,
            counts.host_io_errors,
            counts.slow_io,
            counts.spurious_irqs,
            counts.timer_skew,
            counts.cpu_stalls,
        ],
    })
}

/// The end a process reaches when nothing stops it.
fn natural(end: End) -> ExitStatus {
    match end {
        End::Return => ExitStatus::Exited(0),
        End::Exit(c) => ExitStatus::Exited(i32::from(c)),
        End::Trap => ExitStatus::Trapped(TrapKind::Unreachable),
        End::Spin => ExitStatus::Killed(KillReason::Deadline),
    }
}

/// Check `out` against the model of `w`.
///
/// # Errors
/// The first broken invariant.
pub fn model(w: &Workload, out: &Outcome) -> Result<(), Violation> {
    let frames = w.faults.frames > 0;
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut maybe: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (i, (p, end)) in w.procs.iter().zip(&out.ends).enumerate() {
        let natural = natural(p.end);
        // A spinning process's deadline may come before its operations
        // are done: what it leaves is not certain.
        let completed = *end == Some(natural) && p.end != End::Spin;
        match end {
            None if frames => {}
            None => {
                return Err(Violation::new(
                    "process",
                    format!("process {i} was not spawned"),
                ));
            }
            Some(ExitStatus::Exited(c)) if *c >= 100 => {
                let op = usize::try_from((c - 100) / 8).unwrap_or(0);
                return Err(Violation::new(
                    "self-check",
                    format!(
                        "process {i} failed its check {c} in op {op} ({:?})",
                        p.ops.get(op)
                    ),
                ));
            }
            Some(s) if *s == natural => {}
            Some(ExitStatus::Killed(KillReason::Request)) if p.kill_at_ms.is_some() => {}
            Some(ExitStatus::Failed(_)) if frames => {}
            Some(s) => {
                return Err(Violation::new(
                    "process",
                    format!("process {i} ended {s:?}, expected {natural:?}"),
                ));
            }
        }
        for (k, op) in p.ops.iter().enumerate() {
            if let Op::File {
                host,
                len,
                byte,
                keep,
            } = op
            {
                let name = format!("{}{i}_{k}", if *host { 'h' } else { 'w' });
                let bytes = vec![*byte; usize::try_from(*len).unwrap_or(0)];
                let certain = completed && *keep && !(*host && w.faults.io > 0);
                if certain {
                    expected.insert(name, bytes);
                } else {
                    maybe.insert(name, bytes);
                }
            }
        }
    }
    for (name, bytes) in &expected {
        match out.files.get(name) {
            Some(b) if b == bytes => {}
            Some(b) => {
                return Err(Violation::new(
                    "files",
                    format!("{name} holds {} bytes, not its {}", b.len(), bytes.len()),
                ));
            }
            None => return Err(Violation::new("files", format!("{name} is missing"))),
        }
    }
    for (name, b) in &out.files {
        if expected.contains_key(name) {
            continue;
        }
        match maybe.get(name) {
            Some(bytes) if b.is_empty() || b == bytes => {}
            Some(_) => {
                return Err(Violation::new(
                    "files",
                    format!("{name} holds {} bytes, neither none nor all", b.len()),
                ));
            }
            None => {
                return Err(Violation::new(
                    "files",
                    format!("{name} is not the workload's"),
                ));
            }
        }
    }
    Ok(())
}

/// Run `w`, check it, and (with `replay`) run it again and compare.
///
/// # Errors
/// The first broken invariant.
pub fn check(w: &Workload, replay: bool) -> Result<Outcome, Violation> {
    let out = run(w)?;
    model(w, &out)?;
    if replay {
        let again = run(w)?;
        if again != out {
            return Err(Violation::new(
                "replay",
                format!(
                    "a second run differs: trace {:?} then {:?}, ends {:?} then {:?}",
                    out.trace, again.trace, out.ends, again.ends
                ),
            ));
        }
    }
    Ok(out)
}
