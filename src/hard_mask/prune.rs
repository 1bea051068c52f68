//! Pruning variables of a [`HardMask`] in two phases: `prepare` computes and checks the mask
//! (changing nothing), `commit` multiplies prepared masks in and records them.

use tch::Tensor;

use super::{HardMask, MaskEntry};
use crate::error::{PruneError, Result};
use crate::method::{
    check_layout, check_same_shape, check_writable, contiguous_copy, PruningMethod,
};

/// A validated mask, ready to be multiplied in: applying it cannot fail for any reason the
/// checks could have caught.
pub(super) struct PendingMask {
    pub(super) name: String,
    pub(super) param: Tensor,
    pub(super) mask: Tensor,
}

impl HardMask {
    /// Validates and computes the new mask of `name` without changing anything.
    pub(super) fn prepare(
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
            if let Some(journal) = &mut self.journal {
                journal.push((p.param.shallow_clone(), contiguous_copy(&p.param.f_detach()?)?));
            }
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
