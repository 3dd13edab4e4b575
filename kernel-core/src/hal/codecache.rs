//! A place to keep compiled code between runs.
//!
//! The kernel compiles a module once per run and shares it while it is
//! loaded (`wasm::cache`); this capability keeps the compiled form
//! (`wasm::artifact`) across runs, by key (the SHA-256 the artifact module
//! computes). The platform stores opaque bytes: checking them is the
//! kernel's (`wasm::artifact` INV-ART-1), so a platform may lose, truncate
//! or corrupt an entry without harm beyond a compile.
//! - hosted: a directory of files (`sim`'s cache directory), one per key,
//!   written to a temporary name and renamed into place.
//! - riscv: none yet (the defaults).
//!
//! Invariant INV-CODECACHE-1: neither method is called from trap context;
//! both may block the calling CPU on I/O, allocate and take locks.

use alloc::vec::Vec;

/// A key-value store of compiled modules.
pub trait CodeCache {
    /// Whether there is a cache at all (the kernel skips hashing modules
    /// when there is not). Default: no.
    fn code_cache_enabled(&self) -> bool {
        false
    }

    /// The bytes kept under `key`, if any. Default: none.
    fn cached_code(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        let _ = key;
        None
    }

    /// Keep `artifact` under `key`, best effort (a failure is only a later
    /// compile). Default: nothing kept.
    fn cache_code(&self, key: &[u8; 32], artifact: &[u8]) {
        let _ = (key, artifact);
    }
}
