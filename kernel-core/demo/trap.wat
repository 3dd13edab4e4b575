;; Prints a line, then divides by zero: the process traps, the kernel and
;; every other process go on.
(data (i32.const 64) "trap: dividing by zero after steps: ")
(func $divide (param $by i32) (result i32)
  (i32.div_u (i32.const 1) (local.get $by)))
(func (export "_start") (result i32)
  (call $say (i32.const 64) (i32.const 36) (i64.const 1))
  (call $divide (i32.const 0)))
