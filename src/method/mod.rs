//! Pruning methods: the [`PruningMethod`] trait and PyTorch's built-in methods, one per file.

mod builders;
mod checks;
mod custom_from_mask;
mod identity;
mod l1_unstructured;
mod ln_structured;
mod norm;
mod pruning_type;
mod random_structured;
mod random_unstructured;
mod semi_structured;

pub use crate::amount::Amount;
pub use builders::{LnStructuredBuilder, RandomStructuredBuilder};
pub use custom_from_mask::CustomFromMask;
pub use identity::Identity;
pub use l1_unstructured::L1Unstructured;
pub use ln_structured::LnStructured;
pub use norm::Norm;
pub use pruning_type::PruningType;
pub use random_structured::RandomStructured;
pub use random_unstructured::RandomUnstructured;
pub use sealed::Builtin;
pub use semi_structured::SemiStructured;

pub(crate) use crate::amount::deserialize_valid as deserialize_valid_amount;
pub(crate) use crate::kernels::channels::alive_channels;
pub(crate) use crate::kernels::masks::compact;
pub(crate) use checks::{
    check_dense, check_layout, check_same_shape, check_writable, contiguous_copy, normalize_dim,
    to_kind_copy,
};

use std::fmt;

/// Values only the crate can make: the answers of the built-in methods' fast-path hooks.
mod sealed {
    /// A value of a [`PruningMethod`](super::PruningMethod) hook that only the crate's own
    /// methods can produce (its field is private to the crate), so that a method written
    /// outside the crate cannot claim a built-in fast path.
    #[doc(hidden)]
    #[derive(Debug)]
    pub struct Builtin<T>(pub(crate) T);

    impl<T> Builtin<T> {
        /// The value.
        pub fn into_inner(self) -> T {
            self.0
        }
    }
}

use tch::Tensor;

use crate::error::Result;
use crate::tie_break::TieBreak;

/// A way of choosing which entries of a tensor to prune.
///
/// Implement the two required methods to write your own method; everything else in the crate
/// (containers, model-level pruning, global pruning) works with it. The trait is object-safe:
/// `Box<dyn PruningMethod>` is how containers store a pruning history.
///
/// `compute_mask` receives the *importance* tensor (the parameter itself unless importance
/// scores were given) and the mask from earlier pruning (`default_mask`, all ones the first
/// time), and returns a mask of the same shape that keeps every zero of `default_mask`. It must
/// not modify its arguments. The crate hands it dense (strided) tensors only: sparse and
/// MKL-DNN tensors are refused before, and a sparse mask it returns is refused after
/// ([`PruneError::UnsupportedLayout`](crate::PruneError::UnsupportedLayout)).
///
/// ```
/// use tch::{Kind, Tensor};
/// use tch_prune::{PruningMethod, PruningType, Result};
///
/// /// Prunes every other entry (the tutorial's `FooBarPruningMethod`).
/// #[derive(Debug)]
/// struct EveryOther;
///
/// impl PruningMethod for EveryOther {
///     fn compute_mask(&self, _importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
///         let mask = default_mask.f_contiguous()?.f_detach_copy()?;
///         let _ = mask.f_view([-1])?.f_slice(0, 0, None, 2)?.f_fill_(0)?;
///         Ok(mask)
///     }
///     fn pruning_type(&self) -> PruningType {
///         PruningType::Unstructured
///     }
/// }
///
/// let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
/// let pruned = EveryOther.prune(&t, None, None)?;
/// assert_eq!(Vec::<f32>::try_from(&pruned)?, vec![0.0, 2.0, 0.0, 4.0]);
///
/// // Object-safe: methods can be stored as trait objects.
/// let methods: Vec<Box<dyn PruningMethod>> = vec![Box::new(EveryOther)];
/// assert_eq!(methods[0].pruning_type(), PruningType::Unstructured);
/// # let _ = Kind::Float;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: subclassing `torch.nn.utils.prune.BasePruningMethod` and defining
/// `PRUNING_TYPE` and `compute_mask`.
pub trait PruningMethod: fmt::Debug + Send {
    /// Computes the mask for `importance`, on top of `default_mask` (same shape).
    ///
    /// # Errors
    /// Whatever the method finds wrong with its inputs (an amount larger than the available
    /// units, a bad `dim`, a shape mismatch, a libtorch error).
    ///
    /// PyTorch equivalent: `method.compute_mask(t, default_mask)`.
    fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor>;

    /// What the method prunes: single entries, whole slices along a `dim`, or the whole tensor
    /// at once. Decides how a [`PruningContainer`](crate::PruningContainer) slices the tensor
    /// before calling the method.
    ///
    /// PyTorch equivalent: the class attribute `PRUNING_TYPE`.
    fn pruning_type(&self) -> PruningType;

    /// For methods that prune the `amount` entries of smallest magnitude (like
    /// [`L1Unstructured`]): that amount, and how entries tied at the threshold go
    /// ([`TieBreak`]). Containers and global pruning use it to select in place, across tensors,
    /// without concatenating them. The default, `None`, always works.
    ///
    /// Sealed: only the crate can build a [`Builtin`] value, so a method outside the crate can
    /// only answer `None` and never changes what built-in pruning selects. Claiming the
    /// magnitude fast path from outside does not compile:
    ///
    /// ```compile_fail
    /// use tch::Tensor;
    /// use tch_prune::{Amount, PruningMethod, PruningType};
    ///
    /// #[derive(Debug)]
    /// struct Sneaky;
    /// impl PruningMethod for Sneaky {
    ///     fn compute_mask(&self, _t: &Tensor, m: &Tensor) -> tch_prune::Result<Tensor> {
    ///         Ok(m.copy())
    ///     }
    ///     fn pruning_type(&self) -> PruningType {
    ///         PruningType::Unstructured
    ///     }
    ///     fn magnitude_amount(&self) -> Option<Amount> {
    ///         Some(Amount::Count(1))
    ///     }
    /// }
    /// ```
    #[doc(hidden)]
    fn magnitude_amount(&self) -> Option<Builtin<(Amount, TieBreak)>> {
        None
    }

    /// `compute_mask(importance, &like.ones_like())`, for a parameter's first pruning, when
    /// the method can compute it without building the ones (the fast paths of the built-in
    /// unstructured methods only copy them into the mask); `None` (the default) when the
    /// caller must build the ones and call [`compute_mask`](PruningMethod::compute_mask).
    /// The result, when there is one, is the very tensor `compute_mask` would return.
    ///
    /// Sealed as [`magnitude_amount`](PruningMethod::magnitude_amount) is.
    #[doc(hidden)]
    fn compute_mask_on_ones(
        &self,
        _importance: &Tensor,
        _like: &Tensor,
    ) -> Result<Option<Builtin<Tensor>>> {
        Ok(None)
    }

    /// Returns `t * compute_mask(importance, default_mask)`: the pruned copy of a bare tensor.
    ///
    /// `default_mask` defaults to ones; `importance_scores` defaults to `t` and must have the
    /// shape of `t`. No container logic runs: for magnitude pruning the smallest entries are
    /// taken over the whole tensor, including entries `default_mask` already zeroed (as in
    /// PyTorch).
    ///
    /// # Errors
    /// [`PruneError::ShapeMismatch`](crate::PruneError::ShapeMismatch) when
    /// `importance_scores` or `default_mask` does not have the shape of `t`,
    /// [`PruneError::UnsupportedLayout`](crate::PruneError::UnsupportedLayout) when one of the
    /// three is sparse or MKL-DNN, and the errors of
    /// [`compute_mask`](PruningMethod::compute_mask).
    ///
    /// ```
    /// use tch::Tensor;
    /// use tch_prune::{L1Unstructured, PruningMethod};
    ///
    /// let t = Tensor::from_slice(&[1.0f32, -5.0, 3.0, 0.5]);
    /// let pruned = L1Unstructured::new(2)?.prune(&t, None, None)?;
    /// assert_eq!(Vec::<f32>::try_from(&pruned)?, vec![0.0, -5.0, 3.0, 0.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// PyTorch equivalent: `method.prune(t, default_mask=None, importance_scores=None)`.
    fn prune(
        &self,
        t: &Tensor,
        default_mask: Option<&Tensor>,
        importance_scores: Option<&Tensor>,
    ) -> Result<Tensor> {
        check_layout("t", t)?;
        let importance = match importance_scores {
            Some(scores) => {
                check_layout("importance_scores", scores)?;
                check_same_shape("importance_scores", &t.size(), scores)?;
                scores
            }
            None => t,
        };
        let mask = match default_mask {
            Some(mask) => {
                check_layout("default_mask", mask)?;
                check_same_shape("default_mask", &t.size(), mask)?;
                self.compute_mask(importance, mask)?
            }
            None => self.compute_mask(importance, &t.f_ones_like()?)?,
        };
        Ok(t.f_mul(&mask)?)
    }
}

impl<M: PruningMethod + ?Sized> PruningMethod for Box<M> {
    fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        (**self).compute_mask(importance, default_mask)
    }

    fn pruning_type(&self) -> PruningType {
        (**self).pruning_type()
    }

    fn magnitude_amount(&self) -> Option<Builtin<(Amount, TieBreak)>> {
        (**self).magnitude_amount()
    }

    fn compute_mask_on_ones(
        &self,
        importance: &Tensor,
        like: &Tensor,
    ) -> Result<Option<Builtin<Tensor>>> {
        (**self).compute_mask_on_ones(importance, like)
    }
}

/// A parameter's first mask: `method.compute_mask(importance, &like.ones_like())`, without
/// building the ones when the method's fast path does not need them.
pub(crate) fn first_mask(
    method: &(impl PruningMethod + ?Sized),
    importance: &Tensor,
    like: &Tensor,
) -> Result<Tensor> {
    match method.compute_mask_on_ones(importance, like)? {
        Some(mask) => Ok(mask.into_inner()),
        None => method.compute_mask(importance, &like.f_ones_like()?),
    }
}
