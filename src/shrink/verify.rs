//! The equivalence proof of a shrink: seeded check inputs, forwards that may panic (tch's
//! `Module::forward` panics on a shape error), and the comparison of outputs.
//!
//! The shrunk model must compute what the masked model computed: the largest absolute
//! difference over all check outputs must not exceed `tolerance · scale`, where `scale` is the
//! largest magnitude of the masked outputs (1 when they are all zero). Removing a channel whose
//! every weight is zero changes only the order of floating-point sums, hence a tolerance
//! relative to the output's scale (1e-5 by default, for `f32`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// The default relative tolerance of the check.
pub(crate) const DEFAULT_TOLERANCE: f64 = 1e-5;

/// A check input: given tensors, or a shape to fill with seeded values on the model's device.
#[derive(Debug)]
pub(crate) enum CheckInput {
    Tensor(Tensor),
    Random { shape: Vec<i64>, seed: u64 },
}

impl CheckInput {
    pub(crate) fn materialise(&self, device: Device) -> Result<Tensor> {
        match self {
            Self::Tensor(t) => Ok(t.shallow_clone()),
            Self::Random { shape, seed } => seeded_normal(shape, *seed, device),
        }
    }
}

/// Values of mean 0 and variance 1, a fixed function of `(shape, seed)`: a sine hash of the
/// entry index (uniform on [-√3, √3)), so that the check never draws from (or disturbs)
/// libtorch's global generator.
pub(crate) fn seeded_normal(shape: &[i64], seed: u64, device: Device) -> Result<Tensor> {
    let n: i64 = shape.iter().product();
    let i = Tensor::f_arange(n, (Kind::Double, Device::Cpu))?;
    let phase = (seed % 10_007) as f64 * 78.233;
    let hashed = i.f_mul_scalar(12.9898)?.f_add_scalar(phase)?.f_sin()?.f_mul_scalar(43758.5453)?;
    let uniform = hashed.f_frac()?.f_abs()?;
    let values = uniform.f_mul_scalar(2.0 * 3f64.sqrt())?.f_sub_scalar(3f64.sqrt())?;
    Ok(values.f_reshape(shape)?.f_to_kind(Kind::Float)?.f_to_device(device)?)
}

/// Runs `forward` on every input without autograd; a panic (a libtorch shape error inside a
/// tch layer) comes back as its message.
pub(crate) fn run_forward(
    forward: &mut dyn FnMut(&Tensor) -> Tensor,
    inputs: &[Tensor],
) -> std::result::Result<Vec<Tensor>, String> {
    let run = catch_unwind(AssertUnwindSafe(|| {
        tch::no_grad(|| inputs.iter().map(&mut *forward).collect::<Vec<_>>())
    }));
    run.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the forward panicked".into())
    })
}

/// The outcome of comparing the shrunk outputs with the masked ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Comparison {
    /// The largest absolute difference (infinite when shapes differ).
    pub(crate) max_diff: f64,
    /// The largest magnitude of the reference outputs (the scale).
    pub(crate) scale: f64,
}

impl Comparison {
    pub(crate) fn allowed(&self, tolerance: f64) -> f64 {
        tolerance * if self.scale > 0.0 { self.scale } else { 1.0 }
    }

    pub(crate) fn passes(&self, tolerance: f64) -> bool {
        self.max_diff <= self.allowed(tolerance)
    }
}

/// Compares outputs pairwise.
pub(crate) fn compare(reference: &[Tensor], got: &[Tensor]) -> Result<Comparison> {
    let mut out = Comparison { max_diff: 0.0, scale: 0.0 };
    for (r, g) in reference.iter().zip(got) {
        let r = r.f_to_kind(Kind::Double)?;
        out.scale = out.scale.max(r.f_abs()?.f_max()?.f_double_value(&[])?);
        if r.size() != g.size() {
            out.max_diff = f64::INFINITY;
            continue;
        }
        let diff = r.f_sub(&g.f_to_kind(Kind::Double)?)?.f_abs()?.f_max()?.f_double_value(&[])?;
        // NaN never passes.
        out.max_diff = if diff.is_nan() { f64::INFINITY } else { out.max_diff.max(diff) };
    }
    if reference.len() != got.len() {
        out.max_diff = f64::INFINITY;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_inputs_are_reproducible_and_centred() -> Result<()> {
        let a = seeded_normal(&[64, 64], 3, Device::Cpu)?;
        let b = seeded_normal(&[64, 64], 3, Device::Cpu)?;
        let c = seeded_normal(&[64, 64], 4, Device::Cpu)?;
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
        assert!(a.mean(Kind::Double).double_value(&[]).abs() < 0.05);
        let var = a.var(false).double_value(&[]);
        assert!((var - 1.0).abs() < 0.1, "variance {var}");
        Ok(())
    }

    #[test]
    fn compare_flags_shape_changes_and_nan() -> Result<()> {
        let r = Tensor::from_slice(&[1.0f32, -2.0]);
        let same = compare(&[r.shallow_clone()], &[r.shallow_clone()])?;
        assert_eq!(same, Comparison { max_diff: 0.0, scale: 2.0 });
        let short = compare(&[r.shallow_clone()], &[Tensor::from_slice(&[1.0f32])])?;
        assert!(short.max_diff.is_infinite());
        let nan = compare(&[r.shallow_clone()], &[Tensor::from_slice(&[f32::NAN, -2.0])])?;
        assert!(!nan.passes(1.0));
        Ok(())
    }

    #[test]
    fn a_panicking_forward_comes_back_as_its_message() {
        let mut f = |_: &Tensor| -> Tensor { panic!("shape error") };
        let err = run_forward(&mut f, &[Tensor::from(1.0)]).unwrap_err();
        assert_eq!(err, "shape error");
    }
}
