//! Global pruning for a [`HardMask`]: the same selection as
//! [`PrunedModel::global_unstructured`](crate::PrunedModel::global_unstructured) (one shared
//! implementation, `crate::global::global_masks`), with the masks multiplied in place.

use tch::Tensor;

use super::prune::{checked_mask, PendingMask};
use super::HardMask;
use crate::error::Result;
use crate::global::{check_global_arguments, global_masks, scores_for, GlobalParam};
use crate::method::{check_writable, PruningMethod};

impl HardMask {
    /// Prunes the listed variables together: `method` (unstructured) ranks the entries of all
    /// of them as one vector, so a fraction is a fraction of **all** still-unpruned entries and
    /// each variable ends up with its own sparsity. Same selection as
    /// [`PrunedModel::global_unstructured`](crate::PrunedModel::global_unstructured), masks
    /// multiplied in place.
    ///
    /// `importance_scores` pairs variable names with score tensors of the variable's shape;
    /// variables without scores are ranked by their current (masked) value. Scores for names
    /// that are not listed are ignored, as in PyTorch, so one set of scores serves any subset.
    ///
    /// # Errors
    /// [`PruneError::EmptyParameterList`], [`PruneError::DuplicateParameter`],
    /// [`PruneError::UnknownParameter`] (a listed name that is not a variable),
    /// [`PruneError::WrongPruningType`] for a structured or global method,
    /// [`PruneError::InternalOverlap`] for a variable that cannot be written in place,
    /// [`PruneError::ShapeMismatch`], [`PruneError::NonBinaryMask`],
    /// [`PruneError::UnsupportedLayout`] (a sparse or MKL-DNN variable or scores), and the
    /// method's own (e.g. [`PruneError::AmountTooLarge`]). Nothing changes on error, for any
    /// variable.
    ///
    /// [`PruneError::EmptyParameterList`]: crate::PruneError::EmptyParameterList
    /// [`PruneError::DuplicateParameter`]: crate::PruneError::DuplicateParameter
    /// [`PruneError::UnknownParameter`]: crate::PruneError::UnknownParameter
    /// [`PruneError::WrongPruningType`]: crate::PruneError::WrongPruningType
    /// [`PruneError::ShapeMismatch`]: crate::PruneError::ShapeMismatch
    /// [`PruneError::NonBinaryMask`]: crate::PruneError::NonBinaryMask
    /// [`PruneError::AmountTooLarge`]: crate::PruneError::AmountTooLarge
    /// [`PruneError::UnsupportedLayout`]: crate::PruneError::UnsupportedLayout
    /// [`PruneError::InternalOverlap`]: crate::PruneError::InternalOverlap
    ///
    /// ```
    /// use tch::nn::{self, Module};
    /// use tch::{Device, Kind, Tensor};
    /// use tch_prune::{HardMask, L1Unstructured};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let net = nn::seq()
    ///     .add(nn::linear(vs.root() / "0", 16, 16, Default::default()))
    ///     .add_fn(|x| x.relu())
    ///     .add(nn::linear(vs.root() / "2", 16, 4, Default::default()));
    /// let mut masks = HardMask::new(&vs);
    /// masks.global_unstructured(&["0.weight", "2.weight"], L1Unstructured::new(0.5)?, &[])?;
    /// assert_eq!(masks.overall_sparsity()?, 0.5); // 160 of the 320 weights, wherever they are
    /// # let _ = net.forward(&Tensor::zeros([1, 16], (Kind::Float, Device::Cpu)));
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.global_unstructured(parameters, pruning_method, **kwargs)`
    /// followed by `prune.remove` on each, keeping the masks to re-apply them.
    pub fn global_unstructured(
        &mut self,
        names: &[&str],
        method: impl PruningMethod,
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<()> {
        check_global_arguments(names, &method)?;
        let mut params = Vec::with_capacity(names.len());
        let mut global = Vec::with_capacity(names.len());
        for name in names {
            let param = self.param(name)?;
            // Every variable is checked before any is written (`commit`).
            check_writable(name, &param)?;
            let mask = self.mask(name).map(Tensor::shallow_clone);
            global.push(GlobalParam {
                values: param.f_detach()?,
                mask,
                scores: scores_for(name, importance_scores),
            });
            params.push(param);
        }
        let new_masks = tch::no_grad(|| global_masks(&global, &method))?;
        drop(global);

        let mut pending = Vec::with_capacity(names.len());
        for ((name, param), mask) in names.iter().zip(params).zip(new_masks) {
            let mask = checked_mask(name, &param, mask, &[&param])?;
            pending.push(PendingMask { name: name.to_string(), param, mask });
        }
        self.commit(pending)
    }
}
