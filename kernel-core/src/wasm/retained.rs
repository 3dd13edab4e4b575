//! Kernel memory a module keeps for as long as it lives, and what it costs.
//!
//! Besides the transient memory of compiling each function ([`super::budget`]),
//! a module makes the kernel keep things proportional to its sections, and
//! some of those are many times the bytes that encode them: an element
//! segment item is one byte of wasm and a constant expression in the
//! kernel, a type is three bytes and a signature in both the validator and
//! the module's description, a name-section entry is two bytes and a map
//! entry. A 10 MB module of element items took 800 MB of kernel heap before
//! it was charged. So every section is charged before the validator or the
//! parser materialises it, by a linear bound on its cost ([`section_cost`]:
//! bytes per entry and per encoded byte, measured on the release build and
//! rounded up), and every compiled function by the size of what is kept
//! of it ([`function_cost`]). Instances are charged by the store for their
//! contexts and segments.
//!
//! The charges are held from the compiling [`Budget`] through a
//! [`Retained`] in [`STEP`]s and are not given back when compilation ends:
//! [`super::CompiledModule::retained`] says how much the budget's owner
//! still holds, and whoever supplied the budget gives it back when the
//! module is dropped (a store, when it is dropped).
//!
//! Invariants:
//! - INV-RET-1: no section is handed to the validator or the parser, and no
//!   compiled function is kept, before its cost is held.
//! - INV-RET-2: `Retained::held` is a multiple of [`STEP`] and is exactly
//!   what was held from the budget and not given back.

use core::ops::Range;

use wasmparser::Payload;

use super::budget::{Budget, STEP};
use super::compile::{CompiledFunction, CompiledModule};
use super::module::CompileError;

/// Bytes one heap allocation costs beyond its contents (allocator headers,
/// rounding), for the estimates below.
const ALLOC: u64 = 32;

/// The retained cost of one section: `(per entry, per encoded byte)`,
/// before the validator sees it. Each bounds what the validator builds for
/// the section plus what the parser keeps of it.
const fn rates(section: Section) -> (u64, u64) {
    match section {
        // A signature in the validator's type list and in `ModuleInfo`.
        Section::Type => (256, 16),
        // Names copied twice (validator, `Import`).
        Section::Import => (256, 8),
        Section::Function => (16, 0),
        Section::Table | Section::Memory | Section::Tag => (128, 0),
        // A type and a constant expression per global.
        Section::Global => (128, 16),
        // The validator's name set and `Export`.
        Section::Export => (320, 8),
        // A constant expression per item; an item may be one byte.
        Section::Element => (128, 96),
        // A copy of each segment's bytes.
        Section::Data => (128, 2),
        // A body reference per function and what compiling keeps of it
        // beyond its own charge (the validator's per-function state).
        Section::Code => (256, 0),
        // A map entry per function name (about 27 bytes measured per
        // encoded byte when every entry is two bytes).
        Section::Names => (0, 48),
    }
}

/// A section the kernel keeps something of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Function signatures.
    Type,
    /// Imports.
    Import,
    /// Defined functions' signatures.
    Function,
    /// Tables.
    Table,
    /// Memories.
    Memory,
    /// Exception tags.
    Tag,
    /// Globals.
    Global,
    /// Exports.
    Export,
    /// Element segments.
    Element,
    /// Data segments.
    Data,
    /// Function bodies.
    Code,
    /// The `name` custom section.
    Names,
}

impl Section {
    /// The section's name, as the binary format calls it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Type => "type",
            Self::Import => "import",
            Self::Function => "function",
            Self::Table => "table",
            Self::Memory => "memory",
            Self::Tag => "tag",
            Self::Global => "global",
            Self::Export => "export",
            Self::Element => "element",
            Self::Data => "data",
            Self::Code => "code",
            Self::Names => "name",
        }
    }
}

/// The section `payload` opens, its entry count and its byte range in the
/// module, for the sections the kernel keeps something of.
#[must_use]
pub fn section_of(payload: &Payload<'_>) -> Option<(Section, u32, Range<u64>)> {
    let (section, count, range) = match payload {
        Payload::TypeSection(r) => (Section::Type, r.count(), r.range()),
        Payload::ImportSection(r) => (Section::Import, r.count(), r.range()),
        Payload::FunctionSection(r) => (Section::Function, r.count(), r.range()),
        Payload::TableSection(r) => (Section::Table, r.count(), r.range()),
        Payload::MemorySection(r) => (Section::Memory, r.count(), r.range()),
        Payload::TagSection(r) => (Section::Tag, r.count(), r.range()),
        Payload::GlobalSection(r) => (Section::Global, r.count(), r.range()),
        Payload::ExportSection(r) => (Section::Export, r.count(), r.range()),
        Payload::ElementSection(r) => (Section::Element, r.count(), r.range()),
        Payload::DataSection(r) => (Section::Data, r.count(), r.range()),
        Payload::CodeSectionStart {
            count,
            unchecked_range,
            ..
        } => {
            // Only its start is used as an offset; its length is not trusted.
            let at = unchecked_range.start;
            (Section::Code, *count, at..at)
        }
        Payload::CustomSection(c) if c.name() == "name" => (Section::Names, 0, c.range()),
        _ => return None,
    };
    Some((section, count, range))
}

/// The retained cost of a section of `count` entries in `bytes` bytes.
#[must_use]
pub const fn section_cost(section: Section, count: u32, bytes: u64) -> u64 {
    let (per_entry, per_byte) = rates(section);
    (count as u64)
        .saturating_mul(per_entry)
        .saturating_add(bytes.saturating_mul(per_byte))
}

/// What the kernel keeps of a compiled function: its code, relocations,
/// trap sites and source map, each a heap allocation.
#[must_use]
pub fn function_cost(f: &CompiledFunction) -> u64 {
    let vec = |cap: usize, elem: usize| (cap as u64) * (elem as u64) + ALLOC;
    size_of::<CompiledFunction>() as u64
        + vec(f.code.capacity(), 1)
        + vec(f.relocs.capacity(), size_of_val(&f.relocs.first()))
        + vec(f.traps.capacity(), size_of_val(&f.traps.first()))
        + vec(f.srclocs.capacity(), size_of::<(u32, u32)>())
}

/// What an instance of `module` makes the kernel keep: its context, its
/// code addresses and symbol names, its exports and its evaluated segments.
#[must_use]
pub fn instance_cost(module: &CompiledModule) -> u64 {
    let info = &module.info;
    let sum = |it: &mut dyn Iterator<Item = u64>| it.fold(0u64, u64::saturating_add);
    let per_name = 64 + ALLOC;
    [
        u64::from(module.offsets.size()) + 16 + ALLOC,
        (module.functions.len() as u64) * 8 + ALLOC,
        (info.types.len() as u64) * 4 + ALLOC,
        // Each defined tag's identity box in the store (its identity word
        // in the context is in the context's size).
        (info.tags.len() as u64) * (8 + ALLOC) + ALLOC,
        sum(&mut info.func_names.values().map(|n| n.len() as u64 + per_name)),
        sum(&mut info.exports.iter().map(|e| e.name.len() as u64 + per_name)),
        sum(&mut info
            .elements
            .iter()
            .map(|e| (e.items.len() as u64) * 8 + ALLOC)),
        sum(&mut info.data.iter().map(|d| d.bytes.len() as u64 + ALLOC)),
    ]
    .into_iter()
    .fold(0, u64::saturating_add)
}

/// Bytes held from a [`Budget`] for good: see the module docs.
#[derive(Debug, Default)]
pub struct Retained {
    held: u64,
    used: u64,
}

impl Retained {
    /// Hold `bytes` more (in [`STEP`]s) for `section`, which starts at
    /// module offset `offset`.
    ///
    /// # Errors
    /// [`CompileError::MetadataOverBudget`] when the budget cannot hold it;
    /// nothing more is held then.
    pub fn add(
        &mut self,
        budget: &mut dyn Budget,
        bytes: u64,
        section: Section,
        offset: u64,
    ) -> Result<(), CompileError> {
        let used = self.used.saturating_add(bytes);
        if used > self.held {
            let more = (used - self.held).next_multiple_of(STEP);
            if !budget.hold(more) {
                return Err(CompileError::MetadataOverBudget {
                    section: section.name(),
                    bytes: used,
                    offset,
                });
            }
            self.held += more;
        }
        self.used = used;
        Ok(())
    }

    /// Bytes held from the budget (a multiple of [`STEP`], INV-RET-2).
    #[must_use]
    pub const fn held(&self) -> u64 {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pool(u64);

    impl Budget for Pool {
        fn hold(&mut self, bytes: u64) -> bool {
            let ok = bytes <= self.0;
            if ok {
                self.0 -= bytes;
            }
            ok
        }

        fn release(&mut self, bytes: u64) {
            self.0 += bytes;
        }
    }

    #[test]
    fn holds_in_steps_and_refuses_past_the_budget() {
        let mut pool = Pool(2 * STEP);
        let mut r = Retained::default();
        assert_eq!(r.add(&mut pool, 10, Section::Type, 8), Ok(()));
        assert_eq!((r.held(), pool.0), (STEP, STEP));
        assert_eq!(r.add(&mut pool, STEP - 10, Section::Type, 8), Ok(()));
        assert_eq!(r.held(), STEP);
        assert_eq!(r.add(&mut pool, STEP, Section::Export, 9), Ok(()));
        assert_eq!((r.held(), pool.0), (2 * STEP, 0));
        assert_eq!(
            r.add(&mut pool, 1, Section::Element, 40),
            Err(CompileError::MetadataOverBudget {
                section: "element",
                bytes: 2 * STEP + 1,
                offset: 40
            })
        );
        assert_eq!(r.held(), 2 * STEP);
    }

    #[test]
    fn section_costs_grow_with_entries_and_bytes_and_saturate() {
        let c = section_cost(Section::Element, 1, 100);
        assert!(section_cost(Section::Element, 2, 100) > c);
        assert!(section_cost(Section::Element, 1, 101) > c);
        assert_eq!(section_cost(Section::Names, 0, 10), 480);
        assert_eq!(section_cost(Section::Element, u32::MAX, u64::MAX), u64::MAX);
    }
}
