//! [`Amount`]: how much to prune, as a fraction or as a count.

use serde::{Deserialize, Serialize};

use crate::error::{PruneError, Result};

/// How much a method prunes: a fraction of the available units, or an absolute count.
///
/// PyTorch tells the two apart by the Python type of `amount` (`int` vs `float`, so `1` is one
/// unit and `1.0` is all of them). Here the distinction is explicit, and the `From` impls keep
/// ported code looking the same: an integer literal becomes [`Amount::Count`], a float literal
/// [`Amount::Fraction`].
///
/// The variants are plain data; the methods that take an `Amount` validate it once, in their
/// `new` (PyTorch's `_validate_pruning_amount_init`). In serde formats an amount is a bare
/// number: an integer is a count, a number with a fraction part or exponent is a fraction.
///
/// ```
/// use tch_prune::Amount;
///
/// assert_eq!(Amount::from(3), Amount::Count(3));
/// assert_eq!(Amount::from(0.3), Amount::Fraction(0.3));
/// // Python's round-half-to-even on the f64 product: round(0.5 * 5) == 2, round(0.5 * 7) == 4.
/// assert_eq!(Amount::Fraction(0.5).count_for(5).unwrap(), 2);
/// assert_eq!(Amount::Fraction(0.5).count_for(7).unwrap(), 4);
/// // A count larger than the available units is an error.
/// assert!(Amount::Count(20).count_for(19).is_err());
/// ```
///
/// PyTorch equivalent: the `amount` argument (`int` or `float`) of every pruning method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Amount {
    /// An absolute number of units (entries or channels). Must be `>= 0`.
    Count(i64),
    /// A fraction of the available units, in `[0, 1]`, rounded half-to-even.
    Fraction(f64),
}

impl Amount {
    /// Checks the amount the way PyTorch's constructors do: a count must be non-negative and a
    /// fraction must lie in `[0, 1]`.
    ///
    /// Unlike PyTorch, a NaN fraction is rejected here rather than when the count is computed.
    ///
    /// # Errors
    /// [`PruneError::NegativeCount`] or [`PruneError::FractionOutOfRange`].
    ///
    /// ```
    /// use tch_prune::Amount;
    ///
    /// assert!(Amount::Fraction(0.34).validate().is_ok());
    /// assert!(Amount::Count(1500).validate().is_ok());
    /// assert!(Amount::Fraction(20.0).validate().is_err());
    /// assert!(Amount::Count(-10).validate().is_err());
    /// assert!(Amount::Fraction(f64::NAN).validate().is_err());
    /// ```
    ///
    /// PyTorch equivalent: `torch.nn.utils.prune._validate_pruning_amount_init(amount)`.
    pub fn validate(self) -> Result<Self> {
        match self {
            Amount::Count(value) if value < 0 => Err(PruneError::NegativeCount { value }),
            // `contains` is false for NaN, so NaN is rejected too.
            Amount::Fraction(value) if !(0.0..=1.0).contains(&value) => {
                Err(PruneError::FractionOutOfRange { value })
            }
            _ => Ok(self),
        }
    }

    /// The number of units to prune out of `available`, validated against it.
    ///
    /// A count is returned as it is; a fraction becomes `round_half_even(fraction * available)`
    /// computed in `f64`, exactly like Python's `round` (so `0.5 * 5` gives 2, not 3).
    ///
    /// # Errors
    /// [`PruneError::AmountTooLarge`] when the count exceeds `available` (a fraction never
    /// does), and the errors of [`Amount::validate`].
    ///
    /// ```
    /// use tch_prune::Amount;
    ///
    /// assert_eq!(Amount::Count(10).count_for(15).unwrap(), 10);
    /// assert_eq!(Amount::Count(1).count_for(15).unwrap(), 1);
    /// assert_eq!(Amount::Fraction(1.0).count_for(15).unwrap(), 15);
    /// assert_eq!(Amount::Fraction(0.4).count_for(17).unwrap(), 7);
    /// ```
    ///
    /// PyTorch equivalent: `_compute_nparams_toprune(amount, size)` followed by
    /// `_validate_pruning_amount(nparams, size)`.
    pub fn count_for(self, available: i64) -> Result<i64> {
        let requested = match self.validate()? {
            Amount::Count(count) => count,
            // Python's `round` is round-half-to-even on the IEEE double product; `f64::round`
            // rounds half away from zero and would give 3 for 0.5 * 5.
            Amount::Fraction(fraction) => (fraction * available as f64).round_ties_even() as i64,
        };
        if requested > available {
            return Err(PruneError::AmountTooLarge { requested, available });
        }
        Ok(requested)
    }
}

macro_rules! amount_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Amount {
            /// An integer is an absolute count, as in PyTorch.
            fn from(value: $t) -> Self {
                Amount::Count(i64::from(value))
            }
        }
    )*};
}
amount_from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<usize> for Amount {
    /// An integer is an absolute count; counts beyond `i64::MAX` saturate (and then fail
    /// validation against any real tensor size).
    fn from(value: usize) -> Self {
        Amount::Count(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<u64> for Amount {
    /// An integer is an absolute count; counts beyond `i64::MAX` saturate.
    fn from(value: u64) -> Self {
        Amount::Count(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Amount {
    /// A float is a fraction, as in PyTorch (`1.0` means everything).
    fn from(value: f64) -> Self {
        Amount::Fraction(value)
    }
}

impl From<f32> for Amount {
    /// A float is a fraction. The `f32` is widened to `f64` exactly, so `0.3f32` is the
    /// fraction `0.30000001192092896`, as in PyTorch when a numpy `float32` is passed.
    fn from(value: f32) -> Self {
        Amount::Fraction(f64::from(value))
    }
}

/// A bare number: an integer is a count, any other number a fraction. Written by hand (not
/// `#[serde(untagged)]`) so that anything else is refused with a message a user can act on.
impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Amount;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number: an integer count, or a fraction in [0, 1] such as 0.5")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount::Count(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Amount, E> {
                i64::try_from(v).map(Amount::Count).map_err(|_| {
                    E::invalid_value(serde::de::Unexpected::Unsigned(v), &"a count up to 2^63 - 1")
                })
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Amount, E> {
                Ok(Amount::Fraction(v))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// Serde adapter: deserializes an [`Amount`] and validates it.
pub(crate) fn deserialize_valid<'de, D>(deserializer: D) -> Result<Amount, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let amount = Amount::deserialize(deserializer)?;
    amount.validate().map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fractions times sizes around the .5 cases, each expected count computed by Python's
    /// `round(amount * n)` (round half to even on the f64 product).
    #[test]
    fn rounding_matches_python_round_half_even() {
        let table = [
            (0.5, 5, 2),
            (0.5, 7, 4),
            (0.25, 10, 2),
            (0.45, 10, 4),
            (0.9, 5, 4),
            (0.125, 4, 0),
            (0.05, 10, 0),
            (0.5, 1, 0),
            (0.5, 3, 2),
            (0.4, 17, 7),
            (0.6, 2, 1),
            (0.2, 70, 14),
        ];
        for (fraction, size, expected) in table {
            assert_eq!(
                Amount::Fraction(fraction).count_for(size).unwrap(),
                expected,
                "{fraction} * {size}"
            );
        }
    }

    #[test]
    fn validation_limits() {
        assert!(matches!(
            Amount::Fraction(1.1).validate(),
            Err(PruneError::FractionOutOfRange { .. })
        ));
        assert!(matches!(
            Amount::Fraction(f64::INFINITY).validate(),
            Err(PruneError::FractionOutOfRange { .. })
        ));
        assert!(Amount::Fraction(-0.0).validate().is_ok());
        assert!(Amount::Fraction(0.0).validate().is_ok());
        assert!(Amount::Count(0).validate().is_ok());
    }

    #[test]
    fn count_equal_to_size_is_allowed() {
        assert_eq!(Amount::Count(1).count_for(1).unwrap(), 1);
        assert_eq!(Amount::Count(0).count_for(0).unwrap(), 0);
        assert_eq!(Amount::Fraction(0.3).count_for(0).unwrap(), 0);
        assert!(matches!(
            Amount::Count(20).count_for(19),
            Err(PruneError::AmountTooLarge { requested: 20, available: 19 })
        ));
    }
}
