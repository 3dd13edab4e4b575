//! Exit statuses of the kernel, shared by both platforms so that tests and
//! scripts read the same numbers from `sim` and from QEMU.

/// Everything ran and every test passed.
pub const SUCCESS: u8 = 0;
/// The workload ran and reported failures (a self-test failed, the init
/// process exited non-zero).
pub const FAILED: u8 = 1;
/// The command line or configuration was not understood.
pub const USAGE: u8 = 2;
/// A fault the kernel could not resolve: a kernel bug, reported with pc,
/// address and kind before the machine stops.
pub const KERNEL_FAULT: u8 = 3;
/// The kernel panicked.
pub const PANIC: u8 = 4;
/// A time limit ran out (`sim run --timeout`, `sim wast --timeout`): the
/// running wasm was interrupted. Hosted only.
pub const TIMEOUT: u8 = 5;
/// Standard output could not be written (a full disk, a closed pipe):
/// what was to be printed is lost, so a run that otherwise succeeded does
/// not report success. Hosted only.
pub const OUTPUT: u8 = 6;
