//! Kernel builtins: functions JIT code calls for work it cannot inline.
//!
//! JIT code reaches builtins through a table of function pointers whose
//! address is stored in the `VMContext` at
//! [`VMOffsets::builtins`](super::vmoffsets::VMOffsets::builtins). Entry
//! [`Builtin::index`] of that table holds the builtin's address; it is called
//! with the ISA's default calling convention and the signature documented on
//! each variant (the first argument is always the caller's `vmctx`). Going
//! through the table means compiled code carries no relocations to builtins.
//!
//! Invariants:
//! - INV-1: the runtime fills every entry of the table before running code;
//!   the table lives as long as any instance using it.
//! - INV-2: a builtin may change the memory length (`memory.grow`), never the
//!   memory base (see the VMContext INV-1).

/// A builtin function, by slot in the builtin table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Builtin {
    /// `fn(vmctx, delta_pages: u32, memory_index: u32) -> u32`: grow memory,
    /// return the old size in pages or `u32::MAX` (-1) on failure.
    MemoryGrow = 0,
}

impl Builtin {
    /// Number of builtins (length of the table).
    pub const COUNT: u32 = 1;

    /// Slot of this builtin in the table.
    #[must_use]
    pub fn index(self) -> u32 {
        self as u32
    }
}
