//! Copies standard input to standard output, then says how many bytes.

use std::io::{Read as _, Write as _};

fn main() {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .expect("read standard input");
    let mut out = std::io::stdout().lock();
    out.write_all(&input).expect("write standard output");
    writeln!(out, "{} bytes", input.len()).expect("write standard output");
}
