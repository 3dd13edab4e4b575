//! The Vessel kernel image for riscv64: the riscv HAL (`impl Platform for
//! Riscv`) plus the boot code that runs `kernel_core::boot::boot` on it
//! under QEMU `virt` and OpenSBI. Build and run it with `cargo qemu`.
//!
//! Module map (bare metal unless noted):
//! - `fixed`, `layout`, `pagetable`, `dt`, `cause`, `jit`: pure logic
//!   (fixed-capacity vectors, address arithmetic and the memory map,
//!   Sv39/Sv48 page-table encoding and walks, device-tree extraction,
//!   `scause` decoding, the heap share of gdb's JIT interface). These also
//!   compile on the host, where their unit tests run.
//! - `csr`, `sbi`: the CSR and SBI primitives.
//! - `console`, `power`, `heap`: the UART, shutdown, the HAL heap.
//! - `rtc`, `entropy`, `plic`: the goldfish wall clock, the virtio-rng,
//!   the interrupt controller (the UART's receive interrupt).
//! - `cpu`: per-hart blocks (`tp`), secondary start-up.
//! - `trap`: the trap vector and fault / interrupt delivery.
//! - `mmu`: the live page tables.
//! - `platform`: the `Riscv` value and its HAL trait implementations.
//! - `boot`: the entry point and boot sequence, the panic handler.
//!
//! On any other target this is a stub that says how to run the image.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(any(target_os = "none", test))]
mod cause;
#[cfg(any(target_os = "none", test))]
mod dt;
#[cfg(any(target_os = "none", test))]
mod fixed;
#[cfg(any(target_os = "none", test))]
mod jit;
#[cfg(any(target_os = "none", test))]
mod layout;
#[cfg(any(target_os = "none", test))]
mod pagetable;
#[cfg(any(target_os = "none", test))]
mod stop;

#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod cpu;
#[cfg(target_os = "none")]
mod csr;
#[cfg(target_os = "none")]
mod entropy;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod mmu;
#[cfg(target_os = "none")]
mod platform;
#[cfg(target_os = "none")]
mod plic;
#[cfg(target_os = "none")]
mod power;
#[cfg(target_os = "none")]
mod rtc;
#[cfg(target_os = "none")]
mod sbi;
#[cfg(target_os = "none")]
mod trap;

/// On the host there is no kernel to run: say where it runs and exit with
/// the usage status.
#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "hal-riscv is the riscv64 kernel image; run it in QEMU with `cargo qemu` \
         (e.g. `cargo qemu -smp 4`)"
    );
    std::process::ExitCode::from(kernel_core::exit::USAGE)
}
