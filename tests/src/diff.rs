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
//!   arguments: both return the same values (floats bit for bit, NaNs
//!   included: `kernel_core::diff` INV-DIFF-5), or both trap with the
//!   same [`Kind`]; after each call, every exported global has the same
//!   value and every exported memory the same size and the same hash of its
//!   bytes (modules export everything).
//!
//! The rules of comparison (INV-DIFF-1 budgets, INV-DIFF-2 stack,
//! INV-DIFF-3 references, INV-DIFF-4 resources, INV-DIFF-5 NaNs), the outcome and value
//! types and the verdicts live in `kernel_core::diff`, shared with the
//! record format and the replay a kernel without wasmtime runs
//! (`test=diff` on riscv): this module adds wasmtime's side. [`record`]
//! runs a seed on wasmtime alone and writes what it did in that format
//! (`kernel_core::diff::record`), for `examples/diff_image.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use arbitrary::Unstructured;
use hal_hosted::Hosted;
use kernel_core::diff::record::{self, Event, State};
use kernel_core::diff::replay::vessel_state;
pub use kernel_core::diff::{
    Divergence, Kind, MAX_MEMORY_BYTES, Memories, Outcome, Snapshot, Step, Tally, VESSEL_CHECKS,
    VESSEL_STACK, Value, Verdict, WASMTIME_FUEL, WASMTIME_STACK, judge, judge_instantiation,
};
use kernel_core::diff::{call_outcome, compare_states, fnv, instantiate_outcome};
use kernel_core::kernel::Kernel;
use kernel_core::wasm::interrupt::HookAction;
use kernel_core::wasm::module::ValType;
use kernel_core::wasm::vm::{self, Extern, InstanceId, Store};

/// The wasm-smith configuration: the WebAssembly 2.0 features Vessel's JIT
/// supports on this host (SIMD on x86_64 only), plus `extended-const`,
/// tail calls, exception handling and multi-memory;
/// no imports; NaNs canonicalized; everything exported; sizes small enough
/// for a case to run in milliseconds.
#[must_use]
pub fn smith_config() -> wasm_smith::Config {
    smith_config_with(cfg!(target_arch = "x86_64"))
}

/// [`smith_config`] with SIMD on or off whatever the host. The riscv
/// records ([`record`], `examples/diff_image.rs`) have it on, for harts
/// with the V extension: those seeds make the same modules as on x86_64.
#[must_use]
pub fn smith_config_with(simd: bool) -> wasm_smith::Config {
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
        simd_enabled: simd,
        relaxed_simd_enabled: false,
        exceptions_enabled: true,
        gc_enabled: false,
        memory64_enabled: false,
        tail_call_enabled: true,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        custom_descriptors_enabled: false,
        compact_imports_enabled: false,
        min_imports: 0,
        max_imports: 0,
        max_tags: 4,
        max_memories: 2,
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

/// The hosted machine both oracle tests run Vessel's side on: one CPU,
/// 256 MiB, a 1 TiB window (guard-page memories).
///
/// # Panics
/// When the host cannot make the machine.
pub fn machine() -> Hosted {
    Hosted::new(&hal_hosted::Config {
        cpus: 1,
        memory: 256 << 20,
        window: 1 << 40,
        ..hal_hosted::Config::default()
    })
    .expect("machine")
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
    engine_with(false)
}

/// The engine whose outcomes the riscv kernel is held to ([`record`] for
/// `test=diff`): [`engine`] with Cranelift's NaN canonicalization on. An
/// arithmetic instruction may return any NaN (the spec's `nans`); riscv's
/// FPU returns the canonical NaN from every operation that makes one while
/// x86's keeps payloads, and wasm-smith's `canonicalize_nans` does not
/// cover every such instruction (`f32.demote_f64` of a NaN carries x86's
/// payload into a global). Canonical NaNs are what riscv computes.
///
/// # Panics
/// As [`engine`].
#[must_use]
pub fn engine_canonical_nans() -> wasmtime::Engine {
    engine_with(true)
}

fn engine_with(canonical_nans: bool) -> wasmtime::Engine {
    let mut c = wasmtime::Config::new();
    c.cranelift_nan_canonicalization(canonical_nans);
    c.consume_fuel(true)
        .max_wasm_stack(WASMTIME_STACK)
        .signals_based_traps(false)
        .wasm_simd(cfg!(target_arch = "x86_64"))
        .wasm_relaxed_simd(false)
        .wasm_tail_call(true)
        .wasm_gc(false)
        .wasm_function_references(false)
        .wasm_exceptions(true)
        .wasm_memory64(false)
        .wasm_multi_memory(true)
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

/// The kind of a wasmtime trap.
fn kind_of_wasmtime(t: wasmtime::Trap) -> Kind {
    use wasmtime::Trap as T;
    match t {
        T::UnreachableCodeReached => Kind::Unreachable,
        T::IntegerDivisionByZero => Kind::DivideByZero,
        T::IntegerOverflow => Kind::IntegerOverflow,
        T::BadConversionToInteger => Kind::BadConversion,
        T::MemoryOutOfBounds => Kind::MemoryOutOfBounds,
        T::TableOutOfBounds => Kind::TableOutOfBounds,
        T::IndirectCallToNull => Kind::IndirectCallToNull,
        T::BadSignature => Kind::BadSignature,
        T::StackOverflow => Kind::StackOverflow,
        _ => Kind::Other,
    }
}

/// The value of a wasmtime value (INV-DIFF-3 for references).
fn value_of_wasmtime(v: &wasmtime::Val) -> Value {
    use wasmtime::Val as W;
    match v {
        W::I32(x) => Value::I32(*x),
        W::I64(x) => Value::I64(*x),
        W::F32(x) => Value::F32(*x),
        W::F64(x) => Value::F64(*x),
        W::V128(x) => Value::V128(x.as_u128()),
        W::FuncRef(f) => Value::Ref { null: f.is_none() },
        W::ExternRef(e) => Value::Ref { null: e.is_none() },
        W::AnyRef(r) => Value::Ref { null: r.is_none() },
        W::ExnRef(r) => Value::Ref { null: r.is_none() },
        W::ContRef(r) => Value::Ref { null: r.is_none() },
    }
}

/// The module wasm-smith makes from `u` with [`smith_config`], if `u`
/// holds enough bytes.
#[must_use]
pub fn module(u: &mut Unstructured<'_>) -> Option<Vec<u8>> {
    module_with(smith_config(), u)
}

/// The module wasm-smith makes from `u` with `config`, if `u` holds
/// enough bytes.
#[must_use]
pub fn module_with(config: wasm_smith::Config, u: &mut Unstructured<'_>) -> Option<Vec<u8>> {
    wasm_smith::Module::new(config, u)
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

/// One module compiled on both sides.
struct Case<'k, 'h> {
    ours: Store<'k, 'h, Hosted>,
    module: Arc<kernel_core::wasm::CompiledModule>,
    checks: Arc<AtomicU32>,
    theirs: wasmtime::Store<()>,
    their_module: wasmtime::Module,
}

impl<'k, 'h> Case<'k, 'h> {
    fn new(
        k: &'k Kernel<'h, Hosted>,
        engine: &wasmtime::Engine,
        memories: Memories,
        wasm: &[u8],
    ) -> Result<Self, Divergence> {
        let mut ours =
            Store::new(k, VESSEL_STACK).map_err(|e| Divergence::new(Step::Compile, e, "-"))?;
        if memories == Memories::Bounded {
            ours.bound_memories(MAX_MEMORY_BYTES as usize);
        }
        let module = ours.compile(wasm);
        let their_module = wasmtime::Module::new(engine, wasm);
        let (module, their_module) = match (module, their_module) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                return Err(Divergence::new(
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
        let ours = instantiate_outcome(&inst);
        let theirs = match &their_inst {
            Ok(_) => Ok(Outcome::Returned(Vec::new())),
            Err(e) => their_error(e),
        };
        match (judge_instantiation(&ours, &theirs), inst, their_inst) {
            (Verdict::Same | Verdict::SameOverflow, Ok(inst), Ok(their_inst)) => {
                tally.instances += 1;
                self.compare_state(inst, &their_inst, "(instantiation)")?;
                Ok(Some((inst, their_inst)))
            }
            (Verdict::Same | Verdict::SameOverflow, _, _) => {
                tally.instances += 1;
                tally.instances_failed += 1;
                Ok(None)
            }
            // INV-DIFF-1, INV-DIFF-2, INV-DIFF-4.
            (Verdict::Inconclusive, _, _) => {
                tally.instances_inconclusive += 1;
                Ok(None)
            }
            (Verdict::Diverged, _, _) => Err(Divergence::new(Step::Instantiate, ours, theirs)),
        }
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
                return Err(Divergence::new(
                    step,
                    self.ours.export(inst, name),
                    "a function",
                ));
            };
            let Some(g) = their_inst.get_func(&mut self.theirs, name) else {
                return Err(Divergence::new(step, "a function", "no such export"));
            };
            let args = arguments(u, &f.ty().params);
            let their_args: Vec<wasmtime::Val> = args.iter().map(|a| to_wasmtime(*a)).collect();
            let mut their_results = vec![wasmtime::Val::I32(0); f.ty().results.len()];
            self.refuel();
            let ours = call_outcome(self.ours.invoke(&f, &args));
            let theirs = match g.call(&mut self.theirs, &their_args, &mut their_results) {
                Ok(()) => Ok(Outcome::Returned(
                    their_results.iter().map(value_of_wasmtime).collect(),
                )),
                Err(e) => their_error(&e),
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
                Verdict::Diverged => return Err(Divergence::new(step, ours, theirs)),
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
        let theirs = wasmtime_state(&mut self.theirs, their_inst);
        compare_states(&vessel_state(&self.ours, inst), &theirs, after)
    }
}

/// wasmtime's outcome of an error: fuel is its budget running out.
fn their_error(e: &wasmtime::Error) -> Result<Outcome, String> {
    if e.downcast_ref::<wasmtime::ThrownException>().is_some() {
        return Ok(Outcome::Trapped(Kind::UncaughtException));
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => Ok(Outcome::Exhausted),
        Some(t) => Ok(Outcome::Trapped(kind_of_wasmtime(*t))),
        None => Err(format!("{e:#}")),
    }
}

/// The state of a wasmtime instance: every exported global's value and
/// every exported memory's length and hash, in export order.
fn wasmtime_state(store: &mut wasmtime::Store<()>, inst: &wasmtime::Instance) -> State {
    let exports: Vec<(String, wasmtime::Extern)> = inst
        .exports(&mut *store)
        .map(|e| (e.name().to_owned(), e.into_extern()))
        .collect();
    let mut out = Vec::new();
    for (name, e) in exports {
        match e {
            wasmtime::Extern::Global(g) => {
                let v = value_of_wasmtime(&g.get(&mut *store));
                out.push((name, Snapshot::Global(v)));
            }
            wasmtime::Extern::Memory(m) => {
                let d = m.data(&*store);
                let snap = Snapshot::Memory {
                    len: d.len() as u64,
                    hash: fnv(d),
                };
                out.push((name, snap));
            }
            _ => {}
        }
    }
    out
}

/// Run seed `seed` on wasmtime alone and record what it did
/// (`kernel_core::diff::record`, INV-REC-3), for a kernel without
/// wasmtime to replay: the module [`module_with`] makes from `bytes` with
/// `config` (wasm-smith's bytes first, then the call arguments, as
/// [`check`] draws them), every instantiation with its state, every call
/// with its arguments, outcome and state. A fresh instance is made where
/// [`check`] would make a fresh pair after wasmtime ran out or overflowed
/// its stack.
#[must_use]
pub fn record(
    engine: &wasmtime::Engine,
    config: wasm_smith::Config,
    seed: u64,
    memories: Memories,
    bytes: &[u8],
) -> record::Case {
    let mut u = Unstructured::new(bytes);
    let mut case = record::Case {
        seed,
        memories,
        wasm: module_with(config, &mut u),
        events: Vec::new(),
    };
    let Some(wasm) = &case.wasm else {
        return case;
    };
    let module = match wasmtime::Module::new(engine, wasm) {
        Ok(m) => m,
        Err(e) => {
            // Replayed as an instantiation that failed on wasmtime's side:
            // a divergence wherever Vessel compiles the module.
            case.events.push(Event::Instantiate {
                outcome: Err(format!("wasmtime did not compile it: {e:#}")),
                state: Vec::new(),
            });
            return case;
        }
    };
    let mut store = wasmtime::Store::new(engine, ());
    let funcs: Vec<(String, wasmtime::FuncType)> = module
        .exports()
        .filter_map(|e| Some((e.name().to_owned(), e.ty().func()?.clone())))
        .collect();
    let mut current = None;
    for (name, ty) in funcs {
        let inst = match current {
            Some(i) => i,
            None => {
                let _ = store.set_fuel(WASMTIME_FUEL);
                match wasmtime::Instance::new(&mut store, &module, &[]) {
                    Ok(i) => {
                        let state = wasmtime_state(&mut store, &i);
                        case.events.push(Event::Instantiate {
                            outcome: Ok(Outcome::Returned(Vec::new())),
                            state,
                        });
                        i
                    }
                    Err(e) => {
                        case.events.push(Event::Instantiate {
                            outcome: their_error(&e),
                            state: Vec::new(),
                        });
                        return case;
                    }
                }
            }
        };
        current = Some(inst);
        let params: Vec<ValType> = ty.params().map(|t| val_type(&t)).collect();
        let args = arguments(&mut u, &params);
        let their_args: Vec<wasmtime::Val> = args.iter().map(|a| to_wasmtime(*a)).collect();
        let mut results = vec![wasmtime::Val::I32(0); ty.results().len()];
        let _ = store.set_fuel(WASMTIME_FUEL);
        let outcome = match inst.get_func(&mut store, &name) {
            Some(f) => match f.call(&mut store, &their_args, &mut results) {
                Ok(()) => Ok(Outcome::Returned(
                    results.iter().map(value_of_wasmtime).collect(),
                )),
                Err(e) => their_error(&e),
            },
            None => Err(format!("no export {name}")),
        };
        let ends_pair = matches!(
            outcome,
            Ok(Outcome::Exhausted | Outcome::Trapped(Kind::StackOverflow))
        );
        let state = if ends_pair {
            Vec::new()
        } else {
            wasmtime_state(&mut store, &inst)
        };
        case.events.push(Event::Call {
            export: name,
            args: args.into_iter().map(Value::of_vessel).collect(),
            outcome,
            state,
        });
        if ends_pair {
            current = None;
        }
    }
    case
}

/// The oracle's type of a wasmtime value type (wasm-smith's modules use
/// only these; any other reference is a funcref).
fn val_type(t: &wasmtime::ValType) -> ValType {
    match t {
        wasmtime::ValType::I32 => ValType::I32,
        wasmtime::ValType::I64 => ValType::I64,
        wasmtime::ValType::F32 => ValType::F32,
        wasmtime::ValType::F64 => ValType::F64,
        wasmtime::ValType::V128 => ValType::V128,
        wasmtime::ValType::Ref(r) if r.heap_type().is_extern() => ValType::EXTERNREF,
        wasmtime::ValType::Ref(r) if r.heap_type().is_exn() => ValType::EXNREF,
        wasmtime::ValType::Ref(_) => ValType::FUNCREF,
    }
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
            ValType::Ref(r) => vm::Val::null(*r),
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
        vm::Val::ExnRef(_) => wasmtime::Val::ExnRef(None),
    }
}
