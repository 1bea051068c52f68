//! The regularisers of the soft and L0 variants (`regularization` in `masked_run_squad.py`):
//! a loss term the training loop adds, scaled by the schedule's `λ_t`.

use tch::{Kind, Tensor};

use super::binarizer::{Binarizer, L0_BETA, L0_LEFT, L0_RIGHT};
use super::state::{zero, State};
use crate::error::Result;

impl State {
    /// The unscaled regulariser, averaged over parameters: for
    /// [`Binarizer::SigmoidThreshold`] (`l1`) the mean of `σ(S)`, for [`Binarizer::L0`] the
    /// mean of `σ(S − β·log(−l/r))`; zero for the variants without one.
    pub(crate) fn regularization(&self) -> Result<Tensor> {
        let scores: Vec<&Tensor> = self.params.iter().filter_map(|p| p.scores.as_ref()).collect();
        let device = self.params.first().map_or(tch::Device::Cpu, |p| p.orig.device());
        let per_param = |s: &Tensor| -> Result<Tensor> {
            let numel = s.numel() as f64;
            Ok(match self.binarizer {
                Binarizer::SigmoidThreshold => {
                    s.f_sigmoid()?.f_abs()?.f_sum(Kind::Float)?.f_div_scalar(numel)?
                }
                _ => s
                    .f_sub_scalar(L0_BETA * (-L0_LEFT / L0_RIGHT).ln())?
                    .f_sigmoid()?
                    .f_sum(Kind::Float)?
                    .f_div_scalar(numel)?,
            })
        };
        if !matches!(self.binarizer, Binarizer::SigmoidThreshold | Binarizer::L0)
            || scores.is_empty()
        {
            return zero(device);
        }
        let mut total = zero(device)?;
        for s in &scores {
            total = total.f_add(&per_param(s)?)?;
        }
        Ok(total.f_div_scalar(scores.len() as f64)?)
    }
}
