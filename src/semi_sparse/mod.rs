//! 2:4 semi-structured sparse inference through cuSPARSELt (`_cslt_compress`,
//! `_cslt_sparse_mm`, `_cslt_sparse_mm_search`, bound with the same signatures in tch 0.24 and
//! 0.26): what PyTorch's `to_sparse_semi_structured` does, redone for Rust.
//!
//! * [`check`](ineligible): the rules a weight must meet, including the 2:4 count the kernels
//!   do not check, each failure a typed [`Ineligible`] reason;
//! * [`SemiSparseLinear`]: the layer, with padding, bias, the fused transpose and a dense
//!   fallback that computes the same result;
//! * [`ChoiceCache`] and [`Timer`]: dense and sparse are timed once per (shape, padded batch,
//!   dtype) and the faster kept, so a converted layer is never slower;
//! * [`convert_linears`]: every `Linear` of a model, with a [`ConversionReport`].
//!
//! Only cuSPARSELt is used: the CUTLASS kernels need SM 8.x and fail on Hopper. On the CPU
//! everything falls back to dense; docs/gpu.md says what is left to run on a GPU.

mod check;
mod choose;
mod convert;
mod layer;

pub use check::{check_weight, ineligible, Ineligible, DENSE_ROW_MULTIPLE, SPARSE_MULTIPLE};
pub use choose::{Candidate, ChoiceCache, ChoiceKey, Decision, Timer, WallClock};
pub use convert::{convert_linears, ConversionReport, LayerOutcome};
pub use layer::SemiSparseLinear;
