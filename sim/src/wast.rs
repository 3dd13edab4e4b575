//! The `.wast` script runner: executes every directive of a WebAssembly
//! spec-test script against a [`Store`] of a running kernel and counts each
//! one as passed or failed.
//!
//! Supported directives: `module` (text, `binary` and `quote` forms),
//! `register`, `invoke`, `get`, `assert_return` (with `nan:canonical` and
//! `nan:arithmetic`), `assert_trap` (of an invocation, or of a module whose
//! instantiation traps: the 1.0 scripts' `assert_uninstantiable`),
//! `assert_exhaustion`, `assert_invalid`, `assert_malformed` and
//! `assert_unlinkable`, with the `spectest` host module. Values are those
//! of WebAssembly 2.0: numbers, `v128.const` (results lane by lane in the
//! pattern's lane view, with `nan:canonical` / `nan:arithmetic` per float
//! lane), `ref.null func|extern`, `ref.extern N` (arguments and results),
//! `ref.func` (results: any non-null function) and `either` results.
//! Anything else is
//! counted as failed: no directive is skipped.
//!
//! One code path serves `sim wast` and the spec test in `tests/`:
//! [`run_hosted`] boots a hosted machine and runs scripts with
//! [`run_script`], each in a fresh store (dropped at the end of the script,
//! which frees its memories, tables and code).
//!
//! [`run_hosted_within`] runs under a time limit (`sim wast --timeout`,
//! [`crate::timeout`]): when it is up, the directive running is
//! interrupted and counted as failed (`file:line: timed out after <limit>`)
//! and nothing after it runs.
//!
//! Invariants:
//! - INV-WAST-1: every directive of a script that parses adds exactly one to
//!   `passed` or `failed`, up to the one running when a time limit is up
//!   (the last one run); a script that does not parse counts one failure.
//! - INV-WAST-2: a failure line is `file:line: what went wrong` (a script
//!   that does not parse: `file:line:col: ...`), one line;
//!   names from the script in it are escaped (`kernel_core::escape`).

use std::collections::HashMap;
use std::fmt::Write as _;

use hal_hosted::{Config, HostError, Hosted};
use kernel_core::escape;
use kernel_core::hal::Platform;
use kernel_core::kernel::Kernel;
use kernel_core::spec::{expect_message, instantiate_message};
use kernel_core::wasm::vm::{CallError, Extern, InstanceId, InstantiateError, Store, Val};
use kernel_core::wasm::{CompileError, TrapKind};
use wast::core::{AbstractHeapType, HeapType};
use wast::core::{NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::token::{F32, F64, Id};
use wast::{
    QuoteWat, QuoteWatTest, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet,
};

use crate::input::line_col;
use crate::timeout::{Limit, Watchdog, with_watchdog};

/// Bytes of the CPU stack wasm may use before it traps with
/// `call stack exhausted` (the hosted CPU stack is 16 MiB).
pub const STACK_BUDGET: usize = 4 << 20;

/// Smallest kernel window [`run_hosted`] gives the machine: every linear
/// memory reserves 4 GiB plus its guard, and a script's store keeps all of
/// its instances' memories until the script ends.
pub const MIN_WINDOW: usize = 1 << 40;

/// One script to run: its name (used in failure lines) and text.
#[derive(Debug, Clone)]
pub struct Script {
    /// Name, usually the file name.
    pub name: String,
    /// The `.wast` text.
    pub text: String,
    /// Proposals beyond WebAssembly 2.0 the script is written for.
    pub extensions: Extensions,
}

/// What a script's store accepts beyond WebAssembly 2.0. The default is
/// what the kernel accepts; the WebAssembly 1.0 and 2.0 scripts assert
/// that some of it is refused, so they run with less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extensions {
    /// Several memories per module (multi-memory, part of WebAssembly
    /// 3.0; on by default).
    pub multi_memory: bool,
    /// Memories addressed with `i64` (memory64, part of WebAssembly 3.0;
    /// on by default).
    pub memory64: bool,
    /// Reference types and the proposals built on them (on by default;
    /// off for scripts written against WebAssembly 1.0).
    pub reference_types: bool,
}

impl Default for Extensions {
    fn default() -> Self {
        Self {
            multi_memory: true,
            memory64: true,
            reference_types: true,
        }
    }
}

/// What running one script found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// The script's name.
    pub name: String,
    /// Directives that did what the script asserts.
    pub passed: usize,
    /// Directives that did not.
    pub failed: usize,
    /// One line per failure: `file:line: what went wrong` (INV-WAST-2).
    pub failures: Vec<String>,
}

/// Boot a hosted machine with `config` (its window raised to at least
/// [`MIN_WINDOW`]) and run every script on CPU 0, each in a fresh store.
///
/// # Errors
/// [`WastError::Machine`] when the machine cannot be created.
pub fn run_hosted(config: &Config, scripts: &[Script]) -> Result<Vec<FileReport>, WastError> {
    run_hosted_within(config, scripts, None).map(|run| run.reports)
}

/// What [`run_hosted_within`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WastRun {
    /// One report per script run (scripts after a timeout are not run).
    pub reports: Vec<FileReport>,
    /// Whether the time limit was up before the run ended (the directive
    /// running then failed, and nothing after it ran).
    pub timed_out: bool,
}

/// Why [`run_hosted_within`] ran nothing.
#[derive(Debug)]
pub enum WastError {
    /// The machine could not be created.
    Machine(HostError),
    /// The thread watching the time limit could not be started.
    Watcher(std::io::Error),
}

impl std::fmt::Display for WastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Machine(e) => write!(f, "cannot start the machine: {e}"),
            Self::Watcher(e) => write!(f, "cannot start the timeout watcher: {e}"),
        }
    }
}

/// [`run_hosted`] under a time limit for the whole run (module doc): the
/// reports of the scripts that ran, and whether the limit was up.
///
/// # Errors
/// [`WastError`] when nothing could run.
pub fn run_hosted_within(
    config: &Config,
    scripts: &[Script],
    limit: Option<Limit>,
) -> Result<WastRun, WastError> {
    let mut config = *config;
    config.window = config.window.max(MIN_WINDOW);
    let hosted = Hosted::new(&config).map_err(WastError::Machine)?;
    hal_hosted::run_on_cpu(&hosted, 0, || {
        kernel_core::boot::with_kernel(&hosted, |k| {
            with_watchdog(limit, |dog| {
                let mut reports = Vec::with_capacity(scripts.len());
                for s in scripts {
                    reports.push(run_script_watched(k, s, dog));
                    if dog.expired() {
                        break;
                    }
                }
                WastRun {
                    reports,
                    timed_out: dog.expired(),
                }
            })
        })
    })
    .map_err(WastError::Watcher)
}

/// The per-file table, the failure lines and the final
/// `N passed, M failed` line.
#[must_use]
pub fn summary(reports: &[FileReport]) -> String {
    let mut out = String::new();
    let width = reports
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(out, "{:<width$}  {:>7}  {:>7}", "file", "passed", "failed");
    for r in reports {
        let _ = writeln!(out, "{:<width$}  {:>7}  {:>7}", r.name, r.passed, r.failed);
    }
    for r in reports {
        for f in &r.failures {
            let _ = writeln!(out, "{f}");
        }
    }
    let (p, f) = totals(reports);
    let _ = writeln!(out, "{p} passed, {f} failed");
    out
}

/// `(passed, failed)` over all reports.
#[must_use]
pub fn totals(reports: &[FileReport]) -> (usize, usize) {
    reports
        .iter()
        .fold((0, 0), |(p, f), r| (p + r.passed, f + r.failed))
}

/// Run every directive of the script `text` (named `name`) on `kernel`, in
/// a fresh store.
pub fn run_script<P: Platform>(kernel: &Kernel<'_, P>, script: &Script) -> FileReport {
    run_script_watched(kernel, script, &Watchdog::unlimited())
}

/// [`run_script`] with the store watched by `dog`: when it expires, the
/// directive running fails as timed out and the script ends there.
fn run_script_watched<'k, P: Platform>(
    kernel: &'k Kernel<'_, P>,
    script: &Script,
    dog: &Watchdog<'k>,
) -> FileReport {
    let (name, text) = (script.name.as_str(), script.text.as_str());
    let mut report = FileReport {
        name: name.to_owned(),
        ..FileReport::default()
    };
    let fail_whole = |report: &mut FileReport, line: usize, msg: String| {
        report.failed += 1;
        report.failures.push(format!("{name}:{line}: {msg}"));
    };
    let mut lexer = Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buf = match ParseBuffer::new_with_lexer(lexer) {
        Ok(b) => b,
        Err(e) => {
            return unparsed(report, text, "lex", &e);
        }
    };
    let wast: Wast<'_> = match parser::parse(&buf) {
        Ok(w) => w,
        Err(e) => {
            return unparsed(report, text, "parse", &e);
        }
    };
    let store = match Store::new(kernel, STACK_BUDGET) {
        Ok(mut s) => {
            s.set_multi_memory(script.extensions.multi_memory);
            s.set_memory64(script.extensions.memory64);
            s.set_reference_types(script.extensions.reference_types);
            s
        }
        Err(e) => {
            fail_whole(&mut report, 1, format!("no store: {e}"));
            return report;
        }
    };
    dog.watch(&store);
    let mut runner = Runner {
        store,
        registered: HashMap::new(),
        named: HashMap::new(),
        current: None,
        spectest: std::collections::BTreeMap::new(),
    };
    if let Err(e) = runner.spectest() {
        fail_whole(&mut report, 1, format!("no spectest module: {e}"));
        return report;
    }
    for d in wast.directives {
        let (line, _) = d.span().linecol_in(text);
        match runner.directive(d) {
            Ok(()) => report.passed += 1,
            Err(_) if dog.expired() => {
                let limit = dog.limit().map(|l| l.to_string()).unwrap_or_default();
                fail_whole(&mut report, line + 1, format!("timed out after {limit}"));
            }
            Err(msg) => fail_whole(&mut report, line + 1, msg),
        }
        if dog.expired() {
            break;
        }
    }
    report
}

/// `report` with the one failure of a script that did not lex or parse:
/// `file:line:col: cannot parse script: why`.
fn unparsed(mut report: FileReport, text: &str, what: &str, e: &wast::Error) -> FileReport {
    let (line, col) = line_col(text, e.span().offset());
    report.failed += 1;
    report.failures.push(format!(
        "{}:{line}:{col}: cannot {what} script: {}",
        report.name,
        escape::name(&e.message())
    ));
    report
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// Why a module could not be made an instance.
enum ModuleError {
    /// The text did not encode.
    Encode(String),
    /// The binary did not compile.
    Compile(CompileError),
    /// Instantiation failed.
    Instantiate(InstantiateError),
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "text does not encode: {e}"),
            Self::Compile(e) => e.fmt(f),
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

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Setup(e) => f.write_str(e),
            Self::Call(e) => e.fmt(f),
        }
    }
}

struct Runner<'k, 'h, P: Platform> {
    store: Store<'k, 'h, P>,
    /// `register`ed names.
    registered: HashMap<String, InstanceId>,
    /// `$id`s of modules.
    named: HashMap<String, InstanceId>,
    /// The most recent module.
    current: Option<InstanceId>,
    /// The `spectest` module's exports.
    spectest: std::collections::BTreeMap<&'static str, Extern>,
}

impl<P: Platform> Runner<'_, '_, P> {
    fn spectest(&mut self) -> Result<(), String> {
        self.spectest = kernel_core::spec::spectest_exports(&mut self.store)?;
        Ok(())
    }

    fn directive(&mut self, d: WastDirective<'_>) -> Result<(), String> {
        match d {
            WastDirective::Module(mut m) => {
                let id = m.name();
                let inst = self.module(&mut m).map_err(|e| e.to_string())?;
                self.current = Some(inst);
                if let Some(id) = id {
                    self.named.insert(id.name().to_owned(), inst);
                }
                Ok(())
            }
            WastDirective::Register { name, module, .. } => {
                let inst = self.instance(module)?;
                self.registered.insert(name.to_owned(), inst);
                Ok(())
            }
            WastDirective::Invoke(call) => self.invoke(&call).map(drop).map_err(|e| e.to_string()),
            WastDirective::AssertReturn { exec, results, .. } => {
                let got = match exec {
                    WastExecute::Invoke(call) => self.invoke(&call).map_err(|e| e.to_string())?,
                    WastExecute::Get { module, global, .. } => vec![self.get(module, global)?],
                    WastExecute::Wat(w) => {
                        let inst = self
                            .module(&mut QuoteWat::Wat(w))
                            .map_err(|e| e.to_string())?;
                        self.current = Some(inst);
                        Vec::new()
                    }
                };
                check_results(&got, &results)
            }
            WastDirective::AssertTrap { exec, message, .. } => {
                let actual = match exec {
                    WastExecute::Invoke(call) => match self.invoke(&call) {
                        Err(InvokeError::Call(CallError::Trap(t))) => t.kind.message().to_owned(),
                        Err(e) => return Err(format!("expected trap `{message}`, got {e}")),
                        Ok(v) => {
                            return Err(format!(
                                "expected trap `{message}`, got {}",
                                show_vals(&v)
                            ));
                        }
                    },
                    WastExecute::Wat(w) => match self.module(&mut QuoteWat::Wat(w)) {
                        Err(ModuleError::Instantiate(e)) => instantiate_message(&e),
                        Err(e) => return Err(format!("expected trap `{message}`, got {e}")),
                        Ok(_) => {
                            return Err(format!("expected trap `{message}`, module instantiated"));
                        }
                    },
                    WastExecute::Get { .. } => {
                        return Err("assert_trap of a `get`".to_owned());
                    }
                };
                expect_message(&actual, message)
            }
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(&call) {
                Err(InvokeError::Call(CallError::Trap(t))) if t.kind == TrapKind::StackOverflow => {
                    expect_message(t.kind.message(), message)
                }
                Err(e) => Err(format!("expected exhaustion `{message}`, got {e}")),
                Ok(v) => Err(format!(
                    "expected exhaustion `{message}`, got {}",
                    show_vals(&v)
                )),
            },
            WastDirective::AssertException { exec, .. } => {
                let WastExecute::Invoke(call) = exec else {
                    return Err("assert_exception of a module or a `get`".to_owned());
                };
                match self.invoke(&call) {
                    Err(InvokeError::Call(CallError::Trap(t)))
                        if t.kind == TrapKind::UncaughtException =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(format!("expected an exception, got {e}")),
                    Ok(v) => Err(format!("expected an exception, got {}", show_vals(&v))),
                }
            }
            WastDirective::AssertInvalid {
                mut module,
                message,
                ..
            } => {
                // An invalid module is well-formed: it must encode.
                let bytes = encode(&mut module).map_err(|e| {
                    format!("expected invalid `{message}`, text does not encode: {e}")
                })?;
                self.must_reject(&bytes, message)
            }
            WastDirective::AssertMalformed {
                mut module,
                message,
                ..
            } => {
                // Quoted text that `wast` itself rejects is malformed: correct.
                let Ok(bytes) = encode(&mut module) else {
                    return Ok(());
                };
                self.must_reject(&bytes, message)
            }
            WastDirective::AssertUnlinkable {
                module, message, ..
            } => match self.module(&mut QuoteWat::Wat(module)) {
                Err(ModuleError::Instantiate(e)) => {
                    expect_message(&instantiate_message(&e), message)
                }
                Err(e) => Err(format!("expected unlinkable `{message}`, got {e}")),
                Ok(_) => Err(format!("expected unlinkable `{message}`, module linked")),
            },
            other => {
                let what = format!("{other:?}");
                let what = what.split([' ', '(', '{']).next().unwrap_or("?");
                Err(format!("unsupported directive {what}"))
            }
        }
    }

    /// The kernel must refuse to load `bytes`.
    fn must_reject(&self, bytes: &[u8], message: &str) -> Result<(), String> {
        match self.store.compile(bytes) {
            Err(_) => Ok(()),
            Ok(_) => Err(format!("module accepted, expected `{message}`")),
        }
    }

    /// Encode, compile and instantiate `m`.
    fn module(&mut self, m: &mut QuoteWat<'_>) -> Result<InstanceId, ModuleError> {
        let bytes = encode(m).map_err(ModuleError::Encode)?;
        let module = self.store.compile(&bytes).map_err(ModuleError::Compile)?;
        let registered = &self.registered;
        kernel_core::spec::instantiate_linked(&mut self.store, &module, &self.spectest, |name| {
            registered.get(name).copied()
        })
        .map_err(ModuleError::Instantiate)
    }

    fn instance(&self, id: Option<Id<'_>>) -> Result<InstanceId, String> {
        match id {
            Some(id) => self
                .named
                .get(id.name())
                .copied()
                .ok_or_else(|| format!("unknown module ${}", escape::name(id.name()))),
            None => self
                .current
                .ok_or_else(|| "no module instantiated".to_owned()),
        }
    }

    fn invoke(&mut self, call: &WastInvoke<'_>) -> Result<Vec<Val>, InvokeError> {
        let inst = self.instance(call.module).map_err(InvokeError::Setup)?;
        let Some(Extern::Func(f)) = self.store.export(inst, call.name) else {
            return Err(InvokeError::Setup(format!(
                "no exported function `{}`",
                escape::name(call.name)
            )));
        };
        let args = call
            .args
            .iter()
            .map(arg)
            .collect::<Option<Vec<Val>>>()
            .ok_or_else(|| InvokeError::Setup("argument outside WebAssembly 2.0".to_owned()))?;
        self.store.invoke(&f, &args).map_err(InvokeError::Call)
    }

    fn get(&self, module: Option<Id<'_>>, global: &str) -> Result<Val, String> {
        let inst = self.instance(module)?;
        match self.store.export(inst, global) {
            Some(Extern::Global(g)) => Ok(self.store.global_get(&g)),
            _ => Err(format!("no exported global `{}`", escape::name(global))),
        }
    }
}

/// The binary of `m`; quoted text is parsed like the script itself.
fn encode(m: &mut QuoteWat<'_>) -> Result<Vec<u8>, String> {
    match m.to_test().map_err(|e| one_line(&e))? {
        QuoteWatTest::Binary(b) => Ok(b),
        QuoteWatTest::Text(t) => {
            let text = std::str::from_utf8(&t).map_err(|_| "malformed UTF-8 encoding")?;
            let mut lexer = Lexer::new(text);
            lexer.allow_confusing_unicode(true);
            let buf = ParseBuffer::new_with_lexer(lexer).map_err(|e| one_line(&e))?;
            let mut wat: wast::Wat<'_> = parser::parse(&buf).map_err(|e| one_line(&e))?;
            wat.encode().map_err(|e| one_line(&e))
        }
    }
}

fn arg(a: &WastArg<'_>) -> Option<Val> {
    match a {
        WastArg::Core(WastArgCore::I32(x)) => Some(Val::I32(*x)),
        WastArg::Core(WastArgCore::I64(x)) => Some(Val::I64(*x)),
        WastArg::Core(WastArgCore::F32(F32 { bits })) => Some(Val::F32(*bits)),
        WastArg::Core(WastArgCore::F64(F64 { bits })) => Some(Val::F64(*bits)),
        WastArg::Core(WastArgCore::RefNull(HeapType::Abstract { ty, .. })) => match ty {
            AbstractHeapType::Func => Some(Val::FuncRef(None)),
            AbstractHeapType::Extern => Some(Val::ExternRef(None)),
            _ => None,
        },
        WastArg::Core(WastArgCore::RefExtern(n)) => Some(Val::ExternRef(Some(*n))),
        WastArg::Core(WastArgCore::V128(c)) => {
            Some(Val::V128(u128::from_le_bytes(c.to_le_bytes())))
        }
        _ => None,
    }
}

fn check_results(got: &[Val], want: &[WastRet<'_>]) -> Result<(), String> {
    let ok = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| matches(*g, w));
    if ok {
        Ok(())
    } else {
        let got: Vec<String> = got.iter().map(|v| show_val(*v)).collect();
        let want: Vec<String> = want.iter().map(show_ret).collect();
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
    match v {
        Val::I32(x) => format!("i32:{x}"),
        Val::I64(x) => format!("i64:{x}"),
        Val::F32(b) => format!("f32:{:?}({b:#010x})", f32::from_bits(b)),
        Val::F64(b) => format!("f64:{:?}({b:#018x})", f64::from_bits(b)),
        Val::FuncRef(None) => "ref.null func".to_owned(),
        Val::FuncRef(Some(_)) => "ref.func".to_owned(),
        Val::ExternRef(None) => "ref.null extern".to_owned(),
        Val::ExternRef(Some(n)) => format!("ref.extern {n}"),
        Val::V128(v) => format!("v128:{v:#034x}"),
        Val::ExnRef(None) => "ref.null exn".to_owned(),
        Val::ExnRef(Some(_)) => "ref.exn".to_owned(),
    }
}

fn show_ret(w: &WastRet<'_>) -> String {
    let nan = |p: &str| format!("nan:{p}");
    match w {
        WastRet::Core(WastRetCore::I32(x)) => format!("i32:{x}"),
        WastRet::Core(WastRetCore::I64(x)) => format!("i64:{x}"),
        WastRet::Core(WastRetCore::F32(p)) => match p {
            NanPattern::CanonicalNan => format!("f32:{}", nan("canonical")),
            NanPattern::ArithmeticNan => format!("f32:{}", nan("arithmetic")),
            NanPattern::Value(F32 { bits }) => show_val(Val::F32(*bits)),
        },
        WastRet::Core(WastRetCore::F64(p)) => match p {
            NanPattern::CanonicalNan => format!("f64:{}", nan("canonical")),
            NanPattern::ArithmeticNan => format!("f64:{}", nan("arithmetic")),
            NanPattern::Value(F64 { bits }) => show_val(Val::F64(*bits)),
        },
        WastRet::Core(WastRetCore::RefNull(h)) => match h {
            Some(HeapType::Abstract { ty, .. }) => format!("ref.null {ty:?}"),
            _ => "ref.null".to_owned(),
        },
        WastRet::Core(WastRetCore::RefFunc(_)) => "ref.func".to_owned(),
        WastRet::Core(WastRetCore::RefExtern(Some(n))) => format!("ref.extern {n}"),
        WastRet::Core(WastRetCore::RefExtern(None)) => "ref.extern".to_owned(),
        WastRet::Core(other) => format!("{other:?}"),
        other => format!("{other:?}"),
    }
}

/// Whether `v` matches the expected result `w` (NaN patterns per the spec
/// interpreter: canonical = quiet bit only, any sign; arithmetic = quiet bit
/// set, any payload and sign; a literal compares bit for bit).
fn matches(v: Val, w: &WastRet<'_>) -> bool {
    match w {
        WastRet::Core(c) => matches_core(v, c),
        _ => false,
    }
}

/// [`matches`] for a core result pattern: a reference pattern without a
/// heap type or index matches any reference of its kind; `either` matches
/// when one of its alternatives does.
fn matches_core(v: Val, w: &WastRetCore<'_>) -> bool {
    let null_of = |h: &Option<HeapType<'_>>, want: AbstractHeapType| match h {
        None => true,
        Some(HeapType::Abstract { ty, .. }) => *ty == want,
        // Without GC every concrete type is a function type.
        Some(HeapType::Concrete(_)) => want == AbstractHeapType::Func,
        Some(_) => false,
    };
    match (v, w) {
        (_, WastRetCore::Either(alts)) => alts.iter().any(|a| matches_core(v, a)),
        (Val::FuncRef(None), WastRetCore::RefNull(h)) => null_of(h, AbstractHeapType::Func),
        (Val::ExternRef(None), WastRetCore::RefNull(h)) => null_of(h, AbstractHeapType::Extern),
        (Val::ExnRef(None), WastRetCore::RefNull(h)) => null_of(h, AbstractHeapType::Exn),
        (Val::FuncRef(Some(_)), WastRetCore::RefFunc(_)) => true,
        (Val::ExternRef(Some(a)), WastRetCore::RefExtern(b)) => b.is_none_or(|b| a == b),
        (Val::I32(a), WastRetCore::I32(b)) => a == *b,
        (Val::I64(a), WastRetCore::I64(b)) => a == *b,
        (Val::F32(a), WastRetCore::F32(p)) => f32_matches(a, p),
        (Val::F64(a), WastRetCore::F64(p)) => f64_matches(a, p),
        (Val::V128(a), WastRetCore::V128(p)) => v128_matches(a, p),
        _ => false,
    }
}

/// An f32 against a pattern (see [`matches`]).
fn f32_matches(a: u32, p: &NanPattern<F32>) -> bool {
    const F32_EXP_Q: u32 = 0x7fc0_0000;
    match p {
        NanPattern::CanonicalNan => a & 0x7fff_ffff == F32_EXP_Q,
        NanPattern::ArithmeticNan => a & F32_EXP_Q == F32_EXP_Q,
        NanPattern::Value(F32 { bits }) => a == *bits,
    }
}

/// An f64 against a pattern (see [`matches`]).
fn f64_matches(a: u64, p: &NanPattern<F64>) -> bool {
    const F64_EXP_Q: u64 = 0x7ff8_0000_0000_0000;
    match p {
        NanPattern::CanonicalNan => a & 0x7fff_ffff_ffff_ffff == F64_EXP_Q,
        NanPattern::ArithmeticNan => a & F64_EXP_Q == F64_EXP_Q,
        NanPattern::Value(F64 { bits }) => a == *bits,
    }
}

/// A v128 against a pattern, lane by lane in the pattern's lane view (lane
/// 0 in the low bits): integer lanes bit for bit, float lanes as
/// [`f32_matches`] / [`f64_matches`].
fn v128_matches(a: u128, p: &V128Pattern) -> bool {
    let lane = |i: usize, bits: u32| (a >> (i as u32 * bits)) & ((1u128 << bits) - 1);
    match p {
        V128Pattern::I8x16(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| lane(i, 8) == u128::from(x.cast_unsigned())),
        V128Pattern::I16x8(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| lane(i, 16) == u128::from(x.cast_unsigned())),
        V128Pattern::I32x4(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| lane(i, 32) == u128::from(x.cast_unsigned())),
        V128Pattern::I64x2(l) => l
            .iter()
            .enumerate()
            .all(|(i, x)| lane(i, 64) == u128::from(x.cast_unsigned())),
        #[expect(clippy::cast_possible_truncation, reason = "a 32-bit lane")]
        V128Pattern::F32x4(l) => l
            .iter()
            .enumerate()
            .all(|(i, p)| f32_matches(lane(i, 32) as u32, p)),
        #[expect(clippy::cast_possible_truncation, reason = "a 64-bit lane")]
        V128Pattern::F64x2(l) => l
            .iter()
            .enumerate()
            .all(|(i, p)| f64_matches(lane(i, 64) as u64, p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_patterns() {
        let canon = WastRet::Core(WastRetCore::F32(NanPattern::CanonicalNan));
        let arith = WastRet::Core(WastRetCore::F32(NanPattern::ArithmeticNan));
        assert!(matches(Val::F32(0x7fc0_0000), &canon));
        assert!(matches(Val::F32(0xffc0_0000), &canon));
        assert!(!matches(Val::F32(0x7fc0_0001), &canon));
        assert!(matches(Val::F32(0x7fc0_0001), &arith));
        assert!(!matches(Val::F32(0x7f80_0001), &arith));
        assert!(!matches(Val::F32(0x7f80_0000), &arith));
    }

    #[test]
    fn v128_lane_patterns() {
        // f32x4: lane 0 canonical NaN, lane 1 arithmetic, lanes 2-3 values.
        let p = WastRet::Core(WastRetCore::V128(V128Pattern::F32x4([
            NanPattern::CanonicalNan,
            NanPattern::ArithmeticNan,
            NanPattern::Value(F32 { bits: 0x3f80_0000 }),
            NanPattern::Value(F32 { bits: 0 }),
        ])));
        let v = |l: [u32; 4]| {
            Val::V128(
                l.iter()
                    .enumerate()
                    .fold(0, |acc, (i, x)| acc | u128::from(*x) << (32 * i)),
            )
        };
        assert!(matches(v([0xffc0_0000, 0x7fc0_0001, 0x3f80_0000, 0]), &p));
        assert!(!matches(v([0x7fc0_0001, 0x7fc0_0001, 0x3f80_0000, 0]), &p));
        assert!(!matches(v([0x7fc0_0000, 0x7f80_0001, 0x3f80_0000, 0]), &p));
        assert!(!matches(v([0x7fc0_0000, 0x7fc0_0000, 0x3f80_0000, 1]), &p));
        let i = WastRet::Core(WastRetCore::V128(V128Pattern::I16x8([
            -1, 0, 0, 0, 0, 0, 0, 2,
        ])));
        assert!(matches(Val::V128(0xffff | (2 << 112)), &i));
        assert!(!matches(Val::V128(0xffff), &i));
    }
}
