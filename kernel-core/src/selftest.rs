//! The kernel's self-tests: the default workload until processes exist.
//!
//! They run inside the kernel on whichever platform booted it (hosted or
//! riscv in QEMU), print one line per test and end with the contract line
//! `N passed, M failed`. Touching kernel memory through raw addresses is the
//! point of several tests, hence the unsafe code here.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::time::Duration;

use crate::boot::say;
use crate::exit;
use crate::hal::{PAGE_SIZE, Perms, PhysAddr, PhysMemory, Platform};
use crate::kernel::{Kernel, REQ_ARM_TIMER};
use crate::mem::{KernelTables, map_frames};

/// How long a test waits for an interrupt before it fails.
const WAIT: Duration = Duration::from_secs(5);

type Outcome = Result<(), String>;
/// A named self-test.
type Test<P> = (&'static str, for<'k, 'h> fn(&'k Kernel<'h, P>) -> Outcome);

/// The tests, in the order they run.
fn tests<P: Platform>() -> [Test<P>; 9] {
    [
        ("frames_alloc_free_coalesce", frames_alloc_free_coalesce),
        ("map_frames_in_runs", map_frames_in_runs),
        ("protect_and_unmap", protect_and_unmap),
        (
            "demand_fault_maps_zeroed_frame",
            demand_fault_maps_zeroed_frame,
        ),
        ("clock_is_monotonic", clock_is_monotonic),
        ("cpu_local_blocks", cpu_local_blocks),
        ("timer_interrupt_on_every_cpu", timer_interrupt_on_every_cpu),
        ("ipi_wakes_idle_cpu", ipi_wakes_idle_cpu),
        (
            "masked_timer_is_delivered_on_unmask",
            masked_timer_is_delivered_on_unmask,
        ),
    ]
}

/// Run every self-test; return [`exit::SUCCESS`] when all pass.
pub fn run<P: Platform>(kernel: &Kernel<'_, P>) -> u8 {
    let hal = kernel.hal();
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests::<P>() {
        match test(kernel) {
            Ok(()) => {
                passed += 1;
                say(hal, format_args!("test {name} ... ok"));
            }
            Err(why) => {
                failed += 1;
                say(hal, format_args!("test {name} ... FAILED: {why}"));
            }
        }
    }
    say(hal, format_args!("{passed} passed, {failed} failed"));
    if failed == 0 {
        exit::SUCCESS
    } else {
        exit::FAILED
    }
}

/// Touch a reserved but unmapped kernel address on purpose. The fault path
/// reports it and stops the machine with [`exit::KERNEL_FAULT`]; reaching
/// the end of this function means the fault was not caught.
#[expect(unsafe_code, reason = "the point is an access to an unmapped address")]
pub fn provoke_fault<P: Platform>(kernel: &Kernel<'_, P>) -> u8 {
    let Ok(range) = kernel.reserve(PAGE_SIZE, PAGE_SIZE) else {
        say(kernel.hal(), format_args!("fault test: no window space"));
        return exit::FAILED;
    };
    say(
        kernel.hal(),
        format_args!("fault test: reading unmapped {:#x}", range.start),
    );
    // SAFETY: not safe by design: the page is reserved and unmapped, the read
    // faults, and the kernel's fault path stops the machine.
    let value = unsafe { core::ptr::read_volatile(range.start as *const u64) };
    say(
        kernel.hal(),
        format_args!("fault test: read {value:#x} without a fault"),
    );
    exit::FAILED
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Outcome {
    if cond { Ok(()) } else { Err(what()) }
}

/// Read a frame's first word through the direct map.
#[expect(unsafe_code, reason = "reads RAM through the direct map")]
fn peek(hal: &impl PhysMemory, pa: PhysAddr) -> Option<u64> {
    let p = hal.direct_map(pa)?;
    // SAFETY: the direct map covers all RAM; `pa` is 8-byte aligned.
    Some(unsafe { core::ptr::read_volatile(p.cast::<u64>()) })
}

/// Write a frame's first word through the direct map.
#[expect(unsafe_code, reason = "writes RAM through the direct map")]
fn poke(hal: &impl PhysMemory, pa: PhysAddr, value: u64) -> bool {
    let Some(p) = hal.direct_map(pa) else {
        return false;
    };
    // SAFETY: the direct map covers all RAM; the caller owns the frame.
    unsafe { core::ptr::write_volatile(p.cast::<u64>(), value) };
    true
}

#[expect(unsafe_code, reason = "reads kernel virtual memory the test mapped")]
fn read_va(va: usize) -> u64 {
    // SAFETY: callers pass addresses inside a mapping or demand region
    // they own.
    unsafe { core::ptr::read_volatile(va as *const u64) }
}

#[expect(unsafe_code, reason = "writes kernel virtual memory the test mapped")]
fn write_va(va: usize, value: u64) {
    // SAFETY: callers pass addresses inside a writable mapping or demand
    // region they own.
    unsafe { core::ptr::write_volatile(va as *mut u64, value) }
}

fn frames_alloc_free_coalesce<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let frames = k.frames();
    let before = frames.free_frames();
    let largest = frames.largest_free_order().ok_or("no free memory")?;
    let got: Vec<PhysAddr> = (0..64)
        .map(|_| frames.alloc(0))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("alloc: {e}"))?;
    for (i, &pa) in got.iter().enumerate() {
        check(poke(k.hal(), pa, 0xF00D_0000 + i as u64), || {
            format!("{:#x} not in direct map", pa.0)
        })?;
    }
    for (i, &pa) in got.iter().enumerate() {
        check(peek(k.hal(), pa) == Some(0xF00D_0000 + i as u64), || {
            format!("frame {:#x} shared", pa.0)
        })?;
    }
    check(frames.free_frames() == before - 64, || {
        "free count off after alloc".into()
    })?;
    for pa in got {
        frames.free(pa, 0).map_err(|e| format!("free: {e}"))?;
    }
    check(frames.free_frames() == before, || "frames lost".into())?;
    check(frames.free(PhysAddr(!0xfff), 0).is_err(), || {
        "wild free accepted".into()
    })?;
    // Everything coalesced back: the largest block is available again.
    let big = frames
        .alloc(largest)
        .map_err(|e| format!("order {largest} after frees: {e}"))?;
    frames
        .free(big, largest)
        .map_err(|e| format!("free big: {e}"))
}

fn map_frames_in_runs<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    const PAGES: usize = 1024;
    let hal = k.hal();
    let got: Vec<PhysAddr> = (0..PAGES)
        .map(|_| k.frames().alloc(0))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("alloc: {e}"))?;
    let range = k
        .reserve(PAGES * PAGE_SIZE, PAGE_SIZE)
        .map_err(|e| format!("{e}"))?;
    let tables = KernelTables::new(k.frames(), hal);
    // SAFETY: the frames were just allocated and the range just reserved.
    #[expect(unsafe_code, reason = "maps frames this test owns")]
    let runs = unsafe { map_frames(hal, range.start, &got, Perms::READ_WRITE, &tables) }
        .map_err(|e| format!("map: {e}"))?;
    let mut result = Ok(());
    for (i, &pa) in got.iter().enumerate() {
        write_va(range.start + i * PAGE_SIZE, i as u64 ^ 0x5A5A);
        if peek(hal, pa) != Some(i as u64 ^ 0x5A5A) {
            result = Err(format!("page {i} does not reach frame {:#x}", pa.0));
            break;
        }
    }
    // SAFETY: the range was mapped above and nothing uses it any more.
    #[expect(unsafe_code, reason = "unmaps the test's own range")]
    let unmapped = unsafe { hal.unmap(range.start, range.len) };
    hal.flush(unmapped.map_err(|e| format!("unmap: {e}"))?);
    k.release(range, PAGE_SIZE).map_err(|e| format!("{e}"))?;
    for pa in got {
        k.frames().free(pa, 0).map_err(|e| format!("free: {e}"))?;
    }
    result?;
    check(runs <= PAGES, || format!("{runs} runs for {PAGES} pages"))
}

fn protect_and_unmap<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let hal = k.hal();
    let pa = k.frames().alloc(0).map_err(|e| format!("{e}"))?;
    let range = k
        .reserve(PAGE_SIZE, PAGE_SIZE)
        .map_err(|e| format!("{e}"))?;
    let tables = KernelTables::new(k.frames(), hal);
    let outcome = (|| {
        // SAFETY: frame and range are this test's own.
        #[expect(unsafe_code, reason = "maps a frame this test owns")]
        let flush = unsafe { hal.map(range.start, pa, PAGE_SIZE, Perms::READ_WRITE, &tables) };
        hal.flush(flush.map_err(|e| format!("map: {e}"))?);
        write_va(range.start + 8, 77);
        // SAFETY: as above; nothing writes the page after this.
        #[expect(unsafe_code, reason = "protects the test's own page")]
        let flush = unsafe { hal.protect(range.start, PAGE_SIZE, Perms::READ) };
        hal.flush(flush.map_err(|e| format!("protect: {e}"))?);
        check(read_va(range.start + 8) == 77, || {
            "value lost by protect".into()
        })?;
        #[expect(unsafe_code, reason = "W^X must be refused, nothing is mapped")]
        // SAFETY: the call is expected to fail before changing anything.
        let wx = unsafe {
            hal.protect(
                range.start,
                PAGE_SIZE,
                Perms {
                    read: true,
                    write: true,
                    execute: true,
                },
            )
        };
        if let Ok(flush) = wx {
            hal.flush(flush);
        }
        Ok(())
    })();
    // SAFETY: nothing uses the page any more.
    #[expect(unsafe_code, reason = "unmaps the test's own page")]
    let flush = unsafe { hal.unmap(range.start, PAGE_SIZE) };
    hal.flush(flush.map_err(|e| format!("unmap: {e}"))?);
    k.release(range, PAGE_SIZE).map_err(|e| format!("{e}"))?;
    k.frames().free(pa, 0).map_err(|e| format!("{e}"))?;
    outcome
}

fn demand_fault_maps_zeroed_frame<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    const PAGES: usize = 64;
    let region = k
        .demand_region(PAGES, Perms::READ_WRITE)
        .map_err(|e| format!("{e}"))?;
    let base = region.range().start;
    check(region.resident_pages() == 0, || {
        "pages resident before any touch".into()
    })?;
    check(read_va(base) == 0, || {
        "first touch did not read zero".into()
    })?;
    let touched: Vec<usize> = (0..PAGES).step_by(3).collect();
    for &p in &touched {
        write_va(base + p * PAGE_SIZE + 16, 0xD00D + p as u64);
    }
    for &p in &touched {
        let v = read_va(base + p * PAGE_SIZE + 16);
        check(v == 0xD00D + p as u64, || format!("page {p} read {v:#x}"))?;
    }
    let resident = region.resident_pages();
    check(resident == touched.len(), || {
        format!("{resident} pages resident, {} touched", touched.len())
    })?;
    let free_before = k.frames().free_frames();
    let freed = region.unmap().map_err(|e| format!("{e}"))?;
    check(freed == resident, || {
        format!("{freed} frames freed of {resident}")
    })?;
    check(
        k.frames().free_frames() == free_before + resident as u64,
        || "frames not returned".into(),
    )
}

fn clock_is_monotonic<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let hal = k.hal();
    let start = hal.now();
    let mut last = start;
    for _ in 0..10_000 {
        let now = hal.now();
        check(now >= last, || {
            format!("clock went back from {last:?} to {now:?}")
        })?;
        last = now;
    }
    let advanced = k.wait_until(WAIT, || hal.now() > start + Duration::from_millis(2));
    check(advanced, || "clock does not advance".into())
}

fn cpu_local_blocks<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let hal = k.hal();
    check(hal.current_cpu() == 0, || {
        format!("boot CPU is {}", hal.current_cpu())
    })?;
    let local = hal.cpu_local();
    check(!local.is_null(), || "no local block on CPU 0".into())?;
    for (i, cpu) in k.cpus().iter().enumerate() {
        check(cpu.is_online(), || format!("CPU {i} is not online"))?;
        let id = cpu.local_id.load(Ordering::Relaxed);
        check(id == i, || {
            format!("CPU {i} runs with the block of CPU {id}")
        })?;
    }
    Ok(())
}

fn timer_interrupt_on_every_cpu<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let hal = k.hal();
    let before: Vec<u64> = k.cpus().iter().map(|c| c.timer_ticks()).collect();
    for cpu in 1..k.cpus().len() {
        k.cpus()[cpu]
            .requests
            .fetch_or(REQ_ARM_TIMER, Ordering::AcqRel);
        hal.send_ipi(cpu);
    }
    hal.set_timer(hal.now() + Duration::from_millis(1));
    let all = k.wait_until(WAIT, || {
        k.cpus()
            .iter()
            .zip(&before)
            .all(|(c, &b)| c.timer_ticks() > b)
    });
    let missing: Vec<usize> = (0..before.len())
        .filter(|&i| k.cpus()[i].timer_ticks() <= before[i])
        .collect();
    check(all, || format!("no timer interrupt on CPUs {missing:?}"))
}

fn ipi_wakes_idle_cpu<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let hal = k.hal();
    for cpu in 1..k.cpus().len() {
        let state = &k.cpus()[cpu];
        let (ipis, wakeups) = (state.ipis(), state.wakeups());
        hal.send_ipi(cpu);
        let woke = k.wait_until(WAIT, || state.ipis() > ipis && state.wakeups() > wakeups);
        check(woke, || format!("CPU {cpu} did not wake on an IPI"))?;
    }
    Ok(())
}

fn masked_timer_is_delivered_on_unmask<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let hal = k.hal();
    let state = &k.cpus()[0];
    let before = state.timer_ticks();
    let masked_ticks;
    {
        let _guard = hal.disable_irqs();
        let deadline = hal.now() + Duration::from_millis(1);
        hal.set_timer(deadline);
        // Wait well past the deadline with interrupts masked.
        k.wait_until(Duration::from_millis(20), || false);
        masked_ticks = state.timer_ticks() - before;
        check(!hal.irqs_enabled(), || "guard did not mask".into())?;
    }
    check(masked_ticks == 0, || "timer delivered while masked".into())?;
    check(k.wait_until(WAIT, || state.timer_ticks() > before), || {
        "masked timer never delivered after unmask".into()
    })
}
