//! Sparsity schedules ([`PruningSchedule`] and the built-in schedules, one per file) and
//! gradual magnitude pruning driven by them ([`GradualPruner`]).
//!
//! A schedule answers one question per training step: prune now, and to which sparsity of the
//! whole tensor? [`ConstantSparsity`] and [`PolynomialDecay`] are TF-MOT's schedules
//! (`tfmot.sparsity.keras`), with its formulas, edge cases and validation; [`Cubic`] is Zhu &
//! Gupta's gradual pruning schedule (2017); [`FromFn`] wraps a closure. [`ScheduleConfig`] holds
//! a built-in schedule as data tagged by its `kind` (a pruning recipe's `schedule` table).

mod checks;
mod config;
mod constant_sparsity;
mod cubic;
mod from_fn;
mod gradual;
mod polynomial_decay;
mod progress;

pub use config::ScheduleConfig;
pub(crate) use config::ScheduleRepr;
pub use constant_sparsity::ConstantSparsity;
pub use cubic::Cubic;
pub use from_fn::FromFn;
pub use gradual::{GradualPruner, PruningScope};
pub use polynomial_decay::PolynomialDecay;
pub use progress::{ParameterSparsity, PruneProgress};

use std::fmt;

/// When to prune during training, and to which sparsity.
///
/// One required method: [`prune_at`](PruningSchedule::prune_at) returns `Some(target)` at the
/// steps where pruning should happen, `target` being the fraction of **the whole tensor** that
/// should be pruned after that step (not a fraction of what is left), and `None` at every other
/// step. One method rather than TF-MOT's pair `(should_prune, sparsity)` because the sparsity
/// only matters where pruning happens; the built-in schedules also expose the curve itself
/// (e.g. [`PolynomialDecay::sparsity`]) for logging.
///
/// The trait is object-safe (`Box<dyn PruningSchedule>` is what [`GradualPruner`] stores) and
/// `Debug + Send`. A schedule is a pure function of the step: calling it twice with the same
/// step gives the same answer, and steps may be asked in any order.
///
/// ```
/// use tch_prune::{ConstantSparsity, PolynomialDecay, PruningSchedule};
///
/// // Prune to 50% every 10 steps from step 20 on, forever (`None`: TF-MOT's end_step = -1).
/// let constant = ConstantSparsity::new(0.5, 20, None, 10)?;
/// assert_eq!(constant.prune_at(19), None);
/// assert_eq!(constant.prune_at(20), Some(0.5));
/// assert_eq!(constant.prune_at(25), None);
/// assert_eq!(constant.prune_at(1_000_000), Some(0.5));
///
/// // Object-safe: schedules can be stored as trait objects.
/// let schedules: Vec<Box<dyn PruningSchedule>> = vec![
///     Box::new(constant),
///     Box::new(PolynomialDecay::new(0.0, 0.8, 0, 100)?.with_frequency(50)?),
/// ];
/// let at_100: Vec<_> = schedules.iter().map(|s| s.prune_at(100)).collect();
/// assert_eq!(at_100, [Some(0.5), Some(0.8)]);
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// TensorFlow equivalent: subclassing `tfmot.sparsity.keras.PruningSchedule` and defining
/// `__call__(step) -> (should_prune, sparsity)`.
pub trait PruningSchedule: fmt::Debug + Send {
    /// `Some(target)` when pruning should happen at training step `step`, with the target
    /// sparsity of the whole tensor (in `[0, 1]`); `None` when not.
    ///
    /// ```
    /// use tch_prune::{Cubic, PruningSchedule};
    ///
    /// // Zhu & Gupta: from 0% at step 0 to 90% at step 3 * 100, pruning every 100 steps.
    /// let cubic = Cubic::new(0.0, 0.9, 0, 3, 100)?;
    /// assert_eq!(cubic.prune_at(0), Some(0.0));
    /// assert_eq!(cubic.prune_at(50), None);
    /// assert!((cubic.prune_at(100).unwrap() - 0.9 * (1.0 - (2.0f64 / 3.0).powi(3))).abs() < 1e-12);
    /// assert_eq!(cubic.prune_at(300), Some(0.9));
    /// assert_eq!(cubic.prune_at(400), None);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    fn prune_at(&self, step: i64) -> Option<f64>;
}

impl<S: PruningSchedule + ?Sized> PruningSchedule for Box<S> {
    fn prune_at(&self, step: i64) -> Option<f64> {
        (**self).prune_at(step)
    }
}
