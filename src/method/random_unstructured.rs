//! [`RandomUnstructured`]: prunes entries chosen uniformly at random.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::checks::{check_floating, check_same_shape, contiguous_copy};
use super::{Amount, PruningMethod, PruningType};
use crate::error::Result;
use crate::select::{fast_path_applies, prune_mask, MaskDefault, Order};

/// Prunes `k` entries chosen uniformly at random.
///
/// The draws are PyTorch's: one `rand_like(importance)` on the importance tensor's device and
/// kind, then the `k` largest draws are pruned. After `tch::manual_seed(s)` the mask equals the
/// one PyTorch gives after `torch.manual_seed(s)`. With `k == 0` no random numbers are drawn.
///
/// ```
/// use tch::Tensor;
/// use tch_prune::{PruningMethod, RandomUnstructured};
///
/// tch::manual_seed(0);
/// let w = Tensor::ones([4, 5], (tch::Kind::Float, tch::Device::Cpu));
/// let mask = RandomUnstructured::new(0.3)?.compute_mask(&w, &w.ones_like())?;
/// assert_eq!(mask.sum(tch::Kind::Float).double_value(&[]), 14.0); // round(0.3 * 20) = 6 pruned
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: `torch.nn.utils.prune.RandomUnstructured(amount)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomUnstructured {
    #[serde(deserialize_with = "super::deserialize_valid_amount")]
    amount: Amount,
}

impl RandomUnstructured {
    /// Creates the method; an integer amount is a count, a float a fraction.
    ///
    /// # Errors
    /// [`PruneError::NegativeCount`](crate::PruneError::NegativeCount) or
    /// [`PruneError::FractionOutOfRange`](crate::PruneError::FractionOutOfRange).
    ///
    /// ```
    /// use tch_prune::RandomUnstructured;
    /// assert!(RandomUnstructured::new(1.0).is_ok());
    /// assert!(RandomUnstructured::new(1.5).is_err());
    /// ```
    pub fn new(amount: impl Into<Amount>) -> Result<Self> {
        Ok(Self { amount: amount.into().validate()? })
    }

    /// How much the method prunes.
    pub fn amount(&self) -> Amount {
        self.amount
    }
}

/// `mask` (a fresh contiguous copy of the default mask) with the `k` largest `draws` zeroed,
/// by libtorch's `topk`, as PyTorch.
fn prune_largest_draws(draws: &Tensor, k: i64, mask: Tensor) -> Result<Tensor> {
    let (_, indices) = draws.f_reshape([-1])?.f_topk(k, 0, true, true)?;
    _ = mask.f_view([-1])?.f_index_fill_(0, &indices, 0)?;
    Ok(mask)
}

impl PruningMethod for RandomUnstructured {
    /// The mask is a copy of `default_mask` (same kind) with `k` random entries set to zero.
    fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        check_same_shape("default_mask", &importance.size(), default_mask)?;
        let k = self.amount.count_for(importance.numel() as i64)?;
        if k == 0 {
            return contiguous_copy(default_mask);
        }
        check_floating("importance", importance)?;
        let draws = importance.f_rand_like()?;
        // The `k` largest draws are pruned: one selection pass for large CPU tensors (same set
        // as `topk` unless draws tie at the threshold), libtorch's `topk` otherwise. The copy
        // of the default mask is only made on the `topk` path (the fast path writes its own).
        let default = MaskDefault::Tensor(default_mask);
        if let Some(mask) = prune_mask(&draws, k, Order::LargestValue, default)? {
            return Ok(mask);
        }
        prune_largest_draws(&draws, k, contiguous_copy(default_mask)?)
    }

    /// The fast path without the ones (they are only ever copied into the mask), taken only
    /// where it applies: the draws are made once either way.
    fn compute_mask_on_ones(&self, importance: &Tensor, like: &Tensor) -> Result<Option<Tensor>> {
        check_same_shape("default_mask", &importance.size(), like)?;
        let k = self.amount.count_for(importance.numel() as i64)?;
        let ones = MaskDefault::Ones(like.kind(), like.device());
        if k == 0 || !fast_path_applies(importance, ones) {
            return Ok(None);
        }
        let draws = importance.f_rand_like()?;
        match prune_mask(&draws, k, Order::LargestValue, ones)? {
            Some(mask) => Ok(Some(mask)),
            None => prune_largest_draws(&draws, k, like.f_ones_like()?.f_contiguous()?).map(Some),
        }
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Unstructured
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Without the ones, the same draws and the same mask as `compute_mask` with them.
    #[test]
    fn compute_mask_on_ones_equals_compute_mask() {
        let importance = Tensor::zeros([300, 200], (Kind::Float, Device::Cpu));
        let method = RandomUnstructured::new(0.3).unwrap();
        for kind in [Kind::Float, Kind::Int64] {
            let like = Tensor::zeros([300, 200], (kind, Device::Cpu));
            // The only unit test that draws from the global generator.
            tch::manual_seed(7);
            let ours = method.compute_mask_on_ones(&importance, &like).unwrap().unwrap();
            tch::manual_seed(7);
            let expected = method.compute_mask(&importance, &like.ones_like()).unwrap();
            assert_eq!(ours.kind(), kind);
            assert!(ours.equal(&expected), "{kind:?}");
        }
        let zero = RandomUnstructured::new(0).unwrap();
        assert!(zero.compute_mask_on_ones(&importance, &importance).unwrap().is_none());
    }
}
