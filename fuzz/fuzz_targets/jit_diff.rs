//! Differential fuzzing of Vessel's JIT against wasmtime: libFuzzer's bytes
//! become a wasm-smith module and call arguments, and `tests::diff::check`
//! runs every export on the hosted kernel and on wasmtime. Any divergence
//! (results, trap kinds, globals, memory hashes) panics with a report,
//! which libFuzzer records as a crash artifact. The first input byte picks
//! how Vessel's memories are checked (guard pages or explicit bounds).
//!
//! The kernel runs on its own thread for the whole process
//! (`tests::kernel_thread`); its signal handlers replace libFuzzer's fault
//! handlers when it boots, so demand paging and wasm traps still reach it.
//! A fault the kernel cannot resolve ends the process with its one-line
//! report (exit status 3) before libFuzzer can save the input: set
//! `VESSEL_FUZZ_LAST_INPUT=FILE` to have each input written there first.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use tests::diff::{self, Memories};
use tests::kernel_thread::KernelThread;

static KERNEL: OnceLock<KernelThread> = OnceLock::new();
static ENGINE: OnceLock<wasmtime::Engine> = OnceLock::new();

fn kernel() -> &'static KernelThread {
    KERNEL.get_or_init(|| {
        KernelThread::start(hal_hosted::Config {
            cpus: 1,
            memory: 256 << 20,
            window: 1 << 40,
            ..hal_hosted::Config::default()
        })
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some(path) = std::env::var_os("VESSEL_FUZZ_LAST_INPUT") {
        let _ = std::fs::write(path, data);
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let memories = if mode & 1 == 0 {
        Memories::GuardPages
    } else {
        Memories::Bounded
    };
    let rest = rest.to_vec();
    let outcome = kernel().run(move |k| {
        let engine = ENGINE.get_or_init(diff::engine);
        diff::check(k, engine, memories, &mut Unstructured::new(&rest))
    });
    if let Err(d) = outcome {
        panic!("divergence ({memories:?}): {d}");
    }
});
