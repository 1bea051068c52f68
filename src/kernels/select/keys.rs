//! The keys of the selection: non-negative IEEE floats order like their bit patterns read as
//! unsigned integers, so with the sign bit cleared `|x|` becomes an integer key (`-0.0` and
//! `0.0` share key 0; NaN keys lie above `inf`'s, so NaN ranks as the largest magnitude, as with
//! `topk`). Also the mask element types the kernels write.

use tch::kind::Element;

use super::radix::BUCKETS;

/// An unsigned key that orders like the selected quantity (smaller key = selected first).
pub(super) trait Key: Copy + Ord + Default + Send + Sync + 'static {
    const BITS: u32;
    const MAX: Self;
    fn digit(self, shift: u32) -> usize;
    fn high_bits(self, shift: u32) -> u64;
    fn from_bits(bits: u64) -> Self;
    fn wrapping_sub(self, other: Self) -> Self;
    fn to_u64(self) -> u64;
}

macro_rules! key {
    ($t:ty) => {
        impl Key for $t {
            const BITS: u32 = <$t>::BITS;
            const MAX: Self = <$t>::MAX;
            #[inline(always)]
            fn digit(self, shift: u32) -> usize {
                ((self >> shift) as usize) & (BUCKETS - 1)
            }
            #[inline(always)]
            fn high_bits(self, shift: u32) -> u64 {
                (self as u64).checked_shr(shift).unwrap_or(0)
            }
            fn from_bits(bits: u64) -> Self {
                bits as $t
            }
            #[inline(always)]
            fn wrapping_sub(self, other: Self) -> Self {
                <$t>::wrapping_sub(self, other)
            }
            #[inline(always)]
            fn to_u64(self) -> u64 {
                self as u64
            }
        }
    };
}
key!(u32);
key!(u64);

/// A key packed with a 32-bit position (for [`super::replay`], which compares the key alone).
pub(super) trait Packable: Key {
    type Packed: Copy + Send;
    fn pack(self, position: u32) -> Self::Packed;
    fn key_of(p: &Self::Packed) -> Self;
    fn position_of(p: &Self::Packed) -> u32;
}

impl Packable for u32 {
    type Packed = u64;
    #[inline(always)]
    fn pack(self, position: u32) -> u64 {
        (u64::from(self) << 32) | u64::from(position)
    }
    #[inline(always)]
    fn key_of(p: &u64) -> u32 {
        (p >> 32) as u32
    }
    #[inline(always)]
    fn position_of(p: &u64) -> u32 {
        *p as u32
    }
}

impl Packable for u64 {
    type Packed = (u64, u32);
    #[inline(always)]
    fn pack(self, position: u32) -> (u64, u32) {
        (self, position)
    }
    #[inline(always)]
    fn key_of(p: &(u64, u32)) -> u64 {
        p.0
    }
    #[inline(always)]
    fn position_of(p: &(u64, u32)) -> u32 {
        p.1
    }
}

/// A float element whose bits give a key. `LARGEST` selects [`super::Order::LargestValue`]; it is a
/// const parameter so that every loop below is compiled once per order, with the key function
/// known inside it (a run-time `match` in the loop body blocks vectorisation).
pub(super) trait FloatKey: Element + Copy + Send + Sync {
    type K: Packable;
    fn key<const LARGEST: bool>(self) -> Self::K;
    /// Whether `key` (of the order `LARGEST`) is a NaN's. NaNs with different payloads get
    /// different keys, but `topk` compares them as equal.
    fn is_nan_key<const LARGEST: bool>(key: Self::K) -> bool;
}

impl FloatKey for f32 {
    type K = u32;
    #[inline(always)]
    fn key<const LARGEST: bool>(self) -> u32 {
        let magnitude = self.to_bits() & 0x7FFF_FFFF;
        // Larger (non-negative) values must get smaller keys for `LargestValue`.
        if LARGEST {
            0x7FFF_FFFF - magnitude
        } else {
            magnitude
        }
    }

    #[inline(always)]
    fn is_nan_key<const LARGEST: bool>(key: u32) -> bool {
        let magnitude = if LARGEST { 0x7FFF_FFFF - key } else { key };
        magnitude > f32::INFINITY.to_bits()
    }
}

impl FloatKey for f64 {
    type K = u64;
    #[inline(always)]
    fn key<const LARGEST: bool>(self) -> u64 {
        let magnitude = self.to_bits() & 0x7FFF_FFFF_FFFF_FFFF;
        if LARGEST {
            0x7FFF_FFFF_FFFF_FFFF - magnitude
        } else {
            magnitude
        }
    }

    #[inline(always)]
    fn is_nan_key<const LARGEST: bool>(key: u64) -> bool {
        let magnitude = if LARGEST { 0x7FFF_FFFF_FFFF_FFFF - key } else { key };
        magnitude > f64::INFINITY.to_bits()
    }
}

/// Signed order (movement pruning's scores): `LARGEST = false` puts the smallest *value* first,
/// `-inf` before every finite value, `-0.0` and `0.0` on the same key (they compare equal, as
/// in `sort`). NaNs order beyond the infinities on their sign's side.
impl FloatKey for crate::kernels::SignedF32 {
    type K = u32;
    #[inline(always)]
    fn key<const LARGEST: bool>(self) -> u32 {
        // `x + 0.0` turns `-0.0` into `0.0` and leaves every other value as it is.
        let bits = (self.0 + 0.0).to_bits();
        // Negative values: all bits flipped (more negative = smaller); non-negative ones: the
        // sign bit set, so they follow every negative value. Branch-free, to stay vectorised.
        let flip = (((bits as i32) >> 31) as u32) | 0x8000_0000;
        let ascending = bits ^ flip;
        if LARGEST {
            !ascending
        } else {
            ascending
        }
    }

    fn is_nan_key<const LARGEST: bool>(key: u32) -> bool {
        let ascending = if LARGEST { !key } else { key };
        let bits = if ascending & 0x8000_0000 != 0 { ascending ^ 0x8000_0000 } else { !ascending };
        (bits & 0x7FFF_FFFF) > f32::INFINITY.to_bits()
    }
}

/// A mask element: what the mask kernels can write.
pub(super) trait MaskElem: Element + Copy + PartialEq + Send + Sync {
    /// The mask value of a pruned entry (0, all bits clear).
    const PRUNED: Self;
    /// The mask value of an unpruned entry (1): only such entries compete under
    /// [`super::Keep::Masked`].
    const UNPRUNED: Self;
    /// `PRUNED` when `pruned`, else `self`, as a bitwise AND rather than a branch or a select
    /// of a conditionally loaded value: that keeps the mask loops branch-free and vectorised.
    fn unless(self, pruned: bool) -> Self;
}

macro_rules! mask_elem {
    ($($t:ty => $zero:expr, $one:expr, $bits:ty);*) => {$(
        impl MaskElem for $t {
            const PRUNED: Self = $zero;
            const UNPRUNED: Self = $one;
            #[inline(always)]
            fn unless(self, pruned: bool) -> Self {
                // All ones when kept, all zeros (the bits of `PRUNED`) when pruned.
                let keep = <$bits>::from(!pruned).wrapping_neg();
                <$t>::from_bits_or_self(<$t>::to_bits_or_self(self) & keep)
            }
        }
    )*};
}

/// Bit views of the mask element types (identity for the integer ones), for [`MaskElem::unless`].
trait Bits: Sized {
    type B;
    fn to_bits_or_self(self) -> Self::B;
    fn from_bits_or_self(bits: Self::B) -> Self;
}

macro_rules! float_bits {
    ($($t:ty => $b:ty);*) => {$(
        impl Bits for $t {
            type B = $b;
            #[inline(always)]
            fn to_bits_or_self(self) -> $b {
                self.to_bits()
            }
            #[inline(always)]
            fn from_bits_or_self(bits: $b) -> Self {
                <$t>::from_bits(bits)
            }
        }
    )*};
}
float_bits!(f32 => u32; f64 => u64);

macro_rules! int_bits {
    ($($t:ty),*) => {$(
        impl Bits for $t {
            type B = $t;
            #[inline(always)]
            fn to_bits_or_self(self) -> $t {
                self
            }
            #[inline(always)]
            fn from_bits_or_self(bits: $t) -> Self {
                bits
            }
        }
    )*};
}
int_bits!(i64, i32, u8);

mask_elem!(f32 => 0.0, 1.0, u32; f64 => 0.0, 1.0, u64; i64 => 0, 1, i64; i32 => 0, 1, i32; u8 => 0, 1, u8);
