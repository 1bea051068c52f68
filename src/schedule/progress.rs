//! [`PruneProgress`] and [`ParameterSparsity`]: what a [`GradualPruner`](super::GradualPruner)
//! step achieved.

/// How much of one parameter is pruned: the zeros of its mask out of its entries.
///
/// ```
/// use tch_prune::ParameterSparsity;
///
/// let p = ParameterSparsity::new("fc.weight", 30, 40);
/// assert_eq!((p.name(), p.pruned(), p.numel()), ("fc.weight", 30, 40));
/// assert_eq!(p.sparsity(), 0.75);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSparsity {
    name: String,
    pruned: i64,
    numel: i64,
}

impl ParameterSparsity {
    /// `pruned` of the `numel` entries of parameter `name` are pruned.
    pub fn new(name: impl Into<String>, pruned: i64, numel: i64) -> Self {
        Self { name: name.into(), pruned, numel }
    }

    /// The parameter's `VarStore` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entries pruned (zeros of the mask; 0 when the parameter is not pruned).
    pub fn pruned(&self) -> i64 {
        self.pruned
    }

    /// The parameter's number of entries.
    pub fn numel(&self) -> i64 {
        self.numel
    }

    /// `pruned / numel` (0 for an empty parameter).
    pub fn sparsity(&self) -> f64 {
        ratio(self.pruned, self.numel)
    }
}

/// What one pruning step of a [`GradualPruner`](super::GradualPruner) did: the step, the
/// schedule's target and the sparsity reached by each parameter afterwards.
///
/// ```
/// use tch_prune::{ParameterSparsity, PruneProgress};
///
/// let progress = PruneProgress::new(
///     300,
///     0.5,
///     vec![ParameterSparsity::new("a", 10, 10), ParameterSparsity::new("b", 0, 10)],
/// );
/// assert_eq!(progress.step(), 300);
/// assert_eq!(progress.target(), 0.5);
/// assert_eq!(progress.sparsity(), 0.5); // overall: 10 of 20 entries
/// assert_eq!(progress.parameters()[1].sparsity(), 0.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PruneProgress {
    step: i64,
    target: f64,
    parameters: Vec<ParameterSparsity>,
}

impl PruneProgress {
    /// The report of a pruning step at `step` with target `target`.
    pub fn new(step: i64, target: f64, parameters: Vec<ParameterSparsity>) -> Self {
        Self { step, target, parameters }
    }

    /// The training step that pruned.
    pub fn step(&self) -> i64 {
        self.step
    }

    /// The schedule's target sparsity at that step.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// Each parameter's sparsity after the step, in the pruner's order.
    pub fn parameters(&self) -> &[ParameterSparsity] {
        &self.parameters
    }

    /// The entries pruned over all the parameters.
    pub fn pruned(&self) -> i64 {
        self.parameters.iter().map(|p| p.pruned).sum()
    }

    /// The entries of all the parameters.
    pub fn numel(&self) -> i64 {
        self.parameters.iter().map(|p| p.numel).sum()
    }

    /// The sparsity over all the parameters together: [`pruned`](Self::pruned) /
    /// [`numel`](Self::numel).
    pub fn sparsity(&self) -> f64 {
        ratio(self.pruned(), self.numel())
    }
}

fn ratio(pruned: i64, numel: i64) -> f64 {
    if numel == 0 {
        0.0
    } else {
        pruned as f64 / numel as f64
    }
}
