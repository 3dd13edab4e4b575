//! A file round trip: create a directory and a file, write, seek, read,
//! rename, list, read metadata, unlink. Prints each step; exits non-zero
//! at the first that failed. Works under `/tmp/vessel-files` natively and
//! under `/` (the preopened tmpfs) on Vessel, given as its argument.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;

fn main() {
    let base = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/vessel-files".into()),
    );
    if let Err(e) = round_trip(&base) {
        println!("FAILED: {e}");
        std::process::exit(1);
    }
}

fn round_trip(base: &std::path::Path) -> std::io::Result<()> {
    let dir = base.join("dir");
    std::fs::create_dir_all(&dir)?;
    println!("mkdir: ok");
    let path = dir.join("notes.txt");
    let mut f = std::fs::File::create(&path)?;
    f.write_all(b"hello, files\n")?;
    f.seek(SeekFrom::Start(7))?;
    f.write_all(b"FILES")?;
    drop(f);
    println!("write: ok");
    let mut f = std::fs::File::open(&path)?;
    f.seek(SeekFrom::Start(7))?;
    let mut word = String::new();
    f.read_to_string(&mut word)?;
    println!("read at 7: {word:?}");
    let renamed = dir.join("renamed.txt");
    std::fs::rename(&path, &renamed)?;
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    println!("listing: {names:?}");
    let meta = std::fs::metadata(&renamed)?;
    println!("size: {}, file: {}", meta.len(), meta.is_file());
    std::fs::remove_file(&renamed)?;
    println!("gone: {}", !renamed.exists());
    std::fs::remove_dir(&dir)?;
    println!("rmdir: ok");
    match std::fs::read("no/such/file") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("missing: not found"),
        other => println!("missing: {other:?}"),
    }
    Ok(())
}
