//! The files `sim run` and `sim wast` read: a size cap, binary or text, and
//! text-format errors with their line and column.
//!
//! Invariants:
//! - INV-INPUT-1: at most [`MAX_INPUT`]` + 1` bytes of a file are read; a
//!   longer file is refused as [`InputError::TooLarge`] (so `/dev/zero`
//!   ends at once), the cap being the largest module `spawn` accepts (a
//!   boot image's cap is the caller's, [`read_capped`]).
//! - INV-INPUT-2: a module file is binary when its name ends in `.wasm` or
//!   its bytes start with `\0asm`, text otherwise; a binary shorter than
//!   the 8-byte header is [`InputError::Truncated`], never parsed as text.
//! - INV-INPUT-3: text has a leading UTF-8 byte order mark dropped before
//!   it is parsed; lines and columns (from 1, columns in characters) count
//!   from after it.
//! - INV-INPUT-4: every error displays as one line; text from the file in
//!   it is escaped (`kernel_core::escape`).

use std::fmt;
use std::io::Read as _;
use std::path::Path;

use kernel_core::escape;
use wast::parser::{self, ParseBuffer};

/// The largest input file: `kernel_core::sys::MAX_MODULE` (16 MiB).
pub const MAX_INPUT: usize = kernel_core::sys::MAX_MODULE;

/// The binary header: `\0asm` and a 4-byte version.
const HEADER: usize = 8;

/// Why an input file gave no module or script.
#[derive(Debug)]
pub enum InputError {
    /// The file could not be read.
    Read {
        /// The path as given.
        path: String,
        /// What reading said.
        error: std::io::Error,
    },
    /// The file holds more than its cap ([`MAX_INPUT`] for a module).
    TooLarge {
        /// The path as given.
        path: String,
        /// The cap, in bytes.
        cap: usize,
    },
    /// A binary module shorter than its header.
    Truncated {
        /// The path as given.
        path: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Text that is not UTF-8.
    NotUtf8 {
        /// The path as given.
        path: String,
        /// Line of the first bad byte, from 1.
        line: usize,
        /// Column of the first bad byte, from 1.
        col: usize,
    },
    /// The text format did not parse or encode.
    Text {
        /// The path as given.
        path: String,
        /// Line, from 1.
        line: usize,
        /// Column in characters, from 1.
        col: usize,
        /// What the parser said.
        message: String,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => write!(f, "cannot read {path}: {error}"),
            Self::TooLarge { path, cap } if *cap == MAX_INPUT => write!(
                f,
                "{path}: larger than {} MiB, the largest module the kernel accepts",
                MAX_INPUT >> 20
            ),
            Self::TooLarge { path, cap } => {
                write!(f, "{path}: larger than {} MiB", cap >> 20)
            }
            Self::Truncated { path, len } => write!(
                f,
                "{path}: truncated module: {len} byte(s), shorter than the {HEADER}-byte header"
            ),
            Self::NotUtf8 { path, line, col } => {
                write!(f, "{path}:{line}:{col}: not UTF-8 text")
            }
            Self::Text {
                path,
                line,
                col,
                message,
            } => write!(f, "{path}:{line}:{col}: {}", escape::name(message)),
        }
    }
}

impl std::error::Error for InputError {}

/// Read `path`, at most [`MAX_INPUT`] bytes (INV-INPUT-1).
///
/// # Errors
/// [`InputError::Read`], [`InputError::TooLarge`].
pub fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    read_capped(path, MAX_INPUT)
}

/// Read `path`, at most `cap` bytes (a boot image's cap is not a
/// module's).
///
/// # Errors
/// [`InputError::Read`], [`InputError::TooLarge`].
pub fn read_capped(path: &Path, cap: usize) -> Result<Vec<u8>, InputError> {
    let shown = || path.display().to_string();
    let read_err = |error| InputError::Read {
        path: shown(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > cap {
        return Err(InputError::TooLarge { path: shown(), cap });
    }
    Ok(bytes)
}

/// The module in `path`: its bytes when binary, else its text encoded
/// (INV-INPUT-2, INV-INPUT-3).
///
/// # Errors
/// Those of [`read`], [`InputError::Truncated`], [`InputError::NotUtf8`],
/// [`InputError::Text`].
pub fn module(path: &Path) -> Result<Vec<u8>, InputError> {
    let bytes = read(path)?;
    let wasm_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("wasm"));
    if wasm_name || bytes.starts_with(b"\0asm") {
        if bytes.len() < HEADER {
            return Err(InputError::Truncated {
                path: path.display().to_string(),
                len: bytes.len(),
            });
        }
        return Ok(bytes);
    }
    let text = text(path, &bytes)?;
    encode(path, text)
}

/// `bytes` as text, without a leading byte order mark (INV-INPUT-3).
///
/// # Errors
/// [`InputError::NotUtf8`], at the first byte that is not.
pub fn text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, InputError> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
        // Valid up to there by definition.
        let good = std::str::from_utf8(good).unwrap_or_default();
        let (line, col) = line_col(good, good.len());
        InputError::NotUtf8 {
            path: path.display().to_string(),
            line,
            col,
        }
    })
}

/// Line and column (from 1; the column in characters) of byte `offset`
/// of `text` (the character boundary at or before it).
#[must_use]
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Encode the text-format module `text`.
fn encode(path: &Path, text: &str) -> Result<Vec<u8>, InputError> {
    let err = |e: wast::Error| {
        let (line, col) = line_col(text, e.span().offset());
        InputError::Text {
            path: path.display().to_string(),
            line,
            col,
            message: e.message(),
        }
    };
    let buf = ParseBuffer::new(text).map_err(err)?;
    let mut wat: wast::Wat<'_> = parser::parse(&buf).map_err(err)?;
    wat.encode().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_characters_from_one() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("abc", 2), (1, 3));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("a\n\n", 3), (3, 1));
        // `é` is two bytes, one column; an offset inside it rounds down.
        assert_eq!(line_col("éx", 2), (1, 2));
        assert_eq!(line_col("éx", 1), (1, 1));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn text_errors_carry_line_and_column() {
        let e = encode(
            Path::new("m.wat"),
            "(module\n  (func (result i32)\n    i32.bogus))",
        )
        .expect_err("bad instruction");
        let InputError::Text { line, col, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!((*line, *col), (3, 5), "{e}");
        assert!(e.to_string().starts_with("m.wat:3:5: "), "{e}");
        assert_eq!(e.to_string().lines().count(), 1);
    }

    #[test]
    fn a_byte_order_mark_is_dropped_and_bad_utf8_located() {
        let p = Path::new("t.wat");
        assert_eq!(text(p, b"\xef\xbb\xbf(module)").ok(), Some("(module)"));
        let e = text(p, b"(module\n  ;; \xff\n)").expect_err("not UTF-8");
        assert!(
            matches!(
                e,
                InputError::NotUtf8 {
                    line: 2,
                    col: 6,
                    ..
                }
            ),
            "{e}"
        );
    }
}
