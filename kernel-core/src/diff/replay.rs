//! Replaying recorded cases ([`super::record`]) on Vessel: every module of
//! a bundle compiled and run by this kernel, each outcome judged against
//! wasmtime's recorded one by the oracle's rules ([`super::judge`]), so a
//! kernel without wasmtime (riscv, `test=diff`) compares exactly as the
//! live oracle does on hosted.
//!
//! Invariants:
//! - INV-REPLAY-1: each case runs in a fresh [`Store`] on the calling CPU,
//!   with the oracle's budgets ([`VESSEL_STACK`], [`VESSEL_CHECKS`]
//!   refilled before every instantiation and call), dropped when the case
//!   ends.
//! - INV-REPLAY-2: the replay follows the record's pairs of instances
//!   (record INV-REC-3): an `Instantiate` event makes a fresh Vessel
//!   instance. When a call is inconclusive because only Vessel ran out
//!   (wasmtime went on with the same instance), the calls recorded on that
//!   wasmtime instance are skipped, never compared, until the next
//!   `Instantiate`; the live oracle instead moves both sides to a fresh
//!   pair, so it may compare a few more calls of such a case. A record
//!   ends at an instantiation that did not succeed (record INV-REC-3), so
//!   `skipped` counts only the calls skipped here, not the exports after
//!   such an instantiation (the live oracle counts those too).
//! - INV-REPLAY-3: a case is never passed without being run: a damaged
//!   case fails, and [`run_bundle`] fails a bundle that compares too
//!   little (fewer than 80 % of the cases compared anything, or fewer than
//!   80 % of the judged calls were conclusive), as the hosted test does.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use super::record::{self, Case, Event, FormatError, State};
use super::{
    Divergence, MAX_MEMORY_BYTES, Memories, Snapshot, Step, Tally, VESSEL_CHECKS, VESSEL_STACK,
    Value, Verdict, call_outcome, compare_states, fnv_continue, instantiate_outcome, judge,
    judge_instantiation,
};
use crate::hal::Platform;
use crate::kernel::Kernel;
use crate::wasm::module::ValType;
use crate::wasm::vm::{Extern, InstanceId, Store, Val};

/// Bytes hashed per copy out of a linear memory.
const HASH_CHUNK: usize = 4096;

/// The state of `inst` in `store`: every exported global's value and every
/// exported memory's length and hash, in export order.
pub fn vessel_state<P: Platform>(store: &Store<'_, '_, P>, inst: InstanceId) -> State {
    let mut out = Vec::new();
    for (name, e) in store.exports(inst) {
        match e {
            Extern::Global(g) => {
                out.push((
                    name,
                    Snapshot::Global(Value::of_vessel(store.global_get(&g))),
                ));
            }
            Extern::Memory(index) => {
                let Some(m) = store.memory(index) else {
                    continue;
                };
                let len = m.pages() << 16;
                let mut hash = super::FNV_START;
                let mut buf = [0u8; HASH_CHUNK];
                let mut at = 0u64;
                while at < len {
                    let n = (len - at).min(HASH_CHUNK as u64) as usize;
                    if !m.read(at, &mut buf[..n]) {
                        // Cannot happen (the length was just read); a
                        // hash of what was read then differs visibly.
                        break;
                    }
                    hash = fnv_continue(hash, &buf[..n]);
                    at += n as u64;
                }
                out.push((name, Snapshot::Memory { len, hash }));
            }
            Extern::Func(_) | Extern::Table(_) | Extern::Tag(_) => {}
        }
    }
    out
}

/// The arguments of a call to a function taking `params`: recorded values
/// made Vessel values. `None` when they do not fit (a count or a type that
/// differs, a non-null reference: wasmtime's references cannot be
/// recorded, INV-DIFF-3).
fn arguments(args: &[Value], params: &[ValType]) -> Option<Vec<Val>> {
    if args.len() != params.len() {
        return None;
    }
    args.iter()
        .zip(params)
        .map(|(a, t)| match (a, t) {
            (Value::I32(x), ValType::I32) => Some(Val::I32(*x)),
            (Value::I64(x), ValType::I64) => Some(Val::I64(*x)),
            (Value::F32(x), ValType::F32) => Some(Val::F32(*x)),
            (Value::F64(x), ValType::F64) => Some(Val::F64(*x)),
            (Value::V128(x), ValType::V128) => Some(Val::V128(*x)),
            (Value::Ref { null: true }, ValType::Ref(r)) if r.nullable => Some(Val::null(*r)),
            _ => None,
        })
        .collect()
}

/// Run `case` on `kernel` and judge it against its record
/// (INV-REPLAY-1, INV-REPLAY-2).
///
/// # Errors
/// The first [`Divergence`].
pub fn replay<P: Platform>(kernel: &Kernel<'_, P>, case: &Case) -> Result<Tally, Divergence> {
    let mut tally = Tally {
        cases: 1,
        ..Tally::default()
    };
    let Some(wasm) = &case.wasm else {
        tally.no_module = 1;
        return Ok(tally);
    };
    let mut ours = Store::new(kernel, VESSEL_STACK)
        .map_err(|e| Divergence::new(Step::Compile, e.to_string(), "-"))?;
    // Guard-page memories only where the window holds the reservations of
    // every instance a case may make (riscv's does not).
    let guarded = case.memories == Memories::GuardPages
        && crate::spec::memory_reserve(kernel.hal().kernel_window().len).is_none();
    if !guarded {
        ours.bound_memories(MAX_MEMORY_BYTES as usize);
    }
    let module = ours
        .compile(wasm)
        .map_err(|e| Divergence::new(Step::Compile, e.to_string(), "ok"))?;
    let checks = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&checks);
    ours.interrupt().set_hook(alloc::boxed::Box::new(move |_| {
        if seen.fetch_add(1, Ordering::Relaxed) >= VESSEL_CHECKS {
            crate::wasm::interrupt::HookAction::Interrupt
        } else {
            crate::wasm::interrupt::HookAction::Continue
        }
    }));
    ours.interrupt().set_deadline(0);

    // The current instance; `None` while there is none to compare
    // (INV-REPLAY-2).
    let mut current: Option<InstanceId> = None;
    for (i, event) in case.events.iter().enumerate() {
        match event {
            Event::Instantiate {
                outcome: theirs,
                state,
            } => {
                checks.store(0, Ordering::Relaxed);
                let inst = ours.instantiate(&module, &|_, _| None);
                let mine = instantiate_outcome(&inst);
                let rest = case.events[i + 1..]
                    .iter()
                    .filter(|e| matches!(e, Event::Call { .. }))
                    .count() as u64;
                match judge_instantiation(&mine, theirs) {
                    Verdict::Same | Verdict::SameOverflow => {
                        tally.instances += 1;
                        match inst {
                            Ok(inst) => {
                                compare_states(
                                    &vessel_state(&ours, inst),
                                    state,
                                    "(instantiation)",
                                )?;
                                current = Some(inst);
                            }
                            Err(_) => {
                                tally.instances_failed += 1;
                                tally.skipped += rest;
                                break;
                            }
                        }
                    }
                    Verdict::Inconclusive => {
                        tally.instances_inconclusive += 1;
                        tally.skipped += rest;
                        break;
                    }
                    Verdict::Diverged => {
                        return Err(Divergence::new(Step::Instantiate, mine, theirs));
                    }
                }
            }
            Event::Call {
                export,
                args,
                outcome: theirs,
                state,
            } => {
                let Some(inst) = current else {
                    tally.skipped += 1;
                    continue;
                };
                let step = || Step::Call(export.clone());
                let Some(Extern::Func(f)) = ours.export(inst, export) else {
                    return Err(Divergence::new(
                        step(),
                        ours.export(inst, export),
                        "a function",
                    ));
                };
                let Some(vals) = arguments(args, &f.ty().params) else {
                    return Err(Divergence::new(step(), f.ty(), args));
                };
                checks.store(0, Ordering::Relaxed);
                let mine = call_outcome(ours.invoke(&f, &vals));
                match judge(&mine, theirs) {
                    Verdict::Same => {
                        tally.compared += 1;
                        compare_states(&vessel_state(&ours, inst), state, export)?;
                    }
                    Verdict::SameOverflow => {
                        tally.compared += 1;
                        current = None;
                    }
                    Verdict::Inconclusive => {
                        tally.inconclusive += 1;
                        current = None;
                    }
                    Verdict::Diverged => return Err(Divergence::new(step(), mine, theirs)),
                }
            }
        }
    }
    if tally.compared + tally.instances_failed > 0 {
        tally.cases_compared = 1;
    }
    Ok(tally)
}

/// What one case of a bundle came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseResult {
    /// No divergence; its counts.
    Agreed {
        /// The case's seed.
        seed: u64,
        /// Its counts.
        tally: Tally,
    },
    /// A divergence.
    Diverged {
        /// The case's seed.
        seed: u64,
        /// The case's memory mode.
        memories: Memories,
        /// What differed.
        divergence: Divergence,
    },
    /// The case's bytes did not decode (its index in the bundle).
    Damaged {
        /// Index in the bundle.
        index: usize,
        /// Why.
        error: FormatError,
    },
}

/// Totals of a bundle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cases without a divergence.
    pub agreed: u64,
    /// Cases with a divergence, or damaged.
    pub diverged: u64,
    /// Of the agreeing cases, those with an inconclusive call or
    /// instantiation (INV-DIFF-1, INV-DIFF-2, INV-DIFF-4).
    pub inconclusive: u64,
    /// The counts of every agreeing case.
    pub tally: Tally,
}

impl Summary {
    /// Whether the bundle compared enough to count (INV-REPLAY-3).
    #[must_use]
    pub fn compared_enough(&self) -> bool {
        let t = &self.tally;
        t.cases > 0
            && t.cases_compared * 10 >= t.cases * 8
            && t.compared * 10 >= (t.compared + t.inconclusive) * 8
    }

    /// Whether the bundle passes: something agreed, nothing diverged, and
    /// enough was compared (INV-REPLAY-3).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.agreed > 0 && self.diverged == 0 && self.compared_enough()
    }
}

/// The line reporting one case that did not agree (`None` for one that
/// did).
#[must_use]
pub fn failure_line(r: &CaseResult) -> Option<String> {
    match r {
        CaseResult::Agreed { .. } => None,
        CaseResult::Diverged {
            seed,
            memories,
            divergence,
        } => Some(format!("diff: seed {seed} ({memories:?}): {divergence}")),
        CaseResult::Damaged { index, error } => {
            Some(format!("diff: case #{index} of the bundle: {error}"))
        }
    }
}

/// Replay every case of `bundle` on `kernel`, calling `each` with every
/// case's result (for progress and failure lines), and total them.
///
/// # Errors
/// [`FormatError`] when the bundle's framing or checksum is damaged (a
/// damaged case is a [`CaseResult::Damaged`] instead, INV-REPLAY-3).
pub fn run_bundle<P: Platform>(
    kernel: &Kernel<'_, P>,
    bundle: &[u8],
    mut each: impl FnMut(&CaseResult),
) -> Result<Summary, FormatError> {
    let mut summary = Summary::default();
    for (index, bytes) in record::cases(bundle)?.into_iter().enumerate() {
        let result = match record::decode_case(bytes) {
            Err(error) => CaseResult::Damaged { index, error },
            Ok(case) => match replay(kernel, &case) {
                Ok(tally) => CaseResult::Agreed {
                    seed: case.seed,
                    tally,
                },
                Err(divergence) => CaseResult::Diverged {
                    seed: case.seed,
                    memories: case.memories,
                    divergence,
                },
            },
        };
        match &result {
            CaseResult::Agreed { tally, .. } => {
                summary.agreed += 1;
                if tally.inconclusive + tally.instances_inconclusive > 0 {
                    summary.inconclusive += 1;
                }
                summary.tally += *tally;
            }
            CaseResult::Diverged { .. } | CaseResult::Damaged { .. } => summary.diverged += 1,
        }
        each(&result);
    }
    Ok(summary)
}
