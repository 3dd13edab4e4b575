;; Unbounded recursion: the stack-exhaustion trap's backtrace is longer
;; than the 64 frames a trap records.
(module
  (func $down (export "_start") (call $down)))
