//! The console's line discipline: what a terminal driver does between the
//! keyboard and the programs that read standard input.
//!
//! When a scope turns it on ([`super::Procs::console_pump`], done by init),
//! one kernel task takes every byte of console input as it arrives and
//! edits a line: printable bytes are echoed and added, backspace (DEL or
//! BS) takes the last character back, Ctrl-U the whole line; Enter (CR or
//! LF) ends the line, which becomes readable with its `\n`; Ctrl-D ends
//! the line without one, or on an empty line is an end of input (a read
//! returns no bytes, once); Ctrl-C throws the line away and kills every
//! foreground process of the scope (spawned with the foreground flag of
//! `spawn_file`). Readers of standard input then read whole lines,
//! waiting while none is complete. Without it (tests, the built-in
//! workloads) standard input reads the console directly.
//!
//! Invariants:
//! - INV-TTY-1: bytes are read in the order typed, each once; a read
//!   never returns part of a line still being edited, and never crosses
//!   an end of input.
//! - INV-TTY-2: a line holds at most [`MAX_LINE`] bytes; past that, typed
//!   bytes are dropped (the terminal bell is echoed) until the line ends.
//! - INV-TTY-3: Ctrl-C takes effect when it arrives, whether or not
//!   anything reads the console.
//! - INV-TTY-4: the echo of typed bytes is written before any reader is
//!   woken for them, so a line's echo comes before anything that answers
//!   it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use super::KillReason;
use super::handles::KernelIrqs;
use crate::hal::{Console, InputState, Platform};
use crate::sched::{SchedHal, WaitQueue};

/// Most bytes of one line.
pub const MAX_LINE: usize = 4096;

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const CTRL_U: u8 = 0x15;
const DEL: u8 = 0x7f;

/// What the discipline makes of input: lines and ends of input, readable
/// in order, and the line being edited.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    /// Finished lines (`Some`) and ends of input (`None`), oldest first;
    /// the front line may be partly read.
    ready: VecDeque<Option<Vec<u8>>>,
    /// The line being edited.
    line: Vec<u8>,
    /// The console's input has ended for good.
    closed: bool,
}

/// What feeding bytes did besides queueing lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Fed {
    /// Bytes to echo to the console.
    pub(crate) echo: Vec<u8>,
    /// Ctrl-C was typed.
    pub(crate) interrupt: bool,
}

impl Lines {
    /// Take typed `bytes`.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Fed {
        let mut fed = Fed::default();
        for &b in bytes {
            match b {
                CTRL_C => {
                    self.line.clear();
                    fed.echo.extend_from_slice(b"^C\n");
                    fed.interrupt = true;
                }
                CTRL_D => {
                    if self.line.is_empty() {
                        self.ready.push_back(None);
                    } else {
                        self.ready.push_back(Some(core::mem::take(&mut self.line)));
                    }
                }
                b'\r' | b'\n' => {
                    let mut line = core::mem::take(&mut self.line);
                    line.push(b'\n');
                    self.ready.push_back(Some(line));
                    fed.echo.push(b'\n');
                }
                BACKSPACE | DEL => {
                    // A whole UTF-8 character: continuation bytes first.
                    while self.line.last().is_some_and(|&c| c & 0xc0 == 0x80) {
                        self.line.pop();
                    }
                    if self.line.pop().is_some() {
                        fed.echo.extend_from_slice(b"\x08 \x08");
                    }
                }
                CTRL_U => {
                    let chars = self.line.iter().filter(|&&c| c & 0xc0 != 0x80).count();
                    for _ in 0..chars {
                        fed.echo.extend_from_slice(b"\x08 \x08");
                    }
                    self.line.clear();
                }
                _ if self.line.len() >= MAX_LINE => fed.echo.push(0x07),
                b'\t' | 0x20..=0x7e | 0x80..=0xff => {
                    self.line.push(b);
                    fed.echo.push(b);
                }
                // Other control bytes are taken, shown as `^X`.
                _ => {
                    self.line.push(b);
                    fed.echo.extend_from_slice(&[b'^', b + 0x40]);
                }
            }
        }
        fed
    }

    /// Input has ended for good: the line being edited becomes readable,
    /// then reads return no bytes.
    pub(crate) fn close(&mut self) {
        if !self.line.is_empty() {
            self.ready.push_back(Some(core::mem::take(&mut self.line)));
        }
        self.closed = true;
    }

    /// Up to `max` bytes of the oldest line now: `Some` of them (none: an
    /// end of input), or `None` when no line is finished.
    pub(crate) fn read(&mut self, max: usize) -> Option<Vec<u8>> {
        let Some(front) = self.ready.front_mut() else {
            return self.closed.then(Vec::new);
        };
        let Some(line) = front else {
            self.ready.pop_front();
            return Some(Vec::new());
        };
        let n = max.min(line.len());
        let out: Vec<u8> = line.drain(..n).collect();
        if line.is_empty() {
            self.ready.pop_front();
        }
        Some(out)
    }

    /// Whether a read would not wait.
    pub(crate) fn ready(&self) -> bool {
        !self.ready.is_empty() || self.closed
    }
}

/// A scope's line discipline: its lines and the readers waiting for one.
pub(crate) struct Tty<'k> {
    on: AtomicBool,
    lines: spin::Mutex<Lines>,
    readable: WaitQueue<KernelIrqs<'k>>,
}

impl<'k> Tty<'k> {
    /// Off until [`Tty::turn_on`].
    pub(crate) fn new(irqs: KernelIrqs<'k>) -> Self {
        Self {
            on: AtomicBool::new(false),
            lines: spin::Mutex::new(Lines::default()),
            readable: WaitQueue::new(irqs),
        }
    }

    /// Whether standard input goes through it.
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    fn turn_on(&self) {
        self.on.store(true, Ordering::Release);
    }

    /// Up to `max` bytes of the next line now (see [`Lines::read`]).
    pub(crate) fn read_now(&self, max: usize) -> Option<Vec<u8>> {
        self.lines.lock().read(max)
    }

    /// Whether a read would not wait.
    pub(crate) fn ready(&self) -> bool {
        self.lines.lock().ready()
    }

    /// Wait until a read would not wait.
    pub(crate) async fn readable(&self) {
        self.readable.wait_until(|| self.ready()).await;
    }

    /// Take typed `bytes`; the caller echoes, then wakes the readers
    /// ([`Tty::wake`]), so a line's echo comes before any answer to it.
    fn feed(&self, bytes: &[u8]) -> Fed {
        self.lines.lock().feed(bytes)
    }

    /// Wake the readers waiting for a line.
    fn wake(&self) {
        self.readable.notify_all();
    }

    fn close(&self) {
        self.lines.lock().close();
        self.readable.notify_all();
    }
}

/// How long the pump waits before looking at the console again when the
/// platform raises no input interrupt.
const POLL: core::time::Duration = core::time::Duration::from_millis(1);

impl<'k, 'h, P: Platform + SchedHal> super::Inner<'k, 'h, P> {
    /// Turn the scope's line discipline on and feed it console input until
    /// the input ends (the returned future; the caller drops it to stop).
    pub(crate) async fn pump_console(&self) {
        self.tty.turn_on();
        let hal = self.kernel.hal();
        let mut buf = [0u8; 256];
        loop {
            match hal.read_input(&mut buf) {
                Ok(n) => {
                    let fed = self.tty.feed(&buf[..n]);
                    if !fed.echo.is_empty() {
                        Console::write(hal, &fed.echo);
                    }
                    self.tty.wake();
                    if fed.interrupt {
                        self.interrupt_foreground();
                    }
                }
                Err(InputState::Closed) => {
                    self.tty.close();
                    return;
                }
                Err(InputState::Empty | InputState::Ready) => {
                    if hal.input_interrupts() {
                        self.kernel.input_bell().wait().await;
                    } else {
                        self.exec.sleep(POLL).await;
                    }
                }
            }
        }
    }

    /// Ctrl-C: kill every foreground process still running (INV-TTY-3).
    fn interrupt_foreground(&self) {
        for p in self.all() {
            if p.is_foreground() && p.status() == super::ExitStatus::Running {
                p.kill(KillReason::Request);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_edited_then_read_whole_with_their_newline() {
        let mut l = Lines::default();
        let fed = l.feed(b"ecko\x7f\x7fho hi");
        assert_eq!(fed.echo, b"ecko\x08 \x08\x08 \x08ho hi");
        assert_eq!(l.read(64), None, "no line is finished");
        l.feed(b"\r");
        assert_eq!(l.read(3).as_deref(), Some(&b"ech"[..]));
        assert_eq!(l.read(64).as_deref(), Some(&b"o hi\n"[..]));
        assert_eq!(l.read(64), None);
    }

    #[test]
    fn ctrl_c_drops_the_line_and_ctrl_d_ends_input_once() {
        let mut l = Lines::default();
        let fed = l.feed(b"spin\x03");
        assert!(fed.interrupt);
        assert_eq!(fed.echo, b"spin^C\n");
        assert_eq!(l.read(64), None);
        l.feed(b"\x04ls\x04");
        assert_eq!(l.read(64).as_deref(), Some(&b""[..]), "end of input");
        assert_eq!(l.read(64).as_deref(), Some(&b"ls"[..]));
        assert_eq!(l.read(64), None, "the end of input was read once");
    }

    #[test]
    fn backspace_takes_a_whole_character_and_lines_are_bounded() {
        let mut l = Lines::default();
        l.feed("aé".as_bytes());
        l.feed(&[DEL, b'\n']);
        assert_eq!(l.read(64).as_deref(), Some(&b"a\n"[..]));
        let long = alloc::vec![b'x'; MAX_LINE + 10];
        let fed = l.feed(&long);
        assert_eq!(fed.echo.iter().filter(|&&b| b == 0x07).count(), 10);
        l.feed(b"\n");
        assert_eq!(l.read(usize::MAX).map(|v| v.len()), Some(MAX_LINE + 1));
    }

    #[test]
    fn closing_flushes_the_partial_line_then_reads_end() {
        let mut l = Lines::default();
        l.feed(b"last");
        l.close();
        assert_eq!(l.read(64).as_deref(), Some(&b"last"[..]));
        assert_eq!(l.read(64).as_deref(), Some(&b""[..]));
        assert_eq!(l.read(64).as_deref(), Some(&b""[..]));
    }
}
