//! Validation and tensor helpers shared by the methods and the container.

use tch::{Kind, Layout, Tensor};

use super::Amount;
use crate::error::{PruneError, Result};

/// Resolves a Python-style `dim` (negative counts from the end) against `ndim` dimensions.
pub(crate) fn normalize_dim(dim: i64, ndim: i64) -> Result<i64> {
    let resolved = if dim < 0 { dim + ndim } else { dim };
    if (0..ndim).contains(&resolved) {
        Ok(resolved)
    } else {
        Err(PruneError::DimOutOfRange { dim, ndim })
    }
}

/// Fails with [`PruneError::ShapeMismatch`] unless `actual` has the shape `expected`.
pub(crate) fn check_same_shape(
    parameter: &'static str,
    expected: &[i64],
    actual: &Tensor,
) -> Result<()> {
    let actual = actual.size();
    if actual != expected {
        return Err(PruneError::ShapeMismatch { parameter, expected: expected.to_vec(), actual });
    }
    Ok(())
}

/// Fails with [`PruneError::UnsupportedLayout`] unless `t` is a dense (strided) tensor. Runs
/// before anything that panics on sparse or MKL-DNN tensors (`data_ptr`, `is_contiguous`, and
/// tch's fallible operations taking a scalar, which panic when libtorch raises).
pub(crate) fn check_layout(parameter: &str, t: &Tensor) -> Result<()> {
    match crate::kernels::layout(t) {
        Layout::Strided => Ok(()),
        layout => Err(PruneError::UnsupportedLayout { parameter: parameter.to_string(), layout }),
    }
}

/// Fails with [`PruneError::InternalOverlap`] when libtorch would refuse to write into `t` in
/// place (`copy_`, `mul_`) because entries share memory: a stride of 0 along a dimension longer
/// than 1, as in an `expand`ed tensor (libtorch's `has_internal_overlap`). `name` names `t` in
/// the error. Checks the layout first ([`check_layout`]): only dense tensors have strides.
pub(crate) fn check_writable(name: &str, t: &Tensor) -> Result<()> {
    check_layout(name, t)?;
    let (shape, strides) = (t.size(), t.stride());
    if shape.iter().zip(&strides).any(|(&size, &stride)| size > 1 && stride == 0) {
        return Err(PruneError::InternalOverlap { name: name.to_string(), shape, strides });
    }
    Ok(())
}

/// [`check_layout`] of a method's two arguments.
pub(crate) fn check_dense(importance: &Tensor, default_mask: &Tensor) -> Result<()> {
    check_layout("importance", importance)?;
    check_layout("default_mask", default_mask)
}

/// Structured methods need "channels": at least two dimensions.
pub(crate) fn check_structured(t: &Tensor) -> Result<()> {
    if t.dim() < 2 {
        return Err(PruneError::NotStructured { shape: t.size() });
    }
    Ok(())
}

/// The common start of a structured method's mask: `default` has `importance`'s shape, which
/// has channels; returns the normalised `dim`, the number of channels along it, and how many
/// of them `amount` prunes.
pub(crate) fn structured_counts(
    importance: &Tensor,
    default: &Tensor,
    dim: i64,
    amount: Amount,
) -> Result<(i64, i64, i64)> {
    check_dense(importance, default)?;
    check_same_shape("default_mask", &importance.size(), default)?;
    check_structured(importance)?;
    let dim = normalize_dim(dim, importance.dim() as i64)?;
    let channels = importance.size()[dim as usize];
    Ok((dim, channels, amount.count_for(channels)?))
}

/// Random and norm-based scoring need floating-point values.
pub(crate) fn check_floating(parameter: &'static str, t: &Tensor) -> Result<()> {
    if !t.is_floating_point() {
        return Err(PruneError::UnsupportedKind {
            parameter,
            kind: t.kind(),
            expected: "a floating-point tensor",
        });
    }
    Ok(())
}

/// A fresh contiguous copy with the same kind and device, detached from autograd
/// (`t.detach().clone(memory_format=torch.contiguous_format)`).
pub(crate) fn contiguous_copy(t: &Tensor) -> Result<Tensor> {
    let mut copy = Tensor::f_empty(t.size(), (t.kind(), t.device()))?;
    tch::no_grad(|| copy.f_copy_(t))?;
    Ok(copy)
}

/// `t.to(kind)`, always returning a new tensor (libtorch returns `t` itself when the kind
/// already matches, and the callers go on to write into the result).
pub(crate) fn to_kind_copy(t: &Tensor, kind: Kind) -> Result<Tensor> {
    if t.kind() == kind {
        contiguous_copy(t)
    } else {
        Ok(t.f_to_kind(kind)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_dim_is_python_style() {
        assert_eq!(normalize_dim(-1, 3).unwrap(), 2);
        assert_eq!(normalize_dim(0, 3).unwrap(), 0);
        assert!(matches!(normalize_dim(3, 3), Err(PruneError::DimOutOfRange { dim: 3, ndim: 3 })));
        assert!(matches!(
            normalize_dim(-4, 3),
            Err(PruneError::DimOutOfRange { dim: -4, ndim: 3 })
        ));
    }

    #[test]
    fn contiguous_copy_does_not_alias() {
        let t = Tensor::from_slice(&[1.0f32, 2.0]);
        let c = contiguous_copy(&t).unwrap();
        let _ = c.f_view([-1]).unwrap().f_fill_(0.0).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0]);
    }
}
