//! Relaxed SIMD (part of WebAssembly 3.0): the operators whose result the
//! standard lets an implementation choose from a small set.
//!
//! Invariant:
//! - INV-RELAXED-1: every relaxed operator takes one fixed choice, the same
//!   on every ISA and CPU, so a module computes the same bits on hosted and
//!   riscv, with or without FMA, and under deterministic replay:
//!   - `relaxed_swizzle`: `swizzle` (an index of 16 or more selects 0);
//!   - `relaxed_trunc*`: the saturating `trunc_sat*` (NaN gives 0);
//!   - `relaxed_madd`/`relaxed_nmadd`: `a * b + c` and `-(a * b) + c`,
//!     rounded twice (not fused: not every x86_64 CPU has FMA);
//!   - `relaxed_laneselect`: `bitselect` on every bit of the mask;
//!   - `relaxed_min`/`relaxed_max`: `min`/`max` (NaN-propagating, -0 < +0);
//!   - `relaxed_q15mulr_s`: the saturating `q15mulr_sat_s`;
//!   - `relaxed_dot_i8x16_i7x16_s` (and `_add_s`): both operands signed,
//!     the `i16` pair sums wrapping.

use cranelift_codegen::ir::types::{F32X4, F64X2, I8X16, I32X4};
use cranelift_codegen::ir::{InstBuilder, Type};
use wasmparser::Operator;

use super::{CompileError, Translator};

impl Translator<'_, '_> {
    /// Translate `op` when it is a relaxed SIMD operator (INV-RELAXED-1);
    /// `Ok(false)` when it is not one. Most are their deterministic twin,
    /// translated by the same arm of `simd_op`.
    pub(super) fn relaxed_op(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        let twin = match *op {
            Operator::I8x16RelaxedSwizzle => Operator::I8x16Swizzle,
            Operator::I32x4RelaxedTruncF32x4S => Operator::I32x4TruncSatF32x4S,
            Operator::I32x4RelaxedTruncF32x4U => Operator::I32x4TruncSatF32x4U,
            Operator::I32x4RelaxedTruncF64x2SZero => Operator::I32x4TruncSatF64x2SZero,
            Operator::I32x4RelaxedTruncF64x2UZero => Operator::I32x4TruncSatF64x2UZero,
            Operator::I8x16RelaxedLaneselect
            | Operator::I16x8RelaxedLaneselect
            | Operator::I32x4RelaxedLaneselect
            | Operator::I64x2RelaxedLaneselect => Operator::V128Bitselect,
            Operator::F32x4RelaxedMin => Operator::F32x4Min,
            Operator::F32x4RelaxedMax => Operator::F32x4Max,
            Operator::F64x2RelaxedMin => Operator::F64x2Min,
            Operator::F64x2RelaxedMax => Operator::F64x2Max,
            Operator::I16x8RelaxedQ15mulrS => Operator::I16x8Q15MulrSatS,
            Operator::F32x4RelaxedMadd => return self.mul_add(F32X4, false).map(|()| true),
            Operator::F32x4RelaxedNmadd => return self.mul_add(F32X4, true).map(|()| true),
            Operator::F64x2RelaxedMadd => return self.mul_add(F64X2, false).map(|()| true),
            Operator::F64x2RelaxedNmadd => return self.mul_add(F64X2, true).map(|()| true),
            Operator::I16x8RelaxedDotI8x16I7x16S => {
                let (x, y) = self.pop2_v(I8X16)?;
                let r = self.dot_pairs(x, y);
                self.push_v(r);
                return Ok(true);
            }
            Operator::I32x4RelaxedDotI8x16I7x16AddS => {
                let acc = self.pop_v(I32X4)?;
                let (x, y) = self.pop2_v(I8X16)?;
                let d = self.dot_pairs(x, y);
                let (lo, hi) = (self.b.ins().swiden_low(d), self.b.ins().swiden_high(d));
                let sums = self.b.ins().iadd_pairwise(lo, hi);
                let r = self.b.ins().iadd(sums, acc);
                self.push_v(r);
                return Ok(true);
            }
            _ => return Ok(false),
        };
        self.simd_op(&twin)?;
        Ok(true)
    }

    /// `a * b + c` (or `-(a * b) + c` when `negate`) in the `ty` view,
    /// rounded after the product and after the sum.
    fn mul_add(&mut self, ty: Type, negate: bool) -> Result<(), CompileError> {
        let c = self.pop_v(ty)?;
        let (a, b) = self.pop2_v(ty)?;
        let p = self.b.ins().fmul(a, b);
        let r = if negate {
            self.b.ins().fsub(c, p)
        } else {
            self.b.ins().fadd(p, c)
        };
        self.push_v(r);
        Ok(())
    }
}
