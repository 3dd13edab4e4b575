//! The bytes of one tmpfs file, in chunks of at most [`CHUNK`] bytes: a
//! large file grows a chunk at a time, never by copying itself into a
//! larger allocation, and holds no chunk for a range never written (it
//! reads as zeros). A chunk holds only as many bytes as were written into
//! it (a small file takes about its size), so the heap a file takes stays
//! within about twice its length.
//!
//! Invariants:
//! - INV-FILEDATA-1: chunk `i` holds at most [`CHUNK`] bytes, the first of
//!   them at offset `i * CHUNK`, and lies wholly or partly below `len`;
//!   what a chunk does not hold reads as zeros, and it holds no byte at or
//!   past `len`, so growing the file exposes zeros.
//! - INV-FILEDATA-2: an allocation that fails leaves the data as it was
//!   ([`FsError::NoSpace`]); nothing aborts the kernel.
//! - INV-FILEDATA-3: `stored` is the sum of the chunks' lengths: the bytes
//!   the file holds, what a file system charges for it (a hole costs
//!   nothing), and [`FileData::growth_of_write`] says exactly how a write
//!   would change it.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::FsError;

/// Bytes of one chunk.
pub const CHUNK: usize = 16 << 10;
const CHUNK_U64: u64 = CHUNK as u64;

/// A file's contents.
#[derive(Default)]
pub struct FileData {
    len: u64,
    /// Chunk `i` holds bytes `i * CHUNK ..` (INV-FILEDATA-1).
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Bytes the chunks hold (INV-FILEDATA-3).
    stored: u64,
}

impl FileData {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Bytes it holds: its length less the holes (INV-FILEDATA-3).
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// How many bytes more it would hold after a write of `len` bytes at
    /// `offset`: per chunk touched, from its held end to the write's end
    /// (a chunk holds a prefix of itself, zeros filling any gap).
    pub fn growth_of_write(&self, offset: u64, len: u64) -> u64 {
        let mut grow = 0;
        let mut at = offset;
        let end = offset.saturating_add(len);
        while at < end {
            let (index, within) = (at / CHUNK_U64, at % CHUNK_U64);
            let take = (CHUNK_U64 - within).min(end - at);
            let held = self.chunks.get(&index).map_or(0, |c| c.len() as u64);
            // The chunk grows to the write's end (zeros before it).
            grow += (within + take).saturating_sub(held);
            at += take;
        }
        grow
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copy bytes from `offset` into `buf`; how many (short at the end).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        let n = usize::try_from(self.len.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let (index, within) = (at / CHUNK_U64, (at % CHUNK_U64) as usize);
            let take = (CHUNK - within).min(n - done);
            let out = &mut buf[done..done + take];
            let held = self
                .chunks
                .get(&index)
                .and_then(|c| c.get(within..))
                .unwrap_or(&[]);
            let copied = held.len().min(take);
            out[..copied].copy_from_slice(&held[..copied]);
            out[copied..].fill(0);
            done += take;
        }
        n
    }

    /// Write `data` at `offset`, growing the file (zeros in any gap).
    ///
    /// # Errors
    /// [`FsError::NoSpace`] when a chunk cannot be allocated; what was
    /// written before that stays, the length covers it (INV-FILEDATA-2).
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), FsError> {
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let (index, within) = (at / CHUNK_U64, (at % CHUNK_U64) as usize);
            let take = (CHUNK - within).min(data.len() - done);
            let chunk = self.chunks.entry(index).or_default();
            let end = within + take;
            if chunk.len() < end {
                // Doubling, but never past a chunk (INV-FILEDATA-2: a
                // failed reservation changes nothing).
                let want = end.max(chunk.capacity().saturating_mul(2)).min(CHUNK);
                chunk
                    .try_reserve_exact(want.saturating_sub(chunk.len()))
                    .map_err(|_| FsError::NoSpace)?;
                self.stored += (end - chunk.len()) as u64;
                chunk.resize(end, 0);
            }
            chunk[within..end].copy_from_slice(&data[done..done + take]);
            done += take;
            self.len = self.len.max(at + take as u64);
        }
        Ok(())
    }

    /// Set the length to `size`: chunks past it go, and the bytes of the
    /// last one past it become zeros (INV-FILEDATA-1); growing adds no
    /// chunk.
    pub fn set_len(&mut self, size: u64) {
        if size < self.len {
            let keep = size.div_ceil(CHUNK_U64);
            let gone = self.chunks.split_off(&keep);
            self.stored -= gone.values().map(|c| c.len() as u64).sum::<u64>();
            let within = (size % CHUNK_U64) as usize;
            if within != 0
                && let Some(last) = self.chunks.get_mut(&(size / CHUNK_U64))
            {
                self.stored -= last.len().saturating_sub(within) as u64;
                last.truncate(within);
                last.shrink_to_fit();
            }
        }
        self.len = size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(f: &FileData) -> Vec<u8> {
        let mut buf = alloc::vec![0xaa; usize::try_from(f.len()).unwrap()];
        let n = f.read(0, &mut buf);
        assert_eq!(n as u64, f.len());
        buf
    }

    #[test]
    fn writes_across_chunks_read_back_and_gaps_are_zero() {
        let mut f = FileData::default();
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        f.write(5, &data).unwrap();
        let mut want = alloc::vec![0u8; 5];
        want.extend_from_slice(&data);
        assert_eq!(read_all(&f), want);
        // A sparse write far out holds three bytes more, not the gap.
        f.write(10 * CHUNK as u64, b"end").unwrap();
        assert_eq!(f.len(), 10 * CHUNK as u64 + 3);
        assert_eq!(f.chunks.len(), 4);
        assert_eq!(f.chunks[&10].len(), 3);
        let all = read_all(&f);
        assert!(all[want.len()..10 * CHUNK].iter().all(|&b| b == 0));
        assert_eq!(&all[10 * CHUNK..], b"end");
        // Reads past the end are short.
        let mut buf = [1u8; 8];
        assert_eq!(f.read(f.len() - 2, &mut buf), 2);
        assert_eq!(f.read(f.len() + 5, &mut buf), 0);
    }

    #[test]
    fn shrinking_drops_chunks_and_growing_again_shows_zeros() {
        let mut f = FileData::default();
        f.write(0, &alloc::vec![7u8; 3 * CHUNK]).unwrap();
        f.set_len(CHUNK as u64 + 10);
        assert_eq!(f.chunks.len(), 2);
        f.set_len(3 * CHUNK as u64);
        let all = read_all(&f);
        assert!(all[..CHUNK + 10].iter().all(|&b| b == 7));
        assert!(all[CHUNK + 10..].iter().all(|&b| b == 0));
        f.set_len(0);
        assert!(f.chunks.is_empty() && f.is_empty());
    }
}
