;; The start function never returns: instantiation itself must be
;; interrupted by `sim run --timeout`.
(module
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "_start")))
