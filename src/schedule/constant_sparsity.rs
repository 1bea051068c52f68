//! [`ConstantSparsity`]: the same target at every pruning step (TF-MOT's schedule).

use serde::{Deserialize, Serialize};

use super::checks::{should_prune_in_step, validate_sparsity, validate_step};
use super::PruningSchedule;
use crate::error::{PruneError, Result};

/// Prunes to `target_sparsity` every `frequency` steps from `begin_step` to `end_step`
/// (inclusive; `None` = no end, TF-MOT's `-1`).
///
/// Validation and the step rule are TF-MOT's: `begin_step >= 0`, `end_step == -1` or
/// `end_step >= begin_step`, `frequency >= 1`, `0 <= target_sparsity < 1` (TF-MOT rejects a
/// target of 1). In serde formats it is TF-MOT's `get_config()["config"]`:
/// `{"target_sparsity": 0.5, "begin_step": 0, "end_step": -1, "frequency": 100}` (`end_step`
/// and `frequency` may be left out, defaulting to `-1` and `100` as in TF-MOT), validated on
/// deserialization.
///
/// ```
/// use tch_prune::{ConstantSparsity, PruningSchedule};
///
/// let s = ConstantSparsity::new(0.8, 100, Some(300), 100)?;
/// let steps: Vec<i64> = (0..1000).filter(|&t| s.prune_at(t).is_some()).collect();
/// assert_eq!(steps, [100, 200, 300]);
/// assert_eq!(s.prune_at(200), Some(0.8));
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// TensorFlow equivalent: `tfmot.sparsity.keras.ConstantSparsity(target_sparsity, begin_step,
/// end_step=-1, frequency=100)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Config")]
pub struct ConstantSparsity {
    target_sparsity: f64,
    begin_step: i64,
    end_step: i64,
    frequency: i64,
}

impl ConstantSparsity {
    /// Creates the schedule; `end_step = None` prunes forever (TF-MOT's `end_step=-1`).
    ///
    /// # Errors
    /// [`PruneError::InvalidSchedule`] when `begin_step < 0`, `end_step` is before
    /// `begin_step`, `frequency < 1`, or `target_sparsity` is outside `[0, 1)` (or NaN).
    ///
    /// ```
    /// use tch_prune::{ConstantSparsity, PruneError};
    ///
    /// assert!(ConstantSparsity::new(0.5, 0, None, 1).is_ok());
    /// let err = ConstantSparsity::new(1.0, 0, None, 1).unwrap_err();
    /// assert!(matches!(err, PruneError::InvalidSchedule { parameter: "target_sparsity", .. }));
    /// ```
    pub fn new(
        target_sparsity: f64,
        begin_step: i64,
        end_step: Option<i64>,
        frequency: i64,
    ) -> Result<Self> {
        if let Some(end) = end_step.filter(|&end| end < 0) {
            return Err(PruneError::InvalidSchedule {
                parameter: "end_step",
                value: end as f64,
                expected: format!("None or >= begin_step ({begin_step})"),
            });
        }
        let end_step = end_step.unwrap_or(-1);
        validate_step(begin_step, end_step, frequency, true)?;
        validate_sparsity("target_sparsity", target_sparsity)?;
        Ok(Self { target_sparsity, begin_step, end_step, frequency })
    }

    /// The sparsity every pruning step targets.
    pub fn target_sparsity(&self) -> f64 {
        self.target_sparsity
    }

    /// The first step that prunes.
    pub fn begin_step(&self) -> i64 {
        self.begin_step
    }

    /// The last step that may prune (`None`: pruning never ends).
    pub fn end_step(&self) -> Option<i64> {
        (self.end_step >= 0).then_some(self.end_step)
    }

    /// Pruning happens every `frequency` steps from `begin_step`.
    pub fn frequency(&self) -> i64 {
        self.frequency
    }
}

impl PruningSchedule for ConstantSparsity {
    fn prune_at(&self, step: i64) -> Option<f64> {
        should_prune_in_step(step, self.begin_step, self.end_step, self.frequency)
            .then_some(self.target_sparsity)
    }
}

/// The serde form before validation, with TF-MOT's defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    target_sparsity: f64,
    begin_step: i64,
    #[serde(default = "never")]
    end_step: i64,
    #[serde(default = "hundred")]
    frequency: i64,
}

fn never() -> i64 {
    -1
}

fn hundred() -> i64 {
    100
}

impl TryFrom<Config> for ConstantSparsity {
    type Error = PruneError;

    fn try_from(c: Config) -> Result<Self> {
        // TF-MOT's config writes "no end" as -1; any other negative value stays an error.
        let end_step = (c.end_step != -1).then_some(c.end_step);
        Self::new(c.target_sparsity, c.begin_step, end_step, c.frequency)
    }
}
