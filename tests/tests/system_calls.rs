//! The `vessel` calls added for the system (`spawn_file`, `pipe`, `procs`,
//! `pid`, `kill_pid`, `try_wait`) under hostile arguments: wild pointers,
//! wrong sizes, relative paths, directories, names with control
//! characters, too many or unknown descriptors, unknown pids and handles,
//! a pipe whose reader is gone. Each is an error code for the caller, never
//! a fault of the kernel; the program exits with the number of the first
//! check that failed (0: all held).

use kernel_core::proc::{ExitStatus, Program};
use tests::machine::{run_program, wat};

const PROGRAM: &str = r#"(module
  (import "vessel" "spawn_file" (func $spawn_file (param i32 i32) (result i32)))
  (import "vessel" "pipe" (func $pipe (param i32) (result i32)))
  (import "vessel" "procs" (func $procs (param i32 i32) (result i32)))
  (import "vessel" "kill_pid" (func $kill_pid (param i32) (result i32)))
  (import "vessel" "try_wait" (func $try_wait (param i32) (result i32)))
  (import "vessel" "pid" (func $pid (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1)
  ;; Paths at 100.., descriptor lists at 200, pipe ends at 300, iovec at 400.
  (data (i32.const 100) "bin/x")
  (data (i32.const 110) "/nope")
  (data (i32.const 120) "/")
  (data (i32.const 130) "/\1b[31m\07x")
  (data (i32.const 200) "\e7\03\00\00")
  (func $check (param $ok i32) (param $code i32)
    (if (i32.eqz (local.get $ok)) (then (call $exit (local.get $code)))))
  ;; A request at 0 for the path at $p ($n bytes) with $nfds descriptors
  ;; listed at 200; no arguments, no environment, no flags.
  (func $req (param $p i32) (param $n i32) (param $nfds i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (i64.store (i32.const 8) (i64.const 0))
    (i64.store (i32.const 16) (i64.const 0))
    (i32.store (i32.const 24) (i32.const 200))
    (i32.store (i32.const 28) (local.get $nfds))
    (i32.store (i32.const 32) (i32.const 0)))
  (func (export "_start") (local $r i32) (local $w i32)
    (call $req (i32.const 110) (i32.const 5) (i32.const 0))
    (call $check (i32.eq (call $spawn_file (i32.const 0) (i32.const 35)) (i32.const -4)) (i32.const 1))
    (call $check (i32.eq (call $spawn_file (i32.const 65530) (i32.const 36)) (i32.const -2)) (i32.const 2))
    (call $req (i32.const 100) (i32.const 5) (i32.const 0))
    (call $check (i32.eq (call $spawn_file (i32.const 0) (i32.const 36)) (i32.const -4)) (i32.const 3))
    (call $req (i32.const 0x7fff0000) (i32.const 10) (i32.const 0))
    (call $check (i32.eq (call $spawn_file (i32.const 0) (i32.const 36)) (i32.const -2)) (i32.const 4))
    (call $req (i32.const 110) (i32.const 5) (i32.const 0))
    (call $check (i32.eq (call $spawn_file (i32.const 0) (i32.const 36)) (i32.const -9)) (i32.const 5))
    (call $req (i32.const 120) (i32.const 1) (i32.const 0))
    (call $check (i32.eq (call $spawn_file (i32.const 0) (i32.const 36)) (i32.const -9)) (i32.const 6))
    (call $req (i32.const 130) (i32.const 8) (i32.const 0))
    (call $check (i32.eq (call $spawn_file (i32.const 0) (i32.const 36)) (i32.const -9)) (i32.const 7))
    (call $req (i32.const 110) (i32.const 5) (i32.const 4))
    (call $check (i32.eq (call $spawn_file (i32.const 0) (i32.const 36)) (i32.const -4)) (i32.const 8))
    ;; Descriptor 999 (at 200) is not open.
    (call $req (i32.const 110) (i32.const 5) (i32.const 1))
    (call $check (i32.eq (call $spawn_file (i32.const 0) (i32.const 36)) (i32.const -1)) (i32.const 9))
    ;; An unknown flag.
    (call $req (i32.const 110) (i32.const 5) (i32.const 0))
    (i32.store (i32.const 32) (i32.const 4))
    (call $check (i32.eq (call $spawn_file (i32.const 0) (i32.const 36)) (i32.const -4)) (i32.const 10))
    ;; Pipes: a wild out pointer, then a pipe whose reader is closed.
    (call $check (i32.eq (call $pipe (i32.const 65532)) (i32.const -2)) (i32.const 11))
    (call $check (i32.eqz (call $pipe (i32.const 300))) (i32.const 12))
    (local.set $r (i32.load (i32.const 300)))
    (local.set $w (i32.load (i32.const 304)))
    (call $check (i32.eqz (call $fd_close (local.get $r))) (i32.const 13))
    (i32.store (i32.const 400) (i32.const 100))
    (i32.store (i32.const 404) (i32.const 5))
    (call $check (i32.eq (call $fd_write (local.get $w) (i32.const 400) (i32.const 1) (i32.const 408)) (i32.const 64)) (i32.const 14))
    ;; The table: counted with no room, a wild buffer refused.
    (call $check (i32.ge_s (call $procs (i32.const 0) (i32.const 0)) (i32.const 1)) (i32.const 15))
    (call $check (i32.eq (call $procs (i32.const 0x7fff0000) (i32.const 64)) (i32.const -2)) (i32.const 16))
    (call $check (i32.eq (call $procs (i32.const 65500) (i32.const 64)) (i32.const -2)) (i32.const 17))
    ;; Unknown pids and handles.
    (call $check (i32.eq (call $kill_pid (i32.const 0)) (i32.const -9)) (i32.const 18))
    (call $check (i32.eq (call $kill_pid (i32.const -5)) (i32.const -9)) (i32.const 19))
    (call $check (i32.eq (call $try_wait (i32.const 99)) (i32.const -1)) (i32.const 20))
    (call $check (i32.eq (call $pid (i32.const 99)) (i32.const -1)) (i32.const 21))
    (call $check (i32.ge_s (call $pid (i32.const -1)) (i32.const 1)) (i32.const 22))))"#;

#[test]
fn hostile_arguments_to_the_system_calls_are_error_codes() {
    let r = run_program(wat(PROGRAM), Program::default());
    assert_eq!(
        r.status,
        Some(ExitStatus::Exited(0)),
        "the first check that failed is the exit code; stderr: {}",
        r.stderr
    );
}
