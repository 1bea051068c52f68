//! libtorch's `topk` route, exactly as PyTorch runs it: for tensors the linear-time selection
//! does not take (small, other kinds, other devices), and for straddling ties over more
//! entries than the replay's 32-bit positions hold ([`super::Outcome::TiesStraddle`]).
//!
//! PyTorch calls `topk(..., sorted=True)` and uses only the set of indices. On the CPU the
//! set does not depend on `sorted`: libtorch's CPU kernel (`topk_impl_loop`) selects with a
//! heap of `k` entries (`k * 64 <= n`) or `std::nth_element`, and `sorted` only orders the `k`
//! entries selected afterwards (`sort_heap` / `sort` within them). Skipping that sort is 2.5-5x
//! cheaper for large `k` (measured: 1e7 entries, `k` = 3e6, 606 ms sorted, 248 ms not), so the
//! CPU calls here pass `sorted = false`; the tests compare with `sorted = true` replays and
//! with PyTorch's own masks. Other devices keep PyTorch's call as it is.

use tch::{Device, Kind, Tensor};

use super::GlobalPart;
use crate::amount::Amount;
use crate::error::Result;
use crate::kernels::true_positions;

/// The `sorted` argument for a `topk` whose indices are only used as a set (see above).
fn sorted(t: &Tensor) -> bool {
    t.device() != Device::Cpu
}

/// `mask` (a fresh contiguous tensor of `scores`' shape) with the `k` smallest (or `largest`)
/// `scores` zeroed, chosen by libtorch's `topk` as PyTorch's `L1Unstructured` (on `|t|`) and
/// `RandomUnstructured` (on the draws) choose them.
pub(crate) fn zero_by_topk(scores: &Tensor, k: i64, largest: bool, mask: Tensor) -> Result<Tensor> {
    if k != 0 {
        let flat = scores.f_reshape([-1])?;
        let (_, indices) = flat.f_topk(k, 0, largest, sorted(&flat))?;
        _ = mask.f_view([-1])?.f_index_fill_(0, &indices, 0)?;
    }
    Ok(mask)
}

/// PyTorch's global L1 step (and its container step: one part), by `topk`: the scores of
/// every part concatenated in order (PyTorch's vector), the slice of the available entries
/// (mask exactly 1; all of them when no part has a mask), `topk` of its magnitudes, and per
/// part its mask in `f32` (ones without one) with the chosen entries zeroed.
pub(crate) fn global_smallest_by_topk(parts: &[GlobalPart], amount: Amount) -> Result<Vec<Tensor>> {
    let flat = parts.iter().map(|p| p.scores.f_reshape([-1])).collect::<Result<Vec<_>, _>>()?;
    let scores = Tensor::f_cat(&flat, 0)?;
    drop(flat);
    let total = scores.numel() as i64;
    let (slice, positions) = if parts.iter().any(|p| p.mask.is_some()) {
        let available = parts
            .iter()
            .map(|p| match &p.mask {
                Some(mask) => mask.f_eq(1)?.f_reshape([-1]),
                None => Tensor::f_ones([p.scores.numel() as i64], (Kind::Bool, Device::Cpu)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let positions = true_positions(&Tensor::f_cat(&available, 0)?)?;
        (scores.f_index_select(0, &positions)?, Some(positions))
    } else {
        (scores, None)
    };
    let k = amount.count_for(slice.numel() as i64)?;
    let mut chosen = Tensor::f_zeros([total], (Kind::Bool, Device::Cpu))?;
    if k != 0 {
        let (_, indices) = slice.f_abs()?.f_topk(k, 0, false, sorted(&slice))?;
        let indices = match positions {
            Some(positions) => positions.f_index_select(0, &indices)?,
            None => indices,
        };
        _ = chosen.f_index_fill_(0, &indices, 1)?;
    }
    let mut offset = 0;
    let mut masks = Vec::with_capacity(parts.len());
    for p in parts {
        let n = p.scores.numel() as i64;
        let pruned = chosen.f_narrow(0, offset, n)?.f_reshape(p.scores.size().as_slice())?;
        masks.push(match &p.mask {
            Some(mask) => mask.f_masked_fill(&pruned, 0)?.f_contiguous()?,
            None => pruned.f_logical_not()?.f_to_kind(Kind::Float)?,
        });
        offset += n;
    }
    Ok(masks)
}
