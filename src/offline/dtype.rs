//! The float dtypes offline pruning works on, and their magnitude keys.
//!
//! A key is an unsigned integer that orders like `|x|`: for IEEE floats, clearing the sign bit
//! and reading the bits as an unsigned integer orders non-negative values monotonically, with
//! `+0` and `-0` equal and NaN above `inf` (NaN ranks as the largest magnitude, as with
//! `topk`). So bf16 and f16 keys have 15 bits, f32 keys 31 and f64 keys 63. Tensors of
//! different dtypes are compared in a common key space: f32 (every f16 and bf16 value converts
//! exactly) or f64 when an f64 tensor takes part.

use safetensors::Dtype;

/// A float dtype offline pruning can prune; every other dtype passes through untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Float {
    F16,
    BF16,
    F32,
    F64,
}

impl Float {
    /// The prunable dtype, if `dtype` is one.
    pub(crate) fn of(dtype: Dtype) -> Option<Self> {
        match dtype {
            Dtype::F16 => Some(Self::F16),
            Dtype::BF16 => Some(Self::BF16),
            Dtype::F32 => Some(Self::F32),
            Dtype::F64 => Some(Self::F64),
            _ => None,
        }
    }

    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            Self::F16 | Self::BF16 => 2,
            Self::F32 => 4,
            Self::F64 => 8,
        }
    }
}

/// The integer space keys of a selection live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySpace {
    /// The dtype's own bits (all tensors of the selection share it).
    Native(Float),
    /// f32 bits (f16/bf16/f32 mixed).
    F32,
    /// f64 bits (an f64 tensor among others).
    F64,
}

impl KeySpace {
    /// The common space of a set of dtypes (`None` for an empty set).
    pub(crate) fn common(floats: impl IntoIterator<Item = Float>) -> Option<Self> {
        let mut space: Option<Self> = None;
        for f in floats {
            space = Some(match space {
                None => Self::Native(f),
                Some(Self::Native(g)) if g == f => Self::Native(f),
                Some(Self::F64) => Self::F64,
                Some(_) if f == Float::F64 => Self::F64,
                Some(Self::Native(Float::F64)) => Self::F64,
                Some(_) => Self::F32,
            });
        }
        space
    }

    /// Number of significant key bits.
    pub(crate) fn width(self) -> u32 {
        match self {
            Self::Native(Float::F16 | Float::BF16) => 15,
            Self::Native(Float::F32) | Self::F32 => 31,
            Self::Native(Float::F64) | Self::F64 => 63,
        }
    }
}

/// f16 bits to f32 bits, exactly (every f16 value, subnormals and NaN payloads included, is an
/// f32 value).
pub(crate) fn f16_to_f32_bits(h: u16) -> u32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1F) as u32;
    let mant = (h & 0x3FF) as u32;
    match exp {
        0 => sign | (mant as f32 * f32::from_bits(0x3380_0000)).to_bits(), // mant * 2^-24
        0x1F => sign | 0x7F80_0000 | (mant << 13),
        _ => sign | ((exp + 112) << 23) | (mant << 13),
    }
}

/// The element at `bytes` (little-endian) as an f32 magnitude (exact for f16/bf16/f32; f64 is
/// rounded, which only Wanda's f32 scores use, as the reference does).
#[inline(always)]
pub(crate) fn abs_f32(float: Float, bytes: &[u8]) -> f32 {
    match float {
        Float::F16 => {
            f32::from_bits(f16_to_f32_bits(u16::from_le_bytes([bytes[0], bytes[1]]))).abs()
        }
        Float::BF16 => {
            f32::from_bits((u16::from_le_bytes([bytes[0], bytes[1]]) as u32) << 16).abs()
        }
        Float::F32 => f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]).abs(),
        Float::F64 => f64::from_le_bytes(le8(bytes)).abs() as f32,
    }
}

#[inline(always)]
fn le8(b: &[u8]) -> [u8; 8] {
    [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// Calls `f(i, key)` for every element of `bytes` (a whole number of `float` elements), with
/// its magnitude key in `space`. The dispatch happens once, outside the loops.
#[inline(always)]
pub(crate) fn for_each_key(
    float: Float,
    space: KeySpace,
    bytes: &[u8],
    mut f: impl FnMut(usize, u64),
) {
    const A15: u16 = 0x7FFF;
    const A31: u32 = 0x7FFF_FFFF;
    const A63: u64 = 0x7FFF_FFFF_FFFF_FFFF;
    match (float, space) {
        (Float::F16 | Float::BF16, KeySpace::Native(_)) => {
            for (i, c) in bytes.chunks_exact(2).enumerate() {
                f(i, (u16::from_le_bytes([c[0], c[1]]) & A15) as u64);
            }
        }
        (Float::F32, KeySpace::Native(_) | KeySpace::F32) => {
            for (i, c) in bytes.chunks_exact(4).enumerate() {
                f(i, (u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & A31) as u64);
            }
        }
        (Float::F64, _) => {
            for (i, c) in bytes.chunks_exact(8).enumerate() {
                f(i, u64::from_le_bytes(le8(c)) & A63);
            }
        }
        (Float::BF16, KeySpace::F32) => {
            for (i, c) in bytes.chunks_exact(2).enumerate() {
                f(i, (((u16::from_le_bytes([c[0], c[1]]) as u32) << 16) & A31) as u64);
            }
        }
        (Float::F16, KeySpace::F32) => {
            for (i, c) in bytes.chunks_exact(2).enumerate() {
                f(i, (f16_to_f32_bits(u16::from_le_bytes([c[0], c[1]])) & A31) as u64);
            }
        }
        (Float::F32, KeySpace::F64) => {
            for (i, c) in bytes.chunks_exact(4).enumerate() {
                let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64;
                f(i, x.to_bits() & A63);
            }
        }
        (Float::BF16, KeySpace::F64) => {
            for (i, c) in bytes.chunks_exact(2).enumerate() {
                let x = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16) as f64;
                f(i, x.to_bits() & A63);
            }
        }
        (Float::F16, KeySpace::F64) => {
            for (i, c) in bytes.chunks_exact(2).enumerate() {
                let x = f32::from_bits(f16_to_f32_bits(u16::from_le_bytes([c[0], c[1]]))) as f64;
                f(i, x.to_bits() & A63);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_is_exact_on_every_pattern() {
        for h in 0..=u16::MAX {
            let exp = (h >> 10) & 0x1F;
            let mant = (h & 0x3FF) as f64;
            let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
            let expected = match exp {
                0 => sign * mant * 2f64.powi(-24),
                0x1F if mant == 0.0 => sign * f64::INFINITY,
                0x1F => f64::NAN,
                e => sign * (1.0 + mant / 1024.0) * 2f64.powi(e as i32 - 15),
            };
            let got = f32::from_bits(f16_to_f32_bits(h)) as f64;
            assert!(got == expected || (got.is_nan() && expected.is_nan()), "{h:#x}");
        }
    }

    #[test]
    fn keys_order_like_magnitudes_in_every_space() {
        let values = [0.0f32, -0.0, 1.5e-6, -0.25, 0.5, -3.0, 65504.0, f32::INFINITY, f32::NAN];
        let bf16: Vec<u8> =
            values.iter().flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes()).collect();
        let f32b: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        for (float, bytes) in [(Float::BF16, &bf16), (Float::F32, &f32b)] {
            for space in [KeySpace::Native(float), KeySpace::F32, KeySpace::F64] {
                let mut keys = Vec::new();
                for_each_key(float, space, bytes, |_, k| keys.push(k));
                assert_eq!(keys[0], keys[1], "+0 and -0 tie");
                assert!(keys[1..].windows(2).all(|w| w[0] <= w[1]), "{float:?} {space:?}");
                assert!(keys[7] < keys[8], "NaN above inf");
            }
        }
        assert_eq!(
            KeySpace::common([Float::BF16, Float::BF16]),
            Some(KeySpace::Native(Float::BF16))
        );
        assert_eq!(KeySpace::common([Float::BF16, Float::F16]), Some(KeySpace::F32));
        assert_eq!(KeySpace::common([Float::F32, Float::F64, Float::F16]), Some(KeySpace::F64));
        assert_eq!(KeySpace::common([Float::F64, Float::F32]), Some(KeySpace::F64));
    }
}
