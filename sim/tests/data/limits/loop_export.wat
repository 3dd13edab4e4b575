;; `_start` never returns: `sim run --timeout` must interrupt it.
(module
  (func (export "_start")
    (loop $l (br $l))))
