//! The live masks of a movement-pruned model: shared between the [`MovementPruner`] (which
//! sets the threshold and the training mode) and the model's refresh (which asks each pruned
//! parameter's [`MaskSource`] for its multiplier on every forward).
//!
//! Masks are recomputed lazily: on a refresh, if the threshold, the mode or any score (any
//! weight, for magnitude) changed since the last computation, as libtorch's version counters
//! tell (every optimizer step bumps them). That is the reference's "recompute on every
//! forward" without recomputing when nothing moved (evaluation, several forwards per step).
//!
//! [`MovementPruner`]: super::MovementPruner

use std::sync::{Arc, Mutex, MutexGuard};

use tch::{Device, Kind, Tensor};

use super::binarizer::{self, Binarizer};
use super::scores::Granularity;
use crate::error::Result;
use crate::reparam::MaskSource;

/// One movement-pruned parameter.
#[derive(Debug)]
pub(crate) struct Param {
    pub(crate) name: String,
    /// The weight (`<name>_orig`).
    pub(crate) orig: Tensor,
    /// The stored mask (`<name>_mask`), kept equal to the evaluation mask.
    pub(crate) mask: Tensor,
    /// The scores (`<name>_scores`), for every variant but magnitude.
    pub(crate) scores: Option<Tensor>,
    /// The current detached mask on the scores' shape (the weight's for magnitude).
    pub(crate) binary: Option<Tensor>,
}

/// What the masks were last computed from.
#[derive(Debug, PartialEq)]
struct Stamp {
    threshold: u64,
    versions: Vec<i64>,
}

/// The state behind every parameter's [`MaskSource`].
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) binarizer: Binarizer,
    pub(crate) granularity: Granularity,
    pub(crate) threshold: f64,
    pub(crate) training: bool,
    pub(crate) params: Vec<Param>,
    stamp: Option<Stamp>,
    seed: u64,
    /// How many noise values have been drawn (L0).
    drawn: u64,
}

/// splitmix64's increment (the golden ratio in 64 bits).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `i`-th uniform draw in `[0, 1)` of the stream `seed`: the top 24 bits of splitmix64 at
/// `seed + (i + 1)·GOLDEN`, so any slice of the stream can be computed independently (the
/// fixture script does the same in numpy).
pub(crate) fn uniform(seed: u64, i: u64) -> f32 {
    let bits = mix(seed.wrapping_add(i.wrapping_add(1).wrapping_mul(GOLDEN))) >> 40;
    bits as f32 * (1.0 / (1u32 << 24) as f32)
}

impl State {
    pub(crate) fn new(
        binarizer: Binarizer,
        granularity: Granularity,
        params: Vec<Param>,
        seed: u64,
    ) -> Self {
        let threshold = match binarizer {
            Binarizer::SigmoidThreshold => 0.0,
            _ => 1.0,
        };
        Self {
            binarizer,
            granularity,
            threshold,
            training: true,
            params,
            stamp: None,
            seed,
            drawn: 0,
        }
    }

    fn stamp(&self) -> Result<Stamp> {
        let versions = self
            .params
            .iter()
            .map(|p| Ok(p.scores.as_ref().unwrap_or(&p.orig).f_internal_version()?))
            .collect::<Result<Vec<i64>>>()?;
        Ok(Stamp { threshold: self.threshold.to_bits(), versions })
    }

    /// Recomputes every mask if the threshold or a score (weight) changed since last time,
    /// and writes the evaluation masks into the stored `<name>_mask` tensors.
    pub(crate) fn sync(&mut self) -> Result<()> {
        let stamp = self.stamp()?;
        if self.stamp.as_ref() == Some(&stamp) {
            return Ok(());
        }
        if tch::no_grad(|| self.compute_in_place())? {
            for p in &mut self.params {
                p.binary = Some(p.mask.shallow_clone());
            }
            self.stamp = Some(stamp);
            return Ok(());
        }
        let masks = tch::no_grad(|| self.compute())?;
        for (p, m) in self.params.iter_mut().zip(masks) {
            let full = self.granularity.expand(&m, &p.orig.size())?;
            tch::no_grad(|| p.mask.f_copy_(&full))?;
            p.binary = Some(m);
        }
        self.stamp = Some(stamp);
        Ok(())
    }

    /// Top-K with per-weight scores: the masks selected straight into the stored
    /// `<name>_mask` tensors (no new masks, no copy), which then also serve as the detached
    /// masks of the forward; `false` when that does not apply (another variant or granularity,
    /// masks or scores that are not contiguous CPU `f32`).
    fn compute_in_place(&self) -> Result<bool> {
        let global = match self.binarizer {
            Binarizer::TopK => false,
            Binarizer::GlobalTopK => true,
            _ => return Ok(false),
        };
        if self.granularity != Granularity::Weight {
            return Ok(false);
        }
        let scores: Vec<Tensor> =
            self.params.iter().filter_map(|p| p.scores.as_ref().map(Tensor::detach)).collect();
        // The stored masks are written through `&mut` slices: nothing else reads them while the
        // state is locked here (the model reads them in its refresh, after this sync, on this
        // thread), as with the `copy_` into them that this replaces.
        let mut masks: Vec<Tensor> = self.params.iter().map(|p| p.mask.shallow_clone()).collect();
        if scores.len() != masks.len() {
            return Ok(false);
        }
        let done = binarizer::top_k_into(
            &scores.iter().collect::<Vec<_>>(),
            self.threshold,
            global,
            &mut masks,
        )?;
        if done {
            masks.iter().try_for_each(bump_version)?;
        }
        Ok(done)
    }

    /// The detached evaluation masks, computed all at once (the global variant needs them
    /// together).
    fn compute(&self) -> Result<Vec<Tensor>> {
        let t = self.threshold;
        let scores = || -> Vec<Tensor> {
            self.params.iter().filter_map(|p| p.scores.as_ref().map(Tensor::detach)).collect()
        };
        match self.binarizer {
            Binarizer::Magnitude => {
                self.params.iter().map(|p| binarizer::magnitude(&p.orig.detach(), t)).collect()
            }
            Binarizer::TopK => scores().iter().map(|s| binarizer::top_k(s, t)).collect(),
            Binarizer::GlobalTopK => {
                let s = scores();
                binarizer::global_top_k(&s.iter().collect::<Vec<_>>(), t)
            }
            Binarizer::SigmoidThreshold => {
                scores().iter().map(|s| binarizer::sigmoid_threshold(s, t)).collect()
            }
            Binarizer::L0 => scores().iter().map(|s| binarizer::l0_gate(s, None)).collect(),
        }
    }

    /// Draws L0 training noise shaped like `like`, clamped as the reference does.
    fn noise(&mut self, like: &Tensor) -> Result<Tensor> {
        let n = like.numel() as u64;
        let draws: Vec<f32> = (0..n).map(|i| uniform(self.seed, self.drawn + i)).collect();
        self.drawn += n;
        let u = Tensor::f_from_slice(&draws)?
            .f_reshape(like.size())?
            .f_to(like.device())?
            .f_to_kind(like.kind())?;
        Ok(u.f_clamp(0.0001, 0.9999)?)
    }

    /// The forward multiplier of parameter `index`: the detached mask plus a straight-through
    /// term (`m + (s − s.detach())`, exactly `m` in value), or the L0 gate.
    fn multiplier(&mut self, index: usize, orig: &Tensor) -> Result<Tensor> {
        let shape = orig.size();
        let p = &self.params[index];
        let (binary, scores) = (p.binary.as_ref(), p.scores.as_ref().map(Tensor::shallow_clone));
        let ste = |m: Option<&Tensor>, s: &Tensor| -> Result<Tensor> {
            let m = match m {
                Some(m) => m.shallow_clone(),
                None => Tensor::f_ones(s.size(), (s.kind(), s.device()))?,
            };
            Ok(m.f_add(&s.f_sub(&s.f_detach()?)?)?)
        };
        let small = match (self.binarizer, scores) {
            (Binarizer::L0, Some(s)) => {
                let noise = if self.training { Some(self.noise(&s)?) } else { None };
                binarizer::l0_gate(&s, noise.as_ref())?
            }
            (_, Some(s)) => ste(binary, &s)?,
            (_, None) => ste(binary, orig)?,
        };
        self.granularity.expand(&small, &shape)
    }
}

/// A shared handle on the state, and the parameter it answers for.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) index: usize,
}

/// Locks the state; a poisoned lock only means a panic elsewhere while it was held, and the
/// state is recomputed from the tensors anyway.
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MaskSource for Source {
    fn sync(&self) -> Result<()> {
        lock(&self.state).sync()
    }

    fn live(&self, grad: bool) -> bool {
        let state = lock(&self.state);
        grad || (state.binarizer == Binarizer::L0 && state.training)
    }

    fn multiplier(&self, orig: &Tensor) -> Result<Tensor> {
        lock(&self.state).multiplier(self.index, orig)
    }
}

/// Marks `t` as written (libtorch's version counter, which the model's cache of `orig * mask`
/// and autograd check) after a write through its memory: an in-place fill of an empty view
/// of it, which touches no entry but counts as an in-place operation.
fn bump_version(t: &Tensor) -> Result<()> {
    let _ = t.f_reshape([-1])?.f_narrow(0, 0, 0)?.f_fill_(0.0)?;
    Ok(())
}

/// A scalar zero of `f32` on `device` (the regulariser of the variants that have none).
pub(crate) fn zero(device: Device) -> Result<Tensor> {
    Ok(Tensor::f_zeros([], (Kind::Float, device))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_version_counts_as_a_write_and_changes_nothing() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
        let before = t.internal_version();
        tch::no_grad(|| bump_version(&t)).unwrap();
        assert!(t.internal_version() > before);
        assert_eq!(t, Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]));
    }
}
