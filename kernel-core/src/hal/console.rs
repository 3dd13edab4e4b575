//! The console.

/// Text in and out.
pub trait Console {
    /// Write `bytes`. Concurrent writers do not interleave within one call.
    ///
    /// - hosted: `write(2)` to standard output under a lock.
    /// - riscv: the 16550 UART under a lock.
    fn write(&self, bytes: &[u8]);

    /// One byte of input if one is waiting.
    ///
    /// - hosted: non-blocking read of standard input.
    /// - riscv: the UART's receive register when its data-ready bit is set.
    fn try_read(&self) -> Option<u8>;

    /// Write from a context that may have interrupted a writer (a fault or a
    /// panic): takes no lock and never blocks on one. Output may interleave.
    ///
    /// - hosted: `write(2)` to standard error.
    /// - riscv: the UART, polled, without the lock.
    fn panic_write(&self, bytes: &[u8]);

    /// Write an error message meant for whoever started the machine (a
    /// command line the kernel does not understand), apart from the
    /// workload's output where the platform can.
    ///
    /// - hosted: `write(2)` to standard error.
    /// - riscv: the UART, as [`Console::write`] (the default).
    fn write_error(&self, bytes: &[u8]) {
        self.write(bytes);
    }
}
