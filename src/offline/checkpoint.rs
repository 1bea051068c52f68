//! [`Checkpoint`]: a single `.safetensors` file or a sharded checkpoint (a folder with its
//! `model.safetensors.index.json`), with every header read and validated before any data is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{io_error, OfflineError, OfflineResult};
use super::header::{read_header, TensorInfo};

/// The index file name transformers writes next to the shards.
///
/// ```
/// assert_eq!(tch_prune::offline::INDEX_NAME, "model.safetensors.index.json");
/// ```
pub const INDEX_NAME: &str = "model.safetensors.index.json";

/// One file of a checkpoint.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("tch-prune-doc-shard-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("model.safetensors");
/// # tch::Tensor::write_safetensors(&[("w", &tch::Tensor::ones([2], tch::kind::FLOAT_CPU))], &path)?;
/// let ckpt = tch_prune::offline::Checkpoint::open(&dir)?;
/// let shard = &ckpt.shards()[0];
/// assert_eq!((shard.file_name().as_str(), shard.tensors.len()), ("model.safetensors", 1));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Shard {
    /// The file.
    pub path: PathBuf,
    /// Its tensors, in data order (the order of their bytes in the file).
    pub tensors: Vec<TensorInfo>,
    /// Its `__metadata__`.
    pub metadata: BTreeMap<String, String>,
}

impl Shard {
    /// The file name (what the index's `weight_map` names); see the type's example.
    pub fn file_name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// A checkpoint on disk: its shards (one for a single file) with validated headers.
///
/// The tensor order used everywhere (global selection, tie breaking, writing) is the
/// checkpoint order: shards in the order of their file names, and within a shard the order of
/// the tensors' bytes.
///
/// ```
/// use tch_prune::offline::Checkpoint;
/// # let dir = std::env::temp_dir().join(format!("tch-prune-doc-ckpt-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("model.safetensors");
/// # tch::Tensor::write_safetensors(&[("w", &tch::Tensor::ones([2, 3], tch::kind::FLOAT_CPU))], &path)?;
/// let ckpt = Checkpoint::open(&path)?;
/// assert!(!ckpt.is_sharded());
/// let (_, w) = ckpt.tensors().next().unwrap();
/// assert_eq!((w.name.as_str(), w.shape.as_slice()), ("w", &[2usize, 3][..]));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
    index: Option<(PathBuf, Value)>,
    shards: Vec<Shard>,
}

impl Checkpoint {
    /// Opens a checkpoint: a `.safetensors` file, a sharded checkpoint's index file, or a
    /// folder holding `model.safetensors.index.json` (sharded) or `model.safetensors`.
    ///
    /// # Errors
    /// [`OfflineError::Io`] when a file cannot be read; [`OfflineError::Header`],
    /// [`OfflineError::UnknownDtype`] or [`OfflineError::Truncated`] for a corrupt shard;
    /// [`OfflineError::Index`] or [`OfflineError::MissingShard`] for an index that does not
    /// match its shards.
    ///
    /// ```
    /// use tch_prune::offline::{Checkpoint, OfflineError};
    /// assert!(matches!(Checkpoint::open("/nonexistent"), Err(OfflineError::Io { .. })));
    /// ```
    pub fn open(path: impl AsRef<Path>) -> OfflineResult<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(io_error("open", path))?;
        if meta.is_dir() {
            let index = path.join(INDEX_NAME);
            if index.exists() {
                return Self::open_index(&index);
            }
            let single = path.join("model.safetensors");
            if single.exists() {
                return Self::open_file(&single);
            }
            return Err(OfflineError::Io {
                operation: "find a checkpoint in",
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("neither {INDEX_NAME} nor model.safetensors is there"),
                ),
            });
        }
        if path.to_string_lossy().ends_with(".index.json") {
            return Self::open_index(path);
        }
        Self::open_file(path)
    }

    fn open_file(path: &Path) -> OfflineResult<Self> {
        let header = read_header(path)?;
        let shard =
            Shard { path: path.to_path_buf(), tensors: header.tensors, metadata: header.metadata };
        Ok(Self { path: path.to_path_buf(), index: None, shards: vec![shard] })
    }

    fn open_index(index: &Path) -> OfflineResult<Self> {
        let bad = |tensor: Option<&str>, reason: String| OfflineError::Index {
            file: index.to_path_buf(),
            tensor: tensor.map(str::to_string),
            reason,
        };
        let text = std::fs::read_to_string(index).map_err(io_error("read", index))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| bad(None, format!("not JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(None, "no \"weight_map\" object".into()))?;
        let folder = index.parent().unwrap_or(Path::new("."));
        let mut by_shard: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (tensor, file) in map {
            let file = file
                .as_str()
                .ok_or_else(|| bad(Some(tensor), "the shard is not a string".into()))?;
            let plain = Path::new(file)
                .file_name()
                .map(|n| n == std::ffi::OsStr::new(file))
                .unwrap_or(false);
            if !plain {
                return Err(bad(
                    Some(tensor),
                    format!("shard {file:?} is not a plain file name in the index's folder"),
                ));
            }
            by_shard.entry(file.to_string()).or_default().insert(tensor.clone());
        }
        let mut shards = Vec::with_capacity(by_shard.len());
        for (file, names) in &by_shard {
            let path = folder.join(file);
            if !path.is_file() {
                let tensor = names.iter().next().cloned().unwrap_or_default();
                return Err(OfflineError::MissingShard {
                    index: index.to_path_buf(),
                    shard: path,
                    tensor,
                });
            }
            let header = read_header(&path)?;
            let present: BTreeSet<&str> = header.tensors.iter().map(|t| t.name.as_str()).collect();
            if let Some(absent) = names.iter().find(|n| !present.contains(n.as_str())) {
                return Err(bad(
                    Some(absent),
                    format!("the index places it in {file:?}, which does not hold it"),
                ));
            }
            if let Some(extra) = header.tensors.iter().find(|t| !names.contains(&t.name)) {
                return Err(bad(
                    Some(&extra.name),
                    format!("{file:?} holds it but the index does not place it there"),
                ));
            }
            shards.push(Shard { path, tensors: header.tensors, metadata: header.metadata });
        }
        Ok(Self { path: index.to_path_buf(), index: Some((index.to_path_buf(), json)), shards })
    }

    /// The path it was opened from (the file, or the index for a sharded checkpoint); the
    /// accessors below are shown in the type's example.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is sharded (has an index).
    pub fn is_sharded(&self) -> bool {
        self.index.is_some()
    }

    /// The index file and its JSON, for a sharded checkpoint.
    pub(crate) fn index(&self) -> Option<&(PathBuf, Value)> {
        self.index.as_ref()
    }

    /// The shards, in checkpoint order.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Every tensor with the index of its shard, in checkpoint order.
    pub fn tensors(&self) -> impl Iterator<Item = (usize, &TensorInfo)> + '_ {
        self.shards.iter().enumerate().flat_map(|(i, s)| s.tensors.iter().map(move |t| (i, t)))
    }

    /// Total bytes of tensor data.
    pub fn data_bytes(&self) -> u64 {
        self.tensors().map(|(_, t)| t.len).sum()
    }

    /// The files an output must not overwrite: the shards and the index.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.shards.iter().map(|s| s.path.clone()).collect();
        if let Some((index, _)) = &self.index {
            files.push(index.clone());
        }
        files
    }
}
