//! `sim pack`: a boot image (a cpio newc archive, `kernel_core::fs::cpio`)
//! from host files, for `sim boot --initrd` and QEMU's `-initrd`.
//!
//! Each file is given as `GUEST=HOST`: the absolute path it gets in the
//! image, and the host file it is read from (at most 16 MiB; a `.wat`
//! file is assembled to a binary module first). Parent directories are
//! made when the image is unpacked.
//!
//! Invariants:
//! - INV-PACK-1: every error is one line naming the argument at fault
//!   (escaped), and nothing is written then.
//! - INV-PACK-2: an image holds at most [`MAX_IMAGE`] bytes, what
//!   `sim boot --initrd` reads.

use std::fmt;
use std::path::{Path, PathBuf};

use kernel_core::escape;
use kernel_core::fs::cpio::{self, Item, Kind, Placed};

use crate::input::{self, InputError};

/// The largest boot image (INV-PACK-2).
pub const MAX_IMAGE: usize = 256 << 20;

/// Why no image was written.
#[derive(Debug)]
pub enum PackError {
    /// An argument that is not `GUEST=HOST` with an absolute GUEST path
    /// inside the image (no `..`, `.` or empty component).
    BadArgument(String),
    /// Two files for one path.
    Duplicate(String),
    /// A host file could not be read or assembled.
    Input(InputError),
    /// The image would pass [`MAX_IMAGE`].
    TooLarge,
    /// The image could not be written.
    Write {
        /// Where.
        path: PathBuf,
        /// What writing said.
        error: std::io::Error,
    },
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadArgument(a) => write!(
                f,
                "`{}`: expected GUEST=HOST with GUEST an absolute path inside the image (no `..`, `.` or empty component)",
                escape::name(a)
            ),
            Self::Duplicate(g) => write!(f, "`{}` given twice", escape::name(g)),
            Self::Input(e) => e.fmt(f),
            Self::TooLarge => write!(f, "the image would pass {} MiB", MAX_IMAGE >> 20),
            Self::Write { path, error } => {
                write!(
                    f,
                    "cannot write {}: {error}",
                    escape::name(path.as_os_str().as_encoded_bytes())
                )
            }
        }
    }
}

impl std::error::Error for PackError {}

/// The image of `files` (`GUEST=HOST` each), in order.
///
/// # Errors
/// [`PackError`] (INV-PACK-1).
pub fn image(files: &[String]) -> Result<Vec<u8>, PackError> {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut total = 0usize;
    for arg in files {
        let Some((guest, host)) = arg.split_once('=') else {
            return Err(PackError::BadArgument(arg.clone()));
        };
        // The rule unpacking applies: refused here, not at boot.
        let name = match cpio::placed(guest.as_bytes()) {
            Placed::At(name) if guest.starts_with('/') && !guest.contains('\0') => {
                String::from_utf8_lossy(name).into_owned()
            }
            _ => return Err(PackError::BadArgument(arg.clone())),
        };
        if entries.iter().any(|(n, _)| *n == name) {
            return Err(PackError::Duplicate(guest.to_owned()));
        }
        let host = Path::new(host);
        let bytes = if host
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wat"))
        {
            input::module(host)
        } else {
            input::read(host)
        }
        .map_err(PackError::Input)?;
        total = total.saturating_add(bytes.len() + name.len() + 128);
        if total > MAX_IMAGE {
            return Err(PackError::TooLarge);
        }
        entries.push((name, bytes));
    }
    let items: Vec<Item<'_>> = entries
        .iter()
        .map(|(name, data)| Item {
            name: name.as_bytes(),
            kind: Kind::Regular,
            perms: 0o755,
            data,
        })
        .collect();
    // Names were checked above: neither empty nor holding a NUL, and
    // each file is at most 16 MiB.
    cpio::write(&items).map_err(|_| PackError::TooLarge)
}

/// Write the image of `files` to `out`.
///
/// # Errors
/// [`PackError`] (INV-PACK-1).
pub fn pack(out: &Path, files: &[String]) -> Result<usize, PackError> {
    let bytes = image(files)?;
    std::fs::write(out, &bytes).map_err(|error| PackError::Write {
        path: out.to_path_buf(),
        error,
    })?;
    Ok(bytes.len())
}
