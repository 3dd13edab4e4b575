//! The one error type that crosses the HAL boundary.

use core::fmt;

/// Why a HAL operation failed.
///
/// Each method's `# Errors` section says which of these it returns and what
/// state a failure leaves behind.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalError {
    /// The platform ran out of a resource it needs (page-table frames, host
    /// mappings, threads).
    NoMemory,
    /// An address or length was not aligned to [`super::PAGE_SIZE`].
    Misaligned,
    /// Part of the range is already mapped.
    AlreadyMapped,
    /// Part of the range is not mapped.
    NotMapped,
    /// The range or argument lies outside what the platform manages (outside
    /// the kernel window, a CPU id that does not exist).
    OutOfRange,
    /// The platform cannot do this at all.
    Unsupported,
    /// The resource is in use (a CPU that is already running).
    Busy,
}

impl fmt::Display for HalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoMemory => "out of memory",
            Self::Misaligned => "address or length not page aligned",
            Self::AlreadyMapped => "range already mapped",
            Self::NotMapped => "range not mapped",
            Self::OutOfRange => "argument out of range",
            Self::Unsupported => "unsupported on this platform",
            Self::Busy => "resource busy",
        })
    }
}

impl core::error::Error for HalError {}
