//! Assembles the demo programs (`demo/*.wat`) into wasm binaries in
//! `$OUT_DIR`, which `kernel_core::demo` embeds. Each program gets the
//! shared `demo/prelude.wat` (console output, number formatting): its
//! imports first, as the text format requires imports before definitions,
//! then the program's imports, then the prelude's and the program's
//! definitions.
//!
//! The modules of `modules/*.wat` are self-contained (no prelude) and
//! are assembled as they are, for the kernel's checks that drive a store
//! directly.
//!
//! It also fingerprints what compiled code depends on besides the module
//! and the ISA (the translator and runtime sources, `src/wasm` and
//! `src/arch`, and the Cranelift version in `Cargo.lock`) as
//! `VESSEL_CODEGEN_ID`, which the persistent module format records so
//! that code from another build is never executed (`wasm::artifact`).

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

/// FNV-1a, 64 bits, folded over `bytes` from `h`.
fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The codegen fingerprint: every `.rs` file under the given source
/// directories (path and contents, in sorted order) and the Cranelift
/// version the lock file pins.
fn codegen_id(root: &std::path::Path, dirs: &[&str]) -> String {
    let mut files = Vec::new();
    for d in dirs {
        let dir = root.join("src").join(d);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).expect("list a source directory") {
                let p = e.expect("a directory entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    let mut h = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(root).unwrap_or(f);
        h = fnv(h, rel.to_string_lossy().as_bytes());
        h = fnv(h, &fs::read(f).expect("read a source file"));
    }
    let lock = root.join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let cranelift = fs::read_to_string(&lock)
        .ok()
        .and_then(|text| {
            let at = text.find("name = \"cranelift-codegen\"\nversion = \"")?;
            let rest = &text[at + "name = \"cranelift-codegen\"\nversion = \"".len()..];
            Some(rest[..rest.find('"')?].to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    format!("{h:016x}-cranelift-{cranelift}")
}

fn main() {
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("demo");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!(
        "cargo:rustc-env=VESSEL_CODEGEN_ID={}",
        codegen_id(&root, &["wasm", "arch"])
    );
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
    let modules = root.join("modules");
    println!("cargo:rerun-if-changed={}", modules.display());
    let mut names: Vec<_> = fs::read_dir(&modules)
        .expect("list modules/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wat"))
        .collect();
    names.sort();
    for path in names {
        println!("cargo:rerun-if-changed={}", path.display());
        let wasm = wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stem = path.file_stem().expect("a file name");
        fs::write(out.join(stem).with_extension("wasm"), wasm).expect("write to OUT_DIR");
    }
}
