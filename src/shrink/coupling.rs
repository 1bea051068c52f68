//! [`Coupling`]: the validated set of a model's [`ChannelGroup`]s, and its resolution against
//! a `VarStore` (the shapes checked, the unit counts found).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use super::group::{ChannelGroup, Member};
use crate::error::{PruneError, Result};
use crate::reparam::{effective, mask_name, orig_name};
use crate::var_store::Vars;

/// Every coupling group of a model, declared once per architecture.
///
/// [`new`](Self::new) checks what can be checked without the model (names, members, block
/// sizes); the shapes are checked against the `VarStore` each time the coupling is used, so a
/// declaration that does not match the model is an error naming the group and the parameter.
/// Serialises as the list of its groups.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{presets, Coupling, PruneError};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let _fc1 = nn::linear(vs.root() / "fc1", 4, 8, Default::default());
/// let _fc2 = nn::linear(vs.root() / "fc2", 8, 2, Default::default());
/// let coupling = Coupling::new(vec![presets::linear_chain("fc1", "fc1", &["fc2"])])?;
/// assert_eq!(coupling.units(&vs)?, [("fc1".to_string(), 8)]);
///
/// // fc2's input columns are dim 1, not dim 0:
/// let wrong = presets::linear_chain("fc1", "fc1", &[]).dim("fc2.weight", 0);
/// let err = Coupling::new(vec![wrong])?.units(&vs).unwrap_err();
/// assert!(matches!(err, PruneError::GroupSizeMismatch { ref parameter, .. } if parameter == "fc2.weight"));
/// # Ok::<(), PruneError>(())
/// ```
///
/// Torch-Pruning equivalent: the `DependencyGraph` built by `build_dependency(model,
/// example_inputs)`, declared instead of traced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<ChannelGroup>", into = "Vec<ChannelGroup>")]
pub struct Coupling {
    groups: Vec<ChannelGroup>,
}

impl TryFrom<Vec<ChannelGroup>> for Coupling {
    type Error = PruneError;

    fn try_from(groups: Vec<ChannelGroup>) -> Result<Self> {
        Self::new(groups)
    }
}

impl From<Coupling> for Vec<ChannelGroup> {
    fn from(coupling: Coupling) -> Self {
        coupling.groups
    }
}

impl Coupling {
    /// Validates `groups`.
    ///
    /// # Errors
    /// [`PruneError::InvalidGroup`] for an empty or repeated group name, a group without
    /// members or with only slice members ([`Member::at_offset`]), a member listed twice, a block size below 1 or a
    /// negative offset.
    pub fn new(groups: Vec<ChannelGroup>) -> Result<Self> {
        let mut names = HashSet::new();
        for group in &groups {
            let invalid =
                |reason: String| PruneError::InvalidGroup { group: group.name().into(), reason };
            if group.name().is_empty() {
                return Err(invalid("the name is empty".into()));
            }
            if !names.insert(group.name()) {
                return Err(invalid("the name is used by another group".into()));
            }
            if !group.members().iter().any(|m| !m.is_slice()) {
                return Err(invalid(
                    "needs at least one member that is not a slice (to count its units)".into(),
                ));
            }
            let mut seen = HashSet::new();
            for m in group.members() {
                if m.block() < 1 {
                    return Err(invalid(format!(
                        "{:?}: block {} is below 1",
                        m.param(),
                        m.block()
                    )));
                }
                if m.offset() < 0 {
                    return Err(invalid(format!(
                        "{:?}: offset {} is negative",
                        m.param(),
                        m.offset()
                    )));
                }
                if !seen.insert((m.param(), m.dim())) {
                    return Err(invalid(format!(
                        "{:?} dim {} is listed twice",
                        m.param(),
                        m.dim()
                    )));
                }
            }
        }
        Ok(Self { groups })
    }

    /// The groups, in declaration order.
    pub fn groups(&self) -> &[ChannelGroup] {
        &self.groups
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&ChannelGroup> {
        self.groups.iter().find(|g| g.name() == name)
    }

    /// Each group's unit count in the model of `vs`, in declaration order.
    ///
    /// # Errors
    /// [`PruneError::GroupMemberMissing`], [`PruneError::GroupDimOutOfRange`] or
    /// [`PruneError::GroupSizeMismatch`] for a declaration that does not fit the model.
    pub fn units(&self, vs: &VarStore) -> Result<Vec<(String, i64)>> {
        Ok(self.resolve(vs)?.into_iter().map(|g| (g.name, g.units)).collect())
    }

    /// Checks every group against the variables of `vs` and finds their unit counts.
    pub(crate) fn resolve(&self, vs: &VarStore) -> Result<Vec<ResolvedGroup>> {
        let vars = Vars::of(vs);
        let vars = vars.lock();
        let lookup = |name: &str| -> Result<Option<(Tensor, bool)>> {
            if let Some(var) = vars.named_variables.get(name) {
                return Ok(Some((var.shallow_clone(), false)));
            }
            let orig = vars.named_variables.get(&orig_name(name));
            let mask = vars.named_variables.get(&mask_name(name));
            match (orig, mask) {
                (Some(orig), Some(mask)) => {
                    let value = tch::no_grad(|| effective(orig, mask))?;
                    Ok(Some((value.f_set_requires_grad(orig.requires_grad())?, true)))
                }
                _ => Ok(None),
            }
        };
        let mut out = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let mut members = Vec::with_capacity(group.members().len());
            for m in group.members() {
                let (value, reparametrized) =
                    lookup(m.param())?.ok_or_else(|| PruneError::GroupMemberMissing {
                        group: group.name().into(),
                        parameter: m.param().into(),
                    })?;
                let shape = value.size();
                let ndim = shape.len() as i64;
                if m.dim() < -ndim || m.dim() >= ndim {
                    return Err(PruneError::GroupDimOutOfRange {
                        group: group.name().into(),
                        parameter: m.param().into(),
                        dim: m.dim(),
                        ndim,
                    });
                }
                let dim = m.dim().rem_euclid(ndim.max(1)) as usize;
                members.push(ResolvedMember {
                    member: m.clone(),
                    dim,
                    size: shape[dim],
                    trainable: value.requires_grad(),
                    reparametrized,
                    value,
                });
            }
            let units = unit_count(group, &members)?;
            out.push(ResolvedGroup {
                name: group.name().into(),
                units,
                normalized: group.is_normalized(),
                unit: group.unit_kind(),
                members,
            });
        }
        Ok(out)
    }
}

/// The group's units, from its first member that is not a slice; every member must fit.
fn unit_count(group: &ChannelGroup, members: &[ResolvedMember]) -> Result<i64> {
    let first = members.iter().find(|m| !m.member.is_slice());
    let units = first.map_or(0, |m| m.size / m.member.block());
    for m in members {
        let needed = units * m.member.block();
        let (fits, expected) = if m.member.is_slice() {
            (m.member.offset() + needed <= m.size, m.member.offset() + needed)
        } else {
            (needed == m.size, needed)
        };
        if !fits || units == 0 {
            return Err(PruneError::GroupSizeMismatch {
                group: group.name().into(),
                parameter: m.member.param().into(),
                dim: m.member.dim(),
                size: m.size,
                expected: expected.max(m.member.block()),
            });
        }
    }
    Ok(units)
}

/// A group checked against a model.
#[derive(Debug)]
pub(crate) struct ResolvedGroup {
    pub(crate) name: String,
    pub(crate) units: i64,
    pub(crate) normalized: bool,
    pub(crate) unit: super::group::Unit,
    pub(crate) members: Vec<ResolvedMember>,
}

/// A member checked against its variable.
#[derive(Debug)]
pub(crate) struct ResolvedMember {
    pub(crate) member: Member,
    /// The dimension, non-negative.
    pub(crate) dim: usize,
    /// The variable's size along `dim`.
    pub(crate) size: i64,
    /// Whether the variable is trainable (a parameter, not a buffer such as BatchNorm's
    /// running statistics).
    pub(crate) trainable: bool,
    /// Whether the variable is pruned with a mask (`<name>_orig` / `<name>_mask`).
    pub(crate) reparametrized: bool,
    /// Its value (`orig * mask` when reparametrized).
    pub(crate) value: Tensor,
}

impl ResolvedMember {
    /// The entries of unit `u` along `dim`: `offset + u * block ..` (`block` of them).
    pub(crate) fn entries(&self, units: &[i64]) -> Vec<i64> {
        let (offset, block) = (self.member.offset(), self.member.block());
        units.iter().flat_map(|&u| (0..block).map(move |j| offset + u * block + j)).collect()
    }
}
