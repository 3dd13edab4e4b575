//! WASI preview1 processes on a whole hosted machine: standard output,
//! arguments and environment, exit codes, clocks, random bytes, sleeping
//! through `poll_oneoff`, a process importing both `vessel` and WASI, and
//! hostile arguments that must each be an errno and nothing else. The
//! programs are hand-written WAT against the witx ABI; each checks what it
//! is given and exits with the number of its first failed check.

use kernel_core::proc::{self, ExitStatus, Program};
use tests::machine::{Ran, run_program, wat};

/// Run the WAT program `text` with `program`.
fn run(text: &str, program: Program) -> Ran {
    run_program(wat(text), program)
}

fn program(args: &[&str], env: &[&str]) -> Program {
    Program {
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: env.iter().map(|e| e.as_bytes().to_vec()).collect(),
        no_files: false,
        mounts: Vec::new(),
    }
}

/// The imports the programs use, and a `print` of `len` bytes at `ptr`.
const PRELUDE: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_raise" (func $proc_raise (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $print (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
"#;

fn module(body: &str) -> String {
    format!("(module {PRELUDE} {body})")
}

#[test]
fn hello_reaches_standard_output_and_returning_exits_0() {
    let r = run(
        &module(
            r#"(data (i32.const 100) "hello, wasi\n")
               (func (export "_start") (drop (call $print (i32.const 100) (i32.const 12))))"#,
        ),
        Program::default(),
    );
    assert_eq!(r.status, Some(ExitStatus::Exited(0)));
    assert!(r.stdout.ends_with("hello, wasi\n"), "{:?}", r.stdout);
}

#[test]
fn proc_exit_gives_its_code() {
    let r = run(
        &module(r#"(func (export "_start") (call $proc_exit (i32.const 7)) (unreachable))"#),
        Program::default(),
    );
    assert_eq!(r.status, Some(ExitStatus::Exited(7)));
}

/// Prints its arguments, then its environment, one per line: the sizes
/// calls must agree with what the get calls write.
const ECHO: &str = r#"
  (func $lines (param $count i32) (param $ptrs i32)
    (local $i i32) (local $s i32) (local $n i32)
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (local.set $s (i32.load (i32.add (local.get $ptrs) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $n (i32.const 0))
      (block $end (loop $len
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $s) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $len)))
      ;; the NUL becomes the newline
      (i32.store8 (i32.add (local.get $s) (local.get $n)) (i32.const 10))
      (drop (call $print (local.get $s) (i32.add (local.get $n) (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each))))
  (func (export "_start") (result i32)
    (if (call $args_sizes_get (i32.const 16) (i32.const 20)) (then (return (i32.const 1))))
    (if (call $args_get (i32.const 1024) (i32.const 4096)) (then (return (i32.const 2))))
    (call $lines (i32.load (i32.const 16)) (i32.const 1024))
    (if (call $environ_sizes_get (i32.const 24) (i32.const 28)) (then (return (i32.const 3))))
    (if (call $environ_get (i32.const 2048) (i32.const 8192)) (then (return (i32.const 4))))
    (call $lines (i32.load (i32.const 24)) (i32.const 2048))
    ;; sizes: 3 arguments of 5 + 2 + 3 bytes, 1 variable of 10 bytes
    (if (i32.ne (i32.load (i32.const 16)) (i32.const 3)) (then (return (i32.const 5))))
    (if (i32.ne (i32.load (i32.const 20)) (i32.const 10)) (then (return (i32.const 6))))
    (if (i32.ne (i32.load (i32.const 24)) (i32.const 1)) (then (return (i32.const 7))))
    (if (i32.ne (i32.load (i32.const 28)) (i32.const 10)) (then (return (i32.const 8))))
    (i32.const 0))"#;

#[test]
fn arguments_and_environment_arrive_as_given() {
    let r = run(&module(ECHO), program(&["prog", "a", "bc"], &["KEY=value"]));
    assert_eq!(r.status, Some(ExitStatus::Exited(0)), "{}", r.stdout);
    assert!(
        r.stdout.ends_with("prog\na\nbc\nKEY=value\n"),
        "{:?}",
        r.stdout
    );
}

/// Clocks, random bytes and a 20 ms sleep through `poll_oneoff`.
const TIME_AND_CHANCE: &str = r#"
  (func (export "_start") (result i32)
    (local $t0 i64) (local $t1 i64)
    ;; monotonic, twice, not decreasing
    (if (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 16)) (then (return (i32.const 1))))
    (local.set $t0 (i64.load (i32.const 16)))
    ;; realtime after 2020-01-01
    (if (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 24)) (then (return (i32.const 2))))
    (if (i64.lt_u (i64.load (i32.const 24)) (i64.const 1577836800000000000)) (then (return (i32.const 3))))
    ;; an unknown clock is EINVAL (28)
    (if (i32.ne (call $clock_time_get (i32.const 9) (i64.const 1) (i32.const 24)) (i32.const 28))
      (then (return (i32.const 4))))
    ;; 32 random bytes twice: different, not all zero
    (if (call $random_get (i32.const 64) (i32.const 32)) (then (return (i32.const 5))))
    (if (call $random_get (i32.const 96) (i32.const 32)) (then (return (i32.const 6))))
    (if (i64.eq (i64.load (i32.const 64)) (i64.load (i32.const 96))) (then (return (i32.const 7))))
    ;; one relative clock subscription of 20 ms (userdata 77)
    (i64.store (i32.const 200) (i64.const 77))
    (i32.store8 (i32.const 208) (i32.const 0))
    (i32.store (i32.const 216) (i32.const 1))
    (i64.store (i32.const 224) (i64.const 20000000))
    (i64.store (i32.const 232) (i64.const 1000))
    (i32.store16 (i32.const 240) (i32.const 0))
    (if (call $poll_oneoff (i32.const 200) (i32.const 300) (i32.const 1) (i32.const 340))
      (then (return (i32.const 8))))
    (if (i32.ne (i32.load (i32.const 340)) (i32.const 1)) (then (return (i32.const 9))))
    (if (i64.ne (i64.load (i32.const 300)) (i64.const 77)) (then (return (i32.const 10))))
    (if (i32.load16_u (i32.const 308)) (then (return (i32.const 11))))
    (if (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 16)) (then (return (i32.const 12))))
    (local.set $t1 (i64.load (i32.const 16)))
    (if (i64.lt_u (i64.sub (local.get $t1) (local.get $t0)) (i64.const 20000000))
      (then (return (i32.const 13))))
    (i32.const 0))"#;

#[test]
fn clocks_random_bytes_and_poll_oneoff_sleep() {
    let r = run(&module(TIME_AND_CHANCE), Program::default());
    assert_eq!(r.status, Some(ExitStatus::Exited(0)));
}

/// Wild pointers, forged descriptors and calls standard I/O cannot do:
/// each the errno the witx specification gives it.
const HOSTILE: &str = r#"
  (func $want (param $got i32) (param $errno i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $errno)) (then (call $proc_exit (local.get $step)))))
  (func (export "_start") (result i32)
    ;; an iovec outside memory: EFAULT (21)
    (i32.store (i32.const 0) (i32.const 0x7ffffff0))
    (i32.store (i32.const 4) (i32.const 64))
    (call $want (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 21) (i32.const 1))
    ;; the iovec array itself outside memory
    (call $want (call $fd_write (i32.const 1) (i32.const -8) (i32.const 1) (i32.const 8)) (i32.const 21) (i32.const 2))
    ;; a result pointer outside memory
    (call $want (call $args_sizes_get (i32.const 65534) (i32.const 0)) (i32.const 21) (i32.const 3))
    (call $want (call $args_get (i32.const -4) (i32.const 0)) (i32.const 21) (i32.const 4))
    ;; forged descriptors: EBADF (8)
    (call $want (call $fd_write (i32.const 99) (i32.const 0) (i32.const 0) (i32.const 8)) (i32.const 8) (i32.const 5))
    (call $want (call $fd_write (i32.const -1) (i32.const 0) (i32.const 0) (i32.const 8)) (i32.const 8) (i32.const 6))
    (call $want (call $fd_prestat_get (i32.const 4) (i32.const 16)) (i32.const 8) (i32.const 7))
    ;; writing standard input: EBADF
    (call $want (call $fd_write (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 8)) (i32.const 8) (i32.const 8))
    ;; a path on standard output: ENOTDIR (54); a seek: ESPIPE (70)
    (call $want (call $path_open (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 1)
        (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 16)) (i32.const 54) (i32.const 9))
    (call $want (call $fd_seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 16)) (i32.const 70) (i32.const 10))
    ;; no subscriptions: EINVAL (28); signals: ENOSYS (52)
    (call $want (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 0) (i32.const 16)) (i32.const 28) (i32.const 11))
    (call $want (call $proc_raise (i32.const 9)) (i32.const 52) (i32.const 12))
    ;; random bytes past the end of memory: EFAULT, nothing written
    (call $want (call $random_get (i32.const 65500) (i32.const 100)) (i32.const 21) (i32.const 13))
    ;; a closed descriptor is gone
    (call $want (call $fd_close (i32.const 2)) (i32.const 0) (i32.const 14))
    (call $want (call $fd_close (i32.const 2)) (i32.const 8) (i32.const 15))
    (i32.const 0))"#;

#[test]
fn hostile_arguments_are_errnos_and_nothing_else() {
    let r = run(&module(HOSTILE), Program::default());
    assert_eq!(r.status, Some(ExitStatus::Exited(0)));
}

#[test]
fn a_process_may_import_vessel_and_wasi_together() {
    let r = run(
        r#"(module
  (import "vessel" "write" (func $write (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory 1)
  (data (i32.const 16) "both\n")
  (func (export "_start")
    (drop (call $write (i32.const 16) (i32.const 5)))
    (call $proc_exit (i32.const 3))))"#,
        Program::default(),
    );
    assert_eq!(r.status, Some(ExitStatus::Exited(3)));
    assert!(r.stdout.ends_with("both\n"), "{:?}", r.stdout);
}

#[test]
fn an_unknown_wasi_function_does_not_link() {
    let r = run(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_frobnicate" (func (param i32) (result i32)))
  (func (export "_start")))"#,
        Program::default(),
    );
    assert_eq!(r.status, Some(ExitStatus::Failed(proc::LoadError::Link)));
}

/// Ways out of the preopened directory and of the kernel's limits, each an
/// errno: `..`, an absolute path, links out and in loops, wild pointers,
/// 10,000 open files (`EMFILE` at the descriptor limit), and writes past
/// the tmpfs's capacity (`ENOSPC`, space back once the file is gone).
const FS_HOSTILE: &str = r#"
  (data (i32.const 100) "../x")
  (data (i32.const 110) "/etc/passwd")
  (data (i32.const 130) "up/x")
  (data (i32.const 140) "../..")
  (data (i32.const 150) "up")
  (data (i32.const 160) "a")
  (data (i32.const 170) "b")
  (data (i32.const 180) "f")
  (data (i32.const 190) "big")
  (func $want (param $got i32) (param $errno i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $errno)) (then (call $proc_exit (local.get $step)))))
  (func $open (param $path i32) (param $len i32) (param $oflags i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 1) (local.get $path) (local.get $len)
      (local.get $oflags) (i64.const 0x7fffffff) (i64.const 0x7fffffff) (i32.const 0) (i32.const 16)))
  (func (export "_start") (result i32)
    (local $n i32) (local $e i32) (local $fd i32)
    (call $want (call $open (i32.const 100) (i32.const 4) (i32.const 0)) (i32.const 76) (i32.const 1))
    (call $want (call $open (i32.const 110) (i32.const 11) (i32.const 0)) (i32.const 76) (i32.const 2))
    (call $want (call $path_symlink (i32.const 110) (i32.const 4) (i32.const 3) (i32.const 150) (i32.const 2)) (i32.const 76) (i32.const 3))
    (call $want (call $path_symlink (i32.const 140) (i32.const 5) (i32.const 3) (i32.const 150) (i32.const 2)) (i32.const 0) (i32.const 4))
    (call $want (call $open (i32.const 130) (i32.const 4) (i32.const 0)) (i32.const 76) (i32.const 5))
    (call $want (call $path_symlink (i32.const 170) (i32.const 1) (i32.const 3) (i32.const 160) (i32.const 1)) (i32.const 0) (i32.const 6))
    (call $want (call $path_symlink (i32.const 160) (i32.const 1) (i32.const 3) (i32.const 170) (i32.const 1)) (i32.const 0) (i32.const 7))
    (call $want (call $open (i32.const 160) (i32.const 1) (i32.const 0)) (i32.const 32) (i32.const 8))
    (call $want (call $open (i32.const -8) (i32.const 64) (i32.const 0)) (i32.const 21) (i32.const 9))
    ;; open "f" (created once) until the table is full
    (block $full (loop $more
      (local.set $e (call $open (i32.const 180) (i32.const 1) (i32.const 1)))
      (br_if $full (local.get $e))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $n) (i32.const 10000)))))
    (call $want (local.get $e) (i32.const 33) (i32.const 10))
    ;; 1,024 descriptors, 4 of them standard I/O and the preopen
    (call $want (local.get $n) (i32.const 1020) (i32.const 11))
    ;; close them all again
    (local.set $fd (i32.const 4))
    (loop $close
      (drop (call $fd_close (local.get $fd)))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $close (i32.lt_u (local.get $fd) (i32.const 1024))))
    ;; fill the tmpfs with 1 MiB writes from address 65536
    (drop (call $open (i32.const 190) (i32.const 3) (i32.const 1)))
    (local.set $fd (i32.load (i32.const 16)))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 0x100000))
    (local.set $n (i32.const 0))
    (block $stop (loop $fill
      (local.set $e (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br_if $stop (local.get $e))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $n) (i32.const 100000)))))
    (call $want (local.get $e) (i32.const 51) (i32.const 12))
    (if (i32.lt_u (local.get $n) (i32.const 8)) (then (call $proc_exit (i32.const 13))))
    ;; the space comes back with the file
    (call $want (call $fd_close (local.get $fd)) (i32.const 0) (i32.const 14))
    (call $want (call $path_unlink_file (i32.const 3) (i32.const 190) (i32.const 3)) (i32.const 0) (i32.const 15))
    (call $want (call $open (i32.const 190) (i32.const 3) (i32.const 1)) (i32.const 0) (i32.const 16))
    (call $want (call $fd_write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 0) (i32.const 17))
    (i32.const 0))"#;

#[test]
fn file_system_escapes_and_exhaustion_are_errnos() {
    let text = module(FS_HOSTILE).replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 17)",
    );
    let r = run(&text, Program::default());
    assert_eq!(r.status, Some(ExitStatus::Exited(0)));
}

/// A program started without the file system has no preopened directory.
#[test]
fn a_program_may_be_started_without_the_file_system() {
    let text = module(
        r#"(func (export "_start") (result i32)
             (call $fd_prestat_get (i32.const 3) (i32.const 16)))"#,
    );
    let with = run(&text, Program::default());
    assert_eq!(with.status, Some(ExitStatus::Exited(0)));
    let without = run(
        &text,
        Program {
            no_files: true,
            mounts: Vec::new(),
            ..Program::default()
        },
    );
    // EBADF: descriptor 3 is not open.
    assert_eq!(without.status, Some(ExitStatus::Exited(8)));
}

/// One call moves at most 1 MiB, whatever the iovecs ask: writing a 2 MiB
/// iovec to a file is a short write of 1 MiB (it was `EINVAL`), and so is
/// reading it back with two 1 MiB iovecs (it used to read each in full,
/// so a call could move gigabytes without a preemption check).
#[test]
fn a_large_file_io_is_short_not_refused() {
    let text = module(
        r#"(data (i32.const 180) "big")
           (func (export "_start") (result i32)
             (if (call $path_open (i32.const 3) (i32.const 1) (i32.const 180) (i32.const 3)
                   (i32.const 1) (i64.const 0x7fffffff) (i64.const 0x7fffffff) (i32.const 0) (i32.const 16))
               (then (return (i32.const 1))))
             (i32.store (i32.const 0) (i32.const 65536))
             (i32.store (i32.const 4) (i32.const 0x200000))
             (if (call $fd_write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 8))
               (then (return (i32.const 2))))
             (if (i32.ne (i32.load (i32.const 8)) (i32.const 0x100000)) (then (return (i32.const 3))))
             (drop (call $fd_seek (i32.load (i32.const 16)) (i64.const 0) (i32.const 0) (i32.const 24)))
             (i32.store (i32.const 32) (i32.const 65536))
             (i32.store (i32.const 36) (i32.const 0x100000))
             (i32.store (i32.const 40) (i32.const 0x110000))
             (i32.store (i32.const 44) (i32.const 0x100000))
             (if (call $fd_read (i32.load (i32.const 16)) (i32.const 32) (i32.const 2) (i32.const 8))
               (then (return (i32.const 4))))
             (if (i32.ne (i32.load (i32.const 8)) (i32.const 0x100000)) (then (return (i32.const 5))))
             (i32.const 0))"#,
    )
    .replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 40)",
    );
    let r = run(&text, Program::default());
    assert_eq!(r.status, Some(ExitStatus::Exited(0)));
}

/// `random_get` of 64 MiB in one call is work of seconds in a debug
/// build: the call checks the quantum and kills as it goes, so a 20 ms
/// deadline ends the process inside the call (before, the call ran to its
/// end and the process exited 0).
#[test]
fn a_huge_random_get_obeys_its_deadline() {
    let text = module(
        r#"(func (export "_start") (result i32)
             (if (i32.lt_s (memory.grow (i32.const 1024)) (i32.const 0)) (then (return (i32.const 1))))
             (drop (call $random_get (i32.const 0) (i32.const 0x4000000)))
             (i32.const 0))"#,
    );
    let options = kernel_core::proc::SpawnOptions {
        deadline: Some(std::time::Duration::from_millis(20)),
        ..kernel_core::proc::SpawnOptions::default()
    };
    let status = tests::machine::run_alone(
        &tests::machine::machine(2),
        kernel_core::proc::SpawnOptions::default(),
        "random",
        wat(&text),
        options,
    );
    assert_eq!(
        status,
        Some(ExitStatus::Killed(kernel_core::proc::KillReason::Deadline))
    );
}
