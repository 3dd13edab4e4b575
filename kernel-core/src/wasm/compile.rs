//! Cranelift ISA selection and compilation of translated functions and
//! host-to-wasm trampolines into relocatable machine code.
//!
//! Invariants:
//! - INV-1: the ISA is chosen by `target_arch` only ([`Compiler::host`]), or
//!   explicitly ([`Compiler::for_arch`]) so tests can cross-compile.
//! - INV-2: flags: `opt_level=speed`, no probestack (the prologue checks
//!   the `VMContext` stack limit instead), frame pointers preserved so the
//!   trap path can walk wasm frames. On x86_64 every backend extension flag
//!   (`has_sse41` ... `has_avx2`, `has_bmi2`, `has_avx512vl`, ...) is set
//!   from the extensions the CPUs have ([`IsaFeatures::X86`], detected by
//!   the hosted HAL), on or off, with x86-64-v2 as the floor (the baseline
//!   when none are given; a set below it is refused); SIMD lowers to SSE4.1
//!   at the floor and to AVX/AVX-512 encodings where present. aarch64 gets
//!   its baseline with NEON. On riscv64
//!   every backend flag (`has_m` ... `has_v`, `has_zba`, `has_zvl128b`, ...)
//!   is set from the extensions every hart has ([`IsaFeatures`], from the
//!   device tree's ISA strings; RV64GC when none are given), on or off;
//!   with `v`, SIMD lowers to RVV 1.0 with 128-bit or wider registers.
//!   Without `v` the backend gets no vector types: a module using `v128`
//!   anywhere fails with [`CompileError::Unsupported`] at the offset of the
//!   first use ([`Compiler::simd`]).
//! - INV-3: every trap site of a [`CompiledFunction`] has a [`TrapKind`]; a
//!   Cranelift trap code without one is a compile error, never dropped.
//! - INV-4: the only relocations are calls to defined functions
//!   ([`RelocTarget::Function`]); builtins go through the `VMContext` table.
//!
//! # Array-call trampolines
//!
//! One trampoline per distinct exported signature. Its contract, in the
//! ISA's default (C) calling convention:
//!
//! ```text
//! fn(callee_vmctx: *mut VMContext, caller_vmctx: *mut VMContext /* or null */,
//!    code: *const u8, values: *mut u128)
//! ```
//!
//! It reads argument `i` from the low bytes of `values[i]` (little-endian;
//! i32/f32 in the low 4 bytes, i64/f64 in the low 8, v128 in all 16),
//! calls `code` as a wasm function of that signature with `callee_vmctx` as
//! its `vmctx`, and writes
//! result `i` to `values[i]` the same way. `values` must hold
//! `max(params, results)` slots, 16-byte aligned. `caller_vmctx` is unused by
//! the trampoline itself (reserved for host-function frames). A trap inside
//! `code` does not return through the trampoline: the runtime unwinds to its
//! saved entry context.

use alloc::format;
use alloc::string::String;
use alloc::sync::Weak;
use alloc::vec::Vec;

use cranelift_codegen::binemit::Reloc as RelocKind;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{
    AbiParam, ExternalName, Function, InstBuilder, MemFlagsData, Signature, TrapCode, UserFuncName,
};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, FinalizedMachExceptionHandler, FinalizedRelocTarget};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::budget::{self, Budget, Meter, Unmetered};
use super::code::LinkedCode;
use super::module::{self, CompileError, ExportKind, FuncType, ModuleInfo};
use super::retained::{self, Retained, Section};
use super::translate::{
    self, TRAP_BAD_SIGNATURE, TRAP_HOST, TRAP_INDIRECT_CALL_TO_NULL, TRAP_INTERRUPTED,
    TRAP_NULL_FUNCTION_REFERENCE, TRAP_NULL_REFERENCE, TRAP_OUT_OF_MEMORY,
    TRAP_TABLE_ACCESS_OUT_OF_BOUNDS, TRAP_TABLE_OUT_OF_BOUNDS, TRAP_UNALIGNED_ATOMIC,
    TRAP_UNREACHABLE, TRAP_UNSHARED_WAIT, TargetInfo, TranslateConfig, ir_type,
};
use super::vmoffsets::VMOffsets;
use crate::hal::{IsaFeatures, RiscvExt, RiscvExtensions, X86Ext, X86Extensions};

/// Why wasm code trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrapKind {
    /// `unreachable` executed.
    Unreachable,
    /// Integer division or remainder by zero.
    IntegerDivideByZero,
    /// Integer overflow (`INT_MIN / -1`, float-to-int out of range).
    IntegerOverflow,
    /// Float-to-int conversion of NaN.
    BadConversionToInteger,
    /// Linear-memory access out of bounds.
    MemoryOutOfBounds,
    /// Table index out of bounds.
    TableOutOfBounds,
    /// `call_indirect` to a null (uninitialised) element.
    IndirectCallToNull,
    /// `call_indirect` signature mismatch.
    BadSignature,
    /// `call_ref` or `return_call_ref` of a null reference.
    NullFunctionReference,
    /// `ref.as_non_null` or `throw_ref` of a null reference.
    NullReference,
    /// An exception no wasm frame of the call caught.
    UncaughtException,
    /// An atomic access at an address not a multiple of its size.
    UnalignedAtomic,
    /// `memory.atomic.wait32/64` on a memory that is not shared.
    UnsharedWait,
    /// Call stack exhausted.
    StackOverflow,
    /// `table.get/set/fill/copy/init` (or an active element segment) out
    /// of the table's bounds.
    TableAccessOutOfBounds,
    /// The store's interrupt hook stopped the code at a preemption check
    /// (the process was killed).
    Interrupted,
    /// A host function failed (see [`crate::wasm::vm::HostTrap`]).
    Host,
    /// A committed page of linear memory could not get its frame (the
    /// frame allocator had the frames, but too fragmented for the region's
    /// block size): the access traps instead of the kernel faulting.
    OutOfMemory,
}

impl TrapKind {
    /// The kind of a Cranelift trap code emitted by the translator.
    #[must_use]
    pub fn from_trap_code(code: TrapCode) -> Option<Self> {
        Some(match code {
            TrapCode::STACK_OVERFLOW => TrapKind::StackOverflow,
            TrapCode::HEAP_OUT_OF_BOUNDS => TrapKind::MemoryOutOfBounds,
            TrapCode::INTEGER_OVERFLOW => TrapKind::IntegerOverflow,
            TrapCode::INTEGER_DIVISION_BY_ZERO => TrapKind::IntegerDivideByZero,
            TrapCode::BAD_CONVERSION_TO_INTEGER => TrapKind::BadConversionToInteger,
            c if c == TRAP_UNREACHABLE => TrapKind::Unreachable,
            c if c == TRAP_TABLE_OUT_OF_BOUNDS => TrapKind::TableOutOfBounds,
            c if c == TRAP_INDIRECT_CALL_TO_NULL => TrapKind::IndirectCallToNull,
            c if c == TRAP_BAD_SIGNATURE => TrapKind::BadSignature,
            c if c == TRAP_TABLE_ACCESS_OUT_OF_BOUNDS => TrapKind::TableAccessOutOfBounds,
            c if c == TRAP_INTERRUPTED => TrapKind::Interrupted,
            c if c == TRAP_HOST => TrapKind::Host,
            c if c == TRAP_NULL_FUNCTION_REFERENCE => TrapKind::NullFunctionReference,
            c if c == TRAP_NULL_REFERENCE => TrapKind::NullReference,
            c if c == TRAP_OUT_OF_MEMORY => TrapKind::OutOfMemory,
            c if c == TRAP_UNALIGNED_ATOMIC => TrapKind::UnalignedAtomic,
            c if c == TRAP_UNSHARED_WAIT => TrapKind::UnsharedWait,
            _ => return None,
        })
    }

    /// The spec's wording for this trap.
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            TrapKind::Unreachable => "unreachable",
            TrapKind::IntegerDivideByZero => "integer divide by zero",
            TrapKind::IntegerOverflow => "integer overflow",
            TrapKind::BadConversionToInteger => "invalid conversion to integer",
            TrapKind::MemoryOutOfBounds => "out of bounds memory access",
            TrapKind::TableOutOfBounds => "undefined element",
            TrapKind::IndirectCallToNull => "uninitialized element",
            TrapKind::BadSignature => "indirect call type mismatch",
            TrapKind::NullFunctionReference => "null function reference",
            TrapKind::NullReference => "null reference",
            TrapKind::UncaughtException => "uncaught exception",
            TrapKind::UnalignedAtomic => "unaligned atomic",
            TrapKind::UnsharedWait => "expected shared memory",
            TrapKind::StackOverflow => "call stack exhausted",
            TrapKind::TableAccessOutOfBounds => "out of bounds table access",
            TrapKind::Interrupted => "interrupted",
            TrapKind::Host => "host function failed",
            TrapKind::OutOfMemory => "out of memory",
        }
    }
}

/// What a relocation refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocTarget {
    /// Defined function, by defined index.
    Function(u32),
}

/// A relocation to apply when the code is placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloc {
    /// Offset in the function's code.
    pub offset: u32,
    /// Cranelift's relocation kind (how to patch).
    pub kind: RelocKind,
    /// What to patch in.
    pub target: RelocTarget,
    /// Addend.
    pub addend: i64,
}

/// A trap site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrapSite {
    /// Offset of the trapping instruction in the function's code.
    pub code_offset: u32,
    /// Why it traps.
    pub kind: TrapKind,
}

/// A call site with an exception handler (a `try_call` inside a
/// `try_table`, translate `exceptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerSite {
    /// Offset of the call's return address in the function's code.
    pub ret_offset: u32,
    /// Bytes from the frame pointer down to the stack pointer at the call:
    /// the handler runs with `sp = fp - frame_offset`.
    pub frame_offset: u32,
    /// Offset of the handler (the landing block) in the function's code.
    pub handler: u32,
}

/// One compiled function (or trampoline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFunction {
    /// Machine code.
    pub code: Vec<u8>,
    /// Required alignment of the code.
    pub alignment: u32,
    /// Relocations.
    pub relocs: Vec<Reloc>,
    /// Trap sites, by code offset.
    pub traps: Vec<TrapSite>,
    /// `(code offset, wasm byte offset)` pairs, sorted by code offset: code
    /// from that offset on belongs to the operator at the wasm offset.
    pub srclocs: Vec<(u32, u32)>,
    /// Call sites with an exception handler, by return offset.
    pub handlers: Vec<HandlerSite>,
}

/// A host-to-wasm trampoline for one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trampoline {
    /// The signature it calls.
    pub ty: FuncType,
    /// Its code.
    pub function: CompiledFunction,
}

/// A compiled module. Its code is placed in memory by the first store that
/// instantiates it and shared by every later one while any holds it (code
/// INV-CODE-5).
#[derive(Debug)]
pub struct CompiledModule {
    /// The module description.
    pub info: ModuleInfo,
    /// Its VMContext layout for the target.
    pub offsets: VMOffsets,
    /// One per defined function, in order.
    pub functions: Vec<CompiledFunction>,
    /// One per distinct exported function signature.
    pub trampolines: Vec<Trampoline>,
    /// Bytes still held from the budget it was compiled within, for what
    /// it keeps (`retained`); 0 when compiled without one.
    pub retained: u64,
    /// The linked code of `functions` then `trampolines`, while a store
    /// holds it. The lock also makes linking single-flight.
    pub(crate) linked: spin::Mutex<Weak<LinkedCode>>,
}

impl Clone for CompiledModule {
    /// A copy that shares nothing: its code is linked anew.
    fn clone(&self) -> Self {
        Self {
            info: self.info.clone(),
            offsets: self.offsets,
            functions: self.functions.clone(),
            trampolines: self.trampolines.clone(),
            retained: self.retained,
            linked: spin::Mutex::new(Weak::new()),
        }
    }
}

impl CompiledModule {
    /// The trampoline for signature `ty`, if one was compiled.
    #[must_use]
    pub fn trampoline(&self, ty: &FuncType) -> Option<&CompiledFunction> {
        let ty = ty.erased();
        self.trampolines
            .iter()
            .find(|t| t.ty == ty)
            .map(|t| &t.function)
    }
}

/// A target architecture Cranelift can generate code for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetArch {
    /// x86-64.
    X86_64,
    /// AArch64.
    Aarch64,
    /// RISC-V 64 (RV64GC).
    Riscv64,
}

/// A configured Cranelift ISA.
#[derive(Clone)]
pub struct Compiler {
    isa: OwnedTargetIsa,
    arch: TargetArch,
    /// Whether the backend has vector registers for `v128` (INV-2).
    simd: bool,
}

/// Each riscv64 backend flag and the extension that turns it on (INV-2).
/// `has_c` is a preset of `has_zca` and `has_zcd`, so it is not here.
const RISCV_FLAGS: [(&str, RiscvExt); 27] = [
    ("has_m", RiscvExt::M),
    ("has_a", RiscvExt::A),
    ("has_f", RiscvExt::F),
    ("has_d", RiscvExt::D),
    ("has_v", RiscvExt::V),
    ("has_zicsr", RiscvExt::Zicsr),
    ("has_zifencei", RiscvExt::Zifencei),
    ("has_zba", RiscvExt::Zba),
    ("has_zbb", RiscvExt::Zbb),
    ("has_zbc", RiscvExt::Zbc),
    ("has_zbs", RiscvExt::Zbs),
    ("has_zbkb", RiscvExt::Zbkb),
    ("has_zicond", RiscvExt::Zicond),
    ("has_zfa", RiscvExt::Zfa),
    ("has_zfhmin", RiscvExt::Zfhmin),
    ("has_zfh", RiscvExt::Zfh),
    ("has_zvfh", RiscvExt::Zvfh),
    ("has_zvbb", RiscvExt::Zvbb),
    ("has_zca", RiscvExt::Zca),
    ("has_zcd", RiscvExt::Zcd),
    ("has_zcb", RiscvExt::Zcb),
    ("has_zvl32b", RiscvExt::Zvl32b),
    ("has_zvl64b", RiscvExt::Zvl64b),
    ("has_zvl128b", RiscvExt::Zvl128b),
    ("has_zvl256b", RiscvExt::Zvl256b),
    ("has_zvl512b", RiscvExt::Zvl512b),
    ("has_zvl1024b", RiscvExt::Zvl1024b),
];

impl core::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Compiler({})", self.isa.triple())
    }
}

impl Compiler {
    /// The compiler for the architecture this kernel is built for (INV-1),
    /// at that architecture's baseline.
    ///
    /// # Errors
    /// [`CompileError::Isa`] on an architecture without a backend.
    pub fn host() -> Result<Self, CompileError> {
        Self::host_with(IsaFeatures::Baseline)
    }

    /// The compiler for the architecture this kernel is built for (INV-1),
    /// using the extensions `features` names (what every CPU has,
    /// [`crate::hal::Cpus::isa_features`]).
    ///
    /// # Errors
    /// [`CompileError::Isa`] on an architecture without a backend.
    pub fn host_with(features: IsaFeatures) -> Result<Self, CompileError> {
        #[cfg(target_arch = "x86_64")]
        let arch = Some(TargetArch::X86_64);
        #[cfg(target_arch = "aarch64")]
        let arch = Some(TargetArch::Aarch64);
        #[cfg(target_arch = "riscv64")]
        let arch = Some(TargetArch::Riscv64);
        #[cfg(not(any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "riscv64"
        )))]
        let arch: Option<TargetArch> = None;
        let arch = arch.ok_or_else(|| CompileError::Isa("unsupported host architecture".into()))?;
        Self::for_features(arch, features)
    }

    /// The compiler for `arch` at its baseline (bare-metal ELF triple,
    /// default C ABI).
    ///
    /// # Errors
    /// [`CompileError::Isa`] if Cranelift rejects the configuration.
    pub fn for_arch(arch: TargetArch) -> Result<Self, CompileError> {
        Self::for_features(arch, IsaFeatures::Baseline)
    }

    /// The compiler for `arch` using the extensions `features` names
    /// (INV-2). RISC-V extensions given for another architecture are
    /// ignored: that architecture gets its baseline.
    ///
    /// # Errors
    /// [`CompileError::Isa`] if Cranelift rejects the configuration.
    pub fn for_features(arch: TargetArch, features: IsaFeatures) -> Result<Self, CompileError> {
        let triple = match arch {
            TargetArch::X86_64 => "x86_64-unknown-none",
            TargetArch::Aarch64 => "aarch64-unknown-none",
            TargetArch::Riscv64 => "riscv64gc-unknown-none-elf",
        };
        let isa_err = |e: &dyn core::fmt::Display| CompileError::Isa(format!("{triple}: {e}"));
        let mut builder =
            cranelift_codegen::isa::lookup_by_name(triple).map_err(|e| isa_err(&e))?;
        let mut simd = true;
        match arch {
            TargetArch::X86_64 => {
                let exts = match features {
                    IsaFeatures::X86(e) => e,
                    IsaFeatures::Baseline | IsaFeatures::Riscv(_) => X86Extensions::V2,
                };
                // The floor: SSE4.1 gives inline `ceil`/`floor`/`trunc`/
                // `nearest` (without it Cranelift emits libcalls, which we
                // do not link).
                if !exts.contains(X86Extensions::V2) {
                    return Err(isa_err(&format_args!(
                        "the CPU ({exts}) lacks x86-64-v2, the kernel's floor"
                    )));
                }
                // Every flag from the set, on or off, so nothing rests on
                // Cranelift's defaults.
                for ext in X86Ext::ALL {
                    let on = if exts.has(ext) { "true" } else { "false" };
                    builder
                        .set(ext.cranelift_flag(), on)
                        .map_err(|e| isa_err(&e))?;
                }
            }
            TargetArch::Aarch64 => {}
            TargetArch::Riscv64 => {
                let exts = match features {
                    IsaFeatures::Riscv(e) => e,
                    IsaFeatures::Baseline | IsaFeatures::X86(_) => RiscvExtensions::RV64GC,
                };
                // Every flag the backend has is set from the extensions,
                // on or off, so nothing rests on Cranelift's defaults.
                for (flag, ext) in RISCV_FLAGS {
                    let on = if exts.has(ext) { "true" } else { "false" };
                    builder.set(flag, on).map_err(|e| isa_err(&e))?;
                }
                simd = exts.has(RiscvExt::V);
            }
        }
        let mut flags = settings::builder();
        // Cranelift's IR verifier checks every function the translator
        // builds: on in debug builds (tests), where it catches translator
        // bugs at their source; off in release, where it costs a good part
        // of compile time.
        let verify = if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        };
        for (k, v) in [
            ("opt_level", "speed"),
            ("enable_verifier", verify),
            ("enable_probestack", "false"),
            ("preserve_frame_pointers", "true"),
            // Multi-value: results beyond the return registers go through
            // a hidden return area.
            ("enable_multi_ret_implicit_sret", "true"),
        ] {
            flags.set(k, v).map_err(|e| isa_err(&e))?;
        }
        let isa = builder
            .finish(settings::Flags::new(flags))
            .map_err(|e| isa_err(&e))?;
        Ok(Compiler { isa, arch, simd })
    }

    /// The Cranelift ISA.
    #[must_use]
    pub fn isa(&self) -> &dyn TargetIsa {
        &*self.isa
    }

    /// Whether this target compiles SIMD (`v128`): x86_64 and aarch64
    /// always do; riscv64 only with the V extension (INV-2).
    #[must_use]
    pub fn simd(&self) -> bool {
        self.simd
    }

    /// Pointer size of the target in bytes.
    #[must_use]
    pub fn pointer_bytes(&self) -> u8 {
        self.isa.pointer_bytes()
    }

    /// What the translator needs to know about this target.
    #[must_use]
    pub fn target(&self) -> TargetInfo {
        TargetInfo {
            frontend: self.isa.frontend_config(),
            call_conv: self.isa.default_call_conv(),
            simd: self.simd(),
            epoch_saving: self.arch == TargetArch::X86_64,
        }
    }

    /// Refuse a signature with `v128` on a target without SIMD (INV-2):
    /// the backend has no vector registers to pass it in. The error has no
    /// module offset to give, so it says 0.
    fn check_signature(&self, ty: &FuncType) -> Result<(), CompileError> {
        let v128 = ty
            .params
            .iter()
            .chain(&ty.results)
            .any(|t| *t == module::ValType::V128);
        if v128 && !self.simd() {
            return Err(CompileError::Unsupported {
                what: "SIMD (v128) on a target without vector support",
                offset: 0,
            });
        }
        Ok(())
    }

    fn emit(&self, func: Function, func_index: u32) -> Result<CompiledFunction, CompileError> {
        let cg = |message: String| CompileError::Codegen {
            func_index,
            message,
        };
        let mut ctx = Context::for_function(func);
        ctx.compile(self.isa(), &mut ControlPlane::default())
            .map_err(|e| cg(format!("{:?}", e.inner)))?;
        let code = ctx
            .compiled_code()
            .ok_or_else(|| cg("no code produced".into()))?;
        let buf = &code.buffer;
        let mut relocs = Vec::new();
        for r in buf.relocs() {
            let target = match &r.target {
                FinalizedRelocTarget::ExternalName(ExternalName::User(n)) => {
                    let name = ctx
                        .func
                        .params
                        .user_named_funcs()
                        .get(*n)
                        .ok_or_else(|| cg("dangling relocation name".into()))?;
                    RelocTarget::Function(name.index)
                }
                other => return Err(cg(format!("unexpected relocation target {other:?}"))),
            };
            relocs.push(Reloc {
                offset: r.offset,
                kind: r.kind,
                target,
                addend: r.addend,
            });
        }
        let traps = buf
            .traps()
            .iter()
            .map(|t| {
                TrapKind::from_trap_code(t.code)
                    .map(|kind| TrapSite {
                        code_offset: t.offset,
                        kind,
                    })
                    .ok_or_else(|| cg(format!("unmapped trap code {}", t.code)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let srclocs = buf
            .get_srclocs_sorted()
            .iter()
            .filter(|s| !s.loc.is_default())
            .map(|s| (s.start, s.loc.bits()))
            .collect();
        let mut handlers = Vec::new();
        for site in buf.call_sites() {
            let handler = site.exception_handlers.iter().find_map(|h| match h {
                FinalizedMachExceptionHandler::Default(at) => Some(*at),
                _ => None,
            });
            if let Some(handler) = handler {
                let frame_offset = site
                    .frame_offset
                    .ok_or_else(|| cg("a handler's call site has no frame offset".into()))?;
                handlers.push(HandlerSite {
                    ret_offset: site.ret_addr,
                    frame_offset,
                    handler,
                });
            }
        }
        handlers.sort_by_key(|h| h.ret_offset);
        Ok(CompiledFunction {
            code: buf.data().to_vec(),
            alignment: self.isa.function_alignment().preferred,
            relocs,
            traps,
            srclocs,
            handlers,
        })
    }

    /// Build and compile the array-call trampoline for signature `ty`.
    ///
    /// # Errors
    /// [`CompileError::Codegen`] if Cranelift fails;
    /// [`CompileError::Unsupported`] for a `v128` in `ty` on a target
    /// without SIMD.
    pub fn compile_trampoline(
        &self,
        ty: &FuncType,
        ctx: &mut FunctionBuilderContext,
    ) -> Result<CompiledFunction, CompileError> {
        self.check_signature(ty)?;
        let target = self.target();
        let ptr = target.frontend.pointer_type();
        let mut sig = Signature::new(target.call_conv);
        for _ in 0..4 {
            sig.params.push(AbiParam::new(ptr));
        }
        let mut func = Function::with_name_signature(UserFuncName::user(1, 0), sig);
        let callee_sig = translate::wasm_signature(ty, &target);
        let mut b = FunctionBuilder::new(&mut func, ctx);
        let sigref = b.import_signature(callee_sig);
        let p = entry_params(&mut b);
        let (callee_vmctx, code, values) = (p[0], p[2], p[3]);
        let flags =
            MemFlagsData::trusted().with_endianness(cranelift_codegen::ir::Endianness::Little);
        let mut args = Vec::with_capacity(ty.params.len() + 1);
        args.push(callee_vmctx);
        for (i, t) in ty.params.iter().enumerate() {
            let off = i32::try_from(i * 16).unwrap_or(i32::MAX);
            args.push(b.ins().load(ir_type(*t, ptr), flags, values, off));
        }
        let call = b.ins().call_indirect(sigref, code, &args);
        let results = b.inst_results(call).to_vec();
        for (i, r) in results.into_iter().enumerate() {
            let off = i32::try_from(i * 16).unwrap_or(i32::MAX);
            b.ins().store(flags, r, values, off);
        }
        b.ins().return_(&[]);
        b.finalize(target.frontend);
        self.emit(func, u32::MAX)
    }
}

impl Compiler {
    /// Build and compile the host-call thunk for signature `ty`: a function
    /// with the wasm signature of `ty` whose `vmctx` points at a host
    /// context whose first word is a C-ABI
    /// `fn(ctx, values: *mut u128) -> u32`. The thunk stores the arguments
    /// into a 16-byte-slot array on its stack (as the array-call trampoline
    /// reads them), calls that function, traps with
    /// [`TrapKind::Host`] when it returns non-zero, and otherwise returns
    /// the results it left in the same slots.
    ///
    /// # Errors
    /// [`CompileError::Codegen`] if Cranelift fails;
    /// [`CompileError::Unsupported`] for a `v128` in `ty` on a target
    /// without SIMD.
    pub fn compile_host_thunk(
        &self,
        ty: &FuncType,
        ctx: &mut FunctionBuilderContext,
    ) -> Result<CompiledFunction, CompileError> {
        use cranelift_codegen::ir::{StackSlotData, StackSlotKind};
        self.check_signature(ty)?;
        let target = self.target();
        let ptr = target.frontend.pointer_type();
        let sig = translate::wasm_signature(ty, &target);
        let mut func = Function::with_name_signature(UserFuncName::user(2, 0), sig);
        let mut b = FunctionBuilder::new(&mut func, ctx);
        let mut dsig = Signature::new(target.call_conv);
        dsig.params.push(AbiParam::new(ptr));
        dsig.params.push(AbiParam::new(ptr));
        dsig.returns
            .push(AbiParam::new(cranelift_codegen::ir::types::I32));
        let dsig = b.import_signature(dsig);
        let slots = ty.params.len().max(ty.results.len()).max(1);
        let size = u32::try_from(slots * 16).unwrap_or(u32::MAX);
        let ss =
            b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, size, 4));
        let p = entry_params(&mut b);
        let vmctx = p[0];
        let values = b.ins().stack_addr(ptr, ss, 0);
        let flags =
            MemFlagsData::trusted().with_endianness(cranelift_codegen::ir::Endianness::Little);
        for (i, v) in p[1..].iter().enumerate() {
            let off = i32::try_from(i * 16).unwrap_or(i32::MAX);
            b.ins().store(flags, *v, values, off);
        }
        let dispatch = b.ins().load(ptr, flags, vmctx, 0);
        let call = b.ins().call_indirect(dsig, dispatch, &[vmctx, values]);
        // A failed host function: trap at an ordinary trap site.
        if let Some(&status) = b.inst_results(call).first() {
            b.ins().trapnz(status, TRAP_HOST);
        }
        let mut rets = Vec::with_capacity(ty.results.len());
        for (i, t) in ty.results.iter().enumerate() {
            let off = i32::try_from(i * 16).unwrap_or(i32::MAX);
            rets.push(b.ins().load(ir_type(*t, ptr), flags, values, off));
        }
        b.ins().return_(&rets);
        b.finalize(target.frontend);
        self.emit(func, u32::MAX)
    }
}

/// Validate, translate and compile every defined function of `bytes`, plus
/// a trampoline per exported signature.
///
/// # Errors
/// [`CompileError`] for invalid or unsupported modules and codegen failures.
pub fn compile_module(
    bytes: &[u8],
    config: &TranslateConfig,
    compiler: &Compiler,
) -> Result<CompiledModule, CompileError> {
    compile_module_within(bytes, config, compiler, &mut Unmetered)
}

/// [`compile_module`], holding each function's estimated compilation
/// memory from `budget` while it compiles (budget INV-BUDGET-1), and what
/// the module keeps (its sections, its compiled functions) for good: the
/// module's [`CompiledModule::retained`] bytes stay held from `budget`, to
/// be given back by the caller when the module is dropped (`retained`).
///
/// # Errors
/// As [`compile_module`], and [`CompileError::OverBudget`] when `budget`
/// cannot hold a function's estimate, [`CompileError::TooLarge`] when a
/// function's estimate is past the limit for any function,
/// [`CompileError::MetadataOverBudget`] when it cannot hold what the module
/// keeps. Nothing stays held after an error.
pub fn compile_module_within(
    bytes: &[u8],
    config: &TranslateConfig,
    compiler: &Compiler,
    budget: &mut dyn Budget,
) -> Result<CompiledModule, CompileError> {
    keeping(budget, |budget, kept| {
        compile_keeping(bytes, config, compiler, budget, kept)
    })
}

/// Run `make` with a fresh [`Retained`] record: the module it returns
/// keeps what was held ([`CompiledModule::retained`]); on an error,
/// everything held is given back to `budget`.
pub(crate) fn keeping<E>(
    budget: &mut dyn Budget,
    make: impl FnOnce(&mut dyn Budget, &mut Retained) -> Result<CompiledModule, E>,
) -> Result<CompiledModule, E> {
    let mut kept = Retained::default();
    match make(&mut *budget, &mut kept) {
        Ok(mut m) => {
            m.retained = kept.held();
            Ok(m)
        }
        Err(e) => {
            budget.release(kept.held());
            Err(e)
        }
    }
}

fn compile_keeping(
    bytes: &[u8],
    config: &TranslateConfig,
    compiler: &Compiler,
    budget: &mut dyn Budget,
    kept: &mut Retained,
) -> Result<CompiledModule, CompileError> {
    let parsed = module::parse_within(bytes, config.features(), budget, kept)?;
    let info = parsed.info;
    if let Some(offset) = info.first_v128.filter(|_| !compiler.simd()) {
        return Err(CompileError::Unsupported {
            what: "SIMD (v128) on a target without vector support",
            offset,
        });
    }
    let offsets = VMOffsets::new(compiler.pointer_bytes(), &info);
    let target = compiler.target();
    let mut ctx = FunctionBuilderContext::new();
    let mut functions = Vec::with_capacity(parsed.bodies.len());
    for (i, body) in parsed.bodies.iter().enumerate() {
        if !budget.proceed() {
            return Err(CompileError::Interrupted);
        }
        let func_index = info.num_imported_funcs + module::len_u32(i);
        let mut meter = Meter::new(budget, func_index);
        let env = translate::ModuleEnv {
            info: &info,
            offsets: &offsets,
            config,
            target: &target,
        };
        let func = translate::translate_function(env, func_index, body, &mut ctx, &mut meter)?;
        let estimate = budget::estimate(&func);
        tracing::debug!(
            func_index,
            values = func.dfg.num_values(),
            insts = func.dfg.num_insts(),
            blocks = func.dfg.num_blocks(),
            estimate,
            "translated"
        );
        meter.reach(estimate)?;
        let compiled = compiler.emit(func, func_index)?;
        drop(meter);
        let at = body.range().start;
        kept.add(
            budget,
            retained::function_cost(&compiled),
            Section::Code,
            at,
        )?;
        functions.push(compiled);
    }
    let mut trampolines: Vec<Trampoline> = Vec::new();
    for e in &info.exports {
        if e.kind != ExportKind::Func {
            continue;
        }
        // Keyed by the erased signature, as the store looks them up.
        let Some(ty) = info.func_type(e.index).map(FuncType::erased) else {
            continue;
        };
        if trampolines.iter().any(|t| t.ty == ty) {
            continue;
        }
        let function = compiler.compile_trampoline(&ty, &mut ctx)?;
        trampolines.push(Trampoline { ty, function });
    }
    Ok(CompiledModule {
        info,
        offsets,
        functions,
        trampolines,
        retained: 0,
        linked: spin::Mutex::new(Weak::new()),
    })
}

/// Open a function's entry block and return its parameters.
fn entry_params(b: &mut FunctionBuilder<'_>) -> Vec<cranelift_codegen::ir::Value> {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    b.block_params(entry).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    // (module
    //   (func $f (export "f") (param i32 i32) (result i32)
    //     local.get 0 local.get 1 i32.div_s)
    //   (func (export "g") (result i32) i32.const 7 i32.const 1 call $f))
    const M: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0b, 0x02, 0x60, 0x02, 0x7f, 0x7f,
        0x01, 0x7f, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x03, 0x02, 0x00, 0x01, 0x07, 0x09, 0x02, 0x01,
        0x66, 0x00, 0x00, 0x01, 0x67, 0x00, 0x01, 0x0a, 0x12, 0x02, 0x07, 0x00, 0x20, 0x00, 0x20,
        0x01, 0x6d, 0x0b, 0x08, 0x00, 0x41, 0x07, 0x41, 0x01, 0x10, 0x00, 0x0b,
    ];

    #[test]
    fn compiles_for_every_arch() {
        for arch in [TargetArch::X86_64, TargetArch::Aarch64, TargetArch::Riscv64] {
            let c = Compiler::for_arch(arch).unwrap();
            let m = compile_module(M, &TranslateConfig::default(), &c).unwrap();
            assert_eq!(m.functions.len(), 2);
            assert_eq!(m.trampolines.len(), 2);
            let f = &m.functions[0];
            assert!(
                f.traps
                    .iter()
                    .any(|t| t.kind == TrapKind::IntegerDivideByZero)
            );
            assert!(f.traps.iter().any(|t| t.kind == TrapKind::IntegerOverflow));
            assert!(!f.srclocs.is_empty());
            // Cranelift checks the stack limit in non-leaf prologues.
            let g = &m.functions[1];
            assert!(g.traps.iter().any(|t| t.kind == TrapKind::StackOverflow));
            assert_eq!(g.relocs.len(), 1, "{arch:?}");
            assert_eq!(g.relocs[0].target, RelocTarget::Function(0));
        }
    }

    fn wat(text: &str) -> Vec<u8> {
        let buf = wast::parser::ParseBuffer::new(text).unwrap();
        let mut m: wast::Wat<'_> = wast::parser::parse(&buf).unwrap();
        m.encode().unwrap()
    }

    #[test]
    fn wasm2_features_compile_for_every_arch() {
        // Twelve results (more than any ISA returns in registers), block
        // parameters, references, tables, bulk memory, saturating
        // conversions.
        let m = wat(r#"(module
          (type $many (func (param i64) (result i64 i64 i64 i64 i64 i64 f64 f64 f64 f64 f64 f64)))
          (import "h" "many" (func $h (type $many)))
          (memory 1)
          (table $t 2 funcref)
          (table $e 2 externref)
          (data $d "abc")
          (elem $s func $f)
          (func $f (export "f") (type $many)
            (call $h (local.get 0)))
          (func (export "g") (param i32 externref) (result i32 i32 funcref)
            (i32.const 1)
            (block (param i32) (result i32 i32) (local.get 0))
            (table.set $e (i32.const 0) (local.get 1))
            (memory.copy (i32.const 0) (i32.const 1) (i32.const 2))
            (memory.fill (i32.const 0) (i32.const 1) (i32.const 2))
            (memory.init $d (i32.const 0) (i32.const 1) (i32.const 2))
            (data.drop $d)
            (table.init $t $s (i32.const 0) (i32.const 0) (i32.const 1))
            (elem.drop $s)
            (drop (table.grow $t (ref.func $f) (i32.const 1)))
            (table.fill $t (i32.const 0) (ref.null func) (i32.const 1))
            (table.copy $t $t (i32.const 0) (i32.const 1) (i32.const 1))
            (drop (i32.trunc_sat_f64_u (f64.const -1)))
            (table.get $t (i32.const 0))))"#);
        for arch in [TargetArch::X86_64, TargetArch::Aarch64, TargetArch::Riscv64] {
            let c = Compiler::for_arch(arch).unwrap();
            let m = compile_module(&m, &TranslateConfig::default(), &c).unwrap();
            assert_eq!(m.functions.len(), 2, "{arch:?}");
            let g = &m.functions[1];
            for kind in [
                TrapKind::MemoryOutOfBounds,
                TrapKind::TableAccessOutOfBounds,
            ] {
                assert!(g.traps.iter().any(|t| t.kind == kind), "{arch:?} {kind:?}");
            }
            let ty = m.info.func_type(1).unwrap().clone();
            c.compile_host_thunk(&ty, &mut FunctionBuilderContext::new())
                .unwrap();
        }
    }

    #[test]
    fn simd_compiles_on_x86_64_aarch64_and_riscv64_with_v_and_is_unsupported_without() {
        let body = r#"
          (memory 1)
          (func (export "f") (param v128 i32) (result v128 i32)
            (local.get 0)
            (i8x16.swizzle (v128.load offset=3 (local.get 1)))
            (f32x4.pmin (v128.const f32x4 1 2 3 4))
            (i32x4.trunc_sat_f64x2_u_zero)
            (i8x16.bitmask (local.get 0)))"#;
        let simd = wat(&format!("(module {body})"));
        // A v128 only inside a body (a local), no v128 in any signature.
        let local = wat(r#"(module (func (result i32) (local v128)
                 (i32x4.extract_lane 0 (local.get 0))))"#);
        let rvv = crate::hal::RiscvExtensions::parse("rv64imafdcv_zicsr_zifencei_zba_zbb_zbc_zbs")
            .unwrap();
        for c in [
            Compiler::for_arch(TargetArch::X86_64).unwrap(),
            Compiler::for_arch(TargetArch::Aarch64).unwrap(),
            Compiler::for_features(TargetArch::Riscv64, IsaFeatures::Riscv(rvv)).unwrap(),
        ] {
            assert!(c.simd());
            let arch = c.isa().triple().clone();
            let v2 = FuncType {
                params: alloc::vec![module::ValType::V128, module::ValType::I32],
                results: alloc::vec![module::ValType::V128],
            };
            let mut ctx = FunctionBuilderContext::new();
            c.compile_trampoline(&v2, &mut ctx).unwrap();
            c.compile_host_thunk(&v2, &mut ctx).unwrap();
            let m = compile_module(&simd, &TranslateConfig::default(), &c).unwrap();
            assert!(
                m.functions[0]
                    .traps
                    .iter()
                    .any(|t| t.kind == TrapKind::MemoryOutOfBounds),
                "{arch:?}"
            );
            compile_module(&local, &TranslateConfig::default(), &c).unwrap();
        }
        // RV64GC, and an ISA string without `v`: no SIMD.
        let c = Compiler::for_arch(TargetArch::Riscv64).unwrap();
        assert!(!c.simd());
        let no_v = crate::hal::RiscvExtensions::parse("rv64gc_zba_zbb").unwrap();
        assert!(
            !Compiler::for_features(TargetArch::Riscv64, IsaFeatures::Riscv(no_v))
                .unwrap()
                .simd()
        );
        let ty = FuncType {
            params: alloc::vec![module::ValType::V128],
            results: Vec::new(),
        };
        let mut ctx = FunctionBuilderContext::new();
        for r in [
            c.compile_trampoline(&ty, &mut ctx),
            c.compile_host_thunk(&ty, &mut ctx),
        ] {
            assert!(matches!(r, Err(CompileError::Unsupported { .. })), "{r:?}");
        }
        for m in [&simd, &local] {
            match compile_module(m, &TranslateConfig::default(), &c) {
                Err(CompileError::Unsupported { what, offset }) => {
                    assert!(what.contains("SIMD"), "{what}");
                    assert!(offset > 0);
                }
                other => panic!("riscv64 SIMD: {other:?}"),
            }
        }
    }

    #[test]
    fn every_trap_code_maps() {
        for code in [
            TRAP_UNREACHABLE,
            TRAP_TABLE_OUT_OF_BOUNDS,
            TRAP_INDIRECT_CALL_TO_NULL,
            TRAP_BAD_SIGNATURE,
            TRAP_TABLE_ACCESS_OUT_OF_BOUNDS,
            TRAP_INTERRUPTED,
            TRAP_HOST,
            TrapCode::STACK_OVERFLOW,
            TrapCode::HEAP_OUT_OF_BOUNDS,
            TrapCode::INTEGER_OVERFLOW,
            TrapCode::INTEGER_DIVISION_BY_ZERO,
            TrapCode::BAD_CONVERSION_TO_INTEGER,
        ] {
            assert!(TrapKind::from_trap_code(code).is_some());
        }
    }
}
