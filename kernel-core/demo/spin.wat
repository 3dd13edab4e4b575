;; Loops forever without a system call: preemption shares its CPU with
;; the others, and its deadline kills it.
(func (export "_start") (result i32)
  (local $n i64)
  (loop $forever
    (local.set $n (i64.add (local.get $n) (i64.const 1)))
    (br $forever))
  (i32.const 0))
