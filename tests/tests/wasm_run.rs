//! Running wasm on the hosted kernel: calls, host functions, memory growth
//! and traps with backtraces (code objects, the entry context and the
//! fault redirect).

use hal_hosted::{Config, Hosted};
use kernel_core::wasm::TrapKind;
use kernel_core::wasm::module::{FuncType, ValType};
use kernel_core::wasm::vm::{CallError, Extern, InstantiateError, Store, Val};

fn wat(text: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(text).expect("lex");
    let mut m: wast::Wat<'_> = wast::parser::parse(&buf).expect("parse");
    m.encode().expect("encode")
}

fn machine() -> Hosted {
    Hosted::new(&Config {
        cpus: 1,
        memory: 64 << 20,
        window: 1 << 40,
        ..Config::default()
    })
    .expect("machine")
}

/// Run `f` on a booted hosted kernel, on its CPU 0.
fn on_kernel<R: Send>(f: impl FnOnce(&kernel_core::kernel::Kernel<'_, Hosted>) -> R + Send) -> R {
    let hosted = machine();
    hal_hosted::run_on_cpu(&hosted, 0, || kernel_core::boot::with_kernel(&hosted, f))
}

fn run<R: Send>(f: impl FnOnce(&mut Store<'_, '_, Hosted>) -> R + Send) -> R {
    on_kernel(|k| {
        let mut store = Store::new(k, 1 << 20).expect("store");
        f(&mut store)
    })
}

fn func(
    store: &Store<'_, '_, Hosted>,
    inst: kernel_core::wasm::vm::InstanceId,
    name: &str,
) -> kernel_core::wasm::vm::Func {
    match store.export(inst, name) {
        Some(Extern::Func(f)) => f,
        other => panic!("{name}: {other:?}"),
    }
}

/// The kind of the trap a call ended with, if it trapped.
fn trap_of(r: Result<Vec<Val>, CallError>) -> Option<TrapKind> {
    match r {
        Err(CallError::Trap(t)) => Some(t.kind),
        _ => None,
    }
}

/// A resolver of imports from `module` to the exports of `inst`.
fn exports_of(
    store: &Store<'_, '_, Hosted>,
    inst: kernel_core::wasm::vm::InstanceId,
    module: &'static str,
) -> impl Fn(&str, &str) -> Option<Extern> + use<> {
    let exports = store.exports(inst);
    move |m: &str, n: &str| {
        exports
            .iter()
            .find(|(name, _)| m == module && name == n)
            .map(|(_, e)| e.clone())
    }
}

const FIB: &str = r#"(module
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func $div (export "div") (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1)))
  (func $outer (export "outer") (param i32) (result i32)
    (call $div (i32.const 1) (local.get 0)))
  (func $rec (export "rec") (call $rec))
  (memory 1 3)
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (data (i32.const 8) "\2a"))"#;

#[test]
fn fib_runs_and_traps_unwind() {
    run(|store| {
        let m = store.compile(&wat(FIB)).expect("compile");
        let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
        let fib = func(store, inst, "fib");
        assert_eq!(
            store.invoke(&fib, &[Val::I32(20)]),
            Ok(vec![Val::I32(6765)])
        );
        let outer = func(store, inst, "outer");
        match store.invoke(&outer, &[Val::I32(0)]) {
            Err(CallError::Trap(t)) => {
                assert_eq!(t.kind, TrapKind::IntegerDivideByZero);
                let names: Vec<_> = t.backtrace.iter().map(|f| f.name.clone()).collect();
                assert_eq!(names, [Some("div".into()), Some("outer".into())], "{t}");
                assert!(!t.cut, "{t}");
            }
            other => panic!("{other:?}"),
        }
        // The CPU is usable after a trap.
        assert_eq!(store.invoke(&fib, &[Val::I32(10)]), Ok(vec![Val::I32(55)]));
        let rec = func(store, inst, "rec");
        match store.invoke(&rec, &[]) {
            Err(CallError::Trap(t)) => {
                assert_eq!(t.kind, TrapKind::StackOverflow);
                // Far deeper than the record: the innermost frames, and a
                // line that says the rest was cut.
                let max = kernel_core::wasm::entry::MAX_TRAP_FRAMES;
                assert_eq!(t.backtrace.len(), max, "{t}");
                assert!(t.cut, "{t}");
                let text = t.to_string();
                assert_eq!(
                    text.lines().last(),
                    Some(format!("  ... backtrace cut at {max} frames").as_str())
                );
            }
            other => panic!("{other:?}"),
        }
        let load = func(store, inst, "load");
        assert_eq!(store.invoke(&load, &[Val::I32(8)]), Ok(vec![Val::I32(42)]));
        match store.invoke(&load, &[Val::I32(65536)]) {
            Err(CallError::Trap(t)) => assert_eq!(t.kind, TrapKind::MemoryOutOfBounds),
            other => panic!("{other:?}"),
        }
        let grow = func(store, inst, "grow");
        assert_eq!(store.invoke(&grow, &[Val::I32(1)]), Ok(vec![Val::I32(1)]));
        assert_eq!(
            store.invoke(&load, &[Val::I32(65536)]),
            Ok(vec![Val::I32(0)])
        );
        assert_eq!(store.invoke(&grow, &[Val::I32(5)]), Ok(vec![Val::I32(-1)]));
    });
}

#[test]
fn host_functions_are_called() {
    run(|store| {
        let ty = FuncType {
            params: vec![ValType::I32],
            results: vec![ValType::I32],
        };
        let double = store
            .host_func(ty, |a| match a {
                [Val::I32(x)] => vec![Val::I32(x * 2)],
                _ => vec![Val::I32(0)],
            })
            .expect("host func");
        let m = store
            .compile(&wat(
                r#"(module (import "env" "double" (func $d (param i32) (result i32)))
                   (func (export "f") (param i32) (result i32)
                     (i32.add (call $d (local.get 0)) (i32.const 1))))"#,
            ))
            .expect("compile");
        let inst = store
            .instantiate(&m, &|_, n| {
                (n == "double").then(|| Extern::Func(double.clone()))
            })
            .expect("instantiate");
        let f = func(store, inst, "f");
        assert_eq!(store.invoke(&f, &[Val::I32(20)]), Ok(vec![Val::I32(41)]));
    });
}

#[test]
fn failed_segment_initialisation_keeps_earlier_writes() {
    run(|store| {
        let a = store
            .compile(&wat(r#"(module
                  (memory (export "mem") 1) (table (export "tab") 2 funcref)
                  (type $t (func (result i32)))
                  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0)))
                  (func (export "call") (param i32) (result i32)
                    (call_indirect (type $t) (local.get 0))))"#))
            .expect("compile");
        let a = store.instantiate(&a, &|_, _| None).expect("instantiate");
        let (mem, tab) = (store.export(a, "mem"), store.export(a, "tab"));
        let b = store
            .compile(&wat(r#"(module
                  (import "a" "mem" (memory 1)) (import "a" "tab" (table 2 funcref))
                  (func $f (result i32) (i32.const 7))
                  (elem (i32.const 1) $f)
                  (data (i32.const 0) "x")
                  (data (i32.const 65536) "y"))"#))
            .expect("compile");
        let r = store.instantiate(&b, &|_, n| match n {
            "mem" => mem.clone(),
            "tab" => tab.clone(),
            _ => None,
        });
        assert_eq!(r, Err(InstantiateError::DataOutOfBounds { segment: 1 }));
        let load = func(store, a, "load");
        assert_eq!(
            store.invoke(&load, &[Val::I32(0)]),
            Ok(vec![Val::I32(i32::from(b'x'))])
        );
        // The failed instance stays alive: the table points at its function.
        let call = func(store, a, "call");
        assert_eq!(store.invoke(&call, &[Val::I32(1)]), Ok(vec![Val::I32(7)]));
    });
}

const SPIN: &str = r#"(module
  (global $n (mut i32) (i32.const 0))
  (func (export "spin") (loop (global.set $n (i32.add (global.get $n) (i32.const 1))) (br 0)))
  (func (export "count") (result i32) (global.get $n)))"#;

#[test]
fn preemption_checks_call_the_hook_and_can_interrupt() {
    use kernel_core::wasm::interrupt::HookAction;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    run(|store| {
        let m = store.compile(&wat(SPIN)).expect("compile");
        let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        assert!(store.interrupt().set_hook(Box::new(move |_cell| {
            // Ask again at the next check; stop the loop at the 1000th.
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == 1000 {
                HookAction::Interrupt
            } else {
                HookAction::Continue
            }
        })));
        // A second hook is refused (set at most once).
        assert!(
            !store
                .interrupt()
                .set_hook(Box::new(|_| HookAction::Continue))
        );
        store.interrupt().set_deadline(0);
        match store.invoke(&func(store, inst, "spin"), &[]) {
            Err(CallError::Trap(t)) => assert_eq!(t.kind, TrapKind::Interrupted),
            other => panic!("spin: {other:?}"),
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1000);
        // One check at entry, then one per iteration: the loop ran 998
        // whole iterations before the 1000th check stopped it.
        store.interrupt().set_deadline(u64::MAX);
        let count = store
            .invoke(&func(store, inst, "count"), &[])
            .expect("count");
        assert_eq!(count, vec![Val::I32(998)]);
    });
}

#[test]
fn a_failing_host_function_traps_its_caller() {
    use kernel_core::wasm::vm::HostTrap;
    run(|store| {
        let ty = FuncType {
            params: vec![ValType::I32],
            results: vec![ValType::I32],
        };
        let f = store
            .host_func_trapping(ty, |a| match a {
                [Val::I32(x)] if *x >= 0 => Ok(vec![Val::I32(x + 1)]),
                _ => Err(HostTrap::Failed),
            })
            .expect("host func");
        let m = store
            .compile(&wat(
                r#"(module (import "h" "f" (func $f (param i32) (result i32)))
                 (func (export "call") (param i32) (result i32) (call $f (local.get 0))))"#,
            ))
            .expect("compile");
        let inst = store
            .instantiate(&m, &|_, _| Some(Extern::Func(f.clone())))
            .expect("instantiate");
        let call = func(store, inst, "call");
        match store.invoke(&call, &[Val::I32(-1)]) {
            Err(CallError::Trap(t)) => assert_eq!(t.kind, TrapKind::Host),
            other => panic!("call(-1): {other:?}"),
        }
        // The CPU goes on running wasm after the trap.
        assert_eq!(
            store.invoke(&call, &[Val::I32(41)]).expect("call"),
            vec![Val::I32(42)]
        );
    });
}

/// Every load and store, at every width, at the edge of a one-page memory
/// and at the edge of the guard region: the accesses whose check the guard
/// pages elide (`offset + size <= guard`) fault into a trap exactly where
/// the explicitly checked ones (one byte more of static offset) trap, and
/// the last in-bounds access works. Run with guard pages and with bounded
/// memories (every access checked).
#[test]
fn out_of_bounds_traps_at_every_width_at_the_memory_and_guard_edges() {
    use kernel_core::wasm::translate::DEFAULT_GUARD_BYTES;
    // (name, bytes, operand type or None for a load).
    const OPS: [(&str, u32, Option<&str>); 23] = [
        ("i32.load", 4, None),
        ("i64.load", 8, None),
        ("f32.load", 4, None),
        ("f64.load", 8, None),
        ("i32.load8_s", 1, None),
        ("i32.load8_u", 1, None),
        ("i32.load16_s", 2, None),
        ("i32.load16_u", 2, None),
        ("i64.load8_s", 1, None),
        ("i64.load16_u", 2, None),
        ("i64.load32_s", 4, None),
        ("i64.load32_u", 4, None),
        ("v128.load", 16, None),
        ("i32.store", 4, Some("i32")),
        ("i64.store", 8, Some("i64")),
        ("f32.store", 4, Some("f32")),
        ("f64.store", 8, Some("f64")),
        ("i32.store8", 1, Some("i32")),
        ("i32.store16", 2, Some("i32")),
        ("i64.store8", 1, Some("i64")),
        ("i64.store16", 2, Some("i64")),
        ("i64.store32", 4, Some("i64")),
        ("v128.store", 16, Some("v128")),
    ];
    const PAGE: u64 = 65536;
    let guard = DEFAULT_GUARD_BYTES;
    // Static offsets: none, the largest the guard covers, one more.
    let offsets = |size: u32| [0, guard - u64::from(size), guard - u64::from(size) + 1];
    let mut text = String::from("(module (memory 1 1)\n");
    for (i, (op, size, operand)) in OPS.iter().enumerate() {
        for (j, off) in offsets(*size).into_iter().enumerate() {
            let body = match operand {
                None => format!("({op} offset={off} (local.get 0)) drop"),
                Some(t) => {
                    let zero = if *t == "v128" {
                        "v128.const i64x2 0 0".to_owned()
                    } else {
                        format!("{t}.const 0")
                    };
                    format!("({op} offset={off} (local.get 0) ({zero}))")
                }
            };
            text.push_str(&format!(
                "(func (export \"f{i}_{j}\") (param i32) {body})\n"
            ));
        }
    }
    text.push(')');
    let module = wat(&text);
    for bounded in [false, true] {
        run(|store| {
            if bounded {
                store.bound_memories(PAGE as usize);
            }
            let m = store.compile(&module).expect("compile");
            let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
            for (i, (op, size, _)) in OPS.iter().enumerate() {
                let size = u64::from(*size);
                for (j, off) in offsets(size as u32).into_iter().enumerate() {
                    let f = func(store, inst, &format!("f{i}_{j}"));
                    // The access's last byte just past the memory (and
                    // its first byte at the end), whatever the static
                    // offset; the largest address (with the largest
                    // elided offset, inside the guard region); and, with
                    // no offset, the last access that fits.
                    let mut cases = vec![
                        ((PAGE + 1 - size).saturating_sub(off), false),
                        (PAGE.saturating_sub(off), false),
                        (u64::from(u32::MAX), false),
                    ];
                    if off == 0 {
                        cases.push((PAGE - size, true));
                    }
                    for (addr, fits) in cases {
                        let addr = u32::try_from(addr).expect("a 32-bit address");
                        let r = store.invoke(&f, &[Val::I32(addr as i32)]);
                        let effective = u64::from(addr) + off;
                        let ok = effective + size <= PAGE;
                        assert_eq!(ok, fits, "{op} offset={off} addr={addr}");
                        match r {
                            Ok(_) if ok => {}
                            Err(CallError::Trap(t))
                                if !ok && t.kind == TrapKind::MemoryOutOfBounds => {}
                            other => panic!(
                                "{op} offset={off} addr={addr:#x} (bounded: {bounded}): {other:?}"
                            ),
                        }
                    }
                }
            }
        });
    }
}

/// `call_indirect`'s checks fire where they must: a callee whose type
/// differs from the one the call names (in parameters, in results, or a
/// structurally equal type under another index, which must be accepted)
/// traps with a bad signature, a null slot with an uninitialized element,
/// an index past the table with an undefined element; the right type runs.
#[test]
fn call_indirect_checks_the_signature_the_slot_and_the_index() {
    const MODULE: &str = r#"(module
      (type $ii (func (param i32) (result i32)))
      (type $ii_again (func (param i32) (result i32)))
      (type $il (func (param i32) (result i64)))
      (type $v (func))
      (table 4 funcref)
      (elem (i32.const 0) $inc $wide $nothing)
      (func $inc (type $ii) (i32.add (local.get 0) (i32.const 1)))
      (func $wide (type $il) (i64.extend_i32_u (local.get 0)))
      (func $nothing (type $v))
      (func (export "as_ii") (param i32) (result i32)
        (call_indirect (type $ii) (i32.const 41) (local.get 0)))
      (func (export "as_ii_again") (param i32) (result i32)
        (call_indirect (type $ii_again) (i32.const 41) (local.get 0)))
      (func (export "as_v") (param i32)
        (call_indirect (type $v) (local.get 0))))"#;
    run(|store| {
        let m = store.compile(&wat(MODULE)).expect("compile");
        let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
        let (as_ii, as_ii_again, as_v) = (
            func(store, inst, "as_ii"),
            func(store, inst, "as_ii_again"),
            func(store, inst, "as_v"),
        );
        for f in [&as_ii, &as_ii_again] {
            assert_eq!(store.invoke(f, &[Val::I32(0)]), Ok(vec![Val::I32(42)]));
            // Same parameters, another result type.
            assert_eq!(
                trap_of(store.invoke(f, &[Val::I32(1)])),
                Some(TrapKind::BadSignature)
            );
            // Neither parameters nor results agree.
            assert_eq!(
                trap_of(store.invoke(f, &[Val::I32(2)])),
                Some(TrapKind::BadSignature)
            );
            assert_eq!(
                trap_of(store.invoke(f, &[Val::I32(3)])),
                Some(TrapKind::IndirectCallToNull)
            );
            for past in [4, -1] {
                assert_eq!(
                    trap_of(store.invoke(f, &[Val::I32(past)])),
                    Some(TrapKind::TableOutOfBounds)
                );
            }
        }
        assert_eq!(store.invoke(&as_v, &[Val::I32(2)]), Ok(vec![]));
        assert_eq!(
            trap_of(store.invoke(&as_v, &[Val::I32(0)])),
            Some(TrapKind::BadSignature)
        );
    });
}

/// Relaxed SIMD takes one documented choice wherever the standard allows
/// several (translate INV-RELAXED-1), including the cases the spec suite
/// only compiles (`relaxed_trunc`) or accepts either way: truncation
/// saturates and maps NaN to 0, `madd`/`nmadd` round twice, the `i8` dot
/// product wraps, `laneselect` selects bit by bit, `min`/`max` propagate
/// NaN and order -0 below +0, `swizzle` zeroes an index past 15, and
/// `q15mulr` saturates.
#[test]
fn relaxed_simd_takes_the_documented_choice_on_every_input() {
    let module = wat(r#"(module
      (func (export "trunc_s") (param f32) (result i32)
        (i32x4.extract_lane 0 (i32x4.relaxed_trunc_f32x4_s (f32x4.splat (local.get 0)))))
      (func (export "trunc_u") (param f32) (result i32)
        (i32x4.extract_lane 0 (i32x4.relaxed_trunc_f32x4_u (f32x4.splat (local.get 0)))))
      (func (export "trunc_s_zero") (param f64 i32) (result i32)
        (local v128)
        (local.set 2 (i32x4.relaxed_trunc_f64x2_s_zero (f64x2.splat (local.get 0))))
        (if (result i32) (local.get 1)
          (then (i32x4.extract_lane 2 (local.get 2)))
          (else (i32x4.extract_lane 0 (local.get 2)))))
      (func (export "trunc_u_zero") (param f64) (result i32)
        (i32x4.extract_lane 1 (i32x4.relaxed_trunc_f64x2_u_zero (f64x2.splat (local.get 0)))))
      (func (export "madd") (param f32 f32 f32) (result f32)
        (f32x4.extract_lane 0 (f32x4.relaxed_madd
          (f32x4.splat (local.get 0)) (f32x4.splat (local.get 1)) (f32x4.splat (local.get 2)))))
      (func (export "nmadd") (param f64 f64 f64) (result f64)
        (f64x2.extract_lane 1 (f64x2.relaxed_nmadd
          (f64x2.splat (local.get 0)) (f64x2.splat (local.get 1)) (f64x2.splat (local.get 2)))))
      (func (export "dot") (param i32 i32) (result i32)
        (i16x8.extract_lane_s 3 (i16x8.relaxed_dot_i8x16_i7x16_s
          (i8x16.splat (local.get 0)) (i8x16.splat (local.get 1)))))
      (func (export "dot_add") (param i32 i32 i32) (result i32)
        (i32x4.extract_lane 2 (i32x4.relaxed_dot_i8x16_i7x16_add_s
          (i8x16.splat (local.get 0)) (i8x16.splat (local.get 1)) (i32x4.splat (local.get 2)))))
      (func (export "laneselect") (param i32 i32 i32) (result i64)
        (i64x2.extract_lane 0 (i16x8.relaxed_laneselect
          (i32x4.splat (local.get 0)) (i32x4.splat (local.get 1)) (i32x4.splat (local.get 2)))))
      (func (export "min") (param f32 f32) (result f32)
        (f32x4.extract_lane 3 (f32x4.relaxed_min (f32x4.splat (local.get 0)) (f32x4.splat (local.get 1)))))
      (func (export "max") (param f64 f64) (result f64)
        (f64x2.extract_lane 0 (f64x2.relaxed_max (f64x2.splat (local.get 0)) (f64x2.splat (local.get 1)))))
      (func (export "swizzle") (param i32) (result i32)
        (i8x16.extract_lane_u 0 (i8x16.relaxed_swizzle
          (v128.const i8x16 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25)
          (i8x16.splat (local.get 0)))))
      (func (export "q15mulr") (param i32 i32) (result i32)
        (i16x8.extract_lane_s 5 (i16x8.relaxed_q15mulr_s
          (i16x8.splat (local.get 0)) (i16x8.splat (local.get 1))))))"#);
    run(|store| {
        let m = store.compile(&module).expect("compile");
        let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
        let mut call = |name: &str, args: &[Val]| -> Val {
            let f = func(store, inst, name);
            match store.invoke(&f, args).expect(name).as_slice() {
                [v] => *v,
                other => panic!("{name}: {other:?}"),
            }
        };
        let f32v = |x: f32| Val::F32(x.to_bits());
        let f64v = |x: f64| Val::F64(x.to_bits());
        // Truncation saturates; NaN is 0.
        for (x, want) in [
            (f32::NAN, 0),
            (3e9, i32::MAX),
            (-3e9, i32::MIN),
            (-7.9, -7),
            (f32::INFINITY, i32::MAX),
        ] {
            assert_eq!(call("trunc_s", &[f32v(x)]), Val::I32(want), "trunc_s {x}");
        }
        for (x, want) in [
            (f32::NAN, 0),
            (-1.0, 0),
            (5e9, -1),
            (3e9, 3_000_000_000u32 as i32),
        ] {
            assert_eq!(call("trunc_u", &[f32v(x)]), Val::I32(want), "trunc_u {x}");
        }
        assert_eq!(
            call("trunc_s_zero", &[f64v(-1e10), Val::I32(0)]),
            Val::I32(i32::MIN)
        );
        assert_eq!(
            call("trunc_s_zero", &[f64v(-1e10), Val::I32(1)]),
            Val::I32(0)
        );
        assert_eq!(
            call("trunc_s_zero", &[f64v(f64::NAN), Val::I32(0)]),
            Val::I32(0)
        );
        assert_eq!(call("trunc_u_zero", &[f64v(1e10)]), Val::I32(-1));
        assert_eq!(call("trunc_u_zero", &[f64v(-2.5)]), Val::I32(0));
        // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 rounds to 1 + 2^-11 first, so
        // the sum with -(1 + 2^-11) is 0; fused it would be 2^-24.
        let a = 1.0 + f32::powi(2.0, -12);
        let c = -(1.0 + f32::powi(2.0, -11));
        assert_eq!(call("madd", &[f32v(a), f32v(a), f32v(c)]), f32v(0.0));
        let a = 1.0 + f64::powi(2.0, -27);
        let c = 1.0 + f64::powi(2.0, -26);
        assert_eq!(call("nmadd", &[f64v(a), f64v(a), f64v(c)]), f64v(0.0));
        // -128 * -128 twice is 32768: wraps to -32768 in the i16 lane.
        assert_eq!(
            call("dot", &[Val::I32(-128), Val::I32(-128)]),
            Val::I32(-32768)
        );
        assert_eq!(call("dot", &[Val::I32(-3), Val::I32(100)]), Val::I32(-600));
        // The i32 lane adds two wrapped i16 sums and the accumulator.
        assert_eq!(
            call("dot_add", &[Val::I32(-128), Val::I32(-128), Val::I32(5)]),
            Val::I32(-65536 + 5)
        );
        assert_eq!(
            call("dot_add", &[Val::I32(7), Val::I32(-2), Val::I32(1)]),
            Val::I32(-56 + 1)
        );
        // Bit by bit, not lane by lane.
        let sel = call(
            "laneselect",
            &[Val::I32(-1), Val::I32(0), Val::I32(0x0f0f_00ff)],
        );
        assert_eq!(sel, Val::I64(0x0f0f_00ff_0f0f_00ff));
        let Val::F32(nan) = call("min", &[f32v(f32::NAN), f32v(1.0)]) else {
            panic!("min: not an f32");
        };
        assert!(f32::from_bits(nan).is_nan());
        assert_eq!(call("min", &[f32v(0.0), f32v(-0.0)]), f32v(-0.0));
        assert_eq!(call("max", &[f64v(-0.0), f64v(0.0)]), f64v(0.0));
        assert_eq!(call("max", &[f64v(2.0), f64v(-3.0)]), f64v(2.0));
        assert_eq!(call("swizzle", &[Val::I32(3)]), Val::I32(13));
        assert_eq!(call("swizzle", &[Val::I32(16)]), Val::I32(0));
        assert_eq!(call("swizzle", &[Val::I32(200)]), Val::I32(0));
        assert_eq!(
            call("q15mulr", &[Val::I32(-32768), Val::I32(-32768)]),
            Val::I32(32767)
        );
        assert_eq!(
            call("q15mulr", &[Val::I32(16384), Val::I32(16384)]),
            Val::I32(8192)
        );
    });
}

/// A 64-bit memory is checked explicitly on every access (translate
/// INV-3a): addresses past 4 GiB, where a 32-bit memory's reservation
/// would end, and offsets that overflow 64 bits trap; `memory.size` and
/// `memory.grow` speak `i64` (-1 past what the kernel gives), data
/// segments take `i64` offsets, and `memory.copy` moves bytes between a
/// 64-bit and a 32-bit memory of one module.
#[test]
fn memory64_checks_every_access_and_speaks_i64() {
    let module = wat(r#"(module
      (memory $m64 (export "m64") i64 1 3)
      (memory $m32 (export "m32") 1)
      (data (memory $m64) (i64.const 65530) "\01\02\03\04\05\06")
      (func (export "load") (param i64) (result i32) (i32.load8_u $m64 (local.get 0)))
      (func (export "load_far") (param i64) (result i64)
        (i64.load $m64 offset=0xfffffffffffffff8 (local.get 0)))
      (func (export "store") (param i64 i32) (i32.store $m64 (local.get 0) (local.get 1)))
      (func (export "size") (result i64) (memory.size $m64))
      (func (export "grow") (param i64) (result i64) (memory.grow $m64 (local.get 0)))
      (func (export "to32") (param i64 i32 i32) (result i32)
        (memory.copy $m32 $m64 (local.get 1) (local.get 0) (local.get 2))
        (i32.load8_u $m32 (local.get 1)))
      (func (export "fill") (param i64 i64) (memory.fill $m64 (local.get 0) (i32.const 7) (local.get 1))))"#);
    run(|store| {
        let m = store.compile(&module).expect("compile");
        let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
        let mut call = |name: &str, args: &[Val]| {
            let f = func(store, inst, name);
            store.invoke(&f, args)
        };
        let oob = |r: Result<Vec<Val>, CallError>| match r {
            Err(CallError::Trap(t)) => t.kind == TrapKind::MemoryOutOfBounds,
            _ => false,
        };
        assert_eq!(call("load", &[Val::I64(65535)]), Ok(vec![Val::I32(6)]));
        for addr in [65536, 1 << 32, (1 << 32) + 65530, i64::MAX, -1] {
            assert!(oob(call("load", &[Val::I64(addr)])), "load at {addr:#x}");
            assert!(
                oob(call("store", &[Val::I64(addr), Val::I32(1)])),
                "store at {addr:#x}"
            );
        }
        // offset + address overflows 2^64 for every address but 0..=7,
        // and those end past the memory.
        for addr in [0, 7, 8, 1 << 40] {
            assert!(
                oob(call("load_far", &[Val::I64(addr)])),
                "offset at {addr:#x}"
            );
        }
        assert_eq!(call("size", &[]), Ok(vec![Val::I64(1)]));
        assert_eq!(call("grow", &[Val::I64(1)]), Ok(vec![Val::I64(1)]));
        assert_eq!(call("size", &[]), Ok(vec![Val::I64(2)]));
        assert_eq!(call("load", &[Val::I64(65536)]), Ok(vec![Val::I32(0)]));
        // Past the declared maximum, and a delta no 32-bit operand holds.
        assert_eq!(call("grow", &[Val::I64(2)]), Ok(vec![Val::I64(-1)]));
        assert_eq!(call("grow", &[Val::I64(1 << 40)]), Ok(vec![Val::I64(-1)]));
        assert_eq!(call("grow", &[Val::I64(-1)]), Ok(vec![Val::I64(-1)]));
        assert_eq!(call("size", &[]), Ok(vec![Val::I64(2)]));
        assert_eq!(
            call("to32", &[Val::I64(65531), Val::I32(100), Val::I32(4)]),
            Ok(vec![Val::I32(2)])
        );
        assert!(oob(call(
            "to32",
            &[Val::I64(1 << 32), Val::I32(0), Val::I32(1)]
        )));
        // The address of a byte of the other memory, seen from this one's
        // base: reachable without the check (the host maps it), a trap
        // with it.
        let base = |name: &str| match store.export(inst, name) {
            Some(Extern::Memory(i)) => store.memory(i).expect("memory").base(),
            other => panic!("{name}: {other:?}"),
        };
        let across = (base("m32") as i64).wrapping_sub(base("m64") as i64) + 100;
        let mut call = |name: &str, args: &[Val]| {
            let f = func(store, inst, name);
            store.invoke(&f, args)
        };
        assert!(
            oob(call("load", &[Val::I64(across)])),
            "load at {across:#x}"
        );
        assert!(oob(call("store", &[Val::I64(across), Val::I32(9)])));
        assert_eq!(
            call("to32", &[Val::I64(0), Val::I32(100), Val::I32(0)]),
            Ok(vec![Val::I32(2)]),
            "the other memory kept its byte"
        );
        assert!(oob(call("fill", &[Val::I64(-2), Val::I64(4)])));
        assert!(oob(call("fill", &[Val::I64(131_070), Val::I64(3)])));
        assert_eq!(call("fill", &[Val::I64(131_070), Val::I64(2)]), Ok(vec![]));
        assert_eq!(call("load", &[Val::I64(131_071)]), Ok(vec![Val::I32(7)]));
    });
}

/// What an instantiation error must be.
type Expected = fn(&InstantiateError) -> bool;

/// Hostile 64-bit memories fail to instantiate with one error and leave
/// the store usable: a minimum no reservation holds (2^40 pages), a data
/// segment whose end overflows 64 bits, one just past the memory, and one
/// at 4 GiB + 10 (which a 32-bit reading of the offset would place at 10).
#[test]
fn memory64_limits_and_segments_past_the_end_fail_cleanly() {
    run(|store| {
        let cases: [(&str, Expected); 4] = [
            (
                r#"(module (memory i64 1) (data (i64.const 4294967306) "ab"))"#,
                |e| matches!(e, InstantiateError::DataOutOfBounds { segment: 0 }),
            ),
            ("(module (memory i64 1099511627776))", |e| {
                matches!(e, InstantiateError::TooLarge)
            }),
            (
                r#"(module (memory i64 1) (data (i64.const -2) "abcd"))"#,
                |e| matches!(e, InstantiateError::DataOutOfBounds { segment: 0 }),
            ),
            (
                r#"(module (memory i64 1) (data (i64.const 0) "ok") (data (i64.const 65535) "ab"))"#,
                |e| matches!(e, InstantiateError::DataOutOfBounds { segment: 1 }),
            ),
        ];
        for (text, expected) in cases {
            let m = store.compile(&wat(text)).expect("compile");
            match store.instantiate(&m, &|_, _| None) {
                Err(e) => assert!(expected(&e), "{text}: {e:?}"),
                Ok(_) => panic!("{text}: instantiated"),
            }
        }
        // The store still compiles and runs a 64-bit memory.
        let m = store
            .compile(&wat(
                r#"(module (memory i64 1) (data (i64.const 65534) "xy")
                     (func (export "f") (result i32) (i32.load8_u (i64.const 65535))))"#,
            ))
            .expect("compile");
        let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
        let f = func(store, inst, "f");
        assert_eq!(store.invoke(&f, &[]), Ok(vec![Val::I32(i32::from(b'y'))]));
    });
}

/// Typed function references: the host boundary checks a reference
/// against the parameter's type (null only where it is nullable, a
/// function only of that type), `call_ref` and `ref.as_non_null` trap on
/// null, a table's initialiser fills it, and two modules that declare the
/// same types at other indices share them (module INV-5), while a
/// different type, a mutable global or a table of another element type
/// does not link.
#[test]
fn typed_function_references_are_checked_at_the_boundary_and_shared_across_modules() {
    let a = wat(r#"(module
      (type $ii (func (param i32) (result i32)))
      (type $v (func))
      (type $app (func (param (ref $ii) i32) (result i32)))
      (func $inc (type $ii) (i32.add (local.get 0) (i32.const 1)))
      (func $nop (type $v))
      (elem declare func $inc $nop)
      (global (export "inc") (ref $ii) (ref.func $inc))
      (global (export "nop") (ref $v) (ref.func $nop))
      (global (export "var") (mut (ref null $ii)) (ref.null $ii))
      (table (export "t") 2 (ref null $ii) (ref.func $inc))
      (table (export "t2") funcref (elem $apply))
      (func $apply (export "apply") (type $app)
        (call_ref $ii (local.get 1) (local.get 0)))
      (func (export "apply_null") (param (ref null $ii) i32) (result i32)
        (call_ref $ii (local.get 1) (local.get 0)))
      (func (export "non_null") (param (ref null $ii)) (result (ref $ii))
        (ref.as_non_null (local.get 0)))
      (func (export "via_table") (param i32 i32) (result i32)
        (call_indirect (type $ii) (local.get 1) (local.get 0)))
      (func (export "tail") (param (ref null $ii) i32) (result i32)
        (return_call_ref $ii (local.get 1) (local.get 0)))
      (func (export "is_null") (param (ref null $ii)) (result i32)
        (block $null
          (br_on_null $null (local.get 0))
          (drop)
          (return (i32.const 0)))
        (i32.const 1))
      (func (export "non_null_or") (param (ref null $ii)) (result i32)
        (local $f (ref null $ii))
        (block $some (result (ref $ii))
          (br_on_non_null $some (local.get 0))
          (return (i32.const -1)))
        (local.set $f)
        (call_ref $ii (i32.const 9) (local.get $f))))"#);
    let b = wat(r#"(module
      (type $v (func))
      (type $ii (func (param i32) (result i32)))
      (import "a" "inc" (global $g (ref $ii)))
      (type $app (func (param (ref $ii) i32) (result i32)))
      (import "a" "t" (table 2 (ref null $ii)))
      (import "a" "t2" (table 1 funcref))
      (func (export "app") (result i32)
        (call_indirect 1 (type $app) (global.get $g) (i32.const 20) (i32.const 0)))
      (func (export "run") (result i32) (call_ref $ii (i32.const 1) (global.get $g)))
      (func (export "ind") (result i32)
        (call_indirect (type $ii) (i32.const 5) (i32.const 0))))"#);
    let unlinkable = [
        r#"(module (type $v (func)) (import "a" "inc" (global (ref $v))))"#,
        r#"(module (type $v (func)) (import "a" "t" (table 2 (ref null $v))))"#,
        r#"(module (import "a" "t" (table 2 funcref)))"#,
        r#"(module (import "a" "var" (global (mut (ref null func)))))"#,
        r#"(module (type $ii (func (param i32) (result i32)))
             (import "a" "var" (global (mut (ref $ii)))))"#,
    ];
    let linkable = [
        r#"(module (import "a" "inc" (global (ref null func))))"#,
        r#"(module (import "a" "inc" (global (ref func))))"#,
        r#"(module (type $ii (func (param i32) (result i32)))
             (import "a" "var" (global (mut (ref null $ii)))))"#,
    ];
    run(|store| {
        let ma = store.compile(&a).expect("compile a");
        let ia = store.instantiate(&ma, &|_, _| None).expect("instantiate a");
        let global = |store: &Store<'_, '_, Hosted>, name: &str| match store.export(ia, name) {
            Some(Extern::Global(g)) => store.global_get(&g),
            other => panic!("{name}: {other:?}"),
        };
        let inc = global(store, "inc");
        let nop = global(store, "nop");
        assert!(matches!(inc, Val::FuncRef(Some(_))));
        let mut call = |name: &str, args: &[Val]| {
            let f = func(store, ia, name);
            store.invoke(&f, args)
        };
        assert_eq!(call("apply", &[inc, Val::I32(41)]), Ok(vec![Val::I32(42)]));
        // A function of another type, and null, are not `(ref $ii)`.
        assert_eq!(
            call("apply", &[nop, Val::I32(1)]),
            Err(CallError::BadArguments)
        );
        assert_eq!(
            call("apply", &[Val::FuncRef(None), Val::I32(1)]),
            Err(CallError::BadArguments)
        );
        assert_eq!(
            call("apply_null", &[nop, Val::I32(1)]),
            Err(CallError::BadArguments)
        );
        assert_eq!(
            trap_of(call("apply_null", &[Val::FuncRef(None), Val::I32(1)])),
            Some(TrapKind::NullFunctionReference)
        );
        assert_eq!(
            trap_of(call("tail", &[Val::FuncRef(None), Val::I32(1)])),
            Some(TrapKind::NullFunctionReference)
        );
        assert_eq!(call("tail", &[inc, Val::I32(1)]), Ok(vec![Val::I32(2)]));
        assert_eq!(
            trap_of(call("non_null", &[Val::FuncRef(None)])),
            Some(TrapKind::NullReference)
        );
        assert_eq!(call("non_null", &[inc]), Ok(vec![inc]));
        assert_eq!(
            call("is_null", &[Val::FuncRef(None)]),
            Ok(vec![Val::I32(1)])
        );
        assert_eq!(call("is_null", &[inc]), Ok(vec![Val::I32(0)]));
        assert_eq!(
            call("non_null_or", &[Val::FuncRef(None)]),
            Ok(vec![Val::I32(-1)])
        );
        assert_eq!(call("non_null_or", &[inc]), Ok(vec![Val::I32(10)]));
        // The initialiser filled every element.
        for i in 0..2 {
            assert_eq!(
                call("via_table", &[Val::I32(i), Val::I32(7)]),
                Ok(vec![Val::I32(8)])
            );
        }
        assert_eq!(
            trap_of(call("via_table", &[Val::I32(2), Val::I32(7)])),
            Some(TrapKind::TableOutOfBounds)
        );
        // Another module, the same types at other indices.
        let resolve = exports_of(store, ia, "a");
        let mb = store.compile(&b).expect("compile b");
        let ib = store.instantiate(&mb, &resolve).expect("instantiate b");
        let f = func(store, ib, "run");
        assert_eq!(store.invoke(&f, &[]), Ok(vec![Val::I32(2)]));
        let f = func(store, ib, "ind");
        assert_eq!(store.invoke(&f, &[]), Ok(vec![Val::I32(6)]));
        // `$app` names `$ii`, at index 0 in one module and 1 in the other:
        // one type once canonical, so the signature check passes.
        let f = func(store, ib, "app");
        assert_eq!(store.invoke(&f, &[]), Ok(vec![Val::I32(21)]));
        for text in unlinkable {
            let m = store.compile(&wat(text)).expect("compile");
            let r = store.instantiate(&m, &resolve);
            assert!(
                matches!(r, Err(InstantiateError::IncompatibleImport { .. })),
                "{text}: {r:?}"
            );
        }
        for text in linkable {
            let m = store.compile(&wat(text)).expect("compile");
            store
                .instantiate(&m, &resolve)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    });
}

const THROWER: &str = r#"(module
  (tag $e (export "e") (param i32 i64))
  (tag $other)
  (func $thrower (export "thrower") (param i32)
    (if (i32.eqz (local.get 0)) (then (throw $other)))
    (throw $e (local.get 0) (i64.const 7)))
  ;; `n` frames deep, then throw.
  (func $deep (param i32 i32)
    (if (i32.eqz (local.get 0))
      (then (call $thrower (local.get 1)) (return)))
    (call $deep (i32.sub (local.get 0) (i32.const 1)) (local.get 1)))
  (table funcref (elem $thrower))
  (func (export "catch_deep") (param $n i32) (param $v i32) (result i64)
    (local $x i32) (local $y i64)
    (block $h (result i32 i64)
      (try_table (catch $e $h)
        (call $deep (local.get $n) (local.get $v)))
      (return (i64.const -1)))
    (local.set $y) (local.set $x)
    (i64.add (i64.extend_i32_u (local.get $x)) (local.get $y)))
  (func (export "catch_all_indirect") (param $v i32) (result i32)
    (block $h
      (try_table (catch_all $h)
        (call_indirect (param i32) (local.get $v) (i32.const 0)))
      (return (i32.const 0)))
    (i32.const 1))
  ;; Values live across the throwing call reach the handler intact.
  (func (export "live") (param $v i32) (param $p f64) (param $q i64) (result f64)
    (local $a f64) (local $b i64)
    (local.set $a (f64.mul (local.get $p) (f64.const 1.5)))
    (local.set $b (i64.add (local.get $q) (i64.const 40)))
    (block $h
      (try_table (catch_all $h) (call $thrower (local.get $v)))
      (return (f64.const -1)))
    (f64.add (local.get $a) (f64.convert_i64_s (local.get $b))))
  ;; Catch with the exception, throw it on: the caller sees the original.
  (func (export "rethrow") (param $v i32)
    (block $h (result exnref)
      (try_table (catch_all_ref $h) (call $thrower (local.get $v)))
      (return))
    (throw_ref)))"#;

/// Exception handling end to end: an exception crosses a hundred frames,
/// an indirect call and a module boundary (an imported tag) to its
/// handler with its values; values live across the throwing call survive
/// (the unwinder restores only the stack and frame pointers); an
/// exception nothing catches leaves the call as its own trap kind and the
/// store goes on; a catch clause of another tag does not catch.
#[test]
fn exceptions_cross_frames_modules_and_indirect_calls_and_escape_cleanly() {
    let b = wat(r#"(module
      (import "a" "e" (tag $e (param i32 i64)))
      (import "a" "thrower" (func $t (param i32)))
      (func (export "run") (param i32) (result i32)
        (block $h (result i32 i64)
          (try_table (catch $e $h) (call $t (local.get 0)))
          (return (i32.const -1)))
        (drop)))"#);
    run(|store| {
        let ma = store.compile(&wat(THROWER)).expect("compile");
        let ia = store.instantiate(&ma, &|_, _| None).expect("instantiate");
        let mut call = |name: &str, args: &[Val]| {
            let f = func(store, ia, name);
            store.invoke(&f, args)
        };
        let uncaught =
            |r: Result<Vec<Val>, CallError>| trap_of(r) == Some(TrapKind::UncaughtException);
        assert_eq!(
            call("catch_deep", &[Val::I32(100), Val::I32(5)]),
            Ok(vec![Val::I64(12)])
        );
        // `$other` is not `$e`: it leaves the call.
        assert!(uncaught(call("catch_deep", &[Val::I32(100), Val::I32(0)])));
        assert_eq!(
            call("catch_all_indirect", &[Val::I32(0)]),
            Ok(vec![Val::I32(1)])
        );
        assert_eq!(
            call(
                "live",
                &[Val::I32(3), Val::F64(2.0f64.to_bits()), Val::I64(2)]
            ),
            Ok(vec![Val::F64(45.0f64.to_bits())])
        );
        assert!(uncaught(call("rethrow", &[Val::I32(4)])));
        assert!(uncaught(call("thrower", &[Val::I32(4)])));
        // The store goes on after exceptions escaped it.
        assert_eq!(
            call("catch_deep", &[Val::I32(3), Val::I32(1)]),
            Ok(vec![Val::I64(8)])
        );
        let resolve = exports_of(store, ia, "a");
        let mb = store.compile(&b).expect("compile b");
        let ib = store.instantiate(&mb, &resolve).expect("instantiate b");
        let f = func(store, ib, "run");
        assert_eq!(store.invoke(&f, &[Val::I32(9)]), Ok(vec![Val::I32(9)]));
        assert!(uncaught(store.invoke(&f, &[Val::I32(0)])));
        assert!(store.exceptions_held() > 0);
    });
}

/// A program that catches a million exceptions by their values holds
/// none of them; one that keeps every exception it catches
/// (`catch_all_ref` into a table) runs out of its memory owner's limit and
/// traps, out of memory; the kernel and the store go on, and dropping the
/// store gives back every frame the exceptions held.
#[test]
fn exceptions_are_charged_to_the_memory_owner_and_given_back() {
    use kernel_core::mem::{Owner, ProcessId};
    let module = wat(r#"(module
      (tag $e (param i32))
      (table $keep 1 exnref)
      (func (export "hoard") (param $n i32) (result i32)
        (local $i i32) (local $x exnref)
        (loop $next
          (block $h (result exnref)
            (try_table (catch_all_ref $h) (throw $e (local.get $i)))
            (unreachable))
          (local.set $x)
          (table.set $keep (i32.const 0) (local.get $x))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $i))
      ;; Catches only the values: each exception is freed when caught.
      (func (export "churn") (param $n i32) (result i32)
        (local $i i32) (local $sum i32)
        (loop $next
          (block $h (result i32)
            (try_table (catch $e $h) (throw $e (local.get $i)))
            (unreachable))
          (local.set $sum (i32.add (local.get $sum)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $sum)))"#);
    let owner = Owner::Process(ProcessId(77));
    on_kernel(|k| {
        k.vm().set_limit(owner, 256);
        {
            let mut store = Store::new(k, 1 << 20).expect("store");
            store.set_memory_owner(owner);
            let m = store.compile(&module).expect("compile");
            let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
            // A million exceptions caught without their object: far
            // more than the limit would hold at once.
            let churn = func(&store, inst, "churn");
            let n: i32 = 1_000_000;
            let sum = (0..n).fold(0i32, i32::wrapping_add);
            assert_eq!(
                store.invoke(&churn, &[Val::I32(n)]),
                Ok(vec![Val::I32(sum)])
            );
            assert_eq!(store.exceptions_held(), 0);
            let f = func(&store, inst, "hoard");
            assert_eq!(store.invoke(&f, &[Val::I32(10)]), Ok(vec![Val::I32(10)]));
            match store.invoke(&f, &[Val::I32(10_000_000)]) {
                Err(CallError::Trap(t)) => assert_eq!(t.kind, TrapKind::OutOfMemory),
                other => panic!("a hoard past the limit: {other:?}"),
            }
            assert!(k.vm().owner_frames(owner) > 0);
            // Still usable.
            let got = store.invoke(&f, &[Val::I32(0)]);
            assert!(
                got.is_ok() || matches!(got, Err(CallError::Trap(_))),
                "{got:?}"
            );
        }
        assert_eq!(k.vm().owner_frames(owner), 0);
    });
}

/// Atomics of every width touch only their own bytes and return the old
/// value zero-extended; an unaligned address traps `unaligned atomic`
/// before memory is touched, an address past the end traps out of
/// bounds; `wait` on a shared memory reports not-equal and times out no
/// sooner than asked, `notify` with no waiter wakes none, and `wait` on an
/// unshared memory traps.
#[test]
fn atomics_are_narrow_aligned_and_wait_times_out() {
    let module = wat(r#"(module
      (memory $s 1 1 shared)
      (memory $u 1 1)
      (func (export "rmw8") (param i32 i32) (result i32)
        (i32.atomic.rmw8.add_u $s (local.get 0) (local.get 1)))
      (func (export "cmpxchg16") (param i32 i64 i64) (result i64)
        (i64.atomic.rmw16.cmpxchg_u $s (local.get 0) (local.get 1) (local.get 2)))
      (func (export "xchg32") (param i32 i64) (result i64)
        (i64.atomic.rmw32.xchg_u $s (local.get 0) (local.get 1)))
      (func (export "load64") (param i32) (result i64) (i64.atomic.load $s (local.get 0)))
      (func (export "store") (param i32 i64) (i64.store $s (local.get 0) (local.get 1)))
      (func (export "wait32") (param i32 i32 i64) (result i32)
        (memory.atomic.wait32 $s (local.get 0) (local.get 1) (local.get 2)))
      (func (export "notify") (param i32 i32) (result i32)
        (memory.atomic.notify $s (local.get 0) (local.get 1)))
      (func (export "wait_unshared") (result i32)
        (memory.atomic.wait32 $u (i32.const 0) (i32.const 0) (i64.const 0))))"#);
    run(|store| {
        let m = store.compile(&module).expect("compile");
        let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
        let mut call = |name: &str, args: &[Val]| {
            let f = func(store, inst, name);
            store.invoke(&f, args)
        };
        let all = 0x1122_3344_5566_77ff_u64.cast_signed();
        call("store", &[Val::I32(8), Val::I64(all)]).expect("store");
        // 0xff + 2 wraps in its byte; the neighbours stay.
        assert_eq!(
            call("rmw8", &[Val::I32(8), Val::I32(2)]),
            Ok(vec![Val::I32(0xff)])
        );
        let after = 0x1122_3344_5566_7701_u64.cast_signed();
        assert_eq!(call("load64", &[Val::I32(8)]), Ok(vec![Val::I64(after)]));
        // A 16-bit compare-exchange compares only the low 16 bits of
        // `expected` and writes only 16 bits.
        assert_eq!(
            call(
                "cmpxchg16",
                &[Val::I32(10), Val::I64(0x5566 | 0x7_0000), Val::I64(0xabcd)]
            ),
            Ok(vec![Val::I64(0x5566)])
        );
        assert_eq!(
            call("xchg32", &[Val::I32(12), Val::I64(-1)]),
            Ok(vec![Val::I64(0x1122_3344)])
        );
        let now = 0xffff_ffff_abcd_7701_u64.cast_signed();
        assert_eq!(call("load64", &[Val::I32(8)]), Ok(vec![Val::I64(now)]));
        assert_eq!(
            trap_of(call("rmw8", &[Val::I32(65536), Val::I32(1)])),
            Some(TrapKind::MemoryOutOfBounds)
        );
        assert_eq!(
            trap_of(call("load64", &[Val::I32(12)])),
            Some(TrapKind::UnalignedAtomic)
        );
        assert_eq!(
            trap_of(call("cmpxchg16", &[Val::I32(9), Val::I64(0), Val::I64(0)])),
            Some(TrapKind::UnalignedAtomic)
        );
        assert_eq!(call("load64", &[Val::I32(8)]), Ok(vec![Val::I64(now)]));
        // Not equal: at once. Equal: the timeout, then timed-out.
        assert_eq!(
            call("wait32", &[Val::I32(0), Val::I32(1), Val::I64(-1)]),
            Ok(vec![Val::I32(1)])
        );
        let started = std::time::Instant::now();
        assert_eq!(
            call("wait32", &[Val::I32(0), Val::I32(0), Val::I64(20_000_000)]),
            Ok(vec![Val::I32(2)])
        );
        assert!(started.elapsed() >= std::time::Duration::from_millis(20));
        assert_eq!(
            call("notify", &[Val::I32(0), Val::I32(10)]),
            Ok(vec![Val::I32(0)])
        );
        assert_eq!(
            trap_of(call("wait_unshared", &[])),
            Some(TrapKind::UnsharedWait)
        );
        assert!(store.kernel().futexes().is_empty());
    });
}

/// A module of 100,000 exception tags is charged to its owner for what its
/// instance keeps of them (identity words in the context and the instance,
/// a box per tag): under a small limit it fails to instantiate, out of
/// memory, and holds nothing after; without one it instantiates.
#[test]
fn a_module_of_many_tags_is_charged_for_them() {
    use kernel_core::mem::{Owner, ProcessId};
    let mut text = String::from("(module (type (func))");
    for _ in 0..100_000 {
        text.push_str(" (tag (type 0))");
    }
    text.push(')');
    let module = wat(&text);
    let owner = Owner::Process(ProcessId(78));
    on_kernel(|k| {
        k.vm().set_limit(owner, 1024);
        {
            let mut store = Store::new(k, 1 << 20).expect("store");
            let m = store.compile(&module).expect("compile");
            store.set_memory_owner(owner);
            let r = store.instantiate(&m, &|_, _| None);
            assert!(matches!(r, Err(InstantiateError::Memory(_))), "{r:?}");
        }
        assert_eq!(k.vm().owner_frames(owner), 0);
        let mut store = Store::new(k, 1 << 20).expect("store");
        let m = store.compile(&module).expect("compile");
        store.instantiate(&m, &|_, _| None).expect("instantiate");
    });
}

/// Exceptions thrown from as deep as the stack allows, straight to the
/// top or caught and thrown again at every level: each call near the
/// stack's end either returns what the handler made of the exception or
/// traps with stack exhaustion, never anything else, and the store goes
/// on.
#[test]
fn exceptions_thrown_at_the_stack_limit_are_caught_or_exhaust_cleanly() {
    let module = wat(r#"(module
      (tag $e (param i32))
      (func $r (param i32) (result i32)
        (if (result i32) (i32.eqz (local.get 0))
          (then (throw $e (i32.const 7)))
          (else (i32.add (call $r (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))))
      ;; Every level catches the exception with its reference and throws
      ;; it again.
      (func $rr (param i32) (result i32)
        (if (i32.eqz (local.get 0)) (then (throw $e (i32.const 9))))
        (block $h (result exnref)
          (try_table (result i32) (catch_all_ref $h)
            (call $rr (i32.sub (local.get 0) (i32.const 1))))
          (return))
        (throw_ref))
      (func (export "deep") (param i32) (result i32)
        (block $h (result i32)
          (try_table (catch $e $h) (return (call $r (local.get 0))))
          (unreachable)))
      (func (export "rethrown") (param i32) (result i32)
        (block $h (result i32)
          (try_table (catch $e $h) (return (call $rr (local.get 0))))
          (unreachable))))"#);
    run(|store| {
        let m = store.compile(&module).expect("compile");
        let inst = store.instantiate(&m, &|_, _| None).expect("instantiate");
        for (name, caught) in [("deep", 7), ("rethrown", 9)] {
            let f = func(store, inst, name);
            let mut call = |n: i32| store.invoke(&f, &[Val::I32(n)]);
            // The depth where the stack runs out, to a factor of two...
            let mut hi = 1;
            while call(hi).is_ok() {
                hi *= 2;
                assert!(hi < 1 << 24, "{name}: the stack never ran out");
            }
            // ...then exactly.
            let mut lo = hi / 2;
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if call(mid).is_ok() {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            for n in lo.saturating_sub(8)..=hi + 8 {
                match call(n) {
                    Ok(v) => assert_eq!(v, vec![Val::I32(caught)], "{name} at {n}"),
                    Err(e) => assert_eq!(
                        trap_of(Err(e)),
                        Some(TrapKind::StackOverflow),
                        "{name} at {n}"
                    ),
                }
            }
            assert_eq!(call(3), Ok(vec![Val::I32(caught)]));
        }
    });
}
