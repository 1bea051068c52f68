//! [`Norm`]: the order `n` of the norm that ranks channels in [`LnStructured`](crate::LnStructured).

use std::fmt;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{PruneError, Result};

/// The order of the per-channel norm used by [`LnStructured`](crate::LnStructured).
///
/// Covers every order PyTorch's `n` accepts that gives a per-channel value: a number `p`
/// (`(Σ|x|^p)^(1/p)`; `0` counts non-zeros, negative `p` is allowed as in
/// `torch.linalg.vector_norm`), `inf` (max |x|), `-inf` (min |x|), all for any tensor rank, and
/// `"fro"`, the same values as `p = 2` on tensors of 2 or 3 dimensions. On 4 or more dimensions
/// (every `Conv2d` weight) PyTorch's `torch.norm(t, p="fro", dim=dims)` raises (with three or
/// more reduced dims it calls `linalg.matrix_norm`, which takes exactly two), even with amount
/// 0, and so does [`LnStructured`](crate::LnStructured): [`PruneError::UnsupportedNorm`]. Use
/// `P(2.0)` there.
///
/// **`"nuc"` is deliberately not offered.** In PyTorch it only means something for 3-D
/// tensors; on 2-D tensors it fails inside `topk`, and on 4-D and larger it silently produces a
/// meaningless mask.
///
/// `From<f64>` maps `f64::INFINITY` / `f64::NEG_INFINITY` to [`Norm::Inf`] / [`Norm::NegInf`],
/// so `LnStructured::new(0.5, f64::INFINITY, 0)` ports `n=float('inf')` unchanged. In serde
/// formats a norm is a number or one of the strings `"inf"`, `"-inf"`, `"fro"`.
///
/// ```
/// use tch_prune::Norm;
///
/// assert_eq!(Norm::from(2), Norm::P(2.0));
/// assert_eq!(Norm::from(f64::INFINITY), Norm::Inf);
/// assert_eq!(Norm::Fro.order(), 2.0);
/// ```
///
/// PyTorch equivalent: the `n` argument of `LnStructured` / `ln_structured`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NormRepr", into = "NormRepr")]
#[non_exhaustive]
pub enum Norm {
    /// The vector `p`-norm for a finite `p` (not NaN).
    P(f64),
    /// The maximum absolute value (`n = inf`).
    Inf,
    /// The minimum absolute value (`n = -inf`).
    NegInf,
    /// The Frobenius norm (`n = "fro"`), the same values as `p = 2`; only for tensors of at
    /// most 3 dimensions (see the type's documentation).
    Fro,
}

impl Norm {
    /// The norm's order as the number libtorch takes (`fro` is 2).
    ///
    /// ```
    /// use tch_prune::Norm;
    /// assert_eq!(Norm::NegInf.order(), f64::NEG_INFINITY);
    /// ```
    pub fn order(self) -> f64 {
        match self {
            Norm::P(p) => p,
            Norm::Inf => f64::INFINITY,
            Norm::NegInf => f64::NEG_INFINITY,
            Norm::Fro => 2.0,
        }
    }

    /// Checks that the order is a number (not NaN); an infinite `P` is accepted as `Inf`.
    ///
    /// # Errors
    /// [`PruneError::InvalidNorm`] for `Norm::P(f64::NAN)`.
    ///
    /// ```
    /// use tch_prune::Norm;
    /// assert!(Norm::P(3.0).validate().is_ok());
    /// assert!(Norm::P(f64::NAN).validate().is_err());
    /// ```
    pub fn validate(self) -> Result<Self> {
        match self {
            Norm::P(p) if p.is_nan() => Err(PruneError::InvalidNorm { value: p }),
            Norm::P(p) => Ok(Norm::from(p)),
            other => Ok(other),
        }
    }

    /// Fails with [`PruneError::UnsupportedNorm`] for `"fro"` on a tensor of 4 or more
    /// dimensions, where PyTorch's `torch.norm` raises.
    pub(crate) fn check_rank(self, t: &Tensor) -> Result<()> {
        const FRO_MAX_NDIM: i64 = 3;
        if self == Norm::Fro && t.dim() as i64 > FRO_MAX_NDIM {
            return Err(PruneError::UnsupportedNorm {
                norm: self,
                shape: t.size(),
                max_ndim: FRO_MAX_NDIM,
            });
        }
        Ok(())
    }

    /// Per-channel norms of `t` along `dim` (already normalised to `0..ndim`): reduces every
    /// other axis, giving a 1-D tensor of length `t.size()[dim]`.
    ///
    /// PyTorch's `torch.norm(t, p=n, dim=dims)` calls `linalg.vector_norm(t, n, dims)` for
    /// every numeric `n`, and for `"fro"` when `dims` has at most two entries (a tensor of at
    /// most 3 dimensions; [`check_rank`](Self::check_rank) refuses the others); `at::norm`
    /// (what tch exposes) reaches the same kernel.
    pub(crate) fn channel_norms(self, t: &Tensor, dim: i64) -> Result<Tensor> {
        let dims: Vec<i64> = (0..t.dim() as i64).filter(|&d| d != dim).collect();
        Ok(t.f_norm_scalaropt_dim(self.order(), dims.as_slice(), false)?)
    }
}

impl fmt::Display for Norm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Norm::P(p) => write!(f, "{p}"),
            Norm::Inf => f.write_str("inf"),
            Norm::NegInf => f.write_str("-inf"),
            Norm::Fro => f.write_str("fro"),
        }
    }
}

impl From<f64> for Norm {
    /// A number is `P(p)`, except `±inf`, which become [`Norm::Inf`] / [`Norm::NegInf`].
    fn from(p: f64) -> Self {
        if p == f64::INFINITY {
            Norm::Inf
        } else if p == f64::NEG_INFINITY {
            Norm::NegInf
        } else {
            Norm::P(p)
        }
    }
}

impl From<f32> for Norm {
    /// As `From<f64>`.
    fn from(p: f32) -> Self {
        Norm::from(f64::from(p))
    }
}

impl From<i32> for Norm {
    /// An integer order `p`.
    fn from(p: i32) -> Self {
        Norm::P(f64::from(p))
    }
}

/// How a norm is written in serde formats: a number, or `"inf"`, `"-inf"`, `"fro"`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum NormRepr {
    Number(f64),
    Name(String),
}

impl TryFrom<NormRepr> for Norm {
    type Error = String;

    fn try_from(repr: NormRepr) -> std::result::Result<Self, String> {
        let norm = match repr {
            NormRepr::Number(p) => Norm::from(p),
            NormRepr::Name(name) => match name.as_str() {
                "inf" => Norm::Inf,
                "-inf" => Norm::NegInf,
                "fro" => Norm::Fro,
                _ => return Err(format!("n: unknown norm {name:?}; expected a number, \"inf\", \"-inf\" or \"fro\" (\"nuc\" is not supported)")),
            },
        };
        norm.validate().map_err(|e| e.to_string())
    }
}

impl From<Norm> for NormRepr {
    fn from(norm: Norm) -> Self {
        match norm {
            Norm::P(p) if p.is_finite() => NormRepr::Number(p),
            // JSON has no infinite numbers (serde_json writes `null`, which does not read back):
            // an infinite `P` is written by name, as the `Inf` / `NegInf` it validates to.
            Norm::P(p) => NormRepr::Name(Norm::from(p).to_string()),
            other => NormRepr::Name(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_folds_infinite_p() {
        assert_eq!(Norm::P(f64::INFINITY).validate().unwrap(), Norm::Inf);
        assert_eq!(Norm::P(f64::NEG_INFINITY).validate().unwrap(), Norm::NegInf);
    }

    #[test]
    fn channel_norms_reduce_every_other_axis() {
        let t = Tensor::from_slice(&[3.0f32, 4.0, 0.0, 1.0]).reshape([2, 2]);
        let rows = Norm::P(2.0).channel_norms(&t, 0).unwrap();
        assert_eq!(Vec::<f32>::try_from(&rows).unwrap(), vec![5.0, 1.0]);
        let cols = Norm::Inf.channel_norms(&t, 1).unwrap();
        assert_eq!(Vec::<f32>::try_from(&cols).unwrap(), vec![3.0, 4.0]);
    }
}
