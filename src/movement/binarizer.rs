//! The mask variants of movement pruning (emmental's `binarizer.py` and `MaskedLinear`): how a
//! detached mask is computed from scores (or weights) and a threshold.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{PruneError, Result};
use crate::kernels::select::{
    keep_all_but_smallest_into, prune_mask, zero_smallest_signed, MaskDefault, Order,
};
use crate::tie_break::TieBreak;

/// How the mask of a movement-pruned parameter is computed, named after the reference's
/// `--pruning_method` values.
///
/// | variant | reference | mask | threshold `t` |
/// |---|---|---|---|
/// | [`Magnitude`](Self::Magnitude) | `magnitude` | keep the `int(t·numel)` largest `\|W\|` | kept fraction |
/// | [`TopK`](Self::TopK) | `topK` | keep the `int(t·numel)` largest scores | kept fraction |
/// | [`GlobalTopK`](Self::GlobalTopK) | `topK --global_topk` | keep the `int(n·t)+1` largest of all `n` scores | kept fraction |
/// | [`SigmoidThreshold`](Self::SigmoidThreshold) | `sigmoied_threshold` | `σ(S) > t`, at least `int(0.005·numel)+1` kept | `τ` in sigmoid space |
/// | [`L0`](Self::L0) | `l0` | hard-concrete gate (noisy in training) | unused |
///
/// **Ties** (equal scores straddling the cut): the entry of lower index is kept (row-major,
/// then in parameter order for [`GlobalTopK`](Self::GlobalTopK)); the reference breaks them by
/// an unstable `sort`, so parity holds on tie-free scores.
///
/// ```
/// use tch_prune::movement::Binarizer;
///
/// assert!(Binarizer::TopK.has_scores());
/// assert!(!Binarizer::Magnitude.has_scores());
/// assert_eq!(Binarizer::SigmoidThreshold.reference_name(), "sigmoied_threshold");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Binarizer {
    /// Magnitude pruning recomputed on every forward (`MagnitudeBinarizer`); no scores.
    Magnitude,
    /// Hard movement pruning, per parameter (`TopKBinarizer`).
    TopK,
    /// Hard movement pruning over all parameters at once (`--global_topk`).
    GlobalTopK,
    /// Soft movement pruning (`ThresholdBinarizer` with `sigmoid=True`).
    SigmoidThreshold,
    /// Hard-concrete L0 gates (Louizos et al.; `l = -0.1`, `r = 1.1`, `β = 2/3`).
    L0,
}

/// The hard-concrete stretch limits and temperature of the reference's `l0` method.
pub(crate) const L0_LEFT: f64 = -0.1;
pub(crate) const L0_RIGHT: f64 = 1.1;
pub(crate) const L0_BETA: f64 = 2.0 / 3.0;

impl Binarizer {
    /// Whether the variant learns scores (all but [`Magnitude`](Self::Magnitude)).
    ///
    /// ```
    /// assert!(tch_prune::movement::Binarizer::L0.has_scores());
    /// ```
    pub fn has_scores(self) -> bool {
        self != Binarizer::Magnitude
    }

    /// The reference's `--pruning_method` string (`"topK"` for both Top-K variants).
    ///
    /// ```
    /// assert_eq!(tch_prune::movement::Binarizer::GlobalTopK.reference_name(), "topK");
    /// ```
    pub fn reference_name(self) -> &'static str {
        match self {
            Binarizer::Magnitude => "magnitude",
            Binarizer::TopK | Binarizer::GlobalTopK => "topK",
            Binarizer::SigmoidThreshold => "sigmoied_threshold",
            Binarizer::L0 => "l0",
        }
    }

    /// Checks a threshold for this variant: a fraction in `[0, 1]` (kept fraction, or `τ`),
    /// anything finite for L0 (unused).
    pub(crate) fn check_threshold(self, t: f64) -> Result<()> {
        let ok = match self {
            Binarizer::L0 => t.is_finite(),
            _ => (0.0..=1.0).contains(&t),
        };
        if ok {
            Ok(())
        } else {
            Err(PruneError::InvalidThreshold {
                method: self.reference_name(),
                value: t,
                expected: if self == Binarizer::L0 { "a finite value" } else { "[0, 1]" },
            })
        }
    }
}

/// Masks (kind of each part) keeping everything but the `prune` smallest values across
/// `parts` (signed order), ties kept by lower index.
pub(crate) fn keep_all_but_smallest(parts: &[&Tensor], prune: i64) -> Result<Vec<Tensor>> {
    let total: i64 = parts.iter().map(|t| t.numel() as i64).sum();
    let prune = prune.clamp(0, total);
    let ones = || parts.iter().map(|t| Ok(t.f_ones_like()?)).collect::<Result<Vec<_>>>();
    if prune == 0 {
        return ones();
    }
    let to_kind = |masks: Vec<Tensor>| -> Result<Vec<Tensor>> {
        parts.iter().zip(masks).map(|(t, m)| Ok(m.f_to_kind(t.kind())?)).collect()
    };
    if let Some(masks) = zero_smallest_signed(parts, prune as u64)? {
        return to_kind(masks);
    }
    // Small, or ties straddling the cut: the selection that decides ties by index itself.
    let mut outs = parts
        .iter()
        .map(|t| Ok(Tensor::f_empty(t.size(), (Kind::Float, Device::Cpu))?))
        .collect::<Result<Vec<_>>>()?;
    if keep_all_but_smallest_into(parts, prune as u64, &mut outs)? {
        return to_kind(outs);
    }
    // Off-CPU or not `f32`: a stable descending sort keeps the lower index among equal values.
    let flat: Vec<Tensor> =
        parts.iter().map(|t| t.f_reshape([-1])).collect::<std::result::Result<_, _>>()?;
    let all = Tensor::f_cat(&flat, 0)?;
    let (_, order) = all.f_sort_stable(true, 0, true)?;
    let dropped = order.f_narrow(0, total - prune, prune)?;
    let mask = all.f_ones_like()?.f_index_fill(0, &dropped, 0.0)?;
    let mut out = Vec::with_capacity(parts.len());
    let mut start = 0;
    for t in parts {
        let n = t.numel() as i64;
        out.push(mask.f_narrow(0, start, n)?.f_reshape(t.size())?);
        start += n;
    }
    Ok(out)
}

/// `int(t·numel)`, Python's truncation of the `f64` product.
fn kept(t: f64, numel: usize) -> i64 {
    (t * numel as f64) as i64
}

/// How many scores `TopKBinarizer` prunes: all but `int(t·numel)`.
fn top_k_pruned(t: f64, numel: usize) -> i64 {
    numel as i64 - kept(t, numel)
}

/// `TopKBinarizer`: keeps the `int(t·numel)` largest scores.
pub(crate) fn top_k(scores: &Tensor, t: f64) -> Result<Tensor> {
    Ok(keep_all_but_smallest(&[scores], top_k_pruned(t, scores.numel()))?.remove(0))
}

/// How many of `n` scores `--global_topk` prunes: `max(n - (int(n·t)+1), 1)`, none at `t = 1`.
fn global_pruned(t: f64, n: usize) -> i64 {
    if t >= 1.0 {
        0
    } else {
        (n as i64 - (kept(t, n) + 1)).max(1)
    }
}

/// `--global_topk`: keeps `S > kthvalue(cat(S), max(n - (int(n·t)+1), 1))`, i.e. all but the
/// `max(n - (int(n·t)+1), 1)` smallest of the `n` scores; everything when `t = 1` (the
/// reference's threshold of −100).
pub(crate) fn global_top_k(scores: &[&Tensor], t: f64) -> Result<Vec<Tensor>> {
    let n: usize = scores.iter().map(|s| s.numel()).sum();
    keep_all_but_smallest(scores, global_pruned(t, n))
}

/// [`top_k`] (`global = false`, each tensor on its own) or [`global_top_k`] written into
/// `outs` (`f32` masks shaped like the scores); `Ok(false)` when the in-place selection does
/// not apply (see [`keep_all_but_smallest_into`]), possibly after writing some of the
/// local masks: the caller then computes them all again.
pub(crate) fn top_k_into(
    scores: &[&Tensor],
    t: f64,
    global: bool,
    outs: &mut [Tensor],
) -> Result<bool> {
    if global {
        let n: usize = scores.iter().map(|s| s.numel()).sum();
        let prune = global_pruned(t, n).clamp(0, n as i64) as u64;
        return keep_all_but_smallest_into(scores, prune, outs);
    }
    for (s, out) in scores.iter().zip(outs.iter_mut()) {
        let prune = top_k_pruned(t, s.numel()).max(0) as u64;
        if !keep_all_but_smallest_into(&[s], prune, std::slice::from_mut(out))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `ThresholdBinarizer(sigmoid=True)`: `σ(S) > τ`, or, when that keeps fewer than
/// `nb_min = int(0.005·numel)+1`, all but the `max(numel − nb_min, 1)` smallest scores.
pub(crate) fn sigmoid_threshold(scores: &Tensor, tau: f64) -> Result<Tensor> {
    let n = scores.numel();
    let mask = scores.f_sigmoid()?.f_gt(tau)?.f_to_kind(scores.kind())?;
    let nb_min = (0.005 * n as f64) as i64 + 1;
    if mask.f_sum(Kind::Float)?.f_double_value(&[])? < nb_min as f64 {
        return Ok(keep_all_but_smallest(&[scores], (n as i64 - nb_min).max(1))?.remove(0));
    }
    Ok(mask)
}

/// `MagnitudeBinarizer`: keeps the `int(t·numel)` largest `|W|`.
pub(crate) fn magnitude(weight: &Tensor, t: f64) -> Result<Tensor> {
    let n = weight.numel();
    let prune = n as i64 - kept(t, n);
    if prune <= 0 {
        return Ok(weight.f_ones_like()?);
    }
    let default = MaskDefault::Ones(weight.kind(), weight.device());
    if let Some(mask) =
        prune_mask(weight, prune, Order::SmallestMagnitude, default, TieBreak::PyTorch)?
    {
        return Ok(mask);
    }
    Ok(keep_all_but_smallest(&[&weight.f_abs()?], prune)?.remove(0))
}

/// The L0 gate `clamp(s·(r−l)+l, 0, 1)`, with `s = σ((log u − log(1−u) + S)/β)` for noise
/// `u` (training) or `s = σ(S)` (evaluation), op for op as the reference.
pub(crate) fn l0_gate(scores: &Tensor, noise: Option<&Tensor>) -> Result<Tensor> {
    let s = match noise {
        Some(u) => {
            let logit = u.f_log()?.f_sub(&u.f_neg()?.f_add_scalar(1.0)?.f_log()?)?;
            logit.f_add(scores)?.f_div_scalar(L0_BETA)?.f_sigmoid()?
        }
        None => scores.f_sigmoid()?,
    };
    Ok(s.f_mul_scalar(L0_RIGHT - L0_LEFT)?.f_add_scalar(L0_LEFT)?.f_clamp(0.0, 1.0)?)
}
