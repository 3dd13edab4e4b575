//! The persistent compiled-module format: a compiled module's code,
//! relocations, trap sites, source locations and trampolines written as
//! bytes, to be loaded instead of compiled (a cache directory on hosted,
//! precompiled programs in a system image).
//!
//! An artifact is
//!
//! ```text
//! "VSLCODE\0" | format u32 | version: len u32, UTF-8 | module SHA-256 (32)
//!             | payload: len u64, bytes | SHA-256 of everything before (32)
//! ```
//!
//! integers little-endian. The *version* names everything the code depends
//! on besides the module: the kernel's codegen fingerprint
//! (`VESSEL_CODEGEN_ID`: the translator and runtime sources and the
//! Cranelift release), the target triple, every Cranelift and ISA flag,
//! and the translation settings. The module's description (types, imports,
//! exports, segments, names) is not stored: loading validates and parses
//! the module itself again, which costs a small part of compiling it.
//!
//! Invariants:
//! - INV-ART-1: [`load_within`] returns a module only for an artifact
//!   whose checksum holds, whose format and version equal this kernel's
//!   for this compiler and settings, and whose module hash is the SHA-256
//!   of the very bytes being loaded; anything else is an
//!   [`ArtifactError`] and the caller compiles instead. Code from another
//!   build, ISA, setting or module is never executed.
//! - INV-ART-2: decoding never panics and never reads past the artifact;
//!   every count is checked against the bytes left before anything is
//!   allocated for it.
//! - INV-ART-3: a loaded module holds from its budget what a compiled one
//!   does (`retained`), and its functions are the module's defined
//!   functions, one for one.
//!
//! The checksum catches corruption and truncation, not an attacker: whoever
//! can write a cache directory can run native code in the kernel, as
//! whoever can write the kernel binary can. Hosted keeps the directory
//! private to its user.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use cranelift_codegen::binemit::Reloc as RelocKind;
use sha2::{Digest, Sha256};

use super::budget::Budget;
use super::compile::{
    CompiledFunction, CompiledModule, Compiler, HandlerSite, Reloc, RelocTarget, Trampoline,
    TrapSite, keeping,
};
use super::module::{self, CompileError, FuncType, ValType};
use super::retained::{self, Retained, Section};
use super::translate::TranslateConfig;
use super::vm::{KINDS, trap_code};
use super::vmoffsets::VMOffsets;

/// The first bytes of every artifact.
pub const MAGIC: [u8; 8] = *b"VSLCODE\0";
/// The layout version of this module's encoding.
pub const FORMAT: u32 = 2;

/// Why an artifact was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactError {
    /// Shorter than its header or its declared payload.
    Truncated,
    /// Not an artifact.
    BadMagic,
    /// Another layout version.
    OtherFormat(u32),
    /// Written by another build, for another ISA or other settings.
    OtherVersion,
    /// Compiled from other module bytes.
    OtherModule,
    /// The checksum does not hold.
    Checksum,
    /// The payload does not decode, or does not fit the module.
    Malformed,
    /// The module itself does not load (invalid, over budget).
    Module(CompileError),
}

impl fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated"),
            Self::BadMagic => f.write_str("not a compiled module"),
            Self::OtherFormat(v) => write!(f, "format {v}, this kernel reads {FORMAT}"),
            Self::OtherVersion => f.write_str("compiled by another kernel, ISA or setting"),
            Self::OtherModule => f.write_str("compiled from another module"),
            Self::Checksum => f.write_str("checksum mismatch"),
            Self::Malformed => f.write_str("malformed"),
            Self::Module(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ArtifactError {}

/// Everything compiled code depends on besides the module (see the module
/// docs).
#[must_use]
pub fn version(compiler: &Compiler, config: &TranslateConfig) -> String {
    let isa = compiler.isa();
    let mut flags = String::new();
    for v in isa.flags().iter() {
        flags.push_str(&format!("{v},"));
    }
    for v in isa.isa_flags() {
        flags.push_str(&format!("{v},"));
    }
    format!(
        "vessel {} codegen {} target {} flags [{flags}] config {config:?}",
        env!("CARGO_PKG_VERSION"),
        env!("VESSEL_CODEGEN_ID"),
        isa.triple(),
    )
}

/// The key an artifact of `bytes` is kept under: SHA-256 of the version
/// and the module's own SHA-256.
#[must_use]
pub fn key(bytes: &[u8], compiler: &Compiler, config: &TranslateConfig) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(version(compiler, config).as_bytes());
    h.update([0]);
    h.update(Sha256::digest(bytes));
    h.finalize().into()
}

/// A key as 64 lowercase hex digits (a file name).
#[must_use]
pub fn key_hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Relocation kinds the linker applies, and their codes in the format.
const RELOCS: [RelocKind; 5] = [
    RelocKind::X86CallPCRel4,
    RelocKind::X86CallPLTRel4,
    RelocKind::X86PCRel4,
    RelocKind::Arm64Call,
    RelocKind::RiscvCallPlt,
];

const VALTYPES: [ValType; 7] = [
    ValType::I32,
    ValType::I64,
    ValType::F32,
    ValType::F64,
    ValType::FUNCREF,
    ValType::EXTERNREF,
    ValType::V128,
];

/// The artifact of `module`, compiled from `bytes` by `compiler` under
/// `config`; `None` when it holds something the format cannot express (a
/// relocation kind the linker would refuse anyway).
#[must_use]
pub fn encode(
    module: &CompiledModule,
    bytes: &[u8],
    compiler: &Compiler,
    config: &TranslateConfig,
) -> Option<Vec<u8>> {
    let mut p = Vec::new();
    put_u32(&mut p, module::len_u32(module.functions.len()));
    for f in &module.functions {
        put_function(&mut p, f)?;
    }
    put_u32(&mut p, module::len_u32(module.trampolines.len()));
    for t in &module.trampolines {
        for list in [&t.ty.params, &t.ty.results] {
            put_u32(&mut p, module::len_u32(list.len()));
            for v in list {
                p.push(VALTYPES.iter().position(|x| x == v)? as u8);
            }
        }
        put_function(&mut p, &t.function)?;
    }
    let version = version(compiler, config);
    let mut out = Vec::with_capacity(p.len() + version.len() + 96);
    out.extend_from_slice(&MAGIC);
    put_u32(&mut out, FORMAT);
    put_u32(&mut out, module::len_u32(version.len()));
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(&Sha256::digest(bytes));
    out.extend_from_slice(&(p.len() as u64).to_le_bytes());
    out.extend_from_slice(&p);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    Some(out)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_function(out: &mut Vec<u8>, f: &CompiledFunction) -> Option<()> {
    put_u32(out, module::len_u32(f.code.len()));
    out.extend_from_slice(&f.code);
    put_u32(out, f.alignment);
    put_u32(out, module::len_u32(f.relocs.len()));
    for r in &f.relocs {
        let RelocTarget::Function(target) = r.target;
        put_u32(out, r.offset);
        out.push(RELOCS.iter().position(|k| *k == r.kind)? as u8);
        put_u32(out, target);
        out.extend_from_slice(&r.addend.to_le_bytes());
    }
    put_u32(out, module::len_u32(f.traps.len()));
    for t in &f.traps {
        put_u32(out, t.code_offset);
        out.push(trap_code(t.kind) as u8);
    }
    put_u32(out, module::len_u32(f.srclocs.len()));
    for &(code, wasm) in &f.srclocs {
        put_u32(out, code);
        put_u32(out, wasm);
    }
    put_u32(out, module::len_u32(f.handlers.len()));
    for h in &f.handlers {
        put_u32(out, h.ret_offset);
        put_u32(out, h.frame_offset);
        put_u32(out, h.handler);
    }
    Some(())
}

/// A bounded reader over the payload (INV-ART-2).
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ArtifactError> {
        if n > self.bytes.len() {
            return Err(ArtifactError::Malformed);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ArtifactError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ArtifactError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, ArtifactError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count of items at least `min_size` bytes each: never more than
    /// the bytes left could hold.
    fn count(&mut self, min_size: usize) -> Result<usize, ArtifactError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.bytes.len() {
            return Err(ArtifactError::Malformed);
        }
        Ok(n)
    }

    fn function(&mut self) -> Result<CompiledFunction, ArtifactError> {
        let len = self.count(1)?;
        let code = self.take(len)?.to_vec();
        let alignment = self.u32()?;
        let n = self.count(17)?;
        let mut relocs = Vec::with_capacity(n);
        for _ in 0..n {
            let offset = self.u32()?;
            let kind = *RELOCS
                .get(usize::from(self.u8()?))
                .ok_or(ArtifactError::Malformed)?;
            let target = RelocTarget::Function(self.u32()?);
            let addend = self.u64()?.cast_signed();
            relocs.push(Reloc {
                offset,
                kind,
                target,
                addend,
            });
        }
        let n = self.count(5)?;
        let mut traps = Vec::with_capacity(n);
        for _ in 0..n {
            let code_offset = self.u32()?;
            let kind = *KINDS
                .get(usize::from(self.u8()?))
                .ok_or(ArtifactError::Malformed)?;
            traps.push(TrapSite { code_offset, kind });
        }
        let n = self.count(8)?;
        let mut srclocs = Vec::with_capacity(n);
        for _ in 0..n {
            srclocs.push((self.u32()?, self.u32()?));
        }
        let n = self.count(12)?;
        let mut handlers = Vec::with_capacity(n);
        for _ in 0..n {
            let h = HandlerSite {
                ret_offset: self.u32()?,
                frame_offset: self.u32()?,
                handler: self.u32()?,
            };
            // A handler outside the code, or sites out of order, is damage.
            if h.handler as usize >= code.len()
                || handlers
                    .last()
                    .is_some_and(|p: &HandlerSite| p.ret_offset >= h.ret_offset)
            {
                return Err(ArtifactError::Malformed);
            }
            handlers.push(h);
        }
        Ok(CompiledFunction {
            code,
            alignment,
            relocs,
            traps,
            srclocs,
            handlers,
        })
    }

    fn valtypes(&mut self) -> Result<Vec<ValType>, ArtifactError> {
        let n = self.count(1)?;
        (0..n)
            .map(|_| {
                VALTYPES
                    .get(usize::from(self.u8()?))
                    .copied()
                    .ok_or(ArtifactError::Malformed)
            })
            .collect()
    }
}

/// Check an artifact's envelope (INV-ART-1) and return its payload.
///
/// # Errors
/// Every [`ArtifactError`] but `Malformed` and `Module`.
pub fn payload<'a>(
    artifact: &'a [u8],
    bytes: &[u8],
    compiler: &Compiler,
    config: &TranslateConfig,
) -> Result<&'a [u8], ArtifactError> {
    if artifact.len() < MAGIC.len() + 4 {
        return Err(ArtifactError::Truncated);
    }
    if artifact[..MAGIC.len()] != MAGIC {
        return Err(ArtifactError::BadMagic);
    }
    let body_len = artifact
        .len()
        .checked_sub(32)
        .ok_or(ArtifactError::Truncated)?;
    let (body, sum) = artifact.split_at(body_len);
    let mut r = Reader {
        bytes: body.get(MAGIC.len()..).ok_or(ArtifactError::Truncated)?,
    };
    let format = r.u32().map_err(|_| ArtifactError::Truncated)?;
    if format != FORMAT {
        return Err(ArtifactError::OtherFormat(format));
    }
    let vlen = r.u32().map_err(|_| ArtifactError::Truncated)? as usize;
    let stored = r.take(vlen).map_err(|_| ArtifactError::Truncated)?;
    let module_sum = r.take(32).map_err(|_| ArtifactError::Truncated)?;
    let plen = r.u64().map_err(|_| ArtifactError::Truncated)?;
    if plen != r.bytes.len() as u64 {
        return Err(ArtifactError::Truncated);
    }
    if Sha256::digest(body).as_slice() != sum {
        return Err(ArtifactError::Checksum);
    }
    if stored != version(compiler, config).as_bytes() {
        return Err(ArtifactError::OtherVersion);
    }
    if module_sum != Sha256::digest(bytes).as_slice() {
        return Err(ArtifactError::OtherModule);
    }
    Ok(r.bytes)
}

/// Load the module `bytes` with the code of `artifact` instead of
/// compiling it, holding from `budget` what the module keeps as
/// [`super::compile::compile_module_within`] would (INV-ART-3).
///
/// # Errors
/// [`ArtifactError`] (INV-ART-1); nothing stays held then.
pub fn load_within(
    artifact: &[u8],
    bytes: &[u8],
    compiler: &Compiler,
    config: &TranslateConfig,
    budget: &mut dyn Budget,
) -> Result<CompiledModule, ArtifactError> {
    let payload = payload(artifact, bytes, compiler, config)?;
    keeping(budget, |budget, kept| {
        decode(payload, bytes, compiler, config, budget, kept)
    })
}

fn decode(
    payload: &[u8],
    bytes: &[u8],
    compiler: &Compiler,
    config: &TranslateConfig,
    budget: &mut dyn Budget,
    kept: &mut Retained,
) -> Result<CompiledModule, ArtifactError> {
    let parsed = module::parse_within(bytes, config.features(), budget, kept)
        .map_err(ArtifactError::Module)?;
    let info = parsed.info;
    if info.first_v128.is_some() && !compiler.simd() {
        return Err(ArtifactError::OtherVersion);
    }
    let mut r = Reader { bytes: payload };
    let n = r.count(16)?;
    if n != parsed.bodies.len() {
        return Err(ArtifactError::Malformed);
    }
    let mut functions = Vec::with_capacity(n);
    for body in &parsed.bodies {
        let f = r.function()?;
        if f.relocs.iter().any(|x| {
            let RelocTarget::Function(t) = x.target;
            t as usize >= n
        }) {
            return Err(ArtifactError::Malformed);
        }
        kept.add(
            budget,
            retained::function_cost(&f),
            Section::Code,
            body.range().start,
        )
        .map_err(ArtifactError::Module)?;
        functions.push(f);
    }
    let n = r.count(24)?;
    let mut trampolines = Vec::with_capacity(n);
    for _ in 0..n {
        let ty = FuncType {
            params: r.valtypes()?,
            results: r.valtypes()?,
        };
        let function = r.function()?;
        if !function.relocs.is_empty() {
            return Err(ArtifactError::Malformed);
        }
        trampolines.push(Trampoline { ty, function });
    }
    if !r.bytes.is_empty() {
        return Err(ArtifactError::Malformed);
    }
    Ok(CompiledModule {
        offsets: VMOffsets::new(compiler.pointer_bytes(), &info),
        info,
        functions,
        trampolines,
        retained: 0,
        linked: spin::Mutex::new(alloc::sync::Weak::new()),
    })
}

#[cfg(test)]
mod tests;
