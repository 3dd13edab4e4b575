//! A swarm workload: what one seed runs, drawn from the seed, and its
//! text form (the replay file `sim swarm --replay FILE` reads).
//!
//! A workload is a machine (CPUs, memory), the faults it injects, and a
//! few processes. Each process is a list of operations and an end; it is
//! built as a WAT module ([`Proc::wat`]) that checks what each operation
//! gives back and exits with a code of 100 or more at the first check
//! that fails (a kernel bug the process itself can see: a lost message,
//! a file that reads back wrong, a memory that grew past its limit). The
//! model of how each process must end and what files it leaves is in
//! `check`.
//!
//! About one process in four is a twin: it does what an earlier process
//! without file operations does and ends the same way (its kill time is
//! its own), so its module has the same bytes and the kernel shares one
//! compiled module, its code and its stubs between them, under the
//! seed's kills and faults. Twins are drawn from a generator of their own,
//! so the other draws of a seed are as they were before twins existed.
//!
//! Invariant INV-SWARM-1: the same seed and faults give the same
//! workload, and [`Workload::to_text`] then [`Workload::parse`] gives it
//! back unchanged.

use std::fmt::Write as _;

/// The random numbers of a workload (splitmix64): small, seedable, and
/// the same on every host.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5157_4152_4d21_0001)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.bits() % (hi - lo + 1)
    }

    /// True `per_mille` times in 1,000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.bits() % 1000 < per_mille
    }
}

/// The kinds of fault a sweep may inject.
pub const FAULT_KINDS: [&str; 7] = ["frames", "kills", "io", "slow-io", "irqs", "skew", "stalls"];

/// The rates of each fault kind, per mille (0: off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Frame promises refused to processes.
    pub frames: u16,
    /// Processes killed at a random time (per mille of processes).
    pub kills: u16,
    /// Host-file requests failing with an I/O error.
    pub io: u16,
    /// Host-file requests completing late.
    pub slow_io: u16,
    /// Spurious interrupts.
    pub irqs: u16,
    /// Late timers.
    pub skew: u16,
    /// Stalled CPUs.
    pub stalls: u16,
}

impl Faults {
    /// The rate of kind `name` (one of [`FAULT_KINDS`]).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut u16> {
        Some(match name {
            "frames" => &mut self.frames,
            "kills" => &mut self.kills,
            "io" => &mut self.io,
            "slow-io" => &mut self.slow_io,
            "irqs" => &mut self.irqs,
            "skew" => &mut self.skew,
            "stalls" => &mut self.stalls,
            _ => return None,
        })
    }

    /// The rates as `(kind, rate)`, in [`FAULT_KINDS`] order.
    pub fn list(&self) -> [(&'static str, u16); 7] {
        [
            ("frames", self.frames),
            ("kills", self.kills),
            ("io", self.io),
            ("slow-io", self.slow_io),
            ("irqs", self.irqs),
            ("skew", self.skew),
            ("stalls", self.stalls),
        ]
    }
}

/// One operation of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A loop of this many rounds of arithmetic.
    Compute(u32),
    /// `memory.grow` by this many pages.
    Grow(u32),
    /// Write a file of `len` bytes of `byte` on the tmpfs (`host`: on the
    /// host directory mounted at `/h`), read it back and check it; keep it
    /// or unlink it.
    File {
        /// On the mounted host directory.
        host: bool,
        /// Bytes.
        len: u32,
        /// The byte every position holds.
        byte: u8,
        /// Left in place at the end.
        keep: bool,
    },
    /// Send this many numbered messages on a channel to itself and take
    /// them back in order.
    Channel(u32),
    /// Spawn a child that sends this many numbered messages on a channel
    /// and exits with how many it sent; take them in order and check the
    /// count against the child's exit code.
    Pipe(u32),
    /// Sleep this many milliseconds through `poll_oneoff`.
    Sleep(u32),
    /// Write `len` bytes of `byte` into a kernel pipe (`vessel.pipe`, WASI
    /// descriptors), close its write end, read to the end of the stream
    /// and check every byte came back once.
    Stream {
        /// Bytes (at most one pipe chunk: the writer is also the reader).
        len: u32,
        /// The byte every position holds.
        byte: u8,
    },
    /// A chain of this many tail calls (`return_call`), each adding its
    /// count to an accumulator; check the sum. Up to 100,000 deep, more
    /// frames than a process's stack holds: it runs in constant stack and
    /// is preempted at function entries.
    TailCalls(u32),
    /// A loop of this many `call_ref`s through a typed function reference
    /// (`(ref null $step)`, made non-null by `br_on_null`), each adding
    /// its count to an accumulator; check the sum.
    CallRefs(u32),
    /// A loop of this many exceptions, each thrown by a called function
    /// with its count and caught by value (`try_table` / `catch`) in the
    /// loop; check the sum. Caught by value, none is kept.
    Throws(u32),
    /// A loop of this many atomic adds of its count to a scratch cell,
    /// each beside a byte-wide compare-exchange of the next cell; check
    /// the sum, and that `notify` on the (unshared) memory wakes nobody.
    Atomics(u32),
    /// On a cell of a shared memory nobody notifies: a `notify` wakes
    /// nobody, a `wait` for another value returns at once, and a `wait`
    /// for the value it holds sleeps this many ms and times out (the
    /// process is suspended meanwhile; a kill may end it there).
    Waits(u32),
    /// In a second, 64-bit memory: fill the last `len` bytes of its first
    /// page with `byte`, copy them into the main memory and check them;
    /// grow it by a page (`memory.grow` speaks `i64`; faults may refuse).
    Wide {
        /// Bytes (at most [`MAX_WIDE`]).
        len: u32,
        /// The byte every position holds.
        byte: u8,
    },
}

/// How a process ends after its operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Return from `_start` (exit 0).
    Return,
    /// `proc_exit` with this code (below 100).
    Exit(u8),
    /// `unreachable`.
    Trap,
    /// Loop until its deadline kills it.
    Spin,
}

/// One process of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    /// What it does, in order.
    pub ops: Vec<Op>,
    /// How it ends.
    pub end: End,
    /// Killed by the scope this many ms after the start, if at all.
    pub kill_at_ms: Option<u32>,
}

/// Everything one seed runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The seed it was drawn from (also the machine's interleaving seed).
    pub seed: u64,
    /// CPUs of the machine.
    pub cpus: usize,
    /// MiB of memory of the machine.
    pub memory_mib: u64,
    /// The faults it injects.
    pub faults: Faults,
    /// Its processes, started in order.
    pub procs: Vec<Proc>,
}

/// Pages a process may grow its memory by in one step, at most.
pub const MAX_GROW: u32 = 64;
/// Most messages of one `Channel` op (the channel's capacity).
pub const MAX_MESSAGES: u32 = 16;
/// Most tail calls of one `TailCalls` op.
pub const MAX_TAIL_CALLS: u32 = 100_000;
/// Most calls of one `CallRefs` op.
pub const MAX_CALL_REFS: u32 = 100_000;
/// Most exceptions of one `Throws` op.
pub const MAX_THROWS: u32 = 20_000;
/// Most atomic adds of one `Atomics` op.
pub const MAX_ATOMICS: u32 = 100_000;
/// Most ms of one `Waits` op.
pub const MAX_WAIT_MS: u32 = 20;
/// Most bytes of one `Wide` op (they land at 98304 in the main memory).
pub const MAX_WIDE: u32 = 32 << 10;

impl Workload {
    /// The workload of `seed` with the fault kinds `enabled` may inject (a
    /// kind is on for about half the seeds, at a rate drawn from the seed).
    pub fn generate(seed: u64, enabled: &Faults) -> Self {
        let mut rng = Rng::new(seed);
        let mut faults = Faults::default();
        for (name, on) in enabled.list() {
            if on > 0
                && rng.chance(500)
                && let Some(rate) = faults.get_mut(name)
            {
                *rate = u16::try_from(rng.range(1, u64::from(on))).unwrap_or(on);
            }
        }
        let cpus = usize::try_from(rng.range(1, 4)).unwrap_or(1);
        let memory_mib = 64 * rng.range(1, 4);
        let n = rng.range(1, 6);
        let mut procs = (0..n)
            .map(|_| {
                let ops = (0..rng.range(0, 6)).map(|_| op(&mut rng)).collect();
                let end = match rng.range(0, 9) {
                    0 => End::Trap,
                    1 => End::Spin,
                    2..=4 => End::Exit(u8::try_from(rng.range(1, 99)).unwrap_or(1)),
                    _ => End::Return,
                };
                let kill_at_ms = (faults.kills > 0 && rng.chance(u64::from(faults.kills)))
                    .then(|| u32::try_from(rng.range(0, 50)).unwrap_or(0));
                Proc {
                    ops,
                    end,
                    kill_at_ms,
                }
            })
            .collect::<Vec<Proc>>();
        let mut twins = Rng::new(seed ^ 0x7477_696e_7300_0000);
        for i in 1..procs.len() {
            if !twins.chance(250) {
                continue;
            }
            let of = usize::try_from(twins.range(0, (i - 1) as u64)).unwrap_or(0);
            let earlier = &procs[of];
            if earlier.ops.iter().any(|o| matches!(o, Op::File { .. })) {
                continue;
            }
            let (ops, end) = (earlier.ops.clone(), earlier.end);
            procs[i].ops = ops;
            procs[i].end = end;
        }
        Self {
            seed,
            cpus,
            memory_mib,
            faults,
            procs,
        }
    }

    /// Whether any process uses the mounted host directory.
    pub fn uses_host(&self) -> bool {
        self.procs
            .iter()
            .flat_map(|p| &p.ops)
            .any(|o| matches!(o, Op::File { host: true, .. }))
    }

    /// The replay file's text (INV-SWARM-1).
    pub fn to_text(&self) -> String {
        let mut s = String::from("vessel-swarm 1\n");
        let _ = writeln!(s, "seed {}", self.seed);
        let _ = writeln!(s, "cpus {}", self.cpus);
        let _ = writeln!(s, "memory-mib {}", self.memory_mib);
        for (name, rate) in self.faults.list() {
            let _ = writeln!(s, "fault {name} {rate}");
        }
        for p in &self.procs {
            let kill = p.kill_at_ms.map_or("never".to_owned(), |k| k.to_string());
            let end = match p.end {
                End::Return => "return".to_owned(),
                End::Exit(c) => format!("exit {c}"),
                End::Trap => "trap".to_owned(),
                End::Spin => "spin".to_owned(),
            };
            let _ = writeln!(s, "proc kill {kill} end {end}");
            for op in &p.ops {
                let _ = match op {
                    Op::Compute(n) => writeln!(s, "  compute {n}"),
                    Op::Grow(n) => writeln!(s, "  grow {n}"),
                    Op::File {
                        host,
                        len,
                        byte,
                        keep,
                    } => writeln!(
                        s,
                        "  file {} {len} {byte} {}",
                        if *host { "host" } else { "tmp" },
                        if *keep { "keep" } else { "unlink" }
                    ),
                    Op::Channel(n) => writeln!(s, "  channel {n}"),
                    Op::Pipe(n) => writeln!(s, "  pipe {n}"),
                    Op::Sleep(n) => writeln!(s, "  sleep {n}"),
                    Op::Stream { len, byte } => writeln!(s, "  stream {len} {byte}"),
                    Op::TailCalls(n) => writeln!(s, "  tailcalls {n}"),
                    Op::CallRefs(n) => writeln!(s, "  callrefs {n}"),
                    Op::Throws(n) => writeln!(s, "  throws {n}"),
                    Op::Atomics(n) => writeln!(s, "  atomics {n}"),
                    Op::Waits(ms) => writeln!(s, "  waits {ms}"),
                    Op::Wide { len, byte } => writeln!(s, "  wide {len} {byte}"),
                };
            }
        }
        s
    }

    /// Read a replay file's text.
    ///
    /// # Errors
    /// The first line that is not part of the format, with its number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut w = Self {
            seed: 0,
            cpus: 1,
            memory_mib: 64,
            faults: Faults::default(),
            procs: Vec::new(),
        };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, "vessel-swarm 1")) => {}
            _ => return Err("line 1: expected `vessel-swarm 1`".to_owned()),
        }
        for (i, line) in lines {
            let bad = || format!("line {}: cannot read `{}`", i + 1, line.escape_debug());
            let words: Vec<&str> = line.split_whitespace().collect();
            let num = |k: usize| {
                words
                    .get(k)
                    .and_then(|w| w.parse::<u64>().ok())
                    .ok_or_else(bad)
            };
            let small = |k: usize| num(k).and_then(|n| u32::try_from(n).map_err(|_| bad()));
            match words.as_slice() {
                [] => {}
                ["seed", _] => w.seed = num(1)?,
                ["cpus", _] => {
                    w.cpus = usize::try_from(num(1)?)
                        .ok()
                        .filter(|c| (1..=MAX_CPUS).contains(c))
                        .ok_or_else(bad)?;
                }
                ["memory-mib", _] => {
                    w.memory_mib = Some(num(1)?)
                        .filter(|m| (MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(m))
                        .ok_or_else(bad)?;
                }
                ["fault", name, _] => {
                    let rate = u16::try_from(num(2)?).map_err(|_| bad())?;
                    *w.faults.get_mut(name).ok_or_else(bad)? = rate;
                }
                ["proc", "kill", kill, "end", end @ ..] => {
                    let kill_at_ms = match *kill {
                        "never" => None,
                        _ => Some(small(2)?),
                    };
                    let end = match end {
                        ["return"] => End::Return,
                        ["exit", _] => End::Exit(u8::try_from(num(5)?).map_err(|_| bad())?),
                        ["trap"] => End::Trap,
                        ["spin"] => End::Spin,
                        _ => return Err(bad()),
                    };
                    if w.procs.len() >= MAX_PROCS {
                        return Err(bad());
                    }
                    w.procs.push(Proc {
                        ops: Vec::new(),
                        end,
                        kill_at_ms,
                    });
                }
                [kind, ..] => {
                    let op = match (*kind, words.len()) {
                        ("compute", 2) => Op::Compute(small(1)?),
                        ("grow", 2) => Op::Grow(small(1)?.min(MAX_GROW)),
                        ("channel", 2) => Op::Channel(small(1)?.min(MAX_MESSAGES)),
                        ("pipe", 2) => Op::Pipe(small(1)?.min(MAX_MESSAGES)),
                        ("sleep", 2) => Op::Sleep(small(1)?),
                        ("stream", 3) => Op::Stream {
                            len: small(1)?.min(MAX_FILE),
                            byte: u8::try_from(num(2)?).map_err(|_| bad())?,
                        },
                        ("tailcalls", 2) => Op::TailCalls(small(1)?.min(MAX_TAIL_CALLS)),
                        ("callrefs", 2) => Op::CallRefs(small(1)?.min(MAX_CALL_REFS)),
                        ("throws", 2) => Op::Throws(small(1)?.min(MAX_THROWS)),
                        ("atomics", 2) => Op::Atomics(small(1)?.min(MAX_ATOMICS)),
                        ("waits", 2) => Op::Waits(small(1)?.min(MAX_WAIT_MS)),
                        ("wide", 3) => Op::Wide {
                            len: small(1)?.min(MAX_WIDE),
                            byte: u8::try_from(num(2)?).map_err(|_| bad())?,
                        },
                        ("file", 5) => Op::File {
                            host: words[1] == "host",
                            len: small(2)?.min(MAX_FILE),
                            byte: u8::try_from(num(3)?).map_err(|_| bad())?,
                            keep: words[4] == "keep",
                        },
                        _ => return Err(bad()),
                    };
                    w.procs.last_mut().ok_or_else(bad)?.ops.push(op);
                }
            }
        }
        Ok(w)
    }
}

/// Most CPUs a replay file may ask for.
pub const MAX_CPUS: usize = 64;
/// Least and most MiB of memory a replay file may ask for.
pub const MIN_MEMORY_MIB: u64 = 16;
/// See [`MIN_MEMORY_MIB`].
pub const MAX_MEMORY_MIB: u64 = 64 << 10;
/// Most processes of a replay file.
pub const MAX_PROCS: usize = 64;

/// Most bytes of one file.
pub const MAX_FILE: u32 = 16 << 10;

fn op(rng: &mut Rng) -> Op {
    let small = |rng: &mut Rng, lo, hi| u32::try_from(rng.range(lo, hi)).unwrap_or(1);
    match rng.range(0, 16) {
        0 | 1 => Op::Compute(small(rng, 1, 200_000)),
        2 => Op::Grow(small(rng, 1, u64::from(MAX_GROW))),
        3 | 4 => Op::File {
            host: rng.chance(400),
            len: small(rng, 0, u64::from(MAX_FILE)),
            byte: u8::try_from(rng.range(1, 255)).unwrap_or(1),
            keep: rng.chance(500),
        },
        5 | 6 => Op::Channel(small(rng, 1, u64::from(MAX_MESSAGES))),
        7 => Op::Pipe(small(rng, 1, u64::from(MAX_MESSAGES))),
        8 => Op::Stream {
            len: small(rng, 0, u64::from(MAX_FILE)),
            byte: u8::try_from(rng.range(1, 255)).unwrap_or(1),
        },
        9 => Op::Sleep(small(rng, 0, 20)),
        10 => Op::TailCalls(small(rng, 1, u64::from(MAX_TAIL_CALLS))),
        11 => Op::CallRefs(small(rng, 1, u64::from(MAX_CALL_REFS))),
        12 => Op::Throws(small(rng, 1, u64::from(MAX_THROWS))),
        13 => Op::Atomics(small(rng, 1, u64::from(MAX_ATOMICS))),
        14 => Op::Waits(small(rng, 0, u64::from(MAX_WAIT_MS))),
        _ => Op::Wide {
            len: small(rng, 0, u64::from(MAX_WIDE)),
            byte: u8::try_from(rng.range(1, 255)).unwrap_or(1),
        },
    }
}

/// The WAT of the child a `Pipe` spawns: sends `0..n` on handle 0 (a
/// channel's send end), stops at the first send that fails, and exits
/// with how many it sent.
fn child_wat(n: u32) -> String {
    format!(
        r#"(module
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (import "vessel" "exit" (func $exit (param i32)))
  (memory 1)
  (func (export "_start") (local $i i32)
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
      (i32.store (i32.const 0) (local.get $i))
      (br_if $done (i32.lt_s (call $send (i32.const 0) (i32.const 0) (i32.const 4)) (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $more)))
    (call $exit (local.get $i))))"#
    )
}

/// The helpers every process module has. Memory: bytes 0..1024 scratch,
/// names from 1024, children from 4096, file data at 65536 (written)
/// and 98304 (read back). Self-check failures exit with `code`.
const PRELUDE: &str = r#"
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "chan_create" (func $chan_create (param i32) (result i32)))
  (import "vessel" "chan_send" (func $chan_send (param i32 i32 i32) (result i32)))
  (import "vessel" "chan_recv" (func $chan_recv (param i32 i32 i32) (result i32)))
  (import "vessel" "close" (func $close (param i32) (result i32)))
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "wait" (func $wait (param i32) (result i32)))
  (import "vessel" "pipe" (func $vpipe (param i32) (result i32)))
  (global $mix (mut i32) (i32.const 1))
  (func $check (param $ok i32) (param $code i32)
    (if (i32.eqz (local.get $ok)) (then (call $exit (local.get $code)))))
  (func $compute (param $n i32)
    (block $done (loop $more
      (br_if $done (i32.eqz (local.get $n)))
      (global.set $mix (i32.add (i32.mul (global.get $mix) (i32.const 1103515245)) (i32.const 12345)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $more))))
  ;; must: 0 the grow must fail, 1 it must work, 2 either
  (func $grow (param $pages i32) (param $must i32) (param $code i32)
    (local $r i32)
    (local.set $r (memory.grow (local.get $pages)))
    (if (i32.eq (local.get $must) (i32.const 0))
      (then (call $check (i32.eq (local.get $r) (i32.const -1)) (local.get $code))))
    (if (i32.eq (local.get $must) (i32.const 1))
      (then (call $check (i32.ne (local.get $r) (i32.const -1)) (local.get $code)))))
  ;; n + (n - 1) + ... + 1 added to `acc`, through tail calls only.
  (func $countdown (param $n i32) (param $acc i64) (result i64)
    (if (result i64) (i32.eqz (local.get $n))
      (then (local.get $acc))
      (else (return_call $countdown (i32.sub (local.get $n) (i32.const 1))
        (i64.add (local.get $acc) (i64.extend_i32_u (local.get $n)))))))
  ;; n + (n - 1) + ... + 1 added to 0, one `call_ref` of `$step` each.
  (type $step (func (param i64 i32) (result i64)))
  (func $step (type $step) (i64.add (local.get 0) (i64.extend_i32_u (local.get 1))))
  (elem declare func $step)
  (func $callrefs (param $n i32) (result i64)
    (local $acc i64) (local $f (ref null $step))
    (local.set $f (ref.func $step))
    (block $null
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (local.get $acc))))
        (local.set $acc
          (call_ref $step (local.get $acc) (local.get $n) (br_on_null $null (local.get $f))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (unreachable))
  ;; n + (n - 1) + ... + 1, each count thrown by `$raise` and caught.
  (tag $count (param i32))
  (func $raise (param i32) (throw $count (local.get 0)))
  (func $throws (param $n i32) (result i64)
    (local $acc i64) (local $got i32)
    (loop $next
      (if (i32.eqz (local.get $n)) (then (return (local.get $acc))))
      (block $caught (result i32)
        (try_table (catch $count $caught) (call $raise (local.get $n)))
        (unreachable))
      (local.set $got)
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $got))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next))
    (unreachable))
  ;; n + (n - 1) + ... + 1 in the scratch cell at 512 by atomic adds, a
  ;; byte-wide compare-exchange of the cell after it each time.
  (func $atomics (param $n i32) (result i64)
    (i64.atomic.store (i32.const 512) (i64.const 0))
    (loop $next
      (if (i32.eqz (local.get $n)) (then (return (i64.atomic.load (i32.const 512)))))
      (drop (i64.atomic.rmw.add (i32.const 512) (i64.extend_i32_u (local.get $n))))
      (drop (i32.atomic.rmw8.cmpxchg_u (i32.const 520)
        (i32.atomic.load8_u (i32.const 520)) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next))
    (unreachable))
  ;; 1 when `len` bytes at `ptr` all hold `byte`
  (func $all (param $ptr i32) (param $len i32) (param $byte i32) (result i32)
    (block $bad (loop $more
      (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
      (br_if $bad (i32.ne (i32.load8_u (local.get $ptr)) (local.get $byte)))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
      (local.set $len (i32.sub (local.get $len) (i32.const 1)))
      (br $more)))
    (i32.const 0))
  ;; Write, read back and check a file; tolerant: an errno ends the op
  ;; quietly (faults may refuse it), else it is a failed check.
  (func $file (param $dir i32) (param $name i32) (param $nlen i32) (param $len i32)
              (param $byte i32) (param $keep i32) (param $tolerant i32) (param $code i32)
    (local $fd i32) (local $e i32)
    (local.set $e (call $path_open (local.get $dir) (i32.const 0) (local.get $name) (local.get $nlen)
      (i32.const 9) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 16)))
    (if (local.get $e) (then
      (call $check (local.get $tolerant) (local.get $code))
      (return)))
    (local.set $fd (i32.load (i32.const 16)))
    (memory.fill (i32.const 65536) (local.get $byte) (local.get $len))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (local.get $len))
    (local.set $e (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (i32.or (local.get $e) (i32.ne (i32.load (i32.const 8)) (local.get $len))) (then
      (call $check (local.get $tolerant) (i32.add (local.get $code) (i32.const 1)))
      (drop (call $fd_close (local.get $fd)))
      (drop (call $unlink (local.get $dir) (local.get $name) (local.get $nlen)))
      (return)))
    (local.set $e (call $fd_seek (local.get $fd) (i64.const 0) (i32.const 0) (i32.const 24)))
    (call $check (i32.or (i32.eqz (local.get $e)) (local.get $tolerant)) (i32.add (local.get $code) (i32.const 2)))
    (memory.fill (i32.const 98304) (i32.const 0) (local.get $len))
    (i32.store (i32.const 0) (i32.const 98304))
    (i32.store (i32.const 4) (local.get $len))
    (local.set $e (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (i32.eqz (local.get $e)) (then
      ;; What was read is what was written.
      (call $check (i32.eq (i32.load (i32.const 8)) (local.get $len)) (i32.add (local.get $code) (i32.const 3)))
      (call $check (call $all (i32.const 98304) (local.get $len) (local.get $byte)) (i32.add (local.get $code) (i32.const 4))))
    (else (call $check (local.get $tolerant) (i32.add (local.get $code) (i32.const 5)))))
    (drop (call $fd_close (local.get $fd)))
    (if (i32.eqz (local.get $keep)) (then
      (local.set $e (call $unlink (local.get $dir) (local.get $name) (local.get $nlen)))
      (call $check (i32.or (i32.eqz (local.get $e)) (local.get $tolerant)) (i32.add (local.get $code) (i32.const 6))))))
  ;; Send 0..n to itself, then take them back in order: none lost,
  ;; duplicated or reordered. A refused send (no memory) ends the sends.
  (func $channel (param $n i32) (param $code i32)
    (local $tx i32) (local $rx i32) (local $sent i32) (local $i i32)
    (if (i32.lt_s (call $chan_create (i32.const 32)) (i32.const 0)) (then (return)))
    (local.set $tx (i32.load (i32.const 32)))
    (local.set $rx (i32.load (i32.const 36)))
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $sent) (local.get $n)))
      (i32.store (i32.const 40) (local.get $sent))
      (br_if $done (i32.lt_s (call $chan_send (local.get $tx) (i32.const 40) (i32.const 4)) (i32.const 0)))
      (local.set $sent (i32.add (local.get $sent) (i32.const 1)))
      (br $more)))
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $i) (local.get $sent)))
      (call $check (i32.eq (call $chan_recv (local.get $rx) (i32.const 44) (i32.const 4)) (i32.const 4)) (local.get $code))
      (call $check (i32.eq (i32.load (i32.const 44)) (local.get $i)) (i32.add (local.get $code) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $more)))
    (drop (call $close (local.get $tx)))
    (drop (call $close (local.get $rx))))
  ;; Spawn the child at `ptr`, take its messages until the channel
  ;; closes, in order, and check their count is its exit code (tolerant:
  ;; a child that did not load, refused frames, has none).
  (func $pipe (param $ptr i32) (param $len i32) (param $tolerant i32) (param $code i32)
    (local $tx i32) (local $rx i32) (local $child i32) (local $got i32) (local $r i32)
    (if (i32.lt_s (call $chan_create (i32.const 32)) (i32.const 0)) (then (return)))
    (local.set $tx (i32.load (i32.const 32)))
    (local.set $rx (i32.load (i32.const 36)))
    (i32.store (i32.const 48) (local.get $tx))
    (local.set $child (call $spawn (local.get $ptr) (local.get $len) (i32.const 48) (i32.const 1)))
    (drop (call $close (local.get $tx)))
    (if (i32.lt_s (local.get $child) (i32.const 0)) (then
      (drop (call $close (local.get $rx)))
      (return)))
    (block $done (loop $more
      (local.set $r (call $chan_recv (local.get $rx) (i32.const 52) (i32.const 4)))
      (br_if $done (i32.lt_s (local.get $r) (i32.const 0)))
      (call $check (i32.eq (local.get $r) (i32.const 4)) (local.get $code))
      (call $check (i32.eq (i32.load (i32.const 52)) (local.get $got)) (i32.add (local.get $code) (i32.const 1)))
      (local.set $got (i32.add (local.get $got) (i32.const 1)))
      (br $more)))
    (local.set $r (call $wait (local.get $child)))
    (if (i32.lt_s (local.get $r) (i32.const 0))
      (then (call $check (local.get $tolerant) (i32.add (local.get $code) (i32.const 2))))
      (else (call $check (i32.eq (local.get $r) (local.get $got)) (i32.add (local.get $code) (i32.const 3)))))
    (drop (call $close (local.get $child)))
    (drop (call $close (local.get $rx))))
  ;; Through a kernel pipe and back: `len` bytes of `byte` written, the
  ;; write end closed, read to the end of the stream into 98304; every
  ;; byte back once. A refused pipe or write (no memory) ends the op when
  ;; tolerant.
  (func $stream (param $len i32) (param $byte i32) (param $tolerant i32) (param $code i32)
    (local $r i32) (local $w i32) (local $e i32) (local $got i32) (local $n i32)
    (if (i32.lt_s (call $vpipe (i32.const 32)) (i32.const 0)) (then
      (call $check (local.get $tolerant) (local.get $code))
      (return)))
    (local.set $r (i32.load (i32.const 32)))
    (local.set $w (i32.load (i32.const 36)))
    (memory.fill (i32.const 65536) (local.get $byte) (local.get $len))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (local.get $len))
    (local.set $e (call $fd_write (local.get $w) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $fd_close (local.get $w)))
    (if (i32.or (local.get $e) (i32.ne (i32.load (i32.const 8)) (local.get $len))) (then
      (call $check (local.get $tolerant) (i32.add (local.get $code) (i32.const 1)))
      (drop (call $fd_close (local.get $r)))
      (return)))
    (memory.fill (i32.const 98304) (i32.const 0) (i32.add (local.get $len) (i32.const 1)))
    (block $done (loop $more
      ;; One byte more than is left, so the end of the stream shows.
      (i32.store (i32.const 0) (i32.add (i32.const 98304) (local.get $got)))
      (i32.store (i32.const 4) (i32.add (i32.sub (local.get $len) (local.get $got)) (i32.const 1)))
      (local.set $e (call $fd_read (local.get $r) (i32.const 0) (i32.const 1) (i32.const 8)))
      (call $check (i32.eqz (local.get $e)) (i32.add (local.get $code) (i32.const 2)))
      (local.set $n (i32.load (i32.const 8)))
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $got (i32.add (local.get $got) (local.get $n)))
      (br $more)))
    (call $check (i32.eq (local.get $got) (local.get $len)) (i32.add (local.get $code) (i32.const 3)))
    (call $check (call $all (i32.const 98304) (local.get $len) (local.get $byte)) (i32.add (local.get $code) (i32.const 4)))
    (drop (call $fd_close (local.get $r))))
  (func $sleep (param $ms i64)
    ;; One relative clock subscription (monotonic) at 64, its event at 128.
    (memory.fill (i32.const 64) (i32.const 0) (i32.const 48))
    (i32.store8 (i32.const 72) (i32.const 0))
    (i32.store (i32.const 80) (i32.const 1))
    (i64.store (i32.const 88) (i64.mul (local.get $ms) (i64.const 1000000)))
    (drop (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160))))
"#;

/// The second, 64-bit memory and the `Wide` op: the last `len` bytes of
/// its first page filled with `byte`, copied to 98304 in the main memory
/// and checked; then a grow by one page, which must return the size
/// before it, or -1 when faults may refuse it.
const WIDE: &str = r#"
  (memory $wide i64 1)
  (func $wide (param $len i32) (param $byte i32) (param $tolerant i32) (param $code i32)
    (local $at i64) (local $size i64) (local $r i64)
    (local.set $at (i64.sub (i64.const 65536) (i64.extend_i32_u (local.get $len))))
    (memory.fill $wide (local.get $at) (local.get $byte) (i64.extend_i32_u (local.get $len)))
    (memory.copy 0 $wide (i32.const 98304) (local.get $at) (local.get $len))
    (call $check (call $all (i32.const 98304) (local.get $len) (local.get $byte)) (local.get $code))
    (local.set $size (memory.size $wide))
    (local.set $r (memory.grow $wide (i64.const 1)))
    (if (i64.eq (local.get $r) (i64.const -1))
      (then (call $check (local.get $tolerant) (i32.add (local.get $code) (i32.const 1))))
      (else (call $check (i64.eq (local.get $r) (local.get $size)) (i32.add (local.get $code) (i32.const 2))))))
"#;

/// The shared memory and helper of a process with a `Waits` op.
const SHARED: &str = r#"
  (memory $shared 1 1 shared)
  (func $waits (param $ms i32) (param $code i32)
    (call $check (i32.eqz (memory.atomic.notify $shared (i32.const 0) (i32.const 1)))
      (local.get $code))
    (call $check (i32.eq (memory.atomic.wait32 $shared (i32.const 0) (i32.const 1) (i64.const -1))
      (i32.const 1)) (i32.add (local.get $code) (i32.const 1)))
    (call $check (i32.eq (memory.atomic.wait32 $shared (i32.const 0) (i32.const 0)
      (i64.mul (i64.extend_i32_u (local.get $ms)) (i64.const 1000000)))
      (i32.const 2)) (i32.add (local.get $code) (i32.const 2))))
"#;

/// A string as a WAT data string.
fn data(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

impl Proc {
    /// The process's module as WAT. `index` names its files (`w<index>_<k>`
    /// on the tmpfs at descriptor 3, `h<index>_<k>` on the host directory
    /// at 4); `limit_pages` is the most pages its memory may reach;
    /// `tolerant` accepts what injected faults may refuse.
    pub fn wat(&self, index: usize, limit_pages: u32, tolerant: bool) -> String {
        let mut data_segs = String::new();
        let mut body = String::new();
        let mut names = 1024u32;
        let mut children = 4096u32;
        let mut pages = 2u32;
        let mut least = 2u32;
        let mut wide = false;
        let mut shared = false;
        let t = i32::from(tolerant);
        for (k, op) in self.ops.iter().enumerate() {
            // Each op's checks exit with codes 100 + 8k .. 100 + 8k + 7.
            let code = 100 + 8 * u32::try_from(k).unwrap_or(0);
            match op {
                Op::Compute(n) => {
                    let _ = writeln!(body, "(call $compute (i32.const {n}))");
                }
                Op::Grow(n) => {
                    // The memory's size lies in `least..=pages`: a grow
                    // that may be refused leaves it uncertain.
                    let must = if least.saturating_add(*n) > limit_pages {
                        0
                    } else if tolerant || pages.saturating_add(*n) * 2 > limit_pages {
                        2
                    } else {
                        1
                    };
                    if must == 1 {
                        least += n;
                    }
                    if must != 0 {
                        pages = pages.saturating_add(*n).min(limit_pages);
                    }
                    let _ = writeln!(
                        body,
                        "(call $grow (i32.const {n}) (i32.const {must}) (i32.const {code}))"
                    );
                }
                Op::File {
                    host,
                    len,
                    byte,
                    keep,
                } => {
                    let name = format!("{}{index}_{k}", if *host { 'h' } else { 'w' });
                    let _ = writeln!(data_segs, "(data (i32.const {names}) \"{name}\")");
                    let dir = if *host { 4 } else { 3 };
                    let _ = writeln!(
                        body,
                        "(call $file (i32.const {dir}) (i32.const {names}) (i32.const {}) (i32.const {len}) (i32.const {byte}) (i32.const {}) (i32.const {t}) (i32.const {code}))",
                        name.len(),
                        i32::from(*keep),
                    );
                    names += 32;
                }
                Op::Channel(n) => {
                    let _ = writeln!(body, "(call $channel (i32.const {n}) (i32.const {code}))");
                }
                Op::Pipe(n) => {
                    let child = wat::parse_str(child_wat(*n)).unwrap_or_default();
                    let _ = writeln!(
                        data_segs,
                        "(data (i32.const {children}) \"{}\")",
                        data(&child)
                    );
                    let _ = writeln!(
                        body,
                        "(call $pipe (i32.const {children}) (i32.const {}) (i32.const {t}) (i32.const {code}))",
                        child.len()
                    );
                    children += u32::try_from(child.len()).unwrap_or(0).next_multiple_of(16);
                }
                Op::Sleep(ms) => {
                    let _ = writeln!(body, "(call $sleep (i64.const {ms}))");
                }
                Op::Stream { len, byte } => {
                    let _ = writeln!(
                        body,
                        "(call $stream (i32.const {len}) (i32.const {byte}) (i32.const {t}) (i32.const {code}))"
                    );
                }
                Op::TailCalls(n) | Op::CallRefs(n) | Op::Throws(n) | Op::Atomics(n) => {
                    // Each sums n + (n - 1) + ... + 1 its own way.
                    let call = match op {
                        Op::TailCalls(_) => {
                            format!("(call $countdown (i32.const {n}) (i64.const 0))")
                        }
                        Op::CallRefs(_) => format!("(call $callrefs (i32.const {n}))"),
                        Op::Throws(_) => format!("(call $throws (i32.const {n}))"),
                        _ => format!("(call $atomics (i32.const {n}))"),
                    };
                    let sum = u64::from(*n) * (u64::from(*n) + 1) / 2;
                    let _ = writeln!(
                        body,
                        "(call $check (i64.eq {call} (i64.const {sum})) (i32.const {code}))"
                    );
                    if matches!(op, Op::Atomics(_)) {
                        let _ = writeln!(
                            body,
                            "(call $check (i32.eqz (memory.atomic.notify (i32.const 512) (i32.const 1))) (i32.const {code}))"
                        );
                    }
                }
                Op::Waits(ms) => {
                    shared = true;
                    let _ = writeln!(body, "(call $waits (i32.const {ms}) (i32.const {code}))");
                }
                Op::Wide { len, byte } => {
                    wide = true;
                    let _ = writeln!(
                        body,
                        "(call $wide (i32.const {len}) (i32.const {byte}) (i32.const {t}) (i32.const {code}))"
                    );
                }
            }
        }
        let end = match self.end {
            End::Return => String::new(),
            End::Exit(c) => format!("(call $exit (i32.const {c}))"),
            End::Trap => "(unreachable)".to_owned(),
            End::Spin => {
                "(loop $forever (call $compute (i32.const 1000)) (br $forever))".to_owned()
            }
        };
        // The memory's maximum is the limit, so a grow past it fails
        // whatever the frames. The 64-bit memory comes second, and only
        // with a `Wide` op; the shared one after it, only with a `Waits`.
        let wide = if wide { WIDE } else { "" };
        let shared = if shared { SHARED } else { "" };
        format!(
            "(module {PRELUDE}\n(memory (export \"memory\") 2 {limit_pages})\n{wide}\n{shared}\n{data_segs}\n(func (export \"_start\")\n{body}{end}))"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_is_its_seed_and_its_text() {
        let all = Faults {
            frames: 100,
            kills: 300,
            io: 100,
            slow_io: 200,
            irqs: 100,
            skew: 100,
            stalls: 50,
        };
        let (mut tail, mut refs, mut throws, mut atomics, mut waits, mut wide) = (0, 0, 0, 0, 0, 0);
        for seed in 0..200 {
            let w = Workload::generate(seed, &all);
            assert_eq!(w, Workload::generate(seed, &all));
            assert_eq!(Workload::parse(&w.to_text()), Ok(w.clone()));
            let ops = w.procs.iter().flat_map(|p| &p.ops);
            tail += ops
                .clone()
                .filter(|o| matches!(o, Op::TailCalls(_)))
                .count();
            refs += ops.clone().filter(|o| matches!(o, Op::CallRefs(_))).count();
            throws += ops.clone().filter(|o| matches!(o, Op::Throws(_))).count();
            atomics += ops.clone().filter(|o| matches!(o, Op::Atomics(_))).count();
            waits += ops.clone().filter(|o| matches!(o, Op::Waits(_))).count();
            wide += ops.filter(|o| matches!(o, Op::Wide { .. })).count();
            for (i, p) in w.procs.iter().enumerate() {
                let text = p.wat(i, 64, w.faults.frames > 0);
                let bytes = wat::parse_str(&text)
                    .unwrap_or_else(|e| panic!("seed {seed} proc {i}: {e}\n{text}"));
                // Valid for the kernel, not only well-formed.
                let features = kernel_core::wasm::module::features();
                if let Err(e) = kernel_core::wasm::module::parse(&bytes, features) {
                    panic!("seed {seed} proc {i}: {e}\n{text}");
                }
            }
        }
        // The generator reaches the WebAssembly 3.0 operations too.
        assert!(
            tail >= 20 && refs >= 20 && throws >= 20 && atomics >= 20 && waits >= 20 && wide >= 20,
            "{tail} tail-call ops, {refs} call_ref ops, {throws} throw ops, {atomics} atomic ops, {waits} wait ops, {wide} wide ops"
        );
    }

    #[test]
    fn twins_have_the_same_module_bytes() {
        let mut twins = 0;
        for seed in 0..200 {
            let w = Workload::generate(seed, &Faults::default());
            for (i, p) in w.procs.iter().enumerate() {
                let twin = w.procs[..i]
                    .iter()
                    .enumerate()
                    .find(|(_, q)| q.ops == p.ops && q.end == p.end && !p.ops.is_empty());
                if let Some((j, q)) = twin {
                    twins += 1;
                    assert_eq!(p.wat(i, 64, false), q.wat(j, 64, false), "seed {seed}");
                }
            }
        }
        assert!(twins >= 20, "{twins} twins in 200 seeds");
    }

    #[test]
    fn a_bad_replay_file_names_its_line() {
        assert!(Workload::parse("nope").is_err());
        let e = Workload::parse("vessel-swarm 1\nseed 1\nfrobnicate 3\n");
        assert_eq!(e, Err("line 3: cannot read `frobnicate 3`".to_owned()));
    }
}
