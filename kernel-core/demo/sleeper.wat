;; Sleeps 20 ms three times and checks the monotonic clock moved at
;; least that far.
(import "vessel" "sleep" (func $sleep (param i64) (result i32)))
(import "vessel" "now" (func $now (result i64)))
(data (i32.const 64) "sleeper: slept ms: ")
(func (export "_start") (result i32)
  (local $start i64) (local $i i32) (local $ms i64)
  (local.set $start (call $now))
  (loop $nap
    (drop (call $sleep (i64.const 20000000)))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br_if $nap (i32.lt_u (local.get $i) (i32.const 3))))
  (local.set $ms (i64.div_u (i64.sub (call $now) (local.get $start)) (i64.const 1000000)))
  (call $say (i32.const 64) (i32.const 19) (local.get $ms))
  (i64.lt_u (local.get $ms) (i64.const 60)))
