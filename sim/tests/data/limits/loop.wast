;; A script whose second module never finishes instantiating: `sim wast
;; --timeout` must interrupt it and run nothing after it.
(module (func (export "one") (result i32) (i32.const 1)))
(assert_return (invoke "one") (i32.const 1))
(module (func $spin (loop $l (br $l))) (start $spin))
(assert_return (invoke "one") (i32.const 1))
