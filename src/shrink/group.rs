//! Coupling declarations: a [`ChannelGroup`] is a set of [`Member`]s (parameter, dimension,
//! index mapping) that must lose the same units (channels, heads, normalisation groups).

use serde::{Deserialize, Serialize};

/// One tensor dimension that belongs to a [`ChannelGroup`], with the mapping from the group's
/// units to its entries.
///
/// Unit `u` of the group owns the entries `offset + u * block .. offset + (u + 1) * block` of
/// dimension `dim` of `param`:
///
/// * `block = 1` (the default): one entry per unit, e.g. a convolution's output channel
///   (`weight` dim 0) or the matching input column of the next layer (`weight` dim 1);
/// * `block > 1`: consecutive entries per unit, e.g. the `H·W` inputs of a Linear after a
///   flatten, or the `head_dim` rows of one attention head;
/// * [`at_offset`](Self::at_offset): the group covers a slice of a larger dimension, from
///   `offset` on, e.g. one input of a concatenation.
///
/// ```
/// use tch_prune::Member;
///
/// let rows = Member::new("conv1.weight", 0);
/// let cols = Member::new("fc.weight", 1).blocks(16); // conv1's channel c owns fc inputs 16c..16c+16
/// assert_eq!((cols.dim(), cols.block(), cols.offset()), (1, 16, 0));
/// # let _ = rows;
/// ```
///
/// Torch-Pruning equivalent: one dependency of a `Group` (`prune_out_channels(conv1)`,
/// `prune_in_channels(fc)`), found there by tracing and declared here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    param: String,
    dim: i64,
    #[serde(default)]
    offset: i64,
    #[serde(default = "one")]
    block: i64,
    /// Whether the member covers part of its dimension only.
    #[serde(default)]
    slice: bool,
}

fn one() -> i64 {
    1
}

impl Member {
    /// `param` (its full `VarStore` name) along `dim`, one entry per unit.
    pub fn new(param: impl Into<String>, dim: i64) -> Self {
        Self { param: param.into(), dim, offset: 0, block: 1, slice: false }
    }

    /// Each unit owns `block` consecutive entries (flatten after a convolution: `H·W`; an
    /// attention head: `head_dim`; a GroupNorm group: `channels / num_groups`).
    pub fn blocks(mut self, block: i64) -> Self {
        self.block = block;
        self
    }

    /// The group covers the entries from `offset` on of a larger dimension (the input of a
    /// concatenation that starts there; `at_offset(0)` for the first one); the rest of the
    /// dimension is left alone.
    pub fn at_offset(mut self, offset: i64) -> Self {
        self.offset = offset;
        self.slice = true;
        self
    }

    /// The parameter's full `VarStore` name.
    pub fn param(&self) -> &str {
        &self.param
    }

    /// The dimension.
    pub fn dim(&self) -> i64 {
        self.dim
    }

    /// The entries per unit.
    pub fn block(&self) -> i64 {
        self.block
    }

    /// The first entry of unit 0.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Whether the member covers part of its dimension only ([`at_offset`](Self::at_offset)).
    pub fn is_slice(&self) -> bool {
        self.slice
    }
}

/// What a group's units are, for reports and the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Channels or features (the default).
    #[default]
    Channels,
    /// Attention heads.
    Heads,
    /// GroupNorm groups.
    NormGroups,
}

/// A set of tensor dimensions that must lose the same units: the producer's output rows and
/// bias, a BatchNorm's four vectors, the consumer's input columns, and so on.
///
/// Build one by hand, or with the ready-made declarations of
/// [`presets`](crate::presets) (chains, Conv → BN → Conv, residual stages, FFN blocks,
/// attention heads, GroupNorm). A group is checked against the model's shapes when it is used:
/// a member whose size does not match is an error naming the group and the parameter.
///
/// ```
/// use tch_prune::{ChannelGroup, Member};
///
/// // fc1's 32 output features feed fc2.
/// let group = ChannelGroup::new("fc1")
///     .member(Member::new("fc1.weight", 0))
///     .member(Member::new("fc1.bias", 0))
///     .member(Member::new("fc2.weight", 1));
/// assert_eq!(group.members().len(), 3);
/// ```
///
/// Torch-Pruning equivalent: a `Group` from `DG.get_pruning_group(...)`; NNI: the masks
/// ModelSpeedup propagates between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelGroup {
    name: String,
    members: Vec<Member>,
    #[serde(default)]
    unit: Unit,
    #[serde(default)]
    normalized: bool,
}

impl ChannelGroup {
    /// An empty group named `name` (names must be unique within a
    /// [`Coupling`](crate::Coupling)).
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), members: Vec::new(), unit: Unit::Channels, normalized: false }
    }

    /// Adds a member.
    pub fn member(mut self, member: Member) -> Self {
        self.members.push(member);
        self
    }

    /// Adds `param` along `dim`, one entry per unit: shorthand for
    /// `member(Member::new(param, dim))`.
    pub fn dim(self, param: impl Into<String>, dim: i64) -> Self {
        self.member(Member::new(param, dim))
    }

    /// Adds the output side of a Linear or convolution at `layer`: `<layer>.weight` dim 0
    /// and, when `bias`, `<layer>.bias` dim 0.
    pub fn output_of(self, layer: &str, bias: bool) -> Self {
        let out = self.dim(format!("{layer}.weight"), 0);
        if bias {
            out.dim(format!("{layer}.bias"), 0)
        } else {
            out
        }
    }

    /// Adds the input side of a Linear or convolution at `layer`: `<layer>.weight` dim 1.
    pub fn input_of(self, layer: &str) -> Self {
        self.dim(format!("{layer}.weight"), 1)
    }

    /// Adds a BatchNorm at `layer`: `weight`, `bias`, `running_mean` and `running_var`.
    pub fn batch_norm(self, layer: &str) -> Self {
        ["weight", "bias", "running_mean", "running_var"]
            .iter()
            .fold(self, |group, name| group.dim(format!("{layer}.{name}"), 0))
    }

    /// Labels the units (for the report and manifest).
    pub fn unit(mut self, unit: Unit) -> Self {
        self.unit = unit;
        self
    }

    /// Marks the group as passing through a normalisation over the pruned dimension (a
    /// LayerNorm over the hidden size): the masked model still counts the removed channels in
    /// its mean and variance and the shrunk one does not, so their outputs legitimately
    /// differ. Shrinking such a group checks that the shrunk model runs and reports the
    /// difference without failing on it. (GroupNorm losing whole groups is not such a case:
    /// each group is normalised on its own, so the outputs agree.)
    pub fn crosses_normalization(mut self) -> Self {
        self.normalized = true;
        self
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The members, in declaration order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// What the units are.
    pub fn unit_kind(&self) -> Unit {
        self.unit
    }

    /// Whether the group crosses a normalisation over the pruned dimension.
    pub fn is_normalized(&self) -> bool {
        self.normalized
    }
}
