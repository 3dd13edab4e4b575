;; One side of a ping-pong pair. Handle 0 sends to the peer, handle 1
;; receives from it. Sends 1, 2, ... 1000 (4 bytes each) and expects each
;; back plus one; exits 0 when every reply was right.
(import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
(import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
(import "vessel" "close" (func $close (param i32) (result i32)))
(data (i32.const 64) "ping: round trips: ")
(func (export "_start") (result i32)
  (local $i i32) (local $ok i64)
  (loop $round
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (i32.store (i32.const 128) (local.get $i))
    (if (i32.ne (call $send (i32.const 0) (i32.const 128) (i32.const 4)) (i32.const 0))
      (then (return (i32.const 2))))
    (if (i32.ne (call $recv (i32.const 1) (i32.const 132) (i32.const 4)) (i32.const 4))
      (then (return (i32.const 3))))
    (if (i32.eq (i32.load (i32.const 132)) (i32.add (local.get $i) (i32.const 1)))
      (then (local.set $ok (i64.add (local.get $ok) (i64.const 1)))))
    (br_if $round (i32.lt_u (local.get $i) (i32.const 1000))))
  ;; Closing the send side ends the peer's loop.
  (drop (call $close (i32.const 0)))
  (call $say (i32.const 64) (i32.const 19) (local.get $ok))
  (i32.ne (i32.wrap_i64 (local.get $ok)) (i32.const 1000)))
