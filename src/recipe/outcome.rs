//! [`RecipeOutcome`] and [`StepOutcome`]: what
//! [`PruningRecipe::apply`](super::PruningRecipe::apply) did, and the [`GradualPruner`]s of its
//! scheduled steps.

use serde::{Deserialize, Serialize};

use crate::report::SparsityReport;
use crate::schedule::GradualPruner;

/// What [`PruningRecipe::apply`](crate::PruningRecipe::apply) did: the parameters each step
/// pruned (or, for a step with a `schedule`, will prune), the sparsity of every parameter the
/// recipe selected afterwards, and one [`GradualPruner`] per scheduled step, for the training
/// loop to drive.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{PrunedModel, PruningRecipe, Pruner};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let mut model = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 4, 5, Default::default()), &vs, "fc")?;
/// let recipe = PruningRecipe::from_json_str(
///     r#"{"steps": [{"parameters": ["fc.weight"], "method": "l1_unstructured", "amount": 10}]}"#,
/// )?;
/// let outcome = recipe.apply(&mut model)?;
/// assert_eq!(outcome.steps[0].method, "l1_unstructured");
/// assert_eq!(outcome.sparsity.sparsity_percent, 50.0);
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecipeOutcome {
    /// One entry per step, in order.
    pub steps: Vec<StepOutcome>,
    /// The sparsity of every parameter some step selected, after the whole recipe (the
    /// parameters of scheduled steps included, as they are before their first pruning).
    pub sparsity: SparsityReport,
    /// One pruner per step with a `schedule`, in the steps' order: over the step's parameters,
    /// in [`PruningScope::Local`](crate::PruningScope::Local) for `l1_unstructured` and
    /// [`PruningScope::Global`](crate::PruningScope::Global) for `global_unstructured`. Call
    /// [`GradualPruner::step`] on each at every training step. Not serialized (a pruner is
    /// behaviour, not data; the recipe is what to save).
    #[serde(skip)]
    pub gradual_pruners: Vec<GradualPruner>,
}

impl RecipeOutcome {
    /// The pruners of the scheduled steps, in order (see
    /// [`gradual_pruners`](Self::gradual_pruners)).
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{PrunedModel, PruningRecipe, PruningScope, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut model = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 10, 10, Default::default()), &vs, "fc")?;
    /// let recipe = PruningRecipe::from_json_str(r#"{"steps": [{
    ///     "parameters": ["fc.*"], "method": "global_unstructured",
    ///     "schedule": {"kind": "constant_sparsity", "target_sparsity": 0.5, "begin_step": 10}
    /// }]}"#)?;
    /// let outcome = recipe.apply(&mut model)?;
    /// assert!(outcome.steps[0].scheduled);
    /// assert!(!model.is_pruned()); // nothing yet
    ///
    /// let mut pruners = outcome.into_gradual_pruners();
    /// assert_eq!(pruners[0].names(), ["fc.weight", "fc.bias"]);
    /// assert_eq!(pruners[0].scope(), PruningScope::Global);
    /// assert!(pruners[0].step(&mut model, 0)?.is_none());
    /// let progress = pruners[0].step(&mut model, 10)?.unwrap();
    /// assert_eq!((progress.pruned(), progress.numel()), (55, 110));
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn into_gradual_pruners(self) -> Vec<GradualPruner> {
        self.gradual_pruners
    }
}

/// What one step of a recipe did.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{PrunedModel, PruningRecipe, RecipeMethod, RecipeStep, Pruner};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let mut model = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 4, 5, Default::default()), &vs, "fc")?;
/// let recipe = PruningRecipe::new(vec![
///     RecipeStep::new(RecipeMethod::identity()).with_parameters(["fc.*"]),
/// ]);
/// let step = &recipe.apply(&mut model)?.steps[0];
/// assert_eq!(step.method, "identity");
/// assert_eq!(step.parameters, ["fc.weight", "fc.bias"]);
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepOutcome {
    /// The method's name in recipe files (`"l1_unstructured"`, ...).
    pub method: String,
    /// The parameters the step pruned (for a scheduled step: its pruner prunes), in the
    /// model's order.
    pub parameters: Vec<String>,
    /// Whether the step has a `schedule`: it pruned nothing yet, and its pruner is in
    /// [`RecipeOutcome::gradual_pruners`].
    #[serde(default)]
    pub scheduled: bool,
}
