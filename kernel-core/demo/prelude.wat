;; Shared by every demo program (the build script puts it at the top of
;; each module): console output and decimal formatting. Bytes 0..64 of
;; memory are scratch space for numbers.
(import "vessel" "write" (func $write (param i32 i32) (result i32)))
(memory (export "memory") 1)

;; Write `len` bytes at `ptr` to the console.
(func $print (param $ptr i32) (param $len i32)
  (drop (call $write (local.get $ptr) (local.get $len))))

;; Write the decimal digits of `n` so that they end just before `end`;
;; return where they start.
(func $utoa (param $n i64) (param $end i32) (result i32)
  (loop $digit
    (local.set $end (i32.sub (local.get $end) (i32.const 1)))
    (i64.store8 (local.get $end)
      (i64.add (i64.const 48) (i64.rem_u (local.get $n) (i64.const 10))))
    (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
    (br_if $digit (i64.ne (local.get $n) (i64.const 0))))
  (local.get $end))

;; Print the text at `ptr`/`len`, then `n` in decimal and a newline, as
;; one console write.
(func $say (param $ptr i32) (param $len i32) (param $n i64)
  (local $start i32)
  (i32.store8 (i32.const 63) (i32.const 10))
  (local.set $start (call $utoa (local.get $n) (i32.const 63)))
  ;; Put the text right before the digits (it must fit in 64 bytes).
  (local.set $start (i32.sub (local.get $start) (local.get $len)))
  (memory.copy (local.get $start) (local.get $ptr) (local.get $len))
  (call $print (local.get $start) (i32.sub (i32.const 64) (local.get $start))))
