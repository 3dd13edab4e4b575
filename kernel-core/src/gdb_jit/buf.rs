//! A byte buffer whose growth never aborts: the debug objects of
//! [`super`] are a convenience, so running out of heap while building one
//! must cost that object, never the kernel.
//!
//! Invariants:
//! - INV-BUF-1: every growth goes through `try_reserve`; the first failure
//!   latches (`failed`), later writes and patches do nothing, and
//!   [`Buf::finish`] reports it.
//! - INV-BUF-2: while not failed, the contents are exactly the bytes
//!   written, in order, with patches applied in place.

use alloc::vec::Vec;

/// The heap could not hold a debug object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// A growable byte buffer with latched allocation failure.
#[derive(Debug, Default)]
pub struct Buf {
    bytes: Vec<u8>,
    failed: bool,
}

impl Buf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Append `b` (INV-BUF-1).
    pub fn put(&mut self, b: &[u8]) {
        if self.failed {
            return;
        }
        if self.bytes.try_reserve(b.len()).is_err() {
            self.failed = true;
            return;
        }
        self.bytes.extend_from_slice(b);
    }

    /// Append one byte.
    pub fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    /// Append a little-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }

    /// Append a little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }

    /// Append a little-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }

    /// Append `n` zero bytes.
    pub fn zeros(&mut self, n: usize) {
        if self.failed {
            return;
        }
        if self.bytes.try_reserve(n).is_err() {
            self.failed = true;
            return;
        }
        self.bytes.resize(self.bytes.len() + n, 0);
    }

    /// Pad with zeros to a multiple of `align`.
    pub fn align(&mut self, align: usize) {
        let len = self.bytes.len();
        self.zeros(len.next_multiple_of(align) - len);
    }

    /// Append `v` as unsigned LEB128.
    pub fn uleb(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.u8(byte);
                return;
            }
            self.u8(byte | 0x80);
        }
    }

    /// Append `v` as signed LEB128.
    pub fn sleb(&mut self, mut v: i64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
            self.u8(if done { byte } else { byte | 0x80 });
            if done {
                return;
            }
        }
    }

    /// Append `s` and a NUL; a NUL inside `s` (names come from modules)
    /// becomes `?` so the string is not cut short.
    pub fn cstr(&mut self, s: &str) {
        self.cstr_parts(&[s]);
    }

    /// Append the concatenation of `parts` and a NUL, as [`Buf::cstr`].
    pub fn cstr_parts(&mut self, parts: &[&str]) {
        for s in parts {
            for (i, chunk) in s.split('\0').enumerate() {
                if i > 0 {
                    self.u8(b'?');
                }
                self.put(chunk.as_bytes());
            }
        }
        self.u8(0);
    }

    /// Overwrite the bytes at `at` with `b`; nothing when the buffer has
    /// failed or `at..at + b.len()` was never written.
    pub fn patch(&mut self, at: usize, b: &[u8]) {
        if let Some(dst) = self.bytes.get_mut(at..at + b.len()) {
            dst.copy_from_slice(b);
        }
    }

    /// Set the 4-byte length at `at` to the count of bytes after it
    /// (a DWARF unit length).
    pub fn patch_len_u32(&mut self, at: usize) {
        let len = self.bytes.len().saturating_sub(at + 4) as u32;
        self.patch(at, &len.to_le_bytes());
    }

    /// The bytes written so far (empty after a failure).
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        if self.failed { &[] } else { &self.bytes }
    }

    /// The contents, or [`OutOfMemory`] if any growth failed.
    pub fn finish(self) -> Result<Vec<u8>, OutOfMemory> {
        if self.failed {
            Err(OutOfMemory)
        } else {
            Ok(self.bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_encodings() {
        let mut b = Buf::new();
        b.uleb(624_485);
        assert_eq!(b.bytes(), [0xe5, 0x8e, 0x26]);
        let mut b = Buf::new();
        b.sleb(-123_456);
        assert_eq!(b.bytes(), [0xc0, 0xbb, 0x78]);
        let mut b = Buf::new();
        b.sleb(63);
        b.sleb(64);
        assert_eq!(b.bytes(), [0x3f, 0xc0, 0x00]);
    }

    #[test]
    fn strings_patches_and_alignment() {
        let mut b = Buf::new();
        b.cstr("a\0b");
        assert_eq!(b.bytes(), b"a?b\0");
        b.align(8);
        assert_eq!(b.len(), 8);
        b.u32(0);
        b.u16(7);
        b.patch_len_u32(8);
        assert_eq!(&b.bytes()[8..12], &2u32.to_le_bytes());
        // A patch past the end is ignored, not a panic.
        b.patch(100, &[1, 2]);
        assert_eq!(b.len(), 14);
        assert_eq!(b.finish().map(|v| v.len()), Ok(14));
    }

    #[test]
    fn a_failed_growth_latches() {
        let mut b = Buf::new();
        b.u8(1);
        // More than any heap can give: `try_reserve` refuses it.
        b.zeros(usize::MAX);
        assert!(b.bytes().is_empty());
        b.u8(2);
        assert_eq!(b.finish(), Err(OutOfMemory));
    }
}
