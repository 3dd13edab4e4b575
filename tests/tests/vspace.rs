//! Virtual space scales (INV-VM-1 with the 32 MiB default guard): `sim`'s
//! 64 TiB window holds 10,000 live linear memories at once, and a window
//! that runs out says so with its own error while the instances already
//! made go on working.

use hal_hosted::{Config, Hosted};
use kernel_core::kernel::MemError;
use kernel_core::mem::{GapError, VmError};
use kernel_core::wasm::vm::{Extern, InstanceId, InstantiateError, Store, Val};

const MODULE: &str = r#"(module
  (memory 1)
  (func (export "poke") (param i32) (result i32)
    (i32.store (i32.const 8) (local.get 0))
    (i32.load (i32.const 8))))"#;

fn wat(text: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(text).expect("lex");
    let mut m: wast::Wat<'_> = wast::parser::parse(&buf).expect("parse");
    m.encode().expect("encode")
}

/// Call `poke(v)` on `inst` and check that the memory gives `v` back.
fn poke(store: &mut Store<'_, '_, Hosted>, inst: InstanceId, v: i32) {
    let Some(Extern::Func(f)) = store.export(inst, "poke") else {
        panic!("no poke export");
    };
    assert_eq!(
        store.invoke(&f, &[Val::I32(v)]).expect("poke"),
        [Val::I32(v)]
    );
}

/// Instantiate `MODULE` until `count` instances live or instantiation
/// fails; the instances and the error, if any.
fn fill(window: usize, count: usize) -> (usize, Option<InstantiateError>) {
    let hosted = Hosted::new(&Config {
        cpus: 1,
        memory: 1 << 30,
        window,
        ..Config::default()
    })
    .expect("machine");
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            let mut store = Store::new(k, 1 << 20).expect("store");
            let module = store.compile(&wat(MODULE)).expect("compile");
            let mut live = Vec::new();
            let mut error = None;
            while live.len() < count {
                match store.instantiate(&module, &|_, _| None) {
                    Ok(i) => live.push(i),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            // Every memory is its own: each keeps what was stored in it.
            for (n, &i) in live.iter().enumerate() {
                if n % 997 == 0 || n + 1 == live.len() {
                    poke(&mut store, i, n as i32);
                }
            }
            (live.len(), error)
        })
    })
}

#[test]
fn sim_window_holds_ten_thousand_live_memories() {
    let (live, error) = fill(sim::WINDOW, 10_000);
    assert_eq!(live, 10_000, "failed early: {error:?}");
}

#[test]
fn an_exhausted_window_is_its_own_error() {
    // 64 GiB, riscv's window: about fifteen 4 GiB + guard slots.
    let (live, error) = fill(64 << 30, usize::MAX);
    assert!((8..16).contains(&live), "{live} instances");
    let error = error.expect("the window must run out");
    assert!(
        matches!(
            error,
            InstantiateError::Memory(MemError::Vm(VmError::Placement(GapError::Exhausted)))
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "kernel address space exhausted: no free virtual range fits"
    );
}
