//! What a recipe step does ([`RecipeMethod`]) and the layer kinds it can select ([`LayerKind`]).

use serde::{Deserialize, Serialize};
use tch::nn;

use crate::error::Result;
use crate::method::{
    Amount, Identity, L1Unstructured, LnStructured, Norm, RandomStructured, RandomUnstructured,
};
use crate::model::PrunedModel;
use crate::prunable::Prunable;
use crate::pruner::Pruner;
use crate::schedule::{PruningScope, ScheduleConfig};

/// The pruning a [`RecipeStep`](crate::RecipeStep) applies to the parameters it selects: one
/// of PyTorch's pruning functions ([`Pruner`]), with its method, validated.
///
/// In recipe files the variant is the `method` field, in PyTorch's snake-case function names,
/// and the arguments sit beside it (`amount`, `n`, `dim`, `pruning_method`). Each variant holds
/// the method itself, built (and so validated) by its `new`: a `RecipeMethod` cannot hold an
/// amount or a norm that the method would refuse. The constructors below build them from
/// plain arguments.
///
/// [`Gradual`](Self::Gradual) is the one variant that does not prune when the recipe is
/// applied: it is `l1_unstructured` or `global_unstructured` written with a `schedule` instead
/// of an `amount`, and becomes a [`GradualPruner`](crate::GradualPruner) for the training loop.
///
/// ```
/// use tch_prune::{LnStructured, RecipeMethod};
///
/// let m = RecipeMethod::ln_structured(0.5, 2, 0)?;
/// assert_eq!(m, RecipeMethod::LnStructured(LnStructured::new(0.5, 2, 0)?));
/// assert_eq!(m.name(), "ln_structured");
/// assert!(RecipeMethod::l1_unstructured(1.5).is_err());
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum RecipeMethod {
    /// Sets up the reparametrization without pruning. PyTorch: `prune.identity`.
    Identity,
    /// The entries of smallest magnitude, per parameter. PyTorch: `prune.l1_unstructured`.
    L1Unstructured(L1Unstructured),
    /// Entries at random, per parameter. PyTorch: `prune.random_unstructured`.
    RandomUnstructured(RandomUnstructured),
    /// The channels of smallest `n`-norm, per parameter. PyTorch: `prune.ln_structured`.
    LnStructured(LnStructured),
    /// Channels at random, per parameter. PyTorch: `prune.random_structured`.
    RandomStructured(RandomStructured),
    /// One selection by L1 magnitude across **all** the selected parameters together.
    /// PyTorch: `prune.global_unstructured(parameters, prune.L1Unstructured, amount=...)`.
    GlobalL1Unstructured(L1Unstructured),
    /// One random selection across **all** the selected parameters together. PyTorch:
    /// `prune.global_unstructured(parameters, prune.RandomUnstructured, amount=...)`.
    GlobalRandomUnstructured(RandomUnstructured),
    /// Gradual magnitude pruning to the targets of `schedule`: nothing is pruned when the
    /// recipe is applied; [`PruningRecipe::apply`](crate::PruningRecipe::apply) returns a
    /// [`GradualPruner`](crate::GradualPruner) over the step's parameters, in `scope`, for the
    /// training loop to drive. In recipe files: `method = "l1_unstructured"`
    /// ([`PruningScope::Local`]: each parameter to the target by itself) or `method =
    /// "global_unstructured"` ([`PruningScope::Global`]: all of them together, ranked by L1
    /// magnitude), with a `schedule` table instead of an `amount`. TF-MOT:
    /// `prune_low_magnitude(layer, pruning_schedule=...)`.
    Gradual {
        /// Each parameter by itself, or all together.
        scope: PruningScope,
        /// When to prune, and to which sparsity of the whole tensor.
        schedule: ScheduleConfig,
    },
}

/// The unstructured method that ranks the entries of a global step.
///
/// In recipe files: `"l1_unstructured"` (the default) or `"random_unstructured"`; PyTorch's
/// class names `"L1Unstructured"` / `"RandomUnstructured"` are accepted too.
///
/// ```
/// use tch_prune::GlobalPruningMethod;
/// assert_eq!(GlobalPruningMethod::default(), GlobalPruningMethod::L1Unstructured);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GlobalPruningMethod {
    /// [`L1Unstructured`]: smallest magnitude first.
    #[default]
    #[serde(alias = "L1Unstructured")]
    L1Unstructured,
    /// [`RandomUnstructured`]: uniformly at random.
    #[serde(alias = "RandomUnstructured")]
    RandomUnstructured,
}

impl RecipeMethod {
    /// [`RecipeMethod::Identity`].
    ///
    /// ```
    /// assert_eq!(tch_prune::RecipeMethod::identity().name(), "identity");
    /// ```
    pub fn identity() -> Self {
        RecipeMethod::Identity
    }

    /// [`RecipeMethod::L1Unstructured`].
    ///
    /// # Errors
    /// As [`L1Unstructured::new`].
    ///
    /// ```
    /// let m = tch_prune::RecipeMethod::l1_unstructured(3)?;
    /// assert_eq!(m.name(), "l1_unstructured");
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn l1_unstructured(amount: impl Into<Amount>) -> Result<Self> {
        Ok(RecipeMethod::L1Unstructured(L1Unstructured::new(amount)?))
    }

    /// [`RecipeMethod::RandomUnstructured`] (PyTorch's draws).
    ///
    /// # Errors
    /// As [`RandomUnstructured::new`].
    ///
    /// ```
    /// assert!(tch_prune::RecipeMethod::random_unstructured(-1).is_err());
    /// ```
    pub fn random_unstructured(amount: impl Into<Amount>) -> Result<Self> {
        Ok(RecipeMethod::RandomUnstructured(RandomUnstructured::new(amount)?))
    }

    /// [`RecipeMethod::LnStructured`].
    ///
    /// # Errors
    /// As [`LnStructured::new`].
    ///
    /// ```
    /// assert!(tch_prune::RecipeMethod::ln_structured(0.5, f64::NAN, 0).is_err());
    /// ```
    pub fn ln_structured(amount: impl Into<Amount>, n: impl Into<Norm>, dim: i64) -> Result<Self> {
        Ok(RecipeMethod::LnStructured(LnStructured::new(amount, n, dim)?))
    }

    /// [`RecipeMethod::RandomStructured`].
    ///
    /// # Errors
    /// As [`RandomStructured::new`].
    ///
    /// ```
    /// let m = tch_prune::RecipeMethod::random_structured(1, 0)?;
    /// assert_eq!(m.name(), "random_structured");
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn random_structured(amount: impl Into<Amount>, dim: i64) -> Result<Self> {
        Ok(RecipeMethod::RandomStructured(RandomStructured::new(amount, dim)?))
    }

    /// A global step ranking by `pruning_method`.
    ///
    /// # Errors
    /// As the method's `new`.
    ///
    /// ```
    /// use tch_prune::{GlobalPruningMethod, RecipeMethod};
    /// let m = RecipeMethod::global_unstructured(GlobalPruningMethod::L1Unstructured, 0.2)?;
    /// assert_eq!(m.name(), "global_unstructured");
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn global_unstructured(
        pruning_method: GlobalPruningMethod,
        amount: impl Into<Amount>,
    ) -> Result<Self> {
        Ok(match pruning_method {
            GlobalPruningMethod::L1Unstructured => {
                RecipeMethod::GlobalL1Unstructured(L1Unstructured::new(amount)?)
            }
            GlobalPruningMethod::RandomUnstructured => {
                RecipeMethod::GlobalRandomUnstructured(RandomUnstructured::new(amount)?)
            }
        })
    }

    /// [`RecipeMethod::Gradual`]: gradual magnitude pruning along `schedule` (one of the
    /// built-in schedules, or a [`ScheduleConfig`]).
    ///
    /// ```
    /// use tch_prune::{PolynomialDecay, PruningScope, RecipeMethod};
    /// let m = RecipeMethod::gradual(PruningScope::Global, PolynomialDecay::new(0.0, 0.9, 0, 1000)?);
    /// assert_eq!(m.name(), "global_unstructured");
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn gradual(scope: PruningScope, schedule: impl Into<ScheduleConfig>) -> Self {
        RecipeMethod::Gradual { scope, schedule: schedule.into() }
    }

    /// The schedule of a [`Gradual`](Self::Gradual) step; `None` for the others.
    ///
    /// ```
    /// assert!(tch_prune::RecipeMethod::l1_unstructured(0.5)?.schedule().is_none());
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn schedule(&self) -> Option<&ScheduleConfig> {
        match self {
            RecipeMethod::Gradual { schedule, .. } => Some(schedule),
            _ => None,
        }
    }

    /// PyTorch's function name for the step (`"l1_unstructured"`, `"global_unstructured"`,
    /// ...), as in recipe files.
    ///
    /// ```
    /// assert_eq!(tch_prune::RecipeMethod::Identity.name(), "identity");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            RecipeMethod::Identity => "identity",
            RecipeMethod::L1Unstructured(_) => "l1_unstructured",
            RecipeMethod::RandomUnstructured(_) => "random_unstructured",
            RecipeMethod::LnStructured(_) => "ln_structured",
            RecipeMethod::RandomStructured(_) => "random_structured",
            RecipeMethod::GlobalL1Unstructured(_) | RecipeMethod::GlobalRandomUnstructured(_) => {
                "global_unstructured"
            }
            RecipeMethod::Gradual { scope: PruningScope::Global, .. } => "global_unstructured",
            RecipeMethod::Gradual { .. } => "l1_unstructured",
        }
    }

    /// Whether the step is one selection across all its parameters.
    pub(crate) fn is_global(&self) -> bool {
        matches!(
            self,
            RecipeMethod::GlobalL1Unstructured(_) | RecipeMethod::GlobalRandomUnstructured(_)
        )
    }

    /// Runs the step on `name` (checked to exist before).
    pub(crate) fn run<P: Pruner>(&self, model: &mut P, name: &str) -> Result<()> {
        match *self {
            RecipeMethod::Identity => model.apply(name, Identity, None),
            RecipeMethod::L1Unstructured(m) => model.apply(name, m, None),
            RecipeMethod::RandomUnstructured(m) => model.apply(name, m, None),
            RecipeMethod::LnStructured(m) => model.apply(name, m, None),
            RecipeMethod::RandomStructured(m) => model.apply(name, m, None),
            RecipeMethod::GlobalL1Unstructured(m) => model.global_unstructured(&[name], m, &[]),
            RecipeMethod::GlobalRandomUnstructured(m) => model.global_unstructured(&[name], m, &[]),
            // Pruned later, by the step's `GradualPruner`.
            RecipeMethod::Gradual { .. } => Ok(()),
        }
    }

    /// Runs a global step over all of `names` at once.
    pub(crate) fn run_global<P: Pruner>(&self, model: &mut P, names: &[&str]) -> Result<()> {
        match *self {
            RecipeMethod::GlobalL1Unstructured(m) => model.global_unstructured(names, m, &[]),
            RecipeMethod::GlobalRandomUnstructured(m) => model.global_unstructured(names, m, &[]),
            _ => names.iter().try_for_each(|name| self.run(model, name)),
        }
    }
}

/// A kind of tch layer a recipe step can select, matched by type as PyTorch code does with
/// `isinstance(module, nn.Conv2d)` over `named_modules()`.
///
/// In recipe files a kind is tch's type name (`"Linear"`, `"Conv2D"`, ...); PyTorch's
/// spellings are accepted too (`"Conv2d"`, `"ConvTranspose2d"`, `"BatchNorm2d"`, ...: tch has
/// one `BatchNorm` type for every dimension). Only the layers your model lists through
/// [`Prunable::named_modules`] (tch's layers, and `prunable!` structs made of them) are found.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{prunable, LayerKind, PrunedModel};
///
/// #[derive(Debug)]
/// struct Net { conv: nn::Conv2D, fc: nn::Linear }
/// prunable!(Net { conv, fc });
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = Net {
///     conv: nn::conv2d(vs.root() / "conv", 1, 2, 3, Default::default()),
///     fc: nn::linear(vs.root() / "fc", 4, 2, Default::default()),
/// };
/// let model = PrunedModel::new(net, &vs)?;
/// assert_eq!(LayerKind::Conv2D.layers(&model), ["conv"]);
/// assert!(LayerKind::Embedding.layers(&model).is_empty());
/// let kind: LayerKind = serde_json::from_str("\"Conv2d\"")?;
/// assert_eq!(kind, LayerKind::Conv2D);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LayerKind {
    /// `nn::Linear`.
    Linear,
    /// `nn::Conv1D`.
    #[serde(alias = "Conv1d")]
    Conv1D,
    /// `nn::Conv2D`.
    #[serde(alias = "Conv2d")]
    Conv2D,
    /// `nn::Conv3D`.
    #[serde(alias = "Conv3d")]
    Conv3D,
    /// `nn::ConvTranspose1D`.
    #[serde(alias = "ConvTranspose1d")]
    ConvTranspose1D,
    /// `nn::ConvTranspose2D`.
    #[serde(alias = "ConvTranspose2d")]
    ConvTranspose2D,
    /// `nn::ConvTranspose3D`.
    #[serde(alias = "ConvTranspose3d")]
    ConvTranspose3D,
    /// `nn::Embedding`.
    Embedding,
    /// `nn::LayerNorm`.
    LayerNorm,
    /// `nn::BatchNorm` (PyTorch's `BatchNorm1d`, `BatchNorm2d` and `BatchNorm3d`).
    #[serde(alias = "BatchNorm1d", alias = "BatchNorm2d", alias = "BatchNorm3d")]
    BatchNorm,
    /// `nn::GroupNorm`.
    GroupNorm,
}

impl LayerKind {
    /// The full names of the model's layers of this kind (see
    /// [`PrunedModel::layers_of`]).
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{LayerKind, PrunedModel};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// let model = PrunedModel::with_prefix(fc, &vs, "fc")?;
    /// assert_eq!(LayerKind::Linear.layers(&model), ["fc"]);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn layers<M: Prunable>(self, model: &PrunedModel<M>) -> Vec<String> {
        match self {
            LayerKind::Linear => model.layers_of::<nn::Linear>(),
            LayerKind::Conv1D => model.layers_of::<nn::Conv1D>(),
            LayerKind::Conv2D => model.layers_of::<nn::Conv2D>(),
            LayerKind::Conv3D => model.layers_of::<nn::Conv3D>(),
            LayerKind::ConvTranspose1D => model.layers_of::<nn::ConvTranspose1D>(),
            LayerKind::ConvTranspose2D => model.layers_of::<nn::ConvTranspose2D>(),
            LayerKind::ConvTranspose3D => model.layers_of::<nn::ConvTranspose3D>(),
            LayerKind::Embedding => model.layers_of::<nn::Embedding>(),
            LayerKind::LayerNorm => model.layers_of::<nn::LayerNorm>(),
            LayerKind::BatchNorm => model.layers_of::<nn::BatchNorm>(),
            LayerKind::GroupNorm => model.layers_of::<nn::GroupNorm>(),
        }
    }
}
