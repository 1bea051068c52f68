//! [`RandomUnstructured`]: prunes entries chosen uniformly at random.

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::checks::{check_dense, check_floating, check_same_shape, contiguous_copy};
use super::{Amount, Builtin, PruningMethod, PruningType};
use crate::error::Result;
use crate::kernels::select::{
    fast_path_applies, prune_mask, random_mask, zero_by_topk, MaskDefault, Order,
};
use crate::tie_break::TieBreak;

/// Prunes `k` entries chosen uniformly at random.
///
/// **Draws.** The draws are PyTorch's at every size: one `rand_like(importance)` on the
/// importance tensor's device and kind, then the `k` largest draws are pruned (`topk`'s choice
/// where draws tie at the threshold), so after `tch::manual_seed(s)` the mask equals the one
/// PyTorch gives after `torch.manual_seed(s)`. On large CPU tensors the `k` largest draws are
/// found in linear time rather than by `topk`'s sort, with the same result. With `k == 0` no
/// random numbers are drawn. [`with_hashed_draws`](Self::with_hashed_draws) trades PyTorch's
/// masks for speed on large CPU tensors.
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
    /// Whether large CPU tensors select by hashed keys instead of `rand_like` (older records'
    /// `pytorch_draws`, which is now the default, is ignored).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    hashed_draws: bool,
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
        Ok(Self { amount: amount.into().validate()?, hashed_draws: false })
    }

    /// The same method without PyTorch's draws on CPU tensors of 32768 entries or more: no
    /// `rand_like` (libtorch fills it on one thread, about 7 ns an entry, more than the rest of
    /// a pruning step), but three seeds drawn from libtorch's CPU generator and a key hashed
    /// from each entry's index; the `k` smallest keys are pruned. The masks are uniform, exactly
    /// `k` entries, and reproducible after `tch::manual_seed`, but **not** the masks PyTorch
    /// draws after the same `torch.manual_seed`, and the generator advances by three draws
    /// instead of one per entry. Smaller tensors and other devices keep PyTorch's draws. The
    /// choice survives serde, and model-level and global pruning follow it.
    ///
    /// ```
    /// use tch::{Device, Kind, Tensor};
    /// use tch_prune::{PruningMethod, RandomUnstructured};
    ///
    /// let w = Tensor::ones([256, 256], (Kind::Float, Device::Cpu));
    /// let method = RandomUnstructured::new(0.25)?.with_hashed_draws();
    /// tch::manual_seed(3);
    /// let mask = method.compute_mask(&w, &w.ones_like())?;
    /// assert_eq!(mask.eq(0.0).sum(Kind::Int64).int64_value(&[]), 16384);
    /// tch::manual_seed(3);
    /// assert!(mask.equal(&method.compute_mask(&w, &w.ones_like())?)); // reproducible
    /// // PyTorch's mask (`rand_like`, then the k largest draws) is another one.
    /// tch::manual_seed(3);
    /// let pytorch = RandomUnstructured::new(0.25)?.compute_mask(&w, &w.ones_like())?;
    /// assert!(!mask.equal(&pytorch));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// PyTorch equivalent: none (PyTorch always draws `rand_like`).
    pub fn with_hashed_draws(self) -> Self {
        Self { hashed_draws: true, ..self }
    }

    /// How much the method prunes.
    pub fn amount(&self) -> Amount {
        self.amount
    }

    /// Whether the method was built [`with_hashed_draws`](Self::with_hashed_draws).
    ///
    /// ```
    /// use tch_prune::RandomUnstructured;
    /// assert!(!RandomUnstructured::new(0.5)?.uses_hashed_draws());
    /// assert!(RandomUnstructured::new(0.5)?.with_hashed_draws().uses_hashed_draws());
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn uses_hashed_draws(&self) -> bool {
        self.hashed_draws
    }

    /// With hashed draws, the hashed selection of `src/select/random.rs` for a large CPU
    /// tensor; `None` where PyTorch's draws are used (nothing drawn then).
    fn hashed(
        &self,
        importance: &Tensor,
        k: i64,
        default: MaskDefault<'_>,
    ) -> Result<Option<Tensor>> {
        if !self.hashed_draws || importance.device() != Device::Cpu {
            return Ok(None);
        }
        random_mask(&importance.size(), k, default)
    }
}

/// `mask` (a fresh contiguous copy of the default mask) with the `k` largest `draws` zeroed,
/// by libtorch's `topk`, as PyTorch.
fn prune_largest_draws(draws: &Tensor, k: i64, mask: Tensor) -> Result<Tensor> {
    zero_by_topk(draws, k, true, mask)
}

impl PruningMethod for RandomUnstructured {
    /// The mask is a copy of `default_mask` (same kind) with `k` random entries set to zero.
    fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        check_dense(importance, default_mask)?;
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
        // The `k` largest draws are pruned: one selection pass for large CPU tensors (`topk`'s
        // set, straddling ties by the replay of `topk`'s selection), libtorch's `topk` otherwise. The copy of the default mask is only made on the `topk` path (the fast path
        // writes its own).
        if let Some(mask) = prune_mask(&draws, k, Order::LargestValue, default, TieBreak::PyTorch)?
        {
            return Ok(mask);
        }
        prune_largest_draws(&draws, k, contiguous_copy(default_mask)?)
    }

    /// The mask without building the ones (they are only ever copied into it), where a fast
    /// path applies; the draws are the same as `compute_mask`'s either way.
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
}

impl RandomUnstructured {
    /// The mask `compute_mask(importance, &like.ones_like())` gives, when it can be computed
    /// without building the ones; `None` otherwise.
    fn mask_on_ones(&self, importance: &Tensor, like: &Tensor) -> Result<Option<Tensor>> {
        check_dense(importance, like)?;
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
        match prune_mask(&draws, k, Order::LargestValue, ones, TieBreak::PyTorch)? {
            Some(mask) => Ok(Some(mask)),
            None => prune_largest_draws(&draws, k, like.f_ones_like()?.f_contiguous()?).map(Some),
        }
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
        let plain = RandomUnstructured::new(0.3).unwrap();
        for method in [plain, plain.with_hashed_draws()] {
            for kind in [Kind::Float, Kind::Int64] {
                let like = Tensor::zeros([300, 200], (kind, Device::Cpu));
                // The only unit test that draws from the global generator.
                tch::manual_seed(7);
                let ours =
                    method.compute_mask_on_ones(&importance, &like).unwrap().unwrap().into_inner();
                tch::manual_seed(7);
                let expected = method.compute_mask(&importance, &like.ones_like()).unwrap();
                assert_eq!(ours.kind(), kind);
                assert!(ours.equal(&expected), "{method:?} {kind:?}");
            }
        }
        let zero = RandomUnstructured::new(0).unwrap();
        assert!(zero.compute_mask_on_ones(&importance, &importance).unwrap().is_none());
    }

    /// The draw choice survives serde; records without it mean PyTorch's draws, and older
    /// records asking for them (`pytorch_draws`, the default now) are still read.
    #[test]
    fn hashed_draws_round_trip_through_serde() {
        let plain = RandomUnstructured::new(0.3).unwrap();
        let hashed = plain.with_hashed_draws();
        let json = serde_json::to_string(&hashed).unwrap();
        assert_eq!(json, r#"{"amount":0.3,"hashed_draws":true}"#);
        assert_eq!(serde_json::from_str::<RandomUnstructured>(&json).unwrap(), hashed);
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(json, r#"{"amount":0.3}"#);
        assert_eq!(serde_json::from_str::<RandomUnstructured>(&json).unwrap(), plain);
        assert_ne!(plain, hashed);
        let old = r#"{"amount":0.3,"pytorch_draws":true}"#;
        assert_eq!(serde_json::from_str::<RandomUnstructured>(old).unwrap(), plain);
    }
}
