//! [`L1Unstructured`]: prunes the entries of smallest magnitude.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::checks::{check_dense, check_same_shape, contiguous_copy};
use super::{Amount, Builtin, PruningMethod, PruningType};
use crate::error::Result;
use crate::kernels::select::{fast_path_applies, prune_mask, zero_by_topk, MaskDefault, Order};
use crate::tie_break::TieBreak;

/// Prunes the `k` entries with the smallest absolute value.
///
/// `k` comes from the [`Amount`]: a count, or a fraction of the entries rounded half-to-even.
/// Exactly `k` entries are zeroed even when magnitudes tie (selection by count, not by
/// threshold); which tied entries go is decided by libtorch's `topk`, as in PyTorch, so masks
/// are bit-identical to PyTorch's on the same backend, at every size (large CPU tensors are
/// selected in linear time, tied entries that straddle the threshold by a replay of libtorch's
/// CPU `topk` selection).
/// NaN counts as the largest magnitude.
///
/// ```
/// use tch::Tensor;
/// use tch_prune::{L1Unstructured, PruningMethod};
///
/// let w = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0]).reshape([2, 4]);
/// let mask = L1Unstructured::new(2)?.compute_mask(&w, &w.ones_like())?;
/// assert_eq!(Vec::<f32>::try_from(&mask.reshape([-1]))?, vec![0., 1., 1., 1., 1., 1., 1., 0.]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: `torch.nn.utils.prune.L1Unstructured(amount)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct L1Unstructured {
    #[serde(deserialize_with = "super::deserialize_valid_amount")]
    amount: Amount,
    /// Absent from serialized forms when it is the default.
    #[serde(default, skip_serializing_if = "TieBreak::is_pytorch")]
    ties: TieBreak,
}

impl L1Unstructured {
    /// Creates the method; an integer amount is a count, a float a fraction.
    ///
    /// # Errors
    /// [`PruneError::NegativeCount`](crate::PruneError::NegativeCount) or
    /// [`PruneError::FractionOutOfRange`](crate::PruneError::FractionOutOfRange).
    ///
    /// ```
    /// use tch_prune::L1Unstructured;
    /// assert!(L1Unstructured::new(0.3).is_ok());
    /// assert!(L1Unstructured::new(-1).is_err());
    /// ```
    pub fn new(amount: impl Into<Amount>) -> Result<Self> {
        Ok(Self { amount: amount.into().validate()?, ties: TieBreak::PyTorch })
    }

    /// How much the method prunes.
    pub fn amount(&self) -> Amount {
        self.amount
    }

    /// The method with another rule for entries tied at the threshold: see [`TieBreak`]
    /// (the default, [`TieBreak::PyTorch`], gives PyTorch's masks; [`TieBreak::LowestIndex`]
    /// is faster where ties straddle the cut on large CPU tensors, and not PyTorch's mask there).
    ///
    /// ```
    /// use tch_prune::{L1Unstructured, TieBreak};
    ///
    /// let fast = L1Unstructured::new(0.3)?.with_tie_break(TieBreak::LowestIndex);
    /// assert_eq!(fast.tie_break(), TieBreak::LowestIndex);
    /// assert_eq!(L1Unstructured::new(0.3)?.tie_break(), TieBreak::PyTorch);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: none (PyTorch always keeps `topk`'s entries).
    pub fn with_tie_break(self, ties: TieBreak) -> Self {
        Self { ties, ..self }
    }

    /// How entries tied at the threshold go.
    pub fn tie_break(&self) -> TieBreak {
        self.ties
    }
}

/// `mask` (a fresh contiguous copy of the default mask) with the `k` smallest `|importance|`
/// zeroed by libtorch's `topk`, as PyTorch.
fn prune_smallest(importance: &Tensor, k: i64, mask: Tensor) -> Result<Tensor> {
    if k == 0 {
        return Ok(mask);
    }
    zero_by_topk(&importance.f_abs()?, k, false, mask)
}

impl PruningMethod for L1Unstructured {
    /// The mask is a copy of `default_mask` (same kind) with the `k` smallest `|importance|`
    /// entries set to zero, chosen over the whole tensor.
    fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        check_dense(importance, default_mask)?;
        check_same_shape("default_mask", &importance.size(), default_mask)?;
        let k = self.amount.count_for(importance.numel() as i64)?;
        if k != 0 {
            // Linear-time selection for large CPU tensors (`topk`'s set, straddling ties by
            // `self.ties`: see `crate::kernels::select`), libtorch's `topk` otherwise, as PyTorch.
            let default = MaskDefault::Tensor(default_mask);
            let smallest = Order::SmallestMagnitude;
            if let Some(mask) = prune_mask(importance, k, smallest, default, self.ties)? {
                return Ok(mask);
            }
        }
        prune_smallest(importance, k, contiguous_copy(default_mask)?)
    }

    /// The fast path without the ones: they are only ever copied into the mask.
    fn compute_mask_on_ones(
        &self,
        importance: &Tensor,
        like: &Tensor,
    ) -> Result<Option<Builtin<Tensor>>> {
        Ok(self.mask_on_ones(importance, like)?.map(Builtin))
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Unstructured
    }

    fn magnitude_amount(&self) -> Option<Builtin<(Amount, TieBreak)>> {
        Some(Builtin((self.amount, self.ties)))
    }
}

impl L1Unstructured {
    /// The mask `compute_mask(importance, &like.ones_like())` gives, when it can be computed
    /// without building the ones; `None` otherwise.
    fn mask_on_ones(&self, importance: &Tensor, like: &Tensor) -> Result<Option<Tensor>> {
        check_dense(importance, like)?;
        check_same_shape("default_mask", &importance.size(), like)?;
        let k = self.amount.count_for(importance.numel() as i64)?;
        let ones = MaskDefault::Ones(like.kind(), like.device());
        if k == 0 || !fast_path_applies(importance, ones) {
            return Ok(None);
        }
        match prune_mask(importance, k, Order::SmallestMagnitude, ones, self.ties)? {
            Some(mask) => Ok(Some(mask)),
            // The selection declined (see `prune_mask`): `topk` decides, on ones built here.
            None => prune_smallest(importance, k, like.f_ones_like()?.f_contiguous()?).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Without the ones, the same mask as `compute_mask` with them, in the ones' kind.
    #[test]
    fn compute_mask_on_ones_equals_compute_mask() {
        // Well-mixed values without the global generator (other tests seed and draw from it).
        let importance = (Tensor::arange(60_000, (Kind::Float, Device::Cpu)) * 12.9898)
            .sin()
            .reshape([300, 200]);
        let method = L1Unstructured::new(0.3).unwrap();
        // The same values rounded to 9 levels: ties straddle the threshold, `topk`'s replay decides.
        let tied = (&importance * 4.0).round();
        for importance in [&importance, &tied] {
            for kind in [Kind::Float, Kind::Double, Kind::Int64, Kind::Uint8] {
                let like = Tensor::zeros([300, 200], (kind, Device::Cpu));
                let ours =
                    method.compute_mask_on_ones(importance, &like).unwrap().unwrap().into_inner();
                let expected = method.compute_mask(importance, &like.ones_like()).unwrap();
                assert_eq!(ours.kind(), kind);
                assert!(ours.equal(&expected), "{kind:?}");
            }
        }
        // No shortcut where the fast path does not apply.
        let small = Tensor::ones([3, 4], (Kind::Float, Device::Cpu));
        assert!(method.compute_mask_on_ones(&small, &small).unwrap().is_none());
        let like = Tensor::zeros([300, 200], (Kind::Bool, Device::Cpu));
        assert!(method.compute_mask_on_ones(&importance, &like).unwrap().is_none());
    }
}
