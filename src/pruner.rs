//! [`Pruner`]: PyTorch's module-level pruning functions, written once for every kind of pruned
//! model ([`PrunedModel`](crate::PrunedModel) and [`HardMask`](crate::HardMask)).
//!
//! Schedules ([`GradualPruner`](crate::GradualPruner)), recipes
//! ([`PruningRecipe`](crate::PruningRecipe)) and reports
//! ([`SparsityReport::from_model`](crate::SparsityReport::from_model)) take any `Pruner`, so a
//! hard-masked `nn::seq()`, RNN or TorchScript model gets them too.

use tch::Tensor;

use crate::error::Result;
use crate::method::{
    Amount, CustomFromMask, Identity, L1Unstructured, LnStructured, Norm, PruningMethod,
    RandomStructured, RandomUnstructured,
};

/// What the crate needs from a pruned model beyond the public operations (in `sealed.rs`).
pub(crate) mod sealed;

/// PyTorch's `torch.nn.utils.prune` functions on a model: one parameter at a time by name
/// (`"fc1.weight"`), globally across several, and `remove`.
///
/// Implemented by [`PrunedModel`](crate::PrunedModel) (PyTorch's `<name>_orig` /
/// `<name>_mask` reparametrization) and [`HardMask`](crate::HardMask) (masks multiplied into
/// the `VarStore` tensors in place, for models whose layers cannot be reached). Bring it into
/// scope (`use tch_prune::Pruner;`) to call the functions below. The named functions are
/// shorthands for [`apply`](Self::apply) with the method of that name: the same masks,
/// bit for bit, as PyTorch's functions of the same name.
///
/// Every call validates and computes first and changes the model last: on error the model,
/// its `VarStore` and its masks are exactly as before.
///
/// The trait is sealed: it is implemented for the crate's pruned models only (write your own
/// pruning *method* with [`PruningMethod`] instead).
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{HardMask, PrunedModel, Pruner};
///
/// fn prune_half<P: Pruner>(model: &mut P) -> tch_prune::Result<()> {
///     model.l1_unstructured("fc.weight", 0.5, None)
/// }
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let mut model = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 4, 2, Default::default()), &vs, "fc")?;
/// prune_half(&mut model)?;
///
/// let vs2 = nn::VarStore::new(Device::Cpu);
/// let _seq = nn::seq().add(nn::linear(vs2.root() / "fc", 4, 2, Default::default()));
/// let mut masks = HardMask::new(&vs2);
/// prune_half(&mut masks)?;
/// assert_eq!(model.mask("fc.weight").unwrap().size(), masks.mask("fc.weight").unwrap().size());
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
pub trait Pruner: sealed::Sealed {
    /// Prunes `name` with any [`PruningMethod`] (boxed); [`apply`](Self::apply) is the
    /// convenient form.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    fn apply_boxed(
        &mut self,
        name: &str,
        method: Box<dyn PruningMethod>,
        importance_scores: Option<&Tensor>,
    ) -> Result<()>;

    /// Prunes the listed parameters together with an unstructured `method` ranking the
    /// entries of all of them as one vector; [`global_unstructured`](Self::global_unstructured)
    /// is the convenient form.
    ///
    /// # Errors
    /// As [`global_unstructured`](Self::global_unstructured).
    fn global_unstructured_dyn(
        &mut self,
        names: &[&str],
        method: &dyn PruningMethod,
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<()>;

    /// The mask of `name`, if it is pruned.
    ///
    /// PyTorch equivalent: `module.weight_mask`.
    fn mask(&self, name: &str) -> Option<&Tensor>;

    /// The current value of `name` as the model computes with it, detached (`orig * mask` for
    /// a reparametrized parameter).
    ///
    /// # Errors
    /// [`PruneError::UnknownParameter`](crate::PruneError::UnknownParameter) when `name` is
    /// not a parameter.
    ///
    /// PyTorch equivalent: `module.weight` (after the forward pre-hook).
    fn value(&self, name: &str) -> Result<Tensor>;

    /// The pruned parameters, in the order they were first pruned.
    fn pruned_parameters(&self) -> impl Iterator<Item = &str>;

    /// Makes the pruning of `name` permanent and forgets its mask.
    ///
    /// # Errors
    /// [`PruneError::NotPruned`](crate::PruneError::NotPruned) when `name` is not pruned;
    /// [`PruneError::MovementManaged`](crate::PruneError::MovementManaged) when it is under
    /// movement pruning (fold the [`MovementPruner`](crate::movement::MovementPruner)
    /// instead).
    ///
    /// PyTorch equivalent: `prune.remove(module, name)`.
    fn remove(&mut self, name: &str) -> Result<()>;

    /// Whether `name` is pruned.
    fn is_parameter_pruned(&self, name: &str) -> bool {
        self.mask(name).is_some()
    }

    /// Whether any parameter is pruned.
    ///
    /// PyTorch equivalent: `prune.is_pruned(model)`.
    fn is_pruned(&self) -> bool {
        self.pruned_parameters().next().is_some()
    }

    /// Prunes `name` with any [`PruningMethod`], your own included.
    ///
    /// `importance_scores` (same shape as the parameter) rank the entries instead of the
    /// parameter's values. The first pruning computes the mask from all ones; later ones go
    /// through the [`PruningContainer`](crate::PruningContainer) combining step with the
    /// current masked value as importance.
    ///
    /// # Errors
    /// [`PruneError::UnknownParameter`](crate::PruneError::UnknownParameter) and, for a
    /// [`PrunedModel`](crate::PrunedModel), its slot checks;
    /// [`PruneError::ShapeMismatch`](crate::PruneError::ShapeMismatch) (importance scores, or
    /// a mask of the wrong shape from a custom method);
    /// [`PruneError::UnsupportedLayout`](crate::PruneError::UnsupportedLayout) (a sparse or
    /// MKL-DNN parameter, importance scores or mask); for a [`HardMask`](crate::HardMask),
    /// [`PruneError::NonBinaryMask`](crate::PruneError::NonBinaryMask) and
    /// [`PruneError::InternalOverlap`](crate::PruneError::InternalOverlap) (a variable that
    /// cannot be written in place, such as an expanded tensor);
    /// [`PruneError::MovementManaged`](crate::PruneError::MovementManaged) for a parameter
    /// under movement pruning; and whatever the method returns. Nothing changes on error.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{LnStructured, Norm, PrunedModel, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let conv = nn::conv2d(vs.root() / "conv", 3, 8, 3, Default::default());
    /// let mut model = PrunedModel::with_prefix(conv, &vs, "conv")?;
    /// let method = LnStructured::builder().amount(0.5).n(Norm::P(2.0)).dim(0).build()?;
    /// model.apply("conv.weight", method, None)?;
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `Method.apply(module, name, *args, importance_scores=...)`.
    fn apply(
        &mut self,
        name: &str,
        method: impl PruningMethod + 'static,
        importance_scores: Option<&Tensor>,
    ) -> Result<()>
    where
        Self: Sized,
    {
        self.apply_boxed(name, Box::new(method), importance_scores)
    }

    /// Prunes nothing but sets up the mask (of ones).
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    ///
    /// PyTorch equivalent: `prune.identity(module, name)`.
    fn identity(&mut self, name: &str) -> Result<()>
    where
        Self: Sized,
    {
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
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{HardMask, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let _fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// tch::manual_seed(0);
    /// masks.random_unstructured("fc.weight", 0.25)?;
    /// assert_eq!(masks.sparsity("fc.weight")?, 0.25);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.random_unstructured(module, name, amount)`.
    fn random_unstructured(&mut self, name: &str, amount: impl Into<Amount>) -> Result<()>
    where
        Self: Sized,
    {
        self.apply(name, RandomUnstructured::new(amount)?, None)
    }

    /// Prunes the `amount` entries of `name` with the smallest magnitude (or the smallest
    /// `importance_scores`).
    ///
    /// # Errors
    /// As [`apply`](Self::apply) and [`L1Unstructured::new`].
    ///
    /// ```
    /// use tch::{nn, Device, Kind};
    /// use tch_prune::{PrunedModel, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 10, 10, Default::default());
    /// let mut model = PrunedModel::with_prefix(fc, &vs, "fc")?;
    /// model.l1_unstructured("fc.weight", 0.3, None)?;
    /// assert_eq!(model.value("fc.weight")?.eq(0.0).sum(Kind::Int64).int64_value(&[]), 30);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.l1_unstructured(module, name, amount, importance_scores)`.
    fn l1_unstructured(
        &mut self,
        name: &str,
        amount: impl Into<Amount>,
        importance_scores: Option<&Tensor>,
    ) -> Result<()>
    where
        Self: Sized,
    {
        self.apply(name, L1Unstructured::new(amount)?, importance_scores)
    }

    /// Prunes `amount` channels of `name` along `dim` at random.
    ///
    /// # Errors
    /// As [`apply`](Self::apply) and [`RandomStructured::new`].
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{HardMask, Pruner};
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
    fn random_structured(&mut self, name: &str, amount: impl Into<Amount>, dim: i64) -> Result<()>
    where
        Self: Sized,
    {
        self.apply(name, RandomStructured::new(amount, dim)?, None)
    }

    /// Prunes the `amount` channels of `name` along `dim` with the smallest `n`-norm.
    ///
    /// `n` and `dim` are both numbers, in PyTorch's order; where a swap would go unnoticed,
    /// build the method with named arguments instead:
    /// `apply(name, LnStructured::builder().amount(a).n(2).dim(0).build()?, None)`.
    ///
    /// # Errors
    /// As [`apply`](Self::apply) and [`LnStructured::new`].
    ///
    /// ```
    /// use tch::{nn, Device, Kind};
    /// use tch_prune::{HardMask, Pruner};
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
    fn ln_structured(
        &mut self,
        name: &str,
        amount: impl Into<Amount>,
        n: impl Into<Norm>,
        dim: i64,
        importance_scores: Option<&Tensor>,
    ) -> Result<()>
    where
        Self: Sized,
    {
        self.apply(name, LnStructured::new(amount, n, dim)?, importance_scores)
    }

    /// Prunes `name` with a mask you provide (zeros and ones, any kind), combined with the
    /// existing mask; also how saved masks are restored.
    ///
    /// # Errors
    /// As [`apply`](Self::apply): [`PruneError::ShapeMismatch`](crate::PruneError::ShapeMismatch)
    /// when `mask` does not have the parameter's shape.
    ///
    /// ```
    /// use tch::{nn, Device, Tensor};
    /// use tch_prune::{HardMask, Pruner};
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
    fn custom_from_mask(&mut self, name: &str, mask: &Tensor) -> Result<()>
    where
        Self: Sized,
    {
        self.apply(name, CustomFromMask::new(mask.shallow_clone()), None)
    }

    /// Prunes the listed parameters together: `method` (unstructured) ranks the entries of all
    /// of them as one vector, so a fraction is a fraction of **all** still-unpruned entries and
    /// each parameter ends up with its own sparsity.
    ///
    /// `importance_scores` pairs parameter names with score tensors of the parameter's shape;
    /// parameters without scores are ranked by their current value. Scores for names that are
    /// not listed are ignored, as in PyTorch, so one map serves any subset.
    ///
    /// # Errors
    /// [`PruneError::EmptyParameterList`](crate::PruneError::EmptyParameterList),
    /// [`PruneError::DuplicateParameter`](crate::PruneError::DuplicateParameter),
    /// [`PruneError::WrongPruningType`](crate::PruneError::WrongPruningType) for a structured
    /// method, the errors of [`apply`](Self::apply) for each parameter, and the method's own
    /// (e.g. [`PruneError::AmountTooLarge`](crate::PruneError::AmountTooLarge)). Nothing
    /// changes on error, for any of the parameters.
    ///
    /// ```
    /// use tch::nn::{self, Module};
    /// use tch::{Device, Kind, Tensor};
    /// use tch_prune::{HardMask, L1Unstructured, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let net = nn::seq()
    ///     .add(nn::linear(vs.root() / "0", 16, 16, Default::default()))
    ///     .add_fn(|x| x.relu())
    ///     .add(nn::linear(vs.root() / "2", 16, 4, Default::default()));
    /// let mut masks = HardMask::new(&vs);
    /// masks.global_unstructured(&["0.weight", "2.weight"], L1Unstructured::new(0.5)?, &[])?;
    /// assert_eq!(masks.overall_sparsity()?, 0.5); // 160 of the 320 weights, wherever they are
    /// # let _ = net.forward(&Tensor::zeros([1, 16], (Kind::Float, Device::Cpu)));
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `prune.global_unstructured(parameters, pruning_method,
    /// importance_scores=None, **kwargs)`; the method is passed built
    /// (`L1Unstructured::new(0.2)?`) rather than as a class plus keyword arguments.
    fn global_unstructured(
        &mut self,
        names: &[&str],
        method: impl PruningMethod,
        importance_scores: &[(&str, &Tensor)],
    ) -> Result<()>
    where
        Self: Sized,
    {
        self.global_unstructured_dyn(names, &method, importance_scores)
    }
}
