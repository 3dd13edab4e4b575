;; The other side of the ping-pong pair. Handle 0 receives from the peer,
;; handle 1 sends to it. Answers every number with that number plus one
;; until the peer closes its side, then exits 0.
(import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
(import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
(data (i32.const 64) "pong: echoed: ")
(func (export "_start") (result i32)
  (local $n i64)
  (block $closed
    (loop $serve
      (br_if $closed (i32.ne (call $recv (i32.const 0) (i32.const 128) (i32.const 4)) (i32.const 4)))
      (i32.store (i32.const 128) (i32.add (i32.load (i32.const 128)) (i32.const 1)))
      (br_if $closed (i32.ne (call $send (i32.const 1) (i32.const 128) (i32.const 4)) (i32.const 0)))
      (local.set $n (i64.add (local.get $n) (i64.const 1)))
      (br $serve)))
  (call $say (i32.const 64) (i32.const 14) (local.get $n))
  (i32.const 0))
