//! The host terminal under `sim shell`: the kernel's line discipline
//! (`kernel_core::proc` `tty`) echoes, edits lines and turns Ctrl-C into a
//! kill, as a terminal driver does, so the host terminal must pass every
//! key through untouched. [`Raw`] sets it so (no echo, no line editing,
//! no signals from keys, no CR-to-LF) for as long as it lives, keeping
//! output processing (LF shown as CR LF); dropping it puts the terminal
//! back as it was. When standard input is not a terminal nothing changes.

use rustix::termios::{self, InputModes, LocalModes, OptionalActions, Termios};

/// The terminal in raw mode while this lives.
pub struct Raw {
    saved: Option<Termios>,
}

impl Raw {
    /// Put standard input's terminal in raw mode, if it is a terminal.
    pub fn new() -> Self {
        let stdin = std::io::stdin();
        if !termios::isatty(&stdin) {
            return Self { saved: None };
        }
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return Self { saved: None };
        };
        let mut raw = saved.clone();
        raw.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG | LocalModes::IEXTEN);
        raw.input_modes
            .remove(InputModes::ICRNL | InputModes::IXON | InputModes::INLCR);
        match termios::tcsetattr(&stdin, OptionalActions::Now, &raw) {
            Ok(()) => Self { saved: Some(saved) },
            Err(_) => Self { saved: None },
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &saved);
        }
    }
}
