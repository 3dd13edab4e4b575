//! Function-body translation: wasmparser operators to Cranelift IR.
//!
//! One defined function becomes one Cranelift [`Function`] whose signature is
//! `(vmctx, wasm params...) -> wasm results` in Cranelift's `tail` calling
//! convention (see [`wasm_signature`], INV-11).
//!
//! Invariants:
//! - INV-1: the operand stack and control stack mirror the validator's: the
//!   body was validated before translation, so a mismatch is reported as
//!   [`CompileError::Invalid`], never a panic.
//! - INV-2: code after `br`, `br_table`, `return` and `unreachable` is
//!   skipped; only `block`/`loop`/`if` nesting, `else` and `end` are tracked
//!   there so the control stack stays right.
//! - INV-3: linear-memory accesses compute `base + zext(addr) + offset`. With
//!   a 64-bit pointer and `offset + size <= guard_bytes` the 4 GiB + guard
//!   reservation makes any out-of-bounds access fault (the access carries
//!   `HEAP_OUT_OF_BOUNDS`); otherwise an explicit check against the memory's
//!   byte length traps first.
//! - INV-3a: a 64-bit memory (memory64) is always checked explicitly:
//!   `addr + offset + size` must not overflow and must not pass its length.
//! - INV-4: every trap this translator emits uses one of the codes mapped by
//!   [`TrapKind::from_trap_code`](super::compile::TrapKind::from_trap_code).
//! - INV-5: direct calls to defined function `d` use
//!   `ExternalName::User { namespace: 0, index: d }`; imported and indirect
//!   calls go through a `VMFuncRef` and pass the callee's `vmctx`.
//! - INV-6: references (`funcref`, `externref`) are pointer-sized integers,
//!   0 for null; `ref.func f` is the address of `f`'s `VMFuncRef` in the
//!   caller's context.
//! - INV-7: operations that need the runtime (`table.grow/fill/copy/init`,
//!   `memory.copy/fill/init`, `elem.drop`, `data.drop`) call a builtin; one
//!   that can fail is followed by a `trapnz` on its status, so its trap is
//!   an ordinary trap site (builtins INV-3). `table.get/set/size` are
//!   inline.
//! - INV-8: a `v128` is an `I8X16` wherever it crosses an operator: on the
//!   operand stack, in locals, block parameters, globals, calls and
//!   signatures. A SIMD operator bitcasts its operands (little-endian lane
//!   order, free at run time) to the lane view it needs and its result back
//!   to `I8X16`, so control-flow merges never see two vector types.
//! - INV-12: blocks are sealed as soon as their last predecessor exists (an
//!   `if` arm and a `br_if` fallthrough at once, a frame's end and a loop
//!   header at the frame's `end`), so a `local.get` resolves its SSA value
//!   at once and the IR's growth is visible to the budget check after every
//!   operator (`budget` INV-BUDGET-1); what is left is sealed at the end.
//! - INV-9: on a target without vector support ([`TargetInfo::simd`] false:
//!   riscv64 without the V extension) every `v128` local, `v128` block type
//!   and SIMD operator is [`CompileError::Unsupported`] at its byte offset,
//!   never a codegen failure (`compile_module` refuses `v128` in types,
//!   imports and globals before translation).
//! - INV-10: every loop header, and the entry of every function that has
//!   a loop or makes a call, runs a preemption check against the store's
//!   interrupt cell (its `due` word set calls [`Builtin::Epoch`]), so wasm
//!   code never runs unboundedly without passing one: straight-line code
//!   between checks is finite. A function with neither runs a bounded
//!   number of operators before it returns to a caller, whose own checks
//!   bound the rest, so its entry check is left out. A tail call counts as
//!   a call: a function that tail-calls itself loops through its entry.
//! - INV-11: wasm functions use the `tail` calling convention
//!   ([`wasm_signature`]); `return_call`, `return_call_indirect` and
//!   `return_call_ref` end their block with Cranelift's `return_call*`, which pops the caller's
//!   frame before the callee runs, so a chain of tail calls runs in
//!   constant stack. The callee's results are the caller's (validation),
//!   and code after the call is unreachable (INV-2).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::types::{
    F32, F32X4, F64, F64X2, I8, I8X16, I16, I16X8, I32, I32X4, I64, I64X2,
};
use cranelift_codegen::ir::{
    AbiParam, ArgumentPurpose, Block, BlockArg, ConstantData, ExtFuncData, ExternalName, FuncRef,
    Function, GlobalValueData, InstBuilder, JumpTableData, MemFlagsData, SigRef, Signature,
    SourceLoc, TrapCode, Type, UserExternalName, UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use wasmparser::{BlockType, FunctionBody, MemArg, MemArgTarget, Operator};

use super::budget::Meter;
use super::builtins::{Arg as BuiltinArg, Builtin, BuiltinTrap};
use super::module::{CompileError, FuncType, ModuleInfo, ValType};
use super::vmoffsets::VMOffsets;

pub mod atomics;
mod exceptions;
mod relaxed;

use exceptions::{Callee, Scope};
pub use exceptions::{EXN_TAG, EXN_VALUES};

/// Trap code of `unreachable`.
pub const TRAP_UNREACHABLE: TrapCode = TrapCode::unwrap_user(1);
/// Trap code of a `call_indirect` index outside the table.
pub const TRAP_TABLE_OUT_OF_BOUNDS: TrapCode = TrapCode::unwrap_user(2);
/// Trap code of a `call_indirect` to a null (uninitialised) element.
pub const TRAP_INDIRECT_CALL_TO_NULL: TrapCode = TrapCode::unwrap_user(3);
/// Trap code of a `call_indirect` signature mismatch.
pub const TRAP_BAD_SIGNATURE: TrapCode = TrapCode::unwrap_user(4);
/// Trap code of a table access (`table.get/set`, or a table builtin's
/// failure status) outside the table.
pub const TRAP_TABLE_ACCESS_OUT_OF_BOUNDS: TrapCode = TrapCode::unwrap_user(5);
/// Trap code of a preemption check whose hook interrupted the code.
pub const TRAP_INTERRUPTED: TrapCode = TrapCode::unwrap_user(6);
/// Trap code of a host function that failed (its thunk checks the status).
pub const TRAP_HOST: TrapCode = TrapCode::unwrap_user(7);
/// Trap code of `call_ref` / `return_call_ref` of null.
pub const TRAP_NULL_FUNCTION_REFERENCE: TrapCode = TrapCode::unwrap_user(8);
/// Trap code of `ref.as_non_null` (or `throw_ref`) of null.
pub const TRAP_NULL_REFERENCE: TrapCode = TrapCode::unwrap_user(9);
/// Trap code of a `throw` whose exception the owner's memory cannot hold.
pub const TRAP_OUT_OF_MEMORY: TrapCode = TrapCode::unwrap_user(10);
/// Trap code of an atomic access at an address not a multiple of its size.
pub const TRAP_UNALIGNED_ATOMIC: TrapCode = TrapCode::unwrap_user(11);
/// Trap code of `memory.atomic.wait32/64` on a memory that is not shared.
pub const TRAP_UNSHARED_WAIT: TrapCode = TrapCode::unwrap_user(12);

/// Default guard after each memory's 4 GiB reservation: 32 MiB. Accesses
/// with a static offset up to this need no explicit check; larger offsets
/// are rare in compiled code and are checked. A small guard keeps a
/// memory's slot at 4 GiB + 32 MiB of virtual space, so a 64 TiB window
/// holds about 16,000 live memories (a 2 GiB guard would hold 10,900).
pub const DEFAULT_GUARD_BYTES: u64 = 32 << 20;

/// How linear memory is laid out, which decides bounds checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranslateConfig {
    /// Bytes of inaccessible guard after the 4 GiB reservation of each
    /// memory. An access whose `offset + size` is at most this needs no
    /// explicit bounds check on 64-bit targets.
    pub guard_bytes: u64,
    /// Check every access explicitly, whatever the guard.
    pub force_bounds_checks: bool,
    /// Accept modules with several memories (multi-memory, part of
    /// WebAssembly 3.0). On by default; off only for scripts that assert
    /// what WebAssembly 2.0 requires, that such modules are refused.
    pub multi_memory: bool,
    /// Accept 64-bit memories (memory64, part of WebAssembly 3.0). On by
    /// default; off, as for `multi_memory`, for the WebAssembly 1.0 and
    /// 2.0 scripts, whose binary tests assert the limits flags it uses
    /// are malformed.
    pub memory64: bool,
    /// Accept reference types (several tables, `funcref`/`externref`
    /// values) and what builds on them (typed function references, GC,
    /// exception handling). On by default; off for the threads
    /// proposal's scripts, written against WebAssembly 1.0, which assert
    /// that a second table is refused.
    pub reference_types: bool,
}

impl TranslateConfig {
    /// The WebAssembly features modules are validated with:
    /// [`super::module::features`] less what this configuration turns off.
    #[must_use]
    pub fn features(&self) -> wasmparser::WasmFeatures {
        let mut f = super::module::features();
        f.set(wasmparser::WasmFeatures::MULTI_MEMORY, self.multi_memory);
        f.set(wasmparser::WasmFeatures::MEMORY64, self.memory64);
        if !self.reference_types {
            f.remove(
                wasmparser::WasmFeatures::REFERENCE_TYPES
                    | wasmparser::WasmFeatures::FUNCTION_REFERENCES
                    | wasmparser::WasmFeatures::GC
                    | wasmparser::WasmFeatures::EXCEPTIONS,
            );
        }
        f
    }
}

impl Default for TranslateConfig {
    fn default() -> Self {
        TranslateConfig {
            guard_bytes: DEFAULT_GUARD_BYTES,
            force_bounds_checks: false,
            multi_memory: true,
            memory64: true,
            reference_types: true,
        }
    }
}

/// What translation needs to know about the target.
#[derive(Clone, Copy)]
pub struct TargetInfo {
    /// Frontend configuration of the ISA (pointer type).
    pub frontend: TargetFrontendConfig,
    /// The host's calling convention: of the builtins wasm code calls and
    /// of the array-call trampolines the kernel calls (wasm functions use
    /// `tail`, INV-11).
    pub call_conv: CallConv,
    /// Whether the backend lowers 128-bit vector types (INV-9).
    pub simd: bool,
    /// Whether the preemption check's cold path calls
    /// [`Builtin::EpochSaving`] in the `PreserveAll` convention (x86_64)
    /// instead of [`Builtin::Epoch`] in the default one.
    pub epoch_saving: bool,
}

impl TargetInfo {
    fn ptr(&self) -> Type {
        self.frontend.pointer_type()
    }
}

/// The Cranelift type of a wasm value type on a target whose pointer type
/// is `ptr`: references are pointer-sized words, 0 for null.
#[must_use]
pub fn ir_type(t: ValType, ptr: Type) -> Type {
    match t {
        ValType::I32 => I32,
        ValType::I64 => I64,
        ValType::F32 => F32,
        ValType::F64 => F64,
        ValType::Ref(_) => ptr,
        ValType::V128 => I8X16,
    }
}

/// The Cranelift signature of a wasm function of type `ty`: a leading
/// `vmctx` pointer, then the wasm parameters; the wasm results. Wasm
/// functions (and the host thunks that stand for imported host functions)
/// use Cranelift's `tail` convention, so `return_call*` replaces the
/// caller's frame (INV-11); only Cranelift code calls them: other wasm
/// functions, and the array-call trampolines, which themselves follow the
/// host's convention ([`TargetInfo::call_conv`]) towards the kernel.
#[must_use]
pub fn wasm_signature(ty: &FuncType, target: &TargetInfo) -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params
        .push(AbiParam::special(target.ptr(), ArgumentPurpose::VMContext));
    let ptr = target.ptr();
    sig.params
        .extend(ty.params.iter().map(|t| AbiParam::new(ir_type(*t, ptr))));
    sig.returns
        .extend(ty.results.iter().map(|t| AbiParam::new(ir_type(*t, ptr))));
    sig
}

fn invalid(message: &str, offset: u64) -> CompileError {
    CompileError::Invalid {
        message: message.into(),
        offset,
    }
}

/// Intern memory flags for a global value.
pub(crate) fn intern_flags(
    func: &mut Function,
    flags: MemFlagsData,
) -> Result<cranelift_codegen::ir::MemFlags, CompileError> {
    func.dfg
        .mem_flags
        .insert(flags)
        .map_err(|_| CompileError::Unsupported {
            what: "too many memory flag sets",
            offset: 0,
        })
}

/// What every function of a module is translated against.
#[derive(Clone, Copy)]
pub struct ModuleEnv<'a> {
    /// The module.
    pub info: &'a ModuleInfo,
    /// Its `VMContext` layout.
    pub offsets: &'a VMOffsets,
    /// The memory layout.
    pub config: &'a TranslateConfig,
    /// The target.
    pub target: &'a TargetInfo,
}

/// Whether a body can run unboundedly by itself: it has a loop or makes a
/// call of any kind (INV-10).
fn may_run_unbounded(body: &FunctionBody<'_>) -> Result<bool, CompileError> {
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        if matches!(
            ops.read()?,
            Operator::Loop { .. }
                | Operator::Call { .. }
                | Operator::CallIndirect { .. }
                | Operator::ReturnCall { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::CallRef { .. }
                | Operator::ReturnCallRef { .. }
        ) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Translate defined function `func_index` (in the function index space),
/// holding its IR's estimated compilation memory in `meter` as it grows.
///
/// # Errors
/// [`CompileError::Invalid`] if the body does not decode (it should have been
/// validated), [`CompileError::Unsupported`] for operators outside 2.0
/// (SIMD), [`CompileError::TooLarge`] / [`CompileError::OverBudget`] from
/// the meter.
pub fn translate_function(
    env: ModuleEnv<'_>,
    func_index: u32,
    body: &FunctionBody<'_>,
    ctx: &mut FunctionBuilderContext,
    meter: &mut Meter<'_>,
) -> Result<Function, CompileError> {
    let ModuleEnv {
        info,
        offsets,
        config,
        target,
    } = env;
    let body_offset = body.range().start;
    let ty = info
        .func_type(func_index)
        .ok_or_else(|| invalid("function without a type", body_offset))?;
    let sig = wasm_signature(ty, target);
    let mut func = Function::with_name_signature(UserFuncName::user(0, func_index), sig);
    let ptr = target.ptr();
    let vmctx_gv = func.create_global_value(GlobalValueData::VMContext);
    let readonly = intern_flags(&mut func, MemFlagsData::trusted().with_readonly())?;
    let stack_limit = func.create_global_value(GlobalValueData::Load {
        base: vmctx_gv,
        offset: off32(offsets.stack_limit()).into(),
        global_type: ptr,
        flags: readonly,
    });
    func.stack_limit = Some(stack_limit);
    let mut b = FunctionBuilder::new(&mut func, ctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let vmctx = params[0];

    let mut locals = Vec::new();
    for (p, t) in params[1..].iter().zip(&ty.params) {
        let v = b.declare_var(ir_type(*t, ptr));
        b.def_var(v, *p);
        locals.push(v);
    }
    let mut lr = body.get_locals_reader()?;
    for _ in 0..lr.get_count() {
        let at = lr.original_position();
        let (n, t) = lr.read()?;
        let t = ValType::from_wasm(t, at)?;
        if t == ValType::V128 && !target.simd {
            return Err(no_simd(at));
        }
        let t = ir_type(t, ptr);
        if locals.len() + n as usize > 50_000 {
            return Err(CompileError::Unsupported {
                what: "too many locals",
                offset: at,
            });
        }
        for _ in 0..n {
            let v = b.declare_var(t);
            let zero = zero(&mut b, t);
            b.def_var(v, zero);
            locals.push(v);
        }
    }

    let ret = b.create_block();
    for t in &ty.results {
        b.append_block_param(ret, ir_type(*t, ptr));
    }
    let mut tx = Translator {
        b,
        info,
        offsets,
        config,
        target,
        vmctx,
        locals,
        stack: Vec::new(),
        control: Vec::new(),
        reachable: true,
        dead_depth: 0,
        sigs: BTreeMap::new(),
        funcs: BTreeMap::new(),
        offset: body_offset,
        interrupt: None,
        scopes: Vec::new(),
        pending_landings: Vec::new(),
    };
    if may_run_unbounded(body)? {
        tx.epoch_check();
    }
    tx.control.push(Frame {
        kind: Kind::Block,
        dest: ret,
        params: 0,
        results: ty.results.len(),
        height: 0,
        branched: false,
    });
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        let (op, offset) = ops.read_with_offset()?;
        tx.offset = offset;
        tx.b.set_srcloc(SourceLoc::new(u32::try_from(offset).unwrap_or(u32::MAX)));
        tx.op(&op)?;
        meter.reach_partial(tx.b.func)?;
    }
    if !tx.control.is_empty() {
        return Err(invalid("function body not terminated", tx.offset));
    }
    if tx.reachable {
        let results = core::mem::take(&mut tx.stack);
        tx.b.ins().return_(&results);
    }
    let mut b = tx.b;
    b.seal_all_blocks();
    b.finalize(target.frontend);
    Ok(func)
}

fn off32(x: u32) -> i32 {
    i32::try_from(x).unwrap_or(i32::MAX)
}

fn zero(b: &mut FunctionBuilder<'_>, t: Type) -> Value {
    match t {
        F32 => b.ins().f32const(Ieee32::with_bits(0)),
        F64 => b.ins().f64const(Ieee64::with_bits(0)),
        t if t.is_vector() => vconst(b, t, 0),
        _ => b.ins().iconst(t, 0),
    }
}

/// A vector constant of type `t` whose 16 bytes are `bits`, little-endian.
fn vconst(b: &mut FunctionBuilder<'_>, t: Type, bits: u128) -> Value {
    let c = b
        .func
        .dfg
        .constants
        .insert(ConstantData::from(&bits.to_le_bytes()[..]));
    b.ins().vconst(t, c)
}

/// The error for SIMD on a target without vector support (INV-9).
fn no_simd(offset: u64) -> CompileError {
    CompileError::Unsupported {
        what: "SIMD (v128) on a target without vector support",
        offset,
    }
}

fn block_args(vals: &[Value]) -> Vec<BlockArg> {
    vals.iter().map(|v| BlockArg::Value(*v)).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Block,
    /// A `try_table`: a block with an exception scope (`exceptions`).
    TryTable,
    Loop {
        header: Block,
    },
    If {
        else_block: Block,
        seen_else: bool,
    },
}

#[derive(Debug)]
struct Frame {
    kind: Kind,
    /// Continuation after `end`; its params are the results.
    dest: Block,
    params: usize,
    results: usize,
    /// Operand stack height below the frame's params.
    height: usize,
    /// Whether a branch targets `dest`.
    branched: bool,
}

struct Translator<'a, 'b> {
    b: FunctionBuilder<'b>,
    info: &'a ModuleInfo,
    offsets: &'a VMOffsets,
    config: &'a TranslateConfig,
    target: &'a TargetInfo,
    vmctx: Value,
    locals: Vec<Variable>,
    stack: Vec<Value>,
    control: Vec<Frame>,
    reachable: bool,
    /// Nesting depth of blocks opened inside unreachable code (INV-2).
    dead_depth: u32,
    sigs: BTreeMap<u32, SigRef>,
    funcs: BTreeMap<u32, FuncRef>,
    offset: u64,
    /// The interrupt cell's address, loaded once at entry.
    interrupt: Option<Value>,
    /// Open `try_table`s, innermost last (`exceptions`).
    scopes: Vec<Scope>,
    /// Scopes whose landing block was made but has no code yet.
    pending_landings: Vec<usize>,
}

macro_rules! binop {
    ($s:ident, $m:ident) => {{
        let (x, y) = $s.pop2()?;
        let r = $s.b.ins().$m(x, y);
        $s.stack.push(r);
    }};
}
macro_rules! unop {
    ($s:ident, $m:ident) => {{
        let x = $s.pop()?;
        let r = $s.b.ins().$m(x);
        $s.stack.push(r);
    }};
}
macro_rules! convop {
    ($s:ident, $m:ident, $t:expr) => {{
        let x = $s.pop()?;
        let r = $s.b.ins().$m($t, x);
        $s.stack.push(r);
    }};
}
macro_rules! icmp {
    ($s:ident, $cc:ident) => {{
        let (x, y) = $s.pop2()?;
        let c = $s.b.ins().icmp(IntCC::$cc, x, y);
        let r = $s.b.ins().uextend(I32, c);
        $s.stack.push(r);
    }};
}
macro_rules! fcmp {
    ($s:ident, $cc:ident) => {{
        let (x, y) = $s.pop2()?;
        let c = $s.b.ins().fcmp(FloatCC::$cc, x, y);
        let r = $s.b.ins().uextend(I32, c);
        $s.stack.push(r);
    }};
}

impl Translator<'_, '_> {
    fn err(&self, m: &str) -> CompileError {
        invalid(m, self.offset)
    }

    fn pop(&mut self) -> Result<Value, CompileError> {
        let floor = self.control.last().map_or(0, |f| f.height);
        if self.stack.len() <= floor {
            return Err(self.err("operand stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.err("operand stack underflow"))
    }

    fn pop2(&mut self) -> Result<(Value, Value), CompileError> {
        let y = self.pop()?;
        let x = self.pop()?;
        Ok((x, y))
    }

    fn popn(&mut self, n: usize) -> Result<Vec<Value>, CompileError> {
        let floor = self.control.last().map_or(0, |f| f.height);
        if self.stack.len() < floor + n {
            return Err(self.err("operand stack underflow"));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn peekn(&self, n: usize) -> Result<&[Value], CompileError> {
        if self.stack.len() < n {
            return Err(self.err("operand stack underflow"));
        }
        Ok(&self.stack[self.stack.len() - n..])
    }

    fn block_type(&self, bt: BlockType) -> Result<(Vec<Type>, Vec<Type>), CompileError> {
        let ptr = self.ptr();
        if !self.target.simd {
            let v128 = match bt {
                BlockType::Empty => false,
                BlockType::Type(t) => t == wasmparser::ValType::V128,
                BlockType::FuncType(i) => self.info.types.get(i as usize).is_some_and(|ft| {
                    ft.params
                        .iter()
                        .chain(&ft.results)
                        .any(|t| *t == ValType::V128)
                }),
            };
            if v128 {
                return Err(no_simd(self.offset));
            }
        }
        match bt {
            BlockType::Empty => Ok((Vec::new(), Vec::new())),
            BlockType::Type(t) => Ok((
                Vec::new(),
                alloc::vec![ir_type(ValType::from_wasm(t, self.offset)?, ptr)],
            )),
            BlockType::FuncType(i) => {
                let ft = self
                    .info
                    .types
                    .get(i as usize)
                    .ok_or_else(|| self.err("unknown block type"))?;
                Ok((
                    ft.params.iter().map(|t| ir_type(*t, ptr)).collect(),
                    ft.results.iter().map(|t| ir_type(*t, ptr)).collect(),
                ))
            }
        }
    }

    fn new_block(&mut self, types: &[Type]) -> Block {
        let blk = self.b.create_block();
        for t in types {
            self.b.append_block_param(blk, *t);
        }
        blk
    }

    fn frame(&mut self, depth: u32) -> Result<&mut Frame, CompileError> {
        let n = self.control.len();
        let i = n
            .checked_sub(1 + depth as usize)
            .ok_or_else(|| invalid("branch depth out of range", self.offset))?;
        Ok(&mut self.control[i])
    }

    /// The block and arity a branch to `depth` jumps to (marks it branched).
    fn target(&mut self, depth: u32) -> Result<(Block, usize), CompileError> {
        let f = self.frame(depth)?;
        match f.kind {
            Kind::Loop { header } => Ok((header, f.params)),
            _ => {
                f.branched = true;
                Ok((f.dest, f.results))
            }
        }
    }

    /// Open a `block` (or a `try_table`, `kind`): a frame whose end is a
    /// new block taking its results, over the params on the stack.
    fn open_block(&mut self, kind: Kind, blockty: BlockType) -> Result<(), CompileError> {
        let (params, results) = self.block_type(blockty)?;
        let dest = self.new_block(&results);
        let height = self
            .stack
            .len()
            .checked_sub(params.len())
            .ok_or_else(|| self.err("operand stack underflow"))?;
        self.control.push(Frame {
            kind,
            dest,
            params: params.len(),
            results: results.len(),
            height,
            branched: false,
        });
        Ok(())
    }

    /// The signature of type `type_index` and its parameter count.
    fn sig_of(&mut self, type_index: u32) -> Result<(SigRef, usize), CompileError> {
        let n = self
            .info
            .types
            .get(type_index as usize)
            .ok_or_else(|| self.err("unknown type"))?
            .params
            .len();
        Ok((self.sig(type_index)?, n))
    }

    fn op(&mut self, op: &Operator<'_>) -> Result<(), CompileError> {
        if !self.reachable {
            return self.dead_op(op);
        }
        match *op {
            Operator::Nop => {}
            Operator::Unreachable => {
                self.b.ins().trap(TRAP_UNREACHABLE);
                self.reachable = false;
            }
            Operator::Block { blockty } => self.open_block(Kind::Block, blockty)?,
            Operator::Loop { blockty } => {
                let (params, results) = self.block_type(blockty)?;
                let header = self.new_block(&params);
                let dest = self.new_block(&results);
                let args = self.popn(params.len())?;
                self.b.ins().jump(header, &block_args(&args));
                self.b.switch_to_block(header);
                let height = self.stack.len();
                self.stack.extend_from_slice(self.b.block_params(header));
                self.epoch_check();
                self.control.push(Frame {
                    kind: Kind::Loop { header },
                    dest,
                    params: params.len(),
                    results: results.len(),
                    height,
                    branched: false,
                });
            }
            Operator::If { blockty } => {
                let (params, results) = self.block_type(blockty)?;
                let cond = self.pop()?;
                let then_block = self.new_block(&params);
                let else_block = self.new_block(&params);
                let dest = self.new_block(&results);
                let args = block_args(&self.popn(params.len())?);
                self.b
                    .ins()
                    .brif(cond, then_block, &args, else_block, &args);
                // INV-12: the brif is each arm's only predecessor.
                self.b.seal_block(then_block);
                self.b.seal_block(else_block);
                self.b.switch_to_block(then_block);
                let height = self.stack.len();
                self.stack
                    .extend_from_slice(self.b.block_params(then_block));
                self.control.push(Frame {
                    kind: Kind::If {
                        else_block,
                        seen_else: false,
                    },
                    dest,
                    params: params.len(),
                    results: results.len(),
                    height,
                    branched: false,
                });
            }
            Operator::Else => self.else_()?,
            Operator::End => self.end()?,
            Operator::Br { relative_depth } => {
                let (blk, n) = self.target(relative_depth)?;
                let args = block_args(self.peekn(n)?);
                self.b.ins().jump(blk, &args);
                self.reachable = false;
            }
            Operator::BrIf { relative_depth } => {
                let cond = self.pop()?;
                let (blk, n) = self.target(relative_depth)?;
                let args = block_args(self.peekn(n)?);
                let next = self.b.create_block();
                self.b.ins().brif(cond, blk, &args, next, &[]);
                self.b.seal_block(next);
                self.b.switch_to_block(next);
            }
            Operator::BrTable { ref targets } => {
                let index = self.pop()?;
                let default = targets.default();
                let depths = targets.targets().collect::<Result<Vec<u32>, _>>()?;
                let (_, arity) = self.target(default)?;
                let args = block_args(self.peekn(arity)?);
                // Each distinct depth gets one edge; with values to pass, the
                // edge is a small block (filled after the br_table, since the
                // current block must be terminated first) that jumps on.
                let mut edges: BTreeMap<u32, Block> = BTreeMap::new();
                let mut fill: Vec<(Block, Block)> = Vec::new();
                let mut all = Vec::with_capacity(depths.len() + 1);
                all.push(default);
                all.extend_from_slice(&depths);
                let mut blocks = Vec::with_capacity(all.len());
                for d in all {
                    let e = if let Some(e) = edges.get(&d) {
                        *e
                    } else {
                        let (blk, _) = self.target(d)?;
                        let e = if arity == 0 {
                            blk
                        } else {
                            let e = self.b.create_block();
                            fill.push((e, blk));
                            e
                        };
                        edges.insert(d, e);
                        e
                    };
                    blocks.push(e);
                }
                let dfg = &mut self.b.func.dfg;
                let calls: Vec<_> = blocks.iter().map(|b| dfg.block_call(*b, &[])).collect();
                let jt = self
                    .b
                    .create_jump_table(JumpTableData::new(calls[0], &calls[1..]));
                self.b.ins().br_table(index, jt);
                for (e, blk) in fill {
                    self.b.seal_block(e);
                    self.b.switch_to_block(e);
                    self.b.ins().jump(blk, &args);
                }
                self.reachable = false;
            }
            Operator::Return => {
                let n = self.control.len();
                let depth = u32::try_from(n.saturating_sub(1)).unwrap_or(u32::MAX);
                let (blk, arity) = self.target(depth)?;
                let args = block_args(self.peekn(arity)?);
                self.b.ins().jump(blk, &args);
                self.reachable = false;
            }
            Operator::Call { function_index } => self.call(function_index, false)?,
            Operator::CallIndirect {
                type_index,
                table_index,
            } => self.call_indirect(type_index, table_index, false)?,
            Operator::ReturnCall { function_index } => self.call(function_index, true)?,
            Operator::ReturnCallIndirect {
                type_index,
                table_index,
            } => self.call_indirect(type_index, table_index, true)?,
            Operator::CallRef { type_index } => self.call_ref(type_index, false)?,
            Operator::TryTable { ref try_table } => self.try_table(try_table)?,
            Operator::Throw { tag_index } => self.throw(tag_index)?,
            Operator::ThrowRef => self.throw_ref()?,
            Operator::ReturnCallRef { type_index } => self.call_ref(type_index, true)?,
            Operator::Drop => {
                self.pop()?;
            }
            Operator::Select | Operator::TypedSelect { .. } => {
                let c = self.pop()?;
                let (x, y) = self.pop2()?;
                let r = self.b.ins().select(c, x, y);
                self.stack.push(r);
            }
            Operator::LocalGet { local_index } => {
                let v = self.local(local_index)?;
                let r = self.b.use_var(v);
                self.stack.push(r);
            }
            Operator::LocalSet { local_index } => {
                let v = self.local(local_index)?;
                let x = self.pop()?;
                self.b.def_var(v, x);
            }
            Operator::LocalTee { local_index } => {
                let v = self.local(local_index)?;
                let x = *self.peekn(1)?.first().ok_or_else(|| self.err("empty"))?;
                self.b.def_var(v, x);
            }
            Operator::GlobalGet { global_index } => {
                let (addr, ty) = self.global(global_index)?;
                let r = self.b.ins().load(ty, MemFlagsData::trusted(), addr, 0);
                self.stack.push(r);
            }
            Operator::GlobalSet { global_index } => {
                let (addr, _) = self.global(global_index)?;
                let x = self.pop()?;
                self.b.ins().store(MemFlagsData::trusted(), x, addr, 0);
            }
            Operator::I32Load { memarg } => self.load(memarg, I32, 4, Ext::None)?,
            Operator::I64Load { memarg } => self.load(memarg, I64, 8, Ext::None)?,
            Operator::F32Load { memarg } => self.load(memarg, F32, 4, Ext::None)?,
            Operator::F64Load { memarg } => self.load(memarg, F64, 8, Ext::None)?,
            Operator::I32Load8S { memarg } => self.load(memarg, I32, 1, Ext::S)?,
            Operator::I32Load8U { memarg } => self.load(memarg, I32, 1, Ext::U)?,
            Operator::I32Load16S { memarg } => self.load(memarg, I32, 2, Ext::S)?,
            Operator::I32Load16U { memarg } => self.load(memarg, I32, 2, Ext::U)?,
            Operator::I64Load8S { memarg } => self.load(memarg, I64, 1, Ext::S)?,
            Operator::I64Load8U { memarg } => self.load(memarg, I64, 1, Ext::U)?,
            Operator::I64Load16S { memarg } => self.load(memarg, I64, 2, Ext::S)?,
            Operator::I64Load16U { memarg } => self.load(memarg, I64, 2, Ext::U)?,
            Operator::I64Load32S { memarg } => self.load(memarg, I64, 4, Ext::S)?,
            Operator::I64Load32U { memarg } => self.load(memarg, I64, 4, Ext::U)?,
            Operator::I32Store { memarg } | Operator::F32Store { memarg } => {
                self.store(memarg, 4)?;
            }
            Operator::I64Store { memarg } | Operator::F64Store { memarg } => {
                self.store(memarg, 8)?;
            }
            Operator::I32Store8 { memarg } | Operator::I64Store8 { memarg } => {
                self.store(memarg, 1)?;
            }
            Operator::I32Store16 { memarg } | Operator::I64Store16 { memarg } => {
                self.store(memarg, 2)?;
            }
            Operator::I64Store32 { memarg } => self.store(memarg, 4)?,
            Operator::MemorySize { mem } => {
                let len = self.memory_length(mem)?;
                let pages = self.b.ins().ushr_imm_u(len, 16);
                let r = self.narrow_for(mem, pages)?;
                self.stack.push(r);
            }
            Operator::MemoryGrow { mem } => {
                let delta = self.pop()?;
                let delta = self.widen(delta);
                let old = self.memory_grow(delta, mem)?;
                let r = self.narrow_for(mem, old)?;
                self.stack.push(r);
            }
            Operator::I32Const { value } => {
                let r = self.b.ins().iconst(I32, i64::from(value.cast_unsigned()));
                self.stack.push(r);
            }
            Operator::I64Const { value } => {
                let r = self.b.ins().iconst(I64, value);
                self.stack.push(r);
            }
            Operator::F32Const { value } => {
                let r = self.b.ins().f32const(Ieee32::with_bits(value.bits()));
                self.stack.push(r);
            }
            Operator::F64Const { value } => {
                let r = self.b.ins().f64const(Ieee64::with_bits(value.bits()));
                self.stack.push(r);
            }
            Operator::I32Eqz | Operator::I64Eqz => {
                let x = self.pop()?;
                let c = self.b.ins().icmp_imm_s(IntCC::Equal, x, 0);
                let r = self.b.ins().uextend(I32, c);
                self.stack.push(r);
            }
            Operator::I32Eq | Operator::I64Eq => icmp!(self, Equal),
            Operator::I32Ne | Operator::I64Ne => icmp!(self, NotEqual),
            Operator::I32LtS | Operator::I64LtS => icmp!(self, SignedLessThan),
            Operator::I32LtU | Operator::I64LtU => icmp!(self, UnsignedLessThan),
            Operator::I32GtS | Operator::I64GtS => icmp!(self, SignedGreaterThan),
            Operator::I32GtU | Operator::I64GtU => icmp!(self, UnsignedGreaterThan),
            Operator::I32LeS | Operator::I64LeS => icmp!(self, SignedLessThanOrEqual),
            Operator::I32LeU | Operator::I64LeU => icmp!(self, UnsignedLessThanOrEqual),
            Operator::I32GeS | Operator::I64GeS => icmp!(self, SignedGreaterThanOrEqual),
            Operator::I32GeU | Operator::I64GeU => icmp!(self, UnsignedGreaterThanOrEqual),
            Operator::F32Eq | Operator::F64Eq => fcmp!(self, Equal),
            Operator::F32Ne | Operator::F64Ne => fcmp!(self, NotEqual),
            Operator::F32Lt | Operator::F64Lt => fcmp!(self, LessThan),
            Operator::F32Gt | Operator::F64Gt => fcmp!(self, GreaterThan),
            Operator::F32Le | Operator::F64Le => fcmp!(self, LessThanOrEqual),
            Operator::F32Ge | Operator::F64Ge => fcmp!(self, GreaterThanOrEqual),
            Operator::I32Clz | Operator::I64Clz => unop!(self, clz),
            Operator::I32Ctz | Operator::I64Ctz => unop!(self, ctz),
            Operator::I32Popcnt | Operator::I64Popcnt => unop!(self, popcnt),
            Operator::I32Add | Operator::I64Add => binop!(self, iadd),
            Operator::I32Sub | Operator::I64Sub => binop!(self, isub),
            Operator::I32Mul | Operator::I64Mul => binop!(self, imul),
            Operator::I32DivS | Operator::I64DivS => {
                let (x, y) = self.pop2()?;
                self.b.ins().trapz(y, TrapCode::INTEGER_DIVISION_BY_ZERO);
                let ty = self.b.func.dfg.value_type(x);
                let min = if ty == I32 {
                    i64::from(i32::MIN)
                } else {
                    i64::MIN
                };
                let is_min = self.b.ins().icmp_imm_s(IntCC::Equal, x, min);
                let is_m1 = self.b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                let ovf = self.b.ins().band(is_min, is_m1);
                self.b.ins().trapnz(ovf, TrapCode::INTEGER_OVERFLOW);
                let r = self.b.ins().sdiv(x, y);
                self.stack.push(r);
            }
            Operator::I32DivU | Operator::I64DivU => self.div(|b, x, y| b.ins().udiv(x, y))?,
            Operator::I32RemS | Operator::I64RemS => self.div(|b, x, y| b.ins().srem(x, y))?,
            Operator::I32RemU | Operator::I64RemU => self.div(|b, x, y| b.ins().urem(x, y))?,
            Operator::I32And | Operator::I64And => binop!(self, band),
            Operator::I32Or | Operator::I64Or => binop!(self, bor),
            Operator::I32Xor | Operator::I64Xor => binop!(self, bxor),
            Operator::I32Shl | Operator::I64Shl => binop!(self, ishl),
            Operator::I32ShrS | Operator::I64ShrS => binop!(self, sshr),
            Operator::I32ShrU | Operator::I64ShrU => binop!(self, ushr),
            Operator::I32Rotl | Operator::I64Rotl => binop!(self, rotl),
            Operator::I32Rotr | Operator::I64Rotr => binop!(self, rotr),
            Operator::F32Abs | Operator::F64Abs => unop!(self, fabs),
            Operator::F32Neg | Operator::F64Neg => unop!(self, fneg),
            Operator::F32Ceil | Operator::F64Ceil => unop!(self, ceil),
            Operator::F32Floor | Operator::F64Floor => unop!(self, floor),
            Operator::F32Trunc | Operator::F64Trunc => unop!(self, trunc),
            Operator::F32Nearest | Operator::F64Nearest => unop!(self, nearest),
            Operator::F32Sqrt | Operator::F64Sqrt => unop!(self, sqrt),
            Operator::F32Add | Operator::F64Add => binop!(self, fadd),
            Operator::F32Sub | Operator::F64Sub => binop!(self, fsub),
            Operator::F32Mul | Operator::F64Mul => binop!(self, fmul),
            Operator::F32Div | Operator::F64Div => binop!(self, fdiv),
            Operator::F32Min | Operator::F64Min => binop!(self, fmin),
            Operator::F32Max | Operator::F64Max => binop!(self, fmax),
            Operator::F32Copysign | Operator::F64Copysign => binop!(self, fcopysign),
            Operator::I32WrapI64 => convop!(self, ireduce, I32),
            Operator::I64ExtendI32S => convop!(self, sextend, I64),
            Operator::I64ExtendI32U => convop!(self, uextend, I64),
            Operator::I32TruncF32S | Operator::I32TruncF64S => convop!(self, fcvt_to_sint, I32),
            Operator::I32TruncF32U | Operator::I32TruncF64U => convop!(self, fcvt_to_uint, I32),
            Operator::I64TruncF32S | Operator::I64TruncF64S => convop!(self, fcvt_to_sint, I64),
            Operator::I64TruncF32U | Operator::I64TruncF64U => convop!(self, fcvt_to_uint, I64),
            Operator::F32ConvertI32S | Operator::F32ConvertI64S => {
                convop!(self, fcvt_from_sint, F32);
            }
            Operator::F32ConvertI32U | Operator::F32ConvertI64U => {
                convop!(self, fcvt_from_uint, F32);
            }
            Operator::F64ConvertI32S | Operator::F64ConvertI64S => {
                convop!(self, fcvt_from_sint, F64);
            }
            Operator::F64ConvertI32U | Operator::F64ConvertI64U => {
                convop!(self, fcvt_from_uint, F64);
            }
            Operator::F32DemoteF64 => convop!(self, fdemote, F32),
            Operator::F64PromoteF32 => convop!(self, fpromote, F64),
            Operator::I32ReinterpretF32 => self.bitcast(I32)?,
            Operator::I64ReinterpretF64 => self.bitcast(I64)?,
            Operator::F32ReinterpretI32 => self.bitcast(F32)?,
            Operator::F64ReinterpretI64 => self.bitcast(F64)?,
            Operator::I32Extend8S => self.sext_low(I32, I8)?,
            Operator::I32Extend16S => self.sext_low(I32, I16)?,
            Operator::I64Extend8S => self.sext_low(I64, I8)?,
            Operator::I64Extend16S => self.sext_low(I64, I16)?,
            Operator::I64Extend32S => self.sext_low(I64, I32)?,
            Operator::I32TruncSatF32S | Operator::I32TruncSatF64S => {
                convop!(self, fcvt_to_sint_sat, I32);
            }
            Operator::I32TruncSatF32U | Operator::I32TruncSatF64U => {
                convop!(self, fcvt_to_uint_sat, I32);
            }
            Operator::I64TruncSatF32S | Operator::I64TruncSatF64S => {
                convop!(self, fcvt_to_sint_sat, I64);
            }
            Operator::I64TruncSatF32U | Operator::I64TruncSatF64U => {
                convop!(self, fcvt_to_uint_sat, I64);
            }
            Operator::RefNull { .. } => {
                let ptr = self.ptr();
                let r = self.b.ins().iconst(ptr, 0);
                self.stack.push(r);
            }
            Operator::RefIsNull => {
                let x = self.pop()?;
                let c = self.b.ins().icmp_imm_s(IntCC::Equal, x, 0);
                let r = self.b.ins().uextend(I32, c);
                self.stack.push(r);
            }
            Operator::RefFunc { function_index } => {
                let r = self.func_ref(function_index)?;
                self.stack.push(r);
            }
            Operator::RefAsNonNull => {
                let r = self.pop()?;
                self.b.ins().trapz(r, TRAP_NULL_REFERENCE);
                self.stack.push(r);
            }
            Operator::BrOnNull { relative_depth } => {
                // Branch without the reference when it is null; go on with
                // it (now known non-null) otherwise.
                let r = self.pop()?;
                let (blk, n) = self.target(relative_depth)?;
                let args = block_args(self.peekn(n)?);
                let next = self.b.create_block();
                self.b.ins().brif(r, next, &[], blk, &args);
                self.b.seal_block(next);
                self.b.switch_to_block(next);
                self.stack.push(r);
            }
            Operator::BrOnNonNull { relative_depth } => {
                // Branch with the reference (the label's last value) when
                // it is not null; drop it and go on otherwise.
                let r = self.pop()?;
                let (blk, n) = self.target(relative_depth)?;
                let below = n
                    .checked_sub(1)
                    .ok_or_else(|| self.err("br_on_non_null to a label without a reference"))?;
                let mut vals = self.peekn(below)?.to_vec();
                vals.push(r);
                let next = self.b.create_block();
                self.b.ins().brif(r, blk, &block_args(&vals), next, &[]);
                self.b.seal_block(next);
                self.b.switch_to_block(next);
            }
            Operator::TableGet { table } => {
                let index = self.pop()?;
                let slot = self.table_slot(table, index)?;
                let ptr = self.ptr();
                let r = self.b.ins().load(ptr, MemFlagsData::trusted(), slot, 0);
                self.stack.push(r);
            }
            Operator::TableSet { table } => {
                let value = self.pop()?;
                let index = self.pop()?;
                let slot = self.table_slot(table, index)?;
                self.b.ins().store(MemFlagsData::trusted(), value, slot, 0);
            }
            Operator::TableSize { table } => {
                let def = self.table_definition(table)?;
                let off = off32(self.offsets.table_definition_count());
                let r = self.b.ins().load(I32, MemFlagsData::trusted(), def, off);
                self.stack.push(r);
            }
            Operator::TableGrow { table } => {
                self.check_table(table)?;
                let delta = self.pop()?;
                let init = self.pop()?;
                let t = self.b.ins().iconst(I32, i64::from(table));
                let r = self.builtin(Builtin::TableGrow, &[t, init, delta])?;
                self.stack.push(r);
            }
            Operator::TableFill { table } => {
                self.check_table(table)?;
                let [dst, value, len] = self.popk()?;
                let t = self.b.ins().iconst(I32, i64::from(table));
                self.builtin(Builtin::TableFill, &[t, dst, value, len])?;
            }
            Operator::TableCopy {
                dst_table,
                src_table,
            } => {
                self.check_table(dst_table)?;
                self.check_table(src_table)?;
                let [dst, src, len] = self.popk()?;
                let d = self.b.ins().iconst(I32, i64::from(dst_table));
                let s = self.b.ins().iconst(I32, i64::from(src_table));
                self.builtin(Builtin::TableCopy, &[d, s, dst, src, len])?;
            }
            Operator::TableInit { elem_index, table } => {
                self.check_table(table)?;
                let [dst, src, len] = self.popk()?;
                let t = self.b.ins().iconst(I32, i64::from(table));
                let e = self.b.ins().iconst(I32, i64::from(elem_index));
                self.builtin(Builtin::TableInit, &[t, e, dst, src, len])?;
            }
            Operator::ElemDrop { elem_index } => {
                let e = self.b.ins().iconst(I32, i64::from(elem_index));
                self.builtin(Builtin::ElemDrop, &[e])?;
            }
            Operator::MemoryCopy { dst_mem, src_mem } => {
                self.check_mem(dst_mem)?;
                self.check_mem(src_mem)?;
                let [dst, src, len] = self.popk()?;
                let (dst, src, len) = (self.widen(dst), self.widen(src), self.widen(len));
                let d = self.b.ins().iconst(I32, i64::from(dst_mem));
                let s = self.b.ins().iconst(I32, i64::from(src_mem));
                self.builtin(Builtin::MemoryCopy, &[d, dst, s, src, len])?;
            }
            Operator::MemoryFill { mem } => {
                self.check_mem(mem)?;
                let [dst, value, len] = self.popk()?;
                let (dst, len) = (self.widen(dst), self.widen(len));
                let m = self.b.ins().iconst(I32, i64::from(mem));
                self.builtin(Builtin::MemoryFill, &[m, dst, value, len])?;
            }
            Operator::MemoryInit { data_index, mem } => {
                self.check_mem(mem)?;
                let [dst, src, len] = self.popk()?;
                let dst = self.widen(dst);
                let m = self.b.ins().iconst(I32, i64::from(mem));
                let d = self.b.ins().iconst(I32, i64::from(data_index));
                self.builtin(Builtin::MemoryInit, &[m, d, dst, src, len])?;
            }
            Operator::DataDrop { data_index } => {
                let d = self.b.ins().iconst(I32, i64::from(data_index));
                self.builtin(Builtin::DataDrop, &[d])?;
            }
            _ => {
                if self.atomic_op(op)? {
                    return Ok(());
                }
                return self.simd_op(op);
            }
        }
        Ok(())
    }

    /// An operator in unreachable code (INV-2).
    fn dead_op(&mut self, op: &Operator<'_>) -> Result<(), CompileError> {
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. } => {
                self.dead_depth += 1;
            }
            Operator::Else if self.dead_depth == 0 => self.else_()?,
            Operator::End if self.dead_depth == 0 => self.end()?,
            Operator::End => self.dead_depth -= 1,
            _ => {}
        }
        Ok(())
    }

    fn else_(&mut self) -> Result<(), CompileError> {
        let reachable = self.reachable;
        let frame = self
            .control
            .last_mut()
            .ok_or_else(|| invalid("else outside if", self.offset))?;
        let Kind::If {
            else_block,
            seen_else: false,
        } = frame.kind
        else {
            return Err(self.err("else outside if"));
        };
        frame.kind = Kind::If {
            else_block,
            seen_else: true,
        };
        let (dest, results, height) = (frame.dest, frame.results, frame.height);
        if reachable {
            frame.branched = true;
            let args = block_args(self.peekn(results)?);
            self.b.ins().jump(dest, &args);
        }
        self.stack.truncate(height);
        self.b.switch_to_block(else_block);
        self.stack
            .extend_from_slice(self.b.block_params(else_block));
        self.reachable = true;
        Ok(())
    }

    fn end(&mut self) -> Result<(), CompileError> {
        let mut frame = self
            .control
            .pop()
            .ok_or_else(|| invalid("unbalanced end", self.offset))?;
        if self.reachable {
            frame.branched = true;
            let args = block_args(self.peekn(frame.results)?);
            self.b.ins().jump(frame.dest, &args);
        }
        if let Kind::If {
            else_block,
            seen_else: false,
        } = frame.kind
        {
            // No else: the false branch passes the params through.
            self.b.switch_to_block(else_block);
            let args = block_args(self.b.block_params(else_block));
            self.b.ins().jump(frame.dest, &args);
            frame.branched = true;
        }
        // INV-12: only code inside a frame branches to its end or to its
        // loop header, so both have every predecessor now.
        if let Kind::Loop { header } = frame.kind {
            self.b.seal_block(header);
        }
        if frame.kind == Kind::TryTable {
            self.end_scope();
        }
        self.b.seal_block(frame.dest);
        self.stack.truncate(frame.height);
        if frame.branched {
            self.b.switch_to_block(frame.dest);
            self.stack
                .extend_from_slice(self.b.block_params(frame.dest));
            self.reachable = true;
        } else {
            self.reachable = false;
        }
        Ok(())
    }

    fn local(&self, i: u32) -> Result<Variable, CompileError> {
        self.locals
            .get(i as usize)
            .copied()
            .ok_or_else(|| self.err("unknown local"))
    }

    fn ptr(&self) -> Type {
        self.target.ptr()
    }

    fn vmctx_load(&mut self, ty: Type, offset: u32, readonly: bool) -> Value {
        let mut flags = MemFlagsData::trusted();
        if readonly {
            flags = flags.with_readonly();
        }
        let vmctx = self.vmctx;
        self.b.ins().load(ty, flags, vmctx, off32(offset))
    }

    /// Address and type of global `i`'s slot.
    fn global(&mut self, i: u32) -> Result<(Value, Type), CompileError> {
        let g = *self
            .info
            .globals
            .get(i as usize)
            .ok_or_else(|| self.err("unknown global"))?;
        let ty = ir_type(g.ty, self.ptr());
        if i < self.info.num_imported_globals {
            let p = self.vmctx_load(self.ptr(), self.offsets.imported_global(i), true);
            Ok((p, ty))
        } else {
            let off = self
                .offsets
                .defined_global(i - self.info.num_imported_globals);
            let p = self.b.ins().iadd_imm_u(self.vmctx, i64::from(off));
            Ok((p, ty))
        }
    }

    fn sig(&mut self, type_index: u32) -> Result<SigRef, CompileError> {
        if let Some(s) = self.sigs.get(&type_index) {
            return Ok(*s);
        }
        let ty = self
            .info
            .types
            .get(type_index as usize)
            .ok_or_else(|| self.err("unknown type"))?;
        let s = self.b.import_signature(wasm_signature(ty, self.target));
        self.sigs.insert(type_index, s);
        Ok(s)
    }

    /// `call f`, or with `tail` `return_call f` (INV-11).
    fn call(&mut self, f: u32, tail: bool) -> Result<(), CompileError> {
        let type_index = *self
            .info
            .functions
            .get(f as usize)
            .ok_or_else(|| self.err("unknown function"))?;
        let n = self.info.types[type_index as usize].params.len();
        let sig = self.sig(type_index)?;
        let mut args = self.popn(n)?;
        let callee = if f < self.info.num_imported_funcs {
            let base = self.offsets.imported_func(f);
            let code = self.vmctx_load(self.ptr(), base + self.offsets.func_ref_code(), true);
            let callee_vmctx =
                self.vmctx_load(self.ptr(), base + self.offsets.func_ref_vmctx(), true);
            args.insert(0, callee_vmctx);
            if tail {
                self.b.ins().return_call_indirect(sig, code, &args);
                self.reachable = false;
                return Ok(());
            }
            Callee::Indirect(code)
        } else {
            let fref = match self.funcs.get(&f) {
                Some(r) => *r,
                None => {
                    let defined = f - self.info.num_imported_funcs;
                    let name = self
                        .b
                        .func
                        .declare_imported_user_function(UserExternalName::new(0, defined));
                    let r = self.b.import_function(ExtFuncData {
                        name: ExternalName::User(name),
                        signature: sig,
                        colocated: true,
                        patchable: false,
                    });
                    self.funcs.insert(f, r);
                    r
                }
            };
            args.insert(0, self.vmctx);
            if tail {
                self.b.ins().return_call(fref, &args);
                self.reachable = false;
                return Ok(());
            }
            Callee::Direct(fref)
        };
        let results = self.emit_call(callee, sig, &args)?;
        self.stack.extend(results);
        Ok(())
    }

    /// `call_indirect`, or with `tail` `return_call_indirect` (INV-11):
    /// the same checks, then a call that replaces this frame.
    fn call_indirect(
        &mut self,
        type_index: u32,
        table: u32,
        tail: bool,
    ) -> Result<(), CompileError> {
        if table as usize >= self.info.tables.len() {
            return Err(self.err("unknown table"));
        }
        let (sig, n) = self.sig_of(type_index)?;
        let index = self.pop()?;
        let args = self.popn(n)?;
        let ptr = self.ptr();
        let o = *self.offsets;
        let def = self.vmctx_load(ptr, o.table_pointer(table), true);
        let trusted = MemFlagsData::trusted();
        let base = self
            .b
            .ins()
            .load(ptr, trusted, def, off32(o.table_definition_base()));
        let count = self
            .b
            .ins()
            .load(I32, trusted, def, off32(o.table_definition_count()));
        let oob = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, count);
        self.b.ins().trapnz(oob, TRAP_TABLE_OUT_OF_BOUNDS);
        let idx = if ptr == I32 {
            index
        } else {
            self.b.ins().uextend(ptr, index)
        };
        let scaled = self.b.ins().imul_imm_u(idx, i64::from(o.pointer_size()));
        let slot = self.b.ins().iadd(base, scaled);
        let fref = self.b.ins().load(ptr, trusted, slot, 0);
        self.b.ins().trapz(fref, TRAP_INDIRECT_CALL_TO_NULL);
        let actual = self
            .b
            .ins()
            .load(I32, trusted, fref, off32(o.func_ref_type_id()));
        let expected = self.vmctx_load(I32, o.type_id(type_index), true);
        let bad = self.b.ins().icmp(IntCC::NotEqual, actual, expected);
        self.b.ins().trapnz(bad, TRAP_BAD_SIGNATURE);
        self.call_func_ref(sig, fref, args, tail)
    }

    /// `call_ref $t`, or with `tail` `return_call_ref $t` (INV-11): the
    /// validator proved the reference is of type `$t`, so only null is
    /// checked.
    fn call_ref(&mut self, type_index: u32, tail: bool) -> Result<(), CompileError> {
        let (sig, n) = self.sig_of(type_index)?;
        let fref = self.pop()?;
        let args = self.popn(n)?;
        self.b.ins().trapz(fref, TRAP_NULL_FUNCTION_REFERENCE);
        self.call_func_ref(sig, fref, args, tail)
    }

    /// Call the non-null `VMFuncRef` at `fref` with signature `sig` and the
    /// wasm arguments `args`; the results go on the stack, or with `tail`
    /// the call returns from this function.
    fn call_func_ref(
        &mut self,
        sig: SigRef,
        fref: Value,
        mut args: Vec<Value>,
        tail: bool,
    ) -> Result<(), CompileError> {
        let ptr = self.ptr();
        let o = *self.offsets;
        let trusted = MemFlagsData::trusted();
        let code = self
            .b
            .ins()
            .load(ptr, trusted, fref, off32(o.func_ref_code()));
        let callee_vmctx = self
            .b
            .ins()
            .load(ptr, trusted, fref, off32(o.func_ref_vmctx()));
        args.insert(0, callee_vmctx);
        if tail {
            self.b.ins().return_call_indirect(sig, code, &args);
            self.reachable = false;
            return Ok(());
        }
        let results = self.emit_call(Callee::Indirect(code), sig, &args)?;
        self.stack.extend(results);
        Ok(())
    }

    fn check_mem(&self, mem: u32) -> Result<(), CompileError> {
        if (mem as usize) < self.info.memories.len() {
            Ok(())
        } else {
            Err(self.err("unknown memory"))
        }
    }

    /// The memory's `VMMemoryDefinition` pointer (readonly, VMContext INV-1).
    fn memory_definition(&mut self, mem: u32) -> Result<Value, CompileError> {
        self.check_mem(mem)?;
        let flags = MemFlagsData::trusted().with_readonly().with_can_move();
        let off = off32(self.offsets.memory_pointer(mem));
        let (ptr, vmctx) = (self.ptr(), self.vmctx);
        Ok(self.b.ins().load(ptr, flags, vmctx, off))
    }

    fn memory_length(&mut self, mem: u32) -> Result<Value, CompileError> {
        let d = self.memory_definition(mem)?;
        let off = off32(self.offsets.memory_definition_length());
        // Not readonly: memory.grow changes it (VMContext INV-1).
        Ok(self.b.ins().load(I64, MemFlagsData::trusted(), d, off))
    }

    /// Effective address (and immediate offset) of an access of `size`
    /// bytes at the popped address (INV-3).
    fn addr(&mut self, memarg: MemArg, size: u64) -> Result<(Value, i32), CompileError> {
        let addr = self.pop()?;
        let MemArgTarget::Memory(mem) = memarg.target else {
            return Err(CompileError::Unsupported {
                what: "array memory access",
                offset: self.offset,
            });
        };
        let ptr = self.ptr();
        let def = self.memory_definition(mem)?;
        let flags = MemFlagsData::trusted().with_readonly().with_can_move();
        let base_off = off32(self.offsets.memory_definition_base());
        let base = self.b.ins().load(ptr, flags, def, base_off);
        let offset = memarg.offset;
        if self.is_memory64(mem)? {
            return self.addr64(addr, mem, base, offset, size);
        }
        if offset > u64::from(u32::MAX) {
            return Err(CompileError::Unsupported {
                what: "memory offset above 4 GiB",
                offset: self.offset,
            });
        }
        let guarded = ptr == I64
            && !self.config.force_bounds_checks
            && offset + size <= self.config.guard_bytes;
        let a64 = self.b.ins().uextend(I64, addr);
        if !guarded {
            let len = self.memory_length(mem)?;
            let end = self
                .b
                .ins()
                .iadd_imm_u(a64, i64::try_from(offset + size).unwrap_or(i64::MAX));
            let oob = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, len);
            self.b.ins().trapnz(oob, TrapCode::HEAP_OUT_OF_BOUNDS);
        }
        let (a, imm) = match i32::try_from(offset) {
            Ok(imm) => (a64, imm),
            Err(_) => (
                self.b
                    .ins()
                    .iadd_imm_u(a64, i64::try_from(offset).unwrap_or(i64::MAX)),
                0,
            ),
        };
        let a = if ptr == I64 {
            a
        } else {
            self.b.ins().ireduce(ptr, a)
        };
        Ok((self.b.ins().iadd(base, a), imm))
    }

    /// [`Self::addr`] for a 64-bit memory (INV-3a): any `i64` address and
    /// any `u64` offset, so no reservation can stand in for the check:
    /// `addr + offset + size`, trapping if it overflows, must not pass the
    /// memory's length.
    fn addr64(
        &mut self,
        addr: Value,
        mem: u32,
        base: Value,
        offset: u64,
        size: u64,
    ) -> Result<(Value, i32), CompileError> {
        let len = self.memory_length(mem)?;
        let oob = TrapCode::HEAP_OUT_OF_BOUNDS;
        let end = if let Some(reach) = offset.checked_add(size) {
            let reach = self.b.ins().iconst(I64, reach.cast_signed());
            self.b.ins().uadd_overflow_trap(addr, reach, oob)
        } else {
            // An offset this close to 2^64 overflows with any address:
            // the access is valid and always traps.
            let off = self.b.ins().iconst(I64, offset.cast_signed());
            let at = self.b.ins().uadd_overflow_trap(addr, off, oob);
            let size = self.b.ins().iconst(I64, size.cast_signed());
            self.b.ins().uadd_overflow_trap(at, size, oob)
        };
        let past = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, len);
        self.b.ins().trapnz(past, oob);
        // In bounds, so `addr + offset` fits the memory and `u64`.
        let (a, imm) = match i32::try_from(offset) {
            Ok(imm) => (addr, imm),
            Err(_) => (self.b.ins().iadd_imm_u(addr, offset.cast_signed()), 0),
        };
        let ptr = self.ptr();
        let a = if ptr == I64 {
            a
        } else {
            self.b.ins().ireduce(ptr, a)
        };
        Ok((self.b.ins().iadd(base, a), imm))
    }

    fn load(&mut self, memarg: MemArg, ty: Type, size: u64, ext: Ext) -> Result<(), CompileError> {
        let (a, imm) = self.addr(memarg, size)?;
        let f = heap_flags();
        let ins = self.b.ins();
        let r = match (ext, size) {
            (Ext::None, _) => ins.load(ty, f, a, imm),
            (Ext::S, 1) => ins.sload8(ty, f, a, imm),
            (Ext::U, 1) => ins.uload8(ty, f, a, imm),
            (Ext::S, 2) => ins.sload16(ty, f, a, imm),
            (Ext::U, 2) => ins.uload16(ty, f, a, imm),
            (Ext::S, _) => ins.sload32(f, a, imm),
            (Ext::U, _) => ins.uload32(f, a, imm),
        };
        self.stack.push(r);
        Ok(())
    }

    fn store(&mut self, memarg: MemArg, size: u64) -> Result<(), CompileError> {
        let x = self.pop()?;
        let (a, imm) = self.addr(memarg, size)?;
        let f = heap_flags();
        let width = self.b.func.dfg.value_type(x).bytes();
        let ins = self.b.ins();
        match size {
            1 => ins.istore8(f, x, a, imm),
            2 => ins.istore16(f, x, a, imm),
            4 if width == 8 => ins.istore32(f, x, a, imm),
            _ => ins.store(f, x, a, imm),
        };
        Ok(())
    }

    /// `v` as an `i64`: a 32-bit memory's address, length or page count
    /// zero-extended, a 64-bit memory's as it is.
    fn widen(&mut self, v: Value) -> Value {
        if self.b.func.dfg.value_type(v) == I64 {
            v
        } else {
            self.b.ins().uextend(I64, v)
        }
    }

    /// An `i64` page count or address as memory `mem`'s index type: kept
    /// for a 64-bit memory, wrapped to `i32` for a 32-bit one (`-1` stays
    /// `-1`).
    fn narrow_for(&mut self, mem: u32, v: Value) -> Result<Value, CompileError> {
        if self.is_memory64(mem)? {
            Ok(v)
        } else {
            Ok(self.b.ins().ireduce(I32, v))
        }
    }

    /// Whether memory `mem` is indexed by `i64` (memory64).
    fn is_memory64(&self, mem: u32) -> Result<bool, CompileError> {
        self.info
            .memories
            .get(mem as usize)
            .map(|m| m.memory64)
            .ok_or_else(|| self.err("unknown memory"))
    }

    fn memory_grow(&mut self, delta: Value, mem: u32) -> Result<Value, CompileError> {
        self.check_mem(mem)?;
        let idx = self.b.ins().iconst(I32, i64::from(mem));
        self.builtin(Builtin::MemoryGrow, &[delta, idx])
    }

    /// Call builtin `which` with `args` (after `vmctx`). A builtin with a
    /// result returns it; one with a trap kind traps on a non-zero status
    /// (builtins INV-3) and returns the status.
    fn builtin(&mut self, which: Builtin, args: &[Value]) -> Result<Value, CompileError> {
        let ptr = self.ptr();
        let (params, ret) = which.signature();
        let ty = |a: BuiltinArg| match a {
            BuiltinArg::I32 => I32,
            BuiltinArg::I64 => I64,
            BuiltinArg::Ref => ptr,
        };
        let mut sig = Signature::new(self.target.call_conv);
        sig.params
            .push(AbiParam::special(ptr, ArgumentPurpose::VMContext));
        sig.params
            .extend(params.iter().map(|a| AbiParam::new(ty(*a))));
        sig.returns.extend(ret.map(|a| AbiParam::new(ty(a))));
        let sig = self.b.import_signature(sig);
        let table = self.vmctx_load(ptr, self.offsets.builtins(), true);
        let slot = which.index() * self.offsets.pointer_size();
        let fptr = self.b.ins().load(
            ptr,
            MemFlagsData::trusted().with_readonly(),
            table,
            off32(slot),
        );
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(self.vmctx);
        all.extend_from_slice(args);
        let inst = self.b.ins().call_indirect(sig, fptr, &all);
        let r = match self.b.inst_results(inst).first() {
            Some(r) => *r,
            None => return Ok(self.vmctx),
        };
        match which.trap() {
            Some(BuiltinTrap::Memory) => {
                self.b.ins().trapnz(r, TrapCode::HEAP_OUT_OF_BOUNDS);
            }
            Some(BuiltinTrap::Table) => {
                self.b.ins().trapnz(r, TRAP_TABLE_ACCESS_OUT_OF_BOUNDS);
            }
            Some(BuiltinTrap::Interrupt) => {
                self.b.ins().trapnz(r, TRAP_INTERRUPTED);
            }
            None => {}
        }
        Ok(r)
    }

    /// The preemption check (INV-10), at every loop header and at the entry
    /// of a function that loops or calls, so every path that can run unboundedly passes one: one load
    /// of the store's interrupt cell's `due` word (the cell's address is
    /// loaded once per function) and a branch; when it is set, call
    /// [`Builtin::Epoch`] on a cold path (the store's hook may suspend the
    /// caller there, or interrupt it with a trap).
    fn epoch_check(&mut self) {
        let ptr = self.ptr();
        let cell = match self.interrupt {
            Some(c) => c,
            None => {
                let c = self.vmctx_load(ptr, self.offsets.interrupt(), true);
                self.interrupt = Some(c);
                c
            }
        };
        // Not `readonly`: other CPUs and the timer interrupt write it
        // (interrupt INV-INT-2), so every check loads it anew.
        let due = self.b.ins().load(
            I64,
            MemFlagsData::trusted(),
            cell,
            off32(super::interrupt::DUE_OFFSET),
        );
        let slow = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(due, slow, &[], cont, &[]);
        self.b.seal_block(slow);
        self.b.switch_to_block(slow);
        if self.target.epoch_saving {
            // A call that clobbers nothing, so values live across the
            // check stay in registers on the hot path; the verdict is in
            // the cell.
            let mut sig = Signature::new(CallConv::PreserveAll);
            sig.params
                .push(AbiParam::special(ptr, ArgumentPurpose::VMContext));
            let sig = self.b.import_signature(sig);
            let table = self.vmctx_load(ptr, self.offsets.builtins(), true);
            let slot = Builtin::EpochSaving.index() * self.offsets.pointer_size();
            let fptr = self.b.ins().load(
                ptr,
                MemFlagsData::trusted().with_readonly(),
                table,
                off32(slot),
            );
            let vmctx = self.vmctx;
            self.b.ins().call_indirect(sig, fptr, &[vmctx]);
            let status = self.b.ins().load(
                I64,
                MemFlagsData::trusted(),
                cell,
                off32(super::interrupt::STATUS_OFFSET),
            );
            self.b.ins().trapnz(status, TRAP_INTERRUPTED);
            self.b.ins().jump(cont, &[]);
        } else if self.builtin(Builtin::Epoch, &[]).is_ok() {
            // The builtin's status check traps with TRAP_INTERRUPTED.
            self.b.ins().jump(cont, &[]);
        }
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// Pop `K` operands, the deepest first.
    fn popk<const K: usize>(&mut self) -> Result<[Value; K], CompileError> {
        let v = self.popn(K)?;
        v.try_into()
            .map_err(|_| invalid("operand stack underflow", self.offset))
    }

    fn check_table(&self, table: u32) -> Result<(), CompileError> {
        if (table as usize) < self.info.tables.len() {
            Ok(())
        } else {
            Err(self.err("unknown table"))
        }
    }

    /// The table's `VMTableDefinition` pointer.
    fn table_definition(&mut self, table: u32) -> Result<Value, CompileError> {
        self.check_table(table)?;
        let off = self.offsets.table_pointer(table);
        Ok(self.vmctx_load(self.ptr(), off, true))
    }

    /// Address of element `index` of `table`, trapping with
    /// [`TRAP_TABLE_ACCESS_OUT_OF_BOUNDS`] when it is outside the table.
    /// Base and count are loaded afresh (`table.grow` changes them,
    /// builtins INV-2).
    fn table_slot(&mut self, table: u32, index: Value) -> Result<Value, CompileError> {
        let ptr = self.ptr();
        let o = *self.offsets;
        let def = self.table_definition(table)?;
        let trusted = MemFlagsData::trusted();
        let count = self
            .b
            .ins()
            .load(I32, trusted, def, off32(o.table_definition_count()));
        let oob = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, count);
        self.b.ins().trapnz(oob, TRAP_TABLE_ACCESS_OUT_OF_BOUNDS);
        let base = self
            .b
            .ins()
            .load(ptr, trusted, def, off32(o.table_definition_base()));
        let idx = if ptr == I32 {
            index
        } else {
            self.b.ins().uextend(ptr, index)
        };
        let scaled = self.b.ins().imul_imm_u(idx, i64::from(o.pointer_size()));
        Ok(self.b.ins().iadd(base, scaled))
    }

    /// `ref.func f`: the address of `f`'s `VMFuncRef` in this context.
    fn func_ref(&mut self, f: u32) -> Result<Value, CompileError> {
        let off = if f < self.info.num_imported_funcs {
            self.offsets.imported_func(f)
        } else if (f as usize) < self.info.functions.len() {
            self.offsets
                .defined_func_ref(f - self.info.num_imported_funcs)
        } else {
            return Err(self.err("unknown function"));
        };
        Ok(self.b.ins().iadd_imm_u(self.vmctx, i64::from(off)))
    }

    fn div(
        &mut self,
        f: impl FnOnce(&mut FunctionBuilder<'_>, Value, Value) -> Value,
    ) -> Result<(), CompileError> {
        let (x, y) = self.pop2()?;
        self.b.ins().trapz(y, TrapCode::INTEGER_DIVISION_BY_ZERO);
        let r = f(&mut self.b, x, y);
        self.stack.push(r);
        Ok(())
    }

    fn bitcast(&mut self, to: Type) -> Result<(), CompileError> {
        let x = self.pop()?;
        let r = self.b.ins().bitcast(to, MemFlagsData::new(), x);
        self.stack.push(r);
        Ok(())
    }

    fn sext_low(&mut self, ty: Type, low: Type) -> Result<(), CompileError> {
        let x = self.pop()?;
        let n = self.b.ins().ireduce(low, x);
        let r = self.b.ins().sextend(ty, n);
        self.stack.push(r);
        Ok(())
    }
}

macro_rules! vbin {
    ($s:ident, $t:expr, $m:ident) => {{
        let (x, y) = $s.pop2_v($t)?;
        let r = $s.b.ins().$m(x, y);
        $s.push_v(r);
    }};
}
macro_rules! vun {
    ($s:ident, $t:expr, $m:ident) => {{
        let x = $s.pop_v($t)?;
        let r = $s.b.ins().$m(x);
        $s.push_v(r);
    }};
}
macro_rules! vicmp {
    ($s:ident, $t:expr, $cc:ident) => {{
        let (x, y) = $s.pop2_v($t)?;
        let r = $s.b.ins().icmp(IntCC::$cc, x, y);
        $s.push_v(r);
    }};
}
macro_rules! vfcmp {
    ($s:ident, $t:expr, $cc:ident) => {{
        let (x, y) = $s.pop2_v($t)?;
        let r = $s.b.ins().fcmp(FloatCC::$cc, x, y);
        $s.push_v(r);
    }};
}
macro_rules! vshift {
    ($s:ident, $t:expr, $m:ident) => {{
        // The shift count is taken modulo the lane width, as Cranelift's
        // vector shifts do.
        let n = $s.pop()?;
        let x = $s.pop_v($t)?;
        let r = $s.b.ins().$m(x, n);
        $s.push_v(r);
    }};
}
macro_rules! vconv {
    ($s:ident, $from:expr, $m:ident, $to:expr) => {{
        let x = $s.pop_v($from)?;
        let r = $s.b.ins().$m($to, x);
        $s.push_v(r);
    }};
}

/// SIMD (the `simd` proposal), INV-8 and INV-9.
impl Translator<'_, '_> {
    /// `x` viewed as vector type `ty` (a no-op bitcast between lane views,
    /// INV-8).
    fn view(&mut self, x: Value, ty: Type) -> Value {
        if self.b.func.dfg.value_type(x) == ty {
            x
        } else {
            let little =
                MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
            self.b.ins().bitcast(ty, little, x)
        }
    }

    fn pop_v(&mut self, ty: Type) -> Result<Value, CompileError> {
        let x = self.pop()?;
        if !self.b.func.dfg.value_type(x).is_vector() {
            return Err(self.err("v128 operand expected"));
        }
        Ok(self.view(x, ty))
    }

    fn pop2_v(&mut self, ty: Type) -> Result<(Value, Value), CompileError> {
        let y = self.pop_v(ty)?;
        let x = self.pop_v(ty)?;
        Ok((x, y))
    }

    /// Push a vector result in the canonical `I8X16` view (INV-8).
    fn push_v(&mut self, x: Value) {
        let x = self.view(x, I8X16);
        self.stack.push(x);
    }

    /// `op(widen_low(x) , widen_low(y))` and the like: both operands
    /// widened by `widen`, then combined by `op`.
    fn widen2(
        &mut self,
        ty: Type,
        widen: fn(&mut FunctionBuilder<'_>, Value) -> Value,
        op: fn(&mut FunctionBuilder<'_>, Value, Value) -> Value,
    ) -> Result<(), CompileError> {
        let (x, y) = self.pop2_v(ty)?;
        let wx = widen(&mut self.b, x);
        let wy = widen(&mut self.b, y);
        let r = op(&mut self.b, wx, wy);
        self.push_v(r);
        Ok(())
    }

    /// `iadd_pairwise(widen_low(x), widen_high(x))`: adjacent lanes added
    /// into lanes of twice the width.
    fn ext_add_pairwise(&mut self, ty: Type, signed: bool) -> Result<(), CompileError> {
        let x = self.pop_v(ty)?;
        let (lo, hi) = if signed {
            (self.b.ins().swiden_low(x), self.b.ins().swiden_high(x))
        } else {
            (self.b.ins().uwiden_low(x), self.b.ins().uwiden_high(x))
        };
        let r = self.b.ins().iadd_pairwise(lo, hi);
        self.push_v(r);
        Ok(())
    }

    /// Adjacent products of two vectors of signed lanes, each pair summed
    /// (wrapping) into a lane twice as wide: `i8x16` to `i16x8` for the
    /// relaxed dot products, `i16x8` to `i32x4` for `i32x4.dot_i16x8_s`.
    fn dot_pairs(&mut self, x: Value, y: Value) -> Value {
        let (xl, yl) = (self.b.ins().swiden_low(x), self.b.ins().swiden_low(y));
        let lo = self.b.ins().imul(xl, yl);
        let (xh, yh) = (self.b.ins().swiden_high(x), self.b.ins().swiden_high(y));
        let hi = self.b.ins().imul(xh, yh);
        self.b.ins().iadd_pairwise(lo, hi)
    }

    /// `pmin` (`b < a ? b : a`) or `pmax` (`a < b ? b : a`): exactly the
    /// spec's definitions, so NaNs and signed zeros pick the first operand.
    fn pminmax(&mut self, ty: Type, max: bool) -> Result<(), CompileError> {
        let (a, b) = self.pop2_v(ty)?;
        let c = if max {
            self.b.ins().fcmp(FloatCC::LessThan, a, b)
        } else {
            self.b.ins().fcmp(FloatCC::LessThan, b, a)
        };
        let c = self.view(c, ty);
        let r = self.b.ins().bitselect(c, b, a);
        self.push_v(r);
        Ok(())
    }

    /// `splat` of the popped scalar into lanes of `ty` (narrowing an i32 to
    /// i8/i16 lanes first).
    fn splat(&mut self, ty: Type) -> Result<(), CompileError> {
        let x = self.pop()?;
        let lane = ty.lane_type();
        let x = if self.b.func.dfg.value_type(x) == lane {
            x
        } else {
            self.b.ins().ireduce(lane, x)
        };
        let r = self.b.ins().splat(ty, x);
        self.push_v(r);
        Ok(())
    }

    fn extract_lane(&mut self, ty: Type, lane: u8, ext: Ext) -> Result<(), CompileError> {
        let v = self.pop_v(ty)?;
        let x = self.b.ins().extractlane(v, lane);
        let r = match ext {
            Ext::None => x,
            Ext::S => self.b.ins().sextend(I32, x),
            Ext::U => self.b.ins().uextend(I32, x),
        };
        self.stack.push(r);
        Ok(())
    }

    fn replace_lane(&mut self, ty: Type, lane: u8) -> Result<(), CompileError> {
        let x = self.pop()?;
        let v = self.pop_v(ty)?;
        let lt = ty.lane_type();
        let x = if self.b.func.dfg.value_type(x) == lt {
            x
        } else {
            self.b.ins().ireduce(lt, x)
        };
        let r = self.b.ins().insertlane(v, x, lane);
        self.push_v(r);
        Ok(())
    }

    /// `v128.loadN_lane`: load a `ty`-lane scalar into lane `lane`.
    fn load_lane(&mut self, memarg: MemArg, ty: Type, lane: u8) -> Result<(), CompileError> {
        let v = self.pop_v(ty)?;
        let lt = ty.lane_type();
        let (a, imm) = self.addr(memarg, u64::from(lt.bytes()))?;
        let x = self.b.ins().load(lt, heap_flags(), a, imm);
        let r = self.b.ins().insertlane(v, x, lane);
        self.push_v(r);
        Ok(())
    }

    /// `v128.storeN_lane`: store lane `lane` of the `ty` view.
    fn store_lane(&mut self, memarg: MemArg, ty: Type, lane: u8) -> Result<(), CompileError> {
        let v = self.pop_v(ty)?;
        let lt = ty.lane_type();
        let (a, imm) = self.addr(memarg, u64::from(lt.bytes()))?;
        let x = self.b.ins().extractlane(v, lane);
        self.b.ins().store(heap_flags(), x, a, imm);
        Ok(())
    }

    /// `v128.loadN_splat`.
    fn load_splat(&mut self, memarg: MemArg, ty: Type) -> Result<(), CompileError> {
        let lt = ty.lane_type();
        let (a, imm) = self.addr(memarg, u64::from(lt.bytes()))?;
        let x = self.b.ins().load(lt, heap_flags(), a, imm);
        let r = self.b.ins().splat(ty, x);
        self.push_v(r);
        Ok(())
    }

    /// `v128.loadN_zero`: a scalar into lane 0, the other lanes zero.
    fn load_zero(&mut self, memarg: MemArg, ty: Type) -> Result<(), CompileError> {
        let lt = ty.lane_type();
        let (a, imm) = self.addr(memarg, u64::from(lt.bytes()))?;
        let x = self.b.ins().load(lt, heap_flags(), a, imm);
        let r = self.b.ins().scalar_to_vector(ty, x);
        self.push_v(r);
        Ok(())
    }

    /// `v128.loadMxN_s/u`: eight bytes widened lane by lane.
    fn load_ext(
        &mut self,
        memarg: MemArg,
        f: fn(&mut FunctionBuilder<'_>, Value, i32) -> Value,
    ) -> Result<(), CompileError> {
        let (a, imm) = self.addr(memarg, 8)?;
        let r = f(&mut self.b, a, imm);
        self.push_v(r);
        Ok(())
    }

    /// `i32x4.trunc_sat_f64x2_s/u_zero`: two saturated lanes, two zero lanes.
    fn trunc_sat_zero(&mut self, signed: bool) -> Result<(), CompileError> {
        let x = self.pop_v(F64X2)?;
        let zero = vconst(&mut self.b, I64X2, 0);
        let r = if signed {
            let c = self.b.ins().fcvt_to_sint_sat(I64X2, x);
            self.b.ins().snarrow(c, zero)
        } else {
            let c = self.b.ins().fcvt_to_uint_sat(I64X2, x);
            self.b.ins().uunarrow(c, zero)
        };
        self.push_v(r);
        Ok(())
    }

    /// `all_true` of the `ty` view: 1 if no lane is zero.
    fn all_true(&mut self, ty: Type) -> Result<(), CompileError> {
        let x = self.pop_v(ty)?;
        let c = self.b.ins().vall_true(x);
        let r = self.b.ins().uextend(I32, c);
        self.stack.push(r);
        Ok(())
    }

    /// `bitmask` of the `ty` view: the top bit of each lane, lane 0 lowest.
    fn bitmask(&mut self, ty: Type) -> Result<(), CompileError> {
        let x = self.pop_v(ty)?;
        let r = self.b.ins().vhigh_bits(I32, x);
        self.stack.push(r);
        Ok(())
    }

    /// A SIMD operator, or [`CompileError::Unsupported`] for anything else
    /// outside the accepted feature set.
    #[expect(clippy::too_many_lines, reason = "one arm per SIMD operator")]
    fn simd_op(&mut self, op: &Operator<'_>) -> Result<(), CompileError> {
        if !self.target.simd {
            return Err(no_simd(self.offset));
        }
        match *op {
            Operator::V128Load { memarg } => self.load(memarg, I8X16, 16, Ext::None)?,
            Operator::V128Store { memarg } => self.store(memarg, 16)?,
            Operator::V128Load8x8S { memarg } => {
                self.load_ext(memarg, |b, a, o| b.ins().sload8x8(heap_flags(), a, o))?;
            }
            Operator::V128Load8x8U { memarg } => {
                self.load_ext(memarg, |b, a, o| b.ins().uload8x8(heap_flags(), a, o))?;
            }
            Operator::V128Load16x4S { memarg } => {
                self.load_ext(memarg, |b, a, o| b.ins().sload16x4(heap_flags(), a, o))?;
            }
            Operator::V128Load16x4U { memarg } => {
                self.load_ext(memarg, |b, a, o| b.ins().uload16x4(heap_flags(), a, o))?;
            }
            Operator::V128Load32x2S { memarg } => {
                self.load_ext(memarg, |b, a, o| b.ins().sload32x2(heap_flags(), a, o))?;
            }
            Operator::V128Load32x2U { memarg } => {
                self.load_ext(memarg, |b, a, o| b.ins().uload32x2(heap_flags(), a, o))?;
            }
            Operator::V128Load8Splat { memarg } => self.load_splat(memarg, I8X16)?,
            Operator::V128Load16Splat { memarg } => self.load_splat(memarg, I16X8)?,
            Operator::V128Load32Splat { memarg } => self.load_splat(memarg, I32X4)?,
            Operator::V128Load64Splat { memarg } => self.load_splat(memarg, I64X2)?,
            Operator::V128Load32Zero { memarg } => self.load_zero(memarg, I32X4)?,
            Operator::V128Load64Zero { memarg } => self.load_zero(memarg, I64X2)?,
            Operator::V128Load8Lane { memarg, lane } => self.load_lane(memarg, I8X16, lane)?,
            Operator::V128Load16Lane { memarg, lane } => self.load_lane(memarg, I16X8, lane)?,
            Operator::V128Load32Lane { memarg, lane } => self.load_lane(memarg, I32X4, lane)?,
            Operator::V128Load64Lane { memarg, lane } => self.load_lane(memarg, I64X2, lane)?,
            Operator::V128Store8Lane { memarg, lane } => self.store_lane(memarg, I8X16, lane)?,
            Operator::V128Store16Lane { memarg, lane } => self.store_lane(memarg, I16X8, lane)?,
            Operator::V128Store32Lane { memarg, lane } => self.store_lane(memarg, I32X4, lane)?,
            Operator::V128Store64Lane { memarg, lane } => self.store_lane(memarg, I64X2, lane)?,
            Operator::V128Const { value } => {
                let r = vconst(&mut self.b, I8X16, u128::from_le_bytes(*value.bytes()));
                self.stack.push(r);
            }
            Operator::I8x16Shuffle { lanes } => {
                let (x, y) = self.pop2_v(I8X16)?;
                let mask = self
                    .b
                    .func
                    .dfg
                    .immediates
                    .push(ConstantData::from(&lanes[..]));
                let r = self.b.ins().shuffle(x, y, mask);
                self.push_v(r);
            }
            // Cranelift's `swizzle` has the spec's semantics: an index of 16
            // or more selects 0.
            Operator::I8x16Swizzle => vbin!(self, I8X16, swizzle),
            Operator::I8x16ExtractLaneS { lane } => self.extract_lane(I8X16, lane, Ext::S)?,
            Operator::I8x16ExtractLaneU { lane } => self.extract_lane(I8X16, lane, Ext::U)?,
            Operator::I16x8ExtractLaneS { lane } => self.extract_lane(I16X8, lane, Ext::S)?,
            Operator::I16x8ExtractLaneU { lane } => self.extract_lane(I16X8, lane, Ext::U)?,
            Operator::I32x4ExtractLane { lane } => self.extract_lane(I32X4, lane, Ext::None)?,
            Operator::I64x2ExtractLane { lane } => self.extract_lane(I64X2, lane, Ext::None)?,
            Operator::F32x4ExtractLane { lane } => self.extract_lane(F32X4, lane, Ext::None)?,
            Operator::F64x2ExtractLane { lane } => self.extract_lane(F64X2, lane, Ext::None)?,
            Operator::I8x16ReplaceLane { lane } => self.replace_lane(I8X16, lane)?,
            Operator::I16x8ReplaceLane { lane } => self.replace_lane(I16X8, lane)?,
            Operator::I32x4ReplaceLane { lane } => self.replace_lane(I32X4, lane)?,
            Operator::I64x2ReplaceLane { lane } => self.replace_lane(I64X2, lane)?,
            Operator::F32x4ReplaceLane { lane } => self.replace_lane(F32X4, lane)?,
            Operator::F64x2ReplaceLane { lane } => self.replace_lane(F64X2, lane)?,
            Operator::I8x16Splat => self.splat(I8X16)?,
            Operator::I16x8Splat => self.splat(I16X8)?,
            Operator::I32x4Splat => self.splat(I32X4)?,
            Operator::I64x2Splat => self.splat(I64X2)?,
            Operator::F32x4Splat => self.splat(F32X4)?,
            Operator::F64x2Splat => self.splat(F64X2)?,
            Operator::I8x16Eq => vicmp!(self, I8X16, Equal),
            Operator::I8x16Ne => vicmp!(self, I8X16, NotEqual),
            Operator::I8x16LtS => vicmp!(self, I8X16, SignedLessThan),
            Operator::I8x16LtU => vicmp!(self, I8X16, UnsignedLessThan),
            Operator::I8x16GtS => vicmp!(self, I8X16, SignedGreaterThan),
            Operator::I8x16GtU => vicmp!(self, I8X16, UnsignedGreaterThan),
            Operator::I8x16LeS => vicmp!(self, I8X16, SignedLessThanOrEqual),
            Operator::I8x16LeU => vicmp!(self, I8X16, UnsignedLessThanOrEqual),
            Operator::I8x16GeS => vicmp!(self, I8X16, SignedGreaterThanOrEqual),
            Operator::I8x16GeU => vicmp!(self, I8X16, UnsignedGreaterThanOrEqual),
            Operator::I16x8Eq => vicmp!(self, I16X8, Equal),
            Operator::I16x8Ne => vicmp!(self, I16X8, NotEqual),
            Operator::I16x8LtS => vicmp!(self, I16X8, SignedLessThan),
            Operator::I16x8LtU => vicmp!(self, I16X8, UnsignedLessThan),
            Operator::I16x8GtS => vicmp!(self, I16X8, SignedGreaterThan),
            Operator::I16x8GtU => vicmp!(self, I16X8, UnsignedGreaterThan),
            Operator::I16x8LeS => vicmp!(self, I16X8, SignedLessThanOrEqual),
            Operator::I16x8LeU => vicmp!(self, I16X8, UnsignedLessThanOrEqual),
            Operator::I16x8GeS => vicmp!(self, I16X8, SignedGreaterThanOrEqual),
            Operator::I16x8GeU => vicmp!(self, I16X8, UnsignedGreaterThanOrEqual),
            Operator::I32x4Eq => vicmp!(self, I32X4, Equal),
            Operator::I32x4Ne => vicmp!(self, I32X4, NotEqual),
            Operator::I32x4LtS => vicmp!(self, I32X4, SignedLessThan),
            Operator::I32x4LtU => vicmp!(self, I32X4, UnsignedLessThan),
            Operator::I32x4GtS => vicmp!(self, I32X4, SignedGreaterThan),
            Operator::I32x4GtU => vicmp!(self, I32X4, UnsignedGreaterThan),
            Operator::I32x4LeS => vicmp!(self, I32X4, SignedLessThanOrEqual),
            Operator::I32x4LeU => vicmp!(self, I32X4, UnsignedLessThanOrEqual),
            Operator::I32x4GeS => vicmp!(self, I32X4, SignedGreaterThanOrEqual),
            Operator::I32x4GeU => vicmp!(self, I32X4, UnsignedGreaterThanOrEqual),
            Operator::I64x2Eq => vicmp!(self, I64X2, Equal),
            Operator::I64x2Ne => vicmp!(self, I64X2, NotEqual),
            Operator::I64x2LtS => vicmp!(self, I64X2, SignedLessThan),
            Operator::I64x2GtS => vicmp!(self, I64X2, SignedGreaterThan),
            Operator::I64x2LeS => vicmp!(self, I64X2, SignedLessThanOrEqual),
            Operator::I64x2GeS => vicmp!(self, I64X2, SignedGreaterThanOrEqual),
            Operator::F32x4Eq => vfcmp!(self, F32X4, Equal),
            Operator::F32x4Ne => vfcmp!(self, F32X4, NotEqual),
            Operator::F32x4Lt => vfcmp!(self, F32X4, LessThan),
            Operator::F32x4Gt => vfcmp!(self, F32X4, GreaterThan),
            Operator::F32x4Le => vfcmp!(self, F32X4, LessThanOrEqual),
            Operator::F32x4Ge => vfcmp!(self, F32X4, GreaterThanOrEqual),
            Operator::F64x2Eq => vfcmp!(self, F64X2, Equal),
            Operator::F64x2Ne => vfcmp!(self, F64X2, NotEqual),
            Operator::F64x2Lt => vfcmp!(self, F64X2, LessThan),
            Operator::F64x2Gt => vfcmp!(self, F64X2, GreaterThan),
            Operator::F64x2Le => vfcmp!(self, F64X2, LessThanOrEqual),
            Operator::F64x2Ge => vfcmp!(self, F64X2, GreaterThanOrEqual),
            Operator::V128Not => vun!(self, I8X16, bnot),
            Operator::V128And => vbin!(self, I8X16, band),
            Operator::V128AndNot => vbin!(self, I8X16, band_not),
            Operator::V128Or => vbin!(self, I8X16, bor),
            Operator::V128Xor => vbin!(self, I8X16, bxor),
            Operator::V128Bitselect => {
                let c = self.pop_v(I8X16)?;
                let (x, y) = self.pop2_v(I8X16)?;
                let r = self.b.ins().bitselect(c, x, y);
                self.push_v(r);
            }
            Operator::V128AnyTrue => {
                let x = self.pop_v(I8X16)?;
                let c = self.b.ins().vany_true(x);
                let r = self.b.ins().uextend(I32, c);
                self.stack.push(r);
            }
            Operator::I8x16AllTrue => self.all_true(I8X16)?,
            Operator::I16x8AllTrue => self.all_true(I16X8)?,
            Operator::I32x4AllTrue => self.all_true(I32X4)?,
            Operator::I64x2AllTrue => self.all_true(I64X2)?,
            Operator::I8x16Bitmask => self.bitmask(I8X16)?,
            Operator::I16x8Bitmask => self.bitmask(I16X8)?,
            Operator::I32x4Bitmask => self.bitmask(I32X4)?,
            Operator::I64x2Bitmask => self.bitmask(I64X2)?,
            Operator::I8x16Abs => vun!(self, I8X16, iabs),
            Operator::I16x8Abs => vun!(self, I16X8, iabs),
            Operator::I32x4Abs => vun!(self, I32X4, iabs),
            Operator::I64x2Abs => vun!(self, I64X2, iabs),
            Operator::I8x16Neg => vun!(self, I8X16, ineg),
            Operator::I16x8Neg => vun!(self, I16X8, ineg),
            Operator::I32x4Neg => vun!(self, I32X4, ineg),
            Operator::I64x2Neg => vun!(self, I64X2, ineg),
            Operator::I8x16Popcnt => vun!(self, I8X16, popcnt),
            Operator::I8x16NarrowI16x8S => vbin!(self, I16X8, snarrow),
            Operator::I8x16NarrowI16x8U => vbin!(self, I16X8, unarrow),
            Operator::I16x8NarrowI32x4S => vbin!(self, I32X4, snarrow),
            Operator::I16x8NarrowI32x4U => vbin!(self, I32X4, unarrow),
            Operator::I8x16Shl => vshift!(self, I8X16, ishl),
            Operator::I8x16ShrS => vshift!(self, I8X16, sshr),
            Operator::I8x16ShrU => vshift!(self, I8X16, ushr),
            Operator::I16x8Shl => vshift!(self, I16X8, ishl),
            Operator::I16x8ShrS => vshift!(self, I16X8, sshr),
            Operator::I16x8ShrU => vshift!(self, I16X8, ushr),
            Operator::I32x4Shl => vshift!(self, I32X4, ishl),
            Operator::I32x4ShrS => vshift!(self, I32X4, sshr),
            Operator::I32x4ShrU => vshift!(self, I32X4, ushr),
            Operator::I64x2Shl => vshift!(self, I64X2, ishl),
            Operator::I64x2ShrS => vshift!(self, I64X2, sshr),
            Operator::I64x2ShrU => vshift!(self, I64X2, ushr),
            Operator::I8x16Add => vbin!(self, I8X16, iadd),
            Operator::I16x8Add => vbin!(self, I16X8, iadd),
            Operator::I32x4Add => vbin!(self, I32X4, iadd),
            Operator::I64x2Add => vbin!(self, I64X2, iadd),
            Operator::I8x16Sub => vbin!(self, I8X16, isub),
            Operator::I16x8Sub => vbin!(self, I16X8, isub),
            Operator::I32x4Sub => vbin!(self, I32X4, isub),
            Operator::I64x2Sub => vbin!(self, I64X2, isub),
            Operator::I16x8Mul => vbin!(self, I16X8, imul),
            Operator::I32x4Mul => vbin!(self, I32X4, imul),
            Operator::I64x2Mul => vbin!(self, I64X2, imul),
            Operator::I8x16AddSatS => vbin!(self, I8X16, sadd_sat),
            Operator::I8x16AddSatU => vbin!(self, I8X16, uadd_sat),
            Operator::I8x16SubSatS => vbin!(self, I8X16, ssub_sat),
            Operator::I8x16SubSatU => vbin!(self, I8X16, usub_sat),
            Operator::I16x8AddSatS => vbin!(self, I16X8, sadd_sat),
            Operator::I16x8AddSatU => vbin!(self, I16X8, uadd_sat),
            Operator::I16x8SubSatS => vbin!(self, I16X8, ssub_sat),
            Operator::I16x8SubSatU => vbin!(self, I16X8, usub_sat),
            Operator::I8x16MinS => vbin!(self, I8X16, smin),
            Operator::I8x16MinU => vbin!(self, I8X16, umin),
            Operator::I8x16MaxS => vbin!(self, I8X16, smax),
            Operator::I8x16MaxU => vbin!(self, I8X16, umax),
            Operator::I16x8MinS => vbin!(self, I16X8, smin),
            Operator::I16x8MinU => vbin!(self, I16X8, umin),
            Operator::I16x8MaxS => vbin!(self, I16X8, smax),
            Operator::I16x8MaxU => vbin!(self, I16X8, umax),
            Operator::I32x4MinS => vbin!(self, I32X4, smin),
            Operator::I32x4MinU => vbin!(self, I32X4, umin),
            Operator::I32x4MaxS => vbin!(self, I32X4, smax),
            Operator::I32x4MaxU => vbin!(self, I32X4, umax),
            Operator::I8x16AvgrU => vbin!(self, I8X16, avg_round),
            Operator::I16x8AvgrU => vbin!(self, I16X8, avg_round),
            Operator::I16x8Q15MulrSatS => vbin!(self, I16X8, sqmul_round_sat),
            Operator::I16x8ExtAddPairwiseI8x16S => self.ext_add_pairwise(I8X16, true)?,
            Operator::I16x8ExtAddPairwiseI8x16U => self.ext_add_pairwise(I8X16, false)?,
            Operator::I32x4ExtAddPairwiseI16x8S => self.ext_add_pairwise(I16X8, true)?,
            Operator::I32x4ExtAddPairwiseI16x8U => self.ext_add_pairwise(I16X8, false)?,
            Operator::I16x8ExtendLowI8x16S => vun!(self, I8X16, swiden_low),
            Operator::I16x8ExtendHighI8x16S => vun!(self, I8X16, swiden_high),
            Operator::I16x8ExtendLowI8x16U => vun!(self, I8X16, uwiden_low),
            Operator::I16x8ExtendHighI8x16U => vun!(self, I8X16, uwiden_high),
            Operator::I32x4ExtendLowI16x8S => vun!(self, I16X8, swiden_low),
            Operator::I32x4ExtendHighI16x8S => vun!(self, I16X8, swiden_high),
            Operator::I32x4ExtendLowI16x8U => vun!(self, I16X8, uwiden_low),
            Operator::I32x4ExtendHighI16x8U => vun!(self, I16X8, uwiden_high),
            Operator::I64x2ExtendLowI32x4S => vun!(self, I32X4, swiden_low),
            Operator::I64x2ExtendHighI32x4S => vun!(self, I32X4, swiden_high),
            Operator::I64x2ExtendLowI32x4U => vun!(self, I32X4, uwiden_low),
            Operator::I64x2ExtendHighI32x4U => vun!(self, I32X4, uwiden_high),
            Operator::I16x8ExtMulLowI8x16S
            | Operator::I32x4ExtMulLowI16x8S
            | Operator::I64x2ExtMulLowI32x4S => {
                let ty = ext_mul_source(op);
                self.widen2(
                    ty,
                    |b, x| b.ins().swiden_low(x),
                    |b, x, y| b.ins().imul(x, y),
                )?;
            }
            Operator::I16x8ExtMulHighI8x16S
            | Operator::I32x4ExtMulHighI16x8S
            | Operator::I64x2ExtMulHighI32x4S => {
                let ty = ext_mul_source(op);
                self.widen2(
                    ty,
                    |b, x| b.ins().swiden_high(x),
                    |b, x, y| b.ins().imul(x, y),
                )?;
            }
            Operator::I16x8ExtMulLowI8x16U
            | Operator::I32x4ExtMulLowI16x8U
            | Operator::I64x2ExtMulLowI32x4U => {
                let ty = ext_mul_source(op);
                self.widen2(
                    ty,
                    |b, x| b.ins().uwiden_low(x),
                    |b, x, y| b.ins().imul(x, y),
                )?;
            }
            Operator::I16x8ExtMulHighI8x16U
            | Operator::I32x4ExtMulHighI16x8U
            | Operator::I64x2ExtMulHighI32x4U => {
                let ty = ext_mul_source(op);
                self.widen2(
                    ty,
                    |b, x| b.ins().uwiden_high(x),
                    |b, x, y| b.ins().imul(x, y),
                )?;
            }
            Operator::I32x4DotI16x8S => {
                let (x, y) = self.pop2_v(I16X8)?;
                let r = self.dot_pairs(x, y);
                self.push_v(r);
            }
            Operator::F32x4Ceil => vun!(self, F32X4, ceil),
            Operator::F32x4Floor => vun!(self, F32X4, floor),
            Operator::F32x4Trunc => vun!(self, F32X4, trunc),
            Operator::F32x4Nearest => vun!(self, F32X4, nearest),
            Operator::F32x4Abs => vun!(self, F32X4, fabs),
            Operator::F32x4Neg => vun!(self, F32X4, fneg),
            Operator::F32x4Sqrt => vun!(self, F32X4, sqrt),
            Operator::F32x4Add => vbin!(self, F32X4, fadd),
            Operator::F32x4Sub => vbin!(self, F32X4, fsub),
            Operator::F32x4Mul => vbin!(self, F32X4, fmul),
            Operator::F32x4Div => vbin!(self, F32X4, fdiv),
            // Cranelift's `fmin`/`fmax` are the spec's: NaN if either lane
            // is NaN, and -0 < +0.
            Operator::F32x4Min => vbin!(self, F32X4, fmin),
            Operator::F32x4Max => vbin!(self, F32X4, fmax),
            Operator::F32x4PMin => self.pminmax(F32X4, false)?,
            Operator::F32x4PMax => self.pminmax(F32X4, true)?,
            Operator::F64x2Ceil => vun!(self, F64X2, ceil),
            Operator::F64x2Floor => vun!(self, F64X2, floor),
            Operator::F64x2Trunc => vun!(self, F64X2, trunc),
            Operator::F64x2Nearest => vun!(self, F64X2, nearest),
            Operator::F64x2Abs => vun!(self, F64X2, fabs),
            Operator::F64x2Neg => vun!(self, F64X2, fneg),
            Operator::F64x2Sqrt => vun!(self, F64X2, sqrt),
            Operator::F64x2Add => vbin!(self, F64X2, fadd),
            Operator::F64x2Sub => vbin!(self, F64X2, fsub),
            Operator::F64x2Mul => vbin!(self, F64X2, fmul),
            Operator::F64x2Div => vbin!(self, F64X2, fdiv),
            Operator::F64x2Min => vbin!(self, F64X2, fmin),
            Operator::F64x2Max => vbin!(self, F64X2, fmax),
            Operator::F64x2PMin => self.pminmax(F64X2, false)?,
            Operator::F64x2PMax => self.pminmax(F64X2, true)?,
            Operator::I32x4TruncSatF32x4S => vconv!(self, F32X4, fcvt_to_sint_sat, I32X4),
            Operator::I32x4TruncSatF32x4U => vconv!(self, F32X4, fcvt_to_uint_sat, I32X4),
            Operator::F32x4ConvertI32x4S => vconv!(self, I32X4, fcvt_from_sint, F32X4),
            Operator::F32x4ConvertI32x4U => vconv!(self, I32X4, fcvt_from_uint, F32X4),
            Operator::I32x4TruncSatF64x2SZero => self.trunc_sat_zero(true)?,
            Operator::I32x4TruncSatF64x2UZero => self.trunc_sat_zero(false)?,
            Operator::F64x2ConvertLowI32x4S => {
                let x = self.pop_v(I32X4)?;
                let w = self.b.ins().swiden_low(x);
                let r = self.b.ins().fcvt_from_sint(F64X2, w);
                self.push_v(r);
            }
            Operator::F64x2ConvertLowI32x4U => {
                let x = self.pop_v(I32X4)?;
                let w = self.b.ins().uwiden_low(x);
                let r = self.b.ins().fcvt_from_uint(F64X2, w);
                self.push_v(r);
            }
            Operator::F32x4DemoteF64x2Zero => vun!(self, F64X2, fvdemote),
            Operator::F64x2PromoteLowF32x4 => vun!(self, F32X4, fvpromote_low),
            _ => {
                if !self.relaxed_op(op)? {
                    return Err(CompileError::Unsupported {
                        what: "operator outside the accepted feature set",
                        offset: self.offset,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The source lane view of an `extmul` operator.
fn ext_mul_source(op: &Operator<'_>) -> Type {
    match op {
        Operator::I16x8ExtMulLowI8x16S
        | Operator::I16x8ExtMulHighI8x16S
        | Operator::I16x8ExtMulLowI8x16U
        | Operator::I16x8ExtMulHighI8x16U => I8X16,
        Operator::I32x4ExtMulLowI16x8S
        | Operator::I32x4ExtMulHighI16x8S
        | Operator::I32x4ExtMulLowI16x8U
        | Operator::I32x4ExtMulHighI16x8U => I16X8,
        _ => I32X4,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    None,
    S,
    U,
}

fn heap_flags() -> MemFlagsData {
    MemFlagsData::new()
        .with_endianness(cranelift_codegen::ir::Endianness::Little)
        .with_trap_code(Some(TrapCode::HEAP_OUT_OF_BOUNDS))
}
