//! Offline pruning: safetensors checkpoints of any size pruned on disk, streamed in bounded
//! memory, and sparse weights stored compactly.
//!
//! Nothing here loads a model. A [`Checkpoint`] (one `.safetensors` file, or a sharded
//! checkpoint: a folder with `model.safetensors.index.json`) is opened by reading and
//! validating its headers only; [`prune`] then reads the data through memory maps of a few MiB
//! at a time and writes the output through temporary files renamed at the end. Peak memory is
//! a few windows plus 2 MiB of histograms, whatever the size of the checkpoint or of its largest
//! tensor (per-row rules hold one row; decompressing holds one row).
//!
//! * **Selection** ([`Selection`]): name patterns (include / exclude, `*` and `?`) and rank;
//!   float dtypes only (f16, bf16, f32, f64); every other dtype passes through untouched.
//! * **Methods** ([`OfflineMethod`]): L1 magnitude per tensor, per row or global over the
//!   selection ([`Scope`]); random; N:M along the last dimension; Wanda (`|W| * sqrt(norm)`
//!   per row or N:M, norms from a safetensors file, see below).
//! * **Exact**: thresholds come from histograms over the bit patterns of `|w|` (one pass for
//!   bf16/f16, two for f32), never from samples. Exactly `k` entries are pruned; entries that tie
//!   at the threshold go in checkpoint order, lowest (shard, position in file, index) first. Where
//!   nothing ties, the masks are those of the in-memory
//!   [`global_unstructured`](crate::Pruner::global_unstructured) /
//!   [`L1Unstructured`](crate::L1Unstructured) with the tensors listed in checkpoint order, and
//!   N:M masks those of [`SemiStructured`](crate::SemiStructured).
//! * **Output** ([`Format`]): dense (a drop-in checkpoint: same names, shapes, dtypes, shard
//!   layout and index; pruned entries are `+0.0`; the settings in `__metadata__` under
//!   [`METADATA_KEY`]) or compressed and lossless (bitmask, CSR, or the smaller per tensor);
//!   [`densify`] and [`load_compressed`] read compressed files back. [`report`] gives
//!   per-tensor sparsity and sizes; [`dry_run`] what a run would prune.
//! * **Errors** ([`OfflineError`]) name the file and the tensor; nothing is written on error and
//!   the input is never modified.
//!
//! **Wanda norms.** A safetensors file with one f32 vector per weight: Wanda's `scaler_row`
//! (the mean squared norm of each input column over the calibration tokens), under the weight's
//! name or its module's name (the weight's name without `.weight`). The per-row rule prunes
//! `int(columns * sparsity)` entries of each row with a stable sort, as the reference; the N:M
//! rule the `m - n` smallest scores of each group (ties lowest index first).
//!
//! **Files changed under a run.** Checkpoints are read through memory maps: a file truncated or
//! rewritten by another process while a run reads it is outside what the tool can guard
//! against (its headers were validated when it was opened).
//!
//! ```
//! use tch::{kind::FLOAT_CPU, Tensor};
//! use tch_prune::offline::{prune, Checkpoint, NoProgress, OfflineMethod, PruneOptions};
//!
//! let dir = std::env::temp_dir().join(format!("tch-prune-doc-offline-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let w = Tensor::from_slice(&[0.5f32, -1.0, 0.25, 2.0, -3.0, 0.1, 0.2, 4.0]).reshape([2, 4]);
//! Tensor::write_safetensors(&[("fc.weight", &w)], dir.join("model.safetensors"))?;
//!
//! let ckpt = Checkpoint::open(dir.join("model.safetensors"))?;
//! let options = PruneOptions::new(OfflineMethod::SemiStructured { n: 2, m: 4 });
//! prune(&ckpt, dir.join("pruned.safetensors"), &options, &NoProgress)?;
//! let out = Tensor::read_safetensors(dir.join("pruned.safetensors"))?;
//! assert_eq!(Vec::<f32>::try_from(&out[0].1.reshape([-1]))?, vec![0.0, -1.0, 0.0, 2.0, -3.0, 0.0, 0.0, 4.0]);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod checkpoint;
mod densify;
mod dry_run;
mod dtype;
mod error;
mod formats;
mod header;
mod plan;
mod progress;
mod prune;
mod report;
mod rules;
mod shard;
mod stream;
mod threshold;
mod wanda;
mod write;

pub use checkpoint::{Checkpoint, Shard, INDEX_NAME};
pub use densify::{densify, load_compressed};
pub use dry_run::{dry_run, PlannedTensor};
pub use error::{OfflineError, OfflineResult};
pub use formats::Format;
pub use header::TensorInfo;
pub use plan::{OfflineMethod, Scope, Selection, WandaPattern};
pub use progress::{NoProgress, Progress};
pub use prune::{compress, prune, PruneOptions, PruneSummary, TensorSummary, METADATA_KEY};
pub use report::{report, CheckpointReport, TensorReport};
pub use stream::DEFAULT_WINDOW_BYTES;
