//! Prints its arguments after its name, one per line, then its environment
//! sorted, `KEY=VALUE` per line.

fn main() {
    for arg in std::env::args().skip(1) {
        println!("{arg}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (k, v) in vars {
        println!("{k}={v}");
    }
}
