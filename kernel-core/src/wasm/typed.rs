//! Typed values for calls without allocation: Rust types that stand for
//! wasm value types ([`WasmTy`]) and tuples of them as parameter and result
//! lists ([`WasmList`]), read from and written to the 16-byte value slots
//! trampolines and host thunks pass (`vm` INV-VM-7).
//!
//! Only the numeric types are typed: a reference needs its store's check
//! (`vm` INV-VM-6), which the untyped [`super::vm::Val`] path does.
//!
//! Invariant INV-TYPED-1: `L::TYPES` lists the wasm types of `L` in order,
//! and `write`/`read` touch exactly `L::TYPES.len()` slots, so a typed
//! function whose signature equals `(P::TYPES) -> (R::TYPES)` moves every
//! value through the same slots the untyped path would.

use super::module::ValType;

/// A Rust type that is one wasm value type.
pub trait WasmTy: Copy {
    /// Its wasm type.
    const TY: ValType;
    /// Its slot (low bytes, little-endian; INV-VM-7).
    fn to_slot(self) -> u128;
    /// The value in `slot`.
    fn from_slot(slot: u128) -> Self;
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "a slot holds its value in its low bytes (INV-VM-7)"
)]
mod impls {
    use super::{ValType, WasmTy};

    impl WasmTy for i32 {
        const TY: ValType = ValType::I32;
        fn to_slot(self) -> u128 {
            u128::from(self.cast_unsigned())
        }
        fn from_slot(slot: u128) -> Self {
            (slot as u32).cast_signed()
        }
    }

    impl WasmTy for i64 {
        const TY: ValType = ValType::I64;
        fn to_slot(self) -> u128 {
            u128::from(self.cast_unsigned())
        }
        fn from_slot(slot: u128) -> Self {
            (slot as u64).cast_signed()
        }
    }

    impl WasmTy for f32 {
        const TY: ValType = ValType::F32;
        fn to_slot(self) -> u128 {
            u128::from(self.to_bits())
        }
        fn from_slot(slot: u128) -> Self {
            f32::from_bits(slot as u32)
        }
    }

    impl WasmTy for f64 {
        const TY: ValType = ValType::F64;
        fn to_slot(self) -> u128 {
            u128::from(self.to_bits())
        }
        fn from_slot(slot: u128) -> Self {
            f64::from_bits(slot as u64)
        }
    }
}

/// Most values in a typed list.
pub const MAX_TYPED: usize = 4;

/// A parameter or result list: `()`, one [`WasmTy`], or a tuple of up to
/// [`MAX_TYPED`] of them (INV-TYPED-1).
pub trait WasmList: Sized {
    /// The wasm types, in order.
    const TYPES: &'static [ValType];
    /// Write the values to `slots[..TYPES.len()]`.
    fn write(self, slots: &mut [u128; MAX_TYPED]);
    /// Read the values from `slots[..TYPES.len()]`.
    fn read(slots: &[u128; MAX_TYPED]) -> Self;
}

impl WasmList for () {
    const TYPES: &'static [ValType] = &[];
    fn write(self, _: &mut [u128; MAX_TYPED]) {}
    fn read(_: &[u128; MAX_TYPED]) -> Self {}
}

impl<A: WasmTy> WasmList for A {
    const TYPES: &'static [ValType] = &[A::TY];
    fn write(self, slots: &mut [u128; MAX_TYPED]) {
        slots[0] = self.to_slot();
    }
    fn read(slots: &[u128; MAX_TYPED]) -> Self {
        A::from_slot(slots[0])
    }
}

macro_rules! tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: WasmTy),+> WasmList for ($($t,)+) {
            const TYPES: &'static [ValType] = &[$($t::TY),+];
            fn write(self, slots: &mut [u128; MAX_TYPED]) {
                $(slots[$i] = self.$i.to_slot();)+
            }
            fn read(slots: &[u128; MAX_TYPED]) -> Self {
                ($($t::from_slot(slots[$i]),)+)
            }
        }
    };
}

tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_through_slots_in_order() {
        let mut slots = [0u128; MAX_TYPED];
        (-1i32, 2i64, 1.5f32, -0.25f64).write(&mut slots);
        assert_eq!(slots[0], 0xffff_ffff);
        assert_eq!(<(i32, i64, f32, f64)>::read(&slots), (-1, 2, 1.5, -0.25));
        assert_eq!(
            <(i32, i64, f32, f64)>::TYPES,
            &[ValType::I32, ValType::I64, ValType::F32, ValType::F64]
        );
        assert!(<()>::TYPES.is_empty());
        assert_eq!(<i64>::TYPES, &[ValType::I64]);
    }
}
