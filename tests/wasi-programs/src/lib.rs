//! Rust programs with std, one binary each, that `tests/build.rs` builds
//! for `wasm32-wasip1` and the WASI tests run as Vessel processes
//! (`tests/tests/wasi_programs.rs`). They build natively too, so that the
//! workspace's checks cover them; each says what it checked on standard
//! output and exits non-zero when a check failed.

/// Fill `buf` with random bytes from the system: WASI `random_get` on
/// wasm, `/dev/urandom` natively.
///
/// # Panics
/// When the system refuses.
pub fn random_bytes(buf: &mut [u8]) {
    #[cfg(target_os = "wasi")]
    {
        #[link(wasm_import_module = "wasi_snapshot_preview1")]
        unsafe extern "C" {
            fn random_get(buf: *mut u8, len: usize) -> u16;
        }
        // SAFETY: `buf` is writable for `buf.len()` bytes; the call writes
        // at most that many.
        let errno = unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
        assert_eq!(errno, 0, "random_get failed");
    }
    #[cfg(not(target_os = "wasi"))]
    {
        use std::io::Read as _;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(buf))
            .expect("/dev/urandom");
    }
}
