;; A WASI program: prints its arguments after its name, one per line, then
;; the value of its environment, then exits with the number of arguments.
;; With the argument `trap` it divides by zero instead.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  ;; Print the NUL-terminated strings of the table at $ptrs from $from on.
  (func $lines (param $from i32) (param $count i32) (param $ptrs i32)
    (local $i i32) (local $s i32) (local $n i32)
    (local.set $i (local.get $from))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (local.set $s (i32.load (i32.add (local.get $ptrs) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $n (i32.const 0))
      (block $end (loop $len
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $s) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $len)))
      (i32.store8 (i32.add (local.get $s) (local.get $n)) (i32.const 10))
      (call $print (local.get $s) (i32.add (local.get $n) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each))))
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (drop (call $environ_sizes_get (i32.const 24) (i32.const 28)))
    (drop (call $environ_get (i32.const 2048) (i32.const 8192)))
    ;; argv[1] == "trap": divide by zero
    (if (i32.and
          (i32.ge_u (i32.load (i32.const 16)) (i32.const 2))
          (i32.eq (i32.load (i32.load (i32.const 1028))) (i32.const 0x70617274)))
      (then (drop (i32.div_u (i32.const 1) (i32.const 0)))))
    (call $lines (i32.const 1) (i32.load (i32.const 16)) (i32.const 1024))
    (call $lines (i32.const 0) (i32.load (i32.const 24)) (i32.const 2048))
    (call $proc_exit (i32.sub (i32.load (i32.const 16)) (i32.const 1)))))
