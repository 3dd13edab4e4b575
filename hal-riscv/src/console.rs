//! The console: a 16550 UART at the device-tree address (`0x1000_0000` on
//! `virt`), reached through the identity map. Output is polled; input is
//! read when a byte is ready, and a reader that found none may arm the
//! receive interrupt ([`arm_input`]), which the trap handler masks again
//! when it raises `Interrupt::Input` (the PLIC module's INV-PLIC-2).
//! Before the device tree is read (or when it names no UART) bytes go to
//! the SBI legacy console instead.
//!
//! Invariants:
//! - INV-CON-1: the UART location is written once, at boot, before any
//!   other hart runs; afterwards it is only read.
//! - INV-CON-2: [`write`] holds [`LOCK`] with interrupts masked on this
//!   hart, so an interrupt handler on the same hart can never spin on a
//!   lock its own hart holds. [`panic_write`] never takes it.
//!
//! No `\n` -> `\r\n` translation: QEMU's stdio backend keeps the host
//! terminal's output post-processing on, and captured logs stay identical
//! to the hosted build's.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::dt::Uart;
use crate::{csr, sbi};

/// Receive buffer / transmit holding register.
const RBR_THR: usize = 0;
/// Interrupt enable.
const IER: usize = 1;
/// FIFO control.
const FCR: usize = 2;
/// Line control.
const LCR: usize = 3;
/// Line status.
const LSR: usize = 5;
/// IER: interrupt when a received byte is waiting.
const IER_RX: u32 = 1 << 0;
/// LSR: a received byte is waiting.
const LSR_DR: u32 = 1 << 0;
/// LSR: the transmit holding register is empty.
const LSR_THRE: u32 = 1 << 5;

static BASE: AtomicUsize = AtomicUsize::new(0);
static SHIFT: AtomicU32 = AtomicU32::new(0);
static WIDTH: AtomicU32 = AtomicU32::new(1);

/// Serialises [`write`] calls (INV-CON-2).
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Use `uart` from now on and program it for polled 8N1 with FIFOs and no
/// interrupts (the baud rate is left as firmware set it; QEMU ignores it).
///
/// # Safety
/// `uart.base` must be the registers of a 16550 reachable at that address
/// (identity mapped or paging off), and no other hart may be running yet
/// (INV-CON-1).
pub unsafe fn init(uart: Uart) {
    SHIFT.store(uart.reg_shift, Ordering::Relaxed);
    WIDTH.store(uart.io_width, Ordering::Relaxed);
    BASE.store(uart.base as usize, Ordering::Release);
    write_reg(IER, 0);
    write_reg(FCR, 0x07); // enable and clear both FIFOs
    write_reg(LCR, 0x03); // 8 data bits, no parity, one stop bit
}

fn reg_addr(reg: usize) -> Option<usize> {
    let base = BASE.load(Ordering::Acquire);
    (base != 0).then(|| base + (reg << SHIFT.load(Ordering::Relaxed)))
}

fn read_reg(reg: usize) -> u32 {
    let Some(addr) = reg_addr(reg) else { return 0 };
    if WIDTH.load(Ordering::Relaxed) == 4 {
        // SAFETY: `init`'s contract: a 16550 register, identity mapped.
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    } else {
        // SAFETY: as above, byte wide.
        u32::from(unsafe { core::ptr::read_volatile(addr as *const u8) })
    }
}

fn write_reg(reg: usize, value: u32) {
    let Some(addr) = reg_addr(reg) else { return };
    if WIDTH.load(Ordering::Relaxed) == 4 {
        // SAFETY: `init`'s contract: a 16550 register, identity mapped.
        unsafe { core::ptr::write_volatile(addr as *mut u32, value) };
    } else {
        // SAFETY: as above, byte wide.
        unsafe { core::ptr::write_volatile(addr as *mut u8, value as u8) };
    }
}

fn put(byte: u8) {
    if BASE.load(Ordering::Acquire) == 0 {
        sbi::console_putchar(byte);
        return;
    }
    while read_reg(LSR) & LSR_THRE == 0 {
        core::hint::spin_loop();
    }
    write_reg(RBR_THR, u32::from(byte));
}

/// Write `bytes` without interleaving with other [`write`] calls.
pub fn write(bytes: &[u8]) {
    let was = csr::irq_save();
    {
        let _guard = LOCK.lock();
        bytes.iter().copied().for_each(put);
    }
    if was {
        csr::irq_enable();
    }
}

/// Write `bytes` without the lock (faults, panics); may interleave.
pub fn panic_write(bytes: &[u8]) {
    bytes.iter().copied().for_each(put);
}

/// Whether a received byte is waiting.
pub fn input_ready() -> bool {
    BASE.load(Ordering::Acquire) != 0 && read_reg(LSR) & LSR_DR != 0
}

/// Raise the receive interrupt when a byte is (or becomes) ready.
pub fn arm_input() {
    if BASE.load(Ordering::Acquire) != 0 {
        write_reg(IER, IER_RX);
    }
}

/// Mask the receive interrupt (the trap handler, after it fired).
pub fn mask_input() {
    if BASE.load(Ordering::Acquire) != 0 {
        write_reg(IER, 0);
    }
}

/// One received byte, if one is waiting.
pub fn try_read() -> Option<u8> {
    if BASE.load(Ordering::Acquire) == 0 || read_reg(LSR) & LSR_DR == 0 {
        return None;
    }
    Some(read_reg(RBR_THR) as u8)
}

/// A `core::fmt::Write` over [`panic_write`], for reports that must not
/// allocate or lock.
pub struct PanicWriter;

impl core::fmt::Write for PanicWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        panic_write(s.as_bytes());
        Ok(())
    }
}
