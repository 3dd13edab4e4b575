//! `echo`: print the arguments, joined by one space, and a newline.
//!
//! Usage: `echo [-n] [ARGS...]`; `-n` (as leading arguments) leaves out
//! the newline. Arguments are written as given, byte for byte.
//!
//! Exit status: 0, or 1 when the output cannot be written.

use std::ffi::OsString;
use std::io::Write;

/// The bytes `echo` writes for `args` (the program name left out).
fn render(args: &[OsString]) -> Vec<u8> {
    let mut newline = true;
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        if first != "-n" {
            break;
        }
        newline = false;
        rest = tail;
    }
    let mut out = Vec::new();
    for (i, a) in rest.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(a.as_encoded_bytes());
    }
    if newline {
        out.push(b'\n');
    }
    out
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut out = userland::stdout();
    if out
        .write_all(&render(&args))
        .and_then(|()| out.flush())
        .is_err()
    {
        userland::output_failed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(args: &[&str]) -> String {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        String::from_utf8_lossy(&render(&args)).into_owned()
    }

    #[test]
    fn joins_with_spaces_and_ends_with_a_newline() {
        assert_eq!(echo(&["a", "b c"]), "a b c\n");
        assert_eq!(echo(&[]), "\n");
    }

    #[test]
    fn dash_n_leaves_out_the_newline() {
        assert_eq!(echo(&["-n", "hi"]), "hi");
        assert_eq!(echo(&["-n", "-n", "x"]), "x");
        assert_eq!(echo(&["x", "-n"]), "x -n\n");
    }
}
