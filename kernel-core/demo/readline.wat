;; Read one line of console input through WASI `fd_read` (up to a newline,
;; the end of input, or 256 bytes) and print it after `line: `. Not part
;; of the demo: `test=input` runs it, to show a reader waiting for input
;; is woken by the input interrupt.
(import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
(data (i32.const 1018) "line: ")
(func (export "_start")
  (local $len i32) (local $n i32)
  (block $done
    (loop $more
      ;; One iovec at 64 over what is left of the 256 bytes at 1024.
      (i32.store (i32.const 64) (i32.add (i32.const 1024) (local.get $len)))
      (i32.store (i32.const 68) (i32.sub (i32.const 256) (local.get $len)))
      (br_if $done (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 72)))
      (local.set $n (i32.load (i32.const 72)))
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $len (i32.add (local.get $len) (local.get $n)))
      (br_if $done
        (i32.eq (i32.load8_u (i32.add (i32.const 1023) (local.get $len))) (i32.const 10)))
      (br_if $more (i32.lt_u (local.get $len) (i32.const 256)))))
  (call $print (i32.const 1018) (i32.add (i32.const 6) (local.get $len))))
