;; SIMD work: the same recurrence on four lanes twice, once in v128
;; registers and once lane by lane in scalar ones; exits 0 only when the
;; two agree bit for bit. Each of the 250,000 rounds adds, multiplies,
;; shifts, xors, rotates the lanes (a shuffle), converts to float and does
;; float arithmetic, so the vector state is live across every preemption
;; check in the loop; run on every CPU at once, it is preempted mid-loop
;; and may move between CPUs.
(data (i32.const 64) "vector: lanes agree, checksum ")
(data (i32.const 96) "vector: lanes DIFFER, checksum ")
(func (export "_start") (result i32)
  (local $n i32) (local $a v128) (local $b v128) (local $c v128)
  (local $a0 i32) (local $b0 i32) (local $t0 i32) (local $a1 i32) (local $b1 i32) (local $t1 i32) (local $a2 i32) (local $b2 i32) (local $t2 i32) (local $a3 i32) (local $b3 i32) (local $t3 i32)
  (local $c0 f32) (local $c1 f32) (local $c2 f32) (local $c3 f32)
  (local $same i32) (local $sum i64)
  (local.set $a (v128.const i32x4 0x12345678 0x9abcdef0 0xf1e2d3c 0x4b5a6978))
  (local.set $b (v128.const i32x4 1 2 3 4))
  (local.set $c (v128.const f32x4 1.0 -2.0 0.25 100.0))
  (local.set $a0 (i32.const 0x12345678)) (local.set $b0 (i32.const 1)) (local.set $c0 (f32.const 1.0))
  (local.set $a1 (i32.const 0x9abcdef0)) (local.set $b1 (i32.const 2)) (local.set $c1 (f32.const -2.0))
  (local.set $a2 (i32.const 0xf1e2d3c)) (local.set $b2 (i32.const 3)) (local.set $c2 (f32.const 0.25))
  (local.set $a3 (i32.const 0x4b5a6978)) (local.set $b3 (i32.const 4)) (local.set $c3 (f32.const 100.0))
  (loop $round
    ;; Vector: a += b; b = rot((b * K) ^ (a >> 3)); c = c * 0.5 + f32(a >> 24).
    (local.set $a (i32x4.add (local.get $a) (local.get $b)))
    (local.set $b
      (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 0 1 2 3
        (v128.xor
          (i32x4.mul (local.get $b) (i32x4.splat (i32.const 1664525)))
          (i32x4.shr_u (local.get $a) (i32.const 3)))
        (local.get $b)))
    (local.set $c
      (f32x4.add
        (f32x4.mul (local.get $c) (f32x4.splat (f32.const 0.5)))
        (f32x4.convert_i32x4_u (i32x4.shr_u (local.get $a) (i32.const 24)))))
    ;; The same, lane by lane.
    (local.set $a0 (i32.add (local.get $a0) (local.get $b0)))
    (local.set $t0 (i32.xor (i32.mul (local.get $b0) (i32.const 1664525)) (i32.shr_u (local.get $a0) (i32.const 3))))
    (local.set $c0 (f32.add (f32.mul (local.get $c0) (f32.const 0.5)) (f32.convert_i32_u (i32.shr_u (local.get $a0) (i32.const 24)))))
    (local.set $a1 (i32.add (local.get $a1) (local.get $b1)))
    (local.set $t1 (i32.xor (i32.mul (local.get $b1) (i32.const 1664525)) (i32.shr_u (local.get $a1) (i32.const 3))))
    (local.set $c1 (f32.add (f32.mul (local.get $c1) (f32.const 0.5)) (f32.convert_i32_u (i32.shr_u (local.get $a1) (i32.const 24)))))
    (local.set $a2 (i32.add (local.get $a2) (local.get $b2)))
    (local.set $t2 (i32.xor (i32.mul (local.get $b2) (i32.const 1664525)) (i32.shr_u (local.get $a2) (i32.const 3))))
    (local.set $c2 (f32.add (f32.mul (local.get $c2) (f32.const 0.5)) (f32.convert_i32_u (i32.shr_u (local.get $a2) (i32.const 24)))))
    (local.set $a3 (i32.add (local.get $a3) (local.get $b3)))
    (local.set $t3 (i32.xor (i32.mul (local.get $b3) (i32.const 1664525)) (i32.shr_u (local.get $a3) (i32.const 3))))
    (local.set $c3 (f32.add (f32.mul (local.get $c3) (f32.const 0.5)) (f32.convert_i32_u (i32.shr_u (local.get $a3) (i32.const 24)))))
    (local.set $b0 (local.get $t1))
    (local.set $b1 (local.get $t2))
    (local.set $b2 (local.get $t3))
    (local.set $b3 (local.get $t0))
    (local.set $n (i32.add (local.get $n) (i32.const 1)))
    (br_if $round (i32.lt_u (local.get $n) (i32.const 250000))))
  ;; Compare every lane's bits.
  (local.set $same (i32.const 1))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32x4.extract_lane 0 (local.get $a)) (local.get $a0))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32x4.extract_lane 0 (local.get $b)) (local.get $b0))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32.reinterpret_f32 (f32x4.extract_lane 0 (local.get $c))) (i32.reinterpret_f32 (local.get $c0)))))
  (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (i32x4.extract_lane 0 (local.get $a)))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32x4.extract_lane 1 (local.get $a)) (local.get $a1))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32x4.extract_lane 1 (local.get $b)) (local.get $b1))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32.reinterpret_f32 (f32x4.extract_lane 1 (local.get $c))) (i32.reinterpret_f32 (local.get $c1)))))
  (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (i32x4.extract_lane 1 (local.get $a)))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32x4.extract_lane 2 (local.get $a)) (local.get $a2))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32x4.extract_lane 2 (local.get $b)) (local.get $b2))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32.reinterpret_f32 (f32x4.extract_lane 2 (local.get $c))) (i32.reinterpret_f32 (local.get $c2)))))
  (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (i32x4.extract_lane 2 (local.get $a)))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32x4.extract_lane 3 (local.get $a)) (local.get $a3))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32x4.extract_lane 3 (local.get $b)) (local.get $b3))))
  (local.set $same (i32.and (local.get $same) (i32.eq (i32.reinterpret_f32 (f32x4.extract_lane 3 (local.get $c))) (i32.reinterpret_f32 (local.get $c3)))))
  (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (i32x4.extract_lane 3 (local.get $a)))))
  (if (local.get $same)
    (then (call $say (i32.const 64) (i32.const 30) (local.get $sum)))
    (else (call $say (i32.const 96) (i32.const 31) (local.get $sum))))
  (i32.eqz (local.get $same)))
