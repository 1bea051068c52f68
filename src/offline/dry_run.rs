//! [`dry_run`]: what a run would prune, from the headers alone.

use serde::Serialize;

use super::checkpoint::Checkpoint;
use super::error::OfflineResult;
use super::plan::{check_method, resolve, OfflineMethod, Scope, WandaPattern};
use super::prune::PruneOptions;

/// One tensor a run would prune (see [`dry_run`]'s example).
///
/// ```
/// let p = tch_prune::offline::PlannedTensor { name: "w".into(), dtype: "BF16".into(), shape: vec![4, 4], file: "m.safetensors".into(), to_prune: Some(8) };
/// assert_eq!(p.to_prune, Some(8));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedTensor {
    /// The tensor.
    pub name: String,
    /// Its dtype.
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its shard file.
    pub file: String,
    /// How many entries would be pruned; `None` for a global selection, where only the total
    /// is known before the data is read.
    pub to_prune: Option<u64>,
}

/// The tensors `options` selects in `input` and, where the headers tell, how many entries of
/// each would be pruned, with the total for the selection. Reads no tensor data, writes
/// nothing; fails exactly where [`prune`](super::prune) would fail before reading data.
///
/// # Errors
/// As [`prune`](super::prune)'s checks: patterns matching nothing, an empty selection, an N:M
/// group that does not divide a tensor, an amount out of range.
///
/// ```
/// use tch::Tensor;
/// use tch_prune::offline::{dry_run, Checkpoint, OfflineMethod, PruneOptions};
///
/// let dir = std::env::temp_dir().join(format!("tch-prune-doc-dry-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// Tensor::write_safetensors(&[("w", &Tensor::ones([4, 8], tch::kind::FLOAT_CPU))], dir.join("m.safetensors"))?;
/// let ckpt = Checkpoint::open(dir.join("m.safetensors"))?;
/// let (planned, total) = dry_run(&ckpt, &PruneOptions::new(OfflineMethod::SemiStructured { n: 2, m: 4 }))?;
/// assert_eq!((planned[0].to_prune, total), (Some(16), 16));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn dry_run(
    input: &Checkpoint,
    options: &PruneOptions,
) -> OfflineResult<(Vec<PlannedTensor>, u64)> {
    let method = &options.method;
    check_method(method)?;
    let targets = resolve(input, &options.selection, method)?;
    let mut planned = Vec::with_capacity(targets.len());
    let mut numel_total = 0u64;
    for t in &targets {
        let shard = &input.shards()[t.shard];
        let info = &shard.tensors[t.tensor];
        let numel = info.numel();
        numel_total += numel;
        let row = info.shape.last().copied().unwrap_or(1) as u64;
        let rows = numel.checked_div(row).unwrap_or(0);
        let to_prune = match method {
            OfflineMethod::Magnitude { scope: Scope::Global, .. } => None,
            OfflineMethod::Magnitude { scope: Scope::Tensor, amount }
            | OfflineMethod::Random { amount, .. } => Some(amount.count_for(numel as i64)? as u64),
            OfflineMethod::Magnitude { scope: Scope::Row, amount } => {
                Some(rows * amount.count_for(row as i64)? as u64)
            }
            OfflineMethod::SemiStructured { n, m } => Some(numel / *m as u64 * (m - n) as u64),
            OfflineMethod::Wanda { pattern: WandaPattern::SemiStructured { n, m }, .. } => {
                Some(numel / *m as u64 * (m - n) as u64)
            }
            OfflineMethod::Wanda { pattern: WandaPattern::Row { sparsity }, .. } => {
                Some(rows * (row as f64 * sparsity) as u64)
            }
        };
        planned.push(PlannedTensor {
            name: info.name.clone(),
            dtype: info.dtype.to_string(),
            shape: info.shape.clone(),
            file: shard.file_name(),
            to_prune,
        });
    }
    let total = match method {
        OfflineMethod::Magnitude { scope: Scope::Global, amount } => {
            amount.count_for(numel_total as i64)? as u64
        }
        _ => planned.iter().filter_map(|p| p.to_prune).sum(),
    };
    Ok((planned, total))
}
