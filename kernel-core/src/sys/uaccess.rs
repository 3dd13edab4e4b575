//! Checked access to a process's linear memory: the only way system calls
//! read or write guest memory.
//!
//! A guest pointer is a wasm `i32` read as unsigned; every copy checks
//! `[ptr, ptr + len)` against the memory's current length before touching
//! a byte, so a wild pointer or length is an [`AccessError`] each system
//! interface turns into its own error code for the guest, never a kernel
//! fault. A process without a memory has no valid pointer.
//!
//! Invariant INV-UACCESS-1: nothing is copied unless the whole range is
//! inside the memory (no partial copies).

use alloc::vec;
use alloc::vec::Vec;

use crate::wasm::vm::MemoryView;

/// Why a guest range could not be accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccessError {
    /// Outside the memory (or no memory).
    Fault,
    /// Longer than the call takes.
    TooLong,
}

/// A guest address or length: the `i32` bits as unsigned.
pub(crate) fn unsigned(x: i32) -> u64 {
    u64::from(x.cast_unsigned())
}

/// Copy `len` bytes in from guest address `ptr`, refusing more than `max`.
///
/// # Errors
/// [`AccessError::TooLong`] above `max`; [`AccessError::Fault`] outside
/// the memory.
pub(crate) fn copy_in(
    mem: Option<&MemoryView>,
    ptr: i32,
    len: i32,
    max: usize,
) -> Result<Vec<u8>, AccessError> {
    let n = usize::try_from(unsigned(len)).map_err(|_| AccessError::TooLong)?;
    if n > max {
        return Err(AccessError::TooLong);
    }
    let mem = mem.ok_or(AccessError::Fault)?;
    let mut buf = vec![0; n];
    if mem.read(unsigned(ptr), &mut buf) {
        Ok(buf)
    } else {
        Err(AccessError::Fault)
    }
}

/// Copy `data` out to guest address `ptr`.
///
/// # Errors
/// [`AccessError::Fault`] when it does not fit inside the memory.
pub(crate) fn copy_out(mem: Option<&MemoryView>, ptr: i32, data: &[u8]) -> Result<(), AccessError> {
    let mem = mem.ok_or(AccessError::Fault)?;
    if mem.write(unsigned(ptr), data) {
        Ok(())
    } else {
        Err(AccessError::Fault)
    }
}

/// Check that `[ptr, ptr + len)` lies inside the memory, copying nothing.
///
/// # Errors
/// [`AccessError::Fault`] when it does not.
pub(crate) fn check(mem: Option<&MemoryView>, ptr: i32, len: usize) -> Result<(), AccessError> {
    let mem = mem.ok_or(AccessError::Fault)?;
    let end = unsigned(ptr)
        .checked_add(len as u64)
        .ok_or(AccessError::Fault)?;
    if end <= mem.size() {
        Ok(())
    } else {
        Err(AccessError::Fault)
    }
}
