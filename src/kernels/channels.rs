//! Single-pass kernels for structured pruning on contiguous CPU `f32` / `f64` tensors: the
//! per-channel L1 norm, the channel mask, and which channels a mask still keeps alive.
//!
//! Each replaces a chain of libtorch operations that makes several passes over the tensor
//! (and, for the L1 norm along a leading dimension, reads it column by column: ~30 ms for a
//! 3072x768 weight on the 2-core CI machine). Every result is bit-identical to the libtorch
//! chain it replaces; where that cannot be guaranteed the functions return `None` and the
//! caller runs libtorch.
//!
//! A tensor is seen as `[outer, channels, inner]` around the pruned `dim`.

use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::kernels::{with_slice, with_slice_mut};

/// A float element the kernels handle (`ZERO` comes from [`tch::kind::Element`]).
pub(crate) trait Float: tch::kind::Element + Copy + PartialEq + PartialOrd {
    const ONE: Self;
    fn abs(self) -> Self;
    fn add(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
}

macro_rules! float {
    ($($t:ty),*) => {$(
        impl Float for $t {
            const ONE: Self = 1.0;
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn add(self, other: Self) -> Self {
                self + other
            }
            #[inline(always)]
            fn mul(self, other: Self) -> Self {
                self * other
            }
        }
    )*};
}
float!(f32, f64);

/// `(channels, inner)`: the size at `dim` (already normalised) and the product of the sizes
/// after it. The tensor is `outer` blocks of `channels` runs of `inner` entries.
fn layout(t: &Tensor, dim: i64) -> (usize, usize) {
    let size = t.size();
    let d = dim as usize;
    (size[d] as usize, size[d + 1..].iter().product::<i64>() as usize)
}

/// Whether `t` can be read in place: a contiguous CPU `f32` / `f64` tensor.
fn readable(t: &Tensor) -> bool {
    t.device() == Device::Cpu && matches!(t.kind(), Kind::Float | Kind::Double) && t.is_contiguous()
}

/// The L1 norm of every channel of `t` along `dim` (a 1-D tensor of `t`'s kind), exactly as
/// libtorch's `norm(t, p=1, dims=every other axis)` computes it, or `None` when `t` is not a
/// contiguous CPU `f32` / `f64` tensor.
///
/// libtorch reduces each channel on its own (`binary_kernel_reduce` with `NormOneOps`): one
/// accumulator of the tensor's type, `acc + |x|` over the channel's entries in memory order
/// (its threads split the channels, never a channel, except when there is only one channel:
/// that case is left to libtorch). The same additions in the same order give the same bits;
/// this kernel only interleaves independent channels so that they do not wait on one another.
pub(crate) fn l1_channel_norms(t: &Tensor, dim: i64) -> Result<Option<Tensor>> {
    if !readable(t) || t.dim() < 2 {
        return Ok(None);
    }
    let (channels, inner) = layout(t, dim);
    if channels < 2 || t.numel() == 0 {
        return Ok(None);
    }
    let norms = match t.kind() {
        Kind::Float => l1_norms::<f32>(t, channels, inner).map(|v| Tensor::from_slice(&v)),
        _ => l1_norms::<f64>(t, channels, inner).map(|v| Tensor::from_slice(&v)),
    };
    Ok(norms)
}

fn l1_norms<F: Float>(t: &Tensor, channels: usize, inner: usize) -> Option<Vec<F>> {
    with_slice::<F, _>(t, |x| {
        let mut acc = vec![F::ZERO; channels];
        if inner == 1 {
            // Channels are adjacent: one row of accumulators, updated row by row (vectorises
            // across channels; each channel still adds in memory order).
            for row in x.chunks_exact(channels) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = a.add(v.abs());
                }
            }
            return acc;
        }
        // Each channel's entries come in runs of `inner`: eight channels at a time, so that
        // eight independent sums advance together.
        const LANES: usize = 8;
        for block in x.chunks_exact(channels * inner) {
            let mut c = 0;
            while c + LANES <= channels {
                let mut lanes = [F::ZERO; LANES];
                lanes.copy_from_slice(&acc[c..c + LANES]);
                let rows: [&[F]; LANES] =
                    std::array::from_fn(|l| &block[(c + l) * inner..(c + l + 1) * inner]);
                // Entry `i` of each of the eight runs, in lockstep.
                #[allow(clippy::needless_range_loop)]
                for i in 0..inner {
                    for l in 0..LANES {
                        lanes[l] = lanes[l].add(rows[l][i].abs());
                    }
                }
                acc[c..c + LANES].copy_from_slice(&lanes);
                c += LANES;
            }
            for (a, row) in acc[c..].iter_mut().zip(block[c * inner..].chunks_exact(inner)) {
                for &v in row {
                    *a = a.add(v.abs());
                }
            }
        }
        acc
    })
}

/// The structured mask: `zeros_like(importance)`, ones on the `keep` channels along `dim`,
/// times `default.to(kind)` when there is a default (`None`: ones, which the product leaves
/// as it is). PyTorch's chain is `zeros_like`, `index_fill_`, `mul_`: three passes. For a
/// contiguous CPU `f32` / `f64` importance it is one pass writing `1 * d` on kept channels and
/// `0 * d` elsewhere, the very products libtorch's `mul_` forms (so signed zeros and NaN come
/// out the same).
pub(crate) fn structured_mask(
    importance: &Tensor,
    default: Option<&Tensor>,
    dim: i64,
    keep: &Tensor,
) -> Result<Tensor> {
    if let Some(mask) = channel_mask(importance, default, dim, keep)? {
        return Ok(mask);
    }
    let mut mask = importance.f_zeros_like()?;
    _ = mask.f_index_fill_(dim, keep, 1)?;
    if let Some(default) = default {
        _ = mask.f_mul_(&default.f_to_kind(mask.kind())?)?;
    }
    Ok(mask)
}

/// A structured method's `compute_mask` from the channels it keeps along `dim` (`None`:
/// nothing pruned, and the result is `default` itself, as in PyTorch).
pub(crate) fn mask_from_kept(
    importance: &Tensor,
    default: &Tensor,
    kept: Option<(i64, Tensor)>,
) -> Result<Tensor> {
    match kept {
        Some((dim, keep)) => structured_mask(importance, Some(default), dim, &keep),
        None => Ok(default.shallow_clone()),
    }
}

/// A structured method's `compute_mask_on_ones`: the mask without the ones (times ones changes
/// nothing). `None` when nothing is pruned (the result is the ones themselves) and, before
/// `kept` runs (it may draw random numbers), when the ones would lie on another device than
/// the importance (`compute_mask` reports that as PyTorch does).
pub(crate) fn mask_on_ones_from_kept(
    importance: &Tensor,
    like: &Tensor,
    kept: impl FnOnce() -> Result<Option<(i64, Tensor)>>,
) -> Result<Option<Tensor>> {
    if like.device() != importance.device() {
        return Ok(None);
    }
    match kept()? {
        Some((dim, keep)) => structured_mask(importance, None, dim, &keep).map(Some),
        None => Ok(None),
    }
}

/// [`structured_mask`] in one pass, or `None` when `importance` is not a contiguous CPU
/// `f32` / `f64` tensor or the default is not on the CPU (the default is first converted to the
/// importance kind, as PyTorch does).
fn channel_mask(
    importance: &Tensor,
    default: Option<&Tensor>,
    dim: i64,
    keep: &Tensor,
) -> Result<Option<Tensor>> {
    // A default that requires grad gets a mask with a gradient from libtorch's `mul_`.
    let unusual = |d: &Tensor| d.device() != Device::Cpu || d.requires_grad();
    if !readable(importance) || default.is_some_and(unusual) {
        return Ok(None);
    }
    let kind = importance.kind();
    let default = default.map(|d| d.f_to_kind(kind)?.f_contiguous()).transpose()?;
    let (channels, inner) = layout(importance, dim);
    let mut flags = vec![false; channels];
    for c in Vec::<i64>::try_from(&keep.f_to_device(Device::Cpu)?.f_to_kind(Kind::Int64)?)? {
        flags[c as usize] = true;
    }
    let mut mask = Tensor::f_empty(importance.size(), (kind, Device::Cpu))?;
    let default = default.as_ref();
    let done = match kind {
        Kind::Float => write_channel_mask::<f32>(default, &mut mask, &flags, inner),
        _ => write_channel_mask::<f64>(default, &mut mask, &flags, inner),
    };
    Ok(done.then_some(mask))
}

fn write_channel_mask<F: Float>(
    default: Option<&Tensor>,
    mask: &mut Tensor,
    keep: &[bool],
    inner: usize,
) -> bool {
    let channels = keep.len();
    let factors: Vec<F> = keep.iter().map(|&k| if k { F::ONE } else { F::ZERO }).collect();
    let block = channels * inner;
    with_slice_mut::<F, _>(mask, |out| {
        if block == 0 {
            return Some(());
        }
        let Some(default) = default else {
            // Times ones: the factors themselves.
            for o in out.chunks_exact_mut(block) {
                for (o, &f) in o.chunks_exact_mut(inner).zip(&factors) {
                    o.fill(f);
                }
            }
            return Some(());
        };
        with_slice::<F, _>(default, |d| {
            let blocks = out.chunks_exact_mut(block).zip(d.chunks_exact(block));
            if inner == 1 {
                // Channels are adjacent: a row of factors times each row (vectorises).
                for (o, d) in blocks {
                    for ((o, &d), &f) in o.iter_mut().zip(d).zip(&factors) {
                        *o = f.mul(d);
                    }
                }
                return;
            }
            for (o, d) in blocks {
                let runs = o.chunks_exact_mut(inner).zip(d.chunks_exact(inner));
                for ((o, d), &f) in runs.zip(&factors) {
                    for (o, &d) in o.iter_mut().zip(d) {
                        *o = f.mul(d);
                    }
                }
            }
        })
    })
    .flatten()
    .is_some()
}

/// Which channels along `dim` the mask still keeps: PyTorch's `mask.sum(other dims) != 0`.
/// Computed as "some entry is not zero", which is the same test when no entry is negative
/// (no cancellation; NaN and inf sum to non-zero); `None` when an entry is negative or the
/// mask is not a contiguous CPU `f32` / `f64` tensor.
pub(crate) fn alive_channels(mask: &Tensor, dim: i64) -> Option<Vec<bool>> {
    if !readable(mask) || mask.dim() < 1 {
        return None;
    }
    let (channels, inner) = layout(mask, dim);
    match mask.kind() {
        Kind::Float => alive::<f32>(mask, channels, inner),
        _ => alive::<f64>(mask, channels, inner),
    }
}

fn alive<F: Float>(mask: &Tensor, channels: usize, inner: usize) -> Option<Vec<bool>> {
    with_slice::<F, _>(mask, |m| {
        // Byte flags OR-ed branch-free (vectorises): bit 0 = some entry is not zero (NaN
        // included, as in a sum), bit 1 = some entry is negative.
        let flag = |v: F| u32::from(v != F::ZERO) | (u32::from(v < F::ZERO) << 1);
        let mut flags = vec![0u32; channels];
        if channels > 0 && inner > 0 {
            let blocks = m.chunks_exact(channels * inner);
            if inner == 1 {
                for row in blocks {
                    for (f, &v) in flags.iter_mut().zip(row) {
                        *f |= flag(v);
                    }
                }
            } else {
                for block in blocks {
                    for (f, run) in flags.iter_mut().zip(block.chunks_exact(inner)) {
                        *f |= run.iter().fold(0u32, |acc, &v| acc | flag(v));
                    }
                }
            }
        }
        let negative = flags.iter().any(|&f| f & 2 != 0);
        (!negative).then(|| flags.iter().map(|&f| f & 1 != 0).collect())
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Well-mixed values in `[-0.05, 0.05]`, without the global generator (other tests seed
    /// and draw from it concurrently).
    fn values(shape: &[i64], kind: Kind) -> Tensor {
        let n: i64 = shape.iter().product();
        ((Tensor::arange(n, (Kind::Double, Device::Cpu)) * 12.9898).sin() * 0.05)
            .to_kind(kind)
            .reshape(shape)
    }

    /// The norms of libtorch and of the kernel, bit for bit, on shapes and dims that take
    /// every path (channels adjacent or in runs, partial blocks of eight, large channels).
    #[test]
    fn l1_norms_equal_libtorch_bit_for_bit() {
        let shapes: [&[i64]; 7] = [
            &[3072, 768],
            &[768, 3072],
            &[7, 5],
            &[6, 1, 3, 3],
            &[16, 6, 5, 5],
            &[2, 40000],
            &[33, 9, 17],
        ];
        for shape in shapes {
            for kind in [Kind::Float, Kind::Double] {
                let t = values(shape, kind);
                for dim in 0..shape.len() as i64 {
                    let dims: Vec<i64> = (0..shape.len() as i64).filter(|&d| d != dim).collect();
                    let expected = t.norm_scalaropt_dim(1.0, dims.as_slice(), false);
                    let Some(ours) = l1_channel_norms(&t, dim).unwrap() else {
                        // A single channel is left to libtorch.
                        assert_eq!(shape[dim as usize], 1);
                        continue;
                    };
                    let same = expected.view_dtype(Kind::Int8).equal(&ours.view_dtype(Kind::Int8));
                    assert!(same, "{shape:?} {kind:?} dim {dim}");
                }
            }
        }
    }

    #[test]
    fn channel_mask_equals_zeros_index_fill_mul() {
        let t = values(&[4, 3, 5], Kind::Float);
        let default = Tensor::from_slice(&[1.0f32, 0.0, -1.0, f32::NAN, f32::INFINITY, 0.5])
            .repeat([10])
            .reshape([4, 3, 5]);
        for dim in 0..3 {
            let keep = Tensor::from_slice(&[0i64, 2]);
            let mut expected = t.zeros_like();
            let _ = expected.index_fill_(dim, &keep, 1);
            let _ = expected.g_mul_(&default);
            let ours = channel_mask(&t, Some(&default), dim, &keep).unwrap().unwrap();
            let same = expected.view_dtype(Kind::Int8).equal(&ours.view_dtype(Kind::Int8));
            assert!(same, "dim {dim}");
            let mut expected = t.zeros_like();
            let _ = expected.index_fill_(dim, &keep, 1);
            let ours = channel_mask(&t, None, dim, &keep).unwrap().unwrap();
            assert!(expected.equal(&ours), "dim {dim}, ones");
        }
    }

    /// The structured mask without the ones equals the one with them (`RandomStructured` shares
    /// the code but draws from the global generator, which other tests seed: it is checked
    /// against PyTorch in `tests/random_methods.rs`).
    #[test]
    fn structured_masks_on_ones_equal_compute_mask() {
        use crate::method::{LnStructured, PruningMethod};
        let t = values(&[6, 5, 4], Kind::Float);
        for like_kind in [Kind::Float, Kind::Bool] {
            let like = Tensor::zeros([6, 5, 4], (like_kind, Device::Cpu));
            for dim in [0, 1, -1] {
                let ln = LnStructured::new(0.4, 1, dim).unwrap();
                let ours = ln.compute_mask_on_ones(&t, &like).unwrap().unwrap().into_inner();
                assert!(ours.equal(&ln.compute_mask(&t, &like.ones_like()).unwrap()));
            }
            let nothing = LnStructured::new(0, 1, 0).unwrap();
            assert!(nothing.compute_mask_on_ones(&t, &like).unwrap().is_none());
        }
    }

    #[test]
    fn alive_channels_is_a_nonzero_sum() {
        let m = Tensor::from_slice(&[0.0f32, 0.0, 1.0, -0.0, f32::NAN, 0.0]).reshape([3, 2]);
        assert_eq!(alive_channels(&m, 0), Some(vec![false, true, true]));
        assert_eq!(alive_channels(&m, 1), Some(vec![true, false]));
        let negative = Tensor::from_slice(&[1.0f32, -1.0]).reshape([1, 2]);
        assert_eq!(alive_channels(&negative, 0), None);
    }
}
