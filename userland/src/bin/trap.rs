//! `trap`: a program that traps, a demo program.
//!
//! Usage: `trap`. Prints `trap: about to trap`, then executes wasm's
//! `unreachable` instruction (natively: aborts).
//!
//! Exit status: none of its own; the shell reports a trapped process as
//! 134.

use std::io::Write;

fn main() {
    let mut out = userland::stdout();
    // The trap is coming regardless; a lost line changes nothing.
    let _ = writeln!(out, "trap: about to trap").and_then(|()| out.flush());
    drop(out);
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}
