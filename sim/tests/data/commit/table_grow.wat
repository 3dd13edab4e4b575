;; Grow a table by $k elements and fill them; the old size, or -1 when
;; the elements cannot be committed.
(module
 (table 0 funcref)
 (func $g)
 (elem declare func $g)
 (func (export "f") (param $k i32) (result i32)
  (local $old i32)
  (local.set $old (table.grow (ref.func $g) (local.get $k)))
  (if (i32.lt_s (local.get $old) (i32.const 0)) (then (return (i32.const -1))))
  (table.fill (i32.const 0) (ref.null func) (local.get $k))
  (table.size)))
