//! The compact binary spec-script format: what the converter ([`convert`],
//! std, feature `convert`) makes of a `.wast` script and what the kernel's
//! no_std runner (`kernel_core::spec::run`) reads, on hosted and on riscv
//! alike.
//!
//! A crate of its own so that a build script can convert the suites
//! (`hal-riscv` embeds them in its image) without building the kernel and
//! its compiler for the host first.
//!
//! A *bundle* is `MAGIC`, then scripts back to back; a script is its name
//! (a string) and its directive block (a byte string). A directive block is
//! directives back to back, each `line: u32`, `tag: u8`, then the tag's
//! fields. Integers are little-endian; a string or byte string is a `u32`
//! length and that many bytes; an optional string is a `u8` 0/1 and, for 1,
//! the string; a list is a `u32` count and the items.
//!
//! Decoding borrows: module bytes, names and messages are slices of the
//! bundle, so a kernel can keep the bundle in its image and decode one
//! script at a time.
//!
//! Invariants:
//! - INV-SCRIPT-1: `decode(encode(x)) == x` for every script (tested).
//! - INV-SCRIPT-2: decoding never panics and never reads past its input:
//!   bad input is a [`DecodeError`].

#![no_std]

extern crate alloc;

#[cfg(feature = "convert")]
pub mod convert;

use alloc::vec::Vec;
use core::fmt;

/// The first bytes of a bundle (format version 1).
pub const MAGIC: &[u8; 8] = b"VSPEC\x00\x00\x01";

/// A value passed to an invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// i32.
    I32(i32),
    /// i64.
    I64(i64),
    /// f32 bits.
    F32(u32),
    /// f64 bits.
    F64(u64),
    /// `ref.null func`.
    NullFunc,
    /// `ref.null extern`.
    NullExtern,
    /// `ref.extern N`.
    Extern(u32),
}

/// An expected result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// i32, exactly.
    I32(i32),
    /// i64, exactly.
    I64(i64),
    /// f32 bits, exactly.
    F32(u32),
    /// f64 bits, exactly.
    F64(u64),
    /// f32 `nan:canonical`.
    F32CanonicalNan,
    /// f32 `nan:arithmetic`.
    F32ArithmeticNan,
    /// f64 `nan:canonical`.
    F64CanonicalNan,
    /// f64 `nan:arithmetic`.
    F64ArithmeticNan,
    /// `ref.null` of any kind.
    NullAny,
    /// `ref.null func`.
    NullFunc,
    /// `ref.null extern`.
    NullExtern,
    /// Any non-null function reference.
    Func,
    /// A non-null extern reference: `Some(n)` exactly `ref.extern n`.
    Extern(Option<u32>),
    /// Any one of the alternatives.
    Either(Vec<Expect>),
}

/// What an action does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Call an export.
    Invoke {
        /// `$id` of the module, or the most recent one.
        module: Option<&'a str>,
        /// The export.
        name: &'a str,
        /// The arguments.
        args: Vec<Arg>,
    },
    /// Read an exported global.
    Get {
        /// `$id` of the module, or the most recent one.
        module: Option<&'a str>,
        /// The export.
        name: &'a str,
    },
}

/// One directive of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Directive<'a> {
    /// Compile and instantiate; it becomes the current module.
    Module {
        /// Its `$id`.
        name: Option<&'a str>,
        /// The binary.
        bytes: &'a [u8],
    },
    /// Make a module's exports importable under `as_name`.
    Register {
        /// The import module name.
        as_name: &'a str,
        /// `$id`, or the current module.
        module: Option<&'a str>,
    },
    /// Run an action, ignore its results (a trap is a failure).
    Action(Action<'a>),
    /// Run an action and compare its results.
    AssertReturn {
        /// What to run.
        action: Action<'a>,
        /// Expected results.
        expected: Vec<Expect>,
    },
    /// The action must trap with `message`.
    AssertTrap {
        /// What to run.
        action: Action<'a>,
        /// The spec's message.
        message: &'a str,
    },
    /// Instantiating the module must trap (or fail a segment) with `message`.
    AssertModuleTrap {
        /// The binary.
        bytes: &'a [u8],
        /// The spec's message.
        message: &'a str,
    },
    /// The action must exhaust the call stack.
    AssertExhaustion {
        /// What to run.
        action: Action<'a>,
        /// The spec's message.
        message: &'a str,
    },
    /// The binary must be rejected (invalid or malformed).
    AssertRejected {
        /// The binary.
        bytes: &'a [u8],
        /// The spec's message.
        message: &'a str,
    },
    /// The module must fail to link.
    AssertUnlinkable {
        /// The binary.
        bytes: &'a [u8],
        /// The spec's message.
        message: &'a str,
    },
    /// Decided at conversion time (e.g. malformed text the converter's
    /// parser rejects: passed; text that cannot be encoded at all: failed).
    Decided {
        /// Whether it counts as passed.
        passed: bool,
        /// Why.
        why: &'a str,
    },
}

/// A directive and the line it starts on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line in the `.wast` text.
    pub line: u32,
    /// The directive.
    pub directive: Directive<'a>,
}

/// Why a bundle or script did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bundle does not start with [`MAGIC`].
    BadMagic,
    /// The input ended inside an item.
    Truncated,
    /// An unknown tag.
    BadTag(u8),
    /// A string is not UTF-8.
    BadUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("not a spec-script bundle"),
            Self::Truncated => f.write_str("spec script truncated"),
            Self::BadTag(t) => write!(f, "unknown tag {t} in spec script"),
            Self::BadUtf8 => f.write_str("string in spec script is not UTF-8"),
        }
    }
}

mod tag {
    pub const MODULE: u8 = 1;
    pub const REGISTER: u8 = 2;
    pub const ACTION: u8 = 3;
    pub const RETURN: u8 = 4;
    pub const TRAP: u8 = 5;
    pub const MODULE_TRAP: u8 = 6;
    pub const EXHAUSTION: u8 = 7;
    pub const REJECTED: u8 = 8;
    pub const UNLINKABLE: u8 = 9;
    pub const DECIDED: u8 = 10;
    pub const INVOKE: u8 = 1;
    pub const GET: u8 = 2;
}

/// Builds a directive block.
#[derive(Default, Debug, Clone)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// The encoded block.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        // Lengths past u32 cannot occur for spec scripts; saturate rather
        // than panic (the decoder then reports Truncated).
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.out.extend_from_slice(b);
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.bytes(s.as_bytes());
            }
        }
    }

    fn arg(&mut self, a: Arg) {
        match a {
            Arg::I32(v) => {
                self.u8(1);
                self.u32(v as u32);
            }
            Arg::I64(v) => {
                self.u8(2);
                self.u64(v as u64);
            }
            Arg::F32(v) => {
                self.u8(3);
                self.u32(v);
            }
            Arg::F64(v) => {
                self.u8(4);
                self.u64(v);
            }
            Arg::NullFunc => self.u8(5),
            Arg::NullExtern => self.u8(6),
            Arg::Extern(n) => {
                self.u8(7);
                self.u32(n);
            }
        }
    }

    fn expect(&mut self, e: &Expect) {
        match e {
            Expect::I32(v) => {
                self.u8(1);
                self.u32(*v as u32);
            }
            Expect::I64(v) => {
                self.u8(2);
                self.u64(*v as u64);
            }
            Expect::F32(v) => {
                self.u8(3);
                self.u32(*v);
            }
            Expect::F64(v) => {
                self.u8(4);
                self.u64(*v);
            }
            Expect::F32CanonicalNan => self.u8(5),
            Expect::F32ArithmeticNan => self.u8(6),
            Expect::F64CanonicalNan => self.u8(7),
            Expect::F64ArithmeticNan => self.u8(8),
            Expect::NullAny => self.u8(9),
            Expect::NullFunc => self.u8(10),
            Expect::NullExtern => self.u8(11),
            Expect::Func => self.u8(12),
            Expect::Extern(None) => self.u8(13),
            Expect::Extern(Some(n)) => {
                self.u8(14);
                self.u32(*n);
            }
            Expect::Either(alts) => {
                self.u8(15);
                self.u32(alts.len() as u32);
                for a in alts {
                    self.expect(a);
                }
            }
        }
    }

    fn action(&mut self, a: &Action<'_>) {
        match a {
            Action::Invoke { module, name, args } => {
                self.u8(tag::INVOKE);
                self.opt(*module);
                self.bytes(name.as_bytes());
                self.u32(args.len() as u32);
                for x in args {
                    self.arg(*x);
                }
            }
            Action::Get { module, name } => {
                self.u8(tag::GET);
                self.opt(*module);
                self.bytes(name.as_bytes());
            }
        }
    }

    /// Append one directive.
    pub fn push(&mut self, l: &Line<'_>) {
        self.u32(l.line);
        match &l.directive {
            Directive::Module { name, bytes } => {
                self.u8(tag::MODULE);
                self.opt(*name);
                self.bytes(bytes);
            }
            Directive::Register { as_name, module } => {
                self.u8(tag::REGISTER);
                self.bytes(as_name.as_bytes());
                self.opt(*module);
            }
            Directive::Action(a) => {
                self.u8(tag::ACTION);
                self.action(a);
            }
            Directive::AssertReturn { action, expected } => {
                self.u8(tag::RETURN);
                self.action(action);
                self.u32(expected.len() as u32);
                for e in expected {
                    self.expect(e);
                }
            }
            Directive::AssertTrap { action, message } => {
                self.u8(tag::TRAP);
                self.action(action);
                self.bytes(message.as_bytes());
            }
            Directive::AssertModuleTrap { bytes, message } => {
                self.u8(tag::MODULE_TRAP);
                self.bytes(bytes);
                self.bytes(message.as_bytes());
            }
            Directive::AssertExhaustion { action, message } => {
                self.u8(tag::EXHAUSTION);
                self.action(action);
                self.bytes(message.as_bytes());
            }
            Directive::AssertRejected { bytes, message } => {
                self.u8(tag::REJECTED);
                self.bytes(bytes);
                self.bytes(message.as_bytes());
            }
            Directive::AssertUnlinkable { bytes, message } => {
                self.u8(tag::UNLINKABLE);
                self.bytes(bytes);
                self.bytes(message.as_bytes());
            }
            Directive::Decided { passed, why } => {
                self.u8(tag::DECIDED);
                self.u8(u8::from(*passed));
                self.bytes(why.as_bytes());
            }
        }
    }
}

/// Append a script (its name and directive block) to a bundle `out`; an
/// empty `out` gets [`MAGIC`] first.
pub fn push_script(out: &mut Vec<u8>, name: &str, block: &[u8]) {
    if out.is_empty() {
        out.extend_from_slice(MAGIC);
    }
    let mut w = Writer::new();
    w.bytes(name.as_bytes());
    w.bytes(block);
    out.extend_from_slice(&w.finish());
}

/// Reads a byte slice front to back.
#[derive(Clone, Debug)]
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::BadUtf8)
    }

    fn opt(&mut self) -> Result<Option<&'a str>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            t => Err(DecodeError::BadTag(t)),
        }
    }

    /// A count of items of at least `min` bytes each, checked against what
    /// is left (so a bad count cannot ask for a huge allocation).
    fn count(&mut self, min: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn arg(&mut self) -> Result<Arg, DecodeError> {
        Ok(match self.u8()? {
            1 => Arg::I32(self.u32()? as i32),
            2 => Arg::I64(self.u64()? as i64),
            3 => Arg::F32(self.u32()?),
            4 => Arg::F64(self.u64()?),
            5 => Arg::NullFunc,
            6 => Arg::NullExtern,
            7 => Arg::Extern(self.u32()?),
            t => return Err(DecodeError::BadTag(t)),
        })
    }

    fn expect(&mut self, depth: u32) -> Result<Expect, DecodeError> {
        Ok(match self.u8()? {
            1 => Expect::I32(self.u32()? as i32),
            2 => Expect::I64(self.u64()? as i64),
            3 => Expect::F32(self.u32()?),
            4 => Expect::F64(self.u64()?),
            5 => Expect::F32CanonicalNan,
            6 => Expect::F32ArithmeticNan,
            7 => Expect::F64CanonicalNan,
            8 => Expect::F64ArithmeticNan,
            9 => Expect::NullAny,
            10 => Expect::NullFunc,
            11 => Expect::NullExtern,
            12 => Expect::Func,
            13 => Expect::Extern(None),
            14 => Expect::Extern(Some(self.u32()?)),
            // `either` does not nest in the spec scripts; refusing deep
            // nesting keeps decoding's recursion bounded.
            15 if depth == 0 => {
                let n = self.count(1)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.expect(depth + 1)?);
                }
                Expect::Either(v)
            }
            t => return Err(DecodeError::BadTag(t)),
        })
    }

    fn action(&mut self) -> Result<Action<'a>, DecodeError> {
        match self.u8()? {
            tag::INVOKE => {
                let module = self.opt()?;
                let name = self.str()?;
                let n = self.count(1)?;
                let mut args = Vec::with_capacity(n);
                for _ in 0..n {
                    args.push(self.arg()?);
                }
                Ok(Action::Invoke { module, name, args })
            }
            tag::GET => Ok(Action::Get {
                module: self.opt()?,
                name: self.str()?,
            }),
            t => Err(DecodeError::BadTag(t)),
        }
    }

    fn line(&mut self) -> Result<Line<'a>, DecodeError> {
        let line = self.u32()?;
        let directive = match self.u8()? {
            tag::MODULE => Directive::Module {
                name: self.opt()?,
                bytes: self.bytes()?,
            },
            tag::REGISTER => Directive::Register {
                as_name: self.str()?,
                module: self.opt()?,
            },
            tag::ACTION => Directive::Action(self.action()?),
            tag::RETURN => {
                let action = self.action()?;
                let n = self.count(1)?;
                let mut expected = Vec::with_capacity(n);
                for _ in 0..n {
                    expected.push(self.expect(0)?);
                }
                Directive::AssertReturn { action, expected }
            }
            tag::TRAP => Directive::AssertTrap {
                action: self.action()?,
                message: self.str()?,
            },
            tag::MODULE_TRAP => Directive::AssertModuleTrap {
                bytes: self.bytes()?,
                message: self.str()?,
            },
            tag::EXHAUSTION => Directive::AssertExhaustion {
                action: self.action()?,
                message: self.str()?,
            },
            tag::REJECTED => Directive::AssertRejected {
                bytes: self.bytes()?,
                message: self.str()?,
            },
            tag::UNLINKABLE => Directive::AssertUnlinkable {
                bytes: self.bytes()?,
                message: self.str()?,
            },
            tag::DECIDED => Directive::Decided {
                passed: self.u8()? != 0,
                why: self.str()?,
            },
            t => return Err(DecodeError::BadTag(t)),
        };
        Ok(Line { line, directive })
    }
}

/// One script of a bundle, not yet decoded.
#[derive(Clone, Copy, Debug)]
pub struct RawScript<'a> {
    /// Its name (the `.wast` file's).
    pub name: &'a str,
    /// Its directive block.
    pub block: &'a [u8],
}

impl<'a> RawScript<'a> {
    /// The directives, in order.
    ///
    /// # Errors
    /// [`DecodeError`] when the block is damaged.
    pub fn directives(&self) -> Result<Vec<Line<'a>>, DecodeError> {
        let mut r = Reader { rest: self.block };
        let mut out = Vec::new();
        while !r.rest.is_empty() {
            out.push(r.line()?);
        }
        Ok(out)
    }
}

/// The scripts of `bundle`, in order. An empty slice is an empty bundle.
///
/// # Errors
/// [`DecodeError`] when the bundle is damaged.
pub fn scripts(bundle: &[u8]) -> Result<Vec<RawScript<'_>>, DecodeError> {
    if bundle.is_empty() {
        return Ok(Vec::new());
    }
    let rest = bundle
        .strip_prefix(MAGIC.as_slice())
        .ok_or(DecodeError::BadMagic)?;
    let mut r = Reader { rest };
    let mut out = Vec::new();
    while !r.rest.is_empty() {
        let name = r.str()?;
        let block = r.bytes()?;
        out.push(RawScript { name, block });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn round_trip_inv_script_1() {
        let lines = vec![
            Line {
                line: 3,
                directive: Directive::Module {
                    name: Some("M"),
                    bytes: b"\0asm\x01\0\0\0",
                },
            },
            Line {
                line: 4,
                directive: Directive::Register {
                    as_name: "m",
                    module: None,
                },
            },
            Line {
                line: 5,
                directive: Directive::AssertReturn {
                    action: Action::Invoke {
                        module: Some("M"),
                        name: "f",
                        args: vec![
                            Arg::I32(-1),
                            Arg::I64(7),
                            Arg::F32(1),
                            Arg::F64(2),
                            Arg::NullFunc,
                            Arg::NullExtern,
                            Arg::Extern(9),
                        ],
                    },
                    expected: vec![
                        Expect::F32CanonicalNan,
                        Expect::Either(vec![Expect::I32(1), Expect::Extern(None)]),
                        Expect::Extern(Some(3)),
                        Expect::NullAny,
                    ],
                },
            },
            Line {
                line: 6,
                directive: Directive::AssertTrap {
                    action: Action::Get {
                        module: None,
                        name: "g",
                    },
                    message: "unreachable",
                },
            },
            Line {
                line: 7,
                directive: Directive::Decided {
                    passed: true,
                    why: "malformed text",
                },
            },
        ];
        let mut w = Writer::new();
        for l in &lines {
            w.push(l);
        }
        let block = w.finish();
        let mut bundle = Vec::new();
        push_script(&mut bundle, "a.wast", &block);
        push_script(&mut bundle, "b.wast", &[]);
        let s = scripts(&bundle).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "a.wast");
        assert_eq!(s[0].directives().unwrap(), lines);
        assert!(s[1].directives().unwrap().is_empty());
    }

    #[test]
    fn damaged_input_is_an_error_inv_script_2() {
        assert_eq!(scripts(b"nope").unwrap_err(), DecodeError::BadMagic);
        let mut bundle = Vec::new();
        let mut w = Writer::new();
        w.push(&Line {
            line: 1,
            directive: Directive::Module {
                name: None,
                bytes: b"abc",
            },
        });
        push_script(&mut bundle, "x", &w.finish());
        for cut in MAGIC.len()..bundle.len() {
            let _ = scripts(&bundle[..cut])
                .and_then(|s| s.iter().try_for_each(|r| r.directives().map(drop)));
        }
        let s = RawScript {
            name: "x",
            block: &[0, 0, 0, 0, 99],
        };
        assert_eq!(s.directives().unwrap_err(), DecodeError::BadTag(99));
    }
}
