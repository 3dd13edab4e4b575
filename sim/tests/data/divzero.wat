(module
  (func $inner (param $x i32) (result i32)
    (i32.div_s (i32.const 1) (local.get $x)))
  (func $outer (export "outer") (param $x i32) (result i32)
    (call $inner (local.get $x))))
