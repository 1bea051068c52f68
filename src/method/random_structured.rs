//! [`RandomStructured`]: prunes channels chosen uniformly at random.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::checks::{check_same_shape, check_structured, normalize_dim, true_positions};
use super::{Amount, PruningMethod, PruningType};
use crate::error::Result;

/// Prunes `k` channels (slices along `dim`) chosen uniformly at random.
///
/// The draws are PyTorch's: `nch` float32 values from the **CPU** generator (whatever the
/// tensor's device), and the channels whose draw is at or below the `k`-th smallest are
/// pruned. After `tch::manual_seed(s)` the mask equals PyTorch's after `torch.manual_seed(s)`.
/// With `k == 0` no random numbers are drawn.
///
/// ```
/// use tch::{Device, Kind, Tensor};
/// use tch_prune::{PruningMethod, RandomStructured};
///
/// let w = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
/// let mask = RandomStructured::new(0.5, 0)?.compute_mask(&w, &w.ones_like())?;
/// // Two whole rows are zero.
/// let zero_rows = mask.sum_dim_intlist(1, false, Kind::Float).eq(0.).sum(Kind::Int64);
/// assert_eq!(zero_rows.int64_value(&[]), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: `torch.nn.utils.prune.RandomStructured(amount, dim)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomStructured {
    #[serde(deserialize_with = "super::deserialize_valid_amount")]
    amount: Amount,
    dim: i64,
}

impl RandomStructured {
    /// Creates the method. PyTorch's class defaults `dim` to -1; pass `-1` for that.
    ///
    /// # Errors
    /// [`PruneError::NegativeCount`](crate::PruneError::NegativeCount) or
    /// [`PruneError::FractionOutOfRange`](crate::PruneError::FractionOutOfRange).
    ///
    /// ```
    /// use tch_prune::RandomStructured;
    /// assert_eq!(RandomStructured::new(2, -1)?.dim(), -1);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn new(amount: impl Into<Amount>, dim: i64) -> Result<Self> {
        Ok(Self { amount: amount.into().validate()?, dim })
    }

    /// How much the method prunes.
    pub fn amount(&self) -> Amount {
        self.amount
    }

    /// The dimension whose slices are pruned.
    pub fn dim(&self) -> i64 {
        self.dim
    }
}

impl PruningMethod for RandomStructured {
    /// With `k == 0` the result is `default_mask` itself; otherwise a new mask of the
    /// importance tensor's kind: ones on the surviving channels, times `default_mask`.
    fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        check_same_shape("default_mask", &importance.size(), default_mask)?;
        check_structured(importance)?;
        let dim = normalize_dim(self.dim, importance.dim() as i64)?;
        let channels = importance.size()[dim as usize];
        let k = self.amount.count_for(channels)?;
        if k == 0 {
            return Ok(default_mask.shallow_clone());
        }
        // PyTorch: `torch.rand(nch)` (CPU, float32), `kthvalue`, then `prob > threshold`.
        let draws = Tensor::f_rand([channels], (Kind::Float, Device::Cpu))?;
        let (threshold, _) = draws.f_kthvalue(k, 0, false)?;
        let keep =
            true_positions(&draws.f_gt_tensor(&threshold)?)?.f_to_device(importance.device())?;
        let mut mask = importance.f_zeros_like()?;
        _ = mask.f_index_fill_(dim, &keep, 1)?;
        _ = mask.f_mul_(&default_mask.f_to_kind(mask.kind())?)?;
        Ok(mask)
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Structured { dim: self.dim }
    }
}
