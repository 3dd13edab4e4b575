//! Reads the module at the path given as its first argument and starts it
//! as a child through Vessel's `spawn_program`, with the remaining
//! arguments as the child's (the first its name) and its own environment;
//! waits for it and exits with the child's code. Vessel only: natively it
//! says so and exits 2.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        println!("usage: spawner MODULE NAME [ARGS...]");
        std::process::exit(2);
    };
    let module = match std::fs::read(path) {
        Ok(m) => m,
        Err(e) => {
            println!("cannot read {path}: {e}");
            std::process::exit(3);
        }
    };
    let mut argv = Vec::new();
    for a in &args[2..] {
        argv.extend_from_slice(a.as_bytes());
        argv.push(0);
    }
    let code = run(&module, &argv);
    println!("child exited {code}");
    std::process::exit(code);
}

#[cfg(target_os = "wasi")]
fn run(module: &[u8], argv: &[u8]) -> i32 {
    #[link(wasm_import_module = "vessel")]
    unsafe extern "C" {
        fn spawn_program(
            ptr: *const u8,
            len: usize,
            handles: *const u32,
            n: usize,
            argv: *const u8,
            argv_len: usize,
            flags: i32,
        ) -> i32;
        fn wait(h: i32) -> i32;
    }
    /// `spawn_program` flag: hand down the environment.
    const INHERIT_ENV: i32 = 1;
    // SAFETY: each pointer and length names a live buffer of this program;
    // the kernel copies them before the call returns.
    let h = unsafe {
        spawn_program(
            module.as_ptr(),
            module.len(),
            core::ptr::null(),
            0,
            argv.as_ptr(),
            argv.len(),
            INHERIT_ENV,
        )
    };
    if h < 0 {
        println!("spawn_program failed: {h}");
        return 100;
    }
    // SAFETY: a plain call on a handle number.
    unsafe { wait(h) }
}

#[cfg(not(target_os = "wasi"))]
fn run(_module: &[u8], _argv: &[u8]) -> i32 {
    println!("spawner runs on Vessel only");
    2
}
