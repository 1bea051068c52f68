//! [`Identity`]: prunes nothing.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::checks::check_layout;
use super::{PruningMethod, PruningType};
use crate::error::Result;

/// Prunes nothing: the mask is `default_mask` unchanged. Useful to set up the
/// `<name>_orig` / `<name>_mask` reparametrization without pruning (for example before loading
/// a pruned checkpoint).
///
/// ```
/// use tch::Tensor;
/// use tch_prune::{Identity, PruningMethod};
///
/// let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
/// let mask = Identity.compute_mask(&t, &t.ones_like())?;
/// assert_eq!(Vec::<f32>::try_from(&mask)?, vec![1.0, 1.0, 1.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: `torch.nn.utils.prune.Identity()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity;

impl PruningMethod for Identity {
    /// Returns `default_mask` itself (a shallow clone sharing its storage), as PyTorch does.
    fn compute_mask(&self, _importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        check_layout("default_mask", default_mask)?;
        Ok(default_mask.shallow_clone())
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Unstructured
    }
}
