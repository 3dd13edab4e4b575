//! WebAssembly 2.0 features on the hosted kernel, beyond what the spec
//! scripts check: many results through the array-call trampoline and host
//! thunks, traps raised by builtins unwinding like any other trap, table
//! limits, shared mutable globals, and function references that must not
//! cross stores (vm INV-VM-6).

use hal_hosted::{Config, Hosted};
use kernel_core::hal::Platform;
use kernel_core::kernel::Kernel;
use kernel_core::wasm::TrapKind;
use kernel_core::wasm::module::{FuncType, ValType};
use kernel_core::wasm::vm::{CallError, Extern, Func, InstanceId, InstantiateError, Store, Val};

fn wat(text: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(text).expect("lex");
    let mut m: wast::Wat<'_> = wast::parser::parse(&buf).expect("parse");
    m.encode().expect("encode")
}

fn with_kernel<R: Send>(f: impl for<'k> FnOnce(&'k Kernel<'_, Hosted>) -> R + Send) -> R {
    let hosted = Hosted::new(&Config {
        cpus: 1,
        memory: 64 << 20,
        window: 1 << 40,
        ..Config::default()
    })
    .expect("machine");
    hal_hosted::run_on_cpu(&hosted, 0, || kernel_core::boot::with_kernel(&hosted, f))
}

fn run<R: Send>(f: impl FnOnce(&mut Store<'_, '_, Hosted>) -> R + Send) -> R {
    with_kernel(|k| {
        let mut store = Store::new(k, 1 << 20).expect("store");
        f(&mut store)
    })
}

fn instance<P: Platform>(
    store: &mut Store<'_, '_, P>,
    text: &str,
    imports: &[(&str, Extern)],
) -> InstanceId {
    let m = store.compile(&wat(text)).expect("compile");
    store
        .instantiate(&m, &|_, n| {
            imports
                .iter()
                .find(|(name, _)| *name == n)
                .map(|(_, e)| e.clone())
        })
        .expect("instantiate")
}

fn func<P: Platform>(store: &Store<'_, '_, P>, inst: InstanceId, name: &str) -> Func {
    match store.export(inst, name) {
        Some(Extern::Func(f)) => f,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn many_results_cross_trampolines_and_host_thunks() {
    run(|s| {
        let ty = FuncType {
            params: vec![ValType::I64],
            results: [ValType::I32, ValType::I64, ValType::F32, ValType::F64].repeat(4),
        };
        let host = s
            .host_func(ty, |a| {
                let Val::I64(x) = a[0] else { return Vec::new() };
                (0..4)
                    .flat_map(|i| {
                        [
                            Val::I32(x as i32 + i),
                            Val::I64(x + i64::from(i)),
                            Val::F32((i as f32).to_bits()),
                            Val::F64(f64::from(i).to_bits()),
                        ]
                    })
                    .collect()
            })
            .expect("host func");
        let results = "(result i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64)";
        let inst = instance(
            s,
            &format!(
                r#"(module
                  (import "h" "many" (func $many (param i64) {results}))
                  (func (export "f") (param i64) {results}
                    (call $many (local.get 0))))"#
            ),
            &[("many", Extern::Func(host))],
        );
        let f = func(s, inst, "f");
        let got = s.invoke(&f, &[Val::I64(40)]).expect("call");
        assert_eq!(got.len(), 16);
        assert_eq!(got[0], Val::I32(40));
        assert_eq!(got[13], Val::I64(43));
        assert_eq!(got[14], Val::F32(3f32.to_bits()));
        assert_eq!(got[15], Val::F64(3f64.to_bits()));
    });
}

#[test]
fn builtin_traps_unwind_with_their_kind_and_write_nothing() {
    run(|s| {
        let inst = instance(
            s,
            r#"(module
              (memory (export "m") 1)
              (table $t 4 funcref)
              (func $fill (export "fill") (param i32 i32)
                (memory.fill (local.get 0) (i32.const 7) (local.get 1)))
              (func (export "outer") (call $fill (i32.const 65530) (i32.const 7)))
              (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0)))
              (func (export "tcopy") (param i32)
                (table.copy (local.get 0) (i32.const 0) (i32.const 2))))"#,
            &[],
        );
        let outer = func(s, inst, "outer");
        match s.invoke(&outer, &[]) {
            Err(CallError::Trap(t)) => {
                assert_eq!(t.kind, TrapKind::MemoryOutOfBounds);
                let funcs: Vec<u32> = t.backtrace.iter().map(|f| f.func_index).collect();
                assert_eq!(funcs, [0, 1], "{t}");
            }
            other => panic!("{other:?}"),
        }
        let load = func(s, inst, "load");
        assert_eq!(s.invoke(&load, &[Val::I32(65530)]), Ok(vec![Val::I32(0)]));
        let fill = func(s, inst, "fill");
        assert_eq!(s.invoke(&fill, &[Val::I32(65529), Val::I32(7)]), Ok(vec![]));
        assert_eq!(s.invoke(&load, &[Val::I32(65535)]), Ok(vec![Val::I32(7)]));
        let tcopy = func(s, inst, "tcopy");
        assert!(s.invoke(&tcopy, &[Val::I32(2)]).is_ok());
        match s.invoke(&tcopy, &[Val::I32(3)]) {
            Err(CallError::Trap(t)) => assert_eq!(t.kind, TrapKind::TableAccessOutOfBounds),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn table_limits_are_errors_not_panics() {
    run(|s| {
        let inst = instance(
            s,
            r#"(module
              (table $t 1 externref)
              (table $u 0 2 funcref)
              (func (export "grow") (param i32) (result i32)
                (table.grow $t (ref.null extern) (local.get 0)))
              (func (export "grow_u") (param i32) (result i32)
                (table.grow $u (ref.null func) (local.get 0))))"#,
            &[],
        );
        let grow = func(s, inst, "grow");
        assert_eq!(s.invoke(&grow, &[Val::I32(-1)]), Ok(vec![Val::I32(-1)]));
        assert_eq!(
            s.invoke(&grow, &[Val::I32(1 << 30)]),
            Ok(vec![Val::I32(-1)])
        );
        assert_eq!(s.invoke(&grow, &[Val::I32(3)]), Ok(vec![Val::I32(1)]));
        let grow_u = func(s, inst, "grow_u");
        assert_eq!(s.invoke(&grow_u, &[Val::I32(3)]), Ok(vec![Val::I32(-1)]));
        assert_eq!(s.invoke(&grow_u, &[Val::I32(2)]), Ok(vec![Val::I32(0)]));
        let m = s
            .compile(&wat("(module (table 4294967295 externref))"))
            .expect("compile");
        assert_eq!(
            s.instantiate(&m, &|_, _| None).err(),
            Some(InstantiateError::TooLarge)
        );
    });
}

#[test]
fn mutable_globals_are_shared_between_instances() {
    run(|s| {
        let g = s.host_global(Val::I64(5), true).expect("global");
        let a = instance(
            s,
            r#"(module
              (import "h" "g" (global $g (mut i64)))
              (global $r (export "r") (mut externref) (ref.null extern))
              (func (export "bump") (global.set $g (i64.add (global.get $g) (i64.const 1))))
              (func (export "keep") (param externref) (global.set $r (local.get 0))))"#,
            &[("g", Extern::Global(g.clone()))],
        );
        let Some(Extern::Global(r)) = s.export(a, "r") else {
            panic!("no r")
        };
        let b = instance(
            s,
            r#"(module
              (import "h" "g" (global $g (mut i64)))
              (import "h" "r" (global $r (mut externref)))
              (func (export "get") (result i64 externref) (global.get $g) (global.get $r)))"#,
            &[("g", Extern::Global(g.clone())), ("r", Extern::Global(r))],
        );
        let bump = func(s, a, "bump");
        let keep = func(s, a, "keep");
        s.invoke(&bump, &[]).expect("bump");
        s.invoke(&keep, &[Val::ExternRef(Some(9))]).expect("keep");
        assert_eq!(s.global_get(&g), Val::I64(6));
        let get = func(s, b, "get");
        assert_eq!(
            s.invoke(&get, &[]),
            Ok(vec![Val::I64(6), Val::ExternRef(Some(9))])
        );
    });
}

#[test]
fn function_references_do_not_cross_stores() {
    with_kernel(|k| {
        const M: &str = r#"(module
          (func $f (export "f") (result i32) (i32.const 11))
          (elem declare func $f)
          (table $t 1 funcref)
          (func (export "get") (result funcref) (ref.func $f))
          (func (export "call") (param funcref) (result i32)
            (table.set $t (i32.const 0) (local.get 0))
            (call_indirect (result i32) (i32.const 0))))"#;
        let mut a = Store::new(k, 1 << 20).expect("store a");
        let mut b = Store::new(k, 1 << 20).expect("store b");
        let ia = instance(&mut a, M, &[]);
        let ib = instance(&mut b, M, &[]);
        let get = func(&a, ia, "get");
        let fa = a.invoke(&get, &[]).expect("get");
        assert!(matches!(fa[..], [Val::FuncRef(Some(_))]));
        let call_a = func(&a, ia, "call");
        assert_eq!(a.invoke(&call_a, &fa), Ok(vec![Val::I32(11)]));
        let call_b = func(&b, ib, "call");
        assert_eq!(b.invoke(&call_b, &fa), Err(CallError::BadArguments));
        assert_eq!(
            b.host_global(fa[0], false).err(),
            Some(CallError::BadArguments)
        );
        // A host function returning a foreign reference (or a value of the
        // wrong type) hands wasm a null.
        let leak = fa[0];
        let ty = FuncType {
            params: vec![],
            results: vec![ValType::FUNCREF, ValType::FUNCREF],
        };
        let h = b
            .host_func(ty, move |_| vec![leak, Val::I32(5)])
            .expect("host");
        let ic = instance(
            &mut b,
            r#"(module
              (import "h" "h" (func $h (result funcref funcref)))
              (func (export "nulls") (result i32 i32) (local $x i32)
                (call $h) (ref.is_null) (local.set $x) (ref.is_null) (local.get $x)))"#,
            &[("h", Extern::Func(h))],
        );
        let nulls = func(&b, ic, "nulls");
        assert_eq!(b.invoke(&nulls, &[]), Ok(vec![Val::I32(1), Val::I32(1)]));
    });
}
