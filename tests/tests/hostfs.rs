//! hostfs: host directories passed through to WASI programs
//! (`Program::mounts`, `hal_hosted::Hosted::with_dirs`). A Rust program's
//! file round trip on a mount at `/` and at `/data`; a hand-written
//! program that tries every way out of its mount and must get an errno
//! each time, with the host outside it untouched; descriptors beyond the
//! table; rights and trailing-slash links answered as on the tmpfs; and a
//! deterministic run of file I/O that replays bit for bit.

use std::path::{Path, PathBuf};

use kernel_core::proc::{ExitStatus, Mount, Program};
use tests::machine::{Ran, With, run_program_with, wat};
use tests::wasi_programs::module;

/// A fresh, empty host directory for test `name` (removed first if a
/// previous run left it).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vessel-hostfs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn program(args: &[&str], guest: &str) -> Program {
    Program {
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        mounts: vec![Mount {
            guest: guest.as_bytes().to_vec(),
            host: 0,
        }],
        ..Program::default()
    }
}

fn run_in(dir: &Path, module: std::sync::Arc<[u8]>, program: Program, seed: Option<u64>) -> Ran {
    run_program_with(
        module,
        program,
        With {
            dirs: vec![dir.to_path_buf()],
            seed,
            ..With::default()
        },
    )
}

const ROUND_TRIP: &str = "mkdir: ok\nwrite: ok\nread at 7: \"FILES\\n\"\nlisting: [\"renamed.txt\"]\n\
                          size: 13, file: true\ngone: true\nrmdir: ok\nmissing: not found\n";

#[test]
fn a_file_round_trip_on_a_host_directory_at_the_root_and_beside_it() {
    for guest in ["/", "/data"] {
        let dir = scratch(&format!("round-trip{}", guest.len()));
        std::fs::write(dir.join("kept"), b"from the host").expect("seed file");
        let r = run_in(
            &dir,
            module("files").into(),
            program(&["files", guest], guest),
            None,
        );
        assert_eq!(
            r.status,
            Some(ExitStatus::Exited(0)),
            "{guest}: {}",
            r.stdout
        );
        assert_eq!(r.stdout, ROUND_TRIP, "{guest}");
        // The program cleaned up after itself and left the host's file be.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, ["kept"], "{guest}");
        assert_eq!(
            std::fs::read(dir.join("kept")).expect("kept"),
            b"from the host"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}

/// Tries every way out of the mount at `/` (descriptor 3); exits with the
/// number of the first attempt that did not get its errno.
const ESCAPES: &str = r#"
(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $stat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link" (func $link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $prestat_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "../outside")
  (data (i32.const 120) "/etc/passwd")
  (data (i32.const 140) "out")
  (data (i32.const 150) "up/x")
  (data (i32.const 160) "up")
  (data (i32.const 170) "../..")
  (data (i32.const 180) "a")
  (data (i32.const 190) "b")
  (data (i32.const 200) "f")
  (data (i32.const 210) "sub/../../outside")
  (data (i32.const 240) "../evil")
  (data (i32.const 260) "hello from the guest\n")
  (func $want (param $got i32) (param $errno i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $errno)) (then (call $proc_exit (local.get $step)))))
  (func $open (param $path i32) (param $len i32) (param $oflags i32) (param $follow i32) (result i32)
    (call $path_open (i32.const 3) (local.get $follow) (local.get $path) (local.get $len)
      (local.get $oflags) (i64.const 0x7fffffff) (i64.const 0x7fffffff) (i32.const 0) (i32.const 16)))
  (func (export "_start")
    (local $n i32) (local $e i32) (local $fd i32)
    ;; the preopen's name is "/"
    (call $want (call $prestat_name (i32.const 3) (i32.const 300) (i32.const 1)) (i32.const 0) (i32.const 1))
    (call $want (i32.load8_u (i32.const 300)) (i32.const 47) (i32.const 2))
    ;; .. and absolute paths
    (call $want (call $open (i32.const 100) (i32.const 10) (i32.const 0) (i32.const 1)) (i32.const 76) (i32.const 3))
    (call $want (call $open (i32.const 120) (i32.const 11) (i32.const 0) (i32.const 1)) (i32.const 76) (i32.const 4))
    (call $want (call $open (i32.const 210) (i32.const 17) (i32.const 0) (i32.const 1)) (i32.const 76) (i32.const 5))
    ;; "out" is a host symlink to a file outside: following it is refused,
    ;; reading it as a link is not
    (call $want (call $open (i32.const 140) (i32.const 3) (i32.const 0) (i32.const 1)) (i32.const 76) (i32.const 6))
    (call $want (call $stat (i32.const 3) (i32.const 1) (i32.const 140) (i32.const 3) (i32.const 400)) (i32.const 76) (i32.const 7))
    (call $want (call $stat (i32.const 3) (i32.const 0) (i32.const 140) (i32.const 3) (i32.const 400)) (i32.const 0) (i32.const 8))
    (call $want (i32.load8_u (i32.const 416)) (i32.const 7) (i32.const 9))
    ;; a link made by the guest that climbs out
    (call $want (call $symlink (i32.const 170) (i32.const 5) (i32.const 3) (i32.const 160) (i32.const 2)) (i32.const 0) (i32.const 10))
    (call $want (call $open (i32.const 150) (i32.const 4) (i32.const 1) (i32.const 1)) (i32.const 76) (i32.const 11))
    ;; a link to an absolute path is refused outright
    (call $want (call $symlink (i32.const 120) (i32.const 11) (i32.const 3) (i32.const 180) (i32.const 1)) (i32.const 76) (i32.const 12))
    ;; a loop
    (call $want (call $symlink (i32.const 190) (i32.const 1) (i32.const 3) (i32.const 180) (i32.const 1)) (i32.const 0) (i32.const 13))
    (call $want (call $symlink (i32.const 180) (i32.const 1) (i32.const 3) (i32.const 190) (i32.const 1)) (i32.const 0) (i32.const 14))
    (call $want (call $open (i32.const 180) (i32.const 1) (i32.const 0) (i32.const 1)) (i32.const 32) (i32.const 15))
    ;; changes outside: a directory, a rename out, an unlink, a hard link
    (call $want (call $mkdir (i32.const 3) (i32.const 240) (i32.const 7)) (i32.const 76) (i32.const 16))
    (call $want (call $open (i32.const 200) (i32.const 1) (i32.const 1) (i32.const 1)) (i32.const 0) (i32.const 17))
    (local.set $fd (i32.load (i32.const 16)))
    (call $want (call $rename (i32.const 3) (i32.const 200) (i32.const 1) (i32.const 3) (i32.const 240) (i32.const 7)) (i32.const 76) (i32.const 18))
    (call $want (call $unlink (i32.const 3) (i32.const 100) (i32.const 10)) (i32.const 76) (i32.const 19))
    (call $want (call $link (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 10) (i32.const 3) (i32.const 190) (i32.const 1)) (i32.const 76) (i32.const 20))
    ;; wild pointers
    (call $want (call $open (i32.const -8) (i32.const 64) (i32.const 0) (i32.const 1)) (i32.const 21) (i32.const 21))
    (i32.store (i32.const 0) (i32.const 65530))
    (i32.store (i32.const 4) (i32.const 100))
    (call $want (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 21) (i32.const 22))
    ;; the file "f" gets a line
    (i32.store (i32.const 0) (i32.const 260))
    (i32.store (i32.const 4) (i32.const 21))
    (call $want (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 0) (i32.const 23))
    (call $want (call $fd_close (local.get $fd)) (i32.const 0) (i32.const 24))
    ;; open "f" until the table is full: 1,024 descriptors, 4 of them
    ;; standard I/O and the preopen
    (block $full (loop $more
      (local.set $e (call $open (i32.const 200) (i32.const 1) (i32.const 0) (i32.const 1)))
      (br_if $full (local.get $e))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $n) (i32.const 10000)))))
    (call $want (local.get $e) (i32.const 33) (i32.const 25))
    (call $want (local.get $n) (i32.const 1020) (i32.const 26)))
)
"#;

#[test]
fn no_way_out_of_a_host_directory_and_the_host_outside_is_untouched() {
    let base = scratch("escapes");
    let dir = base.join("mounted");
    std::fs::create_dir(&dir).expect("mounted directory");
    let outside = base.join("outside");
    std::fs::write(&outside, b"secret").expect("outside file");
    std::os::unix::fs::symlink(&outside, dir.join("out")).expect("symlink");
    std::fs::create_dir(dir.join("sub")).expect("sub");
    let r = run_in(&dir, wat(ESCAPES), program(&["escapes"], "/"), None);
    assert_eq!(r.status, Some(ExitStatus::Exited(0)), "{r:?}");
    // Outside the mount: the same single file, unchanged.
    let mut names: Vec<_> = std::fs::read_dir(&base)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["mounted", "outside"]);
    assert_eq!(std::fs::read(&outside).expect("outside"), b"secret");
    // Inside: what the guest made.
    assert_eq!(
        std::fs::read(dir.join("f")).expect("f"),
        b"hello from the guest\n"
    );
    assert_eq!(
        std::fs::read_link(dir.join("up")).expect("up"),
        Path::new("../..")
    );
    std::fs::remove_dir_all(&base).expect("clean up");
}

/// What wasmtime answers and the conformance suite checks, on whatever
/// file system descriptor 3 is: rights cannot be changed (`ENOTSUP`,
/// `EBADF` for a closed descriptor) and directories never report
/// `path_filestat_set_size`; a symbolic link named `name/` is `ENOTDIR`
/// where a file is, `EEXIST` where a directory is, `ENOENT` where nothing
/// is. Exits with the number of the first check that failed.
const RIGHTS_AND_SLASHES: &str = r#"
(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_rights" (func $set_rights (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "file")
  (data (i32.const 110) "file/")
  (data (i32.const 120) "dir")
  (data (i32.const 130) "dir/")
  (data (i32.const 140) "none/")
  (data (i32.const 150) "none")
  (data (i32.const 160) "target")
  (func $want (param $got i32) (param $errno i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $errno)) (then (call $proc_exit (local.get $step)))))
  ;; `rights` of the fdstat at 200 masked by `bit`, as an i32
  (func $right (param $bit i64) (result i32)
    (i32.wrap_i64 (i64.shr_u (i64.and (i64.load (i32.const 208)) (local.get $bit)) (i64.const 13))))
  (func (export "_start")
    (local $fd i32)
    (call $want (call $set_rights (i32.const 3) (i64.const 0) (i64.const 0)) (i32.const 58) (i32.const 1))
    (call $want (call $set_rights (i32.const 99) (i64.const 0) (i64.const 0)) (i32.const 8) (i32.const 2))
    ;; the preopen still has path_open (bit 13), never path_filestat_set_size (bit 19)
    (call $want (call $fdstat (i32.const 3) (i32.const 200)) (i32.const 0) (i32.const 3))
    (call $want (call $right (i64.const 0x2000)) (i32.const 1) (i32.const 4))
    (call $want (call $right (i64.const 0x80000)) (i32.const 0) (i32.const 5))
    ;; nor has a directory opened below it
    (call $want (call $mkdir (i32.const 3) (i32.const 120) (i32.const 3)) (i32.const 0) (i32.const 6))
    (call $want (call $path_open (i32.const 3) (i32.const 0) (i32.const 120) (i32.const 3) (i32.const 2)
      (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 16)) (i32.const 0) (i32.const 7))
    (local.set $fd (i32.load (i32.const 16)))
    (call $want (call $fdstat (local.get $fd) (i32.const 200)) (i32.const 0) (i32.const 8))
    (call $want (i32.load8_u (i32.const 200)) (i32.const 3) (i32.const 9))
    (call $want (call $right (i64.const 0x2000)) (i32.const 1) (i32.const 10))
    (call $want (call $right (i64.const 0x80000)) (i32.const 0) (i32.const 11))
    (call $want (call $set_rights (local.get $fd) (i64.const 0) (i64.const 0)) (i32.const 58) (i32.const 12))
    (call $want (call $fd_close (local.get $fd)) (i32.const 0) (i32.const 13))
    ;; symbolic links named with a trailing slash
    (call $want (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 4) (i32.const 1)
      (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 16)) (i32.const 0) (i32.const 14))
    (call $want (call $fd_close (i32.load (i32.const 16))) (i32.const 0) (i32.const 15))
    (call $want (call $symlink (i32.const 160) (i32.const 6) (i32.const 3) (i32.const 110) (i32.const 5)) (i32.const 54) (i32.const 16))
    (call $want (call $symlink (i32.const 160) (i32.const 6) (i32.const 3) (i32.const 100) (i32.const 4)) (i32.const 20) (i32.const 17))
    (call $want (call $symlink (i32.const 160) (i32.const 6) (i32.const 3) (i32.const 130) (i32.const 4)) (i32.const 20) (i32.const 18))
    (call $want (call $symlink (i32.const 160) (i32.const 6) (i32.const 3) (i32.const 140) (i32.const 5)) (i32.const 44) (i32.const 19))
    ;; without the slash a new name takes the link
    (call $want (call $symlink (i32.const 160) (i32.const 6) (i32.const 3) (i32.const 150) (i32.const 4)) (i32.const 0) (i32.const 20)))
)
"#;

#[test]
fn rights_and_trailing_slash_links_answer_alike_on_the_tmpfs_and_a_host_directory() {
    // The in-memory root (no mount) ...
    let dir = scratch("rights-tmpfs");
    let r = run_in(&dir, wat(RIGHTS_AND_SLASHES), Program::default(), None);
    assert_eq!(r.status, Some(ExitStatus::Exited(0)), "tmpfs: {r:?}");
    std::fs::remove_dir_all(&dir).expect("clean up");
    // ... and a host directory mounted at `/`.
    let dir = scratch("rights-host");
    let r = run_in(
        &dir,
        wat(RIGHTS_AND_SLASHES),
        program(&["rights"], "/"),
        None,
    );
    assert_eq!(r.status, Some(ExitStatus::Exited(0)), "hostfs: {r:?}");
    // The refused links made nothing; the file is still a file.
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["dir", "file", "none"]);
    assert!(
        std::fs::symlink_metadata(dir.join("file"))
            .expect("file")
            .is_file()
    );
    assert_eq!(
        std::fs::read_link(dir.join("none")).expect("none"),
        Path::new("target")
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_directory_that_does_not_exist_is_refused_at_start() {
    let config = tests::machine::machine(1);
    let missing = std::env::temp_dir().join("vessel-hostfs-no-such-directory");
    match hal_hosted::Hosted::with_dirs(&config, &[missing]) {
        Err(hal_hosted::HostError::HostDir { index: 0, .. }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a missing directory was accepted"),
    }
}

/// Two deterministic runs from one seed of a program doing file I/O on a
/// host directory (each on its own fresh copy) are identical: output,
/// exit, host tree and the trace of every scheduling event.
#[test]
fn host_file_io_replays_bit_for_bit() {
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let dir = scratch(&format!("replay{i}"));
            let r = run_in(
                &dir,
                module("files").into(),
                program(&["files", "/"], "/"),
                Some(7),
            );
            std::fs::remove_dir_all(&dir).expect("clean up");
            r
        })
        .collect();
    assert_eq!(runs[0].status, Some(ExitStatus::Exited(0)), "{:?}", runs[0]);
    assert_eq!(runs[0].stdout, ROUND_TRIP);
    assert_eq!(runs[0].stdout, runs[1].stdout);
    let trace = runs[0].trace.expect("a deterministic run has a trace");
    assert!(trace.events > 0);
    assert_eq!(Some(trace), runs[1].trace);
}
