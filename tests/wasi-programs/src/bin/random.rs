//! Two draws of 32 random bytes differ and are not all zero.

fn main() {
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    wasi_programs::random_bytes(&mut a);
    wasi_programs::random_bytes(&mut b);
    let ok = a != b && a != [0; 32];
    println!("random: {}", if ok { "ok" } else { "FAILED" });
    std::process::exit(i32::from(!ok));
}
