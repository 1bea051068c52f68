//! [`GradualPruner`]: gradual magnitude pruning of any [`Pruner`] (a
//! [`PrunedModel`](crate::PrunedModel) or a [`HardMask`](crate::HardMask)) driven by a
//! [`PruningSchedule`].

use tch::Kind;

use super::checks::validate_fraction;
use super::{ParameterSparsity, PruneProgress, PruningSchedule};
use crate::error::{PruneError, Result};
use crate::method::{Amount, L1Unstructured};
use crate::pruner::Pruner;

/// Whether a [`GradualPruner`] brings each parameter to the target on its own or all of them
/// together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PruningScope {
    /// Each parameter reaches the target sparsity by itself (magnitudes compared within the
    /// tensor; [`Pruner::l1_unstructured`]).
    #[default]
    Local,
    /// The parameters together reach the target sparsity (magnitudes compared across all of
    /// them, so each ends at its own sparsity; [`Pruner::global_unstructured`]).
    Global,
}

/// Gradual magnitude pruning: at each step where its schedule says so, prunes the chosen
/// parameters by L1 magnitude up to the schedule's target sparsity **of the whole tensor**.
///
/// The target is not compounded on what is left: to go from 50% to 60% of a 1000-entry weight,
/// a step prunes `round(0.6 * 1000) - 500 = 100` more entries (the smallest among the 500 still
/// alive), not 60% of the remaining 500. Masks only grow: entries pruned once stay pruned, and
/// a target below the current sparsity prunes nothing. Counts round half to even, like
/// [`Amount::Fraction`]. The parameters are pruned through [`PrunedModel`](crate::PrunedModel), so an optimizer
/// built before pruning keeps training `<name>_orig` and pruned entries get zero gradient.
///
/// In [`PruningScope::Local`] (the default) each parameter is brought to the target by itself
/// with [`Pruner::l1_unstructured`]; in [`PruningScope::Global`] the total over all the
/// parameters is, with [`Pruner::global_unstructured`] (each global step records a
/// [`CustomFromMask`](crate::CustomFromMask), with its mask, in every parameter's history, as
/// PyTorch does).
///
/// ```
/// use tch::nn::{self, OptimizerConfig};
/// use tch::{Device, Kind, Tensor};
/// use tch_prune::{GradualPruner, PolynomialDecay, PrunedModel};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let fc = nn::linear(vs.root() / "fc", 10, 10, Default::default());
/// let mut opt = nn::Adam::default().build(&vs, 1e-3)?; // built before pruning: fine
/// let mut model = PrunedModel::with_prefix(fc, &vs, "fc")?;
///
/// // 0% -> 80% between steps 0 and 40, pruning every 10 steps.
/// let schedule = PolynomialDecay::new(0.0, 0.8, 0, 40)?.with_frequency(10)?;
/// let mut pruner = GradualPruner::new(schedule, ["fc.weight"])?;
/// for step in 0..50 {
///     if let Some(progress) = pruner.step(&mut model, step)? {
///         // Exactly round(target * 100) of the 100 weights are pruned.
///         assert_eq!(progress.pruned(), (progress.target() * 100.0).round() as i64);
///     }
///     let x = Tensor::randn([8, 10], (Kind::Float, Device::Cpu));
///     let loss = model.forward(&x)?.square().mean(Kind::Float);
///     opt.backward_step(&loss);
/// }
/// assert_eq!(pruner.last_progress().unwrap().sparsity(), 0.8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// TensorFlow equivalent: `tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule)`
/// with the `UpdatePruningStep` callback (which calls the schedule once per training step).
#[derive(Debug)]
pub struct GradualPruner {
    schedule: Box<dyn PruningSchedule>,
    names: Vec<String>,
    scope: PruningScope,
    last: Option<PruneProgress>,
}

impl GradualPruner {
    /// A pruner for the `VarStore` parameters `names` (e.g. `"fc1.weight"`), in the
    /// [`PruningScope::Local`] scope. The names are checked against the model at each step.
    ///
    /// # Errors
    /// [`PruneError::EmptyParameterList`] when `names` is empty,
    /// [`PruneError::DuplicateParameter`] when a name is repeated.
    ///
    /// ```
    /// use tch_prune::{ConstantSparsity, GradualPruner, PruneError};
    ///
    /// let schedule = ConstantSparsity::new(0.5, 0, -1, 100)?;
    /// let names = vec!["fc1.weight".to_string(), "fc2.weight".to_string()];
    /// assert!(GradualPruner::new(schedule, &names).is_ok());
    /// let err = GradualPruner::new(schedule, ["a", "a"]).unwrap_err();
    /// assert!(matches!(err, PruneError::DuplicateParameter { .. }));
    /// # Ok::<(), PruneError>(())
    /// ```
    pub fn new<I>(schedule: impl PruningSchedule + 'static, names: I) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let names: Vec<String> = names.into_iter().map(|n| n.as_ref().to_string()).collect();
        if names.is_empty() {
            return Err(PruneError::EmptyParameterList);
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(PruneError::DuplicateParameter { name: name.clone() });
            }
        }
        Ok(Self { schedule: Box::new(schedule), names, scope: PruningScope::Local, last: None })
    }

    /// Sets whether each parameter reaches the target by itself or all together.
    ///
    /// ```
    /// use tch_prune::{ConstantSparsity, GradualPruner, PruningScope};
    ///
    /// let pruner = GradualPruner::new(ConstantSparsity::new(0.5, 0, -1, 100)?, ["a", "b"])?
    ///     .with_scope(PruningScope::Global);
    /// assert_eq!(pruner.scope(), PruningScope::Global);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn with_scope(mut self, scope: PruningScope) -> Self {
        self.scope = scope;
        self
    }

    /// The schedule.
    pub fn schedule(&self) -> &dyn PruningSchedule {
        &*self.schedule
    }

    /// The parameters pruned, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Local or global.
    pub fn scope(&self) -> PruningScope {
        self.scope
    }

    /// What the last pruning step did (`None` before the first).
    pub fn last_progress(&self) -> Option<&PruneProgress> {
        self.last.as_ref()
    }

    /// Call once per training step: when the schedule prunes at `step`, prunes the parameters
    /// to its target and returns what was reached; otherwise does nothing and returns `None`.
    ///
    /// # Errors
    /// [`PruneError::InvalidSchedule`] when the schedule's target is outside `[0, 1]` (a
    /// custom schedule), the errors of [`Pruner::l1_unstructured`] (local) or
    /// [`Pruner::global_unstructured`] (global) for the parameters, e.g.
    /// [`PruneError::UnknownParameter`]. Nothing changes on error, for any of the parameters.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{FromFn, GradualPruner, PrunedModel};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut model = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 8, 5, Default::default()), &vs, "fc")?;
    /// let mut pruner = GradualPruner::new(FromFn::new(|t| (t == 3).then_some(0.25)), ["fc.weight"])?;
    /// assert!(pruner.step(&mut model, 2)?.is_none());
    /// let progress = pruner.step(&mut model, 3)?.unwrap();
    /// assert_eq!((progress.pruned(), progress.numel()), (10, 40));
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn step<P: Pruner>(&mut self, model: &mut P, step: i64) -> Result<Option<PruneProgress>> {
        let Some(target) = self.schedule.prune_at(step) else {
            return Ok(None);
        };
        validate_fraction("target_sparsity", target)?;
        let before = measure(model, &self.names)?;
        match self.scope {
            PruningScope::Local => {
                // Every count is checked before any parameter is pruned; a failure after that
                // (a libtorch error) undoes the parameters pruned before it.
                let mut counts = Vec::with_capacity(before.len());
                for p in &before {
                    let count = Amount::Fraction(target).count_for(p.numel())? - p.pruned();
                    counts.push((p.name(), L1Unstructured::new(count.max(0))?, count > 0));
                }
                let point = model.begin_undo();
                for (name, method, prunes) in counts {
                    if !prunes {
                        continue;
                    }
                    if let Err(e) = model.apply(name, method, None) {
                        model.undo(point);
                        return Err(e);
                    }
                }
                model.end_undo(point);
            }
            PruningScope::Global => {
                let numel = before.iter().map(ParameterSparsity::numel).sum();
                let pruned: i64 = before.iter().map(ParameterSparsity::pruned).sum();
                let count = Amount::Fraction(target).count_for(numel)? - pruned;
                if count > 0 {
                    let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
                    model.global_unstructured(&names, L1Unstructured::new(count)?, &[])?;
                }
            }
        }
        let progress = PruneProgress::new(step, target, measure(model, &self.names)?);
        self.last = Some(progress.clone());
        Ok(Some(progress))
    }
}

/// The zeros of each parameter's mask (0 when not pruned) and its number of entries.
fn measure<P: Pruner>(model: &P, names: &[String]) -> Result<Vec<ParameterSparsity>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let (pruned, numel) = match model.mask(name) {
            Some(mask) => (mask.f_eq(0)?.f_sum(Kind::Int64)?.f_int64_value(&[])?, mask.numel()),
            None => (0, model.value(name)?.numel()),
        };
        out.push(ParameterSparsity::new(name.as_str(), pruned, numel as i64));
    }
    Ok(out)
}
