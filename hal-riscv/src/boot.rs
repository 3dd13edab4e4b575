//! The entry point, the boot sequence and the panic handler.
//!
//! OpenSBI enters `_start` (the first instruction of the image, at
//! `0x8020_0000`) on one hart, in S-mode with paging off, `a0` = hart id,
//! `a1` = device tree. The boot sequence:
//! 1. entry code: `tp` = block 0, `sp` = boot stack 0, clear `.bss`;
//! 2. trap vector and trap stack on the boot hart (early faults reported);
//! 3. device tree: finisher and UART first (so every later failure is
//!    reported and exits with the right status), then the board facts;
//!    the vector unit on when every hart has V;
//! 4. heap after the image, memory map = RAM minus firmware, image, heap,
//!    device tree and reserved memory;
//! 5. page tables (the image W^X with stack guards), paging on: Sv48 if
//!    the hart takes it, else Sv39 (`mmu::enable`);
//! 6. hart blocks, the `Riscv` value, the console log subscriber;
//! 7. `kernel_core::boot::boot`, then `shutdown` with its status.
//!
//! INV-BOOT-RV-1: a malformed or unusable device tree ends in a one-line
//! report and `shutdown(PANIC)`, never a panic of this code (the `fdt`
//! crate's own asserts on a corrupt structure block go to the panic
//! handler, which reports and exits with the same status).

use core::arch::global_asm;
use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicUsize, Ordering};

use kernel_core::boot::BootInfo;
use kernel_core::cmdline::Cmdline;
use kernel_core::exit;
use kernel_core::hal::{PhysAddr, PhysRange, RiscvExt};
use kernel_core::log::ConsoleSubscriber;

use crate::console::PanicWriter;
use crate::dt::{self, BoardInfo};
use crate::fixed::FixedVec;
use crate::layout::{self, BOOT_STACK_STRIDE, FIRMWARE_BASE, IDENTITY_LIMIT, PHYSMAP_SIZE};
use crate::mmu::{self, KernelTables};
use crate::platform::Riscv;
use crate::{console, cpu, csr, heap, power};

global_asm!(
    ".section .text.entry, \"ax\"",
    ".globl _start",
    "_start:",
    "    la tp, {harts}",
    // Boot stack 0 is the first stride's top (its guard page below it).
    "    la sp, __boot_stacks_start",
    "    li t0, {stack}",
    "    add sp, sp, t0",
    "    li s0, 0",
    "    la t0, __bss_start",
    "    la t1, __bss_end",
    "1:  bgeu t0, t1, 2f",
    "    sd zero, 0(t0)",
    "    addi t0, t0, 8",
    "    j 1b",
    // a0 (hart id) and a1 (device tree) are untouched so far.
    "2:  call {main}",
    "3:  wfi",
    "    j 3b",
    harts = sym cpu::HARTS,
    stack = const BOOT_STACK_STRIDE,
    main = sym boot_main,
);

unsafe extern "C" {
    static __image_end: u8;
}

static PLATFORM: spin::Once<Riscv> = spin::Once::new();

/// Report a boot failure on one line and stop with `PANIC`.
fn fail(args: core::fmt::Arguments<'_>) -> ! {
    let _ = writeln!(PanicWriter, "hal-riscv: {args}");
    power::shutdown(exit::PANIC)
}

/// The device tree at `dtb`, as a `'static` slice.
fn device_tree(dtb: usize) -> &'static [u8] {
    if dtb == 0 || !dtb.is_multiple_of(8) || dtb as u64 >= IDENTITY_LIMIT {
        fail(format_args!("no usable device tree pointer ({dtb:#x})"));
    }
    // SAFETY: OpenSBI hands a device tree at `a1`; its 8-byte header is
    // readable RAM (paging is off).
    let header: [u8; 8] = unsafe { core::ptr::read_volatile(dtb as *const [u8; 8]) };
    let size = dt::total_size(&header).unwrap_or_else(|e| fail(format_args!("{e}")));
    if dtb as u64 + size as u64 > IDENTITY_LIMIT {
        fail(format_args!(
            "device tree at {dtb:#x} is above the identity map"
        ));
    }
    // SAFETY: the blob is `size` bytes of RAM below 4 GiB; it is kept out of
    // the memory map and the heap, and nothing writes it, so it stays valid
    // and unchanged for the kernel's life (identity mapped once paging is on).
    unsafe { core::slice::from_raw_parts(dtb as *const u8, size) }
}

extern "C" fn boot_main(hartid: usize, dtb: usize) -> ! {
    cpu::init_boot_hart(hartid);
    if !cpu::stacks_match_linker_script() {
        fail(format_args!(
            "link.ld and layout.rs disagree on stack sizes or section order"
        ));
    }
    let boot_ticks = csr::rdtime();

    let blob = device_tree(dtb);
    let fdt = dt::open(blob).unwrap_or_else(|e| fail(format_args!("{e}")));
    let devices = dt::devices(&fdt);
    if let Some(finisher) = devices.finisher.filter(|&a| a < IDENTITY_LIMIT) {
        // SAFETY: the device tree names a `sifive,test1` there, identity
        // mapped; no other hart runs yet.
        unsafe { power::set_finisher(finisher) };
    }
    if let Some(rtc) = devices.rtc.filter(|&a| a < IDENTITY_LIMIT) {
        // SAFETY: the device tree names a goldfish RTC there, identity
        // mapped; no other hart runs yet.
        unsafe { crate::rtc::set_base(rtc) };
    }
    if let Some(uart) = devices.uart.filter(|u| u.base < IDENTITY_LIMIT) {
        // SAFETY: the device tree names a 16550 there, identity mapped; no
        // other hart runs yet.
        unsafe { console::init(uart) };
    }
    let info = dt::parse(&fdt).unwrap_or_else(|e| fail(format_args!("{e}")));
    if info.isa.has(RiscvExt::V) {
        // Before any secondary starts, so each turns it on too.
        cpu::enable_vectors();
    }

    let (memory_map, heap) = plan_memory(&info, blob);
    // SAFETY: `plan_memory` placed the heap in RAM below 4 GiB (identity
    // mapped), outside the image, the device tree, reserved memory and the
    // memory map, so it is the allocator's alone.
    if !unsafe { heap::init(heap.start.0 as *mut u8, heap.len as usize) } {
        fail(format_args!(
            "heap at {:#x} ({} bytes) rejected",
            heap.start.0, heap.len
        ));
    }

    // The UART's receive interrupt, to the boot hart's supervisor context.
    let boot_index = info.harts.iter().position(|&h| h == hartid as u64);
    if let (Some(plic), Some(irq), Some(i)) = (
        info.plic.filter(|p| p.base < IDENTITY_LIMIT),
        devices.uart.and_then(|u| u.irq),
        boot_index,
    ) && let Some(&context) = plic.contexts.get(i)
        && context != u32::MAX
    {
        // SAFETY: the device tree names this PLIC and context, identity
        // mapped; no other hart runs yet (INV-PLIC-1).
        unsafe { crate::plic::init(plic.base, irq, context) };
    }
    // SAFETY: the slots are the device tree's `virtio,mmio` windows; no
    // other hart runs yet (INV-ENTROPY-1).
    let rng = unsafe { crate::entropy::probe(&info.virtio) };

    let mut ram = FixedVec::new(layout::EMPTY_RANGE);
    for r in info.ram.iter().filter(|r| r.start.0 < PHYSMAP_SIZE) {
        let _ = ram.push(*r);
    }
    let paging = mmu::enable(&ram, &cpu::image_layout())
        .unwrap_or_else(|e| fail(format_args!("page tables: {e}")));

    let harts = layout::logical_harts(&info.harts, hartid as u64);
    cpu::init_blocks(&harts, paging.satp);

    // A bad command line is reported by `boot` itself; until then the
    // defaults hold.
    let cmdline = Cmdline::parse(info.bootargs).unwrap_or_default();
    let platform: &'static Riscv = PLATFORM.call_once(|| Riscv {
        memory_map,
        harts,
        timebase_hz: info.timebase_hz,
        boot_ticks,
        rng_seed: info.rng_seed,
        heap_bytes: heap.len,
        tables: KernelTables::new(ram, paging.virt),
        isa: info.isa,
        jit_debug: cmdline.jit_debug,
    });

    // The console log subscriber: `log=` of the command line, else warn.
    let _ = ConsoleSubscriber::new(platform, cmdline.log).install();
    tracing::debug!(
        "boot hart {hartid:#x}, logical harts {:?}, timebase {} Hz",
        &*platform.harts,
        platform.timebase_hz
    );
    tracing::debug!(
        "heap {:#x}..{:#x}, device tree at {:#x}",
        heap.start.0,
        heap.end(),
        dtb
    );
    for r in platform.memory_map.iter() {
        tracing::debug!("memory {:#x}..{:#x}", r.start.0, r.end());
    }
    let window = paging.virt.window();
    tracing::info!(
        "paging: {}, kernel window {:#x}..{:#x} ({} GiB)",
        paging.virt.mode.name(),
        window.start,
        window.end(),
        window.len >> 30
    );
    match rng {
        Some(base) => tracing::info!("entropy: virtio-rng at {base:#x}"),
        None => tracing::info!("entropy: no virtio-rng; the device tree's rng-seed and the timer"),
    }

    let code = kernel_core::boot::boot(
        platform,
        BootInfo {
            cmdline: info.bootargs,
            spec: SPEC_BUNDLE,
            wasm_stack: WASM_STACK,
            wasi: wasi_programs::PROGRAMS,
            initrd: boot_image(info.initrd),
        },
    );
    power::shutdown(code)
}

/// The Rust WASI programs `test=wasi` runs (built by the build script from
/// `tests/wasi-programs`).
mod wasi_programs {
    include!(concat!(env!("OUT_DIR"), "/wasi_programs.rs"));
}

/// The spec-script bundle `test=spec` runs (wasm-v1, wasm-v2, simd and
/// extended-const, converted by the build script).
static SPEC_BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/spec.bin"));

/// Bytes of the boot stack ([`crate::layout::BOOT_STACK_SIZE`]) wasm may
/// use under `test=spec`: half, leaving the rest to the runner, Cranelift
/// and host functions above the entry.
const WASM_STACK: usize = crate::layout::BOOT_STACK_SIZE / 2;

/// The boot image QEMU loaded, as a slice: RAM below 4 GiB (identity
/// mapped) that `plan_memory` kept out of the memory map and the heap,
/// so nothing else ever uses it. A range above that is refused with a
/// line (the kernel then runs without a boot image).
fn boot_image(range: Option<PhysRange>) -> &'static [u8] {
    let Some(r) = range.filter(|r| r.len > 0) else {
        return &[];
    };
    if r.end() > IDENTITY_LIMIT {
        tracing::warn!(
            "boot image at {:#x}..{:#x} is above the identity map: not used",
            r.start.0,
            r.end()
        );
        return &[];
    }
    // SAFETY: below the identity limit, so mapped; a hole of the memory
    // map and of the heap (`plan_memory`), so nothing writes it; QEMU
    // filled it before the kernel started and it lives as long as the
    // machine.
    unsafe { core::slice::from_raw_parts(r.start.0 as *const u8, r.len as usize) }
}

/// Place the heap and compute the memory map (INV-LAYOUT-1).
fn plan_memory(info: &BoardInfo<'_>, blob: &[u8]) -> (layout::MemoryMap, PhysRange) {
    let image_end = (&raw const __image_end) as u64;
    let dtb = PhysRange {
        start: PhysAddr(blob.as_ptr() as u64),
        len: blob.len() as u64,
    };
    let mut holes = FixedVec::<PhysRange, { dt::MAX_RESERVED + 3 }>::new(layout::EMPTY_RANGE);
    let _ = holes.push(dtb);
    if let Some(initrd) = info.initrd {
        let _ = holes.push(initrd);
    }
    for r in info.reserved.iter() {
        let _ = holes.push(*r);
    }
    let ram_total = layout::total(&info.ram);
    let heap = layout::place_heap(&info.ram, &holes, image_end, layout::heap_size(ram_total))
        .unwrap_or_else(|| {
            fail(format_args!(
                "no room for the heap after the image ({image_end:#x})"
            ))
        });
    let _ = holes.push(PhysRange {
        start: PhysAddr(FIRMWARE_BASE),
        len: heap.end() - FIRMWARE_BASE,
    });
    let map = layout::usable_memory(&info.ram, &holes, PHYSMAP_SIZE);
    if map.is_empty() {
        fail(format_args!(
            "no RAM left for the kernel after the image and heap"
        ));
    }
    (map, heap)
}

/// Which hart is reporting a panic (`usize::MAX`: none).
static PANIC_OWNER: AtomicUsize = AtomicUsize::new(usize::MAX);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let _ = csr::irq_save();
    let me = cpu::current().logical();
    match PANIC_OWNER.compare_exchange(usize::MAX, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            let mut w = PanicWriter;
            let _ = match info.location() {
                Some(at) => writeln!(w, "panic on cpu {me} at {at}: {}", info.message()),
                None => writeln!(w, "panic on cpu {me}: {}", info.message()),
            };
        }
        Err(owner) if owner == me => {
            console::panic_write(b"panic: nested panic while reporting a panic\n")
        }
        // Another hart is reporting and will stop the machine.
        Err(_) => loop {
            csr::wfi();
        },
    }
    power::shutdown(exit::PANIC)
}
