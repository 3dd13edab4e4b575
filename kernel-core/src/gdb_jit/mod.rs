//! gdb's JIT interface: JIT code made visible to a debugger by name, on
//! every platform that links this crate (hosted: native gdb on `sim`;
//! riscv: `gdb-multiarch` on QEMU's stub). The HALs' `JitDebug`
//! implementations call [`publish`] and [`retire`].
//!
//! The protocol: the program keeps a global `__jit_debug_descriptor`
//! holding a doubly linked list of entries, each pointing at an in-memory
//! object file (built by `elf`, with `.debug_line` from `dwarf`). After
//! changing the list it sets `action_flag` and `relevant_entry` and calls
//! `__jit_debug_register_code`, on which gdb keeps a breakpoint; gdb then
//! reads the descriptor (from memory, through the stub on riscv) and loads
//! or drops that object's symbols. When gdb attaches later it walks the
//! list from `first_entry`.
//!
//! Memory: an object costs heap (its symbols, names and line table, about
//! a tenth to a fifth of the code's size). [`publish`] takes a byte budget
//! for all live objects together and builds through fallible allocation
//! (`buf`), so a missing budget or heap costs only the object: the code
//! still runs, the skip is counted ([`Stats::skipped`]) and logged once.
//!
//! Both the descriptor and the list are global: one per program, shared by
//! every kernel (hosted machines) and every CPU in it.
//!
//! Invariants:
//! - INV-GDBJIT-1: the descriptor and every entry are changed only while
//!   `STATE` is locked, and `__jit_debug_register_code` is called under
//!   that lock, so gdb never sees a half-linked list and two CPUs never
//!   interleave their updates. The lock is never taken in trap context
//!   (INV-JIT-2), so a plain spin lock cannot deadlock with a handler.
//! - INV-GDBJIT-2: a node (entry + object bytes) is one heap allocation
//!   owned by the list while linked: it never moves, and it is freed only
//!   after it is unlinked and gdb has been told.
//! - INV-GDBJIT-3: `State::bytes` is the cost of the linked nodes plus the
//!   bounds reserved by builds in progress, never more than the budget a
//!   publish was given when it reserved.

mod buf;
mod dwarf;
mod elf;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr;

pub use buf::OutOfMemory;

use crate::hal::{JitCode, VirtRange};

/// `jit_actions_t`.
const JIT_NOACTION: u32 = 0;
const JIT_REGISTER_FN: u32 = 1;
const JIT_UNREGISTER_FN: u32 = 2;

/// `struct jit_code_entry`.
#[repr(C)]
struct CodeEntry {
    next: *mut CodeEntry,
    prev: *mut CodeEntry,
    symfile_addr: *const u8,
    symfile_size: u64,
}

/// `struct jit_descriptor`.
#[repr(C)]
struct Descriptor {
    version: u32,
    action_flag: u32,
    relevant_entry: *mut CodeEntry,
    first_entry: *mut CodeEntry,
}

/// The descriptor, with interior mutability so that it can be a plain
/// `static` that gdb finds by name.
#[repr(transparent)]
pub struct DescriptorCell(UnsafeCell<Descriptor>);

// SAFETY: every access goes through `STATE`'s lock (INV-GDBJIT-1); gdb
// reads it only while the program is stopped.
unsafe impl Sync for DescriptorCell {}

/// gdb's JIT descriptor. The name and layout are the protocol's.
#[unsafe(no_mangle)]
pub static __jit_debug_descriptor: DescriptorCell = DescriptorCell(UnsafeCell::new(Descriptor {
    version: 1,
    action_flag: JIT_NOACTION,
    relevant_entry: ptr::null_mut(),
    first_entry: ptr::null_mut(),
}));

/// gdb keeps a breakpoint here and reads the descriptor when it is hit.
/// Never inlined, and its body is opaque to the optimiser, so every call
/// stays.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn __jit_debug_register_code() {
    core::hint::black_box(&__jit_debug_descriptor);
}

/// One registered object. `entry` comes first, so a `*mut CodeEntry` from
/// the list is also the node's address.
#[repr(C)]
struct Node {
    entry: CodeEntry,
    /// Start of the code it describes (the key of [`retire`]).
    start: usize,
    /// What it is charged against the budget.
    cost: usize,
    /// The object file; `entry.symfile_addr` points at its bytes.
    object: Vec<u8>,
}

/// The lock of the list, and the counters it guards.
struct State {
    /// INV-GDBJIT-3.
    bytes: usize,
    live: usize,
    published: u64,
    skipped: u64,
}

/// Guards the descriptor and every linked node (INV-GDBJIT-1).
static STATE: spin::Mutex<State> = spin::Mutex::new(State {
    bytes: 0,
    live: 0,
    published: 0,
    skipped: 0,
});

/// Why an object was not published. The code itself is unaffected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Publishing would take the live objects past the budget.
    OverBudget {
        /// The most the object could cost.
        need: usize,
        /// What the budget had left.
        left: usize,
    },
    /// The heap could not hold the object.
    OutOfMemory,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OverBudget { need, left } => write!(
                f,
                "its debug object (up to {need} bytes) does not fit the {left} bytes left of the JIT debug budget"
            ),
            Self::OutOfMemory => f.write_str("the heap cannot hold its debug object"),
        }
    }
}

impl From<OutOfMemory> for Skip {
    fn from(_: OutOfMemory) -> Self {
        Self::OutOfMemory
    }
}

/// Counters of the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Objects linked now.
    pub live: usize,
    /// Heap they (and builds in progress) are charged (INV-GDBJIT-3).
    pub bytes: usize,
    /// Objects ever published.
    pub published: u64,
    /// Objects skipped ([`Skip`]).
    pub skipped: u64,
}

/// The counters now.
pub fn stats() -> Stats {
    let s = STATE.lock();
    Stats {
        live: s.live,
        bytes: s.bytes,
        published: s.published,
        skipped: s.skipped,
    }
}

/// The object file describing `code`, and its size bound.
fn build(code: &JitCode<'_>) -> Result<Vec<u8>, OutOfMemory> {
    let base = code.range.start as u64;
    let mut symbols: Vec<elf::Symbol<'_>> = Vec::new();
    symbols
        .try_reserve_exact(code.symbols.len())
        .map_err(|_| OutOfMemory)?;
    symbols.extend(code.symbols.iter().map(|s| elf::Symbol {
        name: s.name,
        offset: (s.start as u64).wrapping_sub(base),
        size: s.len as u64,
    }));
    let debug = dwarf::sections(code)?;
    let sections: [(&str, &[u8]); 3] = [
        (dwarf::NAMES[0], &debug[0]),
        (dwarf::NAMES[1], &debug[1]),
        (dwarf::NAMES[2], &debug[2]),
    ];
    elf::build(base, code.range.len as u64, &symbols, &sections)
}

/// Most heap [`publish`] can charge for `code`: the object (whose buffer
/// may have grown to twice what it holds) and its node.
fn cost_bound(code: &JitCode<'_>) -> usize {
    let names: usize = code.symbols.iter().map(|s| s.name.len()).sum();
    let object = elf::size_bound(
        code.symbols.len(),
        names,
        dwarf::NAMES.len(),
        dwarf::size_bound(code),
    );
    2 * object + size_of::<Node>()
}

/// Register an object for `code` with gdb, if the live objects stay
/// within `budget` bytes and the heap holds it. Call after the code is
/// executable (INV-JIT-1); never from trap context.
///
/// # Errors
/// [`Skip`] when the object was not published (counted and, the first
/// time, logged); the code is unaffected.
pub fn publish(code: &JitCode<'_>, budget: usize) -> Result<(), Skip> {
    let bound = cost_bound(code);
    {
        let mut s = STATE.lock();
        let left = budget.saturating_sub(s.bytes);
        if bound > left {
            drop(s);
            return Err(skipped(Skip::OverBudget { need: bound, left }));
        }
        s.bytes += bound; // reserved (INV-GDBJIT-3)
    }
    let node = match build(code).and_then(|object| boxed_node(code.range.start, object)) {
        Ok(node) => node,
        Err(e) => {
            STATE.lock().bytes -= bound;
            return Err(skipped(e.into()));
        }
    };
    let mut s = STATE.lock();
    // SAFETY: the node is live and owned by us; its cost was computed when
    // it was made.
    let cost = unsafe { (*node).cost };
    s.bytes = s.bytes - bound + cost;
    // The same start linked twice would leave the old node linked with its
    // code gone: retire it first (only if a platform skipped a retire).
    let old = find(code.range.start);
    if let Some(old) = old {
        unlink(&mut s, old);
    }
    let desc = __jit_debug_descriptor.0.get();
    // SAFETY: INV-GDBJIT-1: we hold the lock; `first_entry` is null or a
    // linked node (INV-GDBJIT-2); `node` is ours and not yet linked.
    unsafe {
        let entry: *mut CodeEntry = &raw mut (*node).entry;
        let first = (*desc).first_entry;
        (*entry).next = first;
        (*entry).prev = ptr::null_mut();
        if !first.is_null() {
            (*first).prev = entry;
        }
        (*desc).first_entry = entry;
        (*desc).relevant_entry = entry;
        (*desc).action_flag = JIT_REGISTER_FN;
    }
    s.live += 1;
    s.published += 1;
    __jit_debug_register_code();
    settle();
    drop(s);
    if let Some(old) = old {
        free(old);
    }
    Ok(())
}

/// Unregister the object of the code at `range`, if one was published,
/// and free it. Call before the code is unmapped (INV-JIT-1); never from
/// trap context.
pub fn retire(range: VirtRange) {
    let mut s = STATE.lock();
    let Some(node) = find(range.start) else {
        return;
    };
    unlink(&mut s, node);
    drop(s);
    free(node);
}

/// Count (and the first time, log) a skip.
fn skipped(why: Skip) -> Skip {
    let first = {
        let mut s = STATE.lock();
        s.skipped += 1;
        s.skipped == 1
    };
    if first {
        tracing::warn!("gdb JIT interface: code not published: {why}; further skips are counted");
    } else {
        tracing::debug!("gdb JIT interface: code not published: {why}");
    }
    why
}

/// A node for `object`, in a heap allocation of its own (INV-GDBJIT-2),
/// or [`OutOfMemory`].
fn boxed_node(start: usize, object: Vec<u8>) -> Result<*mut Node, OutOfMemory> {
    let mut one: Vec<Node> = Vec::new();
    one.try_reserve_exact(1).map_err(|_| OutOfMemory)?;
    let cost = object.capacity() + size_of::<Node>();
    one.push(Node {
        entry: CodeEntry {
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            symfile_addr: object.as_ptr(),
            symfile_size: object.len() as u64,
        },
        start,
        cost,
        object,
    });
    // Length equals capacity: no reallocation here.
    let boxed: Box<[Node]> = one.into_boxed_slice();
    Ok(Box::into_raw(boxed).cast::<Node>())
}

/// Free a node [`boxed_node`] made, after it was unlinked (INV-GDBJIT-2).
fn free(node: *mut Node) {
    // SAFETY: `node` came from `boxed_node` (a one-element boxed slice),
    // is unlinked, and no other pointer to it remains.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(node, 1)) });
}

/// The linked node for code at `start`. Caller holds `STATE`'s lock.
fn find(start: usize) -> Option<*mut Node> {
    let mut e = {
        // SAFETY: INV-GDBJIT-1: the caller holds the lock.
        unsafe { (*__jit_debug_descriptor.0.get()).first_entry }
    };
    while !e.is_null() {
        let node = e.cast::<Node>();
        // SAFETY: every linked entry is the first field of a live node
        // (INV-GDBJIT-2), read under the lock.
        unsafe {
            if (*node).start == start {
                return Some(node);
            }
            e = (*e).next;
        }
    }
    None
}

/// Unlink `node` and tell gdb. Caller holds the lock (`s`), and frees the
/// node afterwards (after dropping the lock).
fn unlink(s: &mut State, node: *mut Node) {
    let desc = __jit_debug_descriptor.0.get();
    // SAFETY: INV-GDBJIT-1/2: the lock is held, `node` is linked and its
    // neighbours are live linked nodes.
    unsafe {
        let entry: *mut CodeEntry = &raw mut (*node).entry;
        let (next, prev) = ((*entry).next, (*entry).prev);
        if prev.is_null() {
            (*desc).first_entry = next;
        } else {
            (*prev).next = next;
        }
        if !next.is_null() {
            (*next).prev = prev;
        }
        (*entry).next = ptr::null_mut();
        (*entry).prev = ptr::null_mut();
        (*desc).relevant_entry = entry;
        (*desc).action_flag = JIT_UNREGISTER_FN;
        s.bytes = s.bytes.saturating_sub((*node).cost);
    }
    s.live -= 1;
    __jit_debug_register_code();
    settle();
}

/// After gdb has read an action: no action pending, no entry relevant (an
/// unlinked one is about to be freed). Caller holds the lock.
fn settle() {
    let desc = __jit_debug_descriptor.0.get();
    // SAFETY: INV-GDBJIT-1: the caller holds the lock.
    unsafe {
        (*desc).relevant_entry = ptr::null_mut();
        (*desc).action_flag = JIT_NOACTION;
    }
}

#[cfg(test)]
mod tests;
