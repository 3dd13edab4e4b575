(module
  (func (export "add64") (param i64 i64) (result i64)
    (i64.add (local.get 0) (local.get 1)))
  (func (export "neg") (param f64) (result f64)
    (f64.neg (local.get 0))))
