//! [`ThresholdSchedule`]: the reference's `schedule_threshold` (cubic, with warm-ups).

use serde::{Deserialize, Serialize};

use crate::error::{PruneError, Result};

/// The threshold schedule of `masked_run_squad.py` / `masked_run_glue.py`
/// (`schedule_threshold`), with `w = warmup_steps`, `T = total_steps`, `iw = initial_warmup`,
/// `fw = final_warmup`:
///
/// ```text
/// step ≤ iw·w        → t = initial
/// step > T − fw·w    → t = final
/// otherwise          → t = final + (initial − final)·(1 − (step − iw·w)/(T − (iw+fw)·w))³
/// λ_t = final_lambda · t / final
/// ```
///
/// It drives the kept fraction (Top-K, magnitude: 1 → e.g. 0.15) or the sigmoid threshold
/// (soft movement: 0 → 0.1). In terms of sparsity `1 − t` it is the curve of
/// [`Cubic`](crate::Cubic); the boundaries (`≤` at the start, `>` at the end, warm-ups in
/// multiples of `warmup_steps`) and the operation order are the reference's, so the sequence
/// is the same bit for bit.
///
/// ```
/// use tch_prune::movement::ThresholdSchedule;
///
/// // The README's hard movement run, scaled down: 1 → 0.15 over 100 steps, warm-up 10.
/// let s = ThresholdSchedule::new(1.0, 0.15, 10, 100, 1, 2)?.with_final_lambda(0.0);
/// assert_eq!(s.threshold(10), 1.0); // ≤ iw·w
/// assert!(s.threshold(11) < 1.0);
/// assert_eq!(s.threshold(80), 0.15 + 0.85 * 0.0); // T − fw·w = 80: the curve reaches final
/// assert_eq!(s.threshold(81), 0.15);
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdSchedule {
    initial_threshold: f64,
    final_threshold: f64,
    warmup_steps: i64,
    total_steps: i64,
    initial_warmup: i64,
    final_warmup: i64,
    final_lambda: f64,
}

impl ThresholdSchedule {
    /// The schedule from `initial_threshold` to `final_threshold` over `total_steps`, with
    /// `initial_warmup` and `final_warmup` multiples of `warmup_steps` held flat at each end
    /// (the README: `iw = 1`, `fw = 2`); `final_lambda` 0 (see
    /// [`with_final_lambda`](Self::with_final_lambda)).
    ///
    /// # Errors
    /// [`PruneError::InvalidSchedule`] when a threshold is not finite, `final_threshold` is 0
    /// (λ divides by it), a step count is negative, or the ramp is empty
    /// (`total_steps ≤ (initial_warmup + final_warmup)·warmup_steps`, which the reference
    /// divides by).
    ///
    /// ```
    /// use tch_prune::{movement::ThresholdSchedule, PruneError};
    ///
    /// let err = ThresholdSchedule::new(1.0, 0.1, 10, 30, 1, 2).unwrap_err();
    /// assert!(matches!(err, PruneError::InvalidSchedule { parameter: "total_steps", .. }));
    /// ```
    pub fn new(
        initial_threshold: f64,
        final_threshold: f64,
        warmup_steps: i64,
        total_steps: i64,
        initial_warmup: i64,
        final_warmup: i64,
    ) -> Result<Self> {
        let bad = |parameter: &'static str, value: f64, expected: &str| {
            Err(PruneError::InvalidSchedule { parameter, value, expected: expected.into() })
        };
        if !initial_threshold.is_finite() {
            return bad("initial_threshold", initial_threshold, "a finite value");
        }
        if !final_threshold.is_finite() || final_threshold == 0.0 {
            return bad("final_threshold", final_threshold, "a finite, non-zero value");
        }
        for (parameter, v) in [
            ("warmup_steps", warmup_steps),
            ("initial_warmup", initial_warmup),
            ("final_warmup", final_warmup),
        ] {
            if v < 0 {
                return bad(parameter, v as f64, ">= 0");
            }
        }
        let flat = initial_warmup
            .checked_add(final_warmup)
            .and_then(|w| w.checked_mul(warmup_steps))
            .unwrap_or(i64::MAX);
        if total_steps <= flat {
            return bad(
                "total_steps",
                total_steps as f64,
                &format!("> (initial_warmup + final_warmup) * warmup_steps = {flat}"),
            );
        }
        Ok(Self {
            initial_threshold,
            final_threshold,
            warmup_steps,
            total_steps,
            initial_warmup,
            final_warmup,
            final_lambda: 0.0,
        })
    }

    /// Sets the regularisation weight reached at the final threshold (`--final_lambda`: 400
    /// for soft movement, 125 for L0 in the README).
    pub fn with_final_lambda(mut self, final_lambda: f64) -> Self {
        self.final_lambda = final_lambda;
        self
    }

    /// The threshold at `step`.
    ///
    /// ```
    /// use tch_prune::movement::ThresholdSchedule;
    ///
    /// let s = ThresholdSchedule::new(0.0, 0.1, 5, 50, 1, 2)?;
    /// assert_eq!(s.threshold(0), 0.0);
    /// assert_eq!(s.threshold(50), 0.1);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn threshold(&self, step: i64) -> f64 {
        let w = self.warmup_steps;
        if step <= self.initial_warmup * w {
            self.initial_threshold
        } else if step > self.total_steps - self.final_warmup * w {
            self.final_threshold
        } else {
            let spars_warmup_steps = self.initial_warmup * w;
            let spars_schedu_steps = (self.final_warmup + self.initial_warmup) * w;
            let mul_coeff = 1.0
                - (step - spars_warmup_steps) as f64
                    / (self.total_steps - spars_schedu_steps) as f64;
            // `powf`, not `powi`: Python's `x**3` on a float is C's `pow(x, 3.0)`.
            self.final_threshold
                + (self.initial_threshold - self.final_threshold) * mul_coeff.powf(3.0)
        }
    }

    /// The regularisation weight at `step`: `final_lambda · threshold(step) / final_threshold`.
    ///
    /// ```
    /// use tch_prune::movement::ThresholdSchedule;
    ///
    /// let s = ThresholdSchedule::new(0.0, 0.1, 5, 50, 1, 2)?.with_final_lambda(400.0);
    /// assert_eq!(s.lambda(0), 0.0);
    /// assert_eq!(s.lambda(50), 400.0);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn lambda(&self, step: i64) -> f64 {
        self.final_lambda * self.threshold(step) / self.final_threshold
    }
}
