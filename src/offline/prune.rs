//! [`prune`] and [`compress`]: one checkpoint in, one checkpoint out, streamed.
//!
//! The threshold passes read the selected tensors (one pass for bf16/f16 global or per-tensor
//! magnitude, two for f32, none for N:M, per-row, Wanda and random rules), then one pass reads
//! every tensor again and writes the output. Compressed formats add a counting pass over the
//! selected tensors, which sizes every part before the header is written. The shard writers
//! are in `shard.rs` (dense) and `formats/` (compressed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::checkpoint::{Checkpoint, INDEX_NAME};
use super::error::{io_error, OfflineError, OfflineResult};
use super::formats::{write_compressed_shard, Format};
use super::header::TensorInfo;
use super::plan::{check_method, resolve, OfflineMethod, Selection, Target};
use super::progress::Progress;
use super::rules::{prepare_rules, Rule, Scratch};
use super::shard::{write_dense_shard, Ctx, PlanEntry};
use super::stream::{Files, DEFAULT_WINDOW_BYTES};
use super::threshold::CutState;
use super::write::{output_layout, Staged};

/// The `__metadata__` key under which the pruning settings are recorded (a JSON string).
///
/// ```
/// assert_eq!(tch_prune::offline::METADATA_KEY, "tch_prune");
/// ```
pub const METADATA_KEY: &str = "tch_prune";

/// Settings of a run.
///
/// ```
/// use tch_prune::offline::{Format, OfflineMethod, PruneOptions, Scope, Selection};
/// let options = PruneOptions::new(OfflineMethod::Magnitude { scope: Scope::Global, amount: 0.5.into() })
///     .selection(Selection::new().exclude(["lm_head.weight"]))
///     .format(Format::Bitmask);
/// ```
#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub(crate) method: OfflineMethod,
    pub(crate) selection: Selection,
    pub(crate) format: Format,
    pub(crate) window_bytes: usize,
}

impl PruneOptions {
    /// `method` on every float tensor of rank >= 2, written dense (the setters are shown in
    /// the type's example).
    pub fn new(method: OfflineMethod) -> Self {
        Self {
            method,
            selection: Selection::new(),
            format: Format::Dense,
            window_bytes: DEFAULT_WINDOW_BYTES,
        }
    }

    /// Which tensors to prune.
    pub fn selection(mut self, selection: Selection) -> Self {
        self.selection = selection;
        self
    }

    /// How the output stores the pruned tensors.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Bytes of data mapped at a time (default 8 MiB); memory use is a small multiple of it.
    pub fn window_bytes(mut self, bytes: usize) -> Self {
        self.window_bytes = bytes.max(64);
        self
    }
}

/// What a run did to one tensor (see [`prune`]'s example for a run).
///
/// ```
/// let t = tch_prune::offline::TensorSummary { name: "w".into(), numel: 4, pruned: 2 };
/// assert_eq!(t.pruned * 2, t.numel);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorSummary {
    /// The tensor.
    pub name: String,
    /// Its number of elements.
    pub numel: u64,
    /// Entries the rule zeroed (entries that were zero already and were selected count too).
    pub pruned: u64,
}

/// What a run did.
///
/// ```
/// let s = tch_prune::offline::PruneSummary { tensors: vec![], files: vec![] };
/// assert!(s.files.is_empty());
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct PruneSummary {
    /// The pruned tensors, in checkpoint order.
    pub tensors: Vec<TensorSummary>,
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// Prunes the checkpoint `input` into `output` (a file for a single-file input, a folder for a
/// sharded one), streaming: memory stays bounded whatever the size of the checkpoint.
///
/// With [`Format::Dense`] the output is a drop-in checkpoint: the same tensor names, shapes,
/// dtypes, shard layout and index, pruned entries set to +0.0, and the settings recorded in
/// each shard's `__metadata__` under [`METADATA_KEY`].
///
/// # Errors
/// Bad input (see [`OfflineError`]), an output that would overwrite the input, I/O errors.
/// Nothing is written on error.
///
/// ```
/// use tch::{kind::FLOAT_CPU, Tensor};
/// use tch_prune::offline::{prune, Checkpoint, NoProgress, OfflineMethod, PruneOptions, Scope};
///
/// let dir = std::env::temp_dir().join(format!("tch-prune-doc-prune-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let w = Tensor::from_slice(&[1.0f32, -2.0, 3.0, -4.0]).reshape([2, 2]);
/// Tensor::write_safetensors(&[("w", &w)], dir.join("in.safetensors"))?;
///
/// let ckpt = Checkpoint::open(dir.join("in.safetensors"))?;
/// let method = OfflineMethod::Magnitude { scope: Scope::Global, amount: 0.5.into() };
/// prune(&ckpt, dir.join("out.safetensors"), &PruneOptions::new(method), &NoProgress)?;
///
/// let out = Tensor::read_safetensors(dir.join("out.safetensors"))?;
/// assert_eq!(Vec::<f32>::try_from(&out[0].1.reshape([-1]))?, vec![0.0, 0.0, 3.0, -4.0]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn prune(
    input: &Checkpoint,
    output: impl AsRef<Path>,
    options: &PruneOptions,
    progress: &dyn Progress,
) -> OfflineResult<PruneSummary> {
    check_method(&options.method)?;
    run(
        input,
        output.as_ref(),
        &options.selection,
        Some(&options.method),
        options.format,
        options.window_bytes,
        progress,
    )
}

/// Writes `input` to `output` with the selected tensors compressed as `format` (no pruning):
/// the dense-to-bitmask conversion of an already pruned checkpoint.
///
/// # Errors
/// As [`prune`].
///
/// ```
/// use tch::{kind::FLOAT_CPU, Tensor};
/// use tch_prune::offline::{compress, densify, Checkpoint, Format, NoProgress, Selection};
///
/// let dir = std::env::temp_dir().join(format!("tch-prune-doc-compress-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let w = Tensor::from_slice(&[0.0f32, 2.0, 0.0, 0.0, 5.0, 0.0]).reshape([2, 3]);
/// Tensor::write_safetensors(&[("w", &w)], dir.join("in.safetensors"))?;
/// let ckpt = Checkpoint::open(dir.join("in.safetensors"))?;
/// compress(&ckpt, dir.join("c.safetensors"), &Selection::new(), Format::Bitmask, &NoProgress)?;
/// densify(&Checkpoint::open(dir.join("c.safetensors"))?, dir.join("d.safetensors"), &NoProgress)?;
/// let back = Tensor::read_safetensors(dir.join("d.safetensors"))?;
/// assert!(back[0].1.equal(&w));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn compress(
    input: &Checkpoint,
    output: impl AsRef<Path>,
    selection: &Selection,
    format: Format,
    progress: &dyn Progress,
) -> OfflineResult<PruneSummary> {
    run(input, output.as_ref(), selection, None, format, DEFAULT_WINDOW_BYTES, progress)
}

/// The settings recorded in the output's metadata.
#[derive(Serialize)]
struct Settings<'a> {
    version: &'static str,
    method: Option<&'a OfflineMethod>,
    selection: &'a Selection,
    format: Format,
}

fn run(
    ckpt: &Checkpoint,
    output: &Path,
    selection: &Selection,
    method: Option<&OfflineMethod>,
    format: Format,
    window: usize,
    progress: &dyn Progress,
) -> OfflineResult<PruneSummary> {
    let any_method = OfflineMethod::Magnitude {
        scope: super::plan::Scope::Tensor,
        amount: crate::Amount::Count(0),
    };
    let targets = resolve(ckpt, selection, method.unwrap_or(&any_method))?;
    let (dir, shard_paths) = output_layout(ckpt, output)?;
    let files = Files::open(ckpt.shards().iter().map(|s| s.path.clone()))?;
    let infos: Vec<&TensorInfo> =
        targets.iter().map(|t| &ckpt.shards()[t.shard].tensors[t.tensor]).collect();
    let rules = match method {
        Some(m) => prepare_rules(&files, &infos, &targets, m, window, progress)?
            .into_iter()
            .map(Some)
            .collect(),
        None => vec![None; targets.len()],
    };
    let settings = Settings { version: env!("CARGO_PKG_VERSION"), method, selection, format };
    let settings = serde_json::to_string(&settings).map_err(|e| OfflineError::InvalidArgument {
        parameter: "settings",
        reason: e.to_string(),
    })?;

    let mut staged = Staged::default();
    staged.ensure_dir(&dir)?;
    let mut ctx = Ctx {
        files: &files,
        window,
        global: [CutState::new(None); 2],
        scratch: Scratch::default(),
        buf: Vec::new(),
        progress,
    };
    if let Some(Some(rule)) = rules.iter().find(|r| r.as_ref().is_some_and(Rule::is_global)) {
        ctx.global = [rule.fresh_state(); 2];
    }
    let mut summaries = Vec::with_capacity(targets.len());
    let mut new_map: BTreeMap<String, String> = BTreeMap::new();
    let mut total_size = 0u64;
    progress.start("write", ckpt.data_bytes());
    for (s, shard) in ckpt.shards().iter().enumerate() {
        let mut metadata = shard.metadata.clone();
        metadata.insert(METADATA_KEY.to_string(), settings.clone());
        // This shard's tensors, each with its target rule if selected.
        let plan: Vec<PlanEntry<'_>> = shard
            .tensors
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let t = targets.iter().position(|t: &Target| t.shard == s && t.tensor == i);
                let rule = t.map(|t| (rules[t].as_ref(), targets[t].float));
                match rule {
                    Some((Some(r), f)) => (info, Some((r, f)), t),
                    Some((None, f)) => (info, Some((&NO_RULE, f)), t),
                    None => (info, None, None),
                }
            })
            .collect();
        let mut pruned = vec![0u64; plan.len()];
        let out = if format == Format::Dense {
            write_dense_shard(
                &mut staged,
                &shard_paths[s],
                s,
                &plan,
                &metadata,
                &mut ctx,
                &mut pruned,
            )?
        } else {
            write_compressed_shard(
                &mut staged,
                &shard_paths[s],
                s,
                &plan,
                &metadata,
                format,
                &mut ctx,
                &mut pruned,
            )?
        };
        total_size += out.data_bytes;
        let file_name = shard.file_name();
        new_map.extend(out.names.into_iter().map(|n| (n, file_name.clone())));
        for ((info, _, t), p) in plan.iter().zip(&pruned) {
            if t.is_some() {
                summaries.push(TensorSummary {
                    name: info.name.clone(),
                    numel: info.numel(),
                    pruned: *p,
                });
            }
        }
    }
    progress.finish();
    if let Some((index, json)) = ckpt.index() {
        let target = dir.join(INDEX_NAME);
        if format == Format::Dense {
            // Same tensors in the same shards: the index is copied byte for byte.
            let bytes = std::fs::read(index).map_err(io_error("read", index))?;
            staged.write_all(&target, &bytes)?;
        } else {
            let mut json = json.clone();
            json["weight_map"] = serde_json::to_value(&new_map).unwrap_or_default();
            json["metadata"]["total_size"] = total_size.into();
            let text = serde_json::to_string_pretty(&json).map_err(|e| {
                OfflineError::InvalidArgument { parameter: "index", reason: e.to_string() }
            })?;
            staged.write_all(&target, text.as_bytes())?;
        }
    }
    let files = staged.commit()?;
    Ok(PruneSummary { tensors: summaries, files })
}

/// A rule that prunes nothing (compression without pruning).
static NO_RULE: Rule = Rule::Cut { cut: None, space: super::dtype::KeySpace::F32, global: false };
