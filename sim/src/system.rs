//! The system's boot image: Vessel's programs (`userland/`, built for
//! `wasm32-wasip1` by the build script) in `/bin`, with `/etc` and an
//! empty `/tmp`, as a cpio newc archive (`kernel_core::fs::cpio`). `sim
//! image FILE` writes it for QEMU's `-initrd`, with the programs that
//! reach the prompt ([`PRECOMPILED`]) also precompiled for x86_64 and for
//! the riscv64 harts QEMU starts by default ([`QEMU_ISA`]) in `/lib/code`
//! (`kernel_core::init::PRECOMPILED_DIR`), so that
//! booting to the prompt compiles nothing; `sim shell` boots it without
//! them (building them costs what compiling at boot does).
//!
//! Invariants:
//! - INV-SYSTEM-1: the image holds every program of the table, each at
//!   `/bin/NAME`, and nothing else is in `/bin`.
//! - INV-SYSTEM-2: a precompiled entry is keyed by the kernel's own key
//!   (`wasm::artifact::key`: the module's hash and everything the code
//!   depends on, compiler flags included), so a kernel whose compiler
//!   differs (another ISA, a debug build's verifier) finds no entry and
//!   compiles; one that loads an entry checks it whole first.

use kernel_core::fs::cpio::{self, Item, Kind};
use kernel_core::hal::{IsaFeatures, RiscvExtensions};
use kernel_core::wasm::compile::TargetArch;
use kernel_core::wasm::{CompileError, Compiler, TranslateConfig, artifact, compile_module};

include!(concat!(env!("OUT_DIR"), "/userland.rs"));

/// What `/etc/motd` says.
const MOTD: &[u8] = b"Vessel: every program here is a wasm module. Try `ls /bin`, `ps`, `help`.\n";

/// The names of the programs in `/bin`, sorted.
pub fn programs() -> impl Iterator<Item = &'static str> {
    PROGRAMS.iter().map(|(name, _)| *name)
}

/// The programs `sim image` precompiles: those that run before the first
/// prompt.
pub const PRECOMPILED: [&str; 2] = ["init", "sh"];

/// The ISA string of the harts `scripts/qemu-run` starts by default
/// (`-cpu rv64,v=true,vlen=128`, QEMU 7.2), as its device tree gives it:
/// the riscv kernel derives its compiler flags from it, so entries made
/// for it match that kernel's key.
pub const QEMU_ISA: &str = "rv64imafdcvh_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc";

/// The ISAs `sim image` precompiles for: the hosted kernel's on this
/// host (the extensions its CPU has, as the hosted HAL reports them) and
/// QEMU's default harts ([`QEMU_ISA`]). An image taken to a host with
/// other extensions still boots: its kernel compiles what does not match.
fn isas() -> [(TargetArch, IsaFeatures); 2] {
    let qemu = RiscvExtensions::parse(QEMU_ISA).map_or(IsaFeatures::Baseline, IsaFeatures::Riscv);
    [
        (TargetArch::X86_64, hal_hosted::host_isa()),
        (TargetArch::Riscv64, qemu),
    ]
}

/// `(path in the image, artifact)` of each of [`PRECOMPILED`] for each ISA
/// (INV-SYSTEM-2).
///
/// # Errors
/// [`CompileError`] when a program does not compile (a build problem).
pub fn precompiled() -> Result<Vec<(String, Vec<u8>)>, CompileError> {
    let config = TranslateConfig::default();
    let mut out = Vec::new();
    for (arch, features) in isas() {
        let compiler = Compiler::for_features(arch, features)?;
        for name in PRECOMPILED {
            let Some((_, bytes)) = PROGRAMS.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let module = compile_module(bytes, &config, &compiler)?;
            let key = artifact::key(bytes, &compiler, &config);
            if let Some(a) = artifact::encode(&module, bytes, &compiler, &config) {
                let path = kernel_core::init::precompiled_path(&key);
                out.push((path.trim_start_matches('/').to_owned(), a));
            }
        }
    }
    Ok(out)
}

/// The boot image with the entries of [`precompiled`].
///
/// # Errors
/// [`CompileError`] when a program does not compile.
pub fn image_precompiled() -> Result<Vec<u8>, CompileError> {
    Ok(build(&precompiled()?))
}

/// The boot image, without precompiled entries.
pub fn image() -> Vec<u8> {
    build(&[])
}

/// The boot image with `code` (path, artifact) in `/lib/code`.
///
/// # Panics
/// Never for the built-in programs (each far below the format's limits).
fn build(code: &[(String, Vec<u8>)]) -> Vec<u8> {
    let paths: Vec<(String, &[u8])> = PROGRAMS
        .iter()
        .map(|(name, bytes)| (format!("bin/{name}"), *bytes))
        .collect();
    let dir = |name: &'static str| Item {
        name: name.as_bytes(),
        kind: Kind::Directory,
        perms: 0o755,
        data: &[],
    };
    let mut items = vec![dir("bin"), dir("etc"), dir("tmp")];
    if !code.is_empty() {
        items.extend([dir("lib"), dir("lib/code")]);
    }
    items.extend(code.iter().map(|(path, bytes)| Item {
        name: path.as_bytes(),
        kind: Kind::Regular,
        perms: 0o644,
        data: bytes,
    }));
    items.push(Item {
        name: b"etc/motd",
        kind: Kind::Regular,
        perms: 0o644,
        data: MOTD,
    });
    items.extend(paths.iter().map(|(path, bytes)| Item {
        name: path.as_bytes(),
        kind: Kind::Regular,
        perms: 0o755,
        data: bytes,
    }));
    cpio::write(&items).expect("the built-in programs fit the archive format")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`QEMU_ISA`] is what QEMU's device tree says for the default harts
    /// of `scripts/qemu-run` (the tree dumped with those flags).
    #[test]
    fn qemu_isa_is_the_device_trees() {
        let dtb = include_bytes!("../../hal-riscv/testdata/qemu-virt-vector.dtb");
        let mut want = QEMU_ISA.as_bytes().to_vec();
        want.push(0);
        assert!(dtb.windows(want.len()).any(|w| w == want));
        assert!(
            matches!(isas()[1].1, IsaFeatures::Riscv(e) if e.has(kernel_core::hal::RiscvExt::V))
        );
    }

    #[test]
    fn the_image_holds_every_program_in_bin_and_nothing_else() {
        let image = image();
        let mut bins: Vec<String> = cpio::entries(&image)
            .map(|e| e.expect("a well-formed archive"))
            .filter_map(|e| {
                let name = core::str::from_utf8(e.name).ok()?;
                name.strip_prefix("bin/").map(str::to_owned)
            })
            .collect();
        bins.sort();
        let want: Vec<String> = programs().map(str::to_owned).collect();
        assert_eq!(bins, want);
        for tool in ["init", "sh", "ls", "cat", "echo", "wc", "ps", "kill"] {
            assert!(want.iter().any(|n| n == tool), "{tool} is missing");
        }
    }
}
