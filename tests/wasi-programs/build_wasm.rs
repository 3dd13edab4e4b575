// Shared by the build scripts that embed the WASI programs
// (`tests/build.rs`, `hal-riscv/build.rs`), through `include!`: build every
// binary of this crate for `wasm32-wasip1` in release into `target_dir`
// (a nested cargo build, `build-support/nested_cargo.rs`) and return where
// each program's module is, by name.

include!("../../build-support/nested_cargo.rs");

/// The target the programs are built for.
const WASI_TARGET: &str = "wasm32-wasip1";

/// The programs: one binary each of `wasi-programs`.
const WASI_PROGRAMS: &[&str] = &[
    "hello", "echo", "exit7", "panic", "clocks", "random", "cat", "files", "spawner", "bigfile",
];

/// Build the programs of the crate at `crate_dir` into `target_dir`;
/// `(name, module path)` for each.
fn build_wasi_programs(
    crate_dir: &std::path::Path,
    target_dir: &std::path::Path,
) -> Vec<(&'static str, std::path::PathBuf)> {
    for watched in ["src", "Cargo.toml"] {
        println!("cargo::rerun-if-changed={}", crate_dir.join(watched).display());
    }
    nested_cargo_build(
        crate_dir,
        WASI_TARGET,
        target_dir,
        &["--bins"],
        "the WASI programs",
    );
    WASI_PROGRAMS
        .iter()
        .map(|name| {
            let path = target_dir
                .join(WASI_TARGET)
                .join("release")
                .join(format!("{name}.wasm"));
            (*name, path)
        })
        .collect()
}

/// Copy the built programs into `out` and write `out/wasi_programs.rs`: a
/// table `PROGRAMS` of `(name, module bytes)`.
fn write_wasi_table(out: &std::path::Path, built: &[(&str, std::path::PathBuf)]) {
    use std::fmt::Write as _;
    let mut table = String::from("/// `(program, wasm module)`, one per program.\n");
    table.push_str("pub const PROGRAMS: &[(&str, &[u8])] = &[\n");
    for (name, path) in built {
        let dest = out.join(format!("{name}.wasm"));
        std::fs::copy(path, &dest)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", path.display(), dest.display()));
        let _ = writeln!(
            table,
            "    ({name:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}.wasm\"))),"
        );
    }
    table.push_str("];\n");
    std::fs::write(out.join("wasi_programs.rs"), table).expect("write wasi_programs.rs");
}
