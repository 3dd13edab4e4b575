//! Exits with status 7 after a line on standard error.

fn main() {
    eprintln!("leaving with 7");
    std::process::exit(7);
}
