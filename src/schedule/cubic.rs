//! [`Cubic`]: Zhu & Gupta's gradual pruning schedule.

use serde::{Deserialize, Serialize};

use super::checks::{polynomial, should_prune_in_step, validate_fraction, validate_step};
use super::PruningSchedule;
use crate::error::{PruneError, Result};

/// Zhu & Gupta's gradual pruning ("To prune, or not to prune", 2017, eq. 1): with `t0 =
/// begin_step`, `n = pruning_steps` and `Δt = frequency`, prunes at the steps `t0, t0 + Δt,
/// ..., t0 + nΔt` (only those) to
///
/// ```text
/// s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (nΔt))^3
/// ```
///
/// from `s_i = initial_sparsity` at `t0` to `s_f = final_sparsity` at `t0 + nΔt`: large steps
/// while there are many redundant weights, smaller ones as fewer remain.
///
/// This is [`PolynomialDecay`](crate::PolynomialDecay) with `power = 3`, `end_step = t0 + nΔt`
/// and `frequency = Δt`, parametrized as in the paper, and with sparsities in `[0, 1]` (a
/// final sparsity of 1, which TF-MOT rejects, prunes everything). In serde formats:
/// `{"initial_sparsity", "final_sparsity", "begin_step", "pruning_steps", "frequency"}`,
/// validated on deserialization.
///
/// ```
/// use tch_prune::{Cubic, PruningSchedule};
///
/// // 0% -> 87.5% in 3 intervals of 10 steps from step 5.
/// let s = Cubic::new(0.0, 0.875, 5, 3, 10)?;
/// let targets: Vec<(i64, f64)> =
///     (0..100).filter_map(|t| s.prune_at(t).map(|target| (t, target))).collect();
/// let expected = [(5, 0.0), (15, 0.875 * (1.0 - 8.0 / 27.0)), (25, 0.875 * (1.0 - 1.0 / 27.0)), (35, 0.875)];
/// for ((t, target), (u, want)) in targets.iter().zip(expected) {
///     assert_eq!(*t, u);
///     assert!((target - want).abs() < 1e-12);
/// }
/// assert_eq!(targets.len(), 4);
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Config")]
pub struct Cubic {
    initial_sparsity: f64,
    final_sparsity: f64,
    begin_step: i64,
    pruning_steps: i64,
    frequency: i64,
}

impl Cubic {
    /// Creates the schedule: from `initial_sparsity` at `begin_step` to `final_sparsity` after
    /// `pruning_steps` intervals of `frequency` steps.
    ///
    /// # Errors
    /// [`PruneError::InvalidSchedule`] when `begin_step < 0`, `pruning_steps < 1`,
    /// `frequency < 1`, the last pruning step `begin_step + pruning_steps * frequency`
    /// overflows `i64`, or a sparsity is outside `[0, 1]` (or NaN).
    ///
    /// ```
    /// use tch_prune::{Cubic, PruneError};
    ///
    /// assert!(Cubic::new(0.0, 0.9, 0, 10, 100).is_ok());
    /// let err = Cubic::new(0.0, 0.9, 0, 0, 100).unwrap_err();
    /// assert!(matches!(err, PruneError::InvalidSchedule { parameter: "pruning_steps", .. }));
    /// ```
    pub fn new(
        initial_sparsity: f64,
        final_sparsity: f64,
        begin_step: i64,
        pruning_steps: i64,
        frequency: i64,
    ) -> Result<Self> {
        validate_step(begin_step, begin_step, frequency, false)?;
        if pruning_steps < 1 {
            return Err(PruneError::InvalidSchedule {
                parameter: "pruning_steps",
                value: pruning_steps as f64,
                expected: ">= 1".into(),
            });
        }
        if pruning_steps.checked_mul(frequency).and_then(|d| d.checked_add(begin_step)).is_none() {
            return Err(PruneError::InvalidSchedule {
                parameter: "pruning_steps",
                value: pruning_steps as f64,
                expected: format!(
                    "small enough that begin_step + pruning_steps * frequency fits in i64 (frequency {frequency})"
                ),
            });
        }
        validate_fraction("initial_sparsity", initial_sparsity)?;
        validate_fraction("final_sparsity", final_sparsity)?;
        Ok(Self { initial_sparsity, final_sparsity, begin_step, pruning_steps, frequency })
    }

    /// The curve at `step`, whether or not `step` prunes: `initial_sparsity` up to
    /// `begin_step`, `final_sparsity` from [`end_step`](Self::end_step) on.
    ///
    /// ```
    /// use tch_prune::Cubic;
    ///
    /// let s = Cubic::new(0.0, 0.8, 0, 2, 100)?;
    /// assert_eq!(s.sparsity(-5), 0.0);
    /// assert_eq!(s.sparsity(100), 0.8 - 0.8 * 0.125);
    /// assert_eq!(s.sparsity(150), 0.8 - 0.8 * 0.015625);
    /// assert_eq!(s.sparsity(999), 0.8);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn sparsity(&self, step: i64) -> f64 {
        polynomial(
            self.initial_sparsity,
            self.final_sparsity,
            self.begin_step,
            self.end_step(),
            3.0,
            step,
        )
    }

    /// The last pruning step, `begin_step + pruning_steps * frequency`.
    pub fn end_step(&self) -> i64 {
        // Checked in `new`.
        self.begin_step + self.pruning_steps * self.frequency
    }

    /// `s_i`: the sparsity at `begin_step`.
    pub fn initial_sparsity(&self) -> f64 {
        self.initial_sparsity
    }

    /// `s_f`: the sparsity from [`end_step`](Self::end_step) on.
    pub fn final_sparsity(&self) -> f64 {
        self.final_sparsity
    }

    /// `t0`: the first pruning step.
    pub fn begin_step(&self) -> i64 {
        self.begin_step
    }

    /// `n`: the number of intervals from `s_i` to `s_f` (there are `n + 1` pruning steps).
    pub fn pruning_steps(&self) -> i64 {
        self.pruning_steps
    }

    /// `Δt`: the steps between two pruning steps.
    pub fn frequency(&self) -> i64 {
        self.frequency
    }
}

impl PruningSchedule for Cubic {
    fn prune_at(&self, step: i64) -> Option<f64> {
        should_prune_in_step(step, self.begin_step, self.end_step(), self.frequency)
            .then(|| self.sparsity(step))
    }
}

/// The serde form before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    initial_sparsity: f64,
    final_sparsity: f64,
    begin_step: i64,
    pruning_steps: i64,
    frequency: i64,
}

impl TryFrom<Config> for Cubic {
    type Error = PruneError;

    fn try_from(c: Config) -> Result<Self> {
        Self::new(c.initial_sparsity, c.final_sparsity, c.begin_step, c.pruning_steps, c.frequency)
    }
}
