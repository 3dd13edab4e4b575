//! Assembles the demo programs (`demo/*.wat`) into wasm binaries in
//! `$OUT_DIR`, which `kernel_core::demo` embeds. Each program gets the
//! shared `demo/prelude.wat` (console output, number formatting): its
//! imports first, as the text format requires imports before definitions,
//! then the program's imports, then the prelude's and the program's
//! definitions.

use std::env;
use std::fs;
use std::path::PathBuf;

/// Split a module body into its top-level `(import ...)` forms and the rest.
fn split(text: &str) -> (String, String) {
    let (mut imports, mut rest) = (String::new(), String::new());
    for line in text.lines() {
        let target = if line.starts_with("(import ") {
            &mut imports
        } else {
            &mut rest
        };
        target.push_str(line);
        target.push('\n');
    }
    (imports, rest)
}

fn main() {
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("demo");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let prelude = fs::read_to_string(dir.join("prelude.wat")).expect("read demo/prelude.wat");
    let (pre_imports, pre_rest) = split(&prelude);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .expect("list demo/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wat"))
        .filter(|p| p.file_stem().is_some_and(|s| s != "prelude"))
        .collect();
    names.sort();
    for path in names {
        println!("cargo:rerun-if-changed={}", path.display());
        let body = fs::read_to_string(&path).expect("read a demo program");
        let (imports, rest) = split(&body);
        let text = format!("(module\n{pre_imports}{imports}{pre_rest}{rest})\n");
        let wasm = wat::parse_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stem = path.file_stem().expect("a file name");
        fs::write(out.join(stem).with_extension("wasm"), wasm).expect("write to OUT_DIR");
    }
}
