//! Booting whole kernels on hal-hosted: several at once in one process, and
//! the fatal-fault path that stops the process with a report.

use hal_hosted::Config;
use kernel_core::exit;

fn config(cpus: usize) -> Config {
    Config {
        cpus,
        memory: 64 << 20,
        ..Config::default()
    }
}

#[test]
fn several_kernels_boot_in_parallel() {
    let handles: Vec<_> = (0..4)
        .map(|i| std::thread::spawn(move || hal_hosted::boot(&config(1 + i % 3), "test=self")))
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let code = h.join().expect("boot thread").expect("machine starts");
        assert_eq!(code, exit::SUCCESS, "kernel {i} failed its self-tests");
    }
}

#[test]
fn bad_command_line_is_a_usage_error() {
    let code = hal_hosted::boot(&config(1), "test=nope").expect("machine starts");
    assert_eq!(code, exit::USAGE);
}

#[test]
fn unresolvable_fault_stops_with_a_report() {
    if tests::child_scenario().as_deref() == Some("fault") {
        let code = hal_hosted::boot(&config(2), "test=fault");
        // Reaching this line means the fault did not stop the machine.
        eprintln!("boot returned {code:?} after a deliberate fault");
        std::process::exit(100);
    }
    tests::expect_fault_report(
        "unresolvable_fault_stops_with_a_report",
        &["PageFault", "pc=0x", "addr=0x", "sp=0x", "no mapping"],
    );
}

/// A fault taken while the faulting CPU holds the address-space write lock
/// (INV-VM-5 broken on purpose by `test=lockfault`) stops the machine with
/// a report naming the rule, where it used to spin on the lock for ever.
#[test]
fn a_fault_under_the_address_space_lock_is_reported_not_hung() {
    if tests::child_scenario().as_deref() == Some("fault") {
        let code = hal_hosted::boot(&config(2), "test=lockfault");
        eprintln!("boot returned {code:?} after a fault under the lock");
        std::process::exit(100);
    }
    tests::expect_fault_report(
        "a_fault_under_the_address_space_lock_is_reported_not_hung",
        &["PageFault", "addr=0x", "address-space write lock"],
    );
}

/// `test=overflow`: recursion on the kernel stack ends on the guard page
/// below it, in the fatal-fault report (on riscv too, in QEMU).
#[test]
fn a_kernel_stack_overflow_is_reported() {
    if tests::child_scenario().as_deref() == Some("fault") {
        let code = hal_hosted::boot(&config(2), "test=overflow");
        eprintln!("boot returned {code:?} after a kernel stack overflow");
        std::process::exit(100);
    }
    tests::expect_fault_report(
        "a_kernel_stack_overflow_is_reported",
        &["PageFault(Write)", "sp=0x", "no mapping"],
    );
}

/// `test=bigmem`: a wasm memory grown to 1 GiB, every 4 KiB page written
/// and read back, with guard-page bounds (the riscv image runs the same
/// check in QEMU under Sv48).
#[test]
fn a_one_gib_memory_is_touched_page_by_page() {
    let config = Config {
        cpus: 1,
        memory: 1280 << 20,
        ..Config::default()
    };
    let code = hal_hosted::boot(&config, "test=bigmem").expect("machine starts");
    assert_eq!(code, exit::SUCCESS);
}
