//! Which instruction-set extensions every CPU of the machine has: what the
//! code generator may use ([`crate::wasm::compile::Compiler::for_features`]).
//!
//! A process migrates between CPUs at any preemption point, so the code it
//! runs may use only what *all* CPUs implement: a platform reports the
//! intersection ([`RiscvExtensions::intersect`]).
//!
//! On x86-64 (hosted) the facts come from the CPU the kernel runs on
//! ([`X86Extensions`]).
//!
//! On RISC-V the facts come from the device tree's ISA strings
//! (`riscv,isa`, e.g. `rv64imafdcvh_zicsr_zifencei_zba_zbb`), parsed here
//! without touching hardware so every rule is unit-tested on the host.
//!
//! Invariants:
//! - INV-ISA-1: parsing never fails on an extension it does not know: an
//!   unknown name is ignored (the code generator cannot use it anyway); it
//!   fails only on a string that is not an RV64 ISA string at all.
//! - INV-ISA-2: implied extensions are added when parsing (`g` is
//!   `imafd_zicsr_zifencei`, `d` implies `f`, `c` implies `zca` and, with
//!   `d`, `zcd`, `v` implies `zvl128b`, `zvlNb` implies every smaller
//!   `zvl`), so a flag never depends on how a string was spelled.

use core::fmt;

mod x86;
pub use x86::{X86Ext, X86Extensions};

/// One RISC-V extension the code generator knows about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RiscvExt {
    /// Integer multiply and divide.
    M,
    /// Atomics.
    A,
    /// Single-precision floating point.
    F,
    /// Double-precision floating point.
    D,
    /// Compressed instructions.
    C,
    /// Vectors (1.0).
    V,
    /// Control and status registers.
    Zicsr,
    /// Instruction-fetch fence.
    Zifencei,
    /// Address generation (bit manipulation).
    Zba,
    /// Basic bit manipulation.
    Zbb,
    /// Carry-less multiplication.
    Zbc,
    /// Single-bit instructions.
    Zbs,
    /// Bit manipulation for cryptography.
    Zbkb,
    /// Conditional zero.
    Zicond,
    /// Additional floating-point instructions.
    Zfa,
    /// Minimal half-precision floating point.
    Zfhmin,
    /// Half-precision floating point.
    Zfh,
    /// Vector half-precision floating point.
    Zvfh,
    /// Vector basic bit manipulation.
    Zvbb,
    /// Compressed, without floating-point loads and stores.
    Zca,
    /// Compressed double-precision loads and stores.
    Zcd,
    /// Extra compressed instructions.
    Zcb,
    /// Vector registers of at least 32 bits.
    Zvl32b,
    /// ... 64 bits.
    Zvl64b,
    /// ... 128 bits.
    Zvl128b,
    /// ... 256 bits.
    Zvl256b,
    /// ... 512 bits.
    Zvl512b,
    /// ... 1024 bits.
    Zvl1024b,
}

impl RiscvExt {
    /// Every extension, in declaration order.
    pub const ALL: [RiscvExt; 28] = [
        Self::M,
        Self::A,
        Self::F,
        Self::D,
        Self::C,
        Self::V,
        Self::Zicsr,
        Self::Zifencei,
        Self::Zba,
        Self::Zbb,
        Self::Zbc,
        Self::Zbs,
        Self::Zbkb,
        Self::Zicond,
        Self::Zfa,
        Self::Zfhmin,
        Self::Zfh,
        Self::Zvfh,
        Self::Zvbb,
        Self::Zca,
        Self::Zcd,
        Self::Zcb,
        Self::Zvl32b,
        Self::Zvl64b,
        Self::Zvl128b,
        Self::Zvl256b,
        Self::Zvl512b,
        Self::Zvl1024b,
    ];

    /// The extension's name in an ISA string (lower case).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::M => "m",
            Self::A => "a",
            Self::F => "f",
            Self::D => "d",
            Self::C => "c",
            Self::V => "v",
            Self::Zicsr => "zicsr",
            Self::Zifencei => "zifencei",
            Self::Zba => "zba",
            Self::Zbb => "zbb",
            Self::Zbc => "zbc",
            Self::Zbs => "zbs",
            Self::Zbkb => "zbkb",
            Self::Zicond => "zicond",
            Self::Zfa => "zfa",
            Self::Zfhmin => "zfhmin",
            Self::Zfh => "zfh",
            Self::Zvfh => "zvfh",
            Self::Zvbb => "zvbb",
            Self::Zca => "zca",
            Self::Zcd => "zcd",
            Self::Zcb => "zcb",
            Self::Zvl32b => "zvl32b",
            Self::Zvl64b => "zvl64b",
            Self::Zvl128b => "zvl128b",
            Self::Zvl256b => "zvl256b",
            Self::Zvl512b => "zvl512b",
            Self::Zvl1024b => "zvl1024b",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    const fn bit(self) -> u64 {
        1 << self as u8
    }
}

/// Why an ISA string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsaError {
    /// It does not start with `rv64` and a base (`i`, `e` or `g`).
    NotRv64,
}

impl fmt::Display for IsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRv64 => f.write_str("not an RV64 ISA string"),
        }
    }
}

/// A set of RISC-V extensions.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct RiscvExtensions(u64);

impl RiscvExtensions {
    /// RV64GC: what the kernel itself is built for, so what every hart
    /// that runs it has.
    pub const RV64GC: Self = Self::of(&[
        RiscvExt::M,
        RiscvExt::A,
        RiscvExt::F,
        RiscvExt::D,
        RiscvExt::C,
        RiscvExt::Zicsr,
        RiscvExt::Zifencei,
        RiscvExt::Zca,
        RiscvExt::Zcd,
    ]);

    /// The set of `exts`, as given (no implications).
    #[must_use]
    pub const fn of(exts: &[RiscvExt]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < exts.len() {
            bits |= exts[i].bit();
            i += 1;
        }
        Self(bits)
    }

    /// Whether `ext` is in the set.
    #[must_use]
    pub const fn has(self, ext: RiscvExt) -> bool {
        self.0 & ext.bit() != 0
    }

    /// The extensions both sets have.
    #[must_use]
    pub const fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    fn add(&mut self, ext: RiscvExt) {
        self.0 |= ext.bit();
    }

    /// Parse an ISA string such as `rv64imafdcvh_zicsr_zifencei_zba`
    /// (case-insensitive; version numbers such as `i2p1` are skipped),
    /// with implied extensions added (INV-ISA-2).
    ///
    /// # Errors
    /// [`IsaError::NotRv64`] when it does not start with `rv64` and a base.
    pub fn parse(isa: &str) -> Result<Self, IsaError> {
        let mut set = Self::default();
        let mut parts = isa.split('_');
        let first = parts.next().unwrap_or_default();
        let letters = first
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("rv64"))
            .map(|_| &first[4..])
            .ok_or(IsaError::NotRv64)?;
        let mut chars = letters.char_indices().peekable();
        match chars.next().map(|(_, c)| c.to_ascii_lowercase()) {
            Some('g') => {
                for e in [
                    RiscvExt::M,
                    RiscvExt::A,
                    RiscvExt::F,
                    RiscvExt::D,
                    RiscvExt::Zicsr,
                    RiscvExt::Zifencei,
                ] {
                    set.add(e);
                }
            }
            Some('i' | 'e') => {}
            _ => return Err(IsaError::NotRv64),
        }
        // Single letters, each perhaps followed by a version (`2p1`), up to
        // the first multi-letter extension (`z…`, `s…`, `x…`), which may
        // follow without an underscore.
        let mut rest_of_first = None;
        while let Some((at, c)) = chars.next() {
            let c = c.to_ascii_lowercase();
            if matches!(c, 'z' | 's' | 'x') {
                rest_of_first = Some(&letters[at..]);
                break;
            }
            let mut buf = [0u8; 4];
            if let Some(e) = RiscvExt::from_name(c.encode_utf8(&mut buf)) {
                set.add(e);
            }
            skip_version(&mut chars);
        }
        for name in rest_of_first.into_iter().chain(parts) {
            set.add_named(name);
        }
        set.imply();
        Ok(set)
    }

    /// The set named by a list of extensions, as the device tree's
    /// `riscv,isa-extensions` gives them (`"i", "m", "zba"`), with implied
    /// extensions added (INV-ISA-2). Unknown names are ignored.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = Self::default();
        for name in names {
            set.add_named(name);
        }
        set.imply();
        set
    }

    /// Add one extension by name, its version suffix (`2p0`) stripped.
    fn add_named(&mut self, name: &str) {
        let lower = |s: &str| -> Option<RiscvExt> {
            let mut buf = [0u8; 16];
            let bytes = s.as_bytes();
            let b = buf.get_mut(..bytes.len())?;
            b.copy_from_slice(bytes);
            b.make_ascii_lowercase();
            RiscvExt::from_name(core::str::from_utf8(b).ok()?)
        };
        if let Some(e) = lower(name) {
            self.add(e);
            return;
        }
        // `zicsr2p0` -> `zicsr`: drop a trailing `<digits>[p<digits>]`.
        let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let trimmed = trimmed.strip_suffix(['p', 'P']).map_or(trimmed, |t| {
            t.trim_end_matches(|c: char| c.is_ascii_digit())
        });
        if trimmed.len() < name.len()
            && let Some(e) = lower(trimmed)
        {
            self.add(e);
        }
    }

    /// Add what the set's members imply (INV-ISA-2).
    fn imply(&mut self) {
        if self.has(RiscvExt::D) {
            self.add(RiscvExt::F);
        }
        if self.has(RiscvExt::C) {
            self.add(RiscvExt::Zca);
            if self.has(RiscvExt::D) {
                self.add(RiscvExt::Zcd);
            }
        }
        if self.has(RiscvExt::Zfh) {
            self.add(RiscvExt::Zfhmin);
        }
        if self.has(RiscvExt::V) {
            self.add(RiscvExt::Zvl128b);
        }
        let zvl = [
            RiscvExt::Zvl32b,
            RiscvExt::Zvl64b,
            RiscvExt::Zvl128b,
            RiscvExt::Zvl256b,
            RiscvExt::Zvl512b,
            RiscvExt::Zvl1024b,
        ];
        for i in (1..zvl.len()).rev() {
            if self.has(zvl[i]) {
                self.add(zvl[i - 1]);
            }
        }
    }

    /// The members, in [`RiscvExt::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = RiscvExt> {
        RiscvExt::ALL.into_iter().filter(move |e| self.has(*e))
    }
}

/// Skip a version after a single-letter extension: `<digits>[p<digits>]`.
fn skip_version(chars: &mut core::iter::Peekable<core::str::CharIndices<'_>>) {
    let digits = |chars: &mut core::iter::Peekable<core::str::CharIndices<'_>>| {
        let mut any = false;
        while chars.next_if(|(_, d)| d.is_ascii_digit()).is_some() {
            any = true;
        }
        any
    };
    if digits(chars) {
        let mut ahead = chars.clone();
        if ahead
            .next_if(|(_, c)| c.eq_ignore_ascii_case(&'p'))
            .is_some()
            && ahead.peek().is_some_and(|(_, d)| d.is_ascii_digit())
        {
            *chars = ahead;
            digits(chars);
        }
    }
}

impl fmt::Debug for RiscvExtensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(RiscvExt::name))
            .finish()
    }
}

impl fmt::Display for RiscvExtensions {
    /// `rv64` and the members, single letters first, the rest after `_`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rv64i")?;
        for e in self.iter().filter(|e| e.name().len() == 1) {
            f.write_str(e.name())?;
        }
        for e in self.iter().filter(|e| e.name().len() > 1) {
            write!(f, "_{}", e.name())?;
        }
        Ok(())
    }
}

/// The ISA extensions every CPU has ([`super::Cpus::isa_features`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IsaFeatures {
    /// The architecture's baseline as the kernel is built for it (x86_64:
    /// x86-64-v2; aarch64: ARMv8.0 with NEON; riscv64: RV64GC).
    #[default]
    Baseline,
    /// RISC-V harts with these extensions.
    Riscv(RiscvExtensions),
    /// x86-64 CPUs with these extensions.
    X86(X86Extensions),
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const QEMU_V: &str = "rv64imafdcvh_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc";

    #[test]
    fn qemu_virt_with_vectors() {
        let s = RiscvExtensions::parse(QEMU_V).unwrap();
        for e in [
            RiscvExt::M,
            RiscvExt::A,
            RiscvExt::F,
            RiscvExt::D,
            RiscvExt::C,
            RiscvExt::V,
            RiscvExt::Zicsr,
            RiscvExt::Zifencei,
            RiscvExt::Zba,
            RiscvExt::Zbb,
            RiscvExt::Zbc,
            RiscvExt::Zbs,
            RiscvExt::Zca,
            RiscvExt::Zcd,
            RiscvExt::Zvl32b,
            RiscvExt::Zvl64b,
            RiscvExt::Zvl128b,
        ] {
            assert!(s.has(e), "{e:?} missing from {s:?}");
        }
        for e in [
            RiscvExt::Zvl256b,
            RiscvExt::Zicond,
            RiscvExt::Zfa,
            RiscvExt::Zcb,
        ] {
            assert!(!s.has(e), "{e:?} should not be in {s:?}");
        }
        // `h` (hypervisor), `zihintpause` and `sstc` are not code-generator
        // extensions: ignored (INV-ISA-1).
        assert_eq!(
            s.to_string(),
            "rv64imafdcv_zicsr_zifencei_zba_zbb_zbc_zbs_zca_zcd_zvl32b_zvl64b_zvl128b"
        );
    }

    #[test]
    fn g_and_versions_and_case_inv_isa_2() {
        let a = RiscvExtensions::parse("RV64GC").unwrap();
        let b =
            RiscvExtensions::parse("rv64i2p1m2p0a2p1f2p2d2p2c2p0_zicsr2p0_zifencei2p0").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, RiscvExtensions::RV64GC);
        // A multi-letter extension right after the letters, without `_`.
        let c = RiscvExtensions::parse("rv64imazba_zbb").unwrap();
        assert!(c.has(RiscvExt::Zba) && c.has(RiscvExt::Zbb) && c.has(RiscvExt::A));
        assert!(!c.has(RiscvExt::F));
        // zvl256b implies the smaller ones.
        let d = RiscvExtensions::parse("rv64gcv_zvl256b").unwrap();
        assert!(d.has(RiscvExt::Zvl256b) && d.has(RiscvExt::Zvl128b) && d.has(RiscvExt::Zvl32b));
        assert!(!d.has(RiscvExt::Zvl512b));
    }

    #[test]
    fn device_tree_extension_lists() {
        let s = RiscvExtensions::from_names(["i", "m", "a", "f", "d", "c", "v", "zba", "xfoo"]);
        assert!(s.has(RiscvExt::V) && s.has(RiscvExt::Zvl128b) && s.has(RiscvExt::Zcd));
        assert!(!s.has(RiscvExt::Zbb));
    }

    #[test]
    fn not_rv64_inv_isa_1() {
        for bad in [
            "",
            "rv32imac",
            "rv64",
            "rv64q",
            "x86_64",
            "rv6",
            "rv64\u{e9}",
        ] {
            assert_eq!(
                RiscvExtensions::parse(bad),
                Err(IsaError::NotRv64),
                "{bad:?}"
            );
        }
        // Unknown extensions, and bytes that are no extension at all, are
        // no error.
        let odd = RiscvExtensions::parse("rv64i\u{e9}m9p_zba").unwrap();
        assert!(odd.has(RiscvExt::M) && odd.has(RiscvExt::Zba));
        let s = RiscvExtensions::parse("rv64imafdq_xvendor_zzz9p9_").unwrap();
        assert!(s.has(RiscvExt::D) && !s.has(RiscvExt::V));
    }

    #[test]
    fn harts_intersect() {
        let with_v = RiscvExtensions::parse(QEMU_V).unwrap();
        let without = RiscvExtensions::parse("rv64imafdc_zba").unwrap();
        let both = with_v.intersect(without);
        assert!(!both.has(RiscvExt::V) && both.has(RiscvExt::Zba) && !both.has(RiscvExt::Zbb));
    }
}
