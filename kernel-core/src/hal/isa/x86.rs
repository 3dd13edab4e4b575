//! x86-64 extensions the code generator can use, as a set.
//!
//! The hosted HAL fills the set from the CPU it runs on (CPUID, through
//! the standard library's detection); the compiler turns each member into
//! the Cranelift flag of the same name, on or off
//! ([`crate::wasm::compile::Compiler::for_features`]).
//!
//! Invariants:
//! - INV-X86-1: a set is closed under implication ([`X86Extensions::new`]
//!   adds what a member needs: `avx2` needs `avx`, `avx` needs `sse4.2`,
//!   every AVX-512 member needs `avx512f`), and a member whose requirement
//!   is missing is dropped, so the flags handed to Cranelift never name an
//!   extension without the ones its encodings assume.
//! - INV-X86-2: [`X86Extensions::V2`] is the kernel's floor (x86-64-v2:
//!   SSE4.2, POPCNT, CMPXCHG16B): the code generator refuses a set without
//!   it rather than emit libcalls it cannot link (`ceil`, `floor` need
//!   SSE4.1).

use core::fmt;

/// One x86-64 extension the code generator knows about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum X86Ext {
    /// SSE3.
    Sse3,
    /// Supplemental SSE3.
    Ssse3,
    /// 16-byte compare-and-exchange.
    Cmpxchg16b,
    /// SSE4.1.
    Sse41,
    /// SSE4.2.
    Sse42,
    /// Population count.
    Popcnt,
    /// Leading-zero count.
    Lzcnt,
    /// Bit manipulation 1 (`tzcnt`, `andn`, ...).
    Bmi1,
    /// Bit manipulation 2 (`shlx`, `sarx`, `bzhi`, ...).
    Bmi2,
    /// AVX (VEX encodings, three-operand forms).
    Avx,
    /// AVX2.
    Avx2,
    /// Fused multiply-add.
    Fma,
    /// AVX-512 foundation.
    Avx512f,
    /// AVX-512 vector length extensions.
    Avx512vl,
    /// AVX-512 doubleword and quadword instructions.
    Avx512dq,
    /// AVX-512 bit algorithms.
    Avx512bitalg,
    /// AVX-512 vector byte manipulation.
    Avx512vbmi,
}

impl X86Ext {
    /// Every extension, in declaration order.
    pub const ALL: [X86Ext; 17] = [
        Self::Sse3,
        Self::Ssse3,
        Self::Cmpxchg16b,
        Self::Sse41,
        Self::Sse42,
        Self::Popcnt,
        Self::Lzcnt,
        Self::Bmi1,
        Self::Bmi2,
        Self::Avx,
        Self::Avx2,
        Self::Fma,
        Self::Avx512f,
        Self::Avx512vl,
        Self::Avx512dq,
        Self::Avx512bitalg,
        Self::Avx512vbmi,
    ];

    /// The name the standard library's `is_x86_feature_detected!` and
    /// `/proc/cpuinfo`-style listings use (lower case).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sse3 => "sse3",
            Self::Ssse3 => "ssse3",
            Self::Cmpxchg16b => "cmpxchg16b",
            Self::Sse41 => "sse4.1",
            Self::Sse42 => "sse4.2",
            Self::Popcnt => "popcnt",
            Self::Lzcnt => "lzcnt",
            Self::Bmi1 => "bmi1",
            Self::Bmi2 => "bmi2",
            Self::Avx => "avx",
            Self::Avx2 => "avx2",
            Self::Fma => "fma",
            Self::Avx512f => "avx512f",
            Self::Avx512vl => "avx512vl",
            Self::Avx512dq => "avx512dq",
            Self::Avx512bitalg => "avx512bitalg",
            Self::Avx512vbmi => "avx512vbmi",
        }
    }

    /// The Cranelift x86 backend flag for it.
    #[must_use]
    pub const fn cranelift_flag(self) -> &'static str {
        match self {
            Self::Sse3 => "has_sse3",
            Self::Ssse3 => "has_ssse3",
            Self::Cmpxchg16b => "has_cmpxchg16b",
            Self::Sse41 => "has_sse41",
            Self::Sse42 => "has_sse42",
            Self::Popcnt => "has_popcnt",
            Self::Lzcnt => "has_lzcnt",
            Self::Bmi1 => "has_bmi1",
            Self::Bmi2 => "has_bmi2",
            Self::Avx => "has_avx",
            Self::Avx2 => "has_avx2",
            Self::Fma => "has_fma",
            Self::Avx512f => "has_avx512f",
            Self::Avx512vl => "has_avx512vl",
            Self::Avx512dq => "has_avx512dq",
            Self::Avx512bitalg => "has_avx512bitalg",
            Self::Avx512vbmi => "has_avx512vbmi",
        }
    }

    /// The extension a member needs beside itself (INV-X86-1), if any.
    const fn requires(self) -> Option<X86Ext> {
        match self {
            Self::Ssse3 => Some(Self::Sse3),
            Self::Sse41 => Some(Self::Ssse3),
            Self::Sse42 => Some(Self::Sse41),
            Self::Avx => Some(Self::Sse42),
            Self::Avx2 | Self::Fma => Some(Self::Avx),
            Self::Avx512f => Some(Self::Avx2),
            Self::Avx512vl | Self::Avx512dq | Self::Avx512bitalg | Self::Avx512vbmi => {
                Some(Self::Avx512f)
            }
            _ => None,
        }
    }

    const fn bit(self) -> u32 {
        1 << self as u8
    }
}

/// A set of x86-64 extensions, closed under implication (INV-X86-1).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct X86Extensions(u32);

impl X86Extensions {
    /// x86-64-v2, the kernel's floor (INV-X86-2).
    pub const V2: Self = Self::of(&[
        X86Ext::Sse3,
        X86Ext::Ssse3,
        X86Ext::Cmpxchg16b,
        X86Ext::Sse41,
        X86Ext::Sse42,
        X86Ext::Popcnt,
    ]);

    const fn of(exts: &[X86Ext]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < exts.len() {
            bits |= exts[i].bit();
            i += 1;
        }
        Self(bits)
    }

    /// The set of `exts` less every member whose requirement is missing
    /// (INV-X86-1): a CPU (or a hypervisor) reporting `avx2` without
    /// `avx` gets neither.
    #[must_use]
    pub fn new(exts: impl IntoIterator<Item = X86Ext>) -> Self {
        let mut set = Self::default();
        for e in exts {
            set.0 |= e.bit();
        }
        // Requirements point to earlier members, so one pass in
        // declaration order drops whole chains.
        for e in X86Ext::ALL {
            if let Some(r) = e.requires()
                && !set.has(r)
            {
                set.0 &= !e.bit();
            }
        }
        set
    }

    /// Whether `ext` is in the set.
    #[must_use]
    pub const fn has(self, ext: X86Ext) -> bool {
        self.0 & ext.bit() != 0
    }

    /// Whether every member of `other` is in the set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The extensions both sets have.
    #[must_use]
    pub const fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The members, in [`X86Ext::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = X86Ext> {
        X86Ext::ALL.into_iter().filter(move |e| self.has(*e))
    }
}

impl fmt::Debug for X86Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(X86Ext::name))
            .finish()
    }
}

impl fmt::Display for X86Extensions {
    /// `x86-64-v2` and what the set has beyond it, `+`-separated
    /// (`x86-64-v2+lzcnt+avx+avx2`); a set below the floor lists every
    /// member after `x86-64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let floor = if self.contains(Self::V2) {
            f.write_str("x86-64-v2")?;
            Self::V2
        } else {
            f.write_str("x86-64")?;
            Self::default()
        };
        for e in self.iter().filter(|e| !floor.has(*e)) {
            write!(f, "+{}", e.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn requirements_drop_orphans_in_chains() {
        // avx512vl without avx512f, and avx2 without avx: all dropped,
        // down the chain (avx512f needs avx2).
        let s = X86Extensions::new([
            X86Ext::Sse3,
            X86Ext::Avx2,
            X86Ext::Avx512f,
            X86Ext::Avx512vl,
        ]);
        assert_eq!(s, X86Extensions::new([X86Ext::Sse3]));
        let full = X86Extensions::new(X86Ext::ALL);
        assert_eq!(full.iter().count(), X86Ext::ALL.len());
        assert!(full.contains(X86Extensions::V2));
    }

    #[test]
    fn display_names_what_is_beyond_the_floor() {
        let s = X86Extensions::new(X86Extensions::V2.iter().chain([X86Ext::Avx, X86Ext::Bmi2]));
        assert_eq!(s.to_string(), "x86-64-v2+bmi2+avx");
        assert_eq!(X86Extensions::V2.to_string(), "x86-64-v2");
        let old = X86Extensions::new([X86Ext::Sse3, X86Ext::Popcnt]);
        assert_eq!(old.to_string(), "x86-64+sse3+popcnt");
        assert!(!old.contains(X86Extensions::V2));
    }

    #[test]
    fn every_member_has_a_distinct_flag_and_name() {
        for (i, a) in X86Ext::ALL.iter().enumerate() {
            for b in &X86Ext::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(a.cranelift_flag(), b.cranelift_flag());
            }
            assert_eq!(*a as usize, i);
        }
    }
}
