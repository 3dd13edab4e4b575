//! The kernel's module cache: a compiled module shared by every store that
//! loads the same bytes with the same translation settings while any of
//! them holds it, so spawning a program that is already running compiles
//! nothing.
//!
//! It also counts what became of the platform's persistent artifacts
//! (`artifact`, `hal::CodeCache`), which [`crate::wasm::vm::Store`]
//! consults on a miss here.
//!
//! Entries hold the module weakly: it is freed with its last user, and
//! an entry whose module is gone is dropped at the next lookup, insert or
//! [`ModuleCache::prune`] (every process's end). An entry shares the
//! module's bytes with the process that loaded them (a handle, not a
//! copy), so the cache costs no module-sized memory of its own.
//! A lookup compares the whole module (a hash only picks the candidates),
//! so no module is ever served for other bytes.
//!
//! Invariants:
//! - INV-CACHE-1: [`ModuleCache::get`] returns a module only for bytes
//!   equal to those it was compiled from, under an equal
//!   [`TranslateConfig`].
//! - INV-CACHE-2: the cache keeps no module alive: it holds the weak
//!   handles of modules and the bytes they were loaded from, and drops
//!   both once no store holds the module, at the latest when the next
//!   process ends.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::compile::CompiledModule;
use super::translate::TranslateConfig;

struct Entry {
    hash: u64,
    config: TranslateConfig,
    bytes: Arc<[u8]>,
    module: Weak<CompiledModule>,
}

/// What became of a compiled-module artifact (the platform's persistent
/// cache, `hal::CodeCache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactUse {
    /// Loaded instead of compiling.
    Loaded,
    /// Found but refused (`artifact::ArtifactError`): compiled instead.
    Refused,
    /// Written after a compile.
    Stored,
}

/// Artifact counts by [`ArtifactUse`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArtifactCounts {
    /// Loaded instead of compiling.
    pub loaded: u64,
    /// Found but refused.
    pub refused: u64,
    /// Written after a compile.
    pub stored: u64,
}

/// The cache (one per kernel).
#[derive(Default)]
pub struct ModuleCache {
    entries: spin::Mutex<Vec<Entry>>,
    hits: AtomicU64,
    inserts: AtomicU64,
    artifacts: [AtomicU64; 3],
}

/// FNV-1a, 64 bits: picks candidates, never decides a match.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl ModuleCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The module compiled from `bytes` under `config`, if a store still
    /// holds one (INV-CACHE-1).
    pub fn get(&self, bytes: &[u8], config: &TranslateConfig) -> Option<Arc<CompiledModule>> {
        let h = hash(bytes);
        let mut entries = self.entries.lock();
        entries.retain(|e| e.module.strong_count() > 0);
        let found = entries
            .iter()
            .filter(|e| e.hash == h && e.config == *config && *e.bytes == *bytes)
            .find_map(|e| e.module.upgrade());
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Offer `module`, compiled from `bytes` under `config`, to later
    /// lookups (the entry shares `bytes`).
    pub fn insert(
        &self,
        bytes: &Arc<[u8]>,
        config: &TranslateConfig,
        module: &Arc<CompiledModule>,
    ) {
        let h = hash(bytes);
        let mut entries = self.entries.lock();
        entries.retain(|e| e.module.strong_count() > 0);
        if entries
            .iter()
            .any(|e| e.hash == h && e.config == *config && *e.bytes == **bytes)
        {
            return;
        }
        entries.push(Entry {
            hash: h,
            config: *config,
            bytes: Arc::clone(bytes),
            module: Arc::downgrade(module),
        });
        self.inserts.fetch_add(1, Ordering::Relaxed);
    }

    /// Lookups served from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Modules compiled and offered so far.
    pub fn inserts(&self) -> u64 {
        self.inserts.load(Ordering::Relaxed)
    }

    /// Count an artifact's use.
    pub fn count_artifact(&self, what: ArtifactUse) {
        self.artifacts[what as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Artifacts loaded, refused and stored so far.
    pub fn artifacts(&self) -> ArtifactCounts {
        let [loaded, refused, stored] =
            self.artifacts.each_ref().map(|a| a.load(Ordering::Relaxed));
        ArtifactCounts {
            loaded,
            refused,
            stored,
        }
    }

    /// Drop the entries whose module no store holds (INV-CACHE-2).
    pub fn prune(&self) {
        self.entries.lock().retain(|e| e.module.strong_count() > 0);
    }

    /// Entries whose module some store still holds.
    pub fn live(&self) -> usize {
        self.prune();
        self.entries.lock().len()
    }
}
