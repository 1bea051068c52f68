//! [`PruningRecipe`]: a pruning plan as data (JSON or TOML), applied to a [`PrunedModel`] in
//! one call.
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

mod method;
mod repr;
mod step;

pub use method::{GlobalPruningMethod, LayerKind, RecipeMethod};
pub use step::RecipeStep;

use serde::{Deserialize, Serialize};

use crate::error::{PruneError, Result};
use crate::pruner::Pruner;
use crate::report::SparsityReport;
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

/// What [`PruningRecipe::apply`] did: the parameters each step pruned (or, for a step with a
/// `schedule`, will prune), the sparsity of every parameter the recipe selected afterwards, and
/// one [`GradualPruner`] per scheduled step, for the training loop to drive.
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

/// A step resolved against a model: its validated method and its parameters, and for a
/// scheduled step the pruner that will prune them.
struct Planned {
    method: RecipeMethod,
    name: &'static str,
    parameters: Vec<String>,
    pruner: Option<GradualPruner>,
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

    /// Applies every step to `model`, in order, as one operation.
    ///
    /// Everything that can be checked without pruning is checked first, for every step:
    /// methods and their arguments, that each pattern matches a parameter and each layer kind
    /// a layer, that each step selects something. Then the steps run; when one fails (a count
    /// larger than a parameter, a `dim` out of range, a structured method on a 1-D
    /// parameter, ...), the steps already applied are undone. **On error the model, its
    /// `VarStore` and its pruning history are exactly as before** (only the random generator
    /// has moved on, when a random method ran).
    ///
    /// Steps with a `schedule` prune nothing here: checked and resolved with the others, each
    /// becomes a [`GradualPruner`] in [`RecipeOutcome::gradual_pruners`] (see [Gradual
    /// pruning](Self#gradual-pruning)); on error none is returned.
    ///
    /// # Errors
    /// [`PruneError::InvalidRecipe`] naming the field at fault (`"steps[1].parameters[0]"`,
    /// `"steps[0].amount"`, ...) for what the first check finds;
    /// [`PruneError::RecipeStepFailed`] naming the step's field and the parameter, with the
    /// pruning error as its source, for a step that fails on the model.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{PrunedModel, PruneError, PruningRecipe, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut model = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 4, 5, Default::default()), &vs, "fc")?;
    /// let recipe = PruningRecipe::from_json_str(r#"{"steps": [
    ///     {"parameters": ["fc.weight"], "method": "l1_unstructured", "amount": 0.5},
    ///     {"parameters": ["fc.bias"], "method": "l1_unstructured", "amount": 6}
    /// ]}"#)?;
    /// let err = recipe.apply(&mut model).unwrap_err();
    /// assert!(matches!(&err, PruneError::RecipeStepFailed { field, .. } if field == "steps[1].amount"));
    /// assert!(!model.is_pruned()); // the first step was undone
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: the loop of `prune.*` calls such a recipe stands for (PyTorch has no
    /// recipe format, and stops half-way on an error).
    pub fn apply<P: Pruner>(&self, model: &mut P) -> Result<RecipeOutcome> {
        let plan = self.plan(model)?;
        let point = model.begin_undo();
        let outcome = run_plan(model, plan);
        match outcome {
            Ok(_) => model.end_undo(point),
            Err(_) => model.undo(point),
        }
        outcome
    }

    /// Checks every step against `model` and resolves its parameters, changing nothing.
    fn plan<P: Pruner>(&self, model: &mut P) -> Result<Vec<Planned>> {
        let all = model.parameter_names();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut plan = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            let method = step.method;
            let parameters = step.select(i, model, &all)?;
            let pruner = match method {
                RecipeMethod::Gradual { scope, schedule } => Some(
                    GradualPruner::new(schedule, &parameters)
                        .map_err(|e| PruneError::InvalidRecipe {
                            field: format!("steps[{i}]"),
                            reason: e.to_string(),
                        })?
                        .with_scope(scope),
                ),
                _ => None,
            };
            plan.push(Planned { method, name: step.method.name(), parameters, pruner });
        }
        Ok(plan)
    }
}

/// Runs every step of `plan`, then reports the sparsity of what they pruned. The caller undoes
/// everything on error.
fn run_plan<P: Pruner>(model: &mut P, plan: Vec<Planned>) -> Result<RecipeOutcome> {
    for (index, step) in plan.iter().enumerate().filter(|(_, step)| step.pruner.is_none()) {
        run_step(model, step).map_err(|(parameter, source)| {
            let field = match failed_field(&source) {
                Some(field) => format!("steps[{index}].{field}"),
                None => format!("steps[{index}]"),
            };
            PruneError::RecipeStepFailed { field, parameter, source: Box::new(source) }
        })?;
    }
    let mut touched: Vec<&str> = Vec::new();
    for step in &plan {
        for name in &step.parameters {
            if !touched.contains(&name.as_str()) {
                touched.push(name);
            }
        }
    }
    let sparsity = if touched.is_empty() {
        SparsityReport::from_tensors(std::iter::empty::<(String, &tch::Tensor)>())?
    } else {
        SparsityReport::from_model_names(model, &touched)?
    };
    let mut steps = Vec::with_capacity(plan.len());
    let mut gradual_pruners = Vec::new();
    for p in plan {
        steps.push(StepOutcome {
            method: p.name.to_string(),
            parameters: p.parameters,
            scheduled: p.pruner.is_some(),
        });
        gradual_pruners.extend(p.pruner);
    }
    Ok(RecipeOutcome { steps, sparsity, gradual_pruners })
}

/// Runs one planned step; on error, the parameter(s) it was pruning.
fn run_step<P: Pruner>(
    model: &mut P,
    step: &Planned,
) -> std::result::Result<(), (String, PruneError)> {
    if step.method.is_global() {
        let names: Vec<&str> = step.parameters.iter().map(String::as_str).collect();
        return step.method.run_global(model, &names).map_err(|e| (names.join(", "), e));
    }
    for name in &step.parameters {
        step.method.run(model, name).map_err(|e| (name.clone(), e))?;
    }
    Ok(())
}

/// The step field a pruning error points at, when there is one.
fn failed_field(e: &PruneError) -> Option<&'static str> {
    match e {
        PruneError::AmountTooLarge { .. }
        | PruneError::NegativeCount { .. }
        | PruneError::FractionOutOfRange { .. } => Some("amount"),
        PruneError::DimOutOfRange { .. } => Some("dim"),
        PruneError::InvalidNorm { .. } | PruneError::UnsupportedNorm { .. } => Some("n"),
        PruneError::NotStructured { .. }
        | PruneError::UnsupportedKind { .. }
        | PruneError::WrongPruningType { .. } => Some("method"),
        _ => None,
    }
}
