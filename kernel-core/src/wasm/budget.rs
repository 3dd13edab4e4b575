//! What compiling a function costs in kernel memory, and the limits on it.
//!
//! Cranelift's memory use grows with the IR it is given, and a small wasm
//! body can expand into a large IR: 100,000 empty loops are 300 KB of wasm
//! and 1.2 million instructions; 2,000 locals read after 2,000 loops are
//! 8 million SSA block parameters. So the kernel bounds compilation by the
//! IR, not by the bytes:
//!
//! - While a body is translated, the IR built so far is estimated after
//!   every operator (three counters) and a [`Meter`] holds that much from
//!   the module's [`Budget`] (a process's: charged to its memory limit and
//!   promised from the machine's free frames, as committed pages are,
//!   `mem` INV-MEM-2), in 64 KiB steps. Before Cranelift compiles the
//!   function the meter is raised to the finished IR's full estimate, and
//!   it gives everything back when the function is compiled.
//! - An estimate past [`MAX_FUNCTION_ESTIMATE`] ends compilation with
//!   [`CompileError::TooLarge`], a budget that cannot hold it with
//!   [`CompileError::OverBudget`], both naming the function; so neither
//!   translation nor code generation holds much more than its budget.
//!
//! The estimate ([`estimate`]) is a linear model of peak memory, fitted
//! from measured peaks of straight-line code, sequential and nested
//! `block`/`loop`/`if`, call chains and SSA-parameter explosions, and
//! rounded up so it is an upper bound on each of them.
//!
//! Invariants:
//! - INV-BUDGET-1: no function reaches Cranelift's code generator with an
//!   estimate above [`MAX_FUNCTION_ESTIMATE`], nor without its estimate
//!   held from the budget for the whole of its compilation.

use cranelift_codegen::ir::Function;

use super::module::CompileError;

/// Largest estimated compilation footprint of one function: 256 MiB
/// (about 500,000 straight-line operators, or 24,000 loops).
pub const MAX_FUNCTION_ESTIMATE: u64 = 256 << 20;

/// Bytes per SSA value (block parameters, instruction results).
const PER_VALUE: u64 = 64;
/// Bytes per instruction (IR, lowered code, register allocation).
const PER_INST: u64 = 448;
/// Bytes per basic block (loop headers cost most: live-in sets).
const PER_BLOCK: u64 = 1280;
/// Extra bytes per call (clobbers and argument moves in allocation).
const PER_CALL: u64 = 1280;
/// Bytes of fixed cost per function (contexts, tables, emission buffers).
const BASE: u64 = 256 << 10;

/// The estimated compilation footprint of IR with these counts.
#[must_use]
pub const fn estimate_counts(values: u64, insts: u64, blocks: u64, calls: u64) -> u64 {
    BASE.saturating_add(values.saturating_mul(PER_VALUE))
        .saturating_add(insts.saturating_mul(PER_INST))
        .saturating_add(blocks.saturating_mul(PER_BLOCK))
        .saturating_add(calls.saturating_mul(PER_CALL))
}

/// The estimated compilation footprint of `func` (see the module docs).
#[must_use]
pub fn estimate(func: &Function) -> u64 {
    let dfg = &func.dfg;
    let calls = func
        .layout
        .blocks()
        .flat_map(|b| func.layout.block_insts(b))
        .filter(|&i| dfg.insts[i].opcode().is_call())
        .count();
    estimate_counts(
        dfg.num_values() as u64,
        dfg.num_insts() as u64,
        dfg.num_blocks() as u64,
        calls as u64,
    )
}

/// Bytes a [`Meter`] holds at a time: its holdings grow in these steps.
pub(crate) const STEP: u64 = 64 << 10;

/// One function's compilation memory, held from a [`Budget`] as its IR
/// grows and given back when the meter drops.
pub struct Meter<'b> {
    budget: &'b mut dyn Budget,
    func_index: u32,
    held: u64,
}

impl<'b> Meter<'b> {
    /// A meter for function `func_index` holding nothing yet.
    pub fn new(budget: &'b mut dyn Budget, func_index: u32) -> Self {
        Self {
            budget,
            func_index,
            held: 0,
        }
    }

    /// Hold at least `estimate` bytes (in [`STEP`]s).
    ///
    /// # Errors
    /// [`CompileError::TooLarge`] past [`MAX_FUNCTION_ESTIMATE`];
    /// [`CompileError::OverBudget`] when the budget cannot hold more.
    pub fn reach(&mut self, estimate: u64) -> Result<(), CompileError> {
        check(estimate, self.func_index)?;
        if estimate <= self.held {
            return Ok(());
        }
        let more = (estimate - self.held).next_multiple_of(STEP);
        if !self.budget.hold(more) {
            return Err(CompileError::OverBudget {
                func_index: self.func_index,
                estimate,
            });
        }
        self.held += more;
        Ok(())
    }

    /// The IR built so far (calls not counted yet: the cheap check made
    /// after every operator during translation).
    ///
    /// # Errors
    /// As [`Meter::reach`], and [`CompileError::Interrupted`] when the
    /// budget says compilation may not go on.
    pub fn reach_partial(&mut self, func: &Function) -> Result<(), CompileError> {
        if !self.budget.proceed() {
            return Err(CompileError::Interrupted);
        }
        let dfg = &func.dfg;
        self.reach(estimate_counts(
            dfg.num_values() as u64,
            dfg.num_insts() as u64,
            dfg.num_blocks() as u64,
            0,
        ))
    }
}

impl Drop for Meter<'_> {
    fn drop(&mut self) {
        self.budget.release(self.held);
    }
}

/// `bytes` against [`MAX_FUNCTION_ESTIMATE`] for function `func_index`.
///
/// # Errors
/// [`CompileError::TooLarge`] past the limit.
pub fn check(bytes: u64, func_index: u32) -> Result<(), CompileError> {
    if bytes > MAX_FUNCTION_ESTIMATE {
        return Err(CompileError::TooLarge {
            func_index,
            estimate: bytes,
        });
    }
    Ok(())
}

/// Who pays for the memory compilation uses.
pub trait Budget {
    /// Hold `bytes` more; `false` (nothing held) when the payer cannot.
    fn hold(&mut self, bytes: u64) -> bool;
    /// Give back `bytes` held before.
    fn release(&mut self, bytes: u64);
    /// Whether compilation may go on: asked before each function body is
    /// validated or translated and after each operator is translated. A
    /// process's budget runs its preemption check here (it may give up
    /// the CPU for a while) and says no once the process is killed.
    fn proceed(&mut self) -> bool {
        true
    }
}

/// A budget that always holds: for compiling outside any process (tests,
/// benchmarks, the spec runner). [`MAX_FUNCTION_ESTIMATE`] still applies.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unmetered;

impl Budget for Unmetered {
    fn hold(&mut self, _bytes: u64) -> bool {
        true
    }

    fn release(&mut self, _bytes: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_is_monotonic_and_saturates() {
        let small = estimate_counts(10, 10, 2, 0);
        assert!(small >= BASE);
        assert!(estimate_counts(11, 10, 2, 0) > small);
        assert!(estimate_counts(10, 11, 2, 0) > small);
        assert!(estimate_counts(10, 10, 3, 0) > small);
        assert!(estimate_counts(10, 10, 2, 1) > small);
        assert_eq!(
            estimate_counts(u64::MAX, u64::MAX, u64::MAX, u64::MAX),
            u64::MAX
        );
    }

    /// Holds up to `left` bytes.
    struct Pool {
        left: u64,
    }

    impl Budget for Pool {
        fn hold(&mut self, bytes: u64) -> bool {
            let ok = bytes <= self.left;
            if ok {
                self.left -= bytes;
            }
            ok
        }

        fn release(&mut self, bytes: u64) {
            self.left += bytes;
        }
    }

    #[test]
    fn a_meter_holds_in_steps_and_gives_everything_back() {
        let mut pool = Pool { left: 4 * STEP };
        {
            let mut m = Meter::new(&mut pool, 7);
            assert_eq!(m.reach(10), Ok(()));
            assert_eq!(m.held, STEP);
            assert_eq!(m.reach(STEP), Ok(()));
            assert_eq!(m.held, STEP);
            assert_eq!(m.reach(3 * STEP + 1), Ok(()));
            assert_eq!(m.held, 4 * STEP);
            assert_eq!(
                m.reach(4 * STEP + 1),
                Err(CompileError::OverBudget {
                    func_index: 7,
                    estimate: 4 * STEP + 1
                })
            );
            assert_eq!(m.held, 4 * STEP);
        }
        assert_eq!(pool.left, 4 * STEP);
    }

    #[test]
    fn the_limit_names_the_function() {
        assert_eq!(check(MAX_FUNCTION_ESTIMATE, 3), Ok(()));
        assert_eq!(
            check(MAX_FUNCTION_ESTIMATE + 1, 3),
            Err(CompileError::TooLarge {
                func_index: 3,
                estimate: MAX_FUNCTION_ESTIMATE + 1
            })
        );
    }
}
