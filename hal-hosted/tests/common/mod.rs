//! Helpers shared by the hal-hosted test binaries: a small machine, a test
//! kernel behind a `CpuLocal`, and bounded waiting.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hal_hosted::{Config, Hosted};
use kernel_core::hal::{
    CpuLocal, Cpus, Interrupt, Interrupts, Mmu, PAGE_SIZE, Perms, PhysAddr, PhysMemory,
    TableFrames, TrapAction, TrapFrame, TrapKind,
};

/// How long any test waits for something that should take milliseconds.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A machine small enough to make many of.
pub fn small(cpus: usize) -> Hosted {
    Hosted::new(&Config {
        cpus,
        memory: 64 << 20,
        window: 4 << 30,
        ..Config::default()
    })
    .expect("machine")
}

/// Hosted never asks for page-table frames.
pub struct NoTables;

impl TableFrames for NoTables {
    fn alloc_table(&self) -> Option<PhysAddr> {
        None
    }
    fn free_table(&self, _frame: PhysAddr) {}
}

/// The `u64` at physical address `pa` (8-aligned), read through the direct map.
pub fn phys_u64(hosted: &Hosted, pa: PhysAddr) -> u64 {
    let p = hosted.direct_map(pa).expect("RAM").cast::<u64>();
    // SAFETY: the direct map covers all RAM read-write for the machine's life.
    unsafe { p.read_volatile() }
}

/// Poll `done` until it holds or [`TIMEOUT`] passes; returns whether it held.
pub fn until(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < TIMEOUT {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    done()
}

/// What the test kernel does on a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFault {
    /// Map `frame` read-write at the faulting page and resume.
    MapFrame,
    /// Make the faulting page read-write (it is mapped read-only) and resume.
    MakeWritable,
    /// Redirect to the pc stored in `resume`, same sp and fp, with
    /// [`REDIRECT_ARGS`] in the argument registers.
    Redirect,
    /// Answer `Fatal(status)`.
    Fatal(u8),
}

/// The argument registers a redirect loads.
pub const REDIRECT_ARGS: [usize; 2] = [0xA11CE, 0xB0B];

/// A stand-in kernel: counts what the HAL delivers.
pub struct TestKernel<'a> {
    /// The machine it runs on.
    pub hosted: &'a Hosted,
    /// The CPU whose block it installs.
    pub cpu: usize,
    /// How it answers faults.
    pub on_fault: OnFault,
    /// A frame it maps on demand faults.
    pub frame: PhysAddr,
    /// Where a redirect continues.
    pub resume: AtomicUsize,
    /// Faults delivered.
    pub faults: AtomicUsize,
    /// The last fault's frame.
    pub last_fault: std::sync::Mutex<Option<TrapFrame>>,
    /// Timer interrupts delivered.
    pub timers: AtomicUsize,
    /// IPIs delivered.
    pub ipis: AtomicUsize,
    /// Set when an interrupt was delivered with interrupts enabled, on the
    /// wrong CPU, or a fault was answered badly.
    pub broken: AtomicBool,
}

impl<'a> TestKernel<'a> {
    /// A test kernel for `cpu` of `hosted`.
    pub fn new(hosted: &'a Hosted, cpu: usize, on_fault: OnFault) -> Self {
        Self {
            hosted,
            cpu,
            on_fault,
            frame: PhysAddr(0),
            resume: AtomicUsize::new(0),
            faults: AtomicUsize::new(0),
            last_fault: std::sync::Mutex::new(None),
            timers: AtomicUsize::new(0),
            ipis: AtomicUsize::new(0),
            broken: AtomicBool::new(false),
        }
    }

    /// A CPU-local block whose traps come here.
    pub fn local(&self) -> CpuLocal {
        // SAFETY: `self` outlives the block in every test (the block is
        // cleared before `self` drops), and the entries obey INV-HAL-2 as far
        // as a test needs: the mutex is never held by the interrupted code.
        unsafe {
            CpuLocal::new(
                self.cpu,
                std::ptr::from_ref(self).cast(),
                fault_entry,
                interrupt_entry,
            )
        }
    }

    /// Install `local` on the calling CPU for the duration of `f`.
    pub fn with_local<R>(&self, local: &CpuLocal, f: impl FnOnce() -> R) -> R {
        // SAFETY: `local` outlives the installation: it is cleared below.
        unsafe { self.hosted.set_cpu_local(local) };
        let r = f();
        // SAFETY: clearing is always allowed.
        unsafe { self.hosted.set_cpu_local(std::ptr::null()) };
        r
    }

    /// The last fault's frame, if any.
    pub fn last_fault(&self) -> Option<TrapFrame> {
        *self.last_fault.lock().unwrap()
    }
}

unsafe fn fault_entry(data: *const (), frame: &TrapFrame) -> TrapAction {
    // SAFETY: `data` is the `TestKernel` the block was made with.
    let k = unsafe { &*data.cast::<TestKernel<'_>>() };
    k.faults.fetch_add(1, Ordering::SeqCst);
    *k.last_fault.lock().unwrap() = Some(*frame);
    if k.hosted.irqs_enabled() || k.hosted.current_cpu() != k.cpu {
        k.broken.store(true, Ordering::SeqCst);
    }
    let page = frame.fault_addr.unwrap_or(0) & !(PAGE_SIZE - 1);
    match k.on_fault {
        OnFault::MapFrame => {
            if !matches!(frame.kind, TrapKind::PageFault(_)) {
                return TrapAction::Fatal(99);
            }
            // SAFETY: the test owns the frame and the page.
            match unsafe {
                k.hosted
                    .map(page, k.frame, PAGE_SIZE, Perms::READ_WRITE, &NoTables)
            } {
                Ok(flush) => {
                    k.hosted.flush(flush);
                    TrapAction::Resume
                }
                Err(_) => TrapAction::Fatal(98),
            }
        }
        OnFault::MakeWritable => {
            // SAFETY: the test owns the page.
            match unsafe { k.hosted.protect(page, PAGE_SIZE, Perms::READ_WRITE) } {
                Ok(flush) => {
                    k.hosted.flush(flush);
                    TrapAction::Resume
                }
                Err(_) => TrapAction::Fatal(97),
            }
        }
        OnFault::Redirect => TrapAction::Redirect(kernel_core::hal::ResumeContext {
            pc: k.resume.load(Ordering::SeqCst),
            sp: frame.sp,
            fp: frame.fp,
            args: REDIRECT_ARGS,
        }),
        OnFault::Fatal(status) => TrapAction::Fatal(status),
    }
}

unsafe fn interrupt_entry(data: *const (), irq: Interrupt) {
    // SAFETY: `data` is the `TestKernel` the block was made with.
    let k = unsafe { &*data.cast::<TestKernel<'_>>() };
    if k.hosted.irqs_enabled() || k.hosted.current_cpu() != k.cpu {
        k.broken.store(true, Ordering::SeqCst);
    }
    match irq {
        Interrupt::Timer => k.timers.fetch_add(1, Ordering::SeqCst),
        // Console input rides on the IPI signal.
        Interrupt::Ipi | Interrupt::Input => k.ipis.fetch_add(1, Ordering::SeqCst),
    };
}

/// Send IPIs to `cpu` every few milliseconds once `after` has passed, until
/// `stop` is set: a watchdog that keeps a `wait_for_interrupt` from hanging a
/// failing test. Run it on a scoped thread.
pub fn watchdog(stop: &AtomicBool, hosted: &Hosted, cpu: usize, after: Duration) {
    let start = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if start.elapsed() > after {
            hosted.send_ipi(cpu);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
