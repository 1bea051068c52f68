//! [`CustomFromMask`]: prunes with a mask the caller provides.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tch::{Device, Kind, Tensor};

use super::checks::check_same_shape;
use super::{PruningMethod, PruningType};
use crate::error::Result;

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
        check_same_shape("mask", &default_mask.size(), &self.mask)?;
        let mask = self.mask.f_to_device(default_mask.device())?.f_to_kind(default_mask.kind())?;
        Ok(default_mask.f_mul(&mask)?)
    }

    /// `Global`: inside a container the mask applies to the whole tensor.
    fn pruning_type(&self) -> PruningType {
        PruningType::Global
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
