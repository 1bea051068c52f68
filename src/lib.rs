//! # tch-prune
//!
//! PyTorch's `torch.nn.utils.prune` for [`tch`]: the same pruning methods, the same masks (bit
//! for bit at every size, seeded random methods included) and the same names, with typed
//! errors.
//!
//! ## Quick start
//!
//! ```
//! use tch::Tensor;
//! use tch_prune::{L1Unstructured, LnStructured, PruningContainer, PruningMethod};
//!
//! let w = Tensor::from_slice(&[0.1f32, -2.0, 0.3, 4.0, -0.5, 6.0]).reshape([2, 3]);
//!
//! // Prune the two entries of smallest magnitude (PyTorch: L1Unstructured(amount=2)).
//! let mask = L1Unstructured::new(2)?.compute_mask(&w, &w.ones_like())?;
//! assert_eq!(Vec::<f32>::try_from(&mask.reshape([-1]))?, vec![0., 1., 0., 1., 1., 1.]);
//!
//! // Then half of the remaining columns by L2 norm, on top of that mask.
//! let mut history = PruningContainer::new();
//! history.add_pruning_method(Box::new(L1Unstructured::new(2)?));
//! history.add_pruning_method(Box::new(LnStructured::new(0.5, 2, 1)?));
//! let mask = history.compute_mask(&(&w * &mask), &mask)?;
//! assert_eq!(Vec::<f32>::try_from(&mask.reshape([-1]))?, vec![0., 0., 0., 0., 0., 1.]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What is here
//!
//! * [`PruningMethod`]: the trait every method implements (object-safe; implement
//!   `compute_mask` and `pruning_type` to write your own).
//! * The built-in methods [`Identity`], [`RandomUnstructured`], [`L1Unstructured`],
//!   [`RandomStructured`], [`LnStructured`] and [`CustomFromMask`], with [`Amount`],
//!   [`Norm`] and [`PruningType`].
//! * [`PruningContainer`]: a pruning history and PyTorch's rule for combining a new method
//!   with the earlier masks.
//! * [`PrunedModel`]: model-level pruning by `VarStore` name (`l1_unstructured`,
//!   `ln_structured`, `global_unstructured`, `remove`, ...), with the `<name>_orig` /
//!   `<name>_mask` reparametrization and pruned-checkpoint loading; layers are reached through
//!   [`Prunable`] (implemented for tch's layers, [`prunable!`] for your structs).
//! * [`PruningSchedule`] ([`ConstantSparsity`], [`PolynomialDecay`], [`Cubic`], [`FromFn`]) and
//!   [`GradualPruner`]: gradual magnitude pruning to a sparsity that rises during training;
//!   [`ScheduleConfig`]: a built-in schedule as data, tagged by its `kind`.
//! * [`HardMask`] and [`MaskedOptimizer`]: hard-mask mode for models whose layers cannot be
//!   reached (`nn::seq()`, LSTM/GRU, TorchScript `TrainableCModule`): masks multiplied into the
//!   `VarStore` tensors in place, and an optimizer wrapper that keeps pruned weights at zero.
//! * [`SparsityReport`]: per-parameter and global sparsity as data (serde), an aligned text
//!   table and a bar chart (SVG with the `plot` feature, PNG with `plot-png`).
//! * [`PruningRecipe`]: a pruning plan in JSON or TOML (steps selecting parameters by glob
//!   pattern and/or [`LayerKind`], each with a [`RecipeMethod`]), applied in one call that
//!   changes nothing on error; steps with a `schedule` instead of an amount come back as
//!   [`GradualPruner`]s for the training loop.
//! * Physical channel removal ([`Shrink`]): coupling groups declared once per architecture
//!   ([`ChannelGroup`], [`Coupling`], ready-made in [`presets`]), ranked locally or globally
//!   ([`ChannelPruning`] → [`Selection`], maskable first for fine-tuning), then removed in
//!   place from the model and its `VarStore` with a built-in equivalence check, a
//!   [`ShrinkManifest`] of the new sizes, and [`ModelStats`] / [`median_latency`] to measure
//!   the result.
//! * [`PruneError`]: the one error type.
//!
//! Coming from PyTorch? [`for_pytorch_users`] translates every call.
//!
//! ## Parity with PyTorch
//!
//! Masks are computed with the same libtorch operations PyTorch uses (`topk`, `kthvalue`,
//! `rand_like`, `rand`, `norm`), so they are identical to PyTorch's on the same backend,
//! including which entries go when magnitudes tie and, after `tch::manual_seed(s)`, the random
//! methods. Mask kinds follow PyTorch's rules (the parameter's kind, or the importance kind in
//! a container or for structured methods). The differences are deliberate and documented where
//! they occur: NaN amounts and NaN norm orders are rejected at construction, `"nuc"` is not
//! offered, a container never modifies the caller's mask, and custom masks follow the device of
//! the mask they combine with.
//!
//! On large CPU tensors (32768 entries or more) the `k` entries to prune are found in linear
//! time instead of by `topk`'s sort, with the same result: where tied scores straddle the
//! threshold (only some of the tied entries are to go, as after prune, `remove`, prune, when
//! every zeroed entry ties at 0), the selection libtorch's CPU `topk` runs on what PyTorch calls
//! it on (the tensor, a container's still-unpruned slice, or global pruning's concatenation) is
//! replayed step for step (libstdc++'s `nth_element` or heap selection), so ties resolve exactly
//! as in PyTorch, without `topk`'s copies and sort ([`TieBreak::LowestIndex`] is the opt-in
//! that decides them lowest index first instead: faster, not PyTorch's mask where ties
//! straddle). [`RandomUnstructured`] draws `rand_like` as
//! PyTorch does at every size; [`RandomUnstructured::with_hashed_draws`] gives up PyTorch's
//! seeded masks for speed on large CPU tensors (keys hashed from entry indices: uniform, exact
//! and reproducible under `tch::manual_seed`).
// `unsafe` is denied everywhere but in `kernels`, the one module that reads tensor memory in
// place for the selection kernels (see its documentation for why and how it is sound).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod amount;
mod checkpoint;
mod container;
mod error;
pub mod for_pytorch_users;
mod glob;
mod global;
mod hard_mask;
mod kernels;
mod method;
mod model;
pub mod movement;
pub mod offline;
mod prunable;
mod pruner;
mod recipe;
mod reparam;
mod report;
mod schedule;
pub mod semi_sparse;
mod shrink;
mod tie_break;
mod var_store;

pub use container::PruningContainer;
pub use error::{PruneError, Result};
pub use hard_mask::{HardMask, MaskedOptimizer};
pub use method::{
    Amount, CustomFromMask, Identity, L1Unstructured, LnStructured, LnStructuredBuilder, Norm,
    PruningMethod, PruningType, RandomStructured, RandomStructuredBuilder, RandomUnstructured,
    SemiStructured,
};
pub use model::PrunedModel;
pub use prunable::Prunable;
pub use pruner::Pruner;
pub use recipe::{
    GlobalPruningMethod, LayerKind, PruningRecipe, RecipeMethod, RecipeOutcome, RecipeStep,
    StepOutcome,
};
pub use report::{ParameterReport, SparsityReport};
pub use schedule::{
    ConstantSparsity, Cubic, FromFn, GradualPruner, ParameterSparsity, PolynomialDecay,
    PruneProgress, PruningSchedule, PruningScope, ScheduleConfig,
};

pub use shrink::{
    median_latency, presets, ChannelGroup, ChannelPruning, Coupling, GroupSize, LayerSize,
    LayerStats, Member, ModelStats, Selection, Shrink, ShrinkManifest, ShrinkReport, Unit,
};
/// The `tch` this crate is built against, so that your code names exactly the same tensors,
/// `VarStore`s and layers without a `tch` requirement of its own to keep in step with this
/// crate's. A second, incompatible `tch` requirement cannot be resolved at all: each `tch`
/// release comes with a `torch-sys` that links libtorch, and cargo allows one such package per
/// build.
///
/// ```
/// use tch_prune::tch::{Kind, Tensor};
/// use tch_prune::{L1Unstructured, PruningMethod};
///
/// let w = Tensor::from_slice(&[0.5f32, -3.0, 1.0, 0.1]);
/// let mask = L1Unstructured::new(2)?.compute_mask(&w, &w.ones_like())?;
/// assert_eq!(mask.sum(Kind::Float).double_value(&[]), 2.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use tch;
pub use tie_break::TieBreak;

/// Items the [`prunable!`] macro expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::prunable::{push_child_modules, push_child_modules_mut, push_child_slots};
    pub use tch::Tensor;
}

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
