//! [`MovementPruner`]: movement pruning of a [`PrunedModel`]'s parameters.

use std::sync::{Arc, Mutex};

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::config::MovementConfig;
use super::scores::{register, scores_name, Granularity};
use super::state::{lock, Param, Source, State};
use crate::error::{PruneError, Result};
use crate::model::PrunedModel;
use crate::prunable::Prunable;
use crate::pruner::Pruner;
use crate::reparam::MaskSource;

/// Movement pruning (Sanh, Wolf & Rush 2020) of some parameters of a [`PrunedModel`]: each gets
/// a trainable score tensor `<name>_scores` in the `VarStore` (in its own variable group), and
/// every forward of the model computes with `orig * m`, where `m` is the mask of the chosen
/// [`Binarizer`](super::Binarizer) with a straight-through term (`m + (s − s.detach())`), so
/// that both the weights and the scores train: `∂L/∂S = ∂L/∂W' ⊙ W`, what the reference's
/// custom `backward` returns. The mask is recomputed whenever the scores (or, for magnitude,
/// the weights) or the threshold changed, and stored as `<name>_mask`.
///
/// In a training loop: set the threshold from a [`ThresholdSchedule`](super::ThresholdSchedule)
/// each step, add [`regularization`](Self::regularization) times `λ_t` to the loss for the
/// soft and L0 variants, and [`fold`](Self::fold) at the end. Until then the parameters
/// belong to the pruner: pruning one of them another way, or [`remove`](Pruner::remove) on
/// it, fails with [`PruneError::MovementManaged`].
///
/// ```
/// use tch::nn::{self, OptimizerConfig};
/// use tch::{Device, Kind, Tensor};
/// use tch_prune::movement::{Binarizer, MovementConfig, MovementPruner, ThresholdSchedule};
/// use tch_prune::{PrunedModel, Pruner};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let fc = nn::linear(vs.root() / "fc", 8, 4, Default::default());
/// let mut model = PrunedModel::with_prefix(fc, &vs, "fc")?;
/// let mp = MovementPruner::new(&mut model, &vs, &["fc.weight"], MovementConfig::new(Binarizer::TopK))?;
/// let mut opt = nn::Sgd::default().build(&vs, 1e-3)?;
/// opt.set_lr_group(1, 1e-2); // the scores' group
///
/// let schedule = ThresholdSchedule::new(1.0, 0.25, 2, 20, 1, 2)?;
/// let x = Tensor::randn([16, 8], (Kind::Float, Device::Cpu));
/// for step in 0..20 {
///     mp.set_threshold(schedule.threshold(step))?;
///     let loss = model.forward(&x)?.square().mean(Kind::Float);
///     opt.backward_step(&loss);
/// }
/// assert_eq!(mp.kept_fraction()?, 0.25);
/// mp.fold(&mut model, &vs)?; // a plain model again: fc.weight, no scores
/// assert!(vs.variables().contains_key("fc.weight"));
/// assert!(!vs.variables().contains_key("fc.weight_scores"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MovementPruner {
    state: Arc<Mutex<State>>,
    names: Vec<String>,
}

impl MovementPruner {
    /// Starts movement pruning of the parameters `names` of `model` (whose `VarStore` is
    /// `vs`): prunes each with [`identity`](Pruner::identity) (mask of ones), creates its
    /// scores (none for magnitude) and hooks the mask into the model's forward.
    ///
    /// # Errors
    /// [`PruneError::UnknownParameter`] for a name that is not a variable of `vs`,
    /// [`PruneError::DuplicateParameter`] for a name given twice, [`PruneError::NameTaken`]
    /// when `<name>_orig`, `<name>_mask` or `<name>_scores` exists already (a parameter pruned
    /// before), [`PruneError::BlockMismatch`] when the granularity does not fit a weight (or
    /// is not per weight under magnitude). Nothing is changed then.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::movement::{Binarizer, Granularity, MovementConfig, MovementPruner};
    /// use tch_prune::{PrunedModel, PruneError};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut model = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 6, 4, Default::default()), &vs, "fc")?;
    /// let config = MovementConfig::new(Binarizer::TopK).with_granularity(Granularity::Block(3, 4));
    /// let err = MovementPruner::new(&mut model, &vs, &["fc.weight"], config).unwrap_err();
    /// assert!(matches!(err, PruneError::BlockMismatch { .. }));
    /// assert_eq!(vs.variables().len(), 2); // unchanged
    /// # Ok::<(), PruneError>(())
    /// ```
    pub fn new<M: Prunable>(
        model: &mut PrunedModel<M>,
        vs: &VarStore,
        names: &[&str],
        config: MovementConfig,
    ) -> Result<Self> {
        let binarizer = config.binarizer();
        let granularity = config.granularity();
        let mut shapes = Vec::with_capacity(names.len());
        {
            let vars = vs.variables();
            for (i, name) in names.iter().enumerate() {
                if names[..i].contains(name) {
                    return Err(PruneError::DuplicateParameter { name: name.to_string() });
                }
                let var = vars
                    .get(*name)
                    .ok_or_else(|| PruneError::UnknownParameter { name: name.to_string() })?;
                for taken in [format!("{name}_orig"), format!("{name}_mask"), scores_name(name)] {
                    if vars.contains_key(&taken) {
                        return Err(PruneError::NameTaken { name: name.to_string(), taken });
                    }
                }
                let shape = var.size();
                if !binarizer.has_scores() && granularity != Granularity::Weight {
                    return Err(PruneError::BlockMismatch {
                        name: name.to_string(),
                        shape,
                        block: (0, 0),
                    });
                }
                let score_shape = granularity.score_shape(name, &shape)?;
                shapes.push(score_shape);
            }
        }
        let mut params = Vec::with_capacity(names.len());
        for (name, shape) in names.iter().zip(&shapes) {
            let scores = if binarizer.has_scores() {
                Some(register(vs, name, shape, config.init(), config.score_group())?)
            } else {
                None
            };
            model.identity(name)?;
            let rec = model
                .record(name)
                .ok_or_else(|| PruneError::NotPruned { name: name.to_string() })?;
            params.push(Param {
                name: name.to_string(),
                orig: rec.orig.shallow_clone(),
                mask: rec.mask.shallow_clone(),
                scores,
                binary: None,
            });
        }
        let state = Arc::new(Mutex::new(State::new(binarizer, granularity, params, config.seed())));
        for (index, name) in names.iter().enumerate() {
            let source: Arc<dyn MaskSource> = Arc::new(Source { state: Arc::clone(&state), index });
            model.set_mask_source(name, Some(source));
        }
        Ok(Self { state, names: names.iter().map(|n| n.to_string()).collect() })
    }

    /// Sets the threshold: the kept fraction for Top-K and magnitude, `τ` for the soft
    /// variant (ignored by L0). Takes effect at the next forward.
    ///
    /// # Errors
    /// [`PruneError::InvalidThreshold`] when it is outside `[0, 1]` (NaN included); the
    /// threshold is then unchanged.
    pub fn set_threshold(&self, threshold: f64) -> Result<()> {
        let mut state = lock(&self.state);
        state.binarizer.check_threshold(threshold)?;
        state.threshold = threshold;
        Ok(())
    }

    /// Brings the masks up to date now (the model's forward does it lazily, when a score, a
    /// weight under magnitude pruning, or the threshold changed): the per-step mask refresh,
    /// e.g. to time it or to read [`mask`](Pruner::mask)s without a forward.
    ///
    /// # Errors
    /// A libtorch error.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::movement::{Binarizer, MovementConfig, MovementPruner, ScoreInit};
    /// use tch_prune::{PrunedModel, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut model = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 10, 10, Default::default()), &vs, "fc")?;
    /// let config = MovementConfig::new(Binarizer::TopK).with_init(ScoreInit::Uniform(1.0));
    /// let mp = MovementPruner::new(&mut model, &vs, &["fc.weight"], config)?;
    /// mp.set_threshold(0.3)?;
    /// mp.refresh_masks()?;
    /// assert_eq!(model.mask("fc.weight").unwrap().sum(tch::Kind::Float).double_value(&[]), 30.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refresh_masks(&self) -> Result<()> {
        lock(&self.state).sync()
    }

    /// The current threshold.
    pub fn threshold(&self) -> f64 {
        lock(&self.state).threshold
    }

    /// Training mode (the default) or evaluation: L0 draws noise in training only; every
    /// other variant, and L0 in evaluation, is deterministic.
    pub fn set_training(&self, training: bool) {
        lock(&self.state).training = training;
    }

    /// The scores of a parameter (the trainable `<name>_scores` variable).
    pub fn scores(&self, name: &str) -> Option<Tensor> {
        let state = lock(&self.state);
        state.params.iter().find(|p| p.name == name)?.scores.as_ref().map(Tensor::shallow_clone)
    }

    /// The parameters under movement pruning, in the order given.
    pub fn parameters(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// The unscaled regulariser, graph-connected to the scores: multiply it by the schedule's
    /// [`lambda`](super::ThresholdSchedule::lambda) and add it to the loss. Zero for the
    /// variants without one (magnitude, Top-K).
    ///
    /// # Errors
    /// A libtorch error.
    ///
    /// Reference: `regularization(model, mode)` in `masked_run_squad.py` (`l1` for
    /// `sigmoied_threshold`, `l0` for `l0`), averaged over the score tensors.
    pub fn regularization(&self) -> Result<Tensor> {
        lock(&self.state).regularization()
    }

    /// The fraction of weights the current (evaluation) masks keep, over all the parameters:
    /// the sum of the masks over their number of entries (L0 gates count as their value).
    ///
    /// # Errors
    /// A libtorch error while bringing the masks up to date.
    pub fn kept_fraction(&self) -> Result<f64> {
        let mut state = lock(&self.state);
        state.sync()?;
        let (mut kept, mut total) = (0.0, 0.0);
        for p in &state.params {
            kept += p.mask.f_sum(Kind::Double)?.f_double_value(&[])?;
            total += p.mask.numel() as f64;
        }
        Ok(if total == 0.0 { 1.0 } else { kept / total })
    }

    /// Folds the masks into the weights and drops the scores (the reference's
    /// `bertarize.py`): each parameter's evaluation mask at the current threshold is
    /// multiplied into its original ([`remove`](Pruner::remove)), which becomes `<name>`
    /// again, and `<name>_scores` leaves the `VarStore`, so its checkpoint loads into the
    /// plain model. An optimizer built before keeps its handles on the scores; build a new one
    /// to train on.
    ///
    /// # Errors
    /// A libtorch error while computing the final masks; nothing is folded then.
    pub fn fold<M: Prunable>(self, model: &mut PrunedModel<M>, vs: &VarStore) -> Result<()> {
        {
            let mut state = lock(&self.state);
            state.training = false;
            state.sync()?;
        }
        let vars = crate::var_store::Vars::of(vs);
        for name in &self.names {
            model.set_mask_source(name, None);
            model.remove(name)?;
            vars.remove(&scores_name(name));
        }
        Ok(())
    }
}
