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
//! Loading is single-flight for those who can wait
//! ([`ModuleCache::begin`]): the first loader of some bytes leaves a
//! pending entry while it compiles, and a second loader of the same bytes
//! waits for it ([`Pending::wait`]) instead of compiling them again.
//!
//! Invariants:
//! - INV-CACHE-3: a pending entry lives exactly as long as its [`Loading`]
//!   ticket: completing the ticket turns it into a ready entry, dropping it
//!   (the load failed or was abandoned) removes it; either way every waiter
//!   is woken, and a woken waiter looks the bytes up again.
//! - INV-CACHE-1: [`ModuleCache::get`] returns a module only for bytes
//!   equal to those it was compiled from, under an equal
//!   [`TranslateConfig`].
//! - INV-CACHE-2: the cache keeps no module alive: it holds the weak
//!   handles of modules and the bytes they were loaded from, and drops
//!   both once no store holds the module, at the latest when the next
//!   process ends.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};

use super::compile::CompiledModule;
use super::translate::TranslateConfig;

struct Entry {
    hash: u64,
    config: TranslateConfig,
    bytes: Arc<[u8]>,
    module: Weak<CompiledModule>,
    /// Set while the module is being loaded (INV-CACHE-3).
    pending: Option<Arc<Pending>>,
}

impl Entry {
    fn live(&self) -> bool {
        self.pending.is_some() || self.module.strong_count() > 0
    }

    fn is(&self, h: u64, bytes: &[u8], config: &TranslateConfig) -> bool {
        self.hash == h && self.config == *config && *self.bytes == *bytes
    }
}

/// A load in progress that others wait for.
#[derive(Default)]
pub struct Pending {
    done: AtomicBool,
    wakers: spin::Mutex<Vec<Waker>>,
}

impl Pending {
    /// Resolves once the load has ended, however it ended.
    pub fn wait(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        Wait(Arc::clone(self))
    }

    fn finish(&self) {
        self.done.store(true, Ordering::Release);
        for w in self.wakers.lock().drain(..) {
            w.wake();
        }
    }
}

struct Wait(Arc<Pending>);

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.done.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.0.wakers.lock().push(cx.waker().clone());
        // Finished between the first look and the registration: its
        // wake may have gone before the waker was there.
        if self.0.done.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// What [`ModuleCache::begin`] found.
pub enum Lookup<'c> {
    /// The module, loaded by another store.
    Ready(Arc<CompiledModule>),
    /// Nobody has it: load it, then [`Loading::complete`].
    Load(Loading<'c>),
    /// Another store is loading it: wait, then look again.
    Wait(Arc<Pending>),
}

/// The right to load some bytes; others wait for it (INV-CACHE-3).
pub struct Loading<'c> {
    cache: &'c ModuleCache,
    pending: Arc<Pending>,
}

impl Loading<'_> {
    /// The module is loaded: later lookups get it.
    pub fn complete(self, module: &Arc<CompiledModule>) {
        {
            let mut entries = self.cache.entries.lock();
            if let Some(e) = entries.iter_mut().find(|e| {
                e.pending
                    .as_ref()
                    .is_some_and(|p| Arc::ptr_eq(p, &self.pending))
            }) {
                e.module = Arc::downgrade(module);
                e.pending = None;
            }
        }
        self.cache.inserts.fetch_add(1, Ordering::Relaxed);
        // `Drop` wakes the waiters.
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        // A load that did not complete leaves no entry behind.
        self.cache.entries.lock().retain(|e| {
            !e.pending
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(p, &self.pending))
        });
        self.pending.finish();
    }
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
        entries.retain(Entry::live);
        let found = entries
            .iter()
            .filter(|e| e.is(h, bytes, config))
            .find_map(|e| e.module.upgrade());
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Look `bytes` up for a loader that can wait: the module, the right
    /// to load it, or the load in progress to wait for (INV-CACHE-3).
    pub fn begin(&self, bytes: &Arc<[u8]>, config: &TranslateConfig) -> Lookup<'_> {
        let h = hash(bytes);
        let mut entries = self.entries.lock();
        entries.retain(Entry::live);
        for e in entries.iter().filter(|e| e.is(h, bytes, config)) {
            if let Some(p) = &e.pending {
                return Lookup::Wait(Arc::clone(p));
            }
            if let Some(m) = e.module.upgrade() {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Lookup::Ready(m);
            }
        }
        let pending = Arc::new(Pending::default());
        entries.push(Entry {
            hash: h,
            config: *config,
            bytes: Arc::clone(bytes),
            module: Weak::new(),
            pending: Some(Arc::clone(&pending)),
        });
        Lookup::Load(Loading {
            cache: self,
            pending,
        })
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
        entries.retain(Entry::live);
        if entries.iter().any(|e| e.is(h, bytes, config)) {
            return;
        }
        entries.push(Entry {
            hash: h,
            config: *config,
            bytes: Arc::clone(bytes),
            module: Arc::downgrade(module),
            pending: None,
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
        self.entries.lock().retain(Entry::live);
    }

    /// Entries whose module some store still holds.
    pub fn live(&self) -> usize {
        self.prune();
        self.entries
            .lock()
            .iter()
            .filter(|e| e.module.strong_count() > 0)
            .count()
    }
}
