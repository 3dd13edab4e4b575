//! Vessel side by side with its yardsticks, in one process run: wasmtime 48
//! (the same Cranelift release as the kernel's JIT), native code built from
//! the same Rust source, and tokio's multi-thread runtime. Contenders are
//! interleaved sample by sample (`benches::interleave`); the table holds
//! medians and ratios ours / theirs, printed and written to
//! `benches/RESULTS.md`.
//!
//! Rows: execution of the workloads of `benches/workloads`, compilation
//! (one thread, all CPUs), instantiation (wasmtime's default and pooling
//! allocators), calls and traps, executor microbenchmarks, hosted boot to
//! the first wasm instruction, WASI programs of `tests/wasi-programs`
//! start to exit against wasmtime + wasmtime-wasi (`hello` cold, and a
//! file written then read back on the tmpfs, on a mounted host directory
//! and on wasmtime's preopened host directory), and the wasm-v1 spec
//! suite's wall time.
//!
//! `--quick` (or `VESSEL_BENCH_QUICK=1`) takes fewer samples.
//!
//! Signal handlers: hal-hosted installs its handlers when the first machine
//! is built and does not chain to earlier ones; wasmtime installs its own
//! when the first engine is built and passes faults outside its code on to
//! the previous handler. So the machine comes first, the engines after it.

use std::future::poll_fn;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};
use std::time::Instant;

use benches::{Contender, Row, Unit, geomean, interleave, table, time_ns};
use hal_hosted::{Config, Hosted};
use kernel_core::kernel::Kernel;
use kernel_core::sched::{Executor, Handle, yield_now};
use kernel_core::wasm::module::{FuncType, ValType};
use kernel_core::wasm::vm::{CallError, Extern, Func, HostTrap, InstanceId, Store, Val};
use kernel_core::wasm::{Compiler, TranslateConfig, compile_module};

/// Stack budget of every store (as the spec runner's).
const STACK: usize = hal_hosted::WASM_STACK;

/// How many samples each kind of row takes.
#[derive(Clone, Copy)]
struct Plan {
    quick: bool,
    warmup: usize,
    samples: usize,
    compile_samples: usize,
    boot_samples: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                warmup: 1,
                samples: 5,
                compile_samples: 3,
                boot_samples: 3,
            }
        } else {
            Self {
                quick,
                warmup: 2,
                samples: 15,
                compile_samples: 5,
                boot_samples: 11,
            }
        }
    }
}

/// `--only GROUP[,GROUP...]`: run only the groups whose names start with
/// one of these (`execution`, `compile`, `instantiation`, `calls`,
/// `executor`, `boot`, `WASI`, `processes`, `spec`), print them and leave
/// `RESULTS.md` alone (it holds whole runs only).
fn only_groups() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--only")?;
    let list = args.get(i + 1).cloned().unwrap_or_default();
    Some(list.split(',').map(str::to_owned).collect())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("VESSEL_BENCH_QUICK").is_some_and(|v| v != "0");
    // `--perf-map`: publish JIT code to `/tmp/perf-<pid>.map` for `perf`.
    if std::env::args().any(|a| a == "--perf-map")
        && let Err(e) = hal_hosted::enable_perf_map()
    {
        eprintln!("versus: no perf map: {e}");
    }
    let only = only_groups();
    let wanted = |group: &str| {
        only.as_ref()
            .is_none_or(|o| o.iter().any(|g| group.starts_with(g.as_str())))
    };
    let plan = Plan::new(quick);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let mut rows = Vec::new();

    let hosted = Hosted::new(&Config {
        cpus: 1,
        memory: 1 << 30,
        window: 1 << 40,
        ..Config::default()
    })
    .expect("hosted machine");
    rows.extend(hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| wasm_rows(k, plan, cpus, &wanted))
    }));
    drop(hosted);
    if wanted("executor") {
        rows.extend(executor_rows(cpus, plan));
    }
    if wanted("boot") {
        rows.extend(boot_rows(plan));
    }
    if wanted("WASI") {
        rows.extend(wasi_rows(plan));
    }
    if wanted("processes") {
        rows.extend(process_rows(plan));
    }
    if wanted("spec") {
        rows.push(spec_row());
    }

    let text = format!(
        "# Vessel against wasmtime, native code and tokio\n\n\
         Written by `cargo bench -p benches` (the `versus` bench); do not edit.\n\
         Host: {cpus} CPUs, {model}. {mode}: medians of {s} samples ({c} for \
         compilation, {b} for boot) after warm-up, contenders interleaved \
         sample by sample; whole run {total:.0} s. Ratios are ours / theirs: \
         below 1 means Vessel is faster. Times are per operation.\n\n{}",
        table(&rows),
        model = cpu_model(),
        mode = if plan.quick { "Quick run" } else { "Full run" },
        s = plan.samples,
        c = plan.compile_samples,
        b = plan.boot_samples,
        total = started.elapsed().as_secs_f64(),
    );
    println!("\n{text}");
    if only.is_some() {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md");
    if let Err(e) = std::fs::write(path, &text) {
        eprintln!("could not write RESULTS.md: {e}");
    }
}

/// The host CPU's model name (Linux), for the table's header.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("the bench's own wat")
}

fn export(store: &Store<'_, '_, Hosted>, inst: InstanceId, name: &str) -> Func {
    match store.export(inst, name) {
        Some(Extern::Func(f)) => f,
        other => panic!("export {name}: {other:?}"),
    }
}

fn progress(what: &str) {
    eprintln!("versus: {what}");
}

// ---------------------------------------------------------------------------
// wasm: execution, compilation, instantiation, calls and traps

fn wasm_rows(
    k: &Kernel<'_, Hosted>,
    plan: Plan,
    cpus: usize,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<Row> {
    let mut rows = Vec::new();
    if wanted("execution") {
        rows.extend(execution_rows(k, plan));
    }
    if wanted("compile") {
        rows.extend(compile_rows(plan, cpus));
    }
    if wanted("instantiation") {
        rows.extend(instantiate_rows(k, plan));
    }
    if wanted("calls") {
        rows.extend(call_rows(k, plan));
    }
    rows
}

fn as_u64(v: &Result<Vec<Val>, CallError>) -> Option<u64> {
    match v.as_deref() {
        Ok([Val::I64(x)]) => Some(*x as u64),
        _ => None,
    }
}

fn execution_rows(k: &Kernel<'_, Hosted>, plan: Plan) -> Vec<Row> {
    let engine = wasmtime::Engine::default();
    let natives = workloads::native();
    let mut rows = Vec::new();
    for (name, bytes) in benches::modules::MODULES {
        progress(&format!("execution: {name}"));
        let mut store = Store::new(k, STACK).expect("store");
        let m = store.compile(bytes).expect("workload compiles");
        let inst = store
            .instantiate(&m, &|_, _| None)
            .expect("workload instantiates");
        let setup = export(&store, inst, &format!("{name}_setup"));
        let run = export(&store, inst, &format!("{name}_run"));
        store.invoke(&setup, &[]).expect("setup");
        let ours_sum = as_u64(&store.invoke(&run, &[]));

        let module = wasmtime::Module::new(&engine, bytes).expect("wasmtime compiles");
        let mut wstore = wasmtime::Store::new(&engine, ());
        let winst = wasmtime::Instance::new(&mut wstore, &module, &[]).expect("instantiate");
        let wsetup = winst
            .get_typed_func::<(), ()>(&mut wstore, &format!("{name}_setup"))
            .expect("setup export");
        let wrun = winst
            .get_typed_func::<(), i64>(&mut wstore, &format!("{name}_run"))
            .expect("run export");
        wsetup.call(&mut wstore, ()).expect("setup");
        let theirs_sum = wrun.call(&mut wstore, ()).ok().map(|x| x as u64);

        let (_, nsetup, nrun) = natives
            .iter()
            .find(|(n, _, _)| n == name)
            .expect("native build of every workload");
        nsetup();
        let native_sum = nrun();

        let mut ours = || time_ns(|| drop(black_box(store.invoke(&run, &[]))));
        let mut theirs = || time_ns(|| drop(black_box(wrun.call(&mut wstore, ()))));
        let mut native = || time_ns(|| _ = black_box(nrun()));
        let t = interleave(
            plan.warmup,
            plan.samples,
            &mut [&mut ours, &mut theirs, &mut native],
        );
        let agree = ours_sum == Some(native_sum) && theirs_sum == Some(native_sum);
        rows.push(Row {
            group: "execution",
            name: (*name).into(),
            ours: t[0],
            wasmtime: Some(t[1]),
            other: Some(t[2]),
            unit: Unit::Time,
            target: "",
            note: if agree {
                format!("checksums agree ({native_sum:#x})")
            } else {
                format!(
                    "CHECKSUMS DIFFER: ours {ours_sum:x?}, wasmtime {theirs_sum:x?}, native {native_sum:#x}"
                )
            },
        });
    }
    let exec: Vec<&Row> = rows.iter().collect();
    let g = |f: &dyn Fn(&Row) -> Option<f64>| {
        geomean(&exec.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let summary = Row {
        group: "execution",
        name: "geometric mean".into(),
        ours: g(&|r| Some(r.ours)),
        wasmtime: Some(g(&|r| r.wasmtime)),
        other: Some(g(&|r| r.other)),
        unit: Unit::Time,
        target: "<= 1.0x wasmtime (no row above 1.10x), <= 1.3x native",
        note: "the ratio of geometric means is the geometric mean of the ratios".into(),
    };
    rows.push(summary);
    rows
}

fn compile_rows(plan: Plan, cpus: usize) -> Vec<Row> {
    let compiler = Compiler::host_with(hal_hosted::host_isa()).expect("host compiler");
    let config = TranslateConfig::default();
    let mut serial = wasmtime::Config::new();
    serial.parallel_compilation(false);
    let serial = wasmtime::Engine::new(&serial).expect("engine");
    let parallel = wasmtime::Engine::default();
    let mut rows = Vec::new();
    for threads in [1, cpus] {
        let mut group = Vec::new();
        for (name, bytes) in benches::modules::MODULES {
            progress(&format!("compilation: {name}, {threads} thread(s)"));
            let engine = if threads == 1 { &serial } else { &parallel };
            let mut ours = || {
                time_ns(|| {
                    if threads == 1 {
                        let m = compile_module(bytes, &config, &compiler).expect("compiles");
                        drop(black_box(m));
                    } else {
                        let size = benches::compile::compile_parallel(bytes, &compiler, threads)
                            .expect("compiles");
                        black_box(size);
                    }
                })
            };
            let mut theirs = || {
                time_ns(|| {
                    let m = wasmtime::Module::new(engine, bytes).expect("compiles");
                    drop(black_box(m));
                })
            };
            let t = interleave(1, plan.compile_samples, &mut [&mut ours, &mut theirs]);
            group.push(Row {
                group: if threads == 1 {
                    "compile, 1 thread"
                } else {
                    "compile, all CPUs"
                },
                name: format!("{name} ({} KiB)", bytes.len() / 1024),
                ours: t[0],
                wasmtime: Some(t[1]),
                other: None,
                unit: Unit::Time,
                target: "",
                note: String::new(),
            });
        }
        let ours = geomean(&group.iter().map(|r| r.ours).collect::<Vec<_>>());
        let theirs = geomean(&group.iter().filter_map(|r| r.wasmtime).collect::<Vec<_>>());
        let note = if threads == 1 {
            "ours: `compile_module` (= `Store::compile`; code placed later, at instantiation); \
             wasmtime: `Module::new` with parallel compilation off (code placed in executable memory)"
                .to_owned()
        } else {
            format!(
                "{threads} threads. ours: the bench's driver over the kernel's translator and \
                 Cranelift ISA (`benches::compile`; the kernel itself compiles on one thread); \
                 wasmtime: `Module::new` on its rayon pool"
            )
        };
        let group_name = group[0].group;
        rows.extend(group);
        rows.push(Row {
            group: group_name,
            name: "geometric mean".into(),
            ours,
            wasmtime: Some(theirs),
            other: None,
            unit: Unit::Time,
            target: "<= 1.2x wasmtime",
            note,
        });
    }
    rows
}

/// A module with one memory, a table with an element segment and four
/// 4 KiB data segments.
fn instantiate_module() -> Vec<u8> {
    let chunk: String = "vessel-data-0123456789abcdefghijklmnopqrstuvwxyz~"
        .chars()
        .cycle()
        .take(4096)
        .collect();
    let data: String = [0, 16384, 65536, 200_000]
        .iter()
        .map(|at| format!("(data (i32.const {at}) \"{chunk}\")\n"))
        .collect();
    wat(&format!(
        r#"(module
          (memory 16)
          (table 64 funcref)
          (type $t (func (result i32)))
          (func $a (result i32) (i32.const 1))
          (func $b (result i32) (i32.const 2))
          (func $c (result i32) (i32.const 3))
          (func $d (result i32) (i32.const 4))
          (elem (i32.const 0) $a $b $c $d $a $b $c $d)
          (global (export "g") (mut i32) (i32.const 0))
          (func (export "pick") (param i32) (result i32)
            (call_indirect (type $t) (local.get 0)))
          {data})"#
    ))
}

fn instantiate_rows(k: &Kernel<'_, Hosted>, plan: Plan) -> Vec<Row> {
    progress("instantiation");
    const BATCH: u32 = 20;
    let bytes = instantiate_module();
    let compiler = Compiler::host_with(hal_hosted::host_isa()).expect("host compiler");
    let m = compile_module(&bytes, &TranslateConfig::default(), &compiler).expect("compiles");

    let default = wasmtime::Engine::default();
    let mut pooled = wasmtime::Config::new();
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_memories(64)
        .total_tables(64)
        .total_core_instances(64);
    pooled.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    let pooled = wasmtime::Engine::new(&pooled).expect("pooling engine");
    let pre = |engine: &wasmtime::Engine| {
        let module = wasmtime::Module::new(engine, &bytes).expect("compiles");
        wasmtime::Linker::<()>::new(engine)
            .instantiate_pre(&module)
            .expect("instantiate_pre")
    };
    let (pre_default, pre_pooled) = (pre(&default), pre(&pooled));
    // As wasmtime's `Module` holds its code, a store holding an instance
    // keeps the module's linked code alive, so every store below shares it
    // (code INV-CODE-5) instead of linking it again.
    let mut holder = Store::new(k, STACK).expect("store");
    holder.instantiate(&m, &|_, _| None).expect("instantiates");

    let ours = || {
        time_ns(|| {
            for _ in 0..BATCH {
                let mut store = Store::new(k, STACK).expect("store");
                black_box(store.instantiate(&m, &|_, _| None).expect("instantiates"));
            }
        }) / f64::from(BATCH)
    };
    let wasmtime_with = |engine: &wasmtime::Engine, pre: &wasmtime::InstancePre<()>| {
        time_ns(|| {
            for _ in 0..BATCH {
                let mut store = wasmtime::Store::new(engine, ());
                black_box(pre.instantiate(&mut store).expect("instantiates"));
            }
        }) / f64::from(BATCH)
    };
    let mut theirs = || wasmtime_with(&default, &pre_default);
    let mut theirs_pooled = || wasmtime_with(&pooled, &pre_pooled);
    let mut ours_store = || {
        time_ns(|| {
            for _ in 0..BATCH {
                drop(black_box(Store::new(k, STACK).expect("store")));
            }
        }) / f64::from(BATCH)
    };
    let mut ours_drop = || {
        let mut total = 0.0;
        for _ in 0..BATCH {
            let mut store = Store::new(k, STACK).expect("store");
            black_box(store.instantiate(&m, &|_, _| None).expect("instantiates"));
            total += time_ns(|| drop(store));
        }
        total / f64::from(BATCH)
    };
    let mut theirs_store = || {
        time_ns(|| {
            for _ in 0..BATCH {
                drop(black_box(wasmtime::Store::new(&default, ())));
            }
        }) / f64::from(BATCH)
    };
    // The same without the kernel's region pool: every memory and table
    // region reserved, committed, faulted in and released again.
    let mut ours_unpooled = || {
        k.regions().set_max_slots(k.vm(), 0);
        let t = ours();
        k.regions()
            .set_max_slots(k.vm(), kernel_core::kernel::POOLED_REGIONS);
        // Untimed: one instance given back, so the pooled rows sampled
        // next find the pool as they left it.
        let mut store = Store::new(k, STACK).expect("store");
        black_box(store.instantiate(&m, &|_, _| None).expect("instantiates"));
        t
    };
    let t = interleave(
        plan.warmup,
        plan.samples,
        &mut [
            &mut || ours(),
            &mut theirs,
            &mut theirs_pooled,
            &mut ours_store,
            &mut theirs_store,
            &mut ours_drop,
            &mut ours_unpooled,
        ],
    );
    let what = "store + instantiate + drop; 1 memory (16 pages), table (64), 4 x 4 KiB data";
    vec![
        Row {
            group: "instantiation",
            name: "default allocator".into(),
            ours: t[0],
            wasmtime: Some(t[1]),
            other: None,
            unit: Unit::Time,
            target: "",
            note: format!(
                "{what}; ours shares the code another store linked (a store holding an instance keeps it), wasmtime (`InstancePre`) placed it at compile time; ours takes its memory and table regions from the kernel's pool (`mem::pool`)"
            ),
        },
        Row {
            group: "instantiation",
            name: "pooling allocator".into(),
            ours: t[0],
            wasmtime: Some(t[2]),
            other: None,
            unit: Unit::Time,
            target: "<= 1.0x wasmtime pooling",
            note: "ours as above: memory and table regions from the kernel's pool, the granules the last tenant touched zeroed in place; wasmtime's pooling allocator".into(),
        },
        Row {
            group: "instantiation",
            name: "without the kernel's region pool".into(),
            ours: t[6],
            wasmtime: Some(t[2]),
            other: None,
            unit: Unit::Time,
            target: "",
            note: "ours with the pool off (`RegionPool::set_max_slots(0)`): every region reserved, committed, faulted in and released through the host; against wasmtime's pooling allocator".into(),
        },
        Row {
            group: "instantiation",
            name: "empty store (part of the above)".into(),
            ours: t[3],
            wasmtime: Some(t[4]),
            other: None,
            unit: Unit::Time,
            target: "",
            note: "ours shares the Cranelift ISA the kernel built once (`Kernel::host_compiler`)"
                .into(),
        },
        Row {
            group: "instantiation",
            name: "dropping the instantiated store (part of the above)".into(),
            ours: t[5],
            wasmtime: None,
            other: None,
            unit: Unit::Time,
            target: "",
            note: "ours only: the drop gives the regions back to the pool, zeroing what the instance touched".into(),
        },
    ]
}

const CALLS: &str = r#"(module
  (import "env" "inc" (func $inc (param i32) (result i32)))
  (memory 1)
  (func (export "id") (param i32) (result i32) (local.get 0))
  (func (export "host_loop") (param i32) (result i32) (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get 0)))
        (local.set $acc (call $inc (local.get $acc)))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))"#;

fn call_rows(k: &Kernel<'_, Hosted>, plan: Plan) -> Vec<Row> {
    progress("calls and traps");
    const CALLS_PER_SAMPLE: i32 = 20_000;
    const TRAPS_PER_SAMPLE: u32 = 500;
    /// Past the 1-page memory, inside its reservation: a guard-page fault.
    const OOB: i32 = 2 << 16;
    let bytes = wat(CALLS);

    let mut store = Store::new(k, STACK).expect("store");
    let ty = FuncType {
        params: vec![ValType::I32],
        results: vec![ValType::I32],
    };
    let inc = store
        .host_func(ty, |a| match a {
            [Val::I32(x)] => vec![Val::I32(x.wrapping_add(1))],
            _ => vec![Val::I32(0)],
        })
        .expect("host function");
    let m = store.compile(&bytes).expect("compiles");
    let inst = store
        .instantiate(&m, &|_, n| (n == "inc").then(|| Extern::Func(inc.clone())))
        .expect("instantiates");
    let (id, host_loop, load) = (
        export(&store, inst, "id"),
        export(&store, inst, "host_loop"),
        export(&store, inst, "load"),
    );
    // The same module again, its `inc` a typed host function.
    let inc_typed = store
        .host_func_typed(|x: i32| Ok::<i32, HostTrap>(x.wrapping_add(1)))
        .expect("typed host function");
    let inst_typed = store
        .instantiate(&m, &|_, n| {
            (n == "inc").then(|| Extern::Func(inc_typed.clone()))
        })
        .expect("instantiates");
    let host_loop_typed = export(&store, inst_typed, "host_loop");
    // And as a single-result host function (the system interfaces' kind).
    let inc_single = store
        .host_func_single(
            FuncType {
                params: vec![ValType::I32],
                results: vec![ValType::I32],
            },
            Box::new(|a: &[Val]| match a {
                [Val::I32(x)] => Ok(Some(Val::I32(x.wrapping_add(1)))),
                _ => Ok(None),
            }),
        )
        .expect("single-result host function");
    let inst_single = store
        .instantiate(&m, &|_, n| {
            (n == "inc").then(|| Extern::Func(inc_single.clone()))
        })
        .expect("instantiates");
    let host_loop_single = export(&store, inst_single, "host_loop");
    let id_typed = store.typed::<i32, i32>(&id).expect("typed id");
    assert_eq!(store.call_typed(&id_typed, 5), Ok(5));
    assert_eq!(
        store.invoke(&host_loop_typed, &[Val::I32(10)]),
        Ok(vec![Val::I32(10)])
    );
    assert_eq!(
        store.invoke(&host_loop, &[Val::I32(10)]),
        Ok(vec![Val::I32(10)])
    );
    assert!(matches!(
        store.invoke(&load, &[Val::I32(OOB)]),
        Err(CallError::Trap(_))
    ));

    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, &bytes).expect("compiles");
    let mut wstore = wasmtime::Store::new(&engine, ());
    let winc = wasmtime::Func::wrap(&mut wstore, |x: i32| x.wrapping_add(1));
    let winst =
        wasmtime::Instance::new(&mut wstore, &module, &[winc.into()]).expect("instantiates");
    let wid = winst
        .get_typed_func::<i32, i32>(&mut wstore, "id")
        .expect("id");
    let wid_untyped = winst.get_func(&mut wstore, "id").expect("id");
    let wloop = winst
        .get_typed_func::<i32, i32>(&mut wstore, "host_loop")
        .expect("host_loop");
    let wload = winst
        .get_typed_func::<i32, i32>(&mut wstore, "load")
        .expect("load");
    assert_eq!(wloop.call(&mut wstore, 10).ok(), Some(10));
    assert!(wload.call(&mut wstore, OOB).is_err());

    // One store each, shared by the contenders through RefCells: the
    // closures run one at a time.
    let store = std::cell::RefCell::new(store);
    let wstore = std::cell::RefCell::new(wstore);
    let per = |n: i32| move |ns: f64| ns / f64::from(n);

    let mut ours_in = || {
        let mut s = store.borrow_mut();
        per(CALLS_PER_SAMPLE)(time_ns(|| {
            for i in 0..CALLS_PER_SAMPLE {
                black_box(s.call_typed(&id_typed, i).ok());
            }
        }))
    };
    let mut ours_in_untyped = || {
        let mut s = store.borrow_mut();
        per(CALLS_PER_SAMPLE)(time_ns(|| {
            for i in 0..CALLS_PER_SAMPLE {
                black_box(s.invoke(&id, &[Val::I32(i)]).ok());
            }
        }))
    };
    let mut ours_out_single = || {
        let mut s = store.borrow_mut();
        per(CALLS_PER_SAMPLE)(time_ns(|| {
            black_box(
                s.invoke(&host_loop_single, &[Val::I32(CALLS_PER_SAMPLE)])
                    .ok(),
            );
        }))
    };
    let mut ours_out_typed = || {
        let mut s = store.borrow_mut();
        per(CALLS_PER_SAMPLE)(time_ns(|| {
            black_box(
                s.invoke(&host_loop_typed, &[Val::I32(CALLS_PER_SAMPLE)])
                    .ok(),
            );
        }))
    };
    let mut theirs_in = || {
        let mut s = wstore.borrow_mut();
        per(CALLS_PER_SAMPLE)(time_ns(|| {
            for i in 0..CALLS_PER_SAMPLE {
                black_box(wid.call(&mut *s, i).ok());
            }
        }))
    };
    let mut theirs_in_untyped = || {
        let mut s = wstore.borrow_mut();
        let mut out = [wasmtime::Val::I32(0)];
        per(CALLS_PER_SAMPLE)(time_ns(|| {
            for i in 0..CALLS_PER_SAMPLE {
                black_box(
                    wid_untyped
                        .call(&mut *s, &[wasmtime::Val::I32(i)], &mut out)
                        .is_ok(),
                );
            }
        }))
    };
    let mut ours_out = || {
        let mut s = store.borrow_mut();
        per(CALLS_PER_SAMPLE)(time_ns(|| {
            black_box(s.invoke(&host_loop, &[Val::I32(CALLS_PER_SAMPLE)]).ok());
        }))
    };
    let mut theirs_out = || {
        let mut s = wstore.borrow_mut();
        per(CALLS_PER_SAMPLE)(time_ns(|| {
            black_box(wloop.call(&mut *s, CALLS_PER_SAMPLE).ok());
        }))
    };
    let mut ours_trap = || {
        let mut s = store.borrow_mut();
        time_ns(|| {
            for _ in 0..TRAPS_PER_SAMPLE {
                black_box(s.invoke(&load, &[Val::I32(OOB)]).is_err());
            }
        }) / f64::from(TRAPS_PER_SAMPLE)
    };
    let mut theirs_trap = || {
        let mut s = wstore.borrow_mut();
        time_ns(|| {
            for _ in 0..TRAPS_PER_SAMPLE {
                black_box(wload.call(&mut *s, OOB).is_err());
            }
        }) / f64::from(TRAPS_PER_SAMPLE)
    };
    let mut contenders: [Contender<'_>; 10] = [
        &mut ours_in,
        &mut theirs_in,
        &mut theirs_in_untyped,
        &mut ours_out,
        &mut theirs_out,
        &mut ours_trap,
        &mut theirs_trap,
        &mut ours_in_untyped,
        &mut ours_out_typed,
        &mut ours_out_single,
    ];
    let t = interleave(plan.warmup, plan.samples, &mut contenders);
    let row = |name: &str, ours, theirs, target, note: &str| Row {
        group: "calls and traps",
        name: name.into(),
        ours,
        wasmtime: Some(theirs),
        other: None,
        unit: Unit::Time,
        target,
        note: note.into(),
    };
    vec![
        row(
            "host -> wasm call",
            t[0],
            t[1],
            "<= 1.5x wasmtime",
            "`(i32) -> i32` identity; ours `Store::call_typed` (no allocation), wasmtime `TypedFunc::call`",
        ),
        row(
            "host -> wasm call, untyped",
            t[7],
            t[2],
            "<= 1.5x wasmtime",
            "the same; ours `Store::invoke` (`&[Val]` -> `Vec<Val>`), wasmtime `Func::call` with `&[Val]`, `&mut [Val]`",
        ),
        row(
            "wasm -> host call",
            t[8],
            t[4],
            "<= 1.5x wasmtime",
            "a wasm loop calling an `(i32) -> i32` host function; ours `Store::host_func_typed` (no allocation), wasmtime `Func::wrap`",
        ),
        row(
            "wasm -> host call, system-interface kind",
            t[9],
            t[4],
            "",
            "the same through a `Fn(&[Val]) -> Result<Option<Val>, _>` closure (`Store::host_func_single`: arguments in a slice on the stack; what `vessel` and WASI calls use)",
        ),
        row(
            "wasm -> host call, untyped closure",
            t[3],
            t[4],
            "",
            "the same through a `Fn(&[Val]) -> Vec<Val>` closure (`Store::host_func`)",
        ),
        row(
            "trap round trip",
            t[5],
            t[6],
            "<= 1.0x wasmtime",
            "out-of-bounds load: guard-page fault, signal, unwind to the caller, trap with backtrace",
        ),
    ]
}

// ---------------------------------------------------------------------------
// executor

/// A one-bit mailbox built on std only (a mutex and a waker), so both
/// executors run the same ping-pong code.
#[derive(Default)]
struct Bell {
    rung: AtomicBool,
    waiter: Mutex<Option<Waker>>,
}

impl Bell {
    fn post(&self) {
        self.rung.store(true, Ordering::SeqCst);
        let w = self.waiter.lock().map(|mut w| w.take()).unwrap_or(None);
        if let Some(w) = w {
            w.wake();
        }
    }

    async fn take(&self) {
        poll_fn(|cx| {
            if self.rung.swap(false, Ordering::SeqCst) {
                return Poll::Ready(());
            }
            if let Ok(mut w) = self.waiter.lock() {
                *w = Some(cx.waker().clone());
            }
            if self.rung.swap(false, Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// The two sides of a ping-pong of `rounds` round trips.
fn ping_pong_sides(rounds: usize) -> [impl Future<Output = ()> + Send + 'static; 2] {
    let bells = [Arc::new(Bell::default()), Arc::new(Bell::default())];
    let side = |me: usize| {
        let (mine, theirs) = (bells[me].clone(), bells[1 - me].clone());
        async move {
            for _ in 0..rounds {
                if me == 0 {
                    theirs.post();
                    mine.take().await;
                } else {
                    mine.take().await;
                    theirs.post();
                }
            }
        }
    };
    [side(0), side(1)]
}

const SPAWNS: usize = 10_000;
const YIELDS: usize = 10_000;
const ROUNDS: usize = 10_000;

async fn ours_spawn(h: Handle<Hosted>) -> usize {
    let joins: Vec<_> = (0..SPAWNS).map(|i| h.spawn(async move { i })).collect();
    let mut sum = 0;
    for j in joins {
        sum += j.await.unwrap_or(0);
    }
    sum
}

async fn tokio_spawn() -> usize {
    let joins: Vec<_> = (0..SPAWNS)
        .map(|i| tokio::spawn(async move { i }))
        .collect();
    let mut sum = 0;
    for j in joins {
        sum += j.await.unwrap_or(0);
    }
    sum
}

async fn ours_yield(h: Handle<Hosted>, tasks: usize) {
    let joins: Vec<_> = (0..tasks)
        .map(|_| {
            h.spawn(async {
                for _ in 0..YIELDS {
                    yield_now().await;
                }
            })
        })
        .collect();
    for j in joins {
        let _ = j.await;
    }
}

async fn tokio_yield(tasks: usize) {
    let joins: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..YIELDS {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for j in joins {
        let _ = j.await;
    }
}

fn executor_rows(cpus: usize, plan: Plan) -> Vec<Row> {
    progress("executor");
    let hosted = Hosted::new(&Config {
        cpus,
        memory: 64 << 20,
        window: 1 << 36,
        ..Config::default()
    })
    .expect("hosted machine");
    let exec = Executor::new(&hosted);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus)
        .build()
        .expect("tokio runtime");
    let t = std::thread::scope(|s| {
        let workers: Vec<_> = (1..cpus)
            .map(|cpu| {
                let (hosted, exec) = (&hosted, &exec);
                s.spawn(move || {
                    hal_hosted::run_on_cpu(hosted, cpu, || {
                        kernel_core::boot::with_kernel(hosted, |_| exec.run_worker())
                    })
                })
            })
            .collect();
        let t = hal_hosted::run_on_cpu(&hosted, 0, || {
            kernel_core::boot::with_kernel(&hosted, |_| {
                let h = exec.handle();
                let mut ours_spawn_c = || {
                    time_ns(|| {
                        black_box(exec.run_until(ours_spawn(h.clone())).ok());
                    }) / SPAWNS as f64
                };
                let mut tokio_spawn_c =
                    || time_ns(|| _ = black_box(rt.block_on(tokio_spawn()))) / SPAWNS as f64;
                let mut ours_yield_c = || {
                    time_ns(|| {
                        black_box(exec.run_until(ours_yield(h.clone(), cpus)).ok());
                    }) / (YIELDS * cpus) as f64
                };
                let mut tokio_yield_c =
                    || time_ns(|| rt.block_on(tokio_yield(cpus))) / (YIELDS * cpus) as f64;
                let mut ours_pp = || {
                    let [a, b] = ping_pong_sides(ROUNDS);
                    let h = h.clone();
                    time_ns(|| {
                        let done = exec.run_until(async move {
                            let (a, b) = (h.spawn(a), h.spawn(b));
                            let _ = a.await;
                            let _ = b.await;
                        });
                        black_box(done.ok());
                    }) / ROUNDS as f64
                };
                let mut tokio_pp = || {
                    let [a, b] = ping_pong_sides(ROUNDS);
                    time_ns(|| {
                        rt.block_on(async move {
                            let (a, b) = (tokio::spawn(a), tokio::spawn(b));
                            let _ = a.await;
                            let _ = b.await;
                        });
                    }) / ROUNDS as f64
                };
                interleave(
                    plan.warmup,
                    plan.samples,
                    &mut [
                        &mut ours_spawn_c,
                        &mut tokio_spawn_c,
                        &mut ours_yield_c,
                        &mut tokio_yield_c,
                        &mut ours_pp,
                        &mut tokio_pp,
                    ],
                )
            })
        });
        exec.shutdown();
        for w in workers {
            let _ = w.join();
        }
        t
    });
    let row = |name: String, ours, theirs, note: &str| Row {
        group: "executor",
        name,
        ours,
        wasmtime: None,
        other: Some(theirs),
        unit: Unit::Time,
        target: "<= 1.0x tokio",
        note: note.into(),
    };
    vec![
        row(
            format!("spawn + join ({SPAWNS} tasks)"),
            t[0],
            t[1],
            "per task; spawned from the main future, awaited in order",
        ),
        row(
            format!("yield ({cpus} tasks x {YIELDS})"),
            t[2],
            t[3],
            "per yield",
        ),
        row(
            format!("ping-pong ({ROUNDS} round trips)"),
            t[4],
            t[5],
            "per round trip between two tasks, through the same std-only mailbox",
        ),
    ]
    .into_iter()
    .map(|mut r| {
        r.note = format!("{cpus} CPUs vs {cpus} tokio workers; {}", r.note);
        r
    })
    .collect()
}

// ---------------------------------------------------------------------------
// boot and the spec suite

const FIRST: &str = r#"(module
  (import "env" "first" (func $first))
  (func (export "_start") (call $first)))"#;

/// One hosted boot: nanoseconds from the call of `boot_into` to the entry
/// of the host function the module's first instruction calls (NaN when the
/// boot failed).
fn boot_once(bytes: &[u8]) -> f64 {
    let first: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let seen = first.clone();
    // The machine is part of the boot: start the clock before it.
    let start = Instant::now();
    let Ok(hosted) = Hosted::new(&Config::default()) else {
        return f64::NAN;
    };
    let status = hal_hosted::boot_into(&hosted, |k| {
        let Ok(mut store) = Store::new(k, STACK) else {
            return 1;
        };
        let ty = FuncType {
            params: vec![],
            results: vec![],
        };
        let Ok(f) = store.host_func(ty, move |_| {
            let _ = seen.set(Instant::now());
            vec![]
        }) else {
            return 1;
        };
        let Ok(m) = store.compile(bytes) else {
            return 1;
        };
        let Ok(inst) = store.instantiate(&m, &|_, _| Some(Extern::Func(f.clone()))) else {
            return 1;
        };
        let Some(Extern::Func(start)) = store.export(inst, "_start") else {
            return 1;
        };
        u8::from(store.invoke(&start, &[]).is_err())
    });
    match (status, first.get()) {
        (Ok(0), Some(at)) => at.duration_since(start).as_nanos() as f64,
        _ => f64::NAN,
    }
}

/// wasmtime's cold start to the same point: engine, compile, store,
/// instantiate, call.
fn wasmtime_cold(bytes: &[u8]) -> f64 {
    let first: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let seen = first.clone();
    let start = Instant::now();
    let run = || -> wasmtime::Result<()> {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, bytes)?;
        let mut store = wasmtime::Store::new(&engine, ());
        let f = wasmtime::Func::wrap(&mut store, move || {
            let _ = seen.set(Instant::now());
        });
        let inst = wasmtime::Instance::new(&mut store, &module, &[f.into()])?;
        inst.get_typed_func::<(), ()>(&mut store, "_start")?
            .call(&mut store, ())
    };
    match (run(), first.get()) {
        (Ok(()), Some(at)) => at.duration_since(start).as_nanos() as f64,
        _ => f64::NAN,
    }
}

/// One hosted boot of the system image: nanoseconds from the machine's
/// creation until it ends, init's shell having printed its prompt, read
/// `exit` and exited (NaN when it did not end so).
fn shell_once(image: &[u8]) -> f64 {
    let start = Instant::now();
    let Ok(hosted) = Hosted::new(&Config {
        cpus: 2,
        capture_console: true,
        ..Config::default()
    }) else {
        return f64::NAN;
    };
    hosted.set_input(b"exit\n");
    let info = kernel_core::boot::BootInfo {
        cmdline: "",
        spec: &[],
        wasm_stack: 0,
        wasi: &[],
        initrd: image,
    };
    let status = hal_hosted::boot_on(&hosted, info);
    let prompted = hosted
        .captured_console()
        .is_some_and(|out| out.windows(2).any(|w| w == b"$ "));
    match status {
        Ok(0) if prompted => start.elapsed().as_nanos() as f64,
        _ => f64::NAN,
    }
}

fn boot_rows(plan: Plan) -> Vec<Row> {
    progress("boot");
    let bytes = wat(FIRST);
    let image = sim::system::image();
    let mut shell = || shell_once(&image);
    let prompt = interleave(1, plan.boot_samples, &mut [&mut shell]);
    let mut ours = || boot_once(&bytes);
    let mut theirs = || wasmtime_cold(&bytes);
    let t = interleave(1, plan.boot_samples, &mut [&mut ours, &mut theirs]);
    vec![
        Row {
            group: "boot",
            name: "hosted boot of the system image to the shell prompt, then `exit`".into(),
            ours: prompt[0],
            wasmtime: None,
            other: None,
            unit: Unit::Time,
            target: "(none set)",
            note: "2 CPUs, 512 MiB: the image unpacked, `init` and `sh` compiled (the image \
                   holds wasm, not precompiled code) and run to the prompt, `exit` read, the \
                   machine ended"
                .into(),
        },
        Row {
            group: "boot",
            name: "hosted boot to the first wasm instruction".into(),
            ours: t[0],
            wasmtime: Some(t[1]),
            other: None,
            unit: Unit::Time,
            target: "< 10 ms",
            note: format!(
                "ours: `hal_hosted::boot_into` (default machine: {} CPUs, 512 MiB) until the host \
             function the module calls first is entered; wasmtime: engine + compile + \
             instantiate + call to the same point",
                Config::default().cpus
            ),
        },
    ]
}

// ---------------------------------------------------------------------------
// WASI programs

/// MiB the `bigfile` rows write and read back.
const BIGFILE_MIB: usize = 64;

/// How one program run ended, and the nanoseconds from its spawn to its
/// exit.
struct Ran {
    /// The exit code (`None`: it did not exit, or was not started).
    code: Option<i32>,
    /// What it wrote (Vessel: the captured console).
    stdout: Vec<u8>,
    /// Spawn (compile included) to exit.
    ns: f64,
}

/// Build a hosted machine from `config` (console captured) with host
/// directories `dirs`, boot it quietly, run `module` as a program with
/// `args` (the first its name) and `dirs[0]`, if any, mounted at `/`
/// (else the scope's tmpfs is its `/`), and reap it.
fn vessel_run(config: &Config, dirs: &[PathBuf], module: &Arc<[u8]>, args: &[&str]) -> Ran {
    use kernel_core::proc::{ExitStatus, Mount, Program};
    let failed = Ran {
        code: None,
        stdout: Vec::new(),
        ns: f64::NAN,
    };
    let Ok(hosted) = Hosted::with_dirs(config, dirs) else {
        return failed;
    };
    let program = Program {
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: Vec::new(),
        no_files: false,
        mounts: if dirs.is_empty() {
            Vec::new()
        } else {
            vec![Mount {
                guest: b"/".to_vec(),
                host: 0,
            }]
        },
    };
    let ended = Mutex::new(None);
    let booted = hal_hosted::boot_quiet_into(&hosted, |kernel| {
        let got = kernel_core::boot::with_executor(kernel, |exec| {
            kernel_core::proc::run(
                kernel,
                exec,
                kernel_core::proc::SpawnOptions::default(),
                |procs| async move {
                    let start = Instant::now();
                    let pid = procs
                        .spawn_program(
                            args[0],
                            module.clone(),
                            Vec::new(),
                            procs.defaults(),
                            program,
                        )
                        .ok()?;
                    let info = procs.reap(pid).await?;
                    Some((info.status, start.elapsed()))
                },
            )
            .ok()
            .flatten()
        });
        if let Ok(mut e) = ended.lock() {
            *e = got;
        }
        0
    });
    let ended = ended.into_inner().ok().flatten();
    match (booted, ended) {
        (Ok(0), Some((status, took))) => Ran {
            code: match status {
                ExitStatus::Exited(n) => Some(n),
                _ => None,
            },
            stdout: hosted.captured_console().unwrap_or_default(),
            ns: took.as_nanos() as f64,
        },
        _ => failed,
    }
}

/// Run `module` on wasmtime + wasmtime-wasi on `engine`: compile, link
/// WASI preview1, instantiate, call `_start`, with `args` (the first its
/// name) and host directory `dir`, if any, preopened at `/`.
fn wasmtime_run(
    engine: &wasmtime::Engine,
    module: &[u8],
    args: &[&str],
    dir: Option<&Path>,
) -> Ran {
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    let stdout = MemoryOutputPipe::new(1 << 20);
    let start = Instant::now();
    let run = || -> wasmtime::Result<i32> {
        let module = wasmtime::Module::new(engine, module)?;
        let mut linker = wasmtime::Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx)?;
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        // Blocking file operations on this thread, without a round trip
        // through tokio's blocking pool; set before the preopen, which
        // takes it when opened.
        builder
            .allow_blocking_current_thread(true)
            .args(args)
            .stdout(stdout.clone());
        if let Some(dir) = dir {
            builder.preopened_dir(dir, "/", wasmtime_wasi::FsPerms::ReadWrite)?;
        }
        let mut store = wasmtime::Store::new(engine, builder.build_p1());
        let instance = linker.instantiate(&mut store, &module)?;
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        match start.call(&mut store, ()) {
            Ok(()) => Ok(0),
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(e),
            },
        }
    };
    let code = run().ok();
    let ns = start.elapsed().as_nanos() as f64;
    Ran {
        code,
        stdout: stdout.contents().to_vec(),
        ns,
    }
}

/// A fresh directory under the system's temporary directory, removed when
/// this is dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vessel-versus-{}-{what}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ns` when `ran` exited 0, else NaN (and a line saying so).
fn ok_ns(what: &str, ran: &Ran) -> f64 {
    if ran.code == Some(0) {
        ran.ns
    } else {
        eprintln!(
            "versus: {what} ended {:?}: {}",
            ran.code,
            String::from_utf8_lossy(&ran.stdout)
        );
        f64::NAN
    }
}

fn wasi_rows(plan: Plan) -> Vec<Row> {
    progress("WASI programs");
    let config = Config {
        capture_console: true,
        ..Config::default()
    };
    let hello: Arc<[u8]> = tests::wasi_programs::module("hello").into();
    let bigfile: Arc<[u8]> = tests::wasi_programs::module("bigfile").into();

    // hello: everything from nothing to the exit, each sample.
    let mut ours_hello = || {
        time_ns(|| {
            let ran = vessel_run(&config, &[], &hello, &["hello"]);
            assert_eq!(ran.stdout, b"hello, world\n", "hello on Vessel");
        })
    };
    let mut theirs_hello = || {
        time_ns(|| {
            let ran = wasmtime_run(&wasmtime::Engine::default(), &hello, &["hello"], None);
            assert_eq!(ran.stdout, b"hello, world\n", "hello on wasmtime");
        })
    };
    let t = interleave(
        1,
        plan.boot_samples,
        &mut [&mut ours_hello, &mut theirs_hello],
    );
    let mut rows = vec![Row {
        group: "WASI",
        name: "`hello` cold, start to exit".into(),
        ours: t[0],
        wasmtime: Some(t[1]),
        other: None,
        unit: Unit::Time,
        target: "",
        note: format!(
            "ours: build a hosted machine ({} CPUs, 512 MiB, console captured), boot it quietly, \
             `spawn_program` (compiles the module, {} KiB, on one thread), reap; wasmtime: \
             `Engine::default` + `Module::new` (parallel compilation) + `Linker` with \
             `p1::add_to_linker_sync` + `Store` + instantiate + `_start`, stdout to a \
             `MemoryOutputPipe`",
            config.cpus,
            hello.len() / 1024
        ),
    }];

    // bigfile: spawn (compile included) to exit, on a booted machine or a
    // ready engine; once with the full size, once with 0 MiB (start,
    // compile, an empty file created, read and deleted, exit), so that the
    // difference is the file traffic alone.
    let size = BIGFILE_MIB.to_string();
    let full = ["bigfile", "/", size.as_str()];
    let empty = ["bigfile", "/", "0"];
    let host_dir = TempDir::new("bigfile-wasmtime");
    let mount_dir = TempDir::new("bigfile-hostfs");
    let mounted = [mount_dir.0.clone()];
    let engine = wasmtime::Engine::default();
    let tmpfs = |args: &[&str]| {
        ok_ns(
            "bigfile on Vessel's tmpfs",
            &vessel_run(&config, &[], &bigfile, args),
        )
    };
    let hostfs = |args: &[&str]| {
        ok_ns(
            "bigfile on Vessel's hostfs",
            &vessel_run(&config, &mounted, &bigfile, args),
        )
    };
    let theirs = |args: &[&str]| {
        ok_ns(
            "bigfile on wasmtime",
            &wasmtime_run(&engine, &bigfile, args, Some(&host_dir.0)),
        )
    };
    let t = interleave(
        1,
        plan.boot_samples,
        &mut [
            &mut || tmpfs(&full),
            &mut || hostfs(&full),
            &mut || theirs(&full),
            &mut || tmpfs(&empty),
            &mut || hostfs(&empty),
            &mut || theirs(&empty),
        ],
    );
    let wasmtime_side = "wasmtime + wasmtime-wasi on a ready engine (`Module::new` to the exit \
         of `_start`), the file in a host temporary directory preopened at `/`";
    let io = format!(
        "`bigfile {BIGFILE_MIB}`: write {BIGFILE_MIB} MiB in 1 MiB chunks, read it back, \
         check it, delete it. File traffic only: the median run less the median `bigfile 0` \
         run (the row above); each run from spawn to exit on a booted machine, against \
         {wasmtime_side}"
    );
    let row = |name: String, ours: f64, theirs: f64, note: String| Row {
        group: "WASI",
        name,
        ours,
        wasmtime: Some(theirs),
        other: None,
        unit: Unit::Time,
        target: "",
        note,
    };
    rows.push(row(
        "`bigfile 0`: spawn to exit, warm".into(),
        t[3],
        t[5],
        format!(
            "ours: `spawn_program` (compiles the module, {} KiB) to reap on a booted machine, \
             the scope's tmpfs at `/` (on a mounted host directory: {}); {wasmtime_side}",
            bigfile.len() / 1024,
            benches::fmt_ns(t[4])
        ),
    ));
    rows.push(row(
        format!("file write + read, {BIGFILE_MIB} MiB, tmpfs"),
        t[0] - t[3],
        t[2] - t[5],
        format!("{io}; ours on the scope's tmpfs (kernel memory)"),
    ));
    rows.push(row(
        format!("file write + read, {BIGFILE_MIB} MiB, hostfs"),
        t[1] - t[4],
        t[2] - t[5],
        format!("{io}; ours on a host temporary directory mounted at `/` (hostfs)"),
    ));
    rows.push(cache_row(&config, &hello, plan));
    rows
}

/// `hello` spawned to its exit on one booted machine, its module already
/// loaded (the kernel's module cache shares it) against the same program
/// with one byte of a custom section changed each time (compiled anew).
fn cache_row(config: &Config, hello: &Arc<[u8]>, plan: Plan) -> Row {
    use kernel_core::proc::{ExitStatus, Program, SpawnOptions};
    let Ok(hosted) = Hosted::new(config) else {
        return failed_row("spawn, module already loaded");
    };
    let times = Mutex::new((f64::NAN, f64::NAN));
    let _ = hal_hosted::boot_quiet_into(&hosted, |kernel| {
        // A store holding the module keeps it in the cache.
        let holder = Store::new(kernel, 1 << 20).ok();
        let _held = holder.as_ref().and_then(|s| s.compile_shared(hello).ok());
        let got = kernel_core::boot::with_executor(kernel, |exec| {
            kernel_core::proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
                let mut n = 0u32;
                let procs = &procs;
                let spawn = |module: Arc<[u8]>| {
                    let program = Program {
                        args: vec![b"hello".to_vec()],
                        ..Program::default()
                    };
                    let pid = procs
                        .spawn_program("hello", module, Vec::new(), procs.defaults(), program)
                        .ok();
                    async move {
                        match pid {
                            Some(pid) => procs.reap(pid).await.map(|i| i.status),
                            None => None,
                        }
                    }
                };
                let (mut hits, mut misses) = (Vec::new(), Vec::new());
                for round in 0..plan.boot_samples + 1 {
                    let start = Instant::now();
                    let a = spawn(hello.clone()).await;
                    let hit = start.elapsed().as_nanos() as f64;
                    // A custom section "v" holding a counter: other bytes.
                    n += 1;
                    let mut other = hello.to_vec();
                    other.extend_from_slice(&[0, 6, 1, b'v']);
                    other.extend_from_slice(&n.to_le_bytes());
                    let start = Instant::now();
                    let b = spawn(other.into()).await;
                    let miss = start.elapsed().as_nanos() as f64;
                    assert_eq!(
                        (a, b),
                        (Some(ExitStatus::Exited(0)), Some(ExitStatus::Exited(0)))
                    );
                    if round > 0 {
                        hits.push(hit);
                        misses.push(miss);
                    }
                }
                (benches::median(hits), benches::median(misses))
            })
        });
        if let (Ok(t), Ok(mut out)) = (got, times.lock()) {
            *out = t;
        }
        0
    });
    let (hit, miss) = times.into_inner().unwrap_or((f64::NAN, f64::NAN));
    Row {
        group: "WASI",
        name: "spawn to exit, module already loaded".into(),
        ours: hit,
        wasmtime: None,
        other: None,
        unit: Unit::Time,
        target: ">= 50x faster than compiling",
        note: format!(
            "`hello` on one booted machine while a store holds its module (the kernel's module \
             cache shares it); compiled anew (a custom section changed each time): {:.2} ms, \
             {:.1}x the time",
            miss / 1e6,
            miss / hit
        ),
    }
}

/// A trivial WASI program: `_start` returns at once (exit 0).
const TRIVIAL: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")))"#;

/// Processes: spawn rate, density, and loading compiled code from the
/// persistent cache.
fn process_rows(plan: Plan) -> Vec<Row> {
    progress("processes");
    let mut rows = vec![spawn_rate_row(plan)];
    rows.push(density_row());
    rows.push(artifact_row(plan));
    rows
}

/// Spawn-to-exit of [`TRIVIAL`] on 2 CPUs, many at once, against
/// wasmtime's pooling allocator instantiating, calling and dropping it on
/// 2 threads.
fn spawn_rate_row(plan: Plan) -> Row {
    use kernel_core::proc::{ExitStatus, Program, SpawnOptions};
    const N: usize = 2000;
    let module: Arc<[u8]> = wat(TRIVIAL).into();
    let config = Config {
        cpus: 2,
        memory: 2 << 30,
        window: sim::WINDOW,
        capture_console: true,
        ..Config::default()
    };
    let ours = || -> f64 {
        let Ok(hosted) = Hosted::new(&config) else {
            return f64::NAN;
        };
        let took = Mutex::new(f64::NAN);
        let _ = hal_hosted::boot_quiet_into(&hosted, |kernel| {
            // The module stays loaded, its code linked and the thunk of
            // its one import's signature placed meanwhile: a store holds
            // an instance of it, `proc_exit` resolved to a host function.
            let mut holder = Store::new(kernel, 1 << 20).expect("store");
            let held = holder.compile_shared(&module).expect("compiles");
            let exit = holder
                .host_func(
                    FuncType {
                        params: vec![ValType::I32],
                        results: Vec::new(),
                    },
                    |_| Vec::new(),
                )
                .expect("host function");
            holder
                .instantiate(&held, &|_, _| Some(Extern::Func(exit.clone())))
                .expect("the holder instantiates");
            let module = &module;
            let r = kernel_core::boot::with_executor(kernel, |exec| {
                let options = SpawnOptions {
                    stack: 512 << 10,
                    ..SpawnOptions::default()
                };
                kernel_core::proc::run(kernel, exec, options, |procs| async move {
                    let start = Instant::now();
                    let mut pids = Vec::with_capacity(N);
                    for _ in 0..N {
                        let program = Program::default();
                        if let Ok(pid) =
                            procs.spawn_program("t", module.clone(), Vec::new(), options, program)
                        {
                            pids.push(pid);
                        }
                    }
                    let mut ok = 0;
                    for pid in pids {
                        if procs.reap(pid).await.map(|i| i.status) == Some(ExitStatus::Exited(0)) {
                            ok += 1;
                        }
                    }
                    (ok, start.elapsed().as_nanos() as f64)
                })
            });
            if let (Ok((ok, ns)), Ok(mut t)) = (r, took.lock()) {
                assert_eq!(ok, N, "every trivial process exits 0");
                *t = ns / N as f64;
            }
            0
        });
        took.into_inner().unwrap_or(f64::NAN)
    };
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_memories(64)
        .total_tables(64)
        .total_core_instances(64);
    let mut wconfig = wasmtime::Config::new();
    wconfig.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    let engine = wasmtime::Engine::new(&wconfig).expect("pooling engine");
    let wmodule = wasmtime::Module::new(&engine, wat(TRIVIAL)).expect("compiles");
    let mut linker = wasmtime::Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx).expect("wasi linker");
    let pre = linker.instantiate_pre(&wmodule).expect("instantiate_pre");
    let theirs = || -> f64 {
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..N / 2 {
                        let ctx = wasmtime_wasi::WasiCtxBuilder::new().build_p1();
                        let mut store = wasmtime::Store::new(&engine, ctx);
                        let inst = pre.instantiate(&mut store).expect("instantiates");
                        let f = inst
                            .get_typed_func::<(), ()>(&mut store, "_start")
                            .expect("_start");
                        f.call(&mut store, ()).expect("runs");
                    }
                });
            }
        });
        start.elapsed().as_nanos() as f64 / N as f64
    };
    let (mut ours, mut theirs) = (ours, theirs);
    let t = interleave(1, plan.boot_samples.min(5), &mut [&mut ours, &mut theirs]);
    Row {
        group: "processes",
        name: format!("spawn to exit, trivial WASI program, 2 CPUs ({N} at once)"),
        ours: t[0],
        wasmtime: Some(t[1]),
        other: None,
        unit: Unit::Time,
        target: ">= 50,000 processes/s",
        note: format!(
            "per process: {:.0} processes/s ours, {:.0} wasmtime. Ours: {N} `spawn_program`s on a booted 2-CPU machine while a store holds the module, then {N} reaps; wasmtime: pooling allocator, `InstancePre` with WASI preview1, 2 threads each instantiating, calling `_start` and dropping its store",
            1e9 / t[0],
            1e9 / t[1]
        ),
    }
}

/// 10,000 processes idle at once ([`tests::density`]): host memory per
/// process.
fn density_row() -> Row {
    const N: usize = 10_000;
    let d = tests::density::idle_processes(N);
    let ok = d.ready == N && d.as_told == N;
    Row {
        group: "processes",
        name: format!("{N} idle processes: host memory per process"),
        ours: if ok {
            d.rss_per_process() as f64
        } else {
            f64::NAN
        },
        wasmtime: None,
        other: None,
        unit: Unit::Bytes,
        target: "< 1 GiB for 10,000 (moonshot < 100 KiB each)",
        note: format!(
            "each blocked in `chan_recv` on a channel of its own ({} KiB fiber stack, 1 wasm page); resident memory of this process while all wait, less before: {:.2} GiB in all; kernel frames committed per process: {} KiB (the stack whole, the wasm page, structures)",
            tests::density::STACK >> 10,
            d.rss as f64 / f64::from(1u32 << 30),
            d.frame_bytes_per_process() >> 10
        ),
    }
}

/// Loading `hello`'s compiled code from the persistent format against
/// compiling it, for us and for wasmtime (`Module::deserialize`).
fn artifact_row(plan: Plan) -> Row {
    use kernel_core::wasm::artifact;
    use kernel_core::wasm::budget::Unmetered;
    let hello = tests::wasi_programs::module("hello");
    let compiler = Compiler::host_with(hal_hosted::host_isa()).expect("host compiler");
    let config = TranslateConfig::default();
    let compiled = compile_module(hello, &config, &compiler).expect("compiles");
    let art = artifact::encode(&compiled, hello, &compiler, &config).expect("encodes");
    let engine = wasmtime::Engine::default();
    let wserialized = wasmtime::Module::new(&engine, hello)
        .and_then(|m| m.serialize())
        .expect("serializes");
    let mut compile = || time_ns(|| drop(black_box(compile_module(hello, &config, &compiler))));
    let mut load = || {
        time_ns(|| {
            let m = artifact::load_within(&art, hello, &compiler, &config, &mut Unmetered);
            assert!(m.is_ok(), "the artifact loads");
            drop(black_box(m));
        })
    };
    let mut wload = || {
        time_ns(|| {
            // SAFETY: the bytes were serialized just above by this engine.
            let m = unsafe { wasmtime::Module::deserialize(&engine, &wserialized) };
            drop(black_box(m.expect("deserializes")));
        })
    };
    let t = interleave(
        1,
        plan.compile_samples,
        &mut [&mut compile, &mut load, &mut wload],
    );
    Row {
        group: "processes",
        name: format!(
            "load compiled `hello` ({} KiB) from the persistent format",
            hello.len() >> 10
        ),
        ours: t[1],
        wasmtime: Some(t[2]),
        other: None,
        unit: Unit::Time,
        target: ">= 20x faster than compiling",
        note: format!(
            "ours: `artifact::load_within` (checksum, version and module hash checked, the module validated and parsed again), {:.1}x faster than compiling it ({:.2} ms, one thread); wasmtime: `Module::deserialize`",
            t[0] / t[1],
            t[0] / 1e6
        ),
    }
}

/// A row for a measurement that could not be made.
fn failed_row(name: &str) -> Row {
    Row {
        group: "WASI",
        name: name.into(),
        ours: f64::NAN,
        wasmtime: None,
        other: None,
        unit: Unit::Time,
        target: "",
        note: "the machine could not be built".into(),
    }
}

fn spec_row() -> Row {
    use kernel_core::spec::convert::Suite;
    progress("wasm-v1 spec suite (one sample)");
    let config = Config {
        cpus: 1,
        memory: 512 << 20,
        ..Config::default()
    };
    let mut reports = None;
    let ns = time_ns(|| reports = sim::spec::run_suites(&config, &[Suite::V1]).ok());
    let note = match &reports {
        Some(r) => {
            let (passed, failed) = kernel_core::spec::totals(r);
            format!(
                "one sample: convert the scripts, then run every directive ({passed} passed, {failed} failed)"
            )
        }
        None => "one sample: the machine could not be built".into(),
    };
    Row {
        group: "spec suite",
        name: "wasm-v1 wall time".into(),
        ours: if reports.is_some() { ns } else { f64::NAN },
        wasmtime: None,
        other: None,
        unit: Unit::Time,
        target: "",
        note,
    }
}
