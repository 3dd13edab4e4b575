//! The compiled-module cache on hosted: a directory of files, one per key
//! (`<64 hex digits>.vslc`), for `kernel_core::hal::CodeCache`.
//!
//! The directory is created private to the user (mode 0700) when first
//! written. An entry is written to a temporary name in the directory and
//! renamed into place, so a reader sees a whole entry or none (two
//! machines writing the same key race harmlessly: both write the same
//! bytes). Entries larger than [`MAX_ENTRY`] are neither read nor written,
//! and only regular files are read (opened non-blocking, so a FIFO in an
//! entry's place is a miss, not a hang).
//! Nothing here checks an entry: the kernel does (`wasm::artifact`).
//!
//! Invariant INV-CODECACHE-H1: a failure to read or write is a miss, never
//! an error the kernel sees.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use kernel_core::hal::CodeCache;

use crate::Hosted;

/// Largest entry read or written: 256 MiB.
pub(crate) const MAX_ENTRY: u64 = 256 << 20;

/// The machine's cache directory, if any.
#[derive(Default)]
pub(crate) struct Dir {
    path: RwLock<Option<PathBuf>>,
    /// Distinguishes temporary names of concurrent writers in one process.
    next_tmp: AtomicU64,
}

fn entry(dir: &Path, key: &[u8; 32]) -> PathBuf {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(hex).with_extension("vslc")
}

impl Dir {
    fn get(&self) -> Option<PathBuf> {
        self.path.read().ok()?.clone()
    }

    fn write(&self, dir: &Path, key: &[u8; 32], bytes: &[u8]) -> std::io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            self.next_tmp.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(bytes));
        match written.and_then(|()| std::fs::rename(&tmp, entry(dir, key))) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

impl Hosted {
    /// Keep compiled modules in `dir` across runs (`None`: no cache, the
    /// default). The directory is created when first written.
    pub fn set_code_cache(&self, dir: Option<PathBuf>) {
        if let Ok(mut p) = self.machine.code_cache.path.write() {
            *p = dir;
        }
    }
}

impl CodeCache for Hosted {
    fn code_cache_enabled(&self) -> bool {
        self.machine.code_cache.get().is_some()
    }

    fn cached_code(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        use std::io::Read as _;
        let path = entry(&self.machine.code_cache.get()?, key);
        // Non-blocking, so that a FIFO put in the entry's place cannot
        // stall the kernel; only a regular file of at most MAX_ENTRY bytes
        // is read, and never more than that even if it grows meanwhile.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed())
            .open(path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_ENTRY {
            return None;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
        file.take(MAX_ENTRY).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    }

    fn cache_code(&self, key: &[u8; 32], artifact: &[u8]) {
        let Some(dir) = self.machine.code_cache.get() else {
            return;
        };
        if artifact.len() as u64 > MAX_ENTRY {
            return;
        }
        // INV-CODECACHE-H1: an entry not written is a compile next time.
        let _ = self.machine.code_cache.write(&dir, key, artifact);
    }
}
