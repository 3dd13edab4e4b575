//! `pingpong`: two processes bouncing a byte over two pipes, a demo
//! program.
//!
//! Usage: `pingpong [ROUNDS]` (default 1000). Makes two pipes, starts
//! `/bin/pingpong --pong` with the read end of the first as its standard
//! input and the write end of the second as its standard output, then
//! ROUNDS times writes a byte to the first and reads it back from the
//! second; finally closes its ends, waits for the child and prints
//! `pingpong: ROUNDS rounds`. `pingpong --pong` (the child) copies
//! standard input to standard output a byte at a time until end of file.
//!
//! Exit status: 0; 1 when a pipe, the child or a round fails, or when not
//! running on Vessel (only `--pong` runs elsewhere); 2 for a usage error.

use std::io::{self, Read, Write};

const NAME: &str = "pingpong";
const USAGE: &str = "usage: pingpong [ROUNDS]";
const DEFAULT_ROUNDS: u32 = 1000;

/// Echo `input` to `output` a byte at a time until end of file, flushing
/// each byte; how many were echoed.
fn pong(input: &mut dyn Read, output: &mut dyn Write) -> io::Result<u64> {
    let mut byte = [0u8; 1];
    let mut n = 0;
    loop {
        match input.read(&mut byte) {
            Ok(0) => return Ok(n),
            Ok(_) => {
                output.write_all(&byte)?;
                output.flush()?;
                n += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Play `rounds` rounds against an echo: write a byte to `to`, read it
/// back from `from`.
#[cfg_attr(
    not(target_os = "wasi"),
    allow(dead_code, reason = "only Vessel plays")
)]
fn ping(rounds: u32, to: &mut dyn Write, from: &mut dyn Read) -> io::Result<()> {
    let mut back = [0u8; 1];
    for i in 0..rounds {
        let sent = (i % 251) as u8;
        to.write_all(&[sent])?;
        to.flush()?;
        from.read_exact(&mut back)?;
        if back[0] != sent {
            return Err(io::Error::other(format!(
                "round {i}: sent {sent}, got {} back",
                back[0]
            )));
        }
    }
    Ok(())
}

#[cfg(target_os = "wasi")]
fn play(rounds: u32) -> Result<(), String> {
    use std::fs::File;
    use std::os::fd::FromRawFd;

    use userland::sys::{self, Command, Status};

    /// The descriptor `fd` as a file, which closes it when dropped.
    fn own(fd: u32) -> Result<File, String> {
        let fd = i32::try_from(fd).map_err(|_| format!("bad descriptor {fd}"))?;
        // SAFETY: `fd` was just returned by `sys::pipe`, is open, and
        // nothing else in this process owns or closes it.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    let (a_read, a_write) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (a_read, mut a_write) = (own(a_read)?, own(a_write)?);
    let (b_read, b_write) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (mut b_read, b_write) = (own(b_read)?, own(b_write)?);
    let cmd = Command {
        path: "/bin/pingpong".to_owned(),
        args: vec!["pingpong".to_owned(), "--pong".to_owned()],
        env: std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect(),
        stdio: [
            raw(&a_read).map_err(|e| e.to_string())?,
            raw(&b_write).map_err(|e| e.to_string())?,
            2,
        ],
        foreground: false,
    };
    let child = sys::spawn(&cmd).map_err(|e| format!("cannot start /bin/pingpong: {e}"))?;
    // The child holds its own copies: close ours, so that end of file and
    // a dead child are seen.
    drop(a_read);
    drop(b_write);
    let played = ping(rounds, &mut a_write, &mut b_read);
    drop(a_write);
    drop(b_read);
    if let Err(e) = played {
        let _ = child.kill();
        let _ = child.wait();
        return Err(userland::io_text(&e));
    }
    match child.wait() {
        Ok(Status::Exited(0)) => Ok(()),
        Ok(s) => Err(format!("the pong side ended with {s:?}")),
        Err(e) => Err(format!("waiting for the pong side: {e}")),
    }
}

/// The WASI descriptor number of `f`.
#[cfg(target_os = "wasi")]
fn raw(f: &std::fs::File) -> Result<u32, String> {
    use std::os::fd::AsRawFd;
    u32::try_from(f.as_raw_fd()).map_err(|_| "bad descriptor".to_owned())
}

#[cfg(not(target_os = "wasi"))]
fn play(_rounds: u32) -> Result<(), String> {
    Err("needs Vessel (not running on Vessel)".to_owned())
}

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if matches!(&args[..], [a] if a == "--pong") {
        if pong(&mut io::stdin().lock(), &mut io::stdout().lock()).is_err() {
            std::process::exit(userland::FAILURE);
        }
        return;
    }
    let rounds = userland::optional_number(NAME, USAGE, &args, "round count", DEFAULT_ROUNDS);
    if let Err(msg) = play(rounds) {
        userland::fail(NAME, msg, userland::FAILURE);
    }
    userland::print_line(format_args!("{NAME}: {rounds} rounds"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pong_echoes_everything() {
        let mut out = Vec::new();
        assert_eq!(pong(&mut &b"abc"[..], &mut out).unwrap(), 3);
        assert_eq!(out, b"abc");
    }

    #[test]
    fn ping_checks_the_echo() {
        // An echo that already holds the right answers.
        let answers: Vec<u8> = (0..5u8).collect();
        let mut sent = Vec::new();
        assert!(ping(5, &mut sent, &mut &answers[..]).is_ok());
        assert_eq!(sent, answers);
        assert!(ping(2, &mut Vec::new(), &mut &[9u8, 9][..]).is_err());
        assert!(ping(3, &mut Vec::new(), &mut &[0u8][..]).is_err());
    }
}
