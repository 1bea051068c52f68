//! [`CustomFromMask`]: prunes with a mask the caller provides.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tch::{Device, Kind, Tensor};

use super::checks::{check_layout, check_same_shape, contiguous_copy};
use super::{Builtin, PruningMethod, PruningType};
use crate::error::Result;
use crate::kernels::masks::masked_product;

/// Prunes with a mask given by the caller: the result is `default_mask * mask`, in the kind of
/// `default_mask`.
///
/// As in PyTorch the mask is not checked to be binary (a 0.5 scales the weight) and may be of
/// any kind (a `bool` mask becomes the parameter's kind). Unlike PyTorch, the mask is moved to
/// `default_mask`'s device, so a CPU mask works on a CUDA parameter.
///
/// ```
/// use tch::Tensor;
/// use tch_prune::{CustomFromMask, PruningMethod};
///
/// let mask = Tensor::from_slice(&[0i64, 1, 1, 0]);
/// let default = Tensor::from_slice(&[1i64, 1, 0, 0]);
/// let out = CustomFromMask::new(mask).compute_mask(&default, &default)?;
/// assert_eq!(Vec::<i64>::try_from(&out)?, vec![0, 1, 0, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: `torch.nn.utils.prune.CustomFromMask(mask)`.
#[derive(Debug)]
pub struct CustomFromMask {
    mask: Tensor,
}

impl CustomFromMask {
    /// Wraps `mask`. Its shape is checked against `default_mask` when the mask is computed.
    ///
    /// ```
    /// use tch_prune::CustomFromMask;
    /// let m = CustomFromMask::new(tch::Tensor::from_slice(&[1.0f32, 0.0]));
    /// assert_eq!(m.mask().size(), vec![2]);
    /// ```
    pub fn new(mask: Tensor) -> Self {
        Self { mask }
    }

    /// The mask this method applies.
    pub fn mask(&self) -> &Tensor {
        &self.mask
    }
}

impl Clone for CustomFromMask {
    /// Shares the mask tensor (a shallow clone), as copying a Python object reference would.
    fn clone(&self) -> Self {
        Self { mask: self.mask.shallow_clone() }
    }
}

impl PruningMethod for CustomFromMask {
    fn compute_mask(&self, _importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        check_layout("mask", &self.mask)?;
        check_layout("default_mask", default_mask)?;
        check_same_shape("mask", &default_mask.size(), &self.mask)?;
        if let Some(product) = masked_product(default_mask, &self.mask)? {
            return Ok(product);
        }
        let mask = self.mask.f_to_device(default_mask.device())?.f_to_kind(default_mask.kind())?;
        Ok(default_mask.f_mul(&mask)?)
    }

    /// Times ones, the product is the mask itself in the ones' kind when that kind is not a
    /// floating-point one (`1 * m == m` for integers and `bool`): one conversion instead of
    /// building the ones and multiplying. Always a new tensor, never the stored mask. `None`
    /// for a floating-point kind: there the product re-encodes NaNs (it quiets signalling NaNs,
    /// and libtorch's bfloat16 kernels write `0xFFFF` or `0x7FC0` depending on the position),
    /// so the mask must be the product itself, as PyTorch's.
    fn compute_mask_on_ones(
        &self,
        importance: &Tensor,
        like: &Tensor,
    ) -> Result<Option<Builtin<Tensor>>> {
        Ok(self.mask_on_ones(importance, like)?.map(Builtin))
    }

    /// `Global`: inside a container the mask applies to the whole tensor.
    fn pruning_type(&self) -> PruningType {
        PruningType::Global
    }
}

impl CustomFromMask {
    /// The mask `compute_mask(importance, &like.ones_like())` gives, when it can be computed
    /// without building the ones; `None` otherwise.
    fn mask_on_ones(&self, _importance: &Tensor, like: &Tensor) -> Result<Option<Tensor>> {
        check_layout("mask", &self.mask)?;
        check_layout("default_mask", like)?;
        check_same_shape("mask", &like.size(), &self.mask)?;
        if like.f_is_floating_point()? || like.f_is_complex()? {
            return Ok(None);
        }
        let mask = self.mask.f_to_device(like.device())?.f_to_kind(like.kind())?;
        if mask.data_ptr() == self.mask.data_ptr() || !mask.is_contiguous() {
            return contiguous_copy(&mask).map(Some);
        }
        Ok(Some(mask))
    }
}

/// How a mask is written in serde formats: its shape and its values (as `f64`, which holds
/// every value of every float kind and of integers up to 2^53 exactly).
#[derive(Serialize, Deserialize)]
struct MaskRecord {
    shape: Vec<i64>,
    values: Vec<f64>,
}

impl Serialize for CustomFromMask {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let values = self
            .mask
            .f_to_device(Device::Cpu)
            .and_then(|m| m.f_to_kind(Kind::Double))
            .and_then(|m| m.f_reshape([-1]))
            .and_then(|m| Vec::<f64>::try_from(&m))
            .map_err(S::Error::custom)?;
        MaskRecord { shape: self.mask.size(), values }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CustomFromMask {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let record = MaskRecord::deserialize(deserializer)?;
        // Checked: a shape read from untrusted input must not overflow (a panic in debug builds).
        let side = |acc: i64, &d: &i64| if d < 0 { None } else { acc.checked_mul(d) };
        let numel = record.shape.iter().try_fold(1i64, side);
        if numel != Some(record.values.len() as i64) {
            return Err(D::Error::custom(format!(
                "mask: shape {:?} does not hold {} values",
                record.shape,
                record.values.len()
            )));
        }
        let mask = Tensor::f_from_slice(&record.values)
            .map_err(D::Error::custom)?
            .f_reshape(record.shape.as_slice())
            .map_err(D::Error::custom)?;
        Ok(Self { mask })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::masks::compact;

    #[test]
    fn compact_keeps_binary_masks_as_bool_and_others_as_they_are() {
        let binary = Tensor::from_slice(&[0.0f32, 1.0, -0.0, 1.0]);
        let compacted = compact(binary.shallow_clone()).unwrap();
        assert_eq!(compacted.kind(), Kind::Bool);
        assert_eq!(Vec::<bool>::try_from(&compacted).unwrap(), vec![false, true, false, true]);
        for other in [[0.0f32, 0.5], [f32::NAN, 1.0]] {
            let other = Tensor::from_slice(&other);
            assert_eq!(compact(other.shallow_clone()).unwrap().kind(), Kind::Float);
        }
        // Kinds read through libtorch.
        let ints = Tensor::from_slice(&[0i64, 1, 1]);
        assert_eq!(compact(ints).unwrap().kind(), Kind::Bool);
    }

    #[test]
    fn the_one_pass_product_equals_libtorch() {
        let default = Tensor::from_slice(&[1.0f32, -2.0, f32::INFINITY, f32::NAN, 0.5, -0.0]);
        for mask in [
            Tensor::from_slice(&[true, false, false, true, true, false]),
            Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.25, 1.0]),
        ] {
            let expected = default.f_mul(&mask.to_kind(Kind::Float)).unwrap();
            let ours = masked_product(&default, &mask).unwrap().unwrap();
            let bits = |t: &Tensor| t.view_dtype(Kind::Int).reshape([-1]);
            assert!(bits(&ours).equal(&bits(&expected)));
        }
        let int_default = Tensor::from_slice(&[1i64, 0]);
        assert!(masked_product(&int_default, &int_default).unwrap().is_none());
    }

    #[test]
    fn mask_on_ones_is_a_fresh_copy_equal_to_the_product() {
        let like = Tensor::zeros([2, 3], (Kind::Int, Device::Cpu));
        for mask in [
            Tensor::from_slice(&[1i32, 0, 7, -3, 0, 1]).reshape([2, 3]),
            Tensor::from_slice(&[true, false, true, true, false, false]).reshape([2, 3]),
            Tensor::from_slice(&[1.0f32, 0.0, 1.0, 1.0, 0.0, 0.0]).reshape([3, 2]).tr(),
        ] {
            let method = CustomFromMask::new(mask.shallow_clone());
            let ours = method.compute_mask_on_ones(&like, &like).unwrap().unwrap().into_inner();
            let expected = method.compute_mask(&like, &like.ones_like()).unwrap();
            assert!(ours.equal(&expected));
            assert_ne!(ours.data_ptr(), mask.data_ptr());
            assert!(ours.is_contiguous());
        }
        // Float kinds: the product itself (it re-encodes NaNs), no shortcut.
        let float = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let method = CustomFromMask::new(Tensor::ones([2, 3], (Kind::Float, Device::Cpu)));
        assert!(method.compute_mask_on_ones(&float, &float).unwrap().is_none());
    }
}
