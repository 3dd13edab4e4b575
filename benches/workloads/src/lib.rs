//! Benchmark workloads, one source built twice: for `wasm32-unknown-unknown`
//! (one module per workload, selected by cargo feature, by the `benches`
//! build script) and natively (an rlib the `versus` bench links).
//!
//! Each workload exports a pair of C-ABI entry points, `<name>_setup` and
//! `<name>_run`. `_setup` builds the input deterministically (a fixed-seed
//! generator, no I/O, no imports) and keeps it in a per-workload slot;
//! `_run` does the work once and returns a checksum, so nothing is
//! optimised away and the wasm and native builds can be checked to agree.
//! Only `_run` is timed. The modules import nothing: panics abort through
//! `unreachable`, and the allocator is std's own.
//!
//! Invariants: INV-WL-1: `_run` reads its input, never changes it, so
//! repeated runs do the same work and return the same checksum.

use std::cell::RefCell;

thread_local! {
    /// Input of whichever workloads have been set up (one slot each).
    static INPUT: RefCell<Inputs> = RefCell::new(Inputs::default());
}

#[derive(Default)]
struct Inputs {
    bytes: Vec<u8>,
    text: String,
    words: Vec<u64>,
    matrices: Vec<f64>,
}

/// A fixed-seed xorshift generator: the same sequence on every target.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Words to build text from: some end in `ing`, which the regex counts.
const WORDS: &[&str] = &[
    "kernel",
    "running",
    "module",
    "the",
    "of",
    "compiling",
    "memory",
    "page",
    "trap",
    "holding",
    "wasm",
    "a",
    "table",
    "is",
    "mapping",
    "frame",
    "signal",
    "and",
    "string",
    "thing",
];

/// `n` pseudo-random words separated by spaces and the odd newline.
fn text(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n * 7);
    for i in 0..n {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        s.push_str(w);
        s.push(if i % 13 == 12 { '\n' } else { ' ' });
    }
    s
}

fn with_input<R>(f: impl FnOnce(&mut Inputs) -> R) -> R {
    INPUT.with(|i| f(&mut i.borrow_mut()))
}

/// FNV-1a over bytes: the checksum of byte outputs.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(feature = "sha2")]
mod sha {
    use sha2::{Digest, Sha256};

    /// 1 MiB of pseudo-random bytes.
    #[unsafe(no_mangle)]
    pub extern "C" fn sha2_setup() {
        let mut rng = super::Rng(0x5eed_0001);
        let bytes = (0..1 << 20).map(|_| rng.next() as u8).collect();
        super::with_input(|i| i.bytes = bytes);
    }

    /// SHA-256 of the input; the first 8 bytes of the digest.
    #[unsafe(no_mangle)]
    pub extern "C" fn sha2_run() -> u64 {
        super::with_input(|i| {
            let digest = Sha256::digest(&i.bytes);
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            u64::from_le_bytes(first)
        })
    }
}

#[cfg(feature = "miniz")]
mod miniz {
    use miniz_oxide::deflate::compress_to_vec;
    use miniz_oxide::inflate::decompress_to_vec;

    /// 256 KiB of word text: compressible, but not trivially.
    #[unsafe(no_mangle)]
    pub extern "C" fn miniz_setup() {
        let mut rng = super::Rng(0x5eed_0002);
        let mut text = super::text(&mut rng, 48 * 1024).into_bytes();
        text.truncate(256 << 10);
        super::with_input(|i| i.bytes = text);
    }

    /// Deflate at level 6, inflate back; compressed length and a hash of
    /// the round trip.
    #[unsafe(no_mangle)]
    pub extern "C" fn miniz_run() -> u64 {
        super::with_input(|i| {
            let packed = compress_to_vec(&i.bytes, 6);
            match decompress_to_vec(&packed) {
                Ok(back) => ((packed.len() as u64) << 32) ^ super::fnv(&back),
                Err(_) => 0,
            }
        })
    }
}

#[cfg(feature = "json")]
mod json {
    use core::fmt::Write;
    use serde_json::Value;

    /// An array of 2,000 objects with strings, integers, floats, flags and
    /// nested arrays (about 300 KiB).
    #[unsafe(no_mangle)]
    pub extern "C" fn json_setup() {
        let mut rng = super::Rng(0x5eed_0003);
        let mut s = String::from("[");
        for n in 0..2000 {
            if n > 0 {
                s.push(',');
            }
            let name = super::WORDS[rng.below(super::WORDS.len() as u64) as usize];
            let _ = write!(
                s,
                r#"{{"id":{n},"name":"{name} \"{n}\"","score":{}.{:03},"ok":{},"tags":["#,
                rng.below(100_000),
                rng.below(1000),
                rng.below(2) == 0,
            );
            for t in 0..rng.below(8) {
                if t > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{}", rng.below(1 << 40));
            }
            let _ = write!(
                s,
                r#"],"pos":{{"x":{},"y":-{}}}}}"#,
                rng.below(1000),
                rng.below(1000)
            );
        }
        s.push(']');
        super::with_input(|i| i.text = s);
    }

    fn sum(v: &Value) -> u64 {
        match v {
            Value::Null => 1,
            Value::Bool(b) => u64::from(*b) + 2,
            Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_i64().map(|x| x as u64))
                .unwrap_or_else(|| n.as_f64().map_or(0, |f| (f * 1000.0) as u64)),
            Value::String(s) => s.len() as u64,
            Value::Array(a) => a
                .iter()
                .fold(3, |h, x| h.wrapping_mul(31).wrapping_add(sum(x))),
            Value::Object(o) => o.iter().fold(5, |h, (k, x)| {
                h.wrapping_mul(31)
                    .wrapping_add(k.len() as u64)
                    .wrapping_add(sum(x))
            }),
        }
    }

    /// Parse the document into a `Value` and fold every node into a hash.
    #[unsafe(no_mangle)]
    pub extern "C" fn json_run() -> u64 {
        super::with_input(|i| match serde_json::from_str::<Value>(&i.text) {
            Ok(v) => sum(&v),
            Err(_) => 0,
        })
    }
}

#[cfg(feature = "regex")]
mod search {
    use regex::Regex;

    /// 64 Ki words of text.
    #[unsafe(no_mangle)]
    pub extern "C" fn regex_setup() {
        let mut rng = super::Rng(0x5eed_0004);
        let text = super::text(&mut rng, 64 * 1024);
        super::with_input(|i| i.text = text);
    }

    /// Compile a pattern and count its matches: words ending in `ing`
    /// followed by a word starting with `m` or `t`, plus their lengths.
    #[unsafe(no_mangle)]
    pub extern "C" fn regex_run() -> u64 {
        let Ok(re) = Regex::new(r"\b(\w+)ing\s+([mt]\w*)") else {
            return 0;
        };
        super::with_input(|i| {
            re.captures_iter(&i.text).fold(0u64, |acc, c| {
                let a = c.get(1).map_or(0, |m| m.len());
                let b = c.get(2).map_or(0, |m| m.len());
                acc.wrapping_add(1 << 32).wrapping_add((a * 7 + b) as u64)
            })
        })
    }
}

#[cfg(feature = "sort")]
mod sort {
    /// 256 Ki pseudo-random `u64`s.
    #[unsafe(no_mangle)]
    pub extern "C" fn sort_setup() {
        let mut rng = super::Rng(0x5eed_0005);
        let words = (0..256 * 1024).map(|_| rng.next() >> 8).collect();
        super::with_input(|i| i.words = words);
    }

    /// Sort a copy with the standard library's unstable sort (ipnsort),
    /// then a copy of the pairs `(w % 1000, w)` with its stable sort
    /// (driftsort); a hash of positions in both results.
    #[unsafe(no_mangle)]
    pub extern "C" fn sort_run() -> u64 {
        super::with_input(|i| {
            let mut a = i.words.clone();
            a.sort_unstable();
            let mut b: Vec<(u32, u64)> = i.words.iter().map(|w| ((w % 1000) as u32, *w)).collect();
            b.sort_by_key(|p| p.0);
            let step = a.len() / 64;
            (0..64).fold(0u64, |h, k| {
                h.wrapping_mul(31)
                    .wrapping_add(a[k * step])
                    .wrapping_add(b[k * step].1)
            })
        })
    }
}

#[cfg(feature = "matmul")]
mod matmul {
    /// Side of the square matrices.
    const N: usize = 160;

    /// Two `N`x`N` matrices of values in [-1, 1).
    #[unsafe(no_mangle)]
    pub extern "C" fn matmul_setup() {
        let mut rng = super::Rng(0x5eed_0006);
        let m = (0..2 * N * N)
            .map(|_| (rng.below(2000) as f64 - 1000.0) / 1000.0)
            .collect();
        super::with_input(|i| i.matrices = m);
    }

    /// `C = A * B` in i-k-j order (the inner loop streams rows); the bits
    /// of the sum of `C` weighted by position.
    #[unsafe(no_mangle)]
    pub extern "C" fn matmul_run() -> u64 {
        super::with_input(|i| {
            let (a, b) = i.matrices.split_at(N * N);
            let mut c = vec![0.0f64; N * N];
            for r in 0..N {
                let row = &mut c[r * N..(r + 1) * N];
                for k in 0..N {
                    let x = a[r * N + k];
                    let brow = &b[k * N..(k + 1) * N];
                    for (out, y) in row.iter_mut().zip(brow) {
                        *out += x * y;
                    }
                }
            }
            let s: f64 = c.iter().enumerate().map(|(k, v)| v * (k % 7) as f64).sum();
            s.to_bits()
        })
    }
}

/// A natively linked workload: name, setup, run.
pub type Native = (&'static str, extern "C" fn(), extern "C" fn() -> u64);

/// The workloads this build contains, for natively linked callers (the
/// wasm side calls the exports by name).
pub fn native() -> Vec<Native> {
    let all: &[Native] = &[
        #[cfg(feature = "sha2")]
        ("sha2", sha::sha2_setup, sha::sha2_run),
        #[cfg(feature = "miniz")]
        ("miniz", miniz::miniz_setup, miniz::miniz_run),
        #[cfg(feature = "json")]
        ("json", json::json_setup, json::json_run),
        #[cfg(feature = "regex")]
        ("regex", search::regex_setup, search::regex_run),
        #[cfg(feature = "sort")]
        ("sort", sort::sort_setup, sort::sort_run),
        #[cfg(feature = "matmul")]
        ("matmul", matmul::matmul_setup, matmul::matmul_run),
    ];
    all.to_vec()
}
