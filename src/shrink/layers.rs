//! What shrinking must know about tch's layers beyond their tensors: the counts they keep in
//! fields (`nn::GroupNorm::num_groups`, `nn::LayerNorm::normalized_shape`), and the
//! convolutions it cannot shrink (a grouped convolution's `groups` is private).

use std::any::Any;
use std::collections::BTreeMap;

use tch::nn;

use crate::error::{PruneError, Result};

/// The removals planned for one variable: `(dim, removed entries)` per dimension.
pub(crate) type VarPlan = Vec<(usize, Vec<i64>)>;

/// A count held in a layer's field, changed by a shrink (and put back if it fails).
#[derive(Debug, Clone)]
pub(crate) enum FieldChange {
    /// `nn::GroupNorm::{num_groups, num_channels}`: `(groups, channels)` before and after.
    GroupNorm { layer: String, before: (i64, i64), after: (i64, i64) },
    /// `nn::LayerNorm::normalized_shape` before and after.
    LayerNorm { layer: String, before: Vec<i64>, after: Vec<i64> },
}

impl FieldChange {
    /// A line for the report.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::GroupNorm { layer, before, after } => {
                format!("{layer}: GroupNorm num_groups {} -> {}", before.0, after.0)
            }
            Self::LayerNorm { layer, before, after } => {
                format!("{layer}: LayerNorm normalized_shape {before:?} -> {after:?}")
            }
        }
    }
}

/// The number of groups of a tch convolution, `None` for any other layer. tch keeps the
/// convolution's config private but derives `Debug` for it, so the count is read from the
/// `Debug` text (`groups: N`). Should a tch version change that text, convolutions read as
/// `None` (not grouped) and the shrink's equivalence check still catches a wrong forward.
pub(crate) fn conv_groups(layer: &dyn Any) -> Option<i64> {
    let text = if let Some(c) = layer.downcast_ref::<nn::Conv1D>() {
        format!("{c:?}")
    } else if let Some(c) = layer.downcast_ref::<nn::Conv2D>() {
        format!("{c:?}")
    } else if let Some(c) = layer.downcast_ref::<nn::Conv3D>() {
        format!("{c:?}")
    } else {
        return None;
    };
    let rest = &text[text.find("groups: ")? + "groups: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The layer path of a variable name (`"fc.weight"` → `"fc"`).
fn layer_of(var: &str) -> &str {
    var.rsplit_once('.').map_or("", |(layer, _)| layer)
}

/// Checks the model's layers against the plan and computes the field changes it implies.
///
/// # Errors
/// [`PruneError::UnsupportedLayer`] for a grouped convolution whose channels would change, or
/// a GroupNorm losing part of a group.
pub(crate) fn field_changes(
    modules: &[(String, &dyn Any)],
    plan: &BTreeMap<String, VarPlan>,
    new_shapes: &BTreeMap<String, Vec<i64>>,
) -> Result<Vec<FieldChange>> {
    let mut changes = Vec::new();
    for (path, layer) in modules {
        let touched: Vec<(&String, &VarPlan)> =
            plan.iter().filter(|(var, _)| layer_of(var) == path).collect();
        if touched.is_empty() {
            continue;
        }
        if let Some(groups) = conv_groups(*layer).filter(|&g| g != 1) {
            return Err(PruneError::UnsupportedLayer {
                layer: path.clone(),
                reason: format!(
                    "a convolution with groups = {groups} (depthwise or grouped): tch keeps \
                     the group count private, so rebuild the layer at the new size from the \
                     manifest, or leave its channels out of the coupling"
                ),
            });
        }
        if let Some(gn) = layer.downcast_ref::<nn::GroupNorm>() {
            let removed = touched.iter().find_map(|(_, p)| p.iter().find(|(d, _)| *d == 0));
            if let Some((_, removed)) = removed {
                let per_group = gn.num_channels / gn.num_groups.max(1);
                let whole = per_group > 0
                    && removed.len() as i64 % per_group == 0
                    && removed
                        .chunks(per_group as usize)
                        .all(|c| c[0] % per_group == 0 && c.windows(2).all(|w| w[1] == w[0] + 1));
                if !whole {
                    return Err(PruneError::UnsupportedLayer {
                        layer: path.clone(),
                        reason: format!(
                            "a GroupNorm of {} groups of {per_group} channels can only lose \
                             whole groups (declare the group with presets::group_norm)",
                            gn.num_groups
                        ),
                    });
                }
                let lost = removed.len() as i64 / per_group;
                let channels = gn.num_channels - removed.len() as i64;
                changes.push(FieldChange::GroupNorm {
                    layer: path.clone(),
                    before: (gn.num_groups, gn.num_channels),
                    after: (gn.num_groups - lost, channels),
                });
            }
        }
        if let Some(ln) = layer.downcast_ref::<nn::LayerNorm>() {
            let weight = new_shapes.get(&format!("{path}.weight"));
            if let Some(shape) = weight.filter(|s| **s != ln.normalized_shape) {
                changes.push(FieldChange::LayerNorm {
                    layer: path.clone(),
                    before: ln.normalized_shape.clone(),
                    after: shape.clone(),
                });
            }
        }
    }
    Ok(changes)
}

/// Writes the changes (`forward = true`) or puts the fields back (`false`).
pub(crate) fn apply_fields(
    modules: &mut [(String, &mut dyn Any)],
    changes: &[FieldChange],
    forward: bool,
) {
    for change in changes {
        match change {
            FieldChange::GroupNorm { layer, before, after } => {
                let (groups, channels) = if forward { *after } else { *before };
                for (path, m) in modules.iter_mut() {
                    if let Some(gn) = m.downcast_mut::<nn::GroupNorm>().filter(|_| path == layer) {
                        gn.num_groups = groups;
                        gn.num_channels = channels;
                    }
                }
            }
            FieldChange::LayerNorm { layer, before, after } => {
                let shape = if forward { after } else { before };
                for (path, m) in modules.iter_mut() {
                    if let Some(ln) = m.downcast_mut::<nn::LayerNorm>().filter(|_| path == layer) {
                        ln.normalized_shape.clone_from(shape);
                    }
                }
            }
        }
    }
}
