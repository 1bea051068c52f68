//! Undoing a sequence of pruning steps: what lets a multi-step operation (a
//! [`PruningRecipe`](crate::PruningRecipe)) leave the model untouched when a later step fails.
//!
//! Every pruning step goes through `prepare` (which can fail and changes nothing) and `commit`
//! (which cannot fail). `commit` never writes into a tensor: it appends a reparametrization or
//! replaces a record's mask by a new tensor and appends a method to its history. So the state
//! before a sequence of commits is recorded by the number of records and, per record, its mask
//! handle and history length; restoring them (and the `VarStore` entries and slots that follow
//! from them) gives back exactly the state before, with the very same tensors.

use tch::Tensor;

use super::{full_slots, PrunedModel};
use crate::prunable::Prunable;
use crate::reparam::{effective, mask_name, orig_name};

/// The pruning state of a [`PrunedModel`] at one moment; see [`PrunedModel::snapshot`].
#[derive(Debug)]
pub struct Snapshot {
    /// Per record that existed then: its mask and its history length.
    records: Vec<(Tensor, usize)>,
}

impl<M: Prunable> PrunedModel<M> {
    /// Records the pruning state, to [`restore`](Self::restore) it after later pruning steps.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let records =
            self.pruned.iter().map(|rec| (rec.mask.shallow_clone(), rec.history.len())).collect();
        Snapshot { records }
    }

    /// Undoes every pruning step committed since `snapshot` was taken. Only valid when nothing
    /// but pruning steps (no `remove`, no checkpoint loading) happened in between.
    pub(crate) fn restore(&mut self, snapshot: Snapshot) {
        let kept = snapshot.records.len();
        // Parameters pruned for the first time since: their original tensor gets its name and
        // its slot back, as before the first step.
        let added: Vec<_> = self.pruned.drain(kept..).collect();
        {
            let mut vars = self.vars();
            for rec in &added {
                vars.named_variables.remove(&orig_name(&rec.name));
                vars.named_variables.remove(&mask_name(&rec.name));
                vars.named_variables.insert(rec.name.clone(), rec.orig.shallow_clone());
            }
        }
        // Parameters pruned before: their earlier mask and history.
        let mut changed = Vec::new();
        for (rec, (mask, len)) in self.pruned.iter_mut().zip(snapshot.records) {
            if rec.history.len() == len {
                continue;
            }
            rec.history.truncate(len);
            rec.mask = mask;
            rec.cache = None;
            changed.push(rec.name.clone());
        }
        {
            let mut vars = self.vars();
            for rec in self.pruned.iter().filter(|rec| changed.contains(&rec.name)) {
                vars.named_variables.insert(mask_name(&rec.name), rec.mask.shallow_clone());
            }
        }
        let mut values = Vec::with_capacity(added.len() + changed.len());
        values.extend(added.iter().map(|rec| (rec.name.clone(), rec.orig.shallow_clone())));
        for name in changed {
            // Best effort, as in `commit`: the next forward or `refresh` sets it again anyway.
            let rec = self.pruned.iter().find(|rec| rec.name == name);
            if let Some(Ok(value)) = rec.map(|rec| tch::no_grad(|| effective(&rec.orig, &rec.mask)))
            {
                values.push((name, value));
            }
        }
        for (path, slot) in full_slots(&mut self.model, &self.prefix) {
            if let Some((_, value)) = values.iter().find(|(name, _)| *name == path) {
                *slot = value.shallow_clone();
            }
        }
    }

    /// The full `VarStore` names of the model's parameter slots, in the model's order (pruned
    /// parameters under their own name, not `<name>_orig`).
    pub(crate) fn slot_names(&mut self) -> Vec<String> {
        full_slots(&mut self.model, &self.prefix).into_iter().map(|(name, _)| name).collect()
    }
}
