//! The VMContext layout: THE one place its offsets are computed.
//!
//! Every instance has one `VMContext`, a block of memory whose address JIT
//! code receives as its first (`vmctx`) argument. Its layout depends only on
//! the [`ModuleInfo`](super::module::ModuleInfo) and the target's pointer
//! size `P` (4 or 8). In order, with `align(x, n)` rounding up:
//!
//! | field | size | notes |
//! |---|---|---|
//! | `stack_limit` | `P` | lowest allowed stack pointer; the prologue traps below it |
//! | `interrupt` | 8, 8-aligned | `*const Interrupt` in the low bytes: the store's preemption cell (see [`interrupt`](super::interrupt)) |
//! | `builtins` | `P` | `*const [fn; N]`, see [`Builtin`](super::builtins::Builtin) |
//! | memory pointers | `P` each | `*mut VMMemoryDefinition`, one per memory (imports first) |
//! | defined memories | `align(P,8) + 8` each, 8-aligned | `VMMemoryDefinition { base: *mut u8, length: u64 }` |
//! | table pointers | `P` each | `*mut VMTableDefinition`, one per table (imports first) |
//! | defined tables | `align(P + 4, P)` each | `VMTableDefinition { base: *mut usize, count: u32 }`: `count` reference words |
//! | type ids | 4 each | canonical type id of each module type index (for `call_indirect`) |
//! | imported funcs | `align(2P + 4, P)` each, `P`-aligned | `VMFuncRef { code, vmctx, type_id: u32 }` |
//! | defined func refs | same | one `VMFuncRef` per defined function, for tables and exports |
//! | imported globals | `P` each | pointer to the exporter's 16-byte slot |
//! | defined globals | 16 each, 16-aligned | the value, little-endian, in the low bytes |
//! | tags | `P` each | identity of each exception tag (imports first): the address of the store's tag, compared by `catch` |
//!
//! Invariants:
//! - INV-1: a memory's `base` never changes for the life of the memory (it is
//!   a 4 GiB + guard reservation, grown in place), so JIT code may load it
//!   once per function; `length` changes only inside the `memory.grow`
//!   builtin (and in other instances sharing an imported memory), so it is
//!   reloaded after every call.
//! - INV-2: a table element is a reference word: 0 for null; in a funcref
//!   table, otherwise the address of a `VMFuncRef` that lives as long as the
//!   table; in an externref table, an opaque host word. `base` and `count`
//!   change only in the `table.grow` builtin, so JIT code reloads them after
//!   every call.
//! - INV-3: the whole context is `P`-aligned, and its start is 16-aligned
//!   (for the global slots).

use super::module::ModuleInfo;

/// Offsets into one module's `VMContext`, for one pointer size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VMOffsets {
    ptr: u32,
    num_memories: u32,
    num_imported_memories: u32,
    num_tables: u32,
    num_imported_tables: u32,
    num_types: u32,
    num_imported_funcs: u32,
    num_defined_funcs: u32,
    num_imported_globals: u32,
    num_defined_globals: u32,
    num_tags: u32,
    // Computed section starts.
    memory_ptrs: u32,
    defined_memories: u32,
    table_ptrs: u32,
    defined_tables: u32,
    type_ids: u32,
    imported_funcs: u32,
    defined_func_refs: u32,
    imported_globals: u32,
    defined_globals: u32,
    tags: u32,
    size: u32,
}

const fn align(x: u32, n: u32) -> u32 {
    x.saturating_add(n - 1) & !(n - 1)
}

impl VMOffsets {
    /// The layout for `module` on a target with `pointer_size`-byte pointers
    /// (4 or 8; anything else is treated as 8).
    #[must_use]
    pub fn new(pointer_size: u8, module: &ModuleInfo) -> Self {
        let ptr: u32 = if pointer_size == 4 { 4 } else { 8 };
        let num_memories = super::module::len_u32(module.memories.len());
        let num_tables = super::module::len_u32(module.tables.len());
        let num_types = super::module::len_u32(module.types.len());
        let mut o = VMOffsets {
            ptr,
            num_memories,
            num_imported_memories: module.num_imported_memories,
            num_tables,
            num_imported_tables: module.num_imported_tables,
            num_types,
            num_imported_funcs: module.num_imported_funcs,
            num_defined_funcs: module.num_defined_funcs(),
            num_imported_globals: module.num_imported_globals,
            num_defined_globals: module.num_defined_globals(),
            num_tags: super::module::len_u32(module.tags.len()),
            memory_ptrs: 0,
            defined_memories: 0,
            table_ptrs: 0,
            defined_tables: 0,
            type_ids: 0,
            imported_funcs: 0,
            defined_func_refs: 0,
            imported_globals: 0,
            defined_globals: 0,
            tags: 0,
            size: 0,
        };
        let mut at = o.builtins().saturating_add(ptr);
        o.memory_ptrs = at;
        at = at.saturating_add(ptr.saturating_mul(num_memories));
        at = align(at, 8);
        o.defined_memories = at;
        let defined_memories = num_memories - o.num_imported_memories;
        at = at.saturating_add(
            o.size_of_memory_definition()
                .saturating_mul(defined_memories),
        );
        at = align(at, ptr);
        o.table_ptrs = at;
        at = at.saturating_add(ptr.saturating_mul(num_tables));
        o.defined_tables = at;
        let defined_tables = num_tables - o.num_imported_tables;
        at = at.saturating_add(o.size_of_table_definition().saturating_mul(defined_tables));
        o.type_ids = at;
        at = at.saturating_add(4u32.saturating_mul(num_types));
        at = align(at, ptr);
        o.imported_funcs = at;
        at = at.saturating_add(o.size_of_func_ref().saturating_mul(o.num_imported_funcs));
        o.defined_func_refs = at;
        at = at.saturating_add(o.size_of_func_ref().saturating_mul(o.num_defined_funcs));
        o.imported_globals = at;
        at = at.saturating_add(ptr.saturating_mul(o.num_imported_globals));
        at = align(at, 16);
        o.defined_globals = at;
        at = at.saturating_add(16u32.saturating_mul(o.num_defined_globals));
        o.tags = at;
        at = at.saturating_add(ptr.saturating_mul(o.num_tags));
        o.size = align(at, 16);
        o
    }

    /// Pointer size in bytes.
    #[must_use]
    pub fn pointer_size(&self) -> u32 {
        self.ptr
    }

    /// Total size of the `VMContext` in bytes (a multiple of 16).
    #[must_use]
    pub fn size(&self) -> u32 {
        self.size
    }

    /// `stack_limit`: the lowest stack pointer wasm code may use.
    #[must_use]
    pub fn stack_limit(&self) -> u32 {
        0
    }

    /// `interrupt`: pointer to the store's preemption cell
    /// ([`Interrupt`](super::interrupt::Interrupt)), in an 8-byte slot.
    #[must_use]
    pub fn interrupt(&self) -> u32 {
        align(self.ptr, 8)
    }

    /// `builtins`: pointer to the builtin function table.
    #[must_use]
    pub fn builtins(&self) -> u32 {
        self.interrupt() + 8
    }

    /// Pointer to the `VMMemoryDefinition` of memory `index`.
    #[must_use]
    pub fn memory_pointer(&self, index: u32) -> u32 {
        debug_assert!(index < self.num_memories);
        self.memory_ptrs + index * self.ptr
    }

    /// The inline `VMMemoryDefinition` of defined memory `defined_index`.
    #[must_use]
    pub fn defined_memory(&self, defined_index: u32) -> u32 {
        self.defined_memories + defined_index * self.size_of_memory_definition()
    }

    /// Offset of `base` inside a `VMMemoryDefinition`.
    #[must_use]
    pub fn memory_definition_base(&self) -> u32 {
        0
    }

    /// Offset of `length` (bytes, `u64`) inside a `VMMemoryDefinition`.
    #[must_use]
    pub fn memory_definition_length(&self) -> u32 {
        align(self.ptr, 8)
    }

    /// Size of a `VMMemoryDefinition`.
    #[must_use]
    pub fn size_of_memory_definition(&self) -> u32 {
        align(self.ptr, 8) + 8
    }

    /// Pointer to the `VMTableDefinition` of table `index`.
    #[must_use]
    pub fn table_pointer(&self, index: u32) -> u32 {
        debug_assert!(index < self.num_tables);
        self.table_ptrs + index * self.ptr
    }

    /// The inline `VMTableDefinition` of defined table `defined_index`.
    #[must_use]
    pub fn defined_table(&self, defined_index: u32) -> u32 {
        self.defined_tables + defined_index * self.size_of_table_definition()
    }

    /// Offset of `base` inside a `VMTableDefinition`.
    #[must_use]
    pub fn table_definition_base(&self) -> u32 {
        0
    }

    /// Offset of `count` (`u32`) inside a `VMTableDefinition`.
    #[must_use]
    pub fn table_definition_count(&self) -> u32 {
        self.ptr
    }

    /// Size of a `VMTableDefinition`.
    #[must_use]
    pub fn size_of_table_definition(&self) -> u32 {
        align(self.ptr + 4, self.ptr)
    }

    /// The canonical type id (`u32`) of module type `type_index`.
    #[must_use]
    pub fn type_id(&self, type_index: u32) -> u32 {
        debug_assert!(type_index < self.num_types);
        self.type_ids + 4 * type_index
    }

    /// The `VMFuncRef` of imported function `index`.
    #[must_use]
    pub fn imported_func(&self, index: u32) -> u32 {
        debug_assert!(index < self.num_imported_funcs);
        self.imported_funcs + index * self.size_of_func_ref()
    }

    /// The `VMFuncRef` of defined function `defined_index`.
    #[must_use]
    pub fn defined_func_ref(&self, defined_index: u32) -> u32 {
        debug_assert!(defined_index < self.num_defined_funcs);
        self.defined_func_refs + defined_index * self.size_of_func_ref()
    }

    /// Offset of `code` in a `VMFuncRef`.
    #[must_use]
    pub fn func_ref_code(&self) -> u32 {
        0
    }

    /// Offset of `vmctx` in a `VMFuncRef`.
    #[must_use]
    pub fn func_ref_vmctx(&self) -> u32 {
        self.ptr
    }

    /// Offset of `type_id` (`u32`) in a `VMFuncRef`.
    #[must_use]
    pub fn func_ref_type_id(&self) -> u32 {
        2 * self.ptr
    }

    /// Size of a `VMFuncRef`.
    #[must_use]
    pub fn size_of_func_ref(&self) -> u32 {
        align(2 * self.ptr + 4, self.ptr)
    }

    /// The pointer to imported global `index`'s slot.
    #[must_use]
    pub fn imported_global(&self, index: u32) -> u32 {
        debug_assert!(index < self.num_imported_globals);
        self.imported_globals + index * self.ptr
    }

    /// The 16-byte slot of defined global `defined_index`.
    #[must_use]
    pub fn defined_global(&self, defined_index: u32) -> u32 {
        debug_assert!(defined_index < self.num_defined_globals);
        self.defined_globals + 16 * defined_index
    }

    /// The identity word of tag `index` (imports first).
    #[must_use]
    pub fn tag(&self, index: u32) -> u32 {
        debug_assert!(index < self.num_tags);
        self.tags + index * self.ptr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::module::{FuncType, GlobalType, MemoryType, TableType, ValType};
    use alloc::vec;

    fn module() -> ModuleInfo {
        let g = GlobalType {
            ty: ValType::I32,
            mutable: true,
        };
        ModuleInfo {
            types: vec![FuncType::default(); 3],
            functions: vec![0, 1, 2, 2],
            num_imported_funcs: 2,
            tables: vec![TableType {
                elem: ValType::FUNCREF,
                min: 1,
                max: None,
            }],
            memories: vec![MemoryType {
                min_pages: 1,
                max_pages: None,
                memory64: false,
                shared: false,
            }],
            globals: vec![g, g, g],
            num_imported_globals: 1,
            ..ModuleInfo::default()
        }
    }

    #[test]
    fn layout_64() {
        let o = VMOffsets::new(8, &module());
        assert_eq!(o.stack_limit(), 0);
        assert_eq!(o.interrupt(), 8);
        assert_eq!(o.builtins(), 16);
        assert_eq!(o.memory_pointer(0), 24);
        assert_eq!(o.defined_memory(0), 32);
        assert_eq!(o.memory_definition_length(), 8);
        assert_eq!(o.table_pointer(0), 48);
        assert_eq!(o.defined_table(0), 56);
        assert_eq!(o.type_id(0), 72);
        assert_eq!(o.type_id(2), 80);
        assert_eq!(o.size_of_func_ref(), 24);
        assert_eq!(o.imported_func(0), 88);
        assert_eq!(o.imported_func(1), 112);
        assert_eq!(o.defined_func_ref(0), 136);
        assert_eq!(o.imported_global(0), 184);
        assert_eq!(o.defined_global(0), 192);
        assert_eq!(o.defined_global(1), 208);
        assert_eq!(o.size(), 224);
    }

    #[test]
    fn layout_32() {
        let o = VMOffsets::new(4, &module());
        assert_eq!(o.interrupt(), 8);
        assert_eq!(o.builtins(), 16);
        assert_eq!(o.memory_pointer(0), 20);
        assert_eq!(o.defined_memory(0), 24);
        assert_eq!(o.size_of_memory_definition(), 16);
        assert_eq!(o.table_pointer(0), 40);
        assert_eq!(o.defined_table(0), 44);
        assert_eq!(o.size_of_func_ref(), 12);
        assert_eq!(o.func_ref_type_id(), 8);
        assert_eq!(o.type_id(0), 52);
        assert_eq!(o.imported_func(0), 64);
        assert_eq!(o.defined_global(0) % 16, 0);
        assert_eq!(o.size() % 16, 0);
    }

    #[test]
    fn empty_module_has_only_the_header() {
        let o = VMOffsets::new(8, &ModuleInfo::default());
        assert_eq!(o.size(), 32);
    }
}
