//! Validation and parsing of a module's sections into a [`ModuleInfo`].
//!
//! This module owns the target-independent description of a WebAssembly
//! module (the "environ" of wasmtime): its types, imports, functions, tables,
//! memories, globals, exports, start function, element and data segments and
//! the function names of the custom `name` section.
//!
//! Invariants:
//! - INV-1: a [`ModuleInfo`] is only built from bytes that passed
//!   [`wasmparser::Validator`] with [`features()`]; the feature set lives in
//!   that one function.
//! - INV-2: index spaces put imports first: function `i` with
//!   `i < num_imported_funcs` is imported, otherwise it is defined function
//!   `i - num_imported_funcs` (same for tables, memories and globals).
//! - INV-3: no input makes this module panic; every failure is a
//!   [`CompileError`] carrying the byte offset it was detected at.
//! - INV-4: a [`ConstExpr`] is a flat postfix sequence of [`ConstOp`]s that
//!   the validator accepted as a constant expression of its slot's type, so
//!   [`ConstExpr::eval`] ends with exactly one value; evaluation is
//!   iterative (no recursion, however long the expression) and never panics.
//! - INV-5: a concrete reference type (`(ref $t)`) names a type by its
//!   index in the module; a store turns each index into its store-wide
//!   canonical id before comparing types across modules. Types come in
//!   recursion groups (`rec`; a lone type is a group of one); a type
//!   refers only to earlier types or to its own group, so a group is
//!   canonicalised whole, in order ([`FuncType::canonical`]: earlier types
//!   by id, its own by place), and two groups are one when their
//!   canonical forms are equal. Types of different groups are different
//!   even when their signatures are alike.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use wasmparser::{
    BinaryReaderError, ElementItems, ElementKind, ExternalKind, FuncValidatorAllocations,
    FunctionBody, KnownCustom, Name, Operator, Parser, Payload, TypeRef, ValidPayload, Validator,
    WasmFeatures,
};

use super::budget::{Budget, Unmetered};
use super::retained::{self, Retained};

/// The WebAssembly features the kernel accepts (INV-1): WebAssembly 2.0
/// (multi-value, bulk memory, reference types, sign extension,
/// non-trapping float-to-int, mutable-global import/export, 128-bit SIMD)
/// plus the parts of WebAssembly 3.0 taken so far: `extended-const`,
/// relaxed SIMD, tail calls, multi-memory, 64-bit memories (64-bit
/// tables are refused with an offset), typed function references,
/// exception handling, and the threads proposal's shared memories and
/// atomics. GC validates, so that recursion groups of function
/// types load; its struct and array types, declared subtypes and GC heap
/// types are [`CompileError::Unsupported`] when parsed, its instructions
/// when translated. A store may turn multi-memory and 64-bit memories off
/// ([`super::TranslateConfig::features`]) for scripts that assert what
/// WebAssembly 2.0 refuses. Targets without vector support (riscv64
/// without the V extension) reject SIMD at compile time, not here.
#[must_use]
pub fn features() -> WasmFeatures {
    WasmFeatures::WASM2
        .union(WasmFeatures::EXTENDED_CONST)
        .union(WasmFeatures::RELAXED_SIMD)
        .union(WasmFeatures::TAIL_CALL)
        .union(WasmFeatures::MULTI_MEMORY)
        .union(WasmFeatures::MEMORY64)
        .union(WasmFeatures::FUNCTION_REFERENCES)
        .union(WasmFeatures::EXCEPTIONS)
        .union(WasmFeatures::GC)
        .union(WasmFeatures::THREADS)
}

/// Why a module could not be loaded or compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileError {
    /// The bytes are malformed or fail validation.
    Invalid {
        /// What the decoder or validator reported.
        message: String,
        /// Byte offset in the module where the problem was found.
        offset: u64,
    },
    /// The module is valid but uses something this kernel does not support.
    Unsupported {
        /// What is unsupported.
        what: &'static str,
        /// Byte offset in the module.
        offset: u64,
    },
    /// Cranelift failed to compile a function.
    Codegen {
        /// Index of the function in the module's function index space.
        func_index: u32,
        /// Cranelift's message.
        message: String,
    },
    /// No Cranelift backend for the requested target.
    Isa(String),
    /// Compiling the function would take more memory than any function
    /// may (`budget::MAX_FUNCTION_ESTIMATE`).
    TooLarge {
        /// Index of the function in the module's function index space.
        func_index: u32,
        /// Estimated bytes (at least, when found during translation).
        estimate: u64,
    },
    /// Compiling the function would take more memory than its owner has
    /// left (its limit, or the machine's free frames).
    OverBudget {
        /// Index of the function in the module's function index space.
        func_index: u32,
        /// Estimated bytes.
        estimate: u64,
    },
    /// Compilation was stopped (its process was killed).
    Interrupted,
    /// Keeping the module's description (its sections as the kernel holds
    /// them, `retained`) would take more memory than its owner has left.
    MetadataOverBudget {
        /// The section being charged.
        section: &'static str,
        /// Estimated bytes kept for the module so far, this section included.
        bytes: u64,
        /// Byte offset of the section in the module.
        offset: u64,
    },
}

impl CompileError {
    /// The error for a wasmparser failure.
    #[must_use]
    pub fn from_reader(e: &BinaryReaderError) -> Self {
        CompileError::Invalid {
            message: e.message().to_string(),
            offset: e.offset(),
        }
    }

    /// The module byte offset the error refers to, if any.
    #[must_use]
    pub fn offset(&self) -> Option<u64> {
        match self {
            CompileError::Invalid { offset, .. }
            | CompileError::Unsupported { offset, .. }
            | CompileError::MetadataOverBudget { offset, .. } => Some(*offset),
            CompileError::Codegen { .. }
            | CompileError::Isa(_)
            | CompileError::TooLarge { .. }
            | CompileError::OverBudget { .. }
            | CompileError::Interrupted => None,
        }
    }
}

impl From<BinaryReaderError> for CompileError {
    fn from(e: BinaryReaderError) -> Self {
        Self::from_reader(&e)
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Invalid { message, offset } => {
                // The decoder's message may quote a name from the module.
                write!(
                    f,
                    "invalid module: {} at offset {offset:#x}",
                    crate::escape::name(message)
                )
            }
            CompileError::Unsupported { what, offset } => {
                write!(f, "unsupported: {what} at offset {offset:#x}")
            }
            CompileError::Codegen {
                func_index,
                message,
            } => write!(
                f,
                "code generation failed for function {func_index}: {message}"
            ),
            CompileError::Isa(m) => write!(f, "no code generator: {m}"),
            CompileError::TooLarge {
                func_index,
                estimate,
            } => write!(
                f,
                "function {func_index} is too large to compile: about {} MiB, the limit is {} MiB",
                estimate.div_ceil(1 << 20),
                super::budget::MAX_FUNCTION_ESTIMATE >> 20
            ),
            CompileError::OverBudget {
                func_index,
                estimate,
            } => write!(
                f,
                "out of memory compiling function {func_index}: it needs at least {} MiB",
                estimate.div_ceil(1 << 20)
            ),
            CompileError::Interrupted => f.write_str("compilation interrupted"),
            CompileError::MetadataOverBudget {
                section,
                bytes,
                offset,
            } => write!(
                f,
                "out of memory keeping the {section} section at offset {offset:#x}: the module needs at least {} MiB",
                bytes.div_ceil(1 << 20)
            ),
        }
    }
}

impl core::error::Error for CompileError {}

/// What a reference points to (its heap type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HeapType {
    /// Any function (`func`).
    Func,
    /// Any host value (`extern`).
    Extern,
    /// Any exception (`exn`, exception handling): a pointer to an
    /// exception object of the store.
    Exn,
    /// A function of one type (typed function references). In a
    /// [`ModuleInfo`] the number is the module's type index; in a store's
    /// types it is the store-wide canonical type id (INV-5).
    Concrete(u32),
    /// A type of the same recursion group, by its place in the group:
    /// only in the key a store interns a group under (INV-5).
    Rec(u32),
}

/// A reference type: its heap type and whether it admits null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefType {
    /// Whether null is a value of the type.
    pub nullable: bool,
    /// What it points to.
    pub heap: HeapType,
}

impl RefType {
    /// `funcref`: `(ref null func)`.
    pub const FUNCREF: Self = RefType {
        nullable: true,
        heap: HeapType::Func,
    };
    /// `externref`: `(ref null extern)`.
    pub const EXTERNREF: Self = RefType {
        nullable: true,
        heap: HeapType::Extern,
    };

    /// `exnref`: `(ref null exn)`.
    pub const EXNREF: Self = RefType {
        nullable: true,
        heap: HeapType::Exn,
    };

    /// Whether it is a host reference (the `extern` hierarchy); otherwise
    /// it is a function reference, a `VMFuncRef` pointer, or an exception.
    #[must_use]
    pub fn is_extern(self) -> bool {
        self.heap == HeapType::Extern
    }

    /// Whether it is an exception reference.
    #[must_use]
    pub fn is_exn(self) -> bool {
        self.heap == HeapType::Exn
    }

    /// Whether every value of `self` is a value of `sup` (INV-5: both
    /// canonical, or both of one module). Without declared subtypes a
    /// concrete function type matches only itself and `func`.
    #[must_use]
    pub fn matches(self, sup: RefType) -> bool {
        (sup.nullable || !self.nullable)
            && match (self.heap, sup.heap) {
                (HeapType::Func | HeapType::Concrete(_), HeapType::Func)
                | (HeapType::Extern, HeapType::Extern)
                | (HeapType::Exn, HeapType::Exn) => true,
                (HeapType::Concrete(a), HeapType::Concrete(b)) => a == b,
                _ => false,
            }
    }

    /// The type with every concrete index `i` replaced by `ids[i]`, and
    /// an index past `ids` (a type of the recursion group being
    /// canonicalised, which starts at `ids.len()`) by its place in the
    /// group (INV-5).
    #[must_use]
    pub fn canonical(self, ids: &[u32]) -> Self {
        match self.heap {
            HeapType::Concrete(i) => RefType {
                heap: match ids.get(i as usize) {
                    Some(id) => HeapType::Concrete(*id),
                    None => HeapType::Rec(i.saturating_sub(len_u32(ids.len()))),
                },
                ..self
            },
            _ => self,
        }
    }

    /// The type with every group place `k` replaced by the canonical id
    /// `first + k` (the group's types are numbered from `first`).
    #[must_use]
    pub fn resolve(self, first: u32) -> Self {
        match self.heap {
            HeapType::Rec(k) => RefType {
                heap: HeapType::Concrete(first.saturating_add(k)),
                ..self
            },
            _ => self,
        }
    }

    pub(crate) fn from_wasm(r: wasmparser::RefType, offset: u64) -> Result<Self, CompileError> {
        use wasmparser::{AbstractHeapType, HeapType as H, UnpackedIndex};
        let heap = match r.heap_type() {
            H::Abstract {
                shared: false,
                ty: AbstractHeapType::Func,
            } => HeapType::Func,
            H::Abstract {
                shared: false,
                ty: AbstractHeapType::Extern,
            } => HeapType::Extern,
            H::Abstract {
                shared: false,
                ty: AbstractHeapType::Exn,
            } => HeapType::Exn,
            H::Concrete(UnpackedIndex::Module(i)) => HeapType::Concrete(i),
            _ => {
                return Err(CompileError::Unsupported {
                    what: "reference type of a proposal not taken (GC)",
                    offset,
                });
            }
        };
        Ok(RefType {
            nullable: r.is_nullable(),
            heap,
        })
    }
}

/// A value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// A 128-bit vector (`simd`); lanes little-endian.
    V128,
    /// A reference, pointer-sized: a function reference is null or a
    /// pointer to a `VMFuncRef` (VMContext INV-2); a host reference is an
    /// opaque word, 0 for null.
    Ref(RefType),
}

impl ValType {
    /// `funcref`.
    pub const FUNCREF: Self = ValType::Ref(RefType::FUNCREF);
    /// `externref`.
    pub const EXTERNREF: Self = ValType::Ref(RefType::EXTERNREF);
    /// `exnref`.
    pub const EXNREF: Self = ValType::Ref(RefType::EXNREF);

    /// Whether this is a reference type.
    #[must_use]
    pub fn is_ref(self) -> bool {
        matches!(self, ValType::Ref(_))
    }

    /// Whether a value of `self` may be used where `sup` is expected
    /// (numeric types match only themselves; references by
    /// [`RefType::matches`]).
    #[must_use]
    pub fn matches(self, sup: ValType) -> bool {
        match (self, sup) {
            (ValType::Ref(a), ValType::Ref(b)) => a.matches(b),
            (a, b) => a == b,
        }
    }

    /// [`RefType::canonical`] for a reference, itself otherwise.
    #[must_use]
    pub fn canonical(self, ids: &[u32]) -> Self {
        match self {
            ValType::Ref(r) => ValType::Ref(r.canonical(ids)),
            t => t,
        }
    }

    /// [`RefType::resolve`] for a reference, itself otherwise.
    #[must_use]
    pub fn resolve(self, first: u32) -> Self {
        match self {
            ValType::Ref(r) => ValType::Ref(r.resolve(first)),
            t => t,
        }
    }

    /// How the value is represented, which is all machine code and its
    /// trampolines depend on: a function reference of any type is
    /// `funcref`, a host reference `externref`.
    #[must_use]
    pub fn erased(self) -> Self {
        match self {
            ValType::Ref(r) if r.is_extern() => ValType::EXTERNREF,
            ValType::Ref(r) if r.is_exn() => ValType::EXNREF,
            ValType::Ref(_) => ValType::FUNCREF,
            t => t,
        }
    }

    pub(crate) fn from_wasm(t: wasmparser::ValType, offset: u64) -> Result<Self, CompileError> {
        match t {
            wasmparser::ValType::I32 => Ok(ValType::I32),
            wasmparser::ValType::I64 => Ok(ValType::I64),
            wasmparser::ValType::F32 => Ok(ValType::F32),
            wasmparser::ValType::F64 => Ok(ValType::F64),
            wasmparser::ValType::Ref(r) => Ok(ValType::Ref(RefType::from_wasm(r, offset)?)),
            wasmparser::ValType::V128 => Ok(ValType::V128),
        }
    }
}

impl fmt::Display for RefType {
    /// The text format's spelling: `funcref`, `externref`, `(ref func)`,
    /// `(ref null 3)` (a concrete type by its index).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.nullable, self.heap) {
            (true, HeapType::Func) => f.write_str("funcref"),
            (true, HeapType::Extern) => f.write_str("externref"),
            (true, HeapType::Exn) => f.write_str("exnref"),
            (nullable, heap) => {
                f.write_str(if nullable { "(ref null " } else { "(ref " })?;
                match heap {
                    HeapType::Func => f.write_str("func")?,
                    HeapType::Extern => f.write_str("extern")?,
                    HeapType::Exn => f.write_str("exn")?,
                    HeapType::Concrete(i) => write!(f, "{i}")?,
                    HeapType::Rec(k) => write!(f, "rec.{k}")?,
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for ValType {
    /// The text format's spelling (`i32`, `v128`, [`RefType`]'s).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValType::I32 => f.write_str("i32"),
            ValType::I64 => f.write_str("i64"),
            ValType::F32 => f.write_str("f32"),
            ValType::F64 => f.write_str("f64"),
            ValType::V128 => f.write_str("v128"),
            ValType::Ref(r) => r.fmt(f),
        }
    }
}

/// A function signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FuncType {
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types.
    pub results: Vec<ValType>,
}

impl FuncType {
    /// [`ValType::canonical`] of every parameter and result (INV-5).
    #[must_use]
    pub fn canonical(&self, ids: &[u32]) -> Self {
        FuncType {
            params: self.params.iter().map(|t| t.canonical(ids)).collect(),
            results: self.results.iter().map(|t| t.canonical(ids)).collect(),
        }
    }

    /// [`ValType::resolve`] of every parameter and result.
    #[must_use]
    pub fn resolve(&self, first: u32) -> Self {
        FuncType {
            params: self.params.iter().map(|t| t.resolve(first)).collect(),
            results: self.results.iter().map(|t| t.resolve(first)).collect(),
        }
    }

    /// [`ValType::erased`] of every parameter and result: the signature
    /// machine code sees, which keys trampolines and stubs.
    #[must_use]
    pub fn erased(&self) -> Self {
        FuncType {
            params: self.params.iter().map(|t| t.erased()).collect(),
            results: self.results.iter().map(|t| t.erased()).collect(),
        }
    }
}

/// A table's element type and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableType {
    /// Element type: a reference type.
    pub elem: ValType,
    /// Initial element count.
    pub min: u32,
    /// Maximum element count.
    pub max: Option<u32>,
}

/// A linear memory's limits, in 64 KiB pages, and its index type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryType {
    /// Initial pages.
    pub min_pages: u64,
    /// Maximum pages.
    pub max_pages: Option<u64>,
    /// Addressed with `i64` (memory64, part of WebAssembly 3.0), not `i32`.
    pub memory64: bool,
    /// Shared between threads (the threads proposal): the only memories
    /// `memory.atomic.wait32/64` may wait on.
    pub shared: bool,
}

/// A global's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalType {
    /// Content type.
    pub ty: ValType,
    /// Whether `global.set` is allowed.
    pub mutable: bool,
}

/// One instruction of a constant expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstOp {
    /// `ref.null` of any reference type.
    RefNull,
    /// `ref.func` of a function index.
    RefFunc(u32),
    /// `i32.const`.
    I32(i32),
    /// `i64.const`.
    I64(i64),
    /// `f32.const`, as bits.
    F32(u32),
    /// `f64.const`, as bits.
    F64(u64),
    /// `v128.const`, little-endian.
    V128(u128),
    /// `global.get` of an (imported) global.
    GlobalGet(u32),
    /// `i32.add` (`extended-const`).
    I32Add,
    /// `i32.sub` (`extended-const`).
    I32Sub,
    /// `i32.mul` (`extended-const`).
    I32Mul,
    /// `i64.add` (`extended-const`).
    I64Add,
    /// `i64.sub` (`extended-const`).
    I64Sub,
    /// `i64.mul` (`extended-const`).
    I64Mul,
}

/// A validated constant expression: its instructions in order, without
/// the final `end` (INV-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstExpr {
    ops: Vec<ConstOp>,
}

impl ConstExpr {
    /// The expression of the single instruction `op`.
    #[must_use]
    pub fn single(op: ConstOp) -> Self {
        ConstExpr {
            ops: alloc::vec![op],
        }
    }

    /// Its instructions.
    #[must_use]
    pub fn ops(&self) -> &[ConstOp] {
        &self.ops
    }

    /// Evaluate to a 16-byte value slot (the low bytes hold the value,
    /// little-endian, as in a global's slot): `global(i)` is global `i`'s
    /// slot, `func(f)` the slot of `ref.func f`. Integer arithmetic wraps.
    /// A malformed sequence (impossible after validation, INV-4) yields 0
    /// rather than panicking.
    pub fn eval(&self, global: impl Fn(u32) -> u128, func: impl Fn(u32) -> u128) -> u128 {
        let mut stack: Vec<u128> = Vec::with_capacity(2);
        for op in &self.ops {
            let v = match *op {
                ConstOp::RefNull => 0,
                ConstOp::RefFunc(f) => func(f),
                ConstOp::I32(v) => u128::from(v.cast_unsigned()),
                ConstOp::I64(v) => u128::from(v.cast_unsigned()),
                ConstOp::F32(v) => u128::from(v),
                ConstOp::F64(v) => u128::from(v),
                ConstOp::V128(v) => v,
                ConstOp::GlobalGet(g) => global(g),
                ConstOp::I32Add | ConstOp::I32Sub | ConstOp::I32Mul => {
                    let (Some(b), Some(a)) = (stack.pop(), stack.pop()) else {
                        return 0;
                    };
                    #[expect(clippy::cast_possible_truncation, reason = "i32 slot")]
                    let (a, b) = (a as u32, b as u32);
                    u128::from(match *op {
                        ConstOp::I32Add => a.wrapping_add(b),
                        ConstOp::I32Sub => a.wrapping_sub(b),
                        _ => a.wrapping_mul(b),
                    })
                }
                ConstOp::I64Add | ConstOp::I64Sub | ConstOp::I64Mul => {
                    let (Some(b), Some(a)) = (stack.pop(), stack.pop()) else {
                        return 0;
                    };
                    #[expect(clippy::cast_possible_truncation, reason = "i64 slot")]
                    let (a, b) = (a as u64, b as u64);
                    u128::from(match *op {
                        ConstOp::I64Add => a.wrapping_add(b),
                        ConstOp::I64Sub => a.wrapping_sub(b),
                        _ => a.wrapping_mul(b),
                    })
                }
            };
            stack.push(v);
        }
        match stack.as_slice() {
            [v] => *v,
            _ => 0,
        }
    }
}

/// What an import brings in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// A function of the given type index.
    Func(u32),
    /// A table.
    Table(TableType),
    /// A memory.
    Memory(MemoryType),
    /// A global.
    Global(GlobalType),
    /// An exception tag of the given (function) type index.
    Tag(u32),
}

/// One import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Module name.
    pub module: String,
    /// Field name.
    pub name: String,
    /// What is imported.
    pub kind: ImportKind,
}

/// The kind of an exported entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Function.
    Func,
    /// Table.
    Table,
    /// Memory.
    Memory,
    /// Global.
    Global,
    /// Exception tag.
    Tag,
}

/// One export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Export name.
    pub name: String,
    /// Kind.
    pub kind: ExportKind,
    /// Index in the kind's index space.
    pub index: u32,
}

/// How an element segment is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementMode {
    /// Written into `table` at `offset` at instantiation, then dropped.
    Active {
        /// Table index.
        table: u32,
        /// Offset expression.
        offset: ConstExpr,
    },
    /// Kept for `table.init` until `elem.drop`.
    Passive,
    /// Only declares functions for `ref.func`; dropped at instantiation.
    Declared,
}

/// An element segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementSegment {
    /// How it is used.
    pub mode: ElementMode,
    /// Element type: a reference type.
    pub ty: ValType,
    /// One constant expression per element (`ref.func`, `ref.null` or
    /// `global.get`).
    pub items: Vec<ConstExpr>,
}

/// How a data segment is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataMode {
    /// Written into `memory` at `offset` at instantiation, then dropped.
    Active {
        /// Memory index.
        memory: u32,
        /// Offset expression.
        offset: ConstExpr,
    },
    /// Kept for `memory.init` until `data.drop`.
    Passive,
}

/// A data segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSegment {
    /// How it is used.
    pub mode: DataMode,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The target-independent description of a validated module.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleInfo {
    /// Function types, by type index.
    pub types: Vec<FuncType>,
    /// The size of each recursion group, in order (INV-5); types past
    /// their sum are groups of one.
    pub rec_groups: Vec<u32>,
    /// Imports in order.
    pub imports: Vec<Import>,
    /// Type index of every function, imports first (INV-2).
    pub functions: Vec<u32>,
    /// Number of imported functions.
    pub num_imported_funcs: u32,
    /// Every table, imports first.
    pub tables: Vec<TableType>,
    /// Number of imported tables.
    pub num_imported_tables: u32,
    /// Initialiser of each defined table's elements (index `i` is table
    /// `num_imported_tables + i`); `None` fills it with null.
    pub table_inits: Vec<Option<ConstExpr>>,
    /// Every memory, imports first.
    pub memories: Vec<MemoryType>,
    /// Number of imported memories.
    pub num_imported_memories: u32,
    /// Every global's type, imports first.
    pub globals: Vec<GlobalType>,
    /// Number of imported globals.
    pub num_imported_globals: u32,
    /// Initialiser of each defined global (index `i` is global
    /// `num_imported_globals + i`).
    pub global_inits: Vec<ConstExpr>,
    /// Type index (a function type without results: the values an
    /// exception of the tag carries) of every exception tag, imports first.
    pub tags: Vec<u32>,
    /// Number of imported tags.
    pub num_imported_tags: u32,
    /// Exports.
    pub exports: Vec<Export>,
    /// Start function.
    pub start: Option<u32>,
    /// Element segments.
    pub elements: Vec<ElementSegment>,
    /// Data segments.
    pub data: Vec<DataSegment>,
    /// Module name from the name section.
    pub name: Option<String>,
    /// Function names from the name section, by function index.
    pub func_names: BTreeMap<u32, String>,
    /// Byte offset of the first `v128` in a function type, import or
    /// global type, if any: a target without SIMD support reports it.
    pub first_v128: Option<u64>,
}

impl ModuleInfo {
    /// Number of defined (not imported) functions.
    #[must_use]
    pub fn num_defined_funcs(&self) -> u32 {
        len_u32(self.functions.len()) - self.num_imported_funcs
    }

    /// The signature of function `index`, if it exists.
    #[must_use]
    pub fn func_type(&self, index: u32) -> Option<&FuncType> {
        let ty = *self.functions.get(index as usize)?;
        self.types.get(ty as usize)
    }

    /// Number of defined globals.
    #[must_use]
    pub fn num_defined_globals(&self) -> u32 {
        len_u32(self.globals.len()) - self.num_imported_globals
    }

    /// Number of defined tables.
    #[must_use]
    pub fn num_defined_tables(&self) -> u32 {
        len_u32(self.tables.len()) - self.num_imported_tables
    }

    /// Number of defined memories.
    #[must_use]
    pub fn num_defined_memories(&self) -> u32 {
        len_u32(self.memories.len()) - self.num_imported_memories
    }

    /// `(first type index, size)` of every recursion group, covering
    /// every type (INV-5).
    pub fn groups(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let total = self.types.len();
        let mut at = 0usize;
        let mut sizes = self.rec_groups.iter();
        core::iter::from_fn(move || {
            if at >= total {
                return None;
            }
            let n = sizes
                .next()
                .map_or(1, |&n| (n as usize).clamp(1, total - at));
            let g = (at, n);
            at += n;
            Some(g)
        })
    }
}

pub(crate) fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A validated module: its description plus the undecoded function bodies,
/// borrowed from the input bytes.
pub struct ParsedModule<'a> {
    /// The description.
    pub info: ModuleInfo,
    /// Body of each defined function, in order.
    pub bodies: Vec<FunctionBody<'a>>,
}

impl fmt::Debug for ParsedModule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedModule")
            .field("info", &self.info)
            .field("bodies", &self.bodies.len())
            .finish()
    }
}

/// Validate `bytes` under `features` (normally [`features()`], plus any
/// opt-in proposal the caller's configuration names) and parse every
/// section.
///
/// # Errors
/// [`CompileError::Invalid`] for malformed or invalid modules,
/// [`CompileError::Unsupported`] for features outside `features`.
pub fn parse(bytes: &[u8], features: WasmFeatures) -> Result<ParsedModule<'_>, CompileError> {
    parse_within(bytes, features, &mut Unmetered, &mut Retained::default())
}

/// [`parse`], holding each section's retained cost from `budget` into
/// `kept` before the validator or the parser sees the section
/// (`retained` INV-RET-1). On error, `kept` still holds what it held.
///
/// # Errors
/// As [`parse`], and [`CompileError::MetadataOverBudget`] when `budget`
/// cannot hold a section.
pub fn parse_within<'a>(
    bytes: &'a [u8],
    features: WasmFeatures,
    budget: &mut dyn Budget,
    kept: &mut Retained,
) -> Result<ParsedModule<'a>, CompileError> {
    let mut validator = Validator::new_with_features(features);
    // As `Validator::validate_all`: the parser reads under the same
    // features, and bodies are validated after every section, so errors
    // are reported in the same order.
    let mut parser = Parser::new(0);
    parser.set_features(features);
    let mut to_validate = Vec::new();
    let mut info = ModuleInfo::default();
    let mut bodies = Vec::new();
    for payload in parser.parse_all(bytes) {
        let payload = payload?;
        if let Some((section, count, range)) = retained::section_of(&payload) {
            let len = range.end.saturating_sub(range.start);
            let cost = retained::section_cost(section, count, len);
            kept.add(budget, cost, section, range.start)?;
        }
        if let ValidPayload::Func(func, body) = validator.payload(&payload)? {
            to_validate.push((func, body));
        }
        match payload {
            Payload::TypeSection(r) => {
                for group in r.into_iter_with_offsets() {
                    let (at, group) = group?;
                    let mut size = 0u32;
                    for ty in group.into_types() {
                        let ft = func_type(&ty, at)?;
                        if ft
                            .params
                            .iter()
                            .chain(&ft.results)
                            .any(|t| *t == ValType::V128)
                        {
                            info.first_v128.get_or_insert(at);
                        }
                        info.types.push(ft);
                        size += 1;
                    }
                    info.rec_groups.push(size);
                }
            }
            Payload::ImportSection(r) => {
                let at = r.range().start;
                for imp in r.into_imports() {
                    let imp = imp?;
                    let kind = match imp.ty {
                        TypeRef::Func(t) => {
                            info.functions.push(t);
                            info.num_imported_funcs += 1;
                            ImportKind::Func(t)
                        }
                        TypeRef::Table(t) => {
                            let t = table_type(&t, at)?;
                            info.tables.push(t);
                            info.num_imported_tables += 1;
                            ImportKind::Table(t)
                        }
                        TypeRef::Memory(m) => {
                            let m = memory_type(&m);
                            info.memories.push(m);
                            info.num_imported_memories += 1;
                            ImportKind::Memory(m)
                        }
                        TypeRef::Tag(t) => {
                            info.tags.push(t.func_type_idx);
                            info.num_imported_tags += 1;
                            ImportKind::Tag(t.func_type_idx)
                        }
                        TypeRef::Global(g) => {
                            let g = GlobalType {
                                ty: ValType::from_wasm(g.content_type, at)?,
                                mutable: g.mutable,
                            };
                            if g.ty == ValType::V128 {
                                info.first_v128.get_or_insert(at);
                            }
                            info.globals.push(g);
                            info.num_imported_globals += 1;
                            ImportKind::Global(g)
                        }
                        _ => {
                            return Err(CompileError::Unsupported {
                                what: "import kind",
                                offset: at,
                            });
                        }
                    };
                    info.imports.push(Import {
                        module: imp.module.to_string(),
                        name: imp.name.to_string(),
                        kind,
                    });
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    info.functions.push(t?);
                }
            }
            Payload::TableSection(r) => {
                let at = r.range().start;
                for t in r {
                    let t = t?;
                    info.tables.push(table_type(&t.ty, at)?);
                    info.table_inits.push(match t.init {
                        wasmparser::TableInit::RefNull => None,
                        wasmparser::TableInit::Expr(e) => Some(const_expr(&e)?),
                    });
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    info.memories.push(memory_type(&m?));
                }
            }
            Payload::GlobalSection(r) => {
                let at = r.range().start;
                for g in r {
                    let g = g?;
                    let ty = ValType::from_wasm(g.ty.content_type, at)?;
                    if ty == ValType::V128 {
                        info.first_v128.get_or_insert(at);
                    }
                    info.globals.push(GlobalType {
                        ty,
                        mutable: g.ty.mutable,
                    });
                    info.global_inits.push(const_expr(&g.init_expr)?);
                }
            }
            Payload::ExportSection(r) => {
                let at = r.range().start;
                for e in r {
                    let e = e?;
                    let kind = match e.kind {
                        ExternalKind::Func => ExportKind::Func,
                        ExternalKind::Table => ExportKind::Table,
                        ExternalKind::Memory => ExportKind::Memory,
                        ExternalKind::Global => ExportKind::Global,
                        ExternalKind::Tag => ExportKind::Tag,
                        _ => {
                            return Err(CompileError::Unsupported {
                                what: "export kind",
                                offset: at,
                            });
                        }
                    };
                    info.exports.push(Export {
                        name: e.name.to_string(),
                        kind,
                        index: e.index,
                    });
                }
            }
            Payload::StartSection { func, .. } => info.start = Some(func),
            Payload::TagSection(r) => {
                for t in r {
                    info.tags.push(t?.func_type_idx);
                }
            }
            Payload::ElementSection(r) => {
                for e in r {
                    let e = e?;
                    let at = e.range.start;
                    let mode = match e.kind {
                        ElementKind::Active {
                            table_index,
                            offset_expr,
                        } => ElementMode::Active {
                            table: table_index.unwrap_or(0),
                            offset: const_expr(&offset_expr)?,
                        },
                        ElementKind::Passive => ElementMode::Passive,
                        ElementKind::Declared => ElementMode::Declared,
                    };
                    let (ty, items) = match e.items {
                        ElementItems::Functions(funcs) => (
                            ValType::FUNCREF,
                            funcs
                                .into_iter()
                                .map(|f| f.map(|f| ConstExpr::single(ConstOp::RefFunc(f))))
                                .collect::<Result<Vec<_>, _>>()?,
                        ),
                        ElementItems::Expressions(ty, exprs) => (
                            ValType::Ref(RefType::from_wasm(ty, at)?),
                            exprs
                                .into_iter()
                                .map(|x| const_expr(&x?))
                                .collect::<Result<Vec<_>, _>>()?,
                        ),
                    };
                    info.elements.push(ElementSegment { mode, ty, items });
                }
            }
            Payload::DataSection(r) => {
                for d in r {
                    let d = d?;
                    let mode = match d.kind {
                        wasmparser::DataKind::Active {
                            memory_index,
                            offset_expr,
                        } => DataMode::Active {
                            memory: memory_index,
                            offset: const_expr(&offset_expr)?,
                        },
                        wasmparser::DataKind::Passive => DataMode::Passive,
                    };
                    info.data.push(DataSegment {
                        mode,
                        bytes: d.data.to_vec(),
                    });
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(body),
            Payload::CustomSection(c) => {
                if let KnownCustom::Name(names) = c.as_known() {
                    // A malformed name section is not an error (the spec says
                    // custom sections never invalidate a module): stop at the
                    // first bad entry.
                    for name in names.into_iter().map_while(Result::ok) {
                        match name {
                            Name::Module { name, .. } => info.name = Some(name.to_string()),
                            Name::Function(map) => {
                                for n in map.into_iter().map_while(Result::ok) {
                                    info.func_names.insert(n.index, n.name.to_string());
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut allocs = FuncValidatorAllocations::default();
    for (func, body) in to_validate {
        if !budget.proceed() {
            return Err(CompileError::Interrupted);
        }
        let mut v = func.into_validator(allocs);
        v.validate(&body)?;
        allocs = v.into_allocations();
    }
    Ok(ParsedModule { info, bodies })
}

/// A function type of the type section; the GC proposal's struct and
/// array types and declared subtypes are refused.
fn func_type(ty: &wasmparser::SubType, at: u64) -> Result<FuncType, CompileError> {
    let unsupported = |what| CompileError::Unsupported { what, offset: at };
    if !ty.is_final || !ty.supertype_idxs.is_empty() {
        return Err(unsupported("declared subtypes (GC)"));
    }
    if ty.composite_type.shared {
        return Err(unsupported("shared types"));
    }
    match &ty.composite_type.inner {
        wasmparser::CompositeInnerType::Func(f) => Ok(FuncType {
            params: vals(f.params(), at)?,
            results: vals(f.results(), at)?,
        }),
        _ => Err(unsupported("struct and array types (GC)")),
    }
}

fn vals(ts: &[wasmparser::ValType], at: u64) -> Result<Vec<ValType>, CompileError> {
    ts.iter().map(|t| ValType::from_wasm(*t, at)).collect()
}

fn table_type(t: &wasmparser::TableType, at: u64) -> Result<TableType, CompileError> {
    if t.table64 || t.shared {
        return Err(CompileError::Unsupported {
            what: "table type outside WebAssembly 2.0",
            offset: at,
        });
    }
    let elem = ValType::Ref(RefType::from_wasm(t.element_type, at)?);
    let too_big = || CompileError::Unsupported {
        what: "table larger than 2^32 elements",
        offset: at,
    };
    Ok(TableType {
        elem,
        min: u32::try_from(t.initial).map_err(|_| too_big())?,
        max: t
            .maximum
            .map(|m| u32::try_from(m).map_err(|_| too_big()))
            .transpose()?,
    })
}

fn memory_type(m: &wasmparser::MemoryType) -> MemoryType {
    MemoryType {
        min_pages: m.initial,
        max_pages: m.maximum,
        memory64: m.memory64,
        shared: m.shared,
    }
}

fn const_expr(e: &wasmparser::ConstExpr<'_>) -> Result<ConstExpr, CompileError> {
    let mut r = e.get_operators_reader();
    let mut ops = Vec::new();
    loop {
        let (op, offset) = r.read_with_offset()?;
        ops.push(match op {
            Operator::End => break,
            Operator::I32Const { value } => ConstOp::I32(value),
            Operator::I64Const { value } => ConstOp::I64(value),
            Operator::F32Const { value } => ConstOp::F32(value.bits()),
            Operator::F64Const { value } => ConstOp::F64(value.bits()),
            Operator::V128Const { value } => ConstOp::V128(u128::from_le_bytes(*value.bytes())),
            Operator::GlobalGet { global_index } => ConstOp::GlobalGet(global_index),
            Operator::RefNull { .. } => ConstOp::RefNull,
            Operator::RefFunc { function_index } => ConstOp::RefFunc(function_index),
            Operator::I32Add => ConstOp::I32Add,
            Operator::I32Sub => ConstOp::I32Sub,
            Operator::I32Mul => ConstOp::I32Mul,
            Operator::I64Add => ConstOp::I64Add,
            Operator::I64Sub => ConstOp::I64Sub,
            Operator::I64Mul => ConstOp::I64Mul,
            _ => {
                return Err(CompileError::Unsupported {
                    what: "constant expression",
                    offset,
                });
            }
        });
    }
    Ok(ConstExpr { ops })
}

#[cfg(test)]
mod tests {
    use super::*;

    // (module (func (export "f") (param i32) (result i32) local.get 0))
    const ID: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01,
        0x7f, 0x03, 0x02, 0x01, 0x00, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, 0x0a, 0x06, 0x01,
        0x04, 0x00, 0x20, 0x00, 0x0b,
    ];

    #[test]
    fn parses_minimal_module() {
        let m = parse(ID, features()).unwrap();
        assert_eq!(m.info.types.len(), 1);
        assert_eq!(m.info.functions, [0]);
        assert_eq!(m.info.exports[0].name, "f");
        assert_eq!(m.bodies.len(), 1);
    }

    #[test]
    fn extended_const_expressions_evaluate_with_wrapping() {
        // i32: (g0 * 3) - 7 with g0 = 0x7fff_ffff wraps.
        let e = ConstExpr {
            ops: alloc::vec![
                ConstOp::GlobalGet(0),
                ConstOp::I32(3),
                ConstOp::I32Mul,
                ConstOp::I32(7),
                ConstOp::I32Sub,
            ],
        };
        let want = 0x7fff_ffff_u32.wrapping_mul(3).wrapping_sub(7);
        assert_eq!(e.eval(|_| 0x7fff_ffff, |_| 0), u128::from(want));
        let e = ConstExpr {
            ops: alloc::vec![ConstOp::I64(i64::MAX), ConstOp::I64(1), ConstOp::I64Add],
        };
        assert_eq!(e.eval(|_| 0, |_| 0), u128::from(1u64 << 63));
        let v = ConstExpr::single(ConstOp::V128(u128::MAX - 1));
        assert_eq!(v.eval(|_| 0, |_| 0), u128::MAX - 1);
        // INV-4: a malformed sequence is 0, not a panic.
        let bad = ConstExpr {
            ops: alloc::vec![ConstOp::I32Add],
        };
        assert_eq!(bad.eval(|_| 1, |_| 1), 0);
    }

    #[test]
    fn truncated_modules_are_errors_with_offsets() {
        for n in 0..ID.len() {
            // Cut at a section boundary, the rest is still a valid module.
            if let Err(e) = parse(&ID[..n], features()) {
                let s = alloc::format!("{e}");
                assert!(s.contains("at offset 0x"), "{s}");
            } else {
                assert!(n == 8 || n == 16, "cut at {n} accepted");
            }
        }
    }
}
