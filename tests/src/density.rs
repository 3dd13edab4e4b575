//! Process density: many idle processes at once, each blocked in
//! `chan_recv` on a channel of its own, measured (host memory, kernel
//! frames) while they all wait, then each woken with a message that becomes
//! its exit code. The test (`tests/tests/density.rs`) checks that every
//! process ends as told; the `versus` bench reports the bytes per process.

use std::time::Duration;

use hal_hosted::{Config, Hosted};
use kernel_core::proc::{self, ExitStatus, Message, Object, SpawnOptions};

use crate::machine::{HANG_GUARD, emptied, wait, wat};

/// Reports ready on handle 1, waits for a 4-byte message on handle 0 and
/// exits with it.
pub const IDLE: &str = r#"(module
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
  (memory 1)
  (func (export "_start") (result i32)
    (drop (call $send (i32.const 1) (i32.const 0) (i32.const 1)))
    (if (i32.ne (call $recv (i32.const 0) (i32.const 0) (i32.const 4)) (i32.const 4))
      (then (return (i32.const 255))))
    (i32.load (i32.const 0))))"#;

/// Each process's fiber stack in [`idle_processes`]: what the kernel keeps
/// for host calls (256 KiB) and as much again for wasm.
pub const STACK: usize = 512 << 10;

/// What [`idle_processes`] saw.
#[derive(Debug, Default)]
pub struct Density {
    /// Processes asked for.
    pub asked: usize,
    /// Processes that reported ready (all of them were alive at once).
    pub ready: usize,
    /// Host resident bytes added while they all waited.
    pub rss: u64,
    /// Kernel frames (4 KiB) in use while they all waited, less before.
    pub frames: u64,
    /// Processes that ended with the exit code they were sent.
    pub as_told: usize,
    /// Processes left in the table at the end.
    pub left: usize,
    /// Free and promised frames before and after.
    pub frames_before_after: ((u64, u64), (u64, u64)),
}

impl Density {
    /// Host bytes per process while idle.
    #[must_use]
    pub fn rss_per_process(&self) -> u64 {
        self.rss / self.ready.max(1) as u64
    }

    /// Kernel-frame bytes per process while idle.
    #[must_use]
    pub fn frame_bytes_per_process(&self) -> u64 {
        self.frames * 4096 / self.ready.max(1) as u64
    }
}

/// The machine for `n` idle processes: 2 CPUs, frames enough for each
/// stack and memory with room to spare, `sim`'s window.
#[must_use]
pub fn machine(n: usize) -> Config {
    let per = (STACK + (128 << 10)) as u64;
    Config {
        cpus: 2,
        memory: (n as u64 * per + (512 << 20)).next_multiple_of(1 << 20),
        window: sim::WINDOW,
        capture_console: true,
        ..Config::default()
    }
}

/// Run `n` [`IDLE`] processes at once on [`machine`]`(n)` and measure them.
///
/// # Panics
/// When the machine cannot be built or booted.
#[must_use]
pub fn idle_processes(n: usize) -> Density {
    let hosted = Hosted::new(&machine(n)).expect("machine");
    let out = std::sync::Mutex::new(Density::default());
    let code = hal_hosted::boot_quiet_into(&hosted, |kernel| {
        let frames = kernel.frames();
        let before = (frames.free_frames(), frames.promised_frames());
        let rss_before = crate::rss::current();
        let module = wat(IDLE);
        let measured = kernel_core::boot::with_executor(kernel, |exec| {
            let options = SpawnOptions {
                stack: STACK,
                ..SpawnOptions::default()
            };
            proc::run(kernel, exec, options, |procs| async move {
                let (ready_tx, ready_rx) = proc::new_channel(kernel.hal(), n.max(1));
                let mut wake = Vec::with_capacity(n);
                let mut pids = Vec::with_capacity(n);
                for _ in 0..n {
                    let (tx, rx) = proc::new_channel(kernel.hal(), 1);
                    let handles = vec![Object::Receiver(rx), Object::Sender(ready_tx.clone())];
                    match procs.spawn("idle", module.clone(), handles, options) {
                        Ok(pid) => {
                            pids.push(pid);
                            wake.push(tx);
                        }
                        Err(_) => break,
                    }
                }
                drop(ready_tx);
                let mut ready = 0;
                let all_ready = async {
                    while ready < pids.len() && ready_rx.recv().await.is_ok() {
                        ready += 1;
                    }
                };
                let _ = procs.exec().timeout(HANG_GUARD, all_ready).await;
                // Let the last ones reach `chan_recv`.
                procs.exec().sleep(Duration::from_millis(50)).await;
                let rss = crate::rss::current().saturating_sub(rss_before);
                let in_use = frames.total_frames() - frames.free_frames();
                let mut as_told = 0;
                for (i, tx) in wake.iter().enumerate() {
                    let code = (i % 200) as i32 + 1;
                    let _ = tx.send(Message::new(code.to_le_bytes().to_vec())).await;
                }
                for (i, pid) in pids.iter().enumerate() {
                    let code = (i % 200) as i32 + 1;
                    if wait(&procs, *pid).await == Some(ExitStatus::Exited(code)) {
                        as_told += 1;
                    }
                    procs.reap(*pid).await;
                }
                drop(wake);
                let left = emptied(&procs).await;
                (ready, rss, in_use, as_told, left)
            })
        });
        // Idle pooled regions are the kernel's to keep; released here so
        // the machine can be compared with its boot.
        kernel.release_idle();
        let after = (frames.free_frames(), frames.promised_frames());
        let before_in_use = frames.total_frames() - before.0;
        if let (Ok(mut d), Ok((ready, rss, in_use, as_told, left))) = (out.lock(), measured) {
            *d = Density {
                asked: n,
                ready,
                rss,
                frames: in_use.saturating_sub(before_in_use),
                as_told,
                left,
                frames_before_after: (before, after),
            };
        }
        0
    })
    .expect("boot");
    assert_eq!(code, 0);
    out.into_inner().expect("density")
}
