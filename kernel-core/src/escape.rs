//! Names a module controls, made safe to print on one line.
//!
//! Export, import and name-section names are arbitrary bytes chosen by
//! whoever wrote the module. Printed raw they can forge lines (newlines),
//! drive the terminal (ESC sequences), hide or reorder text (bidi
//! overrides) or flood it (a 100 KB name). [`name`] renders such a name for
//! messages, backtraces and symbol files.
//!
//! Invariants:
//! - INV-ESC-1: the rendering contains no control character (C0, DEL, C1),
//!   no line or paragraph separator and no bidi control: each is written as
//!   `\xNN` (below U+0080) or `\u{N}` (hex, above), so the rendering is one
//!   line that displays as its characters.
//! - INV-ESC-2: a byte that is not part of valid UTF-8 is written `\xNN`,
//!   and `\` itself is written `\\`, so two different names never render
//!   the same unless one was cut (INV-ESC-3).
//! - INV-ESC-3: at most [`MAX_NAME`] bytes of the input are rendered (cut at
//!   a character boundary); the rest is replaced by `…(+N bytes)`, N being
//!   the bytes left out. The rendering is therefore at most
//!   `4 * MAX_NAME + 32` bytes long.

use core::fmt::{self, Write as _};

/// Input bytes rendered before the rest is cut off (INV-ESC-3).
pub const MAX_NAME: usize = 256;

/// A name rendered as INV-ESC-1..3 say; see [`name`].
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a> {
    raw: &'a [u8],
}

/// Render `raw` (text or bytes) as one safe line (module doc).
///
/// ```
/// use kernel_core::escape::name;
/// assert_eq!(name("fib").to_string(), "fib");
/// assert_eq!(name("a\nb\u{1b}[2J").to_string(), "a\\x0ab\\x1b[2J");
/// assert_eq!(name(&b"\xffok"[..]).to_string(), "\\xffok");
/// ```
pub fn name<S: AsRef<[u8]> + ?Sized>(raw: &S) -> Escaped<'_> {
    Escaped { raw: raw.as_ref() }
}

/// Whether `c` must be escaped (INV-ESC-1).
fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Where to cut `raw` so that at most [`MAX_NAME`] bytes are kept and a
/// character is never split (a byte sequence that is not UTF-8 may be).
fn cut_point(raw: &[u8]) -> usize {
    if raw.len() <= MAX_NAME {
        return raw.len();
    }
    let mut cut = MAX_NAME;
    // Back off over at most three continuation bytes to the start of the
    // character they belong to.
    while cut > MAX_NAME - 3 && raw.get(cut).is_some_and(|b| b & 0xc0 == 0x80) {
        cut -= 1;
    }
    if raw.get(cut).is_some_and(|b| b & 0xc0 == 0x80) {
        // Not UTF-8 there anyway: cut at the limit.
        MAX_NAME
    } else {
        cut
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = cut_point(self.raw);
        let (head, rest) = self.raw.split_at(cut);
        for chunk in head.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    c if needs_escape(c) && u32::from(c) < 0x80 => {
                        write!(f, "\\x{:02x}", u32::from(c))?;
                    }
                    c if needs_escape(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                    c => f.write_char(c)?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if !rest.is_empty() {
            write!(f, "…(+{} bytes)", rest.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn show(raw: &[u8]) -> String {
        name(raw).to_string()
    }

    #[test]
    fn printable_text_is_kept() {
        assert_eq!(show(b"main"), "main");
        assert_eq!(show(b"a b.c!~"), "a b.c!~");
        assert_eq!(name("fünf 素数 🦀").to_string(), "fünf 素数 🦀");
    }

    #[test]
    fn controls_and_backslash_are_escaped() {
        assert_eq!(show(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(show(b"a\0b"), "a\\x00b");
        assert_eq!(show(b"one\ntwo\r"), "one\\x0atwo\\x0d");
        assert_eq!(show(b"tab\there"), "tab\\x09here");
        assert_eq!(show(b"\x7f"), "\\x7f");
        assert_eq!(show(b"back\\slash"), "back\\\\slash");
        // C1 controls are characters (U+0080..U+009F), not stray bytes.
        assert_eq!(name("\u{85}\u{9b}").to_string(), "\\u{85}\\u{9b}");
    }

    #[test]
    fn bidi_controls_and_separators_are_escaped() {
        assert_eq!(name("abc\u{202e}fed").to_string(), "abc\\u{202e}fed");
        for c in [
            '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{2028}', '\u{2029}',
        ] {
            let mut s = String::new();
            s.push(c);
            assert_eq!(
                name(&s).to_string(),
                alloc::format!("\\u{{{:x}}}", u32::from(c))
            );
        }
    }

    #[test]
    fn invalid_utf8_bytes_are_hex() {
        assert_eq!(show(b"\xff\xfe"), "\\xff\\xfe");
        // A truncated sequence: the lead byte alone is invalid.
        assert_eq!(show(b"a\xe2\x82"), "a\\xe2\\x82");
        assert_eq!(show(b"\xc3\xa9"), "é");
    }

    #[test]
    fn long_names_are_cut_with_a_marker() {
        let long = [b'x'; 100_000];
        let s = show(&long);
        assert!(s.starts_with(&"x".repeat(MAX_NAME)));
        assert!(s.ends_with("…(+99744 bytes)"), "{s}");
        assert_eq!(s.len(), MAX_NAME + "…(+99744 bytes)".len());
        // Exactly the limit: nothing cut.
        assert_eq!(show(&long[..MAX_NAME]), "x".repeat(MAX_NAME));
    }

    #[test]
    fn the_cut_never_splits_a_character() {
        // 255 ASCII bytes, then a 3-byte character across the limit.
        let mut raw = Vec::from([b'a'; 255]);
        raw.extend_from_slice("€".as_bytes());
        raw.extend_from_slice(b"tail");
        let s = show(&raw);
        assert_eq!(s, alloc::format!("{}…(+7 bytes)", "a".repeat(255)));
    }

    proptest! {
        #[test]
        fn rendering_is_one_bounded_safe_line(raw in proptest::collection::vec(any::<u8>(), 0..1200)) {
            let s = show(&raw);
            prop_assert!(s.len() <= 4 * MAX_NAME + 32, "{} bytes", s.len());
            for c in s.chars() {
                prop_assert!(!needs_escape(c) || c == '\\', "{c:?} in {s:?}");
            }
            prop_assert!(!s.contains('\n'));
        }

        #[test]
        fn text_renders_bounded_and_safe(text in "\\PC*|[\\x00-\\x{ff}\\u{2000}-\\u{2070}]*") {
            let s = name(&text).to_string();
            prop_assert!(s.len() <= 4 * MAX_NAME + 32);
            prop_assert!(s.chars().all(|c| !needs_escape(c) || c == '\\'));
        }

        #[test]
        fn short_text_without_specials_is_unchanged(text in "[a-zA-Z0-9_.$!é素 -]{0,60}") {
            prop_assert_eq!(name(&text).to_string(), text);
        }
    }
}
