//! The WebAssembly spec-suite runner: runs converted spec scripts
//! ([`script`]) against a running kernel and counts every directive as
//! passed or failed. The same code runs on every platform: the riscv kernel
//! boots with `test=spec` and runs the bundle embedded in its image; `sim
//! boot test=spec` runs the same bundle on hosted.
//!
//! Scripts come from `.wast` text through `convert` (crate `spec-script`,
//! std only, kernel-core feature `script-convert`): the converter encodes every module to its binary,
//! and decides on the spot the few assertions that need no kernel (quoted
//! text its own parser rejects as malformed).
//!
//! Invariants:
//! - INV-SPEC-1: every directive of a script that decodes adds exactly one
//!   to `passed` or `failed`; a script that does not decode counts one
//!   failure; nothing is skipped.
//! - INV-SPEC-2: each script runs in a fresh [`Store`], dropped when the
//!   script ends, which releases every memory, table and code object its
//!   instances had (so a long bundle does not exhaust the kernel window);
//!   the store allows what the script's `Features` ask for (multi-memory)
//!   and nothing more, so one script's features never leak into another's.
//! - INV-SPEC-3: a failure line is `file:line: what went wrong`, one line.

/// The binary script format (crate `spec-script`), shared with the
/// converter and with build scripts that embed converted suites.
pub use spec_script as script;
/// The `.wast` converter (crate `spec-script`, feature `convert`).
#[cfg(feature = "script-convert")]
pub use spec_script::convert;

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::hal::Platform;
use crate::kernel::Kernel;
use crate::wasm::TrapKind;
use crate::wasm::compile::CompiledModule;
use crate::wasm::module::{FuncType, MemoryType, TableType, ValType};
use crate::wasm::vm::{CallError, Extern, InstanceId, InstantiateError, Store, Val};
use script::{Action, Arg, DecodeError, Directive, Expect, RawScript};

/// What running one script found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// The script's name.
    pub name: String,
    /// Directives that did what the script asserts.
    pub passed: usize,
    /// Directives that did not.
    pub failed: usize,
    /// One line per failure (INV-SPEC-3).
    pub failures: Vec<String>,
}

/// Run every script of `bundle` on `kernel`, each in a fresh store whose
/// wasm may use `stack_budget` bytes of the calling CPU's stack, calling
/// `each` with every finished report (for progress output).
///
/// # Errors
/// [`DecodeError`] when the bundle's framing is damaged (a damaged script
/// block is a failed script instead, INV-SPEC-1).
pub fn run<P: Platform>(
    kernel: &Kernel<'_, P>,
    bundle: &[u8],
    stack_budget: usize,
    mut each: impl FnMut(&FileReport),
) -> Result<Vec<FileReport>, DecodeError> {
    let scripts = script::scripts(bundle)?;
    let mut out = Vec::with_capacity(scripts.len());
    for s in &scripts {
        let r = run_script(kernel, s, stack_budget);
        each(&r);
        out.push(r);
    }
    Ok(out)
}

/// `(passed, failed)` over all reports.
#[must_use]
pub fn totals(reports: &[FileReport]) -> (usize, usize) {
    reports
        .iter()
        .fold((0, 0), |(p, f), r| (p + r.passed, f + r.failed))
}

/// Width of the name column of [`row`] (the longest bundled name,
/// `simd/simd_i16x8_extadd_pairwise_i8x16.wast`, is 42 bytes; a longer
/// one only shifts its row).
pub const NAME_WIDTH: usize = 44;

/// The table's header line (with newline).
#[must_use]
pub fn header() -> String {
    format!(
        "{:<w$}  {:>7}  {:>7}\n",
        "file",
        "passed",
        "failed",
        w = NAME_WIDTH
    )
}

/// One table row (with newline).
#[must_use]
pub fn row(r: &FileReport) -> String {
    format!(
        "{:<w$}  {:>7}  {:>7}\n",
        r.name,
        r.passed,
        r.failed,
        w = NAME_WIDTH
    )
}

/// Up to `max` failure lines (then a line saying how many were left out)
/// and the final `N passed, M failed` line.
#[must_use]
pub fn tail(reports: &[FileReport], max: usize) -> String {
    let mut out = String::new();
    let all = reports.iter().flat_map(|r| r.failures.iter());
    let n = all.clone().count();
    for f in all.take(max) {
        let _ = writeln!(out, "{f}");
    }
    if n > max {
        let _ = writeln!(out, "... {} more failure lines", n - max);
    }
    let (p, f) = totals(reports);
    let _ = writeln!(out, "{p} passed, {f} failed");
    out
}

/// Linear memories a script may need at once (`memory_copy.wast` and
/// `align.wast` instantiate over a hundred modules with a memory each, and
/// a store keeps them all until the script ends).
pub const MEMORIES_PER_SCRIPT: usize = 256;

/// Bytes of a guarded memory's reservation (4 GiB plus the 2 GiB guard).
const GUARDED_RESERVE: usize = 6 << 30;

/// The per-memory reservation for a kernel window of `window` bytes:
/// `None` (4 GiB + guard, no explicit bounds checks) when the window holds
/// at least half of [`MEMORIES_PER_SCRIPT`] such reservations, else
/// `window / MEMORIES_PER_SCRIPT` with explicit bounds checks
/// ([`Store::bound_memories`]). Hosted spec runs use a 1 TiB window
/// (guarded), and so does riscv under Sv48 (64 TiB); riscv's Sv39 window,
/// on harts without Sv48, is 64 GiB (256 MiB per memory, enough for every
/// `memory.grow` the suites expect to succeed).
#[must_use]
pub fn memory_reserve(window: usize) -> Option<usize> {
    if window / GUARDED_RESERVE >= MEMORIES_PER_SCRIPT / 2 {
        None
    } else {
        Some(window / MEMORIES_PER_SCRIPT)
    }
}

/// Run one script in a fresh store (INV-SPEC-2).
pub fn run_script<P: Platform>(
    kernel: &Kernel<'_, P>,
    s: &RawScript<'_>,
    stack_budget: usize,
) -> FileReport {
    let mut report = FileReport {
        name: s.name.to_owned(),
        ..FileReport::default()
    };
    let name = s.name;
    let fail = |report: &mut FileReport, line: u32, msg: &str| {
        report.failed += 1;
        report.failures.push(format!("{name}:{line}: {msg}"));
    };
    let lines = match s.directives() {
        Ok(l) => l,
        Err(e) => {
            fail(&mut report, 1, &e.to_string());
            return report;
        }
    };
    let store = match Store::new(kernel, stack_budget) {
        Ok(mut store) => {
            if let Some(reserve) = memory_reserve(kernel.hal().kernel_window().len) {
                store.bound_memories(reserve);
            }
            store.set_multi_memory(s.features.multi_memory);
            store.set_memory64(s.features.memory64);
            store.set_reference_types(s.features.reference_types);
            store
        }
        Err(e) => {
            fail(&mut report, 1, &format!("no store: {e}"));
            return report;
        }
    };
    let mut runner = Runner {
        store,
        registered: BTreeMap::new(),
        named: BTreeMap::new(),
        current: None,
        spectest: BTreeMap::new(),
    };
    if let Err(e) = runner.spectest() {
        fail(&mut report, 1, &format!("no spectest module: {e}"));
        return report;
    }
    for l in lines {
        match runner.directive(l.directive) {
            Ok(()) => report.passed += 1,
            Err(msg) => fail(&mut report, l.line, &msg),
        }
    }
    report
}

/// Why a module could not be made an instance.
enum ModuleError {
    /// The binary did not compile.
    Compile(String),
    /// Instantiation failed.
    Instantiate(InstantiateError),
}

impl core::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Compile(e) => f.write_str(e),
            Self::Instantiate(e) => e.fmt(f),
        }
    }
}

/// Why an invocation did not return values.
enum InvokeError {
    /// The module, export or arguments could not be had.
    Setup(String),
    /// The call failed or trapped.
    Call(CallError),
}

impl core::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Setup(e) => f.write_str(e),
            Self::Call(e) => e.fmt(f),
        }
    }
}

/// The exports of the `spectest` host module the spec scripts import:
/// `print*` functions that accept their parameters and do nothing, the
/// globals `global_i32` / `global_i64` (666) and `global_f32` /
/// `global_f64` (666.6), a funcref `table` (10..20) and a `memory` (1..2
/// pages), made in `store`.
///
/// # Errors
/// The message of the store operation that failed.
pub fn spectest_exports<P: Platform>(
    s: &mut Store<'_, '_, P>,
) -> Result<BTreeMap<&'static str, Extern>, String> {
    let mut exports = BTreeMap::new();
    let print = |params: &[ValType]| FuncType {
        params: params.to_vec(),
        results: Vec::new(),
    };
    use ValType::{F32 as TF32, F64 as TF64, I32, I64};
    for (name, params) in [
        ("print", &[][..]),
        ("print_i32", &[I32][..]),
        ("print_i64", &[I64][..]),
        ("print_f32", &[TF32][..]),
        ("print_f64", &[TF64][..]),
        ("print_i32_f32", &[I32, TF32][..]),
        ("print_f64_f64", &[TF64, TF64][..]),
    ] {
        let f = s
            .host_func(print(params), |_| Vec::new())
            .map_err(|e| e.to_string())?;
        exports.insert(name, Extern::Func(f));
    }
    for (name, v) in [
        ("global_i32", Val::I32(666)),
        ("global_i64", Val::I64(666)),
        ("global_f32", Val::F32(666.6f32.to_bits())),
        ("global_f64", Val::F64(666.6f64.to_bits())),
    ] {
        let g = s.host_global(v, false).map_err(|e| e.to_string())?;
        exports.insert(name, Extern::Global(g));
    }
    let table = s
        .host_table(TableType {
            elem: ValType::FUNCREF,
            min: 10,
            max: Some(20),
        })
        .map_err(|e| e.to_string())?;
    exports.insert("table", table);
    let memory = s
        .host_memory(MemoryType {
            min_pages: 1,
            max_pages: Some(2),
            memory64: false,
            shared: false,
        })
        .map_err(|e| e.to_string())?;
    exports.insert("memory", memory);
    let shared = s
        .host_memory(MemoryType {
            min_pages: 1,
            max_pages: Some(2),
            memory64: false,
            shared: true,
        })
        .map_err(|e| e.to_string())?;
    exports.insert("shared_memory", shared);
    Ok(exports)
}

/// Instantiate `module` in `store` the way spec scripts link: imports from
/// `spectest` come from `spectest` (see [`spectest_exports`]), any other
/// module name is looked up with `registered` (the `register` directive)
/// and the import taken from that instance's exports.
///
/// # Errors
/// As [`Store::instantiate`]: a missing or mismatched import, a failed
/// segment, a trapping start function.
pub fn instantiate_linked<P: Platform>(
    store: &mut Store<'_, '_, P>,
    module: &CompiledModule,
    spectest: &BTreeMap<&'static str, Extern>,
    registered: impl Fn(&str) -> Option<InstanceId>,
) -> Result<InstanceId, InstantiateError> {
    let mut imports: BTreeMap<(String, String), Extern> = BTreeMap::new();
    for imp in &module.info.imports {
        let ext = if imp.module == "spectest" {
            spectest.get(imp.name.as_str()).cloned()
        } else {
            registered(&imp.module).and_then(|i| store.export(i, &imp.name))
        };
        if let Some(ext) = ext {
            imports.insert((imp.module.clone(), imp.name.clone()), ext);
        }
    }
    store.instantiate(module, &|m, n| {
        imports.get(&(m.to_owned(), n.to_owned())).cloned()
    })
}

/// The spec's message for a failed instantiation (the trap's message for a
/// trapping start function).
pub fn instantiate_message(e: &InstantiateError) -> String {
    match e {
        InstantiateError::Start(CallError::Trap(t)) => t.kind.message().to_owned(),
        other => other.to_string(),
    }
}

struct Runner<'k, 'h, P: Platform> {
    store: Store<'k, 'h, P>,
    /// `register`ed names.
    registered: BTreeMap<String, InstanceId>,
    /// `$id`s of modules.
    named: BTreeMap<String, InstanceId>,
    /// The most recent module.
    current: Option<InstanceId>,
    /// The `spectest` module's exports.
    spectest: BTreeMap<&'static str, Extern>,
}

impl<P: Platform> Runner<'_, '_, P> {
    fn spectest(&mut self) -> Result<(), String> {
        self.spectest = spectest_exports(&mut self.store)?;
        Ok(())
    }

    fn directive(&mut self, d: Directive<'_>) -> Result<(), String> {
        match d {
            Directive::Module { name, bytes } => {
                let inst = self.module(bytes).map_err(|e| e.to_string())?;
                self.current = Some(inst);
                if let Some(id) = name {
                    self.named.insert(id.to_owned(), inst);
                }
                Ok(())
            }
            Directive::Register { as_name, module } => {
                let inst = self.instance(module)?;
                self.registered.insert(as_name.to_owned(), inst);
                Ok(())
            }
            Directive::Action(a) => self.action(&a).map(drop).map_err(|e| e.to_string()),
            Directive::AssertReturn { action, expected } => {
                let got = self.action(&action).map_err(|e| e.to_string())?;
                check_results(&got, &expected)
            }
            Directive::AssertTrap { action, message } => match self.action(&action) {
                Err(InvokeError::Call(CallError::Trap(t))) => {
                    expect_message(t.kind.message(), message)
                }
                Err(e) => Err(format!("expected trap `{message}`, got {e}")),
                Ok(v) => Err(format!("expected trap `{message}`, got {}", show_vals(&v))),
            },
            Directive::AssertModuleTrap { bytes, message } => match self.module(bytes) {
                Err(ModuleError::Instantiate(e)) => {
                    expect_message(&instantiate_message(&e), message)
                }
                Err(e) => Err(format!("expected trap `{message}`, got {e}")),
                Ok(_) => Err(format!("expected trap `{message}`, module instantiated")),
            },
            Directive::AssertExhaustion { action, message } => match self.action(&action) {
                Err(InvokeError::Call(CallError::Trap(t))) if t.kind == TrapKind::StackOverflow => {
                    expect_message(t.kind.message(), message)
                }
                Err(e) => Err(format!("expected exhaustion `{message}`, got {e}")),
                Ok(v) => Err(format!(
                    "expected exhaustion `{message}`, got {}",
                    show_vals(&v)
                )),
            },
            Directive::AssertRejected { bytes, message } => match self.store.compile(bytes) {
                Err(_) => Ok(()),
                Ok(_) => Err(format!("module accepted, expected `{message}`")),
            },
            Directive::AssertUnlinkable { bytes, message } => match self.module(bytes) {
                Err(ModuleError::Instantiate(e)) => {
                    expect_message(&instantiate_message(&e), message)
                }
                Err(e) => Err(format!("expected unlinkable `{message}`, got {e}")),
                Ok(_) => Err(format!("expected unlinkable `{message}`, module linked")),
            },
            Directive::Decided { passed, why } => {
                if passed {
                    Ok(())
                } else {
                    Err(why.to_owned())
                }
            }
        }
    }

    /// Compile and instantiate `bytes`, importing from `spectest` and the
    /// registered modules.
    fn module(&mut self, bytes: &[u8]) -> Result<InstanceId, ModuleError> {
        let module = self
            .store
            .compile(bytes)
            .map_err(|e| ModuleError::Compile(e.to_string()))?;
        let registered = &self.registered;
        instantiate_linked(&mut self.store, &module, &self.spectest, |name| {
            registered.get(name).copied()
        })
        .map_err(ModuleError::Instantiate)
    }

    fn instance(&self, id: Option<&str>) -> Result<InstanceId, String> {
        match id {
            Some(id) => self
                .named
                .get(id)
                .copied()
                .ok_or_else(|| format!("unknown module ${id}")),
            None => self
                .current
                .ok_or_else(|| "no module instantiated".to_owned()),
        }
    }

    fn action(&mut self, a: &Action<'_>) -> Result<Vec<Val>, InvokeError> {
        match a {
            Action::Invoke { module, name, args } => {
                let inst = self.instance(*module).map_err(InvokeError::Setup)?;
                let Some(Extern::Func(f)) = self.store.export(inst, name) else {
                    return Err(InvokeError::Setup(format!("no exported function `{name}`")));
                };
                let args: Vec<Val> = args.iter().map(|a| arg(*a)).collect();
                self.store.invoke(&f, &args).map_err(InvokeError::Call)
            }
            Action::Get { module, name } => {
                let inst = self.instance(*module).map_err(InvokeError::Setup)?;
                match self.store.export(inst, name) {
                    Some(Extern::Global(g)) => Ok(alloc::vec![self.store.global_get(&g)]),
                    _ => Err(InvokeError::Setup(format!("no exported global `{name}`"))),
                }
            }
        }
    }
}

fn arg(a: Arg) -> Val {
    match a {
        Arg::I32(x) => Val::I32(x),
        Arg::I64(x) => Val::I64(x),
        Arg::F32(x) => Val::F32(x),
        Arg::F64(x) => Val::F64(x),
        Arg::NullFunc => Val::FuncRef(None),
        Arg::NullExtern => Val::ExternRef(None),
        Arg::Extern(n) => Val::ExternRef(Some(n)),
        Arg::V128(x) => Val::V128(x),
    }
}

/// Whether the kernel's message `actual` is the spec's `expected`: one is
/// a prefix of the other (the spec interpreter appends details the kernel's
/// messages do not carry, e.g. `uninitialized element 7`; the kernel's
/// link errors append the import's name).
/// Whether a trap or error message matches the script's: either may be a
/// prefix of the other (the spec adds details such as an element index).
///
/// # Errors
/// A line naming both messages.
pub fn expect_message(actual: &str, expected: &str) -> Result<(), String> {
    if actual.starts_with(expected) || expected.starts_with(actual) {
        Ok(())
    } else {
        Err(format!("expected `{expected}`, got `{actual}`"))
    }
}

fn check_results(got: &[Val], want: &[Expect]) -> Result<(), String> {
    let ok = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| matches(*g, w));
    if ok {
        Ok(())
    } else {
        let got: Vec<String> = got.iter().map(|v| show_val(*v)).collect();
        let want: Vec<String> = want.iter().map(show_expect).collect();
        Err(format!(
            "got [{}], expected [{}]",
            got.join(" "),
            want.join(" ")
        ))
    }
}

fn show_vals(vs: &[Val]) -> String {
    let v: Vec<String> = vs.iter().map(|v| show_val(*v)).collect();
    format!("[{}]", v.join(" "))
}

fn show_val(v: Val) -> String {
    // Debug, but v128 in hex (lanes readable): `Val` grows with the
    // proposals the kernel runs.
    match v {
        Val::V128(x) => format!("V128({x:#034x})"),
        other => format!("{other:?}"),
    }
}

fn show_expect(w: &Expect) -> String {
    match w {
        Expect::V128(x) => format!("V128({x:#034x})"),
        Expect::Either(alts) => {
            let alts: Vec<String> = alts.iter().map(show_expect).collect();
            format!("Either[{}]", alts.join(" | "))
        }
        other => format!("{other:?}"),
    }
}

/// Whether `v` matches `w` (NaN patterns per the spec interpreter:
/// canonical = quiet bit only, any sign; arithmetic = quiet bit set, any
/// payload and sign; a literal compares bit for bit; a v128 float lane is
/// checked as the scalar it holds, lane 0 in the low bits).
fn matches(v: Val, w: &Expect) -> bool {
    const F32_EXP_Q: u32 = 0x7fc0_0000;
    const F64_EXP_Q: u64 = 0x7ff8_0000_0000_0000;
    match (v, w) {
        (_, Expect::Either(alts)) => alts.iter().any(|a| matches(v, a)),
        (Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None), Expect::NullAny) => true,
        (Val::FuncRef(None), Expect::NullFunc) => true,
        (Val::ExternRef(None), Expect::NullExtern) => true,
        (Val::FuncRef(Some(_)), Expect::Func) => true,
        (Val::ExternRef(Some(a)), Expect::Extern(b)) => b.is_none_or(|b| a == b),
        (Val::I32(a), Expect::I32(b)) => a == *b,
        (Val::I64(a), Expect::I64(b)) => a == *b,
        (Val::F32(a), Expect::F32(b)) => a == *b,
        (Val::F64(a), Expect::F64(b)) => a == *b,
        (Val::F32(a), Expect::F32CanonicalNan) => a & 0x7fff_ffff == F32_EXP_Q,
        (Val::F32(a), Expect::F32ArithmeticNan) => a & F32_EXP_Q == F32_EXP_Q,
        (Val::F64(a), Expect::F64CanonicalNan) => a & 0x7fff_ffff_ffff_ffff == F64_EXP_Q,
        (Val::F64(a), Expect::F64ArithmeticNan) => a & F64_EXP_Q == F64_EXP_Q,
        (Val::V128(a), Expect::V128(b)) => a == *b,
        (Val::V128(a), Expect::F32x4(lanes)) => lanes.iter().enumerate().all(|(i, l)| {
            #[expect(clippy::cast_possible_truncation, reason = "one 32-bit lane")]
            let lane = (a >> (32 * i)) as u32;
            matches(Val::F32(lane), &l.scalar())
        }),
        (Val::V128(a), Expect::F64x2(lanes)) => lanes.iter().enumerate().all(|(i, l)| {
            #[expect(clippy::cast_possible_truncation, reason = "one 64-bit lane")]
            let lane = (a >> (64 * i)) as u64;
            matches(Val::F64(lane), &l.scalar())
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_policy_by_window() {
        assert_eq!(memory_reserve(1 << 40), None);
        assert_eq!(memory_reserve(64 << 30), Some(256 << 20));
        // riscv under Sv48: a 64 TiB window, guard pages for every memory.
        assert_eq!(memory_reserve(64 << 40), None);
    }

    #[test]
    fn nan_patterns() {
        assert!(matches(Val::F32(0x7fc0_0000), &Expect::F32CanonicalNan));
        assert!(matches(Val::F32(0xffc0_0000), &Expect::F32CanonicalNan));
        assert!(!matches(Val::F32(0x7fc0_0001), &Expect::F32CanonicalNan));
        assert!(matches(Val::F32(0x7fc0_0001), &Expect::F32ArithmeticNan));
        assert!(!matches(Val::F32(0x7f80_0001), &Expect::F32ArithmeticNan));
        assert!(!matches(Val::F32(0x7f80_0000), &Expect::F32ArithmeticNan));
    }

    #[test]
    fn v128_exact_and_per_lane() {
        use script::Lane;
        let v = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100_u128;
        assert!(matches(Val::V128(v), &Expect::V128(v)));
        assert!(!matches(Val::V128(v ^ 1 << 127), &Expect::V128(v)));
        assert!(!matches(Val::I32(0), &Expect::V128(0)));
        let lanes = |l: [u32; 4]| {
            Val::V128(
                l.iter()
                    .enumerate()
                    .fold(0, |acc, (i, x)| acc | u128::from(*x) << (32 * i)),
            )
        };
        let p = Expect::F32x4([
            Lane::CanonicalNan,
            Lane::ArithmeticNan,
            Lane::Bits(0x3f80_0000),
            Lane::Bits(0),
        ]);
        assert!(matches(
            lanes([0xffc0_0000, 0x7fc0_0001, 0x3f80_0000, 0]),
            &p
        ));
        assert!(!matches(
            lanes([0x7fc0_0001, 0x7fc0_0001, 0x3f80_0000, 0]),
            &p
        ));
        assert!(!matches(
            lanes([0x7fc0_0000, 0x7f80_0001, 0x3f80_0000, 0]),
            &p
        ));
        assert!(!matches(
            lanes([0x7fc0_0000, 0x7fc0_0000, 0x3f80_0000, 1]),
            &p
        ));
        let p = Expect::F64x2([Lane::Bits(1), Lane::CanonicalNan]);
        assert!(matches(Val::V128(1 | 0xfff8_u128 << 112), &p));
        assert!(!matches(Val::V128(1 | 0xfff4_u128 << 112), &p));
        assert!(!matches(Val::V128(0xfff8_u128 << 112), &p));
    }
}
