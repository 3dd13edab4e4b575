//! Code objects: every compiled function of a module (or a lone
//! trampoline) linked into one block of kernel memory, relocated and
//! published read + execute, and the registry that maps a pc back to it.
//!
//! Linking: frames come from the kernel's frame allocator, window space
//! from [`Kernel::reserve`]; the range is mapped read + write, the code is
//! copied and relocated, then the range is switched to read + execute,
//! flushed, and the instruction cache is synchronised on every CPU.
//!
//! Invariants:
//! - INV-CODE-1: a code object's range is never writable and executable at
//!   once; it is writable only before it is registered.
//! - INV-CODE-2: a code object is in the registry exactly while it is
//!   mapped executable; dropping it unregisters it first, then unmaps the
//!   range, frees its frames and releases the window space.
//! - INV-CODE-3: writers hold the registry lock only for one map insert or
//!   removal, which never faults, so a fault never interrupts its own CPU's
//!   writer; the trap path still only `try_read`s, retrying a bounded
//!   number of times while another CPU writes (a lost race must not turn a
//!   wasm trap into a kernel fault), and gives up rather than hang if the
//!   invariant is ever broken.
//! - INV-CODE-4: the platform hears of every code object through
//!   [`JitDebug`](crate::hal::JitDebug): published after it is registered,
//!   retired after it is unregistered and before it is unmapped. Symbol
//!   names are `<module>!<name>` (name section), `<module>!func[N]`
//!   (no name) or `<module>!<label>` (trampolines and thunks), the module
//!   being the one that linked it first.
//! - INV-CODE-5: linked code ([`LinkedCode`]) is shared: every store
//!   running a module's code, and every store using a trampoline or host
//!   thunk of one signature, holds a [`CodeObject`] handle to the same
//!   object, which is freed when the last handle drops. Others keep only
//!   weak handles (a compiled module, the kernel's stub cache). A handle is
//!   only ever made for code of its own kernel ([`Kernel::id`]).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use cranelift_codegen::binemit::Reloc as RelocKind;

use super::compile::{CompiledFunction, HandlerSite, RelocTarget, TrapKind, TrapSite};
use crate::hal::{JitCode, JitSymbol, PAGE_SIZE, Perms, PhysAddr, Platform, VirtRange};
use crate::kernel::{Kernel, MemError};
use crate::mem::{KernelTables, map_frames, order_for, zero_frames};

/// Why linking failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// Memory for the code could not be had.
    Memory(MemError),
    /// A relocation kind this linker does not handle.
    UnsupportedReloc(RelocKind),
    /// A relocation target that does not exist or a displacement out of
    /// range.
    BadReloc,
    /// The code is larger than the largest frame block.
    TooLarge,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(e) => write!(f, "code memory: {e}"),
            Self::UnsupportedReloc(k) => write!(f, "unsupported relocation {k:?}"),
            Self::BadReloc => f.write_str("relocation target or range invalid"),
            Self::TooLarge => f.write_str("code object too large"),
        }
    }
}

impl core::error::Error for LinkError {}

/// Where one function lies in a code object and what it knows of itself.
#[derive(Debug)]
pub struct FuncMeta {
    /// Offset of the function in the object.
    pub start: usize,
    /// Length of its code.
    pub len: usize,
    /// Its wasm function index, `None` for trampolines and thunks.
    pub index: Option<u32>,
    /// What it is when it has no index (`trampoline`, `host-thunk`).
    pub label: &'static str,
    /// Trap sites, by code offset in the function.
    pub traps: Vec<TrapSite>,
    /// `(code offset, wasm byte offset)`, sorted.
    pub srclocs: Vec<(u32, u32)>,
    /// Call sites with an exception handler, sorted by return offset.
    pub handlers: Vec<HandlerSite>,
}

/// What the registry knows of a code object.
#[derive(Debug)]
pub struct CodeMeta {
    /// The executable range.
    pub range: VirtRange,
    /// Functions, sorted by start.
    pub funcs: Vec<FuncMeta>,
    /// Names from the name section, by function index.
    pub names: BTreeMap<u32, String>,
    /// The name of the module (or store) the code came from.
    pub module: String,
}

/// One frame of a wasm backtrace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Wasm function index.
    pub func_index: u32,
    /// Name from the name section.
    pub name: Option<String>,
    /// Byte offset in the module of the instruction executing.
    pub wasm_offset: Option<u32>,
}

impl CodeMeta {
    /// The symbol name of `f` (INV-CODE-4), or `None` when the heap cannot
    /// hold it (names are a debugging aid: never worth an abort).
    pub fn symbol_name(&self, f: &FuncMeta) -> Option<String> {
        use core::fmt::Write as _;
        let name = f.index.and_then(|i| self.names.get(&i));
        // `func[` + a u32 + `]` is at most 16 bytes.
        let tail = match (f.index, name) {
            (_, Some(n)) => n.len(),
            (Some(_), None) => 16,
            (None, _) => f.label.len(),
        };
        let mut s = String::new();
        s.try_reserve_exact(self.module.len() + 1 + tail).ok()?;
        // Within the capacity just reserved: these writes do not allocate.
        let _ = match (f.index, name) {
            (_, Some(n)) => write!(s, "{}!{n}", self.module),
            (Some(i), None) => write!(s, "{}!func[{i}]", self.module),
            (None, _) => write!(s, "{}!{}", self.module, f.label),
        };
        Some(s)
    }

    /// Tell the platform about this object (INV-CODE-4). Out of heap for
    /// the names, it is not announced: the code runs regardless.
    fn announce<P: Platform>(&self, hal: &P) {
        if !hal.jit_debug_enabled() {
            return;
        }
        let mut names: Vec<String> = Vec::new();
        let mut symbols: Vec<JitSymbol<'_>> = Vec::new();
        if names.try_reserve_exact(self.funcs.len()).is_err()
            || symbols.try_reserve_exact(self.funcs.len()).is_err()
        {
            return;
        }
        for f in &self.funcs {
            let Some(name) = self.symbol_name(f) else {
                return;
            };
            names.push(name);
        }
        symbols.extend(self.funcs.iter().zip(&names).map(|(f, name)| JitSymbol {
            name,
            start: self.range.start + f.start,
            len: f.len,
            lines: &f.srclocs,
        }));
        hal.code_published(&JitCode {
            range: self.range,
            module: &self.module,
            symbols: &symbols,
        });
    }

    fn func_at(&self, pc: usize) -> Option<(&FuncMeta, usize)> {
        let off = pc.checked_sub(self.range.start)?;
        let i = self.funcs.partition_point(|f| f.start <= off);
        let f = self.funcs.get(i.checked_sub(1)?)?;
        (off < f.start + f.len).then_some((f, off - f.start))
    }

    fn trap_at(&self, pc: usize) -> Option<TrapKind> {
        let (f, off) = self.func_at(pc)?;
        f.traps
            .iter()
            .find(|t| t.code_offset as usize == off)
            .map(|t| t.kind)
    }

    /// The handler of the call site whose return address is `ret`:
    /// `(handler address, frame offset)`.
    fn handler_at(&self, ret: usize) -> Option<(usize, u32)> {
        // The return address may be the function's last byte plus one.
        let (f, off) = self.func_at(ret.checked_sub(1)?)?;
        let off = u32::try_from(off + 1).ok()?;
        let i = f
            .handlers
            .binary_search_by_key(&off, |h| h.ret_offset)
            .ok()?;
        let h = f.handlers[i];
        Some((
            self.range.start + f.start + h.handler as usize,
            h.frame_offset,
        ))
    }

    fn frame_at(&self, pc: usize) -> Option<FrameInfo> {
        let (f, off) = self.func_at(pc)?;
        let func_index = f.index?;
        let i = f.srclocs.partition_point(|&(o, _)| o as usize <= off);
        let wasm_offset = i.checked_sub(1).map(|i| f.srclocs[i].1);
        Some(FrameInfo {
            func_index,
            name: self.names.get(&func_index).cloned(),
            wasm_offset,
        })
    }
}

/// Times the trap path tries the registry lock while another CPU holds it
/// for writing (INV-CODE-3): far more than one map update takes.
const READ_TRIES: u32 = 1 << 24;

/// Every live code object of a kernel, by start address.
#[derive(Default)]
pub struct CodeRegistry {
    map: spin::RwLock<BTreeMap<usize, Arc<CodeMeta>>>,
}

impl CodeRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Code objects registered now (a leak check's baseline).
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Whether no code object is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, meta: Arc<CodeMeta>) {
        self.map.write().insert(meta.range.start, meta);
    }

    fn remove(&self, start: usize) {
        self.map.write().remove(&start);
    }

    fn with<R>(&self, pc: usize, f: impl FnOnce(&CodeMeta) -> Option<R>) -> Option<R> {
        // INV-CODE-3: wait, boundedly, only for another CPU's writer.
        let mut tries = 0u32;
        let map = loop {
            if let Some(map) = self.map.try_read() {
                break map;
            }
            tries += 1;
            if tries >= READ_TRIES {
                return None;
            }
            core::hint::spin_loop();
        };
        let (_, meta) = map.range(..=pc).next_back()?;
        if meta.range.contains(pc) {
            f(meta)
        } else {
            None
        }
    }

    /// Whether `pc` lies in a registered code object. Trap-context safe.
    pub fn contains(&self, pc: usize) -> bool {
        self.with(pc, |_| Some(())).is_some()
    }

    /// The trap kind of the trap site at `pc`, if `pc` is one. Trap-context
    /// safe: no allocation, `try_read` only.
    pub fn trap_at(&self, pc: usize) -> Option<TrapKind> {
        self.with(pc, |m| m.trap_at(pc))
    }

    /// The exception handler of the call that returns to `ret`, if it has
    /// one: `(handler address, frame offset)` (`compile::HandlerSite`).
    /// No allocation, `try_read` only.
    pub fn handler_at(&self, ret: usize) -> Option<(usize, u32)> {
        self.with(ret.wrapping_sub(1), |m| m.handler_at(ret))
    }

    /// The wasm frame executing at `pc` (allocates: not for trap context).
    pub fn frame_at(&self, pc: usize) -> Option<FrameInfo> {
        self.with(pc, |m| m.frame_at(pc))
    }
}

/// Linked, executable code, shared by every store that runs it: the
/// range, its frames and what the registry knows of it. It holds no
/// reference to its kernel, so a compiled module can keep a weak handle to
/// it (INV-CODE-5); the last [`CodeObject`] handle frees it.
#[derive(Debug)]
pub struct LinkedCode {
    /// The [`Kernel::id`] of the kernel it lives in.
    kernel: u64,
    range: VirtRange,
    frames: PhysAddr,
    order: u32,
    meta: Arc<CodeMeta>,
}

impl LinkedCode {
    /// Address of function `i` of the link input.
    pub fn func_addr(&self, i: usize) -> Option<usize> {
        self.meta.funcs.get(i).map(|f| self.range.start + f.start)
    }

    /// Unregister, unmap and free the code (INV-CODE-2); called by the
    /// last handle.
    fn free<P: Platform>(self, k: &Kernel<'_, P>) {
        k.code().remove(self.range.start);
        if k.hal().jit_debug_enabled() {
            k.hal().code_retired(self.range);
        }
        // SAFETY: INV-CODE-2: unregistered above; nothing runs this code
        // any more (its last user is being dropped) and the range is ours.
        if let Ok(flush) = unsafe { k.hal().unmap(self.range.start, self.range.len) } {
            k.hal().flush(flush);
            let _ = k.release(self.range, PAGE_SIZE);
            let _ = k.frames().free(self.frames, self.order);
        } else {
            tracing::error!(
                start = self.range.start,
                "code object unmap failed; leaking"
            );
        }
    }
}

/// A user's handle to linked code: cloning shares the code; dropping the
/// last handle frees it (INV-CODE-2, INV-CODE-5).
pub struct CodeObject<'k, 'h, P: Platform> {
    kernel: &'k Kernel<'h, P>,
    code: Option<Arc<LinkedCode>>,
}

impl<P: Platform> Clone for CodeObject<'_, '_, P> {
    fn clone(&self) -> Self {
        Self {
            kernel: self.kernel,
            code: self.code.clone(),
        }
    }
}

impl<P: Platform> fmt::Debug for CodeObject<'_, '_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeObject")
            .field("range", &self.range())
            .finish_non_exhaustive()
    }
}

/// One function to link: its compiled form and its wasm index (`None` for
/// trampolines).
pub struct LinkInput<'a> {
    /// The function.
    pub function: &'a CompiledFunction,
    /// Its wasm function index.
    pub index: Option<u32>,
    /// What it is when `index` is `None` (its symbol is
    /// `<module>!<label>`); ignored otherwise.
    pub label: &'static str,
}

impl<'k, 'h, P: Platform> CodeObject<'k, 'h, P> {
    /// Link `funcs` into one code object. A [`RelocTarget::Function`]`(d)`
    /// refers to `funcs[d]`. `module` names the code for debuggers and
    /// profilers (INV-CODE-4).
    ///
    /// # Errors
    /// [`LinkError`]; nothing stays allocated then.
    pub fn link(
        kernel: &'k Kernel<'h, P>,
        funcs: &[LinkInput<'_>],
        names: BTreeMap<u32, String>,
        module: &str,
    ) -> Result<Self, LinkError> {
        let mut starts = Vec::with_capacity(funcs.len());
        let mut at = 0usize;
        for f in funcs {
            let align = (f.function.alignment as usize).max(16);
            at = at.next_multiple_of(align);
            starts.push(at);
            at += f.function.code.len();
        }
        let len = at.max(1).next_multiple_of(PAGE_SIZE);
        let pages = len / PAGE_SIZE;
        let order = order_for(pages as u64);
        let frames = kernel
            .frames()
            .alloc(order)
            .map_err(|e| LinkError::Memory(MemError::Frames(e)))
            .map_err(|e| {
                if order > crate::mem::MAX_ORDER {
                    LinkError::TooLarge
                } else {
                    e
                }
            })?;
        let free = |k: &Kernel<'h, P>| {
            let _ = k.frames().free(frames, order);
        };
        let hal = kernel.hal();
        if !zero_frames(hal, frames, pages) {
            free(kernel);
            return Err(LinkError::Memory(MemError::Hal(
                crate::hal::HalError::OutOfRange,
            )));
        }
        let Some(base) = hal.direct_map(frames) else {
            free(kernel);
            return Err(LinkError::BadReloc);
        };
        // Write and relocate through the direct map: the window range is
        // not mapped yet, so it is never writable (INV-CODE-1).
        for (f, &start) in funcs.iter().zip(&starts) {
            let code = &f.function.code;
            // SAFETY: the frames are ours, `pages` of them were zeroed via
            // the direct map above, and `start + code.len() <= len`.
            let dst = unsafe { core::slice::from_raw_parts_mut(base.add(start), code.len()) };
            dst.copy_from_slice(code);
        }
        let range = match kernel.reserve(len, PAGE_SIZE) {
            Ok(r) => r,
            Err(e) => {
                free(kernel);
                return Err(LinkError::Memory(e));
            }
        };
        let fail = |k: &Kernel<'h, P>, e: LinkError| {
            let _ = k.release(range, PAGE_SIZE);
            free(k);
            e
        };
        // SAFETY: as above; the whole block is ours and `len` bytes long.
        let image = unsafe { core::slice::from_raw_parts_mut(base, len) };
        for (f, &start) in funcs.iter().zip(&starts) {
            for r in &f.function.relocs {
                let RelocTarget::Function(d) = r.target;
                let Some(&target) = starts.get(d as usize) else {
                    return Err(fail(kernel, LinkError::BadReloc));
                };
                let at = start + r.offset as usize;
                if let Err(e) = apply_reloc(image, range.start, at, r.kind, target, r.addend) {
                    return Err(fail(kernel, e));
                }
            }
        }
        let page_frames: Vec<PhysAddr> = (0..pages)
            .map(|i| PhysAddr(frames.0 + (i * PAGE_SIZE) as u64))
            .collect();
        let tables = KernelTables::new(kernel.frames(), hal);
        // SAFETY: the frames are ours for the object's life, the range was
        // just reserved and is unmapped, READ_EXECUTE obeys W^X.
        let mapped =
            unsafe { map_frames(hal, range.start, &page_frames, Perms::READ_EXECUTE, &tables) };
        if let Err(e) = mapped {
            return Err(fail(kernel, LinkError::Memory(MemError::Hal(e))));
        }
        hal.sync_icache(range.start, len);
        let meta = Arc::new(CodeMeta {
            range,
            funcs: funcs
                .iter()
                .zip(&starts)
                .map(|(f, &start)| FuncMeta {
                    start,
                    len: f.function.code.len(),
                    index: f.index,
                    label: f.label,
                    traps: f.function.traps.clone(),
                    srclocs: f.function.srclocs.clone(),
                    handlers: f.function.handlers.clone(),
                })
                .collect(),
            names,
            module: String::from(module),
        });
        kernel.code().insert(meta.clone());
        meta.announce(hal);
        Ok(Self {
            kernel,
            code: Some(Arc::new(LinkedCode {
                kernel: kernel.id(),
                range,
                frames,
                order,
                meta,
            })),
        })
    }

    /// Another handle to `code` when it lives in `kernel` (INV-CODE-5).
    pub fn share(kernel: &'k Kernel<'h, P>, code: Arc<LinkedCode>) -> Option<Self> {
        (code.kernel == kernel.id()).then_some(Self {
            kernel,
            code: Some(code),
        })
    }

    /// The shared code, for a weak handle kept elsewhere.
    pub fn linked(&self) -> Option<&Arc<LinkedCode>> {
        self.code.as_ref()
    }

    /// The executable range.
    pub fn range(&self) -> VirtRange {
        self.code
            .as_ref()
            .map_or(VirtRange { start: 0, len: 0 }, |c| c.range)
    }

    /// Address of function `i` of the link input.
    pub fn func_addr(&self, i: usize) -> Option<usize> {
        self.code.as_ref()?.func_addr(i)
    }
}

impl<P: Platform> Drop for CodeObject<'_, '_, P> {
    fn drop(&mut self) {
        // Exactly one handle gets the code back: the last (INV-CODE-5).
        if let Some(code) = self.code.take().and_then(Arc::into_inner) {
            code.free(self.kernel);
        }
    }
}

fn rd32(image: &[u8], at: usize) -> Result<u32, LinkError> {
    let b = image.get(at..at + 4).ok_or(LinkError::BadReloc)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn wr32(image: &mut [u8], at: usize, v: u32) -> Result<(), LinkError> {
    image
        .get_mut(at..at + 4)
        .ok_or(LinkError::BadReloc)?
        .copy_from_slice(&v.to_le_bytes());
    Ok(())
}

/// Patch one call relocation at `at` (offset in `image`, loaded at `base`)
/// to reach `target` (offset in `image`).
fn apply_reloc(
    image: &mut [u8],
    base: usize,
    at: usize,
    kind: RelocKind,
    target: usize,
    addend: i64,
) -> Result<(), LinkError> {
    let pc = (base + at) as i64;
    let dest = (base + target) as i64 + addend;
    let delta = dest - pc;
    match kind {
        RelocKind::X86CallPCRel4 | RelocKind::X86CallPLTRel4 | RelocKind::X86PCRel4 => {
            let v = i32::try_from(delta).map_err(|_| LinkError::BadReloc)?;
            wr32(image, at, v as u32)
        }
        RelocKind::Arm64Call => {
            if delta % 4 != 0 || !(-(1 << 27)..(1 << 27)).contains(&delta) {
                return Err(LinkError::BadReloc);
            }
            let insn = rd32(image, at)?;
            let imm = ((delta >> 2) as u32) & 0x03ff_ffff;
            wr32(image, at, (insn & !0x03ff_ffff) | imm)
        }
        RelocKind::RiscvCallPlt => {
            if !(-(1i64 << 31)..(1i64 << 31) - 0x800).contains(&delta) {
                return Err(LinkError::BadReloc);
            }
            let hi20 = ((delta + 0x800) >> 12) as u32 & 0xf_ffff;
            let lo12 = (delta as u32) & 0xfff;
            let auipc = rd32(image, at)?;
            let jalr = rd32(image, at + 4)?;
            wr32(image, at, (auipc & 0xfff) | (hi20 << 12))?;
            wr32(image, at + 4, (jalr & 0x000f_ffff) | (lo12 << 20))
        }
        other => Err(LinkError::UnsupportedReloc(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_call_reloc_is_pc_relative() {
        let mut image = [0u8; 64];
        apply_reloc(&mut image, 0x1000, 1, RelocKind::X86CallPCRel4, 32, -4).unwrap();
        assert_eq!(rd32(&image, 1).unwrap() as i32, 32 - 4 - 1);
    }

    #[test]
    fn arm64_call_reloc_sets_imm26() {
        let mut image = [0u8; 64];
        wr32(&mut image, 4, 0x9400_0000).unwrap();
        apply_reloc(&mut image, 0x1000, 4, RelocKind::Arm64Call, 36, 0).unwrap();
        assert_eq!(rd32(&image, 4).unwrap(), 0x9400_0000 | 8);
    }

    #[test]
    fn riscv_call_reloc_splits_hi_lo() {
        let mut image = [0u8; 0x2000];
        wr32(&mut image, 0, 0x0000_0097).unwrap(); // auipc ra, 0
        wr32(&mut image, 4, 0x0000_80e7).unwrap(); // jalr ra, 0(ra)
        apply_reloc(&mut image, 0x1000, 0, RelocKind::RiscvCallPlt, 0x1ffc, 0).unwrap();
        let hi = rd32(&image, 0).unwrap() >> 12;
        let lo = (rd32(&image, 4).unwrap() as i32) >> 20;
        assert_eq!((hi as i64) * 4096 + lo as i64, 0x1ffc);
    }

    #[test]
    fn unknown_reloc_is_an_error() {
        let mut image = [0u8; 16];
        assert!(matches!(
            apply_reloc(&mut image, 0, 0, RelocKind::Abs8, 0, 0),
            Err(LinkError::UnsupportedReloc(_))
        ));
    }
}
