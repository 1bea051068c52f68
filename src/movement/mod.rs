//! Movement pruning (Sanh, Wolf & Rush, "Movement Pruning: Adaptive Sparsity by
//! Fine-Tuning", 2020), ported from the reference implementation (transformers'
//! `examples/research_projects/movement-pruning`, emmental) onto [`PrunedModel`]'s
//! reparametrization.
//!
//! * [`MovementPruner`]: scores in the `VarStore`, the straight-through mask in the model's
//!   forward, the regulariser, the final fold.
//! * [`Binarizer`]: the mask variants (magnitude, Top-K local and global, soft threshold,
//!   L0), with their tie rule.
//! * [`ScoreInit`] and [`Granularity`]: how scores start and what they score (weights,
//!   blocks, rows, columns).
//! * [`ThresholdSchedule`]: the reference's cubic schedule with its warm-up boundaries.
//! * [`MovementConfig`]: the settings.
//!
//! Top-K selections run on the crate's linear-time selection kernels (global selection reads
//! every score tensor in place, never concatenating them), instead of the reference's sort of
//! every score matrix on every forward.
//!
//! [`PrunedModel`]: crate::PrunedModel

mod binarizer;
mod config;
mod pruner;
mod regularizer;
mod schedule;
mod scores;
mod state;

pub use binarizer::Binarizer;
pub use config::MovementConfig;
pub use pruner::MovementPruner;
pub use schedule::ThresholdSchedule;
pub use scores::{Granularity, ScoreInit};

/// The `i`-th value of the L0 noise stream of `seed` (uniform in `[0, 1)`, before the
/// reference's clamp to `[1e-4, 1 − 1e-4]`): splitmix64 at `seed + (i + 1)·0x9E3779B97F4A7C15`,
/// top 24 bits. Draws are taken in order, parameter by parameter, one per score, on every
/// training forward; exposed so that a reference can reproduce the noise.
///
/// ```
/// let u = tch_prune::movement::noise_value(0, 0);
/// assert!((0.0..1.0).contains(&u));
/// assert_eq!(u, tch_prune::movement::noise_value(0, 0));
/// ```
pub fn noise_value(seed: u64, i: u64) -> f32 {
    state::uniform(seed, i)
}
