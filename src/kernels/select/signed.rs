//! Selection by signed value, for movement pruning's Top-K of learned scores: the `k` smallest
//! scores across one or more tensors, read in place and never concatenated, in linear time.

use tch::{Device, Kind, Tensor};

use super::{select_into, Keep, Outcome, Part, FAST_PATH_MIN_NUMEL};
use crate::error::Result;
use crate::kernels::{with_slices, with_slices_mut, SignedF32};
use crate::tie_break::TieBreak;

/// The masks (`f32`, each shaped like its part) that zero the `k` smallest values across
/// `parts` and keep the rest, or `None` when the kernels do not apply (a part that is not a
/// CPU `f32` tensor, fewer than [`FAST_PATH_MIN_NUMEL`] entries in all) or tied values
/// straddle the threshold: the caller then decides the ties itself.
pub(crate) fn zero_smallest_signed(parts: &[&Tensor], k: u64) -> Result<Option<Vec<Tensor>>> {
    let total: usize = parts.iter().map(|t| t.numel()).sum();
    let cpu_f32 = |t: &&Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float;
    if total < FAST_PATH_MIN_NUMEL || !parts.iter().all(cpu_f32) {
        return Ok(None);
    }
    let parts: Vec<Tensor> =
        parts.iter().map(|t| t.f_contiguous()).collect::<std::result::Result<_, _>>()?;
    let mut masks = parts
        .iter()
        .map(|p| Ok(Tensor::f_empty(p.size(), (Kind::Float, Device::Cpu))?))
        .collect::<Result<Vec<Tensor>>>()?;
    let refs: Vec<&Tensor> = parts.iter().collect();
    let done = with_slices::<SignedF32, _>(&refs, |values| {
        with_slices_mut::<f32, _>(&mut masks, |outs| {
            let views: Vec<Part<'_, SignedF32, f32>> =
                values.iter().map(|&values| Part { values, keep: Keep::All(None) }).collect();
            select_into::<SignedF32, f32, false>(&views, outs, |_| Ok(k), TieBreak::PyTorch)
        })
    });
    match done.flatten() {
        Some(outcome) => Ok((outcome? == Outcome::Written).then_some(masks)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's masks equal a sort-based reference on random signed scores, alone and
    /// split across parts.
    #[test]
    fn matches_sort() {
        tch::manual_seed(3);
        let a = Tensor::randn([300, 200], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([100, 7], (Kind::Float, Device::Cpu));
        let all = Tensor::cat(&[a.reshape([-1]), b.reshape([-1])], 0);
        for k in [1u64, 17, 30_000, 60_699] {
            let masks = zero_smallest_signed(&[&a, &b], k).unwrap().unwrap();
            let got = Tensor::cat(&[masks[0].reshape([-1]), masks[1].reshape([-1])], 0);
            let (_, idx) = all.sort(0, false);
            let want = all.ones_like().index_fill(0, &idx.narrow(0, 0, k as i64), 0.0);
            assert_eq!(got, want, "k = {k}");
        }
    }
}
