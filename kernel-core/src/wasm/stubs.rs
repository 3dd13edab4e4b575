//! The kernel's stub cache: host-to-wasm trampolines and wasm-to-host
//! thunks, one linked code object per kind and signature, shared by every
//! store that needs it while any store holds it.
//!
//! Without it every store compiled and linked its own: a WASI process
//! importing functions of ten signatures ran Cranelift ten times and
//! mapped ten code objects before its first instruction.
//!
//! Invariants:
//! - INV-STUB-1: an entry holds its code weakly ([`LinkedCode`]); the code
//!   is freed with the last store holding it (code INV-CODE-5), and a dead
//!   entry is dropped at the next lookup or insert, so the cache keeps no
//!   code alive and grows no larger than the set of live signatures.
//! - INV-STUB-2: a stub is served only for an equal kind and signature.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use super::code::LinkedCode;
use super::module::FuncType;

/// What a stub is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubKind {
    /// Host-to-wasm: the array-call trampoline of `Store::invoke`.
    Trampoline,
    /// Wasm-to-host: the thunk behind a host function.
    HostThunk,
}

struct Entry {
    kind: StubKind,
    ty: FuncType,
    code: Weak<LinkedCode>,
}

/// The cache (one per kernel).
#[derive(Default)]
pub struct StubCache {
    entries: spin::Mutex<Vec<Entry>>,
}

impl StubCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The live stub of `kind` for `ty` (INV-STUB-2).
    pub fn get(&self, kind: StubKind, ty: &FuncType) -> Option<Arc<LinkedCode>> {
        let mut entries = self.entries.lock();
        entries.retain(|e| e.code.strong_count() > 0);
        entries
            .iter()
            .filter(|e| e.kind == kind && e.ty == *ty)
            .find_map(|e| e.code.upgrade())
    }

    /// Offer `code` as the stub of `kind` for `ty`; when another store
    /// linked one first, that one is returned for the caller to use.
    pub fn offer(&self, kind: StubKind, ty: &FuncType, code: &Arc<LinkedCode>) -> Arc<LinkedCode> {
        let mut entries = self.entries.lock();
        entries.retain(|e| e.code.strong_count() > 0);
        if let Some(c) = entries
            .iter()
            .filter(|e| e.kind == kind && e.ty == *ty)
            .find_map(|e| e.code.upgrade())
        {
            return c;
        }
        entries.push(Entry {
            kind,
            ty: ty.clone(),
            code: Arc::downgrade(code),
        });
        Arc::clone(code)
    }

    /// Stubs some store still holds.
    pub fn live(&self) -> usize {
        let mut entries = self.entries.lock();
        entries.retain(|e| e.code.strong_count() > 0);
        entries.len()
    }
}
