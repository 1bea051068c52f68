//! The `<name>_orig` / `<name>_mask` reparametrization of one parameter: the only place that
//! knows how the pruned value is formed and how a pruning step is applied and undone.

use std::sync::Arc;

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
    /// Where the mask comes from when it is computed on every forward (movement pruning);
    /// `None` for ordinary pruning, whose mask is the stored `<name>_mask`.
    pub(crate) source: Option<Arc<dyn MaskSource>>,
}

/// A mask computed on every forward instead of stored (movement pruning): the hook
/// [`PrunedModel::refresh`](crate::PrunedModel::refresh) consults.
pub(crate) trait MaskSource: Send + Sync + std::fmt::Debug {
    /// Brings the stored `<name>_mask` up to date (the deterministic, evaluation mask) if what
    /// it depends on changed; called once per parameter per refresh, before
    /// [`multiplier`](Self::multiplier).
    fn sync(&self) -> Result<()>;
    /// Whether the forward mask differs from the stored one (training noise, or a
    /// straight-through term that autograd must see): then the slot gets `orig *`
    /// [`multiplier`](Self::multiplier) instead of the cached `orig * mask`.
    fn live(&self, grad: bool) -> bool;
    /// The graph-connected multiplier of `orig` for this forward.
    fn multiplier(&self, orig: &Tensor) -> Result<Tensor>;
}

/// What a cached `orig * mask` was formed from: a detached alias of each tensor and its version
/// counter at that time.
///
/// The aliases keep the two storages alive, so while the cache lives no other storage can be
/// allocated at their addresses: a data pointer alone can be recycled (`orig.set_data(a)` then
/// `orig.set_data(b)` frees the first storage, and `b`'s may land at its address with the same
/// version), a live storage cannot. A tensor matches when it is still set to its alias (same
/// storage, offset, shape and strides: libtorch's `is_set_to`), has the alias's kind, and its
/// version counter has not moved (an in-place write: optimizer step, `VarStore::load`,
/// `fill_`). After a `set_data` the old storage is freed at the next refresh, which replaces
/// the key.
#[derive(Debug)]
pub(crate) struct CacheKey {
    orig: Tensor,
    orig_version: i64,
    mask: Tensor,
    mask_version: i64,
}

impl CacheKey {
    fn new(orig: &Tensor, mask: &Tensor) -> Result<Self> {
        Ok(Self {
            orig: orig.f_detach()?,
            orig_version: orig.f_internal_version()?,
            mask: mask.f_detach()?,
            mask_version: mask.f_internal_version()?,
        })
    }

    /// Whether `orig` and `mask` hold exactly what the key saw (anything libtorch cannot
    /// answer for, such as a sparse tensor, does not match).
    fn matches(&self, orig: &Tensor, mask: &Tensor) -> bool {
        let same = |t: &Tensor, alias: &Tensor, version: i64| {
            t.f_kind().ok() == alias.f_kind().ok()
                && t.f_is_set_to(alias).unwrap_or(false)
                && t.f_internal_version().ok() == Some(version)
        };
        same(orig, &self.orig, self.orig_version) && same(mask, &self.mask, self.mask_version)
    }
}

impl Reparametrization {
    pub(crate) fn new(name: String, orig: Tensor, mask: Tensor, history: PruningContainer) -> Self {
        Self { name, orig, mask, history, cache: None, source: None }
    }

    /// `orig * mask` without autograd, reused while `orig` and the mask are unchanged.
    pub(crate) fn cached_effective(&mut self) -> Result<Tensor> {
        if let Some((key, value)) = &self.cache {
            if key.matches(&self.orig, &self.mask) {
                return Ok(value.shallow_clone());
            }
        }
        // Drop the old key first: its aliases would keep the old storages alive meanwhile.
        self.cache = None;
        let key = CacheKey::new(&self.orig, &self.mask)?;
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
