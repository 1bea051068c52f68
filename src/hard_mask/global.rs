//! Global pruning for a [`HardMask`]: the same selection as
//! `PrunedModel`'s global pruning (one shared
//! implementation, `crate::global::global_masks`), with the masks multiplied in place.

use tch::Tensor;

use super::prune::{checked_mask, PendingMask};
use super::HardMask;
use crate::error::Result;
use crate::global::{check_global_arguments, global_masks, scores_for, GlobalParam};
use crate::method::{check_writable, PruningMethod};

impl HardMask {
    /// Global pruning (see [`Pruner::global_unstructured`](crate::Pruner::global_unstructured)).
    pub(super) fn global_unstructured_impl(
        &mut self,
        names: &[&str],
        method: &dyn PruningMethod,
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<()> {
        check_global_arguments(names, method)?;
        let mut params = Vec::with_capacity(names.len());
        let mut global = Vec::with_capacity(names.len());
        for name in names {
            let param = self.param(name)?;
            // Every variable is checked before any is written (`commit`).
            check_writable(name, &param)?;
            let mask = self.entry(name).map(|e| e.mask.shallow_clone());
            global.push(GlobalParam {
                values: param.f_detach()?,
                mask,
                scores: scores_for(name, importance_scores),
            });
            params.push(param);
        }
        let new_masks = tch::no_grad(|| global_masks(&global, method))?;
        drop(global);

        let mut pending = Vec::with_capacity(names.len());
        for ((name, param), mask) in names.iter().zip(params).zip(new_masks) {
            let mask = checked_mask(name, &param, mask, &[&param])?;
            pending.push(PendingMask { name: name.to_string(), param, mask });
        }
        self.commit(pending)
    }
}
