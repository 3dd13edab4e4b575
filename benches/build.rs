//! Builds every workload of `benches/workloads` for `wasm32-unknown-unknown`
//! in release, one module per workload (one cargo feature each), and writes
//! `$OUT_DIR/workloads.rs`: a table of `(name, module bytes)` the benches
//! include.
//!
//! The nested `cargo build` uses its own target directory (beside this
//! profile's `build/` directory, so `cargo clippy`, `cargo test` and
//! `cargo bench` each build the modules at most once), which keeps it off
//! the outer build's directory lock. It inherits the outer jobserver
//! (`CARGO_MAKEFLAGS`), so it stays within `-j`; the variables that would
//! turn it into a clippy run or point it at the outer target are cleared.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

include!("../build-support/nested_cargo.rs");

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The workloads, by cargo feature of the `workloads` crate.
const WORKLOADS: &[&str] = &["sha2", "miniz", "json", "regex", "sort", "matmul"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let crate_dir = manifest_dir.join("workloads");
    println!(
        "cargo::rerun-if-changed={}",
        crate_dir.join("src").display()
    );
    println!(
        "cargo::rerun-if-changed={}",
        crate_dir.join("Cargo.toml").display()
    );
    println!(
        "cargo::rerun-if-changed={}",
        manifest_dir.join("../Cargo.lock").display()
    );

    let target_dir = nested_target_dir(&out, "wasm-workloads");

    let mut table = String::from("/// `(workload, wasm module)`, one module per workload.\n");
    table.push_str("pub const MODULES: &[(&str, &[u8])] = &[\n");
    for name in WORKLOADS {
        let wasm = build(&crate_dir, &target_dir, name);
        let dest = out.join(format!("{name}.wasm"));
        std::fs::copy(&wasm, &dest)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", wasm.display(), dest.display()));
        let _ = writeln!(
            table,
            "    ({name:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}.wasm\"))),"
        );
    }
    table.push_str("];\n");
    std::fs::write(out.join("workloads.rs"), table).expect("write workloads.rs");
}

/// Build the `workloads` cdylib with only `feature` and return its module.
fn build(crate_dir: &Path, target_dir: &Path, feature: &str) -> PathBuf {
    nested_cargo_build(
        crate_dir,
        WASM_TARGET,
        target_dir,
        &["--lib", "--no-default-features", "--features", feature],
        &format!("the {feature} workload"),
    );
    target_dir
        .join(WASM_TARGET)
        .join("release")
        .join("workloads.wasm")
}
