//! Power off and entropy.

/// Machine life cycle and randomness.
pub trait Power {
    /// Stop the machine with exit status `code`.
    ///
    /// - hosted: ends the process with `code`.
    /// - riscv: writes `(code << 16) | 0x3333` (or `0x5555` for 0) to the
    ///   `virt` test finisher, so QEMU exits with `code`; SBI system reset if
    ///   there is none.
    fn shutdown(&self, code: u8) -> !;

    /// A seed for the kernel's random number generators (ASLR, hashing).
    ///
    /// - hosted: `getrandom(2)`.
    /// - riscv: eight bytes of the virtio-rng when QEMU has one
    ///   (`-device virtio-rng-device`, driven by the `virtio-drivers`
    ///   crate), mixed with `/chosen/rng-seed` of the device tree when
    ///   present and the `time` CSR.
    fn entropy_seed(&self) -> u64;
}
