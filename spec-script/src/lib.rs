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
//! (a string), its [`Features`] (a `u8` of flag bits) and its directive
//! block (a byte string). A directive block is
//! directives back to back, each `line: u32`, `tag: u8`, then the tag's
//! fields. Integers (`v128` values are `u128`) are little-endian; a string or byte string is a `u32`
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
//!   bad input is a [`DecodeError`] (including a features byte with a bit
//!   this version does not define: a newer bundle is refused, not misread).
//! - INV-SCRIPT-3: a v128 float-lane expectation holds exactly four f32 or
//!   two f64 lanes, each a value or a NaN pattern; an exact `v128` (any
//!   shape, no NaN pattern) is one 128-bit value, lane 0 in the low bits.

#![no_std]

extern crate alloc;

#[cfg(feature = "convert")]
pub mod convert;

use alloc::vec::Vec;
use core::fmt;

/// The first bytes of a bundle (format version 2: v128 values and
/// per-script features; version 1 bundles are refused as [`DecodeError::BadMagic`]).
pub const MAGIC: &[u8; 8] = b"VSPEC\x00\x00\x02";

/// What a script's store accepts beyond WebAssembly 2.0: the runner sets
/// exactly these for that script. The kernel accepts all of them by
/// default; the WebAssembly 1.0 and 2.0 scripts assert that a second
/// memory is refused, so they are converted without.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// Several memories per module (multi-memory, part of WebAssembly
    /// 3.0; the simd suite's `simd_memory-multi.wast` declares two).
    pub multi_memory: bool,
    /// Memories addressed with `i64` (memory64, part of WebAssembly 3.0).
    pub memory64: bool,
    /// Reference types and what builds on them (several tables, typed
    /// references, GC, exceptions); off for scripts written against
    /// WebAssembly 1.0.
    pub reference_types: bool,
}

impl Features {
    const MULTI_MEMORY: u8 = 1;
    const MEMORY64: u8 = 2;
    const REFERENCE_TYPES: u8 = 4;

    /// Everything the kernel accepts.
    pub const ALL: Self = Self {
        multi_memory: true,
        memory64: true,
        reference_types: true,
    };

    /// The flag bits of the script header.
    #[must_use]
    pub fn bits(self) -> u8 {
        u8::from(self.multi_memory) * Self::MULTI_MEMORY
            + u8::from(self.memory64) * Self::MEMORY64
            + u8::from(self.reference_types) * Self::REFERENCE_TYPES
    }

    /// The features of flag bits `b`.
    ///
    /// # Errors
    /// [`DecodeError::BadFeatures`] when `b` has a bit no feature uses.
    pub fn from_bits(b: u8) -> Result<Self, DecodeError> {
        if b & !(Self::MULTI_MEMORY | Self::MEMORY64 | Self::REFERENCE_TYPES) != 0 {
            return Err(DecodeError::BadFeatures(b));
        }
        Ok(Self {
            multi_memory: b & Self::MULTI_MEMORY != 0,
            memory64: b & Self::MEMORY64 != 0,
            reference_types: b & Self::REFERENCE_TYPES != 0,
        })
    }
}

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
    /// v128 bits, lane 0 in the low bits.
    V128(u128),
}

/// An expected float lane of a v128 result: `T` is `u32` (f32x4) or `u64`
/// (f64x2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane<T> {
    /// These bits, exactly.
    Bits(T),
    /// `nan:canonical`.
    CanonicalNan,
    /// `nan:arithmetic`.
    ArithmeticNan,
}

impl Lane<u32> {
    /// The same expectation as a scalar f32 result (so a runner checks a
    /// lane as it checks an f32).
    #[must_use]
    pub fn scalar(self) -> Expect {
        match self {
            Self::Bits(b) => Expect::F32(b),
            Self::CanonicalNan => Expect::F32CanonicalNan,
            Self::ArithmeticNan => Expect::F32ArithmeticNan,
        }
    }
}

impl Lane<u64> {
    /// The same expectation as a scalar f64 result.
    #[must_use]
    pub fn scalar(self) -> Expect {
        match self {
            Self::Bits(b) => Expect::F64(b),
            Self::CanonicalNan => Expect::F64CanonicalNan,
            Self::ArithmeticNan => Expect::F64ArithmeticNan,
        }
    }
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
    /// v128 bits, exactly (lane 0 in the low bits): every integer shape,
    /// and float shapes without a NaN pattern.
    V128(u128),
    /// f32x4 lane by lane (lane 0 first), where a lane is a NaN pattern.
    F32x4([Lane<u32>; 4]),
    /// f64x2 lane by lane (lane 0 first), where a lane is a NaN pattern.
    F64x2([Lane<u64>; 2]),
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
    /// A script's features byte has a bit this format does not define.
    BadFeatures(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("not a spec-script bundle"),
            Self::Truncated => f.write_str("spec script truncated"),
            Self::BadTag(t) => write!(f, "unknown tag {t} in spec script"),
            Self::BadUtf8 => f.write_str("string in spec script is not UTF-8"),
            Self::BadFeatures(b) => write!(f, "unknown feature bits {b:#04x} in spec script"),
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
    pub const LANE_BITS: u8 = 0;
    pub const LANE_CANONICAL: u8 = 1;
    pub const LANE_ARITHMETIC: u8 = 2;
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

    fn u128(&mut self, v: u128) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn lane<T>(&mut self, l: Lane<T>, bits: impl FnOnce(&mut Self, T)) {
        match l {
            Lane::Bits(b) => {
                self.u8(tag::LANE_BITS);
                bits(self, b);
            }
            Lane::CanonicalNan => self.u8(tag::LANE_CANONICAL),
            Lane::ArithmeticNan => self.u8(tag::LANE_ARITHMETIC),
        }
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
            Arg::V128(v) => {
                self.u8(8);
                self.u128(v);
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
            Expect::V128(v) => {
                self.u8(16);
                self.u128(*v);
            }
            Expect::F32x4(lanes) => {
                self.u8(17);
                for l in lanes {
                    self.lane(*l, Self::u32);
                }
            }
            Expect::F64x2(lanes) => {
                self.u8(18);
                for l in lanes {
                    self.lane(*l, Self::u64);
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

/// Append a script (its name, features and directive block) to a bundle
/// `out`; an empty `out` gets [`MAGIC`] first.
pub fn push_script(out: &mut Vec<u8>, name: &str, features: Features, block: &[u8]) {
    if out.is_empty() {
        out.extend_from_slice(MAGIC);
    }
    let mut w = Writer::new();
    w.bytes(name.as_bytes());
    w.u8(features.bits());
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

    fn u128(&mut self) -> Result<u128, DecodeError> {
        let b = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(u128::from_le_bytes(a))
    }

    fn lane<T>(
        &mut self,
        bits: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Lane<T>, DecodeError> {
        Ok(match self.u8()? {
            tag::LANE_BITS => Lane::Bits(bits(self)?),
            tag::LANE_CANONICAL => Lane::CanonicalNan,
            tag::LANE_ARITHMETIC => Lane::ArithmeticNan,
            t => return Err(DecodeError::BadTag(t)),
        })
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
            8 => Arg::V128(self.u128()?),
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
            16 => Expect::V128(self.u128()?),
            17 => Expect::F32x4([
                self.lane(Self::u32)?,
                self.lane(Self::u32)?,
                self.lane(Self::u32)?,
                self.lane(Self::u32)?,
            ]),
            18 => Expect::F64x2([self.lane(Self::u64)?, self.lane(Self::u64)?]),
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
    /// What its store must allow beyond WebAssembly 2.0.
    pub features: Features,
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
        let features = Features::from_bits(r.u8()?)?;
        let block = r.bytes()?;
        out.push(RawScript {
            name,
            features,
            block,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// One directive of every kind, and every argument and expectation
    /// variant at least once.
    fn every_variant() -> Vec<Line<'static>> {
        let v128 = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100_u128;
        vec![
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
                            Arg::V128(v128),
                            Arg::V128(u128::MAX),
                        ],
                    },
                    expected: vec![
                        Expect::I32(-5),
                        Expect::I64(-6),
                        Expect::F32(0x3f80_0000),
                        Expect::F64(0x3ff0_0000_0000_0000),
                        Expect::F32CanonicalNan,
                        Expect::F32ArithmeticNan,
                        Expect::F64CanonicalNan,
                        Expect::F64ArithmeticNan,
                        Expect::NullAny,
                        Expect::NullFunc,
                        Expect::NullExtern,
                        Expect::Func,
                        Expect::Either(vec![Expect::I32(1), Expect::Extern(None)]),
                        Expect::Extern(Some(3)),
                        Expect::V128(v128),
                        Expect::F32x4([
                            Lane::CanonicalNan,
                            Lane::ArithmeticNan,
                            Lane::Bits(0x3f80_0000),
                            Lane::Bits(u32::MAX),
                        ]),
                        Expect::F64x2([Lane::Bits(1 << 63), Lane::ArithmeticNan]),
                        Expect::Either(vec![
                            Expect::V128(0),
                            Expect::F64x2([Lane::CanonicalNan, Lane::Bits(7)]),
                        ]),
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
                directive: Directive::Action(Action::Invoke {
                    module: None,
                    name: "h",
                    args: vec![],
                }),
            },
            Line {
                line: 8,
                directive: Directive::AssertModuleTrap {
                    bytes: b"m",
                    message: "out of bounds",
                },
            },
            Line {
                line: 9,
                directive: Directive::AssertExhaustion {
                    action: Action::Invoke {
                        module: Some("N"),
                        name: "r",
                        args: vec![Arg::V128(1)],
                    },
                    message: "call stack exhausted",
                },
            },
            Line {
                line: 10,
                directive: Directive::AssertRejected {
                    bytes: b"bad",
                    message: "type mismatch",
                },
            },
            Line {
                line: 11,
                directive: Directive::AssertUnlinkable {
                    bytes: b"u",
                    message: "unknown import",
                },
            },
            Line {
                line: 12,
                directive: Directive::AssertReturn {
                    action: Action::Get {
                        module: Some("M"),
                        name: "v",
                    },
                    expected: vec![Expect::V128(u128::MAX - 1)],
                },
            },
            Line {
                line: 13,
                directive: Directive::Decided {
                    passed: true,
                    why: "malformed text",
                },
            },
        ]
    }

    fn block(lines: &[Line<'_>]) -> Vec<u8> {
        let mut w = Writer::new();
        for l in lines {
            w.push(l);
        }
        w.finish()
    }

    fn decode_all(bundle: &[u8]) -> Result<usize, DecodeError> {
        let s = scripts(bundle)?;
        for r in &s {
            r.directives()?;
        }
        Ok(s.len())
    }

    #[test]
    fn round_trip_inv_script_1() {
        let lines = every_variant();
        let multi = Features {
            multi_memory: true,
            memory64: false,
            reference_types: true,
        };
        let mut bundle = Vec::new();
        push_script(&mut bundle, "a.wast", multi, &block(&lines));
        push_script(&mut bundle, "b.wast", Features::default(), &[]);
        assert!(bundle.starts_with(MAGIC));
        let s = scripts(&bundle).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "a.wast");
        assert_eq!(s[0].features, multi);
        assert_eq!(s[0].directives().unwrap(), lines);
        assert_eq!(s[1].name, "b.wast");
        assert_eq!(s[1].features, Features::default());
        assert!(s[1].directives().unwrap().is_empty());
    }

    #[test]
    fn lanes_are_their_scalar_expectations() {
        assert_eq!(Lane::Bits(5u32).scalar(), Expect::F32(5));
        assert_eq!(Lane::<u32>::CanonicalNan.scalar(), Expect::F32CanonicalNan);
        assert_eq!(
            Lane::<u32>::ArithmeticNan.scalar(),
            Expect::F32ArithmeticNan
        );
        assert_eq!(Lane::Bits(5u64).scalar(), Expect::F64(5));
        assert_eq!(Lane::<u64>::CanonicalNan.scalar(), Expect::F64CanonicalNan);
        assert_eq!(
            Lane::<u64>::ArithmeticNan.scalar(),
            Expect::F64ArithmeticNan
        );
    }

    #[test]
    fn feature_bits_round_trip_and_unknown_bits_are_refused() {
        for multi_memory in [false, true] {
            for memory64 in [false, true] {
                for reference_types in [false, true] {
                    let f = Features {
                        multi_memory,
                        memory64,
                        reference_types,
                    };
                    assert_eq!(Features::from_bits(f.bits()), Ok(f));
                }
            }
        }
        for b in 8..=u8::MAX {
            assert_eq!(Features::from_bits(b), Err(DecodeError::BadFeatures(b)));
        }
        let mut bundle = Vec::new();
        push_script(&mut bundle, "x", Features::default(), &[]);
        bundle[MAGIC.len() + 4 + 1] = 0x80;
        assert_eq!(
            scripts(&bundle).unwrap_err(),
            DecodeError::BadFeatures(0x80)
        );
    }

    #[test]
    fn damaged_input_is_an_error_inv_script_2() {
        assert_eq!(scripts(b"nope").unwrap_err(), DecodeError::BadMagic);
        // A version 1 bundle is refused, not misread.
        assert_eq!(
            scripts(b"VSPEC\x00\x00\x01").unwrap_err(),
            DecodeError::BadMagic
        );
        let lines = every_variant();
        let mut bundle = Vec::new();
        push_script(&mut bundle, "x", Features::default(), &block(&lines));
        assert_eq!(decode_all(&bundle), Ok(1));
        // Every truncation inside the script is an error (a cut at the
        // end of the magic is an empty bundle).
        assert_eq!(decode_all(&bundle[..MAGIC.len()]), Ok(0));
        for cut in MAGIC.len() + 1..bundle.len() {
            assert!(decode_all(&bundle[..cut]).is_err(), "cut at {cut}");
        }
        // Any single byte changed decodes or fails, never panics; the
        // block's own truncations too.
        let b = block(&lines);
        for cut in 0..b.len() {
            let raw = RawScript {
                name: "x",
                features: Features::default(),
                block: &b[..cut],
            };
            let _ = raw.directives();
        }
        for i in 0..bundle.len() {
            for v in [0, 1, 0x11, 0x7f, 0xff] {
                let mut d = bundle.clone();
                d[i] = v;
                let _ = decode_all(&d);
            }
        }
        let s = |block: &'static [u8]| RawScript {
            name: "x",
            features: Features::default(),
            block,
        };
        assert_eq!(
            s(&[0, 0, 0, 0, 99]).directives().unwrap_err(),
            DecodeError::BadTag(99)
        );
        // assert_return of `invoke "" ()`, then one expectation of tag 19.
        let ret = |e: &'static [u8]| {
            let mut v = vec![0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
            v.extend_from_slice(e);
            v
        };
        let bad = ret(&[19]);
        let raw = RawScript {
            name: "x",
            features: Features::default(),
            block: &bad,
        };
        assert_eq!(raw.directives().unwrap_err(), DecodeError::BadTag(19));
        // An f32x4 lane with an unknown kind.
        let bad = ret(&[17, 1, 1, 3]);
        let raw = RawScript {
            name: "x",
            features: Features::default(),
            block: &bad,
        };
        assert_eq!(raw.directives().unwrap_err(), DecodeError::BadTag(3));
        // A v128 argument cut short.
        let mut bad = vec![0, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 8];
        bad.extend_from_slice(&[0; 15]);
        let raw = RawScript {
            name: "x",
            features: Features::default(),
            block: &bad,
        };
        assert_eq!(raw.directives().unwrap_err(), DecodeError::Truncated);
        // Nested `either` is refused (bounded recursion).
        let bad = ret(&[15, 1, 0, 0, 0, 15, 0, 0, 0, 0]);
        let raw = RawScript {
            name: "x",
            features: Features::default(),
            block: &bad,
        };
        assert_eq!(raw.directives().unwrap_err(), DecodeError::BadTag(15));
    }
}
