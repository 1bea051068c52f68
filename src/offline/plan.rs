//! What to prune: [`Selection`] (tensors by name pattern and rank) and [`OfflineMethod`], and
//! their resolution against a [`Checkpoint`] into targets, checked before anything is read.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::dtype::Float;
use super::error::{OfflineError, OfflineResult};
use crate::glob::glob_match;
use crate::Amount;

/// Which tensors to prune: names matching an include pattern and no exclude pattern, with a
/// rank in `[min_rank, max_rank]`, of a float dtype (f16, bf16, f32, f64; other dtypes always
/// pass through untouched).
///
/// Patterns use `*` (any run of characters, dots included) and `?` (one character). Every
/// pattern must match at least one tensor name, or the run fails with
/// [`OfflineError::PatternMatchesNothing`] (a typo must not silently prune nothing).
///
/// ```
/// use tch_prune::offline::Selection;
/// let sel = Selection::new().include(["*.weight"]).exclude(["*embed*"]).ranks(2, None);
/// assert_eq!(sel.min_rank(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    include: Vec<String>,
    exclude: Vec<String>,
    min_rank: usize,
    max_rank: Option<usize>,
}

impl Default for Selection {
    fn default() -> Self {
        Self::new()
    }
}

impl Selection {
    /// Every float tensor of rank 2 or more (weights; biases and norms are 1-D).
    ///
    /// ```
    /// # use tch_prune::offline::Selection;
    /// assert_eq!(Selection::new().min_rank(), 2);
    /// ```
    pub fn new() -> Self {
        Self { include: Vec::new(), exclude: Vec::new(), min_rank: 2, max_rank: None }
    }

    /// Only names matching one of `patterns` (all names when none is given).
    ///
    /// ```
    /// # use tch_prune::offline::Selection;
    /// let sel = Selection::new().include(["layers.*.mlp.*"]);
    /// ```
    pub fn include<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.include.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Never names matching one of `patterns`.
    ///
    /// ```
    /// # use tch_prune::offline::Selection;
    /// let sel = Selection::new().exclude(["lm_head.weight"]);
    /// ```
    pub fn exclude<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.exclude.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Only tensors whose rank lies in `[min, max]` (`max` unbounded when `None`).
    ///
    /// ```
    /// # use tch_prune::offline::Selection;
    /// let all = Selection::new().ranks(0, None);
    /// ```
    pub fn ranks(mut self, min: usize, max: Option<usize>) -> Self {
        self.min_rank = min;
        self.max_rank = max;
        self
    }

    /// The smallest rank selected (see the type's example).
    pub fn min_rank(&self) -> usize {
        self.min_rank
    }
}

/// How offline pruning chooses the entries to zero.
///
/// ```
/// use tch_prune::offline::{OfflineMethod, Scope};
/// let global = OfflineMethod::Magnitude { scope: Scope::Global, amount: 0.5.into() };
/// let two_four = OfflineMethod::SemiStructured { n: 2, m: 4 };
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OfflineMethod {
    /// The `amount` entries of smallest magnitude (L1), within each tensor, each output row
    /// (last dimension), or across the whole selection at once. Fractions round half to even,
    /// as [`L1Unstructured`](crate::L1Unstructured).
    Magnitude {
        /// Where the amount applies.
        scope: Scope,
        /// A count or a fraction.
        amount: Amount,
    },
    /// `amount` entries of each tensor chosen uniformly at random (a seeded hash of the
    /// tensor's name and the entry's index: reproducible, independent of chunking).
    Random {
        /// A count or a fraction of each tensor.
        amount: Amount,
        /// The seed.
        seed: u64,
    },
    /// Keep the `n` largest magnitudes of every `m` consecutive entries along the last
    /// dimension, as [`SemiStructured`](crate::SemiStructured).
    SemiStructured {
        /// Kept per group.
        n: usize,
        /// Group size.
        m: usize,
    },
    /// Wanda: score `|W| * sqrt(norm)` where `norm[j]` is the mean squared norm of input
    /// channel `j`, read from a safetensors file of f32 vectors (see [`crate::offline`] for
    /// the naming).
    Wanda {
        /// The norms file.
        norms: PathBuf,
        /// Per-row fraction or N:M.
        pattern: WandaPattern,
    },
}

/// Where a magnitude amount applies.
///
/// ```
/// use tch_prune::offline::{OfflineMethod, Scope};
/// let per_row = OfflineMethod::Magnitude { scope: Scope::Row, amount: 0.5.into() };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each tensor on its own (`l1_unstructured` on each).
    Tensor,
    /// Each output row (the slices along the last dimension) on its own.
    Row,
    /// The whole selection at once (`global_unstructured`).
    Global,
}

/// Wanda's two rules (`locuslab/wanda:lib/prune.py`).
///
/// ```
/// use tch_prune::offline::{OfflineMethod, WandaPattern};
/// let wanda = OfflineMethod::Wanda { norms: "norms.safetensors".into(), pattern: WandaPattern::Row { sparsity: 0.5 } };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WandaPattern {
    /// Prune `int(columns * sparsity)` entries of each row (truncated, as the reference).
    Row {
        /// The fraction of each row to prune, in `[0, 1]`.
        sparsity: f64,
    },
    /// Keep `n` of every `m` along the last dimension.
    SemiStructured {
        /// Kept per group.
        n: usize,
        /// Group size.
        m: usize,
    },
}

/// One tensor to prune: where it is and its dtype.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub(crate) shard: usize,
    pub(crate) tensor: usize,
    pub(crate) float: Float,
}

/// The tensors `selection` picks, in checkpoint order, checked against `method`.
pub(crate) fn resolve(
    ckpt: &Checkpoint,
    selection: &Selection,
    method: &OfflineMethod,
) -> OfflineResult<Vec<Target>> {
    for pattern in selection.include.iter().chain(&selection.exclude) {
        if !ckpt.tensors().any(|(_, t)| glob_match(pattern, &t.name)) {
            return Err(OfflineError::PatternMatchesNothing {
                checkpoint: ckpt.path().to_path_buf(),
                pattern: pattern.clone(),
            });
        }
    }
    let mut targets = Vec::new();
    for (s, shard) in ckpt.shards().iter().enumerate() {
        for (i, t) in shard.tensors.iter().enumerate() {
            let named = selection.include.is_empty()
                || selection.include.iter().any(|p| glob_match(p, &t.name));
            let excluded = selection.exclude.iter().any(|p| glob_match(p, &t.name));
            let rank = t.shape.len();
            let ranked = rank >= selection.min_rank && selection.max_rank.is_none_or(|m| rank <= m);
            let Some(float) = Float::of(t.dtype) else { continue };
            if !named || excluded || !ranked {
                continue;
            }
            let unsupported = |reason: String| OfflineError::Unsupported {
                file: shard.path.clone(),
                tensor: t.name.clone(),
                reason,
            };
            let groups = match method {
                OfflineMethod::SemiStructured { m, .. } => Some(*m),
                OfflineMethod::Wanda {
                    pattern: WandaPattern::SemiStructured { m, .. }, ..
                } => Some(*m),
                _ => None,
            };
            let rows = matches!(
                method,
                OfflineMethod::Wanda { .. } | OfflineMethod::Magnitude { scope: Scope::Row, .. }
            );
            if (groups.is_some() || rows) && rank == 0 {
                return Err(unsupported("a 0-d tensor has no rows or groups".into()));
            }
            if let Some(m) = groups {
                let last = t.shape.last().copied().unwrap_or(1);
                if m == 0 || last % m != 0 {
                    return Err(unsupported(format!(
                        "N:M groups of {m} do not divide its last dimension ({last}, shape {:?})",
                        t.shape
                    )));
                }
            }
            targets.push(Target { shard: s, tensor: i, float });
        }
    }
    if targets.is_empty() {
        let reason = format!(
            "include {:?}, exclude {:?}, rank {}..={}, float dtypes only",
            selection.include,
            selection.exclude,
            selection.min_rank,
            selection.max_rank.map_or("any".into(), |m| m.to_string())
        );
        return Err(OfflineError::EmptySelection { checkpoint: ckpt.path().to_path_buf(), reason });
    }
    check_method(method)?;
    Ok(targets)
}

/// Argument checks that need no checkpoint.
pub(crate) fn check_method(method: &OfflineMethod) -> OfflineResult<()> {
    let nm = |n: usize, m: usize| {
        if m == 0 || n > m {
            return Err(OfflineError::InvalidArgument {
                parameter: "n:m",
                reason: format!("{n}:{m} needs 1 <= m and n <= m"),
            });
        }
        Ok(())
    };
    match method {
        OfflineMethod::Magnitude { amount, .. } | OfflineMethod::Random { amount, .. } => {
            amount.validate()?;
            Ok(())
        }
        OfflineMethod::SemiStructured { n, m } => nm(*n, *m),
        OfflineMethod::Wanda { pattern: WandaPattern::SemiStructured { n, m }, .. } => nm(*n, *m),
        OfflineMethod::Wanda { pattern: WandaPattern::Row { sparsity }, .. } => {
            if !(0.0..=1.0).contains(sparsity) {
                return Err(OfflineError::InvalidArgument {
                    parameter: "sparsity",
                    reason: format!("{sparsity} is outside [0, 1]"),
                });
            }
            Ok(())
        }
    }
}
