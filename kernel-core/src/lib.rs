//! The Vessel kernel core: everything that is not platform code.
//!
//! `no_std` + `alloc`, written against the HAL traits in [`hal`]. The same
//! code runs hosted (as a Linux process, `hal-hosted`) and on riscv64 bare
//! metal (`hal-riscv`). Nothing here knows which; only `target_arch` may
//! select ISA-specific code.
//!
//! Module order (a module uses only those above it): [`hal`], [`mem`],
//! [`kernel`], [`sched`], [`wasm`], [`proc`], [`sys`]; [`boot`], [`trap`],
//! [`demo`] and [`selftest`] sit on top and wire them together. Unsafe code is denied crate-wide and allowed, with a reason,
//! only where named (`grep expect(unsafe` lists them all).

#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

#[expect(
    unsafe_code,
    reason = "the HAL boundary declares unsafe contracts (map, CPU-local blocks)"
)]
pub mod hal;

#[expect(
    unsafe_code,
    reason = "the wasm entry routine and the fiber switch are assembly; backtraces read stack words"
)]
pub mod arch;

pub mod bigmem;
pub mod cmdline;
pub mod demo;
pub mod diff;
pub mod escape;
pub mod exit;
pub mod faults;
pub mod fmtbuf;
#[expect(
    unsafe_code,
    reason = "gdb's JIT interface: a `no_mangle` descriptor and entry function, and a list of raw pointers gdb reads"
)]
pub mod gdb_jit;
pub mod log;
#[expect(
    unsafe_code,
    reason = "zeroing frames through the direct map and calling unsafe MMU methods"
)]
pub mod mem;

#[expect(
    unsafe_code,
    reason = "CPU-local blocks point at the kernel, secondaries receive it by address"
)]
pub mod boot;
pub mod fs;
pub mod init;
pub mod kernel;
#[expect(
    unsafe_code,
    reason = "a process's host calls reach its fiber's suspender by address; its system calls hold a view of its store's linear memory"
)]
pub mod proc;
pub mod random;
#[expect(
    unsafe_code,
    reason = "task wakers are RawWakers over the task's Arc; wakers reach the borrowed HAL by pointer; fibers switch stacks"
)]
pub mod sched;
pub mod selftest;
pub mod spec;
pub mod sys;
#[expect(
    unsafe_code,
    reason = "trap entries recover the kernel from the CPU-local block's pointer"
)]
pub mod trap;
pub mod wasi_check;
pub mod wasm;
