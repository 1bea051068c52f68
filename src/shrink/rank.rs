//! [`ChannelPruning`]: ranking a coupling's units by importance and choosing which go, per
//! group (local) or across groups (global).

use std::collections::HashMap;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::coupling::{Coupling, ResolvedGroup};
use super::selection::Selection;
use crate::error::{PruneError, Result};

/// How units are ranked and how many go: the group counterpart of
/// [`LnStructured`](crate::LnStructured).
///
/// * **Importance** of unit `u` of a group: the sum, over the group's trainable members, of
///   `|w|^p` over the entries `u` owns ([`with_norm`](Self::with_norm), `p = 2` by default),
///   i.e. the `p`-th power of the group's Ln norm of that unit: the same ranking as
///   Torch-Pruning's `GroupMagnitudeImportance(p)`. Or your own scores per group
///   ([`with_importance`](Self::with_importance)).
/// * **Local** ([`local`](Self::local)): each group loses `floor(ratio · units)` units, its
///   least important.
/// * **Global** ([`global`](Self::global)): importances are divided by their group's mean
///   (Torch-Pruning's `normalizer="mean"`), so that layers of different size and scale
///   compete fairly; the `floor(ratio · total units)` lowest normalised scores go, wherever
///   they are, and every group keeps at least one unit.
/// * [`round_to`](Self::round_to) rounds each group's kept count **up** to a multiple (kept
///   channel counts that suit the hardware); [`group_ratio`](Self::group_ratio) gives a group
///   its own ratio (pruned locally); [`ignore`](Self::ignore) leaves a group alone.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{presets, ChannelPruning, Coupling};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let _fc1 = nn::linear(vs.root() / "fc1", 4, 16, Default::default());
/// let _fc2 = nn::linear(vs.root() / "fc2", 16, 2, Default::default());
/// let coupling = Coupling::new(vec![presets::linear_chain("hidden", "fc1", &["fc2"])])?;
/// let selection = ChannelPruning::local(0.3)?.round_to(4).select(&coupling, &vs)?;
/// assert_eq!(selection.sizes(), [("hidden".to_string(), 16, 12)]); // 16 - floor(4.8) = 12
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// Torch-Pruning equivalent: `tp.pruner.BasePruner(model, example_inputs,
/// importance=GroupMagnitudeImportance(p=2), pruning_ratio=ratio, global_pruning=...,
/// round_to=..., ignored_layers=..., pruning_ratio_dict=...)`, whose `step()` is
/// [`select`](Self::select) followed by [`Shrink`](crate::Shrink).
#[derive(Debug)]
pub struct ChannelPruning {
    ratio: f64,
    global: bool,
    p: f64,
    round_to: i64,
    ignored: Vec<String>,
    ratios: HashMap<String, f64>,
    importance: HashMap<String, Tensor>,
}

impl ChannelPruning {
    /// Every group loses `floor(ratio · units)` of its units.
    ///
    /// # Errors
    /// [`PruneError::FractionOutOfRange`] unless `0 <= ratio <= 1`.
    pub fn local(ratio: f64) -> Result<Self> {
        Self::new(ratio, false)
    }

    /// `floor(ratio · total units)` units go across all groups, ranked by normalised
    /// importance.
    ///
    /// # Errors
    /// [`PruneError::FractionOutOfRange`] unless `0 <= ratio <= 1`.
    pub fn global(ratio: f64) -> Result<Self> {
        Self::new(ratio, true)
    }

    fn new(ratio: f64, global: bool) -> Result<Self> {
        check_ratio(ratio)?;
        Ok(Self {
            ratio,
            global,
            p: 2.0,
            round_to: 1,
            ignored: Vec::new(),
            ratios: HashMap::new(),
            importance: HashMap::new(),
        })
    }

    /// Ranks by `|w|^p` summed over each unit's entries (default `p = 2`).
    ///
    /// # Errors
    /// [`PruneError::InvalidNorm`] unless `p` is finite and positive.
    pub fn with_norm(mut self, p: f64) -> Result<Self> {
        if !(p.is_finite() && p > 0.0) {
            return Err(PruneError::InvalidNorm { value: p });
        }
        self.p = p;
        Ok(self)
    }

    /// Rounds every pruned group's kept unit count up to a multiple of `n` (values below 1
    /// count as 1).
    pub fn round_to(mut self, n: i64) -> Self {
        self.round_to = n.max(1);
        self
    }

    /// Leaves `group` unpruned.
    pub fn ignore(mut self, group: &str) -> Self {
        self.ignored.push(group.into());
        self
    }

    /// Prunes `group` locally with its own ratio.
    ///
    /// # Errors
    /// [`PruneError::FractionOutOfRange`] unless `0 <= ratio <= 1`.
    pub fn group_ratio(mut self, group: &str, ratio: f64) -> Result<Self> {
        check_ratio(ratio)?;
        self.ratios.insert(group.into(), ratio);
        Ok(self)
    }

    /// Ranks the units of `group` by `scores` (one per unit, higher is more important)
    /// instead of their magnitude, e.g. Taylor or activation statistics.
    pub fn with_importance(mut self, group: &str, scores: Tensor) -> Self {
        self.importance.insert(group.into(), scores);
        self
    }

    /// Each group's importance scores (one per unit, `f64`, before normalisation), in the
    /// coupling's order.
    ///
    /// # Errors
    /// The errors of [`Coupling::units`]; [`PruneError::ShapeMismatch`] for user scores that
    /// are not one per unit.
    pub fn importance(&self, coupling: &Coupling, vs: &VarStore) -> Result<Vec<(String, Tensor)>> {
        let resolved = coupling.resolve(vs)?;
        resolved.iter().map(|g| Ok((g.name.clone(), self.group_importance(g)?))).collect()
    }

    fn group_importance(&self, group: &ResolvedGroup) -> Result<Tensor> {
        if let Some(scores) = self.importance.get(&group.name) {
            let scores = scores.f_to_kind(Kind::Double)?.f_to_device(tch::Device::Cpu)?;
            if scores.size() != [group.units] {
                return Err(PruneError::ShapeMismatch {
                    parameter: "importance",
                    expected: vec![group.units],
                    actual: scores.size(),
                });
            }
            return Ok(scores);
        }
        let mut total = Tensor::f_zeros([group.units], (Kind::Double, tch::Device::Cpu))?;
        for m in group.members.iter().filter(|m| m.trainable) {
            let span = group.units * m.member.block();
            let w = m.value.f_detach()?.f_narrow(m.dim as i64, m.member.offset(), span)?;
            let powered = if self.p == 2.0 {
                w.f_square()?
            } else {
                w.f_abs()?.f_pow_tensor_scalar(self.p)?
            };
            // Sum over every other dimension: first the trailing ones (a contiguous inner
            // reduction, in the parameter's kind), then, in f64, the leading ones.
            let d = m.dim as i64;
            let trailing: Vec<i64> = ((d + 1)..w.dim() as i64).collect();
            let reduced = if trailing.is_empty() {
                powered
            } else {
                powered.f_sum_dim_intlist(trailing.as_slice(), false, powered.kind())?
            };
            let reduced = reduced.f_to_kind(Kind::Double)?;
            let leading: Vec<i64> = (0..d).collect();
            let per_entry = if leading.is_empty() {
                reduced
            } else {
                reduced.f_sum_dim_intlist(leading.as_slice(), false, Kind::Double)?
            };
            let per_unit = per_entry
                .f_reshape([group.units, m.member.block()])?
                .f_sum_dim_intlist(1, false, Kind::Double)?;
            total = total.f_add(&per_unit.f_to_device(tch::Device::Cpu)?)?;
        }
        Ok(total)
    }

    /// Chooses the units to remove.
    ///
    /// # Errors
    /// The errors of [`importance`](Self::importance); [`PruneError::UnknownGroup`] for an
    /// ignored, ratio or importance group the coupling lacks;
    /// [`PruneError::GroupWouldBeEmpty`] when a local ratio would remove every unit of a
    /// group.
    pub fn select(&self, coupling: &Coupling, vs: &VarStore) -> Result<Selection> {
        let names = self.ignored.iter().chain(self.ratios.keys()).chain(self.importance.keys());
        for name in names {
            if coupling.group(name).is_none() {
                return Err(PruneError::UnknownGroup { group: name.clone() });
            }
        }
        let resolved = coupling.resolve(vs)?;
        let mut scores = Vec::with_capacity(resolved.len());
        for g in &resolved {
            scores.push(Vec::<f64>::try_from(&self.group_importance(g)?)?);
        }
        let mut removed: Vec<Vec<i64>> = vec![Vec::new(); resolved.len()];
        let mut global = Vec::new();
        for (i, g) in resolved.iter().enumerate() {
            if self.ignored.contains(&g.name) {
                continue;
            }
            match self.ratios.get(&g.name) {
                Some(&ratio) => removed[i] = self.local_pick(g, &scores[i], ratio)?,
                None if !self.global => removed[i] = self.local_pick(g, &scores[i], self.ratio)?,
                None => global.push(i),
            }
        }
        self.global_pick(&resolved, &scores, &global, &mut removed);
        let mut selection = Selection::new();
        for (g, removed) in resolved.iter().zip(removed) {
            if !removed.is_empty() {
                selection = selection.remove(&g.name, g.units, removed);
            }
        }
        Ok(selection)
    }

    fn local_pick(&self, group: &ResolvedGroup, scores: &[f64], ratio: f64) -> Result<Vec<i64>> {
        let count = (ratio * group.units as f64).floor() as i64;
        let keep = self.rounded_keep(group.units, group.units - count);
        if keep == 0 {
            return Err(PruneError::GroupWouldBeEmpty {
                group: group.name.clone(),
                removed: count,
                units: group.units,
            });
        }
        Ok(lowest(scores, (group.units - keep) as usize))
    }

    fn global_pick(
        &self,
        resolved: &[ResolvedGroup],
        scores: &[Vec<f64>],
        members: &[usize],
        removed: &mut [Vec<i64>],
    ) {
        let mut all: Vec<(f64, usize, usize)> = Vec::new();
        for &i in members {
            let mean = scores[i].iter().sum::<f64>() / scores[i].len().max(1) as f64;
            let norm = if mean > 0.0 { mean } else { 1.0 };
            all.extend(scores[i].iter().enumerate().map(|(u, s)| (s / norm, i, u)));
        }
        let total = all.len();
        let count = (self.ratio * total as f64).floor() as usize;
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut chosen = vec![0i64; resolved.len()];
        for &(_, i, _) in &all[..count] {
            chosen[i] += 1;
        }
        for &i in members {
            let units = resolved[i].units;
            // Every group keeps at least one unit (rounded), whatever the global ranking says.
            let keep = self.rounded_keep(units, (units - chosen[i]).max(1));
            removed[i] = lowest(&scores[i], (units - keep) as usize);
        }
    }

    /// `keep` rounded up to a multiple of `round_to`, at most `units`.
    fn rounded_keep(&self, units: i64, keep: i64) -> i64 {
        let r = self.round_to;
        ((keep + r - 1) / r * r).min(units)
    }
}

/// The indices of the `n` lowest scores, sorted (ties: lower index first).
fn lowest(scores: &[f64], n: usize) -> Vec<i64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let mut out: Vec<i64> = order[..n.min(order.len())].iter().map(|&u| u as i64).collect();
    out.sort_unstable();
    out
}

fn check_ratio(ratio: f64) -> Result<()> {
    if (0.0..=1.0).contains(&ratio) {
        Ok(())
    } else {
        Err(PruneError::FractionOutOfRange { value: ratio })
    }
}
