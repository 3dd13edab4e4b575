//! A whole hosted machine for process tests: boot it, run a scenario in a
//! process scope on it, and wait for processes under a guard that fails
//! the test instead of hanging it (no test passes or fails on a timing
//! threshold; the guard only bounds a hang).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal_hosted::{Config, Hosted};
use kernel_core::kernel::Kernel;
use kernel_core::proc::{self, ExitStatus, Pid, Procs, SpawnOptions};
use kernel_core::sched::Executor;
use kernel_core::wasm::cache::ArtifactCounts;

/// How long any one wait may take before the test fails.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// The binary of the test's own module text (a typo in it panics).
pub fn wat(text: &str) -> Arc<[u8]> {
    let buf = wast::parser::ParseBuffer::new(text).expect("lex");
    let mut m: wast::Wat<'_> = wast::parser::parse(&buf).expect("parse");
    m.encode().expect("encode").into()
}

/// Boot a `cpus`-CPU machine and run `scenario` in a process scope on it;
/// its result. Assertions happen outside the kernel, on the result.
pub fn on_machine<T: Send>(
    cpus: usize,
    scenario: impl for<'k, 'h> FnOnce(&'k Kernel<'h, Hosted>, &Executor<'h, Hosted>) -> T + Send,
) -> T {
    on_config(&machine(cpus), scenario).0
}

/// The machine [`on_machine`] boots: `cpus` CPUs, 256 MiB, a 1 TiB window.
pub fn machine(cpus: usize) -> Config {
    Config {
        cpus,
        memory: 256 << 20,
        window: 1 << 40,
        ..Config::default()
    }
}

/// `bytes` as the text of a WAT data string (`\xx` per byte), to embed a
/// module in another.
pub fn wat_data(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A deterministic machine ([`Config::deterministic`]) of `cpus` CPUs run
/// from `seed`, otherwise as [`machine`].
pub fn deterministic(cpus: usize, seed: u64) -> Config {
    Config {
        deterministic: Some(seed),
        ..machine(cpus)
    }
}

/// Run `module` alone, as process `name` with `options`, in a scope whose
/// defaults are `defaults` on a machine built from `config`; how it ended.
pub fn run_alone(
    config: &Config,
    defaults: SpawnOptions,
    name: &str,
    module: Arc<[u8]>,
    options: SpawnOptions,
) -> Option<ExitStatus> {
    on_config(config, |kernel, exec| {
        proc::run(kernel, exec, defaults, |procs| async move {
            let pid = procs
                .spawn(name, module, Vec::new(), options)
                .expect("spawn");
            wait(&procs, pid).await
        })
        .expect("process scope")
    })
    .0
}

/// [`on_machine`] on a machine built from `config`; also the trace summary
/// of a deterministic machine.
pub fn on_config<T: Send>(
    config: &Config,
    scenario: impl for<'k, 'h> FnOnce(&'k Kernel<'h, Hosted>, &Executor<'h, Hosted>) -> T + Send,
) -> (T, Option<hal_hosted::TraceSummary>) {
    let out = Mutex::new(None);
    let hosted = Hosted::new(config).expect("machine");
    let status = hal_hosted::boot_into(&hosted, |kernel| {
        let r = kernel_core::boot::with_executor(kernel, |exec| scenario(kernel, exec));
        *out.lock().expect("result lock") = Some(r);
        0
    })
    .expect("boot");
    assert_eq!(status, 0);
    let r = out
        .into_inner()
        .expect("result lock")
        .expect("the scenario ran");
    (r, hosted.trace_summary())
}

/// Wait for `pid` under the hang guard.
pub async fn wait(procs: &Procs<'_, '_, Hosted>, pid: Pid) -> Option<ExitStatus> {
    procs
        .exec()
        .timeout(HANG_GUARD, procs.wait(pid))
        .await
        .ok()
        .flatten()
}

/// Wait (under the hang guard) until the scope's table is empty: processes
/// leave it a moment after their last handle or status is let go. How
/// many are left.
pub async fn emptied(procs: &Procs<'_, '_, Hosted>) -> usize {
    let empty = async {
        while procs.count() > 0 {
            procs.exec().sleep(Duration::from_millis(1)).await;
        }
    };
    let _ = procs.exec().timeout(HANG_GUARD, empty).await;
    procs.count()
}

/// How a program ended and what it wrote.
#[derive(Debug)]
pub struct Ran {
    /// Its status (`None`: the hang guard ran out).
    pub status: Option<ExitStatus>,
    /// Its standard output (after the kernel's boot banner).
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Deterministic mode: the run's trace summary.
    pub trace: Option<hal_hosted::TraceSummary>,
    /// What became of compiled-module artifacts ([`With::cache`]).
    pub artifacts: ArtifactCounts,
}

/// What [`run_program_with`] gives a program besides its module.
#[derive(Debug, Default)]
pub struct With {
    /// Host directories the machine may mount (`Mount::host` is an index).
    pub dirs: Vec<PathBuf>,
    /// Its standard input, then end of input.
    pub stdin: Vec<u8>,
    /// Run deterministically from this seed ([`deterministic`]).
    pub seed: Option<u64>,
    /// Keep compiled modules in this directory ([`Hosted::set_code_cache`]).
    pub cache: Option<PathBuf>,
}

/// Run `module` as a process named `prog` with `program` on a 2-CPU
/// machine that captures its console.
pub fn run_program(module: Arc<[u8]>, program: proc::Program) -> Ran {
    run_program_with(module, program, With::default())
}

/// [`run_program`], with host directories and standard input.
pub fn run_program_with(module: Arc<[u8]>, program: proc::Program, with: With) -> Ran {
    let config = Config {
        capture_console: true,
        deterministic: with.seed,
        ..machine(2)
    };
    let hosted = Hosted::with_dirs(&config, &with.dirs).expect("machine");
    hosted.set_input(&with.stdin);
    hosted.set_code_cache(with.cache);
    let status = Mutex::new(None);
    let artifacts = Mutex::new(ArtifactCounts::default());
    let code = hal_hosted::boot_quiet_into(&hosted, |kernel| {
        let s = kernel_core::boot::with_executor(kernel, |exec| {
            proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
                let defaults = procs.defaults();
                let pid = procs
                    .spawn_program("prog", module, Vec::new(), defaults, program)
                    .expect("spawn");
                wait(&procs, pid).await
            })
            .expect("process scope")
        });
        *status.lock().expect("status") = s;
        *artifacts.lock().expect("artifacts") = kernel.modules().artifacts();
        0
    })
    .expect("boot");
    assert_eq!(code, 0);
    let text = |b: Option<Vec<u8>>| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
    Ran {
        status: status.into_inner().expect("status"),
        stdout: text(hosted.captured_console()),
        stderr: text(hosted.captured_errors()),
        trace: hosted.trace_summary(),
        artifacts: artifacts.into_inner().expect("artifacts"),
    }
}
