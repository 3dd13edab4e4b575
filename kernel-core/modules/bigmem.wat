;; The big-memory check (`test=bigmem`, kernel_core::bigmem): `touch(n)`
;; grows the memory to `n` wasm pages, writes one word into every 4 KiB
;; page (a function of its address), then reads every word back and
;; returns their sum, or -1 when `memory.grow` fails. Writing every page
;; before reading any means two pages that share a frame, or a page that
;; loses its contents, change the sum.
(module
  (memory (export "memory") 1)
  (func $word (param $at i32) (result i64)
    (i64.xor
      (i64.mul (i64.extend_i32_u (local.get $at)) (i64.const 0x3c6ef372fe94f82b))
      (i64.const 0x5bd1e995)))
  (func (export "touch") (param $pages i32) (result i64)
    (local $end i64) (local $at i32) (local $sum i64)
    (if (i32.lt_s
          (memory.grow (i32.sub (local.get $pages) (memory.size)))
          (i32.const 0))
      (then (return (i64.const -1))))
    (local.set $end (i64.shl (i64.extend_i32_u (local.get $pages)) (i64.const 16)))
    (block $written
      (loop $write
        (br_if $written (i64.ge_u (i64.extend_i32_u (local.get $at)) (local.get $end)))
        (i64.store (local.get $at) (call $word (local.get $at)))
        (local.set $at (i32.add (local.get $at) (i32.const 4096)))
        (br_if $written (i32.eqz (local.get $at)))
        (br $write)))
    (local.set $at (i32.const 0))
    (block $read
      (loop $sum
        (br_if $read (i64.ge_u (i64.extend_i32_u (local.get $at)) (local.get $end)))
        (local.set $sum (i64.add (local.get $sum) (i64.load (local.get $at))))
        (local.set $at (i32.add (local.get $at) (i32.const 4096)))
        (br_if $read (i32.eqz (local.get $at)))
        (br $sum)))
    (local.get $sum)))
