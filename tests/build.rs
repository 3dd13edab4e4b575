//! Builds the Rust programs of `tests/wasi-programs` for `wasm32-wasip1`
//! in release and writes `$OUT_DIR/wasi_programs.rs`: a table of
//! `(name, module bytes)` the WASI tests include. The nested build's
//! target directory is beside this profile's `build/` directory, so it is
//! built at most once per profile.

use std::env;
use std::path::PathBuf;

include!("wasi-programs/build_wasm.rs");

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = nested_target_dir(&out, "wasi-programs");
    let built = build_wasi_programs(&manifest_dir.join("wasi-programs"), &target_dir);
    write_wasi_table(&out, &built);
}
