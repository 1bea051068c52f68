//! Named-argument builders for the structured methods, whose numeric arguments (`amount`, `n`,
//! `dim`) would swap silently in a positional call such as `LnStructured::new(0.5, 2, 0)`.

use super::{Amount, LnStructured, Norm, RandomStructured};
use crate::error::{PruneError, Result};

/// Builds an [`LnStructured`] with named arguments; see [`LnStructured::builder`].
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct LnStructuredBuilder {
    amount: Option<Amount>,
    n: Option<Norm>,
    dim: Option<i64>,
}

impl LnStructuredBuilder {
    /// A count (`3`) or a fraction (`0.5`) of the channels to prune.
    pub fn amount(mut self, amount: impl Into<Amount>) -> Self {
        self.amount = Some(amount.into());
        self
    }

    /// The norm order (`2`, `Norm::Inf`, ...).
    pub fn n(mut self, n: impl Into<Norm>) -> Self {
        self.n = Some(n.into());
        self
    }

    /// The dimension whose slices are the channels (PyTorch's default: `-1`).
    pub fn dim(mut self, dim: i64) -> Self {
        self.dim = Some(dim);
        self
    }

    /// The method, validated as [`LnStructured::new`] validates it.
    ///
    /// # Errors
    /// [`PruneError::MissingArgument`] without `amount` or `n`; then as
    /// [`LnStructured::new`].
    pub fn build(self) -> Result<LnStructured> {
        let amount = self.amount.ok_or(PruneError::MissingArgument { parameter: "amount" })?;
        let n = self.n.ok_or(PruneError::MissingArgument { parameter: "n" })?;
        LnStructured::new(amount, n, self.dim.unwrap_or(-1))
    }
}

/// Builds a [`RandomStructured`] with named arguments; see [`RandomStructured::builder`].
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct RandomStructuredBuilder {
    amount: Option<Amount>,
    dim: Option<i64>,
}

impl RandomStructuredBuilder {
    /// A count (`3`) or a fraction (`0.5`) of the channels to prune.
    pub fn amount(mut self, amount: impl Into<Amount>) -> Self {
        self.amount = Some(amount.into());
        self
    }

    /// The dimension whose slices are the channels (PyTorch's default: `-1`).
    pub fn dim(mut self, dim: i64) -> Self {
        self.dim = Some(dim);
        self
    }

    /// The method, validated as [`RandomStructured::new`] validates it.
    ///
    /// # Errors
    /// [`PruneError::MissingArgument`] without `amount`; then as [`RandomStructured::new`].
    pub fn build(self) -> Result<RandomStructured> {
        let amount = self.amount.ok_or(PruneError::MissingArgument { parameter: "amount" })?;
        RandomStructured::new(amount, self.dim.unwrap_or(-1))
    }
}

impl LnStructured {
    /// Starts an [`LnStructured`] with named arguments, which cannot be swapped as the
    /// positional `new(amount, n, dim)` can.
    ///
    /// ```
    /// use tch_prune::{LnStructured, Norm, PruneError};
    ///
    /// let m = LnStructured::builder().amount(0.5).n(2).dim(0).build()?;
    /// assert_eq!(m, LnStructured::new(0.5, 2, 0)?);
    /// assert_eq!(LnStructured::builder().amount(1).n(Norm::Inf).build()?.dim(), -1);
    /// assert!(matches!(
    ///     LnStructured::builder().amount(0.5).build(),
    ///     Err(PruneError::MissingArgument { parameter: "n" })
    /// ));
    /// # Ok::<(), PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `LnStructured(amount=0.5, n=2, dim=0)` (keyword arguments).
    pub fn builder() -> LnStructuredBuilder {
        LnStructuredBuilder::default()
    }
}

impl RandomStructured {
    /// Starts a [`RandomStructured`] with named arguments.
    ///
    /// ```
    /// use tch_prune::RandomStructured;
    ///
    /// let m = RandomStructured::builder().amount(2).dim(1).build()?;
    /// assert_eq!(m, RandomStructured::new(2, 1)?);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `RandomStructured(amount=2, dim=1)` (keyword arguments).
    pub fn builder() -> RandomStructuredBuilder {
        RandomStructuredBuilder::default()
    }
}
