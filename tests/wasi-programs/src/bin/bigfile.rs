//! Writes a file of N MiB in 1 MiB chunks under the directory given as its
//! first argument (N its second, default 64), reads it back in 1 MiB
//! chunks, checks every byte, and deletes it. Prints each step; exits
//! non-zero at the first that failed. A file-throughput workload for the
//! benches as much as a test.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

/// Bytes of one chunk.
const CHUNK: usize = 1 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "/tmp".into()));
    let mib = match args.next().map(|a| a.parse::<usize>()) {
        None => 64,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            println!("FAILED: MiB count: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = round_trip(&dir.join("bigfile.bin"), mib) {
        println!("FAILED: {e}");
        std::process::exit(1);
    }
}

/// Chunk `index`: a fixed pattern with the index in its first 8 bytes, so
/// that a chunk written or read at the wrong place shows.
fn fill(chunk: &mut [u8], index: usize) {
    for (i, b) in chunk.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    chunk[..8].copy_from_slice(&(index as u64).to_le_bytes());
}

fn round_trip(path: &std::path::Path, mib: usize) -> std::io::Result<()> {
    let mut chunk = vec![0u8; CHUNK];
    fill(&mut chunk, 0);
    let mut f = std::fs::File::create(path)?;
    for index in 0..mib {
        chunk[..8].copy_from_slice(&(index as u64).to_le_bytes());
        f.write_all(&chunk)?;
    }
    drop(f);
    println!("wrote {mib} MiB");

    let size = std::fs::metadata(path)?.len();
    println!("size: {size}");
    let mut f = std::fs::File::open(path)?;
    let mut back = vec![0u8; CHUNK];
    for index in 0..mib {
        f.read_exact(&mut back)?;
        chunk[..8].copy_from_slice(&(index as u64).to_le_bytes());
        if back != chunk {
            return Err(std::io::Error::other(format!("chunk {index} differs")));
        }
    }
    let at_end = f.read(&mut back)?;
    drop(f);
    println!(
        "read {mib} MiB: {}",
        if at_end == 0 { "ok" } else { "longer" }
    );

    std::fs::remove_file(path)?;
    println!("deleted: {}", !path.exists());
    if at_end != 0 || size != (mib * CHUNK) as u64 {
        return Err(std::io::Error::other("wrong size"));
    }
    Ok(())
}
