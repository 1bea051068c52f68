//! How a [`PruningRecipe`] is written in JSON and TOML, and parse errors that name the field.
//!
//! The file form is flat, like a PyTorch call's keyword arguments (`method = "ln_structured"`,
//! `amount = 0.5`, `n = 2`, `dim = 0`): serde reads it into [`StepRepr`] (every argument
//! optional, unknown fields refused), and [`StepRepr::into_step`] checks which arguments the
//! method needs or refuses, naming the field at fault. A step may carry a `schedule` table
//! (`{ kind = "polynomial_decay", ... }`, read as a [`ScheduleRepr`]) instead of its `amount`.

use std::path::Path;

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

impl PruningRecipe {
    /// Reads a recipe from JSON: `{"steps": [{"parameters": [...], "method": ..., ...}]}`.
    ///
    /// # Errors
    /// [`PruneError::InvalidRecipe`] naming the field at fault: malformed JSON, an unknown
    /// field or method (`"steps[0].method"`), a value of the wrong type, an invalid amount, an
    /// argument the method needs or refuses.
    ///
    /// ```
    /// use tch_prune::{PruneError, PruningRecipe};
    ///
    /// let recipe = PruningRecipe::from_json_str(
    ///     r#"{"steps": [{"layers": ["Linear"], "method": "random_structured", "amount": 1, "dim": 0}]}"#,
    /// )?;
    /// assert_eq!(recipe.steps()[0].method().name(), "random_structured");
    ///
    /// let err = PruningRecipe::from_json_str(
    ///     r#"{"steps": [{"parameters": ["*"], "method": "l1_unstructured", "amount": 1.5}]}"#,
    /// ).unwrap_err();
    /// assert!(matches!(err, PruneError::InvalidRecipe { field, .. } if field == "steps[0].amount"));
    /// # Ok::<(), PruneError>(())
    /// ```
    pub fn from_json_str(json: &str) -> Result<Self> {
        let mut de = serde_json::Deserializer::from_str(json);
        let repr: RecipeRepr = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| parse_error(e.path().to_string(), &e.inner().to_string()))?;
        de.end().map_err(|e| parse_error(String::new(), &e.to_string()))?;
        repr.try_into()
    }

    /// Reads a recipe from TOML: one `[[steps]]` table per step.
    ///
    /// # Errors
    /// As [`from_json_str`](Self::from_json_str), for TOML.
    ///
    /// ```
    /// use tch_prune::{PruneError, PruningRecipe};
    ///
    /// let recipe = PruningRecipe::from_toml_str(r#"
    ///     [[steps]]
    ///     parameters = ["conv?.weight"]
    ///     method = "l1_unstructured"
    ///     amount = 0.3
    /// "#)?;
    /// assert_eq!(recipe.steps()[0].parameters(), ["conv?.weight"]);
    ///
    /// let err = PruningRecipe::from_toml_str("[[steps]]\nparameters = [\"*\"]\nmethod = \"l2\"\n")
    ///     .unwrap_err();
    /// assert!(matches!(err, PruneError::InvalidRecipe { field, .. } if field == "steps[0].method"));
    /// # Ok::<(), PruneError>(())
    /// ```
    pub fn from_toml_str(toml: &str) -> Result<Self> {
        let de =
            toml::Deserializer::parse(toml).map_err(|e| toml_error(String::new(), &e, toml))?;
        let repr: RecipeRepr = serde_path_to_error::deserialize(de)
            .map_err(|e| toml_error(e.path().to_string(), e.inner(), toml))?;
        repr.try_into()
    }

    /// Reads a recipe file: JSON for a `.json` extension, TOML for `.toml`.
    ///
    /// # Errors
    /// [`PruneError::Io`] when the file cannot be read; [`PruneError::InvalidRecipe`] with
    /// field `"path"` for another extension, and as
    /// [`from_json_str`](Self::from_json_str) / [`from_toml_str`](Self::from_toml_str).
    ///
    /// ```
    /// use tch_prune::PruningRecipe;
    ///
    /// let path = std::env::temp_dir().join(format!("recipe-doc-{}.toml", std::process::id()));
    /// std::fs::write(&path, "[[steps]]\nparameters = [\"fc.weight\"]\nmethod = \"identity\"\n")?;
    /// let recipe = PruningRecipe::from_path(&path)?;
    /// assert_eq!(recipe.steps().len(), 1);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let read = || {
            std::fs::read_to_string(path).map_err(|source| PruneError::Io {
                operation: "read",
                path: path.to_path_buf(),
                source,
            })
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Self::from_json_str(&read()?),
            Some("toml") => Self::from_toml_str(&read()?),
            _ => Err(PruneError::InvalidRecipe {
                field: "path".into(),
                reason: format!("{path:?}: expected a .json or .toml file"),
            }),
        }
    }

    /// The recipe as pretty-printed JSON, which [`from_json_str`](Self::from_json_str) reads
    /// back to an equal recipe.
    ///
    /// # Errors
    /// [`PruneError::InvalidRecipe`] when a value has no JSON form (a NaN amount, which only a
    /// recipe built from the public variants without validation can hold).
    ///
    /// ```
    /// use tch_prune::{PruningRecipe, RecipeMethod, RecipeStep};
    ///
    /// let recipe = PruningRecipe::new(vec![
    ///     RecipeStep::new(RecipeMethod::l1_unstructured(0.5)?).with_parameters(["*.weight"]),
    /// ]);
    /// let json = recipe.to_json_string()?;
    /// assert!(json.contains(r#""method": "l1_unstructured""#));
    /// assert_eq!(PruningRecipe::from_json_str(&json)?, recipe);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn to_json_string(&self) -> Result<String> {
        self.check_serializable()?;
        serde_json::to_string_pretty(&RecipeRepr::from(self.clone())).map_err(|e| {
            PruneError::InvalidRecipe { field: "recipe".into(), reason: e.to_string() }
        })
    }

    /// The recipe as TOML (`[[steps]]` tables), which [`from_toml_str`](Self::from_toml_str)
    /// reads back to an equal recipe.
    ///
    /// # Errors
    /// As [`to_json_string`](Self::to_json_string).
    ///
    /// ```
    /// use tch_prune::{LayerKind, PruningRecipe, RecipeMethod, RecipeStep};
    ///
    /// let recipe = PruningRecipe::new(vec![
    ///     RecipeStep::new(RecipeMethod::ln_structured(2, 2, 0)?).with_layers([LayerKind::Conv2D]),
    /// ]);
    /// let toml = recipe.to_toml_string()?;
    /// assert!(toml.contains("[[steps]]") && toml.contains("layers = [\"Conv2D\"]"));
    /// assert_eq!(PruningRecipe::from_toml_str(&toml)?, recipe);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn to_toml_string(&self) -> Result<String> {
        self.check_serializable()?;
        toml::to_string(&RecipeRepr::from(self.clone())).map_err(|e| PruneError::InvalidRecipe {
            field: "recipe".into(),
            reason: e.to_string(),
        })
    }

    /// What is written can be read back: the recipe format has no form for hashed random
    /// draws (it always means PyTorch's), so such a method is refused rather than changed.
    fn check_serializable(&self) -> Result<()> {
        for (i, step) in self.steps.iter().enumerate() {
            let hashed = match step.method {
                RecipeMethod::RandomUnstructured(m) | RecipeMethod::GlobalRandomUnstructured(m) => {
                    m.uses_hashed_draws()
                }
                _ => false,
            };
            if hashed {
                return Err(PruneError::InvalidRecipe {
                    field: format!("steps[{i}].method"),
                    reason: "random_unstructured with hashed draws has no recipe form (recipes \
                             always draw as PyTorch does)"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

/// `InvalidRecipe` for a serde error at `path`. serde reports a missing or unknown field at
/// the struct that lacks or has it; the field itself is named in the message, so it is
/// appended to the path (`steps[0]` + "missing field `method`" gives `steps[0].method`).
fn parse_error(path: String, message: &str) -> PruneError {
    let mut field = path;
    if field == "." {
        field.clear();
    }
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.split_once(prefix))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name);
    if let Some(name) = named {
        if !field.ends_with(name) {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(name);
        }
    }
    if field.is_empty() {
        field = "recipe".into();
    }
    // Some values name their field themselves (`n: unknown norm ...`): say it once.
    let leaf = field.rsplit('.').next().unwrap_or_default();
    let reason = message.strip_prefix(&format!("{leaf}: ")).unwrap_or(message).to_string();
    PruneError::InvalidRecipe { field, reason }
}

/// [`parse_error`] for TOML, whose errors carry a byte span rather than a line in the message.
fn toml_error(path: String, e: &toml::de::Error, source: &str) -> PruneError {
    match e.span() {
        Some(span) => {
            let line = source.get(..span.start).map_or(0, |before| before.matches('\n').count());
            parse_error(path, &format!("{} (line {})", e.message().trim_end(), line + 1))
        }
        None => parse_error(path, e.message().trim_end()),
    }
}
