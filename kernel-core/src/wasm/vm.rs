//! The wasm runtime: stores, instances, linear memories, tables, globals,
//! host functions and calls into wasm.
//!
//! A [`Store`] owns everything it creates (instances, memories, tables,
//! host functions) and holds the code its instances run until it drops,
//! so a pointer from one instance's `VMContext` into another's (an
//! imported function, global, memory or table) stays valid for as long as
//! any code can use it. Code is shared, not owned: a module's functions
//! are linked once and run by every store that instantiates the module
//! while any holds them, and trampolines and host thunks are shared per
//! signature through the kernel's stub cache (`code` INV-CODE-5, `stubs`).
//!
//! The `VMContext` layout is [`VMOffsets`]; this module adds one word in
//! front of it (at `vmctx - 16`): a pointer to the instance's
//! [`InstanceData`], which the builtins use to find the instance's memories,
//! tables and passive segments. JIT code reads every memory and table through the
//! pointers of the context, so each memory's and table's definition lives
//! in its own heap box, shared by the defining and importing instances.
//!
//! Invariants:
//! - INV-VM-1: a memory's reservation is `4 GiB + guard_bytes` of the kernel
//!   window (or, in a store with [`Store::bound_memories`], the fixed
//!   size given there, every access checked explicitly and `memory.grow`
//!   failing past it); `[base, base + length)` is mapped read + write, the rest is
//!   unmapped, so a guarded access past `length` faults (VMContext INV-1).
//! - INV-VM-2: the definitions, contexts and host-function contexts a store
//!   hands to JIT code are never moved or freed before the store drops.
//! - INV-VM-3: canonical type ids are store-wide: equal signatures have the
//!   same id in every instance of a store, so `call_indirect` can compare
//!   ids across modules.
//! - INV-VM-4: calls into wasm go through [`crate::arch::enter`] with the
//!   CPU's entry context saved (entry INV-ENTRY-1), restored afterwards for
//!   nested calls.
//! - INV-VM-5: a store's tables and segments are touched by one thread at a
//!   time (see [`Table`]); builtins never hold a reference across a call
//!   into wasm.
//! - INV-VM-6: a function reference reaches a store's wasm code only if it
//!   is one of that store's `VMFuncRef`s (see `FuncRefOwner`).
//! - INV-VM-7: a value slot (`u128`) holds a value in its low bytes,
//!   little-endian; a reference is its pointer-sized word (0 = null; an
//!   `externref` `Some(n)` is `n + 1`).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroUsize;
use core::sync::atomic::Ordering;

use cranelift_frontend::FunctionBuilderContext;

use super::artifact;
use super::budget::Budget;
use super::builtins::Builtin;
use super::cache::{ArtifactUse, Lookup, Pending};
use super::code::{CodeObject, FrameInfo, LinkError, LinkInput};
use super::compile::{CompiledModule, Compiler, TrapKind, compile_module_within};
use super::module::{
    self, CompileError, ConstExpr, DataMode, ElementMode, ExportKind, FuncType, GlobalType,
    HeapType, ImportKind, MemoryType, ModuleInfo, RefType, TableType, ValType,
};
use super::retained;
use super::stubs::StubKind;
use super::table::{Table, TableError};
use super::translate::TranslateConfig;
use super::typed::{MAX_TYPED, WasmList};
use super::vmoffsets::VMOffsets;
use crate::escape;
use crate::hal::{PAGE_SIZE, Perms, Platform};
use crate::kernel::{Kernel, MemError};
use crate::mem::{Commit, GapError, Owner, Pooled, RegionSpec, VmError};

use super::exn::{self, Exceptions};
use super::futex::Futexes;
use super::interrupt::{HookAction, Interrupt, WaitEnd};

/// Bytes in a wasm page.
pub const WASM_PAGE: u64 = 65536;
/// What a store calls its code until [`Store::set_module_name`].
pub const DEFAULT_MODULE_NAME: &str = "wasm";
const WASM_PAGE_ORDER: u32 = 4;
const MAX_PAGES: u64 = 65536;
/// The most pages a 64-bit memory may declare (2^64 bytes).
const MAX_PAGES_64: u64 = 1 << 48;

/// The most pages a memory of this index type may declare: what an
/// undeclared maximum means.
fn page_limit(memory64: bool) -> u64 {
    if memory64 { MAX_PAGES_64 } else { MAX_PAGES }
}

pub(crate) const KINDS: [TrapKind; 18] = [
    TrapKind::Unreachable,
    TrapKind::IntegerDivideByZero,
    TrapKind::IntegerOverflow,
    TrapKind::BadConversionToInteger,
    TrapKind::MemoryOutOfBounds,
    TrapKind::TableOutOfBounds,
    TrapKind::IndirectCallToNull,
    TrapKind::BadSignature,
    TrapKind::StackOverflow,
    TrapKind::TableAccessOutOfBounds,
    TrapKind::Interrupted,
    TrapKind::Host,
    TrapKind::OutOfMemory,
    TrapKind::NullFunctionReference,
    TrapKind::NullReference,
    TrapKind::UncaughtException,
    TrapKind::UnalignedAtomic,
    TrapKind::UnsharedWait,
];

/// The number the trap path records for `kind`.
pub(crate) fn trap_code(kind: TrapKind) -> u32 {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0) as u32
}

/// A non-null function reference: the address of a `VMFuncRef` that lives
/// in the store it came from (INV-VM-2). Only wasm results and globals hand
/// them out, so host code cannot forge one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FuncAddr(NonZeroUsize);

/// A wasm value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    /// i32.
    I32(i32),
    /// i64.
    I64(i64),
    /// f32, as bits.
    F32(u32),
    /// f64, as bits.
    F64(u64),
    /// `funcref`: null or a function of the store.
    FuncRef(Option<FuncAddr>),
    /// `externref`: null or a host value. In wasm, `Some(n)` is the word
    /// `n + 1` (0 is null), so it round-trips through tables and globals.
    ExternRef(Option<u32>),
    /// v128: the 16 bytes as one little-endian integer (lane 0 of any lane
    /// view in the low bits); it fills a whole 16-byte slot.
    V128(u128),
    /// `exnref`: null or an exception object of the store (`exn`).
    ExnRef(Option<ExnAddr>),
}

/// A non-null exception reference: the address of an exception object of
/// the store it came from (`exn` INV-EXN-1). Only wasm hands them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExnAddr(NonZeroUsize);

impl Val {
    /// Its type.
    pub fn ty(self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::FuncRef(_) => ValType::FUNCREF,
            Val::ExternRef(_) => ValType::EXTERNREF,
            Val::V128(_) => ValType::V128,
            Val::ExnRef(_) => ValType::EXNREF,
        }
    }

    fn to_slot(self) -> u128 {
        match self {
            Val::I32(v) => u128::from(v as u32),
            Val::I64(v) => u128::from(v as u64),
            Val::F32(v) => u128::from(v),
            Val::F64(v) => u128::from(v),
            Val::FuncRef(f) => f.map_or(0, |f| f.0.get() as u128),
            Val::ExternRef(e) => e.map_or(0, |n| u128::from(n) + 1),
            Val::V128(v) => v,
            Val::ExnRef(e) => e.map_or(0, |e| e.0.get() as u128),
        }
    }

    fn from_slot(ty: ValType, s: u128) -> Self {
        match ty {
            ValType::I32 => Val::I32(s as u32 as i32),
            ValType::I64 => Val::I64(s as u64 as i64),
            ValType::F32 => Val::F32(s as u32),
            ValType::F64 => Val::F64(s as u64),
            ValType::Ref(r) if r.is_extern() => {
                Val::ExternRef((s as usize).checked_sub(1).map(|n| n as u32))
            }
            ValType::Ref(r) if r.is_exn() => {
                Val::ExnRef(NonZeroUsize::new(s as usize).map(ExnAddr))
            }
            ValType::Ref(_) => Val::FuncRef(NonZeroUsize::new(s as usize).map(FuncAddr)),
            ValType::V128 => Val::V128(s),
        }
    }

    fn zero(ty: ValType) -> Self {
        Self::from_slot(ty, 0)
    }

    /// The null of reference type `r`'s hierarchy.
    #[must_use]
    pub fn null(r: RefType) -> Self {
        Self::zero(ValType::Ref(r))
    }
}

/// A wasm trap: its kind and the wasm frames it unwound, innermost first.
///
/// Displayed as the kind's message, then one line per frame; names from
/// the module are escaped ([`crate::escape`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    /// Why.
    pub kind: TrapKind,
    /// Wasm frames, innermost first.
    pub backtrace: Vec<FrameInfo>,
    /// Whether there were more wasm frames than the trap path records
    /// ([`MAX_TRAP_FRAMES`](super::entry::MAX_TRAP_FRAMES)): `backtrace`
    /// holds the innermost ones.
    pub cut: bool,
    /// For [`TrapKind::Host`]: why the host function stopped its caller.
    pub host: Option<HostTrap>,
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.message())?;
        for fr in &self.backtrace {
            write!(f, "\n  at func {}", fr.func_index)?;
            if let Some(n) = &fr.name {
                write!(f, " ({})", escape::name(n))?;
            }
            if let Some(o) = fr.wasm_offset {
                write!(f, " @ {o:#x}")?;
            }
        }
        if self.cut {
            write!(
                f,
                "\n  ... backtrace cut at {} frames",
                super::entry::MAX_TRAP_FRAMES
            )?;
        }
        Ok(())
    }
}

/// Why a call could not be made or did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The wasm code trapped.
    Trap(Trap),
    /// Arguments do not match the function's parameters.
    BadArguments,
    /// No CPU context (not called on a kernel CPU).
    NoCpu,
    /// The trampoline could not be built.
    Link(LinkError),
    /// The trampoline could not be compiled.
    Compile(CompileError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trap(t) => write!(f, "trap: {t}"),
            Self::BadArguments => f.write_str("arguments do not match the signature"),
            Self::NoCpu => f.write_str("not running on a kernel CPU"),
            Self::Link(e) => e.fmt(f),
            Self::Compile(e) => e.fmt(f),
        }
    }
}

/// Why instantiation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstantiateError {
    /// The module did not compile.
    Compile(CompileError),
    /// Its code could not be placed.
    Link(LinkError),
    /// An import was not provided.
    UnknownImport {
        /// Module name.
        module: String,
        /// Field name.
        name: String,
    },
    /// An import has the wrong type.
    IncompatibleImport {
        /// Module name.
        module: String,
        /// Field name.
        name: String,
    },
    /// Memory for a linear memory, table or context could not be had.
    Memory(MemError),
    /// A limit is above what the runtime supports.
    TooLarge,
    /// An element segment does not fit its table (the segments before it
    /// were written; the instance is kept in the store).
    ElementsOutOfBounds,
    /// A data segment does not fit its memory (the segments before it were
    /// written; the instance is kept in the store).
    DataOutOfBounds {
        /// The segment's index in the module's data section.
        segment: u32,
    },
    /// The start function trapped (the instance is kept in the store: its
    /// segments were written).
    Start(CallError),
}

impl From<TableError> for InstantiateError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::TooLarge => Self::TooLarge,
            TableError::Memory(e) => Self::Memory(MemError::Vm(e)),
        }
    }
}

impl fmt::Display for InstantiateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compile(e) => e.fmt(f),
            Self::Link(e) => e.fmt(f),
            Self::UnknownImport { module, name } => write!(
                f,
                "unknown import {}.{}",
                escape::name(module),
                escape::name(name)
            ),
            Self::IncompatibleImport { module, name } => write!(
                f,
                "incompatible import type for {}.{}",
                escape::name(module),
                escape::name(name)
            ),
            Self::Memory(e @ MemError::Vm(VmError::Placement(GapError::Exhausted))) => {
                write!(f, "kernel address space exhausted: {e}")
            }
            Self::Memory(e) => write!(f, "out of memory: {e}"),
            Self::TooLarge => f.write_str("limits too large"),
            Self::ElementsOutOfBounds => f.write_str("out of bounds table access"),
            Self::DataOutOfBounds { segment } => {
                write!(f, "out of bounds memory access (data segment {segment})")
            }
            Self::Start(e) => write!(f, "start function: {e}"),
        }
    }
}

/// `VMFuncRef` (VMOffsets: `code`, `vmctx`, `type_id`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct VMFuncRef {
    code: usize,
    vmctx: usize,
    type_id: u32,
}

/// `VMMemoryDefinition`.
#[repr(C)]
#[derive(Debug, Default)]
struct VMMemoryDefinition {
    base: usize,
    length: u64,
}

/// A linear memory as the host functions of its store see it: copies in
/// and out, each checked against the memory's current length.
///
/// INV-VM-7: a view is used only while the store it came from lives
/// ([`Store::memory_view`] is `unsafe` for that reason), and only by the
/// code running that store's wasm (a process is single-threaded), so the
/// length cannot shrink or move under a copy (memories never shrink).
#[derive(Clone, Copy, Debug)]
pub struct MemoryView {
    def: *const VMMemoryDefinition,
}

// SAFETY: the definition lives in the store (INV-VM-7); the view only
// reads it.
unsafe impl Send for MemoryView {}
// SAFETY: as for Send.
unsafe impl Sync for MemoryView {}

impl MemoryView {
    fn def(&self) -> &VMMemoryDefinition {
        // SAFETY: INV-VM-7: the store, and so the definition, lives.
        unsafe { &*self.def }
    }

    /// The memory's length in bytes.
    pub fn size(&self) -> u64 {
        self.def().length
    }

    /// The address range `[at, at + len)` if it lies inside the memory.
    fn span(&self, at: u64, len: usize) -> Option<usize> {
        let end = at.checked_add(len as u64)?;
        (end <= self.size()).then(|| self.def().base + at as usize)
    }

    /// Copy `buf.len()` bytes from offset `at`; `false` (nothing copied)
    /// when they do not all lie inside the memory.
    pub fn read(&self, at: u64, buf: &mut [u8]) -> bool {
        let Some(src) = self.span(at, buf.len()) else {
            return false;
        };
        // SAFETY: INV-VM-1: the span lies in the committed part; first
        // touches are demand faults the kernel resolves.
        unsafe { core::ptr::copy_nonoverlapping(src as *const u8, buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// Copy `data` to offset `at`; `false` (nothing written) when it does
    /// not fit inside the memory.
    pub fn write(&self, at: u64, data: &[u8]) -> bool {
        let Some(dst) = self.span(at, data.len()) else {
            return false;
        };
        // SAFETY: as for `read`; the memory is writable wherever committed.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst as *mut u8, data.len()) };
        true
    }
}

/// A host function's context: the thunk's `vmctx`.
#[repr(C)]
struct HostFunc<'a> {
    dispatch: usize,
    ty: FuncType,
    func: Box<TrappingHostFn<'a>>,
    /// The store's funcref ranges, to check returned references (INV-VM-6),
    /// and where a failing call leaves its reason.
    owner: *const FuncRefOwner,
}

/// Where a store's `VMFuncRef`s live: every instance's context and every
/// host function's funcref. INV-VM-6: a `funcref` reaches wasm code of a
/// store (argument, host-function result, host global) only if it lies in
/// one of these ranges, so a [`FuncAddr`] from another (maybe dropped)
/// store can never be called. It also holds the store's exception objects,
/// the other references only wasm makes.
struct FuncRefOwner {
    ranges: spin::Mutex<Vec<core::ops::Range<usize>>>,
    /// The reason of the last host function that failed, for the trap
    /// its caller takes.
    host_trap: spin::Mutex<Option<HostTrap>>,
    /// The store's exception objects (`exn`).
    exns: Exceptions,
    /// Who new exception objects are charged to (the store's memory
    /// owner).
    exn_owner: spin::Mutex<Owner>,
}

impl Default for FuncRefOwner {
    fn default() -> Self {
        Self {
            ranges: spin::Mutex::new(Vec::new()),
            host_trap: spin::Mutex::new(None),
            exns: Exceptions::default(),
            exn_owner: spin::Mutex::new(Owner::Kernel),
        }
    }
}

impl FuncRefOwner {
    fn add(&self, r: core::ops::Range<usize>) {
        self.ranges.lock().push(r);
    }

    /// Whether `v` may be handed to this store's wasm code.
    fn admits(&self, v: Val) -> bool {
        match v {
            Val::FuncRef(Some(f)) => self.ranges.lock().iter().any(|r| r.contains(&f.0.get())),
            _ => true,
        }
    }

    /// Whether `v` may be handed to this store's wasm code where a value
    /// of (canonical) type `t` is expected: [`Self::admits`], and a value
    /// of `t` (a null only where `t` is nullable; a function of a concrete
    /// type only if its canonical type id is that type).
    fn admits_as(&self, v: Val, t: ValType) -> bool {
        let ValType::Ref(r) = t else {
            return v.ty() == t;
        };
        match v {
            Val::FuncRef(None) => !r.is_extern() && r.nullable,
            Val::ExternRef(None) => r.is_extern() && r.nullable,
            Val::ExternRef(Some(_)) => r.is_extern(),
            Val::ExnRef(None) => r.is_exn() && r.nullable,
            Val::ExnRef(Some(e)) => r.is_exn() && self.exns.contains(e.0.get()),
            Val::FuncRef(Some(f)) => {
                if r.is_extern() || !self.admits(v) {
                    return false;
                }
                match r.heap {
                    HeapType::Concrete(id) => {
                        // SAFETY: `admits` found the address in one of this
                        // store's `VMFuncRef` ranges, which live as long as
                        // the store (INV-VM-2).
                        let fr = unsafe { (f.0.get() as *const VMFuncRef).read() };
                        fr.type_id == id
                    }
                    _ => true,
                }
            }
            _ => false,
        }
    }
}

/// A host function body.
pub type HostFn = dyn Fn(&[Val]) -> Vec<Val> + Send + Sync;

/// A host function body that may fail: the wasm caller then traps with
/// [`TrapKind::Host`] (the thunk checks the status `host_dispatch`
/// returns).
pub type TrappingHostFn<'a> = dyn Fn(&[Val]) -> Result<Vec<Val>, HostTrap> + Send + Sync + 'a;

/// Why a host function stopped its wasm caller, which traps with
/// [`TrapKind::Host`]; the reason comes back in [`Trap::host`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostTrap {
    /// The caller ends itself with this exit code (`exit`, `proc_exit`).
    Exit(i32),
    /// The caller was killed while in the call.
    Killed,
    /// The call failed and its caller cannot go on.
    Failed,
}

impl fmt::Display for HostTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exit(code) => write!(f, "exit with code {code}"),
            Self::Killed => f.write_str("killed"),
            Self::Failed => f.write_str("host function failed"),
        }
    }
}

impl core::error::Error for HostTrap {}

/// A typed host function's context ([`Store::host_func_typed`]): the
/// thunk's `vmctx`, its dispatcher first as in [`HostFunc`].
#[repr(C)]
struct TypedHost<F> {
    dispatch: usize,
    /// As [`HostFunc::owner`].
    owner: *const FuncRefOwner,
    func: F,
}

/// A host function body with at most one result, called with its
/// arguments in a slice on the caller's stack ([`Store::host_func_single`]):
/// no allocation per call. The system interfaces' functions are these.
pub type SingleHostFn<'a> = dyn Fn(&[Val]) -> Result<Option<Val>, HostTrap> + Send + Sync + 'a;

/// Most parameters of a [`Store::host_func_single`] function.
pub const MAX_SINGLE_PARAMS: usize = 16;

/// A single-result host function's context: the thunk's `vmctx`, its
/// dispatcher first as in [`HostFunc`].
#[repr(C)]
struct SingleHost<'a> {
    dispatch: usize,
    ty: FuncType,
    /// As [`HostFunc::owner`].
    owner: *const FuncRefOwner,
    func: Box<SingleHostFn<'a>>,
}

/// [`host_dispatch`] for a single-result host function: the arguments go
/// through an array on this stack, the result straight to its slot.
extern "C" fn single_dispatch(ctx: *const SingleHost<'_>, values: *mut u128) -> u32 {
    // SAFETY: the thunk passes its vmctx, a `SingleHost` the store keeps
    // alive (INV-VM-2), and a slot array of max(params, results, 1);
    // `host_func_single` made params at most MAX_SINGLE_PARAMS.
    let h = unsafe { &*ctx };
    let n = h.ty.params.len().max(h.ty.results.len()).max(1);
    // SAFETY: as above: `n` slots, 16-aligned, on the thunk's stack.
    let slots = unsafe { core::slice::from_raw_parts_mut(values, n) };
    let mut args = [Val::I32(0); MAX_SINGLE_PARAMS];
    for (a, (t, s)) in args.iter_mut().zip(h.ty.params.iter().zip(slots.iter())) {
        *a = Val::from_slot(*t, *s);
    }
    let params = h.ty.params.len().min(MAX_SINGLE_PARAMS);
    // SAFETY: the store that owns this host function owns `owner` too.
    let owner = unsafe { &*h.owner };
    match (h.func)(&args[..params]) {
        Ok(r) => {
            // A missing, mistyped or foreign result reads as zero (null),
            // as on the untyped path.
            if let Some(t) = h.ty.results.first() {
                slots[0] = match r {
                    Some(v) if owner.admits_as(v, *t) => v.to_slot(),
                    _ => 0,
                };
            }
            0
        }
        Err(why) => {
            *owner.host_trap.lock() = Some(why);
            1
        }
    }
}

/// Anything a store keeps alive for its code without using it itself.
trait Kept {}

impl<T> Kept for T {}

/// [`host_dispatch`] for a typed host function: the values go from the
/// thunk's slots to `func` and back without a heap allocation.
extern "C" fn typed_dispatch<A, R, F>(ctx: *const TypedHost<F>, values: *mut u128) -> u32
where
    A: WasmList,
    R: WasmList,
    F: Fn(A) -> Result<R, HostTrap>,
{
    // SAFETY: the thunk passes its vmctx, a `TypedHost<F>` the store keeps
    // alive (INV-VM-2), and a slot array of max(params, results, 1), which
    // `host_func_typed` made at most MAX_TYPED (typed INV-TYPED-1).
    let h = unsafe { &*ctx };
    let n = A::TYPES.len().max(R::TYPES.len()).max(1);
    // SAFETY: as above: `n` slots, 16-aligned, on the thunk's stack.
    let slots = unsafe { core::slice::from_raw_parts_mut(values, n) };
    let mut local = [0u128; MAX_TYPED];
    local[..n].copy_from_slice(slots);
    match (h.func)(A::read(&local)) {
        Ok(r) => {
            r.write(&mut local);
            slots.copy_from_slice(&local[..n]);
            0
        }
        Err(why) => {
            // SAFETY: the store that owns this host function owns `owner`.
            *unsafe { &*h.owner }.host_trap.lock() = Some(why);
            1
        }
    }
}

/// Returns 0 when the function returned, 1 when it failed (the thunk then
/// traps with [`TrapKind::Host`]).
extern "C" fn host_dispatch(ctx: *const HostFunc<'_>, values: *mut u128) -> u32 {
    // SAFETY: the thunk passes its vmctx, a `HostFunc` the store keeps
    // alive (INV-VM-2), and a slot array of max(params, results, 1).
    let hf = unsafe { &*ctx };
    let n = hf.ty.params.len().max(hf.ty.results.len()).max(1);
    // SAFETY: as above: `n` slots, 16-aligned, on the thunk's stack.
    let slots = unsafe { core::slice::from_raw_parts_mut(values, n) };
    let args: Vec<Val> = hf
        .ty
        .params
        .iter()
        .zip(slots.iter())
        .map(|(t, s)| Val::from_slot(*t, *s))
        .collect();
    // SAFETY: the store that owns this host function owns `owner` too.
    let owner = unsafe { &*hf.owner };
    let results = match (hf.func)(&args) {
        Ok(r) => r,
        Err(why) => {
            *owner.host_trap.lock() = Some(why);
            return 1;
        }
    };
    drop(args);
    // A missing, mistyped or foreign result reads as zero (null for a
    // reference), never as the argument bits left in its slot.
    for (i, (slot, t)) in slots.iter_mut().zip(&hf.ty.results).enumerate() {
        *slot = match results.get(i) {
            Some(r) if owner.admits_as(*r, *t) => r.to_slot(),
            _ => 0,
        };
    }
    0
}

/// A linear memory: a region of the kernel's address space holding 4 GiB
/// plus the bounds-check guard, whose first `length` bytes are committed
/// (demand-paged in 64 KiB granules, one wasm page each, so a granule costs
/// one host mapping on hosted). Everything past `length` is an uncommitted
/// hole: an access there faults, `mem` passes the fault on and the wasm trap
/// path turns it into an out-of-bounds trap.
///
/// INV-VM-1: `[base, base + length)` is committed read + write, the rest of
/// the region never is; `length` only grows, under `pages`; the base never
/// moves. The region comes from the kernel's pool and goes back to it when
/// the memory drops (`mem::pool`): the owner's charge is lifted, the
/// touched granules are decommitted or zeroed in place (INV-POOL-2), and
/// what no idle slot keeps returns to the frame allocator.
pub struct Memory<'k, 'h, P: Platform> {
    region: Pooled<'k, P>,
    /// Addressed with `i64` (memory64).
    memory64: bool,
    /// Shared (threads): `memory.atomic.wait` may wait on it.
    shared: bool,
    /// The declared maximum, or [`page_limit`] when none was declared.
    max_pages: u64,
    /// Pages the reservation holds: growth stops here even below
    /// `max_pages` (the spec lets `memory.grow` fail at any size).
    cap_pages: u64,
    pages: spin::Mutex<u64>,
    def: Box<VMMemoryDefinition>,
    _kernel: core::marker::PhantomData<&'k Kernel<'h, P>>,
}

impl<'k, 'h, P: Platform> Memory<'k, 'h, P> {
    fn new(
        kernel: &'k Kernel<'h, P>,
        ty: MemoryType,
        reserve: usize,
        owner: Owner,
    ) -> Result<Self, InstantiateError> {
        let len = reserve.next_multiple_of(WASM_PAGE as usize);
        // A 64-bit memory grows as far as its reservation too: the spec
        // lets `memory.grow` fail at any size.
        let cap_pages = (len as u64 / WASM_PAGE).min(MAX_PAGES);
        if ty.min_pages > cap_pages {
            return Err(InstantiateError::TooLarge);
        }
        let spec = RegionSpec {
            len,
            guard: WASM_PAGE as usize,
            granule: WASM_PAGE_ORDER,
            owner,
            ..RegionSpec::new(len)
        };
        let vm_err = |e| InstantiateError::Memory(MemError::Vm(e));
        let region = kernel.regions().take(kernel.vm(), &spec).map_err(vm_err)?;
        // A pooled region comes with its first granules committed: keep
        // what the memory starts with, give back the rest (INV-VM-1).
        let (kept, want) = (region.kept(), (ty.min_pages * WASM_PAGE) as usize);
        if kept > want {
            region
                .mapping()
                .decommit(want, kept - want)
                .map_err(vm_err)?;
        }
        let m = Self {
            def: Box::new(VMMemoryDefinition {
                base: region.mapping().range().start,
                length: 0,
            }),
            region,
            memory64: ty.memory64,
            shared: ty.shared,
            max_pages: ty
                .max_pages
                .unwrap_or(page_limit(ty.memory64))
                .min(page_limit(ty.memory64)),
            cap_pages,
            pages: spin::Mutex::new(0),
            _kernel: core::marker::PhantomData,
        };
        let mut pages = m.pages.lock();
        let ready = (kept.min(want) as u64) / WASM_PAGE;
        *pages = ready;
        m.commit_locked(&mut pages, ty.min_pages - ready)
            .map_err(vm_err)?;
        drop(pages);
        Ok(m)
    }

    fn def_ptr(&self) -> *mut VMMemoryDefinition {
        core::ptr::from_ref(&*self.def).cast_mut()
    }

    /// Current size in pages.
    pub fn pages(&self) -> u64 {
        *self.pages.lock()
    }

    /// Bytes of the memory's reservation in the kernel window: 4 GiB plus
    /// the bounds-check guard, or what [`Store::bound_memories`] gave.
    pub fn reserved(&self) -> usize {
        self.region.mapping().range().len
    }

    /// The memory's base address.
    pub fn base(&self) -> usize {
        self.region.mapping().range().start
    }

    /// Grow by `delta` pages; the old size, or `None` past the maximum or
    /// when the owner's limit or the frames run out (`memory.grow` returns
    /// -1 then).
    pub fn grow(&self, delta: u64) -> Option<u64> {
        self.grow_inner(delta)
    }

    fn grow_inner(&self, delta: u64) -> Option<u64> {
        let mut pages = self.pages.lock();
        let old = *pages;
        if old.checked_add(delta)? > self.max_pages.min(self.cap_pages) {
            return None;
        }
        self.commit_locked(&mut pages, delta).ok()?;
        Some(old)
    }

    /// Commit `delta` more pages after the current length `pages` (the
    /// caller holds the `pages` lock).
    fn commit_locked(&self, pages: &mut u64, delta: u64) -> Result<(), VmError> {
        let old = *pages;
        if delta > 0 {
            let (offset, len) = ((old * WASM_PAGE) as usize, (delta * WASM_PAGE) as usize);
            self.region
                .mapping()
                .commit(offset, len, Perms::READ_WRITE, Commit::Demand)?;
        }
        *pages = old + delta;
        // SAFETY: written under `pages`; JIT code reads it (INV-VM-2).
        unsafe { (*self.def_ptr()).length = *pages * WASM_PAGE };
        Ok(())
    }

    /// Copy `buf.len()` bytes from byte `offset`, bounds checked; `false`
    /// (nothing copied) when they do not all lie inside the memory.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> bool {
        let pages = self.pages.lock();
        let Some(end) = offset.checked_add(buf.len() as u64) else {
            return false;
        };
        if end > *pages * WASM_PAGE {
            return false;
        }
        // SAFETY: INV-VM-1: `[base, base + length)` is committed read +
        // write; first touches are demand faults the kernel resolves.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (self.base() + offset as usize) as *const u8,
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
        true
    }

    /// Copy `data` to byte `offset`, bounds checked.
    pub fn write(&self, offset: u64, data: &[u8]) -> bool {
        let pages = self.pages.lock();
        let Some(end) = offset.checked_add(data.len() as u64) else {
            return false;
        };
        if end > *pages * WASM_PAGE {
            return false;
        }
        // SAFETY: INV-VM-1: `[base, base + length)` is committed read +
        // write; first touches are demand faults the kernel resolves.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (self.base() + offset as usize) as *mut u8,
                data.len(),
            );
        }
        true
    }
}

/// A function: a pointer to its `VMFuncRef` and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Func {
    funcref: usize,
    ty: FuncType,
}

impl Func {
    /// Its signature.
    pub fn ty(&self) -> &FuncType {
        &self.ty
    }
}

/// A function of one store with a signature known at compile time
/// ([`Store::typed`]): calls through it ([`Store::call_typed`]) allocate
/// nothing.
pub struct TypedFunc<P, R> {
    funcref: usize,
    tramp: usize,
    /// The store it belongs to ([`Store::call_typed`] checks it).
    store: usize,
    _types: core::marker::PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        Self {
            funcref: self.funcref,
            tramp: self.tramp,
            store: self.store,
            _types: core::marker::PhantomData,
        }
    }
}

/// A global: its 16-byte slot and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    slot: usize,
    ty: GlobalType,
}

impl Global {
    /// Its type.
    pub fn ty(&self) -> GlobalType {
        self.ty
    }
}

/// Something an instance exports or imports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extern {
    /// A function.
    Func(Func),
    /// A global.
    Global(Global),
    /// A memory, by store index.
    Memory(usize),
    /// A table, by store index.
    Table(usize),
    /// An exception tag.
    Tag(Tag),
}

/// An exception tag of a store: its identity and the (canonical) type of
/// the values its exceptions carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    identity: usize,
    type_id: u32,
    ty: FuncType,
}

impl Tag {
    /// Its type (parameters only).
    pub fn ty(&self) -> &FuncType {
        &self.ty
    }
}

/// What the builtins find through the context header.
struct InstanceData {
    /// `Memory<P>` of each memory index (for `memory.grow`).
    memories: Vec<*const ()>,
    /// `VMMemoryDefinition` of each memory index.
    mem_defs: Vec<*const VMMemoryDefinition>,
    /// Table of each table index.
    tables: Vec<*const Table<'static>>,
    /// Each element segment's evaluated references; empty once dropped
    /// (active and declared segments are dropped at instantiation).
    elems: spin::Mutex<Vec<Vec<usize>>>,
    /// Each data segment's bytes; empty once dropped.
    data: spin::Mutex<Vec<Vec<u8>>>,
    grow: unsafe fn(memory: *const (), delta: u64) -> u64,
    /// The store's interrupt cell (interrupt INV-INT-1), its lifetime
    /// erased (the store outlives its instances).
    interrupt: *const (),
    /// The store's reference owner (its exception objects).
    refs: *const FuncRefOwner,
    /// The store's kernel, its type erased, for `hold` and `unwind`.
    kernel: *const (),
    /// Hold frames from an owner (`Vm::hold` of the kernel's platform).
    hold: unsafe fn(kernel: *const (), owner: Owner, frames: u64) -> bool,
    /// [`exn::unwind`] for the kernel's platform.
    unwind: unsafe fn(kernel: *const (), exn: usize, fp: usize) -> exn::Resume,
    /// Whether each memory (by index) is shared.
    shared: Vec<bool>,
    /// The kernel's clock and wait queues, for the kernel's platform.
    now: unsafe fn(kernel: *const ()) -> core::time::Duration,
    futexes: unsafe fn(kernel: *const ()) -> *const Futexes,
}

impl InstanceData {
    /// # Safety
    /// `vmctx` is the context of a live instance whose header points at its
    /// `InstanceData` (INV-VM-2).
    unsafe fn of<'a>(vmctx: usize) -> &'a InstanceData {
        // SAFETY: the caller's contract: the header word precedes vmctx.
        unsafe { &*((vmctx - 16) as *const *const InstanceData).read() }
    }

    /// `(base, length)` of memory `index`.
    fn memory(&self, index: u32) -> Option<(usize, u64)> {
        let d = *self.mem_defs.get(index as usize)?;
        // SAFETY: INV-VM-2: the definition lives in the store.
        let d = unsafe { &*d };
        Some((d.base, d.length))
    }

    fn table(&self, index: u32) -> Option<&Table<'static>> {
        let t = *self.tables.get(index as usize)?;
        // SAFETY: INV-VM-2: the table is boxed in the store.
        Some(unsafe { &*t })
    }
}

/// `[at, at + len)` lies within `size`.
fn in_bounds(at: u32, len: u32, size: u64) -> bool {
    u64::from(at) + u64::from(len) <= size
}

/// [`in_bounds`] for `u64` operands (a memory's addresses and lengths;
/// 64-bit memories use the whole range, so the sum may overflow).
fn in_bounds64(at: u64, len: u64, size: u64) -> bool {
    at.checked_add(len).is_some_and(|end| end <= size)
}

/// An instance: its context and exports. Owned by the store.
pub struct Instance {
    vmctx: Box<[u128]>,
    /// Read by the builtins through the context header; by Rust only to
    /// record the segments at instantiation.
    data: Box<InstanceData>,
    exports: Vec<(String, Extern)>,
    offsets: VMOffsets,
}

impl Instance {
    fn vmctx(&self) -> usize {
        self.vmctx.as_ptr() as usize + 16
    }
}

/// Handle to an instance of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceId(usize);

/// A source of precompiled modules: the artifact kept under a key, if any
/// ([`Store::set_precompiled`]).
pub type Precompiled<'k> = dyn Fn(&[u8; 32]) -> Option<Vec<u8>> + Send + Sync + 'k;

/// A store: compiler, instances and everything they own.
#[expect(
    clippy::vec_box,
    reason = "INV-VM-2: JIT code holds pointers into these; boxes keep them in place when the Vec grows"
)]
pub struct Store<'k, 'h, P: Platform> {
    kernel: &'k Kernel<'h, P>,
    compiler: Compiler,
    config: TranslateConfig,
    /// Bytes each memory reserves when bounded ([`Store::bound_memories`]).
    memory_reserve: Option<usize>,
    stack_budget: usize,
    /// Who pays for the frames of the memories this store creates.
    memory_owner: Owner,
    /// The preemption cell every instance's context points at.
    interrupt: Arc<Interrupt<'k>>,
    /// Every canonical type, by id, its references by id (INV-VM-3).
    types: Vec<FuncType>,
    /// The id of the first type of every recursion group, by the group's
    /// canonical form (module INV-5).
    groups: BTreeMap<Vec<FuncType>, u32>,
    builtins: Box<[usize; Builtin::COUNT as usize]>,
    instances: Vec<Instance>,
    memories: Vec<Box<Memory<'k, 'h, P>>>,
    tables: Vec<Box<Table<'k>>>,
    host_funcs: Vec<Box<HostFunc<'k>>>,
    /// Typed host functions' contexts ([`TypedHost`]).
    typed_hosts: Vec<Box<dyn Kept + 'k>>,
    host_funcrefs: Vec<Box<VMFuncRef>>,
    /// Every exception tag defined by an instance: its canonical type id;
    /// the box's address is the tag's identity.
    tags: Vec<Box<u32>>,
    host_globals: Vec<Box<u128>>,
    owner: Box<FuncRefOwner>,
    trampolines: Vec<(FuncType, usize)>,
    thunks: Vec<(FuncType, usize)>,
    code: Vec<CodeObject<'k, 'h, P>>,
    fctx: FunctionBuilderContext,
    /// What debuggers and profilers call the code this store links.
    module_name: String,
    /// Where precompiled modules may be found besides the platform's cache
    /// (the boot image's `/lib/code`: [`Store::set_precompiled`]).
    precompiled: Option<Box<Precompiled<'k>>>,
    /// Frames held, per owner, for what its modules and instances keep
    /// (`retained`); given back when the store is dropped.
    retained: spin::Mutex<Vec<(Owner, u64)>>,
}

// The builtins (see `builtins`). Each is called by JIT code with the
// caller's `vmctx`, the context of a live instance whose header points at
// its `InstanceData` (INV-VM-2): that is the safety contract of every one.
// A failing builtin returns 1 having changed nothing (builtins INV-3).

/// # Safety
/// See above.
unsafe extern "C" fn memory_grow_builtin(vmctx: usize, delta: u64, index: u32) -> u64 {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    let Some(&m) = data.memories.get(index as usize) else {
        return u64::MAX;
    };
    // SAFETY: INV-VM-2: `m` is a boxed memory of the instance's store.
    unsafe { (data.grow)(m, delta) }
}

/// # Safety
/// See above.
unsafe extern "C" fn memory_copy_builtin(
    vmctx: usize,
    dst_mem: u32,
    dst: u64,
    src_mem: u32,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    let (Some((db, dl)), Some((sb, sl))) = (data.memory(dst_mem), data.memory(src_mem)) else {
        return 1;
    };
    if !in_bounds64(dst, len, dl) || !in_bounds64(src, len, sl) {
        return 1;
    }
    // SAFETY: INV-VM-1: both ranges lie in the mapped part of their
    // memories; `copy` allows overlap.
    unsafe {
        core::ptr::copy(
            (sb + src as usize) as *const u8,
            (db + dst as usize) as *mut u8,
            len as usize,
        );
    }
    0
}

/// # Safety
/// See above.
unsafe extern "C" fn memory_fill_builtin(
    vmctx: usize,
    mem: u32,
    dst: u64,
    value: u32,
    len: u64,
) -> u32 {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    let Some((base, size)) = data.memory(mem) else {
        return 1;
    };
    if !in_bounds64(dst, len, size) {
        return 1;
    }
    // SAFETY: INV-VM-1: the range lies in the mapped part of the memory.
    unsafe { core::ptr::write_bytes((base + dst as usize) as *mut u8, value as u8, len as usize) };
    0
}

/// # Safety
/// See above.
unsafe extern "C" fn memory_init_builtin(
    vmctx: usize,
    mem: u32,
    segment: u32,
    dst: u64,
    src: u32,
    len: u32,
) -> u32 {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    let Some((base, size)) = data.memory(mem) else {
        return 1;
    };
    let segs = data.data.lock();
    let Some(seg) = segs.get(segment as usize) else {
        return 1;
    };
    if !in_bounds64(dst, u64::from(len), size) || !in_bounds(src, len, seg.len() as u64) {
        return 1;
    }
    // SAFETY: INV-VM-1: the destination lies in the mapped part of the
    // memory; the source is in the segment; they do not overlap.
    unsafe {
        core::ptr::copy_nonoverlapping(
            seg.as_ptr().add(src as usize),
            (base + dst as usize) as *mut u8,
            len as usize,
        );
    }
    0
}

/// # Safety
/// See above.
unsafe extern "C" fn data_drop_builtin(vmctx: usize, segment: u32) {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    if let Some(seg) = data.data.lock().get_mut(segment as usize) {
        *seg = Vec::new();
    }
}

/// # Safety
/// See above.
unsafe extern "C" fn table_grow_builtin(vmctx: usize, table: u32, init: usize, delta: u32) -> u32 {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    data.table(table)
        .and_then(|t| t.grow(delta, init).ok())
        .unwrap_or(u32::MAX)
}

/// # Safety
/// See above.
unsafe extern "C" fn table_fill_builtin(
    vmctx: usize,
    table: u32,
    dst: u32,
    value: usize,
    len: u32,
) -> u32 {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    let ok = data.table(table).is_some_and(|t| t.fill(dst, value, len));
    u32::from(!ok)
}

/// # Safety
/// See above.
unsafe extern "C" fn table_copy_builtin(
    vmctx: usize,
    dst_table: u32,
    src_table: u32,
    dst: u32,
    src: u32,
    len: u32,
) -> u32 {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    let (Some(d), Some(s)) = (data.table(dst_table), data.table(src_table)) else {
        return 1;
    };
    u32::from(!d.copy_from(dst, s, src, len))
}

/// # Safety
/// See above.
unsafe extern "C" fn table_init_builtin(
    vmctx: usize,
    table: u32,
    segment: u32,
    dst: u32,
    src: u32,
    len: u32,
) -> u32 {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    let segs = data.elems.lock();
    let (Some(t), Some(seg)) = (data.table(table), segs.get(segment as usize)) else {
        return 1;
    };
    let Some(from) = seg.get(src as usize..src as usize + len as usize) else {
        return 1;
    };
    u32::from(!t.write(dst, from))
}

/// # Safety
/// See above.
unsafe extern "C" fn elem_drop_builtin(vmctx: usize, segment: u32) {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    if let Some(seg) = data.elems.lock().get_mut(segment as usize) {
        *seg = Vec::new();
    }
}

/// # Safety
/// See above.
unsafe extern "C" fn epoch_builtin(vmctx: usize) -> u32 {
    // SAFETY: the builtin contract; the cell lives as long as the store
    // (interrupt INV-INT-1).
    let cell = unsafe { &*InstanceData::of(vmctx).interrupt.cast::<Interrupt<'_>>() };
    u32::from(cell.check() == HookAction::Interrupt)
}

/// The Rust half of [`Builtin::EpochSaving`]: [`epoch_builtin`] with the
/// verdict in the cell's status word. On x86_64 JIT code reaches it only
/// through the register-saving stub (`arch`, `vessel_epoch_saving`).
///
/// # Safety
/// As for every builtin: `vmctx` is the caller's live `VMContext`.
pub(crate) unsafe extern "C" fn epoch_saving_builtin(vmctx: usize) {
    // SAFETY: as in `epoch_builtin`.
    let cell = unsafe { &*InstanceData::of(vmctx).interrupt.cast::<Interrupt<'_>>() };
    cell.check_to_status();
}

/// The builtin table (builtins INV-1): slot `b.index()` holds `b`'s
/// address, with the signature `b.signature()` documents.
fn builtin_table() -> Box<[usize; Builtin::COUNT as usize]> {
    Box::new(Builtin::ALL.map(|b| match b {
        Builtin::MemoryGrow => memory_grow_builtin as *const () as usize,
        Builtin::MemoryCopy => memory_copy_builtin as *const () as usize,
        Builtin::MemoryFill => memory_fill_builtin as *const () as usize,
        Builtin::MemoryInit => memory_init_builtin as *const () as usize,
        Builtin::DataDrop => data_drop_builtin as *const () as usize,
        Builtin::TableGrow => table_grow_builtin as *const () as usize,
        Builtin::TableFill => table_fill_builtin as *const () as usize,
        Builtin::TableCopy => table_copy_builtin as *const () as usize,
        Builtin::TableInit => table_init_builtin as *const () as usize,
        Builtin::ElemDrop => elem_drop_builtin as *const () as usize,
        Builtin::Epoch => epoch_builtin as *const () as usize,
        Builtin::EpochSaving => crate::arch::epoch_saving_entry(),
        Builtin::ExnNew => exn_new_builtin as *const () as usize,
        Builtin::Throw => throw_builtin as *const () as usize,
        Builtin::ExnDrop => exn_drop_builtin as *const () as usize,
        Builtin::AtomicWait => atomic_wait_builtin as *const () as usize,
        Builtin::AtomicNotify => atomic_notify_builtin as *const () as usize,
    }))
}

/// # Safety
/// See above.
unsafe extern "C" fn exn_new_builtin(vmctx: usize, identity: usize, count: u32) -> usize {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    // SAFETY: INV-VM-2: the reference owner lives as long as the store.
    let refs = unsafe { &*data.refs };
    let owner = *refs.exn_owner.lock();
    let hold = |owner, frames| {
        // SAFETY: `kernel` is the store's kernel, which outlives it.
        unsafe { (data.hold)(data.kernel, owner, frames) }
    };
    refs.exns
        .alloc(identity, count as usize, owner, hold)
        .unwrap_or(0)
}

/// # Safety
/// See above.
unsafe extern "C" fn exn_drop_builtin(vmctx: usize, exn: usize) {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    // SAFETY: INV-VM-2: the reference owner lives as long as the store.
    unsafe { &*data.refs }.exns.free_unexposed(exn);
}

/// # Safety
/// See above; `fp` is the calling wasm frame's frame pointer and `exn` an
/// exception object of the store (translate `exceptions`).
unsafe extern "C" fn throw_builtin(vmctx: usize, exn: usize, fp: usize) {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    // SAFETY: `kernel` is the store's kernel and this CPU runs its wasm.
    let [pc, sp, fp, payload] = unsafe { (data.unwind)(data.kernel, exn, fp) };
    // SAFETY: `unwind` returned a handler of a live frame on this stack, or
    // this CPU's entry context; this frame holds nothing to drop.
    unsafe { crate::arch::resume(pc, sp, fp, payload) }
}

/// # Safety
/// See above; `addr` is the host address of an aligned, in-bounds cell of
/// `mem` (translate `atomics` INV-ATOMIC-3).
unsafe extern "C" fn atomic_wait_builtin(
    vmctx: usize,
    mem: u32,
    addr: usize,
    expected: u64,
    timeout: i64,
    wide: u32,
) -> u32 {
    use crate::wasm::translate::atomics::wait_status as st;
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    if !data.shared.get(mem as usize).copied().unwrap_or(false) {
        return st::UNSHARED;
    }
    // SAFETY: `kernel` is the store's kernel, which outlives it.
    let futexes = unsafe { &*(data.futexes)(data.kernel) };
    let holds = || {
        // SAFETY: the JIT checked the cell's bounds and alignment; the
        // memory outlives this call (INV-VM-2).
        unsafe {
            if wide != 0 {
                (*(addr as *const core::sync::atomic::AtomicU64)).load(Ordering::SeqCst) == expected
            } else {
                u64::from((*(addr as *const core::sync::atomic::AtomicU32)).load(Ordering::SeqCst))
                    == expected & 0xffff_ffff
            }
        }
    };
    let Some(waiter) = futexes.enqueue(addr, holds) else {
        return st::NOT_EQUAL;
    };
    let limit = u64::try_from(timeout)
        .ok()
        .map(core::time::Duration::from_nanos);
    // SAFETY: the cell lives as long as the store (interrupt INV-INT-1).
    let cell = unsafe { &*data.interrupt.cast::<Interrupt<'_>>() };
    let end = match cell.wait_hook() {
        Some(hook) => hook(waiter.clone().wait(), limit),
        None => {
            // No process to suspend: poll the waiter, the clock and the
            // store's interrupt hook (a kill).
            // SAFETY: as above.
            let start = unsafe { (data.now)(data.kernel) };
            loop {
                if waiter.woken() {
                    break WaitEnd::Woken;
                }
                // SAFETY: as above.
                let now = unsafe { (data.now)(data.kernel) };
                if limit.is_some_and(|l| now.saturating_sub(start) >= l) {
                    break WaitEnd::TimedOut;
                }
                if cell.is_due() && cell.check() == HookAction::Interrupt {
                    break WaitEnd::Killed;
                }
                core::hint::spin_loop();
            }
        }
    };
    // A notify that took the waiter first makes it a wake-up whatever
    // ended the wait (futex INV-FUTEX-2).
    if end == WaitEnd::Woken || !futexes.cancel(addr, &waiter) {
        return st::OK;
    }
    match end {
        WaitEnd::Killed => st::INTERRUPTED,
        _ => st::TIMED_OUT,
    }
}

/// # Safety
/// As [`atomic_wait_builtin`].
unsafe extern "C" fn atomic_notify_builtin(vmctx: usize, mem: u32, addr: usize, count: u32) -> u32 {
    // SAFETY: the builtin contract.
    let data = unsafe { InstanceData::of(vmctx) };
    // An unshared memory has no waiters.
    if !data.shared.get(mem as usize).copied().unwrap_or(false) {
        return 0;
    }
    // SAFETY: `kernel` is the store's kernel, which outlives it.
    unsafe { &*(data.futexes)(data.kernel) }.notify(addr, count)
}

/// # Safety
/// `kernel` points at a live `Kernel<P>`.
unsafe fn kernel_now<P: Platform>(kernel: *const ()) -> core::time::Duration {
    // SAFETY: the caller's contract.
    unsafe { &*kernel.cast::<Kernel<'_, P>>() }.hal().now()
}

/// # Safety
/// `kernel` points at a live `Kernel<P>`.
unsafe fn kernel_futexes<P: Platform>(kernel: *const ()) -> *const Futexes {
    // SAFETY: the caller's contract.
    unsafe { &*kernel.cast::<Kernel<'_, P>>() }.futexes()
}

/// # Safety
/// `kernel` points at a live `Kernel<P>`.
unsafe fn hold_frames<P: Platform>(kernel: *const (), owner: Owner, frames: u64) -> bool {
    // SAFETY: the caller's contract.
    let kernel = unsafe { &*kernel.cast::<Kernel<'_, P>>() };
    kernel.vm().hold(owner, frames).is_ok()
}

/// # Safety
/// `memory` points at a live `Memory<P>`.
unsafe fn grow_memory<P: Platform>(memory: *const (), delta: u64) -> u64 {
    // SAFETY: the caller's contract.
    let m = unsafe { &*memory.cast::<Memory<'_, '_, P>>() };
    m.grow(delta).unwrap_or(u64::MAX)
}

/// Compilation memory charged to a store's memory owner (budget
/// INV-BUDGET-1), in whole frames; compilation runs the store's preemption
/// check as its code would.
struct OwnerBudget<'a, 'k, P: Platform> {
    vm: crate::mem::Vm<'k, P>,
    owner: Owner,
    interrupt: &'a Interrupt<'k>,
}

impl<P: Platform> Budget for OwnerBudget<'_, '_, P> {
    fn hold(&mut self, bytes: u64) -> bool {
        self.vm
            .hold(self.owner, bytes.div_ceil(PAGE_SIZE as u64))
            .is_ok()
    }

    fn release(&mut self, bytes: u64) {
        self.vm.unhold(self.owner, bytes.div_ceil(PAGE_SIZE as u64));
    }

    fn proceed(&mut self) -> bool {
        let cell = self.interrupt;
        cell.epoch() < cell.deadline() || cell.check() == HookAction::Continue
    }
}

fn limits_match(min: u64, max: Option<u64>, want_min: u64, want_max: Option<u64>) -> bool {
    min >= want_min
        && match want_max {
            None => true,
            Some(wm) => max.is_some_and(|m| m <= wm),
        }
}

impl<'k, 'h, P: Platform> Store<'k, 'h, P> {
    /// Whether this store's later `compile` calls accept modules with
    /// several memories (multi-memory, part of WebAssembly 3.0; on by
    /// default). WebAssembly 2.0 refuses them, and its spec scripts assert
    /// that, so their runners turn it off.
    pub fn set_multi_memory(&mut self, on: bool) {
        self.config.multi_memory = on;
    }

    /// Whether this store's later `compile` calls accept 64-bit memories
    /// (memory64, part of WebAssembly 3.0; on by default). The
    /// WebAssembly 1.0 and 2.0 binary scripts assert that their limits
    /// flags are malformed, so their runners turn it off.
    pub fn set_memory64(&mut self, on: bool) {
        self.config.memory64 = on;
    }

    /// Whether this store's later `compile` calls accept reference types
    /// and the proposals built on them (on by default;
    /// [`TranslateConfig::reference_types`]).
    pub fn set_reference_types(&mut self, on: bool) {
        self.config.reference_types = on;
    }

    /// Give every linear memory of this store a reservation of only
    /// `reserve` bytes (rounded up to a wasm page) instead of 4 GiB plus
    /// guard, and check every access explicitly; `memory.grow` fails past
    /// the reservation. For kernels whose window cannot hold many 4 GiB
    /// reservations (riscv's Sv39 window is 64 GiB; its Sv48 one, 64 TiB,
    /// does not need this). Call it before the
    /// first `compile`: modules compiled earlier keep guard-page checks.
    pub fn bound_memories(&mut self, reserve: usize) {
        self.config.force_bounds_checks = true;
        self.memory_reserve = Some(reserve.max(WASM_PAGE as usize));
    }

    /// Bytes a new memory reserves (INV-VM-1).
    fn memory_reserve(&self) -> Result<usize, InstantiateError> {
        if let Some(r) = self.memory_reserve {
            return Ok(r);
        }
        let guard =
            usize::try_from(self.config.guard_bytes).map_err(|_| InstantiateError::TooLarge)?;
        (4usize << 30)
            .checked_add(guard.next_multiple_of(WASM_PAGE as usize))
            .ok_or(InstantiateError::TooLarge)
    }

    /// Name the code this store links from now on (instances, trampolines,
    /// host thunks): its symbols in debuggers and profilers are
    /// `<name>!<function>` (`code` INV-CODE-4). [`DEFAULT_MODULE_NAME`]
    /// until this is called; code linked earlier keeps its name. Call it
    /// before `instantiate`: code is linked there, not in `compile`.
    pub fn set_module_name(&mut self, name: &str) {
        self.module_name = String::from(name);
    }

    /// Look for a precompiled module in `source` (the artifact kept under
    /// a key, `wasm::artifact::key`) before compiling one, ahead of the
    /// platform's cache; an entry that does not pass every check is
    /// compiled instead (`artifact` INV-ART-1).
    pub fn set_precompiled(&mut self, source: Box<Precompiled<'k>>) {
        self.precompiled = Some(source);
    }

    /// The name [`Store::set_module_name`] last set.
    pub fn module_name(&self) -> &str {
        &self.module_name
    }

    /// A store on `kernel` compiling for the host ISA. Wasm may use up to
    /// `stack_budget` bytes of the calling stack before it traps with
    /// `StackOverflow`.
    ///
    /// # Errors
    /// [`CompileError::Isa`] when the host ISA is not supported.
    pub fn new(kernel: &'k Kernel<'h, P>, stack_budget: usize) -> Result<Self, CompileError> {
        Ok(Self {
            kernel,
            compiler: kernel.host_compiler()?,
            config: TranslateConfig::default(),
            memory_reserve: None,
            stack_budget,
            memory_owner: Owner::Kernel,
            // SAFETY: the kernel's epoch outlives the store, which borrows
            // the kernel (INV-INT-1).
            interrupt: Arc::new(unsafe { Interrupt::new(kernel.epoch_word()) }),
            types: Vec::new(),
            groups: BTreeMap::new(),
            builtins: builtin_table(),
            instances: Vec::new(),
            memories: Vec::new(),
            tables: Vec::new(),
            host_funcs: Vec::new(),
            typed_hosts: Vec::new(),
            host_funcrefs: Vec::new(),
            host_globals: Vec::new(),
            owner: Box::default(),
            tags: Vec::new(),
            trampolines: Vec::new(),
            thunks: Vec::new(),
            code: Vec::new(),
            fctx: FunctionBuilderContext::new(),
            module_name: String::from(DEFAULT_MODULE_NAME),
            precompiled: None,
            retained: spin::Mutex::new(Vec::new()),
        })
    }

    /// Record `frames` held from `owner` until the store is dropped.
    fn retain(&self, owner: Owner, frames: u64) {
        let mut held = self.retained.lock();
        match held.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, n)) => *n += frames,
            None => held.push((owner, frames)),
        }
    }

    /// The id of the first type of recursion group `group` (its canonical
    /// form, module INV-5), interned now if no instance had it.
    fn group_id(&mut self, group: Vec<FuncType>) -> u32 {
        if let Some(&first) = self.groups.get(&group) {
            return first;
        }
        let first = module::len_u32(self.types.len());
        self.types.extend(group.iter().map(|t| t.resolve(first)));
        self.groups.insert(group, first);
        first
    }

    /// The id of a lone type (a host function's).
    fn type_id(&mut self, ty: &FuncType) -> u32 {
        self.group_id(vec![ty.clone()])
    }

    /// The store-wide id of every type of `info` (INV-VM-3).
    fn type_ids(&mut self, info: &ModuleInfo) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::with_capacity(info.types.len());
        for (start, n) in info.groups() {
            let group = info.types[start..start + n]
                .iter()
                .map(|t| t.canonical(&ids))
                .collect();
            let first = self.group_id(group);
            ids.extend((0..module::len_u32(n)).map(|k| first + k));
        }
        ids
    }

    /// The address of the shared stub of `kind` for `ty`, compiled and
    /// linked only when no store of this kernel holds one (stubs
    /// INV-STUB-1); this store holds it from now on.
    fn stub(&mut self, kind: StubKind, ty: &FuncType) -> Result<usize, CallError> {
        let stubs = self.kernel.stubs();
        let shared = stubs
            .get(kind, ty)
            .and_then(|c| CodeObject::share(self.kernel, c));
        let obj = match shared {
            Some(obj) => obj,
            None => {
                let (f, label) = match kind {
                    StubKind::Trampoline => (
                        self.compiler.compile_trampoline(ty, &mut self.fctx),
                        "trampoline",
                    ),
                    StubKind::HostThunk => (
                        self.compiler.compile_host_thunk(ty, &mut self.fctx),
                        "host-thunk",
                    ),
                };
                let f = f.map_err(CallError::Compile)?;
                let obj = CodeObject::link(
                    self.kernel,
                    &[LinkInput {
                        function: &f,
                        index: None,
                        label,
                    }],
                    BTreeMap::new(),
                    &self.module_name,
                )
                .map_err(CallError::Link)?;
                // Another store may have linked one meanwhile: use the
                // first, so one stays per signature.
                match obj.linked().map(|c| stubs.offer(kind, ty, c)) {
                    Some(kept) => CodeObject::share(self.kernel, kept).unwrap_or(obj),
                    None => obj,
                }
            }
        };
        let addr = obj
            .func_addr(0)
            .ok_or(CallError::Link(LinkError::BadReloc))?;
        self.code.push(obj);
        Ok(addr)
    }

    /// The array-call trampoline for signature `ty` (keyed by its erased
    /// signature: code depends on representation only).
    fn trampoline(&mut self, ty: &FuncType) -> Result<usize, CallError> {
        let ty = &ty.erased();
        if let Some((_, a)) = self.trampolines.iter().find(|(t, _)| t == ty) {
            return Ok(*a);
        }
        let a = self.stub(StubKind::Trampoline, ty)?;
        self.trampolines.push((ty.clone(), a));
        Ok(a)
    }

    /// The code of `module` (its functions, then its trampolines) for this
    /// store: the object another store of this kernel linked, when one
    /// still holds it, else linked now (code INV-CODE-5). The module's
    /// lock makes the link single-flight.
    fn module_code(
        &self,
        module: &CompiledModule,
    ) -> Result<Option<CodeObject<'k, 'h, P>>, LinkError> {
        if module.functions.is_empty() && module.trampolines.is_empty() {
            return Ok(None);
        }
        let mut slot = module.linked.lock();
        if let Some(obj) = slot
            .upgrade()
            .and_then(|c| CodeObject::share(self.kernel, c))
        {
            return Ok(Some(obj));
        }
        let info = &module.info;
        let inputs: Vec<LinkInput<'_>> = module
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| LinkInput {
                function: f,
                index: Some(info.num_imported_funcs + i as u32),
                label: "",
            })
            .chain(module.trampolines.iter().map(|t| LinkInput {
                function: &t.function,
                index: None,
                label: "trampoline",
            }))
            .collect();
        let obj = CodeObject::link(
            self.kernel,
            &inputs,
            info.func_names.clone(),
            &self.module_name,
        )?;
        if let Some(c) = obj.linked() {
            *slot = Arc::downgrade(c);
        }
        Ok(Some(obj))
    }

    /// A host function of type `ty` that runs `f`.
    ///
    /// # Errors
    /// When its thunk cannot be compiled or placed.
    pub fn host_func(
        &mut self,
        ty: FuncType,
        f: impl Fn(&[Val]) -> Vec<Val> + Send + Sync + 'k,
    ) -> Result<Func, CallError> {
        self.host_func_trapping(ty, move |args| Ok(f(args)))
    }

    /// A host function of type `ty` that runs `f`; when `f` fails, its
    /// wasm caller traps with [`TrapKind::Host`].
    ///
    /// # Errors
    /// When its thunk cannot be compiled or placed.
    pub fn host_func_trapping(
        &mut self,
        ty: FuncType,
        f: impl Fn(&[Val]) -> Result<Vec<Val>, HostTrap> + Send + Sync + 'k,
    ) -> Result<Func, CallError> {
        self.host_func_boxed(ty, Box::new(f))
    }

    /// [`Store::host_func_trapping`] with the body already boxed.
    ///
    /// # Errors
    /// When its thunk cannot be compiled or placed.
    pub fn host_func_boxed(
        &mut self,
        ty: FuncType,
        f: Box<TrappingHostFn<'k>>,
    ) -> Result<Func, CallError> {
        let thunk = self.thunk(&ty)?;
        let hf = Box::new(HostFunc {
            dispatch: host_dispatch as *const () as usize,
            ty: ty.clone(),
            func: f,
            owner: core::ptr::from_ref(&*self.owner),
        });
        let vmctx = core::ptr::from_ref(&*hf) as usize;
        self.host_funcs.push(hf);
        Ok(self.host_funcref(ty, thunk, vmctx))
    }

    /// The funcref of a host function whose context (kept by the store)
    /// is at `vmctx`, called through `thunk`; the store's from now on
    /// (INV-VM-6).
    fn host_funcref(&mut self, ty: FuncType, thunk: usize, vmctx: usize) -> Func {
        let type_id = self.type_id(&ty);
        let fr = Box::new(VMFuncRef {
            code: thunk,
            vmctx,
            type_id,
        });
        let funcref = core::ptr::from_ref(&*fr) as usize;
        self.owner
            .add(funcref..funcref + core::mem::size_of::<VMFuncRef>());
        self.host_funcrefs.push(fr);
        Func { funcref, ty }
    }

    /// A host function of the signature `(A) -> R` that runs `f` with
    /// its arguments as Rust values and no allocation per call; when `f`
    /// fails, its wasm caller traps with [`TrapKind::Host`].
    ///
    /// # Errors
    /// When its thunk cannot be compiled or placed.
    pub fn host_func_typed<A, R, F>(&mut self, f: F) -> Result<Func, CallError>
    where
        A: WasmList + 'k,
        R: WasmList + 'k,
        F: Fn(A) -> Result<R, HostTrap> + Send + Sync + 'k,
    {
        let ty = FuncType {
            params: A::TYPES.to_vec(),
            results: R::TYPES.to_vec(),
        };
        let thunk = self.thunk(&ty)?;
        let h = Box::new(TypedHost {
            dispatch: typed_dispatch::<A, R, F> as *const () as usize,
            owner: core::ptr::from_ref(&*self.owner),
            func: f,
        });
        let vmctx = core::ptr::from_ref(&*h) as usize;
        self.typed_hosts.push(h);
        Ok(self.host_funcref(ty, thunk, vmctx))
    }

    /// A host function of type `ty`, of at most [`MAX_SINGLE_PARAMS`]
    /// parameters and one result, that runs `f` with its arguments in a
    /// slice on the stack: no allocation per call. When `f` fails, its
    /// wasm caller traps with [`TrapKind::Host`].
    ///
    /// # Errors
    /// [`CallError::BadArguments`] for more parameters or results; when
    /// its thunk cannot be compiled or placed.
    pub fn host_func_single(
        &mut self,
        ty: FuncType,
        f: Box<SingleHostFn<'k>>,
    ) -> Result<Func, CallError> {
        if ty.params.len() > MAX_SINGLE_PARAMS || ty.results.len() > 1 {
            return Err(CallError::BadArguments);
        }
        let thunk = self.thunk(&ty)?;
        let h = Box::new(SingleHost {
            dispatch: single_dispatch as *const () as usize,
            ty: ty.clone(),
            owner: core::ptr::from_ref(&*self.owner),
            func: f,
        });
        let vmctx = core::ptr::from_ref(&*h) as usize;
        self.typed_hosts.push(h);
        Ok(self.host_funcref(ty, thunk, vmctx))
    }

    /// The host thunk for signature `ty` (shared: `stubs`).
    fn thunk(&mut self, ty: &FuncType) -> Result<usize, CallError> {
        let ty = &ty.erased();
        if let Some((_, a)) = self.thunks.iter().find(|(t, _)| t == ty) {
            return Ok(*a);
        }
        let a = self.stub(StubKind::HostThunk, ty)?;
        self.thunks.push((ty.clone(), a));
        Ok(a)
    }

    /// A host global holding `v`.
    ///
    /// # Errors
    /// [`CallError::BadArguments`] when `v` is a function reference of
    /// another store (INV-VM-6).
    pub fn host_global(&mut self, v: Val, mutable: bool) -> Result<Global, CallError> {
        if !self.owner.admits(v) {
            return Err(CallError::BadArguments);
        }
        let b = Box::new(v.to_slot());
        let slot = core::ptr::from_ref(&*b) as usize;
        self.host_globals.push(b);
        Ok(Global {
            slot,
            ty: GlobalType {
                ty: v.ty(),
                mutable,
            },
        })
    }

    /// A host memory.
    ///
    /// # Errors
    /// When it cannot be reserved or committed.
    pub fn host_memory(&mut self, ty: MemoryType) -> Result<Extern, InstantiateError> {
        let m = Memory::new(self.kernel, ty, self.memory_reserve()?, self.memory_owner)?;
        self.memories.push(Box::new(m));
        Ok(Extern::Memory(self.memories.len() - 1))
    }

    /// A host table.
    ///
    /// # Errors
    /// When it is too large.
    pub fn host_table(&mut self, ty: TableType) -> Result<Extern, InstantiateError> {
        self.tables
            .push(Table::new(self.kernel, ty, self.memory_owner)?);
        Ok(Extern::Table(self.tables.len() - 1))
    }

    /// The value of a global.
    pub fn global_get(&self, g: &Global) -> Val {
        // SAFETY: INV-VM-2: the slot lives as long as the store.
        let s = unsafe { (g.slot as *const u128).read() };
        Val::from_slot(g.ty.ty, s)
    }

    /// A memory of the store.
    pub fn memory(&self, index: usize) -> Option<&Memory<'k, 'h, P>> {
        self.memories.get(index).map(|m| &**m)
    }

    /// Compile `bytes` for this store.
    ///
    /// # Errors
    /// [`CompileError`] for malformed, invalid or unsupported modules.
    pub fn compile(&self, bytes: &[u8]) -> Result<Arc<CompiledModule>, CompileError> {
        let mut budget = OwnerBudget {
            vm: self.kernel.vm(),
            owner: self.memory_owner,
            interrupt: &self.interrupt,
        };
        let module = compile_module_within(bytes, &self.config, &self.compiler, &mut budget)?;
        // Held in whole 64 KiB steps (retained INV-RET-2): whole frames.
        self.retain(self.memory_owner, module.retained / PAGE_SIZE as u64);
        Ok(Arc::new(module))
    }

    /// [`Store::compile`] through the kernel's module cache: a module some
    /// store of this kernel holds, compiled from the same bytes under the
    /// same settings, is shared instead of compiled again. This store's
    /// owner is charged what the module keeps either way, as if it had
    /// compiled it. The cache keeps a handle to `bytes`, not a copy.
    ///
    /// # Errors
    /// As [`Store::compile`]; [`CompileError::MetadataOverBudget`] when the
    /// owner cannot hold what a shared module keeps.
    pub fn compile_shared(&self, bytes: &Arc<[u8]>) -> Result<Arc<CompiledModule>, CompileError> {
        let cache = self.kernel.modules();
        if let Some(module) = cache.get(bytes, &self.config) {
            return self.adopt(module);
        }
        let module = self.compile_persistent(bytes)?;
        cache.insert(bytes, &self.config, &module);
        Ok(module)
    }

    /// [`Store::compile_shared`], single-flight: when another store of
    /// this kernel is loading the same bytes, `wait` waits for it (false:
    /// the caller was stopped meanwhile) and the module it loaded is
    /// shared; only when nobody is does this store compile (`cache`
    /// INV-CACHE-3).
    ///
    /// # Errors
    /// As [`Store::compile_shared`]; [`CompileError::Interrupted`] when
    /// `wait` returns false.
    pub fn compile_shared_waiting(
        &self,
        bytes: &Arc<[u8]>,
        wait: &mut dyn FnMut(&Arc<Pending>) -> bool,
    ) -> Result<Arc<CompiledModule>, CompileError> {
        loop {
            match self.kernel.modules().begin(bytes, &self.config) {
                Lookup::Ready(module) => return self.adopt(module),
                Lookup::Load(ticket) => {
                    let module = self.compile_persistent(bytes)?;
                    ticket.complete(&module);
                    return Ok(module);
                }
                Lookup::Wait(pending) => {
                    if !wait(&pending) {
                        return Err(CompileError::Interrupted);
                    }
                }
            }
        }
    }

    /// Take `module`, loaded by another store, charging this store's owner
    /// what the module keeps, as if it had compiled it.
    fn adopt(&self, module: Arc<CompiledModule>) -> Result<Arc<CompiledModule>, CompileError> {
        let frames = module.retained / PAGE_SIZE as u64;
        self.kernel
            .vm()
            .hold(self.memory_owner, frames)
            .map_err(|_| CompileError::MetadataOverBudget {
                section: "shared module",
                bytes: module.retained,
                offset: 0,
            })?;
        self.retain(self.memory_owner, frames);
        Ok(module)
    }

    /// [`Store::compile`] through the platform's compiled-module cache
    /// (`hal::CodeCache`), when it has one: a kept artifact that passes
    /// every check (`artifact` INV-ART-1) is loaded instead of compiling;
    /// any other is counted as refused and the module compiled and kept
    /// anew.
    fn compile_persistent(&self, bytes: &[u8]) -> Result<Arc<CompiledModule>, CompileError> {
        let hal = self.kernel.hal();
        if !hal.code_cache_enabled() && self.precompiled.is_none() {
            return self.compile(bytes);
        }
        let cache = self.kernel.modules();
        let key = artifact::key(bytes, &self.compiler, &self.config);
        let kept = self
            .precompiled
            .as_ref()
            .and_then(|source| source(&key))
            .or_else(|| hal.cached_code(&key));
        if let Some(kept) = kept {
            let mut budget = OwnerBudget {
                vm: self.kernel.vm(),
                owner: self.memory_owner,
                interrupt: &self.interrupt,
            };
            match artifact::load_within(&kept, bytes, &self.compiler, &self.config, &mut budget) {
                Ok(module) => {
                    self.retain(self.memory_owner, module.retained / PAGE_SIZE as u64);
                    cache.count_artifact(ArtifactUse::Loaded);
                    tracing::debug!(module = %self.module_name, "loaded precompiled");
                    return Ok(Arc::new(module));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "compiled-module cache entry refused");
                    cache.count_artifact(ArtifactUse::Refused);
                }
            }
        }
        let module = self.compile(bytes)?;
        tracing::debug!(module = %self.module_name, "compiled anew");
        if hal.code_cache_enabled()
            && let Some(a) = artifact::encode(&module, bytes, &self.compiler, &self.config)
        {
            hal.cache_code(&key, &a);
            cache.count_artifact(ArtifactUse::Stored);
        }
        Ok(module)
    }

    /// An export of `instance`.
    pub fn export(&self, instance: InstanceId, name: &str) -> Option<Extern> {
        self.instances
            .get(instance.0)?
            .exports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.clone())
    }

    /// A view of memory `index` of `instance`, for host functions of this
    /// store (none when the instance has no such memory).
    ///
    /// # Safety
    /// The view is used only while this store lives (INV-VM-7).
    pub unsafe fn memory_view(&self, instance: InstanceId, index: u32) -> Option<MemoryView> {
        let def = *self
            .instances
            .get(instance.0)?
            .data
            .mem_defs
            .get(index as usize)?;
        Some(MemoryView { def })
    }

    /// Every export of `instance`.
    pub fn exports(&self, instance: InstanceId) -> Vec<(String, Extern)> {
        self.instances
            .get(instance.0)
            .map(|i| i.exports.clone())
            .unwrap_or_default()
    }

    /// Instantiate `module`, resolving imports with `resolve(module, name)`.
    ///
    /// # Errors
    /// [`InstantiateError`].
    pub fn instantiate(
        &mut self,
        module: &CompiledModule,
        resolve: &dyn Fn(&str, &str) -> Option<Extern>,
    ) -> Result<InstanceId, InstantiateError> {
        self.instantiate_then(module, resolve, &mut |_, _| {})
    }

    /// [`Store::instantiate`], calling `before_start` once the instance is
    /// set up (segments written) and before its start function runs: host
    /// functions that reach the instance's memory get their view then, so
    /// the start function's calls see it as `_start`'s do.
    ///
    /// # Errors
    /// [`InstantiateError`].
    pub fn instantiate_then(
        &mut self,
        module: &CompiledModule,
        resolve: &dyn Fn(&str, &str) -> Option<Extern>,
        before_start: &mut dyn FnMut(&Self, InstanceId),
    ) -> Result<InstanceId, InstantiateError> {
        let info = &module.info;
        let o = module.offsets;
        // Store-wide ids of the module's types, canonical (module INV-5).
        let type_ids = self.type_ids(info);
        let canonical = |t: ValType| t.canonical(&type_ids);
        // Resolve and check imports.
        let mut funcs = Vec::new();
        let mut tag_ids: Vec<usize> = Vec::new();
        let mut globals = Vec::new();
        let mut mems = Vec::new();
        let mut tabs = Vec::new();
        for imp in &info.imports {
            let unknown = || InstantiateError::UnknownImport {
                module: imp.module.clone(),
                name: imp.name.clone(),
            };
            let bad = || InstantiateError::IncompatibleImport {
                module: imp.module.clone(),
                name: imp.name.clone(),
            };
            let ext = resolve(&imp.module, &imp.name).ok_or_else(unknown)?;
            match (imp.kind, ext) {
                (ImportKind::Func(t), Extern::Func(f)) => {
                    // Function types without declared subtypes match
                    // only themselves: the same canonical id.
                    // SAFETY: INV-VM-2: the exporter's funcref lives in
                    // the store.
                    let fr = unsafe { (f.funcref as *const VMFuncRef).read() };
                    if type_ids.get(t as usize) != Some(&fr.type_id) {
                        return Err(bad());
                    }
                    funcs.push(f);
                }
                (ImportKind::Tag(t), Extern::Tag(tag)) => {
                    if type_ids.get(t as usize) != Some(&tag.type_id) {
                        return Err(bad());
                    }
                    tag_ids.push(tag.identity);
                }
                (ImportKind::Global(t), Extern::Global(g)) => {
                    // A constant global may be of a subtype; a mutable one
                    // is read and written, so its type must be the same.
                    let want = canonical(t.ty);
                    let ok = if t.mutable {
                        g.ty.mutable && g.ty.ty == want
                    } else {
                        !g.ty.mutable && g.ty.ty.matches(want)
                    };
                    if !ok {
                        return Err(bad());
                    }
                    globals.push(g);
                }
                (ImportKind::Memory(t), Extern::Memory(m)) => {
                    let mem = self.memories.get(m).ok_or_else(bad)?;
                    let limit = page_limit(mem.memory64);
                    let max = (mem.max_pages != limit || t.max_pages == Some(limit))
                        .then_some(mem.max_pages);
                    if mem.memory64 != t.memory64
                        || mem.shared != t.shared
                        || !limits_match(mem.pages(), max, t.min_pages, t.max_pages)
                    {
                        return Err(bad());
                    }
                    mems.push(m);
                }
                (ImportKind::Table(t), Extern::Table(i)) => {
                    let tab = self.tables.get(i).ok_or_else(bad)?;
                    if tab.elem_type() != canonical(t.elem)
                        || !limits_match(
                            u64::from(tab.len()),
                            tab.max().map(u64::from),
                            u64::from(t.min),
                            t.max.map(u64::from),
                        )
                    {
                        return Err(bad());
                    }
                    tabs.push(i);
                }
                _ => return Err(bad()),
            }
        }
        // What the instance keeps, held until the store is dropped.
        let frames = retained::instance_cost(module).div_ceil(PAGE_SIZE as u64);
        self.kernel
            .vm()
            .hold(self.memory_owner, frames)
            .map_err(|e| InstantiateError::Memory(MemError::Vm(e)))?;
        self.retain(self.memory_owner, frames);
        // The code, shared with every other store running the module.
        let obj = self.module_code(module).map_err(InstantiateError::Link)?;
        let func_addrs: Vec<usize> = (0..module.functions.len())
            .map(|i| obj.as_ref().and_then(|o| o.func_addr(i)).unwrap_or(0))
            .collect();
        if let Some(obj) = obj {
            for (j, t) in module.trampolines.iter().enumerate() {
                if let Some(a) = obj.func_addr(module.functions.len() + j)
                    && !self.trampolines.iter().any(|(ty, _)| *ty == t.ty)
                {
                    self.trampolines.push((t.ty.clone(), a));
                }
            }
            self.code.push(obj);
        }
        // Defined memories and tables.
        for m in &info.memories[info.num_imported_memories as usize..] {
            let mem = Memory::new(self.kernel, *m, self.memory_reserve()?, self.memory_owner)?;
            self.memories.push(Box::new(mem));
            mems.push(self.memories.len() - 1);
        }
        for t in &info.tables[info.num_imported_tables as usize..] {
            let t = TableType {
                elem: canonical(t.elem),
                ..*t
            };
            self.tables
                .push(Table::new(self.kernel, t, self.memory_owner)?);
            tabs.push(self.tables.len() - 1);
        }
        // Defined tags: each a new identity, the address of its box.
        for &t in &info.tags[info.num_imported_tags as usize..] {
            let tag = Box::new(type_ids.get(t as usize).copied().unwrap_or(u32::MAX));
            tag_ids.push(core::ptr::from_ref(&*tag) as usize);
            self.tags.push(tag);
        }
        // The context.
        let words = (o.size() as usize).div_ceil(16) + 1;
        let vmctx_mem = vec![0u128; words].into_boxed_slice();
        let data = Box::new(InstanceData {
            memories: mems
                .iter()
                .map(|&m| core::ptr::from_ref(&*self.memories[m]).cast::<()>())
                .collect(),
            mem_defs: mems
                .iter()
                .map(|&m| self.memories[m].def_ptr().cast_const())
                .collect(),
            tables: tabs
                .iter()
                .map(|&t| core::ptr::from_ref(&*self.tables[t]).cast::<Table<'static>>())
                .collect(),
            elems: spin::Mutex::new(Vec::new()),
            data: spin::Mutex::new(Vec::new()),
            grow: grow_memory::<P>,
            interrupt: core::ptr::from_ref(&*self.interrupt).cast(),
            refs: core::ptr::from_ref(&*self.owner),
            kernel: core::ptr::from_ref(self.kernel).cast(),
            hold: hold_frames::<P>,
            unwind: exn::unwind::<P>,
            shared: mems.iter().map(|&m| self.memories[m].shared).collect(),
            now: kernel_now::<P>,
            futexes: kernel_futexes::<P>,
        });
        let base = vmctx_mem.as_ptr() as usize;
        let vmctx = base + 16;
        self.owner.add(vmctx..vmctx + o.size() as usize);
        let w = |off: u32, v: usize| {
            // SAFETY: `off` comes from the layout of this context, which
            // is `o.size()` bytes after the 16-byte header.
            unsafe { ((vmctx + off as usize) as *mut usize).write(v) };
        };
        let w32 = |off: u32, v: u32| {
            // SAFETY: as for `w`.
            unsafe { ((vmctx + off as usize) as *mut u32).write(v) };
        };
        // SAFETY: the header word is the first 16 bytes of the allocation.
        unsafe { (base as *mut usize).write(core::ptr::from_ref(&*data) as usize) };
        w(o.builtins(), self.builtins.as_ptr() as usize);
        w(
            o.interrupt(),
            core::ptr::from_ref(&*self.interrupt) as usize,
        );
        for (i, &m) in mems.iter().enumerate() {
            w(
                o.memory_pointer(i as u32),
                self.memories[m].def_ptr() as usize,
            );
        }
        for (i, &t) in tabs.iter().enumerate() {
            w(o.table_pointer(i as u32), self.tables[t].def_ptr() as usize);
        }
        for (i, id) in type_ids.iter().enumerate() {
            w32(o.type_id(i as u32), *id);
        }
        for (i, id) in tag_ids.iter().enumerate() {
            w(o.tag(i as u32), *id);
        }
        let mut func_refs = Vec::new();
        for (i, f) in funcs.iter().enumerate() {
            // SAFETY: INV-VM-2: the exporter's funcref lives in the store.
            let fr = unsafe { (f.funcref as *const VMFuncRef).read() };
            let off = o.imported_func(i as u32);
            w(off + o.func_ref_code(), fr.code);
            w(off + o.func_ref_vmctx(), fr.vmctx);
            w32(off + o.func_ref_type_id(), fr.type_id);
            func_refs.push(vmctx + off as usize);
        }
        for (d, addr) in func_addrs.iter().enumerate() {
            let fi = info.num_imported_funcs + d as u32;
            let ty = info.functions[fi as usize];
            let off = o.defined_func_ref(d as u32);
            w(off + o.func_ref_code(), *addr);
            w(off + o.func_ref_vmctx(), vmctx);
            w32(off + o.func_ref_type_id(), type_ids[ty as usize]);
            func_refs.push(vmctx + off as usize);
        }
        let mut global_slots = Vec::new();
        for (i, g) in globals.iter().enumerate() {
            w(o.imported_global(i as u32), g.slot);
            global_slots.push(g.slot);
        }
        let eval = |c: &ConstExpr, slots: &[usize]| -> u128 {
            c.eval(
                |g| {
                    slots
                        .get(g as usize)
                        // SAFETY: INV-VM-2.
                        .map_or(0, |s| unsafe { (*s as *const u128).read() })
                },
                |f| func_refs.get(f as usize).map_or(0, |r| *r as u128),
            )
        };
        for (d, init) in info.global_inits.iter().enumerate() {
            let off = o.defined_global(d as u32);
            let v = eval(init, &global_slots);
            // SAFETY: 16-aligned slot of this context (VMContext INV-3).
            unsafe { ((vmctx + off as usize) as *mut u128).write(v) };
            global_slots.push(vmctx + off as usize);
        }
        // Defined tables with an initialiser hold its value everywhere.
        for (init, &t) in info
            .table_inits
            .iter()
            .zip(&tabs[info.num_imported_tables as usize..])
        {
            if let Some(init) = init {
                let table = &self.tables[t];
                table.fill(0, eval(init, &global_slots) as usize, table.len());
            }
        }
        // Exports, typed in the store's canonical types.
        let func_type = |f: u32| {
            let t = info.functions.get(f as usize)?;
            let id = type_ids.get(*t as usize)?;
            self.types.get(*id as usize).cloned()
        };
        let exports = info
            .exports
            .iter()
            .filter_map(|e| {
                let x = match e.kind {
                    ExportKind::Func => Extern::Func(Func {
                        funcref: *func_refs.get(e.index as usize)?,
                        ty: func_type(e.index)?,
                    }),
                    ExportKind::Global => Extern::Global(Global {
                        slot: *global_slots.get(e.index as usize)?,
                        ty: info.globals.get(e.index as usize).map(|g| GlobalType {
                            ty: canonical(g.ty),
                            ..*g
                        })?,
                    }),
                    ExportKind::Memory => Extern::Memory(*mems.get(e.index as usize)?),
                    ExportKind::Tag => {
                        let t = info.tags.get(e.index as usize)?;
                        let type_id = *type_ids.get(*t as usize)?;
                        Extern::Tag(Tag {
                            identity: *tag_ids.get(e.index as usize)?,
                            type_id,
                            ty: self.types.get(type_id as usize).cloned()?,
                        })
                    }
                    ExportKind::Table => Extern::Table(*tabs.get(e.index as usize)?),
                };
                Some((e.name.clone(), x))
            })
            .collect();
        self.instances.push(Instance {
            vmctx: vmctx_mem,
            data,
            exports,
            offsets: o,
        });
        let id = InstanceId(self.instances.len() - 1);
        // Segments, in order (2.0 instantiation): element segments, then
        // data segments; an active one is bounds checked just before it is
        // written (as `table.init` / `memory.init` would), then dropped,
        // like a declared one; passive ones stay for `table.init` /
        // `memory.init`. A segment that does not fit fails instantiation
        // and keeps what the segments before it wrote. The instance stays
        // in the store either way: an imported table may now point at its
        // functions (INV-VM-2).
        let offset_of = |c: &ConstExpr| eval(c, &global_slots) as u32;
        let data = &self.instances[id.0].data;
        for e in &info.elements {
            let items: Vec<usize> = e
                .items
                .iter()
                .map(|c| eval(c, &global_slots) as usize)
                .collect();
            let kept = match &e.mode {
                ElementMode::Active { table, offset } => {
                    let t = data
                        .table(*table)
                        .ok_or(InstantiateError::ElementsOutOfBounds)?;
                    if !t.write(offset_of(offset), &items) {
                        return Err(InstantiateError::ElementsOutOfBounds);
                    }
                    Vec::new()
                }
                ElementMode::Declared => Vec::new(),
                ElementMode::Passive => items,
            };
            data.elems.lock().push(kept);
        }
        for (segment, d) in (0u32..).zip(&info.data) {
            let kept = match &d.mode {
                DataMode::Active { memory, offset } => {
                    let out = InstantiateError::DataOutOfBounds { segment };
                    let m = mems
                        .get(*memory as usize)
                        .and_then(|&m| self.memories.get(m))
                        .ok_or_else(|| out.clone())?;
                    // A 64-bit memory's offset is an `i64` constant.
                    let at = if m.memory64 {
                        eval(offset, &global_slots) as u64
                    } else {
                        u64::from(offset_of(offset))
                    };
                    if !m.write(at, &d.bytes) {
                        return Err(out);
                    }
                    Vec::new()
                }
                DataMode::Passive => d.bytes.clone(),
            };
            data.data.lock().push(kept);
        }
        before_start(self, id);
        if let Some(s) = info.start {
            let f = Func {
                funcref: *func_refs
                    .get(s as usize)
                    .ok_or(InstantiateError::TooLarge)?,
                ty: func_type(s).unwrap_or_default(),
            };
            self.invoke(&f, &[]).map_err(InstantiateError::Start)?;
        }
        Ok(id)
    }

    /// Call `func` with `args`.
    ///
    /// # Errors
    /// [`CallError::Trap`] when the wasm code traps; the others when the
    /// call cannot be made.
    pub fn invoke(&mut self, func: &Func, args: &[Val]) -> Result<Vec<Val>, CallError> {
        let ty = &func.ty;
        if args.len() != ty.params.len()
            || args
                .iter()
                .zip(&ty.params)
                .any(|(a, t)| !self.owner.admits_as(*a, *t))
        {
            return Err(CallError::BadArguments);
        }
        let ty = ty.clone();
        let tramp = self.trampoline(&ty)?;
        let mut values = vec![0u128; ty.params.len().max(ty.results.len()).max(1)];
        for (s, a) in values.iter_mut().zip(args) {
            *s = a.to_slot();
        }
        self.call_raw(func.funcref, tramp, &mut values)?;
        Ok(ty
            .results
            .iter()
            .zip(&values)
            .map(|(t, s)| Val::from_slot(*t, *s))
            .collect())
    }

    /// `func` as a typed function of this store: its signature must be
    /// `(A::TYPES) -> (R::TYPES)`; its trampoline is found (or linked)
    /// now, so calls through it allocate nothing.
    ///
    /// # Errors
    /// [`CallError::BadArguments`] for another signature; as
    /// [`Store::invoke`] when the trampoline cannot be had.
    pub fn typed<A: WasmList, R: WasmList>(
        &mut self,
        func: &Func,
    ) -> Result<TypedFunc<A, R>, CallError> {
        if func.ty.params != A::TYPES || func.ty.results != R::TYPES {
            return Err(CallError::BadArguments);
        }
        let tramp = self.trampoline(&func.ty)?;
        Ok(TypedFunc {
            funcref: func.funcref,
            tramp,
            store: self.id(),
            _types: core::marker::PhantomData,
        })
    }

    /// Call `func` with `args`, without allocating.
    ///
    /// # Errors
    /// [`CallError::BadArguments`] when `func` is another store's;
    /// [`CallError::Trap`] when the wasm code traps.
    pub fn call_typed<A: WasmList, R: WasmList>(
        &mut self,
        func: &TypedFunc<A, R>,
        args: A,
    ) -> Result<R, CallError> {
        if func.store != self.id() {
            return Err(CallError::BadArguments);
        }
        let mut slots = [0u128; MAX_TYPED];
        args.write(&mut slots);
        self.call_raw(func.funcref, func.tramp, &mut slots)?;
        Ok(R::read(&slots))
    }

    /// What tells this store from every other while it lives: the address
    /// of its funcref owner, boxed for the store's life.
    fn id(&self) -> usize {
        core::ptr::from_ref(&*self.owner) as usize
    }

    /// Call the function of `funcref` through the array-call trampoline
    /// `tramp`, its parameters in `values` and its results left there
    /// (INV-VM-4); `values` holds at least max(params, results, 1) slots.
    fn call_raw(
        &mut self,
        funcref: usize,
        tramp: usize,
        values: &mut [u128],
    ) -> Result<(), CallError> {
        let hal = self.kernel.hal();
        let cpu = self.kernel.cpu(hal.current_cpu()).ok_or(CallError::NoCpu)?;
        // SAFETY: INV-VM-2: the funcref lives in the store.
        let fr = unsafe { (funcref as *const VMFuncRef).read() };
        let outer = !cpu.wasm.active.load(Ordering::Acquire);
        let prev = cpu.wasm.saved();
        if outer {
            let here = 0u8;
            let sp = core::ptr::from_ref(&here) as usize;
            let limit = sp.saturating_sub(self.stack_budget);
            for inst in &self.instances {
                let off = inst.offsets.stack_limit() as usize;
                // SAFETY: the stack-limit word of a live context.
                unsafe { ((inst.vmctx() + off) as *mut usize).write(limit) };
            }
        }
        cpu.wasm.active.store(true, Ordering::Release);
        // SAFETY: the save slots are the CPU's entry context (INV-ENTRY-1),
        // alive for the call; the trampoline has the array-call ABI and
        // gets the callee's context and code and a slot array large enough
        // for its parameters and results.
        let trapped = unsafe {
            crate::arch::enter(
                cpu.wasm.saved[0].as_ptr(),
                tramp,
                [fr.vmctx, 0, fr.code, values.as_mut_ptr() as usize],
            )
        };
        // The code may have been suspended and resumed on another CPU (a
        // process fiber migrates; its entry state moves with it): what the
        // trap path recorded is in the CPU running this now.
        let cpu = self.kernel.cpu(hal.current_cpu()).ok_or(CallError::NoCpu)?;
        let result = if trapped {
            let kind = KINDS
                .get(cpu.wasm.trap_kind.load(Ordering::Acquire) as usize)
                .copied()
                .unwrap_or(TrapKind::Unreachable);
            let backtrace = cpu
                .wasm
                .trap_pcs()
                .filter_map(|pc| self.kernel.code().frame_at(pc))
                .collect();
            let cut = cpu.wasm.trap_cut();
            let host = self.owner.host_trap.lock().take();
            Err(CallError::Trap(Trap {
                kind,
                backtrace,
                cut,
                host: host.filter(|_| kind == TrapKind::Host),
            }))
        } else {
            Ok(())
        };
        cpu.wasm.restore(prev, !outer);
        result
    }

    /// The kernel.
    pub fn kernel(&self) -> &'k Kernel<'h, P> {
        self.kernel
    }

    /// Charge the frames of memories created from now on to `owner`.
    pub fn set_memory_owner(&mut self, owner: Owner) {
        self.memory_owner = owner;
        *self.owner.exn_owner.lock() = owner;
    }

    /// Exception objects this store holds now (`exn`: kept until the
    /// store drops).
    pub fn exceptions_held(&self) -> usize {
        self.owner.exns.len()
    }

    /// The preemption cell of this store's code ([`super::interrupt`]).
    pub fn interrupt(&self) -> &Arc<Interrupt<'k>> {
        &self.interrupt
    }
}

impl<P: Platform> Drop for Store<'_, '_, P> {
    fn drop(&mut self) {
        // Instances point into memories, tables and code; drop them first.
        self.instances.clear();
        self.code.clear();
        self.memories.clear();
        let vm = self.kernel.vm();
        for (owner, frames) in self.retained.get_mut().drain(..) {
            vm.unhold(owner, frames);
        }
        self.owner
            .exns
            .release(|owner, frames| vm.unhold(owner, frames));
    }
}

/// Convenience: a zero value of each type (for defaults in tools).
pub fn zero_of(ty: ValType) -> Val {
    Val::zero(ty)
}

/// Names of the exported functions of a compiled module.
pub fn exported_funcs(module: &CompiledModule) -> Vec<String> {
    module
        .info
        .exports
        .iter()
        .filter(|e| e.kind == ExportKind::Func)
        .map(|e| e.name.to_string())
        .collect()
}
