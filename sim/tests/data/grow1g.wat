;; Grows linear memory from one page to 1 GiB, writes one word in every
;; 4 KiB page, then sums them back: prints 262144 when every page held its
;; write.
(module
  (memory 1)
  (func (export "main") (result i32)
    (local $addr i32)
    (local $sum i32)
    (if (i32.eq (memory.grow (i32.const 16383)) (i32.const -1))
      (then (return (i32.const -1))))
    (loop $write
      (i32.store (local.get $addr) (i32.const 1))
      (local.set $addr (i32.add (local.get $addr) (i32.const 4096)))
      (br_if $write (i32.lt_u (local.get $addr) (i32.const 0x40000000))))
    (local.set $addr (i32.const 0))
    (loop $read
      (local.set $sum (i32.add (local.get $sum) (i32.load (local.get $addr))))
      (local.set $addr (i32.add (local.get $addr) (i32.const 4096)))
      (br_if $read (i32.lt_u (local.get $addr) (i32.const 0x40000000))))
    (local.get $sum)))
