//! Wasm tables: arrays of references that JIT code indexes through a
//! `VMTableDefinition`, stored in owner-charged memory.
//!
//! A table's elements live in a region of the kernel window reserved and
//! committed for the store's memory owner (`mem` INV-MEM-2): their frames
//! count against the owner's limit and the machine's free frames exactly
//! as a linear memory's do, so a guest cannot make the kernel heap hold
//! its tables. The region is committed eagerly (no demand fault ever
//! happens inside a builtin) and holds a power-of-two number of elements,
//! at least one page; growth past it moves the elements to a region twice
//! as large and releases the old one.
//!
//! Invariants:
//! - INV-TAB-1: the definition's `base` and `count` are the current block's
//!   base and the element count; `count <= capacity`, and every element
//!   below `capacity` is committed read + write.
//! - INV-TAB-2: the element count never exceeds the table's limit:
//!   its declared maximum, capped at [`MAX_TABLE_ELEMS`].
//! - INV-TAB-3 (vm INV-VM-5): a store's tables are touched by one thread
//!   at a time: the store's (it is neither `Send` nor `Sync`), either in
//!   JIT code or in a builtin it called, never both at once; no reference
//!   to the elements is held across a call into wasm.

use alloc::boxed::Box;
use core::cell::UnsafeCell;

use crate::hal::{PAGE_SIZE, Perms, Platform};
use crate::kernel::Kernel;
use crate::mem::{Commit, Owner, Pooled, RegionSpec, VmError};

use super::module::{TableType, ValType};

/// Most elements a table may have (initially or after `table.grow`).
pub const MAX_TABLE_ELEMS: u32 = 10_000_000;

/// Bytes of one element: a pointer-sized reference word.
const ELEM_BYTES: usize = core::mem::size_of::<usize>();

/// What JIT code reads: the elements' base and count.
#[repr(C)]
#[derive(Debug, Default)]
pub(super) struct VMTableDefinition {
    pub(super) base: usize,
    pub(super) count: u32,
}

/// Why a table cannot be created or grown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// More elements than the table's maximum or [`MAX_TABLE_ELEMS`].
    TooLarge,
    /// The elements' memory could not be reserved or committed.
    Memory(VmError),
}

/// A committed region holding elements; dropping it releases the frames.
trait Block {
    fn base(&self) -> usize;
}

impl<H: crate::hal::Mmu + crate::hal::PhysMemory> Block for Pooled<'_, H> {
    fn base(&self) -> usize {
        self.mapping().range().start
    }
}

/// Makes a committed block of the given bytes for the table's owner.
type Reserve<'k> = dyn Fn(usize) -> Result<Box<dyn Block + 'k>, VmError> + 'k;

struct Elems<'k> {
    reserve: Box<Reserve<'k>>,
    block: Option<Box<dyn Block + 'k>>,
    capacity: u32,
    len: u32,
}

/// A table of references (funcref: `VMFuncRef` addresses; externref: host
/// words), 0 for null.
pub struct Table<'k> {
    elem: ValType,
    max: Option<u32>,
    elems: UnsafeCell<Elems<'k>>,
    def: UnsafeCell<VMTableDefinition>,
}

impl<'k> Table<'k> {
    /// A table of type `ty` whose elements are charged to `owner`.
    ///
    /// # Errors
    /// [`TableError::TooLarge`] past [`MAX_TABLE_ELEMS`];
    /// [`TableError::Memory`] when its elements cannot be committed.
    pub fn new<'h, P: Platform>(
        kernel: &'k Kernel<'h, P>,
        ty: TableType,
        owner: Owner,
    ) -> Result<Box<Self>, TableError> {
        if ty.min > MAX_TABLE_ELEMS {
            return Err(TableError::TooLarge);
        }
        let reserve = move |bytes: usize| -> Result<Box<dyn Block + 'k>, VmError> {
            let spec = RegionSpec {
                owner,
                ..RegionSpec::new(bytes)
            };
            // A pooled block comes with its first pages committed and zero
            // (`mem` INV-POOL-2); commit the rest.
            let block = kernel.regions().take(kernel.vm(), &spec)?;
            let kept = block.kept();
            if kept < bytes {
                block
                    .mapping()
                    .commit(kept, bytes - kept, Perms::READ_WRITE, Commit::Eager)?;
            }
            Ok(Box::new(block))
        };
        let t = Box::new(Self {
            elem: ty.elem,
            max: ty.max,
            elems: UnsafeCell::new(Elems {
                reserve: Box::new(reserve),
                block: None,
                capacity: 0,
                len: 0,
            }),
            def: UnsafeCell::new(VMTableDefinition::default()),
        });
        t.grow(ty.min, 0)?;
        Ok(t)
    }

    pub(super) fn def_ptr(&self) -> *mut VMTableDefinition {
        self.def.get()
    }

    #[expect(
        clippy::mut_from_ref,
        reason = "INV-TAB-3: one thread, and no reference is held across calls"
    )]
    fn state(&self) -> &mut Elems<'k> {
        // SAFETY: INV-TAB-3: only the store's thread touches the table,
        // and no caller keeps the reference across a call into wasm.
        unsafe { &mut *self.elems.get() }
    }

    /// The elements.
    #[expect(
        clippy::mut_from_ref,
        reason = "INV-TAB-3: one thread, and no reference is held across calls"
    )]
    pub(super) fn elems(&self) -> &mut [usize] {
        let s = self.state();
        match &s.block {
            // SAFETY: INV-TAB-1: `len <= capacity` elements are committed
            // read + write at the block's base (page aligned, so aligned
            // for `usize`); INV-TAB-3 makes the reference exclusive.
            Some(b) => unsafe {
                core::slice::from_raw_parts_mut(b.base() as *mut usize, s.len as usize)
            },
            None => &mut [],
        }
    }

    /// Element count.
    pub fn len(&self) -> u32 {
        self.state().len
    }

    /// Whether the table has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element type.
    pub fn elem_type(&self) -> ValType {
        self.elem
    }

    /// The declared maximum.
    pub fn max(&self) -> Option<u32> {
        self.max
    }

    /// The most elements the table may reach (INV-TAB-2).
    fn limit(&self) -> u32 {
        self.max.unwrap_or(MAX_TABLE_ELEMS).min(MAX_TABLE_ELEMS)
    }

    /// Grow by `delta` elements set to `init`; the old size.
    ///
    /// # Errors
    /// [`TableError::TooLarge`] past the limit (INV-TAB-2),
    /// [`TableError::Memory`] when the owner's limit or the machine's frames
    /// cannot hold the elements; the table is unchanged then.
    pub fn grow(&self, delta: u32, init: usize) -> Result<u32, TableError> {
        let limit = self.limit();
        let s = self.state();
        let old = s.len;
        let new = old
            .checked_add(delta)
            .filter(|&n| n <= limit)
            .ok_or(TableError::TooLarge)?;
        if new > s.capacity {
            let per_page = (PAGE_SIZE / ELEM_BYTES) as u32;
            let capacity = new
                .checked_next_power_of_two()
                .unwrap_or(u32::MAX)
                .max(per_page)
                .min(limit.next_multiple_of(per_page));
            let block = (s.reserve)(capacity as usize * ELEM_BYTES).map_err(TableError::Memory)?;
            if let Some(from) = &s.block {
                // SAFETY: both blocks are committed for at least `old`
                // elements (INV-TAB-1) and are distinct regions.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        from.base() as *const usize,
                        block.base() as *mut usize,
                        old as usize,
                    );
                }
            }
            s.block = Some(block);
            s.capacity = capacity;
        }
        s.len = new;
        self.elems()[old as usize..].fill(init);
        self.sync_def();
        Ok(old)
    }

    /// Point the definition at the (possibly moved) elements.
    fn sync_def(&self) {
        let s = self.state();
        let base = s.block.as_ref().map_or(0, |b| b.base());
        // SAFETY: INV-TAB-3, as for `state`.
        unsafe {
            *self.def_ptr() = VMTableDefinition { base, count: s.len };
        }
    }

    /// Write `src` at element `dst`; `false` (nothing written) when it does
    /// not fit.
    pub(super) fn write(&self, dst: u32, src: &[usize]) -> bool {
        let e = self.elems();
        let Some(d) = e.get_mut(dst as usize..dst as usize + src.len()) else {
            return false;
        };
        d.copy_from_slice(src);
        true
    }

    /// Set `len` elements from `dst` to `value`; `false` (nothing written)
    /// when they do not fit.
    pub(super) fn fill(&self, dst: u32, value: usize, len: u32) -> bool {
        let e = self.elems();
        let Some(d) = e.get_mut(dst as usize..dst as usize + len as usize) else {
            return false;
        };
        d.fill(value);
        true
    }

    /// Copy `len` elements from `src` of table `from` (possibly `self`) to
    /// `dst`; `false` (nothing written) when either range does not fit.
    pub(super) fn copy_from(&self, dst: u32, from: &Table<'_>, src: u32, len: u32) -> bool {
        let (dst, src, len) = (dst as usize, src as usize, len as usize);
        let (dlen, slen) = (self.len() as usize, from.len() as usize);
        if dst.checked_add(len).is_none_or(|e| e > dlen)
            || src.checked_add(len).is_none_or(|e| e > slen)
        {
            return false;
        }
        let s = from.elems().as_ptr();
        let d = self.elems().as_mut_ptr();
        // SAFETY: both ranges were checked against their tables' committed
        // elements (INV-TAB-1); `copy` allows them to overlap (the same
        // table); INV-TAB-3 means nothing else touches them now.
        unsafe { core::ptr::copy(s.add(src), d.add(dst), len) };
        true
    }
}
