//! [`PruningRecipe::apply`]: checking every step against a model first, then running the
//! steps, and undoing the ones that ran when a later one fails.

use super::outcome::{RecipeOutcome, StepOutcome};
use super::{PruningRecipe, RecipeMethod};
use crate::error::{PruneError, Result};
use crate::pruner::Pruner;
use crate::report::SparsityReport;
use crate::schedule::GradualPruner;

/// A step resolved against a model: its validated method and its parameters, and for a
/// scheduled step the pruner that will prune them.
struct Planned {
    method: RecipeMethod,
    name: &'static str,
    parameters: Vec<String>,
    pruner: Option<GradualPruner>,
}

impl PruningRecipe {
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
