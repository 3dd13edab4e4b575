//! The riscv platform value and its HAL trait implementations. One
//! [`Riscv`] exists, built once at boot (`boot.rs`) and then immutable; the
//! mutable HAL state lives in the hart blocks (`cpu`), the page-table lock
//! (`mmu`) and the console/finisher locations (`console`, `power`).
//!
//! INV-PLAT-1: every field is written before the value is published and
//! never changes afterwards, so `&Riscv` is freely shared between harts and
//! usable from trap context.

use core::time::Duration;

use kernel_core::hal::{
    Clock, Console, CpuEntry, CpuId, CpuLocal, Cpus, HalError, InputState, Interrupts, IsaFeatures,
    Mmu, PAGE_SIZE, Perms, PhysAddr, PhysMemory, PhysRange, Platform, Power, RiscvExtensions,
    TableFrames, TlbFlush, VirtRange,
};

use crate::fixed::FixedVec;
use crate::layout::{self, MAX_HARTS, MemoryMap};
use crate::mmu::{self, KernelTables};
use crate::{console, cpu, csr, power, sbi};

/// The riscv64 platform (QEMU `virt`, OpenSBI).
pub struct Riscv {
    /// RAM the kernel may use (INV-LAYOUT-1).
    pub memory_map: MemoryMap,
    /// SBI hart ids by logical CPU (INV-LAYOUT-2).
    pub harts: FixedVec<u64, MAX_HARTS>,
    /// `time` CSR frequency.
    pub timebase_hz: u64,
    /// `time` at boot: [`Clock::now`] counts from here.
    pub boot_ticks: u64,
    /// `/chosen/rng-seed`.
    pub rng_seed: &'static [u8],
    /// Size of the HAL heap.
    pub heap_bytes: u64,
    /// The page tables.
    pub tables: KernelTables,
    /// The ISA extensions every hart has (device tree).
    pub isa: RiscvExtensions,
    /// `debug=jit`: JIT code is published to gdb (`jit`).
    pub jit_debug: bool,
}

impl Riscv {
    /// A reader found no input: let the next byte raise an interrupt, when
    /// the PLIC routes the UART's.
    fn arm_input(&self) {
        if crate::plic::enabled() {
            console::arm_input();
        }
    }
}

impl PhysMemory for Riscv {
    fn memory_map(&self) -> &[PhysRange] {
        &self.memory_map
    }

    fn direct_map(&self, pa: PhysAddr) -> Option<*mut u8> {
        let base = self.tables.virt().physmap_base;
        layout::covers(&self.memory_map, pa.0, 1).then(|| (base + pa.0 as usize) as *mut u8)
    }

    fn heap_bytes(&self) -> Option<u64> {
        Some(self.heap_bytes)
    }
}

impl Mmu for Riscv {
    fn kernel_window(&self) -> VirtRange {
        self.tables.virt().window()
    }

    unsafe fn map(
        &self,
        va: usize,
        pa: PhysAddr,
        len: usize,
        perms: Perms,
        tables: &dyn TableFrames,
    ) -> Result<TlbFlush, HalError> {
        if !pa.is_page_aligned() || !len.is_multiple_of(PAGE_SIZE) {
            return Err(HalError::Misaligned);
        }
        if !layout::covers(&self.memory_map, pa.0, len as u64) {
            return Err(HalError::OutOfRange);
        }
        self.tables.map(va, pa.0, len, perms, tables)
    }

    unsafe fn unmap(&self, va: usize, len: usize) -> Result<TlbFlush, HalError> {
        self.tables.unmap(va, len)
    }

    unsafe fn protect(&self, va: usize, len: usize, perms: Perms) -> Result<TlbFlush, HalError> {
        self.tables.protect(va, len, perms)
    }

    fn flush(&self, flush: TlbFlush) {
        mmu::flush(flush);
    }

    fn sync_icache(&self, _va: usize, _len: usize) {
        // `fence.i` has no address range: the whole icache it is.
        mmu::sync_icache();
    }
}

impl Cpus for Riscv {
    fn cpu_count(&self) -> usize {
        self.harts.len()
    }

    fn current_cpu(&self) -> CpuId {
        cpu::current().logical()
    }

    fn isa_features(&self) -> IsaFeatures {
        IsaFeatures::Riscv(self.isa)
    }

    fn start_cpu(&self, cpu: CpuId, entry: CpuEntry, arg: usize) -> Result<(), HalError> {
        cpu::start(cpu, self.harts.len(), entry, arg)
    }

    fn send_ipi(&self, cpu: CpuId) {
        if let Some(&hartid) = self.harts.get(cpu) {
            sbi::send_ipi(1, hartid);
        }
    }

    fn wait_for_interrupt(&self) {
        csr::wfi();
    }

    unsafe fn set_cpu_local(&self, block: *const CpuLocal) {
        cpu::current().set_cpu_local(block);
    }

    fn cpu_local(&self) -> *const CpuLocal {
        cpu::current().cpu_local()
    }
}

impl Interrupts for Riscv {
    fn irq_save(&self) -> bool {
        csr::irq_save()
    }

    fn irq_restore(&self, enabled: bool) {
        if enabled {
            csr::irq_enable();
        }
    }

    fn irqs_enabled(&self) -> bool {
        csr::irqs_enabled()
    }
}

impl Clock for Riscv {
    fn now(&self) -> Duration {
        layout::ticks_to_duration(
            csr::rdtime().saturating_sub(self.boot_ticks),
            self.timebase_hz,
        )
    }

    fn set_timer(&self, deadline: Duration) {
        let ticks = layout::duration_to_ticks(deadline, self.timebase_hz);
        sbi::set_timer(self.boot_ticks.saturating_add(ticks));
    }

    fn cancel_timer(&self) {
        sbi::set_timer(u64::MAX);
    }

    fn wall_time(&self) -> Option<Duration> {
        crate::rtc::wall_time()
    }
}

impl Console for Riscv {
    fn write(&self, bytes: &[u8]) {
        console::write(bytes);
    }

    fn try_read(&self) -> Option<u8> {
        console::try_read()
    }

    fn input_state(&self) -> InputState {
        if console::input_ready() {
            InputState::Ready
        } else {
            self.arm_input();
            InputState::Empty
        }
    }

    fn input_interrupts(&self) -> bool {
        crate::plic::enabled()
    }

    fn read_input(&self, buf: &mut [u8]) -> Result<usize, InputState> {
        let mut n = 0;
        while let Some(slot) = buf.get_mut(n) {
            match console::try_read() {
                Some(b) => *slot = b,
                None => break,
            }
            n += 1;
        }
        if n == 0 {
            self.arm_input();
            Err(InputState::Empty)
        } else {
            Ok(n)
        }
    }

    fn panic_write(&self, bytes: &[u8]) {
        console::panic_write(bytes);
    }
}

impl Power for Riscv {
    fn shutdown(&self, code: u8) -> ! {
        power::shutdown(code)
    }

    fn entropy_seed(&self) -> u64 {
        let seed = power::entropy_seed(self.rng_seed);
        match crate::entropy::read_u64() {
            Some(device) => seed ^ device,
            None => seed,
        }
    }
}

/// With `debug=jit`, JIT code is published to gdb's JIT interface
/// (`kernel_core::gdb_jit`): gdb-multiarch attached to QEMU's stub reads
/// the descriptor and the objects from kernel memory and names wasm
/// functions. The live objects may take [`crate::jit::budget`] of the heap.
impl kernel_core::hal::JitDebug for Riscv {
    fn jit_debug_enabled(&self) -> bool {
        self.jit_debug
    }

    fn code_published(&self, code: &kernel_core::hal::JitCode<'_>) {
        // A skip (over budget, out of heap) is counted and logged by
        // `gdb_jit`; the module runs without names in gdb.
        let _ = kernel_core::gdb_jit::publish(code, crate::jit::budget(self.heap_bytes));
    }

    fn code_retired(&self, range: VirtRange) {
        kernel_core::gdb_jit::retire(range);
    }
}

/// There is no host under QEMU to pass directories from: hostfs is
/// hosted only, and every request is `Unsupported` (the defaults).
impl kernel_core::hal::HostFiles for Riscv {}

/// No compiled-module cache yet: every module is compiled at load.
impl kernel_core::hal::CodeCache for Riscv {}

impl Platform for Riscv {
    const NAME: &'static str = "riscv";
}
