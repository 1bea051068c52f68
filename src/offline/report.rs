//! [`report`]: per-tensor and global sparsity of a checkpoint on disk, with bytes on disk and
//! bytes dense, compressed tensors included.

use serde::Serialize;

use super::checkpoint::Checkpoint;
use super::error::{io_error, OfflineResult};
use super::formats::{find_groups, Item};
use super::progress::Progress;
use super::stream::{for_each_window, DEFAULT_WINDOW_BYTES};

/// One tensor of a [`CheckpointReport`] (see [`report`]'s example).
///
/// ```
/// let t = tch_prune::offline::TensorReport {
///     name: "w".into(), dtype: "F32".into(), shape: vec![2, 2], storage: "dense",
///     numel: 4, zeros: 1, bytes_on_disk: 16, bytes_dense: 16,
/// };
/// assert_eq!(t.sparsity(), 0.25);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorReport {
    /// The tensor (its original name when stored compressed).
    pub name: String,
    /// Its dtype, as in safetensors headers.
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// How it is stored: `"dense"`, `"bitmask"` or `"csr"`.
    pub storage: &'static str,
    /// Number of elements.
    pub numel: u64,
    /// Elements whose bits are all zero (`+0.0`; `-0.0` counts as stored).
    pub zeros: u64,
    /// Bytes its entries take on disk.
    pub bytes_on_disk: u64,
    /// Bytes it takes dense.
    pub bytes_dense: u64,
}

impl TensorReport {
    /// Fraction of zero elements (0 for an empty tensor); see the type's example.
    pub fn sparsity(&self) -> f64 {
        if self.numel == 0 {
            0.0
        } else {
            self.zeros as f64 / self.numel as f64
        }
    }
}

/// Sparsity and storage of every tensor of a checkpoint (see [`report`]'s example).
///
/// ```
/// let r = tch_prune::offline::CheckpointReport { tensors: vec![], global_sparsity: 0.0, bytes_on_disk: 0, bytes_dense: 0 };
/// assert_eq!(r.bytes_dense, 0);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointReport {
    /// Every tensor, in checkpoint order.
    pub tensors: Vec<TensorReport>,
    /// Zero elements over all elements.
    pub global_sparsity: f64,
    /// Bytes of tensor data on disk.
    pub bytes_on_disk: u64,
    /// Bytes of tensor data dense.
    pub bytes_dense: u64,
}

/// Reads every tensor once (streamed) and reports its sparsity and sizes.
///
/// # Errors
/// As [`Checkpoint::open`] and [`densify`](super::densify) for corrupt compressed tensors.
///
/// ```
/// use tch::Tensor;
/// use tch_prune::offline::{report, Checkpoint, NoProgress};
///
/// let dir = std::env::temp_dir().join(format!("tch-prune-doc-report-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let w = Tensor::from_slice(&[0.0f32, 2.0, 0.0, 4.0]).reshape([2, 2]);
/// Tensor::write_safetensors(&[("w", &w)], dir.join("m.safetensors"))?;
/// let r = report(&Checkpoint::open(dir.join("m.safetensors"))?, &NoProgress)?;
/// assert_eq!((r.tensors[0].zeros, r.global_sparsity), (2, 0.5));
/// println!("{}", r.to_table());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn report(input: &Checkpoint, progress: &dyn Progress) -> OfflineResult<CheckpointReport> {
    let mut tensors = Vec::new();
    progress.start("report", input.data_bytes());
    for shard in input.shards() {
        let src = std::fs::File::open(&shard.path).map_err(io_error("open", &shard.path))?;
        for item in &mut find_groups(&shard.path, &shard.tensors)? {
            let (name, dtype, shape, size, storage, on_disk) = match item {
                Item::Plain(t) => (
                    t.name.clone(),
                    t.dtype,
                    t.shape.clone(),
                    t.dtype.bitsize().div_ceil(8).max(1),
                    "dense",
                    t.len,
                ),
                Item::Compressed(g) => {
                    let storage = if g.encoding == super::formats::Encoding::Bitmask {
                        "bitmask"
                    } else {
                        "csr"
                    };
                    let on_disk =
                        g.parts.iter().map(|p| p.len).sum::<u64>() + 8 * g.shape.len() as u64;
                    (g.name.clone(), g.dtype, g.shape.clone(), g.size, storage, on_disk)
                }
            };
            let mut zeros = 0u64;
            let mut count = |bytes: &[u8]| {
                zeros +=
                    bytes.chunks_exact(size).filter(|e| e.iter().all(|&b| b == 0)).count() as u64;
                Ok(())
            };
            match item {
                Item::Plain(t) => {
                    for_each_window(&src, &shard.path, t, 1, size, DEFAULT_WINDOW_BYTES, |_, b| {
                        count(b)
                    })?
                }
                Item::Compressed(g) => g.decode(count)?,
            }
            progress.advance(on_disk);
            let numel = shape.iter().product::<usize>() as u64;
            let bytes_dense = numel * size as u64;
            tensors.push(TensorReport {
                name,
                dtype: dtype.to_string(),
                shape,
                storage,
                numel,
                zeros,
                bytes_on_disk: on_disk,
                bytes_dense,
            });
        }
    }
    progress.finish();
    let numel: u64 = tensors.iter().map(|t| t.numel).sum();
    let zeros: u64 = tensors.iter().map(|t| t.zeros).sum();
    Ok(CheckpointReport {
        global_sparsity: if numel == 0 { 0.0 } else { zeros as f64 / numel as f64 },
        bytes_on_disk: tensors.iter().map(|t| t.bytes_on_disk).sum(),
        bytes_dense: tensors.iter().map(|t| t.bytes_dense).sum(),
        tensors,
    })
}

impl CheckpointReport {
    /// An aligned text table: one line per tensor, then the totals.
    ///
    /// ```
    /// # use tch_prune::offline::CheckpointReport;
    /// let r = CheckpointReport { tensors: vec![], global_sparsity: 0.0, bytes_on_disk: 0, bytes_dense: 0 };
    /// assert!(r.to_table().contains("total"));
    /// ```
    pub fn to_table(&self) -> String {
        let width = self.tensors.iter().map(|t| t.name.len()).max().unwrap_or(0).max(6);
        let mut s = format!(
            "{:<width$}  {:>5}  {:>7}  {:>14}  {:>8}  {:>14}  {:>14}\n",
            "tensor", "dtype", "storage", "elements", "sparsity", "bytes on disk", "bytes dense"
        );
        for t in &self.tensors {
            s.push_str(&format!(
                "{:<width$}  {:>5}  {:>7}  {:>14}  {:>7.2}%  {:>14}  {:>14}\n",
                t.name,
                t.dtype,
                t.storage,
                t.numel,
                100.0 * t.sparsity(),
                t.bytes_on_disk,
                t.bytes_dense
            ));
        }
        s.push_str(&format!(
            "{:<width$}  {:>5}  {:>7}  {:>14}  {:>7.2}%  {:>14}  {:>14}\n",
            "total",
            "",
            "",
            self.tensors.iter().map(|t| t.numel).sum::<u64>(),
            100.0 * self.global_sparsity,
            self.bytes_on_disk,
            self.bytes_dense
        ));
        s
    }
}
