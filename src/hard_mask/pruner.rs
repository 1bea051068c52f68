//! [`Pruner`] for [`HardMask`], and its undo points: while one is open, every commit first
//! copies the values of the variables it is about to multiply (only those), so a failed
//! multi-step operation (a recipe, a schedule step) can write them back.

use tch::Tensor;

use super::{HardMask, MaskEntry};
use crate::error::{PruneError, Result};
use crate::method::PruningMethod;
use crate::pruner::{sealed, Pruner};
use crate::recipe::LayerKind;
use crate::report::collect::{self, Entry};

impl Pruner for HardMask {
    fn apply_boxed(
        &mut self,
        name: &str,
        method: Box<dyn PruningMethod>,
        importance_scores: Option<&Tensor>,
    ) -> Result<()> {
        let pending = self.prepare(name, &*method, importance_scores)?;
        self.commit(vec![pending])
    }

    fn global_unstructured_dyn(
        &mut self,
        names: &[&str],
        method: &dyn PruningMethod,
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<()> {
        self.global_unstructured_impl(names, method, importance_scores)
    }

    /// The mask of `name` (binary, in the variable's kind), kept here, not in the `VarStore`.
    fn mask(&self, name: &str) -> Option<&Tensor> {
        self.entry(name).map(|e| &e.mask)
    }

    /// The variable itself (it already holds `value * mask`), detached.
    fn value(&self, name: &str) -> Result<Tensor> {
        Ok(self.variable(name)?.f_detach()?)
    }

    fn pruned_parameters(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    fn is_parameter_pruned(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Drops the mask of `name`: the tensor keeps its zeros but is no longer re-masked, so
    /// training can revive them.
    fn remove(&mut self, name: &str) -> Result<()> {
        let index =
            self.position(name).ok_or_else(|| PruneError::NotPruned { name: name.into() })?;
        self.entries.remove(index);
        Ok(())
    }
}

/// An undo point of a [`HardMask`].
#[derive(Debug)]
pub struct Undo {
    /// The masks then, by name (shallow clones: a commit replaces masks, never writes them).
    masks: Vec<(String, Tensor)>,
    /// The journal length then; `None` when this point opened the journal.
    journal_len: Option<usize>,
}

impl sealed::Sealed for HardMask {
    type Undo = Undo;

    fn begin_undo(&mut self) -> Undo {
        let masks = self.entries.iter().map(|e| (e.name.clone(), e.mask.shallow_clone())).collect();
        let journal_len = self.journal.as_ref().map(Vec::len);
        if self.journal.is_none() {
            self.journal = Some(Vec::new());
        }
        Undo { masks, journal_len }
    }

    fn undo(&mut self, point: Undo) {
        let start = point.journal_len.unwrap_or(0);
        if let Some(journal) = &mut self.journal {
            // Newest first, so a variable changed twice ends with its oldest values.
            for (param, values) in journal.drain(start..).rev() {
                let mut param = param;
                // Best effort: the same shape, kind and device as when it was copied.
                let _ = tch::no_grad(|| param.f_copy_(&values));
            }
        }
        if point.journal_len.is_none() {
            self.journal = None;
        }
        let kept: Vec<MaskEntry> = self
            .entries
            .drain(..)
            .filter_map(|mut e| {
                let (_, mask) = point.masks.iter().find(|(name, _)| *name == e.name)?;
                e.mask = mask.shallow_clone();
                Some(e)
            })
            .collect();
        self.entries = kept;
    }

    fn end_undo(&mut self, point: Undo) {
        if point.journal_len.is_none() {
            self.journal = None;
        }
    }

    /// The trainable variables in PyTorch's order, then the other variables (buffers, frozen
    /// tables) by name: a `HardMask` prunes any variable.
    fn parameter_names(&mut self) -> Vec<String> {
        let vars = self.vars();
        let mut names: Vec<String> =
            collect::parameters(&vars, |_| false).into_iter().map(|e| e.name).collect();
        let mut others: Vec<&String> =
            vars.named_variables.keys().filter(|name| !names.contains(name)).collect();
        others.sort();
        let others: Vec<String> = others.into_iter().cloned().collect();
        names.extend(others);
        names
    }

    fn layers_of_kind(&self, _kind: LayerKind) -> Option<Vec<String>> {
        None
    }

    fn report_entries(&self) -> Vec<Entry> {
        self.masked_entries(collect::parameters(&self.vars(), |_| false))
    }

    fn report_entries_named(&self, names: &[&str]) -> Result<Vec<Entry>> {
        let entries = collect::named(&self.vars(), names, |_| false)?;
        Ok(self.masked_entries(entries))
    }
}

impl HardMask {
    /// `entries` with each masked variable reported with its mask.
    fn masked_entries(&self, entries: Vec<Entry>) -> Vec<Entry> {
        entries
            .into_iter()
            .map(|entry| match self.entry(&entry.name) {
                Some(e) => Entry {
                    name: entry.name,
                    value: collect::Value::Masked {
                        orig: e.param.shallow_clone(),
                        mask: e.mask.shallow_clone(),
                    },
                },
                None => entry,
            })
            .collect()
    }
}
