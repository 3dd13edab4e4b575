//! Commitment accounting (`mem` INV-MEM-2, INV-VM-7) against a reference
//! model, on a whole hosted machine small enough (32 MiB) that random
//! sequences run it out of frames.
//!
//! A proptest drives sequences of operations over four memory owners (the
//! kernel, limited to RAM; three processes with different limits, changed by
//! the sequence) and four store slots, each store charging one owner
//! (`Store::set_memory_owner`): instantiate a module with a memory of N
//! wasm pages and optionally a table, `memory.grow`, a store and load
//! through wasm (`poke`: the first touch of a page is a real demand fault),
//! `table.grow`, drop a store with everything in it, change an owner's
//! limit, and spawn a process that grows and touches its memory while the
//! test waits for it (`Procs::spawn` in a process scope opened for the
//! step). The model predicts every outcome: an instantiation, a grow or a
//! table growth succeeds iff the owner's limit allows the charge and the
//! machine's unpromised frames cover it (for a process, above the kernel's
//! reserve); `memory.grow` returns -1 exactly when the model says it
//! cannot be backed; a spawned process's stack, its load and each of its
//! grows fail exactly when the model says so.
//!
//! After every step, with `resident` the frames the model says hold data
//! (touched wasm pages, 16 frames each, and table blocks, committed
//! eagerly), `committed` the frames it says are committed (every wasm
//! page, table blocks, and the memories a failed instantiation left in its
//! store) and `code` the frames of code objects (calibrated per module
//! shape and per trampoline at the start; the kernel takes them unpromised
//! and uncharged; a module's code, its trampolines with it, is linked once
//! and held while any store holds an instance of it):
//!
//! - conservation: `free_frames() + resident + code == F0`, the free frames
//!   of the booted machine before the first step;
//! - the ledger (INV-MEM-2): `promised_frames() == P0 + committed -
//!   resident`, so every committed page holds its frame or a promise of
//!   one, and `free_frames() - promised_frames()` is the model's
//!   unpromised count, which its predictions use;
//! - each owner's charge (INV-VM-7): `owner_frames(o) == charge0(o) +
//!   committed(o)`;
//! - each memory's size and resident granules (`Vm::resident`), and every
//!   word written so far reads back (through the memory's base).
//!
//! A touch of a committed page never faults the kernel (the test process
//! would die), never traps, and reads back its value: its promise is of a
//! 64 KiB block the allocator keeps placeable (INV-MEM-3). Fragmentation
//! shows only as a refusal up front: a grow or instantiation the frame
//! count allows is refused exactly when the kernel reports too few
//! placeable blocks, and a code object only when none of its order is.
//! At the end of every sequence every store is dropped and
//! every frame, promise and charge must be back to the start.
//!
//! Fixed sequences through the same model follow: one for the paths random
//! sequences reach only now and then (the reserve, a spawn without room
//! for its stack), and two that fragment the free frames on purpose, for
//! a kernel-owned and for a process-owned memory: every page granted is
//! backed.
//!
//! The kernel's pool of idle regions is off on this machine (a region
//! given back is released at once): the model accounts for every frame and
//! does not model the pool, which `instance_pool.rs` tests.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal_hosted::{Config, Hosted};
use kernel_core::kernel::{Kernel, MemError};
use kernel_core::mem::{Owner, ProcessId, VmError};
use kernel_core::proc::{self, ExitStatus, LoadError, Object, Pid, SpawnOptions};
use kernel_core::wasm::budget::Budget;
use kernel_core::wasm::retained;
use kernel_core::wasm::table::MAX_TABLE_ELEMS;
use kernel_core::wasm::vm::{CallError, Extern, Func, InstantiateError, Store, Trap, Val};
use kernel_core::wasm::{
    CompiledModule, Compiler, TranslateConfig, TrapKind, compile_module, compile_module_within,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use tests::ensure_eq;
use tests::mem_model::ModelError;

/// The machine's RAM: 8,192 frames, a reserve of 256.
const MEMORY: u64 = 32 << 20;
/// Frames per wasm page (a memory's granule).
const PAGE_FRAMES: u64 = 16;
/// The buddy order of a wasm page's block.
const PAGE_ORDER: u32 = 4;
/// Table elements per frame (8-byte elements).
const ELEMS_PER_FRAME: u32 = 512;
/// Store slots a sequence works on.
const SLOTS: usize = 4;
/// The owners stores charge; index 0, the kernel, may promise the reserve
/// and is limited to RAM (at boot; the model leaves that limit alone).
const OWNERS: [Owner; 4] = [
    Owner::Kernel,
    Owner::Process(ProcessId(101)),
    Owner::Process(ProcessId(102)),
    Owner::Process(ProcessId(103)),
];
/// Each process owner's limit at the start of a sequence, in frames.
const LIMITS: [u64; 3] = [1024, 3072, u64::MAX];
/// What `SetLimit` chooses from.
const LIMIT_CHOICES: [u64; 5] = [0, 256, 1024, 4096, u64::MAX];
/// Initial memory sizes, in wasm pages.
const PAGES: [u64; 7] = [0, 1, 2, 5, 16, 64, 200];
/// Initial table sizes, in elements.
const TABLES: [u32; 6] = [0, 1, 512, 513, 2000, 5000];
/// A `memory.grow` delta the model resolves when the step runs: as many
/// pages as the owner's limit and the machine's unpromised frames allow.
const FILL: u32 = u32::MAX;
/// [`FILL`] and one page more, which must fail.
const FILL_OVER: u32 = u32::MAX - 1;
/// `memory.grow` deltas, in pages (600 is more than the machine).
const GROWS: [u32; 9] = [0, 1, 3, 16, 64, 200, 600, FILL, FILL_OVER];
/// `table.grow` deltas, in elements.
const TABLE_GROWS: [u32; 6] = [0, 1, 100, 600, 3000, 20_000];
/// Bytes of wasm stack a store's calls may use.
const STACK_BUDGET: usize = 256 << 10;
/// A spawned process's fiber stack, charged to it at spawn.
const PROC_STACK: usize = 512 << 10;
/// [`PROC_STACK`] in frames.
const PROC_STACK_FRAMES: u64 = (PROC_STACK / 4096) as u64;
/// A spawned process's module bytes (under a page), held for it from the
/// spawn until it ends, like its pages.
const MODULE_FRAMES: u64 = 1;
/// A spawned process's `memory.grow` deltas, in pages.
const PROC_GROWS: [u32; 7] = [0, 1, 8, 64, 200, FILL, FILL_OVER];
/// A spawned process's limit, in frames.
const PROC_LIMITS: [u64; 4] = [
    PROC_BASE + 4 * PAGE_FRAMES,
    PROC_BASE + 32 * PAGE_FRAMES,
    PROC_BASE + 128 * PAGE_FRAMES,
    1 << 20,
];
/// What a process holds before it grows: its stack, its module and, for a
/// moment, room to compile it (`wasm::budget`; the calibration measures
/// the real figure, which the model uses).
const PROC_BASE: u64 = PROC_STACK_FRAMES + MODULE_FRAMES + 128;
/// How long any wait for a process may take before the test fails.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn wat(text: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(text).expect("lex");
    let mut m: wast::Wat<'_> = wast::parser::parse(&buf).expect("parse");
    m.encode().expect("encode")
}

/// A module with an exported memory of `pages` pages and, with `table`, a
/// funcref table of that many elements. Every export has the type
/// `(i32, i64) -> i64`, so a store links one trampoline for all of them;
/// the sizes are in the memory and table sections only, so the code, and
/// what it costs, is the same for every size.
fn store_module(pages: u64, table: Option<u32>) -> Vec<u8> {
    let (decl, funcs) = match table {
        Some(n) => (
            format!("(table {n} funcref)"),
            r#"
  (func (export "tgrow") (param i32 i64) (result i64)
    (i64.extend_i32_s (table.grow (ref.null func) (local.get 0))))
  (func (export "tsize") (param i32 i64) (result i64)
    (i64.extend_i32_u (table.size)))"#,
        ),
        None => (String::new(), ""),
    };
    wat(&format!(
        r#"(module
  (memory (export "mem") {pages})
  {decl}
  (func (export "grow") (param i32 i64) (result i64)
    (i64.extend_i32_s (memory.grow (local.get 0))))
  (func (export "size") (param i32 i64) (result i64)
    (i64.extend_i32_u (memory.size)))
  (func (export "poke") (param i32 i64) (result i64)
    (i64.store (local.get 0) (local.get 1))
    (i64.load (local.get 0)))
{funcs})"#
    ))
}

/// A process that says it is ready (an empty message on handle 1), waits
/// for the go (a message on handle 0), then grows its memory (initially
/// empty) by each of `grows` in turn, and after each grow that succeeds
/// writes a word into every page and reads them all back. It exits with
/// bit `i` set when grow `i` succeeded, or 256 if a word read back wrong.
/// The deltas are globals, so the code is the same for every delta.
fn process_module(grows: [u32; 3]) -> Arc<[u8]> {
    let [d0, d1, d2] = grows;
    wat(&format!(
        r#"(module
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
  (memory 0)
  (global $d0 i32 (i32.const {d0}))
  (global $d1 i32 (i32.const {d1}))
  (global $d2 i32 (i32.const {d2}))
  (func $touch (result i32)
    (local $p i32)
    (block $done
      (loop $write
        (br_if $done (i32.ge_u (local.get $p) (memory.size)))
        (i64.store (i32.mul (local.get $p) (i32.const 65536))
          (i64.extend_i32_u (i32.add (local.get $p) (i32.const 1))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $write)))
    (local.set $p (i32.const 0))
    (block $done
      (loop $read
        (br_if $done (i32.ge_u (local.get $p) (memory.size)))
        (if (i64.ne (i64.load (i32.mul (local.get $p) (i32.const 65536)))
              (i64.extend_i32_u (i32.add (local.get $p) (i32.const 1))))
          (then (return (i32.const 1))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $read)))
    (i32.const 0))
  (func $grow (param $d i32) (param $bit i32) (result i32)
    (if (result i32) (i32.eq (memory.grow (local.get $d)) (i32.const -1))
      (then (i32.const 0))
      (else (if (result i32) (call $touch)
        (then (i32.const 256))
        (else (local.get $bit))))))
  (func (export "_start") (result i32)
    (drop (call $send (i32.const 1) (i32.const 0) (i32.const 0)))
    (drop (call $recv (i32.const 0) (i32.const 0) (i32.const 0)))
    (i32.or (call $grow (global.get $d0) (i32.const 1))
      (i32.or (call $grow (global.get $d1) (i32.const 2))
        (call $grow (global.get $d2) (i32.const 4))))))"#
    ))
    .into()
}

/// One step of a sequence. Indices are taken modulo what exists; a step
/// on an empty slot or an instance without a table does nothing.
#[derive(Clone, Debug)]
enum Op {
    /// Instantiate a module with a memory of `pages` pages and maybe a
    /// table in the store of `slot`, made for `OWNERS[owner]` if the slot
    /// is empty (else the store's owner is kept). Modules of one shape and
    /// `variant` are one compiled module, whose code every store holding
    /// an instance shares; other variants are compiled apart (same code,
    /// another code object).
    Instantiate {
        slot: usize,
        owner: usize,
        pages: u64,
        table: Option<u32>,
        variant: u16,
    },
    /// `memory.grow` by `delta` pages.
    Grow {
        slot: usize,
        inst: usize,
        delta: u32,
    },
    /// Store `value` at word `word` of page `page` (modulo the memory's
    /// pages plus two: the last two are out of bounds) and load it back.
    Touch {
        slot: usize,
        inst: usize,
        page: u64,
        word: u32,
        value: i64,
    },
    /// `table.grow` by `delta` null elements.
    TableGrow {
        slot: usize,
        inst: usize,
        delta: u32,
    },
    /// Drop the store of `slot`: its instances, memories, tables, code.
    Drop { slot: usize },
    /// Set the limit of `OWNERS[owner]`.
    SetLimit { owner: usize, frames: u64 },
    /// Spawn a process limited to `limit` frames that grows by `grows`
    /// (see [`process_module`]) and wait for it.
    Spawn { limit: u64, grows: [u32; 3] },
}

fn op() -> impl Strategy<Value = Op> {
    use proptest::sample::select;
    let slot = 0..SLOTS;
    prop_oneof![
        3 => (slot.clone(), 0..OWNERS.len(), select(&PAGES[..]), proptest::option::of(select(&TABLES[..])), 0..2u16)
            .prop_map(|(slot, owner, pages, table, variant)| Op::Instantiate { slot, owner, pages, table, variant }),
        4 => (slot.clone(), 0..4usize, select(&GROWS[..]))
            .prop_map(|(slot, inst, delta)| Op::Grow { slot, inst, delta }),
        6 => (slot.clone(), 0..4usize, any::<u64>(), 0..8192u32, 1..i64::MAX)
            .prop_map(|(slot, inst, page, word, value)| Op::Touch { slot, inst, page, word, value }),
        2 => (slot.clone(), 0..4usize, select(&TABLE_GROWS[..]))
            .prop_map(|(slot, inst, delta)| Op::TableGrow { slot, inst, delta }),
        1 => slot.prop_map(|slot| Op::Drop { slot }),
        1 => (1..OWNERS.len(), select(&LIMIT_CHOICES[..]))
            .prop_map(|(owner, frames)| Op::SetLimit { owner, frames }),
        1 => (select(&PROC_LIMITS[..]), [select(&PROC_GROWS[..]), select(&PROC_GROWS[..]), select(&PROC_GROWS[..])])
            .prop_map(|(limit, grows)| Op::Spawn { limit, grows }),
    ]
}

/// How a step that commits memory came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// The owner's limit refused the charge.
    Limit,
    /// The machine's unpromised frames could not back it.
    Frames,
    /// A code object could not be had.
    Link,
}

fn outcome_of(e: &InstantiateError) -> Result<Outcome, ModelError> {
    match e {
        InstantiateError::Link(_) => Ok(Outcome::Link),
        InstantiateError::Memory(MemError::Vm(VmError::LimitExceeded)) => Ok(Outcome::Limit),
        InstantiateError::Memory(MemError::Vm(VmError::OutOfFrames)) => Ok(Outcome::Frames),
        e => Err(ModelError::Kernel(format!("instantiate: {e:?}"))),
    }
}

/// Elements a table block holds once a table has `len` elements
/// (`table.rs`: a power of two, at least a page, at most the limit).
fn capacity(len: u32) -> u32 {
    len.checked_next_power_of_two()
        .unwrap_or(u32::MAX)
        .max(ELEMS_PER_FRAME)
        .min(MAX_TABLE_ELEMS.next_multiple_of(ELEMS_PER_FRAME))
}

/// Frames of code the kernel takes, measured once at the start.
#[derive(Clone, Copy, Debug, Default)]
struct Costs {
    /// One instance's code, without and with a table.
    code: [u64; 2],
    /// A store's trampoline (one signature).
    tramp: u64,
    /// A spawned process's code (its instance, host thunks, trampoline).
    process: u64,
    /// Frames a spawned process's compilation holds at its peak, from its
    /// own account (`wasm::budget`), between its stack and its code.
    compile: u64,
    /// Frames a ready process holds beyond its module and stack: what its
    /// module and instance keep (`wasm::retained`), until it ends.
    kept: u64,
}

/// A budget that holds everything and records the peak, in frames as the
/// kernel charges them (each hold rounded up to a frame).
#[derive(Default)]
struct Peak {
    held: u64,
    peak: u64,
}

impl Budget for Peak {
    fn hold(&mut self, bytes: u64) -> bool {
        self.held += bytes.div_ceil(4096);
        self.peak = self.peak.max(self.held);
        true
    }

    fn release(&mut self, bytes: u64) {
        self.held -= bytes.div_ceil(4096);
    }
}

/// A store module's memory pages, table elements and variant.
type ModuleKey = (u64, Option<u32>, u16);

/// Compiled modules by size, the calibrated costs and the counters of
/// what the sequences reached; shared by every sequence.
struct Library {
    /// The test's own modules are compiled outside any budget: what the
    /// model watches is their instances.
    compiler: Compiler,
    modules: RefCell<HashMap<ModuleKey, Arc<CompiledModule>>>,
    costs: Costs,
    stats: RefCell<BTreeMap<&'static str, u64>>,
}

impl Library {
    fn module(&self, key: ModuleKey) -> Result<Arc<CompiledModule>, ModelError> {
        let (pages, table, _) = key;
        if let Some(m) = self.modules.borrow().get(&key) {
            return Ok(m.clone());
        }
        let m = compile_module(
            &store_module(pages, table),
            &TranslateConfig::default(),
            &self.compiler,
        )
        .map(Arc::new)
        .map_err(|e| ModelError::Kernel(format!("compile: {e}")))?;
        self.modules.borrow_mut().insert(key, m.clone());
        Ok(m)
    }

    fn bump(&self, what: &'static str) {
        *self.stats.borrow_mut().entry(what).or_default() += 1;
    }
}

/// The machine's state between sequences.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Baseline {
    free: u64,
    promised: u64,
    charges: [u64; 4],
    regions: usize,
}

impl Baseline {
    fn of(k: &Kernel<'_, Hosted>) -> Self {
        Self {
            free: k.frames().free_frames(),
            promised: k.frames().promised_frames(),
            charges: OWNERS.map(|o| k.vm().owner_frames(o)),
            regions: k.vm().region_count(),
        }
    }
}

#[derive(Debug)]
struct MemM {
    /// Store index of the memory.
    index: usize,
    pages: u64,
    touched: BTreeSet<u64>,
    words: BTreeMap<u64, i64>,
}

#[derive(Debug)]
struct TableM {
    len: u32,
    /// Elements of the committed block (0: none).
    cap: u32,
}

impl TableM {
    fn frames(&self) -> u64 {
        u64::from(self.cap / ELEMS_PER_FRAME)
    }
}

struct InstM {
    mem: MemM,
    table: Option<TableM>,
    funcs: HashMap<&'static str, Func>,
}

struct StoreM<'k, 'h> {
    store: Store<'k, 'h, Hosted>,
    owner: usize,
    instances: Vec<InstM>,
    /// Pages of memories that failed instantiations left in the store.
    orphan_pages: u64,
    /// The modules (by shape key) whose code its instances hold: a
    /// module's code is linked once and shared by every store holding it
    /// (`code` INV-CODE-5).
    modules: BTreeSet<ModuleKey>,
    /// Whether the trampoline is linked.
    tramp: bool,
    /// Frames held for what its instances keep (`wasm::retained`): charged
    /// and promised, never resident, until the store is dropped.
    kept: u64,
}

impl StoreM<'_, '_> {
    fn committed(&self) -> u64 {
        let inst: u64 = self
            .instances
            .iter()
            .map(|i| i.mem.pages * PAGE_FRAMES + i.table.as_ref().map_or(0, TableM::frames))
            .sum();
        inst + self.orphan_pages * PAGE_FRAMES + self.kept
    }

    fn resident(&self) -> u64 {
        self.instances
            .iter()
            .map(|i| {
                i.mem.touched.len() as u64 * PAGE_FRAMES
                    + i.table.as_ref().map_or(0, TableM::frames)
            })
            .sum()
    }
}

/// What a spawn step saw.
#[derive(Debug)]
struct Spawned {
    pid: Pid,
    /// Unpromised frames before the spawn.
    before: u64,
    /// Unpromised frames and the process's charge once it said ready.
    ready: Option<(u64, u64)>,
    status: Option<ExitStatus>,
}

/// The word at `va`, a written (so resident) word of a live memory.
fn read(va: usize) -> i64 {
    // SAFETY: the model wrote this word through wasm, so its page is
    // committed, resident and readable in a memory that lives while the
    // model holds its store; the test runs on the kernel's CPU.
    unsafe { std::ptr::read_volatile(va as *const i64) }
}

fn unpromised(k: &Kernel<'_, Hosted>) -> u64 {
    k.frames()
        .free_frames()
        .saturating_sub(k.frames().promised_frames())
}

/// Spawn `module` limited to `limit` frames in a process scope of its own,
/// measure the machine once it is ready, let it go and wait for it.
/// `None` when the spawn itself is refused (no frames for the module).
fn spawn(
    k: &Kernel<'_, Hosted>,
    module: Arc<[u8]>,
    limit: u64,
) -> Result<Option<Spawned>, ModelError> {
    let r = kernel_core::boot::with_executor(k, |exec| {
        proc::run(k, exec, SpawnOptions::default(), |procs| async move {
            let (go_tx, go_rx) = proc::new_channel(k.hal(), 1);
            let (ready_tx, ready_rx) = proc::new_channel(k.hal(), 1);
            let before = unpromised(k);
            let options = SpawnOptions {
                stack: PROC_STACK,
                memory_limit: limit,
                ..procs.defaults()
            };
            let handles = vec![Object::Receiver(go_rx), Object::Sender(ready_tx)];
            let pid = procs.spawn("grower", module, handles, options).ok()?;
            // The ready message is lost only when the process never ran
            // (its handles are dropped, closing the channel).
            let ready = match procs.exec().timeout(HANG_GUARD, ready_rx.recv()).await {
                Ok(Ok(_)) => Some((unpromised(k), k.vm().owner_frames(Owner::Process(pid)))),
                _ => None,
            };
            if ready.is_some() {
                let _ = go_tx.send(proc::Message::new(Vec::new())).await;
            }
            let status = procs
                .exec()
                .timeout(HANG_GUARD, procs.wait(pid))
                .await
                .ok()
                .flatten();
            Some(Spawned {
                pid,
                before,
                ready,
                status,
            })
        })
    });
    r.map_err(|e| ModelError::Kernel(format!("process scope: {e:?}")))
}

/// The model of one sequence and the machine it runs on.
struct Model<'a, 'k, 'h> {
    k: &'k Kernel<'h, Hosted>,
    lib: &'a Library,
    base: &'a Baseline,
    reserve: u64,
    limits: [u64; 4],
    stores: [Option<StoreM<'k, 'h>>; SLOTS],
}

impl<'k, 'h> Model<'_, 'k, 'h> {
    fn new<'a>(
        k: &'k Kernel<'h, Hosted>,
        lib: &'a Library,
        base: &'a Baseline,
    ) -> Model<'a, 'k, 'h> {
        for (o, &limit) in OWNERS[1..].iter().zip(&LIMITS) {
            k.vm().set_limit(*o, limit);
        }
        let [a, b, c] = LIMITS;
        Model {
            k,
            lib,
            base,
            reserve: k.frames().reserved_frames(),
            limits: [k.frames().total_frames(), a, b, c],
            stores: Default::default(),
        }
    }

    fn live(&self) -> impl Iterator<Item = &StoreM<'k, 'h>> {
        self.stores.iter().flatten()
    }

    fn code(&self) -> u64 {
        let modules: BTreeSet<_> = self.live().flat_map(|s| s.modules.iter()).collect();
        let shared: u64 = modules
            .iter()
            .map(|(_, table, _)| self.lib.costs.code[usize::from(table.is_some())])
            .sum();
        let tramps = self.live().filter(|s| s.tramp).count() as u64;
        shared + tramps * self.lib.costs.tramp
    }

    fn resident(&self) -> u64 {
        self.live().map(StoreM::resident).sum()
    }

    fn committed(&self) -> u64 {
        self.live().map(StoreM::committed).sum()
    }

    /// Free frames the model expects.
    fn free(&self) -> Result<u64, ModelError> {
        self.base
            .free
            .checked_sub(self.resident() + self.code())
            .ok_or_else(|| ModelError::Kernel("the model holds more frames than RAM".into()))
    }

    /// Promised frames the model expects.
    fn promised(&self) -> u64 {
        self.base.promised + self.committed() - self.resident()
    }

    /// Frames neither allocated nor promised, as the model sees them.
    fn unpromised(&self) -> Result<u64, ModelError> {
        Ok(self.free()?.saturating_sub(self.promised()))
    }

    fn charge(&self, owner: usize) -> u64 {
        self.base.charges[owner]
            + self
                .live()
                .filter(|s| s.owner == owner)
                .map(StoreM::committed)
                .sum::<u64>()
    }

    /// Whether `owner` may commit `frames` more (after `pending` frames it
    /// has just been charged) with `unpromised` frames unpromised: its
    /// limit is checked first, then the ledger (processes keep off the
    /// reserve).
    fn admit(&self, owner: usize, frames: u64, pending: u64, unpromised: u64) -> Outcome {
        if frames == 0 {
            return Outcome::Ok;
        }
        let total = self.charge(owner).checked_add(pending + frames);
        if total.is_none_or(|t| t > self.limits[owner]) {
            return Outcome::Limit;
        }
        let floor = if owner == 0 { 0 } else { self.reserve };
        if unpromised < frames + floor {
            return Outcome::Frames;
        }
        Outcome::Ok
    }

    /// Frames `owner` may still commit: what its limit and the machine's
    /// unpromised frames (`unpromised`, above its floor) both allow.
    fn room(&self, owner: usize, unpromised: u64) -> u64 {
        let floor = if owner == 0 { 0 } else { self.reserve };
        (self.limits[owner].saturating_sub(self.charge(owner)))
            .min(unpromised.saturating_sub(floor))
    }

    /// The pages a `memory.grow` of `delta` asks for in `slot`'s store:
    /// [`FILL`] and [`FILL_OVER`] become as many as its owner has room for
    /// (after the store's trampoline, if its first call links it), and one
    /// more.
    fn resolve(&self, slot: usize, delta: u32) -> Result<u32, ModelError> {
        if delta < FILL_OVER {
            return Ok(delta);
        }
        let Some(s) = self.stores[slot].as_ref() else {
            return Ok(0);
        };
        let mut unpromised = self.unpromised()?;
        if !s.tramp && unpromised >= self.lib.costs.tramp {
            unpromised -= self.lib.costs.tramp;
        }
        let pages = self.room(s.owner, unpromised) / PAGE_FRAMES + u64::from(delta == FILL_OVER);
        Ok(u32::try_from(pages).unwrap_or(u32::MAX))
    }

    /// No block of `order` can be taken or promised without stranding a
    /// promise (INV-MEM-3): an allocation of that order can fail with
    /// frames free (fragmentation).
    fn fragmented(&self, order: u32) -> bool {
        self.placeable(order) == 0
    }

    /// Blocks of `order` that could still be promised (INV-MEM-3).
    fn placeable(&self, order: u32) -> u64 {
        self.k.frames().placeable_blocks(order)
    }

    /// The instance `inst` (modulo) of `slot`'s store, if any.
    fn pick(&self, slot: usize, inst: usize) -> Option<usize> {
        let s = self.stores[slot].as_ref()?;
        (!s.instances.is_empty()).then(|| inst % s.instances.len())
    }

    /// Call export `name` of instance `i` of `slot`'s store with `(a, b)`.
    /// The store's first call links its trampoline; `Ok(None)` when that
    /// failed, as the model predicted (nothing ran).
    fn call(
        &mut self,
        slot: usize,
        i: usize,
        name: &str,
        a: i32,
        b: i64,
    ) -> Result<Option<Result<i64, Trap>>, ModelError> {
        let unpromised = self.unpromised()?;
        let tramp = self.lib.costs.tramp;
        let fragmented = self.fragmented(kernel_core::mem::order_for(tramp));
        let lib = self.lib;
        let s = self.stores[slot]
            .as_mut()
            .ok_or_else(|| ModelError::Kernel("no store".into()))?;
        let func = s.instances[i]
            .funcs
            .get(name)
            .ok_or_else(|| ModelError::Kernel(format!("no export {name}")))?
            .clone();
        let link_fails = !s.tramp && unpromised < tramp;
        let got = s.store.invoke(&func, &[Val::I32(a), Val::I64(b)]);
        if let Err(CallError::Link(_)) = got {
            if link_fails {
                return Ok(None);
            }
            if !s.tramp && fragmented {
                lib.bump("trampoline refused: fragmented");
                return Ok(None);
            }
        }
        ensure_eq!(
            matches!(got, Err(CallError::Link(_))),
            link_fails,
            "{name}: the trampoline's link fails"
        );
        s.tramp = true;
        match got {
            Ok(v) => match v.as_slice() {
                [Val::I64(x)] => Ok(Some(Ok(*x))),
                other => Err(ModelError::Kernel(format!("{name} returned {other:?}"))),
            },
            Err(CallError::Trap(t)) => Ok(Some(Err(t))),
            Err(e) => Err(ModelError::Kernel(format!("{name}: {e}"))),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), ModelError> {
        match *op {
            Op::Instantiate {
                slot,
                owner,
                pages,
                table,
                variant,
            } => self.instantiate(slot, owner, (pages, table, variant)),
            Op::Grow { slot, inst, delta } => self.grow(slot, inst, delta),
            Op::Touch {
                slot,
                inst,
                page,
                word,
                value,
            } => self.touch(slot, inst, page, word, value),
            Op::TableGrow { slot, inst, delta } => self.table_grow(slot, inst, delta),
            Op::Drop { slot } => {
                self.stores[slot] = None;
                Ok(())
            }
            Op::SetLimit { owner, frames } => {
                self.k.vm().set_limit(OWNERS[owner], frames);
                self.limits[owner] = frames;
                Ok(())
            }
            Op::Spawn { limit, grows } => self.spawn(limit, grows),
        }
    }

    fn instantiate(&mut self, slot: usize, owner: usize, key: ModuleKey) -> Result<(), ModelError> {
        let (pages, table, _) = key;
        if self.stores[slot].is_none() {
            let mut store = Store::new(self.k, STACK_BUDGET)
                .map_err(|e| ModelError::Kernel(format!("store: {e}")))?;
            store.set_memory_owner(OWNERS[owner]);
            self.stores[slot] = Some(StoreM {
                store,
                owner,
                instances: Vec::new(),
                orphan_pages: 0,
                modules: BTreeSet::new(),
                tramp: false,
                kept: 0,
            });
        }
        let module = self.lib.module(key)?;
        // Another store holding the module shares its code: none to link.
        let shared = self.live().any(|s| s.modules.contains(&key));
        let code = if shared {
            0
        } else {
            self.lib.costs.code[usize::from(table.is_some())]
        };
        let unpromised = self.unpromised()?;
        let fragmented = code > 0 && self.fragmented(kernel_core::mem::order_for(code));
        let Some(s) = self.stores[slot].as_ref() else {
            return Ok(());
        };
        let owner = s.owner;
        let mem = pages * PAGE_FRAMES;
        let tab = table
            .filter(|&n| n > 0)
            .map_or(0, |n| u64::from(capacity(n) / ELEMS_PER_FRAME));
        // What the instance keeps first (held from its owner), then code
        // (the kernel's, unpromised), then the memory, then the table: a
        // failure leaves what came before in the store.
        let kept = retained::instance_cost(&module).div_ceil(4096);
        let (want, held, linked, orphan) = match self.admit(owner, kept, 0, unpromised) {
            Outcome::Ok if unpromised - kept < code => (Outcome::Link, kept, false, 0),
            Outcome::Ok => {
                let left = unpromised - kept - code;
                match self.admit(owner, mem, kept, left) {
                    Outcome::Ok => match self.admit(owner, tab, kept + mem, left - mem) {
                        Outcome::Ok => (Outcome::Ok, kept, true, 0),
                        e => (e, kept, true, pages),
                    },
                    e => (e, kept, true, 0),
                }
            }
            e => (e, 0, false, 0),
        };
        let lib = self.lib;
        let Some(s) = self.stores[slot].as_mut() else {
            return Ok(());
        };
        let got = s.store.instantiate(&module, &|_, _| None);
        s.kept += held;
        let got_outcome = match &got {
            Ok(_) => Outcome::Ok,
            Err(e) => outcome_of(e)?,
        };
        // Enough frames for the memory, but not in blocks a promise can
        // have (INV-MEM-3).
        let want = if want == Outcome::Ok
            && got_outcome == Outcome::Frames
            && self.k.frames().placeable_blocks(PAGE_ORDER) < pages
        {
            lib.bump("instantiate: out of blocks, fragmented");
            Outcome::Frames
        } else {
            want
        };
        if got_outcome == Outcome::Link && want != Outcome::Link && fragmented {
            lib.bump("code refused: fragmented");
            return Ok(());
        }
        ensure_eq!(
            got_outcome,
            want,
            "instantiate {pages} pages, table {table:?}, owner {owner}"
        );
        lib.bump(match want {
            Outcome::Ok => "instantiate: ok",
            Outcome::Limit => "instantiate: over the limit",
            Outcome::Frames => "instantiate: out of frames",
            Outcome::Link => "instantiate: no frames for code",
        });
        if linked {
            s.modules.insert(key);
        }
        s.orphan_pages += orphan;
        let Ok(id) = got else {
            return Ok(());
        };
        let mut names = vec!["grow", "size", "poke"];
        if table.is_some() {
            names.extend(["tgrow", "tsize"]);
        }
        let mut funcs = HashMap::new();
        for name in names {
            match s.store.export(id, name) {
                Some(Extern::Func(f)) => funcs.insert(name, f),
                other => return Err(ModelError::Kernel(format!("export {name}: {other:?}"))),
            };
        }
        let Some(Extern::Memory(index)) = s.store.export(id, "mem") else {
            return Err(ModelError::Kernel("no memory export".into()));
        };
        s.instances.push(InstM {
            mem: MemM {
                index,
                pages,
                touched: BTreeSet::new(),
                words: BTreeMap::new(),
            },
            table: table.map(|n| TableM {
                len: n,
                cap: if n > 0 { capacity(n) } else { 0 },
            }),
            funcs,
        });
        Ok(())
    }

    fn grow(&mut self, slot: usize, inst: usize, delta: u32) -> Result<(), ModelError> {
        let Some(i) = self.pick(slot, inst) else {
            return Ok(());
        };
        let delta = self.resolve(slot, delta)?;
        let Some(got) = self.call(slot, i, "grow", delta as i32, 0)? else {
            return Ok(());
        };
        // The trampoline is in the model now; the grow is not yet.
        let unpromised = self.unpromised()?;
        let Some(s) = self.stores[slot].as_ref() else {
            return Ok(());
        };
        let frames = u64::from(delta) * PAGE_FRAMES;
        let mut verdict = self.admit(s.owner, frames, 0, unpromised);
        let old = s.instances[i].mem.pages;
        // Enough frames, but not in blocks a promise can have: -1, and
        // nothing changed (INV-MEM-3).
        if verdict == Outcome::Ok
            && matches!(got, Ok(-1))
            && self.placeable(PAGE_ORDER) < u64::from(delta)
        {
            self.lib.bump("memory.grow: -1 fragmented");
            verdict = Outcome::Frames;
        }
        let want = if verdict == Outcome::Ok {
            old as i64
        } else {
            -1
        };
        ensure_eq!(
            got.map_err(|t| t.kind),
            Ok(want),
            "memory.grow({delta}) from {old} pages, owner {}",
            s.owner
        );
        self.lib.bump(match verdict {
            Outcome::Ok => "memory.grow: ok",
            Outcome::Limit => "memory.grow: -1 over the limit",
            _ if unpromised >= frames => "memory.grow: -1 at the reserve",
            _ => "memory.grow: -1 out of frames",
        });
        let owner = s.owner;
        if let Some(s) = self.stores[slot].as_mut()
            && verdict == Outcome::Ok
        {
            s.instances[i].mem.pages += u64::from(delta);
        }
        if owner == 0 && self.unpromised()? < self.reserve {
            self.lib.bump("kernel: committed into the reserve");
        }
        Ok(())
    }

    fn touch(
        &mut self,
        slot: usize,
        inst: usize,
        page: u64,
        word: u32,
        value: i64,
    ) -> Result<(), ModelError> {
        let Some(i) = self.pick(slot, inst) else {
            return Ok(());
        };
        let pages = self.stores[slot]
            .as_ref()
            .map_or(0, |s| s.instances[i].mem.pages);
        let page = page % (pages + 2);
        let addr = page * 65536 + u64::from(word % 8192) * 8;
        let Some(got) = self.call(slot, i, "poke", addr as i32, value)? else {
            return Ok(());
        };
        let Some(s) = self.stores[slot].as_mut() else {
            return Ok(());
        };
        let mem = &mut s.instances[i].mem;
        if page >= pages {
            ensure_eq!(
                got.map_err(|t| t.kind),
                Err(TrapKind::MemoryOutOfBounds),
                "store at page {page} of {pages}"
            );
            self.lib.bump("touch: out of bounds");
            return Ok(());
        }
        // A committed page always finds its block (INV-MEM-2, INV-MEM-3).
        ensure_eq!(
            got.map_err(|t| t.kind),
            Ok(value),
            "store at page {page} of {pages}"
        );
        mem.touched.insert(page);
        mem.words.insert(addr, value);
        self.lib.bump("touch: ok");
        Ok(())
    }

    fn table_grow(&mut self, slot: usize, inst: usize, delta: u32) -> Result<(), ModelError> {
        let Some(i) = self.pick(slot, inst) else {
            return Ok(());
        };
        if self.stores[slot]
            .as_ref()
            .is_none_or(|s| s.instances[i].table.is_none())
        {
            return Ok(());
        }
        let Some(got) = self.call(slot, i, "tgrow", delta as i32, 0)? else {
            return Ok(());
        };
        let unpromised = self.unpromised()?;
        let Some(s) = self.stores[slot].as_ref() else {
            return Ok(());
        };
        let Some(t) = s.instances[i].table.as_ref() else {
            return Ok(());
        };
        let new = t.len + delta;
        // Past its block, a table commits a block twice as large (or
        // more) before it releases the old one.
        let (verdict, cap) = if new <= t.cap {
            (Outcome::Ok, t.cap)
        } else {
            let cap = capacity(new);
            let frames = u64::from(cap / ELEMS_PER_FRAME);
            (self.admit(s.owner, frames, 0, unpromised), cap)
        };
        let want = if verdict == Outcome::Ok {
            i64::from(t.len)
        } else {
            -1
        };
        ensure_eq!(
            got.map_err(|t| t.kind),
            Ok(want),
            "table.grow({delta}) from {} elements, owner {}",
            t.len,
            s.owner
        );
        self.lib.bump(match verdict {
            Outcome::Ok => "table.grow: ok",
            Outcome::Limit => "table.grow: -1 over the limit",
            _ => "table.grow: -1 out of frames",
        });
        let len = if verdict == Outcome::Ok { new } else { t.len };
        if let Some(t) = self.stores[slot]
            .as_mut()
            .and_then(|s| s.instances[i].table.as_mut())
            && verdict == Outcome::Ok
        {
            t.len = new;
            t.cap = cap;
        }
        let size = self.call(slot, i, "tsize", 0, 0)?;
        ensure_eq!(
            size.map(|r| r.map_err(|t| t.kind)),
            Some(Ok(i64::from(len))),
            "table.size"
        );
        Ok(())
    }

    fn spawn(&mut self, limit: u64, grows: [u32; 3]) -> Result<(), ModelError> {
        let before = self.unpromised()?;
        let stack = PROC_STACK_FRAMES;
        // The module's bytes are held first, then the stack is committed,
        // both at the spawn (which is refused when either cannot be had),
        // under the process's limit and above the reserve; then its code
        // (the kernel's); then nothing until it grows.
        let held = MODULE_FRAMES + stack;
        let stacked = held <= limit && before >= held + self.reserve;
        let refused = !stacked;
        // Then its compilation holds its peak for a moment.
        let compile = self.lib.costs.compile;
        let compiled =
            stacked && held + compile <= limit && before >= held + compile + self.reserve;
        let kept = self.lib.costs.kept;
        let ready = compiled
            .then(|| before.checked_sub(held + kept + self.lib.costs.process))
            .flatten();
        let (mut unpromised, mut charge, mut mask) = (ready.unwrap_or(0), held + kept, 0);
        let mut deltas = [0; 3];
        for (bit, &grow) in grows.iter().enumerate().filter(|_| ready.is_some()) {
            let room = (limit.saturating_sub(charge)).min(unpromised.saturating_sub(self.reserve))
                / PAGE_FRAMES;
            let delta = match grow {
                FILL => room,
                FILL_OVER => room + 1,
                d => u64::from(d),
            };
            deltas[bit] = u32::try_from(delta).unwrap_or(u32::MAX);
            let frames = delta * PAGE_FRAMES;
            if frames == 0 || (charge + frames <= limit && unpromised >= frames + self.reserve) {
                mask |= 1 << bit;
                charge += frames;
                unpromised -= frames;
                self.lib.bump(if frames > 0 {
                    "process memory.grow: ok"
                } else {
                    "process memory.grow: zero"
                });
            } else if charge + frames > limit {
                self.lib.bump("process memory.grow: -1 over the limit");
            } else if unpromised >= frames {
                self.lib.bump("process memory.grow: -1 at the reserve");
            } else {
                self.lib.bump("process memory.grow: -1 out of frames");
            }
        }
        let module = process_module(deltas);
        ensure_eq!(
            module.len().div_ceil(4096) as u64,
            MODULE_FRAMES,
            "frames of the process module"
        );
        let got = spawn(self.k, module, limit)?;
        ensure_eq!(got.is_none(), refused, "spawn refused, {before} unpromised");
        let Some(got) = got else {
            self.lib.bump(if before < MODULE_FRAMES + self.reserve {
                "spawn: refused: no room for the module"
            } else {
                "spawn: refused: no stack"
            });
            return Ok(());
        };
        ensure_eq!(got.before, before, "unpromised frames before the spawn");
        ensure_eq!(
            self.k.vm().owner_frames(Owner::Process(got.pid)),
            0,
            "charge of process {} after it ended",
            got.pid.0
        );
        let Some(ready) = ready else {
            ensure_eq!(got.ready, None, "process ready without code");
            ensure_eq!(got.status, Some(ExitStatus::Failed(LoadError::OutOfMemory)));
            self.lib.bump("spawn: no memory to compile");
            return Ok(());
        };
        ensure_eq!(
            got.ready,
            Some((ready, held + kept)),
            "unpromised and charge at ready"
        );
        ensure_eq!(
            got.status,
            Some(ExitStatus::Exited(mask)),
            "grows {deltas:?}, limit {limit}"
        );
        self.lib.bump("spawn: ran");
        Ok(())
    }

    /// The identities of the module doc, every memory's size and resident
    /// granules, and every word written.
    fn check(&self) -> Result<(), ModelError> {
        let frames = self.k.frames();
        let vm = self.k.vm();
        ensure_eq!(frames.free_frames(), self.free()?, "free frames");
        ensure_eq!(frames.promised_frames(), self.promised(), "promised frames");
        for (o, owner) in OWNERS.iter().enumerate() {
            ensure_eq!(
                vm.owner_frames(*owner),
                self.charge(o),
                "charge of {owner:?}"
            );
        }
        for s in self.live() {
            for inst in &s.instances {
                let m = s
                    .store
                    .memory(inst.mem.index)
                    .ok_or_else(|| ModelError::Kernel("memory gone".into()))?;
                ensure_eq!(m.pages(), inst.mem.pages, "pages of a memory");
                if inst.mem.pages == 0 {
                    // Nothing to be resident (the free-frame identity would
                    // show a frame there), and `Vm::resident` scans all
                    // 65,536 granules of the reservation.
                    continue;
                }
                ensure_eq!(
                    vm.resident(m.base()),
                    Some(inst.mem.touched.len()),
                    "resident pages of a memory"
                );
                for (&addr, &value) in &inst.mem.words {
                    ensure_eq!(read(m.base() + addr as usize), value, "word at {addr:#x}");
                }
            }
        }
        Ok(())
    }

    /// Drop every store; every frame, promise, charge and region must be
    /// back where the sequence started.
    fn finish(&mut self) -> Result<(), ModelError> {
        self.stores = Default::default();
        self.check()?;
        ensure_eq!(
            Baseline::of(self.k),
            *self.base,
            "the machine after a sequence"
        );
        Ok(())
    }
}

/// Run `ops` on a fresh model; clean up even when it fails.
fn run<'k, 'h>(
    k: &'k Kernel<'h, Hosted>,
    lib: &Library,
    base: &Baseline,
    ops: &[Op],
) -> Result<(), ModelError> {
    run_then(k, lib, base, ops, |_| Ok(()))
}

/// [`run`], then `then` on the model before it drops everything (the
/// model is checked again after it); `then`'s result.
fn run_then<'k, 'h, T>(
    k: &'k Kernel<'h, Hosted>,
    lib: &Library,
    base: &Baseline,
    ops: &[Op],
    then: impl FnOnce(&Model<'_, 'k, 'h>) -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    let mut m = Model::new(k, lib, base);
    let mut outcome = m.check();
    for op in ops {
        if outcome.is_err() {
            break;
        }
        outcome = m.apply(op).and_then(|()| m.check());
    }
    let result = outcome
        .and_then(|()| then(&m))
        .and_then(|t| m.check().map(|()| t));
    let end = m.finish();
    result.and_then(|t| end.map(|()| t))
}

/// Measure what code costs: one instance of each shape and a trampoline
/// in a throwaway store, and one spawned process.
fn calibrate<'k, 'h>(k: &'k Kernel<'h, Hosted>) -> Result<Library, ModelError> {
    let compiler = Compiler::host().map_err(|e| ModelError::Kernel(e.to_string()))?;
    let mut lib = Library {
        compiler,
        modules: RefCell::new(HashMap::new()),
        costs: Costs::default(),
        stats: RefCell::new(BTreeMap::new()),
    };
    let free = || k.frames().free_frames();
    for (shape, table) in [None, Some(0)].into_iter().enumerate() {
        let module = lib.module((0, table, 0))?;
        let f0 = free();
        let mut store =
            Store::new(k, STACK_BUDGET).map_err(|e| ModelError::Kernel(e.to_string()))?;
        let id = store
            .instantiate(&module, &|_, _| None)
            .map_err(|e| ModelError::Kernel(format!("{e:?}")))?;
        let f1 = free();
        let Some(Extern::Func(size)) = store.export(id, "size") else {
            return Err(ModelError::Kernel("no size export".into()));
        };
        let r = store.invoke(&size, &[Val::I32(0), Val::I64(0)]);
        ensure_eq!(r, Ok(vec![Val::I64(0)]), "memory.size");
        let f2 = free();
        // A second instance shares the code, and the trampoline.
        store
            .instantiate(&module, &|_, _| None)
            .map_err(|e| ModelError::Kernel(format!("{e:?}")))?;
        let f3 = free();
        ensure_eq!(f2 - f3, 0, "code of a second instance");
        lib.costs.code[shape] = f0 - f1;
        lib.costs.tramp = f1 - f2;
        drop(store);
        ensure_eq!(free(), f0, "frames after the calibration store");
    }
    let mut peak = Peak::default();
    compile_module_within(
        &process_module([0; 3]),
        &TranslateConfig::default(),
        &lib.compiler,
        &mut peak,
    )
    .map_err(|e| ModelError::Kernel(format!("compile: {e}")))?;
    lib.costs.compile = peak.peak;
    let module_kept = peak.held;
    let limit = 1 << 20;
    let got = spawn(k, process_module([0; 3]), limit)?
        .ok_or_else(|| ModelError::Kernel("calibration spawn refused".into()))?;
    let Some((ready, charge)) = got.ready else {
        return Err(ModelError::Kernel(format!(
            "calibration process: {:?}",
            got.status
        )));
    };
    // What the module keeps, and one frame or so for its instance.
    let kept = charge.checked_sub(MODULE_FRAMES + PROC_STACK_FRAMES + module_kept);
    ensure_eq!(
        kept.is_some_and(|k| (1..=4).contains(&k)),
        true,
        "a process's charge at ready: {charge}"
    );
    lib.costs.kept = charge - MODULE_FRAMES - PROC_STACK_FRAMES;
    ensure_eq!(
        got.status,
        Some(ExitStatus::Exited(7)),
        "calibration process"
    );
    lib.costs.process = got.before - charge - ready;
    Ok(lib)
}

fn machine() -> Hosted {
    Hosted::new(&Config {
        cpus: 1,
        memory: MEMORY,
        // Room for a thousand 4 GiB memory reservations.
        window: 1 << 43,
        ..Config::default()
    })
    .expect("machine")
}

/// Boot a machine and run `f` with the calibrated library and the
/// machine's baseline on its CPU 0; `f`'s result.
fn on_machine<T: Send>(
    f: impl for<'k, 'h> FnOnce(&'k Kernel<'h, Hosted>, &Library, &Baseline) -> T + Send,
) -> T {
    let out = Mutex::new(None);
    let hosted = machine();
    let status = hal_hosted::boot_into(&hosted, |k| {
        // The model predicts every frame; it does not model the kernel's
        // pool of idle regions (`tests/tests/instance_pool.rs` does), so
        // the pool keeps nothing here: a region given back is released.
        k.regions().set_max_slots(k.vm(), 0);
        let r = calibrate(k).map(|lib| {
            let base = Baseline::of(k);
            f(k, &lib, &base)
        });
        *out.lock().expect("result lock") = Some(r);
        0
    })
    .expect("boot");
    assert_eq!(status, 0);
    match out
        .into_inner()
        .expect("result lock")
        .expect("the workload ran")
    {
        Ok(t) => t,
        Err(e) => panic!("calibration: {e}"),
    }
}

/// The run's outcome is success and it reached every outcome in `wanted`
/// (the statistics are printed either way).
fn expect_reached<E: std::fmt::Display>(
    result: Result<(), E>,
    stats: &BTreeMap<&'static str, u64>,
    wanted: &[&str],
) {
    eprintln!("{stats:#?}");
    if let Err(e) = result {
        panic!("{e}");
    }
    for reached in wanted {
        assert!(stats.contains_key(reached), "not reached: {reached}");
    }
}

#[test]
fn commitments_match_model() {
    let (result, stats) = on_machine(|k, lib, base| {
        let mut runner = TestRunner::new(PtConfig {
            cases: 64,
            failure_persistence: None,
            ..PtConfig::default()
        });
        let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
            run(k, lib, base, &ops).map_err(|e| TestCaseError::fail(e.to_string()))
        });
        (
            result.map_err(|e| e.to_string()),
            lib.stats.borrow().clone(),
        )
    });
    // Outcomes every run of this many sequences reaches many times over.
    expect_reached(
        result,
        &stats,
        &[
            "instantiate: ok",
            "instantiate: over the limit",
            "memory.grow: ok",
            "memory.grow: -1 over the limit",
            "memory.grow: -1 out of frames",
            "table.grow: ok",
            "touch: ok",
            "touch: out of bounds",
            "spawn: ran",
            "process memory.grow: ok",
        ],
    );
}

/// A fixed sequence through the same model, for paths random ones reach
/// only now and then: a process fills the machine down to the kernel's
/// reserve and is refused one page more; a spawn finds no room for its
/// stack; the kernel commits the reserve itself and touches every page it
/// committed there; a drop makes room, and a process fills the machine
/// again.
#[test]
fn the_reserve_is_the_kernels_and_a_full_machine_refuses_cleanly() {
    let mut ops = vec![
        Op::Instantiate {
            slot: 0,
            owner: 3,
            pages: 200,
            table: Some(1),
            variant: 0,
        },
        Op::Grow {
            slot: 0,
            inst: 0,
            delta: FILL,
        },
        Op::Grow {
            slot: 0,
            inst: 0,
            delta: 1,
        },
        Op::TableGrow {
            slot: 0,
            inst: 0,
            delta: 20_000,
        },
        Op::Spawn {
            limit: 1 << 20,
            grows: [0; 3],
        },
        Op::Instantiate {
            slot: 1,
            owner: 0,
            pages: 2,
            table: None,
            variant: 0,
        },
        Op::Grow {
            slot: 1,
            inst: 0,
            delta: FILL,
        },
        Op::Grow {
            slot: 1,
            inst: 0,
            delta: FILL_OVER,
        },
    ];
    ops.extend((0..24u32).map(|page| Op::Touch {
        slot: 1,
        inst: 0,
        page: u64::from(page),
        word: page * 7,
        value: i64::from(page) + 1,
    }));
    ops.extend([
        Op::Drop { slot: 0 },
        Op::Spawn {
            limit: 1 << 20,
            grows: [FILL, FILL_OVER, 1],
        },
        Op::Drop { slot: 1 },
    ]);
    let (result, stats) =
        on_machine(|k, lib, base| (run(k, lib, base, &ops), lib.stats.borrow().clone()));
    expect_reached(
        result,
        &stats,
        &[
            "memory.grow: -1 at the reserve",
            "table.grow: -1 out of frames",
            "spawn: refused: no stack",
            "kernel: committed into the reserve",
            "touch: ok",
            "spawn: ran",
            "process memory.grow: -1 at the reserve",
        ],
    );
}

/// Fragmentation on purpose: 128 one-frame code objects made by two
/// stores in turn, one store's dropped, leave eight 16-frame blocks half
/// free; the kernel then commits every frame it may and touches every
/// page. Pages whose block a promise could not have are refused up front
/// (`memory.grow` is -1 exactly when the kernel reports too few placeable
/// blocks); every page granted is backed, and every touch lands
/// (INV-MEM-3). The kernel never faults, and every frame comes back.
#[test]
fn fragmentation_never_leaves_a_kernel_page_without_a_block() {
    let code = |slot, variant| Op::Instantiate {
        slot,
        owner: 0,
        pages: 0,
        table: None,
        variant,
    };
    let mut ops: Vec<Op> = (0..128u16).map(|i| code(usize::from(i % 2), i)).collect();
    ops.extend([
        Op::Drop { slot: 0 },
        Op::Instantiate {
            slot: 2,
            owner: 0,
            pages: 1,
            table: None,
            variant: 0,
        },
        Op::Grow {
            slot: 2,
            inst: 0,
            delta: FILL,
        },
    ]);
    ops.extend((0..520u32).map(|page| Op::Touch {
        slot: 2,
        inst: 0,
        page: u64::from(page),
        word: 0,
        value: i64::from(page) + 1,
    }));
    let (result, stats) =
        on_machine(|k, lib, base| (run(k, lib, base, &ops), lib.stats.borrow().clone()));
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        stats.contains_key("memory.grow: -1 fragmented") || stats.contains_key("memory.grow: ok"),
        "{stats:#?}"
    );
    assert!(stats.contains_key("touch: ok"), "{stats:#?}");
}

/// The same for a process, which keeps off the reserve: 500 live
/// one-frame code objects, each with two free frames beside it in a
/// 16-frame block, leave 1,000 free frames in broken blocks, of which the
/// 500 frames their instances keep (promised, any frame will do) take
/// half. A process then asks for every page the frame count allows above
/// the reserve: the pages that have no placeable block are refused
/// (`memory.grow` is -1), and the process never traps; its frames all come
/// back.
#[test]
fn fragmentation_never_leaves_a_process_page_without_a_block() {
    let ops: Vec<Op> = (0..1500u16)
        .map(|i| Op::Instantiate {
            slot: usize::from(i % 3),
            owner: 0,
            pages: 0,
            table: None,
            variant: i,
        })
        .chain((0..2).map(|slot| Op::Drop { slot }))
        .collect();
    let status = on_machine(|k, lib, base| {
        run_then(k, lib, base, &ops, |m| {
            // As many pages as the process may commit above the reserve.
            let ready = m.unpromised()?
                - MODULE_FRAMES
                - PROC_STACK_FRAMES
                - lib.costs.kept
                - lib.costs.process;
            let pages = (ready - m.reserve) / PAGE_FRAMES;
            let delta = u32::try_from(pages).unwrap_or(u32::MAX);
            let got = spawn(k, process_module([delta, 0, 0]), 1 << 20)?
                .ok_or_else(|| ModelError::Kernel("spawn refused".into()))?;
            Ok((delta, got.status))
        })
    });
    match status {
        Ok((delta, status)) => {
            assert!(delta > 400, "{delta} pages");
            // Bit 0 clear: the one big grow was refused; no trap.
            assert!(
                matches!(status, Some(ExitStatus::Exited(mask)) if mask & 1 == 0),
                "{status:?}"
            );
        }
        Err(e) => panic!("{e}"),
    }
}
