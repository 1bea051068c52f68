//! [`Sealed`], the supertrait of [`Pruner`](crate::Pruner): what the crate needs from a pruned
//! model beyond the public operations (undo points for multi-step operations, the parameter
//! names, layer kinds and the rows of a report). Public in a private module, so `Pruner` can be
//! named and used but not implemented outside the crate.

use crate::recipe::LayerKind;
use crate::report::collect::Entry;

pub trait Sealed {
    /// An undo point; see [`begin_undo`](Self::begin_undo).
    type Undo;
    /// Starts recording what later pruning steps change, so that [`undo`](Self::undo) can
    /// put it back (only pruning steps may happen until `undo` or
    /// [`end_undo`](Self::end_undo)).
    fn begin_undo(&mut self) -> Self::Undo;
    /// Undoes every pruning step since `point`.
    fn undo(&mut self, point: Self::Undo);
    /// Keeps every pruning step since `point` and stops recording for it.
    fn end_undo(&mut self, point: Self::Undo);
    /// The full names of the parameters that can be pruned, in the model's order.
    fn parameter_names(&mut self) -> Vec<String>;
    /// The full names of the layers of `kind`; `None` when the model cannot tell layers
    /// apart (a bare `VarStore`).
    fn layers_of_kind(&self, kind: LayerKind) -> Option<Vec<String>>;
    /// The rows of a sparsity report over every parameter, in PyTorch's order.
    fn report_entries(&self) -> Vec<Entry>;
    /// The rows of exactly `names` (full names; trainable or not), in PyTorch's order.
    fn report_entries_named(&self, names: &[&str]) -> crate::error::Result<Vec<Entry>>;
}
