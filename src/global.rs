//! Global pruning: one selection across several parameters.

use tch::{Kind, Tensor};

use crate::error::{PruneError, Result};
use crate::method::{
    check_same_shape, contiguous_copy, CustomFromMask, PruningMethod, PruningType,
};
use crate::model::PrunedModel;
use crate::prunable::Prunable;
use crate::select::{global_fast_path_applies, select_global_smallest, GlobalPart};

impl<M: Prunable> PrunedModel<M> {
    /// Prunes the listed parameters together: `method` (unstructured) ranks the entries of all
    /// of them as one vector, so a fraction is a fraction of **all** still-unpruned entries and
    /// each parameter ends up with its own sparsity.
    ///
    /// `importance_scores` pairs parameter names with score tensors of the parameter's shape;
    /// parameters without scores are ranked by their current value (`orig * mask` when already
    /// pruned). Each parameter records a [`CustomFromMask`] step in its history, as in PyTorch.
    ///
    /// # Errors
    /// [`PruneError::EmptyParameterList`], [`PruneError::DuplicateParameter`],
    /// [`PruneError::WrongPruningType`] for a structured or global method, the errors of
    /// [`apply`](Self::apply) for each parameter, and the method's own (e.g.
    /// [`PruneError::AmountTooLarge`] when a count exceeds the remaining entries). Nothing
    /// changes on error, for any of the parameters.
    ///
    /// ```
    /// use tch::nn;
    /// use tch::{Device, Tensor};
    /// use tch_prune::{prunable, L1Unstructured, PrunedModel};
    ///
    /// #[derive(Debug)]
    /// struct TwoLayers { m: nn::Linear, n: nn::Linear }
    /// prunable!(TwoLayers { m, n });
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut net = TwoLayers {
    ///     m: nn::linear(vs.root() / "m", 4, 2, Default::default()),
    ///     n: nn::linear(vs.root() / "n", 3, 1, Default::default()),
    /// };
    /// tch::no_grad(|| {
    ///     net.m.ws.copy_(&Tensor::from_slice(&[1.0f32, 2., 3., 4., -4., -3., -2., -1.]).reshape([2, 4]));
    ///     net.n.ws.copy_(&Tensor::from_slice(&[0.0f32, 0.1, -2.]).reshape([1, 3]));
    /// });
    /// let mut model = PrunedModel::new(net, &vs);
    /// model.global_unstructured(&["m.weight", "n.weight"], L1Unstructured::new(4)?, &[])?;
    /// model.refresh()?;
    /// let n = Vec::<f32>::try_from(&model.model().n.ws.reshape([-1]))?;
    /// assert_eq!(n, vec![0.0, 0.0, -2.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.global_unstructured(parameters, pruning_method,
    /// importance_scores=None, **kwargs)`; the method is passed built (`L1Unstructured::new(0.2)?`)
    /// rather than as a class plus keyword arguments.
    pub fn global_unstructured(
        &mut self,
        names: &[&str],
        method: impl PruningMethod,
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<()> {
        if names.is_empty() {
            return Err(PruneError::EmptyParameterList);
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(PruneError::DuplicateParameter { name: name.to_string() });
            }
        }
        for (name, _) in importance_scores {
            if !names.contains(name) {
                return Err(PruneError::UnknownParameter { name: name.to_string() });
            }
        }
        let found = method.pruning_type();
        if found != PruningType::Unstructured {
            return Err(PruneError::WrongPruningType { operation: "global_unstructured", found });
        }

        let finals = match method.magnitude_amount() {
            Some(amount) => match self.global_parts(names, importance_scores)? {
                Some(parts) if global_fast_path_applies(&parts) => {
                    select_global_smallest(&parts, amount)?
                }
                _ => self.global_masks_concatenated(names, &method, importance_scores)?,
            },
            None => self.global_masks_concatenated(names, &method, importance_scores)?,
        };

        // Prepare every parameter's step before applying any, so an error changes nothing.
        let mut pending = Vec::with_capacity(names.len());
        for (name, mask) in names.iter().zip(finals) {
            let mask = compact(mask)?;
            pending.push(self.prepare(name, Box::new(CustomFromMask::new(mask)), None)?);
        }
        for step in pending {
            self.commit(step);
        }
        Ok(())
    }

    /// Scores and availability per parameter for the radix path; `None` when a parameter's
    /// scores are not a CPU `f32` tensor.
    fn global_parts(
        &mut self,
        names: &[&str],
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<Option<Vec<GlobalPart>>> {
        let mut parts = Vec::with_capacity(names.len());
        for name in names {
            let given = importance_scores.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
            let (scores, available) = match (self.orig(name), self.mask(name)) {
                // Where the mask is 1, `orig * mask` is `orig` bit for bit, and only those
                // entries compete: the pruned value need not be formed.
                (Some(orig), Some(mask)) => {
                    let scores = given.unwrap_or(orig).f_detach()?;
                    check_same_shape("importance_scores", &orig.size(), &scores)?;
                    (scores, Some(mask.shallow_clone()))
                }
                _ => {
                    let param = self.unpruned_param(name)?;
                    let scores = given.unwrap_or(&param).f_detach()?;
                    check_same_shape("importance_scores", &param.size(), &scores)?;
                    (scores, None)
                }
            };
            parts.push(GlobalPart { scores, mask: available });
        }
        Ok(Some(parts))
    }

    /// PyTorch's algorithm: concatenate the scores and masks of every parameter, run the
    /// method through the container's unstructured step, and split the result.
    fn global_masks_concatenated(
        &mut self,
        names: &[&str],
        method: &dyn PruningMethod,
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<Vec<Tensor>> {
        let mut scores = Vec::with_capacity(names.len());
        let mut masks = Vec::with_capacity(names.len());
        let mut shapes = Vec::with_capacity(names.len());
        for name in names {
            let (value, mask) = self.current(name)?;
            let score = match importance_scores.iter().find(|(n, _)| n == name) {
                Some((_, s)) => {
                    check_same_shape("importance_scores", &value.size(), s)?;
                    s.f_detach()?
                }
                None => value.shallow_clone(),
            };
            let mask = match mask {
                Some(mask) => mask,
                None => value.f_ones_like()?,
            };
            shapes.push(value.size());
            scores.push(score.f_reshape([-1])?);
            masks.push(mask.f_reshape([-1])?);
        }
        let all_scores = Tensor::f_cat(&scores, 0)?;
        let all_masks = Tensor::f_cat(&masks, 0)?;
        drop((scores, masks));
        let final_mask =
            tch::no_grad(|| crate::container::combine_masks(method, &all_scores, &all_masks))?;
        let mut finals = Vec::with_capacity(names.len());
        let mut offset = 0;
        for shape in shapes {
            let size: i64 = shape.iter().product();
            // A copy per parameter: no mask keeps the whole vector alive (PyTorch's does,
            // issues #34257 / #49332).
            let slice = final_mask.f_narrow(0, offset, size)?.f_reshape(shape.as_slice())?;
            finals.push(contiguous_copy(&slice)?);
            offset += size;
        }
        Ok(finals)
    }
}

/// The mask a [`CustomFromMask`] history entry keeps: `bool` (1 byte an entry) when the mask is
/// binary, which gives the same result (`mask.to(kind)`), else the mask as it is.
fn compact(mask: Tensor) -> Result<Tensor> {
    let binary = mask.f_eq(0)?.f_logical_or(&mask.f_eq(1)?)?.f_all()?.int64_value(&[]) != 0;
    if binary {
        Ok(mask.f_to_kind(Kind::Bool)?)
    } else {
        Ok(mask)
    }
}
