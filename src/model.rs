//! [`PrunedModel`]: a tch model with PyTorch's model-level pruning functions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tch::nn::{Module, ModuleT, VarStore, Variables};
use tch::Tensor;

use crate::container::PruningContainer;
use crate::error::{PruneError, Result};
use crate::method::{
    check_layout, check_same_shape, Amount, CustomFromMask, Identity, L1Unstructured, LnStructured,
    Norm, PruningMethod, RandomStructured, RandomUnstructured,
};
use crate::prunable::{push_child_slots, Prunable};
use crate::reparam::{
    effective, mask_name, orig_name, own_mask, PendingPrune, Reparametrization, Target,
};

// Undoing committed steps, for multi-step operations that must change nothing on error.
mod snapshot;

/// A tch model together with its `VarStore`, pruned parameter by parameter as in PyTorch.
///
/// Parameters are named by their `VarStore` path (`"conv1.weight"`). After pruning one:
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
/// * [`remove`](Self::remove) writes `orig * mask` into the original tensor and gives it back
///   its name.
///
/// Every operation validates and computes first and mutates last: an error leaves the model,
/// the `VarStore` and the pruning history exactly as they were.
///
/// ```
/// use tch::nn::{self, OptimizerConfig};
/// use tch::{Device, Kind, Tensor};
/// use tch_prune::PrunedModel;
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
/// let mut opt = nn::Sgd::default().build(&vs, 0.1)?;
/// let mut model = PrunedModel::new(fc, &vs).with_prefix("fc");
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
    variables: Arc<Mutex<Variables>>,
    pruned: Vec<Reparametrization>,
}

impl<M: Prunable> PrunedModel<M> {
    /// Wraps `model`, whose parameters live in `vs` at the root (a model built from
    /// `vs.root()`; see [`with_prefix`](Self::with_prefix) otherwise).
    ///
    /// Nothing is checked here; each pruning call checks that the model's slot for the
    /// parameter holds the `VarStore`'s tensor of that name.
    pub fn new(model: M, vs: &VarStore) -> Self {
        Self {
            model,
            prefix: String::new(),
            variables: Arc::clone(&vs.variables_),
            pruned: Vec::new(),
        }
    }

    /// Says that the model was built under `vs.root() / prefix` (e.g. a single layer built at
    /// `"fc"`, whose slots are `weight` and `bias`): its slots are then matched to the
    /// `VarStore` names `prefix.weight`, `prefix.bias`. Parameter names passed to the pruning
    /// calls are always full `VarStore` names.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::PrunedModel;
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// let mut model = PrunedModel::new(fc, &vs).with_prefix("fc");
    /// model.l1_unstructured("fc.weight", 2, None)?;
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
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
    /// their slots hold the last `orig * mask`; [`remove`](Self::remove) them first to get a
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

    /// The full names of the layers of type `L` (PyTorch: `named_modules()` filtered with
    /// `isinstance`), e.g. to prune every convolution one way and every linear layer another.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{prunable, PrunedModel};
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
    /// let mut model = PrunedModel::new(net, &vs);
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

    /// The current value of parameter `name`, detached: `orig * mask` when pruned (what the
    /// layer computes with), the variable itself otherwise.
    ///
    /// # Errors
    /// [`PruneError::UnknownParameter`] when `name` is neither pruned nor a variable.
    ///
    /// ```
    /// use tch::{nn, Device, Kind};
    /// use tch_prune::PrunedModel;
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut model = PrunedModel::new(nn::linear(vs.root() / "fc", 4, 2, Default::default()), &vs)
    ///     .with_prefix("fc");
    /// model.l1_unstructured("fc.weight", 3, None)?;
    /// let w = model.value("fc.weight")?;
    /// assert_eq!(w.eq(0.0).sum(Kind::Int64).int64_value(&[]), 3);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `module.weight` (the attribute the forward pre-hook sets).
    pub fn value(&self, name: &str) -> Result<Tensor> {
        if let Some(rec) = self.record(name) {
            return tch::no_grad(|| effective(&rec.orig, &rec.mask));
        }
        let vars = self.vars();
        let var = vars
            .named_variables
            .get(name)
            .ok_or_else(|| PruneError::UnknownParameter { name: name.into() })?;
        Ok(var.f_detach()?)
    }

    /// Whether any parameter is pruned.
    ///
    /// PyTorch equivalent: `prune.is_pruned(model)`.
    pub fn is_pruned(&self) -> bool {
        !self.pruned.is_empty()
    }

    /// Whether the parameter `name` is pruned.
    pub fn is_parameter_pruned(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The pruned parameters, in the order they were first pruned.
    pub fn pruned_parameters(&self) -> impl Iterator<Item = &str> + '_ {
        self.pruned.iter().map(|rec| rec.name.as_str())
    }

    /// The mask of a pruned parameter (the tensor stored as `<name>_mask`).
    pub fn mask(&self, name: &str) -> Option<&Tensor> {
        self.record(name).map(|rec| &rec.mask)
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

    /// Prunes `name` with any [`PruningMethod`], your own included.
    ///
    /// `importance_scores` (same shape as the parameter) rank the entries instead of the
    /// parameter's values. The first pruning computes the mask from all ones; later ones go
    /// through the [`PruningContainer`] combining step with the current `orig * mask` as
    /// importance (PyTorch uses the value cached at the last forward, which can be stale; the
    /// values agree whenever a forward ran since the last optimizer step).
    ///
    /// # Errors
    /// [`PruneError::UnknownParameter`], [`PruneError::SlotNotFound`],
    /// [`PruneError::SlotMismatch`], [`PruneError::NameTaken`], [`PruneError::ShapeMismatch`]
    /// (importance scores, or a mask of the wrong shape from a custom method),
    /// [`PruneError::UnsupportedLayout`] (a sparse or MKL-DNN parameter, importance scores or
    /// mask), and whatever the method returns. Nothing changes on error.
    ///
    /// PyTorch equivalent: `Method.apply(module, name, *args, importance_scores=...)`.
    pub fn apply(
        &mut self,
        name: &str,
        method: impl PruningMethod + 'static,
        importance_scores: Option<&Tensor>,
    ) -> Result<()> {
        let pending = self.prepare(name, Box::new(method), importance_scores)?;
        self.commit(vec![pending]);
        Ok(())
    }

    /// Prunes nothing but sets up the reparametrization (mask of ones).
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    ///
    /// PyTorch equivalent: `prune.identity(module, name)`.
    pub fn identity(&mut self, name: &str) -> Result<()> {
        self.apply(name, Identity, None)
    }

    /// Prunes `amount` entries of `name` at random with PyTorch's draws (after
    /// `tch::manual_seed(s)`, the mask PyTorch gives after `torch.manual_seed(s)`);
    /// `apply(name, RandomUnstructured::new(a)?.with_hashed_draws(), None)` trades that for
    /// speed on large CPU tensors ([`RandomUnstructured::with_hashed_draws`]).
    ///
    /// # Errors
    /// As [`apply`](Self::apply) and [`RandomUnstructured::new`].
    ///
    /// PyTorch equivalent: `prune.random_unstructured(module, name, amount)`.
    pub fn random_unstructured(&mut self, name: &str, amount: impl Into<Amount>) -> Result<()> {
        self.apply(name, RandomUnstructured::new(amount)?, None)
    }

    /// Prunes the `amount` entries of `name` with the smallest magnitude.
    ///
    /// # Errors
    /// As [`apply`](Self::apply) and [`L1Unstructured::new`].
    ///
    /// PyTorch equivalent: `prune.l1_unstructured(module, name, amount, importance_scores)`.
    pub fn l1_unstructured(
        &mut self,
        name: &str,
        amount: impl Into<Amount>,
        importance_scores: Option<&Tensor>,
    ) -> Result<()> {
        self.apply(name, L1Unstructured::new(amount)?, importance_scores)
    }

    /// Prunes `amount` channels of `name` along `dim` at random.
    ///
    /// # Errors
    /// As [`apply`](Self::apply) and [`RandomStructured::new`].
    ///
    /// PyTorch equivalent: `prune.random_structured(module, name, amount, dim)`.
    pub fn random_structured(
        &mut self,
        name: &str,
        amount: impl Into<Amount>,
        dim: i64,
    ) -> Result<()> {
        self.apply(name, RandomStructured::new(amount, dim)?, None)
    }

    /// Prunes the `amount` channels of `name` along `dim` with the smallest `n`-norm.
    ///
    /// # Errors
    /// As [`apply`](Self::apply) and [`LnStructured::new`].
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
        self.apply(name, LnStructured::new(amount, n, dim)?, importance_scores)
    }

    /// Prunes `name` with a mask you provide (any kind; multiplied into the existing mask).
    ///
    /// # Errors
    /// As [`apply`](Self::apply); [`PruneError::ShapeMismatch`] when `mask` does not have the
    /// parameter's shape.
    ///
    /// PyTorch equivalent: `prune.custom_from_mask(module, name, mask)`.
    pub fn custom_from_mask(&mut self, name: &str, mask: &Tensor) -> Result<()> {
        self.apply(name, CustomFromMask::new(mask.shallow_clone()), None)
    }

    /// Makes the pruning of `name` permanent: `orig * mask` is written into the original tensor
    /// (the same tensor object, still trainable), which becomes `<name>` again; `<name>_orig`,
    /// `<name>_mask` and the history are dropped.
    ///
    /// # Errors
    /// [`PruneError::NotPruned`] when `name` is not pruned (nothing changes).
    ///
    /// PyTorch equivalent: `prune.remove(module, name)`.
    pub fn remove(&mut self, name: &str) -> Result<()> {
        let index =
            self.position(name).ok_or_else(|| PruneError::NotPruned { name: name.into() })?;
        let rec = &self.pruned[index];
        let mut orig = rec.orig.shallow_clone();
        let mask = rec.mask.f_to_kind(orig.kind())?;
        let _ = tch::no_grad(|| orig.f_mul_(&mask))?;
        let rec = self.pruned.remove(index);
        {
            let mut vars = self.vars();
            vars.named_variables.remove(&orig_name(name));
            vars.named_variables.remove(&mask_name(name));
            vars.named_variables.insert(name.to_string(), rec.orig.shallow_clone());
        }
        for (path, slot) in full_slots(&mut self.model, &self.prefix) {
            if path == name {
                *slot = rec.orig.shallow_clone();
            }
        }
        Ok(())
    }

    pub(crate) fn vars(&self) -> MutexGuard<'_, Variables> {
        // A poisoned lock only means another thread panicked while holding it; the map itself
        // is still consistent (tch never leaves it half-updated), so keep going.
        self.variables.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.pruned.iter().position(|rec| rec.name == name)
    }

    fn record(&self, name: &str) -> Option<&Reparametrization> {
        self.position(name).map(|i| &self.pruned[i])
    }

    /// The variable `name`, checked to be prunable: present, not in the way of its
    /// `_orig` / `_mask` names, and held by the model's slot of that path.
    pub(crate) fn unpruned_param(&mut self, name: &str) -> Result<Tensor> {
        let mut params = self.unpruned_params(&[name])?;
        params.pop().ok_or_else(|| PruneError::UnknownParameter { name: name.into() })
    }

    /// [`unpruned_param`](Self::unpruned_param) of each of `names`, in order, with one walk
    /// over the model's slots for all of them.
    pub(crate) fn unpruned_params(&mut self, names: &[&str]) -> Result<Vec<Tensor>> {
        let params = {
            let vars = self.vars();
            let mut params = Vec::with_capacity(names.len());
            for &name in names {
                let param = vars
                    .named_variables
                    .get(name)
                    .ok_or_else(|| PruneError::UnknownParameter { name: name.into() })?
                    .shallow_clone();
                for taken in [orig_name(name), mask_name(name)] {
                    if vars.named_variables.contains_key(&taken) {
                        return Err(PruneError::NameTaken { name: name.into(), taken });
                    }
                }
                check_layout(name, &param)?;
                params.push(param);
            }
            params
        };
        let mut found = vec![false; names.len()];
        for (path, slot) in full_slots(&mut self.model, &self.prefix) {
            for ((&name, param), found) in names.iter().zip(&params).zip(found.iter_mut()) {
                if path == name {
                    if !same_tensor(slot, param) {
                        return Err(PruneError::SlotMismatch { name: name.into() });
                    }
                    *found = true;
                }
            }
        }
        if let Some((&name, _)) = names.iter().zip(&found).find(|(_, &found)| !found) {
            return Err(PruneError::SlotNotFound { name: name.into() });
        }
        Ok(params)
    }

    /// [`prepare`](Self::prepare) of `method`, a [`CustomFromMask`] applying `mask`, when the
    /// mask it computes is already known: for a parameter pruned for the first time (`param`,
    /// as returned by [`unpruned_params`](Self::unpruned_params) with nothing changed since),
    /// with `mask` a fresh tensor of the parameter's kind, device and shape holding what
    /// `method` applies, the computed mask `ones * mask` is `mask` bit for bit, so `mask` is
    /// stored as it is (no ones, no product, no copy). Any other case goes through `prepare`.
    pub(crate) fn prepare_with_mask(
        &mut self,
        name: &str,
        method: CustomFromMask,
        mask: Tensor,
        param: Option<&Tensor>,
    ) -> Result<PendingPrune> {
        if let Some(param) = param.filter(|_| self.position(name).is_none()) {
            let fits = mask.kind() == param.kind()
                && mask.device() == param.device()
                && mask.size() == param.size()
                && !mask.requires_grad();
            if fits {
                let mask = own_mask(mask, &[param])?;
                let target = Target::First { param: param.shallow_clone() };
                return Ok(PendingPrune {
                    name: name.to_string(),
                    method: Box::new(method),
                    mask,
                    target,
                });
            }
        }
        self.prepare(name, Box::new(method), None)
    }

    /// Validates and computes one pruning step without changing anything.
    pub(crate) fn prepare(
        &mut self,
        name: &str,
        method: Box<dyn PruningMethod>,
        importance_scores: Option<&Tensor>,
    ) -> Result<PendingPrune> {
        let (target, orig, current, default_mask) = match self.position(name) {
            Some(index) => {
                let rec = &self.pruned[index];
                let (orig, mask) = (rec.orig.shallow_clone(), rec.mask.shallow_clone());
                // A magnitude method only ranks entries whose mask is exactly 1, where
                // `orig * mask` is `orig` bit for bit: skip forming the product.
                let current = if importance_scores.is_none() && method.magnitude_amount().is_some()
                {
                    orig.f_detach()?
                } else {
                    tch::no_grad(|| effective(&orig, &mask))?
                };
                (Target::Repeat { index }, orig, current, mask)
            }
            None => {
                let param = self.unpruned_param(name)?;
                let current = param.f_detach()?;
                // The default mask (ones) is only built if the method needs it.
                let like = param.shallow_clone();
                (Target::First { param: param.shallow_clone() }, param, current, like)
            }
        };
        let importance = match importance_scores {
            Some(scores) => {
                check_layout("importance_scores", scores)?;
                check_same_shape("importance_scores", &orig.size(), scores)?;
                scores
            }
            None => &current,
        };
        let mask = tch::no_grad(|| match target {
            Target::First { .. } => crate::method::first_mask(&*method, importance, &default_mask),
            Target::Repeat { .. } => {
                crate::container::combine_masks(&*method, importance, &default_mask)
            }
        })?;
        check_layout("mask", &mask)?;
        check_same_shape("mask", &orig.size(), &mask)?;
        if mask.device() != orig.device() {
            return Err(PruneError::DeviceMismatch {
                parameter: "mask",
                expected: orig.device(),
                actual: mask.device(),
            });
        }
        let mask = own_mask(mask, &[&orig, importance, &default_mask])?;
        Ok(PendingPrune { name: name.to_string(), method, mask, target })
    }

    /// Applies prepared steps, in order. Cannot fail: the slot updates below are best effort
    /// (a multiplication of two tensors already checked to share shape and device) and are
    /// redone by the next forward anyway. The model's slots are walked once for all steps.
    pub(crate) fn commit(&mut self, pending: Vec<PendingPrune>) {
        let mut values: Vec<(String, Tensor)> = Vec::with_capacity(pending.len());
        for PendingPrune { name, method, mask, target } in pending {
            {
                let mut vars = self.vars();
                if let Target::First { param } = &target {
                    vars.named_variables.remove(&name);
                    vars.named_variables.insert(orig_name(&name), param.shallow_clone());
                }
                vars.named_variables.insert(mask_name(&name), mask.shallow_clone());
            }
            let rec = match target {
                Target::First { param } => {
                    let mut history = PruningContainer::new();
                    history.add_pruning_method(method);
                    self.pruned.push(Reparametrization::new(name.clone(), param, mask, history));
                    self.pruned.last()
                }
                Target::Repeat { index } => {
                    let rec = &mut self.pruned[index];
                    rec.mask = mask;
                    rec.cache = None;
                    rec.history.add_pruning_method(method);
                    Some(&*rec)
                }
            };
            // The value the slot gets, formed now (a later step on the same name replaces it).
            if let Some(Ok(value)) = rec.map(|rec| effective(&rec.orig, &rec.mask)) {
                values.retain(|(n, _)| *n != name);
                values.push((name, value));
            }
        }
        if values.is_empty() {
            return;
        }
        for (path, slot) in full_slots(&mut self.model, &self.prefix) {
            if let Some((_, value)) = values.iter().find(|(name, _)| *name == path) {
                *slot = value.shallow_clone();
            }
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
