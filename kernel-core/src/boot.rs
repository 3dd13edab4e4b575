//! The boot sequence: a HAL and a command line in, an exit status out.
//!
//! 1. parse the command line;
//! 2. build the kernel value (frame allocator over the HAL's memory map,
//!    window allocator over its kernel window) and print the boot banner
//!    `boot: hal=<name> cpus=<n> memory=<MiB>MiB`, then ` isa=<extensions>`
//!    when the platform names the CPUs' extensions;
//! 3. install CPU 0's local block, enable its interrupts, start every
//!    secondary CPU and wait for it to come online;
//! 4. run the workload the command line names;
//! 5. stop every secondary (flag + IPI), wait for it to leave, clear CPU 0's
//!    block and return the workload's exit status. The platform then calls
//!    its `shutdown` with it.
//!
//! Invariant INV-BOOT-1: `boot` returns only after every CPU that entered
//! the kernel has cleared its local block and left (INV-KERNEL-1); if one
//! does not leave in time, the kernel is leaked rather than freed under it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use core::time::Duration;

use crate::cmdline::{Cmdline, Workload};
use crate::exit;
use crate::fmtbuf::StackBuf;
use crate::hal::{Console, CpuLocal, Platform};
use crate::kernel::{Kernel, REQ_ARM_TIMER};
use crate::sched::Executor;
use crate::{selftest, trap};

/// How long a CPU may take to come online or to leave.
const CPU_TIMEOUT: Duration = Duration::from_secs(10);

/// What the platform hands to [`boot`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BootInfo<'a> {
    /// The kernel command line (see [`crate::cmdline`]).
    pub cmdline: &'a str,
    /// The spec-script bundle `test=spec` runs ([`crate::spec::script`];
    /// empty: none).
    pub spec: &'a [u8],
    /// Bytes of the boot CPU's stack wasm may use under `test=spec`
    /// before it traps with `call stack exhausted` (0: a default).
    pub wasm_stack: usize,
    /// The WASI programs `test=wasi` runs, `(name, module)`
    /// ([`crate::wasi_check`]; empty: none).
    pub wasi: &'a [(&'a str, &'a [u8])],
    /// The boot image, a cpio newc archive ([`crate::init`]; empty:
    /// none), or under `test=diff` a bundle of recorded differential
    /// cases ([`crate::diff::record`]). With one, the default workload is
    /// init.
    pub initrd: &'a [u8],
}

/// What secondary CPUs receive: the kernel and the CPU-local blocks.
struct Shared<'k, 'h, P: Platform> {
    kernel: &'k Kernel<'h, P>,
    locals: &'k [CpuLocal],
}

/// Print one line on the console (no heap).
pub(crate) fn say(console: &impl Console, args: core::fmt::Arguments<'_>) {
    let mut line = StackBuf::<256>::new();
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    console.write(line.as_bytes());
}

/// Boot the kernel on `hal`, run the workload and return its exit status.
/// Runs on the boot CPU (CPU 0) with interrupts masked. A command line it
/// does not understand is one line through [`Console::write_error`] and
/// [`exit::USAGE`].
pub fn boot<P: Platform>(hal: &P, info: BootInfo<'_>) -> u8 {
    let cmdline = match Cmdline::parse(info.cmdline) {
        Ok(c) => c,
        Err(e) => {
            // Room for the message with an escaped word (escape INV-ESC-3).
            let mut line = StackBuf::<1536>::new();
            let _ = writeln!(line, "boot: {e}");
            hal.write_error(line.as_bytes());
            return exit::USAGE;
        }
    };
    let default = if info.initrd.is_empty() {
        Workload::All
    } else {
        Workload::Init
    };
    boot_into(hal, |kernel| match cmdline.workload_or(default) {
        Workload::All => {
            let tests = selftest::run(kernel);
            let demo = with_executor(kernel, |exec| crate::demo::run(kernel, exec));
            tests.max(demo)
        }
        Workload::SelfTest => selftest::run(kernel),
        Workload::Demo => with_executor(kernel, |exec| crate::demo::run(kernel, exec)),
        Workload::Fault => selftest::provoke_fault(kernel),
        Workload::LockFault => selftest::provoke_fault_under_lock(kernel),
        Workload::Overflow => selftest::provoke_stack_overflow(kernel),
        Workload::BigMemory => crate::bigmem::run(kernel, wasm_stack(&info)),
        Workload::Spec => spec_suites(kernel, &info),
        Workload::Diff => diff_bundle(kernel, info.initrd),
        Workload::Wasi => with_executor(kernel, |exec| {
            crate::wasi_check::run(kernel, exec, info.wasi)
        }),
        Workload::Input => with_executor(kernel, |exec| crate::wasi_check::read_line(kernel, exec)),
        Workload::Init => with_executor(kernel, |exec| {
            let args: alloc::vec::Vec<&str> = cmdline.init_args.split_ascii_whitespace().collect();
            let path = cmdline.init.unwrap_or(crate::init::DEFAULT_INIT);
            crate::init::run(kernel, exec, info.initrd, path, &args)
        }),
    })
}

/// Boot the kernel on `hal` with every CPU online, run `workload` on the
/// boot CPU, stop the others and return the workload's status: [`boot`]
/// with the workload given as code (hosted tests use it to run their own
/// scenarios on a whole machine).
pub fn boot_into<P: Platform>(hal: &P, workload: impl FnOnce(&Kernel<'_, P>) -> u8) -> u8 {
    boot_with(hal, true, workload)
}

/// [`boot_into`] without the boot banner, for a workload whose standard
/// output is all its own (a program run by `sim run`).
pub fn boot_quiet_into<P: Platform>(hal: &P, workload: impl FnOnce(&Kernel<'_, P>) -> u8) -> u8 {
    boot_with(hal, false, workload)
}

fn boot_with<P: Platform>(
    hal: &P,
    banner: bool,
    workload: impl FnOnce(&Kernel<'_, P>) -> u8,
) -> u8 {
    let kernel = Box::new(Kernel::new(hal));
    let memory: u64 = hal.memory_map().iter().map(|r| r.len).sum();
    tracing::info!(
        frames = kernel.frames().total_frames(),
        window = kernel.hal().kernel_window().len,
        "frame allocator up"
    );
    if banner {
        say(
            hal,
            format_args!(
                "boot: hal={} cpus={} memory={}MiB{}",
                P::NAME,
                hal.cpu_count(),
                memory >> 20,
                IsaWord(hal.isa_features()),
            ),
        );
    }

    let data: *const Kernel<'_, P> = &*kernel;
    let locals: Box<[CpuLocal]> = (0..hal.cpu_count())
        .map(|cpu| {
            // SAFETY: INV-BOOT-1 keeps the boxed kernel alive while any block
            // is installed, and the entries follow INV-HAL-2.
            unsafe {
                CpuLocal::new(
                    cpu,
                    data.cast(),
                    trap::fault_entry::<P>,
                    trap::interrupt_entry::<P>,
                )
            }
        })
        .collect();
    enter_cpu(&kernel, &locals[0]);
    hal.irq_restore(true);

    let shared = Shared {
        kernel: &kernel,
        locals: &locals,
    };
    let started: Vec<usize> = (1..hal.cpu_count())
        .filter(|&cpu| {
            let arg = &shared as *const Shared<'_, '_, P> as usize;
            match hal.start_cpu(cpu, secondary_entry::<P>, arg) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(cpu, error = %e, "cannot start CPU");
                    false
                }
            }
        })
        .collect();
    let online = kernel.wait_until(CPU_TIMEOUT, || {
        started.iter().all(|&c| kernel.cpus()[c].is_online())
    });
    if !online {
        tracing::error!("not every CPU came online");
    }
    tracing::info!(cpus = 1 + started.len(), "CPUs up");

    let code = workload(&kernel);

    kernel.begin_stop();
    for &cpu in &started {
        hal.send_ipi(cpu);
    }
    let left = kernel.wait_until(CPU_TIMEOUT, || {
        started.iter().all(|&c| !kernel.cpus()[c].is_online())
    });
    hal.cancel_timer();
    let _ = hal.irq_save();
    // SAFETY: clearing is always allowed.
    unsafe { hal.set_cpu_local(core::ptr::null()) };
    kernel.cpus()[0].online.store(false, Ordering::Release);
    if !left {
        say(
            hal,
            format_args!("boot: a CPU did not stop; leaking the kernel"),
        );
        Box::leak(kernel);
        Box::leak(locals);
        return exit::FAILED;
    }
    code
}

/// Run `f` with an executor every online CPU serves: publish it, wake
/// the secondaries (their idle loop runs [`Executor::run_worker`] while
/// one is published), run `f` on this CPU, then shut the executor down,
/// unpublish it and wait until no CPU uses it (INV-KERNEL-3).
pub fn with_executor<P: Platform, R>(
    kernel: &Kernel<'_, P>,
    f: impl FnOnce(&Executor<'_, P>) -> R,
) -> R {
    let hal = kernel.hal();
    let exec = Executor::with_doorbell(hal, kernel.input_bell().clone());
    kernel.executor_gen.fetch_add(1, Ordering::SeqCst);
    kernel
        .executor
        .store(core::ptr::from_ref(&exec) as usize, Ordering::SeqCst);
    for cpu in 0..hal.cpu_count() {
        if cpu != hal.current_cpu() {
            hal.send_ipi(cpu);
        }
    }
    let r = f(&exec);
    exec.shutdown();
    kernel.executor.store(0, Ordering::SeqCst);
    let idle = kernel.wait_until(CPU_TIMEOUT, || {
        kernel.executor_users.load(Ordering::SeqCst) == 0
    });
    if !idle {
        // A CPU is stuck inside a worker loop: never free the executor
        // under it.
        say(hal, format_args!("boot: a CPU did not leave the executor"));
        core::mem::forget(exec);
    }
    r
}

/// Serve the published executor, if any, until it shuts down
/// (INV-KERNEL-3). Returns the generation seen and whether there was one.
fn serve_executor<P: Platform>(kernel: &Kernel<'_, P>) -> (u64, bool) {
    kernel.executor_users.fetch_add(1, Ordering::SeqCst);
    let generation = kernel.executor_gen.load(Ordering::SeqCst);
    let addr = kernel.executor.load(Ordering::SeqCst);
    if addr != 0 {
        // SAFETY: INV-KERNEL-3: counted in `executor_users` before the
        // read, so the executor stays alive until the count drops.
        let exec = unsafe { &*(addr as *const Executor<'_, P>) };
        // Busy (this CPU already a worker) cannot happen: only this loop
        // runs workers on a secondary.
        let _ = exec.run_worker();
    }
    kernel.executor_users.fetch_sub(1, Ordering::SeqCst);
    (generation, addr != 0)
}

/// Stack budget of `test=spec` when the platform names none.
const DEFAULT_WASM_STACK: usize = 256 << 10;

/// `test=spec`: run the platform's spec bundle, printing the table row by
/// row, at most 200 failure lines and `N passed, M failed`; exit status
/// 0 iff nothing failed (an empty bundle fails: nothing ran).
/// The wasm stack budget the platform gave, else the default.
fn wasm_stack(info: &BootInfo<'_>) -> usize {
    if info.wasm_stack == 0 {
        DEFAULT_WASM_STACK
    } else {
        info.wasm_stack
    }
}

fn spec_suites<P: Platform>(kernel: &Kernel<'_, P>, info: &BootInfo<'_>) -> u8 {
    let hal = kernel.hal();
    let budget = wasm_stack(info);
    hal.write(crate::spec::header().as_bytes());
    let reports = crate::spec::run(kernel, info.spec, budget, |r| {
        hal.write(crate::spec::row(r).as_bytes());
    });
    match reports {
        Ok(reports) => {
            hal.write(crate::spec::tail(&reports, 200).as_bytes());
            let (passed, failed) = crate::spec::totals(&reports);
            if failed == 0 && passed > 0 {
                exit::SUCCESS
            } else {
                exit::FAILED
            }
        }
        Err(e) => {
            say(hal, format_args!("spec: {e}"));
            exit::FAILED
        }
    }
}

/// Failure lines `test=diff` prints at most.
const DIFF_FAILURE_LINES: usize = 200;

/// `test=diff`: replay the differential-oracle bundle passed as the boot
/// image ([`crate::diff::replay`]) on the boot CPU, printing every
/// diverging seed (at most [`DIFF_FAILURE_LINES`]), a progress line every
/// 100 cases, the totals, and `N passed, M failed`; exit status 0 iff no
/// case diverged and enough was compared (replay INV-REPLAY-3; no bundle
/// fails).
fn diff_bundle<P: Platform>(kernel: &Kernel<'_, P>, bundle: &[u8]) -> u8 {
    use crate::diff::replay;
    let hal = kernel.hal();
    if bundle.is_empty() {
        say(
            hal,
            format_args!("diff: no bundle (pass one as the boot image, -initrd)"),
        );
        return exit::FAILED;
    }
    let (mut shown, mut done) = (0usize, 0u64);
    let summary = replay::run_bundle(kernel, bundle, |r| {
        done += 1;
        if let Some(line) = replay::failure_line(r) {
            if shown < DIFF_FAILURE_LINES {
                hal.write(alloc::format!("{line}\n").as_bytes());
            }
            shown += 1;
        }
        if done % 100 == 0 {
            say(hal, format_args!("diff: {done} cases"));
        }
    });
    let s = match summary {
        Ok(s) => s,
        Err(e) => {
            say(hal, format_args!("diff: damaged bundle: {e}"));
            return exit::FAILED;
        }
    };
    if shown > DIFF_FAILURE_LINES {
        say(
            hal,
            format_args!("diff: {} more failures", shown - DIFF_FAILURE_LINES),
        );
    }
    say(
        hal,
        format_args!(
            "diff: {} agree, {} diverge, {} with an inconclusive call or instantiation",
            s.agreed, s.diverged, s.inconclusive
        ),
    );
    hal.write(alloc::format!("diff: {}\n", s.tally).as_bytes());
    if !s.compared_enough() {
        say(
            hal,
            format_args!("diff: too little compared (fewer than 80 % of cases or of calls)"),
        );
    }
    say(
        hal,
        format_args!("{} passed, {} failed", s.agreed, s.diverged),
    );
    if s.passed() {
        exit::SUCCESS
    } else {
        exit::FAILED
    }
}

/// Install `local` on the calling CPU and mark it online.
fn enter_cpu<P: Platform>(kernel: &Kernel<'_, P>, local: &CpuLocal) {
    // SAFETY: `local` lives in `boot`'s frame until every CPU has cleared its
    // block (INV-BOOT-1).
    unsafe { kernel.hal().set_cpu_local(local) };
    let state = &kernel.cpus()[local.id()];
    state.local_id.store(local.id(), Ordering::Relaxed);
    state.online.store(true, Ordering::Release);
}

/// The entry of every secondary CPU.
fn secondary_entry<P: Platform>(arg: usize) {
    // SAFETY: `boot` passed the address of its `Shared`, which it keeps
    // alive until this CPU has gone offline (INV-BOOT-1).
    let shared = unsafe { &*(arg as *const Shared<'_, '_, P>) };
    let (kernel, hal) = (shared.kernel, shared.kernel.hal());
    let cpu = hal.current_cpu();
    let Some(local) = shared.locals.get(cpu) else {
        return;
    };
    enter_cpu(kernel, local);
    // The HAL starts a CPU with interrupts masked (Cpus::start_cpu).
    hal.irq_restore(true);
    idle(kernel, cpu);
    hal.cancel_timer();
    let _ = hal.irq_save();
    // SAFETY: clearing is always allowed.
    unsafe { hal.set_cpu_local(core::ptr::null()) };
    // The last touch of the kernel: after this store `boot` may free it.
    kernel.cpus()[cpu].online.store(false, Ordering::Release);
}

/// A secondary CPU's life: serve mailbox requests and sleep until stopped.
fn idle<P: Platform>(kernel: &Kernel<'_, P>, cpu: usize) {
    let hal = kernel.hal();
    let state = &kernel.cpus()[cpu];
    loop {
        let (generation, served) = serve_executor(kernel);
        if served {
            // That executor was shut down; wait until it is unpublished
            // or replaced by the next instead of re-entering it.
            while kernel.executor_gen.load(Ordering::SeqCst) == generation
                && kernel.executor.load(Ordering::SeqCst) != 0
                && !kernel.is_stopping()
            {
                core::hint::spin_loop();
            }
            continue;
        }
        let guard = hal.disable_irqs();
        if kernel.is_stopping() {
            break;
        }
        let requests = state.requests.swap(0, Ordering::AcqRel);
        if requests & REQ_ARM_TIMER != 0 {
            hal.set_timer(hal.now() + Duration::from_millis(1));
        }
        if requests == 0 && kernel.executor.load(Ordering::SeqCst) == 0 {
            hal.wait_for_interrupt();
        }
        drop(guard);
        state.wakeups.fetch_add(1, Ordering::AcqRel);
    }
}

/// Run `f` with a kernel on `hal` from the calling CPU, for hosted programs
/// and tests: build a kernel, install CPU 0's local block on this CPU,
/// enable interrupts, run `f`, then mask interrupts, clear the block and
/// drop the kernel. Secondary CPUs are not started. The caller runs on a
/// CPU of `hal` (hosted: inside `hal_hosted::run_on_cpu`).
pub fn with_kernel<P: Platform, R>(hal: &P, f: impl FnOnce(&Kernel<'_, P>) -> R) -> R {
    let kernel = Box::new(Kernel::new(hal));
    let data: *const Kernel<'_, P> = &*kernel;
    let cpu = hal.current_cpu();
    // SAFETY: the boxed kernel outlives the block: the block is cleared
    // below before either is dropped, and the entries follow INV-HAL-2.
    let local = unsafe {
        CpuLocal::new(
            cpu,
            data.cast(),
            trap::fault_entry::<P>,
            trap::interrupt_entry::<P>,
        )
    };
    enter_cpu(&kernel, &local);
    hal.irq_restore(true);
    let r = f(&kernel);
    hal.cancel_timer();
    let _ = hal.irq_save();
    // SAFETY: clearing is always allowed.
    unsafe { hal.set_cpu_local(core::ptr::null()) };
    if let Some(state) = kernel.cpus().get(cpu) {
        state.online.store(false, Ordering::Release);
    }
    r
}

/// ` isa=<extensions>` for the boot banner, or nothing at the baseline.
struct IsaWord(crate::hal::IsaFeatures);

impl core::fmt::Display for IsaWord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            crate::hal::IsaFeatures::Baseline => Ok(()),
            crate::hal::IsaFeatures::Riscv(e) => write!(f, " isa={e}"),
            crate::hal::IsaFeatures::X86(e) => write!(f, " isa={e}"),
        }
    }
}
