//! Mask kernels: compaction of a mask to `bool` (what pruning histories keep) and the one-pass
//! product `default * mask` of `CustomFromMask`, reading tensors in place where they allow it
//! and handing anything else to libtorch.

use tch::{Device, Kind, Tensor};

use super::{vectorized, with_slice, with_slice_mut};
use crate::error::Result;

/// The mask a [`CustomFromMask`](crate::CustomFromMask) history entry keeps: `bool` (1 byte an entry) when every
/// entry is 0 or 1, which gives the same result (`mask.to(kind)`), else the mask as it is.
/// Contiguous CPU `f32` / `f64` masks are checked and converted in one pass; others through
/// libtorch (`eq(0) | eq(1)`, `all`, `to(bool)`).
pub(crate) fn compact(mask: Tensor) -> Result<Tensor> {
    let converted = match mask.kind() {
        Kind::Float => compact_typed::<f32>(&mask)?,
        Kind::Double => compact_typed::<f64>(&mask)?,
        _ => None,
    };
    match converted {
        Some(Some(flags)) => Ok(flags),
        Some(None) => Ok(mask),
        None => {
            let binary = mask.f_eq(0)?.f_logical_or(&mask.f_eq(1)?)?.f_all()?.int64_value(&[]) != 0;
            if binary {
                Ok(mask.f_to_kind(Kind::Bool)?)
            } else {
                Ok(mask)
            }
        }
    }
}

/// `Some(Some(bool mask))` for a binary mask, `Some(None)` for another one, `None` when the
/// mask cannot be read in place.
fn compact_typed<F>(mask: &Tensor) -> Result<Option<Option<Tensor>>>
where
    F: tch::kind::Element + Copy + PartialEq + From<u8>,
{
    if mask.device() != Device::Cpu || !mask.is_contiguous() {
        return Ok(None);
    }
    let mut flags = Tensor::f_empty(mask.size(), (Kind::Bool, Device::Cpu))?;
    let (zero, one) = (F::from(0), F::from(1));
    let binary = with_slice::<F, _>(mask, |m| {
        with_slice_mut::<bool, _>(&mut flags, |f| {
            // Branch-free over the whole mask (vectorises); most masks are binary.
            vectorized(
                #[inline(always)]
                || {
                    let mut other = 0u8;
                    for (f, &v) in f.iter_mut().zip(m) {
                        let is_one = v == one;
                        other |= u8::from(!(is_one | (v == zero)));
                        *f = is_one;
                    }
                    other == 0
                },
            )
        })
    })
    .flatten();
    Ok(binary.map(|binary| binary.then_some(flags)))
}

/// `default * mask.to(default.kind)` in one pass, for a contiguous CPU `f32` / `f64` default
/// and a contiguous CPU mask of kind `bool` or the default's kind (what global pruning
/// produces), instead of a conversion pass and a product pass; `None` otherwise. The products
/// are formed as libtorch forms them (`d * 1.0`, `d * 0.0`), so the bits are the same.
pub(crate) fn masked_product(default: &Tensor, mask: &Tensor) -> Result<Option<Tensor>> {
    let cpu_contiguous = |t: &Tensor| t.device() == Device::Cpu && t.is_contiguous();
    // A default that requires grad gets a product with a gradient from libtorch.
    if !cpu_contiguous(default) || !cpu_contiguous(mask) || default.requires_grad() {
        return Ok(None);
    }
    let mut out = Tensor::f_empty(default.size(), (default.kind(), Device::Cpu))?;
    let done = match (default.kind(), mask.kind()) {
        (Kind::Float, Kind::Bool) => {
            product::<f32, bool>(default, mask, &mut out, |m| f32::from(u8::from(m)))
        }
        (Kind::Float, Kind::Float) => product::<f32, f32>(default, mask, &mut out, |m| m),
        (Kind::Double, Kind::Bool) => {
            product::<f64, bool>(default, mask, &mut out, |m| f64::from(u8::from(m)))
        }
        (Kind::Double, Kind::Double) => product::<f64, f64>(default, mask, &mut out, |m| m),
        _ => false,
    };
    Ok(done.then_some(out))
}

fn product<F, M>(
    default: &Tensor,
    mask: &Tensor,
    out: &mut Tensor,
    convert: impl Fn(M) -> F,
) -> bool
where
    F: tch::kind::Element + Copy + std::ops::Mul<Output = F>,
    M: tch::kind::Element + Copy,
{
    with_slice::<F, _>(default, |d| {
        with_slice::<M, _>(mask, |m| {
            with_slice_mut::<F, _>(out, |o| {
                for ((o, &d), &m) in o.iter_mut().zip(d).zip(m) {
                    *o = d * convert(m);
                }
            })
        })
    })
    .flatten()
    .flatten()
    .is_some()
}
