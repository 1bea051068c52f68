//! [`PruningRecipe`]: a pruning plan as data (JSON or TOML), applied to any
//! [`Pruner`](crate::Pruner) model in one call.
//!
//! This file holds the recipe type and its builders; the rest is one concept per file:
//! `step.rs` ([`RecipeStep`] and its selection), `method.rs` ([`RecipeMethod`],
//! [`LayerKind`]), `repr.rs` (the serde form of a step and its validation into a
//! [`RecipeStep`]), `io.rs` (reading and writing JSON, TOML and files, with parse errors that
//! name the field), `apply.rs` (checking, running and undoing), `outcome.rs`
//! ([`RecipeOutcome`]).
//!
//! # Schedules
//!
//! A step of `l1_unstructured` or `global_unstructured` (with L1 ranking, the methods a
//! [`GradualPruner`] runs) may carry a `schedule` table instead of an `amount` (read in
//! `repr.rs` beside the other step fields, in [`ScheduleConfig`](crate::ScheduleConfig)'s
//! form, into [`RecipeMethod::Gradual`]). `apply` checks and resolves such a step's selection
//! exactly as any other's (`PruningRecipe::plan`), prunes nothing for it, and hands back one
//! `GradualPruner` per scheduled step in [`RecipeOutcome::gradual_pruners`], for the training
//! loop to drive.

mod apply;
mod io;
mod method;
mod outcome;
mod repr;
mod step;

pub use method::{GlobalPruningMethod, LayerKind, RecipeMethod};
pub use outcome::{RecipeOutcome, StepOutcome};
pub use step::RecipeStep;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::schedule::GradualPruner;

/// A pruning plan: steps applied in order, each selecting parameters by name pattern and/or
/// layer kind and pruning them with one method.
///
/// Loaded from JSON ([`from_json_str`](Self::from_json_str)), TOML
/// ([`from_toml_str`](Self::from_toml_str)) or a file ([`from_path`](Self::from_path)), or
/// built in code; written back with [`to_json_string`](Self::to_json_string) /
/// [`to_toml_string`](Self::to_toml_string) (it also implements serde's traits, to embed in
/// your own configuration). In TOML:
///
/// ```toml
/// # Every convolution: its two output channels of smallest L2 norm.
/// [[steps]]
/// layers = ["Conv2D"]              # tch's or PyTorch's name ("Conv2d"); the `weight` of each
/// method = "ln_structured"
/// amount = 2                       # an integer is a count, a float a fraction
/// n = 2
/// dim = 0
///
/// # Then 20% of all linear weights, ranked together.
/// [[steps]]
/// parameters = ["fc*.weight"]      # full names or globs: `*` any run of characters, `?` one
/// method = "global_unstructured"
/// pruning_method = "l1_unstructured"   # the default; or "random_unstructured"
/// amount = 0.2
/// ```
///
/// A step's fields: `method` (`identity`, `l1_unstructured`, `random_unstructured`,
/// `ln_structured`, `random_structured`, `global_unstructured`); the method's arguments, named
/// as in PyTorch (`amount` for all but `identity`, `n` and `dim` for `ln_structured`, `dim` for
/// `random_structured`, optionally `pruning_method` for `global_unstructured`), or a `schedule`
/// instead of the `amount` (below); and the selection, `parameters` and/or `layers` (see
/// [`RecipeStep`]). Unknown fields are errors.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{prunable, PrunedModel, PruningRecipe, Pruner};
///
/// #[derive(Debug)]
/// struct Net { conv: nn::Conv2D, fc1: nn::Linear, fc2: nn::Linear }
/// prunable!(Net { conv, fc1, fc2 });
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = Net {
///     conv: nn::conv2d(vs.root() / "conv", 1, 4, 3, Default::default()),
///     fc1: nn::linear(vs.root() / "fc1", 16, 8, Default::default()),
///     fc2: nn::linear(vs.root() / "fc2", 8, 2, Default::default()),
/// };
/// let mut model = PrunedModel::new(net, &vs)?;
///
/// let recipe = PruningRecipe::from_toml_str(r#"
///     [[steps]]
///     layers = ["Conv2d"]
///     method = "ln_structured"
///     amount = 2
///     n = 2
///     dim = 0
///
///     [[steps]]
///     parameters = ["fc*.weight"]
///     method = "global_unstructured"
///     amount = 0.25
/// "#)?;
/// let outcome = recipe.apply(&mut model)?;
/// assert_eq!(outcome.steps[0].parameters, ["conv.weight"]);
/// assert_eq!(outcome.steps[1].parameters, ["fc1.weight", "fc2.weight"]);
/// assert_eq!(outcome.sparsity.get("conv.weight").unwrap().sparsity_percent, 50.0);
/// let fc_zeros: u64 =
///     outcome.sparsity.parameters.iter().filter(|p| p.name.starts_with("fc")).map(|p| p.zeros).sum();
/// assert_eq!(fc_zeros, 36); // 25% of the 144 linear weights, ranked together
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// # Gradual pruning
///
/// An `l1_unstructured` step, or a `global_unstructured` one ranking by L1 magnitude (the
/// default `pruning_method`), may give a `schedule` instead of an `amount`: a table tagged by
/// `kind`, `"constant_sparsity"`, `"polynomial_decay"` or `"cubic"`, with the schedule's own
/// fields ([`ScheduleConfig`](crate::ScheduleConfig) lists them and their defaults). Such a
/// step prunes nothing when the recipe is applied. Its selection is checked and resolved like
/// any other step's, atomically with the whole recipe, and it becomes a [`GradualPruner`] over
/// those parameters (in [`PruningScope::Local`](crate::PruningScope::Local) for
/// `l1_unstructured`, [`PruningScope::Global`](crate::PruningScope::Global) for
/// `global_unstructured`), returned in [`RecipeOutcome::gradual_pruners`]: the training loop
/// calls `pruner.step(&mut model, step)` at every step.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{prunable, PolynomialDecay, PrunedModel, PruningRecipe, PruningSchedule, Pruner};
///
/// #[derive(Debug)]
/// struct Net { fc1: nn::Linear, fc2: nn::Linear }
/// prunable!(Net { fc1, fc2 });
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = Net {
///     fc1: nn::linear(vs.root() / "fc1", 16, 10, Default::default()),
///     fc2: nn::linear(vs.root() / "fc2", 10, 4, Default::default()),
/// };
/// let mut model = PrunedModel::new(net, &vs)?;
///
/// // The linear weights from 0% to 90% between steps 0 and 300, pruning every 100 steps.
/// let recipe = PruningRecipe::from_toml_str(r#"
///     [[steps]]
///     parameters = ["fc*.weight"]        # the 200 linear weights, ranked together
///     method = "global_unstructured"
///     schedule = { kind = "polynomial_decay", initial_sparsity = 0.0, final_sparsity = 0.9, begin_step = 0, end_step = 300, frequency = 100, power = 3 }
///
///     [[steps]]
///     parameters = ["*.bias"]            # one entry of each bias, now
///     method = "l1_unstructured"
///     amount = 1
/// "#)?;
/// let mut outcome = recipe.apply(&mut model)?;
/// assert!(model.is_parameter_pruned("fc1.bias"));
/// assert!(!model.is_parameter_pruned("fc1.weight")); // not yet
///
/// let schedule = PolynomialDecay::new(0.0, 0.9, 0, 300)?; // power 3 and frequency 100: defaults
/// for step in 0..400 {
///     // ... forward, backward, optimizer step ...
///     for pruner in &mut outcome.gradual_pruners {
///         if let Some(progress) = pruner.step(&mut model, step)? {
///             assert_eq!(Some(progress.target()), schedule.prune_at(step));
///             assert_eq!(progress.pruned(), (progress.target() * 200.0).round() as i64);
///         }
///     }
/// }
/// assert_eq!(outcome.gradual_pruners[0].last_progress().unwrap().sparsity(), 0.9);
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// TensorFlow equivalent of a scheduled step: `tfmot.sparsity.keras.prune_low_magnitude` with
/// a `pruning_schedule` (PyTorch's `torch.nn.utils.prune` has no schedules).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "repr::RecipeRepr", into = "repr::RecipeRepr")]
pub struct PruningRecipe {
    steps: Vec<RecipeStep>,
}

impl PruningRecipe {
    /// A recipe of these steps.
    ///
    /// ```
    /// use tch_prune::{PruningRecipe, RecipeMethod, RecipeStep};
    ///
    /// let recipe = PruningRecipe::new(vec![
    ///     RecipeStep::new(RecipeMethod::l1_unstructured(0.5)?).with_parameters(["*.weight"]),
    /// ]);
    /// assert_eq!(recipe.steps().len(), 1);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn new(steps: Vec<RecipeStep>) -> Self {
        Self { steps }
    }

    /// Appends a step.
    ///
    /// ```
    /// use tch_prune::{PruningRecipe, RecipeMethod, RecipeStep};
    ///
    /// let recipe = PruningRecipe::default()
    ///     .with_step(RecipeStep::new(RecipeMethod::identity()).with_parameters(["fc.weight"]));
    /// assert_eq!(recipe.steps()[0].method().name(), "identity");
    /// ```
    pub fn with_step(mut self, step: RecipeStep) -> Self {
        self.steps.push(step);
        self
    }

    /// The steps, in the order they are applied.
    ///
    /// ```
    /// assert!(tch_prune::PruningRecipe::default().steps().is_empty());
    /// ```
    pub fn steps(&self) -> &[RecipeStep] {
        &self.steps
    }
}
