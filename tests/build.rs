//! Builds the Rust programs of `tests/wasi-programs` for `wasm32-wasip1`
//! in release and writes `$OUT_DIR/wasi_programs.rs`: a table of
//! `(name, module bytes)` the WASI tests include.
//!
//! As `benches/build.rs` does for its workloads: the nested `cargo build`
//! has its own target directory beside this profile's `build/` directory
//! (off the outer build's lock, built at most once per profile), inherits
//! the outer jobserver, and runs without the variables that would make it
//! a clippy run or point it at the outer target.

use std::env;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-wasip1";

/// The programs: one binary each of `wasi-programs`.
const PROGRAMS: &[&str] = &[
    "hello", "echo", "exit7", "panic", "clocks", "random", "cat", "files",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let crate_dir = manifest_dir.join("wasi-programs");
    for watched in ["src", "Cargo.toml"] {
        println!(
            "cargo::rerun-if-changed={}",
            crate_dir.join(watched).display()
        );
    }
    // OUT_DIR is <target>/<profile>/build/<pkg>/out: one nested target per
    // profile directory.
    let target_dir = out
        .ancestors()
        .nth(3)
        .filter(|p| p.file_name().is_some())
        .map_or_else(|| out.join("wasi-programs"), |p| p.join("wasi-programs"));

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--bins", "--target", TARGET])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
    ] {
        cmd.env_remove(var);
    }
    // Cargo reads this script's stdout for directives: the nested build's
    // output goes to stderr.
    let status = cmd
        .stdout(std::io::stderr())
        .status()
        .unwrap_or_else(|e| panic!("running cargo for the WASI programs: {e}"));
    assert!(
        status.success(),
        "building the WASI programs for {TARGET} failed ({status}); \
         is the target installed? `rustup target add {TARGET}`"
    );

    let mut table = String::from("/// `(program, wasm module)`, one per program.\n");
    table.push_str("pub const PROGRAMS: &[(&str, &[u8])] = &[\n");
    for name in PROGRAMS {
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{name}.wasm"));
        let dest = out.join(format!("{name}.wasm"));
        std::fs::copy(&built, &dest)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", built.display(), dest.display()));
        let _ = writeln!(
            table,
            "    ({name:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}.wasm\"))),"
        );
    }
    table.push_str("];\n");
    std::fs::write(out.join("wasi_programs.rs"), table).expect("write wasi_programs.rs");
}
