//! Kernel builtins: functions JIT code calls for work it cannot inline.
//!
//! JIT code reaches builtins through a table of function pointers whose
//! address is stored in the `VMContext` at
//! [`VMOffsets::builtins`](super::vmoffsets::VMOffsets::builtins). Entry
//! [`Builtin::index`] of that table holds the builtin's address; it is called
//! with the ISA's default calling convention and the signature
//! [`Builtin::signature`] gives (the first argument is always the caller's
//! `vmctx`; `ref` is a pointer-sized reference word). Going through the
//! table means compiled code carries no relocations to builtins.
//!
//! Traps: a builtin never unwinds, but for [`Builtin::Throw`], which
//! unwinds wasm frames to an exception handler (`exn`). One that can fail returns a status
//! (`0` = done, anything else = trap) and the compiled code traps with
//! [`Builtin::trap`]'s kind at an ordinary trap site right after the call,
//! so the fault path handles it like any other wasm trap.
//!
//! Invariants:
//! - INV-1: the runtime fills every entry of the table before running code;
//!   the table lives as long as any instance using it.
//! - INV-2: a builtin may change a memory's length (`memory.grow`) or a
//!   table's base and count (`table.grow`), never a memory's base (see the
//!   VMContext INV-1); JIT code reloads what a call may change.
//! - INV-3: a builtin that returns a non-zero status has changed nothing
//!   (bounds are checked before anything is written, as 2.0 requires).

/// A parameter or result type of a builtin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// `u32` / wasm `i32`.
    I32,
    /// `u64` / wasm `i64`: a memory address, length or page count (a
    /// 32-bit memory's are zero-extended).
    I64,
    /// A reference word (pointer-sized).
    Ref,
}

/// What a failing builtin traps with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinTrap {
    /// Out of bounds memory access.
    Memory,
    /// Out of bounds table access.
    Table,
    /// The process was interrupted (killed) at a preemption check.
    Interrupt,
}

/// A builtin function, by slot in the builtin table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Builtin {
    /// `fn(vmctx, delta_pages: u64, memory_index: u32) -> u64`: grow memory,
    /// return the old size in pages or `u64::MAX` (-1) on failure.
    MemoryGrow = 0,
    /// `fn(vmctx, dst_mem, dst: u64, src_mem, src: u64, len: u64) -> status`.
    MemoryCopy = 1,
    /// `fn(vmctx, mem, dst: u64, byte, len: u64) -> status`.
    MemoryFill = 2,
    /// `fn(vmctx, mem, data_index, dst: u64, src, len) -> status`.
    MemoryInit = 3,
    /// `fn(vmctx, data_index)`: drop a data segment.
    DataDrop = 4,
    /// `fn(vmctx, table, init: ref, delta) -> u32`: grow a table, return
    /// the old size or `u32::MAX` (-1) on failure.
    TableGrow = 5,
    /// `fn(vmctx, table, dst, value: ref, len) -> status`.
    TableFill = 6,
    /// `fn(vmctx, dst_table, src_table, dst, src, len) -> status`.
    TableCopy = 7,
    /// `fn(vmctx, table, elem_index, dst, src, len) -> status`.
    TableInit = 8,
    /// `fn(vmctx, elem_index)`: drop an element segment.
    ElemDrop = 9,
    /// `fn(vmctx) -> status`: the preemption check found the epoch at or
    /// past the store's deadline (see [`super::interrupt`]); the store's
    /// hook may suspend the caller, and a non-zero status interrupts it.
    Epoch = 10,
    /// `fn(vmctx)` in Cranelift's `PreserveAll` convention (the call
    /// clobbers no register): what `Epoch` does, with its status left in
    /// the interrupt cell's status word
    /// ([`STATUS_OFFSET`](super::interrupt::STATUS_OFFSET)) for the caller
    /// to test. x86_64 code calls it instead of `Epoch`, through an
    /// assembly stub that saves every register the Rust builtin may
    /// clobber, so the check's cold call makes no value live across it
    /// spill in the hot loop (translate INV-10).
    EpochSaving = 11,
    /// `fn(vmctx, tag: ref, count: u32) -> ref`: a new exception of the
    /// tag whose identity word is `tag` (the caller reads it from its
    /// context) with `count` zeroed value slots (the caller fills them),
    /// held from the store's memory owner; 0 when the owner cannot hold
    /// it (the caller traps, out of memory).
    ExnNew = 12,
    /// `fn(vmctx, exn: ref, fp: ref)`: throw `exn` out of the wasm frame
    /// whose frame pointer is `fp`, to the nearest caller frame with a
    /// handler, or out of the wasm call (an uncaught exception). Never
    /// returns (`exn` unwinds).
    Throw = 13,
    /// `fn(vmctx, exn: ref)`: a handler without the exception caught
    /// `exn`; free it unless wasm ever held it as an `exnref` (`exn`).
    ExnDrop = 14,
    /// `fn(vmctx, mem, addr: ref, expected: u64, timeout_ns: i64, wide)
    /// -> u32`: `memory.atomic.wait32/64` on the aligned, in-bounds cell
    /// at host address `addr` of memory `mem` (`wide`: 64 bits): a
    /// `translate::atomics::wait_status`.
    AtomicWait = 15,
    /// `fn(vmctx, mem, addr: ref, count) -> u32`:
    /// `memory.atomic.notify`, the number of waiters woken.
    AtomicNotify = 16,
}

impl Builtin {
    /// Number of builtins (length of the table).
    pub const COUNT: u32 = 17;

    /// Every builtin, in slot order.
    pub const ALL: [Builtin; Self::COUNT as usize] = [
        Builtin::MemoryGrow,
        Builtin::MemoryCopy,
        Builtin::MemoryFill,
        Builtin::MemoryInit,
        Builtin::DataDrop,
        Builtin::TableGrow,
        Builtin::TableFill,
        Builtin::TableCopy,
        Builtin::TableInit,
        Builtin::ElemDrop,
        Builtin::Epoch,
        Builtin::EpochSaving,
        Builtin::ExnNew,
        Builtin::Throw,
        Builtin::ExnDrop,
        Builtin::AtomicWait,
        Builtin::AtomicNotify,
    ];

    /// Slot of this builtin in the table.
    #[must_use]
    pub fn index(self) -> u32 {
        self as u32
    }

    /// Parameters after `vmctx`, and the result.
    #[must_use]
    pub fn signature(self) -> (&'static [Arg], Option<Arg>) {
        use Arg::{I32, I64, Ref};
        match self {
            Builtin::MemoryGrow => (&[I64, I32], Some(I64)),
            Builtin::MemoryCopy => (&[I32, I64, I32, I64, I64], Some(I32)),
            Builtin::MemoryInit => (&[I32, I32, I64, I32, I32], Some(I32)),
            Builtin::TableCopy | Builtin::TableInit => (&[I32; 5], Some(I32)),
            Builtin::MemoryFill => (&[I32, I64, I32, I64], Some(I32)),
            Builtin::DataDrop | Builtin::ElemDrop => (&[I32], None),
            Builtin::TableGrow => (&[I32, Ref, I32], Some(I32)),
            Builtin::TableFill => (&[I32, I32, Ref, I32], Some(I32)),
            Builtin::Epoch => (&[], Some(I32)),
            Builtin::EpochSaving => (&[], None),
            Builtin::ExnNew => (&[Ref, I32], Some(Ref)),
            Builtin::Throw => (&[Ref, Ref], None),
            Builtin::ExnDrop => (&[Ref], None),
            Builtin::AtomicWait => (&[I32, Ref, I64, I64, I32], Some(I32)),
            Builtin::AtomicNotify => (&[I32, Ref, I32], Some(I32)),
        }
    }

    /// For a builtin returning a status: what a non-zero status traps with.
    #[must_use]
    pub fn trap(self) -> Option<BuiltinTrap> {
        match self {
            Builtin::MemoryCopy | Builtin::MemoryFill | Builtin::MemoryInit => {
                Some(BuiltinTrap::Memory)
            }
            Builtin::TableFill | Builtin::TableCopy | Builtin::TableInit => {
                Some(BuiltinTrap::Table)
            }
            Builtin::Epoch => Some(BuiltinTrap::Interrupt),
            Builtin::MemoryGrow
            | Builtin::TableGrow
            | Builtin::DataDrop
            | Builtin::ElemDrop
            | Builtin::EpochSaving
            | Builtin::ExnNew
            | Builtin::Throw
            | Builtin::ExnDrop
            | Builtin::AtomicWait
            | Builtin::AtomicNotify => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_dense() {
        for (i, b) in Builtin::ALL.iter().enumerate() {
            assert_eq!(b.index() as usize, i);
        }
    }
}
