//! [`PolynomialDecay`]: sparsity rising from an initial to a final value along a polynomial
//! (TF-MOT's schedule).

use serde::{Deserialize, Serialize};

use super::checks::{
    polynomial, should_prune_in_step, validate_power, validate_sparsity, validate_step,
};
use super::PruningSchedule;
use crate::error::{PruneError, Result};

/// Prunes every `frequency` steps from `begin_step` to `end_step` (inclusive) to
///
/// ```text
/// sparsity(step) = final + (initial - final) * (1 - p)^power,
/// p = min(1, max(0, (step - begin_step) / (end_step - begin_step)))
/// ```
///
/// which rises fast at first and flattens out towards `final_sparsity` (for `power` > 1).
/// `power` defaults to 3 (Zhu & Gupta's cubic schedule) and `frequency` to 100, as in TF-MOT.
///
/// The formula, the step rule and the validation are TF-MOT's: `begin_step >= 0`,
/// `end_step >= begin_step` (`-1` is not allowed: the curve needs an end; `end_step ==
/// begin_step` is allowed), `frequency >= 1`, both sparsities in `[0, 1)`. TF-MOT does not
/// require `initial_sparsity <= final_sparsity`, and neither do we (a falling target prunes
/// nothing more in a [`GradualPruner`](crate::GradualPruner): masks never grow back). Two
/// deliberate differences: `power` must be finite and `>= 0` (TF-MOT does not check; a
/// negative power gives an infinite sparsity at `end_step`), and `end_step == begin_step`
/// gives the final sparsity (TF-MOT computes 0 / 0 there). TF-MOT computes in `float32`, we in
/// `f64`, so targets agree to about `1e-7`; both ends are exact (`initial_sparsity` at
/// `begin_step`, `final_sparsity` at `end_step`).
///
/// In serde formats it is TF-MOT's `get_config()["config"]` (`power` and `frequency` may be
/// left out), validated on deserialization.
///
/// ```
/// use tch_prune::{PolynomialDecay, PruningSchedule};
///
/// // 0% -> 80% between steps 0 and 400, pruning every 100 steps along a cubic.
/// let s = PolynomialDecay::new(0.0, 0.8, 0, 400)?;
/// let targets: Vec<(i64, f64)> =
///     (0..1000).filter_map(|t| s.prune_at(t).map(|target| (t, target))).collect();
/// assert_eq!(targets, [(0, 0.0), (100, 0.8 - 0.8 * 0.421875), (200, 0.8 - 0.1), (300, 0.8 - 0.8 / 64.0), (400, 0.8)]);
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// TensorFlow equivalent: `tfmot.sparsity.keras.PolynomialDecay(initial_sparsity,
/// final_sparsity, begin_step, end_step, power=3, frequency=100)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Config")]
pub struct PolynomialDecay {
    initial_sparsity: f64,
    final_sparsity: f64,
    power: f64,
    begin_step: i64,
    end_step: i64,
    frequency: i64,
}

impl PolynomialDecay {
    /// Creates the schedule with `power = 3` and `frequency = 100`.
    ///
    /// # Errors
    /// [`PruneError::InvalidSchedule`] when `begin_step < 0`, `end_step < begin_step` (`-1`
    /// included), or a sparsity is outside `[0, 1)` (or NaN).
    ///
    /// ```
    /// use tch_prune::{PolynomialDecay, PruneError};
    ///
    /// assert!(PolynomialDecay::new(0.0, 0.9, 0, 1000).is_ok());
    /// let err = PolynomialDecay::new(0.0, 0.9, 0, -1).unwrap_err();
    /// assert!(matches!(err, PruneError::InvalidSchedule { parameter: "end_step", .. }));
    /// ```
    pub fn new(
        initial_sparsity: f64,
        final_sparsity: f64,
        begin_step: i64,
        end_step: i64,
    ) -> Result<Self> {
        let frequency = 100;
        validate_step(begin_step, end_step, frequency, false)?;
        validate_sparsity("initial_sparsity", initial_sparsity)?;
        validate_sparsity("final_sparsity", final_sparsity)?;
        Ok(Self { initial_sparsity, final_sparsity, power: 3.0, begin_step, end_step, frequency })
    }

    /// Sets the exponent (default 3; 1 gives a straight line).
    ///
    /// # Errors
    /// [`PruneError::InvalidSchedule`] when `power` is negative, infinite or NaN.
    ///
    /// ```
    /// use tch_prune::{PolynomialDecay, PruningSchedule};
    ///
    /// let linear = PolynomialDecay::new(0.0, 0.8, 0, 400)?.with_power(1.0)?;
    /// assert_eq!(linear.prune_at(200), Some(0.4));
    /// assert!(PolynomialDecay::new(0.0, 0.8, 0, 400)?.with_power(-1.0).is_err());
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn with_power(mut self, power: f64) -> Result<Self> {
        validate_power(power)?;
        self.power = power;
        Ok(self)
    }

    /// Sets how often to prune: every `frequency` steps from `begin_step` (default 100).
    ///
    /// # Errors
    /// [`PruneError::InvalidSchedule`] when `frequency < 1`.
    ///
    /// ```
    /// use tch_prune::{PolynomialDecay, PruningSchedule};
    ///
    /// let s = PolynomialDecay::new(0.0, 0.8, 10, 20)?.with_frequency(1)?;
    /// assert_eq!((0..100).filter(|&t| s.prune_at(t).is_some()).count(), 11);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn with_frequency(mut self, frequency: i64) -> Result<Self> {
        validate_step(self.begin_step, self.end_step, frequency, false)?;
        self.frequency = frequency;
        Ok(self)
    }

    /// The curve at `step`, whether or not `step` prunes (TF-MOT's second return value):
    /// `initial_sparsity` up to `begin_step`, `final_sparsity` from `end_step` on.
    ///
    /// ```
    /// use tch_prune::PolynomialDecay;
    ///
    /// let s = PolynomialDecay::new(0.1, 0.5, 100, 200)?;
    /// assert_eq!(s.sparsity(0), 0.1);
    /// assert_eq!(s.sparsity(150), 0.5 + (0.1 - 0.5) * 0.125);
    /// assert_eq!(s.sparsity(10_000), 0.5);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn sparsity(&self, step: i64) -> f64 {
        polynomial(
            self.initial_sparsity,
            self.final_sparsity,
            self.begin_step,
            self.end_step,
            self.power,
            step,
        )
    }

    /// The sparsity at `begin_step`.
    pub fn initial_sparsity(&self) -> f64 {
        self.initial_sparsity
    }

    /// The sparsity from `end_step` on.
    pub fn final_sparsity(&self) -> f64 {
        self.final_sparsity
    }

    /// The exponent of the curve.
    pub fn power(&self) -> f64 {
        self.power
    }

    /// The first step that prunes.
    pub fn begin_step(&self) -> i64 {
        self.begin_step
    }

    /// The last step that may prune.
    pub fn end_step(&self) -> i64 {
        self.end_step
    }

    /// Pruning happens every `frequency` steps from `begin_step`.
    pub fn frequency(&self) -> i64 {
        self.frequency
    }
}

impl PruningSchedule for PolynomialDecay {
    fn prune_at(&self, step: i64) -> Option<f64> {
        should_prune_in_step(step, self.begin_step, self.end_step, self.frequency)
            .then(|| self.sparsity(step))
    }
}

/// The serde form before validation, with TF-MOT's defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    initial_sparsity: f64,
    final_sparsity: f64,
    #[serde(default = "three")]
    power: f64,
    begin_step: i64,
    end_step: i64,
    #[serde(default = "hundred")]
    frequency: i64,
}

fn three() -> f64 {
    3.0
}

fn hundred() -> i64 {
    100
}

impl TryFrom<Config> for PolynomialDecay {
    type Error = PruneError;

    fn try_from(c: Config) -> Result<Self> {
        Self::new(c.initial_sparsity, c.final_sparsity, c.begin_step, c.end_step)?
            .with_power(c.power)?
            .with_frequency(c.frequency)
    }
}
