//! Parsing of memory sizes such as `512M`, `2G` or `65536K`.

use std::fmt;

/// Why a text is not a size `--memory` accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// A suffix other than `K`, `M`, `G`, `T` (or `KiB`...).
    Suffix(String),
    /// No number.
    NotASize,
    /// More bytes than fit in 64 bits.
    TooLarge,
    /// Not a multiple of 4 KiB (the page size).
    NotPageMultiple,
    /// Below the least memory a machine boots with.
    BelowMinimum,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Suffix(s) => write!(f, "unknown size suffix `{s}` (use K, M, G or T)"),
            Self::NotASize => f.write_str("not a size like 512M or 2G"),
            Self::TooLarge => f.write_str("too large"),
            Self::NotPageMultiple => f.write_str("must be a multiple of 4K"),
            Self::BelowMinimum => write!(f, "at least {}M is needed", hal_hosted::MIN_MEMORY >> 20),
        }
    }
}

impl std::error::Error for SizeError {}

/// Parse a size with an optional binary suffix `K`, `M`, `G` or `T` (also
/// `KiB`...). The result is a positive multiple of 4 KiB.
///
/// # Errors
/// [`SizeError`], except [`SizeError::BelowMinimum`].
pub fn parse(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(SizeError::Suffix(suffix.to_owned())),
    };
    if num.is_empty() {
        return Err(SizeError::NotASize);
    }
    // Only digits: the one way to fail is overflow.
    let n: u64 = num.parse().map_err(|_| SizeError::TooLarge)?;
    let bytes = n
        .checked_shl(shift)
        .filter(|b| b >> shift == n)
        .ok_or(SizeError::TooLarge)?;
    if bytes == 0 || bytes % 4096 != 0 {
        return Err(SizeError::NotPageMultiple);
    }
    Ok(bytes)
}

/// [`parse`] for `--memory`: also at least `hal_hosted::MIN_MEMORY`.
///
/// # Errors
/// [`SizeError`].
pub fn parse_memory(text: &str) -> Result<u64, SizeError> {
    let bytes = parse(text)?;
    if bytes < hal_hosted::MIN_MEMORY {
        return Err(SizeError::BelowMinimum);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::{SizeError, parse, parse_memory};

    #[test]
    fn suffixes() {
        assert_eq!(parse("512M"), Ok(512 << 20));
        assert_eq!(parse("2g"), Ok(2 << 30));
        assert_eq!(parse("64KiB"), Ok(64 << 10));
        assert_eq!(parse("8192"), Ok(8192));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(""), Err(SizeError::NotASize));
        assert_eq!(parse("12Q"), Err(SizeError::Suffix("Q".to_owned())));
        assert_eq!(parse("0"), Err(SizeError::NotPageMultiple));
        assert_eq!(parse("100"), Err(SizeError::NotPageMultiple));
        assert_eq!(parse("99999999999T"), Err(SizeError::TooLarge));
        assert!(parse("-1G").is_err());
    }

    #[test]
    fn memory_has_a_minimum_and_says_which() {
        assert_eq!(parse_memory("4K"), Err(SizeError::BelowMinimum));
        assert_eq!(
            SizeError::BelowMinimum.to_string(),
            "at least 16M is needed"
        );
        assert_eq!(parse_memory("16M"), Ok(16 << 20));
        assert_eq!(parse_memory("20000K"), Ok(20000 << 10));
        assert_eq!(parse_memory("16777217"), Err(SizeError::NotPageMultiple));
    }
}
