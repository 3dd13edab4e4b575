//! Builds Vessel's programs (`userland/`) for `wasm32-wasip1` and writes
//! `$OUT_DIR/userland.rs`, the table `sim::system` packs into the system's
//! boot image. The nested build's target directory is beside this
//! profile's `build/` directory, so it is built at most once per profile.

use std::env;
use std::path::PathBuf;

include!("../userland/build_wasm.rs");

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = nested_target_dir(&out, "userland");
    build_userland(&manifest_dir.join("../userland"), &target_dir, &out);
}
