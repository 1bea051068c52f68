//! The serde form of a [`PruningRecipe`] ([`RecipeRepr`]) and its validation into typed steps;
//! reading and writing the text is in `io.rs`.
//!
//! The file form is flat, like a PyTorch call's keyword arguments (`method = "ln_structured"`,
//! `amount = 0.5`, `n = 2`, `dim = 0`): serde reads it into [`StepRepr`] (every argument
//! optional, unknown fields refused), and [`StepRepr::into_step`] checks which arguments the
//! method needs or refuses, naming the field at fault. A step may carry a `schedule` table
//! (`{ kind = "polynomial_decay", ... }`, read as a [`ScheduleRepr`]) instead of its `amount`.

use serde::{Deserialize, Serialize};

use super::{GlobalPruningMethod, LayerKind, PruningRecipe, RecipeMethod, RecipeStep};
use crate::error::{PruneError, Result};
use crate::method::{
    Amount, L1Unstructured, LnStructured, Norm, RandomStructured, RandomUnstructured,
};
use crate::schedule::{PruningScope, ScheduleRepr};

/// A recipe file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecipeRepr {
    steps: Vec<StepRepr>,
}

/// One step as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRepr {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parameters: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    layers: Vec<LayerKind>,
    method: MethodName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<Norm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dim: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pruning_method: Option<GlobalPruningMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleRepr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MethodName {
    Identity,
    L1Unstructured,
    RandomUnstructured,
    LnStructured,
    RandomStructured,
    GlobalUnstructured,
}

impl MethodName {
    fn name(self) -> &'static str {
        match self {
            MethodName::Identity => "identity",
            MethodName::L1Unstructured => "l1_unstructured",
            MethodName::RandomUnstructured => "random_unstructured",
            MethodName::LnStructured => "ln_structured",
            MethodName::RandomStructured => "random_structured",
            MethodName::GlobalUnstructured => "global_unstructured",
        }
    }
}

impl StepRepr {
    /// The typed step; `InvalidRecipe` naming `steps[i].<field>` for a missing, refused or
    /// invalid argument.
    fn into_step(self, i: usize) -> Result<RecipeStep> {
        let field = |name: &str| format!("steps[{i}].{name}");
        let name = self.method.name();
        fn required<T>(value: Option<T>, field: String, method: &str, arg: &str) -> Result<T> {
            value.ok_or_else(|| PruneError::InvalidRecipe {
                field,
                reason: format!("{method} needs `{arg}`"),
            })
        }
        let refuse = |present: bool, arg: &str| {
            if present {
                Err(PruneError::InvalidRecipe {
                    field: field(arg),
                    reason: format!("{name} takes no `{arg}`"),
                })
            } else {
                Ok(())
            }
        };
        let (amount, n, dim, global) = (self.amount, self.n, self.dim, self.pruning_method);
        // A schedule replaces the amount of the methods a `GradualPruner` runs: L1 magnitude,
        // per parameter or global.
        let scope = match (self.method, global) {
            (MethodName::L1Unstructured, _) => Some(PruningScope::Local),
            (MethodName::GlobalUnstructured, None | Some(GlobalPruningMethod::L1Unstructured)) => {
                Some(PruningScope::Global)
            }
            _ => None,
        };
        let schedule = match self.schedule {
            None => None,
            Some(schedule) => {
                let Some(scope) = scope else {
                    let what = if self.method == MethodName::GlobalUnstructured {
                        format!("{name} with pruning_method random_unstructured")
                    } else {
                        name.to_string()
                    };
                    return Err(PruneError::InvalidRecipe {
                        field: field("schedule"),
                        reason: format!(
                            "{what} takes no `schedule`: only l1_unstructured and \
                             global_unstructured (ranking by L1 magnitude) prune gradually"
                        ),
                    });
                };
                if amount.is_some() {
                    return Err(PruneError::InvalidRecipe {
                        field: field("schedule"),
                        reason: "give either `amount` (prune once, now) or `schedule` (prune \
                                 gradually, during training), not both"
                            .into(),
                    });
                }
                let schedule = schedule.into_config().map_err(|(param, reason)| {
                    PruneError::InvalidRecipe { field: field(&format!("schedule.{param}")), reason }
                })?;
                Some(RecipeMethod::Gradual { scope, schedule })
            }
        };
        // The methods that may be scheduled need one of the two.
        let needs_amount = |amount: Option<Amount>| match scope {
            Some(_) => amount.ok_or_else(|| PruneError::InvalidRecipe {
                field: field("amount"),
                reason: format!(
                    "{name} needs `amount` (to prune once) or `schedule` (to prune gradually)"
                ),
            }),
            None => required(amount, field("amount"), name, "amount"),
        };
        let takes_n = matches!(self.method, MethodName::LnStructured);
        let takes_dim =
            matches!(self.method, MethodName::LnStructured | MethodName::RandomStructured);
        let takes_global = matches!(self.method, MethodName::GlobalUnstructured);
        refuse(n.is_some() && !takes_n, "n")?;
        refuse(dim.is_some() && !takes_dim, "dim")?;
        refuse(global.is_some() && !takes_global, "pruning_method")?;
        // The method is built here, so a recipe holds validated methods only.
        let at = |arg: &str| {
            let field = field(arg);
            move |e: PruneError| PruneError::InvalidRecipe { field, reason: e.to_string() }
        };
        let method = match schedule {
            Some(gradual) => gradual,
            None => match self.method {
                MethodName::Identity => {
                    refuse(amount.is_some(), "amount")?;
                    RecipeMethod::Identity
                }
                MethodName::L1Unstructured => RecipeMethod::L1Unstructured(
                    L1Unstructured::new(needs_amount(amount)?).map_err(at("amount"))?,
                ),
                MethodName::RandomUnstructured => RecipeMethod::RandomUnstructured(
                    RandomUnstructured::new(required(amount, field("amount"), name, "amount")?)
                        .map_err(at("amount"))?,
                ),
                MethodName::LnStructured => {
                    let amount = required(amount, field("amount"), name, "amount")?;
                    let n = required(n, field("n"), name, "n")?;
                    let dim = required(dim, field("dim"), name, "dim")?;
                    n.validate().map_err(at("n"))?;
                    RecipeMethod::LnStructured(
                        LnStructured::new(amount, n, dim).map_err(at("amount"))?,
                    )
                }
                MethodName::RandomStructured => {
                    let amount = required(amount, field("amount"), name, "amount")?;
                    let dim = required(dim, field("dim"), name, "dim")?;
                    RecipeMethod::RandomStructured(
                        RandomStructured::new(amount, dim).map_err(at("amount"))?,
                    )
                }
                MethodName::GlobalUnstructured => RecipeMethod::global_unstructured(
                    global.unwrap_or_default(),
                    needs_amount(amount)?,
                )
                .map_err(at("amount"))?,
            },
        };
        for (j, pattern) in self.parameters.iter().enumerate() {
            if pattern.is_empty() {
                return Err(PruneError::InvalidRecipe {
                    field: format!("steps[{i}].parameters[{j}]"),
                    reason: "an empty name matches no parameter".into(),
                });
            }
        }
        Ok(RecipeStep { parameters: self.parameters, layers: self.layers, method })
    }

    fn from_step(step: RecipeStep) -> Self {
        let mut repr = Self {
            parameters: step.parameters,
            layers: step.layers,
            method: MethodName::Identity,
            amount: None,
            n: None,
            dim: None,
            pruning_method: None,
            schedule: None,
        };
        match step.method {
            RecipeMethod::Identity => {}
            RecipeMethod::L1Unstructured(m) => {
                repr.method = MethodName::L1Unstructured;
                repr.amount = Some(m.amount());
            }
            RecipeMethod::RandomUnstructured(m) => {
                repr.method = MethodName::RandomUnstructured;
                repr.amount = Some(m.amount());
            }
            RecipeMethod::LnStructured(m) => {
                repr.method = MethodName::LnStructured;
                (repr.amount, repr.n, repr.dim) = (Some(m.amount()), Some(m.n()), Some(m.dim()));
            }
            RecipeMethod::RandomStructured(m) => {
                repr.method = MethodName::RandomStructured;
                (repr.amount, repr.dim) = (Some(m.amount()), Some(m.dim()));
            }
            RecipeMethod::GlobalL1Unstructured(m) => {
                repr.method = MethodName::GlobalUnstructured;
                repr.amount = Some(m.amount());
                repr.pruning_method = Some(GlobalPruningMethod::L1Unstructured);
            }
            RecipeMethod::GlobalRandomUnstructured(m) => {
                repr.method = MethodName::GlobalUnstructured;
                repr.amount = Some(m.amount());
                repr.pruning_method = Some(GlobalPruningMethod::RandomUnstructured);
            }
            RecipeMethod::Gradual { scope, schedule } => {
                repr.method = match scope {
                    PruningScope::Local => MethodName::L1Unstructured,
                    PruningScope::Global => MethodName::GlobalUnstructured,
                };
                repr.schedule = Some(schedule.into());
            }
        }
        repr
    }
}

impl TryFrom<RecipeRepr> for PruningRecipe {
    type Error = PruneError;

    fn try_from(repr: RecipeRepr) -> Result<Self> {
        let steps = repr
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, step)| step.into_step(i))
            .collect::<Result<_>>()?;
        Ok(PruningRecipe { steps })
    }
}

impl From<PruningRecipe> for RecipeRepr {
    fn from(recipe: PruningRecipe) -> Self {
        RecipeRepr { steps: recipe.steps.into_iter().map(StepRepr::from_step).collect() }
    }
}
