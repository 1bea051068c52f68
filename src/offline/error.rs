//! [`OfflineError`]: what can go wrong reading, pruning or writing checkpoints on disk.

use std::path::PathBuf;

/// Everything that can go wrong in offline pruning ([`crate::offline`]).
///
/// Each variant names the file and, where there is one, the tensor at fault, with the value
/// found and the limit it broke. When an operation returns one of these, nothing was written:
/// outputs go to temporary files that are only renamed into place once everything succeeded.
///
/// ```
/// use tch_prune::offline::{Checkpoint, OfflineError};
///
/// let err = Checkpoint::open("no/such/model.safetensors").unwrap_err();
/// assert!(matches!(err, OfflineError::Io { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OfflineError {
    /// A file could not be opened, read, written or renamed.
    #[error("{path:?}: cannot {operation}: {source}")]
    Io {
        /// What was being done (`"open"`, `"read"`, `"write"`, `"rename"`, ...).
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A safetensors header that cannot be parsed or is inconsistent (bad length, not JSON,
    /// overlapping or out-of-order offsets, a size that does not match shape and dtype).
    #[error("{file:?}: bad safetensors header{}: {reason}", tensor_note(.tensor))]
    Header {
        /// The file.
        file: PathBuf,
        /// The tensor at fault, when the problem is one tensor's entry.
        tensor: Option<String>,
        /// What is wrong.
        reason: String,
    },

    /// A dtype the safetensors format does not define.
    #[error("{file:?}: tensor {tensor:?} has unknown dtype {dtype:?}")]
    UnknownDtype {
        /// The file.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// The dtype string found.
        dtype: String,
    },

    /// The file ends before the data its header describes.
    #[error("{file:?}: truncated: tensor {tensor:?} needs the file to be {needed} bytes, it is {actual}")]
    Truncated {
        /// The file.
        file: PathBuf,
        /// The first tensor whose data lies past the end.
        tensor: String,
        /// The file size the header implies.
        needed: u64,
        /// The actual file size.
        actual: u64,
    },

    /// A sharded checkpoint's index (`model.safetensors.index.json`) that is malformed or does
    /// not agree with its shards.
    #[error("{file:?}: bad index{}: {reason}", tensor_note(.tensor))]
    Index {
        /// The index file.
        file: PathBuf,
        /// The tensor at fault, if one.
        tensor: Option<String>,
        /// What is wrong.
        reason: String,
    },

    /// A shard named in the index does not exist.
    #[error("{index:?}: shard {shard:?} (holding tensor {tensor:?}) is missing")]
    MissingShard {
        /// The index file.
        index: PathBuf,
        /// The missing shard file.
        shard: PathBuf,
        /// A tensor the index places in it.
        tensor: String,
    },

    /// A name pattern (include or exclude) that matches no tensor of the checkpoint.
    #[error("{checkpoint:?}: pattern {pattern:?} matches no tensor")]
    PatternMatchesNothing {
        /// The checkpoint.
        checkpoint: PathBuf,
        /// The pattern.
        pattern: String,
    },

    /// The selection (patterns, rank, dtype) leaves no tensor to prune.
    #[error("{checkpoint:?}: no tensor is selected for pruning ({reason})")]
    EmptySelection {
        /// The checkpoint.
        checkpoint: PathBuf,
        /// Why (the filters in force).
        reason: String,
    },

    /// A selected tensor the method cannot prune (its dtype, rank or shape).
    #[error("{file:?}: tensor {tensor:?}: {reason}")]
    Unsupported {
        /// The file holding it.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// Why.
        reason: String,
    },

    /// The Wanda norms file lacks a selected tensor's norms, or they have the wrong shape or
    /// dtype, or hold a negative or NaN value.
    #[error("{file:?}: norms for tensor {tensor:?}: {reason}")]
    Norms {
        /// The norms file.
        file: PathBuf,
        /// The weight whose norms are at fault.
        tensor: String,
        /// What is wrong.
        reason: String,
    },

    /// A compressed (bitmask or CSR) checkpoint whose parts do not agree.
    #[error("{file:?}: compressed tensor {tensor:?}: {reason}")]
    Compressed {
        /// The file.
        file: PathBuf,
        /// The compressed tensor (its original name).
        tensor: String,
        /// What is wrong.
        reason: String,
    },

    /// The output would overwrite the input (or lie inside a sharded input's folder).
    #[error("output {output:?} is the input {input:?}; the input is never modified")]
    OutputIsInput {
        /// The input checkpoint.
        input: PathBuf,
        /// The output path given.
        output: PathBuf,
    },

    /// An argument out of range (an amount, an N:M pattern, a chunk size).
    #[error("{parameter}: {reason}")]
    InvalidArgument {
        /// The argument.
        parameter: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A pruning error from the in-memory side (amounts, N:M patterns), or libtorch's when
    /// loading into tensors.
    #[error(transparent)]
    Prune(#[from] crate::PruneError),
}

/// `" (tensor \"x\")"` or nothing.
fn tensor_note(tensor: &Option<String>) -> String {
    tensor.as_ref().map(|t| format!(" (tensor {t:?})")).unwrap_or_default()
}

impl From<tch::TchError> for OfflineError {
    fn from(e: tch::TchError) -> Self {
        Self::Prune(crate::PruneError::Torch(e))
    }
}

/// `Result` with [`OfflineError`].
///
/// ```
/// fn open(p: &str) -> tch_prune::offline::OfflineResult<usize> {
///     Ok(tch_prune::offline::Checkpoint::open(p)?.shards().len())
/// }
/// assert!(open("/nonexistent").is_err());
/// ```
pub type OfflineResult<T> = std::result::Result<T, OfflineError>;

/// An [`OfflineError::Io`] for `path`.
pub(crate) fn io_error<'p>(
    operation: &'static str,
    path: &'p std::path::Path,
) -> impl FnOnce(std::io::Error) -> OfflineError + 'p {
    move |source| OfflineError::Io { operation, path: path.to_path_buf(), source }
}
