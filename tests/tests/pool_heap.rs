//! A pooled region keeps no heap for what it gave back: a memory grown to
//! 512 MiB and dropped goes back to the kernel's pool (`mem::pool`), and
//! the slot leaves of the granules it decommitted are freed with them
//! (`Vm::decommit`), so idle slots cannot hold kernel heap that a guest
//! once made the kernel allocate. The hosted kernel's heap is this test
//! process's allocator, counted (`tests::heap`); this file holds this one
//! test so that nothing else allocates beside it.

use kernel_core::wasm::vm::{Extern, Store, Val};
use tests::heap::Counting;
use tests::machine::{on_config, wat};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Pages the memory grows by: 512 MiB, 8,192 granules, 16 leaves of slots.
const GROW: i32 = 8192;

#[test]
fn a_pooled_slot_keeps_no_heap_for_the_granules_it_gave_back() {
    let module = wat(&format!(
        r#"(module
          (memory 1 {max})
          (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
        max = GROW + 1
    ));
    let config = hal_hosted::Config {
        memory: 1 << 30,
        ..tests::machine::machine(1)
    };
    let ((small, grown), _) = on_config(&config, |kernel, _| {
        let cycle = |delta: i32| {
            let mut store = Store::new(kernel, 1 << 20).expect("store");
            let m = store.compile(&module).expect("compiles");
            let id = store.instantiate(&m, &|_, _| None).expect("instantiates");
            let Some(Extern::Func(grow)) = store.export(id, "grow") else {
                panic!("no grow export");
            };
            assert_eq!(
                store.invoke(&grow, &[Val::I32(delta)]),
                Ok(vec![Val::I32(1)])
            );
        };
        // Warm-up: the pool, the module cache and the stubs settle.
        cycle(1);
        cycle(1);
        let before = tests::heap::live();
        cycle(1);
        let small = tests::heap::live() - before;
        cycle(GROW);
        let grown = tests::heap::live() - before;
        assert_eq!(kernel.regions().stats().idle, 1, "the slot is pooled");
        (small, grown)
    });
    // One leaf is 4 KiB; the grown memory made 15 more and gave them back.
    assert!(
        grown - small < 4096,
        "the pooled slot kept {} bytes of heap more after a 512 MiB memory",
        grown - small
    );
}
