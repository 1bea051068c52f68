//! [`ScheduleConfig`]: a built-in schedule as data, tagged by its `kind` (the `schedule` table of
//! a [`PruningRecipe`](crate::PruningRecipe) step).

use serde::{Deserialize, Serialize};

use super::{ConstantSparsity, Cubic, PolynomialDecay, PruningSchedule};
use crate::error::PruneError;

/// One of the built-in schedules, as a table tagged by `kind`: what a
/// [`PruningRecipe`](crate::PruningRecipe) step holds in its `schedule` field.
///
/// The other fields are the schedule's own serde fields (TF-MOT's `get_config()` names), with
/// the same defaults:
///
/// | `kind` | fields (defaults) |
/// |---|---|
/// | `"constant_sparsity"` | `target_sparsity`, `begin_step`, `end_step` (`-1`), `frequency` (`100`) |
/// | `"polynomial_decay"` | `initial_sparsity`, `final_sparsity`, `begin_step`, `end_step`, `frequency` (`100`), `power` (`3`) |
/// | `"cubic"` | `initial_sparsity`, `final_sparsity`, `begin_step`, `pruning_steps`, `frequency` |
///
/// TF-MOT's class names (`"ConstantSparsity"`, `"PolynomialDecay"`) are accepted as kinds too.
/// Reading one validates it as the schedule's constructor does; a field the kind does not take
/// is an error. Written back, every field is explicit. A `ScheduleConfig` is always valid (it
/// holds a constructed schedule), is itself a [`PruningSchedule`], and converts into a
/// `Box<dyn PruningSchedule>`.
///
/// ```
/// use tch_prune::{PolynomialDecay, PruningSchedule, ScheduleConfig};
///
/// let config: ScheduleConfig = serde_json::from_str(
///     r#"{"kind": "polynomial_decay", "initial_sparsity": 0.0, "final_sparsity": 0.8,
///         "begin_step": 0, "end_step": 400}"#,
/// )?;
/// assert_eq!(config, ScheduleConfig::from(PolynomialDecay::new(0.0, 0.8, 0, 400)?));
/// assert_eq!(config.kind(), "polynomial_decay");
/// assert_eq!(config.prune_at(400), Some(0.8));
/// let boxed: Box<dyn PruningSchedule> = config.into();
/// assert_eq!(boxed.prune_at(50), None);
///
/// // Validated as the constructors do.
/// let err = serde_json::from_str::<ScheduleConfig>(
///     r#"{"kind": "cubic", "initial_sparsity": 0.0, "final_sparsity": 1.5,
///         "begin_step": 0, "pruning_steps": 3, "frequency": 10}"#,
/// ).unwrap_err();
/// assert!(err.to_string().starts_with("final_sparsity: 1.5 is out of range"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// TensorFlow equivalent: `tfmot.sparsity.keras.PolynomialDecay.from_config(config)` (and
/// `ConstantSparsity`'s); TF-MOT has no cubic schedule of its own (it is a `PolynomialDecay`
/// with `power = 3`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScheduleRepr", into = "ScheduleRepr")]
#[non_exhaustive]
pub enum ScheduleConfig {
    /// `kind = "constant_sparsity"`.
    ConstantSparsity(ConstantSparsity),
    /// `kind = "polynomial_decay"`.
    PolynomialDecay(PolynomialDecay),
    /// `kind = "cubic"`.
    Cubic(Cubic),
}

impl ScheduleConfig {
    /// The `kind` tag: `"constant_sparsity"`, `"polynomial_decay"` or `"cubic"`.
    ///
    /// ```
    /// use tch_prune::{Cubic, ScheduleConfig};
    /// assert_eq!(ScheduleConfig::from(Cubic::new(0.0, 0.5, 0, 2, 10)?).kind(), "cubic");
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            ScheduleConfig::ConstantSparsity(_) => "constant_sparsity",
            ScheduleConfig::PolynomialDecay(_) => "polynomial_decay",
            ScheduleConfig::Cubic(_) => "cubic",
        }
    }
}

impl PruningSchedule for ScheduleConfig {
    fn prune_at(&self, step: i64) -> Option<f64> {
        match self {
            ScheduleConfig::ConstantSparsity(s) => s.prune_at(step),
            ScheduleConfig::PolynomialDecay(s) => s.prune_at(step),
            ScheduleConfig::Cubic(s) => s.prune_at(step),
        }
    }
}

impl From<ConstantSparsity> for ScheduleConfig {
    fn from(s: ConstantSparsity) -> Self {
        ScheduleConfig::ConstantSparsity(s)
    }
}

impl From<PolynomialDecay> for ScheduleConfig {
    fn from(s: PolynomialDecay) -> Self {
        ScheduleConfig::PolynomialDecay(s)
    }
}

impl From<Cubic> for ScheduleConfig {
    fn from(s: Cubic) -> Self {
        ScheduleConfig::Cubic(s)
    }
}

impl From<ScheduleConfig> for Box<dyn PruningSchedule> {
    fn from(config: ScheduleConfig) -> Self {
        match config {
            ScheduleConfig::ConstantSparsity(s) => Box::new(s),
            ScheduleConfig::PolynomialDecay(s) => Box::new(s),
            ScheduleConfig::Cubic(s) => Box::new(s),
        }
    }
}

/// The `kind` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ScheduleKind {
    #[serde(alias = "ConstantSparsity")]
    ConstantSparsity,
    #[serde(alias = "PolynomialDecay")]
    PolynomialDecay,
    Cubic,
}

impl ScheduleKind {
    fn name(self) -> &'static str {
        match self {
            ScheduleKind::ConstantSparsity => "constant_sparsity",
            ScheduleKind::PolynomialDecay => "polynomial_decay",
            ScheduleKind::Cubic => "cubic",
        }
    }
}

/// A schedule table as written: the tag and every field any kind takes, each optional, so that
/// [`ScheduleRepr::into_config`] can name the field that is missing, refused or out of range.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a schedule table (`kind` and the schedule's fields)")]
pub(crate) struct ScheduleRepr {
    kind: ScheduleKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_sparsity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initial_sparsity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_sparsity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    begin_step: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_step: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pruning_steps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frequency: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    power: Option<f64>,
}

impl ScheduleRepr {
    /// The validated schedule; on error, the schedule field at fault (`"final_sparsity"`,
    /// `"end_step"`, ...) and what is wrong with it.
    pub(crate) fn into_config(self) -> std::result::Result<ScheduleConfig, (&'static str, String)> {
        let kind = self.kind.name();
        let missing = |field: &'static str| (field, format!("a {kind} schedule needs `{field}`"));
        let refuse = |present: bool, field: &'static str| {
            if present {
                Err((field, format!("a {kind} schedule takes no `{field}`")))
            } else {
                Ok(())
            }
        };
        let config = match self.kind {
            ScheduleKind::ConstantSparsity => {
                refuse(self.initial_sparsity.is_some(), "initial_sparsity")?;
                refuse(self.final_sparsity.is_some(), "final_sparsity")?;
                refuse(self.pruning_steps.is_some(), "pruning_steps")?;
                refuse(self.power.is_some(), "power")?;
                let target = self.target_sparsity.ok_or_else(|| missing("target_sparsity"))?;
                let begin = self.begin_step.ok_or_else(|| missing("begin_step"))?;
                // TF-MOT's defaults, as in `ConstantSparsity`'s own serde form.
                ConstantSparsity::new(
                    target,
                    begin,
                    // TF-MOT writes "no end" as -1.
                    self.end_step.filter(|&end| end != -1),
                    self.frequency.unwrap_or(100),
                )
                .map(ScheduleConfig::from)
            }
            ScheduleKind::PolynomialDecay => {
                refuse(self.target_sparsity.is_some(), "target_sparsity")?;
                refuse(self.pruning_steps.is_some(), "pruning_steps")?;
                let initial = self.initial_sparsity.ok_or_else(|| missing("initial_sparsity"))?;
                let final_ = self.final_sparsity.ok_or_else(|| missing("final_sparsity"))?;
                let begin = self.begin_step.ok_or_else(|| missing("begin_step"))?;
                let end = self.end_step.ok_or_else(|| missing("end_step"))?;
                // TF-MOT's defaults, as in `PolynomialDecay`'s own serde form.
                PolynomialDecay::new(initial, final_, begin, end)
                    .and_then(|s| s.with_power(self.power.unwrap_or(3.0)))
                    .and_then(|s| s.with_frequency(self.frequency.unwrap_or(100)))
                    .map(ScheduleConfig::from)
            }
            ScheduleKind::Cubic => {
                refuse(self.target_sparsity.is_some(), "target_sparsity")?;
                refuse(self.end_step.is_some(), "end_step")?;
                refuse(self.power.is_some(), "power")?;
                let initial = self.initial_sparsity.ok_or_else(|| missing("initial_sparsity"))?;
                let final_ = self.final_sparsity.ok_or_else(|| missing("final_sparsity"))?;
                let begin = self.begin_step.ok_or_else(|| missing("begin_step"))?;
                let steps = self.pruning_steps.ok_or_else(|| missing("pruning_steps"))?;
                let frequency = self.frequency.ok_or_else(|| missing("frequency"))?;
                Cubic::new(initial, final_, begin, steps, frequency).map(ScheduleConfig::from)
            }
        };
        config.map_err(|e| match e {
            PruneError::InvalidSchedule { parameter, value, expected } => {
                (parameter, format!("{value} is out of range; expected {expected}"))
            }
            // The constructors return no other error.
            other => ("kind", other.to_string()),
        })
    }
}

impl TryFrom<ScheduleRepr> for ScheduleConfig {
    /// `"<field>: <reason>"`.
    type Error = String;

    fn try_from(repr: ScheduleRepr) -> std::result::Result<Self, String> {
        repr.into_config().map_err(|(field, reason)| format!("{field}: {reason}"))
    }
}

impl From<ScheduleConfig> for ScheduleRepr {
    fn from(config: ScheduleConfig) -> Self {
        let mut repr = ScheduleRepr {
            kind: ScheduleKind::Cubic,
            target_sparsity: None,
            initial_sparsity: None,
            final_sparsity: None,
            begin_step: None,
            end_step: None,
            pruning_steps: None,
            frequency: None,
            power: None,
        };
        match config {
            ScheduleConfig::ConstantSparsity(s) => {
                repr.kind = ScheduleKind::ConstantSparsity;
                repr.target_sparsity = Some(s.target_sparsity());
                repr.begin_step = Some(s.begin_step());
                repr.end_step = Some(s.end_step().unwrap_or(-1));
                repr.frequency = Some(s.frequency());
            }
            ScheduleConfig::PolynomialDecay(s) => {
                repr.kind = ScheduleKind::PolynomialDecay;
                repr.initial_sparsity = Some(s.initial_sparsity());
                repr.final_sparsity = Some(s.final_sparsity());
                repr.begin_step = Some(s.begin_step());
                repr.end_step = Some(s.end_step());
                repr.frequency = Some(s.frequency());
                repr.power = Some(s.power());
            }
            ScheduleConfig::Cubic(s) => {
                repr.kind = ScheduleKind::Cubic;
                repr.initial_sparsity = Some(s.initial_sparsity());
                repr.final_sparsity = Some(s.final_sparsity());
                repr.begin_step = Some(s.begin_step());
                repr.pruning_steps = Some(s.pruning_steps());
                repr.frequency = Some(s.frequency());
            }
        }
        repr
    }
}
