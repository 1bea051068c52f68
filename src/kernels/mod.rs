//! The CPU kernels, and the crate's only `unsafe` code: direct access to the memory of CPU
//! tensors (this file) and, in [`mmap`], the memory maps of offline pruning.
//!
//! * [`select`]: linear-time selection of the `k` smallest magnitudes or largest draws (sampled
//!   window and radix passes, hashed random draws, global selection across tensors, and the
//!   replay of libtorch's CPU `topk` where ties straddle the threshold);
//! * [`channels`]: channel norms, channel masks and alive channels of structured pruning;
//! * [`masks`]: mask compaction and the one-pass product of `CustomFromMask`.
//!
//! Copying a tensor out (`copy_data`) before reading it doubled the memory traffic of
//! magnitude pruning (measured: `L1Unstructured` on a 3072x768 `f32` weight went from ~35 ms to
//! ~12 ms on the 2-core CI machine with direct access), so the kernels borrow tensor storage as
//! slices instead. Every borrow goes through the two functions below, which check what makes
//! it sound: the tensor is on the CPU, dense and contiguous, of the element type asked for, and
//! stays alive (borrowed) for as long as the slice.
//!
//! [`layout`] tells dense tensors from sparse and MKL-DNN ones without calling what panics on
//! the latter; every public entry point checks it first (`check_layout`), and the borrows check
//! it again.
#![allow(unsafe_code)]

pub(crate) mod channels;
pub(crate) mod masks;
pub(crate) mod mmap;
pub(crate) mod select;

use tch::kind::Element;
use tch::{Device, Kind, Layout, Tensor};

/// An `f32` that the selection kernels order by its signed value instead of its magnitude
/// (movement pruning keeps the largest *scores*, which may be negative): the same memory as
/// `f32`, read through [`with_slices`] from `Float` tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(transparent)]
pub(crate) struct SignedF32(pub(crate) f32);

// SAFETY: `SignedF32` is `repr(transparent)` over `f32`: same size, alignment and valid bit
// patterns (all of them), so a `Float` tensor's storage is a valid `[SignedF32]`, which is what
// `Element` with `KIND = Float` promises to the slice views below.
unsafe impl Element for SignedF32 {
    const KIND: Kind = Kind::Float;
    const ZERO: Self = SignedF32(0.0);
}

use crate::error::Result;

/// The layout of `t`, found without any call that panics on a sparse or MKL-DNN tensor
/// (`data_ptr`, `is_contiguous` and `stride` do; tch has no layout getter): MKL-DNN and sparse
/// COO by their flags, then `sparse_dim`, which is 0 for a strided tensor and positive for a
/// compressed one (CSR, CSC, BSR, BSC). [`Layout::NumOptions`] stands for a layout tch cannot
/// name.
pub(crate) fn layout(t: &Tensor) -> Layout {
    if t.is_mkldnn() {
        return Layout::Mkldnn;
    }
    if t.is_sparse() {
        return Layout::Sparse;
    }
    match t.f_sparse_dim() {
        Ok(0) => Layout::Strided,
        Ok(_) => compressed_layout(t),
        Err(_) => Layout::NumOptions,
    }
}

/// Which compressed layout `t` has (it has one): row indices or column indices, and values
/// with or without block dimensions. Only runs on the way to an error.
fn compressed_layout(t: &Tensor) -> Layout {
    let rows = t.f_crow_indices().is_ok();
    let dense_dim = t.f_dense_dim().unwrap_or(0);
    let blocks = t.f_values().is_ok_and(|v| v.dim() as i64 > 1 + dense_dim);
    match (rows, blocks) {
        (true, false) => Layout::SparseCsr,
        (true, true) => Layout::SparseBsr,
        (false, false) => Layout::SparseCsc,
        (false, true) => Layout::SparseBsc,
    }
}

/// Whether `t`'s storage can be viewed as a `[T]` of `t.numel()` elements (the layout first:
/// `is_contiguous` panics on a compressed sparse tensor).
fn viewable<T: Element>(t: &Tensor) -> bool {
    layout(t) == Layout::Strided
        && t.device() == Device::Cpu
        && t.kind() == T::KIND
        && t.is_contiguous()
}

/// Calls `f` with the elements of `t` in row-major order, or returns `None` when `t` is not a
/// contiguous CPU tensor of element type `T`.
pub(crate) fn with_slice<T: Element, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Option<R> {
    if !viewable::<T>(t) {
        return None;
    }
    let n = t.numel();
    if n == 0 {
        return Some(f(&[]));
    }
    let ptr = t.data_ptr() as *const T;
    // SAFETY: `t` is a dense, contiguous CPU tensor whose element type is `T` (checked above),
    // so its data pointer addresses `n` initialised, properly aligned `T`s (libtorch allocates
    // storage aligned for its dtype; `bool` storage holds only 0 or 1). `t` is borrowed for the
    // whole call, so the storage outlives the slice. Other handles to the same storage are only
    // written by libtorch operations that this crate does not run concurrently with the
    // closure; a caller mutating a shared tensor from another thread at the same time would be
    // a data race for libtorch's own kernels as well.
    let slice = unsafe { std::slice::from_raw_parts(ptr, n) };
    Some(f(slice))
}

/// Calls `f` with the elements of `t` mutably, or returns `None` when `t` is not a contiguous
/// CPU tensor of element type `T`. `t` must be a tensor the caller just created (no other
/// handle reads it meanwhile), which is why it takes `&mut`.
pub(crate) fn with_slice_mut<T: Element, R>(
    t: &mut Tensor,
    f: impl FnOnce(&mut [T]) -> R,
) -> Option<R> {
    if !viewable::<T>(t) {
        return None;
    }
    let n = t.numel();
    if n == 0 {
        return Some(f(&mut []));
    }
    let ptr = t.data_ptr() as *mut T;
    // SAFETY: as in `with_slice`; in addition the caller holds `t` mutably and created it, so no
    // other slice or libtorch operation accesses this storage while `f` runs.
    let slice = unsafe { std::slice::from_raw_parts_mut(ptr, n) };
    Some(f(slice))
}

/// Calls `f` with the elements of every tensor of `ts` (as [`with_slice`]), or returns `None`
/// when one of them is not a contiguous CPU tensor of element type `T`.
pub(crate) fn with_slices<T: Element, R>(
    ts: &[&Tensor],
    f: impl FnOnce(&[&[T]]) -> R,
) -> Option<R> {
    if !ts.iter().all(|t| viewable::<T>(t)) {
        return None;
    }
    let slices: Vec<&[T]> = ts
        .iter()
        .map(|t| {
            let n = t.numel();
            if n == 0 {
                return &[][..];
            }
            // SAFETY: as in `with_slice`, for each tensor (all checked above); every tensor is
            // borrowed through `ts` for the whole call.
            unsafe { std::slice::from_raw_parts(t.data_ptr() as *const T, n) }
        })
        .collect();
    Some(f(&slices))
}

/// Calls `f` with the elements of every tensor of `ts` mutably (as [`with_slice_mut`]), or
/// returns `None` when one of them is not a contiguous CPU tensor of element type `T` or when
/// two of them share memory. The tensors must be ones the caller just created.
pub(crate) fn with_slices_mut<T: Element, R>(
    ts: &mut [Tensor],
    f: impl FnOnce(&mut [&mut [T]]) -> R,
) -> Option<R> {
    if !ts.iter().all(viewable::<T>) {
        return None;
    }
    // Disjointness, which `&mut` slices need: sorted by address, each storage ends before the
    // next begins.
    let mut spans: Vec<(usize, usize)> = ts
        .iter()
        .filter(|t| t.numel() > 0)
        .map(|t| {
            let start = t.data_ptr() as usize;
            (start, start + t.numel() * std::mem::size_of::<T>())
        })
        .collect();
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[0].1 > w[1].0) {
        return None;
    }
    let mut slices: Vec<&mut [T]> = ts
        .iter_mut()
        .map(|t| {
            let n = t.numel();
            if n == 0 {
                return &mut [][..];
            }
            // SAFETY: as in `with_slice_mut`, for each tensor (all checked above); the storages
            // do not overlap (checked above), so the mutable slices are disjoint, and `ts` is
            // held mutably for the whole call.
            unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, n) }
        })
        .collect();
    Some(f(&mut slices))
}

/// Runs `f` compiled for AVX2 when the CPU has it (checked once per call, at run time), as it
/// is otherwise. The crate is built for the baseline `x86_64` target (SSE2), on which the
/// selection loops vectorise four lanes wide without a 32-bit multiply; with AVX2 they run
/// eight lanes wide (measured: the hashed random selection ~2.5x faster, the fused magnitude
/// pass ~35 % fewer instructions). `f` must be an `#[inline(always)]` closure
/// (`vectorized(#[inline(always)] || ...)`) whose callees are `#[inline(always)]` too: LLVM does
/// not inline a large closure into the AVX2 wrapper on its own, and code behind a call that is
/// not inlined runs as built (checked with `objdump`: `ymm` registers in the wrapper).
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `avx2` only requires the CPU to support AVX2, checked just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// The positions of the `true` entries of a 1-D bool tensor, as an int64 index vector.
pub(crate) fn true_positions(flags: &Tensor) -> Result<Tensor> {
    Ok(flags.f_nonzero()?.f_reshape([-1])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn slices_see_row_major_values_and_refuse_other_layouts() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
        assert_eq!(with_slice::<f32, _>(&t, |s| s.to_vec()), Some(vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(with_slice::<f64, _>(&t, |s| s.len()), None);
        assert_eq!(with_slice::<f32, _>(&t.tr(), |s| s.len()), None);
        let mut m = Tensor::zeros([3], (Kind::Int64, Device::Cpu));
        with_slice_mut::<i64, _>(&mut m, |s| s[1] = 7);
        assert_eq!(Vec::<i64>::try_from(&m).unwrap(), vec![0, 7, 0]);
        let empty = Tensor::zeros([0], (Kind::Float, Device::Cpu));
        assert_eq!(with_slice::<f32, _>(&empty, |s| s.len()), Some(0));
    }

    #[test]
    fn many_slices_at_once_and_no_overlapping_mutable_ones() {
        let (a, b) = (Tensor::from_slice(&[1.0f32, 2.0]), Tensor::from_slice(&[3.0f32]));
        let sums = with_slices::<f32, _>(&[&a, &b], |s| s.iter().map(|s| s.iter().sum()).collect());
        assert_eq!(sums, Some(vec![3.0f32, 3.0]));
        let transposed = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]).tr();
        assert_eq!(with_slices::<f32, _>(&[&a, &transposed], |_| ()), None);
        let mut outs = [
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
            Tensor::zeros([0], (Kind::Float, Device::Cpu)),
        ];
        with_slices_mut::<f32, _>(&mut outs, |s| s[0][1] = 5.0);
        assert_eq!(Vec::<f32>::try_from(&outs[0]).unwrap(), vec![0.0, 5.0]);
        // Two handles to one storage cannot both be borrowed mutably.
        let t = Tensor::zeros([4], (Kind::Float, Device::Cpu));
        let mut aliased = [t.shallow_clone(), t.narrow(0, 1, 2)];
        assert_eq!(with_slices_mut::<f32, _>(&mut aliased, |_| ()), None);
    }
}
