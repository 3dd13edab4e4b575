//! Machines: configuration errors, secondary CPUs started with `start_cpu`,
//! and several machines used from parallel threads at once.

// Public so that helpers this binary does not use are not dead code.
pub mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{NoTables, OnFault, TestKernel, phys_u64, small, until};
use hal_hosted::{Config, HostError, Hosted, run_on_cpu};
use kernel_core::hal::{
    Clock, Console, Cpus, HalError, Interrupts, Mmu, PAGE_SIZE, Perms, PhysAddr, Platform, Power,
};

#[test]
fn bad_configurations_are_refused() {
    let good = Config {
        cpus: 1,
        memory: 16 << 20,
        window: 16 << 20,
        ..Config::default()
    };
    assert!(Hosted::new(&good).is_ok());
    let cases = [
        (Config { cpus: 0, ..good }, HostError::NoCpus),
        (
            Config {
                cpus: hal_hosted::MAX_CPUS + 1,
                ..good
            },
            HostError::TooManyCpus {
                requested: hal_hosted::MAX_CPUS + 1,
            },
        ),
        (
            Config {
                memory: (16 << 20) + 1,
                ..good
            },
            HostError::BadMemorySize {
                bytes: (16 << 20) + 1,
            },
        ),
        (
            Config {
                memory: 8 << 20,
                ..good
            },
            HostError::BadMemorySize { bytes: 8 << 20 },
        ),
        (
            Config {
                window: (16 << 20) + 512,
                ..good
            },
            HostError::BadWindowSize {
                bytes: (16 << 20) + 512,
            },
        ),
        (
            Config {
                window: 4096,
                ..good
            },
            HostError::BadWindowSize { bytes: 4096 },
        ),
    ];
    for (config, expected) in cases {
        let err = Hosted::new(&config).err().expect("refused");
        assert_eq!(err, expected);
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn default_config_is_as_documented() {
    let config = Config::default();
    assert!(config.cpus >= 1);
    assert_eq!(config.memory, 512 << 20);
    assert_eq!(config.window, 256 << 30);
    // And such a machine can be built (all reserved, nothing committed).
    let hosted = Hosted::new(&config).unwrap();
    assert_eq!(hosted.cpu_count(), config.cpus);
    assert_eq!(<Hosted as Platform>::NAME, "hosted");
}

struct Secondary {
    entered: AtomicBool,
    release: AtomicBool,
    done: AtomicBool,
    cpu: AtomicUsize,
    irqs_were_enabled: AtomicBool,
    hosted: *const Hosted,
}

fn secondary_entry(arg: usize) {
    // SAFETY: `arg` is the test's `Secondary`, alive until `done` is seen.
    let state = unsafe { &*(arg as *const Secondary) };
    // SAFETY: the test keeps the machine alive until `done`.
    let hosted = unsafe { &*state.hosted };
    state.cpu.store(hosted.current_cpu(), Ordering::SeqCst);
    state
        .irqs_were_enabled
        .store(hosted.irqs_enabled(), Ordering::SeqCst);
    state.entered.store(true, Ordering::SeqCst);
    until(|| state.release.load(Ordering::SeqCst));
    state.done.store(true, Ordering::SeqCst);
}

#[test]
fn start_cpu_runs_entry_on_a_new_cpu_and_reports_errors() {
    let hosted = small(3);
    let noop: fn(usize) = |_| {};
    assert_eq!(hosted.start_cpu(0, noop, 0), Err(HalError::OutOfRange));
    assert_eq!(hosted.start_cpu(3, noop, 0), Err(HalError::OutOfRange));
    let state = Secondary {
        entered: AtomicBool::new(false),
        release: AtomicBool::new(false),
        done: AtomicBool::new(false),
        cpu: AtomicUsize::new(usize::MAX),
        irqs_were_enabled: AtomicBool::new(true),
        hosted: &raw const hosted,
    };
    let arg = &raw const state as usize;
    hosted.start_cpu(2, secondary_entry, arg).unwrap();
    assert!(until(|| state.entered.load(Ordering::SeqCst)));
    assert_eq!(state.cpu.load(Ordering::SeqCst), 2);
    assert!(
        !state.irqs_were_enabled.load(Ordering::SeqCst),
        "entry must start masked"
    );
    assert_eq!(hosted.start_cpu(2, noop, 0), Err(HalError::Busy));
    // The caller is not a CPU of the machine: it reads as CPU 0.
    assert_eq!(hosted.current_cpu(), 0);
    state.release.store(true, Ordering::SeqCst);
    assert!(until(|| state.done.load(Ordering::SeqCst)));
    // Once its entry returned and the thread tore down, the CPU can start
    // again.
    assert!(until(|| hosted.start_cpu(2, noop, 0).is_ok()));
    // And run_on_cpu refuses a CPU that runs.
    let busy = std::panic::catch_unwind(|| {
        let _guard = SlotHolder::hold(&hosted, 1);
        run_on_cpu(&hosted, 1, || ())
    });
    assert!(busy.is_err());
}

/// Keeps CPU `cpu` running (a parked secondary) until dropped.
struct SlotHolder {
    release: &'static AtomicBool,
}

impl SlotHolder {
    fn hold(hosted: &Hosted, cpu: usize) -> Self {
        let release: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        fn park(arg: usize) {
            // SAFETY: `arg` is a leaked `AtomicBool`.
            let release = unsafe { &*(arg as *const AtomicBool) };
            until(|| release.load(Ordering::SeqCst));
        }
        hosted
            .start_cpu(cpu, park, std::ptr::from_ref(release) as usize)
            .unwrap();
        Self { release }
    }
}

impl Drop for SlotHolder {
    fn drop(&mut self) {
        self.release.store(true, Ordering::SeqCst);
    }
}

/// One machine's workout: map, fault, timer, console.
fn workout(hosted: &Hosted, tag: u64) {
    let window = hosted.kernel_window();
    let va = window.start + 3 * PAGE_SIZE;
    let pa = PhysAddr::of_frame(10);
    for round in 0..20u64 {
        // SAFETY: the test owns frame and page.
        hosted
            .flush(unsafe { hosted.map(va, pa, PAGE_SIZE, Perms::READ_WRITE, &NoTables) }.unwrap());
        // SAFETY: mapped just above.
        unsafe { (va as *mut u64).write_volatile(tag + round) };
        assert_eq!(phys_u64(hosted, pa), tag + round);
        // SAFETY: the test owns the page.
        hosted.flush(unsafe { hosted.unmap(va, PAGE_SIZE) }.unwrap());
    }
    let mut kernel = TestKernel::new(hosted, 1, OnFault::MapFrame);
    kernel.frame = PhysAddr::of_frame(11);
    let kernel = kernel;
    run_on_cpu(hosted, 1, || {
        let local = kernel.local();
        kernel.with_local(&local, || {
            let target = window.start + 40 * PAGE_SIZE;
            // SAFETY: faults once; the test kernel maps frame 11.
            unsafe { (target as *mut u64).write_volatile(tag) };
            hosted.irq_restore(true);
            let deadline = hosted.now() + Duration::from_millis(2);
            hosted.set_timer(deadline);
            while kernel.timers.load(Ordering::SeqCst) == 0
                && hosted.now() < deadline + common::TIMEOUT
            {
                hosted.wait_for_interrupt();
            }
            hosted.irq_save();
        });
    });
    assert_eq!(kernel.faults.load(Ordering::SeqCst), 1);
    assert_eq!(kernel.timers.load(Ordering::SeqCst), 1);
    assert!(!kernel.broken.load(Ordering::SeqCst));
    assert_eq!(phys_u64(hosted, kernel.frame), tag);
    hosted.write(b"");
    assert_ne!(hosted.entropy_seed(), hosted.entropy_seed());
}

#[test]
fn two_machines_run_in_parallel_and_do_not_share_memory() {
    let a = small(2);
    let b = small(2);
    let (wa, wb) = (a.kernel_window(), b.kernel_window());
    assert!(
        wa.end() <= wb.start || wb.end() <= wa.start,
        "windows overlap"
    );
    std::thread::scope(|s| {
        s.spawn(|| workout(&a, 0xAAAA_0000));
        s.spawn(|| workout(&b, 0xBBBB_0000));
    });
    // Frame 11 of each machine holds its own tag.
    assert_eq!(phys_u64(&a, PhysAddr::of_frame(11)), 0xAAAA_0000);
    assert_eq!(phys_u64(&b, PhysAddr::of_frame(11)), 0xBBBB_0000);
}

#[test]
fn a_machine_outlives_its_handle_while_a_cpu_runs() {
    let hosted = small(2);
    let release: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    fn park(arg: usize) {
        // SAFETY: `arg` is a leaked `AtomicBool`.
        let release = unsafe { &*(arg as *const AtomicBool) };
        until(|| release.load(Ordering::SeqCst));
    }
    hosted
        .start_cpu(1, park, std::ptr::from_ref(release) as usize)
        .unwrap();
    drop(hosted);
    // The secondary still runs on the machine; releasing it ends it and the
    // machine with it. Nothing to observe but the absence of a crash.
    release.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
}
