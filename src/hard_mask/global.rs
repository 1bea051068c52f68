//! Global pruning for a [`HardMask`], computed by [`PrunedModel::global_unstructured`] on a
//! throwaway model, so that both share one implementation of the selection.

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::prune::{checked_mask, PendingMask};
use super::HardMask;
use crate::error::{PruneError, Result};
use crate::method::PruningMethod;
use crate::model::PrunedModel;
use crate::prunable::Prunable;

impl HardMask {
    /// Prunes the listed variables together: `method` (unstructured) ranks the entries of all
    /// of them as one vector, so a fraction is a fraction of **all** still-unpruned entries and
    /// each variable ends up with its own sparsity. Same selection as
    /// [`PrunedModel::global_unstructured`], masks multiplied in place.
    ///
    /// `importance_scores` pairs variable names with score tensors of the variable's shape;
    /// variables without scores are ranked by their current (masked) value.
    ///
    /// # Errors
    /// [`PruneError::EmptyParameterList`], [`PruneError::DuplicateParameter`],
    /// [`PruneError::UnknownParameter`] (a name that is not a variable, or scores for a name
    /// not listed), [`PruneError::WrongPruningType`] for a structured or global method,
    /// [`PruneError::ShapeMismatch`], [`PruneError::NonBinaryMask`], and the method's own
    /// (e.g. [`PruneError::AmountTooLarge`]). Nothing changes on error, for any variable.
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
        // Checked here because the shadow model below knows the variables by position only.
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
        let params = names.iter().map(|name| self.param(name)).collect::<Result<Vec<_>>>()?;

        // A throwaway `PrunedModel` whose variables are detached handles to ours, named by
        // position (so no name of ours can collide with its `_orig` / `_mask` bookkeeping),
        // already pruned with our current masks. Its global pruning only computes masks: it
        // renames variables in its own `VarStore` and never writes into the tensors. The cost
        // is one transient `value * mask` per listed variable (its slots), freed on return.
        let shadow_vs = VarStore::new(Device::Cpu);
        let keys: Vec<String> = (0..names.len()).map(|i| format!("p{i}")).collect();
        let mut slots = Vec::with_capacity(names.len());
        {
            let mut vars = shadow_vs.variables_.lock().unwrap_or_else(|p| p.into_inner());
            for (key, param) in keys.iter().zip(&params) {
                let handle = param.f_detach()?;
                vars.named_variables.insert(key.clone(), handle.shallow_clone());
                slots.push((key.clone(), handle));
            }
        }
        let scores: Vec<(&str, &Tensor)> = importance_scores
            .iter()
            .map(|(name, s)| {
                let i = names.iter().position(|n| n == name).unwrap_or_default();
                (keys[i].as_str(), *s)
            })
            .collect();
        let mut shadow = PrunedModel::new(Shadow { slots }, &shadow_vs);
        let new_masks = tch::no_grad(|| -> Result<Vec<Tensor>> {
            for (name, key) in names.iter().zip(&keys) {
                if let Some(mask) = self.mask(name) {
                    shadow.custom_from_mask(key, mask)?;
                }
            }
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            shadow.global_unstructured(&keys, method, &scores)?;
            keys.iter()
                .map(|key| {
                    // Every listed key is pruned once `global_unstructured` succeeded.
                    let mask = shadow
                        .mask(key)
                        .ok_or_else(|| PruneError::NotPruned { name: key.to_string() })?;
                    Ok(mask.shallow_clone())
                })
                .collect()
        })?;

        let mut pending = Vec::with_capacity(names.len());
        for ((name, param), mask) in names.iter().zip(params).zip(new_masks) {
            let mask = checked_mask(name, &param, mask, &[&param])?;
            pending.push(PendingMask { name: name.to_string(), param, mask });
        }
        self.commit(pending)
    }
}

/// The throwaway model of [`HardMask::global_unstructured`]: its slots are the variables.
struct Shadow {
    slots: Vec<(String, Tensor)>,
}

impl Prunable for Shadow {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        self.slots.iter_mut().map(|(key, t)| (key.clone(), t)).collect()
    }
}
