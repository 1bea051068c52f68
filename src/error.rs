//! The crate's one error type, [`PruneError`], and [`Result`].
//!
//! One enum, so one file: its variants (amounts and arguments, parameters and slots, recipes
//! and schedules, reports, coupling groups and shrinking) cannot be spread over files without
//! changing their public paths, and the file is almost all their documentation. The offline
//! tools have their own [`OfflineError`](crate::offline::OfflineError).

use tch::{Kind, TchError};

use crate::method::{Norm, PruningType};

/// Everything that can go wrong in `tch-prune`.
///
/// Each variant names the parameter at fault, the value it had and the limit it broke, so a
/// caller can react to it programmatically; the messages are lower-case and meant for logs.
/// A call that returns an error leaves its inputs (tensors, masks, models) exactly as they were.
///
/// PyTorch raises `TypeError`, `ValueError`, `IndexError`, `AttributeError` or an assertion for
/// these conditions; the mapping is given on each variant. Conditions that
/// PyTorch checks at run time but Rust's types rule out (an amount that is a string, a method
/// that is not a pruning method, a structured method without `dim`, an unknown pruning type)
/// have no variant.
///
/// ```
/// use tch_prune::{Amount, L1Unstructured, PruneError};
///
/// // PyTorch: `ValueError` from `L1Unstructured(amount=1.1)`.
/// let err = L1Unstructured::new(1.1).unwrap_err();
/// assert!(matches!(err, PruneError::FractionOutOfRange { value } if value == 1.1));
/// assert_eq!(err.to_string(), "amount: fraction 1.1 is outside [0, 1]");
/// # let _ = Amount::Count(1);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PruneError {
    /// A fractional amount outside `[0, 1]`, or NaN. PyTorch: `ValueError` at construction
    /// (NaN only fails later, when the count is computed; we reject it up front).
    #[error("amount: fraction {value} is outside [0, 1]")]
    FractionOutOfRange {
        /// The fraction that was given.
        value: f64,
    },

    /// A negative absolute count. PyTorch: `ValueError` at construction.
    #[error("amount: count {value} is negative; a count must be >= 0")]
    NegativeCount {
        /// The count that was given.
        value: i64,
    },

    /// The number of units to prune exceeds the units available (inside a container: the
    /// units still unpruned). PyTorch: `ValueError` from `_validate_pruning_amount`.
    #[error("amount: cannot prune {requested} units, only {available} are available")]
    AmountTooLarge {
        /// Units the amount asks for.
        requested: i64,
        /// Units that can be pruned.
        available: i64,
    },

    /// A structured method met a tensor with fewer than two dimensions. PyTorch: `ValueError`
    /// from `_validate_structured_pruning`.
    #[error("importance: structured pruning needs a tensor with at least 2 dimensions, got shape {shape:?}")]
    NotStructured {
        /// Shape of the tensor that was given.
        shape: Vec<i64>,
    },

    /// `dim` does not index the tensor (`dim >= ndim` or `dim < -ndim`). PyTorch:
    /// `IndexError`.
    #[error("dim: {dim} is out of range for a tensor with {ndim} dimensions")]
    DimOutOfRange {
        /// The dimension that was asked for.
        dim: i64,
        /// The number of dimensions of the tensor.
        ndim: i64,
    },

    /// Two tensors that must have one shape do not. PyTorch: `AssertionError` (importance
    /// scores, custom masks) or a libtorch error (default masks).
    #[error("{parameter}: shape {actual:?} does not match the expected shape {expected:?}")]
    ShapeMismatch {
        /// The argument whose shape is wrong (`"importance_scores"`, `"default_mask"`, ...).
        parameter: &'static str,
        /// The shape it must have.
        expected: Vec<i64>,
        /// The shape it has.
        actual: Vec<i64>,
    },

    /// A norm order that is not a number (NaN). PyTorch accepts it and fails inside `torch.norm`.
    #[error("n: {value} is not a valid norm order (any p that is not NaN, inf, -inf or fro)")]
    InvalidNorm {
        /// The order that was given.
        value: f64,
    },

    /// `n = "fro"` ([`Norm::Fro`]) on a tensor of 4 or more dimensions: PyTorch's
    /// `torch.norm(t, p="fro", dim=dims)` is the 2-norm only over at most two dims, and with
    /// three or more it calls `linalg.matrix_norm`, which raises. PyTorch: `RuntimeError`
    /// (`linalg.matrix_norm: dim must be a 2-tuple`), even when nothing is pruned.
    #[error(
        "n: the {norm} norm needs a tensor of at most {max_ndim} dimensions, got shape {shape:?}"
    )]
    UnsupportedNorm {
        /// The norm that was given.
        norm: Norm,
        /// Shape of the tensor it was asked to rank.
        shape: Vec<i64>,
        /// The most dimensions that norm accepts.
        max_ndim: i64,
    },

    /// A tensor that is not dense: sparse (COO, CSR, CSC, BSR, BSC) or MKL-DNN. Pruning reads,
    /// compares and writes tensors entry by entry, which needs the strided layout. PyTorch
    /// raises a `NotImplementedError`, `RuntimeError` or `TypeError` from libtorch, depending on
    /// the method and layout (its `Identity` and `CustomFromMask` happen to accept a CSR
    /// tensor given to `prune` directly; here every entry point refuses all of them).
    #[error("{parameter}: tensors with layout {layout:?} are not supported; expected a dense (strided) tensor")]
    UnsupportedLayout {
        /// The tensor at fault: an argument (`"importance_scores"`, `"default_mask"`,
        /// `"mask"`, ...) or the `VarStore` name of a parameter.
        parameter: String,
        /// Its layout ([`tch::Layout::NumOptions`] for a layout tch has no name for).
        layout: tch::Layout,
    },

    /// A method cannot score a tensor of this kind (random or norm-based methods on integer
    /// tensors). PyTorch: `NotImplementedError` from libtorch.
    #[error("{parameter}: tensors of kind {kind:?} are not supported here; expected {expected}")]
    UnsupportedKind {
        /// The argument whose kind is wrong.
        parameter: &'static str,
        /// The kind it has.
        kind: Kind,
        /// What is accepted.
        expected: &'static str,
    },

    /// `compute_mask` on a container that holds no method. PyTorch: `IndexError` from
    /// `self._pruning_methods[-1]`.
    #[error("container: compute_mask needs at least one pruning method, the container is empty")]
    EmptyContainer,

    /// A tensor on another device than the parameter it belongs to (e.g. a mask returned by a
    /// custom method).
    #[error("{parameter}: on device {actual:?}, expected the parameter's device {expected:?}")]
    DeviceMismatch {
        /// The tensor at fault.
        parameter: &'static str,
        /// The parameter's device.
        expected: tch::Device,
        /// The tensor's device.
        actual: tch::Device,
    },

    /// A method whose pruning type the operation does not accept (global pruning takes only
    /// unstructured methods). PyTorch: `TypeError`.
    #[error("pruning_method: {operation} needs an unstructured method, found {found:?}")]
    WrongPruningType {
        /// The operation that refused it.
        operation: &'static str,
        /// The method's pruning type.
        found: PruningType,
    },

    /// No variable of that name in the model's `VarStore` (a missing bias, a typo, or a
    /// parameter that is already pruned under `<name>_orig`). PyTorch: `AttributeError`, or
    /// `TypeError` for a `None` bias (which also leaves the module broken; here nothing
    /// changes).
    #[error("name: no parameter {name:?} in the VarStore")]
    UnknownParameter {
        /// The name that was asked for.
        name: String,
    },

    /// The model's [`Prunable`](crate::Prunable) implementation lists no slot with that path,
    /// so pruning could not reach the layer's forward.
    #[error("name: the model exposes no parameter slot named {name:?} (check its Prunable implementation or prunable! paths)")]
    SlotNotFound {
        /// The parameter path.
        name: String,
    },

    /// One of a model's parameter slots is not the `VarStore` variable of its path: reported
    /// when a [`PrunedModel`](crate::PrunedModel) is made.
    #[error("model: the slot {slot:?} is not the VarStore variable of that name (with prefix {prefix:?}; was the model built under another path? see PrunedModel::with_prefix)")]
    UnmappedSlot {
        /// The slot's full name (prefix and path in the model).
        slot: String,
        /// The prefix the model was wrapped with.
        prefix: String,
    },

    /// The model's slot for that path does not hold the `VarStore` tensor of that name.
    #[error("name: the model's slot {name:?} does not hold the VarStore variable {name:?} (was the model built from this VarStore, with matching paths?)")]
    SlotMismatch {
        /// The parameter path.
        name: String,
    },

    /// The `VarStore` already has a variable where the reparametrization must go
    /// (`<name>_orig` or `<name>_mask`).
    #[error("name: cannot prune {name:?}: the VarStore already has a variable {taken:?}")]
    NameTaken {
        /// The parameter to prune.
        name: String,
        /// The variable that is in the way.
        taken: String,
    },

    /// `remove` (or another operation that needs a pruned parameter) on a parameter that is not
    /// pruned. PyTorch: `ValueError`.
    #[error("name: parameter {name:?} has to be pruned before pruning can be removed")]
    NotPruned {
        /// The parameter path.
        name: String,
    },

    /// The same parameter listed twice for global pruning (PyTorch leaves this undefined).
    #[error("parameters: {name:?} is listed more than once")]
    DuplicateParameter {
        /// The repeated parameter path.
        name: String,
    },

    /// Global pruning over no parameters. PyTorch: `ValueError` from `torch.cat`.
    #[error("parameters: global pruning needs at least one parameter, the list is empty")]
    EmptyParameterList,

    /// A checkpoint's keys do not match the model's variables (strict loading).
    #[error(
        "checkpoint: keys do not match the model: missing {missing:?}, unexpected {unexpected:?}"
    )]
    CheckpointMismatch {
        /// Variables of the model that the checkpoint lacks.
        missing: Vec<String>,
        /// Checkpoint entries that match no variable of the model.
        unexpected: Vec<String>,
    },

    /// An N:M pattern that cannot be: `m` must be at least 1 and `n` (kept per group) at most
    /// `m`.
    #[error("n:m: {n}:{m} is not a valid pattern; need 1 <= m and n <= m")]
    InvalidNm {
        /// Entries kept per group.
        n: i64,
        /// Group size.
        m: i64,
    },

    /// A weight that 2:4 semi-structured kernels cannot take (see
    /// [`semi_sparse::ineligible`](crate::semi_sparse::ineligible)); PyTorch's
    /// `to_sparse_semi_structured` raises for most of these and silently miscomputes the 2:4 one.
    #[error("{parameter}: not 2:4 sparse-capable: {reason}")]
    NotSemiSparse {
        /// The parameter (or `"weight"`).
        parameter: String,
        /// The first rule it breaks.
        reason: crate::semi_sparse::Ineligible,
    },

    /// N:M pruning of a tensor whose last dimension is not a multiple of the group size `m`
    /// (or of a 0-d tensor). PyTorch's `WeightNormSparsifier` pads the last group with NaN
    /// instead; semi-structured kernels need the multiple anyway.
    #[error("importance: N:M groups of {m} do not divide the last dimension of shape {shape:?}")]
    GroupsDoNotDivide {
        /// The group size.
        m: i64,
        /// The shape of the tensor.
        shape: Vec<i64>,
    },

    /// A builder's `build` without a required argument.
    #[error("{parameter}: required, but not given to the builder")]
    MissingArgument {
        /// The argument (`"amount"`, `"n"`).
        parameter: &'static str,
    },

    /// A pruning-schedule parameter outside its range (a negative `begin_step`, an `end_step`
    /// before `begin_step`, a `frequency` below 1, a sparsity outside `[0, 1)`, ...), or a
    /// target sparsity outside `[0, 1]` returned by a custom schedule. TF-MOT: `ValueError`
    /// from `PruningSchedule._validate_step` / `_validate_sparsity`.
    #[error("{parameter}: {value} is out of range; expected {expected}")]
    InvalidSchedule {
        /// The schedule parameter at fault (`"begin_step"`, `"final_sparsity"`, ...).
        parameter: &'static str,
        /// The value it had (steps are converted to `f64`).
        value: f64,
        /// The range it must lie in.
        expected: String,
    },

    /// A movement-pruning threshold outside its range: a kept fraction outside `[0, 1]` for
    /// Top-K and magnitude, a sigmoid threshold outside `[0, 1]` for the soft variant, or NaN.
    /// The reference (`masked_run_squad.py`) does not check.
    #[error("{method}: threshold {value} is out of range; expected {expected}")]
    InvalidThreshold {
        /// The binarizer (`"topK"`, `"sigmoied_threshold"`, ...).
        method: &'static str,
        /// The threshold given.
        value: f64,
        /// The range it must lie in.
        expected: &'static str,
    },

    /// Movement-pruning scores of a granularity that does not fit the parameter: block,
    /// row or column scores need a 2-D weight whose sides the block divides; magnitude
    /// pruning has no scores, so only per-weight granularity. nn_pruning: an assertion in
    /// `MaskedLinear`.
    #[error("{name:?}: score blocks {block:?} do not tile a weight of shape {shape:?}")]
    BlockMismatch {
        /// The parameter.
        name: String,
        /// Its shape.
        shape: Vec<i64>,
        /// The block (rows, columns) asked for; `(0, 0)` for any block under magnitude pruning.
        block: (i64, i64),
    },

    /// A parameter under movement pruning
    /// ([`MovementPruner`](crate::movement::MovementPruner)) was pruned again or had its
    /// pruning removed through [`Pruner`](crate::Pruner): its mask is recomputed from the
    /// scores on every forward, so another method's mask would be overwritten (or, after
    /// `remove`, the pruner would refresh a mask the model no longer has). Fold it first
    /// ([`MovementPruner::fold`](crate::movement::MovementPruner::fold)), then prune the plain
    /// parameter. No counterpart in the reference (its masks live inside `MaskedLinear`).
    #[error("name: {name:?} is under movement pruning; fold the MovementPruner before pruning it (or removing its pruning) another way")]
    MovementManaged {
        /// The parameter.
        name: String,
    },

    /// Hard masking ([`HardMask`](crate::HardMask)) got a mask with entries other than 0 and
    /// 1: multiplied into the weights again after every optimizer step, such a mask would scale
    /// the kept entries once more each time. PyTorch's reparametrization has no such limit (the
    /// mask multiplies the untouched original); use [`PrunedModel`](crate::PrunedModel) for
    /// non-binary masks.
    #[error("mask: hard masking of {name:?} needs a mask of zeros and ones only")]
    NonBinaryMask {
        /// The parameter whose mask is not binary.
        name: String,
    },

    /// A [`PruningRecipe`](crate::PruningRecipe) that cannot be read or applied as written:
    /// malformed JSON/TOML, an unknown field, method or layer kind, an invalid amount, an
    /// argument the method needs or refuses, a `schedule` that is invalid (a field missing,
    /// refused or out of range, an unknown `kind`), given with an `amount`, or on a method that
    /// cannot be scheduled, a name or pattern that matches no parameter, a layer kind the model
    /// does not have. Found before anything is pruned.
    #[error("recipe: {field}: {reason}")]
    InvalidRecipe {
        /// Where in the recipe: `"steps[1].amount"`, `"steps[0].parameters[2]"`,
        /// `"steps[0].schedule.final_sparsity"`, `"recipe"` for the document as a whole.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A recipe step failed on the model (a count larger than a parameter, a `dim` out of
    /// range, a structured method on a 1-D parameter, ...). The steps before it were undone:
    /// the model is as before the recipe.
    #[error("recipe: {field} ({parameter}): {source}")]
    RecipeStepFailed {
        /// The step and, where the error points at one, its field (`"steps[2].amount"`).
        field: String,
        /// The parameter being pruned (all of them, comma-separated, for a global step).
        parameter: String,
        /// The pruning error.
        source: Box<PruneError>,
    },

    /// A tensor that must be written in place has entries sharing memory (a stride of 0 along a
    /// dimension longer than 1, as in an `expand`ed tensor), which libtorch refuses to write
    /// into. Found before anything is written: a checkpoint entry's destination variable
    /// ([`PrunedModel::load_pruned_checkpoint`](crate::PrunedModel::load_pruned_checkpoint)),
    /// or a variable (or gradient) a [`HardMask`](crate::HardMask) multiplies in place.
    /// PyTorch: `RuntimeError` from `copy_` / `mul_` ("more than one element of the written-to
    /// tensor refers to a single memory location").
    #[error("name: {name:?} cannot be written in place: its shape {shape:?} with strides {strides:?} makes entries share memory (a stride of 0 along a dimension longer than 1); give it its own storage first")]
    InternalOverlap {
        /// The variable (or `"<name>.grad"` for a gradient).
        name: String,
        /// Its shape.
        shape: Vec<i64>,
        /// Its strides.
        strides: Vec<i64>,
    },

    /// A [`SparsityReport`](crate::SparsityReport) value a chart cannot draw: a sparsity
    /// percentage outside `[0, 100]` or NaN (a report deserialized from untrusted data, or
    /// edited by hand), or a PNG chart too large to allocate.
    #[error("report: {field} is {value}; expected {expected}")]
    InvalidReport {
        /// The field at fault (`"parameters[2].sparsity_percent"`, `"sparsity_percent"`).
        field: String,
        /// The value it has.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },

    /// A file could not be read or written (a recipe, a chart).
    #[error("io: cannot {operation} {path:?}: {source}")]
    Io {
        /// `"read"` or `"write"`.
        operation: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// Drawing a chart failed (`plotters`' error, as text: its type depends on the backend).
    #[error("plot: {reason}")]
    Plot {
        /// What `plotters` reported.
        reason: String,
    },

    /// A coupling group that is malformed in itself, whatever the model: no members, an
    /// empty or repeated name, a member listed twice, a block size below 1, a negative
    /// offset, or only slice members (nothing to count the group's units from).
    #[error("coupling: group {group:?}: {reason}")]
    InvalidGroup {
        /// The group's name.
        group: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A group member that names no variable of the `VarStore`.
    #[error("coupling: group {group:?}: no parameter {parameter:?} in the VarStore")]
    GroupMemberMissing {
        /// The group's name.
        group: String,
        /// The member's parameter.
        parameter: String,
    },

    /// A group member whose `dim` does not index its parameter.
    #[error("coupling: group {group:?}: dim {dim} is out of range for {parameter:?} with {ndim} dimensions")]
    GroupDimOutOfRange {
        /// The group's name.
        group: String,
        /// The member's parameter.
        parameter: String,
        /// The member's dimension.
        dim: i64,
        /// The parameter's number of dimensions.
        ndim: i64,
    },

    /// A group member whose size along its dimension does not match the group: `expected` is
    /// `units * block` (plus the offset, as an upper bound, for a slice member), from the
    /// group's first member that is not a slice.
    #[error("coupling: group {group:?}: {parameter:?} has size {size} along dim {dim}, the group needs {expected}")]
    GroupSizeMismatch {
        /// The group's name.
        group: String,
        /// The member's parameter.
        parameter: String,
        /// The member's dimension.
        dim: i64,
        /// Its size along `dim`.
        size: i64,
        /// The size the group needs.
        expected: i64,
    },

    /// A pruning step that would remove every unit of a group (every channel, every head).
    #[error("group {group:?}: removing {removed} of its {units} units would leave none")]
    GroupWouldBeEmpty {
        /// The group's name.
        group: String,
        /// The units the step would remove.
        removed: i64,
        /// The units the group has.
        units: i64,
    },

    /// A group name (in a selection, an importance map, a ratio or an ignore list) that the
    /// coupling does not declare.
    #[error("group {group:?}: not declared in the coupling")]
    UnknownGroup {
        /// The name that was given.
        group: String,
    },

    /// A selection whose unit indices do not fit its group: out of range, repeated, or made
    /// for a group of another size (`units` is the group's size now).
    #[error("group {group:?}: unit index {index} is invalid for a group of {units} units")]
    InvalidUnitIndex {
        /// The group's name.
        group: String,
        /// The offending index (or the selection's unit count when the sizes differ).
        index: i64,
        /// The group's units.
        units: i64,
    },

    /// Shrinking met a parameter that is still reparametrized (`<name>_orig` and
    /// `<name>_mask`): make its pruning permanent with [`remove`](crate::Pruner::remove)
    /// first.
    #[error(
        "shrink: {name:?} is still pruned with a mask; call remove({name:?}) before shrinking"
    )]
    StillReparametrized {
        /// The parameter.
        name: String,
    },

    /// A layer that cannot be shrunk in place along the requested dimension (a grouped or
    /// depthwise convolution, whose group count tch keeps private; a GroupNorm losing part
    /// of a group).
    #[error("shrink: layer {layer:?} cannot be shrunk in place: {reason}")]
    UnsupportedLayer {
        /// The layer's path.
        layer: String,
        /// Why, and what to do instead.
        reason: String,
    },

    /// The shrunk model did not compute what the masked model computed on the check inputs:
    /// the largest absolute difference exceeded `tolerance` times the masked output's largest
    /// magnitude, or the shrunk forward failed. `group` is the first group found to fail on
    /// its own (`None` when each group passes alone or the masked forward failed). The model
    /// and the `VarStore` are restored.
    #[error("shrink: the shrunk model differs from the masked one (group {group:?}): {detail}")]
    ShrinkMismatch {
        /// The offending group, when one group alone reproduces the failure.
        group: Option<String>,
        /// The largest absolute difference (NaN when the forward failed).
        max_diff: f64,
        /// The allowed difference (tolerance times the output's scale).
        allowed: f64,
        /// What happened (the difference, or the forward's panic message).
        detail: String,
    },

    /// A [`ShrinkManifest`](crate::ShrinkManifest) that cannot be read (malformed JSON, a
    /// missing field).
    #[error("manifest: {reason}")]
    InvalidManifest {
        /// What serde_json reported.
        reason: String,
    },

    /// An error raised by libtorch (through tch's fallible `f_*` calls).
    #[error(transparent)]
    Torch(#[from] TchError),
}

/// `Result` with [`PruneError`].
pub type Result<T, E = PruneError> = std::result::Result<T, E>;
