//! [`RandomStructured`]: prunes channels chosen uniformly at random.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::checks::structured_counts;
use super::{Amount, Builtin, PruningMethod, PruningType};
use crate::error::Result;
use crate::kernels::channels::{mask_from_kept, mask_on_ones_from_kept};
use crate::kernels::true_positions;

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

impl RandomStructured {
    /// What `compute_mask` checks and draws: the normalised `dim` and the channels to keep, or
    /// `None` when nothing is pruned (`k == 0`, no draws).
    fn kept_channels(
        &self,
        importance: &Tensor,
        default: &Tensor,
    ) -> Result<Option<(i64, Tensor)>> {
        let (dim, channels, k) = structured_counts(importance, default, self.dim, self.amount)?;
        if k == 0 {
            return Ok(None);
        }
        // PyTorch: `torch.rand(nch)` (CPU, float32), `kthvalue`, then `prob > threshold`.
        let draws = Tensor::f_rand([channels], (Kind::Float, Device::Cpu))?;
        let (threshold, _) = draws.f_kthvalue(k, 0, false)?;
        let keep =
            true_positions(&draws.f_gt_tensor(&threshold)?)?.f_to_device(importance.device())?;
        Ok(Some((dim, keep)))
    }
}

impl PruningMethod for RandomStructured {
    /// With `k == 0` the result is `default_mask` itself; otherwise a new mask of the
    /// importance tensor's kind: ones on the surviving channels, times `default_mask`.
    fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        mask_from_kept(importance, default_mask, self.kept_channels(importance, default_mask)?)
    }

    /// The mask without the ones (times ones changes nothing); `None` with `k == 0`, where the
    /// result is the ones themselves.
    fn compute_mask_on_ones(
        &self,
        importance: &Tensor,
        like: &Tensor,
    ) -> Result<Option<Builtin<Tensor>>> {
        Ok(self.mask_on_ones(importance, like)?.map(Builtin))
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Structured { dim: self.dim }
    }
}

impl RandomStructured {
    /// The mask `compute_mask(importance, &like.ones_like())` gives, when it can be computed
    /// without building the ones; `None` otherwise.
    fn mask_on_ones(&self, importance: &Tensor, like: &Tensor) -> Result<Option<Tensor>> {
        mask_on_ones_from_kept(importance, like, || self.kept_channels(importance, like))
    }
}
