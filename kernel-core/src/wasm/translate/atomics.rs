//! The threads proposal's memory operators: atomic loads, stores,
//! read-modify-writes and compare-exchanges of every width, `atomic.fence`,
//! and `memory.atomic.wait32/64` and `memory.atomic.notify`.
//!
//! Invariants:
//! - INV-ATOMIC-1: every atomic access computes its effective address
//!   with the memory's usual bounds check (INV-3 / INV-3a), then traps with
//!   `unaligned atomic` unless it is a multiple of the access size (the
//!   memory's base is page aligned, so the host address's alignment is the
//!   wasm address's), and only then accesses memory, with Cranelift's
//!   sequentially consistent atomic instructions.
//! - INV-ATOMIC-2: a narrow access (8, 16 or 32 bits of an `i32` / `i64`)
//!   reads and writes only its own bytes; its result is zero-extended.
//! - INV-ATOMIC-3: `wait` and `notify` load the cell in JIT code first (a
//!   bounds check that faults like any access; an atomic load is never
//!   removed as unused) and hand the builtin the host address of an
//!   in-bounds, aligned cell (`futex`).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8, I16, I32, I64};
use cranelift_codegen::ir::{AtomicRmwOp, InstBuilder, Type, Value};
use wasmparser::{MemArg, Operator};

use super::{
    Builtin, CompileError, TRAP_INTERRUPTED, TRAP_UNALIGNED_ATOMIC, TRAP_UNSHARED_WAIT, Translator,
    heap_flags,
};

/// What a wait builtin's status means (`futex`).
pub mod wait_status {
    /// The cell was woken by a `notify` ("ok").
    pub const OK: u32 = 0;
    /// The cell did not hold the expected value ("not-equal").
    pub const NOT_EQUAL: u32 = 1;
    /// The timeout passed ("timed-out").
    pub const TIMED_OUT: u32 = 2;
    /// The memory is not shared: the caller traps.
    pub const UNSHARED: u32 = 3;
    /// The process was killed while it waited: the caller traps,
    /// interrupted.
    pub const INTERRUPTED: u32 = 4;
}

/// The integer type of an access of `size` bytes.
fn access_type(size: u64) -> Type {
    match size {
        1 => I8,
        2 => I16,
        4 => I32,
        _ => I64,
    }
}

impl Translator<'_, '_> {
    /// Translate `op` if it is an atomic memory operator; `false` if not.
    pub(super) fn atomic_op(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        use AtomicRmwOp::{Add, And, Or, Sub, Xchg, Xor};
        use Operator as O;
        match *op {
            O::AtomicFence { .. } => {
                self.b.ins().fence();
            }
            O::I32AtomicLoad { memarg } => self.atomic_load(memarg, I32, 4)?,
            O::I64AtomicLoad { memarg } => self.atomic_load(memarg, I64, 8)?,
            O::I32AtomicLoad8U { memarg } => self.atomic_load(memarg, I32, 1)?,
            O::I32AtomicLoad16U { memarg } => self.atomic_load(memarg, I32, 2)?,
            O::I64AtomicLoad8U { memarg } => self.atomic_load(memarg, I64, 1)?,
            O::I64AtomicLoad16U { memarg } => self.atomic_load(memarg, I64, 2)?,
            O::I64AtomicLoad32U { memarg } => self.atomic_load(memarg, I64, 4)?,
            O::I32AtomicStore { memarg } | O::I64AtomicStore32 { memarg } => {
                self.atomic_store(memarg, 4)?;
            }
            O::I64AtomicStore { memarg } => self.atomic_store(memarg, 8)?,
            O::I32AtomicStore8 { memarg } | O::I64AtomicStore8 { memarg } => {
                self.atomic_store(memarg, 1)?;
            }
            O::I32AtomicStore16 { memarg } | O::I64AtomicStore16 { memarg } => {
                self.atomic_store(memarg, 2)?;
            }
            O::I32AtomicRmwAdd { memarg } => self.atomic_rmw(memarg, I32, 4, Add)?,
            O::I64AtomicRmwAdd { memarg } => self.atomic_rmw(memarg, I64, 8, Add)?,
            O::I32AtomicRmw8AddU { memarg } => self.atomic_rmw(memarg, I32, 1, Add)?,
            O::I32AtomicRmw16AddU { memarg } => self.atomic_rmw(memarg, I32, 2, Add)?,
            O::I64AtomicRmw8AddU { memarg } => self.atomic_rmw(memarg, I64, 1, Add)?,
            O::I64AtomicRmw16AddU { memarg } => self.atomic_rmw(memarg, I64, 2, Add)?,
            O::I64AtomicRmw32AddU { memarg } => self.atomic_rmw(memarg, I64, 4, Add)?,
            O::I32AtomicRmwSub { memarg } => self.atomic_rmw(memarg, I32, 4, Sub)?,
            O::I64AtomicRmwSub { memarg } => self.atomic_rmw(memarg, I64, 8, Sub)?,
            O::I32AtomicRmw8SubU { memarg } => self.atomic_rmw(memarg, I32, 1, Sub)?,
            O::I32AtomicRmw16SubU { memarg } => self.atomic_rmw(memarg, I32, 2, Sub)?,
            O::I64AtomicRmw8SubU { memarg } => self.atomic_rmw(memarg, I64, 1, Sub)?,
            O::I64AtomicRmw16SubU { memarg } => self.atomic_rmw(memarg, I64, 2, Sub)?,
            O::I64AtomicRmw32SubU { memarg } => self.atomic_rmw(memarg, I64, 4, Sub)?,
            O::I32AtomicRmwAnd { memarg } => self.atomic_rmw(memarg, I32, 4, And)?,
            O::I64AtomicRmwAnd { memarg } => self.atomic_rmw(memarg, I64, 8, And)?,
            O::I32AtomicRmw8AndU { memarg } => self.atomic_rmw(memarg, I32, 1, And)?,
            O::I32AtomicRmw16AndU { memarg } => self.atomic_rmw(memarg, I32, 2, And)?,
            O::I64AtomicRmw8AndU { memarg } => self.atomic_rmw(memarg, I64, 1, And)?,
            O::I64AtomicRmw16AndU { memarg } => self.atomic_rmw(memarg, I64, 2, And)?,
            O::I64AtomicRmw32AndU { memarg } => self.atomic_rmw(memarg, I64, 4, And)?,
            O::I32AtomicRmwOr { memarg } => self.atomic_rmw(memarg, I32, 4, Or)?,
            O::I64AtomicRmwOr { memarg } => self.atomic_rmw(memarg, I64, 8, Or)?,
            O::I32AtomicRmw8OrU { memarg } => self.atomic_rmw(memarg, I32, 1, Or)?,
            O::I32AtomicRmw16OrU { memarg } => self.atomic_rmw(memarg, I32, 2, Or)?,
            O::I64AtomicRmw8OrU { memarg } => self.atomic_rmw(memarg, I64, 1, Or)?,
            O::I64AtomicRmw16OrU { memarg } => self.atomic_rmw(memarg, I64, 2, Or)?,
            O::I64AtomicRmw32OrU { memarg } => self.atomic_rmw(memarg, I64, 4, Or)?,
            O::I32AtomicRmwXor { memarg } => self.atomic_rmw(memarg, I32, 4, Xor)?,
            O::I64AtomicRmwXor { memarg } => self.atomic_rmw(memarg, I64, 8, Xor)?,
            O::I32AtomicRmw8XorU { memarg } => self.atomic_rmw(memarg, I32, 1, Xor)?,
            O::I32AtomicRmw16XorU { memarg } => self.atomic_rmw(memarg, I32, 2, Xor)?,
            O::I64AtomicRmw8XorU { memarg } => self.atomic_rmw(memarg, I64, 1, Xor)?,
            O::I64AtomicRmw16XorU { memarg } => self.atomic_rmw(memarg, I64, 2, Xor)?,
            O::I64AtomicRmw32XorU { memarg } => self.atomic_rmw(memarg, I64, 4, Xor)?,
            O::I32AtomicRmwXchg { memarg } => self.atomic_rmw(memarg, I32, 4, Xchg)?,
            O::I64AtomicRmwXchg { memarg } => self.atomic_rmw(memarg, I64, 8, Xchg)?,
            O::I32AtomicRmw8XchgU { memarg } => self.atomic_rmw(memarg, I32, 1, Xchg)?,
            O::I32AtomicRmw16XchgU { memarg } => self.atomic_rmw(memarg, I32, 2, Xchg)?,
            O::I64AtomicRmw8XchgU { memarg } => self.atomic_rmw(memarg, I64, 1, Xchg)?,
            O::I64AtomicRmw16XchgU { memarg } => self.atomic_rmw(memarg, I64, 2, Xchg)?,
            O::I64AtomicRmw32XchgU { memarg } => self.atomic_rmw(memarg, I64, 4, Xchg)?,
            O::I32AtomicRmwCmpxchg { memarg } => self.atomic_cmpxchg(memarg, I32, 4)?,
            O::I64AtomicRmwCmpxchg { memarg } => self.atomic_cmpxchg(memarg, I64, 8)?,
            O::I32AtomicRmw8CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I32, 1)?,
            O::I32AtomicRmw16CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I32, 2)?,
            O::I64AtomicRmw8CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I64, 1)?,
            O::I64AtomicRmw16CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I64, 2)?,
            O::I64AtomicRmw32CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I64, 4)?,
            O::MemoryAtomicWait32 { memarg } => self.atomic_wait(memarg, 4)?,
            O::MemoryAtomicWait64 { memarg } => self.atomic_wait(memarg, 8)?,
            O::MemoryAtomicNotify { memarg } => self.atomic_notify(memarg)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The host address of an atomic access of `size` bytes at the popped
    /// address: bounds checked, then alignment checked (INV-ATOMIC-1).
    fn atomic_addr(&mut self, memarg: MemArg, size: u64) -> Result<Value, CompileError> {
        let (a, imm) = self.addr(memarg, size)?;
        let p = if imm == 0 {
            a
        } else {
            self.b.ins().iadd_imm_s(a, i64::from(imm))
        };
        if size > 1 {
            let low = self.b.ins().band_imm_u(p, size.cast_signed() - 1);
            self.b.ins().trapnz(low, TRAP_UNALIGNED_ATOMIC);
        }
        Ok(p)
    }

    /// `x` narrowed to the access type of `size` bytes.
    fn narrow(&mut self, x: Value, size: u64) -> Value {
        let t = access_type(size);
        if self.b.func.dfg.value_type(x) == t {
            x
        } else {
            self.b.ins().ireduce(t, x)
        }
    }

    /// `r` zero-extended to `ty` (INV-ATOMIC-2).
    fn widen_to(&mut self, r: Value, ty: Type) -> Value {
        if self.b.func.dfg.value_type(r) == ty {
            r
        } else {
            self.b.ins().uextend(ty, r)
        }
    }

    fn atomic_load(&mut self, memarg: MemArg, ty: Type, size: u64) -> Result<(), CompileError> {
        let p = self.atomic_addr(memarg, size)?;
        let r = self.b.ins().atomic_load(access_type(size), heap_flags(), p);
        let r = self.widen_to(r, ty);
        self.stack.push(r);
        Ok(())
    }

    fn atomic_store(&mut self, memarg: MemArg, size: u64) -> Result<(), CompileError> {
        let x = self.pop()?;
        let p = self.atomic_addr(memarg, size)?;
        let x = self.narrow(x, size);
        self.b.ins().atomic_store(heap_flags(), x, p);
        Ok(())
    }

    fn atomic_rmw(
        &mut self,
        memarg: MemArg,
        ty: Type,
        size: u64,
        op: AtomicRmwOp,
    ) -> Result<(), CompileError> {
        let x = self.pop()?;
        let p = self.atomic_addr(memarg, size)?;
        let x = self.narrow(x, size);
        let r = self
            .b
            .ins()
            .atomic_rmw(access_type(size), heap_flags(), op, p, x);
        let r = self.widen_to(r, ty);
        self.stack.push(r);
        Ok(())
    }

    fn atomic_cmpxchg(&mut self, memarg: MemArg, ty: Type, size: u64) -> Result<(), CompileError> {
        let replacement = self.pop()?;
        let expected = self.pop()?;
        let p = self.atomic_addr(memarg, size)?;
        let expected = self.narrow(expected, size);
        let replacement = self.narrow(replacement, size);
        let r = self
            .b
            .ins()
            .atomic_cas(heap_flags(), p, expected, replacement);
        let r = self.widen_to(r, ty);
        self.stack.push(r);
        Ok(())
    }

    /// The memory index of an access, for the builtins.
    fn memory_index(&self, memarg: MemArg) -> Result<u32, CompileError> {
        match memarg.target {
            wasmparser::MemArgTarget::Memory(m) => Ok(m),
            _ => Err(CompileError::Unsupported {
                what: "array memory access",
                offset: self.offset,
            }),
        }
    }

    /// `memory.atomic.wait32/64` (INV-ATOMIC-3).
    fn atomic_wait(&mut self, memarg: MemArg, size: u64) -> Result<(), CompileError> {
        let timeout = self.pop()?;
        let expected = self.pop()?;
        let mem = self.memory_index(memarg)?;
        let p = self.atomic_addr(memarg, size)?;
        // The bounds check by access; the builtin reads the cell again
        // under its lock.
        self.b.ins().atomic_load(access_type(size), heap_flags(), p);
        let expected = self.widen_to(expected, I64);
        let mem_v = self.b.ins().iconst(I32, i64::from(mem));
        let wide = self.b.ins().iconst(I32, i64::from(size == 8));
        let r = self.builtin(Builtin::AtomicWait, &[mem_v, p, expected, timeout, wide])?;
        let unshared = self
            .b
            .ins()
            .icmp_imm_u(IntCC::Equal, r, i64::from(wait_status::UNSHARED));
        self.b.ins().trapnz(unshared, TRAP_UNSHARED_WAIT);
        let killed = self
            .b
            .ins()
            .icmp_imm_u(IntCC::Equal, r, i64::from(wait_status::INTERRUPTED));
        self.b.ins().trapnz(killed, TRAP_INTERRUPTED);
        self.stack.push(r);
        Ok(())
    }

    /// `memory.atomic.notify` (INV-ATOMIC-3).
    fn atomic_notify(&mut self, memarg: MemArg) -> Result<(), CompileError> {
        let count = self.pop()?;
        let mem = self.memory_index(memarg)?;
        let p = self.atomic_addr(memarg, 4)?;
        // The bounds check by access, as for `wait`.
        self.b.ins().atomic_load(I32, heap_flags(), p);
        let mem_v = self.b.ins().iconst(I32, i64::from(mem));
        let woken = self.builtin(Builtin::AtomicNotify, &[mem_v, p, count])?;
        self.stack.push(woken);
        Ok(())
    }
}
