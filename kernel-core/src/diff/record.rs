//! The record format of the differential oracle: modules together with
//! wasmtime's outcomes, written on the host (where wasmtime runs) and
//! replayed on a kernel that has no wasmtime ([`super::replay`]).
//!
//! A bundle is
//!
//! ```text
//! "VDIFF001"                          magic and version
//! u32 count                           cases
//! count x (u32 len, len bytes)        one encoded Case each
//! u64 fnv                             FNV-1a of every byte before it
//! ```
//!
//! and a case is its seed (u64), its memory mode (u8), its module (u8 0:
//! none, wasm-smith had too few bytes; 1: u32 length and the bytes), and
//! its events (u32 count, each an [`Event`]). Integers are little-endian;
//! strings are a u32 length and UTF-8 bytes; values, outcomes and
//! snapshots are a tag byte and their fields.
//!
//! Invariants:
//! - INV-REC-1: `decode_case(encode_case(c)) == c` and `cases(bundle(cs))`
//!   gives back every encoded case, in order.
//! - INV-REC-2: decoding never panics and never allocates more than the
//!   input's length in elements: hostile bytes give a [`FormatError`]
//!   with the offset where they stopped making sense; a bundle whose
//!   checksum does not match is refused before any case is read.
//! - INV-REC-3: the events of a case are wasmtime's run of it in the
//!   oracle's order: an [`Event::Instantiate`] first and after every call
//!   whose outcome ends the pair (a budget or a stack overflow,
//!   INV-DIFF-1/2), then [`Event::Call`]s in export order; an
//!   instantiation that did not succeed is the case's last event.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::{Kind, Memories, Outcome, Snapshot, Value, fnv};

/// The first bytes of a bundle: the format and its version.
pub const MAGIC: &[u8; 8] = b"VDIFF001";

/// The exported globals and memories of an instance, by export name, in
/// export order.
pub type State = Vec<(String, Snapshot)>;

/// One step of wasmtime's run of a case (INV-REC-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A fresh instance: how instantiating ended (`Returned` with no values
    /// when it succeeded; `Err` when wasmtime failed without a trap) and,
    /// when it succeeded, the state.
    Instantiate {
        /// The outcome.
        outcome: Result<Outcome, String>,
        /// The state after it (empty unless it succeeded).
        state: State,
    },
    /// A call of an export of the current instance.
    Call {
        /// The export.
        export: String,
        /// Its arguments.
        args: Vec<Value>,
        /// How it ended.
        outcome: Result<Outcome, String>,
        /// The state after it, when it returned or trapped short of a
        /// stack overflow (otherwise empty: not compared).
        state: State,
    },
}

/// One recorded case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// The seed the module and arguments came from.
    pub seed: u64,
    /// How Vessel lays out the case's memories.
    pub memories: Memories,
    /// The module; `None` when the seed's bytes made none.
    pub wasm: Option<Vec<u8>>,
    /// wasmtime's run (INV-REC-3).
    pub events: Vec<Event>,
}

/// Why bytes are not a bundle or a case (INV-REC-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The bundle does not start with [`MAGIC`].
    BadMagic,
    /// The bytes end inside a field starting at this offset.
    Truncated {
        /// Offset of the field.
        at: usize,
    },
    /// A tag byte this format does not have.
    BadTag {
        /// Offset of the tag.
        at: usize,
        /// The byte.
        tag: u8,
    },
    /// A string that is not UTF-8.
    BadUtf8 {
        /// Offset of the string.
        at: usize,
    },
    /// The checksum does not match the bytes.
    Checksum,
    /// Bytes left after the last field.
    Trailing {
        /// Offset of the first of them.
        at: usize,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => write!(f, "not a diff bundle (no VDIFF001 magic)"),
            Self::Truncated { at } => write!(f, "truncated at byte {at}"),
            Self::BadTag { at, tag } => write!(f, "unknown tag {tag} at byte {at}"),
            Self::BadUtf8 { at } => write!(f, "a name that is not UTF-8 at byte {at}"),
            Self::Checksum => write!(f, "checksum mismatch (a damaged bundle)"),
            Self::Trailing { at } => write!(f, "trailing bytes from byte {at}"),
        }
    }
}

impl core::error::Error for FormatError {}

// ---- writing ----

fn put_u32(out: &mut Vec<u8>, x: u32) {
    out.extend_from_slice(&x.to_le_bytes());
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    // Records are made from wasm-smith's small modules: far below 4 GiB.
    put_u32(out, u32::try_from(n).unwrap_or(u32::MAX));
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

fn put_value(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::I32(x) => {
            out.push(0);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::I64(x) => {
            out.push(1);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::F32(x) => {
            out.push(2);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::F64(x) => {
            out.push(3);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::V128(x) => {
            out.push(4);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Ref { null } => {
            out.push(5);
            out.push(u8::from(null));
        }
    }
}

fn put_outcome(out: &mut Vec<u8>, o: &Result<Outcome, String>) {
    match o {
        Ok(Outcome::Returned(vals)) => {
            out.push(0);
            put_len(out, vals.len());
            for v in vals {
                put_value(out, *v);
            }
        }
        Ok(Outcome::Trapped(k)) => {
            out.push(1);
            let code = Kind::ALL.iter().position(|x| x == k).unwrap_or(0);
            out.push(code as u8);
        }
        Ok(Outcome::Exhausted) => out.push(2),
        Err(e) => {
            out.push(3);
            put_bytes(out, e.as_bytes());
        }
    }
}

fn put_state(out: &mut Vec<u8>, s: &State) {
    put_len(out, s.len());
    for (name, snap) in s {
        put_bytes(out, name.as_bytes());
        match snap {
            Snapshot::Global(v) => {
                out.push(0);
                put_value(out, *v);
            }
            Snapshot::Memory { len, hash } => {
                out.push(1);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&hash.to_le_bytes());
            }
        }
    }
}

/// Encode one case.
#[must_use]
pub fn encode_case(c: &Case) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&c.seed.to_le_bytes());
    out.push(match c.memories {
        Memories::GuardPages => 0,
        Memories::Bounded => 1,
    });
    match &c.wasm {
        None => out.push(0),
        Some(w) => {
            out.push(1);
            put_bytes(&mut out, w);
        }
    }
    put_len(&mut out, c.events.len());
    for e in &c.events {
        match e {
            Event::Instantiate { outcome, state } => {
                out.push(0);
                put_outcome(&mut out, outcome);
                put_state(&mut out, state);
            }
            Event::Call {
                export,
                args,
                outcome,
                state,
            } => {
                out.push(1);
                put_bytes(&mut out, export.as_bytes());
                put_len(&mut out, args.len());
                for a in args {
                    put_value(&mut out, *a);
                }
                put_outcome(&mut out, outcome);
                put_state(&mut out, state);
            }
        }
    }
    out
}

/// A bundle of encoded cases (from [`encode_case`]), in order.
#[must_use]
pub fn bundle(cases: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::from(&MAGIC[..]);
    put_len(&mut out, cases.len());
    for c in cases {
        put_bytes(&mut out, c);
    }
    let sum = fnv(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

// ---- reading ----

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let at = self.pos;
        let end = at.checked_add(n).ok_or(FormatError::Truncated { at })?;
        let b = self
            .bytes
            .get(at..end)
            .ok_or(FormatError::Truncated { at })?;
        self.pos = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let at = self.pos;
        self.take(N)?
            .try_into()
            .map_err(|_| FormatError::Truncated { at })
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count of elements, each at least one byte long (INV-REC-2: no
    /// count may promise more elements than bytes are left).
    fn count(&mut self) -> Result<usize, FormatError> {
        let at = self.pos;
        let n = self.u32()? as usize;
        if n > self.bytes.len().saturating_sub(self.pos) {
            return Err(FormatError::Truncated { at });
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], FormatError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, FormatError> {
        let at = self.pos;
        let b = self.bytes()?;
        core::str::from_utf8(b)
            .map(String::from)
            .map_err(|_| FormatError::BadUtf8 { at })
    }

    fn tag(&mut self, max: u8) -> Result<u8, FormatError> {
        let at = self.pos;
        let tag = self.u8()?;
        if tag > max {
            return Err(FormatError::BadTag { at, tag });
        }
        Ok(tag)
    }

    fn value(&mut self) -> Result<Value, FormatError> {
        Ok(match self.tag(5)? {
            0 => Value::I32(i32::from_le_bytes(self.array()?)),
            1 => Value::I64(i64::from_le_bytes(self.array()?)),
            2 => Value::F32(u32::from_le_bytes(self.array()?)),
            3 => Value::F64(u64::from_le_bytes(self.array()?)),
            4 => Value::V128(u128::from_le_bytes(self.array()?)),
            _ => Value::Ref {
                null: self.tag(1)? == 1,
            },
        })
    }

    fn outcome(&mut self) -> Result<Result<Outcome, String>, FormatError> {
        Ok(match self.tag(3)? {
            0 => {
                let n = self.count()?;
                let mut vals = Vec::new();
                for _ in 0..n {
                    vals.push(self.value()?);
                }
                Ok(Outcome::Returned(vals))
            }
            1 => {
                let at = self.pos;
                let code = self.u8()?;
                let kind = Kind::ALL
                    .get(usize::from(code))
                    .ok_or(FormatError::BadTag { at, tag: code })?;
                Ok(Outcome::Trapped(*kind))
            }
            2 => Ok(Outcome::Exhausted),
            _ => Err(self.string()?),
        })
    }

    fn state(&mut self) -> Result<State, FormatError> {
        let n = self.count()?;
        let mut out = Vec::new();
        for _ in 0..n {
            let name = self.string()?;
            let snap = match self.tag(1)? {
                0 => Snapshot::Global(self.value()?),
                _ => Snapshot::Memory {
                    len: self.u64()?,
                    hash: self.u64()?,
                },
            };
            out.push((name, snap));
        }
        Ok(out)
    }

    fn end(&self) -> Result<(), FormatError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(FormatError::Trailing { at: self.pos })
        }
    }
}

/// Decode one case (INV-REC-1, INV-REC-2).
///
/// # Errors
/// [`FormatError`] for bytes that are not exactly one case.
pub fn decode_case(bytes: &[u8]) -> Result<Case, FormatError> {
    let mut r = Reader { bytes, pos: 0 };
    let seed = r.u64()?;
    let memories = match r.tag(1)? {
        0 => Memories::GuardPages,
        _ => Memories::Bounded,
    };
    let wasm = match r.tag(1)? {
        0 => None,
        _ => Some(Vec::from(r.bytes()?)),
    };
    let n = r.count()?;
    let mut events = Vec::new();
    for _ in 0..n {
        events.push(match r.tag(1)? {
            0 => Event::Instantiate {
                outcome: r.outcome()?,
                state: r.state()?,
            },
            _ => {
                let export = r.string()?;
                let nargs = r.count()?;
                let mut args = Vec::new();
                for _ in 0..nargs {
                    args.push(r.value()?);
                }
                Event::Call {
                    export,
                    args,
                    outcome: r.outcome()?,
                    state: r.state()?,
                }
            }
        });
    }
    r.end()?;
    Ok(Case {
        seed,
        memories,
        wasm,
        events,
    })
}

/// The encoded cases of a bundle, in order, after checking its magic and
/// checksum (INV-REC-2); each is decoded with [`decode_case`].
///
/// # Errors
/// [`FormatError`] when the bundle's framing or checksum is damaged.
pub fn cases(bundle: &[u8]) -> Result<Vec<&[u8]>, FormatError> {
    if bundle.len() < MAGIC.len() || &bundle[..MAGIC.len()] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let body_len = bundle
        .len()
        .checked_sub(8)
        .filter(|&n| n >= MAGIC.len())
        .ok_or(FormatError::Truncated { at: MAGIC.len() })?;
    let (body, sum) = bundle.split_at(body_len);
    let mut sum_bytes = [0u8; 8];
    sum_bytes.copy_from_slice(sum);
    if fnv(body) != u64::from_le_bytes(sum_bytes) {
        return Err(FormatError::Checksum);
    }
    let mut r = Reader {
        bytes: body,
        pos: MAGIC.len(),
    };
    let n = r.count()?;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(r.bytes()?);
    }
    r.end()?;
    Ok(out)
}
