//! Panics (a trap once the panic handler aborts).

fn main() {
    let v: Vec<u32> = Vec::new();
    let i = std::env::args().count() + 3;
    println!("about to index {i}");
    println!("{}", v[i]);
}
