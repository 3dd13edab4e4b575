//! Faults through signals: demand paging (Resume), Redirect rewriting
//! registers, Fatal exiting, and faults on threads with no kernel.

// Public so that helpers this binary does not use are not dead code.
pub mod common;

use std::process::Command;
use std::sync::atomic::Ordering;

use common::{OnFault, REDIRECT_ARGS, TestKernel, phys_u64, small};
use hal_hosted::run_on_cpu;
use kernel_core::hal::{Access, Mmu, PAGE_SIZE, PhysAddr, PhysMemory, TrapKind};

/// Environment variable telling a re-executed test binary which child role
/// to play.
const CHILD: &str = "HAL_HOSTED_FAULT_CHILD";

#[test]
fn demand_fault_maps_a_frame_and_resumes() {
    let hosted = small(1);
    let va = hosted.kernel_window().start + 5 * PAGE_SIZE;
    let mut kernel = TestKernel::new(&hosted, 0, OnFault::MapFrame);
    kernel.frame = PhysAddr::of_frame(42);
    let kernel = kernel;
    run_on_cpu(&hosted, 0, || {
        let local = kernel.local();
        kernel.with_local(&local, || {
            // SAFETY: unmapped: the store faults, the test kernel maps a frame
            // there, and the store is retried.
            unsafe { (va as *mut u64).add(3).write_volatile(0xfeed_f00d) };
            // SAFETY: mapped now.
            let back = unsafe { (va as *const u64).add(3).read_volatile() };
            assert_eq!(back, 0xfeed_f00d);
        });
    });
    assert_eq!(kernel.faults.load(Ordering::SeqCst), 1);
    assert!(
        !kernel.broken.load(Ordering::SeqCst),
        "fault delivered with interrupts on"
    );
    let frame = kernel.last_fault().unwrap();
    assert_eq!(frame.fault_addr, Some(va + 24));
    let expected = if cfg!(target_arch = "x86_64") {
        Access::Write
    } else {
        Access::Unknown
    };
    assert_eq!(frame.kind, TrapKind::PageFault(expected));
    assert_ne!(frame.pc, 0);
    assert_ne!(frame.sp, 0);
    // The value is in the frame.
    assert_eq!(
        phys_u64(&hosted, PhysAddr(kernel.frame.0 + 24)),
        0xfeed_f00d
    );
}

#[test]
fn read_fault_reports_a_read() {
    let hosted = small(1);
    let va = hosted.kernel_window().start + 7 * PAGE_SIZE;
    let mut kernel = TestKernel::new(&hosted, 0, OnFault::MapFrame);
    kernel.frame = PhysAddr::of_frame(43);
    let direct = hosted.direct_map(kernel.frame).unwrap().cast::<u32>();
    // SAFETY: inside the direct map.
    unsafe { direct.write_volatile(77) };
    let kernel = kernel;
    let value = run_on_cpu(&hosted, 0, || {
        let local = kernel.local();
        // SAFETY: faults once, then reads the frame.
        kernel.with_local(&local, || unsafe { (va as *const u32).read_volatile() })
    });
    assert_eq!(value, 77);
    let expected = if cfg!(target_arch = "x86_64") {
        Access::Read
    } else {
        Access::Unknown
    };
    assert_eq!(
        kernel.last_fault().unwrap().kind,
        TrapKind::PageFault(expected)
    );
}

/// Store 1 to `bad` (which faults) with the argument registers holding 0;
/// the address of the instruction after the store goes to `resume` first.
/// Returns the argument registers as they are after the store.
fn faulting_store(bad: *mut u64, resume: *mut usize) -> [usize; 2] {
    let mut a: usize = 0;
    let mut b: usize = 0;
    // SAFETY: the store faults and the test kernel redirects to label 2
    // with the same sp and fp, so the asm block completes normally with only
    // the declared registers changed.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!(
            "lea {tmp}, [rip + 2f]",
            "mov qword ptr [{resume}], {tmp}",
            "mov qword ptr [{bad}], 1",
            "2:",
            tmp = out(reg) _,
            resume = in(reg) resume,
            bad = in(reg) bad,
            inout("rdi") a,
            inout("rsi") b,
        );
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!(
            "adr {tmp}, 2f",
            "str {tmp}, [{resume}]",
            "mov {tmp}, #1",
            "str {tmp}, [{bad}]",
            "2:",
            tmp = out(reg) _,
            resume = in(reg) resume,
            bad = in(reg) bad,
            inout("x0") a,
            inout("x1") b,
        );
    }
    [a, b]
}

#[test]
fn redirect_rewrites_pc_and_argument_registers() {
    let hosted = small(1);
    let bad = hosted.kernel_window().start + 9 * PAGE_SIZE;
    let kernel = TestKernel::new(&hosted, 0, OnFault::Redirect);
    let args = run_on_cpu(&hosted, 0, || {
        let local = kernel.local();
        kernel.with_local(&local, || {
            faulting_store(bad as *mut u64, kernel.resume.as_ptr())
        })
    });
    assert_eq!(args, REDIRECT_ARGS);
    assert_eq!(kernel.faults.load(Ordering::SeqCst), 1);
    let frame = kernel.last_fault().unwrap();
    assert_eq!(frame.fault_addr, Some(bad));
    // The faulting store is just before the resume point.
    let resume = kernel.resume.load(Ordering::SeqCst);
    assert!(
        frame.pc < resume && resume - frame.pc <= 8,
        "pc {:#x} resume {resume:#x}",
        frame.pc
    );
    assert!(!kernel.broken.load(Ordering::SeqCst));
}

#[test]
fn breakpoint_and_illegal_instruction_are_delivered() {
    let hosted = small(1);
    let kernel = TestKernel::new(&hosted, 0, OnFault::Redirect);
    run_on_cpu(&hosted, 0, || {
        let local = kernel.local();
        kernel.with_local(&local, || {
            let mut a: usize = 0;
            let mut b: usize = 0;
            // SAFETY: the trap is redirected to label 2 with sp and fp unchanged.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                core::arch::asm!(
                    "lea {tmp}, [rip + 2f]",
                    "mov qword ptr [{resume}], {tmp}",
                    "ud2",
                    "2:",
                    tmp = out(reg) _,
                    resume = in(reg) kernel.resume.as_ptr(),
                    inout("rdi") a,
                    inout("rsi") b,
                );
            }
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            unsafe {
                core::arch::asm!(
                    "adr {tmp}, 2f",
                    "str {tmp}, [{resume}]",
                    "udf #0",
                    "2:",
                    tmp = out(reg) _,
                    resume = in(reg) kernel.resume.as_ptr(),
                    inout("x0") a,
                    inout("x1") b,
                );
            }
            assert_eq!([a, b], REDIRECT_ARGS);
            let frame = kernel.last_fault().unwrap();
            assert_eq!(frame.kind, TrapKind::IllegalInstruction);
            assert_eq!(frame.fault_addr, None);

            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                core::arch::asm!(
                    "lea {tmp}, [rip + 2f]",
                    "mov qword ptr [{resume}], {tmp}",
                    "int3",
                    "2:",
                    tmp = out(reg) _,
                    resume = in(reg) kernel.resume.as_ptr(),
                    out("rdi") _,
                    out("rsi") _,
                );
            }
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            unsafe {
                core::arch::asm!(
                    "adr {tmp}, 2f",
                    "str {tmp}, [{resume}]",
                    "brk #0",
                    "2:",
                    tmp = out(reg) _,
                    resume = in(reg) kernel.resume.as_ptr(),
                    out("x0") _,
                    out("x1") _,
                );
            }
            assert_eq!(kernel.last_fault().unwrap().kind, TrapKind::Breakpoint);
        });
    });
    assert_eq!(kernel.faults.load(Ordering::SeqCst), 2);
}

/// In a child that is about to crash: no core file.
fn no_core_dump() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit for this process.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
}

/// Re-run this test binary as a child playing `role`; returns its status
/// and standard error.
fn child(test: &str, role: &str) -> (std::process::ExitStatus, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, role)
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fatal_answer_exits_with_the_kernels_status() {
    if std::env::var(CHILD).as_deref() == Ok("fatal") {
        no_core_dump();
        let hosted = small(1);
        let bad = hosted.kernel_window().start;
        let kernel = TestKernel::new(&hosted, 0, OnFault::Fatal(3));
        run_on_cpu(&hosted, 0, || {
            let local = kernel.local();
            // SAFETY: faults; the answer ends the process.
            kernel.with_local(&local, || unsafe { (bad as *mut u8).write_volatile(1) });
        });
        unreachable!("Fatal returned");
    }
    let (status, stderr) = child("fatal_answer_exits_with_the_kernels_status", "fatal");
    assert_eq!(status.code(), Some(3), "stderr: {stderr}");
}

#[test]
fn fault_without_a_kernel_is_reported_and_kills() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var(CHILD).as_deref() == Ok("unhandled") {
        no_core_dump();
        let hosted = small(1);
        let bad = (hosted.kernel_window().start + 0x3000) as *mut u8;
        // A plain test thread: no CPU-local block.
        // SAFETY: faults; the default action ends the process.
        unsafe { bad.write_volatile(1) };
        unreachable!("survived an unhandled fault");
    }
    let (status, stderr) = child("fault_without_a_kernel_is_reported_and_kills", "unhandled");
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "stderr: {stderr}");
    assert!(
        stderr.contains("hal-hosted: unhandled SIGSEGV at pc=0x"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("addr=0x"), "stderr: {stderr}");
}

#[test]
fn breakpoint_without_a_kernel_kills() {
    use std::os::unix::process::ExitStatusExt;
    if std::env::var(CHILD).as_deref() == Ok("trap") {
        no_core_dump();
        let _hosted = small(1);
        // SAFETY: traps; the default action ends the process.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            core::arch::asm!("int3")
        };
        // SAFETY: as above.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            core::arch::asm!("brk #0")
        };
        unreachable!("survived an unhandled breakpoint");
    }
    let (status, stderr) = child("breakpoint_without_a_kernel_kills", "trap");
    assert_eq!(status.signal(), Some(libc::SIGTRAP), "stderr: {stderr}");
    assert!(
        stderr.contains("hal-hosted: unhandled SIGTRAP"),
        "stderr: {stderr}"
    );
}
