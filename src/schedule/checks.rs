//! TF-MOT's step rule, its parameter checks and the polynomial curve, shared by the built-in
//! schedules.
//!
//! Source: `tensorflow_model_optimization/python/core/sparsity/keras/pruning_schedule.py`
//! (`PruningSchedule._should_prune_in_step`, `_validate_step`, `_validate_sparsity`,
//! `PolynomialDecay.__call__`).

use crate::error::{PruneError, Result};

/// TF-MOT's `_should_prune_in_step`: `step` lies in `[begin_step, end_step]` (`end_step < 0`
/// meaning no end) and `(step - begin_step) mod frequency == 0`.
///
/// TF-MOT takes a floor modulo; inside the range `step - begin_step >= 0`, so `%` is the same
/// (and cannot overflow: `begin_step >= 0`).
pub(crate) fn should_prune_in_step(
    step: i64,
    begin_step: i64,
    end_step: i64,
    frequency: i64,
) -> bool {
    let in_range = step >= begin_step && (end_step < 0 || step <= end_step);
    in_range && (step - begin_step) % frequency == 0
}

/// TF-MOT's `_validate_step`: `begin_step >= 0`; `end_step == -1` only when `allow_never_ends`
/// (ConstantSparsity yes, PolynomialDecay no); otherwise `end_step >= begin_step` (equal is
/// allowed); `frequency > 0`.
pub(crate) fn validate_step(
    begin_step: i64,
    end_step: i64,
    frequency: i64,
    allow_never_ends: bool,
) -> Result<()> {
    if begin_step < 0 {
        return Err(invalid("begin_step", begin_step as f64, ">= 0"));
    }
    if end_step == -1 && !allow_never_ends {
        return Err(invalid(
            "end_step",
            -1.0,
            format!(">= begin_step ({begin_step}); -1 is not allowed here"),
        ));
    }
    if end_step != -1 {
        if end_step < 0 {
            return Err(invalid("end_step", end_step as f64, "-1 or >= 0"));
        }
        if end_step < begin_step {
            return Err(invalid(
                "end_step",
                end_step as f64,
                format!("-1 or >= begin_step ({begin_step})"),
            ));
        }
    }
    if frequency <= 0 {
        return Err(invalid("frequency", frequency as f64, ">= 1"));
    }
    Ok(())
}

/// TF-MOT's `_validate_sparsity`: `0 <= sparsity < 1` (so NaN fails too).
pub(crate) fn validate_sparsity(parameter: &'static str, sparsity: f64) -> Result<()> {
    if (0.0..1.0).contains(&sparsity) {
        Ok(())
    } else {
        Err(invalid(parameter, sparsity, "in [0, 1)"))
    }
}

/// `0 <= sparsity <= 1` (NaN fails): the range of [`Cubic`](super::Cubic)'s sparsities and of
/// any target a schedule returns.
pub(crate) fn validate_fraction(parameter: &'static str, sparsity: f64) -> Result<()> {
    if (0.0..=1.0).contains(&sparsity) {
        Ok(())
    } else {
        Err(invalid(parameter, sparsity, "in [0, 1]"))
    }
}

/// The exponent of the polynomial: finite and `>= 0`. TF-MOT does not check it, but a negative
/// exponent makes `(1 - p)^power` infinite at `end_step` (a sparsity of +-inf or NaN) and
/// leaves `[0, 1]` before it, and NaN or inf give NaN; we reject them up front.
pub(crate) fn validate_power(power: f64) -> Result<()> {
    if power.is_finite() && power >= 0.0 {
        Ok(())
    } else {
        Err(invalid("power", power, "finite and >= 0"))
    }
}

/// TF-MOT's `PolynomialDecay.__call__`:
/// `p = min(1, max(0, (step - begin_step) / (end_step - begin_step)))`,
/// `sparsity = (initial - final) * (1 - p)^power + final` (the same operations in the same
/// order, in `f64` where TF-MOT computes in `float32`), except that where `(1 - p)^power` is 1
/// the result is `initial` itself.
///
/// `end_step == begin_step` (which TF-MOT accepts) divides zero by zero there, a NaN sparsity at
/// the one step that prunes; we take `p = 1` at and after `begin_step` instead, the limit of a
/// window shrinking to nothing: the final sparsity at once.
pub(crate) fn polynomial(
    initial: f64,
    final_: f64,
    begin_step: i64,
    end_step: i64,
    power: f64,
    step: i64,
) -> f64 {
    let p = if end_step == begin_step {
        if step >= begin_step {
            1.0
        } else {
            0.0
        }
    } else {
        // i128: `step - begin_step` cannot overflow for any i64 step.
        let elapsed = (i128::from(step) - i128::from(begin_step)) as f64;
        (elapsed / (end_step - begin_step) as f64).clamp(0.0, 1.0)
    };
    let decay = (1.0 - p).powf(power);
    if decay == 1.0 {
        // At p = 0 (or with power 0) the formula is `initial`, but `(initial - final) + final`
        // in floating point can miss it by an ulp (0.09999999999999998 for 0.1 and 0.9), enough
        // to move `round(target * numel)` across a half. At p = 1 it is `final` exactly.
        return initial;
    }
    (initial - final_) * decay + final_
}

fn invalid(parameter: &'static str, value: f64, expected: impl Into<String>) -> PruneError {
    PruneError::InvalidSchedule { parameter, value, expected: expected.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_rule_is_floor_mod_within_range() {
        assert!(should_prune_in_step(5, 5, 5, 3));
        assert!(!should_prune_in_step(4, 5, -1, 1));
        assert!(should_prune_in_step(i64::MAX, 1, -1, 2));
        assert!(!should_prune_in_step(i64::MIN, 0, -1, 1));
        assert!(!should_prune_in_step(9, 0, 8, 1));
    }

    #[test]
    fn polynomial_clamps_and_handles_an_empty_window() {
        assert_eq!(polynomial(0.1, 0.9, 10, 20, 3.0, 0), 0.1);
        assert_eq!(polynomial(0.1, 0.9, 10, 20, 3.0, 10), 0.1);
        assert_eq!(polynomial(0.1, 0.9, 10, 20, 3.0, 20), 0.9);
        assert_eq!(polynomial(0.1, 0.9, 10, 20, 3.0, 1000), 0.9);
        assert_eq!(polynomial(0.1, 0.9, 10, 20, 3.0, i64::MIN), 0.1);
        assert_eq!(polynomial(0.1, 0.9, 10, 10, 3.0, 10), 0.9);
        assert_eq!(polynomial(0.1, 0.9, 10, 10, 3.0, 9), 0.1);
        // power 0: (1 - p)^0 == 1 everywhere, 0^0 included (IEEE pow).
        assert_eq!(polynomial(0.1, 0.9, 10, 20, 0.0, 20), 0.1);
    }

    #[test]
    fn validation_matches_tf_mot() {
        assert!(validate_step(0, -1, 1, true).is_ok());
        assert!(validate_step(0, -1, 1, false).is_err());
        assert!(validate_step(3, 3, 1, false).is_ok());
        assert!(validate_step(3, 2, 1, true).is_err());
        assert!(validate_step(0, -2, 1, true).is_err());
        assert!(validate_step(-1, 5, 1, true).is_err());
        assert!(validate_step(0, 5, 0, true).is_err());
        assert!(validate_sparsity("s", 0.0).is_ok());
        assert!(validate_sparsity("s", 1.0).is_err());
        assert!(validate_sparsity("s", f64::NAN).is_err());
        assert!(validate_sparsity("s", -0.1).is_err());
        assert!(validate_fraction("s", 1.0).is_ok());
        assert!(validate_power(0.0).is_ok());
        assert!(validate_power(-1.0).is_err());
        assert!(validate_power(f64::INFINITY).is_err());
    }
}
