//! [`PrunedModel`]: a tch model with PyTorch's model-level pruning functions.

use std::collections::HashMap;
use std::sync::MutexGuard;

use tch::nn::{Module, ModuleT, VarStore, Variables};
use tch::Tensor;

use crate::container::PruningContainer;
use crate::error::{PruneError, Result};
use crate::prunable::{push_child_slots, Prunable};
use crate::reparam::{effective, Reparametrization};
use crate::var_store::Vars;

// The `Pruner` operations of a `PrunedModel`.
mod pruner;
// Undoing committed steps, for multi-step operations that must change nothing on error.
mod snapshot;
// One pruning step in two phases: prepare (fallible, changes nothing), then commit.
mod steps;

/// A tch model together with its `VarStore`, pruned parameter by parameter as in PyTorch.
///
/// The pruning functions (`l1_unstructured`, `ln_structured`, `global_unstructured`,
/// `remove`, ...) come from the [`Pruner`](crate::Pruner) trait. Parameters are named by their `VarStore` path (`"conv1.weight"`). After pruning one:
///
/// * the `VarStore` holds `<name>_orig`, **the same tensor** as before (still trainable, so an
///   optimizer built before pruning keeps training it) and `<name>_mask` (not trainable);
///   `<name>` is no longer a variable. Saving the `VarStore` gives the keys of PyTorch's
///   `state_dict`;
/// * [`forward`](Self::forward) / [`forward_t`](Self::forward_t) first point the layer's slot at
///   `orig * mask` (what PyTorch's forward pre-hook does), so every forward computes with the
///   pruned weight and the gradient reaching `orig` is the upstream gradient times the mask;
/// * pruning again combines the masks through a [`PruningContainer`] exactly as PyTorch, with
///   the current `orig * mask` as importance;
/// * [`remove`](crate::Pruner::remove) writes `orig * mask` into the original tensor and gives it back
///   its name.
///
/// Every operation validates and computes first and mutates last: an error leaves the model,
/// the `VarStore` and the pruning history exactly as they were.
///
/// ```
/// use tch::nn::{self, OptimizerConfig};
/// use tch::{Device, Kind, Tensor};
/// use tch_prune::{PrunedModel, Pruner};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
/// let mut opt = nn::Sgd::default().build(&vs, 0.1)?;
/// let mut model = PrunedModel::with_prefix(fc, &vs, "fc")?;
///
/// model.l1_unstructured("fc.weight", 0.5, None)?; // prune.l1_unstructured(fc, "weight", 0.5)
/// assert!(vs.variables().contains_key("fc.weight_orig"));
/// assert!(vs.variables().contains_key("fc.weight_mask"));
/// assert!(!vs.variables().contains_key("fc.weight"));
///
/// let x = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
/// let loss = model.forward(&x)?.sum(Kind::Float);
/// opt.backward_step(&loss); // trains fc.weight_orig; pruned entries get zero gradient
///
/// model.remove("fc.weight")?; // prune.remove(fc, "weight")
/// assert!(vs.variables().contains_key("fc.weight"));
/// assert!(!model.is_pruned());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PrunedModel<M> {
    model: M,
    prefix: String,
    variables: Vars,
    pruned: Vec<Reparametrization>,
}

impl<M: Prunable> PrunedModel<M> {
    /// Wraps `model`, whose parameters live in `vs` at the root (a model built from
    /// `vs.root()`; see [`with_prefix`](Self::with_prefix) otherwise).
    ///
    /// # Errors
    /// [`PruneError::UnmappedSlot`] when one of the model's parameter slots (named by its path
    /// in the model) is not the `VarStore` variable of that name: a model built under a path
    /// (`vs.root() / "encoder"`) needs [`with_prefix`](Self::with_prefix), and a model whose
    /// [`Prunable`] paths differ from the `VarStore`'s cannot be pruned by name.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{PrunedModel, PruneError};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// // Built under "fc": at the root its slots would be "weight" and "bias".
    /// let err = PrunedModel::new(fc, &vs).unwrap_err();
    /// assert!(matches!(err, PruneError::UnmappedSlot { ref slot, .. } if slot == "bias" || slot == "weight"));
    /// ```
    pub fn new(model: M, vs: &VarStore) -> Result<Self> {
        Self::with_prefix(model, vs, "")
    }

    /// Wraps `model`, built under `vs.root() / prefix` (e.g. a single layer built at `"fc"`,
    /// whose slots `weight` and `bias` are the `VarStore` variables `fc.weight` and
    /// `fc.bias`). Parameter names passed to the pruning calls are always full `VarStore`
    /// names.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{PrunedModel, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// let mut model = PrunedModel::with_prefix(fc, &vs, "fc")?;
    /// model.l1_unstructured("fc.weight", 2, None)?;
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn with_prefix(model: M, vs: &VarStore, prefix: impl Into<String>) -> Result<Self> {
        let mut out =
            Self { model, prefix: prefix.into(), variables: Vars::of(vs), pruned: Vec::new() };
        out.check_slots()?;
        Ok(out)
    }

    /// Checks that every slot of the model is the `VarStore` variable of its name.
    fn check_slots(&mut self) -> Result<()> {
        let vars = self.variables.clone();
        let vars = vars.lock();
        for (path, slot) in full_slots(&mut self.model, &self.prefix) {
            let mapped = vars.named_variables.get(&path).is_some_and(|var| same_tensor(slot, var));
            if !mapped {
                return Err(PruneError::UnmappedSlot { slot: path, prefix: self.prefix.clone() });
            }
        }
        Ok(())
    }

    /// The wrapped model. Its pruned slots hold `orig * mask` as of the last forward, pruning
    /// call or [`refresh`](Self::refresh).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The wrapped model, mutably. Call [`refresh`](Self::refresh) before computing with it
    /// directly (outside [`forward`](Self::forward)).
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// Unwraps the model. Parameters still pruned keep their `_orig` / `_mask` variables and
    /// their slots hold the last `orig * mask`; [`remove`](crate::Pruner::remove) them first to get a
    /// plain model back.
    pub fn into_inner(self) -> M {
        self.model
    }

    /// Points every pruned slot at `orig * mask`: PyTorch's forward pre-hooks, run by hand.
    /// [`forward`](Self::forward) calls it for you.
    ///
    /// With autograd on, the product is formed anew each time (the layer needs a fresh graph
    /// node so that the gradient reaches `orig`). Inside `tch::no_grad` (evaluation), the
    /// product is computed once and reused for as long as neither `orig` nor the mask changes
    /// (tracked by libtorch's version counters, which every in-place write such as an
    /// optimizer step or `VarStore::load` bumps, and by the storages themselves, which
    /// `set_data` replaces), so a pruned model evaluates at the cost of an unpruned one.
    ///
    /// # Errors
    /// A libtorch error from the multiplication.
    pub fn refresh(&mut self) -> Result<()> {
        let grad = grad_enabled()?;
        let mut values = HashMap::with_capacity(self.pruned.len());
        for rec in &mut self.pruned {
            if let Some(source) = &rec.source {
                source.sync()?;
                if source.live(grad) {
                    rec.cache = None;
                    values.insert(
                        rec.name.as_str(),
                        effective(&rec.orig, &source.multiplier(&rec.orig)?)?,
                    );
                    continue;
                }
            }
            let value = if grad {
                rec.cache = None;
                effective(&rec.orig, &rec.mask)?
            } else {
                rec.cached_effective()?
            };
            values.insert(rec.name.as_str(), value);
        }
        for (path, slot) in full_slots(&mut self.model, &self.prefix) {
            if let Some(value) = values.get(path.as_str()) {
                *slot = value.shallow_clone();
            }
        }
        Ok(())
    }

    /// Refreshes the pruned slots, then calls `f` with the model: for models whose forward
    /// is not `Module::forward` (e.g. rust-bert's `forward_t(&self, input, mask, ..., train)`).
    ///
    /// # Errors
    /// As [`refresh`](Self::refresh).
    ///
    /// ```
    /// use tch::{nn, Device, Kind, Tensor};
    /// use tch_prune::{prunable, PrunedModel, Pruner};
    ///
    /// #[derive(Debug)]
    /// struct Encoder { proj: nn::Linear }
    /// prunable!(Encoder { proj });
    /// impl Encoder {
    ///     fn forward_t(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
    ///         (x.apply(&self.proj) * mask).dropout(0.1, train)
    ///     }
    /// }
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let enc = Encoder { proj: nn::linear(vs.root() / "proj", 4, 4, Default::default()) };
    /// let mut model = PrunedModel::new(enc, &vs)?;
    /// model.l1_unstructured("proj.weight", 0.5, None)?;
    /// let (x, mask) = (Tensor::ones([2, 4], (Kind::Float, Device::Cpu)), Tensor::ones([2, 4], (Kind::Float, Device::Cpu)));
    /// let y = model.forward_with(|enc| enc.forward_t(&x, &mask, false))?;
    /// assert_eq!(y.size(), [2, 4]);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn forward_with<R>(&mut self, f: impl FnOnce(&M) -> R) -> Result<R> {
        self.refresh()?;
        Ok(f(&self.model))
    }

    /// Refreshes the pruned slots and hands out the model, e.g. for `xs.apply(...)` or
    /// `xs.apply_t(...)`.
    ///
    /// # Errors
    /// As [`refresh`](Self::refresh).
    ///
    /// ```
    /// use tch::{nn, Device, Kind, Tensor};
    /// use tch_prune::{PrunedModel, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut model = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 4, 2, Default::default()), &vs, "fc")?;
    /// model.l1_unstructured("fc.weight", 8, None)?; // everything
    /// let y = Tensor::ones([1, 4], (Kind::Float, Device::Cpu)).apply(model.refreshed()?);
    /// assert_eq!(y, model.value("fc.bias")?.unsqueeze(0));
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn refreshed(&mut self) -> Result<&M> {
        self.refresh()?;
        Ok(&self.model)
    }

    /// The full names of the layers of type `L` (PyTorch: `named_modules()` filtered with
    /// `isinstance`), e.g. to prune every convolution one way and every linear layer another.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{prunable, PrunedModel, Pruner};
    ///
    /// #[derive(Debug)]
    /// struct Net { conv: nn::Conv2D, fc1: nn::Linear, fc2: nn::Linear }
    /// prunable!(Net { conv, fc1, fc2 });
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let net = Net {
    ///     conv: nn::conv2d(vs.root() / "conv", 1, 2, 3, Default::default()),
    ///     fc1: nn::linear(vs.root() / "fc1", 4, 3, Default::default()),
    ///     fc2: nn::linear(vs.root() / "fc2", 3, 2, Default::default()),
    /// };
    /// let mut model = PrunedModel::new(net, &vs)?;
    /// for layer in model.layers_of::<nn::Linear>() {
    ///     model.l1_unstructured(&format!("{layer}.weight"), 0.4, None)?;
    /// }
    /// assert_eq!(model.pruned_parameters().collect::<Vec<_>>(), ["fc1.weight", "fc2.weight"]);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn layers_of<L: std::any::Any>(&self) -> Vec<String> {
        let mut out = Vec::new();
        crate::prunable::push_child_modules(&mut out, &self.prefix, &self.model);
        out.into_iter().filter(|(_, layer)| layer.is::<L>()).map(|(name, _)| name).collect()
    }

    /// The trainable original of a pruned parameter (the tensor stored as `<name>_orig`).
    pub fn orig(&self, name: &str) -> Option<&Tensor> {
        self.record(name).map(|rec| &rec.orig)
    }

    /// The methods applied to a pruned parameter, oldest first (PyTorch's hook: the method, or
    /// the `PruningContainer` once there are several).
    pub fn history(&self, name: &str) -> Option<&PruningContainer> {
        self.record(name).map(|rec| &rec.history)
    }

    pub(crate) fn vars(&self) -> MutexGuard<'_, Variables> {
        self.variables.lock()
    }

    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.pruned.iter().position(|rec| rec.name == name)
    }

    pub(crate) fn record(&self, name: &str) -> Option<&Reparametrization> {
        self.position(name).map(|i| &self.pruned[i])
    }

    /// Sets (or clears) the mask source of a pruned parameter; `false` when `name` is not
    /// pruned.
    pub(crate) fn set_mask_source(
        &mut self,
        name: &str,
        source: Option<std::sync::Arc<dyn crate::reparam::MaskSource>>,
    ) -> bool {
        match self.position(name) {
            Some(i) => {
                self.pruned[i].source = source;
                self.pruned[i].cache = None;
                true
            }
            None => false,
        }
    }
}

impl<M: Prunable + Module> PrunedModel<M> {
    /// Refreshes the pruned slots, then runs the model's forward.
    ///
    /// # Errors
    /// As [`refresh`](Self::refresh).
    ///
    /// PyTorch equivalent: `model(xs)` (the forward pre-hooks run first).
    pub fn forward(&mut self, xs: &Tensor) -> Result<Tensor> {
        self.refresh()?;
        Ok(self.model.forward(xs))
    }
}

impl<M: Prunable + ModuleT> PrunedModel<M> {
    /// Refreshes the pruned slots, then runs the model's `forward_t`.
    ///
    /// # Errors
    /// As [`refresh`](Self::refresh).
    pub fn forward_t(&mut self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.refresh()?;
        Ok(self.model.forward_t(xs, train))
    }
}

impl<M> std::fmt::Debug for PrunedModel<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrunedModel").field("pruned", &self.pruned).finish_non_exhaustive()
    }
}

/// The model's slots, named by their full `VarStore` path.
fn full_slots<'a, M: Prunable>(model: &'a mut M, prefix: &str) -> Vec<(String, &'a mut Tensor)> {
    let mut out = Vec::new();
    push_child_slots(&mut out, prefix, model);
    out
}

/// Whether autograd is recording: the product of a tensor that requires grad does.
fn grad_enabled() -> Result<bool> {
    let probe =
        Tensor::f_zeros([1], (tch::Kind::Float, tch::Device::Cpu))?.f_set_requires_grad(true)?;
    Ok(probe.f_neg()?.requires_grad())
}

/// Whether two handles refer to the same variable (same storage, shape and strides). Dense
/// tensors only: a sparse or MKL-DNN slot holds no variable (and has no data pointer).
fn same_tensor(a: &Tensor, b: &Tensor) -> bool {
    let dense = |t: &Tensor| crate::kernels::layout(t) == tch::Layout::Strided;
    dense(a)
        && dense(b)
        && a.data_ptr() == b.data_ptr()
        && a.size() == b.size()
        && a.stride() == b.stride()
        && a.kind() == b.kind()
}
