//! One pruning step of a [`PrunedModel`] in two phases: `prepare` checks and computes
//! everything and can fail without changing anything; `commit` applies prepared steps and
//! cannot fail. Every public operation (one parameter, global pruning, schedules, recipes) is
//! a sequence of prepares followed by one commit.

use tch::Tensor;

use super::{full_slots, same_tensor, PrunedModel};
use crate::container::PruningContainer;
use crate::error::{PruneError, Result};
use crate::method::{check_layout, check_same_shape, CustomFromMask, PruningMethod};
use crate::prunable::Prunable;
use crate::reparam::{
    effective, mask_name, orig_name, own_mask, PendingPrune, Reparametrization, Target,
};

impl<M: Prunable> PrunedModel<M> {
    /// The variable `name`, checked to be prunable: present, not in the way of its
    /// `_orig` / `_mask` names, and held by the model's slot of that path.
    pub(crate) fn unpruned_param(&mut self, name: &str) -> Result<Tensor> {
        let mut params = self.unpruned_params(&[name])?;
        params.pop().ok_or_else(|| PruneError::UnknownParameter { name: name.into() })
    }

    /// [`unpruned_param`](Self::unpruned_param) of each of `names`, in order, with one walk
    /// over the model's slots for all of them.
    pub(crate) fn unpruned_params(&mut self, names: &[&str]) -> Result<Vec<Tensor>> {
        let params = {
            let vars = self.vars();
            let mut params = Vec::with_capacity(names.len());
            for &name in names {
                let param = vars
                    .named_variables
                    .get(name)
                    .ok_or_else(|| PruneError::UnknownParameter { name: name.into() })?
                    .shallow_clone();
                for taken in [orig_name(name), mask_name(name)] {
                    if vars.named_variables.contains_key(&taken) {
                        return Err(PruneError::NameTaken { name: name.into(), taken });
                    }
                }
                check_layout(name, &param)?;
                params.push(param);
            }
            params
        };
        let mut found = vec![false; names.len()];
        for (path, slot) in full_slots(&mut self.model, &self.prefix) {
            for ((&name, param), found) in names.iter().zip(&params).zip(found.iter_mut()) {
                if path == name {
                    if !same_tensor(slot, param) {
                        return Err(PruneError::SlotMismatch { name: name.into() });
                    }
                    *found = true;
                }
            }
        }
        if let Some((&name, _)) = names.iter().zip(&found).find(|(_, &found)| !found) {
            return Err(PruneError::SlotNotFound { name: name.into() });
        }
        Ok(params)
    }

    /// [`prepare`](Self::prepare) of `method`, a [`CustomFromMask`] applying `mask`, when the
    /// mask it computes is already known: for a parameter pruned for the first time (`param`,
    /// as returned by [`unpruned_params`](Self::unpruned_params) with nothing changed since),
    /// with `mask` a fresh tensor of the parameter's kind, device and shape holding what
    /// `method` applies, the computed mask `ones * mask` is `mask` bit for bit, so `mask` is
    /// stored as it is (no ones, no product, no copy). Any other case goes through `prepare`.
    pub(crate) fn prepare_with_mask(
        &mut self,
        name: &str,
        method: CustomFromMask,
        mask: Tensor,
        param: Option<&Tensor>,
    ) -> Result<PendingPrune> {
        if let Some(param) = param.filter(|_| self.position(name).is_none()) {
            let fits = mask.kind() == param.kind()
                && mask.device() == param.device()
                && mask.size() == param.size()
                && !mask.requires_grad();
            if fits {
                let mask = own_mask(mask, &[param])?;
                let target = Target::First { param: param.shallow_clone() };
                return Ok(PendingPrune {
                    name: name.to_string(),
                    method: Box::new(method),
                    mask,
                    target,
                });
            }
        }
        self.prepare(name, Box::new(method), None)
    }

    /// Validates and computes one pruning step without changing anything.
    pub(crate) fn prepare(
        &mut self,
        name: &str,
        method: Box<dyn PruningMethod>,
        importance_scores: Option<&Tensor>,
    ) -> Result<PendingPrune> {
        let (target, orig, current, default_mask) = match self.position(name) {
            Some(index) => {
                let rec = &self.pruned[index];
                if rec.source.is_some() {
                    return Err(PruneError::MovementManaged { name: name.into() });
                }
                let (orig, mask) = (rec.orig.shallow_clone(), rec.mask.shallow_clone());
                // A magnitude method only ranks entries whose mask is exactly 1, where
                // `orig * mask` is `orig` bit for bit: skip forming the product.
                let current = if importance_scores.is_none() && method.magnitude_amount().is_some()
                {
                    orig.f_detach()?
                } else {
                    tch::no_grad(|| effective(&orig, &mask))?
                };
                (Target::Repeat { index }, orig, current, mask)
            }
            None => {
                let param = self.unpruned_param(name)?;
                let current = param.f_detach()?;
                // The default mask (ones) is only built if the method needs it.
                let like = param.shallow_clone();
                (Target::First { param: param.shallow_clone() }, param, current, like)
            }
        };
        let importance = match importance_scores {
            Some(scores) => {
                check_layout("importance_scores", scores)?;
                check_same_shape("importance_scores", &orig.size(), scores)?;
                scores
            }
            None => &current,
        };
        let mask = tch::no_grad(|| match target {
            Target::First { .. } => crate::method::first_mask(&*method, importance, &default_mask),
            Target::Repeat { .. } => {
                crate::container::combine_masks(&*method, importance, &default_mask)
            }
        })?;
        check_layout("mask", &mask)?;
        check_same_shape("mask", &orig.size(), &mask)?;
        if mask.device() != orig.device() {
            return Err(PruneError::DeviceMismatch {
                parameter: "mask",
                expected: orig.device(),
                actual: mask.device(),
            });
        }
        let mask = own_mask(mask, &[&orig, importance, &default_mask])?;
        Ok(PendingPrune { name: name.to_string(), method, mask, target })
    }

    /// Applies prepared steps, in order. Cannot fail: the slot updates below are best effort
    /// (a multiplication of two tensors already checked to share shape and device) and are
    /// redone by the next forward anyway. The model's slots are walked once for all steps.
    pub(crate) fn commit(&mut self, pending: Vec<PendingPrune>) {
        let mut values: Vec<(String, Tensor)> = Vec::with_capacity(pending.len());
        for PendingPrune { name, method, mask, target } in pending {
            {
                let mut vars = self.vars();
                if let Target::First { param } = &target {
                    vars.named_variables.remove(&name);
                    vars.named_variables.insert(orig_name(&name), param.shallow_clone());
                }
                vars.named_variables.insert(mask_name(&name), mask.shallow_clone());
            }
            let rec = match target {
                Target::First { param } => {
                    let mut history = PruningContainer::new();
                    history.add_pruning_method(method);
                    self.pruned.push(Reparametrization::new(name.clone(), param, mask, history));
                    self.pruned.last()
                }
                Target::Repeat { index } => {
                    let rec = &mut self.pruned[index];
                    rec.mask = mask;
                    rec.cache = None;
                    rec.history.add_pruning_method(method);
                    Some(&*rec)
                }
            };
            // The value the slot gets, formed now (a later step on the same name replaces it).
            if let Some(Ok(value)) = rec.map(|rec| effective(&rec.orig, &rec.mask)) {
                values.retain(|(n, _)| *n != name);
                values.push((name, value));
            }
        }
        if values.is_empty() {
            return;
        }
        for (path, slot) in full_slots(&mut self.model, &self.prefix) {
            if let Some((_, value)) = values.iter().find(|(name, _)| *name == path) {
                *slot = value.shallow_clone();
            }
        }
    }
}
