//! [`SemiStructured`]: N:M sparsity (keep `n` of every `m` consecutive entries along the last
//! dimension), the pattern of NVIDIA's 2:4 sparse tensor cores.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::checks::{check_same_shape, contiguous_copy};
use super::{PruningMethod, PruningType};
use crate::error::{PruneError, Result};

/// Keeps the `n` entries of largest magnitude in every group of `m` consecutive entries along
/// the last dimension, and prunes the other `m - n` (2:4 keeps 2 of every 4).
///
/// For a Linear weight `[out, in]` the groups run along `in`, the K dimension of the sparse
/// GEMM, which is what cuSPARSELt and CUTLASS require. The mask is `default_mask` with the
/// `m - n` smallest `|importance|` of each group set to zero, so entries pruned earlier stay
/// pruned (a group may then keep fewer than `n`). Magnitudes that tie go lowest index first
/// (a stable sort); NaN counts as the largest magnitude.
///
/// The last dimension must be a multiple of `m`
/// ([`PruneError::GroupsDoNotDivide`] otherwise). The method prunes the whole tensor at once
/// ([`PruningType::Global`]): in a [`PruningContainer`](crate::PruningContainer) it sees the
/// full tensor, so groups are never taken across pruned entries.
///
/// ```
/// use tch::Tensor;
/// use tch_prune::{PruningMethod, SemiStructured};
///
/// let w = Tensor::from_slice(&[0.1f32, -3.0, 2.0, 0.2, 5.0, 0.0, -0.5, 4.0]).reshape([2, 4]);
/// let mask = SemiStructured::new(2, 4)?.compute_mask(&w, &w.ones_like())?;
/// assert_eq!(Vec::<f32>::try_from(&mask.reshape([-1]))?, vec![0., 1., 1., 0., 1., 0., 0., 1.]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: `torch.ao.pruning.WeightNormSparsifier(sparsity_level=1.0,
/// sparse_block_shape=(1, m), zeros_per_block=m - n)` (same masks where magnitudes do not
/// tie; it ranks `w * w`), or apex ASP's `m4n2_1d` for 2:4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NmRepr", into = "NmRepr")]
pub struct SemiStructured {
    n: i64,
    m: i64,
}

/// The serialized form, validated on the way in.
#[derive(Serialize, Deserialize)]
struct NmRepr {
    n: i64,
    m: i64,
}

impl TryFrom<NmRepr> for SemiStructured {
    type Error = PruneError;
    fn try_from(r: NmRepr) -> Result<Self> {
        Self::new(r.n, r.m)
    }
}

impl From<SemiStructured> for NmRepr {
    fn from(s: SemiStructured) -> Self {
        Self { n: s.n, m: s.m }
    }
}

impl SemiStructured {
    /// Creates the N:M method: keep `n` of every `m` entries.
    ///
    /// # Errors
    /// [`PruneError::InvalidNm`] unless `1 <= m` and `0 <= n <= m`.
    ///
    /// ```
    /// use tch_prune::SemiStructured;
    /// assert!(SemiStructured::new(2, 4).is_ok());
    /// assert!(SemiStructured::new(5, 4).is_err());
    /// ```
    pub fn new(n: i64, m: i64) -> Result<Self> {
        if m < 1 || n < 0 || n > m {
            return Err(PruneError::InvalidNm { n, m });
        }
        Ok(Self { n, m })
    }

    /// Entries kept per group.
    ///
    /// ```
    /// # use tch_prune::SemiStructured;
    /// assert_eq!(SemiStructured::new(2, 4)?.n(), 2);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn n(&self) -> i64 {
        self.n
    }

    /// Group size.
    ///
    /// ```
    /// # use tch_prune::SemiStructured;
    /// assert_eq!(SemiStructured::new(2, 4)?.m(), 4);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn m(&self) -> i64 {
        self.m
    }
}

impl PruningMethod for SemiStructured {
    /// A copy of `default_mask` with the `m - n` smallest `|importance|` of every group zeroed.
    fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        check_same_shape("default_mask", &importance.size(), default_mask)?;
        let shape = importance.size();
        let last = shape.last().copied();
        if last.is_none_or(|last| last % self.m != 0) {
            return Err(PruneError::GroupsDoNotDivide { m: self.m, shape });
        }
        let mask = contiguous_copy(default_mask)?;
        let pruned = self.m - self.n;
        if pruned == 0 || importance.numel() == 0 {
            return Ok(mask);
        }
        let groups = importance.f_detach()?.f_abs()?.f_reshape([-1, self.m])?;
        // Stable ascending sort: ties go lowest index first, NaN sorts last (largest).
        let (_, order) = groups.f_sort_stable(true, 1, false)?;
        let drop = order.f_narrow(1, 0, pruned)?;
        let zero = Tensor::f_zeros([1], (mask.kind(), mask.device()))?.f_expand_as(&drop)?;
        _ = mask.f_view([-1, self.m])?.f_scatter_(1, &drop.f_to_device(mask.device())?, &zero)?;
        Ok(mask)
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Global
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn keeps_n_largest_per_group_and_earlier_zeros() {
        let w = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 4.0, 3.0, 2.0, 1.0]);
        let default = w.ones_like();
        let _ = default.get(2).fill_(0.0);
        let mask = SemiStructured::new(2, 4).unwrap().compute_mask(&w, &default).unwrap();
        assert_eq!(Vec::<f32>::try_from(&mask).unwrap(), vec![0., 0., 0., 1., 1., 1., 0., 0.]);
    }

    #[test]
    fn ties_go_lowest_index_first_and_nan_is_largest() {
        let w = Tensor::from_slice(&[1.0f32, 1.0, 1.0, f32::NAN]);
        let mask = SemiStructured::new(1, 4).unwrap().compute_mask(&w, &w.ones_like()).unwrap();
        assert_eq!(Vec::<f32>::try_from(&mask).unwrap(), vec![0., 0., 0., 1.]);
    }

    #[test]
    fn refuses_bad_patterns_and_shapes() {
        assert!(matches!(SemiStructured::new(3, 2), Err(PruneError::InvalidNm { n: 3, m: 2 })));
        assert!(matches!(SemiStructured::new(0, 0), Err(PruneError::InvalidNm { .. })));
        let w = Tensor::zeros([2, 6], (Kind::Float, Device::Cpu));
        let err = SemiStructured::new(2, 4).unwrap().compute_mask(&w, &w.ones_like());
        assert!(matches!(err, Err(PruneError::GroupsDoNotDivide { m: 4, .. })));
        let json = serde_json::to_string(&SemiStructured::new(2, 4).unwrap()).unwrap();
        assert_eq!(json, r#"{"n":2,"m":4}"#);
        assert!(serde_json::from_str::<SemiStructured>(r#"{"n":5,"m":4}"#).is_err());
    }
}
