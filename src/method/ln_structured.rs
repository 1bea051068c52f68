//! [`LnStructured`]: prunes the channels of smallest `Ln` norm.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::checks::{check_floating, structured_counts};
use super::{Amount, Builtin, Norm, PruningMethod, PruningType};
use crate::error::Result;
use crate::kernels::channels::{l1_channel_norms, mask_from_kept, mask_on_ones_from_kept};

/// Prunes the `k` channels (slices along `dim`) with the smallest norm of order `n`.
///
/// The norm of a channel is taken over every other axis. The `nch - k` channels with the
/// largest norms are kept (libtorch `topk`, so ties and NaN norms resolve as in PyTorch).
/// Channels are counted along `dim`; a negative `dim` counts from the end. As in PyTorch,
/// `n = "fro"` ([`Norm::Fro`]) fails on a tensor of 4 or more dimensions, even when nothing is
/// pruned ([`PruneError::UnsupportedNorm`](crate::PruneError::UnsupportedNorm)).
///
/// ```
/// use tch::Tensor;
/// use tch_prune::{LnStructured, PruningMethod};
///
/// let w = Tensor::from_slice(&[1.0f32, 1.0, 5.0, 5.0, 2.0, 2.0]).reshape([3, 2]);
/// let mask = LnStructured::new(1, 2, 0)?.compute_mask(&w, &w.ones_like())?;
/// assert_eq!(Vec::<f32>::try_from(&mask.reshape([-1]))?, vec![0., 0., 1., 1., 1., 1.]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: `torch.nn.utils.prune.LnStructured(amount, n, dim)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LnStructured {
    #[serde(deserialize_with = "super::deserialize_valid_amount")]
    amount: Amount,
    n: Norm,
    dim: i64,
}

impl LnStructured {
    /// Creates the method. `dim` is checked against the tensor when the mask is computed (as in
    /// PyTorch, the same method can prune tensors of different ranks).
    ///
    /// # Errors
    /// [`PruneError::NegativeCount`](crate::PruneError::NegativeCount),
    /// [`PruneError::FractionOutOfRange`](crate::PruneError::FractionOutOfRange) or
    /// [`PruneError::InvalidNorm`](crate::PruneError::InvalidNorm).
    ///
    /// ```
    /// use tch_prune::{LnStructured, Norm};
    /// let m = LnStructured::new(0.3, 2, 0)?;
    /// assert_eq!(m.n(), Norm::P(2.0));
    /// assert!(LnStructured::new(0.3, f64::NAN, 0).is_err());
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn new(amount: impl Into<Amount>, n: impl Into<Norm>, dim: i64) -> Result<Self> {
        Ok(Self { amount: amount.into().validate()?, n: n.into().validate()?, dim })
    }

    /// How much the method prunes.
    pub fn amount(&self) -> Amount {
        self.amount
    }

    /// The norm order.
    pub fn n(&self) -> Norm {
        self.n
    }

    /// The dimension whose slices are pruned.
    pub fn dim(&self) -> i64 {
        self.dim
    }
}

impl LnStructured {
    /// What `compute_mask` checks and ranks: the normalised `dim` and the channels to keep, or
    /// `None` when nothing is pruned (`k == 0`).
    fn kept_channels(
        &self,
        importance: &Tensor,
        default: &Tensor,
    ) -> Result<Option<(i64, Tensor)>> {
        let (dim, channels, k) = structured_counts(importance, default, self.dim, self.amount)?;
        // PyTorch computes the norms before looking at k, so integer tensors, and "fro" on 4 or
        // more dimensions, fail even when nothing is pruned.
        check_floating("importance", importance)?;
        self.n.check_rank(importance)?;
        if k == 0 {
            return Ok(None);
        }
        // The L1 norm in one pass over the tensor (libtorch reads it along `dim` entry by entry
        // when `dim` is not the last axis), bit-identical; other orders through libtorch.
        let norms = match self.n {
            Norm::P(1.0) => l1_channel_norms(importance, dim)?,
            _ => None,
        };
        let norms = match norms {
            Some(norms) => norms,
            None => self.n.channel_norms(importance, dim)?,
        };
        let (_, keep) = norms.f_topk(channels - k, 0, true, true)?;
        Ok(Some((dim, keep)))
    }
}

impl PruningMethod for LnStructured {
    /// With `k == 0` the result is `default_mask` itself; otherwise a new mask of the
    /// importance tensor's kind: ones on the kept channels, times `default_mask`.
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

impl LnStructured {
    /// The mask `compute_mask(importance, &like.ones_like())` gives, when it can be computed
    /// without building the ones; `None` otherwise.
    fn mask_on_ones(&self, importance: &Tensor, like: &Tensor) -> Result<Option<Tensor>> {
        mask_on_ones_from_kept(importance, like, || self.kept_channels(importance, like))
    }
}
