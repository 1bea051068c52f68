//! [`SemiSparseLinear`]: a Linear layer whose masked weight is compressed by cuSPARSELt when it
//! is 2:4 on a CUDA device, with a dense fallback that computes the same result. Inputs are
//! flattened to 2-D, their rows padded to [`DENSE_ROW_MULTIPLE`], multiplied as
//! `(W_sparse @ xᵀ)ᵀ` (the transpose folded into the kernel), then sliced and reshaped back.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tch::nn::{Linear, Module};
use tch::{Kind, Tensor};

use super::check::{ineligible, Ineligible, DENSE_ROW_MULTIPLE};
use super::choose::{Candidate, ChoiceCache, ChoiceKey, Decision, Timer, WallClock};
use crate::error::{PruneError, Result};

/// A Linear layer for inference on 2:4 weights: cuSPARSELt where eligible and faster, the dense
/// masked weight otherwise (see [`fallback_reason`](Self::fallback_reason)).
///
/// The layer holds a snapshot of the weight (detached), so later training does not reach it.
/// The first forward at each (shape, padded batch, dtype) times both kernels once and keeps the
/// faster ([`ChoiceCache`]); on the CPU the layer is dense and equals the masked `Linear`.
///
/// ```
/// use tch::{nn, nn::Module, Device, Kind, Tensor};
/// use tch_prune::semi_sparse::SemiSparseLinear;
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let fc = nn::linear(vs.root() / "fc", 16, 16, Default::default());
/// let layer = SemiSparseLinear::from_linear(&fc)?;
/// assert!(!layer.is_sparse());
/// assert_eq!(layer.fallback_reason().map(|r| r.to_string()).as_deref(),
///            Some("dtype Float not supported: needs f16 or bf16"));
/// let x = Tensor::randn([3, 16], (Kind::Float, Device::Cpu));
/// assert_eq!(layer.forward(&x), fc.forward(&x));
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
pub struct SemiSparseLinear {
    weight: Tensor,
    bias: Option<Tensor>,
    compressed: Option<Tensor>,
    reason: Option<Ineligible>,
    cache: Arc<Mutex<ChoiceCache>>,
    timer: Mutex<Box<dyn Timer>>,
}

impl SemiSparseLinear {
    /// A layer computing `x @ weightᵀ + bias`, compressed when [`ineligible`] finds nothing
    /// and `_cslt_compress` succeeds.
    ///
    /// # Errors
    /// [`PruneError::NotSemiSparse`] for a weight that is not 2-D (no Linear at all),
    /// [`PruneError::ShapeMismatch`] for a bias that is not `[out_features]`, a libtorch error.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let weight = weight.f_detach()?.f_contiguous()?;
        let reason = ineligible(&weight)?;
        if let Some(r @ Ineligible::NotTwoD { .. }) = reason {
            return Err(PruneError::NotSemiSparse { parameter: "weight".into(), reason: r });
        }
        let out = weight.size()[0];
        let bias = match bias {
            Some(b) if b.size() != [out] => {
                let actual = b.size();
                return Err(PruneError::ShapeMismatch {
                    parameter: "bias",
                    expected: vec![out],
                    actual,
                });
            }
            Some(b) => Some(b.f_detach()?.f_contiguous()?),
            None => None,
        };
        let (compressed, reason) = match reason {
            Some(r) => (None, Some(r)),
            None => match weight.f_internal_cslt_compress() {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(Ineligible::CompressFailed { message: e.to_string() })),
            },
        };
        let timer = WallClock { warmup: 3, iterations: 10, device: weight.device() };
        Ok(Self {
            weight,
            bias,
            compressed,
            reason,
            cache: Arc::default(),
            timer: Mutex::new(Box::new(timer)),
        })
    }

    /// [`new`](Self::new) from a tch `Linear` (its `ws` and `bs`: after pruning, the masked
    /// weight).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_linear(linear: &Linear) -> Result<Self> {
        Self::new(&linear.ws, linear.bs.as_ref())
    }

    /// Shares `cache` (e.g. with the other layers of a model).
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<Mutex<ChoiceCache>>) -> Self {
        self.cache = cache;
        self
    }

    /// Times with `timer` instead of the [`WallClock`].
    #[must_use]
    pub fn with_timer(self, timer: impl Timer + 'static) -> Self {
        Self { timer: Mutex::new(Box::new(timer)), ..self }
    }

    /// Whether the weight was compressed (the sparse kernel can run).
    pub fn is_sparse(&self) -> bool {
        self.compressed.is_some()
    }

    /// Why the weight stays dense, or `None` when it was compressed.
    pub fn fallback_reason(&self) -> Option<&Ineligible> {
        self.reason.as_ref()
    }

    /// The dense masked weight (the fallback's).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The decision for an input with `rows` rows, timing it first if it is not cached;
    /// `None` for a dense-only layer.
    ///
    /// # Errors
    /// A libtorch error from the search or a kernel.
    pub fn decision(&self, x2d: &Tensor) -> Result<Option<Decision>> {
        let Some(packed) = &self.compressed else { return Ok(None) };
        let size = self.weight.size();
        let rows = x2d.size().first().copied().unwrap_or(0);
        let key = ChoiceKey {
            out_features: size[0],
            in_features: size[1],
            batch: padded_rows(rows),
            kind: self.weight.kind(),
        };
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let mut timer = self.timer.lock().unwrap_or_else(PoisonError::into_inner);
        let search = || {
            let (padded, b) = (pad_rows(x2d)?, self.bias.as_ref());
            Ok(Tensor::f_internal_cslt_sparse_mm_search(packed, &padded.tr(), b, None, None, true)?)
        };
        let run = &mut |c: Candidate| self.run(c, x2d).map(drop);
        cache.decide(key, timer.as_mut(), search, run).map(Some)
    }

    /// The forward pass: `x` of shape `[.., in_features]` gives `[.., out_features]`.
    ///
    /// # Errors
    /// [`PruneError::ShapeMismatch`] when the last dimension is not `in_features`,
    /// [`PruneError::UnsupportedKind`] when `x`'s dtype is not the weight's, a libtorch error.
    pub fn f_forward(&self, x: &Tensor) -> Result<Tensor> {
        let shape = x.size();
        let in_features = self.weight.size()[1];
        if shape.last() != Some(&in_features) {
            let expected = vec![in_features];
            return Err(PruneError::ShapeMismatch { parameter: "input", expected, actual: shape });
        }
        if x.kind() != self.weight.kind() {
            let (kind, expected) = (x.kind(), "the weight's dtype");
            return Err(PruneError::UnsupportedKind { parameter: "input", kind, expected });
        }
        let x2d = x.f_reshape([-1, in_features])?;
        let choice = self.decision(&x2d)?.map_or(Candidate::Dense, |d| d.choice);
        self.f_forward_with(x, choice)
    }

    /// The forward pass with a given kernel instead of the cached choice (`Sparse` on a
    /// dense-only layer runs dense), e.g. to compare them.
    ///
    /// # Errors
    /// As [`f_forward`](Self::f_forward).
    ///
    /// ```
    /// use tch::{Device, Kind, Tensor};
    /// use tch_prune::semi_sparse::{Candidate, SemiSparseLinear};
    ///
    /// let w = Tensor::eye(16, (Kind::Float, Device::Cpu));
    /// let layer = SemiSparseLinear::new(&w, None)?;
    /// let x = Tensor::ones([2, 16], (Kind::Float, Device::Cpu));
    /// assert!(layer.f_forward_with(&x, Candidate::Sparse { alg_id: 0 })?.equal(&x));
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn f_forward_with(&self, x: &Tensor, candidate: Candidate) -> Result<Tensor> {
        let shape = x.size();
        let in_features = self.weight.size()[1];
        let Some((_, lead)) = shape.split_last().filter(|(&l, _)| l == in_features) else {
            let expected = vec![in_features];
            return Err(PruneError::ShapeMismatch { parameter: "input", expected, actual: shape });
        };
        let x2d = x.f_reshape([-1, in_features])?;
        let y = self.run(candidate, &x2d)?;
        let mut out = lead.to_vec();
        out.push(self.weight.size()[0]);
        Ok(y.f_reshape(out)?)
    }

    /// Runs one candidate on a 2-D input.
    fn run(&self, candidate: Candidate, x2d: &Tensor) -> Result<Tensor> {
        match (candidate, &self.compressed) {
            (Candidate::Sparse { alg_id }, Some(packed)) => {
                let rows = x2d.size()[0];
                let padded = pad_rows(x2d)?;
                let b = self.bias.as_ref();
                // (W @ xᵀ)ᵀ with the transpose fused (`transpose_result`); split_k 1, mode -1
                // are libtorch's defaults. The same signature in tch 0.24 and 0.26.
                let y = Tensor::f_internal_cslt_sparse_mm(
                    packed,
                    &padded.tr(),
                    b,
                    None,
                    None::<Kind>,
                    true,
                    alg_id,
                    1,
                    -1,
                )?;
                Ok(y.f_narrow(0, 0, rows)?)
            }
            _ => Ok(x2d.f_linear(&self.weight, self.bias.as_ref())?),
        }
    }
}

/// `rows` rounded up to [`DENSE_ROW_MULTIPLE`].
fn padded_rows(rows: i64) -> i64 {
    (rows + DENSE_ROW_MULTIPLE - 1) / DENSE_ROW_MULTIPLE * DENSE_ROW_MULTIPLE
}

/// `x2d` with zero rows appended up to [`padded_rows`] (contiguous).
fn pad_rows(x2d: &Tensor) -> Result<Tensor> {
    let rows = x2d.size()[0];
    let pad = padded_rows(rows) - rows;
    Ok(x2d.f_constant_pad_nd([0, 0, 0, pad])?.f_contiguous()?)
}

impl Module for SemiSparseLinear {
    /// [`f_forward`](SemiSparseLinear::f_forward); on an error (a wrong input), the dense
    /// `linear`, which panics with libtorch's message as tch's `Linear` does.
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.f_forward(xs).unwrap_or_else(|_| xs.linear(&self.weight, self.bias.as_ref()))
    }
}

impl fmt::Debug for SemiSparseLinear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemiSparseLinear")
            .field("shape", &self.weight.size())
            .field("kind", &self.weight.kind())
            .field("device", &self.weight.device())
            .field("sparse", &self.is_sparse())
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn rows_are_padded_to_eight() {
        assert_eq!([1, 8, 9, 64, 250].map(padded_rows), [8, 8, 16, 64, 256]);
        let x = Tensor::ones([3, 16], (Kind::Float, Device::Cpu));
        let p = pad_rows(&x).unwrap();
        assert_eq!(p.size(), [8, 16]);
        assert_eq!(p.narrow(0, 3, 5).abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
}
