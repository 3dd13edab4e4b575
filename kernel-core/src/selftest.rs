//! The kernel's self-tests: the default workload until processes exist.
//!
//! They run inside the kernel on whichever platform booted it (hosted or
//! riscv in QEMU), print one line per test and end with the contract line
//! `N passed, M failed`. Touching kernel memory through raw addresses is the
//! point of several tests, hence the unsafe code here.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use crate::boot::say;
use crate::exit;
use crate::hal::{Access, PAGE_SIZE, Perms, PhysAddr, PhysMemory, Platform};
use crate::kernel::{Kernel, REQ_ARM_TIMER};
use crate::mem::{
    Backing, Commit, FaultOutcome, KernelTables, Mapping, Owner, Placement, ProcessId, RegionSpec,
    VmError, map_frames,
};
use crate::sched::Executor;
use crate::sched::fiber::{Fiber, FiberStack, KernelStack, Resume};

/// How long a test waits for an interrupt before it fails.
const WAIT: Duration = Duration::from_secs(5);

type Outcome = Result<(), String>;
/// A named self-test.
type Test<P> = (&'static str, for<'k, 'h> fn(&'k Kernel<'h, P>) -> Outcome);

/// The tests, in the order they run.
fn tests<P: Platform>() -> Vec<Test<P>> {
    let tests: Vec<Test<P>> = alloc::vec![
        ("frames_alloc_free_coalesce", frames_alloc_free_coalesce),
        ("map_frames_in_runs", map_frames_in_runs),
        ("protect_and_unmap", protect_and_unmap),
        (
            "demand_fault_maps_zeroed_frame",
            demand_fault_maps_zeroed_frame,
        ),
        ("vm_guards_holes_and_wx", vm_guards_holes_and_wx),
        ("vm_protect_and_decommit", vm_protect_and_decommit),
        ("vm_cow_and_shared_objects", vm_cow_and_shared_objects),
        ("vm_contiguous_backing", vm_contiguous_backing),
        ("vm_owner_limits", vm_owner_limits),
        ("vm_frame_accounting_returns", vm_frame_accounting_returns),
        ("fiber_switch_on_kernel_stack", fiber_switch_on_kernel_stack),
        ("clock_is_monotonic", clock_is_monotonic),
        ("cpu_local_blocks", cpu_local_blocks),
        ("timer_interrupt_on_every_cpu", timer_interrupt_on_every_cpu),
        ("ipi_wakes_idle_cpu", ipi_wakes_idle_cpu),
        (
            "masked_timer_is_delivered_on_unmask",
            masked_timer_is_delivered_on_unmask,
        ),
    ];
    // Only riscv64's ABI has callee-saved float registers to keep.
    #[cfg(target_arch = "riscv64")]
    let tests = {
        let mut tests = tests;
        tests.push((
            "fiber_switch_keeps_float_registers",
            fiber_switch_keeps_float_registers,
        ));
        tests
    };
    tests
}

/// A named self-test that runs on an executor every CPU serves.
type SchedTest<P> = (
    &'static str,
    for<'k, 'h> fn(&'k Kernel<'h, P>, &Executor<'h, P>) -> Outcome,
);

/// The executor tests, in the order they run.
fn sched_tests<P: Platform>() -> [SchedTest<P>; 2] {
    [
        ("executor_runs_on_every_cpu", executor_runs_on_every_cpu),
        (
            "channel_ping_pong_across_cpus",
            channel_ping_pong_across_cpus,
        ),
    ]
}

/// Tasks in the ping-pong test (pairs times two).
const PING_PONG_TASKS: usize = 1000;
/// Round trips per pair.
const PING_PONG_ROUNDS: u64 = 20;

/// [`PING_PONG_TASKS`] tasks spread over every CPU's queue, in pairs that
/// bounce a counter through two one-slot channels: every exchange must
/// arrive (no lost wake-up, INV-SCHED-1) and the sums must be exact.
fn channel_ping_pong_across_cpus<P: Platform>(
    kernel: &Kernel<'_, P>,
    exec: &Executor<'_, P>,
) -> Outcome {
    use crate::sched::sync::channel;
    let hal = kernel.hal();
    let handle = exec.handle();
    let one = core::num::NonZeroUsize::MIN;
    let out = exec.run_until(handle.timeout(WAIT * 6, async {
        let mut joins = Vec::new();
        for pair in 0..PING_PONG_TASKS / 2 {
            let (to_pong, from_ping) = channel(handle.clone(), one);
            let (to_ping, from_pong) = channel(handle.clone(), one);
            let ping = async move {
                let mut sum = 0;
                for i in 0..PING_PONG_ROUNDS {
                    if to_pong.send(i).await.is_err() {
                        return u64::MAX;
                    }
                    match from_pong.recv().await {
                        Ok(v) => sum += v,
                        Err(_) => return u64::MAX,
                    }
                }
                sum
            };
            let pong = async move {
                let mut n = 0;
                while let Ok(v) = from_ping.recv().await {
                    if to_ping.send(v + 1).await.is_err() {
                        return u64::MAX;
                    }
                    n += 1;
                }
                n
            };
            let cpus = hal.cpu_count();
            let ping = handle.spawn_on((2 * pair) % cpus, ping);
            let pong = handle.spawn_on((2 * pair + 1) % cpus, pong);
            match (ping, pong) {
                (Ok(p), Ok(q)) => joins.extend([(0, p), (1, q)]),
                (Err(e), _) | (_, Err(e)) => return Err(format!("{e}")),
            }
        }
        // Each ping's sum is 1 + 2 + ... + ROUNDS; each pong answered ROUNDS.
        let want_sum = PING_PONG_ROUNDS * (PING_PONG_ROUNDS + 1) / 2;
        for (k, j) in joins {
            let got = j.await.map_err(|e| format!("{e}"))?;
            let want = if k == 0 { want_sum } else { PING_PONG_ROUNDS };
            if got != want {
                return Err(format!("a task ended with {got}, expected {want}"));
            }
        }
        Ok(())
    }));
    match out {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(String::from("timed out: a wake-up was lost")),
        Err(e) => Err(format!("{e}")),
    }
}

/// A task pinned to each CPU's queue runs; between them every online CPU
/// ran one (stealing may move some, so each CPU's task records where it
/// ran and the test waits until every CPU was seen or the timeout passes).
fn executor_runs_on_every_cpu<P: Platform>(
    kernel: &Kernel<'_, P>,
    exec: &Executor<'_, P>,
) -> Outcome {
    let hal = kernel.hal();
    let cpus = hal.cpu_count();
    let online = kernel.cpus().iter().filter(|c| c.is_online()).count();
    let seen = alloc::sync::Arc::new(core::sync::atomic::AtomicU64::new(0));
    let handle = exec.handle();
    let end = hal.now() + WAIT;
    let out = exec.run_until(async {
        while seen.load(Ordering::SeqCst).count_ones() < online as u32 && hal.now() < end {
            let mut joins = Vec::new();
            for cpu in 0..cpus {
                let seen = seen.clone();
                let h = handle.clone();
                if let Ok(j) = handle.spawn_on(cpu, async move {
                    if let Some(here) = h.current_cpu().filter(|&c| c < 64) {
                        seen.fetch_or(1 << here, Ordering::SeqCst);
                    }
                }) {
                    joins.push(j);
                }
            }
            for j in joins {
                let _ = j.await;
            }
            crate::sched::yield_now().await;
        }
    });
    out.map_err(|e| format!("{e}"))?;
    let ran = seen.load(Ordering::SeqCst).count_ones();
    if ran as usize >= online {
        Ok(())
    } else {
        Err(format!("tasks ran on {ran} of {online} online CPUs"))
    }
}

/// Run every self-test; return [`exit::SUCCESS`] when all pass.
pub fn run<P: Platform>(kernel: &Kernel<'_, P>) -> u8 {
    let hal = kernel.hal();
    let (mut passed, mut failed) = (0, 0);
    let mut record = |name: &str, outcome: Outcome| match outcome {
        Ok(()) => {
            passed += 1;
            say(hal, format_args!("test {name} ... ok"));
        }
        Err(why) => {
            failed += 1;
            say(hal, format_args!("test {name} ... FAILED: {why}"));
        }
    };
    for (name, test) in tests::<P>() {
        record(name, test(kernel));
    }
    // The executor tests run while every CPU serves one executor.
    crate::boot::with_executor(kernel, |exec| {
        for (name, test) in sched_tests::<P>() {
            record(name, test(kernel, exec));
        }
    });
    say(hal, format_args!("{passed} passed, {failed} failed"));
    if failed == 0 {
        exit::SUCCESS
    } else {
        exit::FAILED
    }
}

/// Touch a committed page that has no frame yet while holding the address
/// space's write lock, which breaks INV-VM-5 on purpose: the fault path
/// must report it ([`FaultOutcome::LockHeld`]) and stop the machine with
/// [`exit::KERNEL_FAULT`] instead of spinning on the lock for ever.
pub fn provoke_fault_under_lock<P: Platform>(kernel: &Kernel<'_, P>) -> u8 {
    let region = Mapping::reserve(kernel.vm(), &RegionSpec::new(PAGE_SIZE));
    let Ok(region) = region else {
        say(kernel.hal(), format_args!("fault test: no window space"));
        return exit::FAILED;
    };
    if region
        .commit(0, PAGE_SIZE, Perms::READ_WRITE, Commit::Demand)
        .is_err()
    {
        say(kernel.hal(), format_args!("fault test: no memory"));
        return exit::FAILED;
    }
    let va = region.range().start;
    say(
        kernel.hal(),
        format_args!("fault test: reading {va:#x} under the address-space write lock"),
    );
    let lock = kernel.vm().write_lock();
    let value = read_va(va);
    drop(lock);
    say(
        kernel.hal(),
        format_args!("fault test: read {value:#x} without a report"),
    );
    exit::FAILED
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

/// Recurse on the kernel stack until it overflows. The platform's guard
/// page below the stack turns the overflow into a fault, which the fault
/// path reports and answers by stopping the machine with
/// [`exit::KERNEL_FAULT`]; returning means the stack had no guard (or was
/// larger than `usize::MAX` frames).
pub fn provoke_stack_overflow<P: Platform>(kernel: &Kernel<'_, P>) -> u8 {
    say(
        kernel.hal(),
        format_args!("overflow test: recursing on the kernel stack"),
    );
    let depth = recurse(0);
    say(
        kernel.hal(),
        format_args!("overflow test: returned from depth {depth} without a fault"),
    );
    exit::FAILED
}

/// One 1 KiB frame per level, kept live across the call so that neither
/// the frame nor the recursion can be optimised away.
#[inline(never)]
fn recurse(depth: usize) -> usize {
    let mut frame = [0u8; 1024];
    frame[depth % 1024] = 1;
    let frame = core::hint::black_box(frame);
    if depth == usize::MAX {
        return depth;
    }
    recurse(depth + 1) + usize::from(frame[depth % 1024])
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
    let region = Mapping::reserve(k.vm(), &RegionSpec::new(PAGES * PAGE_SIZE))
        .map_err(|e| format!("{e}"))?;
    region
        .commit(0, PAGES * PAGE_SIZE, Perms::READ_WRITE, Commit::Demand)
        .map_err(|e| format!("commit: {e}"))?;
    let base = region.range().start;
    check(region.resident() == 0, || {
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
    let resident = region.resident();
    check(resident == touched.len(), || {
        format!("{resident} pages resident, {} touched", touched.len())
    })?;
    let free_before = k.frames().free_frames();
    let freed = region.unmap().map_err(|e| format!("{e}"))?;
    check(freed == resident as u64, || {
        format!("{freed} frames freed of {resident}")
    })?;
    check(
        k.frames().free_frames() == free_before + resident as u64,
        || "frames not returned".into(),
    )
}

fn expect_err<T>(r: Result<T, VmError>, want: VmError, what: &str) -> Outcome {
    match r {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!("{what}: {e}, expected {want}")),
        Ok(_) => Err(format!("{what}: succeeded, expected {want}")),
    }
}

fn vm_guards_holes_and_wx<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let vm = k.vm();
    let spec = RegionSpec {
        guard: 2 * PAGE_SIZE,
        ..RegionSpec::new(8 * PAGE_SIZE)
    };
    let m = Mapping::reserve(vm, &spec).map_err(|e| format!("{e}"))?;
    let r = m.range();
    let wx = Perms {
        read: true,
        write: true,
        execute: true,
    };
    expect_err(
        m.commit(0, PAGE_SIZE, wx, Commit::Demand),
        VmError::WriteExecute,
        "W+X commit",
    )?;
    m.commit(0, 2 * PAGE_SIZE, Perms::READ, Commit::Demand)
        .map_err(|e| format!("commit: {e}"))?;
    expect_err(
        m.commit(PAGE_SIZE, PAGE_SIZE, Perms::READ, Commit::Demand),
        VmError::AlreadyCommitted,
        "double commit",
    )?;
    expect_err(
        m.protect(0, PAGE_SIZE, wx),
        VmError::WriteExecute,
        "W+X protect",
    )?;
    let cases = [
        (r.start - 1, Access::Read, FaultOutcome::Guard),
        (r.start - 2 * PAGE_SIZE, Access::Read, FaultOutcome::Guard),
        (r.end(), Access::Write, FaultOutcome::Guard),
        (r.start + 4 * PAGE_SIZE, Access::Read, FaultOutcome::Hole),
        (r.start, Access::Write, FaultOutcome::Violation),
        (r.start, Access::Execute, FaultOutcome::Violation),
        (r.start + 8, Access::Read, FaultOutcome::Resolved),
    ];
    for (addr, access, want) in cases {
        let got = vm.probe(addr, access);
        check(got == want, || {
            format!("probe {addr:#x} {access:?}: {got:?}, expected {want:?}")
        })?;
    }
    let guard = vm.query(r.start - 1).map(|i| i.backing);
    check(guard == Some(Backing::Guard), || {
        format!("guard query {guard:?}")
    })?;
    let hole = vm.query(r.start + 4 * PAGE_SIZE).map(|i| i.backing);
    check(hole == Some(Backing::Hole), || {
        format!("hole query {hole:?}")
    })?;
    check(read_va(r.start + PAGE_SIZE) == 0, || "demand read".into())?;
    let info = vm.query(r.start + PAGE_SIZE).ok_or("no query")?;
    check(
        info.backing == Backing::Anonymous && info.frame.is_some() && info.perms == Perms::READ,
        || format!("after touch: {info:?}"),
    )?;
    drop(m);
    check(vm.query(r.start).is_none(), || {
        "region outlived drop".into()
    })
}

fn vm_protect_and_decommit<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let vm = k.vm();
    let m = Mapping::reserve(vm, &RegionSpec::new(16 * PAGE_SIZE)).map_err(|e| format!("{e}"))?;
    let base = m.range().start;
    // Page tables the MMU takes stay with it (riscv keeps them for reuse),
    // so count the owner's frames rather than the allocator's free ones;
    // vm_frame_accounting_returns checks the allocator exactly.
    let held0 = vm.owner_frames(Owner::Kernel);
    m.commit(0, 8 * PAGE_SIZE, Perms::READ_WRITE, Commit::Eager)
        .map_err(|e| format!("eager: {e}"))?;
    check(m.resident() == 8, || format!("{} resident", m.resident()))?;
    for p in 0..8 {
        write_va(base + p * PAGE_SIZE, 0xAB00 + p as u64);
    }
    m.protect(0, 8 * PAGE_SIZE, Perms::READ)
        .map_err(|e| format!("protect: {e}"))?;
    check(read_va(base + 3 * PAGE_SIZE) == 0xAB03, || {
        "value lost by protect".into()
    })?;
    check(
        vm.probe(base, Access::Write) == FaultOutcome::Violation,
        || "write allowed after protect".into(),
    )?;
    m.protect(0, PAGE_SIZE, Perms::READ_WRITE)
        .map_err(|e| format!("protect back: {e}"))?;
    write_va(base, 1);
    let freed = m
        .decommit(0, 4 * PAGE_SIZE)
        .map_err(|e| format!("decommit: {e}"))?;
    check(freed == 4, || format!("decommit freed {freed}"))?;
    check(vm.probe(base, Access::Read) == FaultOutcome::Hole, || {
        "decommitted page is not a hole".into()
    })?;
    expect_err(
        m.protect(0, PAGE_SIZE, Perms::READ),
        VmError::NotCommitted,
        "protect of a hole",
    )?;
    check(read_va(base + 4 * PAGE_SIZE) == 0xAB04, || {
        "decommit touched its neighbour".into()
    })?;
    m.unmap().map_err(|e| format!("{e}"))?;
    check(vm.owner_frames(Owner::Kernel) == held0, || {
        "frames not returned".into()
    })
}

fn vm_cow_and_shared_objects<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let vm = k.vm();
    let held0 = vm.owner_frames(Owner::Kernel);
    let mut template = [0u8; PAGE_SIZE + 8];
    template[..8].copy_from_slice(&0x1111u64.to_ne_bytes());
    template[PAGE_SIZE..].copy_from_slice(&0x2222u64.to_ne_bytes());
    let obj = vm
        .create_object(3, &template, Owner::Kernel)
        .map_err(|e| format!("object: {e}"))?;
    let spec = RegionSpec::new(0);
    let a = vm
        .map_object(&spec, &obj, Perms::READ_WRITE, true)
        .map_err(|e| format!("cow a: {e}"))?;
    let b = vm
        .map_object(&spec, &obj, Perms::READ_WRITE, true)
        .map_err(|e| format!("cow b: {e}"))?;
    let s = vm
        .map_object(&spec, &obj, Perms::READ_WRITE, false)
        .map_err(|e| format!("shared: {e}"))?;
    vm.drop_object(obj);
    let outcome = (|| {
        check(
            read_va(a.start) == 0x1111 && read_va(b.start + PAGE_SIZE) == 0x2222,
            || "template not visible".into(),
        )?;
        let q = vm.query(a.start).map(|i| i.backing);
        check(q == Some(Backing::Cow), || format!("cow query {q:?}"))?;
        write_va(a.start, 0xAAAA);
        check(read_va(a.start) == 0xAAAA, || "COW write lost".into())?;
        check(
            read_va(b.start) == 0x1111 && read_va(s.start) == 0x1111,
            || "COW write leaked into the object".into(),
        )?;
        let q = vm.query(a.start).map(|i| i.backing);
        check(q == Some(Backing::Anonymous), || {
            format!("copied page {q:?}")
        })?;
        write_va(s.start + 2 * PAGE_SIZE, 0x5555);
        check(read_va(b.start + 2 * PAGE_SIZE) == 0x5555, || {
            "shared write not seen by a COW mapping".into()
        })?;
        check(read_va(a.start + PAGE_SIZE) == 0x2222, || {
            "page 1 lost".into()
        })
    })();
    for r in [a, b, s] {
        vm.release(r.start).map_err(|e| format!("release: {e}"))?;
    }
    outcome?;
    let held = vm.owner_frames(Owner::Kernel);
    check(held == held0, || format!("{} frames leaked", held - held0))
}

fn vm_contiguous_backing<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let vm = k.vm();
    let (r, pa) = vm
        .map_contiguous(&RegionSpec::new(8 * PAGE_SIZE), Perms::READ_WRITE)
        .map_err(|e| format!("{e}"))?;
    let outcome = (|| {
        write_va(r.start + 5 * PAGE_SIZE, 0xC0C0);
        let direct = peek(k.hal(), PhysAddr(pa.0 + 5 * PAGE_SIZE as u64));
        check(direct == Some(0xC0C0), || {
            "not physically contiguous".into()
        })?;
        let q = vm.query(r.start + 5 * PAGE_SIZE).ok_or("no query")?;
        check(
            q.backing == Backing::Contiguous
                && q.frame == Some(PhysAddr(pa.0 + 5 * PAGE_SIZE as u64)),
            || format!("query {q:?}"),
        )?;
        expect_err(
            vm.decommit(r.start, 0, PAGE_SIZE),
            VmError::Unsupported,
            "partial decommit",
        )
    })();
    let freed = vm.release(r.start).map_err(|e| format!("{e}"))?;
    outcome?;
    check(freed == 8, || format!("released {freed} frames"))
}

fn vm_owner_limits<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let vm = k.vm();
    let owner = Owner::Process(ProcessId(7));
    vm.set_limit(owner, 4 * 16);
    let spec = RegionSpec {
        owner,
        granule: 4,
        guard: 16 * PAGE_SIZE,
        ..RegionSpec::new(16 * 16 * PAGE_SIZE)
    };
    let m = Mapping::reserve(vm, &spec).map_err(|e| format!("{e}"))?;
    let base = m.range().start;
    check(base.is_multiple_of(16 * PAGE_SIZE), || {
        "granule misaligned".into()
    })?;
    expect_err(
        m.commit(0, 8 * 16 * PAGE_SIZE, Perms::READ_WRITE, Commit::Eager),
        VmError::LimitExceeded,
        "eager past the limit",
    )?;
    expect_err(
        m.commit(0, PAGE_SIZE, Perms::READ_WRITE, Commit::Demand),
        VmError::BadRange,
        "commit of part of a granule",
    )?;
    // Demand commitments are charged when made (INV-VM-7), so the limit
    // stops the commit, not a later fault.
    let g = 16 * PAGE_SIZE;
    m.commit(0, 4 * g, Perms::READ_WRITE, Commit::Demand)
        .map_err(|e| format!("commit: {e}"))?;
    expect_err(
        m.commit(4 * g, g, Perms::READ_WRITE, Commit::Demand),
        VmError::LimitExceeded,
        "demand commit past the limit",
    )?;
    check(vm.owner_frames(owner) == 64, || {
        format!("{} frames charged", vm.owner_frames(owner))
    })?;
    for i in 0..4 {
        write_va(base + i * g + 3 * PAGE_SIZE, i as u64 + 1);
    }
    check(read_va(base + PAGE_SIZE) == 0, || {
        "granule not zeroed".into()
    })?;
    check(read_va(base + 3 * g + 3 * PAGE_SIZE) == 4, || {
        "granule lost its write".into()
    })?;
    check(m.resident() == 4, || format!("{} granules", m.resident()))?;
    let freed = m.decommit(2 * g, 2 * g).map_err(|e| format!("{e}"))?;
    check(freed == 32 && vm.owner_frames(owner) == 32, || {
        format!("decommit freed {freed}, {} charged", vm.owner_frames(owner))
    })?;
    m.unmap().map_err(|e| format!("{e}"))?;
    check(vm.owner_frames(owner) == 0, || "charge not lifted".into())
}

fn vm_frame_accounting_returns<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    let vm = k.vm();
    let spec = RegionSpec::new(32 * PAGE_SIZE);
    // Find a free place, then use it at a fixed address twice: the first
    // round may take page-table frames (riscv keeps them for reuse), the
    // second must give back exactly what it took.
    let probe = vm.reserve(&spec).map_err(|e| format!("{e}"))?;
    vm.release(probe.start).map_err(|e| format!("{e}"))?;
    let spec = RegionSpec {
        placement: Placement::Fixed(probe.start - spec.guard),
        ..spec
    };
    let mut free0 = 0;
    for round in 0..2 {
        if round == 1 {
            free0 = k.frames().free_frames();
        }
        let m = Mapping::reserve(vm, &spec).map_err(|e| format!("round {round}: {e}"))?;
        check(m.range() == probe, || "fixed placement moved".into())?;
        m.commit(0, 16 * PAGE_SIZE, Perms::READ_WRITE, Commit::Demand)
            .map_err(|e| format!("{e}"))?;
        m.commit(
            16 * PAGE_SIZE,
            16 * PAGE_SIZE,
            Perms::READ_WRITE,
            Commit::Eager,
        )
        .map_err(|e| format!("{e}"))?;
        for p in (0..32).step_by(2) {
            write_va(probe.start + p * PAGE_SIZE, p as u64);
        }
        m.decommit(8 * PAGE_SIZE, 16 * PAGE_SIZE)
            .map_err(|e| format!("{e}"))?;
        drop(m);
    }
    let now = k.frames().free_frames();
    check(now == free0, || format!("free frames {free0} -> {now}"))
}

/// On riscv64, the callee-saved float registers fs0..fs11 survive a fiber
/// switch. The fiber sets them to a pattern and suspends through a C-ABI
/// call (which must preserve them), so only the switch can lose them; the
/// resumer sets them to another pattern before each resume; the fiber
/// reads its pattern back after each of 100 switches.
#[cfg(target_arch = "riscv64")]
#[expect(
    unsafe_code,
    reason = "sets and reads float registers around a switch in assembly"
)]
fn fiber_switch_keeps_float_registers<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    use crate::sched::fiber::Suspender;
    extern "C" fn hop(s: *const Suspender) {
        // SAFETY: `s` is the suspender of the fiber that calls this, live
        // while its body runs (below).
        unsafe { (*s).suspend() };
    }
    const ROUNDS: u64 = 100;
    let stack =
        KernelStack::new(k.vm(), 16 * PAGE_SIZE, Owner::Kernel).map_err(|e| format!("{e}"))?;
    let wrong = AtomicU64::new(0);
    let wrong_ref = &wrong;
    let mut fiber = Fiber::new(stack, move |s: &Suspender| {
        for round in 0..ROUNDS {
            let pattern = 0x4009_21fb_5444_2d18u64 ^ round;
            let mut got = [0u64; 12];
            // SAFETY: sets fs0..fs11 (declared clobbered), calls `hop`
            // under the C ABI (`clobber_abi`) with the suspender in a0, then
            // stores fs0..fs11 into `got` through s2, callee-saved and so
            // kept across the call.
            unsafe {
                core::arch::asm!(
                    "fmv.d.x fs0, {p}",
                    "fmv.d.x fs1, {p}",
                    "fmv.d.x fs2, {p}",
                    "fmv.d.x fs3, {p}",
                    "fmv.d.x fs4, {p}",
                    "fmv.d.x fs5, {p}",
                    "fmv.d.x fs6, {p}",
                    "fmv.d.x fs7, {p}",
                    "fmv.d.x fs8, {p}",
                    "fmv.d.x fs9, {p}",
                    "fmv.d.x fs10, {p}",
                    "fmv.d.x fs11, {p}",
                    "jalr {f}",
                    "fsd fs0, 0(s2)",
                    "fsd fs1, 8(s2)",
                    "fsd fs2, 16(s2)",
                    "fsd fs3, 24(s2)",
                    "fsd fs4, 32(s2)",
                    "fsd fs5, 40(s2)",
                    "fsd fs6, 48(s2)",
                    "fsd fs7, 56(s2)",
                    "fsd fs8, 64(s2)",
                    "fsd fs9, 72(s2)",
                    "fsd fs10, 80(s2)",
                    "fsd fs11, 88(s2)",
                    p = in(reg) pattern,
                    f = in(reg) hop as extern "C" fn(*const Suspender),
                    in("a0") core::ptr::from_ref(s),
                    inout("s2") got.as_mut_ptr() => _,
                    out("fs0") _,
                    out("fs1") _,
                    out("fs2") _,
                    out("fs3") _,
                    out("fs4") _,
                    out("fs5") _,
                    out("fs6") _,
                    out("fs7") _,
                    out("fs8") _,
                    out("fs9") _,
                    out("fs10") _,
                    out("fs11") _,
                    clobber_abi("C"),
                );
            }
            let bad = got.iter().filter(|&&g| g != pattern).count() as u64;
            wrong_ref.fetch_add(bad, Ordering::Relaxed);
        }
    });
    let mut resumes = 0u64;
    while fiber.resume() == Resume::Suspended {
        // SAFETY: only writes fs0..fs11, declared clobbered.
        unsafe {
            core::arch::asm!(
                "fmv.d.x fs0, {v}",
                "fmv.d.x fs1, {v}",
                "fmv.d.x fs2, {v}",
                "fmv.d.x fs3, {v}",
                "fmv.d.x fs4, {v}",
                "fmv.d.x fs5, {v}",
                "fmv.d.x fs6, {v}",
                "fmv.d.x fs7, {v}",
                "fmv.d.x fs8, {v}",
                "fmv.d.x fs9, {v}",
                "fmv.d.x fs10, {v}",
                "fmv.d.x fs11, {v}",
                v = in(reg) !resumes,
                out("fs0") _,
                out("fs1") _,
                out("fs2") _,
                out("fs3") _,
                out("fs4") _,
                out("fs5") _,
                out("fs6") _,
                out("fs7") _,
                out("fs8") _,
                out("fs9") _,
                out("fs10") _,
                out("fs11") _,
            );
        }
        resumes += 1;
        check(resumes <= ROUNDS, || "the fiber does not finish".into())?;
    }
    let wrong = wrong.load(Ordering::Relaxed);
    check(resumes == ROUNDS && wrong == 0, || {
        format!("{resumes} switches, {wrong} float registers changed across them")
    })
}

/// A fiber on a kernel stack: the stack is resident before the fiber runs
/// (INV-STACK-1), its frame spans several pages, it survives
/// 1,000 suspends with its locals intact (float values among them, kept
/// live across the switches on both sides), and its frames return to the
/// allocator when it is dropped.
fn fiber_switch_on_kernel_stack<P: Platform>(k: &Kernel<'_, P>) -> Outcome {
    const STACK_PAGES: usize = 16;
    const TOUCH_PAGES: usize = 6;
    const ROUNDS: u64 = 1000;
    let vm = k.vm();
    let stack =
        KernelStack::new(vm, STACK_PAGES * PAGE_SIZE, Owner::Kernel).map_err(|e| format!("{e}"))?;
    let b = stack.resident();
    let base = FiberStack::bounds(&stack).start;
    let unmapped = (0..STACK_PAGES)
        .map(|p| base + p * PAGE_SIZE)
        .filter(|&a| vm.query(a).and_then(|i| i.frame).is_none())
        .count();
    check(b > 0 && unmapped == 0, || {
        format!("{unmapped} stack pages without a frame before the first touch")
    })?;
    let step = |x: f64| core::hint::black_box(x) * 1.000_5 + 0.25;
    let rounds = AtomicU64::new(0);
    let bad = AtomicBool::new(false);
    let float = AtomicU64::new(0);
    let (rounds_ref, bad_ref, float_ref) = (&rounds, &bad, &float);
    let mut fiber = Fiber::new(stack, move |s| {
        let mut buf = [0u8; TOUCH_PAGES * PAGE_SIZE];
        for p in 0..TOUCH_PAGES {
            buf[p * PAGE_SIZE + 8] = p as u8 + 1;
        }
        let buf = core::hint::black_box(&mut buf);
        let mut x = 0.5f64;
        for i in 0..ROUNDS {
            s.suspend();
            x = step(x);
            for p in 0..TOUCH_PAGES {
                if buf[p * PAGE_SIZE + 8] != p as u8 + 1 {
                    bad_ref.store(true, Ordering::Relaxed);
                }
            }
            rounds_ref.store(i + 1, Ordering::Relaxed);
        }
        float_ref.store(x.to_bits(), Ordering::Relaxed);
    });
    let bounds = fiber.stack_bounds();
    check(bounds.len() == STACK_PAGES * PAGE_SIZE, || {
        format!("stack of {:#x} bytes", bounds.len())
    })?;
    for (addr, what) in [(bounds.start - 1, "below"), (bounds.end, "above")] {
        let o = vm.probe(addr, Access::Write);
        check(o == FaultOutcome::Guard, || {
            format!("{what} the stack: {o:?}")
        })?;
    }
    let mut resumes = 0u64;
    let mut y = -3.0f64;
    while fiber.resume() == Resume::Suspended {
        y = step(y);
        resumes += 1;
        check(resumes <= ROUNDS, || "the fiber does not finish".into())?;
    }
    check(fiber.resume() == Resume::Finished, || {
        "a finished fiber ran again".into()
    })?;
    let done = rounds.load(Ordering::Relaxed);
    check(resumes == ROUNDS && done == ROUNDS, || {
        format!("{resumes} suspends, {done} rounds")
    })?;
    check(!bad.load(Ordering::Relaxed), || {
        "the fiber's locals changed across a switch".into()
    })?;
    let (mut x, mut y_want) = (0.5f64, -3.0f64);
    for _ in 0..ROUNDS {
        x = step(x);
        y_want = step(y_want);
    }
    let got = f64::from_bits(float.load(Ordering::Relaxed));
    check(
        got.to_bits() == x.to_bits() && y.to_bits() == y_want.to_bits(),
        || format!("floats across switches: fiber {got} (want {x}), resumer {y} (want {y_want})"),
    )?;
    let resident = vm.resident(bounds.start).unwrap_or(0);
    check(resident == b, || {
        format!("{resident} granules resident after the run, {b} before")
    })?;
    let free_before = k.frames().free_frames();
    drop(fiber);
    let free_after = k.frames().free_frames();
    check(free_after == free_before + STACK_PAGES as u64, || {
        format!("{STACK_PAGES} stack pages, free frames {free_before} -> {free_after}")
    })?;
    check(vm.resident(bounds.start).is_none(), || {
        "the stack region outlived its fiber".into()
    })
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
