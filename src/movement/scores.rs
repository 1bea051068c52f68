//! Score tensors: their initialisation (emmental's `mask_init` / `mask_scale`), their shape
//! ([`Granularity`]: per weight, or per block, row or column as in nn_pruning), and how a mask
//! on the scores' shape is expanded to the weight's.

use serde::{Deserialize, Serialize};
use tch::nn::{Init, VarStore};
use tch::Tensor;

use crate::error::{PruneError, Result};

/// How scores start (the reference's `--mask_init`, with `--mask_scale`).
///
/// ```
/// use tch_prune::movement::ScoreInit;
///
/// // The README's commands: constant 0 for the movement variants, 2.197 (σ ≈ 0.9) for L0.
/// let movement = ScoreInit::Constant(0.0);
/// let l0 = ScoreInit::Constant(2.197);
/// assert_ne!(movement, l0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ScoreInit {
    /// Every score equal to the value (`mask_init constant`).
    Constant(f64),
    /// Uniform in `[-scale, scale]` (`mask_init uniform`), from tch's generator.
    Uniform(f64),
    /// `kaiming_uniform_(scores, a=sqrt(5))` (`mask_init kaiming`): uniform in
    /// `±1/sqrt(fan_in)`, with `fan_in` the product of the score shape after its first side.
    Kaiming,
}

impl ScoreInit {
    fn init(self, dims: &[i64]) -> Init {
        match self {
            ScoreInit::Constant(c) => Init::Const(c),
            ScoreInit::Uniform(scale) => Init::Uniform { lo: -scale, up: scale },
            ScoreInit::Kaiming => {
                let fan_in: i64 = dims.iter().skip(1).product::<i64>().max(1);
                // gain sqrt(2 / (1 + a²)) with a = sqrt(5), times sqrt(3 / fan_in).
                let bound = 1.0 / (fan_in as f64).sqrt();
                Init::Uniform { lo: -bound, up: bound }
            }
        }
    }
}

/// The shape of the scores of a 2-D weight `[rows, cols]`: one score per weight, or one per
/// block (nn_pruning's block movement pruning), expanded to the weight with
/// `repeat_interleave`. Row scores give masks that remove whole output units (attention
/// heads, with blocks of `head_dim` rows), which the shrinking work can then drop.
///
/// ```
/// use tch_prune::movement::Granularity;
///
/// assert_eq!(Granularity::Block(32, 32).score_shape("w", &[768, 3072])?, vec![24, 96]);
/// assert_eq!(Granularity::Row.score_shape("w", &[768, 3072])?, vec![768, 1]);
/// assert_eq!(Granularity::Weight.score_shape("w", &[8, 4, 3, 3])?, vec![8, 4, 3, 3]);
/// assert!(Granularity::Block(5, 5).score_shape("w", &[768, 3072]).is_err());
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Granularity {
    /// One score per weight (the paper), any shape.
    #[default]
    Weight,
    /// One score per `(rows, cols)` block of a 2-D weight.
    Block(i64, i64),
    /// One score per row (output unit) of a 2-D weight.
    Row,
    /// One score per column (input feature) of a 2-D weight.
    Column,
}

impl Granularity {
    /// The block `(rows, cols)` for a weight of `shape`, or `None` for per-weight scores.
    fn block(self, shape: &[i64]) -> Option<(i64, i64)> {
        let (rows, cols) = match shape {
            [r, c] => (*r, *c),
            _ => (0, 0),
        };
        match self {
            Granularity::Weight => None,
            Granularity::Block(r, c) => Some((r, c)),
            Granularity::Row => Some((1, cols)),
            Granularity::Column => Some((rows, 1)),
        }
    }

    /// The scores' shape for a weight `name` of `shape`.
    ///
    /// # Errors
    /// [`PruneError::BlockMismatch`] when the weight is not 2-D or the block does not divide
    /// its sides (or is not positive).
    pub fn score_shape(self, name: &str, shape: &[i64]) -> Result<Vec<i64>> {
        let Some((br, bc)) = self.block(shape) else {
            return Ok(shape.to_vec());
        };
        let fits = matches!(shape, [r, c] if br > 0 && bc > 0 && r % br == 0 && c % bc == 0);
        if !fits {
            return Err(PruneError::BlockMismatch {
                name: name.into(),
                shape: shape.to_vec(),
                block: (br, bc),
            });
        }
        Ok(vec![shape[0] / br, shape[1] / bc])
    }

    /// Expands a score-shaped tensor to the weight's shape (differentiably).
    pub(crate) fn expand(self, t: &Tensor, shape: &[i64]) -> Result<Tensor> {
        match self.block(shape) {
            None => Ok(t.shallow_clone()),
            Some((br, bc)) => Ok(t
                .f_repeat_interleave_self_int(br, Some(0), None)?
                .f_repeat_interleave_self_int(bc, Some(1), None)?),
        }
    }
}

/// The `VarStore` name of the scores of `name`.
pub(crate) fn scores_name(name: &str) -> String {
    format!("{name}_scores")
}

/// Creates the scores of `name` in `vs`, in variable group `group`, shaped `dims`.
pub(crate) fn register(
    vs: &VarStore,
    name: &str,
    dims: &[i64],
    init: ScoreInit,
    group: usize,
) -> Result<Tensor> {
    let full = scores_name(name);
    let (parent, leaf) = full.rsplit_once('.').unwrap_or(("", full.as_str()));
    let mut path = vs.root().set_group(group);
    for part in parent.split('.').filter(|p| !p.is_empty()) {
        path = path.sub(part);
    }
    Ok(path.f_var(leaf, dims, init.init(dims))?)
}
