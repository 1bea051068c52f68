//! Small tensor helpers for the method-level tests: building tensors from slices, reading them
//! back as flat `f64` vectors, and per-channel bookkeeping done in plain Rust (so the checks do
//! not rely on the libtorch operations the crate itself uses).
#![allow(dead_code)]

use tch::{Device, Kind, Tensor};

/// A float32 tensor of the given shape from row-major values.
pub fn tf(values: &[f32], shape: &[i64]) -> Tensor {
    Tensor::from_slice(values).reshape(shape)
}

/// A float64 tensor of the given shape from row-major values.
pub fn td(values: &[f64], shape: &[i64]) -> Tensor {
    Tensor::from_slice(values).reshape(shape)
}

/// An int64 tensor of the given shape from row-major values.
pub fn ti(values: &[i64], shape: &[i64]) -> Tensor {
    Tensor::from_slice(values).reshape(shape)
}

/// The values of `t`, flattened in row-major order and converted to `f64` (on the CPU).
pub fn values(t: &Tensor) -> Vec<f64> {
    let flat = t.to_device(Device::Cpu).to_kind(Kind::Double).contiguous().reshape([-1]);
    Vec::<f64>::try_from(&flat).expect("tensor converts to Vec<f64>")
}

/// A deep copy of `t` (its own storage), to compare against after a call.
pub fn snapshot(t: &Tensor) -> Tensor {
    t.copy()
}

/// Asserts `actual` has `shape` and, elementwise, the `expected` values (exactly).
#[track_caller]
pub fn assert_values(actual: &Tensor, expected: &[f64], shape: &[i64]) {
    assert_eq!(actual.size(), shape, "shape");
    assert_eq!(values(actual), expected, "values");
}

/// Asserts two tensors have the same shape, kind and values (exactly; NaN never equal).
#[track_caller]
pub fn assert_same(actual: &Tensor, expected: &Tensor) {
    assert_eq!(actual.size(), expected.size(), "shape");
    assert_eq!(actual.kind(), expected.kind(), "kind");
    assert_eq!(values(actual), values(expected), "values");
}

/// The number of entries equal to zero.
pub fn zeros(t: &Tensor) -> usize {
    values(t).iter().filter(|&&v| v == 0.0).count()
}

/// Whether every entry is exactly 0 or 1.
pub fn is_binary(t: &Tensor) -> bool {
    values(t).iter().all(|&v| v == 0.0 || v == 1.0)
}

/// For every row-major flat index, the index of its channel along `dim` (`dim` may be negative).
pub fn channel_of(shape: &[i64], dim: i64) -> Vec<usize> {
    let ndim = shape.len() as i64;
    let dim = if dim < 0 { dim + ndim } else { dim } as usize;
    let stride: i64 = shape[dim + 1..].iter().product();
    let numel: i64 = shape.iter().product();
    (0..numel).map(|i| ((i / stride) % shape[dim]) as usize).collect()
}

/// For each channel along `dim`, whether all its entries are zero.
pub fn dead_channels(t: &Tensor, dim: i64) -> Vec<bool> {
    let shape = t.size();
    let ndim = shape.len() as i64;
    let d = if dim < 0 { dim + ndim } else { dim } as usize;
    let mut dead = vec![true; shape[d] as usize];
    for (v, c) in values(t).into_iter().zip(channel_of(&shape, dim)) {
        if v != 0.0 {
            dead[c] = false;
        }
    }
    dead
}

/// For each channel along `dim`, the sum of `|x|^p` over its entries (`p = 1` is the L1 norm).
pub fn channel_abs_sums(t: &Tensor, dim: i64) -> Vec<f64> {
    let shape = t.size();
    let ndim = shape.len() as i64;
    let d = if dim < 0 { dim + ndim } else { dim } as usize;
    let mut sums = vec![0.0; shape[d] as usize];
    for (v, c) in values(t).into_iter().zip(channel_of(&shape, dim)) {
        sums[c] += v.abs();
    }
    sums
}

/// Whether every zero of `before` is still a zero of `after` (nothing pruned is revived).
pub fn keeps_zeros(before: &Tensor, after: &Tensor) -> bool {
    values(before).iter().zip(values(after)).all(|(&b, a)| b != 0.0 || a == 0.0)
}

/// The number of entries that are zero in `after` but not in `before`.
pub fn newly_zeroed(before: &Tensor, after: &Tensor) -> usize {
    values(before).iter().zip(values(after)).filter(|(&b, a)| b != 0.0 && *a == 0.0).count()
}

/// A deterministic float32 tensor without ties in magnitude: `sin(1 + i) * (1 + i)` for the
/// row-major index `i`, reshaped to `shape`.
pub fn distinct(shape: &[i64]) -> Tensor {
    let numel: i64 = shape.iter().product();
    let v: Vec<f32> = (0..numel).map(|i| ((1 + i) as f32).sin() * (1 + i) as f32).collect();
    tf(&v, shape)
}
