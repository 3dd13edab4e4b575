//! The console.

/// Whether console input is waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputState {
    /// At least one byte can be read now.
    Ready,
    /// Nothing now; more may come.
    Empty,
    /// No more will come (end of input).
    Closed,
}

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

    /// Whether input is waiting, taking none of it. An
    /// [`InputState::Empty`] answer arms the input interrupt when the
    /// platform has one ([`Console::input_interrupts`]).
    ///
    /// - hosted: `poll(2)` of standard input with a zero timeout (a hang-up
    ///   with nothing left to read is [`InputState::Closed`]).
    /// - riscv: the UART's data-ready bit; a UART never closes.
    fn input_state(&self) -> InputState;

    /// Whether, once [`Console::input_state`] or [`Console::read_input`]
    /// answered [`InputState::Empty`], the arrival of input (or its end)
    /// raises [`super::Interrupt::Input`] on some CPU, once. Without it a
    /// reader must look again from time to time.
    ///
    /// - hosted: yes with threads and the host's standard input (a watcher
    ///   thread waits in `poll(2)` while armed, then raises it with the IPI
    ///   signal on CPU 0); no in deterministic mode or when the console is
    ///   captured.
    /// - riscv: yes when the device tree names the UART's interrupt and a
    ///   PLIC: the UART's receive interrupt, routed by the PLIC to the
    ///   boot hart.
    fn input_interrupts(&self) -> bool {
        false
    }

    /// Take up to `buf.len()` bytes of waiting input without waiting: how
    /// many (at least one), or why none (an [`InputState::Empty`] answer
    /// arms the input interrupt, as [`Console::input_state`]'s does).
    ///
    /// - hosted: `read(2)` of standard input after a zero-timeout `poll`.
    /// - riscv: the UART's receive register while data is ready.
    ///
    /// # Errors
    /// [`InputState::Empty`] or [`InputState::Closed`] when nothing was
    /// read.
    fn read_input(&self, buf: &mut [u8]) -> Result<usize, InputState>;

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
