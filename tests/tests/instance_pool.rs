//! The kernel's pool of instance slots (`mem::pool`, INV-POOL-1..4)
//! against a reference model.
//!
//! A proptest drives sequences over three store slots: instantiate one of
//! three modules (memories of 0, 1 or 2 pages growing to 8, tables of 1, 4
//! or 8 elements, data and element segments, a mutable global), scribble
//! over the instance's memory, table and global, grow its memory, crash it
//! (a trap right after scribbling), and drop the store. The model keeps
//! the pool's idle memory slots, most recently given back first, and
//! predicts where each new memory lands: in the slot on top of the pool
//! when there is one, else in a region reserved anew, never in the slot
//! of a live instance. Every new instance must then read as a fresh one,
//! whoever held its slot before and however they ended: the memory's
//! contents hash to the module's data segments over zeros, the table holds
//! only the element segment's entries, the global its initial value and
//! the memory its initial size. The pool's counters follow the model (a
//! memory and a table region per store), and at the end of every sequence
//! releasing the idle slots returns every frame, promise and region.

use std::sync::Arc;

use kernel_core::kernel::Kernel;
use kernel_core::mem::PoolStats;
use kernel_core::wasm::vm::{CallError, Extern, Func, InstanceId, Store, Val};
use kernel_core::wasm::{CompiledModule, Compiler, TranslateConfig, TrapKind, compile_module};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use tests::ensure_eq;
use tests::machine::{on_machine, wat, wat_data};
use tests::mem_model::ModelError;

/// Store slots a sequence works on.
const SLOTS: usize = 3;
/// Every memory's maximum, in wasm pages.
const MAX_PAGES: u64 = 8;
const WASM_PAGE: usize = 65536;

/// One module the sequences instantiate.
struct Variant {
    pages: u64,
    table: u32,
    global: i64,
    /// Table slots the element segment fills (from 0).
    elems: u32,
    data: Option<(usize, &'static [u8])>,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        pages: 1,
        table: 4,
        global: 7,
        elems: 2,
        data: Some((10, b"vessel")),
    },
    Variant {
        pages: 2,
        table: 1,
        global: -1,
        elems: 0,
        data: Some((65530, b"across-pages")),
    },
    Variant {
        pages: 0,
        table: 8,
        global: 0,
        elems: 0,
        data: None,
    },
];

fn module(v: &Variant) -> Arc<[u8]> {
    let elem = if v.elems > 0 {
        format!("(elem (i32.const 0) {})", "$f ".repeat(v.elems as usize))
    } else {
        String::new()
    };
    let data = v.data.map_or(String::new(), |(at, bytes)| {
        format!("(data (i32.const {at}) \"{}\")", wat_data(bytes))
    });
    wat(&format!(
        r#"(module
  (memory {pages} {MAX_PAGES})
  (table {table} 8 funcref)
  (global $g (mut i64) (i64.const {global}))
  (func $f (result i32) (i32.const 1))
  (elem declare func $f)
  {elem}
  {data}
  ;; Non-zero words at three places of every page, every table element
  ;; set, the global changed.
  (func $scribble (export "scribble") (param $seed i64)
    (local $p i32) (local $at i32)
    (block $done
      (loop $pages
        (br_if $done (i32.ge_u (local.get $p) (memory.size)))
        (local.set $at (i32.mul (local.get $p) (i32.const 65536)))
        (i64.store (local.get $at) (i64.or (local.get $seed) (i64.const 1)))
        (i64.store
          (i32.add (local.get $at)
            (i32.and (i32.wrap_i64 (local.get $seed)) (i32.const 0xfff8)))
          (i64.or (local.get $seed) (i64.const 2)))
        (i64.store (i32.add (local.get $at) (i32.const 65528)) (i64.const -1))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $pages)))
    (table.fill (i32.const 0) (ref.func $f) (table.size))
    (global.set $g (local.get $seed)))
  (func (export "crash") (param $seed i64)
    (call $scribble (local.get $seed))
    (unreachable))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "pages") (result i32) (memory.size))
  (func (export "g") (result i64) (global.get $g))
  ;; FNV-1a over the memory's 8-byte words.
  (func (export "hash") (result i64)
    (local $at i32) (local $h i64)
    (local.set $h (i64.const 0xcbf29ce484222325))
    (block $done
      (loop $words
        (br_if $done
          (i32.ge_u (local.get $at) (i32.mul (memory.size) (i32.const 65536))))
        (local.set $h
          (i64.mul (i64.xor (local.get $h) (i64.load (local.get $at)))
            (i64.const 0x100000001b3)))
        (local.set $at (i32.add (local.get $at) (i32.const 8)))
        (br $words)))
    (local.get $h))
  (func (export "nulls") (result i32)
    (local $i i32) (local $n i32)
    (block $done
      (loop $elems
        (br_if $done (i32.ge_u (local.get $i) (table.size)))
        (if (ref.is_null (table.get (local.get $i)))
          (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $elems)))
    (local.get $n))
  (func (export "tsize") (result i32) (table.size)))"#,
        pages = v.pages,
        table = v.table,
        global = v.global,
    ))
}

/// What a fresh instance of `v` hashes to: its data over zeros.
fn fresh_hash(v: &Variant) -> i64 {
    let mut image = vec![0u8; v.pages as usize * WASM_PAGE];
    if let Some((at, bytes)) = v.data {
        image[at..at + bytes.len()].copy_from_slice(bytes);
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in image.chunks_exact(8) {
        let word = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h ^ word).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

#[derive(Clone, Debug)]
enum Op {
    New { slot: usize, variant: usize },
    Scribble { slot: usize, seed: i64 },
    Grow { slot: usize, delta: u32 },
    Crash { slot: usize, seed: i64 },
    Drop { slot: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        3 => (slot.clone(), 0..VARIANTS.len()).prop_map(|(slot, variant)| Op::New { slot, variant }),
        2 => (slot.clone(), any::<i64>()).prop_map(|(slot, seed)| Op::Scribble { slot, seed }),
        2 => (slot.clone(), 0..5u32).prop_map(|(slot, delta)| Op::Grow { slot, delta }),
        2 => (slot.clone(), any::<i64>()).prop_map(|(slot, seed)| Op::Crash { slot, seed }),
        2 => slot.prop_map(|slot| Op::Drop { slot }),
    ]
}

/// A live store of a slot, with what the model knows of it.
struct Live<'k, 'h> {
    store: Store<'k, 'h, hal_hosted::Hosted>,
    instance: InstanceId,
    base: usize,
    pages: u64,
}

impl Live<'_, '_> {
    fn func(&self, name: &str) -> Result<Func, ModelError> {
        match self.store.export(self.instance, name) {
            Some(Extern::Func(f)) => Ok(f),
            other => Err(ModelError::Kernel(format!("export {name}: {other:?}"))),
        }
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Val],
    ) -> Result<Result<Vec<Val>, CallError>, ModelError> {
        let f = self.func(name)?;
        Ok(self.store.invoke(&f, args))
    }

    fn value(&mut self, name: &str, args: &[Val]) -> Result<Val, ModelError> {
        match self.call(name, args)? {
            Ok(v) if v.len() == 1 => Ok(v[0]),
            other => Err(ModelError::Kernel(format!("{name}: {other:?}"))),
        }
    }
}

struct Model {
    /// Memory bases of idle slots, the top last.
    idle: Vec<usize>,
    /// The pool's counters at the start of the sequence.
    start: PoolStats,
    reused: u64,
    fresh: u64,
}

fn run(
    k: &Kernel<'_, hal_hosted::Hosted>,
    modules: &[Arc<CompiledModule>],
    ops: &[Op],
) -> Result<(), ModelError> {
    let vm = k.vm();
    k.regions().trim(vm);
    let (free0, promised0, regions0) = (
        k.frames().free_frames(),
        k.frames().promised_frames(),
        vm.region_count(),
    );
    let mut model = Model {
        idle: Vec::new(),
        start: k.regions().stats(),
        reused: 0,
        fresh: 0,
    };
    let mut slots: Vec<Option<Live<'_, '_>>> = (0..SLOTS).map(|_| None).collect();
    for op in ops {
        match *op {
            Op::New { slot, variant } => {
                if slots[slot].is_some() {
                    continue;
                }
                let v = &VARIANTS[variant];
                let mut store =
                    Store::new(k, 256 << 10).map_err(|e| ModelError::Kernel(e.to_string()))?;
                let instance = store
                    .instantiate(&modules[variant], &|_, _| None)
                    .map_err(|e| ModelError::Kernel(format!("instantiate: {e}")))?;
                let base = store.memory(0).map_or(0, |m| m.base());
                match model.idle.pop() {
                    Some(top) => {
                        ensure_eq!(base, top, "a new memory takes the slot given back last");
                        model.reused += 2;
                    }
                    None => model.fresh += 2,
                }
                for (i, other) in slots.iter().enumerate() {
                    if let Some(o) = other
                        && o.base == base
                    {
                        return Err(ModelError::Kernel(format!(
                            "slot {slot}'s new memory at {base:#x} is slot {i}'s, still live"
                        )));
                    }
                }
                let mut live = Live {
                    store,
                    instance,
                    base,
                    pages: v.pages,
                };
                // A fresh instance, whoever held the slot before.
                ensure_eq!(
                    live.value("pages", &[])?,
                    Val::I32(v.pages as i32),
                    "memory size"
                );
                ensure_eq!(
                    live.value("hash", &[])?,
                    Val::I64(fresh_hash(v)),
                    "memory contents"
                );
                ensure_eq!(
                    live.value("tsize", &[])?,
                    Val::I32(v.table as i32),
                    "table size"
                );
                ensure_eq!(
                    live.value("nulls", &[])?,
                    Val::I32((v.table - v.elems) as i32),
                    "null table elements"
                );
                ensure_eq!(live.value("g", &[])?, Val::I64(v.global), "global");
                slots[slot] = Some(live);
            }
            Op::Scribble { slot, seed } => {
                if let Some(live) = &mut slots[slot] {
                    ensure_eq!(
                        live.call("scribble", &[Val::I64(seed)])?,
                        Ok(vec![]),
                        "scribble"
                    );
                    ensure_eq!(
                        live.value("g", &[])?,
                        Val::I64(seed),
                        "global after scribble"
                    );
                }
            }
            Op::Grow { slot, delta } => {
                if let Some(live) = &mut slots[slot] {
                    let want = if live.pages + u64::from(delta) <= MAX_PAGES {
                        let old = live.pages as i32;
                        live.pages += u64::from(delta);
                        old
                    } else {
                        -1
                    };
                    ensure_eq!(
                        live.value("grow", &[Val::I32(delta as i32)])?,
                        Val::I32(want),
                        "memory.grow"
                    );
                }
            }
            Op::Crash { slot, seed } => {
                if let Some(live) = &mut slots[slot] {
                    match live.call("crash", &[Val::I64(seed)])? {
                        Err(CallError::Trap(t)) if t.kind == TrapKind::Unreachable => {}
                        other => {
                            return Err(ModelError::Kernel(format!("crash: {other:?}")));
                        }
                    }
                }
            }
            Op::Drop { slot } => {
                if let Some(live) = slots[slot].take() {
                    let base = live.base;
                    drop(live);
                    model.idle.push(base);
                }
            }
        }
        let stats = k.regions().stats();
        ensure_eq!(
            stats.idle,
            2 * model.idle.len(),
            "idle regions: a memory and a table per store"
        );
        ensure_eq!(
            stats.reused - model.start.reused,
            model.reused,
            "regions reused"
        );
        ensure_eq!(
            stats.fresh - model.start.fresh,
            model.fresh,
            "regions reserved anew"
        );
    }
    for live in slots.into_iter().flatten() {
        model.idle.push(live.base);
    }
    ensure_eq!(
        k.regions().trim(vm),
        2 * model.idle.len(),
        "idle regions released"
    );
    ensure_eq!(k.frames().free_frames(), free0, "free frames");
    ensure_eq!(k.frames().promised_frames(), promised0, "promised frames");
    ensure_eq!(vm.region_count(), regions0, "regions");
    Ok(())
}

#[test]
fn pooled_slots_are_reused_and_come_back_clean() {
    let result = on_machine(1, |k, _| {
        let compiler = Compiler::host().expect("host compiler");
        let modules: Vec<Arc<CompiledModule>> = VARIANTS
            .iter()
            .map(|v| {
                Arc::new(
                    compile_module(&module(v), &TranslateConfig::default(), &compiler)
                        .expect("compiles"),
                )
            })
            .collect();
        let mut runner = TestRunner::new(PtConfig {
            cases: 48,
            failure_persistence: None,
            ..PtConfig::default()
        });
        runner
            .run(&proptest::collection::vec(op(), 1..40), |ops| {
                run(k, &modules, &ops).map_err(|e| TestCaseError::fail(e.to_string()))
            })
            .map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
