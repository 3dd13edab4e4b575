//! The persistent compiled-module cache (`wasm::artifact`, hosted's cache
//! directory): a program compiled once is loaded from the directory the
//! next time; an entry that is damaged, truncated, written for another
//! kernel version or for other bytes is refused and the program compiled
//! again (and the entry rewritten), so its code is never executed; a
//! module changed by one byte gets an entry of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kernel_core::proc::{ExitStatus, Program};
use kernel_core::wasm::cache::ArtifactCounts;
use sha2::{Digest, Sha256};
use tests::machine::{Ran, With, run_program_with, wat};

/// Prints `hello, cache` and exits 0.
fn program(greeting: &str) -> Arc<[u8]> {
    wat(&format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "{greeting}\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = greeting.len() + 1
    ))
}

fn run_cached(module: &Arc<[u8]>, dir: &Path) -> Ran {
    let with = With {
        cache: Some(dir.to_path_buf()),
        ..With::default()
    };
    let r = run_program_with(module.clone(), Program::default(), with);
    assert_eq!(r.status, Some(ExitStatus::Exited(0)), "{r:?}");
    r
}

fn counts(loaded: u64, refused: u64, stored: u64) -> ArtifactCounts {
    ArtifactCounts {
        loaded,
        refused,
        stored,
    }
}

/// A fresh directory under the target's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vessel-code-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The cache's entries (files ending `.vslc`).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "vslc"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Run once to fill the cache; return the entry and its bytes.
fn filled(module: &Arc<[u8]>, dir: &Path) -> (PathBuf, Vec<u8>) {
    let r = run_cached(module, dir);
    assert_eq!(r.artifacts, counts(0, 0, 1));
    let e = entries(dir);
    assert_eq!(e.len(), 1, "{e:?}");
    let bytes = std::fs::read(&e[0]).expect("entry");
    (e[0].clone(), bytes)
}

#[test]
fn a_compiled_program_is_loaded_from_the_cache_the_next_time() {
    let dir = scratch("hit");
    let module = program("hello, cache");
    let (_, stored) = filled(&module, &dir);
    for _ in 0..2 {
        let r = run_cached(&module, &dir);
        assert_eq!(r.artifacts, counts(1, 0, 0));
        assert!(r.stdout.ends_with("hello, cache\n"), "{:?}", r.stdout);
    }
    assert_eq!(std::fs::read(&entries(&dir)[0]).expect("entry"), stored);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Write `bad` as the entry, run, and check it was refused, the program
/// ran from a fresh compile and the entry was rewritten whole.
fn refused_and_rewritten(module: &Arc<[u8]>, dir: &Path, entry: &Path, good: &[u8], bad: &[u8]) {
    std::fs::write(entry, bad).expect("write the entry");
    let r = run_cached(module, dir);
    assert_eq!(r.artifacts, counts(0, 1, 1), "{r:?}");
    assert!(r.stdout.ends_with("hello, cache\n"), "{:?}", r.stdout);
    assert_eq!(std::fs::read(entry).expect("entry"), good);
    assert_eq!(run_cached(module, dir).artifacts, counts(1, 0, 0));
}

#[test]
fn damaged_truncated_and_foreign_entries_are_compiled_again() {
    let dir = scratch("bad");
    let module = program("hello, cache");
    let (entry, good) = filled(&module, &dir);
    // One byte of the code flipped.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    refused_and_rewritten(&module, &dir, &entry, &good, &flipped);
    // Cut short.
    refused_and_rewritten(&module, &dir, &entry, &good, &good[..good.len() / 3]);
    refused_and_rewritten(&module, &dir, &entry, &good, b"");
    // Written by another version: the version string changed and the
    // checksum sealed again, so only the version check can refuse it.
    let vlen = u32::from_le_bytes(good[12..16].try_into().expect("4 bytes")) as usize;
    let mut other = good[..good.len() - 32].to_vec();
    let version = &mut other[16..16 + vlen];
    let at = version
        .windows(7)
        .position(|w| w == b"vessel ")
        .expect("the version names vessel")
        + 7;
    version[at] = if version[at] == b'9' { b'8' } else { b'9' };
    let sum = Sha256::digest(&other);
    other.extend_from_slice(&sum);
    refused_and_rewritten(&module, &dir, &entry, &good, &other);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_module_changed_by_one_byte_is_not_served_from_the_cache() {
    let dir = scratch("other");
    let hello = program("hello, cache");
    let jello = program("jello, cache");
    assert_eq!(hello.len(), jello.len());
    let (hello_entry, hello_bytes) = filled(&hello, &dir);
    let r = run_cached(&jello, &dir);
    assert_eq!(r.artifacts, counts(0, 0, 1));
    assert!(r.stdout.ends_with("jello, cache\n"), "{:?}", r.stdout);
    let all = entries(&dir);
    assert_eq!(all.len(), 2);
    let jello_entry = all
        .iter()
        .find(|e| **e != hello_entry)
        .expect("a second entry");
    // hello's entry put under jello's key: refused (it was compiled from
    // other bytes), jello compiled again and its own entry rewritten.
    std::fs::write(jello_entry, &hello_bytes).expect("swap the entry");
    let r = run_cached(&jello, &dir);
    assert_eq!(r.artifacts, counts(0, 1, 1));
    assert!(r.stdout.ends_with("jello, cache\n"), "{:?}", r.stdout);
    assert_eq!(run_cached(&hello, &dir).artifacts, counts(1, 0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Something other than a regular file in an entry's place (a FIFO, a
/// directory) is a miss: the program is compiled and runs; nothing hangs.
#[test]
fn an_entry_that_is_not_a_file_is_a_miss_not_a_hang() {
    let dir = scratch("fifo");
    let module = program("hello, cache");
    let (entry, _) = filled(&module, &dir);
    std::fs::remove_file(&entry).expect("remove the entry");
    let path = std::ffi::CString::new(entry.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: `path` is a valid NUL-terminated string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let with = With {
        cache: Some(dir.clone()),
        ..With::default()
    };
    let r = run_program_with(module.clone(), Program::default(), with);
    assert_eq!(r.status, Some(ExitStatus::Exited(0)), "{r:?}");
    assert!(r.stdout.ends_with("hello, cache\n"), "{:?}", r.stdout);
    assert_eq!(r.artifacts.loaded, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
