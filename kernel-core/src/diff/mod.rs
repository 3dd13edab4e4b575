//! The rules of the differential oracle (Vessel's JIT against wasmtime),
//! shared by every place that compares: the live oracle on hosted
//! (`tests::diff`, wasmtime in the same process), the host generator that
//! records wasmtime's outcomes ([`record`]), and the replay of those
//! records on a running kernel ([`replay`], `test=diff` on riscv).
//!
//! What is compared, for one module:
//! - compilation: wasm-smith only emits valid modules of the features both
//!   runtimes support, so both must accept it;
//! - instantiation: both succeed, or both fail the same way (a trap of the
//!   same kind in a segment or the start function);
//! - then every exported function in export order, called with the same
//!   arguments: both return the same values (floats bit for bit,
//!   INV-DIFF-5), or both trap with the
//!   same [`Kind`]; after each call, every exported global has the same
//!   value and every exported memory the same size and the same [`fnv`]
//!   hash of its bytes (modules export everything).
//!
//! Rules of comparison (the invariants the oracle relies on):
//! - INV-DIFF-1 (budgets): wasm-smith modules may loop forever, so both
//!   sides run on a budget: wasmtime on fuel ([`WASMTIME_FUEL`]), Vessel on
//!   a count of its preemption checks ([`VESSEL_CHECKS`], function entries
//!   and loop headers) through the store's interrupt hook. The budgets
//!   measure different things, so when either side runs out the call is
//!   *inconclusive*: it is counted as such (never as a pass), and that pair
//!   of instances is not compared further, because the two states may
//!   differ from there on: the next export is called on a fresh pair.
//! - INV-DIFF-2 (stack): stack exhaustion is a trap kind that matches only
//!   itself. Vessel's stack budget ([`VESSEL_STACK`]) is twice wasmtime's,
//!   so a call that exhausts Vessel's stack must exhaust wasmtime's too
//!   (otherwise it is a divergence); a call that exhausts only wasmtime's
//!   stack is inconclusive under INV-DIFF-1. After a stack overflow on both
//!   sides the pair is not compared further either (the next export gets a
//!   fresh pair): the side effects made before the overflow depend on how
//!   deep each side got.
//! - INV-DIFF-3 (references): function and extern references cannot be
//!   compared across runtimes; results and globals of reference type are
//!   compared by null-ness only ([`Value::Ref`]), and tables only through
//!   the calls that use them.
//! - INV-DIFF-4 (resources): an instantiation that fails for lack of memory
//!   on either side (not a trap) is inconclusive, like a budget.
//! - INV-DIFF-5 (NaNs): floats compare bit for bit, NaNs included, so the
//!   expected side makes the NaN choices of the platform compared. Wasm
//!   lets an arithmetic instruction return any NaN; wasm-smith's
//!   `canonicalize_nans` covers most of them but not all (`f32.demote_f64`
//!   of a NaN keeps its payload on x86, while riscv's FPU returns the
//!   canonical NaN from every operation that makes one). The live oracle
//!   compares x86 with x86; records for riscv come from wasmtime with NaN
//!   canonicalization (`tests::diff::engine_canonical_nans`).
//!
//! [`judge`] is the one decision of INV-DIFF-1 and INV-DIFF-2 for a call;
//! [`judge_instantiation`] the one for an instantiation.

pub mod record;
pub mod replay;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::wasm::TrapKind;
use crate::wasm::vm;

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
    /// An exception no wasm frame caught left the call.
    UncaughtException,
}

impl Kind {
    /// Every kind, in the order of their codes in the record format.
    pub const ALL: [Self; 11] = [
        Self::Unreachable,
        Self::DivideByZero,
        Self::IntegerOverflow,
        Self::BadConversion,
        Self::MemoryOutOfBounds,
        Self::TableOutOfBounds,
        Self::IndirectCallToNull,
        Self::BadSignature,
        Self::StackOverflow,
        Self::Other,
        Self::UncaughtException,
    ];

    /// The kind of a Vessel trap.
    #[must_use]
    pub fn of_vessel(k: TrapKind) -> Self {
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
            TrapKind::Interrupted
            | TrapKind::Host
            | TrapKind::OutOfMemory
            | TrapKind::NullFunctionReference
            | TrapKind::NullReference
            | TrapKind::UnalignedAtomic
            | TrapKind::UnsharedWait => Self::Other,
            TrapKind::UncaughtException => Self::UncaughtException,
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
    /// The value of a Vessel value.
    #[must_use]
    pub fn of_vessel(v: vm::Val) -> Self {
        match v {
            vm::Val::I32(x) => Self::I32(x),
            vm::Val::I64(x) => Self::I64(x),
            vm::Val::F32(x) => Self::F32(x),
            vm::Val::F64(x) => Self::F64(x),
            vm::Val::V128(x) => Self::V128(x),
            vm::Val::FuncRef(f) => Self::Ref { null: f.is_none() },
            vm::Val::ExternRef(e) => Self::Ref { null: e.is_none() },
            vm::Val::ExnRef(e) => Self::Ref { null: e.is_none() },
        }
    }
}

/// How one side's call (or instantiation) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It returned these values (an instantiation: none).
    Returned(Vec<Value>),
    /// It trapped.
    Trapped(Kind),
    /// It ran out of its budget (INV-DIFF-1) or of memory (INV-DIFF-4).
    Exhausted,
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

/// Judge Vessel's call outcome `ours` against wasmtime's `theirs`.
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

/// Judge an instantiation: [`Verdict::Same`] when both succeeded or both
/// failed alike (a trap of one kind), [`Verdict::Inconclusive`] when either
/// ran out (INV-DIFF-1, INV-DIFF-4) or only wasmtime's stack overflowed
/// (INV-DIFF-2), else [`Verdict::Diverged`]. An instantiation that
/// succeeded is `Returned` with no values.
#[must_use]
pub fn judge_instantiation(
    ours: &Result<Outcome, String>,
    theirs: &Result<Outcome, String>,
) -> Verdict {
    match judge(ours, theirs) {
        Verdict::SameOverflow => Verdict::Same,
        v => v,
    }
}

/// A global's value or a memory's size and hash: the state compared after
/// instantiation and after each call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snapshot {
    /// An exported global's value.
    Global(Value),
    /// An exported memory: its length in bytes and the [`fnv`] hash of its
    /// bytes.
    Memory {
        /// Length in bytes.
        len: u64,
        /// FNV-1a of the bytes.
        hash: u64,
    },
}

/// The FNV-1a offset basis (the hash of no bytes).
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes`, continued from `h` (start with [`FNV_START`]), so a
/// memory can be hashed a piece at a time.
#[must_use]
pub fn fnv_continue(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// FNV-1a over `bytes`.
#[must_use]
pub fn fnv(bytes: &[u8]) -> u64 {
    fnv_continue(FNV_START, bytes)
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

impl Divergence {
    /// A divergence at `step`, both sides shown with `Debug`.
    pub fn new(step: Step, vessel: impl fmt::Debug, wasmtime: impl fmt::Debug) -> Self {
        Self {
            step,
            vessel: alloc::format!("{vessel:?}"),
            wasmtime: alloc::format!("{wasmtime:?}"),
        }
    }
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
    /// Instantiations that were inconclusive (INV-DIFF-1, INV-DIFF-2,
    /// INV-DIFF-4): the case's remaining exports are skipped.
    pub instances_inconclusive: u64,
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
        self.instances_inconclusive += o.instances_inconclusive;
        self.skipped += o.skipped;
        self.cases_compared += o.cases_compared;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cases ({} compared, {} without a module), \
             {} instances ({} failed alike, {} inconclusive), \
             calls: {} compared, {} inconclusive, {} skipped",
            self.cases,
            self.cases_compared,
            self.no_module,
            self.instances,
            self.instances_failed,
            self.instances_inconclusive,
            self.compared,
            self.inconclusive,
            self.skipped
        )
    }
}

/// Vessel's outcome of a call: an interrupt is its budget running out
/// (INV-DIFF-1); `Err` is a call that could not be made.
pub fn call_outcome(r: Result<Vec<vm::Val>, vm::CallError>) -> Result<Outcome, String> {
    match r {
        Ok(v) => Ok(Outcome::Returned(
            v.into_iter().map(Value::of_vessel).collect(),
        )),
        Err(vm::CallError::Trap(t)) if t.kind == TrapKind::Interrupted => Ok(Outcome::Exhausted),
        Err(vm::CallError::Trap(t)) => Ok(Outcome::Trapped(Kind::of_vessel(t.kind))),
        Err(e) => Err(e.to_string()),
    }
}

/// Vessel's outcome of an instantiation: `Returned` with no values when it
/// succeeded, a segment out of bounds as the trap wasmtime reports for it,
/// and a lack of memory as [`Outcome::Exhausted`] (INV-DIFF-4).
pub fn instantiate_outcome(
    r: &Result<vm::InstanceId, vm::InstantiateError>,
) -> Result<Outcome, String> {
    use vm::InstantiateError as E;
    match r {
        Ok(_) => Ok(Outcome::Returned(Vec::new())),
        Err(E::Start(e)) => call_outcome(Err(e.clone())),
        Err(E::DataOutOfBounds { .. }) => Ok(Outcome::Trapped(Kind::MemoryOutOfBounds)),
        Err(E::ElementsOutOfBounds) => Ok(Outcome::Trapped(Kind::TableOutOfBounds)),
        Err(E::Memory(_) | E::TooLarge) => Ok(Outcome::Exhausted),
        Err(e) => Err(e.to_string()),
    }
}

/// Compare Vessel's state `ours` with wasmtime's `theirs` after `after`:
/// every global and memory Vessel exports must be in `theirs` with the
/// same snapshot.
///
/// # Errors
/// The first [`Divergence`], at [`Step::State`].
pub fn compare_states(
    ours: &[(String, Snapshot)],
    theirs: &[(String, Snapshot)],
    after: &str,
) -> Result<(), Divergence> {
    for (name, snap) in ours {
        let other = theirs.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
        if other != Some(*snap) {
            return Err(Divergence::new(
                Step::State {
                    after: String::from(after),
                    what: name.clone(),
                },
                Some(*snap),
                other,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
