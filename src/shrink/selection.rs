//! [`Selection`]: which units of which groups go, and the masks that prune them before the
//! shrink (for fine-tuning through the crate's reparametrization).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use super::coupling::{Coupling, ResolvedGroup};
use crate::error::{PruneError, Result};
use crate::pruner::Pruner;

/// The units to remove, per group: the result of
/// [`ChannelPruning::select`](crate::ChannelPruning::select), or built by hand with
/// [`remove`](Self::remove). Serialisable, so a selection can be stored and shrunk later.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{presets, Coupling, Selection};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let _fc1 = nn::linear(vs.root() / "fc1", 4, 8, Default::default());
/// let _fc2 = nn::linear(vs.root() / "fc2", 8, 2, Default::default());
/// let coupling = Coupling::new(vec![presets::linear_chain("hidden", "fc1", &["fc2"])])?;
/// let selection = Selection::new().remove("hidden", 8, [1, 5]);
/// assert_eq!(selection.removed("hidden"), Some(&[1, 5][..]));
/// selection.check(&coupling, &vs)?;
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// Torch-Pruning equivalent: the `idxs` of `DG.get_pruning_group(layer, fn, idxs)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    groups: BTreeMap<String, GroupSelection>,
}

/// The units removed from one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GroupSelection {
    /// The group's unit count when the selection was made.
    pub(crate) units: i64,
    /// The removed units, sorted, without repeats.
    pub(crate) removed: Vec<i64>,
}

impl Selection {
    /// An empty selection (removes nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes the units `removed` of `group`, which has `units` units (checked against the
    /// model when the selection is used). Indices are sorted and deduplicated; a second call
    /// for the same group replaces the first.
    pub fn remove(
        mut self,
        group: &str,
        units: i64,
        removed: impl IntoIterator<Item = i64>,
    ) -> Self {
        let mut removed: Vec<i64> = removed.into_iter().collect();
        removed.sort_unstable();
        removed.dedup();
        self.groups.insert(group.into(), GroupSelection { units, removed });
        self
    }

    /// The units removed from `group`, sorted.
    pub fn removed(&self, group: &str) -> Option<&[i64]> {
        self.groups.get(group).map(|g| g.removed.as_slice())
    }

    /// `(group, units before, units after)` for every group with a selection.
    pub fn sizes(&self) -> Vec<(String, i64, i64)> {
        self.groups
            .iter()
            .map(|(name, g)| (name.clone(), g.units, g.units - g.removed.len() as i64))
            .collect()
    }

    /// The number of units removed, over all groups.
    pub fn removed_units(&self) -> usize {
        self.groups.values().map(|g| g.removed.len()).sum()
    }

    /// Checks the selection against the coupling and the model of `vs`.
    ///
    /// # Errors
    /// The errors of [`Coupling::units`]; [`PruneError::UnknownGroup`] for a group the
    /// coupling lacks; [`PruneError::InvalidUnitIndex`] for an index out of range or a
    /// selection made for another size; [`PruneError::GroupWouldBeEmpty`] when every unit of
    /// a group would go.
    pub fn check(&self, coupling: &Coupling, vs: &VarStore) -> Result<()> {
        let resolved = coupling.resolve(vs)?;
        self.check_resolved(&resolved)
    }

    pub(crate) fn check_resolved(&self, resolved: &[ResolvedGroup]) -> Result<()> {
        for (name, sel) in &self.groups {
            let group = resolved
                .iter()
                .find(|g| &g.name == name)
                .ok_or_else(|| PruneError::UnknownGroup { group: name.clone() })?;
            let invalid = |index| PruneError::InvalidUnitIndex {
                group: name.clone(),
                index,
                units: group.units,
            };
            if sel.units != group.units {
                return Err(invalid(sel.units));
            }
            if let Some(&bad) = sel.removed.iter().find(|&&u| u < 0 || u >= group.units) {
                return Err(invalid(bad));
            }
            if sel.removed.len() as i64 >= group.units {
                return Err(PruneError::GroupWouldBeEmpty {
                    group: name.clone(),
                    removed: sel.removed.len() as i64,
                    units: group.units,
                });
            }
        }
        Ok(())
    }

    /// The removed units of `group`, empty when it has no selection.
    pub(crate) fn removed_or_empty(&self, group: &str) -> &[i64] {
        self.removed(group).unwrap_or(&[])
    }

    /// Prunes the selected units with masks: every trainable member of every group (weights
    /// and biases, not BatchNorm's running statistics) gets
    /// [`custom_from_mask`](Pruner::custom_from_mask) with zeros on the removed entries, so the
    /// model computes exactly what the shrunk model will, and can be fine-tuned first. A
    /// parameter in several groups (rows in one, columns in another) gets one mask for all.
    ///
    /// # Errors
    /// As [`check`](Self::check), and the errors of `custom_from_mask`. Nothing changes on
    /// error.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{presets, Coupling, PrunedModel, Pruner, Selection};
    ///
    /// #[derive(Debug)]
    /// struct Mlp { fc1: nn::Linear, fc2: nn::Linear }
    /// tch_prune::prunable!(Mlp { fc1, fc2 });
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mlp = Mlp {
    ///     fc1: nn::linear(vs.root() / "fc1", 4, 8, Default::default()),
    ///     fc2: nn::linear(vs.root() / "fc2", 8, 2, Default::default()),
    /// };
    /// let coupling = Coupling::new(vec![presets::linear_chain("hidden", "fc1", &["fc2"])])?;
    /// let mut model = PrunedModel::new(mlp, &vs)?;
    /// Selection::new().remove("hidden", 8, [0, 3]).mask(&coupling, &vs, &mut model)?;
    /// assert_eq!(model.pruned_parameters().collect::<Vec<_>>(), ["fc1.weight", "fc1.bias", "fc2.weight"]);
    /// assert_eq!(model.value("fc2.weight")?.double_value(&[1, 3]), 0.0);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// Torch-Pruning equivalent: none (it removes channels at once); NNI: the masks of
    /// `L1NormPruner(...).compress()`.
    pub fn mask<P: Pruner>(
        &self,
        coupling: &Coupling,
        vs: &VarStore,
        pruner: &mut P,
    ) -> Result<()> {
        let resolved = coupling.resolve(vs)?;
        self.check_resolved(&resolved)?;
        let masks = self.member_masks(&resolved, true)?;
        let point = pruner.begin_undo();
        for (name, mask) in &masks {
            if let Err(err) = pruner.custom_from_mask(name, mask) {
                pruner.undo(point);
                return Err(err);
            }
        }
        pruner.end_undo(point);
        Ok(())
    }

    /// One mask per variable touched by the selection (ones, zeros on removed entries), in
    /// the coupling's order; only trainable variables when `trainable_only`.
    pub(crate) fn member_masks(
        &self,
        resolved: &[ResolvedGroup],
        trainable_only: bool,
    ) -> Result<Vec<(String, Tensor)>> {
        let mut masks: Vec<(String, Tensor)> = Vec::new();
        for group in resolved {
            let removed = self.removed_or_empty(&group.name);
            if removed.is_empty() {
                continue;
            }
            for m in group.members.iter().filter(|m| m.trainable || !trainable_only) {
                let name = m.member.param();
                let position = masks.iter().position(|(n, _)| n == name);
                let index = match position {
                    Some(i) => i,
                    None => {
                        masks.push((name.to_string(), m.value.f_ones_like()?));
                        masks.len() - 1
                    }
                };
                let entries = Tensor::from_slice(&m.entries(removed)).f_to(m.value.device())?;
                let mask = &mut masks[index].1;
                let _ = mask.f_index_fill_(m.dim as i64, &entries, 0.0)?;
            }
        }
        Ok(masks)
    }
}
