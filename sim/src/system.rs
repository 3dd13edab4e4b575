//! The system's boot image: Vessel's programs (`userland/`, built for
//! `wasm32-wasip1` by the build script) in `/bin`, with `/etc` and an
//! empty `/tmp`, as a cpio newc archive (`kernel_core::fs::cpio`). `sim
//! image FILE` writes it for QEMU's `-initrd`; `sim shell` boots it.
//!
//! Invariant INV-SYSTEM-1: the image holds every program of the table,
//! each at `/bin/NAME`, and nothing else is in `/bin`.

use kernel_core::fs::cpio::{self, Item, Kind};

include!(concat!(env!("OUT_DIR"), "/userland.rs"));

/// What `/etc/motd` says.
const MOTD: &[u8] = b"Vessel: every program here is a wasm module. Try `ls /bin`, `ps`, `help`.\n";

/// The names of the programs in `/bin`, sorted.
pub fn programs() -> impl Iterator<Item = &'static str> {
    PROGRAMS.iter().map(|(name, _)| *name)
}

/// The boot image.
///
/// # Panics
/// Never for the built-in programs (each far below the format's limits).
pub fn image() -> Vec<u8> {
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
