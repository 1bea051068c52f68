//! [`TieBreak`]: which of several entries tied at the magnitude threshold go, when only some
//! of them do.

use serde::{Deserialize, Serialize};

/// Which entries go when several entries tie at the threshold of
/// [`L1Unstructured`](crate::L1Unstructured) (alone, in a container, or in global pruning) and
/// only some of them are to be pruned.
///
/// A fresh `f32` initialisation has 2^24 distinct values, so with a few million weights two
/// entries often share the cut-off value; after prune, `remove`, prune, every zeroed entry
/// ties at 0.
///
/// * [`TieBreak::PyTorch`] (the default): the entries libtorch's `topk` returns, so masks equal
///   PyTorch's bit for bit. On large CPU tensors the crate replays `topk`'s selection (an
///   introselect over every competing entry, 8 bytes each) where ties straddle the cut.
/// * [`TieBreak::LowestIndex`]: the tied entries of lowest index go first (row-major, then
///   parameter order in global pruning). Decided within the linear-time selection pass, with
///   no replay and no extra memory: several times faster where ties straddle the cut (see
///   `docs/benchmarks.md`), and **not PyTorch's mask** there (elsewhere the two agree). Off
///   the CPU fast path (small tensors, other kinds, other devices) libtorch's `topk` still
///   decides, as with the default.
///
/// ```
/// use tch::Tensor;
/// use tch_prune::{L1Unstructured, PruningMethod, TieBreak};
///
/// // 40,000 entries in four magnitude levels: pruning 15,000 cuts through the second level.
/// let w = Tensor::arange(40_000, (tch::Kind::Float, tch::Device::Cpu)).remainder(4).reshape([200, 200]);
/// let ones = w.ones_like();
/// let fast = L1Unstructured::new(15_000)?.with_tie_break(TieBreak::LowestIndex);
/// let mask = fast.compute_mask(&w, &ones)?;
/// // Every 0 goes, then the first 5,000 ones in index order.
/// let pruned_ones = w.eq(1.0).logical_and(&mask.eq(0.0)).reshape([-1]).nonzero().reshape([-1]);
/// assert_eq!(pruned_ones.size(), [5_000]);
/// assert_eq!(pruned_ones.int64_value(&[4_999]), 1 + 4 * 4_999);
/// // The default gives PyTorch's choice among the ones.
/// let exact = L1Unstructured::new(15_000)?.compute_mask(&w, &ones)?;
/// assert_eq!(exact.eq(0.0).sum(tch::Kind::Int64).int64_value(&[]), 15_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: none; PyTorch always takes `topk`'s entries ([`TieBreak::PyTorch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TieBreak {
    /// The entries libtorch's `topk` returns: PyTorch's mask.
    #[default]
    PyTorch,
    /// The tied entries of lowest index first: faster where ties straddle the cut, not
    /// PyTorch's mask there.
    LowestIndex,
}

impl TieBreak {
    /// Whether this is the default, [`TieBreak::PyTorch`] (for serde's `skip_serializing_if`).
    ///
    /// ```
    /// use tch_prune::TieBreak;
    /// assert!(TieBreak::PyTorch.is_pytorch());
    /// assert!(!TieBreak::LowestIndex.is_pytorch());
    /// ```
    pub fn is_pytorch(&self) -> bool {
        *self == TieBreak::PyTorch
    }
}
