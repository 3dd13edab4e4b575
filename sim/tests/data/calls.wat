;; `outer` calls `inner`, which traps: the module the gdb test debugs.
(module
  (func $inner (param i32) (result i32)
    local.get 0
    i32.const 1
    i32.add
    unreachable)
  (func $outer (export "outer") (param i32) (result i32)
    local.get 0
    call $inner
    i32.const 2
    i32.mul))
