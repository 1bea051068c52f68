//! Pruning one variable of a [`HardMask`]: the method, then the in-place multiplication.

use tch::Tensor;

use super::{HardMask, MaskEntry};
use crate::error::{PruneError, Result};
use crate::method::{
    check_layout, check_same_shape, check_writable, contiguous_copy, Amount, CustomFromMask,
    L1Unstructured, LnStructured, Norm, PruningMethod, RandomStructured, RandomUnstructured,
};

/// A validated mask, ready to be multiplied in: applying it cannot fail for any reason the
/// checks could have caught.
pub(super) struct PendingMask {
    pub(super) name: String,
    pub(super) param: Tensor,
    pub(super) mask: Tensor,
}

impl HardMask {
    /// Prunes the variable `name` with any [`PruningMethod`], your own included, and zeroes the
    /// pruned entries in place.
    ///
    /// `importance_scores` (same shape as the variable) rank the entries instead of its
    /// values. The first pruning computes the mask from all ones; later ones go through the
    /// [`PruningContainer`](crate::PruningContainer) combining step with the current masked
    /// value as importance, exactly as [`PrunedModel::apply`](crate::PrunedModel::apply).
    ///
    /// # Errors
    /// [`PruneError::UnknownParameter`] when the `VarStore` has no variable `name`;
    /// [`PruneError::ShapeMismatch`] (importance scores, or a mask of the wrong shape from a
    /// custom method); [`PruneError::DeviceMismatch`] for a mask on another device;
    /// [`PruneError::NonBinaryMask`] for a mask with entries other than 0 and 1;
    /// [`PruneError::UnsupportedLayout`] for a sparse or MKL-DNN variable, importance scores or
    /// mask; [`PruneError::InternalOverlap`] for a variable that cannot be written in place (an
    /// expanded tensor); and whatever the method returns. Nothing changes on error, neither the tensor nor the masks.
    ///
    /// ```
    /// use tch::{nn, Device, Kind};
    /// use tch_prune::{HardMask, LnStructured};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let conv = nn::conv2d(vs.root() / "conv", 3, 8, 3, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// masks.prune("conv.weight", LnStructured::new(0.5, 2, 0)?, None)?;
    /// let alive = conv.ws.abs().sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Float).ne(0.0);
    /// assert_eq!(alive.sum(Kind::Int64).int64_value(&[]), 4); // 4 of 8 filters left
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `Method.apply(module, name, ...)` followed by
    /// `prune.remove(module, name)`, keeping the mask to re-apply it.
    pub fn prune(
        &mut self,
        name: &str,
        method: impl PruningMethod + 'static,
        importance_scores: Option<&Tensor>,
    ) -> Result<()> {
        let pending = self.prepare(name, &method, importance_scores)?;
        self.commit(vec![pending])
    }

    /// Prunes the `amount` entries of `name` with the smallest magnitude.
    ///
    /// # Errors
    /// As [`prune`](Self::prune) and [`L1Unstructured::new`].
    ///
    /// ```
    /// use tch::{nn, Device, Kind};
    /// use tch_prune::HardMask;
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 10, 10, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// masks.l1_unstructured("fc.weight", 0.3, None)?;
    /// assert_eq!(fc.ws.eq(0.0).sum(Kind::Int64).int64_value(&[]), 30);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.l1_unstructured(module, name, amount, importance_scores)`.
    pub fn l1_unstructured(
        &mut self,
        name: &str,
        amount: impl Into<Amount>,
        importance_scores: Option<&Tensor>,
    ) -> Result<()> {
        self.prune(name, L1Unstructured::new(amount)?, importance_scores)
    }

    /// Prunes `amount` entries of `name` at random.
    ///
    /// # Errors
    /// As [`prune`](Self::prune) and [`RandomUnstructured::new`].
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::HardMask;
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let _fc = nn::linear(vs.root() / "fc", 5, 4, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// tch::manual_seed(0); // as PyTorch right after `torch.manual_seed(0)`: the same entries
    /// masks.random_unstructured("fc.weight", 0.25)?;
    /// assert_eq!(masks.sparsity("fc.weight")?, 0.25);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.random_unstructured(module, name, amount)`.
    pub fn random_unstructured(&mut self, name: &str, amount: impl Into<Amount>) -> Result<()> {
        self.prune(name, RandomUnstructured::new(amount)?, None)
    }

    /// Prunes `amount` channels of `name` along `dim` at random.
    ///
    /// # Errors
    /// As [`prune`](Self::prune) and [`RandomStructured::new`].
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::HardMask;
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let _fc = nn::linear(vs.root() / "fc", 5, 4, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// masks.random_structured("fc.weight", 1, 1)?; // one of the 5 input columns
    /// assert_eq!(masks.sparsity("fc.weight")?, 0.2);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.random_structured(module, name, amount, dim)`.
    pub fn random_structured(
        &mut self,
        name: &str,
        amount: impl Into<Amount>,
        dim: i64,
    ) -> Result<()> {
        self.prune(name, RandomStructured::new(amount, dim)?, None)
    }

    /// Prunes the `amount` channels of `name` along `dim` with the smallest `n`-norm.
    ///
    /// # Errors
    /// As [`prune`](Self::prune) and [`LnStructured::new`].
    ///
    /// ```
    /// use tch::{nn, Device, Kind};
    /// use tch_prune::HardMask;
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let lstm = nn::lstm(vs.root() / "lstm", 4, 3, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// // Half of the 12 gate rows of the input-hidden weights, by L2 norm.
    /// masks.ln_structured("lstm.weight_ih_l0", 0.5, 2, 0, None)?;
    /// let w = &vs.variables()["lstm.weight_ih_l0"];
    /// assert_eq!(w.eq(0.0).sum(Kind::Int64).int64_value(&[]), 6 * 4);
    /// # let _ = lstm;
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.ln_structured(module, name, amount, n, dim, importance_scores)`.
    pub fn ln_structured(
        &mut self,
        name: &str,
        amount: impl Into<Amount>,
        n: impl Into<Norm>,
        dim: i64,
        importance_scores: Option<&Tensor>,
    ) -> Result<()> {
        self.prune(name, LnStructured::new(amount, n, dim)?, importance_scores)
    }

    /// Prunes `name` with a mask you provide (of zeros and ones, any kind), combined with the
    /// existing mask; also how saved masks are restored.
    ///
    /// # Errors
    /// As [`prune`](Self::prune): [`PruneError::ShapeMismatch`] when `mask` does not have the
    /// variable's shape, [`PruneError::NonBinaryMask`] when it holds other values.
    ///
    /// ```
    /// use tch::{nn, Device, Tensor};
    /// use tch_prune::HardMask;
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 2, 2, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// let keep = Tensor::from_slice(&[true, false, false, true]).reshape([2, 2]);
    /// masks.custom_from_mask("fc.weight", &keep)?;
    /// assert_eq!(fc.ws.double_value(&[0, 1]), 0.0);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.custom_from_mask(module, name, mask)`.
    pub fn custom_from_mask(&mut self, name: &str, mask: &Tensor) -> Result<()> {
        self.prune(name, CustomFromMask::new(mask.shallow_clone()), None)
    }

    /// Validates and computes the new mask of `name` without changing anything.
    fn prepare(
        &self,
        name: &str,
        method: &dyn PruningMethod,
        importance_scores: Option<&Tensor>,
    ) -> Result<PendingMask> {
        let param = self.param(name)?;
        check_writable(name, &param)?;
        let current = self.entry(name).map(|e| e.mask.shallow_clone());
        let value = match &current {
            // A magnitude method only ranks entries whose mask is 1, where the value is the
            // parameter itself: skip forming the product (as `PrunedModel` does).
            Some(mask) if importance_scores.is_none() && method.magnitude_amount().is_none() => {
                tch::no_grad(|| param.f_mul(mask))?
            }
            _ => param.f_detach()?,
        };
        let importance = match importance_scores {
            Some(scores) => {
                check_layout("importance_scores", scores)?;
                check_same_shape("importance_scores", &param.size(), scores)?;
                scores
            }
            None => &value,
        };
        let mask = tch::no_grad(|| match &current {
            None => crate::method::first_mask(method, importance, &param),
            Some(mask) => crate::container::combine_masks(method, importance, mask),
        })?;
        let mask = checked_mask(name, &param, mask, &[&param, importance])?;
        Ok(PendingMask { name: name.to_string(), param, mask })
    }

    /// Multiplies the prepared masks in and records them. The multiplications come first and
    /// are the only fallible step (a tensor op on operands already checked for shape, kind and
    /// device, into variables checked to be writable in place), so in practice an error here
    /// cannot happen after a variable is changed.
    pub(super) fn commit(&mut self, pending: Vec<PendingMask>) -> Result<()> {
        for p in &pending {
            let mut param = p.param.shallow_clone();
            let _ = tch::no_grad(|| param.f_mul_(&p.mask))?;
        }
        for PendingMask { name, param, mask } in pending {
            match self.position(&name) {
                Some(index) => self.entries[index].mask = mask,
                None => self.entries.push(MaskEntry { name, param, mask }),
            }
        }
        Ok(())
    }
}

/// `mask` made fit to be stored for `param`: same shape and device, binary, detached, in the
/// parameter's kind, and sharing storage with none of `inputs` (a custom method may hand one
/// of them back, and the stored mask must not change when they do).
pub(super) fn checked_mask(
    name: &str,
    param: &Tensor,
    mask: Tensor,
    inputs: &[&Tensor],
) -> Result<Tensor> {
    check_layout("mask", &mask)?;
    check_same_shape("mask", &param.size(), &mask)?;
    if mask.device() != param.device() {
        return Err(PruneError::DeviceMismatch {
            parameter: "mask",
            expected: param.device(),
            actual: mask.device(),
        });
    }
    let binary = mask.f_eq(0)?.f_logical_or(&mask.f_eq(1)?)?.f_all()?.f_int64_value(&[])? != 0;
    if !binary {
        return Err(PruneError::NonBinaryMask { name: name.into() });
    }
    let mask = mask.f_detach()?.f_to_kind(param.kind())?;
    let aliases = inputs.iter().any(|t| t.numel() > 0 && t.data_ptr() == mask.data_ptr());
    if aliases {
        contiguous_copy(&mask)
    } else {
        Ok(mask)
    }
}
