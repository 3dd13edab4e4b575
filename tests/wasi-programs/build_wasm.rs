// Shared by the build scripts that embed the WASI programs
// (`tests/build.rs`, `hal-riscv/build.rs`), through `include!`: build every
// binary of this crate for `wasm32-wasip1` in release into `target_dir`
// and return where each program's module is, by name.
//
// The nested `cargo build` has its own target directory (off the outer
// build's lock), inherits the outer jobserver, and runs without the
// variables that would make it a clippy run or point it at the outer
// target.

/// The target the programs are built for.
const WASI_TARGET: &str = "wasm32-wasip1";

/// The programs: one binary each of `wasi-programs`.
const WASI_PROGRAMS: &[&str] = &[
    "hello", "echo", "exit7", "panic", "clocks", "random", "cat", "files",
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
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--release", "--bins", "--target", WASI_TARGET])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
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
    // Cargo reads the build script's stdout for directives: the nested
    // build's output goes to stderr.
    let status = cmd
        .stdout(std::io::stderr())
        .status()
        .unwrap_or_else(|e| panic!("running cargo for the WASI programs: {e}"));
    assert!(
        status.success(),
        "building the WASI programs for {WASI_TARGET} failed ({status}); \
         is the target installed? `rustup target add {WASI_TARGET}`"
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
