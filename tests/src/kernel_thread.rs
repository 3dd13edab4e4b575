//! A hosted kernel that stays up on its own thread and runs jobs sent to
//! it, for callers that cannot put their whole run inside
//! `hal_hosted::run_on_cpu` (a libFuzzer target is called once per input).
//!
//! It owns one machine and the thread that is its CPU 0. Invariant: jobs
//! run one at a time, in order, on that CPU with the kernel booted
//! (`kernel_core::boot::with_kernel`), so each job may touch demand-paged
//! memory and run wasm; a job that panics takes the thread down and every
//! later [`KernelThread::run`] panics too.

use std::sync::mpsc;

use hal_hosted::{Config, Hosted};
use kernel_core::kernel::Kernel;

type Job = Box<dyn for<'k, 'h> FnOnce(&'k Kernel<'h, Hosted>) + Send>;

/// A kernel on its own thread.
pub struct KernelThread {
    jobs: mpsc::Sender<Job>,
}

impl KernelThread {
    /// Start a machine with `config` on a new thread and boot a kernel on
    /// its CPU 0.
    ///
    /// # Panics
    /// When the machine cannot be made (then every [`Self::run`] panics).
    #[must_use]
    pub fn start(config: Config) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("kernel".into())
            .spawn(move || {
                let hosted = Hosted::new(&config).expect("hosted machine");
                let machine = &hosted;
                hal_hosted::run_on_cpu(machine, 0, move || {
                    kernel_core::boot::with_kernel(machine, |k| {
                        while let Ok(job) = rx.recv() {
                            job(k);
                        }
                    });
                });
            })
            .expect("kernel thread");
        Self { jobs }
    }

    /// Run `f` on the kernel's CPU and return its result.
    ///
    /// # Panics
    /// When the kernel thread is gone (a job panicked).
    pub fn run<R: Send + 'static>(
        &self,
        f: impl for<'k, 'h> FnOnce(&'k Kernel<'h, Hosted>) -> R + Send + 'static,
    ) -> R {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |k| {
                let _ = tx.send(f(k));
            }))
            .expect("kernel thread is gone");
        rx.recv().expect("kernel thread is gone")
    }
}
