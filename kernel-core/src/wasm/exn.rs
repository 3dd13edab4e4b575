//! Exceptions at run time: the exception objects a store's code throws,
//! and the unwinder that carries a thrown exception to its handler.
//!
//! An exception object is a block of 16-byte slots: slot 0 holds its
//! tag's identity word and, 8 bytes on, its exposed word; slot `1 + i`
//! holds value `i` (translate `EXN_TAG`, [`EXN_EXPOSED`], `EXN_VALUES`).
//! A handler that takes the exception as an `exnref` (`catch_ref`,
//! `catch_all_ref`) sets the exposed word: the object may then sit in any
//! local, global or table, and nothing tracks those before a collector
//! exists, so the store keeps it until it drops. A handler that takes only
//! the values frees an object never exposed. The objects are held from the
//! store's memory owner, so a program that hoards exceptions fails to
//! throw (an out-of-memory trap), never takes the kernel heap.
//!
//! Unwinding ([`unwind`]): from the frame that threw, follow the
//! frame-pointer chain (arch INV-ARCH-2); a frame whose return address is
//! a call site with a handler (`code::CodeRegistry::handler_at`) catches:
//! execution resumes at the handler with that frame's stack and frame
//! pointers and the exception in the payload register. A return address
//! outside wasm code ends the walk: the exception leaves the wasm call,
//! which returns [`TrapKind::UncaughtException`] like a trap (the entry's
//! landing pad).
//!
//! Invariants:
//! - INV-EXN-1: an object's address is handed to wasm only while the
//!   store holds the object; [`Exceptions::contains`] says whether a host
//!   value is one (a host cannot forge one).
//! - INV-EXN-2: the walk reads only words between the throwing frame and
//!   the entry's stack pointer, each frame strictly above the last, and
//!   stops after [`MAX_UNWIND_FRAMES`]; a damaged chain ends it as an
//!   uncaught exception, never a kernel fault.
//! - INV-EXN-3: when the exception escapes, the CPU's entry state is left
//!   as the trap path leaves it (entry INV-ENTRY-2): kind, backtrace, and
//!   `active` cleared before the jump to the landing pad.
//! - INV-EXN-4: an object whose exposed word is 0 was never an `exnref`
//!   value: only the unwinder and landing blocks held its address, and a
//!   handler that frees it has read its values first.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::TrapKind;
use crate::hal::{PAGE_SIZE, Platform};
use crate::kernel::Kernel;
use crate::mem::Owner;

/// Offset in an object of its exposed word (see the module docs).
pub const EXN_EXPOSED: u32 = 8;

/// Most frames the unwinder walks before it calls the exception uncaught.
pub const MAX_UNWIND_FRAMES: usize = 1 << 20;

/// The exception objects of one store, held from its memory owner.
#[derive(Default)]
pub(crate) struct Exceptions {
    inner: spin::Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Every object, by address.
    objects: BTreeMap<usize, Box<[u128]>>,
    /// Bytes of the objects (and their map entries) so far.
    bytes: u64,
    /// Frames held for them, per owner.
    held: Vec<(Owner, u64)>,
}

/// Bytes an object of `count` values costs: its slots and its map entry.
fn cost(count: usize) -> u64 {
    (count as u64 + 1) * 16 + 48
}

impl Exceptions {
    /// A new object of tag identity `tag` with `count` zeroed values,
    /// charged to `owner` through `hold` (frames); its address, or `None`
    /// when the owner cannot hold it.
    pub(crate) fn alloc(
        &self,
        tag: usize,
        count: usize,
        owner: Owner,
        hold: impl FnOnce(Owner, u64) -> bool,
    ) -> Option<usize> {
        let mut inner = self.inner.lock();
        let bytes = inner.bytes.checked_add(cost(count))?;
        let frames = bytes.div_ceil(PAGE_SIZE as u64);
        let have: u64 = inner.held.iter().map(|(_, n)| n).sum();
        if frames > have {
            if !hold(owner, frames - have) {
                return None;
            }
            match inner.held.iter_mut().find(|(o, _)| *o == owner) {
                Some((_, n)) => *n += frames - have,
                None => inner.held.push((owner, frames - have)),
            }
        }
        let mut slots: Vec<u128> = Vec::new();
        slots.try_reserve_exact(count.checked_add(1)?).ok()?;
        slots.resize(count + 1, 0);
        slots[0] = tag as u128;
        let obj = slots.into_boxed_slice();
        let addr = obj.as_ptr() as usize;
        inner.objects.insert(addr, obj);
        inner.bytes = bytes;
        Some(addr)
    }

    /// Free the object at `addr` if wasm never held it as an `exnref`
    /// (its exposed word, [`EXN_EXPOSED`], is 0): a handler without the
    /// exception caught it, and nothing else can reach it (INV-EXN-4).
    /// Its bytes are reused; the frames stay held until the store drops.
    pub(crate) fn free_unexposed(&self, addr: usize) {
        let mut inner = self.inner.lock();
        let exposed = inner
            .objects
            .get(&addr)
            .is_none_or(|o| o[0] >> (8 * EXN_EXPOSED) != 0);
        if !exposed && let Some(obj) = inner.objects.remove(&addr) {
            inner.bytes = inner.bytes.saturating_sub(cost(obj.len() - 1));
        }
    }

    /// Whether `addr` is one of this store's objects (INV-EXN-1).
    pub(crate) fn contains(&self, addr: usize) -> bool {
        self.inner.lock().objects.contains_key(&addr)
    }

    /// Objects held now.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().objects.len()
    }

    /// Free every object and give back the frames held for them, through
    /// `unhold` (when the store drops).
    pub(crate) fn release(&self, mut unhold: impl FnMut(Owner, u64)) {
        let mut inner = self.inner.lock();
        inner.objects.clear();
        inner.bytes = 0;
        for (owner, frames) in inner.held.drain(..) {
            unhold(owner, frames);
        }
    }
}

/// Where to resume after a throw: `[pc, sp, fp, payload]`.
pub(crate) type Resume = [usize; 4];

/// Carry exception `exn`, thrown by the wasm frame whose frame pointer is
/// `fp`, to the nearest caller frame with a handler, or out of the wasm
/// call (see the module docs).
///
/// # Safety
/// `kernel` points at the live `Kernel<P>` of the calling CPU, which runs
/// wasm (an entry context is saved, INV-ENTRY-1), and `fp` is the frame
/// pointer of the wasm frame that calls this (through its builtin).
pub(crate) unsafe fn unwind<P: Platform>(kernel: *const (), exn: usize, fp: usize) -> Resume {
    // SAFETY: the caller's contract.
    let kernel = unsafe { &*kernel.cast::<Kernel<'_, P>>() };
    let Some(cpu) = kernel.cpu(kernel.hal().current_cpu()) else {
        // A wasm frame runs on a CPU the kernel knows: this cannot be.
        panic!("exception thrown outside a kernel CPU");
    };
    let w = &cpu.wasm;
    let [entry_pc, entry_sp, entry_fp] = w.saved();
    let word = core::mem::size_of::<usize>();
    let code = kernel.code();
    let mut depth = 0;
    let mut cut = false;
    let mut cur = fp;
    for _ in 0..MAX_UNWIND_FRAMES {
        // INV-EXN-2: only frames on this call's stack.
        if cur >= entry_sp || !cur.is_multiple_of(word) {
            break;
        }
        // SAFETY: `cur` is a word-aligned frame pointer below the entry's
        // stack pointer, on the live stack of this wasm call.
        let (caller_fp, ret) = unsafe { crate::arch::frame_link(cur) };
        if !code.contains(ret.wrapping_sub(1)) {
            break;
        }
        if let Some((handler, frame_offset)) = code.handler_at(ret) {
            return [
                handler,
                caller_fp.wrapping_sub(frame_offset as usize),
                caller_fp,
                exn,
            ];
        }
        if depth < super::entry::MAX_TRAP_FRAMES {
            w.trap_pcs[depth].store(ret - 1, Ordering::Relaxed);
            depth += 1;
        } else {
            cut = true;
        }
        if caller_fp <= cur {
            break;
        }
        cur = caller_fp;
    }
    // INV-EXN-3: out of the wasm call, as a trap leaves it.
    let kind = super::vm::trap_code(TrapKind::UncaughtException);
    w.trap_kind.store(kind, Ordering::Relaxed);
    w.trap_cut.store(cut, Ordering::Relaxed);
    w.trap_depth.store(depth, Ordering::Release);
    w.active.store(false, Ordering::Release);
    [entry_pc, entry_sp, entry_fp, 0]
}
