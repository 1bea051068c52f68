//! Hard masking: pruning by multiplying masks into the `VarStore` tensors in place, for models
//! whose layers cannot be reached (`nn::Sequential`, `nn::LSTM` / `nn::GRU`, TorchScript
//! `TrainableCModule`s), and [`MaskedOptimizer`], which keeps the pruned entries at zero
//! through training.
//!
//! [`PrunedModel`](crate::PrunedModel) reproduces PyTorch's `<name>_orig` / `<name>_mask`
//! reparametrization, which needs to point a layer's weight field at `orig * mask` before every
//! forward: impossible when the layer hides its tensors (a `Sequential` of closures, an RNN's
//! flat weights, a TorchScript module). Hard masking needs no access to the layer: the pruned
//! entries are zeroed in the very tensors the layer computes with, and the optimizer wrapper
//! zeroes them again after every step.

mod global;
mod optimizer;
mod prune;
// The `Pruner` operations of a `HardMask`, and undoing them.
mod pruner;

pub use optimizer::MaskedOptimizer;

use std::fmt;
use std::sync::MutexGuard;

use tch::nn::{VarStore, Variables};
use tch::{Kind, Tensor};

use crate::error::{PruneError, Result};
use crate::var_store::Vars;

/// Masks applied in place to the tensors of a `VarStore`, by variable name.
///
/// Pruning a variable computes its mask with the same methods and the same PyTorch semantics as
/// [`PrunedModel`](crate::PrunedModel) (the first pruning from a mask of ones, later ones
/// through the [`PruningContainer`](crate::PruningContainer) combining step with the current
/// value as importance), then multiplies the mask into the tensor in place. Nothing is
/// renamed: the variable keeps its name (`"weight"`), the `VarStore`'s keys stay those of the
/// unpruned model, and the layer computes with the pruned tensor without knowing it.
///
/// The masks live here, **not** in the `VarStore`: registering `<name>_mask` variables would
/// make `VarStore::load` of a plain checkpoint fail on the missing keys and would add keys an
/// unpruned PyTorch model rejects. Save them yourself when needed ([`masks`](Self::masks) with
/// `Tensor::write_safetensors`), and restore them with
/// [`custom_from_mask`](crate::Pruner::custom_from_mask).
///
/// Training moves pruned weights away from zero unless the masks are applied again after every
/// optimizer step: use [`MaskedOptimizer`], or call [`apply_masks`](Self::apply_masks) yourself.
/// Masks are binary and stored in their parameter's kind; a call that fails leaves the tensors
/// and the masks exactly as they were.
///
/// ```
/// use tch::nn::{self, Module};
/// use tch::{Device, Kind, Tensor};
/// use tch_prune::{HardMask, Pruner};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = nn::seq()
///     .add(nn::linear(vs.root() / "0", 4, 8, Default::default()))
///     .add_fn(|x| x.relu())
///     .add(nn::linear(vs.root() / "2", 8, 2, Default::default()));
///
/// let mut masks = HardMask::new(&vs);
/// masks.l1_unstructured("0.weight", 0.5, None)?;
/// let w = &vs.variables()["0.weight"];
/// assert_eq!(w.eq(0.0).sum(Kind::Int64).int64_value(&[]), 16); // zeroed in place
/// assert!(vs.variables().contains_key("0.weight")); // still named `weight`
/// assert_eq!(masks.sparsity("0.weight")?, 0.5);
/// let _ = net.forward(&Tensor::ones([1, 4], (Kind::Float, Device::Cpu)));
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// PyTorch equivalent: the manual idiom `with torch.no_grad(): p.mul_(mask)` after computing
/// `mask` with `torch.nn.utils.prune`, repeated after every `optimizer.step()`; also what
/// `torch.ao.pruning`'s sparsifiers do when `squash_mask` folds the mask into the weight.
pub struct HardMask {
    variables: Vars,
    entries: Vec<MaskEntry>,
    /// While an undo point is open: each variable's values before a commit multiplied a mask
    /// into it, oldest first (see `pruner.rs`).
    journal: Option<Vec<(Tensor, Tensor)>>,
}

/// One masked variable.
pub(crate) struct MaskEntry {
    /// The variable's `VarStore` name.
    name: String,
    /// The variable (a shallow clone: the tensor the model computes with).
    param: Tensor,
    /// The binary mask, in the parameter's kind, on its device.
    mask: Tensor,
}

impl HardMask {
    /// Masks for the variables of `vs`, none yet.
    ///
    /// The variables are looked up by name when first pruned, so a `VarStore` filled after
    /// this call (e.g. by `TrainableCModule::load`) works too.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let masks = tch_prune::HardMask::new(&vs);
    /// assert_eq!(masks.masks().count(), 0);
    /// ```
    pub fn new(vs: &VarStore) -> Self {
        Self { variables: Vars::of(vs), entries: Vec::new(), journal: None }
    }

    /// Every mask as `(name, mask)`, in the order the variables were first pruned.
    ///
    /// The pairs can be written out directly, e.g. to a safetensors file:
    ///
    /// ```
    /// use tch::{nn, Device, Tensor};
    /// use tch_prune::{HardMask, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let _fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// masks.l1_unstructured("fc.weight", 0.25, None)?;
    /// let pairs: Vec<(&str, &Tensor)> = masks.masks().collect();
    /// let path = std::env::temp_dir().join(format!("hard_mask_doc_{}.safetensors", std::process::id()));
    /// Tensor::write_safetensors(&pairs, &path)?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn masks(&self) -> impl ExactSizeIterator<Item = (&str, &Tensor)> + '_ {
        self.entries.iter().map(|e| (e.name.as_str(), &e.mask))
    }

    /// Multiplies every mask into its variable again, in place and without autograd, so that
    /// pruned entries are exactly zero (after an optimizer step, a `VarStore::load`, ...).
    /// [`MaskedOptimizer`] calls it after every step.
    ///
    /// A mask is moved to its variable's kind and device first if the variable changed them
    /// (`VarStore::set_kind`, `set_device`), and then kept that way.
    ///
    /// # Errors
    /// A libtorch error from the multiplication.
    ///
    /// ```
    /// use tch::{nn, Device, Kind};
    /// use tch_prune::{HardMask, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// masks.l1_unstructured("fc.weight", 4, None)?;
    /// tch::no_grad(|| fc.ws.fill_(1.0)); // e.g. a plain optimizer step
    /// masks.apply_masks()?;
    /// assert_eq!(fc.ws.sum(Kind::Float).double_value(&[]), 4.0);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `with torch.no_grad(): p.mul_(mask)` for every masked `p`.
    pub fn apply_masks(&mut self) -> Result<()> {
        for entry in &mut self.entries {
            entry.follow_param()?;
            let mut param = entry.param.shallow_clone();
            let _ = tch::no_grad(|| param.f_mul_(&entry.mask))?;
        }
        Ok(())
    }

    /// Multiplies the gradient of every masked variable by its mask, in place, so that pruned
    /// entries get no update from the gradient (variables without a gradient are skipped).
    /// [`MaskedOptimizer`] calls it between the backward pass and the optimizer step.
    ///
    /// # Errors
    /// A libtorch error from the multiplication.
    ///
    /// ```
    /// use tch::{nn, Device, Kind, Tensor};
    /// use tch_prune::{HardMask, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// masks.l1_unstructured("fc.weight", 4, None)?;
    /// fc.ws.sum(Kind::Float).backward(); // a gradient of ones
    /// masks.mask_grads()?;
    /// assert_eq!(fc.ws.grad().sum(Kind::Float).double_value(&[]), 4.0);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `p.grad.mul_(mask)` for every masked `p`.
    pub fn mask_grads(&mut self) -> Result<()> {
        for entry in &mut self.entries {
            entry.follow_param()?;
            let mut grad = entry.param.f_grad()?;
            if grad.defined() {
                let _ = tch::no_grad(|| grad.f_mul_(&entry.mask))?;
            }
        }
        Ok(())
    }

    /// The fraction of the entries of `name` that its mask prunes (0 when `name` has no mask).
    ///
    /// # Errors
    /// [`PruneError::UnknownParameter`] when `name` is neither masked nor a variable of the
    /// `VarStore`; a libtorch error from counting.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{HardMask, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let _fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// assert_eq!(masks.sparsity("fc.weight")?, 0.0);
    /// masks.l1_unstructured("fc.weight", 6, None)?;
    /// assert_eq!(masks.sparsity("fc.weight")?, 0.75);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `float((module.weight_mask == 0).sum()) / module.weight_mask.numel()`.
    pub fn sparsity(&self, name: &str) -> Result<f64> {
        match self.entry(name) {
            Some(entry) => Ok(ratio(zeros(&entry.mask)?, entry.mask.numel())),
            None => {
                let _ = self.variable(name)?;
                Ok(0.0)
            }
        }
    }

    /// The fraction of all masked entries that are pruned: zeros over entries, summed over
    /// every masked variable (0 when nothing is masked).
    ///
    /// # Errors
    /// A libtorch error from counting.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{HardMask, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let _a = nn::linear(vs.root() / "a", 4, 2, Default::default()); // 8 weights
    /// let _b = nn::linear(vs.root() / "b", 8, 3, Default::default()); // 24 weights
    /// let mut masks = HardMask::new(&vs);
    /// masks.l1_unstructured("a.weight", 8, None)?;
    /// masks.l1_unstructured("b.weight", 0, None)?;
    /// assert_eq!(masks.overall_sparsity()?, 0.25);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn overall_sparsity(&self) -> Result<f64> {
        let mut pruned = 0;
        let mut total = 0;
        for entry in &self.entries {
            pruned += zeros(&entry.mask)?;
            total += entry.mask.numel();
        }
        Ok(ratio(pruned, total))
    }

    pub(super) fn position(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    pub(super) fn entry(&self, name: &str) -> Option<&MaskEntry> {
        self.position(name).map(|i| &self.entries[i])
    }

    pub(super) fn vars(&self) -> MutexGuard<'_, Variables> {
        self.variables.lock()
    }

    /// The `VarStore` variable `name` (a shallow clone).
    pub(super) fn variable(&self, name: &str) -> Result<Tensor> {
        self.vars()
            .named_variables
            .get(name)
            .map(Tensor::shallow_clone)
            .ok_or_else(|| PruneError::UnknownParameter { name: name.into() })
    }

    /// The tensor `name` stands for: the masked parameter, else the `VarStore` variable.
    fn param(&self, name: &str) -> Result<Tensor> {
        match self.entry(name) {
            Some(entry) => Ok(entry.param.shallow_clone()),
            None => self.variable(name),
        }
    }
}

impl MaskEntry {
    /// Moves the mask to the parameter's kind and device if the parameter changed them.
    fn follow_param(&mut self) -> Result<()> {
        let (kind, device) = (self.param.kind(), self.param.device());
        if self.mask.kind() != kind || self.mask.device() != device {
            self.mask = self.mask.f_to_device(device)?.f_to_kind(kind)?;
        }
        Ok(())
    }
}

impl fmt::Debug for HardMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        f.debug_struct("HardMask").field("masked", &names).finish_non_exhaustive()
    }
}

/// The number of zeros of `mask`.
fn zeros(mask: &Tensor) -> Result<usize> {
    Ok(mask.f_eq(0)?.f_sum(Kind::Int64)?.f_int64_value(&[])? as usize)
}

/// `part / total`, 0 for an empty total.
fn ratio(part: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}
