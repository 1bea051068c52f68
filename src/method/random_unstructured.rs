//! [`RandomUnstructured`]: prunes entries chosen uniformly at random.

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::checks::{check_floating, check_same_shape, contiguous_copy};
use super::{Amount, PruningMethod, PruningType};
use crate::error::Result;
use crate::select::{fast_path_applies, prune_mask, random_mask, MaskDefault, Order};

/// Prunes `k` entries chosen uniformly at random.
///
/// **Draws.** On tensors of fewer than [`RANDOM_FAST_PATH_MIN_NUMEL`](crate::RANDOM_FAST_PATH_MIN_NUMEL) entries, on other devices
/// than the CPU, and always after [`with_pytorch_draws`](Self::with_pytorch_draws), the draws
/// are PyTorch's: one `rand_like(importance)` on the importance tensor's device and kind, then
/// the `k` largest draws are pruned, so after `tch::manual_seed(s)` the mask equals the one
/// PyTorch gives after `torch.manual_seed(s)`. Larger CPU tensors skip libtorch's
/// single-threaded `rand_like` (about 7 ns an entry): three seeds are drawn from libtorch's CPU
/// generator and each entry's key is a hash of its index (see `src/select/random.rs`). Those
/// masks are just as uniform, exactly `k` entries, and reproducible under `tch::manual_seed`,
/// but not PyTorch's. With `k == 0` no random numbers are drawn.
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
    /// Whether large CPU tensors also draw with `rand_like` (PyTorch's stream).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pytorch_draws: bool,
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
        Ok(Self { amount: amount.into().validate()?, pytorch_draws: false })
    }

    /// The same method drawing PyTorch's random stream at every size: `rand_like` on the
    /// whole tensor, so that seeded masks of large tensors equal PyTorch's too (up to draws
    /// tied at the threshold, where `topk`'s choice is unspecified and the lowest index is
    /// taken here). Slower on large CPU tensors: libtorch draws on one thread.
    ///
    /// ```
    /// use tch::{Device, Kind, Tensor};
    /// use tch_prune::{PruningMethod, RandomUnstructured};
    ///
    /// let w = Tensor::ones([256, 256], (Kind::Float, Device::Cpu));
    /// let method = RandomUnstructured::new(0.25)?.with_pytorch_draws();
    /// tch::manual_seed(3);
    /// let mask = method.compute_mask(&w, &w.ones_like())?;
    /// // What PyTorch does: `rand_like`, then the k largest draws are pruned.
    /// tch::manual_seed(3);
    /// let draws = w.rand_like().reshape([-1]);
    /// let (_, pruned) = draws.topk(16384, 0, true, true);
    /// let expected = w.ones_like();
    /// let _ = expected.view([-1]).index_fill_(0, &pruned, 0);
    /// assert!(mask.equal(&expected));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// PyTorch equivalent: `torch.nn.utils.prune.RandomUnstructured(amount)` (its only draws).
    pub fn with_pytorch_draws(self) -> Self {
        Self { pytorch_draws: true, ..self }
    }

    /// How much the method prunes.
    pub fn amount(&self) -> Amount {
        self.amount
    }

    /// The hashed selection of `src/select/random.rs` for a large CPU tensor, or `None` where
    /// PyTorch's draws are used (nothing drawn then).
    fn hashed(
        &self,
        importance: &Tensor,
        k: i64,
        default: MaskDefault<'_>,
    ) -> Result<Option<Tensor>> {
        if self.pytorch_draws || importance.device() != Device::Cpu {
            return Ok(None);
        }
        random_mask(&importance.size(), k, default)
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
        let default = MaskDefault::Tensor(default_mask);
        if let Some(mask) = self.hashed(importance, k, default)? {
            return Ok(mask);
        }
        let draws = importance.f_rand_like()?;
        // The `k` largest draws are pruned: one selection pass for large CPU tensors (same set
        // as `topk` unless draws tie at the threshold), libtorch's `topk` otherwise. The copy
        // of the default mask is only made on the `topk` path (the fast path writes its own).
        if let Some(mask) = prune_mask(&draws, k, Order::LargestValue, default)? {
            return Ok(mask);
        }
        prune_largest_draws(&draws, k, contiguous_copy(default_mask)?)
    }

    /// The mask without building the ones (they are only ever copied into it), where a fast
    /// path applies; the draws are the same as `compute_mask`'s either way.
    fn compute_mask_on_ones(&self, importance: &Tensor, like: &Tensor) -> Result<Option<Tensor>> {
        check_same_shape("default_mask", &importance.size(), like)?;
        let k = self.amount.count_for(importance.numel() as i64)?;
        if k == 0 {
            return Ok(None);
        }
        check_floating("importance", importance)?;
        let ones = MaskDefault::Ones(like.kind(), like.device());
        if let Some(mask) = self.hashed(importance, k, ones)? {
            return Ok(Some(mask));
        }
        if !fast_path_applies(importance, ones) {
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

    /// The draw choice survives serde; records without it (older ones) mean hashed keys.
    #[test]
    fn pytorch_draws_round_trips_through_serde() {
        let plain = RandomUnstructured::new(0.3).unwrap();
        let pytorch = plain.with_pytorch_draws();
        let json = serde_json::to_string(&pytorch).unwrap();
        assert!(json.contains("pytorch_draws"), "{json}");
        assert_eq!(serde_json::from_str::<RandomUnstructured>(&json).unwrap(), pytorch);
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("pytorch_draws"), "{json}");
        assert_eq!(serde_json::from_str::<RandomUnstructured>(&json).unwrap(), plain);
        assert_ne!(plain, pytorch);
    }
}
