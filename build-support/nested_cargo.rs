// Shared by the build scripts that build wasm modules with a nested
// `cargo build` (`benches/build.rs`, `tests/wasi-programs/build_wasm.rs`),
// through `include!`.
//
// The nested build gets its own target directory (off the outer build's
// lock), inherits the outer jobserver (`CARGO_MAKEFLAGS`), runs without
// the variables that would make it a clippy run or point it at the outer
// target, and writes its output to standard error (cargo reads a build
// script's standard output for directives).

/// Run `cargo build --release --target <target> --manifest-path
/// <crate_dir>/Cargo.toml --target-dir <target_dir> <extra...>` for
/// `what`; panics, naming the target to install, when it fails.
fn nested_cargo_build(
    crate_dir: &std::path::Path,
    target: &str,
    target_dir: &std::path::Path,
    extra: &[&str],
    what: &str,
) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--release", "--target", target])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .args(extra)
        // No DWARF in the modules: the runtimes would only skip it.
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
    let status = cmd
        .stdout(std::io::stderr())
        .status()
        .unwrap_or_else(|e| panic!("running cargo for {what}: {e}"));
    assert!(
        status.success(),
        "building {what} for {target} failed ({status}); \
         is the target installed? `rustup target add {target}`"
    );
}

/// The nested build's target directory `name`, beside the outer build's
/// profile directory: `OUT_DIR` is `<profile dir>/build/<pkg>/out`, so
/// one nested target per profile (and target triple) is shared by every
/// build script and built at most once. Inside `OUT_DIR` when its shape
/// is not that.
fn nested_target_dir(out: &std::path::Path, name: &str) -> std::path::PathBuf {
    out.ancestors()
        .nth(3)
        .filter(|p| p.file_name().is_some())
        .map_or_else(|| out.join(name), |p| p.join(name))
}
