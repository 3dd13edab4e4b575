//! The default workload: a handful of wasm processes on every CPU, then a
//! summary table.
//!
//! The programs (`kernel-core/demo/*.wat`, assembled by the build script)
//! cover what the scheduler must do: CPU-bound work (`compute`, one per
//! CPU), SIMD work checked against the same sums done lane by lane
//! (`vector`, one per CPU, so it is preempted mid-loop with live vector
//! values and may resume on another CPU), a ping-pong pair talking over two
//! channels, a sleeper, a process that traps, and one that loops forever
//! until its deadline kills it. Each has an expected end; the workload
//! succeeds iff every process ended as expected. On a CPU without SIMD
//! (riscv without V) `vector` must be refused at compile time with the
//! byte offset of its first `v128`.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;
use core::time::Duration;

use crate::exit;
use crate::hal::Platform;
use crate::kernel::Kernel;
use crate::proc::{self, ExitStatus, KillReason, LoadError, Object, ProcInfo, SpawnOptions};
use crate::sched::{Executor, SchedHal};
use crate::wasm::TrapKind;

const COMPUTE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/compute.wasm"));
const PING: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ping.wasm"));
const PONG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pong.wasm"));
const SLEEPER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sleeper.wasm"));
const TRAP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trap.wasm"));
const SPIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/spin.wasm"));
const VECTOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vector.wasm"));

/// How long the endless loop runs before its deadline kills it.
const SPIN_DEADLINE: Duration = Duration::from_millis(300);

/// How a demo process should end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Exit0,
    Trap(TrapKind),
    Killed(KillReason),
    /// Refused when loaded as unsupported here, at a byte offset inside
    /// the module.
    Refused,
}

impl Expect {
    fn holds(self, status: ExitStatus) -> bool {
        match self {
            Self::Exit0 => status == ExitStatus::Exited(0),
            Self::Trap(k) => status == ExitStatus::Trapped(k),
            Self::Killed(r) => status == ExitStatus::Killed(r),
            Self::Refused => {
                matches!(status, ExitStatus::Failed(LoadError::Unsupported { at, .. }) if at > 0)
            }
        }
    }
}

/// Settings of the demo's processes: small programs, so a 512 KiB stack
/// (a stack is committed in full when the process starts, INV-MEM-2), and
/// two per CPU plus five fit the default 512 MiB at 256 CPUs.
const DEMO_OPTIONS: SpawnOptions = SpawnOptions {
    stack: 512 << 10,
    ..SpawnOptions::DEFAULT
};

/// Run the demo on `kernel` with `exec` (the calling CPU becomes a worker;
/// the others should already run [`Executor::run_worker`]). Prints the
/// processes' output, then the summary table; returns the exit status.
pub fn run<P: Platform + SchedHal>(kernel: &Kernel<'_, P>, exec: &Executor<'_, P>) -> u8 {
    let hal = kernel.hal();
    let cpus = hal.cpu_count();
    let outcome = proc::run(kernel, exec, DEMO_OPTIONS, |procs| async move {
        let mut expected = Vec::new();
        let mut spawn = |name: &str, bytes: &'static [u8], handles, options, expect| match procs
            .spawn(name, Arc::from(bytes), handles, options)
        {
            Ok(pid) => expected.push((pid, expect)),
            Err(e) => crate::boot::say(procs.kernel().hal(), format_args!("demo: {e}")),
        };
        let defaults = procs.defaults();
        for _ in 0..cpus {
            spawn("compute", COMPUTE, Vec::new(), defaults, Expect::Exit0);
        }
        let simd = procs.kernel().host_compiler().is_ok_and(|c| c.simd());
        let vector = if simd { Expect::Exit0 } else { Expect::Refused };
        for _ in 0..cpus {
            spawn("vector", VECTOR, Vec::new(), defaults, vector);
        }
        let (to_pong, from_ping) = proc::new_channel(procs.kernel().hal(), 1);
        let (to_ping, from_pong) = proc::new_channel(procs.kernel().hal(), 1);
        spawn(
            "ping",
            PING,
            vec![Object::Sender(to_pong), Object::Receiver(from_pong)],
            defaults,
            Expect::Exit0,
        );
        spawn(
            "pong",
            PONG,
            vec![Object::Receiver(from_ping), Object::Sender(to_ping)],
            defaults,
            Expect::Exit0,
        );
        spawn("sleeper", SLEEPER, Vec::new(), defaults, Expect::Exit0);
        spawn(
            "trap",
            TRAP,
            Vec::new(),
            defaults,
            Expect::Trap(TrapKind::IntegerDivideByZero),
        );
        let spin = SpawnOptions {
            deadline: Some(SPIN_DEADLINE),
            ..defaults
        };
        spawn(
            "spin",
            SPIN,
            Vec::new(),
            spin,
            Expect::Killed(KillReason::Deadline),
        );
        for (pid, _) in &expected {
            let _ = procs.wait(*pid).await;
        }
        (expected, procs.info())
    });
    let Ok((expected, info)) = outcome else {
        crate::boot::say(hal, format_args!("demo: this CPU cannot run the executor"));
        return exit::FAILED;
    };
    let mut ok = expected.len() == info.len();
    let rows: Vec<(ProcInfo, bool)> = info
        .into_iter()
        .map(|p| {
            let good = expected
                .iter()
                .find(|(pid, _)| *pid == p.pid)
                .is_some_and(|(_, e)| e.holds(p.status));
            ok &= good;
            (p, good)
        })
        .collect();
    hal.write(table(cpus, &rows).as_bytes());
    if ok { exit::SUCCESS } else { exit::FAILED }
}

/// The summary: one row per process and a verdict line.
fn table(cpus: usize, rows: &[(ProcInfo, bool)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "demo: {} processes on {cpus} CPUs", rows.len());
    let _ = writeln!(
        s,
        "  {:>3}  {:<8} {:>9} {:>6} {:>3}  {:<36} as expected",
        "pid", "process", "cpu time", "slices", "cpu", "status"
    );
    for (p, good) in rows {
        let ms = p.cpu_time.as_micros() as f64 / 1000.0;
        let _ = writeln!(
            s,
            "  {:>3}  {:<8} {:>6.1} ms {:>6} {:>3}  {:<36} {}",
            p.pid.0,
            p.name,
            ms,
            p.slices,
            p.last_cpu,
            format!("{}", p.status),
            if *good { "yes" } else { "NO" }
        );
    }
    let bad = rows.iter().filter(|(_, g)| !g).count();
    let _ = writeln!(s, "demo: {} as expected, {bad} not", rows.len() - bad);
    s
}
