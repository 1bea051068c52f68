//! [`FromFn`]: a schedule from a closure.

use std::fmt;

use super::PruningSchedule;

/// A custom schedule: the closure is [`prune_at`](PruningSchedule::prune_at).
///
/// The closure returns `Some(target)` at the steps that prune, with the target sparsity of the
/// whole tensor, and `None` elsewhere. Its targets cannot be checked in advance; a
/// [`GradualPruner`](crate::GradualPruner) rejects one outside `[0, 1]` when it meets it.
/// Not serializable (a closure has no data to write).
///
/// ```
/// use tch_prune::{FromFn, PruningSchedule};
///
/// // Two one-shot steps: 50% at step 100, 75% at step 200.
/// let s = FromFn::new(|step| match step {
///     100 => Some(0.5),
///     200 => Some(0.75),
///     _ => None,
/// });
/// assert_eq!(s.prune_at(100), Some(0.5));
/// assert_eq!(s.prune_at(150), None);
/// let boxed: Box<dyn PruningSchedule> = Box::new(s);
/// assert_eq!(boxed.prune_at(200), Some(0.75));
/// ```
pub struct FromFn<F> {
    f: F,
}

impl<F: Fn(i64) -> Option<f64> + Send> FromFn<F> {
    /// Wraps the closure.
    ///
    /// ```
    /// use tch_prune::{FromFn, PruningSchedule};
    ///
    /// // Linear ramp to 90%, pruning every 10 steps up to step 1000.
    /// let ramp = FromFn::new(|t| (t % 10 == 0 && (0..=1000).contains(&t)).then(|| 0.9 * t as f64 / 1000.0));
    /// assert_eq!(ramp.prune_at(500), Some(0.45));
    /// ```
    pub fn new(f: F) -> Self {
        Self { f }
    }
}

impl<F: Fn(i64) -> Option<f64> + Send> PruningSchedule for FromFn<F> {
    fn prune_at(&self, step: i64) -> Option<f64> {
        (self.f)(step)
    }
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}
