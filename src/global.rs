//! Global pruning: one selection across several parameters.

use tch::Tensor;

use crate::error::{PruneError, Result};
use crate::kernels::select::{global_fast_path_applies, select_global_smallest, GlobalPart};
use crate::method::{
    check_layout, check_same_shape, compact, contiguous_copy, CustomFromMask, PruningMethod,
    PruningType,
};
use crate::model::PrunedModel;
use crate::prunable::Prunable;
use crate::reparam::effective;

impl<M: Prunable> PrunedModel<M> {
    /// Global pruning (see [`Pruner::global_unstructured`](crate::Pruner::global_unstructured)).
    pub(crate) fn global_unstructured_impl(
        &mut self,
        names: &[&str],
        method: &dyn PruningMethod,
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<()> {
        check_global_arguments(names, method)?;
        // The parameters pruned for the first time, checked with one walk over the slots.
        let unpruned: Vec<&str> =
            names.iter().copied().filter(|name| self.position(name).is_none()).collect();
        let mut fresh = self.unpruned_params(&unpruned)?.into_iter();
        let mut firsts = Vec::with_capacity(names.len());
        let mut params = Vec::with_capacity(names.len());
        for name in names {
            let (values, mask, first) =
                match (self.orig(name), self.record(name).map(|rec| &rec.mask)) {
                    (Some(orig), Some(mask)) => {
                        (orig.f_detach()?, Some(mask.shallow_clone()), None)
                    }
                    _ => {
                        let param = match fresh.next() {
                            Some(param) => param,
                            None => self.unpruned_param(name)?,
                        };
                        (param.f_detach()?, None, Some(param))
                    }
                };
            params.push(GlobalParam { values, mask, scores: scores_for(name, importance_scores) });
            firsts.push(first);
        }
        let finals = global_masks(&params, method)?;
        drop(params);

        // Prepare every parameter's step before applying any, so an error changes nothing.
        let mut pending = Vec::with_capacity(names.len());
        for ((name, mask), first) in names.iter().zip(finals).zip(&firsts) {
            // The history keeps the mask compacted (bool when binary), as its own tensor.
            let mut kept = compact(mask.shallow_clone())?;
            if kept.data_ptr() == mask.data_ptr() {
                kept = contiguous_copy(&kept)?;
            }
            let method = CustomFromMask::new(kept);
            pending.push(self.prepare_with_mask(name, method, mask, first.as_ref())?);
        }
        self.commit(pending);
        Ok(())
    }
}

/// One parameter of a global selection.
pub(crate) struct GlobalParam<'a> {
    /// The parameter's stored values, detached: `orig` for a reparametrized parameter, the
    /// variable itself otherwise (a hard-masked variable already holds `value * mask`).
    pub(crate) values: Tensor,
    /// Its current mask; `None` for a parameter never pruned (a mask of ones).
    pub(crate) mask: Option<Tensor>,
    /// Importance scores of its shape, ranking it instead of its current value.
    pub(crate) scores: Option<&'a Tensor>,
}

/// The argument checks of global pruning, done before anything is computed.
/// Scores for names that are not listed are not looked at (PyTorch ignores them too).
pub(crate) fn check_global_arguments(names: &[&str], method: &dyn PruningMethod) -> Result<()> {
    if names.is_empty() {
        return Err(PruneError::EmptyParameterList);
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(PruneError::DuplicateParameter { name: name.to_string() });
        }
    }
    let found = method.pruning_type();
    if found != PruningType::Unstructured {
        return Err(PruneError::WrongPruningType { operation: "global_unstructured", found });
    }
    Ok(())
}

/// The scores given for `name`, if any.
pub(crate) fn scores_for<'a>(
    name: &str,
    importance_scores: &[(&str, &'a Tensor)],
) -> Option<&'a Tensor> {
    importance_scores.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// PyTorch's global step for every parameter: its current mask, in the scores' kind, with the
/// entries `method` selects across all parameters zeroed. Magnitude methods on CPU `f32`
/// tensors select with per-tensor histograms (`crate::kernels::select`), reading the tensors in place
/// (where tied scores straddle the threshold, a replay of `topk` on PyTorch's concatenation
/// decides);
/// anything else runs PyTorch's algorithm on the concatenated tensors.
pub(crate) fn global_masks(
    params: &[GlobalParam<'_>],
    method: &dyn PruningMethod,
) -> Result<Vec<Tensor>> {
    for p in params {
        if let Some(scores) = p.scores {
            check_layout("importance_scores", scores)?;
            check_same_shape("importance_scores", &p.values.size(), scores)?;
        }
    }
    if let Some((amount, ties)) = method.magnitude_amount().map(|a| a.into_inner()) {
        // Where the mask is 1, `orig * mask` is `orig` bit for bit, and only those entries
        // compete: the stored values can be ranked directly.
        let parts = params
            .iter()
            .map(|p| {
                // `values` is detached already; the caller's scores may not be.
                let scores = match p.scores {
                    Some(scores) => scores.f_detach()?,
                    None => p.values.shallow_clone(),
                };
                Ok(GlobalPart { scores, mask: p.mask.as_ref().map(Tensor::shallow_clone) })
            })
            .collect::<Result<Vec<_>>>()?;
        if global_fast_path_applies(&parts) {
            return select_global_smallest(&parts, amount, ties);
        }
    }
    global_masks_concatenated(params, method)
}

/// PyTorch's algorithm: concatenate the scores and masks of every parameter, run the method
/// through the container's unstructured step, and split the result.
fn global_masks_concatenated(
    params: &[GlobalParam<'_>],
    method: &dyn PruningMethod,
) -> Result<Vec<Tensor>> {
    let mut scores = Vec::with_capacity(params.len());
    let mut masks = Vec::with_capacity(params.len());
    for p in params {
        let (value, mask) = match &p.mask {
            Some(mask) => (tch::no_grad(|| effective(&p.values, mask))?, mask.shallow_clone()),
            None => (p.values.shallow_clone(), p.values.f_ones_like()?),
        };
        let score = match p.scores {
            Some(s) => s.f_detach()?,
            None => value,
        };
        scores.push(score.f_reshape([-1])?);
        masks.push(mask.f_reshape([-1])?);
    }
    let all_scores = Tensor::f_cat(&scores, 0)?;
    let all_masks = Tensor::f_cat(&masks, 0)?;
    drop((scores, masks));
    let final_mask =
        tch::no_grad(|| crate::container::combine_masks(method, &all_scores, &all_masks))?;
    let mut finals = Vec::with_capacity(params.len());
    let mut offset = 0;
    for p in params {
        let shape = p.values.size();
        let size: i64 = shape.iter().product();
        // A copy per parameter: no mask keeps the whole vector alive (PyTorch's does,
        // pytorch/pytorch#34257 and #49332).
        let slice = final_mask.f_narrow(0, offset, size)?.f_reshape(shape.as_slice())?;
        finals.push(contiguous_copy(&slice)?);
        offset += size;
    }
    Ok(finals)
}
