;; Ten tables of 10M funcrefs each (800 MB of elements): past a 64 MiB
;; machine, so instantiation must fail cleanly, not fill the host's heap.
(module
 (table 10000000 funcref)
 (table 10000000 funcref)
 (table 10000000 funcref)
 (table 10000000 funcref)
 (table 10000000 funcref)
 (table 10000000 funcref)
 (table 10000000 funcref)
 (table 10000000 funcref)
 (table 10000000 funcref)
 (table 10000000 funcref)
 (func (export "f") (result i32) (table.size 9)))
