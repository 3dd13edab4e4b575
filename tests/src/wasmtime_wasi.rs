//! The yardstick of the differential WASI tests (`tests/tests/wasi_diff.rs`):
//! run a WASI preview1 program on wasmtime 48 with wasmtime-wasi, with
//! given arguments, environment, standard input and one preopened host
//! directory, and get back its exit code and what it wrote; and list a
//! directory tree ([`tree`]) so that the final file systems of two runs can
//! be compared.
//!
//! The engine here takes no signal handlers (explicit bounds checks
//! instead), because a hosted Vessel machine in the same process owns the
//! fault signals; that changes no program's behaviour.

use std::collections::BTreeMap;
use std::path::Path;

use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder, p1};

/// Exit code of a program that trapped: 128 + SIGABRT, as `wasmtime run`
/// (and `sim run`) exit with.
pub const TRAPPED: i32 = 134;

/// Most bytes kept of each of standard output and standard error.
const OUTPUT_CAPACITY: usize = 64 << 20;

/// How a program ended and what it wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Its exit code: `proc_exit(n)` gives `n`, returning from `_start`
    /// gives 0, a trap (or any other error out of `_start`) [`TRAPPED`].
    pub code: i32,
    /// What it wrote to standard output.
    pub stdout: Vec<u8>,
    /// What it wrote to standard error.
    pub stderr: Vec<u8>,
}

/// The engine [`run_on_wasmtime`] compiles with: wasmtime's defaults less
/// its signal handlers (and the Spectre mitigations that need them).
///
/// # Panics
/// If wasmtime rejects this configuration (a build problem).
#[must_use]
pub fn engine() -> wasmtime::Engine {
    let mut c = wasmtime::Config::new();
    c.signals_based_traps(false);
    // SAFETY: both flags exist in this Cranelift; turning the Spectre
    // mitigations off is what `signals_based_traps(false)` requires (they
    // rely on faulting loads), and they do not change wasm semantics.
    unsafe {
        c.cranelift_flag_set("enable_heap_access_spectre_mitigation", "false");
        c.cranelift_flag_set("enable_table_access_spectre_mitigation", "false");
    }
    wasmtime::Engine::new(&c).expect("wasmtime engine configuration")
}

/// Run the WASI preview1 command `module` on wasmtime with arguments
/// `args` (all of them: the first is the program's name), environment
/// `env`, standard input `stdin`, and, when `dir` is `Some((host,
/// guest))`, host directory `host` preopened at guest path `guest` with
/// every permission. Standard output and error are kept in memory.
///
/// # Panics
/// When the module does not compile or link, or `host` cannot be opened:
/// a broken test, not a program's outcome.
#[must_use]
pub fn run_on_wasmtime(
    module: &[u8],
    args: &[&str],
    env: &[(&str, &str)],
    dir: Option<(&Path, &str)>,
    stdin: &[u8],
) -> Outcome {
    let engine = engine();
    let module = wasmtime::Module::new(&engine, module).expect("wasmtime compiles the program");
    let mut linker: wasmtime::Linker<p1::WasiP1Ctx> = wasmtime::Linker::new(&engine);
    p1::add_to_linker_sync(&mut linker, |cx| cx).expect("WASI preview1 links");

    let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
    let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
    let mut builder = WasiCtxBuilder::new();
    // Before the preopen: each directory takes this setting when opened.
    builder
        .allow_blocking_current_thread(true)
        .args(args)
        .envs(env)
        .stdin(MemoryInputPipe::new(stdin.to_vec()))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    if let Some((host, guest)) = dir {
        builder
            .preopened_dir(host, guest, FsPerms::ReadWrite)
            .unwrap_or_else(|e| panic!("preopen {}: {e}", host.display()));
    }
    let mut store = wasmtime::Store::new(&engine, builder.build_p1());
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("wasmtime instantiates the program");
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .expect("the program exports `_start`");
    let code = match start.call(&mut store, ()) {
        Ok(()) => 0,
        Err(e) => e.downcast_ref::<I32Exit>().map_or(TRAPPED, |exit| exit.0),
    };
    // The context holds the other ends of the pipes: let it go first.
    drop(store);
    Outcome {
        code,
        stdout: stdout.contents().to_vec(),
        stderr: stderr.contents().to_vec(),
    }
}

/// One entry of a directory tree listed by [`tree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A regular file, with its contents.
    File(Vec<u8>),
    /// A directory (its entries are listed beside it).
    Dir,
    /// A symbolic link, with its target.
    Symlink(String),
}

/// Every entry under `root`, recursively, by path relative to `root`
/// (components joined by `/`; `root` itself is not listed). Symbolic links
/// are listed, not followed.
///
/// # Panics
/// When part of the tree cannot be read, or an entry is neither a file, a
/// directory nor a symbolic link.
#[must_use]
pub fn tree(root: &Path) -> BTreeMap<String, Entry> {
    let mut entries = BTreeMap::new();
    walk(root, "", &mut entries);
    entries
}

/// Add the entries of directory `dir`, whose path relative to the root is
/// `prefix` (empty or ending in `/`), to `entries`.
fn walk(dir: &Path, prefix: &str, entries: &mut BTreeMap<String, Entry>) {
    let listing =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read directory {}: {e}", dir.display()));
    for item in listing {
        let item = item.unwrap_or_else(|e| panic!("read directory {}: {e}", dir.display()));
        let path = item.path();
        let name = format!("{prefix}{}", item.file_name().to_string_lossy());
        let kind = std::fs::symlink_metadata(&path)
            .unwrap_or_else(|e| panic!("metadata of {}: {e}", path.display()))
            .file_type();
        let entry = if kind.is_symlink() {
            let target = std::fs::read_link(&path)
                .unwrap_or_else(|e| panic!("read link {}: {e}", path.display()));
            Entry::Symlink(target.to_string_lossy().into_owned())
        } else if kind.is_dir() {
            walk(&path, &format!("{name}/"), entries);
            Entry::Dir
        } else if kind.is_file() {
            Entry::File(
                std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
            )
        } else {
            panic!("{}: neither a file, a directory nor a link", path.display());
        };
        entries.insert(name, entry);
    }
}
