//! [`MovementConfig`]: what a [`MovementPruner`](super::MovementPruner) is built from.

use serde::{Deserialize, Serialize};

use super::binarizer::Binarizer;
use super::scores::{Granularity, ScoreInit};

/// The settings of movement pruning: the mask variant, how scores start, their granularity,
/// their `VarStore` variable group, and the seed of the L0 noise.
///
/// Defaults follow the reference's README commands: scores constant 0 (2.197 for
/// [`Binarizer::L0`]), per weight, in group 1 (weights are in group 0), seed 0.
///
/// ```
/// use tch_prune::movement::{Binarizer, Granularity, MovementConfig, ScoreInit};
///
/// let config = MovementConfig::new(Binarizer::TopK)
///     .with_init(ScoreInit::Uniform(0.01))
///     .with_granularity(Granularity::Row)
///     .with_score_group(2)
///     .with_seed(7);
/// assert_eq!(config.score_group(), 2);
/// assert_eq!(MovementConfig::new(Binarizer::L0).init(), ScoreInit::Constant(2.197));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MovementConfig {
    binarizer: Binarizer,
    init: ScoreInit,
    granularity: Granularity,
    score_group: usize,
    seed: u64,
}

impl MovementConfig {
    /// The defaults for `binarizer`.
    pub fn new(binarizer: Binarizer) -> Self {
        let init = match binarizer {
            Binarizer::L0 => ScoreInit::Constant(2.197),
            _ => ScoreInit::Constant(0.0),
        };
        Self { binarizer, init, granularity: Granularity::Weight, score_group: 1, seed: 0 }
    }

    /// Sets how scores start (`--mask_init`, `--mask_scale`).
    pub fn with_init(mut self, init: ScoreInit) -> Self {
        self.init = init;
        self
    }

    /// Sets the scores' granularity (per weight by default).
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Sets the `VarStore` group of the scores, so that an optimizer gives them their own
    /// learning rate (`set_lr_group`) and no weight decay (`set_weight_decay_group`).
    pub fn with_score_group(mut self, group: usize) -> Self {
        self.score_group = group;
        self
    }

    /// Sets the seed of the L0 training noise.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The mask variant.
    pub fn binarizer(&self) -> Binarizer {
        self.binarizer
    }

    /// How scores start.
    pub fn init(&self) -> ScoreInit {
        self.init
    }

    /// The scores' granularity.
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// The scores' variable group.
    pub fn score_group(&self) -> usize {
        self.score_group
    }

    /// The seed of the L0 noise.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}
