//! How much of the HAL heap gdb's JIT interface may hold (pure; unit-tested
//! on the host). The interface itself (the descriptor, the list, the
//! object files) is `kernel_core::gdb_jit`, shared with the hosted HAL;
//! `platform` turns it on with `debug=jit`.
//!
//! The heap is small (`layout::HEAP_MAX`) and Cranelift compiles in it, so
//! debug objects get a fixed share: when the live ones would pass it, the
//! next object is skipped (and counted) rather than starving a compile.
//!
//! INV-JIT-R-1: the budget is at most an eighth of the heap, so debug
//! objects never hold more than that however many modules are loaded.

/// The share of the heap, as a divisor.
const HEAP_SHARE: u64 = 8;

/// Bytes the live debug objects may take in a heap of `heap_bytes`
/// (INV-JIT-R-1).
pub fn budget(heap_bytes: u64) -> usize {
    usize::try_from(heap_bytes / HEAP_SHARE).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{HEAP_MAX, HEAP_MIN};

    #[test]
    fn an_eighth_of_the_heap() {
        assert_eq!(budget(HEAP_MAX), 8 << 20);
        assert_eq!(budget(HEAP_MIN), 512 << 10);
        assert_eq!(budget(0), 0);
    }
}
