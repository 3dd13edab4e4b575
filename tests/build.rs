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
    // OUT_DIR is <target>/<profile>/build/<pkg>/out.
    let target_dir = out
        .ancestors()
        .nth(3)
        .filter(|p| p.file_name().is_some())
        .map_or_else(|| out.join("wasi-programs"), |p| p.join("wasi-programs"));
    let built = build_wasi_programs(&manifest_dir.join("wasi-programs"), &target_dir);
    write_wasi_table(&out, &built);
}
