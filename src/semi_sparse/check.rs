//! Whether a Linear weight can go through cuSPARSELt's 2:4 kernels, and if not, why: the rules
//! PyTorch's `to_sparse_semi_structured` checks (2-D, contiguous, dtype, shape multiples, CUDA),
//! plus the one it leaves to the kernels, which do not check it either: every group of 4
//! consecutive entries of a row holds at most 2 non-zeros.

use std::fmt;

use tch::{Device, Kind, Tensor};

use crate::error::{PruneError, Result};

/// cuSPARSELt's minimum multiple for both dimensions of an f16/bf16 sparse operand
/// (`torch/sparse/semi_structured.py`: `sparse_min_rows = sparse_min_cols = 16`).
pub const SPARSE_MULTIPLE: i64 = 16;

/// The multiple the dense operand's rows (the input's batch rows) are padded to for f16/bf16
/// (`dense_min_rows = 8`).
pub const DENSE_ROW_MULTIPLE: i64 = 8;

/// Why a weight stays dense: the first rule it breaks, checked in the order of the variants.
#[derive(Debug, Clone, PartialEq)]
pub enum Ineligible {
    /// The weight is not a matrix.
    NotTwoD {
        /// Its shape.
        shape: Vec<i64>,
    },
    /// The weight is not contiguous (cuSPARSELt compresses row-major memory).
    NotContiguous,
    /// A dtype without a cuSPARSELt path here (f16 and bf16 only: int8 has no dense fallback
    /// that computes the same result, and f32 runs as TF32 with no gain).
    UnsupportedKind {
        /// The weight's dtype.
        kind: Kind,
    },
    /// A dimension that is not a multiple of [`SPARSE_MULTIPLE`].
    NotMultiple {
        /// `"out_features"` or `"in_features"`.
        dim: &'static str,
        /// Its size.
        value: i64,
        /// The multiple it must be.
        multiple: i64,
    },
    /// A group of 4 consecutive entries along `in_features` that keeps more than 2.
    TooManyNonZeros {
        /// The row (output feature).
        row: i64,
        /// The group within the row (entries `4 * group .. 4 * group + 4`).
        group: i64,
        /// Its number of non-zeros (NaN counts as non-zero).
        count: i64,
    },
    /// The weight is not on a CUDA device.
    NotCuda {
        /// Its device.
        device: Device,
    },
    /// `_cslt_compress` failed (no cuSPARSELt in this libtorch, or an unsupported GPU).
    CompressFailed {
        /// libtorch's message.
        message: String,
    },
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotTwoD { shape } => write!(f, "weight has shape {shape:?}, needs 2-D"),
            Self::NotContiguous => write!(f, "weight is not contiguous"),
            Self::UnsupportedKind { kind } => {
                write!(f, "dtype {kind:?} not supported: needs f16 or bf16")
            }
            Self::NotMultiple { dim, value, multiple } => {
                write!(f, "{dim} {value} not a multiple of {multiple}")
            }
            Self::TooManyNonZeros { row, group, count } => {
                write!(f, "group {group} of row {row} holds {count} non-zeros (at most 2 of 4)")
            }
            Self::NotCuda { device: Device::Cpu } => write!(f, "device is CPU"),
            Self::NotCuda { device } => write!(f, "device is {device:?}, needs CUDA"),
            Self::CompressFailed { message } => write!(f, "cuSPARSELt compress failed: {message}"),
        }
    }
}

/// The first rule `weight` breaks, or `None` when it can be compressed (compression itself may
/// still fail: [`Ineligible::CompressFailed`]). Runs on any device; the 2:4 count runs where the
/// weight is and copies back only the first offending group.
///
/// # Errors
/// A libtorch error while counting.
///
/// ```
/// use tch::{Device, Kind, Tensor};
/// use tch_prune::semi_sparse::{ineligible, Ineligible};
///
/// let w = Tensor::from_slice(&[1.0f32, 0.0, 2.0, 0.0]).repeat([16, 4]).to_kind(Kind::Half);
/// assert_eq!(ineligible(&w)?, Some(Ineligible::NotCuda { device: Device::Cpu }));
/// assert_eq!(ineligible(&w)?.map(|r| r.to_string()).as_deref(), Some("device is CPU"));
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
pub fn ineligible(weight: &Tensor) -> Result<Option<Ineligible>> {
    let shape = weight.size();
    let &[rows, cols] = shape.as_slice() else {
        return Ok(Some(Ineligible::NotTwoD { shape }));
    };
    if !weight.is_contiguous() {
        return Ok(Some(Ineligible::NotContiguous));
    }
    let kind = weight.kind();
    if !matches!(kind, Kind::Half | Kind::BFloat16) {
        return Ok(Some(Ineligible::UnsupportedKind { kind }));
    }
    for (dim, value) in [("out_features", rows), ("in_features", cols)] {
        if value % SPARSE_MULTIPLE != 0 {
            let multiple = SPARSE_MULTIPLE;
            return Ok(Some(Ineligible::NotMultiple { dim, value, multiple }));
        }
    }
    if let Some(reason) = first_dense_group(weight, rows, cols)? {
        return Ok(Some(reason));
    }
    let device = weight.device();
    if !device.is_cuda() {
        return Ok(Some(Ineligible::NotCuda { device }));
    }
    Ok(None)
}

/// [`ineligible`] as an error naming `parameter`.
///
/// # Errors
/// [`PruneError::NotSemiSparse`] with the reason, or a libtorch error while counting.
///
/// ```
/// use tch::{Kind, Tensor};
/// use tch_prune::semi_sparse::check_weight;
///
/// let w = Tensor::ones([16, 16], (Kind::Half, tch::Device::Cpu));
/// let err = check_weight("fc.weight", &w).unwrap_err().to_string();
/// assert_eq!(err, "fc.weight: not 2:4 sparse-capable: group 0 of row 0 holds 4 non-zeros (at most 2 of 4)");
/// ```
pub fn check_weight(parameter: &str, weight: &Tensor) -> Result<()> {
    match ineligible(weight)? {
        None => Ok(()),
        Some(reason) => Err(PruneError::NotSemiSparse { parameter: parameter.into(), reason }),
    }
}

/// The first group of 4 (row-major order) with more than 2 non-zeros. `cols` is a multiple of 4.
fn first_dense_group(weight: &Tensor, rows: i64, cols: i64) -> Result<Option<Ineligible>> {
    let counts = weight.f_ne(0)?.f_reshape([rows, cols / 4, 4])?.f_sum_dim_intlist(
        [-1i64].as_slice(),
        false,
        Kind::Int64,
    )?;
    let bad = counts.f_gt(2)?.f_nonzero()?;
    if bad.size().first().copied().unwrap_or(0) == 0 {
        return Ok(None);
    }
    let first = bad.f_get(0)?.f_to_device(Device::Cpu)?;
    let (row, group) = (first.f_int64_value(&[0])?, first.f_int64_value(&[1])?);
    let count = counts.f_get(row)?.f_get(group)?.f_int64_value(&[])?;
    Ok(Some(Ineligible::TooManyNonZeros { row, group, count }))
}
