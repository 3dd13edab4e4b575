// Shared by the build scripts that embed Vessel's programs (`sim/build.rs`),
// through `include!`: build every binary of `userland` for `wasm32-wasip1`
// in release into a target directory of its own (a nested cargo build,
// `build-support/nested_cargo.rs`), and write `$OUT_DIR/userland.rs`: a
// table `PROGRAMS` of `(name, module bytes)`, one per binary, by name.

include!("../build-support/nested_cargo.rs");

/// Build the programs of the crate at `crate_dir` into `target_dir` and
/// write their table into `out`.
fn build_userland(crate_dir: &std::path::Path, target_dir: &std::path::Path, out: &std::path::Path) {
    use std::fmt::Write as _;
    for watched in ["src", "Cargo.toml"] {
        println!("cargo::rerun-if-changed={}", crate_dir.join(watched).display());
    }
    nested_cargo_build(crate_dir, "wasm32-wasip1", target_dir, &["--bins"], "Vessel's programs");
    // One binary per `src/bin/NAME.rs` or `src/bin/NAME/main.rs`.
    let mut names: Vec<String> = std::fs::read_dir(crate_dir.join("src/bin"))
        .expect("userland/src/bin")
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let path = e.path();
            if path.is_dir() {
                path.join("main.rs").exists().then_some(name)
            } else {
                name.strip_suffix(".rs").map(str::to_owned)
            }
        })
        .collect();
    names.sort();
    let mut table = String::from("/// `(program, wasm module)`, one per program, by name.\n");
    table.push_str("pub const PROGRAMS: &[(&str, &[u8])] = &[\n");
    for name in &names {
        let built = target_dir.join("wasm32-wasip1/release").join(format!("{name}.wasm"));
        let dest = out.join(format!("{name}.wasm"));
        std::fs::copy(&built, &dest)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", built.display(), dest.display()));
        let _ = writeln!(
            table,
            "    ({name:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}.wasm\"))),"
        );
    }
    table.push_str("];\n");
    std::fs::write(out.join("userland.rs"), table).expect("write userland.rs");
}
