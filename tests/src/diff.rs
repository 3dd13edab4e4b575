//! The differential oracle of Vessel's JIT against wasmtime: one module,
//! both runtimes, every export, the same answers.
//!
//! This module owns the whole oracle, used by the fixed-seed test
//! (`tests/tests/jit_diff.rs`) and the `jit_diff` fuzz target alike:
//! generating a module with wasm-smith from unstructured bytes
//! ([`smith_config`]), building the wasmtime engine ([`engine`]), and
//! running and comparing a case ([`check`]).
//!
//! What is compared, for one module:
//! - compilation: wasm-smith only emits valid modules of the features both
//!   runtimes support, so both must accept it;
//! - instantiation: both succeed, or both fail the same way (a trap of the
//!   same kind in a segment or the start function);
//! - then every exported function in export order, called with the same
//!   arguments: both return the same values (floats bit for bit; wasm-smith
//!   canonicalizes every NaN an instruction produces), or both trap with the
//!   same [`Kind`]; after each call, every exported global has the same
//!   value and every exported memory the same size and the same hash of its
//!   bytes (modules export everything).
//!
//! Rules of comparison (the invariants the oracle relies on):
//! - INV-DIFF-1 (budgets): wasm-smith modules may loop forever, so both
//!   sides run on a budget: wasmtime on fuel, Vessel on a count of its
//!   preemption checks (function entries and loop headers) through the
//!   store's interrupt hook. The budgets measure different things, so when
//!   either side runs out the call is *inconclusive*: it is counted as such
//!   (never as a pass), and that pair of instances is not compared
//!   further, because the two states may differ from there on: the next
//!   export is called on a fresh pair.
//! - INV-DIFF-2 (stack): stack exhaustion is a trap kind that matches only
//!   itself. Vessel's stack budget is twice wasmtime's, so a call that
//!   exhausts Vessel's stack must exhaust wasmtime's too (otherwise it is a
//!   divergence); a call that exhausts only wasmtime's stack is inconclusive
//!   under INV-DIFF-1. After a stack overflow on both sides the pair is
//!   not compared further either (the next export gets a fresh pair): the
//!   side effects made before the overflow depend on how deep each side
//!   got.
//! - INV-DIFF-3 (references): function and extern references cannot be
//!   compared across runtimes; results and globals of reference type are
//!   compared by null-ness only, and tables only through the calls that use
//!   them.
//! - INV-DIFF-4 (resources): an instantiation that fails for lack of memory
//!   on either side (not a trap) is inconclusive, like a budget.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use arbitrary::Unstructured;
use hal_hosted::Hosted;
use kernel_core::kernel::Kernel;
use kernel_core::wasm::TrapKind;
use kernel_core::wasm::interrupt::HookAction;
use kernel_core::wasm::module::ValType;
use kernel_core::wasm::vm::{self, CallError, Extern, InstanceId, InstantiateError, Store};

/// Preemption checks a Vessel call may make before it counts as out of
/// budget (INV-DIFF-1).
pub const VESSEL_CHECKS: u32 = 20_000;
/// Fuel (about one unit per wasm instruction) of a wasmtime call.
pub const WASMTIME_FUEL: u64 = 1_000_000;
/// Wasm stack of wasmtime calls.
pub const WASMTIME_STACK: usize = 128 << 10;
/// Wasm stack of Vessel calls: twice wasmtime's (INV-DIFF-2).
pub const VESSEL_STACK: usize = 2 * WASMTIME_STACK;
/// Largest linear memory a generated module may declare (its maximum is
/// required), in bytes.
pub const MAX_MEMORY_BYTES: u64 = 4 << 16;

/// The wasm-smith configuration: the WebAssembly 2.0 features Vessel's JIT
/// supports on this host (SIMD on x86_64 only), plus `extended-const`;
/// no imports; NaNs canonicalized; everything exported; sizes small enough
/// for a case to run in milliseconds.
#[must_use]
pub fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        allow_start_export: true,
        canonicalize_nans: true,
        export_everything: true,
        bulk_memory_enabled: true,
        multi_value_enabled: true,
        reference_types_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        extended_const_enabled: true,
        simd_enabled: cfg!(target_arch = "x86_64"),
        relaxed_simd_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        memory64_enabled: false,
        tail_call_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        custom_descriptors_enabled: false,
        compact_imports_enabled: false,
        min_imports: 0,
        max_imports: 0,
        max_tags: 0,
        max_memories: 1,
        max_tables: 2,
        min_funcs: 4,
        max_funcs: 12,
        min_memories: 1,
        min_globals: 1,
        min_types: 1,
        max_types: 12,
        max_globals: 8,
        max_exports: 24,
        max_instructions: 120,
        max_data_segments: 4,
        max_element_segments: 4,
        max_elements: 16,
        max_table_elements: 64,
        table_max_size_required: true,
        max_memory32_bytes: MAX_MEMORY_BYTES,
        memory_max_size_required: true,
        ..wasm_smith::Config::default()
    }
}

/// The wasmtime engine the oracle compares against: the same features,
/// fuel metering, a [`WASMTIME_STACK`] wasm stack, and no signal handlers
/// (the hosted kernel owns the process's fault signals: explicit checks
/// replace wasmtime's guard pages).
///
/// # Panics
/// If wasmtime rejects this configuration (a build problem, not input).
#[must_use]
pub fn engine() -> wasmtime::Engine {
    let mut c = wasmtime::Config::new();
    c.consume_fuel(true)
        .max_wasm_stack(WASMTIME_STACK)
        .signals_based_traps(false)
        .wasm_simd(cfg!(target_arch = "x86_64"))
        .wasm_relaxed_simd(false)
        .wasm_tail_call(false)
        .wasm_gc(false)
        .wasm_function_references(false)
        .wasm_exceptions(false)
        .wasm_memory64(false)
        .wasm_multi_memory(false)
        .wasm_wide_arithmetic(false)
        .wasm_extended_const(true)
        .wasm_reference_types(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .wasm_backtrace_max_frames(None);
    // SAFETY: both flags exist in this Cranelift; turning the Spectre
    // mitigations off is what `signals_based_traps(false)` requires (they
    // rely on faulting loads), and they do not change wasm semantics.
    unsafe {
        c.cranelift_flag_set("enable_heap_access_spectre_mitigation", "false");
        c.cranelift_flag_set("enable_table_access_spectre_mitigation", "false");
    }
    wasmtime::Engine::new(&c).expect("wasmtime engine configuration")
}

/// Bytes for seed `seed`: `len` bytes of a SplitMix64 stream, the input of
/// one fixed-seed case.
#[must_use]
pub fn seed_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A trap kind both runtimes can name. Vessel's two table kinds
/// (`call_indirect` past the end, `table.*` past the end) are one kind in
/// wasmtime, so they are one here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `unreachable`.
    Unreachable,
    /// Integer division or remainder by zero.
    DivideByZero,
    /// Integer overflow.
    IntegerOverflow,
    /// Float-to-int conversion of NaN.
    BadConversion,
    /// Linear memory out of bounds.
    MemoryOutOfBounds,
    /// Table out of bounds (an element or a `table.*` range).
    TableOutOfBounds,
    /// `call_indirect` of a null element.
    IndirectCallToNull,
    /// `call_indirect` signature mismatch.
    BadSignature,
    /// Call stack exhausted (INV-DIFF-2).
    StackOverflow,
    /// Anything else (a kind the other runtime has no equivalent for).
    Other,
}

impl Kind {
    fn of_vessel(k: TrapKind) -> Self {
        match k {
            TrapKind::Unreachable => Self::Unreachable,
            TrapKind::IntegerDivideByZero => Self::DivideByZero,
            TrapKind::IntegerOverflow => Self::IntegerOverflow,
            TrapKind::BadConversionToInteger => Self::BadConversion,
            TrapKind::MemoryOutOfBounds => Self::MemoryOutOfBounds,
            TrapKind::TableOutOfBounds | TrapKind::TableAccessOutOfBounds => Self::TableOutOfBounds,
            TrapKind::IndirectCallToNull => Self::IndirectCallToNull,
            TrapKind::BadSignature => Self::BadSignature,
            TrapKind::StackOverflow => Self::StackOverflow,
            TrapKind::Interrupted | TrapKind::Host | TrapKind::OutOfMemory => Self::Other,
        }
    }

    fn of_wasmtime(t: wasmtime::Trap) -> Self {
        use wasmtime::Trap as T;
        match t {
            T::UnreachableCodeReached => Self::Unreachable,
            T::IntegerDivisionByZero => Self::DivideByZero,
            T::IntegerOverflow => Self::IntegerOverflow,
            T::BadConversionToInteger => Self::BadConversion,
            T::MemoryOutOfBounds => Self::MemoryOutOfBounds,
            T::TableOutOfBounds => Self::TableOutOfBounds,
            T::IndirectCallToNull => Self::IndirectCallToNull,
            T::BadSignature => Self::BadSignature,
            T::StackOverflow => Self::StackOverflow,
            _ => Self::Other,
        }
    }
}

/// A value as both runtimes can show it (INV-DIFF-3 for references).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// i32.
    I32(i32),
    /// i64.
    I64(i64),
    /// f32 bits.
    F32(u32),
    /// f64 bits.
    F64(u64),
    /// v128 bits.
    V128(u128),
    /// A reference: whether it is null.
    Ref {
        /// Null or not.
        null: bool,
    },
}

impl Value {
    fn of_vessel(v: vm::Val) -> Self {
        match v {
            vm::Val::I32(x) => Self::I32(x),
            vm::Val::I64(x) => Self::I64(x),
            vm::Val::F32(x) => Self::F32(x),
            vm::Val::F64(x) => Self::F64(x),
            vm::Val::V128(x) => Self::V128(x),
            vm::Val::FuncRef(f) => Self::Ref { null: f.is_none() },
            vm::Val::ExternRef(e) => Self::Ref { null: e.is_none() },
        }
    }

    fn of_wasmtime(v: &wasmtime::Val) -> Self {
        use wasmtime::Val as W;
        match v {
            W::I32(x) => Self::I32(*x),
            W::I64(x) => Self::I64(*x),
            W::F32(x) => Self::F32(*x),
            W::F64(x) => Self::F64(*x),
            W::V128(x) => Self::V128(x.as_u128()),
            W::FuncRef(f) => Self::Ref { null: f.is_none() },
            W::ExternRef(e) => Self::Ref { null: e.is_none() },
            W::AnyRef(r) => Self::Ref { null: r.is_none() },
            W::ExnRef(r) => Self::Ref { null: r.is_none() },
            W::ContRef(r) => Self::Ref { null: r.is_none() },
        }
    }
}

/// How one side's call (or instantiation) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It returned these values.
    Returned(Vec<Value>),
    /// It trapped.
    Trapped(Kind),
    /// It ran out of its budget (INV-DIFF-1) or of memory (INV-DIFF-4).
    Exhausted,
}

/// Which step of a case two outcomes disagree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Compiling the module.
    Compile,
    /// Instantiating it.
    Instantiate,
    /// Calling this export.
    Call(String),
    /// The state after calling this export: global or memory `what`.
    State {
        /// The export called last.
        after: String,
        /// The global or memory that differs.
        what: String,
    },
}

/// A difference between the runtimes: the bug report of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Where.
    pub step: Step,
    /// Vessel's side.
    pub vessel: String,
    /// wasmtime's side.
    pub wasmtime: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: vessel {} / wasmtime {}",
            self.step, self.vessel, self.wasmtime
        )
    }
}

/// Counts of one or more cases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Cases run.
    pub cases: u64,
    /// Cases whose bytes were too few for wasm-smith to make a module.
    pub no_module: u64,
    /// Instantiations compared (both sides instantiated, or both failed
    /// the same way).
    pub instances: u64,
    /// Of those, instantiations that failed on both sides, the same way
    /// (a segment out of bounds, a trap in the start function).
    pub instances_failed: u64,
    /// Export calls whose outcomes were compared (returned or trapped on
    /// both sides).
    pub compared: u64,
    /// Export calls that were inconclusive (INV-DIFF-1, INV-DIFF-2).
    pub inconclusive: u64,
    /// Exports not called because no pair of instances could be had
    /// (instantiation failed alike on both sides, or ran out of budget).
    pub skipped: u64,
    /// Cases that compared something: a failed instantiation, or at least
    /// one call.
    pub cases_compared: u64,
}

impl core::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Self) {
        self.cases += o.cases;
        self.no_module += o.no_module;
        self.instances += o.instances;
        self.instances_failed += o.instances_failed;
        self.compared += o.compared;
        self.inconclusive += o.inconclusive;
        self.skipped += o.skipped;
        self.cases_compared += o.cases_compared;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cases ({} compared, {} without a module), \
             {} instances ({} failed alike), calls: {} compared, {} inconclusive, {} skipped",
            self.cases,
            self.cases_compared,
            self.no_module,
            self.instances,
            self.instances_failed,
            self.compared,
            self.inconclusive,
            self.skipped
        )
    }
}

/// How Vessel's store lays out linear memories for a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memories {
    /// 4 GiB reservations plus guard pages: most accesses are checked by
    /// faults (the hosted default).
    GuardPages,
    /// Small reservations and an explicit check of every access
    /// (`Store::bound_memories`, what riscv uses).
    Bounded,
}

/// The module wasm-smith makes from `u` with [`smith_config`], if `u`
/// holds enough bytes.
#[must_use]
pub fn module(u: &mut Unstructured<'_>) -> Option<Vec<u8>> {
    wasm_smith::Module::new(smith_config(), u)
        .ok()
        .map(|m| m.to_bytes())
}

/// Generate a module from `u` and compare the runtimes on it, the call
/// arguments coming from what is left of `u`. A new Vessel store on `k`
/// (with `memories`) and a new wasmtime store on `engine` are made for the
/// case.
///
/// # Errors
/// The first [`Divergence`].
pub fn check(
    k: &Kernel<'_, Hosted>,
    engine: &wasmtime::Engine,
    memories: Memories,
    u: &mut Unstructured<'_>,
) -> Result<Tally, Divergence> {
    let Some(wasm) = module(u) else {
        return Ok(Tally {
            cases: 1,
            no_module: 1,
            ..Tally::default()
        });
    };
    check_wasm(k, engine, memories, &wasm, u)
}

/// Compare the runtimes on `wasm` (generated or a saved reproducer), the
/// call arguments coming from `u`.
///
/// # Errors
/// The first [`Divergence`].
pub fn check_wasm(
    k: &Kernel<'_, Hosted>,
    engine: &wasmtime::Engine,
    memories: Memories,
    wasm: &[u8],
    u: &mut Unstructured<'_>,
) -> Result<Tally, Divergence> {
    let mut tally = Tally {
        cases: 1,
        ..Tally::default()
    };
    Case::new(k, engine, memories, wasm)?.run(u, &mut tally)?;
    if tally.compared + tally.instances_failed > 0 {
        tally.cases_compared = 1;
    }
    Ok(tally)
}

/// What two call outcomes say, by INV-DIFF-1 and INV-DIFF-2 (`Err` is a
/// call that could not be made at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The same result or trap kind: compare the states next.
    Same,
    /// Both overflowed the stack: a match, but the states are not
    /// comparable.
    SameOverflow,
    /// A budget ran out (on either side), or only wasmtime's smaller stack
    /// overflowed.
    Inconclusive,
    /// A divergence.
    Diverged,
}

/// Judge Vessel's outcome `ours` against wasmtime's `theirs`.
#[must_use]
pub fn judge(ours: &Result<Outcome, String>, theirs: &Result<Outcome, String>) -> Verdict {
    let overflow = Outcome::Trapped(Kind::StackOverflow);
    match (ours, theirs) {
        (Ok(Outcome::Exhausted), Ok(_)) | (Ok(_), Ok(Outcome::Exhausted)) => Verdict::Inconclusive,
        (Ok(a), Ok(b)) if a == b && *a == overflow => Verdict::SameOverflow,
        (Ok(a), Ok(b)) if a == b => Verdict::Same,
        (Ok(_), Ok(b)) if *b == overflow => Verdict::Inconclusive,
        _ => Verdict::Diverged,
    }
}

/// One module compiled on both sides.
struct Case<'k, 'h> {
    ours: Store<'k, 'h, Hosted>,
    module: Arc<kernel_core::wasm::CompiledModule>,
    checks: Arc<AtomicU32>,
    theirs: wasmtime::Store<()>,
    their_module: wasmtime::Module,
}

fn diverge(step: Step, vessel: impl fmt::Debug, wasmtime: impl fmt::Debug) -> Divergence {
    Divergence {
        step,
        vessel: format!("{vessel:?}"),
        wasmtime: format!("{wasmtime:?}"),
    }
}

impl<'k, 'h> Case<'k, 'h> {
    fn new(
        k: &'k Kernel<'h, Hosted>,
        engine: &wasmtime::Engine,
        memories: Memories,
        wasm: &[u8],
    ) -> Result<Self, Divergence> {
        let mut ours = Store::new(k, VESSEL_STACK).map_err(|e| diverge(Step::Compile, e, "-"))?;
        if memories == Memories::Bounded {
            ours.bound_memories(MAX_MEMORY_BYTES as usize);
        }
        let module = ours.compile(wasm);
        let their_module = wasmtime::Module::new(engine, wasm);
        let (module, their_module) = match (module, their_module) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                return Err(diverge(
                    Step::Compile,
                    a.map(|_| "ok"),
                    b.map(|_| "ok").map_err(|e| e.to_string()),
                ));
            }
        };
        let checks = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&checks);
        ours.interrupt().set_hook(Box::new(move |_| {
            if seen.fetch_add(1, Ordering::Relaxed) >= VESSEL_CHECKS {
                HookAction::Interrupt
            } else {
                HookAction::Continue
            }
        }));
        ours.interrupt().set_deadline(0);
        Ok(Self {
            ours,
            module,
            checks,
            theirs: wasmtime::Store::new(engine, ()),
            their_module,
        })
    }

    /// Give both sides a fresh budget.
    fn refuel(&mut self) {
        self.checks.store(0, Ordering::Relaxed);
        // Fuel is on in the engine, so this cannot fail.
        let _ = self.theirs.set_fuel(WASMTIME_FUEL);
    }

    /// Vessel's call outcome: an interrupt is our budget running out.
    fn ours_outcome(r: Result<Vec<vm::Val>, CallError>) -> Result<Outcome, String> {
        match r {
            Ok(v) => Ok(Outcome::Returned(
                v.into_iter().map(Value::of_vessel).collect(),
            )),
            Err(CallError::Trap(t)) if t.kind == TrapKind::Interrupted => Ok(Outcome::Exhausted),
            Err(CallError::Trap(t)) => Ok(Outcome::Trapped(Kind::of_vessel(t.kind))),
            Err(e) => Err(e.to_string()),
        }
    }

    /// wasmtime's outcome of an error: fuel is its budget running out.
    fn their_error(e: &wasmtime::Error) -> Result<Outcome, String> {
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => Ok(Outcome::Exhausted),
            Some(t) => Ok(Outcome::Trapped(Kind::of_wasmtime(*t))),
            None => Err(format!("{e:#}")),
        }
    }

    /// Instantiate the module on both sides and compare the outcome and
    /// the initial state. `None` when there is no pair of instances to go
    /// on with (both failed alike, or a budget ran out).
    fn instantiate(
        &mut self,
        tally: &mut Tally,
    ) -> Result<Option<(InstanceId, wasmtime::Instance)>, Divergence> {
        self.refuel();
        let inst = self.ours.instantiate(&self.module, &|_, _| None);
        let their_inst = wasmtime::Instance::new(&mut self.theirs, &self.their_module, &[]);
        let (inst, their_inst) = match (inst, their_inst) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                let ours = match a {
                    Ok(_) => Ok(Outcome::Returned(Vec::new())),
                    Err(InstantiateError::Start(e)) => Self::ours_outcome(Err(e)),
                    Err(InstantiateError::DataOutOfBounds { .. }) => {
                        Ok(Outcome::Trapped(Kind::MemoryOutOfBounds))
                    }
                    Err(InstantiateError::ElementsOutOfBounds) => {
                        Ok(Outcome::Trapped(Kind::TableOutOfBounds))
                    }
                    Err(InstantiateError::Memory(_) | InstantiateError::TooLarge) => {
                        Ok(Outcome::Exhausted)
                    }
                    Err(e) => Err(e.to_string()),
                };
                let theirs = match b {
                    Ok(_) => Ok(Outcome::Returned(Vec::new())),
                    Err(e) => Self::their_error(&e),
                };
                let overflow = Ok(Outcome::Trapped(Kind::StackOverflow));
                if ours == Ok(Outcome::Exhausted)
                    || theirs == Ok(Outcome::Exhausted)
                    || (theirs == overflow && ours != overflow)
                {
                    // INV-DIFF-1, INV-DIFF-2, INV-DIFF-4.
                    return Ok(None);
                }
                if ours == theirs {
                    tally.instances += 1;
                    tally.instances_failed += 1;
                    return Ok(None);
                }
                return Err(diverge(Step::Instantiate, ours, theirs));
            }
        };
        tally.instances += 1;
        self.compare_state(inst, &their_inst, "(instantiation)")?;
        Ok(Some((inst, their_inst)))
    }

    /// Call every export in order, on a fresh pair of instances after a
    /// call that ends the comparison of the current pair (INV-DIFF-1,
    /// INV-DIFF-2).
    fn run(mut self, u: &mut Unstructured<'_>, tally: &mut Tally) -> Result<(), Divergence> {
        let exports = kernel_core::wasm::vm::exported_funcs(&self.module);
        let mut pair = None;
        for (i, name) in exports.iter().enumerate() {
            let (inst, their_inst) = match pair {
                Some(p) => p,
                None => match self.instantiate(tally)? {
                    Some(p) => p,
                    None => {
                        tally.skipped += (exports.len() - i) as u64;
                        return Ok(());
                    }
                },
            };
            pair = Some((inst, their_inst));
            let step = Step::Call(name.clone());
            let Some(Extern::Func(f)) = self.ours.export(inst, name) else {
                return Err(diverge(step, self.ours.export(inst, name), "a function"));
            };
            let Some(g) = their_inst.get_func(&mut self.theirs, name) else {
                return Err(diverge(step, "a function", "no such export"));
            };
            let args = arguments(u, &f.ty().params);
            let their_args: Vec<wasmtime::Val> = args.iter().map(|a| to_wasmtime(*a)).collect();
            let mut their_results = vec![wasmtime::Val::I32(0); f.ty().results.len()];
            self.refuel();
            let ours = Self::ours_outcome(self.ours.invoke(&f, &args));
            let theirs = match g.call(&mut self.theirs, &their_args, &mut their_results) {
                Ok(()) => Ok(Outcome::Returned(
                    their_results.iter().map(Value::of_wasmtime).collect(),
                )),
                Err(e) => Self::their_error(&e),
            };
            match judge(&ours, &theirs) {
                Verdict::Same => {
                    tally.compared += 1;
                    self.compare_state(inst, &their_inst, name)?;
                }
                Verdict::SameOverflow => {
                    tally.compared += 1;
                    pair = None;
                }
                Verdict::Inconclusive => {
                    tally.inconclusive += 1;
                    pair = None;
                }
                Verdict::Diverged => return Err(diverge(step, ours, theirs)),
            }
        }
        Ok(())
    }

    /// Every exported global and memory agrees.
    fn compare_state(
        &mut self,
        inst: InstanceId,
        their_inst: &wasmtime::Instance,
        after: &str,
    ) -> Result<(), Divergence> {
        for (name, e) in self.ours.exports(inst) {
            let step = || Step::State {
                after: after.to_owned(),
                what: name.clone(),
            };
            match e {
                Extern::Global(g) => {
                    let ours = Value::of_vessel(self.ours.global_get(&g));
                    let theirs = their_inst
                        .get_global(&mut self.theirs, &name)
                        .map(|g| Value::of_wasmtime(&g.get(&mut self.theirs)));
                    if Some(ours) != theirs {
                        return Err(diverge(step(), ours, theirs));
                    }
                }
                Extern::Memory(index) => {
                    let ours = self.ours.memory(index).map(|m| {
                        let len = usize::try_from(m.pages() << 16).unwrap_or(0);
                        // SAFETY: the memory is alive in the store and
                        // `len` bytes from its base are accessible (its
                        // current size; untouched pages are demand-paged
                        // in by the kernel, as for wasm's own loads).
                        let bytes =
                            unsafe { std::slice::from_raw_parts(m.base() as *const u8, len) };
                        (len, fnv(bytes))
                    });
                    let theirs = their_inst.get_memory(&mut self.theirs, &name).map(|m| {
                        let d = m.data(&self.theirs);
                        (d.len(), fnv(d))
                    });
                    if ours != theirs {
                        return Err(diverge(step(), ours, theirs));
                    }
                }
                Extern::Func(_) | Extern::Table(_) => {}
            }
        }
        Ok(())
    }
}

/// FNV-1a over `bytes`.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Arguments of types `params` from `u` (zeros once `u` runs dry);
/// references are null, NaNs canonical.
fn arguments(u: &mut Unstructured<'_>, params: &[ValType]) -> Vec<vm::Val> {
    params
        .iter()
        .map(|t| match t {
            ValType::I32 => vm::Val::I32(u.arbitrary().unwrap_or(0)),
            ValType::I64 => vm::Val::I64(u.arbitrary().unwrap_or(0)),
            ValType::F32 => {
                let x: f32 = u.arbitrary().unwrap_or(0.0);
                vm::Val::F32(if x.is_nan() { 0x7fc0_0000 } else { x.to_bits() })
            }
            ValType::F64 => {
                let x: f64 = u.arbitrary().unwrap_or(0.0);
                vm::Val::F64(if x.is_nan() {
                    0x7ff8_0000_0000_0000
                } else {
                    x.to_bits()
                })
            }
            ValType::V128 => vm::Val::V128(u.arbitrary().unwrap_or(0)),
            ValType::FuncRef => vm::Val::FuncRef(None),
            ValType::ExternRef => vm::Val::ExternRef(None),
        })
        .collect()
}

fn to_wasmtime(v: vm::Val) -> wasmtime::Val {
    match v {
        vm::Val::I32(x) => wasmtime::Val::I32(x),
        vm::Val::I64(x) => wasmtime::Val::I64(x),
        vm::Val::F32(x) => wasmtime::Val::F32(x),
        vm::Val::F64(x) => wasmtime::Val::F64(x),
        vm::Val::V128(x) => wasmtime::Val::V128(x.into()),
        vm::Val::FuncRef(_) => wasmtime::Val::FuncRef(None),
        vm::Val::ExternRef(_) => wasmtime::Val::ExternRef(None),
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, Outcome, Verdict, judge};

    fn ret(v: i32) -> Result<Outcome, String> {
        Ok(Outcome::Returned(vec![super::Value::I32(v)]))
    }

    fn trap(k: Kind) -> Result<Outcome, String> {
        Ok(Outcome::Trapped(k))
    }

    #[test]
    fn equal_outcomes_are_the_same_and_unequal_ones_diverge() {
        assert_eq!(judge(&ret(1), &ret(1)), Verdict::Same);
        assert_eq!(judge(&ret(1), &ret(2)), Verdict::Diverged);
        assert_eq!(
            judge(&trap(Kind::Unreachable), &trap(Kind::Unreachable)),
            Verdict::Same
        );
        assert_eq!(
            judge(&trap(Kind::Unreachable), &trap(Kind::MemoryOutOfBounds)),
            Verdict::Diverged
        );
        assert_eq!(judge(&ret(0), &trap(Kind::Unreachable)), Verdict::Diverged);
        assert_eq!(judge(&Err("no cpu".into()), &ret(0)), Verdict::Diverged);
    }

    #[test]
    fn a_budget_running_out_on_either_side_is_inconclusive() {
        let out = Ok(Outcome::Exhausted);
        assert_eq!(judge(&out, &ret(1)), Verdict::Inconclusive);
        assert_eq!(judge(&trap(Kind::Unreachable), &out), Verdict::Inconclusive);
        assert_eq!(judge(&out, &out), Verdict::Inconclusive);
    }

    #[test]
    fn stack_overflow_matches_only_itself() {
        let so = trap(Kind::StackOverflow);
        assert_eq!(judge(&so, &so), Verdict::SameOverflow);
        // wasmtime's stack is the smaller one: its overflow alone is a
        // budget; Vessel's alone is a divergence.
        assert_eq!(judge(&ret(3), &so), Verdict::Inconclusive);
        assert_eq!(judge(&trap(Kind::Unreachable), &so), Verdict::Inconclusive);
        assert_eq!(judge(&so, &ret(3)), Verdict::Diverged);
        assert_eq!(judge(&so, &trap(Kind::Unreachable)), Verdict::Diverged);
    }
}
