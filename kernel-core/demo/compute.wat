;; CPU-bound work: count the primes below 200000 by trial division.
(data (i32.const 64) "compute: primes below 200000: ")
(func (export "_start") (result i32)
  (local $n i32) (local $d i32) (local $count i64) (local $prime i32)
  (local.set $n (i32.const 2))
  (loop $numbers
    (local.set $prime (i32.const 1))
    (local.set $d (i32.const 2))
    (block $done
      (loop $divisors
        (br_if $done (i32.gt_u (i32.mul (local.get $d) (local.get $d)) (local.get $n)))
        (if (i32.eqz (i32.rem_u (local.get $n) (local.get $d)))
          (then (local.set $prime (i32.const 0)) (br $done)))
        (local.set $d (i32.add (local.get $d) (i32.const 1)))
        (br $divisors)))
    (local.set $count (i64.add (local.get $count) (i64.extend_i32_u (local.get $prime))))
    (local.set $n (i32.add (local.get $n) (i32.const 1)))
    (br_if $numbers (i32.lt_u (local.get $n) (i32.const 200000))))
  (call $say (i32.const 64) (i32.const 30) (local.get $count))
  ;; Exit 0 only with the right answer.
  (i32.ne (i32.wrap_i64 (local.get $count)) (i32.const 17984)))
