//! [`PruningType`]: what a method prunes.

use serde::{Deserialize, Serialize};

/// What a pruning method removes, which decides how a
/// [`PruningContainer`](crate::PruningContainer) combines it with earlier masks.
///
/// ```
/// use tch_prune::{LnStructured, PruningMethod, PruningType};
///
/// let method = LnStructured::new(0.5, 2, 0)?;
/// assert_eq!(method.pruning_type(), PruningType::Structured { dim: 0 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: the `PRUNING_TYPE` strings `"unstructured"`, `"structured"` (with the
/// method's `dim` attribute) and `"global"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruningType {
    /// Single entries; a container hands the method the flat vector of entries whose mask is 1.
    Unstructured,
    /// Whole slices along `dim` (negative counts from the end); a container hands the method
    /// the channels that are not yet entirely zero.
    Structured {
        /// The dimension whose slices ("channels") are pruned.
        dim: i64,
    },
    /// The whole tensor at once; a container hands the method everything.
    Global,
}
