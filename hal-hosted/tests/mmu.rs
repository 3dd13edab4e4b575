//! The MMU and physical memory: map / protect / unmap round trips and the
//! errors of bad arguments.

// Public so that helpers this binary does not use are not dead code.
pub mod common;

use std::sync::atomic::Ordering;

use common::{NoTables, OnFault, TestKernel, phys_u64, small};
use hal_hosted::run_on_cpu;
use kernel_core::hal::{HalError, Mmu, PAGE_SIZE, Perms, PhysAddr, PhysMemory};

#[test]
fn memory_map_is_the_whole_memfd_and_direct_map_covers_it() {
    let hosted = small(1);
    let map = hosted.memory_map();
    assert_eq!(map.len(), 1);
    assert_eq!(map[0].start, PhysAddr(0));
    assert_eq!(map[0].len, 64 << 20);
    let last = PhysAddr(map[0].end() - 1);
    assert!(hosted.direct_map(last).is_some());
    assert_eq!(hosted.direct_map(PhysAddr(map[0].end())), None);
    // The direct map is one linear mapping.
    let base = hosted.direct_map(PhysAddr(0)).unwrap() as usize;
    assert_eq!(
        hosted.direct_map(PhysAddr(12345)).unwrap() as usize,
        base + 12345
    );
    // It is writable for the whole range, and sparse.
    // SAFETY: inside the direct map.
    unsafe { hosted.direct_map(last).unwrap().write_volatile(7) };
}

#[test]
fn window_is_aligned_and_sized() {
    let hosted = small(1);
    let window = hosted.kernel_window();
    assert_eq!(window.len, 4 << 30);
    assert_eq!(window.start % hal_hosted::WINDOW_ALIGN, 0);
}

#[test]
fn map_write_read_back_protect_unmap() {
    let hosted = small(1);
    let window = hosted.kernel_window();
    let va = window.start + 16 * PAGE_SIZE;
    let pa = PhysAddr::of_frame(3);
    // SAFETY: the test owns the frame and the page.
    let flush = unsafe { hosted.map(va, pa, PAGE_SIZE, Perms::READ_WRITE, &NoTables) }.unwrap();
    assert_eq!(flush.range().start, va);
    hosted.flush(flush);
    let through_window = va as *mut u64;
    // SAFETY: mapped read-write just above.
    unsafe { through_window.add(5).write_volatile(0x5eed_0001) };
    assert_eq!(phys_u64(&hosted, PhysAddr(pa.0 + 40)), 0x5eed_0001);
    // And the other way round.
    let through_direct = hosted.direct_map(pa).unwrap().cast::<u64>();
    // SAFETY: inside the direct map.
    unsafe { through_direct.add(6).write_volatile(0x5eed_0002) };
    // SAFETY: mapped.
    let back = unsafe { through_window.add(6).read_volatile() };
    assert_eq!(back, 0x5eed_0002);

    // SAFETY: the test owns the page.
    hosted.flush(unsafe { hosted.protect(va, PAGE_SIZE, Perms::READ) }.unwrap());
    // SAFETY: still mapped, readable.
    let back = unsafe { through_window.add(5).read_volatile() };
    assert_eq!(back, 0x5eed_0001);

    // SAFETY: the test owns the page and no longer uses it.
    hosted.flush(unsafe { hosted.unmap(va, PAGE_SIZE) }.unwrap());
    // The frame keeps its contents.
    assert_eq!(phys_u64(&hosted, PhysAddr(pa.0 + 40)), 0x5eed_0001);
}

#[test]
fn protect_read_only_faults_on_write_and_write_resumes_once_writable() {
    let hosted = small(1);
    let va = hosted.kernel_window().start;
    let pa = PhysAddr::of_frame(9);
    // SAFETY: the test owns the frame and the page.
    hosted.flush(unsafe { hosted.map(va, pa, PAGE_SIZE, Perms::READ, &NoTables) }.unwrap());
    run_on_cpu(&hosted, 0, || {
        let kernel = TestKernel::new(&hosted, 0, OnFault::MakeWritable);
        let local = kernel.local();
        kernel.with_local(&local, || {
            // SAFETY: mapped read-only: the store faults, the test kernel
            // makes the page writable and the store is retried.
            unsafe { (va as *mut u32).write_volatile(0xabcd) };
        });
        assert_eq!(kernel.faults.load(Ordering::SeqCst), 1);
        let frame = kernel.last_fault().unwrap();
        assert_eq!(frame.fault_addr, Some(va));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            frame.kind,
            kernel_core::hal::TrapKind::PageFault(kernel_core::hal::Access::Write)
        );
        assert!(!kernel.broken.load(Ordering::SeqCst));
    });
    assert_eq!(phys_u64(&hosted, pa) as u32, 0xabcd);
    // SAFETY: the test owns the page.
    hosted.flush(unsafe { hosted.unmap(va, PAGE_SIZE) }.unwrap());
}

#[test]
fn bad_arguments_are_errors_and_change_nothing() {
    let hosted = small(1);
    let window = hosted.kernel_window();
    let rw = Perms::READ_WRITE;
    let end_of_ram = hosted.memory_map()[0].end();
    // SAFETY: every call below is refused before touching memory, or maps
    // and unmaps nothing (empty ranges).
    unsafe {
        assert_eq!(
            hosted.map(window.start + 1, PhysAddr(0), PAGE_SIZE, rw, &NoTables),
            Err(HalError::Misaligned)
        );
        assert_eq!(
            hosted.map(window.start, PhysAddr(8), PAGE_SIZE, rw, &NoTables),
            Err(HalError::Misaligned)
        );
        assert_eq!(
            hosted.map(window.start, PhysAddr(0), 100, rw, &NoTables),
            Err(HalError::Misaligned)
        );
        assert_eq!(
            hosted.map(
                window.start - PAGE_SIZE,
                PhysAddr(0),
                PAGE_SIZE,
                rw,
                &NoTables
            ),
            Err(HalError::OutOfRange)
        );
        assert_eq!(
            hosted.map(
                window.end() - PAGE_SIZE,
                PhysAddr(0),
                2 * PAGE_SIZE,
                rw,
                &NoTables
            ),
            Err(HalError::OutOfRange)
        );
        assert_eq!(
            hosted.map(window.start, PhysAddr(end_of_ram), PAGE_SIZE, rw, &NoTables),
            Err(HalError::OutOfRange)
        );
        assert_eq!(
            hosted.map(
                window.start,
                PhysAddr(end_of_ram - PAGE_SIZE as u64),
                2 * PAGE_SIZE,
                rw,
                &NoTables
            ),
            Err(HalError::OutOfRange)
        );
        assert_eq!(
            hosted.map(
                usize::MAX - PAGE_SIZE + 1,
                PhysAddr(0),
                PAGE_SIZE,
                rw,
                &NoTables
            ),
            Err(HalError::OutOfRange)
        );
        let wx = Perms {
            read: true,
            write: true,
            execute: true,
        };
        assert_eq!(
            hosted.map(window.start, PhysAddr(0), PAGE_SIZE, wx, &NoTables),
            Err(HalError::Unsupported)
        );
        assert_eq!(
            hosted.unmap(window.start + 12, PAGE_SIZE),
            Err(HalError::Misaligned)
        );
        assert_eq!(
            hosted.unmap(window.end(), PAGE_SIZE),
            Err(HalError::OutOfRange)
        );
        assert_eq!(
            hosted.protect(window.start, 7, Perms::READ),
            Err(HalError::Misaligned)
        );
        assert_eq!(
            hosted.protect(0, PAGE_SIZE, Perms::READ),
            Err(HalError::OutOfRange)
        );
        // Empty ranges are fine and do nothing.
        hosted.flush(
            hosted
                .map(window.start, PhysAddr(0), 0, rw, &NoTables)
                .unwrap(),
        );
        hosted.flush(hosted.unmap(window.start, 0).unwrap());
    }
}

#[test]
fn code_published_read_execute_runs() {
    // The publish path the JIT uses: write through the direct map, map RX,
    // sync the icache, call.
    let hosted = small(1);
    let pa = PhysAddr::of_frame(1);
    let code: &[u8] = if cfg!(target_arch = "x86_64") {
        &[0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3] // mov eax, 42; ret
    } else {
        &[0x40, 0x05, 0x80, 0x52, 0xc0, 0x03, 0x5f, 0xd6] // mov w0, #42; ret
    };
    let direct = hosted.direct_map(pa).unwrap();
    // SAFETY: inside the direct map; the frame is the test's.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), direct, code.len()) };
    let va = hosted.kernel_window().start + 64 * PAGE_SIZE;
    // SAFETY: the test owns frame and page; RX obeys W^X.
    hosted.flush(unsafe { hosted.map(va, pa, PAGE_SIZE, Perms::READ_EXECUTE, &NoTables) }.unwrap());
    hosted.sync_icache(va, code.len());
    // SAFETY: the page holds a complete function of this signature.
    let f: extern "C" fn() -> u32 = unsafe { std::mem::transmute(va) };
    assert_eq!(f(), 42);
}
