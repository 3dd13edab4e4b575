//! Harts: the per-hart HAL block that `tp` points at, per-hart trap set-up,
//! and secondary start and stop through SBI HSM.
//!
//! Invariants:
//! - INV-CPU-1: from the first instruction of either entry path on, `tp`
//!   of a hart running this image holds the address of its element of
//!   [`HARTS`] and never changes (Rust code never writes `tp`; the trap
//!   vector saves and restores it unchanged).
//! - INV-CPU-2: a block's `logical`, `hartid`, stack tops, trap-stack
//!   limit and `satp` are written by the boot hart before any secondary
//!   starts, and are read-only afterwards.
//! - INV-CPU-3: bit `i` of [`STARTED`] is set while logical CPU `i` may
//!   hold translations (before it switches `satp` on, until it stops);
//!   remote fences go to exactly those harts.
//! - INV-CPU-4: `state` moves Stopped -> Starting (by `start`, exclusively)
//!   -> Running (by the hart) -> Stopped (by the hart, right before
//!   `hart_stop`); a block's `entry` is only touched in Starting.

use core::arch::{asm, global_asm};
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use kernel_core::hal::{CpuEntry, CpuLocal, HalError};

use crate::layout::{
    self, BOOT_STACK_STRIDE, ImageLayout, MAX_HARTS, TRAP_STACK_SIZE, TRAP_STACK_STRIDE,
};
use crate::{csr, sbi, trap};

const STOPPED: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;

/// The HAL's block for one hart (`tp` points at it, INV-CPU-1).
#[repr(C)]
pub struct HartBlock {
    /// Top of this hart's boot stack (read by the secondary entry code).
    stack_top: AtomicUsize,
    /// Top of this hart's trap stack (kept in `sscratch` outside traps).
    trap_stack_top: AtomicUsize,
    /// Lowest `sp` at which the trap vector may still save a nested frame
    /// (the trap module's INV-TRAP-5).
    trap_stack_limit: AtomicUsize,
    /// The `satp` value of the kernel's page tables.
    satp: AtomicU64,
    /// Logical CPU number.
    logical: AtomicUsize,
    /// SBI hart id.
    hartid: AtomicUsize,
    /// The kernel's CPU-local block, or null.
    cpu_local: AtomicPtr<CpuLocal>,
    /// How many traps are being handled on this hart right now.
    pub trap_depth: AtomicUsize,
    /// INV-CPU-4.
    state: AtomicU8,
    /// What a starting secondary runs (INV-CPU-4).
    entry: spin::Mutex<Option<(CpuEntry, usize)>>,
}

impl HartBlock {
    const fn new() -> Self {
        Self {
            stack_top: AtomicUsize::new(0),
            trap_stack_top: AtomicUsize::new(0),
            trap_stack_limit: AtomicUsize::new(0),
            satp: AtomicU64::new(0),
            logical: AtomicUsize::new(0),
            hartid: AtomicUsize::new(0),
            cpu_local: AtomicPtr::new(core::ptr::null_mut()),
            trap_depth: AtomicUsize::new(0),
            state: AtomicU8::new(STOPPED),
            entry: spin::Mutex::new(None),
        }
    }

    /// This hart's logical CPU number.
    pub fn logical(&self) -> usize {
        self.logical.load(Ordering::Relaxed)
    }

    /// The installed CPU-local block, or null.
    pub fn cpu_local(&self) -> *const CpuLocal {
        self.cpu_local.load(Ordering::Acquire)
    }

    /// Install (or clear, with null) the CPU-local block.
    pub fn set_cpu_local(&self, block: *const CpuLocal) {
        self.cpu_local.store(block.cast_mut(), Ordering::Release);
    }
}

/// Where the trap vector finds a block's trap-stack top.
pub const TRAP_STACK_TOP_OFFSET: usize = offset_of!(HartBlock, trap_stack_top);
/// Where the trap vector finds a block's trap-stack limit.
pub const TRAP_STACK_LIMIT_OFFSET: usize = offset_of!(HartBlock, trap_stack_limit);

/// One block per possible hart, indexed by logical CPU number.
pub static HARTS: [HartBlock; MAX_HARTS] = [const { HartBlock::new() }; MAX_HARTS];

/// Logical CPUs that may hold translations (INV-CPU-3).
pub static STARTED: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" {
    static __image_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static __boot_stacks_start: u8;
    static __boot_stacks_end: u8;
    static __trap_stacks_start: u8;
    static __trap_stacks_end: u8;
    static __image_end: u8;
}

/// Whether `link.ld` reserved the stacks (each with its guard page)
/// `layout` expects.
pub fn stacks_match_linker_script() -> bool {
    let boot = (&raw const __boot_stacks_end) as usize - (&raw const __boot_stacks_start) as usize;
    let trap = (&raw const __trap_stacks_end) as usize - (&raw const __trap_stacks_start) as usize;
    boot == MAX_HARTS * BOOT_STACK_STRIDE
        && trap == MAX_HARTS * TRAP_STACK_STRIDE
        && image_layout().is_consistent()
}

/// The image's sections, from `link.ld`'s symbols.
pub fn image_layout() -> ImageLayout {
    ImageLayout {
        start: (&raw const __image_start) as u64,
        rodata: (&raw const __rodata_start) as u64,
        data: (&raw const __data_start) as u64,
        boot_stacks: (&raw const __boot_stacks_start) as u64,
        trap_stacks: (&raw const __trap_stacks_start) as u64,
        end: (&raw const __image_end) as u64,
    }
}

fn boot_stack_top(logical: usize) -> usize {
    layout::stack_top(
        (&raw const __boot_stacks_start) as usize,
        BOOT_STACK_STRIDE,
        logical,
    )
}

fn trap_stack_top(logical: usize) -> usize {
    layout::stack_top(
        (&raw const __trap_stacks_start) as usize,
        TRAP_STACK_STRIDE,
        logical,
    )
}

/// Give `block` the trap stack of logical CPU `logical`: its top, and the
/// limit one frame above its bottom (the trap module's INV-TRAP-5).
fn set_trap_stack(block: &HartBlock, logical: usize) {
    let top = trap_stack_top(logical);
    block.trap_stack_top.store(top, Ordering::Relaxed);
    block
        .trap_stack_limit
        .store(top - TRAP_STACK_SIZE + trap::FRAME, Ordering::Relaxed);
}

/// The calling hart's block (INV-CPU-1).
#[inline(always)]
pub fn current() -> &'static HartBlock {
    let tp: usize;
    // SAFETY: reads a register.
    unsafe { asm!("mv {0}, tp", out(reg) tp, options(nomem, nostack, preserves_flags)) };
    // SAFETY: INV-CPU-1: `tp` points into the `'static` `HARTS`.
    unsafe { &*(tp as *const HartBlock) }
}

/// Whether every hart turns its vector unit on ([`enable_vectors`]).
static VECTORS: AtomicBool = AtomicBool::new(false);

/// Turn the vector unit on (`sstatus.VS` = Initial) on this hart and on
/// every hart started after this call: the boot hart calls it, before any
/// secondary starts, when every hart has the V extension. Code compiled
/// for V then runs; without it a vector instruction is an illegal
/// instruction.
///
/// Vector state is never saved by the kernel: the psABI makes every
/// vector register and `vl`, `vtype`, `vxrm`, `vxsat` caller-saved, so a
/// fiber switch (a call) need not keep them; preemption is a switch at a
/// call (the epoch check), never from a trap; and no kernel code uses
/// them, so a trap returns with them as they were (the trap module's
/// INV-TRAP-4).
pub fn enable_vectors() {
    VECTORS.store(true, Ordering::Relaxed);
    csr::set_sstatus(csr::SSTATUS_VS_INITIAL);
}

/// Per-hart trap set-up: FPU on (the trap vector saves FP registers),
/// the vector unit on when [`enable_vectors`] said so,
/// trap stack in `sscratch` before `stvec` (the trap module's
/// INV-TRAP-1), timer, software and external interrupts enabled in `sie`
/// (still masked by `sstatus.SIE`; the PLIC routes external ones to the
/// boot hart alone).
fn hart_init(block: &HartBlock) {
    csr::set_sstatus(csr::SSTATUS_FS_INITIAL);
    if VECTORS.load(Ordering::Relaxed) {
        csr::set_sstatus(csr::SSTATUS_VS_INITIAL);
    }
    csr::write_sscratch(block.trap_stack_top.load(Ordering::Relaxed));
    csr::write_stvec(trap::vector());
    csr::set_sie(csr::SIE_STIE | csr::SIE_SSIE | csr::SIE_SEIE);
}

/// First thing on the boot hart (paging off): block 0 gets its trap stack
/// and the trap vector is installed, so early faults are reported.
pub fn init_boot_hart(hartid: usize) {
    let block = &HARTS[0];
    block.hartid.store(hartid, Ordering::Relaxed);
    block.stack_top.store(boot_stack_top(0), Ordering::Relaxed);
    set_trap_stack(block, 0);
    hart_init(block);
}

/// Fill the blocks of logical CPUs `0..harts.len()` (INV-CPU-2) and mark
/// the boot hart started. Runs on the boot hart before any secondary.
pub fn init_blocks(harts: &[u64], satp: u64) {
    for (logical, (&hartid, block)) in harts.iter().zip(HARTS.iter()).enumerate() {
        block.logical.store(logical, Ordering::Relaxed);
        block.hartid.store(hartid as usize, Ordering::Relaxed);
        block
            .stack_top
            .store(boot_stack_top(logical), Ordering::Relaxed);
        set_trap_stack(block, logical);
        block.satp.store(satp, Ordering::Relaxed);
    }
    HARTS[0].state.store(RUNNING, Ordering::Relaxed);
    STARTED.fetch_or(1, Ordering::SeqCst);
}

/// The SBI hart id of logical CPU `cpu`.
pub fn hartid(cpu: usize) -> Option<u64> {
    HARTS
        .get(cpu)
        .map(|b| b.hartid.load(Ordering::Relaxed) as u64)
}

// Secondary entry, reached through SBI HSM `hart_start` with paging off,
// a0 = hart id, a1 = opaque = the hart's block. Sets `tp` (INV-CPU-1) and
// the boot stack, then calls `secondary_main(block)`, which never returns.
global_asm!(
    ".section .text",
    ".globl _vessel_secondary_start",
    ".balign 4",
    "_vessel_secondary_start:",
    "    mv tp, a1",
    "    ld sp, {stack_top}(tp)",
    "    li s0, 0",
    "    mv a0, tp",
    "    call {main}",
    "1:  wfi",
    "    j 1b",
    stack_top = const offset_of!(HartBlock, stack_top),
    main = sym secondary_main,
);

unsafe extern "C" {
    fn _vessel_secondary_start();
}

extern "C" fn secondary_main(block: &'static HartBlock) -> ! {
    let bit = 1u64 << block.logical();
    // INV-CPU-3: join the fence set before the first translation is cached.
    STARTED.fetch_or(bit, Ordering::SeqCst);
    // SAFETY: the kernel tables identity-map this image, so code, stack and
    // block stay where they are.
    unsafe { csr::write_satp(block.satp.load(Ordering::Relaxed)) };
    hart_init(block);
    block.state.store(RUNNING, Ordering::Release);
    let job = block.entry.lock().take();
    if let Some((entry, arg)) = job {
        entry(arg);
    }
    // Park for good: no timer, no kernel block, out of the fence set.
    let _ = csr::irq_save();
    sbi::set_timer(u64::MAX);
    block.set_cpu_local(core::ptr::null());
    STARTED.fetch_and(!bit, Ordering::SeqCst);
    block.state.store(STOPPED, Ordering::Release);
    sbi::hart_stop();
    loop {
        csr::wfi();
    }
}

/// Start logical CPU `cpu` (of `count`) running `entry(arg)`.
///
/// # Errors
/// [`HalError::OutOfRange`] for CPU 0 or past `count`, [`HalError::Busy`]
/// when it is not stopped (or SBI says it is already running),
/// [`HalError::Unsupported`] for any other SBI failure. The CPU is not
/// started after an error.
pub fn start(cpu: usize, count: usize, entry: CpuEntry, arg: usize) -> Result<(), HalError> {
    if cpu == 0 || cpu >= count {
        return Err(HalError::OutOfRange);
    }
    let block = HARTS.get(cpu).ok_or(HalError::OutOfRange)?;
    block
        .state
        .compare_exchange(STOPPED, STARTING, Ordering::AcqRel, Ordering::Acquire)
        .map_err(|_| HalError::Busy)?;
    *block.entry.lock() = Some((entry, arg));
    let hartid = block.hartid.load(Ordering::Relaxed) as u64;
    // SAFETY: `_vessel_secondary_start` expects exactly the HSM start state
    // with a1 = its block, which is `'static`; the block is filled
    // (INV-CPU-2) and the spin lock's release orders `entry` before the
    // SBI call.
    let started = unsafe {
        sbi::hart_start(
            hartid,
            _vessel_secondary_start as *const () as usize,
            block as *const HartBlock as usize,
        )
    };
    started.map_err(|e| {
        block.entry.lock().take();
        block.state.store(STOPPED, Ordering::Release);
        match e {
            sbi::ERR_ALREADY_AVAILABLE | sbi::ERR_ALREADY_STARTED => HalError::Busy,
            sbi::ERR_INVALID_PARAM => HalError::OutOfRange,
            _ => HalError::Unsupported,
        }
    })
}

/// Logical CPUs other than the caller that may hold translations, as SBI
/// hart ids.
pub fn other_started_harts() -> impl Iterator<Item = u64> {
    let me = current().logical();
    let set = STARTED.load(Ordering::SeqCst) & !(1 << me);
    (0..MAX_HARTS)
        .filter(move |i| set & (1 << i) != 0)
        .filter_map(hartid)
}
