;; Hostile names: the trapping function's name-section name and the
;; exports carry ESC sequences, NUL, a newline, a carriage return and a
;; right-to-left override.
(module
  (func $inner (@name "in\1b[2J\00ner\nforged line\u{202e}evil") unreachable)
  (func (export "outer\1b]0;title\07") call $inner)
  (func (export "\u{202e}\0d\n") nop))
