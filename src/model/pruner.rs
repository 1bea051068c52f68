//! [`Pruner`] for [`PrunedModel`]: the `<name>_orig` / `<name>_mask` reparametrization.

use tch::Tensor;

use super::{full_slots, PrunedModel};
use crate::error::{PruneError, Result};
use crate::method::PruningMethod;
use crate::prunable::Prunable;
use crate::pruner::{sealed, Pruner};
use crate::recipe::LayerKind;
use crate::reparam::{effective, mask_name, orig_name};
use crate::report::collect::{self, Entry};

impl<M: Prunable> Pruner for PrunedModel<M> {
    fn apply_boxed(
        &mut self,
        name: &str,
        method: Box<dyn PruningMethod>,
        importance_scores: Option<&Tensor>,
    ) -> Result<()> {
        let pending = self.prepare(name, method, importance_scores)?;
        self.commit(vec![pending]);
        Ok(())
    }

    fn global_unstructured_dyn(
        &mut self,
        names: &[&str],
        method: &dyn PruningMethod,
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<()> {
        self.global_unstructured_impl(names, method, importance_scores)
    }

    /// The tensor stored as `<name>_mask`.
    fn mask(&self, name: &str) -> Option<&Tensor> {
        self.record(name).map(|rec| &rec.mask)
    }

    /// `orig * mask` when pruned (what the layer computes with), the variable itself otherwise.
    fn value(&self, name: &str) -> Result<Tensor> {
        if let Some(rec) = self.record(name) {
            return tch::no_grad(|| effective(&rec.orig, &rec.mask));
        }
        let vars = self.vars();
        let var = vars
            .named_variables
            .get(name)
            .ok_or_else(|| PruneError::UnknownParameter { name: name.into() })?;
        Ok(var.f_detach()?)
    }

    fn pruned_parameters(&self) -> impl Iterator<Item = &str> {
        self.pruned.iter().map(|rec| rec.name.as_str())
    }

    fn is_parameter_pruned(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// `orig * mask` is written into the original tensor (the same tensor object, still
    /// trainable), which becomes `<name>` again; `<name>_orig`, `<name>_mask` and the history
    /// are dropped.
    fn remove(&mut self, name: &str) -> Result<()> {
        let index =
            self.position(name).ok_or_else(|| PruneError::NotPruned { name: name.into() })?;
        let rec = &self.pruned[index];
        if rec.source.is_some() {
            return Err(PruneError::MovementManaged { name: name.into() });
        }
        let mut orig = rec.orig.shallow_clone();
        let mask = rec.mask.f_to_kind(orig.kind())?;
        let _ = tch::no_grad(|| orig.f_mul_(&mask))?;
        let rec = self.pruned.remove(index);
        {
            let mut vars = self.vars();
            vars.named_variables.remove(&orig_name(name));
            vars.named_variables.remove(&mask_name(name));
            vars.named_variables.insert(name.to_string(), rec.orig.shallow_clone());
        }
        for (path, slot) in full_slots(&mut self.model, &self.prefix) {
            if path == name {
                *slot = rec.orig.shallow_clone();
            }
        }
        Ok(())
    }
}

impl<M: Prunable> sealed::Sealed for PrunedModel<M> {
    type Undo = super::snapshot::Snapshot;

    fn begin_undo(&mut self) -> Self::Undo {
        self.snapshot()
    }

    fn undo(&mut self, point: Self::Undo) {
        self.restore(point);
    }

    fn end_undo(&mut self, _point: Self::Undo) {}

    fn parameter_names(&mut self) -> Vec<String> {
        self.slot_names()
    }

    fn layers_of_kind(&self, kind: LayerKind) -> Option<Vec<String>> {
        Some(kind.layers(self))
    }

    fn report_entries(&self) -> Vec<Entry> {
        let vars = self.vars();
        collect::parameters(&vars, |base| self.position(base).is_some())
    }

    fn report_entries_named(&self, names: &[&str]) -> Result<Vec<Entry>> {
        let vars = self.vars();
        collect::named(&vars, names, |base| self.position(base).is_some())
    }
}
