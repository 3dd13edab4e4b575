//! Typed calls in both directions (`Store::typed`, `Store::call_typed`,
//! `Store::host_func_typed`): the same results as the untyped path, a
//! signature or store that does not match refused, traps and failing host
//! functions reported as on the untyped path.

use kernel_core::wasm::TrapKind;
use kernel_core::wasm::vm::{CallError, Extern, HostTrap, Store, Val};
use tests::machine::{on_machine, wat};

const MODULE: &str = r#"(module
  (import "env" "mix" (func $mix (param i32 i64 f32 f64) (result f64)))
  (import "env" "fail" (func $fail (param i32) (result i32)))
  (func (export "id") (param i32) (result i32) (local.get 0))
  (func (export "swap") (param i64 f32) (result f32 i64) (local.get 1) (local.get 0))
  (func (export "call_mix") (param i32) (result f64)
    (call $mix (local.get 0) (i64.const -5) (f32.const 0.5) (f64.const 2.25)))
  (func (export "call_fail") (param i32) (result i32) (call $fail (local.get 0)))
  (func (export "boom") (unreachable)))"#;

#[test]
fn typed_calls_match_untyped_ones_and_refuse_what_does_not_fit() {
    on_machine(1, |kernel, _| {
        let mut store = Store::new(kernel, 1 << 20).expect("store");
        let mix = store
            .host_func_typed(|(a, b, c, d): (i32, i64, f32, f64)| {
                Ok::<f64, HostTrap>(f64::from(a) + b as f64 + f64::from(c) * d)
            })
            .expect("mix");
        let fail = store
            .host_func_typed(|x: i32| {
                if x < 0 {
                    Err(HostTrap::Exit(x))
                } else {
                    Ok(x * 2)
                }
            })
            .expect("fail");
        let m = store.compile(&wat(MODULE)).expect("compiles");
        let inst = store
            .instantiate(&m, &|_, n| match n {
                "mix" => Some(Extern::Func(mix.clone())),
                "fail" => Some(Extern::Func(fail.clone())),
                _ => None,
            })
            .expect("instantiates");
        let func = |store: &Store<'_, '_, _>, name| match store.export(inst, name) {
            Some(Extern::Func(f)) => f,
            other => panic!("{name}: {other:?}"),
        };
        let (id, swap, call_mix, call_fail, boom) = (
            func(&store, "id"),
            func(&store, "swap"),
            func(&store, "call_mix"),
            func(&store, "call_fail"),
            func(&store, "boom"),
        );

        let id_t = store.typed::<i32, i32>(&id).expect("id typed");
        for x in [0, 1, -1, i32::MIN, i32::MAX] {
            assert_eq!(store.call_typed(&id_t, x), Ok(x));
            assert_eq!(store.invoke(&id, &[Val::I32(x)]), Ok(vec![Val::I32(x)]));
        }
        let swap_t = store
            .typed::<(i64, f32), (f32, i64)>(&swap)
            .expect("swap typed");
        assert_eq!(store.call_typed(&swap_t, (-7, 1.5)), Ok((1.5, -7)));

        // The typed host function sees the arguments wasm passed.
        let mix_t = store.typed::<i32, f64>(&call_mix).expect("call_mix typed");
        assert_eq!(store.call_typed(&mix_t, 10), Ok(10.0 - 5.0 + 0.5 * 2.25));

        // A failing typed host function traps its caller with its reason.
        let fail_t = store
            .typed::<i32, i32>(&call_fail)
            .expect("call_fail typed");
        assert_eq!(store.call_typed(&fail_t, 21), Ok(42));
        match store.call_typed(&fail_t, -3) {
            Err(CallError::Trap(t)) => {
                assert_eq!(t.kind, TrapKind::Host);
                assert_eq!(t.host, Some(HostTrap::Exit(-3)));
            }
            other => panic!("{other:?}"),
        }

        // A trap is a trap, typed or not.
        let boom_t = store.typed::<(), ()>(&boom).expect("boom typed");
        assert!(matches!(
            store.call_typed(&boom_t, ()),
            Err(CallError::Trap(t)) if t.kind == TrapKind::Unreachable
        ));

        // Signatures that do not match are refused.
        assert!(matches!(
            store.typed::<i64, i32>(&id),
            Err(CallError::BadArguments)
        ));
        assert!(matches!(
            store.typed::<i32, ()>(&id),
            Err(CallError::BadArguments)
        ));
        assert!(matches!(
            store.typed::<(i32, i32), i32>(&id),
            Err(CallError::BadArguments)
        ));

        // A typed function of one store is refused by another.
        let mut other = Store::new(kernel, 1 << 20).expect("store");
        assert!(matches!(
            other.call_typed(&id_t, 1),
            Err(CallError::BadArguments)
        ));
    });
}

/// The system interfaces' host functions (`Store::host_func_single`):
/// arguments through a slice on the stack, one result or none; a result
/// of the wrong type reads as zero; more than 16 parameters or a second
/// result are refused.
#[test]
fn single_result_host_functions_pass_arguments_without_allocating() {
    use kernel_core::wasm::module::{FuncType, ValType};
    on_machine(1, |kernel, _| {
        let mut store = Store::new(kernel, 1 << 20).expect("store");
        let ty = |params: Vec<ValType>, results: Vec<ValType>| FuncType { params, results };
        let add = store
            .host_func_single(
                ty(vec![ValType::I32, ValType::I64], vec![ValType::I64]),
                Box::new(|a: &[Val]| match a {
                    [Val::I32(x), Val::I64(y)] => Ok(Some(Val::I64(i64::from(*x) + y))),
                    _ => Ok(None),
                }),
            )
            .expect("add");
        let wrong = store
            .host_func_single(
                ty(vec![], vec![ValType::I32]),
                Box::new(|_: &[Val]| Ok(Some(Val::I64(7)))),
            )
            .expect("wrong");
        assert!(matches!(
            store.host_func_single(
                ty(vec![ValType::I32; 17], vec![]),
                Box::new(|_: &[Val]| Ok(None))
            ),
            Err(CallError::BadArguments)
        ));
        assert!(matches!(
            store.host_func_single(
                ty(vec![], vec![ValType::I32, ValType::I32]),
                Box::new(|_: &[Val]| Ok(None))
            ),
            Err(CallError::BadArguments)
        ));
        let m = store
            .compile(&wat(
                r#"(module
                  (import "env" "add" (func $add (param i32 i64) (result i64)))
                  (import "env" "wrong" (func $wrong (result i32)))
                  (func (export "f") (param i32) (result i64) (call $add (local.get 0) (i64.const 40)))
                  (func (export "g") (result i32) (call $wrong)))"#,
            ))
            .expect("compiles");
        let inst = store
            .instantiate(&m, &|_, n| match n {
                "add" => Some(Extern::Func(add.clone())),
                "wrong" => Some(Extern::Func(wrong.clone())),
                _ => None,
            })
            .expect("instantiates");
        let (Some(Extern::Func(f)), Some(Extern::Func(g))) =
            (store.export(inst, "f"), store.export(inst, "g"))
        else {
            panic!("exports");
        };
        assert_eq!(store.invoke(&f, &[Val::I32(2)]), Ok(vec![Val::I64(42)]));
        assert_eq!(store.invoke(&g, &[]), Ok(vec![Val::I32(0)]));
    });
}
