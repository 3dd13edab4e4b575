//! The host CPU's instruction-set extensions, for the kernel's code
//! generator (`Cpus::isa_features`).
//!
//! Detected once per process through the standard library's CPUID-backed
//! `is_x86_feature_detected!`, the same probe wasmtime's `cranelift-native`
//! makes; the set is what every CPU thread of the machine can run, since
//! they all run on this host. Other host architectures report the
//! baseline.

use std::sync::OnceLock;

use kernel_core::hal::IsaFeatures;

/// The extensions of the CPU this process runs on.
pub fn host_isa() -> IsaFeatures {
    static ISA: OnceLock<IsaFeatures> = OnceLock::new();
    *ISA.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> IsaFeatures {
    use kernel_core::hal::{X86Ext, X86Extensions};
    let have = |e: X86Ext| match e {
        X86Ext::Sse3 => std::is_x86_feature_detected!("sse3"),
        X86Ext::Ssse3 => std::is_x86_feature_detected!("ssse3"),
        X86Ext::Cmpxchg16b => std::is_x86_feature_detected!("cmpxchg16b"),
        X86Ext::Sse41 => std::is_x86_feature_detected!("sse4.1"),
        X86Ext::Sse42 => std::is_x86_feature_detected!("sse4.2"),
        X86Ext::Popcnt => std::is_x86_feature_detected!("popcnt"),
        X86Ext::Lzcnt => std::is_x86_feature_detected!("lzcnt"),
        X86Ext::Bmi1 => std::is_x86_feature_detected!("bmi1"),
        X86Ext::Bmi2 => std::is_x86_feature_detected!("bmi2"),
        X86Ext::Avx => std::is_x86_feature_detected!("avx"),
        X86Ext::Avx2 => std::is_x86_feature_detected!("avx2"),
        X86Ext::Fma => std::is_x86_feature_detected!("fma"),
        X86Ext::Avx512f => std::is_x86_feature_detected!("avx512f"),
        X86Ext::Avx512vl => std::is_x86_feature_detected!("avx512vl"),
        X86Ext::Avx512dq => std::is_x86_feature_detected!("avx512dq"),
        X86Ext::Avx512bitalg => std::is_x86_feature_detected!("avx512bitalg"),
        X86Ext::Avx512vbmi => std::is_x86_feature_detected!("avx512vbmi"),
    };
    IsaFeatures::X86(X86Extensions::new(
        X86Ext::ALL.into_iter().filter(|&e| have(e)),
    ))
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> IsaFeatures {
    IsaFeatures::Baseline
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn an_x86_host_has_at_least_the_kernels_floor() {
        // The kernel (and its tests) need x86-64-v2; every host that runs
        // them reports it, and the set agrees with the CPU's own answer.
        let IsaFeatures::X86(set) = host_isa() else {
            panic!("x86-64 host reported {:?}", host_isa());
        };
        assert!(set.contains(kernel_core::hal::X86Extensions::V2), "{set}");
        assert_eq!(
            set.has(kernel_core::hal::X86Ext::Avx2),
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avx")
        );
    }
}
