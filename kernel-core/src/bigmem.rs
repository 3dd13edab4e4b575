//! The big-memory check (`test=bigmem`): one linear memory grown to
//! [`PAGES`] wasm pages (1 GiB) with every 4 KiB page written and read
//! back by wasm code, in a store with guard-page bounds (a 4 GiB + guard
//! reservation and no explicit bounds checks, the scheme every process
//! uses). It needs more RAM than the 1 GiB it touches, so it is a
//! workload of its own rather than a self-test; QEMU runs it with `-m 2G`.
//!
//! INV-BIGMEM-1: the check passes only when the memory is not bounded
//! (its reservation is at least 4 GiB), `memory.grow` reached [`PAGES`],
//! and the wasm code's sum of what it read equals the sum, computed here,
//! of what it wrote.

use crate::boot::say;
use crate::exit;
use crate::hal::Platform;
use crate::kernel::Kernel;
use crate::wasm::vm::{Extern, Store};

/// Wasm pages the memory grows to: 1 GiB.
pub const PAGES: u32 = 16384;

/// The module (`modules/bigmem.wat`).
const MODULE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bigmem.wasm"));

/// What the module writes at byte `at` (its `$word`).
fn word(at: u32) -> u64 {
    (u64::from(at).wrapping_mul(0x3c6e_f372_fe94_f82b)) ^ 0x5bd1_e995
}

/// The sum the module returns after touching `pages` wasm pages.
fn expected_sum(pages: u32) -> u64 {
    let end = u64::from(pages) << 16;
    (0..end)
        .step_by(4096)
        .fold(0u64, |sum, at| sum.wrapping_add(word(at as u32)))
}

/// Run the check with `stack_budget` bytes of wasm stack; print what it
/// found and return [`exit::SUCCESS`] when it passes (INV-BIGMEM-1).
pub fn run<P: Platform>(kernel: &Kernel<'_, P>, stack_budget: usize) -> u8 {
    let hal = kernel.hal();
    match check(kernel, stack_budget) {
        Ok(reserved) => {
            say(
                hal,
                format_args!(
                    "bigmem: {} MiB in {} 4 KiB pages written and read back, guard-page bounds ({} GiB reserved)",
                    (u64::from(PAGES) << 16) >> 20,
                    (u64::from(PAGES) << 16) / 4096,
                    reserved >> 30
                ),
            );
            exit::SUCCESS
        }
        Err(why) => {
            say(hal, format_args!("bigmem: FAILED: {why}"));
            exit::FAILED
        }
    }
}

/// The check; the memory's reservation in bytes when it passes.
fn check<P: Platform>(
    kernel: &Kernel<'_, P>,
    stack_budget: usize,
) -> Result<usize, alloc::string::String> {
    use alloc::format;
    let mut store = Store::new(kernel, stack_budget).map_err(|e| format!("no store: {e}"))?;
    let module = store.compile(MODULE).map_err(|e| format!("compile: {e}"))?;
    let instance = store
        .instantiate(&module, &|_, _| None)
        .map_err(|e| format!("instantiate: {e}"))?;
    let Some(Extern::Memory(index)) = store.export(instance, "memory") else {
        return Err("no exported memory".into());
    };
    let reserved = store
        .memory(index)
        .map(crate::wasm::vm::Memory::reserved)
        .ok_or("the exported memory is not in the store")?;
    if reserved < 4 << 30 {
        return Err(format!(
            "the memory is bounded ({reserved} bytes reserved), not guard-paged"
        ));
    }
    let Some(Extern::Func(touch)) = store.export(instance, "touch") else {
        return Err("no exported touch".into());
    };
    let touch = store
        .typed::<i32, i64>(&touch)
        .map_err(|e| format!("touch: {e}"))?;
    let sum = store
        .call_typed(&touch, PAGES as i32)
        .map_err(|e| format!("touch trapped: {e}"))?;
    if sum == -1 {
        return Err(format!("memory.grow to {PAGES} pages failed"));
    }
    let pages = store
        .memory(index)
        .map_or(0, crate::wasm::vm::Memory::pages);
    if pages != u64::from(PAGES) {
        return Err(format!("the memory has {pages} pages, not {PAGES}"));
    }
    let want = expected_sum(PAGES);
    if sum as u64 != want {
        return Err(format!(
            "read back a sum of {:#x}, wrote {want:#x}",
            sum as u64
        ));
    }
    Ok(reserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_counts_every_page_once() {
        // One wasm page: 16 words at 0, 4096, ..., 61440.
        let by_hand = (0..16u32).fold(0u64, |s, i| s.wrapping_add(word(i * 4096)));
        assert_eq!(expected_sum(1), by_hand);
        assert_ne!(expected_sum(2), expected_sum(1));
        assert_ne!(word(0), word(4096));
    }
}
