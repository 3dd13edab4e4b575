//! Every frame a wasm instance uses comes back: 1,000 instances each grow
//! their memory to 64 MiB, touch every wasm page and are dropped with their
//! store; the free frame count returns exactly to its starting value.

use hal_hosted::{Config, Hosted};
use kernel_core::mem::Owner;
use kernel_core::wasm::vm::{Extern, Store, Val};

const INSTANCES: usize = 1000;

const GROW_AND_TOUCH: &str = r#"(module
  (memory 1)
  (func (export "run") (result i32)
    (local $addr i32)
    (if (i32.eq (memory.grow (i32.const 1023)) (i32.const -1))
      (then (return (i32.const -1))))
    (loop $touch
      (i32.store (local.get $addr) (i32.const 7))
      (local.set $addr (i32.add (local.get $addr) (i32.const 65536)))
      (br_if $touch (i32.lt_u (local.get $addr) (i32.const 0x4000000))))
    (memory.size)))"#;

fn wat(text: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(text).expect("lex");
    let mut m: wast::Wat<'_> = wast::parser::parse(&buf).expect("parse");
    m.encode().expect("encode")
}

#[test]
fn thousand_instances_return_every_frame() {
    let hosted = Hosted::new(&Config {
        cpus: 1,
        memory: 256 << 20,
        ..Config::default()
    })
    .expect("machine");
    let bytes = wat(GROW_AND_TOUCH);
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            let free_before = k.frames().free_frames();
            let charged_before = k.vm().owner_frames(Owner::Kernel);
            // Compiled once: a compiled module is plain data; each store
            // places its own code object at instantiation.
            let module = Store::new(k, 1 << 20)
                .expect("store")
                .compile(&bytes)
                .expect("compile");
            for i in 0..INSTANCES {
                let mut store = Store::new(k, 1 << 20).expect("store");
                let inst = store
                    .instantiate(&module, &|_, _| None)
                    .expect("instantiate");
                let Some(Extern::Func(run)) = store.export(inst, "run") else {
                    panic!("no export");
                };
                // 1024 wasm pages = 64 MiB, every one touched.
                assert_eq!(
                    store.invoke(&run, &[]),
                    Ok(vec![Val::I32(1024)]),
                    "instance {i}"
                );
            }
            // The memory's region went back to the kernel's pool; released
            // from there, every frame is back.
            k.release_idle();
            assert_eq!(k.frames().free_frames(), free_before, "frames leaked");
            assert_eq!(
                k.vm().owner_frames(Owner::Kernel),
                charged_before,
                "charge not lifted"
            );
        });
    });
}
