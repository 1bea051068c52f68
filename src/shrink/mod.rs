//! Physical channel removal: pruned models that are really smaller and faster.
//!
//! Masks make nothing smaller. Structured pruning pays off when the pruned channels are
//! removed and every layer that depends on them shrinks with them. PyTorch's tools find those
//! layers by tracing (Torch-Pruning's DepGraph, NNI's ModelSpeedup); tch has no graph to trace,
//! so the dependent layers are **declared**:
//!
//! 1. [`ChannelGroup`]s of [`Member`]s (parameter, dimension, index mapping) that must lose the
//!    same units, ready-made in [`presets`], collected in a [`Coupling`];
//! 2. [`ChannelPruning`] ranks units (group Ln magnitude, or your scores) locally or globally
//!    and returns a [`Selection`];
//! 3. optionally [`Selection::mask`] prunes with masks first, for fine-tuning through the
//!    crate's reparametrization (then `remove` the masks);
//! 4. [`Shrink`] removes the units in place and proves on check inputs that the shrunk model
//!    computes what the masked one did; its [`ShrinkReport`] carries the
//!    [`ShrinkManifest`] of new sizes;
//! 5. [`ModelStats`] and [`median_latency`] measure parameters, bytes, MACs and latency.

mod apply;
mod coupling;
mod group;
mod layers;
mod manifest;
pub mod presets;
mod rank;
mod report;
mod selection;
mod stats;
mod verify;

pub use apply::Shrink;
pub use coupling::Coupling;
pub use group::{ChannelGroup, Member, Unit};
pub use manifest::{GroupSize, LayerSize, ShrinkManifest};
pub use rank::ChannelPruning;
pub use report::ShrinkReport;
pub use selection::Selection;
pub use stats::{median_latency, LayerStats, ModelStats};
