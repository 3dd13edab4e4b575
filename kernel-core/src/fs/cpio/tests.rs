//! cpio newc: round trips (INV-CPIO-3), every truncation and damaged
//! header refused with its offset (INV-CPIO-1), unpacking into a tmpfs
//! and paths that would leave it (INV-CPIO-2).

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::fs::tmpfs::ROOT;

fn item<'a>(name: &'a [u8], kind: Kind, data: &'a [u8]) -> Item<'a> {
    Item {
        name,
        kind,
        perms: 0o755,
        data,
    }
}

fn tree() -> Vec<u8> {
    write(&[
        item(b"bin", Kind::Directory, b""),
        item(b"bin/init", Kind::Regular, b"\0asm\x01\0\0\0"),
        item(b"etc/motd", Kind::Regular, b"welcome\n"),
        item(b"bin/sh", Kind::Symlink, b"init"),
        item(b"dev/console", Kind::Other(0o020_000), b""),
    ])
    .expect("writes")
}

#[test]
fn a_written_archive_reads_back_entry_for_entry() {
    let bytes = tree();
    let read: Vec<Entry<'_>> = entries(&bytes).collect::<Result<_, _>>().expect("reads");
    let names: Vec<&[u8]> = read.iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            &b"bin"[..],
            b"bin/init",
            b"etc/motd",
            b"bin/sh",
            b"dev/console"
        ]
    );
    assert_eq!(read[1].kind, Kind::Regular);
    assert_eq!(read[1].data, b"\0asm\x01\0\0\0");
    assert_eq!(read[1].perms, 0o755);
    assert_eq!(read[3].kind, Kind::Symlink);
    assert_eq!(read[4].kind, Kind::Other(0o020_000));
    assert_eq!(read[0].offset, 0);
    assert!(read.windows(2).all(|w| w[0].offset < w[1].offset));
}

#[test]
fn every_truncation_is_an_error_never_a_smaller_archive() {
    let bytes = tree();
    for cut in 0..bytes.len() {
        let result: Result<Vec<Entry<'_>>, CpioError> = entries(&bytes[..cut]).collect();
        let e = result.expect_err("a truncated archive is refused");
        assert!(
            matches!(e.kind, CpioErrorKind::Truncated | CpioErrorKind::NoTrailer),
            "cut at {cut}: {e}"
        );
        assert!(e.offset <= cut, "cut at {cut}: offset {}", e.offset);
    }
}

#[test]
fn damaged_headers_name_their_entry() {
    let bytes = tree();
    let second = entries(&bytes)
        .nth(1)
        .expect("two entries")
        .expect("ok")
        .offset;
    let mut bad = bytes.clone();
    bad[second] = b'1';
    let err = entries(&bad).find_map(Result::err).expect("refused");
    assert_eq!(
        err,
        CpioError {
            kind: CpioErrorKind::BadMagic,
            offset: second
        }
    );
    let mut bad = bytes.clone();
    bad[second + 6 + 8 * 6] = b'g'; // the size field
    let err = entries(&bad).find_map(Result::err).expect("refused");
    assert_eq!(err.kind, CpioErrorKind::BadNumber);
    assert_eq!(err.offset, second);
    let mut bad = bytes;
    // A namesize of 0: no NUL to end the name.
    bad[second + 6 + 8 * 11..second + 6 + 8 * 12].copy_from_slice(b"00000000");
    let err = entries(&bad).find_map(Result::err).expect("refused");
    assert_eq!(err.kind, CpioErrorKind::BadName);
}

#[test]
fn unpacking_makes_the_tree_and_replaces_files() {
    let fs = Tmpfs::new(1 << 20, 0);
    let done = unpack(&tree(), &fs, ROOT, 0).expect("unpacks");
    assert_eq!(
        done,
        Unpacked {
            directories: 1,
            files: 2,
            symlinks: 1,
            skipped: 1,
            bytes: 16,
        }
    );
    let read = |path: &[u8]| {
        let ino = fs.lookup(ROOT, path, true).expect("there");
        let mut buf = vec![0; 64];
        let n = fs.read(ino, 0, &mut buf, 0).expect("reads");
        buf.truncate(n);
        buf
    };
    assert_eq!(read(b"etc/motd"), b"welcome\n");
    // The link resolves to the file it names.
    assert_eq!(read(b"bin/sh"), b"\0asm\x01\0\0\0");
    // Unpacking again over it replaces files and keeps directories.
    let again = write(&[
        item(b"./etc/", Kind::Directory, b""),
        item(b"/etc/motd", Kind::Regular, b"new"),
        item(b"bin/sh", Kind::Symlink, b"../etc/motd"),
    ])
    .expect("writes");
    unpack(&again, &fs, ROOT, 0).expect("unpacks over");
    assert_eq!(read(b"etc/motd"), b"new");
    assert_eq!(read(b"bin/sh"), b"new");
}

#[test]
fn paths_that_leave_the_root_are_refused() {
    for name in [&b"../x"[..], b"a/../../x", b"a//b", b"bin/./x", b"a/.."] {
        let fs = Tmpfs::new(1 << 20, 0);
        let archive = write(&[item(name, Kind::Regular, b"x")]).expect("writes");
        assert_eq!(
            unpack(&archive, &fs, ROOT, 0),
            Err(UnpackError::BadPath(0)),
            "{}",
            crate::escape::name(name)
        );
        let made = fs.read_dir(ROOT).map(|d| {
            d.iter()
                .filter(|(n, _, _)| n.as_slice() != b"." && n.as_slice() != b"..")
                .count()
        });
        assert_eq!(made, Ok(0), "nothing made");
    }
    // `.` and `/` name the root itself: nothing to make.
    let fs = Tmpfs::new(1 << 20, 0);
    let archive = write(&[
        item(b".", Kind::Directory, b""),
        item(b"/", Kind::Directory, b""),
    ])
    .expect("writes");
    assert_eq!(unpack(&archive, &fs, ROOT, 0), Ok(Unpacked::default()));
}

#[test]
fn a_full_tmpfs_stops_the_unpacking_with_the_entry() {
    let fs = Tmpfs::new(4, 0);
    let archive = write(&[
        item(b"a", Kind::Regular, b"abc"),
        item(b"b", Kind::Regular, b"defgh"),
    ])
    .expect("writes");
    let second = entries(&archive).nth(1).expect("two").expect("ok").offset;
    assert_eq!(
        unpack(&archive, &fs, ROOT, 0),
        Err(UnpackError::Fs(FsError::NoSpace, second))
    );
}

#[test]
fn a_file_where_a_directory_must_go_is_an_error() {
    let fs = Tmpfs::new(1 << 20, 0);
    let archive = write(&[
        item(b"bin", Kind::Regular, b"not a directory"),
        item(b"bin/init", Kind::Regular, b"x"),
    ])
    .expect("writes");
    assert!(matches!(
        unpack(&archive, &fs, ROOT, 0),
        Err(UnpackError::Fs(FsError::NotDir | FsError::Exist, _))
    ));
}

#[test]
fn names_the_format_cannot_hold_are_refused_when_writing() {
    assert_eq!(
        write(&[item(b"", Kind::Regular, b"")]),
        Err(WriteError::BadName(0))
    );
    assert_eq!(
        write(&[
            item(b"ok", Kind::Regular, b""),
            item(b"a\0b", Kind::Regular, b"")
        ]),
        Err(WriteError::BadName(1))
    );
}

proptest! {
    /// Any bytes: an error or entries, never a panic or a read out of
    /// bounds; and any written archive reads back as written.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for e in entries(&bytes).flatten() {
            prop_assert!(e.offset < bytes.len());
        }
        let fs = Tmpfs::new(1 << 16, 0);
        let _ = unpack(&bytes, &fs, ROOT, 0);
    }

    #[test]
    fn written_archives_round_trip(
        files in proptest::collection::vec(
            ("[a-z]{1,8}(/[a-z]{1,8}){0,2}", proptest::collection::vec(any::<u8>(), 0..40)),
            0..8,
        )
    ) {
        let items: Vec<Item<'_>> = files
            .iter()
            .map(|(n, d)| item(n.as_bytes(), Kind::Regular, d))
            .collect();
        let bytes = write(&items).expect("writes");
        prop_assert_eq!(bytes.len() % 4, 0);
        let read: Vec<Entry<'_>> = entries(&bytes).collect::<Result<_, _>>().expect("reads");
        prop_assert_eq!(read.len(), items.len());
        for (r, w) in read.iter().zip(&items) {
            prop_assert_eq!(r.name, w.name);
            prop_assert_eq!(r.data, w.data);
            prop_assert_eq!(r.kind, w.kind);
        }
        // Flipping any byte of a header is refused or reads as some other
        // archive, never panics.
        for at in 0..bytes.len().min(240) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x41;
            let _ = entries(&bad).count();
        }
    }
}
