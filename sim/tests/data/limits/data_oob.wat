;; Data segment 1 does not fit the one-page memory.
(module
  (memory 1)
  (data (i32.const 0) "fits")
  (data (i32.const 65535) "spills")
  (func (export "_start")))
