(module)
  (assert_return (invok "f"))
