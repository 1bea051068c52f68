//! The `<name>_orig` / `<name>_mask` reparametrization of one parameter: the only place that
//! knows how the pruned value is formed and how a pruning step is applied and undone.

use tch::Tensor;

use crate::container::PruningContainer;
use crate::error::Result;
use crate::method::PruningMethod;

/// The `VarStore` name of the trainable original of `name`.
pub(crate) fn orig_name(name: &str) -> String {
    format!("{name}_orig")
}

/// The `VarStore` name of the mask of `name`.
pub(crate) fn mask_name(name: &str) -> String {
    format!("{name}_mask")
}

/// `mask.to(orig.kind) * orig`: the value a pruned layer computes with. Built with autograd on
/// (unless the caller is inside `no_grad`), so the gradient reaching `orig` is the upstream
/// gradient times the mask.
pub(crate) fn effective(orig: &Tensor, mask: &Tensor) -> Result<Tensor> {
    Ok(mask.f_to_kind(orig.kind())?.f_mul(orig)?)
}

/// One pruned parameter.
#[derive(Debug)]
pub(crate) struct Reparametrization {
    /// The parameter's path (`"conv1.weight"`).
    pub(crate) name: String,
    /// The original variable, trainable, stored as `<name>_orig`: the same tensor the
    /// `VarStore` (and any optimizer built from it) held under `<name>`.
    pub(crate) orig: Tensor,
    /// The mask, not trainable, stored as `<name>_mask`.
    pub(crate) mask: Tensor,
    /// Every method applied so far, oldest first.
    pub(crate) history: PruningContainer,
    /// `orig * mask` formed without autograd, with the state it was formed from.
    pub(crate) cache: Option<(CacheKey, Tensor)>,
}

/// What a cached `orig * mask` depends on: the two tensors' storage and version counters.
pub(crate) type CacheKey = [i64; 4];

impl Reparametrization {
    pub(crate) fn new(name: String, orig: Tensor, mask: Tensor, history: PruningContainer) -> Self {
        Self { name, orig, mask, history, cache: None }
    }

    fn cache_key(&self) -> Result<CacheKey> {
        Ok([
            self.orig.data_ptr() as i64,
            self.orig.f_internal_version()?,
            self.mask.data_ptr() as i64,
            self.mask.f_internal_version()?,
        ])
    }

    /// `orig * mask` without autograd, reused while `orig` and the mask are unchanged.
    pub(crate) fn cached_effective(&mut self) -> Result<Tensor> {
        let key = self.cache_key()?;
        if let Some((cached_key, value)) = &self.cache {
            if *cached_key == key {
                return Ok(value.shallow_clone());
            }
        }
        let value = tch::no_grad(|| effective(&self.orig, &self.mask))?;
        self.cache = Some((key, value.shallow_clone()));
        Ok(value)
    }
}

/// A pruning step that has been validated and computed but not applied yet: applying it cannot
/// fail, which is what lets every public operation leave the model untouched on error.
#[derive(Debug)]
pub(crate) struct PendingPrune {
    pub(crate) name: String,
    pub(crate) method: Box<dyn PruningMethod>,
    pub(crate) mask: Tensor,
    pub(crate) target: Target,
}

/// Where a pending step lands.
#[derive(Debug)]
pub(crate) enum Target {
    /// First pruning of the parameter: the variable to move to `<name>_orig`.
    First { param: Tensor },
    /// Repeated pruning: the index of the existing reparametrization.
    Repeat { index: usize },
}

/// A mask fit to be stored: detached, and never sharing storage with the parameter or the
/// importance tensor (a custom method may hand one of them back).
pub(crate) fn own_mask(mask: Tensor, shared: &[&Tensor]) -> Result<Tensor> {
    // A tensor that does not require grad has no autograd history to cut (the masks the
    // built-in methods compute never do): no detached alias needed.
    let mask = if mask.requires_grad() { mask.f_detach()? } else { mask };
    let aliases = shared.iter().any(|t| t.numel() > 0 && t.data_ptr() == mask.data_ptr());
    if aliases {
        crate::method::contiguous_copy(&mask)
    } else {
        Ok(mask)
    }
}
